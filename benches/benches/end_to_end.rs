//! End to end: client → LB (P2C) → 8 servers, 1,000,000 requests, full metrics on.

use archsim::Registry;
use archsim::runner::run_variant;
use archsim::scenario::parse;
use archsim_benches::end_to_end_scenario;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::time::Duration;

fn end_to_end(c: &mut Criterion) {
    let registry = Registry::builtin();
    let requests = 1_000_000;
    let scenario =
        parse("bench.ron", &end_to_end_scenario(requests), &registry).expect("valid scenario");
    let variant = &scenario.variants[0];
    let mut group = c.benchmark_group("end_to_end");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(requests));
    group.bench_function("client-lb-8servers/1M-requests", |b| {
        b.iter(|| run_variant(variant, &registry, 1).expect("runs"))
    });
    group.finish();
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
