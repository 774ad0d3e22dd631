//! Time to converge after a partition heals, measured by the ground-truth observer, against
//! what anti-entropy and read repair can guarantee.

use super::run_text;
use archsim::results::VariantResult;

fn conv(v: &VariantResult, counter: &str) -> f64 {
    v.components["store-convergence"][counter]
}

/// Two replicas split 1 | 1 from 1 s to 3 s, each side writing 30 keys; `extra` nodes and
/// store fields are spliced in. Latency is a constant 1 ms.
fn split_pair(duration: &str, store: &str, clients: &str, seed: u64) -> String {
    format!(
        r#"Scenario(name: "heal", seed: {seed}, duration: "{duration}",
    network: (latency: Constant("1ms")),
    nodes: {{
        {clients}
        "store": ReplicatedStore(replicas: 2, read_quorum: 2, write_quorum: 2, sloppy: true,
                                 {store}),
    }},
    faults: [Partition(groups: [["left", "store-0"], ["right", "store-1"]],
                       at: "1s", until: "3s")],
)"#
    )
}

/// Writers on both sides that stop when the partition heals (their timeout keeps the run
/// going 2 s after it).
const WRITERS_STOP_AT_HEAL: &str = r#"
        "left": KvClient(target: "store-0", arrival: Poisson(rate: 200.0), timeout: "2s",
                         keys: Uniform(count: 30), write_fraction: 1.0),
        "right": KvClient(target: "store-1", arrival: Poisson(rate: 200.0), timeout: "2s",
                          keys: Uniform(count: 30), write_fraction: 1.0),"#;

#[test]
fn anti_entropy_converges_within_one_interval_and_two_thirds_of_one_on_average() {
    // Two replicas: each pushes everything it holds to the other once per interval I, at a
    // phase of its own; both sides hold newest stamps, so convergence waits for both pushes:
    // at most I + 1 ms (the push's latency), on average 2I/3 (the max of two uniform phases).
    let interval = 0.4;
    let mut sum = 0.0;
    // Enough heals to tell the model's 2I/3 from a shared-phase bug's I/2 (one uniform
    // phase): 120 seeds put them 7 standard errors apart.
    let seeds = 120;
    for seed in 1..=seeds {
        let src = split_pair(
            "3s",
            r#"read_repair: false, anti_entropy_interval: "400ms""#,
            WRITERS_STOP_AT_HEAL,
            seed,
        );
        let r = run_text(&src);
        let v = &r.variants[0];
        assert_eq!(conv(v, "heals"), 1.0);
        assert_eq!(conv(v, "heal1_at_s"), 3.0);
        // Both sides wrote every key of 30 at 200/s for 2 s.
        assert_eq!(conv(v, "heal1_divergent_keys"), 30.0, "seed {seed}");
        let t = conv(v, "heal1_converge_s");
        assert!(
            t > 0.001 && t <= interval + 0.001 + 1e-9,
            "seed {seed}: {t}"
        );
        sum += t;
    }
    let mean = sum / seeds as f64;
    // The max of two uniform phases has mean 2I/3 and standard deviation I/sqrt(18), plus the
    // push's 1 ms; two-sided at 4 standard errors of the mean.
    let want = 2.0 * interval / 3.0 + 0.001;
    let tol = 4.0 * interval / 18f64.sqrt() / (seeds as f64).sqrt();
    assert!((mean - want).abs() < tol, "mean {mean} vs {want} ± {tol}");
}

#[test]
fn without_anti_entropy_or_reads_the_replicas_never_converge() {
    let src = split_pair(
        "3s",
        "read_repair: true, anti_entropy_interval: None",
        WRITERS_STOP_AT_HEAL,
        1,
    );
    let r = run_text(&src);
    let v = &r.variants[0];
    assert_eq!(conv(v, "heals_not_converged"), 1.0);
    assert_eq!(conv(v, "heals_converged"), 0.0);
    assert!(!v.components["store-convergence"].contains_key("heal1_converge_s"));
    // A write in flight at the heal may still reach both replicas and settle its key; the
    // rest stay behind for good.
    let events = &v.state_changes["store-convergence"];
    let last = &events.last().unwrap().what;
    let behind: u32 = last
        .split("not converged by the end: ")
        .nth(1)
        .and_then(|rest| rest.split(" of 30").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected last event: {last}"));
    assert!((27..=30).contains(&behind), "{last}");
}

#[test]
fn read_repair_shortens_convergence() {
    // Readers keep reading after the heal; with read repair each read of a divergent key
    // repairs it, so 30 keys at 500 reads/s are all read within ~30 x H(30) / 500 = 0.24 s,
    // while anti-entropy every 2 s takes 1.3 s on average.
    let clients = r#"
        "left": KvClient(target: "store-0", arrival: Poisson(rate: 20.0),
                         keys: Uniform(count: 30), write_fraction: 1.0),
        "right": KvClient(target: "store-1", arrival: Poisson(rate: 20.0),
                          keys: Uniform(count: 30), write_fraction: 1.0),
        "readers": KvClient(target: "store", arrival: Poisson(rate: 500.0),
                            keys: Uniform(count: 30), write_fraction: 0.0),"#;
    let (mut with, mut without) = (0.0, 0.0);
    for seed in 1..=4 {
        let run = |rr: bool| {
            let store = format!(r#"read_repair: {rr}, anti_entropy_interval: "2s""#);
            let r = run_text(&split_pair("6s", &store, clients, seed));
            let v = &r.variants[0];
            assert_eq!(conv(v, "heals_converged"), 1.0, "seed {seed} rr {rr}");
            conv(v, "heal1_converge_s")
        };
        let (a, b) = (run(true), run(false));
        assert!(a < 0.6, "seed {seed}: with read repair {a}");
        with += a;
        without += b;
    }
    assert!(
        with * 2.0 < without,
        "with {with} vs without {without} (sums of 4)"
    );
}
