//! Priority classes against queueing theory: an M/M/1 with two classes under non-preemptive
//! priority (Cobham's formula per class) and preemptive-resume priority (the high class sees an
//! M/M/1 with its own load alone), and shedding the lowest class first under overload.

/// Mean time in system (ms) of each class over `seeds` independent runs of an M/M/1
/// (service 1 ms, μ = 1000/s) fed by two Poisson classes of `rate` each, under `scheduling`.
fn two_class_mm1(scheduling: &str, rate: f64, seeds: u64) -> [Vec<f64>; 2] {
    let mut out = [Vec::new(), Vec::new()];
    for seed in 1..=seeds {
        let src = format!(
            r#"Scenario(name: "two classes", seed: {seed}, duration: "60s", warmup: "2s",
            classes: ["high", "low"],
            nodes: {{
                "users": Client(target: "app", arrival: Poisson(rate: {total}), timeout: "10s",
                                classes: {{"high": 1.0, "low": 1.0}}),
                "app": Server(workers: 1, scheduling: {scheduling},
                              service_time: Exponential(mean: "1ms")),
            }})"#,
            total = 2.0 * rate
        );
        let r = super::run_text(&src);
        let v = &r.variants[0];
        assert_eq!(v.availability, 1.0, "nothing fails in {scheduling}");
        for (c, class) in v.classes.iter().enumerate() {
            out[c].push(class.latency_ms.mean);
        }
    }
    out
}

/// Mean and standard error of independent replications.
fn mean_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// Replications `xs` (ms or fractions) agree with `want` within 4 standard errors.
fn assert_within_4_sigma(what: &str, xs: &[f64], want: f64) {
    let (got, se) = mean_se(xs);
    eprintln!("{what}: {got:.4} (standard error {se:.4}) vs theory {want:.4}");
    assert!(
        (got - want).abs() < 4.0 * se,
        "{what}: {got:.4} ± {se:.4} (standard error), theory {want:.4}"
    );
}

#[test]
fn non_preemptive_priority_matches_cobham_per_class() {
    // λ1 = λ2 = 300/s, μ = 1000/s: σ1 = 0.3, σ = 0.6. Cobham: W_k = W0 / ((1-σ_{k-1})(1-σ_k))
    // with W0 = Σ λ_i E[S_i²]/2 = ρ/μ for exponential service; time in system = W_k + 1/μ.
    let (mu, s1, s) = (1000.0, 0.3, 0.6);
    let w0 = s / mu;
    let want_high = (w0 / (1.0 - s1) + 1.0 / mu) * 1e3;
    let want_low = (w0 / ((1.0 - s1) * (1.0 - s)) + 1.0 / mu) * 1e3;
    let [high, low] = two_class_mm1("Priority", 300.0, 8);
    assert_within_4_sigma("non-preemptive high", &high, want_high);
    assert_within_4_sigma("non-preemptive low", &low, want_low);
}

#[test]
fn preemptive_resume_gives_the_high_class_an_mm1_of_its_own() {
    // High class: M/M/1 at λ1 alone, T1 = 1/(μ - λ1). Low class: T2 = (1/μ)/(1-σ1) +
    // (ρ/μ)/((1-σ1)(1-σ)) (preemptive-resume, exponential service).
    let (mu, l1, s1, s) = (1000.0, 300.0, 0.3, 0.6);
    let want_high = 1e3 / (mu - l1);
    let want_low = (1.0 / mu / (1.0 - s1) + (s / mu) / ((1.0 - s1) * (1.0 - s))) * 1e3;
    let [high, low] = two_class_mm1("PreemptiveResume", 300.0, 8);
    assert_within_4_sigma("preemptive high", &high, want_high);
    assert_within_4_sigma("preemptive low", &low, want_low);
}

