//! Run PHOLD once, on the kernel, on `simcore` or as the hand-written loop, and print its cost
//! per event: for profiling and for `benches/perf.sh`.
//! Usage: `phold [kernel|baseline|simcore] LPS PENDING EVENTS`.

use archsim::sim::time::SimTime;
use archsim_benches::{baseline_phold, kernel_phold, simcore_phold::simcore_phold};

/// Wall-clock seconds taken by `f`, with its result: timing is what this tool is for, and it
/// is outside the simulation.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
fn timed<R>(f: impl FnOnce() -> R) -> (R, f64) {
    let start = std::time::Instant::now();
    let r = f();
    (r, start.elapsed().as_secs_f64())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| {
        args.get(i)
            .map(|s| s.parse::<u64>().expect("a number"))
            .unwrap_or(default)
    };
    let which = args.first().map_or("kernel", String::as_str);
    let (lps, pending, events) = (
        arg(1, 1000) as usize,
        arg(2, 1000) as usize,
        arg(3, 5_000_000),
    );
    // Each pending event fires once per 1.1 µs of mean delay.
    let end = SimTime(events * 1_100 / pending as u64);
    let run = match which {
        "kernel" => kernel_phold,
        "baseline" => baseline_phold,
        "simcore" => simcore_phold,
        other => panic!("expected kernel, baseline or simcore, got {other}"),
    };
    let ((n, _), secs) = timed(|| run(lps, pending, 1, end));
    println!(
        "{which} lps={lps} pending={pending} events={n} ns/event={:.1} Mev/s={:.2}",
        secs * 1e9 / n as f64,
        n as f64 / secs / 1e6
    );
}
