//! Shared pieces of the benchmarks: the PHOLD model on the archsim kernel, on the `simcore`
//! crate and as a hand-written loop, and scenario text.
//!
//! PHOLD (Fujimoto's classic kernel benchmark): every logical process, on receiving an event,
//! sends one event to a uniformly random process after `lookahead + Exp(mean)`; the number of
//! pending events stays at its initial population, so the run measures the event loop, the
//! queue and the dispatch alone. The three implementations make the same draws from the same
//! streams ([`phold_draw`]) and order events by (time, scheduling order), so they process the
//! same events in the same order: a test checks that they agree, event for event.

use archsim::sim::dist::standard_exponential;
use archsim::sim::network::{LinkModel, Network};
use archsim::sim::rng::{RandomSource, SimRng};
use archsim::sim::time::{SimDuration, SimTime};
use archsim::sim::{Ctx, Limits, Node, NodeId, Slot, TimerId, Vocabulary, World};
use std::collections::BTreeMap;

pub mod simcore_phold;

/// PHOLD's fixed part of a delay, nanoseconds.
const LOOKAHEAD_NS: f64 = 100.0;
/// PHOLD's mean exponential part of a delay, nanoseconds.
const MEAN_NS: f64 = 1_000.0;

/// The draws of one PHOLD send from the sending process's stream: the receiver, uniform over
/// `n` processes, then the delay `lookahead + Exp(mean)` rounded to the nanosecond, the
/// exponential by the kernel's own sampler (the ziggurat of `sim::dist`).
#[inline]
pub fn phold_draw(rng: &mut SimRng, n: u64) -> (u32, SimDuration) {
    let to = rng.below(n) as u32;
    let delay = SimDuration::from_nanos_f64(LOOKAHEAD_NS + MEAN_NS * standard_exponential(rng));
    (to, delay)
}

/// The stream of process `i`, the same in every implementation.
pub fn phold_rng(seed: u64, i: usize) -> SimRng {
    SimRng::derive(seed, &format!("lp-{i}"))
}

/// How many events process `i` of `lps` starts with, for `pending` in all.
pub fn phold_initial(lps: usize, pending: usize, i: usize) -> usize {
    pending / lps + usize::from(i < pending % lps)
}

/// PHOLD's vocabulary: a message carries nothing (what PHOLD needs), so it travels inside its
/// queue entry with no box, and nothing is recorded run-wide; a process reports how many events it received. The kernel is generic over its
/// vocabulary, so this is the kernel as any model that defines its own messages gets it; the
/// built-in components' vocabulary carries requests and responses (see `components::message`).
pub struct Pholds;

impl Vocabulary for Pholds {
    type Msg = ();
    type Inline = ();
    type Sink = ();
    /// How many events a process received.
    type Stats = u64;

    #[inline]
    fn to_inline(msg: ()) -> Result<(), ()> {
        Ok(msg)
    }

    #[inline]
    fn from_inline(inline: ()) {
        inline
    }
}

/// One PHOLD logical process.
pub struct Phold {
    n: u64,
    initial: usize,
    received: u64,
}

impl Phold {
    #[inline]
    fn fire(&self, ctx: &mut Ctx<'_, Pholds>) {
        let (to, delay) = phold_draw(ctx.rng(), self.n);
        ctx.send_after(delay, NodeId(to), ());
    }
}

impl Node<Pholds> for Phold {
    fn on_start(&mut self, ctx: &mut Ctx<'_, Pholds>) {
        for _ in 0..self.initial {
            self.fire(ctx);
        }
    }

    #[inline]
    fn on_message(&mut self, ctx: &mut Ctx<'_, Pholds>, _from: NodeId, _msg: ()) {
        self.received += 1;
        self.fire(ctx);
    }

