//! The message sequence diagram of the first K traced requests (`run --trace N --sequence K`),
//! as Maelstrom's messages.svg draws a run: a lifeline per node, an arrow per message from
//! its departure to its arrival, what nodes did as bars, retries, hedges and timeouts as
//! labels, and the run's faults as shaded bands with the nodes they hit marked.
//!
//! Time runs down the page by event order, not to scale: every distinct instant (a message
//! leaving or arriving, a request issued or ended, a fault starting or ending) gets a row of
//! its own, labelled with its time, so requests milliseconds apart and hops microseconds
//! apart are both readable. Between two rows, time is interpolated (fault bands).

use super::format::{fixed, html_escape};
use super::svg::{STAGE_COLOURS, svg_open, text};
use crate::results::{FaultWindow, TraceMessage, TracedRequest, Traces};

/// Most message arrows drawn: requests past it are left out (at least one is always drawn),
/// so the page stays readable (about 14 px per instant).
pub const MAX_ARROWS: usize = 200;

const ROW_H: f64 = 14.0;
const COL_W: f64 = 190.0;
const AXIS_W: f64 = 90.0;
/// Room between the time axis and the first lifeline for each request's outcome.
const GUTTER: f64 = 190.0;
const TOP: f64 = 96.0;
/// One colour per request, cycling, so interleaved requests can be told apart.
const REQUEST_COLOURS: [&str; 6] = [
    "#1f4e79", "#7b3294", "#00796b", "#8c510a", "#37474f", "#b8860b",
];
const FAILED: &str = "#c0392b";

/// The requests the diagram draws: the first `t.sequence` traced requests by issue time, as
/// many of them as fit in [`MAX_ARROWS`] arrows.
pub fn first_requests(t: &Traces) -> &[TracedRequest] {
    let k = (t.sequence as usize).min(t.requests.len());
    let mut arrows = 0;
    let mut n = 0;
    for r in &t.requests[..k] {
        if n > 0 && arrows + r.messages.len() > MAX_ARROWS {
            break;
        }
        arrows += r.messages.len();
        n += 1;
    }
    &t.requests[..n]
}

/// The diagram's nodes, in order of first appearance (the first request's client first).
fn lifelines(requests: &[TracedRequest]) -> Vec<&str> {
    let mut nodes: Vec<&str> = Vec::new();
    for r in requests {
        let names = std::iter::once(r.client.as_str()).chain(
            r.messages
                .iter()
                .flat_map(|m| [m.from.as_str(), m.to.as_str()]),
        );
        for n in names {
            if !nodes.contains(&n) {
                nodes.push(n);
            }
        }
    }
    nodes
}

/// The faults that overlap `[start, end]` (ns), with their interval in ns.
fn overlapping(faults: &[FaultWindow], (start, end): (u64, u64)) -> Vec<(&FaultWindow, u64, u64)> {
    faults
        .iter()
        .map(|f| {
            (
                f,
                (f.start_s * 1e9).round() as u64,
                (f.end_s * 1e9).round() as u64,
            )
        })
        .filter(|&(_, fs, fe)| fe >= start && fs <= end)
        .collect()
}

/// Whether a fault's label names `node` or its group (`app` for `app-3`).
pub fn fault_hits(label: &str, node: &str) -> bool {
    let group = node
        .rsplit_once('-')
        .filter(|(_, i)| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
        .map(|(g, _)| g);
    label
        .split(|c: char| c.is_whitespace() || ",|()[]".contains(c))
        .any(|w| w == node || Some(w) == group)
}

/// The instants that get a row, sorted and distinct.
fn instants(requests: &[TracedRequest], faults: &[(&FaultWindow, u64, u64)]) -> Vec<u64> {
    let mut t: Vec<u64> = Vec::new();
    for r in requests {
        t.push(r.issued_ns);
        t.extend(r.ended_ns);
        for m in &r.messages {
            t.push(m.departs_ns);
            t.extend(m.arrives_ns);
        }
        t.extend(r.marks.iter().map(|m| m.at_ns));
    }
    let (lo, hi) = (
        t.iter().copied().min().unwrap_or(0),
        t.iter().copied().max().unwrap_or(0),
    );
    for &(_, fs, fe) in faults {
        t.extend([fs.clamp(lo, hi), fe.clamp(lo, hi)]);
    }
    t.sort_unstable();
    t.dedup();
    t
}

/// The page position of an instant: its row, or between two rows in proportion.
fn row_y(rows: &[u64], t: u64) -> f64 {
    let y = |i: usize| TOP + ROW_H * (i as f64 + 0.5);
    match rows.binary_search(&t) {
        Ok(i) => y(i),
        Err(0) => y(0),
        Err(i) if i >= rows.len() => y(rows.len() - 1),
        Err(i) => {
            let (a, b) = (rows[i - 1], rows[i]);
            y(i - 1) + ROW_H * (t - a) as f64 / (b - a) as f64
        }
    }
}

/// The layout every part of the drawing shares.
struct Page<'a> {
    nodes: Vec<&'a str>,
    rows: Vec<u64>,
    left: f64,
    width: f64,
}

