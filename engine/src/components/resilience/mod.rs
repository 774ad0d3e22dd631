//! Resilience: the policies as pure state machines (backoff, retry budget, circuit breaker,
//! rate limits, health checks), and the proxies built on them, one file each, with the
//! forwarding they share in `proxy.rs`. Clients, balancers and servers use the policies
//! directly too.

pub mod bulkhead;
pub mod circuit_breaker;
pub mod policy;
pub mod proxy;
pub mod rate_limiter;
