//! Memory grows with the model, not with the number of requests: a counting allocator
//! measures the peak heap of one run on this thread, at 100k and at 1M requests over the same
//! simulated time (so the number of time windows, which memory does grow with, is the same).

use archsim::Registry;
use archsim::runner::run_variant;
use archsim::scenario::parse;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts live and peak heap bytes per thread, so tests running in parallel do not mix.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    // `try_with`: during thread teardown the slots may be gone; then there is nothing to count.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: delegates every call to the system allocator unchanged; only counts sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak heap growth (bytes) while running `requests` requests on this thread.
fn peak_heap_of_run(requests: u64) -> isize {
    let rate = requests as f64 / 100.0;
    let src = format!(
        r#"Scenario(
            name: "memory", seed: 5, duration: "100s", warmup: "1s",
            network: (latency: Exponential(mean: "100us")),
            nodes: {{
                "users": Client(target: "lb", arrival: Poisson(rate: {rate:.1})),
                "lb": LoadBalancer(strategy: PowerOfTwoChoices, backends: ["app"]),
                "app": Server(replicas: 16, service_time: Exponential(mean: "1ms")),
            }},
        )"#
    );
    let registry = Registry::builtin();
    let scenario = parse("memory.ron", &src, &registry).expect("valid");
    let variant = &scenario.variants[0];
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let result = run_variant(variant, &registry, 5).expect("runs");
    assert!(
        result.requests >= requests * 9 / 10,
        "the run issued {} requests",
        result.requests
    );
    PEAK.with(Cell::get) - base
}

#[test]
fn peak_heap_does_not_grow_with_requests() {
    let small = peak_heap_of_run(100_000);
    let large = peak_heap_of_run(1_000_000);
    eprintln!("peak heap: {small} B at 100k requests, {large} B at 1M");
    assert!(small > 0);
    // Same model and run length; ten times the requests (and so a few times the requests in
    // flight at once, which is what the model needs). Anything kept per request would show up
    // as ten times the memory.
    assert!(
        (large as f64) < small as f64 * 1.25,
        "peak heap grew from {small} B at 100k requests to {large} B at 1M"
    );
}
