//! `archsim list`: every built-in component, fault and value type with its fields.
//!
//! The text comes from one source, the config types' doc comments and serde defaults, read
//! through their JSON schemas (schemars), so the list cannot drift from what the parser accepts.

use crate::components::data::cache::{CacheConfig, CacheStrategy, Eviction};
use crate::components::data::log_consumer::{CommitPoint, LogConsumerConfig};
use crate::components::data::queue::QueueConfig;
use crate::components::data::stream_msg::Rebalance;
use crate::components::data::topic::{Acks, Partitioner, TopicConfig};
use crate::components::ops::autoscaler::AutoscalerConfig;
use crate::components::ops::deploy::DeployConfig;
use crate::components::replication::kv_client::KvClientConfig;
use crate::components::replication::read_replicas::{ReadReplicasConfig, ReadRouting, ReplicaAcks};
use crate::components::replication::replicated_store::ReplicatedStoreConfig;
use crate::components::replication::shard_router::{ShardRouterConfig, ShardStrategy};
use crate::components::resilience::bulkhead::BulkheadConfig;
use crate::components::resilience::circuit_breaker::CircuitBreakerConfig;
use crate::components::resilience::policy::{
    Backoff, BreakerConfig, HealthCheckConfig, HedgeConfig, RateLimit, RetryConfig,
};
use crate::components::resilience::rate_limiter::{LimitScope, RateLimiterConfig};
use crate::components::traffic::client::{Arrival, ClientConfig};
use crate::components::traffic::downstream::CallStage;
use crate::components::traffic::keys::Keys;
use crate::components::traffic::load_balancer::{LoadBalancerConfig, Strategy};
use crate::components::traffic::server::ServerConfig;
use crate::components::txn::Protocol;
use crate::components::txn::client::{Placement, TxnClientConfig};
use crate::components::txn::coordinator::TxnCoordinatorConfig;
use crate::components::txn::participant::TxnParticipantConfig;
use crate::registry::Registry;
use crate::scenario::sweep::{Objective, SweepRepr};
use crate::scenario::{FaultConfig, LimitsConfig, LinkConfig, NetworkConfig, RandomFaultKind};
use crate::sim::dist::Dist;
use schemars::{Schema, schema_for};
use serde_json::Value;
use std::fmt::Write;

