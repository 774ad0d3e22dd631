//! Connections: keep-alive pools per destination, the round trips and CPU a new connection's
//! TCP and TLS handshakes cost, and session resumption.
//!
//! ```text
//!  call to D ─▶ pool of D: a connection with a free stream? ─yes─▶ send (when it is ready)
//!                  │ no                                       (no handshake: 1 RTT + service)
//!                  ▼
//!             fewer than max_connections? ─no─▶ the call fails: rejected (pool overflow)
//!                  │ yes
//!                  ▼
//!             open one: k round trips (TCP 1, TLS 1.3 +1, TLS 1.2 +2, resumed 1.2 +1,
//!             1.3 0-RTT +0) + the caller's handshake CPU, then send; the request carries
//!             the handshake, and the callee pays its side before serving it
//! ```
//! A connection belongs to one incarnation of its destination: after the destination
//! restarts, every connection to it (and its session ticket) is gone, so the next calls
//! handshake again, all at once: a reconnect storm. A caller's own crash drops its pools.
//! A connection idle for `idle_timeout` is closed. State is per (caller, destination), at most
//! `max_connections` entries, never per request.

use crate::components::message::Ctx;
use crate::components::traffic::calls::CallTable;
use crate::contract::call::{CallId, Cause, Handshake, Request};
use crate::contract::metrics::{Series, SeriesKind};
use crate::contract::validate::{Path, Validator};
use crate::results::SeriesResult;
use crate::sim::NodeId;
use crate::sim::time::{SimDuration, SimTime};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The transport a connection runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Protocol {
    /// Plain TCP: one round trip (SYN, SYN-ACK) before the first request.
    Tcp,
    /// TLS 1.2 over TCP: two more round trips (one when resumed).
    Tls12,
    /// TLS 1.3 over TCP: one more round trip (none with 0-RTT resumption).
    #[default]
    Tls13,
}

/// Whether a caller that has talked TLS to a destination before resumes its session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Resumption {
    /// Every connection does a full handshake.
    #[default]
    None,
    /// Resume from a session ticket: TLS 1.2's abbreviated handshake saves a round trip,
    /// TLS 1.3's PSK handshake saves the certificate work but no round trip.
    Ticket,
    /// TLS 1.3 0-RTT early data: the request rides on the first flight, saving the TLS round
    /// trip (replayable: meant for idempotent requests). TLS 1.3 only.
    ZeroRtt,
}

/// CPU time one end of a TLS handshake spends (durations).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandshakeCpu {
    /// A full handshake (duration): key exchange, plus signing (server) or verifying the
    /// certificate chain (client).
    pub full: SimDuration,
    /// A resumed handshake (duration): key exchange only, no certificate work.
    pub resumed: SimDuration,
    /// Added when the caller presents a certificate (mTLS; duration): the caller signs, the
    /// callee verifies the chain. Full handshakes only (a resumed session is already
    /// authenticated).
    pub mutual: SimDuration,
}

/// What the defaults rest on, per operation on one core (`openssl speed rsa2048 ecdsap256
/// ecdhx25519`, OpenSSL 3.0.19 on an AMD EPYC core, measured for archsim in December 2026):
/// RSA-2048 sign 0.26 ms (3,825/s), verify 15 us (68,000/s); ECDSA P-256 sign 20 us
/// (51,000/s), verify 51 us (19,600/s); X25519 29 us per operation (34,700/s). Published
/// figures for older or busier cores put RSA-2048 signing near 1,500/s (0.67 ms) against
/// 30,000+/s for ECDSA P-256 (<https://cdncertified.com/glossary/ecdsa>; Cloudflare's
/// "ECDSA: the digital signature algorithm of a better internet", 2014). A whole handshake
/// costs more than its public-key operations (transcript hashing, certificate parsing,
/// buffers), so the defaults are round figures at the slow end of those numbers.
impl HandshakeCpu {
    /// A server's side with an RSA-2048 certificate and X25519: 1 ms for a full handshake (an
    /// RSA-2048 signature, 0.26-0.67 ms, two X25519 operations, 0.06 ms, and the rest of the
    /// handshake), 0.1 ms for a resumed session (key exchange only), 0.2 ms to verify a
    /// client's chain under mTLS (two RSA-2048 verifications, 30 us, and parsing). With an
    /// ECDSA P-256 certificate a full handshake is nearer 0.15 ms (a 20 us signature).
    pub fn server() -> HandshakeCpu {
        HandshakeCpu {
            full: SimDuration::from_millis(1),
            resumed: SimDuration(100_000),
            mutual: SimDuration(200_000),
        }
    }

