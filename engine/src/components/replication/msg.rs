//! What the replicas of a replicated store say to each other, and the timestamps that order
//! their writes.

use crate::components::replication::election::RaftMsg;
use crate::contract::call::CallId;

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
    Raft(RaftMsg),
}