/// The whole listing.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "archsim building blocks. Durations are strings with a unit: \"250us\", \"3ms\", \"1.5s\"\n\
         (units ns, us, ms, s, min, h; a space before the unit is allowed: \"500 ms\").\n\
         Fields with a default may be left out; defaults are shown as they are written in RON\n\
         (enum values bare, strings quoted). `archsim list KIND` shows one kind or section.\n\
         Node names use ASCII letters, digits, '-' and '_'; a scenario declares at most {}\n\
         nodes, replicas counted. Request classes are declared at the top level, highest priority\n\
         first: `classes: [\"premium\", \"standard\"]` (at most {}); clients give shares of them.\n\n",
        crate::scenario::validate::MAX_NODES,
        crate::scenario::validate::MAX_CLASSES
    ));
    section(
        &mut out,
        "COMPONENTS (declare under `nodes: { \"name\": Kind(...) }`)",
    );
    let mut components = vec![
        ("Client", schema_for!(ClientConfig)),
        ("LoadBalancer", schema_for!(LoadBalancerConfig)),
        ("Server", schema_for!(ServerConfig)),
        ("CircuitBreaker", schema_for!(CircuitBreakerConfig)),
        ("RateLimiter", schema_for!(RateLimiterConfig)),
        ("Bulkhead", schema_for!(BulkheadConfig)),
        ("TxnClient", schema_for!(TxnClientConfig)),
        ("TxnCoordinator", schema_for!(TxnCoordinatorConfig)),
        ("TxnParticipant", schema_for!(TxnParticipantConfig)),
        ("Cache", schema_for!(CacheConfig)),
        ("KvClient", schema_for!(KvClientConfig)),
        ("ReplicatedStore", schema_for!(ReplicatedStoreConfig)),
        ("ReadReplicas", schema_for!(ReadReplicasConfig)),
        ("Queue", schema_for!(QueueConfig)),
        ("ShardRouter", schema_for!(ShardRouterConfig)),
        ("Topic", schema_for!(TopicConfig)),
        ("LogConsumer", schema_for!(LogConsumerConfig)),
        ("Autoscaler", schema_for!(AutoscalerConfig)),
        ("Deploy", schema_for!(DeployConfig)),
        (
            "Gslb",
            schema_for!(crate::components::traffic::gslb::GslbConfig),
        ),
    ];
    components.extend(registry.plugin_schemas());
    for (kind, schema) in &components {
        structure(&mut out, kind, schema.as_value());
    }
    let enums: [(&str, Schema); 11] = [
        ("FAULTS (under `faults: [...]`)", schema_for!(FaultConfig)),
        (
            "RANDOM FAULT KINDS (Random fault `kind`)",
            schema_for!(RandomFaultKind),
        ),
        (
            "CACHE STRATEGIES (Cache `strategy`)",
            schema_for!(CacheStrategy),
        ),
        ("CACHE EVICTION (Cache `eviction`)", schema_for!(Eviction)),
        ("DISTRIBUTIONS (fields of type Dist)", schema_for!(Dist)),
        ("ARRIVALS (Client `arrival`)", schema_for!(Arrival)),
        (
            "WORKLOAD SHAPES (Shaped arrival `shape`)",
            schema_for!(crate::components::traffic::workload::Shape),
        ),
        ("KEYS (Client `keys`)", schema_for!(Keys)),
        (
            "LOAD-BALANCER STRATEGIES (LoadBalancer `strategy`)",
            schema_for!(Strategy),
        ),
        (
            "TRANSACTION PROTOCOLS (TxnCoordinator `protocol`)",
            schema_for!(Protocol),
        ),
        ("PLACEMENTS (TxnClient `placement`)", schema_for!(Placement)),
    ];
    for (title, schema) in &enums {
        section(&mut out, title);
        variants(&mut out, schema.as_value());
    }
    section(
        &mut out,
        "SIZE DISTRIBUTIONS (Client `request_size`, Server `response_size`)",
    );
    variants(
        &mut out,
        schema_for!(crate::contract::size::SizeDist).as_value(),
    );
    section(&mut out, "SHARDING STRATEGIES (ShardRouter `strategy`)");
    variants(&mut out, schema_for!(ShardStrategy).as_value());
    for (title, schema) in [
        (
            "PARTITIONERS (Topic `partitioner`)",
            schema_for!(Partitioner),
        ),
        ("PRODUCER ACKS (Topic `acks`)", schema_for!(Acks)),
        (
            "COMMIT POINTS (LogConsumer `commit`)",
            schema_for!(CommitPoint),
        ),
        (
            "REBALANCING (LogConsumer `rebalance`)",
            schema_for!(Rebalance),
        ),
        (
            "READ ROUTING (ReadReplicas `routing`)",
            schema_for!(ReadRouting),
        ),
        (
            "REPLICA ACKS (ReadReplicas `replication`)",
            schema_for!(ReplicaAcks),
        ),
        (
            "DEPLOY STRATEGIES (Deploy `strategy`)",
            schema_for!(crate::components::ops::deploy::Strategy),
        ),
    ] {
        section(&mut out, title);
        variants(&mut out, schema.as_value());
    }
    section(
        &mut out,
        "DEPLOY VERSION AND ANALYSIS (Deploy `version`, `version.crash_loop`, `analysis`)",
    );
    structure(
        &mut out,
        "version",
        schema_for!(crate::components::ops::deploy::VersionConfig).as_value(),
    );
    structure(
        &mut out,
        "crash_loop",
        schema_for!(crate::components::ops::deploy::CrashLoopConfig).as_value(),
    );
    structure(
        &mut out,
        "analysis",
        schema_for!(crate::components::ops::deploy::AnalysisConfig).as_value(),
    );
    resilience(&mut out);
    section(
        &mut out,
        "NETWORK (`network: (...)`), LINKS and LIMITS (`limits: (...)`)",
    );
    for (kind, schema) in [
        ("network", schema_for!(NetworkConfig)),
        ("link", schema_for!(LinkConfig)),
        ("zone_link", schema_for!(crate::scenario::ZoneLinkConfig)),
        (
            "locality",
            schema_for!(crate::components::traffic::locality::LocalityConfig),
        ),
        ("limits", schema_for!(LimitsConfig)),
    ] {
        structure(&mut out, kind, schema.as_value());
    }
    out.push_str(ZONES_NOTE);
    connections(&mut out);
    dns(&mut out);
    section(&mut out, "SWEEP (`sweep: (...)`, run with `archsim sweep`)");
    for (kind, schema) in [
        ("sweep", schema_for!(SweepRepr<'_>)),
        (
            "parameter",
            schema_for!(crate::scenario::sweep::ParamDoc<'_>),
        ),
        ("range", schema_for!(crate::scenario::sweep::RangeDoc)),
        ("objective", schema_for!(Objective)),
    ] {
        structure(&mut out, kind, schema.as_value());
    }
    section(
        &mut out,
        "EXPLORE (`archsim explore FILE --objective ...`: fault schedules searched and shrunk)",
    );
    out.push_str(&crate::explore::listing());
    out
}

/// Where nodes run: a field every node may have, which no component's schema lists.
const ZONES_NOTE: &str = "\
Every node may also say where it runs: `zone: \"use-1a\"` (a zone declared under
`network.regions`), or for a pool `zones: [\"use-1a\", \"use-1b\"]` (replica i in zone i mod
the number of zones). Sizes are written \"512B\", \"4KB\", \"1.5MiB\" (B, KB, MB, GB, KiB,
MiB, GiB); bandwidths \"100Mbps\", \"1Gbps\" or \"125MB/s\".

