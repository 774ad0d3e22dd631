//! The end-to-end benchmark model (scenarios/bench-p2c.ron, benches/simpy/model.py) as a bare,
//! hand-written event loop: the floor for the cost per request of this model on this machine,
//! which `benches/simpy/compare.sh` puts next to archsim's and SimPy's.
//! Usage: `p2c_baseline [REQUESTS]` (default 1,000,000).
//!
//! ```text
//!   users --hop--> lb --hop--> server[s] (FIFO, 1 worker, Exp(1 ms))
//!   users <--hop-- lb <--hop--/
//! ```
//!
//! Poisson arrivals at 5600/s; every hop is log-normal (median 200 us, p99 1 ms); the load
//! balancer picks two distinct servers at random and sends to the one with fewer requests
//! outstanding (ties to the first), and counts the request outstanding until its response
//! passes back through it.
//!
//! It knows nothing but this model: one `BinaryHeap` of (time in ns, sequence, step, request),
//! one ChaCha8 stream, `rand_distr`'s ziggurat samplers, requests in a reused slab, and no
//! allocation per event once the slab, heap and queues have grown to the run's peak. Latencies
//! go into an `hdrhistogram`, as a simulator that reports percentiles must keep them somewhere.
//! Whatever archsim (or SimPy) costs above this loop is the price of being general: nodes,
//! messages, a network, faults, metrics and a report.

use hdrhistogram::Histogram;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

const SERVERS: u32 = 8;
const ARRIVAL_RATE_PER_S: f64 = 5600.0;
const SERVICE_MEAN_NS: f64 = 1e6;
const HOP_MEDIAN_NS: f64 = 200e3;
const HOP_P99_NS: f64 = 1e6;
/// The 99th percentile of the standard normal distribution.
const Z_99: f64 = 2.326_347_874_040_841;
/// The scenario's seed.
const SEED: u64 = 1;
/// Largest latency the histogram resolves (one hour, as archsim's); longer ones saturate.
const HIGHEST_NS: u64 = 3_600_000_000_000;

/// What happens to a request at an event: the path of one request, in order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    /// The users issue it (and schedule the next arrival).
    Issued,
    /// It reaches the load balancer, which picks its server.
    AtLb,
    /// It reaches its server: served now or queued.
    AtServer,
    /// Its service ends; the server takes the next queued request.
    Served,
    /// Its response passes the load balancer: no longer outstanding.
    BackAtLb,
    /// Its response reaches the users: latency recorded, slot freed.
    BackAtUsers,
}

/// One request in flight.
#[derive(Clone, Copy)]
struct Request {
    issued_ns: u64,
    server: u32,
}

/// The whole model's state.
struct Model {
    rng: ChaCha8Rng,
    interarrival: Exp<f64>,
    hop: LogNormal<f64>,
    service: Exp<f64>,
    /// Min-heap of (time in ns, sequence, step, request slot); the sequence breaks ties in
    /// scheduling order.
    events: BinaryHeap<Reverse<(u64, u64, Step, u32)>>,
    seq: u64,
    requests: Vec<Request>,
    free: Vec<u32>,
    outstanding: [u32; SERVERS as usize],
    busy: [bool; SERVERS as usize],
    queues: Vec<VecDeque<u32>>,
    to_issue: u64,
    latency_ns: Histogram<u64>,
}

impl Model {
    fn new(requests: u64) -> Model {
        let mu = HOP_MEDIAN_NS.ln();
        let sigma = (HOP_P99_NS.ln() - mu) / Z_99;
        Model {
            rng: ChaCha8Rng::seed_from_u64(SEED),
            interarrival: Exp::new(ARRIVAL_RATE_PER_S / 1e9).expect("a positive rate"),
            hop: LogNormal::new(mu, sigma).expect("a positive sigma"),
            service: Exp::new(1.0 / SERVICE_MEAN_NS).expect("a positive rate"),
            events: BinaryHeap::with_capacity(1024),
            seq: 0,
            requests: Vec::with_capacity(1024),
            free: Vec::with_capacity(1024),
            outstanding: [0; SERVERS as usize],
            busy: [false; SERVERS as usize],
            queues: (0..SERVERS).map(|_| VecDeque::with_capacity(64)).collect(),
            to_issue: requests,
            latency_ns: Histogram::new_with_bounds(1, HIGHEST_NS, 3).expect("valid bounds"),
        }
    }

