#!/usr/bin/env bash
# The soak run (issue 16): `creatorflow serve` and a separate `creatorflow
# worker` on a throwaway PostgreSQL, under signed TikTok webhooks at a fixed
# rate (200/s) for a long time (30 minutes), with one PostgreSQL restart at
# about 1/3 and one worker SIGKILL at about 2/3; then the checks (every
# acknowledged webhook became exactly one order; serve's memory did not
# grow). The work is done by cli/examples/soak.rs (its docs list every
# flag); this script builds it and the binary (release), starts the cluster
# (scripts/pg-test-cluster.sh) and removes it afterwards.
#
#   scripts/soak.sh [--minutes 30] [--rate 200] [--out target/soak] [other flags of the example]
#   scripts/soak.sh --minutes 2          # a short run that checks the harness
#
# Exit status: the example's (0: every check held, 1: a check failed, 2: the
# harness could not run). The JSON report is printed and written to
# OUT/report.json, with serve.log and worker-N.log next to it. Not run by CI
# (too long).
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

cargo build --release -p creatorflow-cli --bin creatorflow --example soak

exports=$(bash scripts/pg-test-cluster.sh start)
eval "$exports"
# shellcheck disable=SC2064 # expand now: the directory is known
trap "bash scripts/pg-test-cluster.sh stop '$CREATORFLOW_PG_DIR'" EXIT

target=${CARGO_TARGET_DIR:-target}
status=0
"$target/release/examples/soak" --bin "$target/release/creatorflow" "$@" || status=$?
exit "$status"
