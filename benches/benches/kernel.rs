//! Kernel events/s on PHOLD: 1000 logical processes, 1000 to 1,000,000 pending events,
//! delays 0.1 + Exp(1) µs, side by side with the hand-written baseline (a bare loop over a
//! binary heap) so that their ratio is measured in one run on one machine.

use archsim::sim::time::SimTime;
use archsim_benches::{baseline_phold, phold_world};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::time::Duration;

/// Simulated time that gives about `events` events: each pending event fires once per 1.1 µs
/// of mean delay.
fn end_for(pending: usize, events: u64) -> SimTime {
    SimTime(events * 1_100 / pending as u64)
}

fn phold(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernel");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (lps, pending) in [(1000usize, 1000usize), (1000, 100_000), (1000, 1_000_000)] {
        let end = end_for(pending, 2_000_000);
        let events = phold_world(lps, pending, 1)
            .run(end)
            .expect("PHOLD runs")
            .events;
        group.throughput(Throughput::Elements(events));
        group.bench_function(format!("phold/{lps}lp/{pending}pending"), |b| {
            b.iter_batched(
                || phold_world(lps, pending, 1),
                |w| w.run(end).expect("PHOLD runs"),
                BatchSize::LargeInput,
            )
        });
        let base_events = baseline_phold(lps, pending, 1, end);
        group.throughput(Throughput::Elements(base_events));
        group.bench_function(format!("baseline-phold/{lps}lp/{pending}pending"), |b| {
            b.iter(|| baseline_phold(lps, pending, 1, end))
        });
    }
    group.finish();
}

criterion_group!(benches, phold);
criterion_main!(benches);