    /// A caller's side: 0.2 ms to verify the server's RSA-2048 chain (two verifications, 30
    /// us) and do its key exchange (two X25519 operations, 0.06 ms), 0.1 ms resumed, 1 ms to
    /// sign with its own RSA-2048 key under mTLS (0.26-0.67 ms a signature, at the slow end
    /// as for the server; 20 us with an ECDSA P-256 key).
    pub fn client() -> HandshakeCpu {
        HandshakeCpu {
            full: SimDuration(200_000),
            resumed: SimDuration(100_000),
            mutual: SimDuration::from_millis(1),
        }
    }

    /// Whether these are the server-side defaults (left out of results.json then).
    pub fn is_server_default(&self) -> bool {
        *self == HandshakeCpu::server()
    }

    /// The CPU this end spends on handshake `h` (zero for none or plain TCP).
    pub fn cost(&self, h: Handshake) -> SimDuration {
        if !h.tls() {
            return SimDuration::ZERO;
        }
        if h.resumed() {
            return self.resumed;
        }
        let mutual = if h.mutual() {
            self.mutual
        } else {
            SimDuration::ZERO
        };
        SimDuration(self.full.0 + mutual.0)
    }
}

/// How a caller connects to what it calls:
/// `Some((protocol: Tls13, resumption: Ticket, mutual: true, max_connections: 100))`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// `Tcp`, `Tls12` or `Tls13`. Default `Tls13`.
    #[serde(default)]
    pub protocol: Protocol,
    /// `None`, `Ticket` or `ZeroRtt` (TLS 1.3 only). Default `None`.
    #[serde(default)]
    pub resumption: Resumption,
    /// Mutual TLS: the caller presents a certificate too (more CPU on both ends, no extra
    /// round trip). Default false.
    #[serde(default)]
    pub mutual: bool,
    /// Most connections open to one destination at once (count); a call that finds them all
    /// busy fails at once with `rejected`, as Envoy's pool overflow does. Default 1024.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Calls one connection carries at once (count): 1 for HTTP/1.1 keep-alive, 100 for an
    /// HTTP/2 or gRPC channel. Default 1.
    #[serde(default = "one")]
    pub max_streams: u32,
    /// A connection idle this long is closed; the next call opens a new one (duration).
    /// Default "60s".
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: SimDuration,
    /// The caller's CPU per handshake, which delays its first request on the connection.
    /// Default `(full: "200us", resumed: "100us", mutual: "1ms")`.
    #[serde(default = "HandshakeCpu::client")]
    pub cpu: HandshakeCpu,
    /// Each closed-loop user of a client keeps connections of its own (a device or a
    /// browser: `max_connections` is then per user), instead of all users sharing the
    /// client's pools (a service's connection pool). Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub per_user: bool,
}

fn default_max_connections() -> u32 {
    1024
}

fn one() -> u32 {
    1
}

fn default_idle_timeout() -> SimDuration {
    SimDuration::from_secs(60)
}

/// Most connections a caller may keep to one destination (what validation allows).
const MAX_CONNECTIONS: u32 = 100_000;

/// Tries of a handshake round trip whose packets are lost (Linux `tcp_syn_retries` is 6),
/// waiting an initial 1 s retransmission timeout, doubled each time.
const HANDSHAKE_TRIES: u32 = 6;

