//! Kernel events/s on PHOLD: 1000 logical processes, 1000 pending events, 0.1 + Exp(1) delays.

use archsim::sim::time::SimTime;
use archsim_benches::phold_world;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// Simulated time that gives about a million events with 1000 pending and mean delay 1.1 µs.
const END: SimTime = SimTime(1_100_000);

fn phold(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernel");
    for (lps, pending) in [(1000usize, 1000usize)] {
        let events = phold_world(lps, pending, 1).run(END).expect("PHOLD runs").events;
        group.throughput(Throughput::Elements(events));
        group.bench_function(format!("phold/{lps}lp/{pending}pending"), |b| {
            b.iter_batched(
                || phold_world(lps, pending, 1),
                |w| w.run(END).expect("PHOLD runs"),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, phold);
criterion_main!(benches);
