//! The request path: clients that issue requests, the load balancer that spreads them, servers
//! that queue and serve them and call other services, and what they share (key distributions,
//! the table of calls in flight), and workload shapes and trace replay for the clients.

pub mod balancing;
pub mod calls;
pub mod client;
pub mod connections;
pub mod dns;
pub mod downstream;
pub mod gslb;
pub mod keys;
pub mod load_balancer;
pub mod locality;
pub mod priority;
pub mod server;
pub mod workload;
