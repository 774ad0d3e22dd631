//! Checks across nodes: what each reference may name, that a transaction system's parts agree,
//! that no request goes round a loop, and that run-wide observers do not share a name.
//!
//! A component validates its own fields and that the names it uses are declared; only here is
//! the whole scenario in view, so only here can "a client never targets a client" or "these
//! proxies forward to each other" be seen. Components assume all of it when they are built
//! (a coordinator indexes participants by the client's bit mask), so a scenario that passes
//! validation must never break it.
//!
//! ```text
//!  every reference (node, field, name) ──kind of what it names──▶ fits the field?
//!  forwarding references between declarations ──depth-first search──▶ no cycle
//! ```

use super::Spec;
use crate::components::NodeConfig;
use crate::components::txn::CHECKER;
use crate::contract::validate::{NameTable, Path, Validator};

/// What a reference must name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// A node that answers requests.
    Service,
    /// A `TxnCoordinator`.
    Coordinator,
    /// A `TxnParticipant` pool, by its own name.
    ParticipantGroup,
    /// A `Cache` (a purge's next tier).
    Cache,
    /// A node that answers requests, or a `Gslb` (a client resolves it to an entry point).
    Resolvable,
}

/// One name a node's configuration uses, where, and whether requests travel along it.
struct Ref<'a> {
    at: Path,
    name: &'a str,
    want: Want,
}

/// Every check of this module; problems go to `v`.
pub fn check(spec: &Spec, names: &NameTable, decl_of: &[usize], v: &mut Validator<'_>) {
    let nodes = Path::root().field("nodes");
    let refs: Vec<Vec<Ref<'_>>> = spec
        .nodes
        .iter()
        .map(|(name, cfg)| references(cfg, &nodes.key(name)))
        .collect();
    let target = |name: &str| -> Option<usize> {
        let ids = names.resolve(name);
        ids.first().map(|id| decl_of[id.idx()])
    };
    for r in refs.iter().flatten() {
        if let Some(decl) = target(r.name) {
            check_kind(spec, r, decl, v);
        }
    }
    check_txn(spec, v);
    check_cycles(spec, &refs, &target, v);
    check_observers(spec, v);
    check_controlled(spec, &refs, names, v);
}

