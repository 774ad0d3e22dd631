//! The topology diagram: the scenario's nodes by layer (clients → proxies and balancers →
//! services → stores), an arrow for every configured call, a pool as one box with its replica
//! count, fault targets marked, and calls only some variants make drawn dashed.
//!
//! ```text
//!  +-------+     +----------+     +-----------+
//!  | users | --> |    lb    | --> |  app ×4   |
//!  | Client|     |LoadBal.. |     |  Server   |
//!  +-------+     +----------+     | crash app-3|   <- fault target: red border, fault named
//!                                 +-----------+
//! ```
//!
//! `layout-rs` places the boxes and routes the edges (a Sugiyama layout); we record what it
//! draws through its rendering trait and write the SVG ourselves, with the report's font and
//! fixed number formatting, because its own SVG writer lists font styles in hash-map order.

use super::format::html_escape;
use super::plot::{FONT, shade_colours};
use super::text::width_px;
use crate::results::{FaultWindow, Results};
use layout::core::base::Orientation;
use layout::core::format::{ClipHandle, RenderBackend};
use layout::core::geometry::Point;
use layout::core::style::StyleAttr;
use layout::std_shapes::shapes::{Arrow, Element, ShapeKind};
use layout::topo::layout::VisualGraph;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Font size of box labels, pixels.
const FONT_PX: f64 = 14.0;
const LINE_PX: f64 = 18.0;
const PAD_PX: f64 = 12.0;

/// Which layer a component kind sits in: callers first, stores last.
fn layer(kind: &str) -> u8 {
    match kind {
        "Client" | "KvClient" | "TxnClient" => 0,
        "LoadBalancer" | "CircuitBreaker" | "RateLimiter" | "Bulkhead" | "ShardRouter"
        | "TxnCoordinator" => 1,
        "ReplicatedStore" | "TxnParticipant" => 3,
        // Servers, caches, queues and plug-ins: the services.
        _ => 2,
    }
}

/// Fill colour of a layer's boxes: light tints, so the text stays the darkest thing.
fn layer_fill(layer: u8) -> &'static str {
    match layer {
        0 => "#E8F1F8",
        1 => "#FDF1DC",
        2 => "#E3F4EE",
        _ => "#F3E6EF",
    }
}

/// A box of the diagram: a node or a pool of replicas.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeBox {
    /// The name in the scenario file.
    pub name: String,
    /// Component kind.
    pub kind: String,
    /// Replicas of a pool; 1 for a single node.
    pub replicas: u64,
    /// Declared with `replicas` (its members are `name-0`, `name-1`, ...).
    pub pool: bool,
    /// Labels of the faults that target it (or one of its replicas), each once.
    pub faults: Vec<String>,
}

impl NodeBox {
    fn lines(&self) -> Vec<String> {
        let name = if self.replicas > 1 {
            format!("{} ×{}", self.name, self.replicas)
        } else {
            self.name.clone()
        };
        let mut lines = vec![name, self.kind.clone()];
        lines.extend(self.faults.iter().map(|f| format!("⚡ {f}")));
        lines
    }
}

/// A call from one box to another; `variants` lists the variants that alone make it.
#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    /// Caller's box index.
    pub from: usize,
    /// Callee's box index.
    pub to: usize,
    /// Empty when every variant makes the call.
    pub variants: Vec<String>,
}

/// The boxes and edges of a scenario, from the resolved scenario echoed in its results.
pub fn graph(results: &Results) -> (Vec<NodeBox>, Vec<Edge>) {
    let nodes = results
        .scenario
        .resolved
        .get("nodes")
        .and_then(Value::as_object);
    let Some(nodes) = nodes else {
        return (Vec::new(), Vec::new());
    };
    let mut boxes: Vec<NodeBox> = nodes
        .iter()
        .map(|(name, config)| {
            let (kind, fields) = config
                .as_object()
                .and_then(|m| m.iter().next())
                .map_or(("?", &Value::Null), |(k, v)| (k.as_str(), v));
            NodeBox {
                name: name.clone(),
                kind: kind.to_string(),
                replicas: fields.get("replicas").and_then(Value::as_u64).unwrap_or(1),
                pool: fields.get("replicas").is_some_and(Value::is_u64),
                faults: Vec::new(),
            }
        })
        .collect();
    let mut edges: Vec<Edge> = Vec::new();
    for (from, (_, config)) in nodes.iter().enumerate() {
        let mut names = Vec::new();
        strings(config, &mut names);
        for to in names.iter().filter_map(|n| box_of(&boxes, n)) {
            add_edge(&mut edges, from, to, None);
        }
    }
    for variant in &results.variants {
        for (path, ron) in &variant.overrides {
            let node = path.split('.').next().unwrap_or("");
            let Some(from) = box_of(&boxes, node) else {
                continue;
            };
            for to in quoted(ron).iter().filter_map(|n| box_of(&boxes, n)) {
                add_edge(&mut edges, from, to, Some(&variant.name));
            }
        }
    }
    drop_back_references(&mut edges, &boxes);
    mark_faults(&mut boxes, &results.faults);
    (boxes, edges)
}