impl ConnectionConfig {
    /// Check counts, the idle timeout, and that 0-RTT is asked of TLS 1.3 only.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        if self.max_connections == 0 || self.max_connections > MAX_CONNECTIONS {
            v.error(
                &at.field("max_connections"),
                format!("{} connections", self.max_connections),
                "expected a count from 1 to 100000",
            );
        }
        if self.max_streams == 0 {
            v.error(
                &at.field("max_streams"),
                "a connection that carries no call",
                "expected a count >= 1",
            );
        }
        if self.idle_timeout == SimDuration::ZERO {
            v.error(
                &at.field("idle_timeout"),
                "a zero idle timeout closes every connection at once",
                "expected a positive duration",
            );
        }
        if self.resumption == Resumption::ZeroRtt && self.protocol != Protocol::Tls13 {
            v.error(
                &at.field("resumption"),
                format!("0-RTT with {:?}", self.protocol),
                "expected `ZeroRtt` only with `protocol: Tls13` (use `Ticket`)",
            );
        }
    }

    /// Round trips before the first request of a new connection: TCP's, then TLS's.
    pub fn setup_round_trips(&self, resumed: bool) -> u32 {
        let tls = match (self.protocol, resumed, self.resumption) {
            (Protocol::Tcp, _, _) => 0,
            (Protocol::Tls12, false, _) => 2,
            (Protocol::Tls12, true, _) => 1,
            (Protocol::Tls13, true, Resumption::ZeroRtt) => 0,
            (Protocol::Tls13, _, _) => 1,
        };
        1 + tls
    }
}

/// One open (or opening) connection.
#[derive(Clone, Copy, Debug)]
struct Conn {
    id: u32,
    /// When its handshakes end and calls may go out on it.
    ready_at: SimTime,
    /// Calls on it now.
    streams: u32,
    /// When it last became idle.
    idle_since: SimTime,
}

/// A caller's connections to one destination.
#[derive(Debug, Default)]
struct Pool {
    conns: Vec<Conn>,
    /// The destination's incarnation these connections (and the ticket) belong to.
    incarnation: u32,
    /// A session ticket from an earlier full TLS handshake.
    ticket: bool,
}

/// The connection a call goes out on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The connection, to give back with [`Pools::release`].
    pub conn: u32,
    /// How long until the call may be sent: the handshakes of a new connection, or the rest
    /// of them for a connection still opening; zero on a ready one.
    pub delay: SimDuration,
    /// What the callee must do for it: `Handshake::NONE` unless the call opened it.
    pub handshake: Handshake,
}

/// Why no connection could carry a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoConnection {
    /// Every connection is busy and the pool is at `max_connections`.
    Overflow,
    /// The handshake's packets were lost on every try.
    HandshakeFailed,
}

impl NoConnection {
    /// How the call fails: an overflowing pool rejects it, a failed handshake finds the
    /// destination unreachable.
    pub fn cause(self) -> Cause {
        match self {
            NoConnection::Overflow => Cause::Rejected,
            NoConnection::HandshakeFailed => Cause::Unreachable,
        }
    }
}

/// A caller's connection pools, one per destination.
pub struct Pools {
    cfg: ConnectionConfig,
    /// By (destination, user): the user is 0 unless `per_user`.
    pools: BTreeMap<(NodeId, u32), Pool>,
    next_id: u32,
    handshakes: u64,
    resumed: u64,
    reused: u64,
    overflows: u64,
    failed: u64,
    dropped_by_restart: u64,
    idle_closed: u64,
    open: u64,
    open_series: Series,
    handshake_series: Series,
}

impl Pools {
    /// Empty pools; `window` is the report's series window.
    pub fn new(cfg: &ConnectionConfig, window: SimDuration) -> Pools {
        Pools {
            cfg: cfg.clone(),
            pools: BTreeMap::new(),
            next_id: 0,
            handshakes: 0,
            resumed: 0,
            reused: 0,
            overflows: 0,
            failed: 0,
            dropped_by_restart: 0,
            idle_closed: 0,
            open: 0,
            open_series: Series::new(SeriesKind::Level, window),
            handshake_series: Series::new(SeriesKind::Rate, window),
        }
    }

