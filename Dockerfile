# CreatorFlow: the `creatorflow` binary (serve, worker, …) in a slim image.
# Untested here: the machines this was written on have no container
# runtime (docs/deploy.md). Build: docker build -t creatorflow .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p creatorflow-cli

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /var/lib/creatorflow --create-home creatorflow
COPY --from=build /src/target/release/creatorflow /usr/local/bin/creatorflow
USER creatorflow
WORKDIR /var/lib/creatorflow
EXPOSE 8080
# serve's probes: GET /healthz (liveness), GET /readyz (readiness).
ENTRYPOINT ["/usr/local/bin/creatorflow"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