/// Adds the call `from` → `to` (a variant's alone, if `variant` is given), once.
fn add_edge(edges: &mut Vec<Edge>, from: usize, to: usize, variant: Option<&str>) {
    if from == to {
        return;
    }
    match (
        edges.iter_mut().find(|e| e.from == from && e.to == to),
        variant,
    ) {
        (Some(e), Some(v)) if !e.variants.is_empty() && !e.variants.iter().any(|x| x == v) => {
            e.variants.push(v.to_string())
        }
        (Some(_), _) => {}
        (None, v) => edges.push(Edge {
            from,
            to,
            variants: v.map(|v| vec![v.to_string()]).unwrap_or_default(),
        }),
    }
}

/// Of two nodes that name each other (a coordinator its participants, a participant its
/// coordinator), keeps the call from the earlier layer.
fn drop_back_references(edges: &mut Vec<Edge>, boxes: &[NodeBox]) {
    let pairs: Vec<(usize, usize)> = edges.iter().map(|e| (e.from, e.to)).collect();
    edges.retain(|e| {
        let mutual = pairs.contains(&(e.to, e.from));
        !(mutual && layer(&boxes[e.from].kind) > layer(&boxes[e.to].kind))
    });
}

/// The box a name refers to: a node, a pool, or a pool's replica (`app-3`).
fn box_of(boxes: &[NodeBox], name: &str) -> Option<usize> {
    boxes.iter().position(|b| b.name == name).or_else(|| {
        let (pool, index) = name.rsplit_once('-')?;
        let index: u64 = index.parse().ok()?;
        boxes
            .iter()
            .position(|b| b.name == pool && b.pool && index < b.replicas)
    })
}

/// Every string anywhere inside a JSON value.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Object(m) => m.values().for_each(|i| strings(i, out)),
        _ => {}
    }
}

/// Every double-quoted string in RON text (an override's value).
fn quoted(ron: &str) -> Vec<String> {
    ron.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Names each fault on the boxes whose name (or a replica's) appears in its label.
fn mark_faults(boxes: &mut [NodeBox], faults: &[FaultWindow]) {
    for (label, _) in super::faults::distinct(faults) {
        let words = label.split(|c: char| c.is_whitespace() || c == ',' || c == '|');
        let mut hit: Vec<usize> = words.filter_map(|w| box_of(boxes, w)).collect();
        hit.dedup();
        for i in hit {
            if !boxes[i].faults.iter().any(|f| f == label) {
                boxes[i].faults.push(label.to_string());
            }
        }
    }
}

/// What layout-rs draws, kept for writing our own SVG.
#[derive(Default)]
struct Recorder {
    /// Box index (from the element's properties) to its top-left corner and size.
    boxes: BTreeMap<usize, (Point, Point)>,
    /// Each edge's Bézier path and whether it is dashed.
    arrows: Vec<(Vec<(Point, Point)>, bool)>,
}

impl RenderBackend for Recorder {
    fn draw_rect(
        &mut self,
        xy: Point,
        size: Point,
        _: &StyleAttr,
        p: Option<String>,
        _: Option<ClipHandle>,
    ) {
        if let Some(index) = p.and_then(|p| p.parse().ok()) {
            self.boxes.insert(index, (xy, size));
        }
    }
    fn draw_line(&mut self, _: Point, _: Point, _: &StyleAttr, _: Option<String>) {}
    fn draw_circle(&mut self, _: Point, _: Point, _: &StyleAttr, _: Option<String>) {}
    fn draw_text(&mut self, _: Point, _: &str, _: &StyleAttr) {}
    fn draw_arrow(
        &mut self,
        path: &[(Point, Point)],
        dashed: bool,
        _: (bool, bool),
        _: &StyleAttr,
        _: Option<String>,
        _: &str,
    ) {
        self.arrows.push((path.to_vec(), dashed));
    }
    fn create_clip(&mut self, _: Point, _: Point, _: usize) -> ClipHandle {
        0
    }
}

/// The diagram as an SVG document; `None` when the results name no nodes.
pub fn svg(results: &Results) -> Option<String> {
    let (boxes, edges) = graph(results);
    if boxes.is_empty() {
        return None;
    }
    let mut vg = VisualGraph::new(Orientation::LeftToRight);
    let handles: Vec<_> = boxes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let lines = b.lines();
            let widest = lines
                .iter()
                .map(|l| width_px(l, FONT_PX))
                .fold(0.0, f64::max);
            let size = Point::new(widest + 2.0 * PAD_PX, lines.len() as f64 * LINE_PX + PAD_PX);
            let shape = ShapeKind::new_box("");
            let element = Element::create_with_properties(
                shape,
                StyleAttr::simple(),
                Orientation::LeftToRight,
                size,
                i.to_string(),
            );
            vg.add_node(element)
        })
        .collect();
    for e in &edges {
        let mut arrow = Arrow::simple("");
        if !e.variants.is_empty() {
            arrow.line_style = layout::core::style::LineStyleKind::Dashed;
        }
        vg.add_edge(arrow, handles[e.from], handles[e.to]);
    }
    let mut rec = Recorder::default();
    vg.do_it(false, false, false, &mut rec);
    Some(write_svg(&boxes, &edges, &rec))
}

