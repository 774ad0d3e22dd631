//! What brokers of a partitioned log and the consumers of its groups say to each other
//! ([`StreamMsg`]), and where partitions, their leaders and group coordinators live.
//!
//! ```text
//!  producer ─Request─▶ any broker ─Produce─▶ partition leader ─Response─▶ producer
//!  follower ─Fetch(replica)─▶ leader ─Fetched─▶ follower        (replication is a fetch loop)
//!  consumer ─Fetch─▶ leader ─Fetched (up to the high watermark)─▶ consumer
//!  consumer ─Join / Heartbeat / Revoked / Commit─▶ coordinator
//!  coordinator ─HeartbeatAck / Revoke / Assign─▶ consumer
//! ```

use crate::contract::call::{CallId, RequestId};
use crate::sim::NodeId;
use crate::sim::rng::{mix64, stable_hash};
use crate::sim::time::{SimDuration, SimTime};

/// One event of a partition's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// Its position in the partition (0, 1, ...).
    pub offset: u64,
    /// The producer's key.
    pub key: u64,
    /// Its place in its key's order (ground truth from the checker, for the report; 0:
    /// unchecked).
    pub seq: u64,
    /// The producer's request, for tracing.
    pub id: RequestId,
    /// The producer's random bits: the work of processing it (the same on every consumer).
    pub work: u64,
    /// When the leader appended it.
    pub appended_at: SimTime,
}

/// How a consumer group moves partitions between its members.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub enum Rebalance {
    /// Stop the world (Kafka's eager protocol): every member gives up every partition, and only
    /// once all have done so are partitions handed out again.
    Eager,
    /// Incremental (Kafka's cooperative sticky protocol): members keep the partitions that do not
    /// move and go on consuming them; only moved partitions pause.
    Cooperative,
}

/// What a consumer tells the coordinator when it joins: how its group rebalances.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupSpec {
    /// The group's name.
    pub name: String,
    /// How partitions move.
    pub rebalance: Rebalance,
    /// A member not heard from for this long is dropped from the group.
    pub session_timeout: SimDuration,
    /// How often members heartbeat (the coordinator checks sessions as often).
    pub heartbeat_interval: SimDuration,
    /// The first assignment waits this long after the first member joins.
    pub initial_rebalance_delay: SimDuration,
    /// The group's consumers apply each event once (for the checker).
    pub idempotent: bool,
}

/// What brokers and consumers of a partitioned log say to each other.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamMsg {
    /// A producer's event, sent on by the broker that received it to the partition's leader.
    Produce {
        /// The partition chosen.
        partition: u32,
        /// The producer, to answer.
        client: NodeId,
        /// The producer's call.
        call: CallId,
        /// The producer's request.
        id: RequestId,
        /// The event's key.
        key: u64,
        /// The producer's random bits.
        work: u64,
    },
    /// Send me events of `partition` from `offset` on (a follower: everything; a consumer: up
    /// to the high watermark), at most `max`; wait for some if there are none yet.
    Fetch {
        /// The partition.
        partition: u32,
        /// The first offset wanted.
        offset: u64,
        /// Most events wanted.
        max: u32,
        /// A follower replicating (not a consumer).
        replica: bool,
    },
    /// Events of `partition` (possibly none, when the wait ran out).
    Fetched {
        /// The partition.
        partition: u32,
        /// The offset the fetch asked for (so a late answer to an older fetch is recognised).
        asked: u64,
        /// Where to fetch next: after the events, or the log's first offset if the fetch asked
        /// for events already deleted by retention.
        next: u64,
        /// The events.
        entries: Vec<LogEntry>,
    },
    /// A consumer (re)joins its group (after starting or restarting: `incarnation` counts).
    Join {
        /// The group and how it rebalances.
        spec: Box<GroupSpec>,
        /// How many times this consumer has restarted.
        incarnation: u32,
    },
    /// A consumer is alive and has seen assignment `generation`.
    Heartbeat {
        /// The group (hash of its name).
        group: u64,
        /// The member's incarnation.
        incarnation: u32,
        /// The newest generation the member has seen.
        generation: u32,
    },
    /// The coordinator heard the heartbeat.
    HeartbeatAck {
        /// The group.
        group: u64,
    },
    /// Stop consuming these partitions; answer `Revoked` once done with them.
    Revoke {
        /// The group.
        group: u64,
        /// The rebalance this belongs to.
        generation: u32,
        /// The partitions to give up.
        partitions: Vec<u32>,
    },
    /// Done with the revoked partitions; where each should resume (the committed position).
    Revoked {
        /// The group.
        group: u64,
        /// The member's incarnation.
        incarnation: u32,
        /// (partition, next offset to process).
        positions: Vec<(u32, u64)>,
    },
    /// Every partition the member now owns, with the offset to start each new one from.
    Assign {
        /// The group.
        group: u64,
        /// The rebalance this belongs to.
        generation: u32,
        /// (partition, committed offset).
        partitions: Vec<(u32, u64)>,
    },
    /// The member has processed (or, committing before processing, taken) events of
    /// `partition` up to `offset` (the next to process).
    Commit {
        /// The group.
        group: u64,
        /// The member's incarnation.
        incarnation: u32,
        /// The partition.
        partition: u32,
        /// The next offset to process.
        offset: u64,
    },
}

/// The broker (index into the topic's brokers) that leads partition `p`: its preferred
/// replica, so leaders spread evenly.
pub fn leader_of(p: u32, brokers: usize) -> usize {
    p as usize % brokers
}

/// The brokers holding partition `p`: its leader, then the next `rf - 1` brokers.
pub fn replicas_of(p: u32, brokers: usize, rf: u32) -> impl Iterator<Item = usize> {
    let first = leader_of(p, brokers);
    (0..rf as usize).map(move |i| (first + i) % brokers)
}

/// The group's id in messages: a hash of its name.
pub fn group_id(name: &str) -> u64 {
    stable_hash(name.as_bytes())
}

/// The broker that coordinates group `name`.
pub fn coordinator_of(name: &str, brokers: usize) -> usize {
    (mix64(group_id(name)) % brokers as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_start_at_the_leader_and_wrap() {
        let r: Vec<usize> = replicas_of(4, 5, 3).collect();
        assert_eq!(r, [4, 0, 1]);
        assert_eq!(leader_of(7, 3), 1);
    }

    #[test]
    fn a_message_fits_beside_a_request() {
        // Messages up to a request's size travel in the kernel's side table without boxing.
        assert!(
            std::mem::size_of::<StreamMsg>()
                <= std::mem::size_of::<crate::contract::call::Request>(),
            "{} bytes",
            std::mem::size_of::<StreamMsg>()
        );
    }
}