/// A controller (autoscaler or deploy) names a `Server` pool by its declared name, at most one
/// controller per pool, within the pool's size; only load balancers send to a controlled pool
/// (they follow which replicas are in rotation; a client or a caller picking replicas itself
/// would not).
fn check_controlled(spec: &Spec, refs: &[Vec<Ref<'_>>], names: &NameTable, v: &mut Validator<'_>) {
    let nodes = Path::root().field("nodes");
    let mut controlled: Vec<&str> = Vec::new();
    for (name, cfg) in &spec.nodes {
        // (pool, replicas it needs at most, the field that sets that, what it is)
        let (pool, needs, field, what) = match cfg {
            NodeConfig::Autoscaler(a) => (&a.pool, u64::from(a.max), "max", "max"),
            NodeConfig::Deploy(d) => (&d.pool, d.needs(), "strategy", "the deploy runs"),
            _ => continue,
        };
        let at = nodes.key(name).field("pool");
        match spec.nodes.get(pool) {
            Some(NodeConfig::Server(s)) if needs > u64::from(s.replicas) => v.error(
                &nodes.key(name).field(field),
                format!(
                    "{what} {needs}{} but pool \"{pool}\" has {} replicas",
                    if what == "max" { "" } else { " replicas" },
                    s.replicas
                ),
                "expected at most the pool's `replicas` (its largest size, built in advance)",
            ),
            Some(NodeConfig::Server(_)) if controlled.contains(&pool.as_str()) => v.error(
                &at,
                format!("pool \"{pool}\" already has a controller (autoscaler or deploy)"),
                "expected one controller per pool",
            ),
            Some(NodeConfig::Server(_)) => controlled.push(pool),
            Some(other) => v.error(
                &at,
                format!("\"{pool}\" is a {}", kind(other)),
                "expected the declared name of a `Server` pool",
            ),
            None => v.error(
                &at,
                format!("unknown pool \"{pool}\""),
                format!(
                    "expected the declared name of a `Server` pool{}",
                    names.resolve(pool).first().map_or(String::new(), |id| {
                        format!(" (\"{}\", not a replica)", names.nodes[id.idx()].1)
                    })
                ),
            ),
        }
    }
    for ((_, cfg), refs) in spec.nodes.iter().zip(refs) {
        if matches!(cfg, NodeConfig::LoadBalancer(_)) {
            continue;
        }
        for r in refs {
            let group = names
                .resolve(r.name)
                .first()
                .map(|id| &names.nodes[id.idx()].1);
            if controlled
                .iter()
                .any(|c| *c == r.name || group.is_some_and(|g| g == c))
            {
                v.error(
                    &r.at,
                    format!("\"{}\" is resized by an autoscaler or a deploy", r.name),
                    "expected a LoadBalancer in front of it (only balancers follow which \
                     replicas are in rotation)",
                );
            }
        }
    }
}

/// The names `cfg` uses, with what each must be.
fn references<'a>(cfg: &'a NodeConfig, at: &Path) -> Vec<Ref<'a>> {
    let one = |field: &str, name: &'a String, want| Ref {
        at: at.field(field),
        name,
        want,
    };
    let list = |field: &str, list: &'a [String]| -> Vec<Ref<'a>> {
        let at = at.field(field);
        list.iter()
            .enumerate()
            .map(|(i, name)| Ref {
                at: at.index(i),
                name,
                want: Want::Service,
            })
            .collect()
    };
    match cfg {
        NodeConfig::Client(c) => vec![one("target", &c.target, Want::Resolvable)],
        NodeConfig::Gslb(c) => c
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| Ref {
                at: at.field("entries").index(i).field("target"),
                name: &e.target,
                want: Want::Service,
            })
            .collect(),
        NodeConfig::KvClient(c) => vec![one("target", &c.target, Want::Service)],
        NodeConfig::LoadBalancer(c) => list("backends", &c.backends),
        NodeConfig::ShardRouter(c) => list("shards", &c.shards),
        NodeConfig::Server(c) => c
            .calls
            .iter()
            .enumerate()
            .flat_map(|(i, stage)| {
                stage.to.iter().enumerate().map(move |(j, name)| Ref {
                    at: at.field("calls").index(i).field("to").index(j),
                    name,
                    want: Want::Service,
                })
            })
            .collect(),
        NodeConfig::CircuitBreaker(c) => vec![one("target", &c.target, Want::Service)],
        NodeConfig::RateLimiter(c) => vec![one("target", &c.target, Want::Service)],
        NodeConfig::Bulkhead(c) => vec![one("target", &c.target, Want::Service)],
        NodeConfig::Cache(c) => {
            let mut refs = vec![one("backend", &c.backend, Want::Service)];
            refs.extend(list("purge_to", &c.purge_to).into_iter().map(|r| Ref {
                want: Want::Cache,
                ..r
            }));
            refs
        }
        NodeConfig::Queue(c) => c
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| Ref {
                at: at.field("groups").index(i).field("consumers"),
                name: &g.consumers,
                want: Want::Service,
            })
            .collect(),
        NodeConfig::TxnClient(c) => vec![
            one("coordinator", &c.coordinator, Want::Coordinator),
            one("participants", &c.participants, Want::ParticipantGroup),
        ],
        NodeConfig::TxnCoordinator(c) => {
            vec![one("participants", &c.participants, Want::ParticipantGroup)]
        }
        NodeConfig::TxnParticipant(c) => {
            vec![one("coordinator", &c.coordinator, Want::Coordinator)]
        }
        // A replicated store's replicas find each other by their group; a plug-in's references
        // are its own business.
        // A consumer's topic is checked with the consumer (it must be a Topic).
        NodeConfig::ReplicatedStore(_)
        | NodeConfig::ReadReplicas(_)
        | NodeConfig::Plugin(_)
        | NodeConfig::Topic(_)
        | NodeConfig::LogConsumer(_) => Vec::new(),
        // A controller's pool is checked by `check_controlled` (no requests travel to it).
        NodeConfig::Autoscaler(_) | NodeConfig::Deploy(_) => Vec::new(),
    }
}

/// The component name of a configuration, as written in a file.
fn kind(cfg: &NodeConfig) -> &str {
    match cfg {
        NodeConfig::Client(_) => "Client",
        NodeConfig::LoadBalancer(_) => "LoadBalancer",
        NodeConfig::Server(_) => "Server",
        NodeConfig::Plugin(p) => &p.kind,
        NodeConfig::CircuitBreaker(_) => "CircuitBreaker",
        NodeConfig::RateLimiter(_) => "RateLimiter",
        NodeConfig::Bulkhead(_) => "Bulkhead",
        NodeConfig::TxnClient(_) => "TxnClient",
        NodeConfig::TxnCoordinator(_) => "TxnCoordinator",
        NodeConfig::TxnParticipant(_) => "TxnParticipant",
        NodeConfig::Cache(_) => "Cache",
        NodeConfig::KvClient(_) => "KvClient",
        NodeConfig::ReplicatedStore(_) => "ReplicatedStore",
        NodeConfig::ReadReplicas(_) => "ReadReplicas",
        NodeConfig::Queue(_) => "Queue",
        NodeConfig::ShardRouter(_) => "ShardRouter",
        NodeConfig::Topic(_) => "Topic",
        NodeConfig::LogConsumer(_) => "LogConsumer",
        NodeConfig::Autoscaler(_) => "Autoscaler",
        NodeConfig::Deploy(_) => "Deploy",
        NodeConfig::Gslb(_) => "Gslb",
    }
}