    /// A connection to `to` for one call of `user` (ignored unless `per_user`): an existing
    /// one with a free stream, else a new one. `life` counts the destination's restarts the
    /// kernel does not see (a controlled pool's replica restarted by its controller: see
    /// `Pool::lives`), 0 otherwise.
    pub fn acquire(
        &mut self,
        ctx: &mut Ctx<'_>,
        to: NodeId,
        user: u32,
        life: u32,
    ) -> Result<Lease, NoConnection> {
        let key = (to, if self.cfg.per_user { user } else { 0 });
        let now = ctx.now();
        let incarnation = ctx.incarnation(to).wrapping_add(life);
        let known = self.pools.len();
        self.pools.entry(key).or_default();
        if self.pools.len() > known {
            // One pool per (destination, user): with `per_user`, as many as the users, so
            // they are charged to the run's memory budget. Twice the entry, for the map's nodes.
            let bytes = 2 * std::mem::size_of::<((NodeId, u32), Pool)>();
            let fix = "set fewer `users`, or `per_user: false` to share connections";
            ctx.charge_memory(bytes, "connection pools", self.pools.len(), fix);
        }
        let Some(pool) = self.pools.get_mut(&key) else {
            return Err(NoConnection::Overflow);
        };
        let mut closed = 0;
        if pool.incarnation != incarnation {
            // The destination restarted: its connections and session keys died with it.
            self.dropped_by_restart += pool.conns.len() as u64;
            closed += pool.conns.len();
            pool.conns.clear();
            pool.ticket = false;
            pool.incarnation = incarnation;
        }
        let idle = self.cfg.idle_timeout;
        let before = pool.conns.len();
        pool.conns
            .retain(|c| c.streams > 0 || c.idle_since.after(idle) > now);
        self.idle_closed += (before - pool.conns.len()) as u64;
        closed += before - pool.conns.len();
        let max_streams = self.cfg.max_streams;
        // A ready connection first, then one still opening (HTTP/2 calls wait for it).
        let free = pool
            .conns
            .iter_mut()
            .filter(|c| c.streams < max_streams)
            .min_by_key(|c| c.ready_at.max(now));
        let lease = if let Some(c) = free {
            c.streams += 1;
            self.reused += 1;
            Ok(Lease {
                conn: c.id,
                delay: c.ready_at.max(now).since(now),
                handshake: Handshake::NONE,
            })
        } else if pool.conns.len() >= self.cfg.max_connections as usize {
            self.overflows += 1;
            Err(NoConnection::Overflow)
        } else {
            self.open_new(ctx, key)
        };
        self.open -= closed as u64;
        self.open_series.set(now, self.open as f64);
        lease
    }

    /// Open a new connection to `to`: its handshakes' round trips and the caller's CPU.
    fn open_new(&mut self, ctx: &mut Ctx<'_>, key: (NodeId, u32)) -> Result<Lease, NoConnection> {
        let to = key.0;
        let tls = self.cfg.protocol != Protocol::Tcp;
        let pool = self.pools.get_mut(&key).expect("acquire made the pool");
        let resumed = tls && pool.ticket && self.cfg.resumption != Resumption::None;
        let mut delay = SimDuration::ZERO;
        for _ in 0..self.cfg.setup_round_trips(resumed) {
            let Some(rtt) = handshake_round_trip(ctx, to) else {
                self.failed += 1;
                return Err(NoConnection::HandshakeFailed);
            };
            delay = SimDuration(delay.0 + rtt.0);
        }
        let handshake = Handshake::opened(tls, resumed, self.cfg.mutual);
        delay = SimDuration(delay.0 + self.cfg.cpu.cost(handshake).0);
        let now = ctx.now();
        let pool = self.pools.get_mut(&key).expect("acquire made the pool");
        pool.ticket |= tls;
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let capacity = pool.conns.capacity();
        pool.conns.push(Conn {
            id,
            ready_at: now.after(delay),
            streams: 1,
            idle_since: now,
        });
        let grown = pool.conns.capacity() - capacity;
        if grown > 0 {
            let bytes = grown * std::mem::size_of::<Conn>();
            let fix = "lower `max_connections`";
            ctx.charge_memory(bytes, "connections", pool.conns.len(), fix);
        }
        self.handshakes += 1;
        self.resumed += u64::from(resumed);
        self.open += 1;
        self.handshake_series.add(now, 1.0);
        Ok(Lease {
            conn: id,
            delay,
            handshake,
        })
    }

