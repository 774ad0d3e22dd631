#!/usr/bin/env bash
# archsim vs SimPy vs a hand-written loop on the end-to-end benchmark (client -> P2C load
# balancer -> 8 servers). Installs SimPy in a venv under target/ (CI does not need it), then
# alternates, on the same machine and one at a time: the SimPy model (benches/simpy/model.py,
# one process per request, a simpy.Resource per server) on 100,000 requests (it is slow; its
# time excludes the interpreter's start-up), `archsim run scenarios/bench-p2c.ron` (1,000,000
# requests, wall time of the whole command: start-up, simulation, metrics and the full report),
# and the same model as a bare event loop (benches/examples/p2c_baseline.rs, 1,000,000
# requests, time of its simulation loop alone: the floor for this model on this machine).
# Prints every run, the best cost per request of each, archsim's speed-up over SimPy, and
# archsim's and SimPy's cost per request over the hand-written baseline's.
# Usage: benches/simpy/compare.sh [SIMPY_REQUESTS [ROUNDS]]   (defaults 100000 and 3)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
venv="$root/target/simpy-venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet simpy
fi
# The same build command as benches/scaling.sh, so running one after the other rebuilds nothing.
cargo build --release --quiet --workspace --bins --examples
n_simpy="${1:-100000}"
rounds="${2:-3}"
n_archsim=1000000
n_baseline=1000000
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
best_simpy=""
best_archsim=""
best_baseline=""
for round in $(seq "$rounds"); do
    simpy_line="$("$venv/bin/python" benches/simpy/model.py "$n_simpy")"
    echo "round $round: $simpy_line"
    simpy_ns="$(echo "$simpy_line" | sed -E 's/.* ([0-9]+) ns\/request/\1/')"
    start=$(date +%s.%N)
    ./target/release/archsim run scenarios/bench-p2c.ron --out "$out" >/dev/null 2>&1
    end=$(date +%s.%N)
    wall=$(echo "$end - $start" | bc -l)
    archsim_ns=$(echo "$wall * 1000000000 / $n_archsim" | bc -l)
    printf 'round %s: archsim: %s requests (run + report), %.2f s, %.0f ns/request\n' \
        "$round" "$n_archsim" "$wall" "$archsim_ns"
    baseline_line="$(./target/release/examples/p2c_baseline "$n_baseline")"
    echo "round $round: $baseline_line"
    baseline_ns="$(echo "$baseline_line" | sed -E 's/.* ([0-9]+) ns\/request/\1/')"
    if [ -z "$best_simpy" ] || [ "$(echo "$simpy_ns < $best_simpy" | bc -l)" = 1 ]; then
        best_simpy=$simpy_ns
    fi
    if [ -z "$best_archsim" ] || [ "$(echo "$archsim_ns < $best_archsim" | bc -l)" = 1 ]; then
        best_archsim=$archsim_ns
    fi
    if [ -z "$best_baseline" ] || [ "$(echo "$baseline_ns < $best_baseline" | bc -l)" = 1 ]; then
        best_baseline=$baseline_ns
    fi
done
printf 'best of %s: simpy %.0f ns/request, archsim %.0f ns/request (%.2f s for 1,000,000), hand-written baseline %.0f ns/request\n' \
    "$rounds" "$best_simpy" "$best_archsim" "$(echo "$best_archsim / 1000" | bc -l)" "$best_baseline"
printf 'ratio: archsim is %.0fx faster per request\n' "$(echo "$best_simpy / $best_archsim" | bc -l)"
printf 'ratio: archsim / hand-written baseline %.2f (run + report against the loop alone)\n' \
    "$(echo "$best_archsim / $best_baseline" | bc -l)"
printf 'ratio: SimPy / hand-written baseline %.0f\n' "$(echo "$best_simpy / $best_baseline" | bc -l)"
