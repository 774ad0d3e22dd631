#!/usr/bin/env bash
# archsim vs SimPy on the end-to-end benchmark (client -> P2C load balancer -> 8 servers).
# Installs SimPy in a venv under target/ (CI does not need it), runs the SimPy model on
# 100,000 requests (it is slow) and archsim on scenarios/bench-p2c.ron (1,000,000 requests,
# full metrics and report), and prints the cost per request of each and their ratio.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
venv="$root/target/simpy-venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet simpy
fi
cargo build --release --quiet -p archsim
n_simpy="${1:-100000}"
simpy_line="$("$venv/bin/python" benches/simpy/model.py "$n_simpy")"
echo "$simpy_line"
simpy_ns="$(echo "$simpy_line" | sed -E 's/.* ([0-9]+) ns\/request/\1/')"
out="$(mktemp -d)"
start=$(date +%s.%N)
./target/release/archsim run scenarios/bench-p2c.ron --out "$out" >/dev/null
end=$(date +%s.%N)
rm -rf "$out"
archsim_ns=$(echo "($end - $start) * 1000000000 / 1000000" | bc -l)
printf 'archsim: 1000000 requests (run + report), %.2f s, %.0f ns/request\n' \
    "$(echo "$end - $start" | bc -l)" "$archsim_ns"
printf 'ratio: archsim is %.0fx faster per request\n' "$(echo "$simpy_ns / $archsim_ns" | bc -l)"
