//! The `Cache` component end to end: write-behind losses, coalescing, crashes that keep state.

use super::run_text;
use std::collections::BTreeMap;

fn cache_run(client: &str, cache: &str, db_time: &str, faults: &str) -> BTreeMap<String, f64> {
    let src = format!(
        r#"Scenario(
            name: "cache", seed: 5, duration: "{d}", window: "100ms",
            network: (latency: Constant("1ms")),
            nodes: {{
                "users": Client(target: "cache", timeout: "2s", {client}),
                "cache": Cache(backend: "db", hit_time: "0s", {cache}),
                "db": Server(workers: 64, service_time: Constant("{db_time}")),
            }},
            faults: [{faults}],
        )"#,
        d = if client.contains("1000.0") {
            "30ms"
        } else {
            "4s"
        },
    );
    let r = run_text(&src);
    let v = &r.variants[0];
    assert_eq!(
        v.ok + v.errors.values().sum::<u64>(),
        v.requests,
        "every request ends once"
    );
    v.components["cache"].clone()
}

#[test]
fn write_behind_loses_exactly_the_writes_since_the_last_flush() {
    // Writes every 10 ms reach the cache 1 ms later; flushes at 1 s and 2 s. The crash at
    // 2.5 s loses the writes that arrived in (2.0 s, 2.5 s): those sent at 2.00 .. 2.49 s, 50.
    let c = cache_run(
        "arrival: Constant(rate: 100.0), keys: Uniform(count: 1000000), write_fraction: 1.0",
        "strategy: WriteBehind, flush_interval: \"1s\", capacity: 100000",
        "1ms",
        r#"Crash(node: "cache", at: "2.5s", until: "3s")"#,
    );
    assert_eq!(c["writes_lost"], 50.0, "{c:?}");
    // The same crash keeping its state loses nothing.
    let c = cache_run(
        "arrival: Constant(rate: 100.0), keys: Uniform(count: 1000000), write_fraction: 1.0",
        "strategy: WriteBehind, flush_interval: \"1s\", capacity: 100000",
        "1ms",
        r#"Crash(node: "cache", at: "2.5s", until: "3s", keep_state: true)"#,
    );
    assert_eq!(c["writes_lost"], 0.0, "{c:?}");
    // Write-through never acknowledges before the database did.
    let c = cache_run(
        "arrival: Constant(rate: 100.0), keys: Uniform(count: 1000000), write_fraction: 1.0",
        "strategy: WriteThrough, capacity: 100000",
        "1ms",
        r#"Crash(node: "cache", at: "2.5s", until: "3s")"#,
    );
    assert_eq!(c["writes_lost"], 0.0, "{c:?}");
}

#[test]
fn coalescing_collapses_concurrent_misses_into_one_backend_read() {
    // Reads of one key every 1 ms (at 1, 2, .., 29 ms: 29 of them), all while the first
    // miss's backend read takes 52 ms.
    let client = "arrival: Constant(rate: 1000.0), keys: Uniform(count: 1)";
    let c = cache_run(client, "coalesce: true", "50ms", "");
    assert_eq!(c["reads"], 29.0);
    assert_eq!(c["backend_reads"], 1.0, "{c:?}");
    assert_eq!(c["coalesced"], 28.0, "{c:?}");
    assert_eq!(c["hits"], 0.0);
    let c = cache_run(client, "coalesce: false", "50ms", "");
    assert_eq!(c["backend_reads"], 29.0, "a stampede: {c:?}");
}

#[test]
fn a_crash_that_keeps_state_keeps_the_entries() {
    // One hot key: loaded once; a crash that loses state makes it load again.
    let client = "arrival: Constant(rate: 100.0), keys: Uniform(count: 1)";
    let crash = |keep: bool| {
        format!(r#"Crash(node: "cache", at: "1s", until: "1.5s", keep_state: {keep})"#)
    };
    let kept = cache_run(client, "", "1ms", &crash(true));
    let lost = cache_run(client, "", "1ms", &crash(false));
    assert_eq!(kept["backend_reads"], 1.0, "{kept:?}");
    assert_eq!(lost["backend_reads"], 2.0, "{lost:?}");
}

#[test]
fn write_behind_reads_after_a_lossy_crash_are_stale() {
    // Ten keys, half reads: a crash loses unflushed writes, and the values read back from the
    // database afterwards are older than what clients were told was written.
    let client = "arrival: Constant(rate: 200.0), keys: Uniform(count: 10), write_fraction: 0.5";
    let c = cache_run(
        client,
        "strategy: WriteBehind, flush_interval: \"1s\"",
        "1ms",
        r#"Crash(node: "cache", at: "2.5s", until: "2.6s")"#,
    );
    assert!(c["writes_lost"] > 0.0 && c["stale_reads"] > 0.0, "{c:?}");
    let c = cache_run(
        client,
        "strategy: WriteBehind, flush_interval: \"1s\"",
        "1ms",
        "",
    );
    assert_eq!((c["writes_lost"], c["stale_reads"]), (0.0, 0.0), "{c:?}");
}
