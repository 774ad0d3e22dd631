//! The pieces of hand-written SVG the trace figures share: the page, a line of text, and the
//! colours of a request's stages.

use super::format::html_escape;

/// Colours of the stages, in `contract::trace_path::STAGES` order: network, queue, service,
/// backoff, other.
pub const STAGE_COLOURS: [&str; 5] = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#bab0ac"];

/// An SVG page `width` × `height` pixels on a white background (close it with `</svg>`).
pub fn svg_open(width: f64, height: f64) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    )
}

/// A line of text at (`x`, `y`), `size` pixels, anchored `start`, `middle` or `end`.
pub fn text(x: f64, y: f64, size: f64, anchor: &str, body: &str) -> String {
    format!(
        "<text x=\"{x:.2}\" y=\"{y:.2}\" font-size=\"{size}\" text-anchor=\"{anchor}\" fill=\"#222\">{}</text>\n",
        html_escape(body)
    )
}