    /// The call of `user` on connection `conn` to `to` ended (answered or timed out).
    pub fn release(&mut self, now: SimTime, to: NodeId, user: u32, conn: u32) {
        let key = (to, if self.cfg.per_user { user } else { 0 });
        let Some(c) = self
            .pools
            .get_mut(&key)
            .and_then(|p| p.conns.iter_mut().find(|c| c.id == conn))
        else {
            return; // closed meanwhile (the destination restarted)
        };
        c.streams = c.streams.saturating_sub(1);
        if c.streams == 0 {
            c.idle_since = now;
        }
    }

    /// The caller crashed: every connection and ticket is gone.
    pub fn crashed(&mut self, now: SimTime) {
        self.pools.clear();
        self.open = 0;
        self.open_series.set(now, 0.0);
    }

    /// Counters and series for the report.
    pub fn report(
        &mut self,
        now: SimTime,
        counters: &mut BTreeMap<String, f64>,
    ) -> [SeriesResult; 2] {
        for (name, n) in [
            ("connections_opened", self.handshakes),
            ("connections_resumed", self.resumed),
            ("connections_reused", self.reused),
            ("connection_pool_overflows", self.overflows),
            ("connection_handshakes_failed", self.failed),
            ("connections_dropped_by_restart", self.dropped_by_restart),
            ("connections_closed_idle", self.idle_closed),
        ] {
            counters.insert(name.to_string(), n as f64);
        }
        [
            self.open_series.finish(
                "connections_open",
                "Connections open (idle ones counted until reused or found expired)",
                "connections",
                now,
            ),
            self.handshake_series.finish(
                "handshakes",
                "New connections (handshakes) per second",
                "per s",
                now,
            ),
        ]
    }
}

/// The TLS side of a proxy that terminates its callers' connections (a load balancer): a
/// request that opened a TLS connection waits for a core to do the handshake, in order,
/// before the proxy handles it; a reconnect storm queues on these cores.
pub struct Terminator {
    cpu: HandshakeCpu,
    /// Per core, when it finishes the handshakes it has been given.
    free_at: Vec<SimTime>,
    /// Requests waiting for their handshake, with who sent them.
    parked: CallTable<(NodeId, Request)>,
    n_parked: u32,
    handshakes: u64,
    busy: SimDuration,
    waiting: Series,
}

impl Terminator {
    /// `cores` cores doing handshakes that cost `cpu`.
    pub fn new(cpu: HandshakeCpu, cores: u32, window: SimDuration) -> Terminator {
        Terminator {
            cpu,
            free_at: vec![SimTime::ZERO; cores.max(1) as usize],
            parked: CallTable::default(),
            n_parked: 0,
            handshakes: 0,
            busy: SimDuration::ZERO,
            waiting: Series::new(SeriesKind::Level, window),
        }
    }

    /// `req` from `from` arrived: `Some` if it may be handled now, `None` if it waits for its
    /// handshake (a timer tagged `tag | slot` brings it back through [`Terminator::resume`]).
    pub fn admit(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        req: Request,
        tag: u64,
    ) -> Option<(NodeId, Request)> {
        if !req.handshake.tls() {
            return Some((from, req));
        }
        let cost = self.cpu.cost(req.handshake);
        self.handshakes += 1;
        self.busy = SimDuration(self.busy.0 + cost.0);
        let now = ctx.now();
        let core = (0..self.free_at.len())
            .min_by_key(|&i| self.free_at[i])
            .expect("at least one core");
        let done = self.free_at[core].max(now).after(cost);
        self.free_at[core] = done;
        if done == now {
            return Some((from, req));
        }
        let wait = done.since(now);
        self.parked.open(ctx, |ctx, slot| {
            ctx.set_timer(wait, tag | slot.0);
            (from, req)
        });
        self.n_parked += 1;
        self.waiting.set(now, f64::from(self.n_parked));
        None
    }

    /// The handshake of the request parked in `slot` is done.
    pub fn resume(&mut self, now: SimTime, slot: u64) -> Option<(NodeId, Request)> {
        let r = self.parked.close(CallId(slot))?;
        self.n_parked -= 1;
        self.waiting.set(now, f64::from(self.n_parked));
        Some(r)
    }

