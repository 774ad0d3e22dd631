//! End to end: client → LB (P2C) → 8 servers, 1,000,000 requests, full metrics on; and the
//! same model's two variants (P2C, round robin) on one thread and on two, as `archsim run -j 1`
//! and `-j 2` run them.

use archsim::Registry;
use archsim::runner::{RunOptions, run, run_variant};
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

/// Two variants of 300,000 requests each on a pool of `threads` threads: on two cores, the
/// two-thread time should be a little over half the one-thread time.
fn two_variants(c: &mut Criterion) {
    let registry = Registry::builtin();
    let requests = 300_000;
    let text = end_to_end_scenario(requests).replace(
        "\n)",
        "\n    variants: { \"p2c\": { \"lb.strategy\": PowerOfTwoChoices },\n               \
         \"round-robin\": { \"lb.strategy\": RoundRobin } },\n)",
    );
    let scenario = parse("two.ron", &text, &registry).expect("valid scenario");
    assert_eq!(scenario.variants.len(), 2);
    let mut group = c.benchmark_group("two_variants");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Elements(2 * requests));
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        group.bench_function(format!("300k-requests-each/{threads}-threads"), |b| {
            b.iter(|| {
                pool.install(|| run(&scenario, &registry, &RunOptions::default()))
                    .expect("runs")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, end_to_end, two_variants);
criterion_main!(benches);