fn write_svg(boxes: &[NodeBox], edges: &[Edge], rec: &Recorder) -> String {
    let (mut lo, mut hi) = (
        Point::new(f64::MAX, f64::MAX),
        Point::new(f64::MIN, f64::MIN),
    );
    let mut grow = |p: Point| {
        (lo.x, lo.y, hi.x, hi.y) = (lo.x.min(p.x), lo.y.min(p.y), hi.x.max(p.x), hi.y.max(p.y));
    };
    for (xy, size) in rec.boxes.values() {
        grow(*xy);
        grow(xy.add(*size));
    }
    for (path, _) in &rec.arrows {
        path.iter().for_each(|(a, b)| {
            grow(*a);
            grow(*b);
        });
    }
    let notes = variant_notes(boxes, edges);
    let margin = 16.0;
    let notes_px = notes.len() as f64 * LINE_PX;
    let (w, h) = (
        hi.x - lo.x + 2.0 * margin,
        hi.y - lo.y + 2.0 * margin + notes_px,
    );
    let (dx, dy) = (margin - lo.x, margin - lo.y);
    let mut out = format!(
        "<svg width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" \
         xmlns=\"http://www.w3.org/2000/svg\">\n<defs><marker id=\"arrow\" markerWidth=\"10\" \
         markerHeight=\"8\" refX=\"9\" refY=\"4\" orient=\"auto\"><path d=\"M0,0 L10,4 L0,8 z\" \
         fill=\"#555555\"/></marker></defs>\n<rect width=\"100%\" height=\"100%\" fill=\"#FFFFFF\"/>\n"
    );
    for (path, dashed) in &rec.arrows {
        let p = |q: Point| format!("{:.1} {:.1}", q.x + dx, q.y + dy);
        let mut d = format!(
            "M {} C {}, {}, {}",
            p(path[0].0),
            p(path[0].1),
            p(path[1].0),
            p(path[1].1)
        );
        for point in path.iter().skip(2) {
            let _ = write!(d, " S {}, {}", p(point.0), p(point.1));
        }
        let dash = if *dashed {
            " stroke-dasharray=\"6,4\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<path d=\"{d}\" fill=\"none\" stroke=\"#555555\" stroke-width=\"1.5\"{dash} marker-end=\"url(#arrow)\"/>"
        );
    }
    for (i, (xy, size)) in &rec.boxes {
        write_box(
            &mut out,
            &boxes[*i],
            (xy.x + dx, xy.y + dy),
            (size.x, size.y),
        );
    }
    for (k, note) in notes.iter().enumerate() {
        let y = h - notes_px + k as f64 * LINE_PX + 4.0;
        let _ = writeln!(
            out,
            "<text x=\"{margin:.0}\" y=\"{y:.1}\" dy=\"0.76em\" font-family=\"{FONT}\" font-size=\"13\" fill=\"#555555\">{}</text>",
            html_escape(note)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// One box: rounded, tinted by layer, red-bordered if a fault targets it; name, kind, faults.
fn write_box(out: &mut String, b: &NodeBox, (x, y): (f64, f64), (w, h): (f64, f64)) {
    let fill = layer_fill(layer(&b.kind));
    let (stroke, width) = if b.faults.is_empty() {
        ("#777777".to_string(), 1.0)
    } else {
        let (c, _) = shade_colours(super::plot::ShadeKind::Fault(super::faults::kind(
            &b.faults[0],
        )));
        (format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2), 2.5)
    };
    let _ = writeln!(
        out,
        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" rx=\"6\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{width}\"/>"
    );
    for (k, line) in b.lines().iter().enumerate() {
        let (weight, colour) = match k {
            0 => ("bold", "#222222"),
            1 => ("normal", "#555555"),
            _ => ("normal", "#9E1B1B"),
        };
        let ty = y + PAD_PX / 2.0 + k as f64 * LINE_PX + 1.0;
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{ty:.1}\" dy=\"0.9em\" text-anchor=\"middle\" font-family=\"{FONT}\" font-size=\"{FONT_PX}\" font-weight=\"{weight}\" fill=\"{colour}\">{}</text>",
            x + w / 2.0,
            html_escape(line)
        );
    }
}

/// A line under the diagram for each group of variant-only calls.
fn variant_notes(boxes: &[NodeBox], edges: &[Edge]) -> Vec<String> {
    edges
        .iter()
        .filter(|e| !e.variants.is_empty())
        .map(|e| {
            format!(
                "dashed: {} → {} only in {}",
                boxes[e.from].name,
                boxes[e.to].name,
                e.variants.join(", ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(nodes: Value, faults: Vec<FaultWindow>) -> Results {
        let mut r = super::super::tests::fixture();
        r.scenario.resolved = serde_json::json!({ "nodes": nodes });
        r.faults = faults;
        r
    }

    #[test]
    fn pools_are_one_box_calls_are_edges_and_fault_targets_are_named() {
        let nodes = serde_json::json!({
            "users": {"Client": {"target": "lb"}},
            "lb": {"LoadBalancer": {"backends": ["app"]}},
            "app": {"Server": {"replicas": 4}},
        });
        let crash = FaultWindow {
            label: "crash app-3".into(),
            start_s: 1.0,
            end_s: 2.0,
            random: false,
        };
        let mut r = results(nodes, vec![crash.clone(), crash]);
        r.variants[1]
            .overrides
            .insert("lb.backends".into(), "[\"users\"]".into());
        let (boxes, edges) = graph(&r);
        let names: Vec<String> = boxes.iter().map(|b| b.lines()[0].clone()).collect();
        assert_eq!(names, ["users", "lb", "app ×4"]);
        assert_eq!(
            boxes[2].faults,
            ["crash app-3"],
            "a repeated fault is named once"
        );
        let pairs: Vec<(usize, usize, usize)> = edges
            .iter()
            .map(|e| (e.from, e.to, e.variants.len()))
            .collect();
        assert_eq!(
            pairs,
            [(0, 1, 0), (1, 2, 0)],
            "the override's edge exists already"
        );
        let svg = svg(&r).expect("a diagram");
        assert_eq!(svg.matches("<rect x=").count(), 3);
        assert_eq!(svg.matches("marker-end").count(), 2);
        assert!(svg.contains("app ×4") && svg.contains("⚡ crash app-3"));
        assert_eq!(
            Some(svg.clone()),
            super::svg(&r),
            "the same bytes every time"
        );
    }

    #[test]
    fn a_call_only_one_variant_makes_is_dashed_and_noted() {
        let nodes = serde_json::json!({
            "api": {"Server": {"calls": [{"to": ["db"]}]}},
            "breaker": {"CircuitBreaker": {"target": "db"}},
            "db": {"Server": {}},
        });
        let mut r = results(nodes, Vec::new());
        r.variants[0].overrides.insert(
            "api.calls".into(),
            "[(to: [\"breaker\"], timeout: \"250ms\")]".into(),
        );
        let svg = svg(&r).expect("a diagram");
        assert!(svg.contains("stroke-dasharray"));
        assert!(
            svg.contains("dashed: api → breaker only in round-robin"),
            "{svg}"
        );
    }
}
