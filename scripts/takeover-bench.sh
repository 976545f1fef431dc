#!/usr/bin/env bash
# How long after a worker's death (SIGKILL) its steps are taken over, through
# the binary (BENCHMARKS.md, issue 16):
#
#   scripts/takeover-bench.sh BIN STORE_URL [ORDERS] [RUNS]
#
# Per run: ingests ORDERS (default 1000) orders into STORE_URL, in which the
# word RUN is replaced by the run's number (a fresh SQLite file or PostgreSQL
# schema per run: `sqlite:///tmp/tb-RUN.db`, `postgres://…?schema=tb_RUN`),
# starts a worker whose simulated calls take 500 ms (a round of a lane's 100
# orders takes seconds), kills it with SIGKILL mid-run (2 s after its start,
# 1.3 s later in each further run, so that the kills fall at different
# points of its 5-s heartbeat cycle), starts `worker --exit-when-idle` at
# once, and prints the seconds from the kill to that worker's "took over"
# log line and to its exit (every order finished). Heartbeats: the defaults
# (every 5 s, lapse 15 s): a takeover comes 10 to 15 s after the kill, plus
# the takeover's own latency.
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
    url=${URL//RUN/$run}
    for i in $(seq 1 "$N"); do
        printf '{"tiktok_order_id":"tb%s-%s","customer_handle":"@b%s","product_name":"Lamp","product_id":"p%s","quantity":1,"price":"19.99","created_at":"2025-06-12T10:00:00Z"}\n' \
            "$run" "$i" "$i" "$((i % 3))"
    done >"$orders"
    "$BIN" ingest --orders "$orders" --store "$url" >/dev/null 2>&1
    "$BIN" worker --store "$url" --latency-ms 500 --poll-ms 20 >/dev/null 2>"$dir/a.log" &
    a=$!
    sleep "$(echo "2 + ($run - 1) * 1.3" | bc)"
    kill -KILL "$a"
    wait "$a" 2>/dev/null || true
    killed=$(now)
    took=""
    while IFS= read -r line; do
        if [[ -z "$took" && "$line" == *"took over"* ]]; then
            took=$(now)
        fi
    done < <("$BIN" worker --store "$url" --exit-when-idle 2>&1 >/dev/null)
    done_at=$(now)
    left=$("$BIN" status --store "$url" --format json 2>/dev/null | jq '.orders - (.by_state.shipped // 0)')
    if [[ -z "$took" ]]; then
        echo "run $run: nothing was taken over (the worker held nothing when killed?)"
        continue
    fi
    printf 'run %s: taken over %.1f s after SIGKILL; all %s orders done %.1f s after (%s not shipped)\n' \
        "$run" "$(echo "$took - $killed" | bc)" "$N" "$(echo "$done_at - $killed" | bc)" "$left"
done