/// Availability of each class, and the total throughput, over `seeds` runs of one server
/// (μ = 1000/s, room for 50 waiting) at λ = 1500/s, 20% of it of the first class.
fn overloaded_mm1k(scheduling: &str, seeds: u64) -> ([Vec<f64>; 2], Vec<f64>) {
    let (mut avail, mut throughput) = ([Vec::new(), Vec::new()], Vec::new());
    for seed in 1..=seeds {
        let src = format!(
            r#"Scenario(name: "overload", seed: {seed}, duration: "20s", warmup: "1s",
            classes: ["premium", "standard"],
            nodes: {{
                "users": Client(target: "app", arrival: Poisson(rate: 1500.0), timeout: "10s",
                                classes: {{"premium": 0.2, "standard": 0.8}}),
                "app": Server(workers: 1, queue_limit: 50, scheduling: {scheduling},
                              service_time: Exponential(mean: "1ms")),
            }})"#
        );
        let r = super::run_text(&src);
        let v = &r.variants[0];
        for (c, class) in v.classes.iter().enumerate() {
            avail[c].push(class.availability);
        }
        throughput.push(v.throughput_rps);
    }
    (avail, throughput)
}

#[test]
fn under_overload_fifo_loses_as_mm1k_and_priority_sheds_the_lowest_class_first() {
    // FIFO: an M/M/1/K with K = 51 in the system at ρ = 1.5 blocks a fraction
    // (1-ρ)ρ^K / (1-ρ^(K+1)) of arrivals, of either class alike (Poisson arrivals see time
    // averages).
    let (rho, k) = (1.5f64, 51);
    let blocked = (1.0 - rho) * rho.powi(k) / (1.0 - rho.powi(k + 1));
    let ([premium, standard], _) = overloaded_mm1k("Fifo", 6);
    assert_within_4_sigma("fifo premium availability", &premium, 1.0 - blocked);
    assert_within_4_sigma("fifo standard availability", &standard, 1.0 - blocked);
    // Priority with push-out: the number in the system follows the same chain, so the server
    // is as busy (throughput μ but for the idle fraction ρ^-K), premium (30% of it) is almost
    // never turned away, and standard gets what is left: (μ - λ1) / λ2. (The backlog served
    // after the end counts as served; at most 51 of about 23,000 standard requests.)
    let ([premium, standard], _) = overloaded_mm1k("Priority", 6);
    let (p, _) = mean_se(&premium);
    assert!(p > 0.999, "premium availability {p} under priority");
    assert_within_4_sigma(
        "priority standard availability",
        &standard,
        (1000.0 - 300.0) / 1200.0,
    );
}

/// Per-class (ok, requests) of one run of a rate limiter in front of an ample server, fed
/// 1500 requests/s, 20% premium, for 20 s from time 0, with the limiter's options `gate`.
fn limited_classes(gate: &str) -> [(u64, u64); 2] {
    let src = format!(
        r#"Scenario(name: "class limits", seed: 3, duration: "20s", warmup: "0s",
        classes: ["premium", "standard"],
        nodes: {{
            "users": Client(target: "gate", arrival: Poisson(rate: 1500.0), timeout: "10s",
                            classes: {{"premium": 0.2, "standard": 0.8}}),
            "gate": RateLimiter(target: "app", {gate}),
            "app": Server(workers: 64, service_time: Exponential(mean: "1ms")),
        }})"#
    );
    let r = super::run_text(&src);
    let v = &r.variants[0];
    assert_eq!(v.classes.len(), 2);
    [0, 1].map(|c| (v.classes[c].ok, v.classes[c].requests))
}