    fn schedule(&mut self, at_ns: u64, step: Step, slot: u32) {
        self.events.push(Reverse((at_ns, self.seq, step, slot)));
        self.seq += 1;
    }

    /// A draw of `dist` (in nanoseconds), rounded to the nanosecond. The draws are never
    /// negative, so adding a half and truncating rounds them without `f64::round`'s call.
    fn draw(&mut self, dist: impl Distribution<f64>) -> u64 {
        (dist.sample(&mut self.rng) + 0.5) as u64
    }

    fn hop(&mut self, now_ns: u64, step: Step, slot: u32) {
        let delay = self.draw(self.hop);
        self.schedule(now_ns + delay, step, slot);
    }

    fn serve(&mut self, now_ns: u64, slot: u32) {
        let delay = self.draw(self.service);
        self.schedule(now_ns + delay, Step::Served, slot);
    }

    /// Power of two choices: two distinct servers at random, the one with fewer outstanding.
    fn pick_server(&mut self) -> u32 {
        let a = self.rng.random_range(0..SERVERS);
        let b = (a + 1 + self.rng.random_range(0..SERVERS - 1)) % SERVERS;
        if self.outstanding[b as usize] < self.outstanding[a as usize] {
            b
        } else {
            a
        }
    }

    fn issue(&mut self, now_ns: u64) {
        let request = Request {
            issued_ns: now_ns,
            server: 0,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.requests[slot as usize] = request;
                slot
            }
            None => {
                self.requests.push(request);
                (self.requests.len() - 1) as u32
            }
        };
        self.hop(now_ns, Step::AtLb, slot);
        self.to_issue -= 1;
        if self.to_issue > 0 {
            let gap = self.draw(self.interarrival);
            self.schedule(now_ns + gap, Step::Issued, 0);
        }
    }

    fn step(&mut self, now_ns: u64, step: Step, slot: u32) {
        match step {
            Step::Issued => self.issue(now_ns),
            Step::AtLb => {
                let server = self.pick_server();
                self.outstanding[server as usize] += 1;
                self.requests[slot as usize].server = server;
                self.hop(now_ns, Step::AtServer, slot);
            }
            Step::AtServer => {
                let s = self.requests[slot as usize].server as usize;
                if self.busy[s] {
                    self.queues[s].push_back(slot);
                } else {
                    self.busy[s] = true;
                    self.serve(now_ns, slot);
                }
            }
            Step::Served => {
                let s = self.requests[slot as usize].server as usize;
                self.hop(now_ns, Step::BackAtLb, slot);
                match self.queues[s].pop_front() {
                    Some(next) => self.serve(now_ns, next),
                    None => self.busy[s] = false,
                }
            }
            Step::BackAtLb => {
                self.outstanding[self.requests[slot as usize].server as usize] -= 1;
                self.hop(now_ns, Step::BackAtUsers, slot);
            }
            Step::BackAtUsers => {
                let latency = now_ns - self.requests[slot as usize].issued_ns;
                self.latency_ns.saturating_record(latency);
                self.free.push(slot);
            }
        }
    }

    /// Run until every request has come back.
    fn run(&mut self) {
        if self.to_issue > 0 {
            self.schedule(0, Step::Issued, 0);
        }
        let mut now_ns = 0;
        while let Some(Reverse((at_ns, _, step, slot))) = self.events.pop() {
            debug_assert!(at_ns >= now_ns, "time went back (seed {SEED})");
            now_ns = at_ns;
            self.step(now_ns, step, slot);
        }
    }
}

/// Wall-clock seconds taken by `f`: timing is what this tool is for, and it is outside the
/// simulation.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
fn timed(f: impl FnOnce()) -> f64 {
    let start = std::time::Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

fn main() {
    let requests = std::env::args()
        .nth(1)
        .map_or(1_000_000, |s| s.parse::<u64>().expect("REQUESTS, a number"));
    let mut model = Model::new(requests);
    let secs = timed(|| model.run());
    let done = model.latency_ns.len();
    assert_eq!(
        (done, model.free.len()),
        (requests, model.requests.len()),
        "every request ends exactly once (seed {SEED})"
    );
    println!(
        "baseline: {done} requests, mean latency {:.3} ms, {secs:.2} s, {:.0} ns/request",
        model.latency_ns.mean() / 1e6,
        secs * 1e9 / requests.max(1) as f64
    );
}
