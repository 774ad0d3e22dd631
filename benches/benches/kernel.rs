//! Kernel events/s on PHOLD: 1000 logical processes, 1000 to 1,000,000 pending events,
//! delays 0.1 + Exp(1) µs, side by side with the hand-written loop (a bare loop over a binary
//! heap) and the same model on `simcore`, so that their ratios are measured in one run on one
//! machine.

use archsim::sim::time::SimTime;
use archsim_benches::{baseline_phold, kernel_phold, simcore_phold::simcore_phold};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::time::Duration;

/// Simulated time that gives about `events` events: each pending event fires once per 1.1 µs
/// of mean delay.
fn end_for(pending: usize, events: u64) -> SimTime {
    SimTime(events * 1_100 / pending as u64)
}

type Phold = fn(usize, usize, u64, SimTime) -> (u64, Vec<u64>);

fn phold(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernel");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (lps, pending) in [(1000usize, 1000usize), (1000, 100_000), (1000, 1_000_000)] {
        let end = end_for(pending, 2_000_000);
        let events = kernel_phold(lps, pending, 1, end).0;
        group.throughput(Throughput::Elements(events));
        let runs: [(&str, Phold); 3] = [
            ("phold", kernel_phold),
            ("baseline-phold", baseline_phold),
            ("simcore-phold", simcore_phold),
        ];
        for (name, run) in runs {
            // simcore takes about 6 µs per event at a million pending (12 s per 2M-event
            // sample, measured): left out there to keep the bench within minutes.
            if name == "simcore-phold" && pending > 100_000 {
                continue;
            }
            group.bench_function(format!("{name}/{lps}lp/{pending}pending"), |b| {
                b.iter(|| run(lps, pending, 1, end))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, phold);
criterion_main!(benches);
