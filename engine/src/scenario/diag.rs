//! Renders scenario errors the way rustc does: `file:line:col`, the source line, a caret label.
//!
//! Validation finds the problem and [`locate`](super::locate::locate) finds its span; this module
//! only turns the two into text, through `codespan-reporting` with ASCII-only characters and no
//! colour, so the output reads the same in logs, on Windows consoles and in snapshot tests.
//!
//! ```text
//! error: unknown node "lbb"
//!  --> scenarios/x.ron:8:33
//!   |
//! 8 |         "users": Client(target: "lbb", arrival: Poisson(rate: 8000.0)),
//!   |                                 ^^^^^ expected one of: "lb", "app"
//! ```

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, Chars, Config};

use super::locate::{Span, line_col};
use std::borrow::Cow;

/// One problem found in a scenario file, ready to show to the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Headline, e.g. `unknown node "lbb"`.
    pub message: String,
    /// Bytes of the offending value in the source, usually from
    /// [`locate`](super::locate::locate). Out-of-range spans are clamped, not rejected.
    pub span: Span,
    /// What was expected, printed under the caret, e.g. `expected one of: "lb", "app"`; may be
    /// empty.
    pub label: String,
    /// Extra lines printed after the snippet as `= ...`, e.g. the path or a hint.
    pub notes: Vec<String>,
}

/// Renders every diagnostic in order, each with its `file:line:col`, source line and label.
///
/// The result is plain ASCII framing (the source text itself may hold any chars) and is
/// deterministic: the same inputs always give the same bytes.
///
/// Hostile input stays readable: a source line longer than [`MAX_LINE_CHARS`] is shown as an
/// excerpt around the caret, messages and labels are cut at [`MAX_TEXT_CHARS`], and after
/// [`MAX_SHOWN`] diagnostics the rest are counted, not shown.
#[must_use]
pub fn render(file_name: &str, src: &str, diags: &[Diagnostic]) -> String {
    let config = Config {
        chars: Chars::ascii(),
        ..Config::default()
    };
    let mut out = String::new();
    for diag in diags.iter().take(MAX_SHOWN) {
        let diag = shortened(diag);
        let span = diag.span.clamp_to(src);
        let (view, view_span) = excerpt(src, span);
        let file = SimpleFile::new(file_name, view.as_ref());
        let shown = Diagnostic {
            span: view_span,
            ..diag.clone()
        };
        match term::emit_into_string(&config, &file, &to_codespan(&view, &shown)) {
            Ok(text) => out.push_str(&real_column(text, file_name, src, span, &view, view_span)),
            // codespan only fails on spans outside the file, which clamping rules out; should
            // it fail anyway, the one-line form still tells the user where and what.
            Err(_) => {
                out.push_str(&render_plain(file_name, src, &diag));
                out.push('\n');
            }
        }
    }
    if diags.len() > MAX_SHOWN {
        let more = diags.len() - MAX_SHOWN;
        out.push_str(&format!("... and {more} more errors, not shown\n\n"));
    }
    out
}

/// Longest source line shown whole; a longer one is shown as an excerpt around the span.
pub const MAX_LINE_CHARS: usize = 160;
/// Longest message, label or note shown whole.
pub const MAX_TEXT_CHARS: usize = 240;
/// Most diagnostics shown for one file.
pub const MAX_SHOWN: usize = 50;

/// `text` cut to `max` chars, with `...` where it was cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

fn shortened(diag: &Diagnostic) -> Diagnostic {
    Diagnostic {
        message: cut(&diag.message, MAX_TEXT_CHARS),
        span: diag.span,
        label: cut(&diag.label, MAX_TEXT_CHARS),
        notes: diag.notes.iter().map(|n| cut(n, MAX_TEXT_CHARS)).collect(),
    }
}