/// A fault's label, in the column right of the last lifeline.
fn fault_label(f: &FaultWindow) -> String {
    format!(
        "fault: {} ({} to {} s)",
        f.label,
        fixed(f.start_s, 3),
        fixed(f.end_s, 3)
    )
}

impl Page<'_> {
    fn x(&self, node: &str) -> f64 {
        let i = self.nodes.iter().position(|n| *n == node).unwrap_or(0);
        self.left + COL_W * (i as f64 + 0.5)
    }
    fn y(&self, t: u64) -> f64 {
        row_y(&self.rows, t)
    }
    fn bottom(&self) -> f64 {
        TOP + ROW_H * self.rows.len() as f64
    }
}

/// The diagram of `variant`'s first requests, or `None` when nothing was traced.
pub fn svg(variant: &str, t: &Traces, faults: &[FaultWindow]) -> Option<String> {
    let requests = first_requests(t);
    let arrows: usize = requests.iter().map(|r| r.messages.len()).sum();
    let title = format!(
        "The first {} traced request{} of {variant}: {arrows} message{}",
        requests.len(),
        if requests.len() == 1 { "" } else { "s" },
        if arrows == 1 { "" } else { "s" },
    );
    draw(&title, requests, faults)
}

/// The diagram of one request: the p99 of `variant`'s traced sample.
pub fn p99_svg(variant: &str, r: &TracedRequest, faults: &[FaultWindow]) -> String {
    let latency = r.ended_ns.map_or(0.0, |e| (e - r.issued_ns) as f64 / 1e6);
    let title = format!(
        "Request {} of {variant}: the p99 of the traced sample, {} ms",
        r.id,
        fixed(latency, 3)
    );
    let one = std::slice::from_ref(r);
    draw(&title, one, faults).unwrap_or_default()
}

/// `requests` on one page under `title`, with the faults that overlap them; `None` when
/// there are no requests.
fn draw(title: &str, requests: &[TracedRequest], faults: &[FaultWindow]) -> Option<String> {
    let first = requests.first()?;
    let nodes = lifelines(requests);
    let unfaulted = instants(requests, &[]);
    let last = unfaulted.last().copied().unwrap_or(first.issued_ns);
    let hit = overlapping(faults, (first.issued_ns, last));
    let rows = instants(requests, &hit);
    // Fault labels get a column of their own right of the lifelines, so no label crosses one.
    let labels_w = hit
        .iter()
        .map(|(f, _, _)| super::text::width_px(&fault_label(f), 10.0) + 16.0)
        .fold(0.0, f64::max);
    let lanes_w = AXIS_W + GUTTER + COL_W * nodes.len() as f64 + 20.0 + labels_w;
    let width = lanes_w
        .max(super::text::width_px(title, 15.0) + 40.0)
        .max(640.0);
    let page = Page {
        left: AXIS_W + GUTTER + (width - lanes_w) / 2.0,
        nodes,
        rows,
        width,
    };
    let height = page.bottom() + 30.0;
    let mut s = svg_open(width, height);
    s.push_str(&text(width / 2.0, 24.0, 15.0, "middle", title));
    s.push_str(&text(width / 2.0, 44.0, 11.0, "middle", KEY));
    s.push_str(&text(width / 2.0, 60.0, 11.0, "middle", KEY2));
    draw_faults(&mut s, &page, &hit);
    draw_axis(&mut s, &page);
    for (i, r) in requests.iter().enumerate() {
        draw_request(&mut s, &page, r, REQUEST_COLOURS[i % REQUEST_COLOURS.len()]);
    }
    s.push_str("</svg>\n");
    Some(s)
}