";

/// Connections and TLS: the pool block, the handshake CPU block and their enums.
fn connections(out: &mut String) {
    use crate::components::traffic::connections as c;
    section(
        out,
        "CONNECTIONS AND TLS (Client/LoadBalancer/Server `connections`, Server/LoadBalancer `handshake_cpu`)",
    );
    for (kind, schema) in [
        ("connections", schema_for!(c::ConnectionConfig)),
        ("handshake_cpu", schema_for!(c::HandshakeCpu)),
    ] {
        structure(out, kind, schema.as_value());
    }
    for (title, schema) in [
        (
            "TRANSPORTS (connections `protocol`)",
            schema_for!(c::Protocol),
        ),
        (
            "SESSION RESUMPTION (connections `resumption`)",
            schema_for!(c::Resumption),
        ),
    ] {
        section(out, title);
        variants(out, schema.as_value());
    }
}

/// DNS and GSLB: the entry block, the client's cache block and the policies.
fn dns(out: &mut String) {
    use crate::components::traffic::{dns, gslb};
    section(
        out,
        "DNS AND GSLB (Gslb `entries`/`policy`, Client `dns` when its target is a Gslb)",
    );
    for (kind, schema) in [
        ("entry", schema_for!(gslb::GslbEntry)),
        ("dns", schema_for!(dns::DnsConfig)),
    ] {
        structure(out, kind, schema.as_value());
    }
    out.push_str(DNS_NOTE);
    section(out, "GSLB POLICIES (Gslb `policy`)");
    variants(out, schema_for!(gslb::GslbPolicy).as_value());
}

