#!/usr/bin/env bash
# How the kernel's cost per event grows with the number of nodes and of pending events
# (PHOLD, kernel and hand-written baseline side by side), and a 10,000-node scenario run end
# to end. Prints Markdown tables for README's Performance section. Each PHOLD row runs the
# kernel and the baseline alternately, `rounds` times each (default 3), and keeps the best of
# each (the machine is shared; the minimum is the least disturbed). About two minutes.
# Usage: benches/scaling.sh [ROUNDS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# The same build command as benches/simpy/compare.sh, so running one after the other rebuilds nothing.
cargo build --release --quiet --workspace --bins --examples
phold=./target/release/examples/phold
events=3000000
cost() { "$phold" "$1" "$2" "$3" "$events" | sed -E 's/.*ns\/event=([0-9.]+).*/\1/'; }
rounds="${1:-3}"
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi; }

echo "| nodes (LPs) | pending events | kernel ns/event | baseline ns/event | kernel / baseline |"
echo "| ---: | ---: | ---: | ---: | ---: |"
row() {
    k=""; b=""
    for _ in $(seq "$rounds"); do
        k=$(min "$k" "$(cost kernel "$1" "$2")"); b=$(min "$b" "$(cost baseline "$1" "$2")")
    done
    printf '| %s | %s | %s | %s | %.2f |\n' "$1" "$2" "$k" "$b" "$(echo "$k / $b" | bc -l)"
}
for lps in 10 100 1000 10000 100000; do row "$lps" 1000; done
for pending in 10000 100000 1000000; do row 1000 "$pending"; done

# A scenario with 10,000 nodes: users -> load balancer -> 9,998 servers.
dir="$(mktemp -d)"
cat > "$dir/wide.ron" <<'RON'
Scenario(
    name: "10,000 nodes", seed: 1, duration: "20s", warmup: "1s",
    network: (latency: LogNormal(median: "200us", p99: "1ms")),
    nodes: {
        "users": Client(target: "lb", arrival: Poisson(rate: 50000.0), timeout: "1s"),
        "lb":    LoadBalancer(strategy: PowerOfTwoChoices, backends: ["app"]),
        "app":   Server(replicas: 9998, workers: 1, service_time: Exponential(mean: "100ms")),
    },
)
RON
start=$(date +%s.%N)
if [ -x /usr/bin/time ]; then
    /usr/bin/time -f '%M' -o "$dir/rss" ./target/release/archsim run "$dir/wide.ron" --out "$dir/out" >/dev/null
    rss="$(awk '{printf "%.0f MiB", $1 / 1024}' "$dir/rss")"
else
    ./target/release/archsim run "$dir/wide.ron" --out "$dir/out" >/dev/null
    rss="not measured (no /usr/bin/time)"
fi
end=$(date +%s.%N)
printf '\n10,000-node scenario (1,000,000 requests, run + report): %.2f s wall, peak RSS %s\n' \
    "$(echo "$end - $start" | bc -l)" "$rss"
rm -rf "$dir"
