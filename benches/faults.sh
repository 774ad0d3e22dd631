#!/usr/bin/env bash
# Faults at scale: one run with about 60,000 random crashes over 1,000 time windows against
# the same run without them (600 s at 2,000 requests/s, 0.6 s windows), whole command each
# (simulation, time to recover, results.json and the full report). Prints, per run and best
# of ROUNDS: wall time, peak RSS and the size of what it wrote, then the ratio of the
# faulted run's time to the clean one's (the aim: at most 3x).
# Usage: benches/faults.sh [ROUNDS]   (default 3)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# The same build command as benches/scaling.sh, so running one after the other rebuilds nothing.
cargo build --release --quiet --workspace --bins --examples
rounds="${1:-3}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT

scenario() {
    cat <<RON
Scenario(
    name: "faults at scale ($1)", seed: 3, duration: "600s", warmup: "6s", window: "600ms",
    network: (latency: LogNormal(median: "200us", p99: "1ms")),
    nodes: {
        "users": Client(target: "lb", arrival: Poisson(rate: 2000.0), timeout: "100ms"),
        "lb":    LoadBalancer(strategy: LeastConnections, backends: ["app"], timeout: "100ms"),
        "app":   Server(replicas: 10, workers: 2, queue_limit: 100,
                        service_time: Exponential(mean: "2ms")),
    },
    faults: [$2],
)
RON
}
scenario "none" "" > "$dir/none.ron"
# A crash of a random replica every 10 ms on average, 20 ms each: about 60,000.
scenario "60,000 random crashes" \
    'Random(kind: Crash, node: "app", mean_interval: "10ms", duration: "20ms")' > "$dir/many.ron"

best() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi; }
declare -A wall rss
for _ in $(seq "$rounds"); do
    for run in none many; do
        rm -rf "$dir/out-$run"
        /usr/bin/time -f "%e %M" -o "$dir/time" ./target/release/archsim run "$dir/$run.ron" \
            -j 1 --out "$dir/out-$run" > /dev/null
        read -r s kb < "$dir/time"
        echo "$run: ${s} s, peak RSS $((kb / 1024)) MiB"
        wall[$run]="$(best "${wall[$run]:-}" "$s")"
        rss[$run]="$kb"
    done
done
faults="$(grep -o '"start_s"' "$dir/out-many/results.json" | wc -l)"
echo
echo "| run | wall (best of $rounds) | peak RSS | written | results.json |"
echo "| --- | ---: | ---: | ---: | ---: |"
for run in none many; do
    written="$(du -sb "$dir/out-$run" | cut -f1)"
    json="$(stat -c %s "$dir/out-$run/results.json")"
    printf '| %s | %s s | %d MiB | %.1f MB | %.1f MB |\n' "$run" "${wall[$run]}" \
        "$((rss[$run] / 1024))" "$(echo "$written / 1000000" | bc -l)" "$(echo "$json / 1000000" | bc -l)"
done
echo
printf 'faults (with their recovery entries): %s; faulted / clean: %.2fx\n' "$faults" \
    "$(echo "${wall[many]} / ${wall[none]}" | bc -l)"