/// How failover through DNS works, which no schema says.
const DNS_NOTE: &str = "\
A client whose `target` is a Gslb resolves it to one entry point and caches the answer for
the TTL: it keeps sending to a failed region until its cached answer expires. Health checks
take an entry out after `unhealthy_threshold` failed probes in a row (probes every `interval`,
each failing after `timeout`), so failover takes about threshold x interval + timeout to
detect, plus each cache's remaining TTL. With no healthy entry, every entry counts as healthy
(Route 53's rule). The lookup costs no time; the GSLB itself does not fail.

";

/// The resilience options: policy structs and the enums of their kinds.
fn resilience(out: &mut String) {
    section(
        out,
        "RESILIENCE OPTIONS (Client `retry`/`hedge`, Server `calls`, LoadBalancer `health_check`/`breaker`)",
    );
    for (kind, schema) in [
        ("retry", schema_for!(RetryConfig)),
        ("hedge", schema_for!(HedgeConfig)),
        ("call stage (Server `calls`)", schema_for!(CallStage)),
        ("breaker", schema_for!(BreakerConfig)),
        ("health_check", schema_for!(HealthCheckConfig)),
    ] {
        structure(out, kind, schema.as_value());
    }
    for (title, schema) in [
        ("BACKOFFS (retry `backoff`)", schema_for!(Backoff)),
        (
            "RATE-LIMIT ALGORITHMS (RateLimiter `algorithm`)",
            schema_for!(RateLimit),
        ),
        (
            "RATE-LIMIT SCOPES (RateLimiter `scope`)",
            schema_for!(LimitScope),
        ),
    ] {
        section(out, title);
        variants(out, schema.as_value());
    }
}

fn section(out: &mut String, title: &str) {
    let _ = writeln!(out, "{title}\n{}\n", "=".repeat(title.chars().count()));
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .replace('\n', " ")
}

/// A struct: its description and one line per field.
fn structure(out: &mut String, name: &str, s: &Value) {
    let _ = writeln!(out, "{name}: {}", text(s, "description"));
    fields(out, s, "  ");
    out.push('\n');
}

fn fields(out: &mut String, s: &Value, indent: &str) {
    let Some(props) = s.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = s
        .get("required")
        .and_then(Value::as_array)
        .map_or(Vec::new(), |r| r.iter().filter_map(Value::as_str).collect());
    for (field, p) in props {
        let when = match p.get("default") {
            Some(d) => format!("default {}", show_default(d, &type_name(p))),
            None if required.contains(&field.as_str()) => "required".to_string(),
            None => "optional".to_string(),
        };
        let _ = writeln!(out, "{indent}{field:<16} {:<22} {when}", type_name(p));
        let doc = text(p, "description");
        if !doc.is_empty() {
            let _ = writeln!(out, "{indent}    {doc}");
        }
    }
}

/// A default as it must be written in RON: strings (durations, names) quoted, enum values
/// (`RoundRobin`, `Lru`) bare, a variant with fields as `Name(field: value)`.
fn show_default(d: &Value, type_name: &str) -> String {
    match d {
        Value::Null => "None".to_string(),
        Value::String(s) if !is_text(type_name) => s.clone(),
        Value::Object(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().expect("one entry");
            format!("{k}({})", compact(v))
        }
        other => compact(other),
    }
}

/// Whether a field of this type holds text (written in quotes) rather than an enum value.
fn is_text(type_name: &str) -> bool {
    type_name
        .split(" or ")
        .any(|t| t == "string" || t == "duration" || t == "size")
}

fn compact(v: &Value) -> String {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}: {}", compact(v)))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// The entries of the listing whose kind is `kind` (a component, a fault, a strategy, ...;
/// any case), or a whole section whose title names it (`faults`, `distributions`).
pub fn filter(listing: &str, kind: &str) -> Option<String> {
    let want = kind.to_lowercase();
    let mut out = String::new();
    for section in sections(listing) {
        let title = section.lines().next().unwrap_or("").to_lowercase();
        let words: Vec<&str> = title
            .split(|c: char| !c.is_alphanumeric() && c != '-')
            .collect();
        if words.contains(&want.as_str()) || words.contains(&want.trim_end_matches('s')) {
            out.push_str(section);
            continue;
        }
        for entry in section.split("\n\n") {
            let name = entry.split(':').next().unwrap_or("").trim().to_lowercase();
            if name == want {
                out.push_str(entry.trim_end());
                out.push_str("\n\n");
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The listing cut into its sections, each starting at its underlined title.
fn sections(listing: &str) -> Vec<&str> {
    let mut starts: Vec<usize> = Vec::new();
    let mut offset = 0;
    let lines: Vec<&str> = listing.split_inclusive('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let underline = lines.get(i + 1).is_some_and(|n| n.starts_with("==="));
        if underline {
            starts.push(offset);
        }
        offset += line.len();
    }
    starts.push(listing.len());
    starts.windows(2).map(|w| &listing[w[0]..w[1]]).collect()
}

/// A short name for a field's type: `duration`, `Dist`, `[string]`, `integer or None`.
fn type_name(p: &Value) -> String {
    if let Some(r) = p.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return match name {
            "SimDuration" => "duration".to_string(),
            "ByteSize" => "size".to_string(),
            _ => name.to_string(),
        };
    }
    if let Some(any) = p.get("anyOf").and_then(Value::as_array) {
        let parts: Vec<String> = any.iter().map(type_name).collect();
        return parts.join(" or ").replace("null", "None");
    }
    match p.get("type") {
        Some(Value::String(t)) if t == "array" => {
            format!("[{}]", p.get("items").map_or("?".to_string(), type_name))
        }
        Some(Value::String(t))
            if t == "string" && p.get("format").is_some_and(|f| f == "duration") =>
        {
            "duration".to_string()
        }
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => {
            let names: Vec<String> = ts
                .iter()
                .filter_map(Value::as_str)
                .map(|t| {
                    if t == "null" {
                        "None".to_string()
                    } else {
                        t.to_string()
                    }
                })
                .collect();
            names.join(" or ")
        }
        _ => "value".to_string(),
    }
}

/// An externally tagged enum: one entry per variant with its fields.
fn variants(out: &mut String, s: &Value) {
    let Some(list) = s.get("oneOf").and_then(Value::as_array) else {
        return;
    };
    for v in list {
        let doc = text(v, "description");
        if let Some(name) = v.get("const").and_then(Value::as_str) {
            let _ = writeln!(out, "{name}: {doc}");
        } else if let Some(names) = v.get("enum").and_then(Value::as_array) {
            for n in names.iter().filter_map(Value::as_str) {
                let _ = writeln!(out, "{n}: {doc}");
            }
        } else if let Some((name, inner)) = v
            .get("properties")
            .and_then(Value::as_object)
            .and_then(|m| m.iter().next())
        {
            let _ = writeln!(out, "{name}: {doc}");
            if inner.get("properties").is_some() {
                fields(out, inner, "  ");
            } else {
                let _ = writeln!(out, "  (value)          {}", type_name(inner));
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_written_as_ron_takes_them() {
        let text = render(&Registry::builtin());
        assert!(text.contains("default Lru"), "an enum default is bare");
        assert!(!text.contains("default \"Lru\"") && !text.contains("default \"Global\""));
        assert!(
            text.contains("default \"1s\""),
            "a duration default stays quoted"
        );
        let budget = text
            .lines()
            .find(|l| l.trim_start().starts_with("max_memory"));
        // Its default is left out of results.json, so the schema has none: the doc says it.
        assert!(
            budget.is_some_and(|l| l.contains(" size ")) && text.contains("Default \"1GiB\""),
            "the memory budget is listed as a size with its default: {budget:?}"
        );
    }

    #[test]
    fn list_filters_by_kind_or_section() {
        let text = render(&Registry::builtin());
        let cache = filter(&text, "cache").expect("the Cache component");
        assert!(
            cache.starts_with("Cache:") && cache.contains("eviction"),
            "{cache}"
        );
        assert!(!cache.contains("LoadBalancer:"));
        let faults = filter(&text, "faults").expect("the faults section");
        assert!(
            faults.contains("Crash") && faults.contains("Partition") && !faults.contains("Client:")
        );
        assert!(filter(&text, "nothing-like-this").is_none());
    }

    #[test]
    fn lists_every_builtin_with_fields_defaults_and_docs() {
        let text = render(&Registry::builtin());
        for needle in [
            "Client:",
            "LoadBalancer:",
            "Server:",
            "queue_limit",
            "service_time",
            "default \"1s\"",
            "PowerOfTwoChoices",
            "ConsistentHash",
            "LogNormal",
            "Pareto",
            "Empirical",
            "Crash",
            "Slowdown",
            "Partition",
            "Pause",
            "Split",
            "mean_interval",
            "Cache:",
            "WriteBehind",
            "Lfu",
            "Queue:",
            "visibility_timeout",
            "Poisson",
            "Closed",
            "Zipf",
            "max_pending_events",
            "CircuitBreaker:",
            "RateLimiter:",
            "Bulkhead:",
            "Autoscaler:",
            "scale_down_stabilization",
            "Deploy:",
            "BlueGreen",
            "max_unavailable",
            "canary_replicas",
            "failure_limit",
            "crash_loop",
            "CrashLoopBackOff",
            "progress_deadline",
            "max_crashes",
            "QueueLength",
            "DecorrelatedJitter",
            "SlidingWindowCounter",
            "unhealthy_threshold",
            "wait_for",
            "shed_after",
            "idempotency_keys",
            "Bursts",
            "PerClient",
            "TxnClient:",
            "TxnCoordinator:",
            "TxnParticipant:",
            "ThreePhase",
            "cooperative_termination",
            "KvClient:",
            "ReplicatedStore:",
            "ReadReplicas:",
            "ReadYourWrites",
            "BoundedStaleness",
            "SemiSync",
            "purge_to",
            "early_refresh",
            "HotSet",
            "read_quorum",
            "sloppy",
            "anti_entropy_interval",
            "ShardRouter:",
            "ConsistentHash",
            "vnodes",
            "rebalance_sample",
            "Shaped",
            "FlashCrowd",
            "Diurnal",
            "Trace",
            "time_scale",
            "repeat_every",
            "classes",
            "Topic:",
            "replication_factor",
            "RoundRobin",
            "LogConsumer:",
            "BeforeProcessing",
            "Cooperative",
            "session_timeout",
            "idempotent",
            "PeakEwma",
            "LeastResponseTime",
            "default_rtt",
            "slow_start",
            "aggression",
            "min_weight_percent",
            "class_limits",
            "class_reserve",
        ] {
            assert!(
                text.contains(needle),
                "`archsim list` lacks {needle}:\n{text}"
            );
        }
    }
}