/// Does a node of this kind answer requests? Clients and the transaction family do not.
fn serves_requests(cfg: &NodeConfig) -> bool {
    match cfg {
        NodeConfig::Client(_)
        | NodeConfig::KvClient(_)
        | NodeConfig::TxnClient(_)
        | NodeConfig::TxnCoordinator(_)
        | NodeConfig::TxnParticipant(_)
        | NodeConfig::LogConsumer(_)
        | NodeConfig::Autoscaler(_)
        | NodeConfig::Deploy(_)
        | NodeConfig::Gslb(_) => false,
        NodeConfig::LoadBalancer(_)
        | NodeConfig::Server(_)
        | NodeConfig::Plugin(_)
        | NodeConfig::CircuitBreaker(_)
        | NodeConfig::RateLimiter(_)
        | NodeConfig::Bulkhead(_)
        | NodeConfig::Cache(_)
        | NodeConfig::ReplicatedStore(_)
        | NodeConfig::ReadReplicas(_)
        | NodeConfig::Queue(_)
        | NodeConfig::ShardRouter(_)
        | NodeConfig::Topic(_) => true,
    }
}

/// A problem unless the declaration `decl` that `r` names is what `r` needs.
fn check_kind(spec: &Spec, r: &Ref<'_>, decl: usize, v: &mut Validator<'_>) {
    let Some((decl_name, cfg)) = spec.nodes.get_index(decl) else {
        return;
    };
    let what = kind(cfg);
    let fits = match r.want {
        Want::Service => serves_requests(cfg),
        Want::Coordinator => matches!(cfg, NodeConfig::TxnCoordinator(_)),
        Want::Cache => matches!(cfg, NodeConfig::Cache(_)),
        Want::Resolvable => serves_requests(cfg) || matches!(cfg, NodeConfig::Gslb(_)),
        Want::ParticipantGroup => {
            matches!(cfg, NodeConfig::TxnParticipant(_)) && decl_name == r.name
        }
    };
    if fits {
        return;
    }
    let expected = match r.want {
        Want::Service => "expected a node that answers requests (a Server, LoadBalancer, proxy, \
                          Cache, Queue, ShardRouter, ReplicatedStore, ReadReplicas, Topic or plug-in)"
            .to_string(),
        Want::Resolvable => "expected a node that answers requests (a Server, LoadBalancer, \
                             proxy, Cache, Queue, ShardRouter, ReplicatedStore, ReadReplicas, \
                             Topic or plug-in) or a Gslb to resolve"
            .to_string(),
        Want::Coordinator => "expected a TxnCoordinator".to_string(),
        Want::Cache => "expected a Cache (a purge goes from cache to cache)".to_string(),
        Want::ParticipantGroup if matches!(cfg, NodeConfig::TxnParticipant(_)) => format!(
            "expected the whole group \"{decl_name}\": transactions name participants by \
             their index in the group"
        ),
        Want::ParticipantGroup => "expected a TxnParticipant group".to_string(),
    };
    v.error(&r.at, format!("\"{}\" is a {what}", r.name), expected);
}

/// One transaction system per scenario, its parts naming each other: every client's
/// participants are its coordinator's, and that group's coordinator is that coordinator.
fn check_txn(spec: &Spec, v: &mut Validator<'_>) {
    let nodes = Path::root().field("nodes");
    let coordinators: Vec<(&String, &String)> = spec
        .nodes
        .iter()
        .filter_map(|(n, c)| match c {
            NodeConfig::TxnCoordinator(c) => Some((n, &c.participants)),
            _ => None,
        })
        .collect();
    for (name, _) in coordinators.iter().skip(1) {
        v.error(
            &nodes.key(name),
            "a second TxnCoordinator",
            format!(
                "expected one transaction system per scenario (its atomicity checker, \
                 \"{CHECKER}\", follows one participant group); \"{}\" is the first",
                coordinators[0].0
            ),
        );
    }
    // Only a coordinator whose own `participants` is right says what its clients must name.
    let is_group = |g: &str| matches!(spec.nodes.get(g), Some(NodeConfig::TxnParticipant(_)));
    let group_of = |coord: &str| {
        let found = coordinators.iter().find(|(n, _)| *n == coord);
        found.map(|c| c.1).filter(|g| is_group(g))
    };
    for (name, cfg) in &spec.nodes {
        match cfg {
            NodeConfig::TxnClient(c) => match group_of(&c.coordinator) {
                Some(group) if *group != c.participants => v.error(
                    &nodes.key(name).field("participants"),
                    format!(
                        "participants \"{}\", but coordinator \"{}\" runs \"{group}\"",
                        c.participants, c.coordinator
                    ),
                    format!("expected \"{group}\", the coordinator's `participants`"),
                ),
                _ => {}
            },
            NodeConfig::TxnParticipant(p) => {
                for (coord, _) in coordinators.iter().filter(|(_, g)| *g == name) {
                    if p.coordinator != **coord {
                        v.error(
                            &nodes.key(name).field("coordinator"),
                            format!(
                                "coordinator \"{}\", but \"{coord}\" runs this group's \
                                 transactions",
                                p.coordinator
                            ),
                            format!("expected \"{coord}\""),
                        );
                    }
                }
            }
            _ => {}
        }
    }
}

