#!/usr/bin/env bash
# Fuzzing the parsers (docs/fuzzing.md).
#
#   scripts/fuzz.sh TARGET MINUTES        # AFL++ (cargo-afl, stable Rust) on one target
#   scripts/fuzz.sh all MINUTES           # every target, one after the other
#   scripts/fuzz.sh --proptest [CASES]    # the proptest runs, CASES per test (default 20000)
#   scripts/fuzz.sh --cmin TARGET         # after a run: the run's queue minimised into fuzz/corpus/TARGET/
#
# TARGET: rules, machine, scenario, config, order, webhook. AFL++ starts from
# fuzz/corpus/TARGET/ and writes to fuzz/out/TARGET/ (ignored by git); at the
# end the executions, crashes and hangs are printed from its fuzzer_stats.
# A crash or hang is in fuzz/out/TARGET/default/{crashes,hangs}/: replay it
# with `fuzz/target/release/fuzz_TARGET < FILE`, fix the parser and copy the
# file into fuzz/corpus/TARGET/ (the corpus test runs it in CI from then on).
#
# Needs cargo-afl once: `cargo install cargo-afl` (it builds AFL++).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0
TARGETS="rules machine scenario config order webhook"

usage() { sed -n '2,16p' "$0" >&2; exit 2; }

stats() {
    local f="fuzz/out/$1/default/fuzzer_stats"
    [ -f "$f" ] || { echo "$1: no fuzzer_stats" >&2; return 1; }
    awk -v t="$1" -F' *: *' '
        $1=="execs_done"{e=$2} $1=="run_time"{r=$2} $1=="corpus_count"{c=$2}
        $1=="saved_crashes"{k=$2} $1=="saved_hangs"{h=$2} $1=="execs_per_sec"{s=$2}
        $1=="bitmap_cvg"{b=$2}
        END{printf "%s: %s execs in %s s (%s/s), corpus %s, coverage %s, crashes %s, hangs %s\n", t, e, r, s, c, b, k, h}' "$f"
}

afl() {
    local target="$1" minutes="$2"
    case " $TARGETS " in *" $target "*) ;; *) usage ;; esac
    (cd fuzz && cargo afl build --release --bin "fuzz_$target")
    rm -rf "fuzz/out/$target"
    mkdir -p "fuzz/out"
    # In containers the core pattern and CPU governor cannot be changed:
    # AFL++ is told to go on; -t 2000: an input running 2 s is a hang;
    # -m 2048: an input needing more than 2 GiB is a crash.
    AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
        AFL_NO_AFFINITY=1 AFL_SKIP_CRASHES=1 \
        cargo afl fuzz -V "$((minutes * 60))" -t 2000 -m 2048 \
        -i "fuzz/corpus/$target" -o "fuzz/out/$target" \
        "fuzz/target/release/fuzz_$target" >"fuzz/out/$target.log" 2>&1 || {
        tail -40 "fuzz/out/$target.log" >&2
        return 1
    }
    stats "$target"
}

case "${1:-}" in
    --proptest)
        CREATORFLOW_FUZZ_CASES="${2:-20000}" cargo test -p creatorflow-cli --release --test fuzz -- --test-threads 2
        ;;
    --cmin)
        target="${2:-}"
        [ -d "fuzz/out/$target/default/queue" ] || usage
        tmp="$(mktemp -d)"
        cargo afl cmin -i "fuzz/out/$target/default/queue" -o "$tmp/min" -- "fuzz/target/release/fuzz_$target"
        cp -n "$tmp/min"/* "fuzz/corpus/$target/" || true
        rm -rf "$tmp"
        ;;
    all)
        [ -n "${2:-}" ] || usage
        for t in $TARGETS; do afl "$t" "$2"; done
        ;;
    "" | -h | --help) usage ;;
    *)
        [ -n "${2:-}" ] || usage
        afl "$1" "$2"
        ;;
esac
