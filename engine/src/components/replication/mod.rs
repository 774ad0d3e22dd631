//! Replicated data: stores whose replicas exchange writes (leaderless quorums, or a leader
//! elected Raft-style with its followers), the key-value client whose history the checkers
//! read, and the shard router in front of several stores.

pub mod election;
pub mod kv_client;
pub mod leader_store;
pub mod msg;
pub mod replicated_store;
pub mod shard_router;
