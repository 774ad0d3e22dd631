//! What nodes say to each other: requests and responses, and a door for plug-in protocols.
//!
//! The kernel never looks inside a [`Message`]; it only carries it from one node to another
//! through the network model. Every exchange in a service graph is a call: the caller picks
//! a [`CallId`] that is unique among *its own* pending calls, the callee answers with a
//! [`Response`] carrying the same `CallId`, and each hop (a load balancer, a proxy) keeps its own
//! table from its outgoing call to the incoming one it serves. The end-to-end [`RequestId`]
//! travels unchanged through every hop so that idempotency and tracing can see it.
//!
//! Protocol families that come later (replication, elections, transactions) add their own
//! variant to [`Message`]; nothing in the kernel changes when they do.

use super::time::SimTime;
use std::any::Any;
use std::fmt;

/// Dense index of a node in a run (`0..n_nodes`), in declaration order with groups expanded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(pub u32);

impl NodeId {
    /// As a `usize` index into per-node tables.
    #[inline]
    pub fn idx(self) -> usize {
        self.0 as usize
    }
}

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
#[derive(Clone, Copy, Debug, PartialEq)]
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
    /// Random bits drawn by the client for this request. Servers derive their per-request
    /// draws (service time) from them, so the same request costs the same work whichever
    /// replica serves it: variants compare under common random numbers.
    pub work: u64,
    /// When the client issued the request (first attempt).
    pub issued_at: SimTime,
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
}

impl Cause {
    /// Every cause, in report order.
    pub const ALL: [Cause; 7] = [
        Cause::Rejected,
        Cause::Timeout,
        Cause::Unreachable,
        Cause::RateLimited,
        Cause::CircuitOpen,
        Cause::Shed,
        Cause::Aborted,
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

/// A plug-in protocol's payload: anything `'static + Send`, downcast by the receiver.
pub struct UserMsg(pub Box<dyn Any + Send>);

impl fmt::Debug for UserMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserMsg(..)")
    }
}

/// Everything a node can send.
#[derive(Debug)]
pub enum Message {
    /// A call.
    Request(Request),
    /// The answer to a call.
    Response(Response),
    /// A plug-in's own message type.
    User(UserMsg),
    /// A transaction protocol message (2PC, 3PC, saga); see `components::txn`.
    Txn(crate::components::txn::TxnMsg),
    /// Replication between the replicas of a replicated store.
    Replica(ReplicaMsg),
}

/// A logical timestamp: (counter, writer node), ordered lexicographically, so two writes never
/// tie and every replica picks the same winner (last writer wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Stamp {
    /// Lamport counter of the writer.
    pub counter: u64,
    /// The coordinator that stamped it, to break ties.
    pub node: u32,
}

/// What the replicas of a replicated store say to each other. `op` names the coordinator's
/// operation the message belongs to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReplicaMsg {
    /// Store `value` under `key` if `stamp` is newer than what you hold, and acknowledge.
    Write {
        /// The coordinator's operation.
        op: CallId,
        /// The key.
        key: u64,
        /// The value.
        value: u64,
        /// Its timestamp.
        stamp: Stamp,
    },
    /// The write `op` is stored here.
    WriteAck {
        /// The coordinator's operation.
        op: CallId,
    },
    /// Send me what you hold under `key`.
    Read {
        /// The coordinator's operation.
        op: CallId,
        /// The key.
        key: u64,
    },
    /// What I hold under the key of read `op`.
    ReadReply {
        /// The coordinator's operation.
        op: CallId,
        /// The value (0: never written).
        value: u64,
        /// Its timestamp.
        stamp: Stamp,
    },
    /// Store `value` under `key` if `stamp` is newer; no answer (read repair, anti-entropy).
    Repair {
        /// The key.
        key: u64,
        /// The value.
        value: u64,
        /// Its timestamp.
        stamp: Stamp,
    },
    /// Leader election and log shipping of the leader/follower mode.
    Raft(crate::components::election::RaftMsg),
}