    fn on_timer(&mut self, _ctx: &mut Ctx<'_, Pholds>, _timer: TimerId, _tag: u64) {}

    fn on_crash(&mut self, _now: SimTime) {}

    fn finish(&mut self, _now: SimTime) -> Option<u64> {
        Some(self.received)
    }
}

/// A PHOLD world: `lps` processes with `pending` events in flight in total, delays
/// 0.1 + Exp(1) in units of one microsecond, on a network without latency.
pub fn phold_world(lps: usize, pending: usize, seed: u64) -> World<Pholds, Phold> {
    let nodes = (0..lps)
        .map(|i| Slot {
            rng: phold_rng(seed, i),
            name: format!("lp-{i}"),
            node: Phold {
                n: lps as u64,
                initial: phold_initial(lps, pending, i),
                received: 0,
            },
        })
        .collect();
    let link = LinkModel {
        latency: archsim::sim::dist::Dist::Constant(SimDuration::ZERO),
        loss: 0.0,
    };
    let network = Network::new(link, BTreeMap::new(), SimRng::derive(seed, "!network"));
    World::new(nodes, network, Vec::new(), Limits::default(), ())
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

/// The hand-written floor the kernel is measured against: PHOLD as a bare loop over
/// `std::collections::BinaryHeap` of packed keys, one `u128` per event (time in the high 64
/// bits, then the scheduling sequence and the receiver: one integer comparison orders two
/// events, and time has the kernel's full 64-bit range), with the same streams and draws as
/// [`Phold`] ([`phold_draw`]). No nodes, no network, no bounds, no metrics. Returns the number
/// of events processed and, per process, how many it received.
pub fn baseline_phold(lps: usize, pending: usize, seed: u64, end: SimTime) -> (u64, Vec<u64>) {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    /// Bits of the key's low half that hold the receiver; the sequence number takes the rest.
    const LP_BITS: u32 = 24;
    assert!(lps <= 1 << LP_BITS, "at most 2^24 processes");
    let mut rngs: Vec<SimRng> = (0..lps).map(|i| phold_rng(seed, i)).collect();
    let n = lps as u64;
    let key = |t: u64, seq: u64, to: u32| {
        Reverse(u128::from(t) << 64 | u128::from(seq << LP_BITS | u64::from(to)))
    };
    let mut heap = BinaryHeap::with_capacity(pending);
    let mut seq = 0u64;
    for (i, rng) in rngs.iter_mut().enumerate() {
        for _ in 0..phold_initial(lps, pending, i) {
            let (to, delay) = phold_draw(rng, n);
            heap.push(key(delay.0, seq, to));
            seq += 1;
        }
    }
    let mut received = vec![0u64; lps];
    let mut events = 0;
    while let Some(Reverse(k)) = heap.pop() {
        let t = (k >> 64) as u64;
        if t > end.0 {
            break;
        }
        let lp = (k as u64 & ((1 << LP_BITS) - 1)) as usize;
        events += 1;
        received[lp] += 1;
        let (to, delay) = phold_draw(&mut rngs[lp], n);
        heap.push(key(t + delay.0, seq, to));
        seq += 1;
    }
    assert!(seq < 1 << (64 - LP_BITS), "fewer than 2^40 events");
    (events, received)
}

/// Run PHOLD on the kernel until `end`: the number of events processed and, per process, how
/// many it received (the same shape as [`baseline_phold`] and [`simcore_phold::simcore_phold`]).
pub fn kernel_phold(lps: usize, pending: usize, seed: u64, end: SimTime) -> (u64, Vec<u64>) {
    let outcome = phold_world(lps, pending, seed)
        .run(end)
        .expect("PHOLD stays within the default limits");
    let received = outcome.node_stats.into_iter().map(|(_, n)| n).collect();
    (outcome.events, received)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel, simcore and the hand-written loop run the same model: the same number of
    /// events, and every process received the same number (a different order of ties or a
    /// different draw would move events between processes within a few steps).
    #[test]
    fn three_implementations_process_the_same_events() {
        for (lps, pending, end_ns) in [
            (10, 100, 1_000_000),
            (1000, 1000, 100_000),
            (50, 5000, 20_000),
        ] {
            let end = SimTime(end_ns);
            let kernel = kernel_phold(lps, pending, 7, end);
            assert!(kernel.0 > 50_000, "{} events", kernel.0);
            assert_eq!(
                baseline_phold(lps, pending, 7, end),
                kernel,
                "baseline, {lps} LPs"
            );
            let simcore = simcore_phold::simcore_phold(lps, pending, 7, end);
            assert_eq!(simcore, kernel, "simcore, {lps} LPs");
        }
    }
}
