//! Shared pieces of the benchmarks: the PHOLD model on the archsim kernel, and scenario text.
//!
//! PHOLD (Fujimoto's classic kernel benchmark): every logical process, on receiving an event,
//! sends one event to a uniformly random process after `lookahead + Exp(mean)`; the number of
//! pending events stays at its initial population, so the run measures the event loop, the
//! queue and the dispatch alone.

use archsim::components::message::{Builtin, Ctx, Message, UserMsg};
use archsim::contract::metrics::{NodeStats, RequestMetrics};
use archsim::sim::network::{LinkModel, Network};
use archsim::sim::rng::{RandomSource, SimRng};
use archsim::sim::time::{SimDuration, SimTime};
use archsim::sim::{Limits, Node, NodeId, Slot, TimerId, World};
use std::collections::BTreeMap;

/// One PHOLD logical process.
pub struct Phold {
    n: u64,
    initial: u32,
    lookahead_ns: f64,
    mean_ns: f64,
    received: u64,
}

impl Phold {
    fn delay(&self, rng: &mut SimRng) -> SimDuration {
        SimDuration::from_nanos_f64(
            self.lookahead_ns - self.mean_ns * libm::log(rng.uniform_open0()),
        )
    }

    fn fire(&self, ctx: &mut Ctx<'_>) {
        let to = NodeId(ctx.rng().below(self.n) as u32);
        let delay = self.delay(ctx.rng());
        ctx.send_after(delay, to, Message::User(UserMsg(Box::new(()))));
    }
}

impl Node<Builtin> for Phold {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        for _ in 0..self.initial {
            self.fire(ctx);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, _from: NodeId, _msg: Message) {
        self.received += 1;
        self.fire(ctx);
    }

    fn on_timer(&mut self, _ctx: &mut Ctx<'_>, _timer: TimerId, _tag: u64) {}

    fn on_crash(&mut self, _now: SimTime) {}

    fn finish(&mut self, _now: SimTime) -> Option<NodeStats> {
        None
    }
}

/// A PHOLD world: `lps` processes with `pending` events in flight in total, delays
/// 0.1 + Exp(1) in units of one microsecond.
pub fn phold_world(lps: usize, pending: usize, seed: u64) -> World<Builtin, Phold> {
    let nodes = (0..lps)
        .map(|i| {
            let initial = (pending / lps + usize::from(i < pending % lps)) as u32;
            let name = format!("lp-{i}");
            let node = Phold {
                n: lps as u64,
                initial,
                lookahead_ns: 100.0,
                mean_ns: 1_000.0,
                received: 0,
            };
            Slot {
                rng: SimRng::derive(seed, &name),
                name,
                node,
            }
        })
        .collect();
    let link = LinkModel {
        latency: archsim::sim::dist::Dist::Constant(SimDuration::ZERO),
        loss: 0.0,
    };
    let network = Network::new(link, BTreeMap::new(), SimRng::derive(seed, "!network"));
    World::new(
        nodes,
        network,
        Vec::new(),
        Limits::default(),
        RequestMetrics::new(SimTime::ZERO, SimDuration::from_secs(1)),
    )
}

/// Client → LB (P2C) → 8 servers at 70% load, issuing exactly `requests` requests.
pub fn end_to_end_scenario(requests: u64) -> String {
    format!(
        r#"Scenario(
    name: "end-to-end benchmark",
    seed: 1,
    duration: "100000s",
    network: (latency: LogNormal(median: "200us", p99: "1ms")),
    nodes: {{
        "users": Client(target: "lb", arrival: Poisson(rate: 5600.0), timeout: "1s",
                        max_requests: {requests}),
        "lb":    LoadBalancer(strategy: PowerOfTwoChoices, backends: ["app"]),
        "app":   Server(replicas: 8, workers: 1, queue_limit: 1000,
                        service_time: Exponential(mean: "1ms")),
    }},
)"#
    )
}

/// The hand-written baseline the kernel is measured against: PHOLD as a bare loop over
/// `std::collections::BinaryHeap` of (time, sequence, process) with one ChaCha8 stream per
/// process, the same draws as [`Phold`] (target uniform, delay `lookahead + Exp(mean)` through
/// `libm`, rounded to the nanosecond). No nodes, no network, no metrics: the floor a
/// general-purpose kernel is compared with. Returns the number of events processed.
pub fn baseline_phold(lps: usize, pending: usize, seed: u64, end: SimTime) -> u64 {
    use archsim::sim::rng::stable_hash;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    let mut rngs: Vec<ChaCha8Rng> = (0..lps)
        .map(|i| {
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            r.set_stream(stable_hash(format!("lp-{i}").as_bytes()));
            r
        })
        .collect();
    let n = lps as u64;
    let draw = |r: &mut ChaCha8Rng| {
        let to = ((r.next_u64() as u128 * n as u128) >> 64) as u32;
        let u = 1.0 - (r.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        (to, libm::round(100.0 - 1_000.0 * libm::log(u)) as u64)
    };
    let mut heap = BinaryHeap::with_capacity(pending);
    let mut seq = 0u64;
    for i in 0..pending {
        let (to, delay) = draw(&mut rngs[i % lps]);
        heap.push(Reverse((delay, seq, to)));
        seq += 1;
    }
    let mut events = 0;
    while let Some(Reverse((t, _, lp))) = heap.pop() {
        if t > end.0 {
            break;
        }
        events += 1;
        let (to, delay) = draw(&mut rngs[lp as usize]);
        heap.push(Reverse((t + delay, seq, to)));
        seq += 1;
    }
    events
}
