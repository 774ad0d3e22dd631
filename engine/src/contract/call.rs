//! Calls: the requests and responses every component speaks, whatever its family.
//!
//! Every exchange in a service graph is a call: the caller picks a [`CallId`] that is unique
//! among *its own* pending calls, the callee answers with a [`Response`] carrying the same
//! `CallId`, and each hop (a load balancer, a proxy) keeps its own table from its outgoing call
//! to the incoming one it serves. The end-to-end [`RequestId`] travels unchanged through every
//! hop so that idempotency and tracing can see it. A request's outcome ([`Cause`] on failure)
//! is what the run-wide request metrics count.

use crate::sim::rng::mix64;
use crate::sim::time::SimTime;

/// Correlates a response with the call it answers; chosen by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CallId(pub u64);

/// End-to-end identity of a client request (stable across hops and retries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RequestId(pub u64);

/// Whether a request reads or writes its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Op {
    /// Read the key.
    #[default]
    Read,
    /// Write `value` to the key.
    Write,
}

/// A call: "please do `op` on `key`".
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Request {
    /// Chosen by the sender, echoed by the response.
    pub call: CallId,
    /// The client request this call serves.
    pub id: RequestId,
    /// Read or write.
    pub op: Op,
    /// The key the request touches (hashing load balancers and shards route on it).
    pub key: u64,
    /// The value to write, for writes.
    pub value: u64,
    /// Random bits drawn by the client for this request. Servers derive their draws (service
    /// time) from them and `attempt`, salted by the pool's name, so the same execution costs
    /// the same whichever replica serves it: variants compare under common random numbers.
    pub work: u64,
    /// Which execution of the request this call asks for: 0 for the first; every further copy
    /// a component sends of one request (a retry, a hedge, a redelivery, a call to a service
    /// already called) gets its own tag from [`Request::copy`], so it draws a service time of
    /// its own, as a real re-execution would (a server with `per: Request` ignores it).
    pub attempt: u32,
    /// When the client issued the request (first attempt).
    pub issued_at: SimTime,
    /// Its class: an index into the scenario's `classes`, 0 the highest priority (0 when the
    /// scenario declares none). Servers with priority queues and rate limiters with per-class
    /// limits read it; it travels unchanged through every hop.
    pub class: u8,
    /// Bytes the request puts on the wire (0 unless the client gives requests a size).
    pub size: u32,
    /// The handshake of the connection this call opened, if it opened one: the callee pays
    /// its side of it.
    pub handshake: Handshake,
}

/// The handshake a call's connection was opened with, as the callee sees it: none (an existing
/// connection, or no connection model), or a new TCP connection, maybe with TLS (full or
/// resumed, maybe mutual).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Handshake(u8);

impl Handshake {
    const NEW: u8 = 1;
    const TLS: u8 = 2;
    const RESUMED: u8 = 4;
    const MUTUAL: u8 = 8;

    /// A call on an existing connection.
    pub const NONE: Handshake = Handshake(0);

    /// A new connection: plain TCP, or TLS (resumed or full, mutual or not).
    pub fn opened(tls: bool, resumed: bool, mutual: bool) -> Handshake {
        let bit = |on: bool, b: u8| if on { b } else { 0 };
        Handshake(
            Self::NEW
                | bit(tls, Self::TLS)
                | bit(tls && resumed, Self::RESUMED)
                | bit(tls && mutual, Self::MUTUAL),
        )
    }

    /// Whether the call opened a connection.
    pub fn is_new(self) -> bool {
        self.0 & Self::NEW != 0
    }

    /// Whether it opened a TLS session.
    pub fn tls(self) -> bool {
        self.0 & Self::TLS != 0
    }

    /// Whether that session was resumed from a ticket (cheaper than a full handshake).
    pub fn resumed(self) -> bool {
        self.0 & Self::RESUMED != 0
    }

    /// Whether the caller presented a certificate (mutual TLS).
    pub fn mutual(self) -> bool {
        self.0 & Self::MUTUAL != 0
    }
}

impl Request {
    /// The attempt tag of copy `n` of this call (0: this call's own tag, so a component that
    /// sends each request once changes no draw downstream). Tags of different copies differ
    /// (up to a 2^-32 chance), whoever derives them from whichever tag.
    #[inline]
    pub fn copy(&self, n: u64) -> u32 {
        attempt_tag(self.attempt, n)
    }
}

/// The tag of copy `n` of a call whose own tag is `parent` (see [`Request::copy`]).
#[inline]
pub fn attempt_tag(parent: u32, n: u64) -> u32 {
    if n == 0 {
        return parent;
    }
    (mix64((u64::from(parent) << 32 | 0x5eed_0001) ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 32)
        as u32
}

/// Why a call failed. Every failed request has exactly one cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    /// A server's queue was full.
    Rejected,
    /// No answer before the caller's timeout.
    Timeout,
    /// The destination could not be reached (crashed, partitioned, or no backend left).
    Unreachable,
    /// A rate limiter turned the request away.
    RateLimited,
    /// A circuit breaker was open and failed the call at once.
    CircuitOpen,
    /// A server dropped the request because it had waited too long in the queue.
    Shed,
    /// A transaction aborted (a participant voted no, or a timeout or crash forced it).
    Aborted,
    /// The server answered with an error (an HTTP 5xx): a bad release's version fails some
    /// of the requests it serves.
    ServerError,
}

impl Cause {
    /// Every cause, in report order.
    pub const ALL: [Cause; 8] = [
        Cause::Rejected,
        Cause::Timeout,
        Cause::Unreachable,
        Cause::RateLimited,
        Cause::CircuitOpen,
        Cause::Shed,
        Cause::Aborted,
        Cause::ServerError,
    ];

    /// Name used in results and reports.
    pub fn name(self) -> &'static str {
        match self {
            Cause::Rejected => "rejected",
            Cause::Timeout => "timeout",
            Cause::Unreachable => "unreachable",
            Cause::RateLimited => "rate_limited",
            Cause::CircuitOpen => "circuit_open",
            Cause::Shed => "shed",
            Cause::Aborted => "aborted",
            Cause::ServerError => "server_error",
        }
    }

    /// Dense index, for per-cause counters.
    pub fn idx(self) -> usize {
        match self {
            Cause::Rejected => 0,
            Cause::Timeout => 1,
            Cause::Unreachable => 2,
            Cause::RateLimited => 3,
            Cause::CircuitOpen => 4,
            Cause::Shed => 5,
            Cause::Aborted => 6,
            Cause::ServerError => 7,
        }
    }
}

/// What a successful call returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Reply {
    /// The value read (or written).
    pub value: u64,
    /// The version of that value, for stores that keep versions.
    pub version: u64,
    /// Bytes the reply puts on the wire (0 unless the server gives replies a size).
    pub size: u32,
}

/// The answer to a [`Request`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Response {
    /// The `call` of the request this answers.
    pub call: CallId,
    /// The client request it belongs to.
    pub id: RequestId,
    /// Success with a reply, or failure with its cause.
    pub result: Result<Reply, Cause>,
}
