//! Operations: controllers that change a server pool while it runs, and the pool state they
//! share with the load balancers and servers of that pool.
//!
//! ```text
//!  pool.rs        which replicas of a pool serve now (phase per replica) and what they measure
//!  autoscaler.rs  resizes a pool by a metric (HPA-like) or a schedule, with cold starts
//!  deploy.rs      ships a new version to a pool: rolling, blue-green or canary, with analysis
//! ```
//! A controlled pool is built at its largest size (`replicas` of its `Server`); the
//! controllers move replicas between phases, and a load balancer sends new requests only to
//! replicas in rotation.

pub mod autoscaler;
pub mod deploy;
pub mod pool;
