#!/usr/bin/env bash
# Every figure of README's Performance section, measured side by side in one run on this
# machine, printed as the Markdown the README includes:
#   - PHOLD (1,000 processes, 1,000 pending events) on the kernel, as the hand-written loop
#     (binary heap of packed keys, the same draws) and on the `simcore` crate: best wall time
#     of ROUNDS alternating runs each, and instructions per event (callgrind, if valgrind is
#     installed: instruction counts do not swing with the machine's load as time does);
#   - PHOLD with 1,000,000 pending events: events/s, and memory per pending event (peak RSS at
#     1,000,000 pending minus at 100,000, over the 900,000 more);
#   - the whole `archsim run scenarios/bench-p2c.ron` (1,000,000 requests, report included)
#     against the same model in SimPy and as a bare hand-written loop (benches/simpy/compare.sh);
#   - the whole command in instructions per request (callgrind, a 100,000-request copy, -j 1)
#     against the hand-written P2C loop's;
#   - heap per pending event (the memory test's counting allocator), message and timer;
#   - how the cost per event grows with processes and pending events (benches/scaling.sh).
# It prints the Markdown and writes it into README.md (or the file named by PERF_README)
# between the "perf.sh:begin" and "perf.sh:end" markers, headed by the date and the machine.
# About 10 minutes with the default 5 rounds.
# Usage: benches/perf.sh [ROUNDS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build --release --quiet --workspace --bins --examples
rounds="${1:-5}"
phold=./target/release/examples/phold
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi; }
field() { sed -E "s/.*$1=([0-9.]+).*/\\1/"; }

# Best ns/event of each implementation at (LPS, PENDING, EVENTS), alternating, into best_<impl>.
best_of() {
    local impls="$1" lps="$2" pending="$3" events="$4"
    for impl in $impls; do eval "best_$impl=''"; done
    for _ in $(seq "$rounds"); do
        for impl in $impls; do
            ns=$("$phold" "$impl" "$lps" "$pending" "$events" | field 'ns\/event')
            eval "best_$impl=\$(min \"\$best_$impl\" $ns)"
        done
    done
}

# Instructions per event under callgrind (deterministic), or "n/a" without valgrind.
instructions() {
    if ! command -v valgrind >/dev/null; then echo "n/a"; return; fi
    local n=1000000
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$phold" "$1" 1000 1000 "$n" 2>&1 |
        sed -nE 's/.*Collected : ([0-9]+).*/\1/p' | awk -v n="$n" '{printf "%.0f", $1 / n}'
}

# Peak RSS in KiB of one PHOLD run.
rss() { /usr/bin/time -f '%M' "$phold" "$1" 1000 "$2" "$3" 2>&1 >/dev/null | tail -n 1; }

best_of "kernel baseline simcore" 1000 1000 3000000
k1=$best_kernel; b1=$best_baseline; s1=$best_simcore
ik=$(instructions kernel); ib=$(instructions baseline); is=$(instructions simcore)
best_of "kernel baseline" 1000 1000000 5000000
k2=$best_kernel; b2=$best_baseline
mem_per_event() { echo "($(rss "$1" 1000000 2000000) - $(rss "$1" 100000 2000000)) * 1024 / 900000" | bc -l; }
mk=$(mem_per_event kernel); mb=$(mem_per_event baseline)

p2c="$(benches/simpy/compare.sh 100000 "$rounds" | tee /dev/stderr | grep '^best of')"
simpy_ns=$(echo "$p2c" | sed -E 's/.*simpy ([0-9]+) ns.*/\1/')
archsim_ns=$(echo "$p2c" | sed -E 's/.*archsim ([0-9]+) ns.*/\1/')
loop_ns=$(echo "$p2c" | sed -E 's/.*hand-written baseline ([0-9]+) ns.*/\1/')

ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }
per_instr() { if [ "$2" = n/a ]; then echo "n/a"; else ratio "$1" "$2"; fi; }

# Instructions per request of the whole command on a 100,000-request copy of bench-p2c (one
# thread, report included) and of the hand-written loop on as many requests.
requests=100000
copy="$(mktemp -d)"
trap 'rm -rf "$copy"' EXIT
sed -e "s/max_requests: 1000000/max_requests: $requests/" -e 's/duration: "180s"/duration: "18s"/' \
    scenarios/bench-p2c.ron > "$copy/p2c.ron"