/// The text codespan is shown: `src` itself when the span's line is short, else as many empty
/// lines as precede it (so the line number stays right) and an excerpt of that line around the
/// span, which is cut to the excerpt (and to its first line).
fn excerpt(src: &str, span: Span) -> (Cow<'_, str>, Span) {
    let line_start = src[..span.start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = src[span.start..]
        .find('\n')
        .map_or(src.len(), |i| span.start + i);
    let line = &src[line_start..line_end];
    if line.chars().count() <= MAX_LINE_CHARS {
        return (Cow::Borrowed(src), span);
    }
    let before = src[line_start..span.start].chars().count();
    let from = before.saturating_sub(MAX_LINE_CHARS / 3);
    let byte = |chars: usize| {
        line.char_indices()
            .nth(chars)
            .map_or(line.len(), |(b, _)| b)
    };
    let (cut_start, cut_end) = (byte(from), byte(from + MAX_LINE_CHARS));
    let lead = if cut_start > 0 { "..." } else { "" };
    let tail = if cut_end < line.len() { "..." } else { "" };
    let newlines = src[..line_start].matches('\n').count();
    let mut view = "\n".repeat(newlines);
    let origin = view.len() + lead.len();
    view.push_str(lead);
    view.push_str(&line[cut_start..cut_end]);
    view.push_str(tail);
    let local = |offset: usize| (offset - line_start).clamp(cut_start, cut_end) - cut_start;
    let start = origin + local(span.start);
    let end = origin + local(span.end.min(line_end));
    (Cow::Owned(view), Span { start, end })
}

/// codespan counts the column in the excerpt; put back the column in the real file.
fn real_column(
    text: String,
    file_name: &str,
    src: &str,
    span: Span,
    view: &str,
    view_span: Span,
) -> String {
    let (line, col) = line_col(src, span.start);
    let (_, view_col) = line_col(view, view_span.start);
    if col == view_col {
        return text;
    }
    let shown = format!("{file_name}:{line}:{view_col}");
    text.replacen(&shown, &format!("{file_name}:{line}:{col}"), 1)
}

/// Renders one diagnostic on one line: `file:line:col: message (label)`, the label part only
/// when there is one. Meant for terse logs and `--quiet` style output.
#[must_use]
pub fn render_plain(file_name: &str, src: &str, diag: &Diagnostic) -> String {
    let (line, col) = line_col(src, diag.span.clamp_to(src).start);
    let message = cut(&diag.message, MAX_TEXT_CHARS);
    let location = format!("{file_name}:{line}:{col}: {message}");
    if diag.label.is_empty() {
        location
    } else {
        format!("{location} ({})", cut(&diag.label, MAX_TEXT_CHARS))
    }
}

fn to_codespan(src: &str, diag: &Diagnostic) -> CsDiagnostic<()> {
    let label = Label::primary((), diag.span.clamp_to(src)).with_message(&diag.label);
    CsDiagnostic::error()
        .with_message(&diag.message)
        .with_labels(vec![label])
        .with_notes(diag.notes.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::validate::PathSeg;
    use crate::scenario::locate::locate;

    const SRC: &str = r#"// A comment
Scenario(
    name: "Load balancer strategies",
    seed: 7,
    duration: "60s",
    network: (latency: LogNormal(median: "400us", p99: "3ms")),
    nodes: {
        "users": Client(target: "lbb", arrival: Poisson(rate: 8000.0), timeout: "500ms"),
        "lb":    LoadBalancer(strategy: LeastConnections, backends: ["app"]),
        "app":   Server(replicas: 4, workers: 8, queue_limit: Some(256), service_time: Exponential(mean: "1ms")),
    },
)
"#;

    fn unknown_target() -> Diagnostic {
        let path = [
            PathSeg::Field("nodes".to_owned()),
            PathSeg::Key("users".to_owned()),
            PathSeg::Field("target".to_owned()),
        ];
        Diagnostic {
            message: r#"unknown node "lbb""#.to_owned(),
            span: locate(SRC, &path),
            label: r#"expected one of: "lb", "app""#.to_owned(),
            notes: vec![r#"at nodes."users".target"#.to_owned()],
        }
    }

    #[test]
    fn rich_form_shows_location_source_line_and_label() {
        let out = render("scenarios/x.ron", SRC, &[unknown_target()]);
        let expected = r#"error: unknown node "lbb"
  --> scenarios/x.ron:8:33
  |
8 |         "users": Client(target: "lbb", arrival: Poisson(rate: 8000.0), timeout: "500ms"),
  |                                 ^^^^^ expected one of: "lb", "app"
  |
  = at nodes."users".target

"#;
        assert_eq!(out, expected);
        assert!(out.is_ascii());
    }

    #[test]
    fn plain_form_is_one_line() {
        let out = render_plain("scenarios/x.ron", SRC, &unknown_target());
        let expected = r#"scenarios/x.ron:8:33: unknown node "lbb" (expected one of: "lb", "app")"#;
        assert_eq!(out, expected);
        let bare = Diagnostic {
            label: String::new(),
            ..unknown_target()
        };
        let out = render_plain("x.ron", SRC, &bare);
        assert_eq!(out, r#"x.ron:8:33: unknown node "lbb""#);
    }

    #[test]
    fn several_diagnostics_render_in_order_and_deterministically() {
        let second = Diagnostic {
            message: "queue too long".to_owned(),
            span: locate(SRC, &[PathSeg::Field("nodes".to_owned())]),
            label: String::new(),
            notes: Vec::new(),
        };
        let diags = [unknown_target(), second];
        let out = render("x.ron", SRC, &diags);
        assert!(out.find("x.ron:8:33").unwrap_or(usize::MAX) < out.find("x.ron:7:12").unwrap_or(0));
        assert_eq!(out, render("x.ron", SRC, &diags));
    }

    #[test]
    fn bad_spans_and_empty_files_still_render() {
        let wild = Diagnostic {
            span: Span {
                start: 10_000,
                end: 5,
            },
            ..unknown_target()
        };
        let out = render("x.ron", SRC, core::slice::from_ref(&wild));
        assert!(out.contains("unknown node"), "{out}");
        let out = render("empty.ron", "", &[wild]);
        assert!(out.contains("empty.ron:1:1"), "{out}");
        let inside_char = Diagnostic {
            span: Span { start: 1, end: 3 },
            ..unknown_target()
        };
        let out = render("u.ron", "é😀", &[inside_char]);
        assert!(out.contains("u.ron:1:1"), "{out}");
    }
}