const KEY: &str = "time runs down by event order (each row one instant, ms since the run began); \
solid arrows are requests, dashed answers, red failures";
const KEY2: &str = "bars: queue or preempted (orange), service (green), backoff (red); shaded bands are faults, \
red lifeline segments the nodes they hit";

/// Lifelines with their node names, and each row's time on the left.
fn draw_axis(s: &mut String, page: &Page<'_>) {
    for n in &page.nodes {
        let x = page.x(n);
        s.push_str(&text(x, TOP - 12.0, 13.0, "middle", n));
        s.push_str(&format!(
            "<line class=\"lifeline\" x1=\"{x:.2}\" y1=\"{:.2}\" x2=\"{x:.2}\" y2=\"{:.2}\" \
             stroke=\"#999\" stroke-dasharray=\"4 3\"/>\n",
            TOP - 4.0,
            page.bottom()
        ));
    }
    for &t in &page.rows {
        let label = format!("{} ms", fixed(t as f64 / 1e6, 3));
        let x = page.left - GUTTER;
        s.push_str(&text(x, page.y(t) + 3.0, 9.0, "end", &label));
    }
}

/// A shaded band per fault across the lifelines, labelled, and a red segment on the
/// lifeline of each node it names.
fn draw_faults(s: &mut String, page: &Page<'_>, hit: &[(&FaultWindow, u64, u64)]) {
    for &(f, fs, fe) in hit {
        let (y0, y1) = (page.y(fs), page.y(fe));
        let h = (y1 - y0).max(2.0);
        s.push_str(&format!(
            "<rect class=\"fault\" x=\"{:.2}\" y=\"{y0:.2}\" width=\"{:.2}\" height=\"{h:.2}\" \
             fill=\"{FAILED}\" fill-opacity=\"0.10\"><title>{}</title></rect>\n",
            page.left,
            page.width - page.left,
            html_escape(&f.label)
        ));
        let column = page.left + COL_W * page.nodes.len() as f64 + 8.0;
        s.push_str(&text(column, y0 + 10.0, 10.0, "start", &fault_label(f)));
        for n in page.nodes.iter().filter(|n| fault_hits(&f.label, n)) {
            let x = page.x(n);
            s.push_str(&format!(
                "<line class=\"fault-hit\" x1=\"{x:.2}\" y1=\"{y0:.2}\" x2=\"{x:.2}\" \
                 y2=\"{:.2}\" stroke=\"{FAILED}\" stroke-width=\"4\" stroke-opacity=\"0.7\"/>\n",
                y0 + h
            ));
        }
    }
}

/// One request: its spans as bars, its messages as arrows, its marks as labels.
fn draw_request(s: &mut String, page: &Page<'_>, r: &TracedRequest, colour: &str) {
    for sp in &r.spans {
        let fill = match sp.kind.as_str() {
            "queue" | "preempted" => STAGE_COLOURS[1],
            "service" => STAGE_COLOURS[2],
            _ => STAGE_COLOURS[3],
        };
        let (y0, y1) = (page.y(sp.start_ns), page.y(sp.end_ns));
        s.push_str(&format!(
            "<rect x=\"{:.2}\" y=\"{y0:.2}\" width=\"8\" height=\"{:.2}\" fill=\"{fill}\" \
             fill-opacity=\"0.8\"><title>{} {}</title></rect>\n",
            page.x(&sp.node) - 4.0,
            (y1 - y0).max(1.0),
            html_escape(&sp.kind),
            r.id
        ));
    }
    let mut attempts: Vec<&str> = Vec::new();
    for m in &r.messages {
        let label = match m.what.strip_prefix("request") {
            Some(attempt) => {
                if !attempts.contains(&attempt) {
                    attempts.push(attempt);
                }
                let k = attempts.iter().position(|a| *a == attempt).unwrap_or(0);
                if k == 0 {
                    "request".to_string()
                } else {
                    format!("request, attempt {}", k + 1)
                }
            }
            None => m.what.clone(),
        };
        arrow(s, page, m, &label, colour);
    }
    // Marks at one node and instant (a timeout and the retry it causes) share a label.
    let mut marks: Vec<(&str, u64, Vec<&str>)> = Vec::new();
    for mk in &r.marks {
        match marks
            .iter_mut()
            .find(|(n, at, _)| *n == mk.node && *at == mk.at_ns)
        {
            Some((_, _, what)) => what.push(&mk.what),
            None => marks.push((&mk.node, mk.at_ns, vec![&mk.what])),
        }
    }
    for (node, at, what) in marks {
        let x = page.x(node) - 8.0;
        s.push_str(&text(x, page.y(at) + 3.0, 10.0, "end", &what.join(", ")));
    }
    let outcome = match r.ended_ns {
        Some(e) => format!(
            "request {}: {}, {} ms",
            r.id,
            r.outcome,
            fixed((e - r.issued_ns) as f64 / 1e6, 3)
        ),
        None => format!("request {}: unfinished", r.id),
    };
    let at = r.ended_ns.unwrap_or(r.issued_ns);
    s.push_str(&text(
        page.x(&r.client) - 12.0,
        page.y(at) + 3.0,
        10.0,
        "end",
        &outcome,
    ));
}