    /// TLS handshakes done so far.
    pub fn handshakes(&self) -> u64 {
        self.handshakes
    }

    /// The proxy crashed: the handshakes in progress are lost with it.
    pub fn crashed(&mut self, now: SimTime) {
        self.parked.clear();
        self.n_parked = 0;
        self.free_at.iter_mut().for_each(|t| *t = SimTime::ZERO);
        self.waiting.set(now, 0.0);
    }

    /// Counters and the series of requests waiting for a handshake.
    pub fn report(&mut self, now: SimTime, counters: &mut BTreeMap<String, f64>) -> SeriesResult {
        counters.insert("tls_handshakes".to_string(), self.handshakes as f64);
        counters.insert("tls_handshake_cpu_s".to_string(), self.busy.as_secs_f64());
        self.waiting.finish(
            "waiting_on_handshake",
            "Requests waiting for their TLS handshake on the balancer's cores",
            "requests",
            now,
        )
    }
}

/// One handshake round trip to `to`: lost packets are sent again after a retransmission
/// timeout of 1 s, doubled each try; `None` after [`HANDSHAKE_TRIES`] tries.
fn handshake_round_trip(ctx: &mut Ctx<'_>, to: NodeId) -> Option<SimDuration> {
    let mut waited = SimDuration::ZERO;
    let mut rto = SimDuration::from_secs(1);
    for _ in 0..HANDSHAKE_TRIES {
        if let Some(rtt) = ctx.round_trip(to) {
            return Some(SimDuration(waited.0 + rtt.0));
        }
        waited = SimDuration(waited.0 + rto.0);
        rto = SimDuration(rto.0 * 2);
    }
    None
}

/// Validate an optional connection block at `at`.
pub fn validate_option(c: &Option<ConnectionConfig>, v: &mut Validator, at: &Path) {
    if let Some(c) = c {
        c.validate(v, at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(protocol: Protocol, resumption: Resumption) -> ConnectionConfig {
        ConnectionConfig {
            protocol,
            resumption,
            mutual: false,
            max_connections: 1,
            max_streams: 1,
            idle_timeout: SimDuration::from_secs(60),
            cpu: HandshakeCpu::client(),
            per_user: false,
        }
    }

    #[test]
    fn round_trips_follow_the_protocols() {
        use Protocol::*;
        use Resumption as R;
        assert_eq!(cfg(Tcp, R::None).setup_round_trips(false), 1);
        assert_eq!(cfg(Tls13, R::None).setup_round_trips(false), 2);
        assert_eq!(cfg(Tls12, R::None).setup_round_trips(false), 3);
        assert_eq!(cfg(Tls12, R::Ticket).setup_round_trips(true), 2);
        assert_eq!(cfg(Tls13, R::Ticket).setup_round_trips(true), 2);
        assert_eq!(cfg(Tls13, R::ZeroRtt).setup_round_trips(true), 1);
        // Before a first full handshake there is no ticket to resume from.
        assert_eq!(cfg(Tls13, R::ZeroRtt).setup_round_trips(false), 2);
    }

    #[test]
    fn cpu_costs_by_handshake() {
        let s = HandshakeCpu::server();
        assert_eq!(s.cost(Handshake::NONE), SimDuration::ZERO);
        assert_eq!(
            s.cost(Handshake::opened(false, false, true)),
            SimDuration::ZERO
        );
        assert_eq!(s.cost(Handshake::opened(true, false, false)), s.full);
        assert_eq!(
            s.cost(Handshake::opened(true, false, true)),
            SimDuration(s.full.0 + s.mutual.0)
        );
        assert_eq!(s.cost(Handshake::opened(true, true, true)), s.resumed);
    }

    #[test]
    fn zero_rtt_needs_tls13() {
        let names = crate::contract::validate::NameTable::default();
        let mut v = Validator::new(&names);
        cfg(Protocol::Tls12, Resumption::ZeroRtt).validate(&mut v, &Path::root());
        assert_eq!(v.into_problems().len(), 1);
    }
}