/// Requests that go round a loop of forwarding nodes never reach one that answers them: with
/// zero-time hops the run spins at one instant (or one nanosecond at a time), otherwise every
/// request circulates until it times out. Each loop is reported once, at the reference that
/// closes it, with every hop named.
fn check_cycles(
    spec: &Spec,
    refs: &[Vec<Ref<'_>>],
    target: &dyn Fn(&str) -> Option<usize>,
    v: &mut Validator<'_>,
) {
    let n = refs.len();
    let edges: Vec<Vec<(usize, &Ref<'_>)>> = refs
        .iter()
        .map(|rs| {
            rs.iter()
                .filter(|r| r.want == Want::Service)
                .filter_map(|r| target(r.name).map(|t| (t, r)))
                .collect()
        })
        .collect();
    // 0 unvisited, 1 on the current path, 2 done.
    let mut state = vec![0u8; n];
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        let mut path = vec![start];
        let mut next_edge = vec![0usize];
        state[start] = 1;
        while let (Some(&node), Some(edge)) = (path.last(), next_edge.last_mut()) {
            let Some(&(to, r)) = edges[node].get(*edge) else {
                state[node] = 2;
                path.pop();
                next_edge.pop();
                continue;
            };
            *edge += 1;
            match state[to] {
                0 => {
                    state[to] = 1;
                    path.push(to);
                    next_edge.push(0);
                }
                1 => report_cycle(spec, &path, to, r, v),
                _ => {}
            }
        }
    }
}

fn report_cycle(spec: &Spec, path: &[usize], to: usize, r: &Ref<'_>, v: &mut Validator<'_>) {
    let from = path.iter().position(|&d| d == to).unwrap_or(0);
    let hops: Vec<String> = path[from..]
        .iter()
        .chain([&to])
        .filter_map(|&d| spec.nodes.get_index(d))
        .map(|(name, _)| format!("\"{name}\""))
        .collect();
    v.error(
        &r.at,
        format!("requests go round a loop: {}", hops.join(" -> ")),
        "expected every request to reach a node that answers it without forwarding; a loop \
         of zero-time hops never lets time advance",
    );
}

/// Run-wide observers are found by name and reported under it, like nodes: one name, one
/// kind of observer, and never a node's name.
fn check_observers(spec: &Spec, v: &mut Validator<'_>) {
    let nodes = Path::root().field("nodes");
    let mut used: Vec<(String, &str, Path)> = Vec::new();
    let mut claim = |name: String, what: &'static str, at: Path, v: &mut Validator<'_>| {
        let clash = used.iter().find(|(n, w, _)| *n == name && *w != what);
        if let Some((_, other, _)) = clash {
            v.error(
                &at,
                format!("\"{name}\" already names the run's {other}"),
                format!("expected another name for this {what}"),
            );
        } else if spec.nodes.contains_key(&name) {
            v.error(
                &at,
                format!("\"{name}\" is also a node's name"),
                format!("expected a {what} name no node has: both are reported under it"),
            );
        } else {
            used.push((name, what, at));
        }
    };
    for (name, cfg) in &spec.nodes {
        let at = nodes.key(name);
        match cfg {
            NodeConfig::KvClient(c) => {
                claim(c.history.clone(), "history", at.field("history"), v);
            }
            NodeConfig::ReplicatedStore(s) => {
                claim(s.history.clone(), "history", at.field("history"), v);
                match s.mode.leader_follower() {
                    Some(lf) => claim(lf.election, "election checker", at.field("mode"), v),
                    None => claim(format!("{name}-convergence"), "convergence observer", at, v),
                }
            }
            NodeConfig::TxnCoordinator(_)
            | NodeConfig::TxnClient(_)
            | NodeConfig::TxnParticipant(_) => {
                claim(CHECKER.to_string(), "transaction checker", at, v);
            }
            NodeConfig::Cache(_) => claim("cache-truth".to_string(), "cache checker", at, v),
            NodeConfig::Topic(t) => {
                claim(t.checker.clone(), "stream checker", at.field("checker"), v)
            }
            NodeConfig::LogConsumer(c) => {
                claim(c.checker.clone(), "stream checker", at.field("checker"), v)
            }
            _ => {}
        }
    }
}
