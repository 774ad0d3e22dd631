//! Data in motion and at rest near the request path: caches (strategies and eviction), a
//! message queue with consumer groups, and a partitioned log (topic, consumers, coordinator).

pub mod cache;
pub mod coordinator;
pub mod log_consumer;
pub mod queue;
pub mod stream_msg;
pub mod topic;