/// A message: an arrow from its departure to its arrival, labelled with what it carried and
/// its flight time, or a red stub ending in ✕ when the network lost it.
fn arrow(s: &mut String, page: &Page<'_>, m: &TraceMessage, label: &str, colour: &str) {
    let answer = !m.what.starts_with("request");
    let failed = answer && m.what != "ok";
    let colour = if failed { FAILED } else { colour };
    let dash = if answer {
        " stroke-dasharray=\"5 3\""
    } else {
        ""
    };
    let (x0, y0) = (page.x(&m.from), page.y(m.departs_ns));
    let title = format!(
        "{} -> {}: {} (sent {} ms, arrived {})",
        m.from,
        m.to,
        m.what,
        fixed(m.departs_ns as f64 / 1e6, 3),
        m.arrives_ns.map_or("never: lost".to_string(), |a| format!(
            "{} ms",
            fixed(a as f64 / 1e6, 3)
        ))
    );
    let Some(a) = m.arrives_ns else {
        let x1 = (x0 + page.x(&m.to)) / 2.0;
        s.push_str(&format!(
            "<line class=\"message lost\" x1=\"{x0:.2}\" y1=\"{y0:.2}\" x2=\"{x1:.2}\" \
             y2=\"{y0:.2}\" stroke=\"{FAILED}\" stroke-width=\"1.4\"><title>{}</title></line>\n",
            html_escape(&title)
        ));
        let lost = format!("\u{2715} lost {label}");
        s.push_str(&text(x1 + 2.0, y0 + 4.0, 11.0, "start", &lost));
        return;
    };
    let (x1, y1) = (page.x(&m.to), page.y(a));
    let dir = if x1 >= x0 { 1.0 } else { -1.0 };
    s.push_str(&format!(
        "<line class=\"message\" x1=\"{x0:.2}\" y1=\"{y0:.2}\" x2=\"{x1:.2}\" y2=\"{y1:.2}\" \
         stroke=\"{colour}\" stroke-width=\"1.3\"{dash}><title>{}</title></line>\n",
        html_escape(&title)
    ));
    s.push_str(&format!(
        "<path d=\"M{x1:.2},{y1:.2} l{:.2},-3.5 l0,7 z\" fill=\"{colour}\"/>\n",
        -8.0 * dir
    ));
    let flight = format!("{label} ({} ms)", fixed((a - m.departs_ns) as f64 / 1e6, 3));
    s.push_str(&text(
        (x0 + x1) / 2.0,
        (y0 + y1) / 2.0 - 3.0,
        9.0,
        "middle",
        &flight,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_label_hits_the_nodes_and_groups_it_names() {
        assert!(fault_hits("crash app-3", "app-3"));
        assert!(fault_hits("crash app", "app-3"));
        assert!(!fault_hits("crash app-3", "app-1"));
        assert!(!fault_hits("crash app", "lb"));
        assert!(fault_hits("partition db-0,db-1 | db-2", "db-1"));
        assert!(fault_hits("partition db-0 | app", "app-0"));
        assert!(!fault_hits("crash app-30", "app-3"));
    }

    #[test]
    fn instants_between_rows_are_placed_in_proportion() {
        let rows = [10, 20, 40];
        let y = |t| row_y(&rows, t);
        assert_eq!(y(20) - y(10), ROW_H);
        assert_eq!(y(30), y(20) + ROW_H / 2.0);
        assert_eq!((y(5), y(99)), (y(10), y(40)));
    }
}