per_request() {
    if ! command -v valgrind >/dev/null; then echo "n/a"; return; fi
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null |
        sed -nE 's/.*Collected : ([0-9]+).*/\1/p' | awk -v n="$requests" '{printf "%.0f", $1 / n}'
}
ia=$(per_request ./target/release/archsim run "$copy/p2c.ron" -j 1 --out "$copy/out")
il=$(per_request ./target/release/examples/p2c_baseline "$requests")

# Heap per pending event, from the memory test (it prints what it measures).
heap="$(cargo test --release --quiet -p archsim --test suite memory::pending_events -- --nocapture 2>&1 |
    sed -nE 's/^timers (true|false): ([0-9.]+) bytes.*/\1 \2/p')"
heap_message=$(echo "$heap" | awk '$1 == "false" {print $2}')
heap_timer=$(echo "$heap" | awk '$1 == "true" {print $2}')

scaling="$(benches/scaling.sh "$rounds")"
load="$(cut -d ' ' -f 1-3 /proc/loadavg)"
cpu="$(sed -nE 's/^model name[[:space:]]*: (.*)/\1/p' /proc/cpuinfo | head -n 1)"
section="$(
echo "Produced by \`benches/perf.sh $rounds\` on $(date -u +%Y-%m-%d) on $cpu, $(nproc) cores, load average $load at the end (the machine is shared: compare ratios within a row; instruction counts and bytes do not move with the load)."
echo
echo "| measure | archsim | reference | ratio |"
echo "| --- | ---: | ---: | ---: |"
printf '| PHOLD, 1,000 processes, 1,000 pending events | %s ns/event, %s instructions/event | hand-written loop: %s ns/event, %s instructions/event | %s× the loop in time, %s× in instructions |\n' \
    "$k1" "$ik" "$b1" "$ib" "$(ratio "$k1" "$b1")" "$(per_instr "$ik" "$ib")"
printf '| PHOLD, the same model on `simcore` 0.1 | | %s ns/event, %s instructions/event | archsim %s× faster, %s× fewer instructions |\n' \
    "$s1" "$is" "$(ratio "$s1" "$k1")" "$(per_instr "$is" "$ik")"
printf '| PHOLD, 1,000,000 pending events | %s ns/event (%.1f M events/s), %.1f bytes per pending event | hand-written loop: %s ns/event (%.1f M events/s), %.1f bytes per pending event | %s× the loop in time |\n' \
    "$k2" "$(echo "1000 / $k2" | bc -l)" "$mk" "$b2" "$(echo "1000 / $b2" | bc -l)" "$mb" "$(ratio "$k2" "$b2")"
printf '| whole `archsim run scenarios/bench-p2c.ron` (1,000,000 requests, report included) | %.2f µs/request | the same model in SimPy: %.1f µs/request; as a bare loop (simulation alone): %.2f µs/request | **%.0f×** SimPy; %s× the loop |\n' \
    "$(echo "$archsim_ns / 1000" | bc -l)" "$(echo "$simpy_ns / 1000" | bc -l)" "$(echo "$loop_ns / 1000" | bc -l)" \
    "$(echo "$simpy_ns / $archsim_ns" | bc -l)" "$(ratio "$archsim_ns" "$loop_ns")"
printf '| the same command in instructions (a %s-request copy, `-j 1`, report included) | %s instructions/request | hand-written loop: %s instructions/request | %s× the loop |\n' \
    "$requests" "$ia" "$il" "$(per_instr "$ia" "$il")"
printf '| heap per pending event (`engine/tests/suite/memory.rs`, 20,000 to 200,000 in flight) | plug-in message %s bytes, timer %s bytes | its 32-byte queue entry | |\n' \
    "$heap_message" "$heap_timer"
echo
echo "Best of $rounds alternating runs each; instructions from callgrind over 1,000,000 events."
echo
echo "$scaling"
)"
echo
echo "$section"
readme="${PERF_README:-README.md}"
SECTION="$section" python3 - "$readme" <<'PY'
import os, sys
path = sys.argv[1]
text = open(path).read()
begin, end = "<!-- perf.sh:begin -->\n", "<!-- perf.sh:end -->"
a, b = text.index(begin) + len(begin), text.index(end)
open(path, "w").write(text[:a] + os.environ["SECTION"] + "\n" + text[b:])
PY
echo "(written into $readme)"
