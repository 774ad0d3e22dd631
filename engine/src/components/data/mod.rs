//! Data in motion and at rest near the request path: caches (strategies and eviction) and a
//! message queue with consumer groups.

pub mod cache;
pub mod queue;
