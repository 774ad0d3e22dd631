//! Kernel events/s on PHOLD: 1000 logical processes, 1000 (and 100,000) pending events,
//! delays 0.1 + Exp(1) µs.

use archsim::sim::time::SimTime;
use archsim_benches::phold_world;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// Simulated time that gives about a million events: each pending event fires once per
/// 1.1 µs of mean delay.
fn end_for(pending: usize) -> SimTime {
    SimTime(1_100_000_000_000 / pending as u64 / 1_000)
}

fn phold(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernel");
    for (lps, pending) in [(1000usize, 1000usize), (1000, 100_000)] {
        let end = end_for(pending);
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
    }
    group.finish();
}

criterion_group!(benches, phold);
criterion_main!(benches);
