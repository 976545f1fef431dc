#!/usr/bin/env bash
# How long after a worker's death (SIGKILL) its steps are taken over, through
# the binary (BENCHMARKS.md, issue 16):
#
#   scripts/takeover-bench.sh BIN STORE_URL [ORDERS] [RUNS]
#
# Per run: ingests ORDERS (default 1000) fresh orders into STORE_URL (an empty
# SQLite file or PostgreSQL schema is best), starts a worker whose simulated
# calls take 200 ms, waits until it has shipped some orders and holds others,
# kills it with SIGKILL, starts `worker --exit-when-idle` at once, and prints
# the seconds from the kill to that worker's "took over" log line, and to its
# exit (every order finished). Heartbeats: the defaults (every 5 s, lapse 15 s).
set -euo pipefail

BIN=${1:?usage: takeover-bench.sh BIN STORE_URL [ORDERS] [RUNS]}
URL=${2:?usage: takeover-bench.sh BIN STORE_URL [ORDERS] [RUNS]}
N=${3:-1000}
RUNS=${4:-1}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

now() { date +%s.%N; }

for run in $(seq 1 "$RUNS"); do
    orders="$dir/orders-$run.jsonl"
    for i in $(seq 1 "$N"); do
        printf '{"tiktok_order_id":"tb%s-%s","customer_handle":"@b%s","product_name":"Lamp","product_id":"p%s","quantity":1,"price":"19.99","created_at":"2025-06-12T10:00:00Z"}\n' \
            "$run" "$i" "$i" "$((i % 3))"
    done >"$orders"
    "$BIN" ingest --orders "$orders" --store "$URL" >/dev/null
    "$BIN" worker --store "$URL" --latency-ms 500 --poll-ms 20 >/dev/null 2>"$dir/a.log" &
    a=$!
    until "$BIN" status --store "$URL" --format json 2>/dev/null |
        jq -e '.in_flight.held_by_live > 0 and (.by_state.shipped // 0) > 0' >/dev/null; do
        sleep 0.2
    done
    kill -KILL "$a"
    wait "$a" 2>/dev/null || true
    killed=$(now)
    took=""
    while IFS= read -r line; do
        if [[ -z "$took" && "$line" == *"took over"* ]]; then
            took=$(now)
        fi
    done < <("$BIN" worker --store "$URL" --exit-when-idle 2>&1 >/dev/null)
    done_at=$(now)
    printf 'run %s: taken over %.1f s after SIGKILL; all %s orders done %.1f s after\n' \
        "$run" "$(echo "${took:-$done_at} - $killed" | bc)" "$N" "$(echo "$done_at - $killed" | bc)"
done