#[test]
fn a_class_reserve_sheds_the_lowest_class_first_at_a_rate_limiter() {
    // A token bucket of 1000/s and 100 tokens admits burst + rate × T - (tokens left) over T.
    // Without a reserve every arrival meets the same bucket (Poisson arrivals see time
    // averages): both classes keep the same fraction, and the bucket ends near empty.
    let bucket = "algorithm: TokenBucket(rate: 1000.0, burst: 100)";
    let [(p_ok, p_n), (s_ok, s_n)] = limited_classes(bucket);
    let admitted = (p_ok + s_ok) as f64;
    assert!(
        (admitted - 20_100.0).abs() <= 1.0,
        "admitted {admitted} of 20100"
    );
    let (pa, sa) = (p_ok as f64 / p_n as f64, s_ok as f64 / s_n as f64);
    let se = (pa * (1.0 - pa) / p_n as f64 + sa * (1.0 - sa) / s_n as f64).sqrt();
    assert!(
        (pa - sa).abs() < 4.0 * se,
        "premium {pa} vs standard {sa} ± {se}"
    );
    // Keeping 50 tokens from standard: premium (300/s, below the refill rate) never finds the
    // bucket under one token, and standard gets the rest; the bucket ends near the reserve.
    let [(p_ok, p_n), (s_ok, _)] =
        limited_classes(&format!("{bucket}, class_reserve: {{\"standard\": 50}}"));
    assert_eq!(p_ok, p_n, "every premium request is admitted");
    let admitted = (p_ok + s_ok) as f64;
    assert!(
        (admitted - 20_050.0).abs() <= 10.0,
        "admitted {admitted}, about 20100 less the 50 kept"
    );
}

#[test]
fn a_class_limit_caps_its_class_alone() {
    // A class's own token bucket of 400/s and 10 tokens admits at most 10 + 400 × 20 of
    // standard's ~24000 requests, and almost exactly that under overload; premium, under no
    // limit of its own and a generous shared one, loses nothing.
    let gate = "algorithm: TokenBucket(rate: 100000.0, burst: 1000), \
                class_limits: {\"standard\": TokenBucket(rate: 400.0, burst: 10)}";
    let [(p_ok, p_n), (s_ok, _)] = limited_classes(gate);
    assert_eq!(p_ok, p_n);
    assert!(
        (8_008..=8_010).contains(&s_ok),
        "standard admitted {s_ok} of 8010"
    );
}

#[test]
fn every_metric_of_the_classes_adds_up_to_the_variant() {
    // priority-overload at another seed, every variant: the classes' requests, successes,
    // failures by cause and windows sum to the variant's, and the variant's latency CDF is
    // the mixture of the classes' (at each latency, between the lowest and highest class
    // fraction, up to the CDF's 3-significant-digit resolution).
    let r = super::run_file_with_seed("priority-overload", 13);
    for v in &r.variants {
        assert_eq!(v.classes.len(), 2, "{}", v.name);
        let sum = |f: &dyn Fn(&archsim::results::ClassResult) -> u64| {
            v.classes.iter().map(f).sum::<u64>()
        };
        assert_eq!(sum(&|c| c.requests), v.requests, "{}", v.name);
        assert_eq!(sum(&|c| c.ok), v.ok, "{}", v.name);
        for (cause, n) in &v.errors {
            let by_class = sum(&|c| c.errors.get(cause).copied().unwrap_or(0));
            assert_eq!(by_class, *n, "{}: {cause}", v.name);
        }
        for (i, w) in v.windows.iter().enumerate() {
            assert_eq!(sum(&|c| c.windows[i].ok), w.ok, "{} window {i}", v.name);
            assert_eq!(
                sum(&|c| c.windows[i].errors),
                w.errors,
                "{} window {i}",
                v.name
            );
        }
        let fraction_at = |cdf: &[[f64; 2]], ms: f64| {
            cdf.iter()
                .take_while(|p| p[0] <= ms * (1.0 + 1e-9))
                .last()
                .map_or(0.0, |p| p[1])
        };
        for p in &v.latency_cdf {
            let at: Vec<f64> = v
                .classes
                .iter()
                .map(|c| fraction_at(&c.latency_cdf, p[0] * 1.001))
                .collect();
            let below: Vec<f64> = v
                .classes
                .iter()
                .map(|c| fraction_at(&c.latency_cdf, p[0] * 0.999))
                .collect();
            let hi = at.iter().copied().fold(0.0, f64::max);
            let lo = below.iter().copied().fold(1.0, f64::min);
            assert!(
                p[1] <= hi + 0.01 && p[1] >= lo - 0.01,
                "{}: overall {p:?} outside the classes' [{lo}, {hi}]",
                v.name
            );
        }
    }
}
