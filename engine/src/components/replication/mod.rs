//! Replicated data: stores whose replicas exchange writes (leaderless quorums, or a leader
//! elected Raft-style with its followers), the key-value client whose history the checkers
//! read, the shard router in front of several stores, and a primary with read replicas behind
//! a routing proxy (session guarantees).

pub mod election;
pub mod kv_client;
pub mod leader_store;
pub mod msg;
pub mod read_replicas;
pub mod replicated_store;
pub mod shard_router;
