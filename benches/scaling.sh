#!/usr/bin/env bash
# How the kernel's cost per event grows with the number of nodes and of pending events
# (PHOLD, kernel and hand-written baseline side by side), and a 10,000-node scenario run end
# to end. Prints Markdown tables for README's Performance section. Usage: benches/scaling.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build --release --quiet -p archsim && cargo build --release --quiet -p archsim-benches --example phold
phold=./target/release/examples/phold
events=3000000
cost() { "$phold" "$1" "$2" "$3" "$events" | sed -E 's/.*ns\/event=([0-9.]+).*/\1/'; }

echo "| nodes (LPs) | pending events | kernel ns/event | baseline ns/event | kernel / baseline |"
echo "| ---: | ---: | ---: | ---: | ---: |"
row() {
    k=$(cost kernel "$1" "$2"); b=$(cost baseline "$1" "$2")
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
./target/release/archsim run "$dir/wide.ron" --out "$dir/out" | tail -n 1
end=$(date +%s.%N)
printf '\n10,000-node scenario (1,000,000 requests, run + report): %.2f s wall\n' "$(echo "$end - $start" | bc -l)"
rm -rf "$dir"
