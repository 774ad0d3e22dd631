//! Checks of drawn figures that a reader would notice: two pieces of text on top of each
//! other, or text (a legend, a label) drawn over a data line. Text extents come from laying
//! the SVG out with the embedded font, as the PNG renderer does.

use resvg::tiny_skia::Point;
use resvg::usvg::{self, Node};

/// A text's box: left, top, right, bottom, pixels.
type TextBox = (f32, f32, f32, f32, String);

/// Every problem found in `svg`, described for a test failure message.
pub fn problems(svg: &str, data_colours: &[(u8, u8, u8)]) -> Vec<String> {
    let tree = match usvg::Tree::from_str(svg, &super::raster::font_options()) {
        Ok(t) => t,
        Err(e) => return vec![format!("does not parse: {e}")],
    };
    let (mut texts, mut points) = (Vec::new(), Vec::new());
    collect(tree.root(), data_colours, &mut texts, &mut points);
    let mut out = Vec::new();
    for (i, a) in texts.iter().enumerate() {
        for b in &texts[i + 1..] {
            if overlap(a, b) {
                out.push(format!("text {:?} overlaps text {:?}", a.4, b.4));
            }
        }
        if let Some(p) = points.iter().find(|p| inside(a, **p)) {
            out.push(format!(
                "text {:?} covers data at ({:.0}, {:.0})",
                a.4, p.x, p.y
            ));
        }
    }
    out
}

fn collect(
    group: &usvg::Group,
    colours: &[(u8, u8, u8)],
    texts: &mut Vec<TextBox>,
    points: &mut Vec<Point>,
) {
    for node in group.children() {
        match node {
            Node::Group(g) => collect(g, colours, texts, points),
            Node::Text(t) => {
                let r = t.abs_bounding_box();
                let words: String = t.chunks().iter().map(|c| c.text()).collect();
                texts.push((r.left(), r.top(), r.right(), r.bottom(), words));
            }
            Node::Path(p) => {
                let Some(stroke) = p.stroke() else { continue };
                let usvg::Paint::Color(c) = stroke.paint() else {
                    continue;
                };
                if colours.contains(&(c.red, c.green, c.blue)) {
                    let transform = p.abs_transform();
                    let corners: Vec<Point> = p
                        .data()
                        .points()
                        .iter()
                        .map(|q| {
                            let mut q = *q;
                            transform.map_point(&mut q);
                            q
                        })
                        .collect();
                    points.extend(along(&corners));
                }
            }
            Node::Image(_) => {}
        }
    }
}

/// Points every two pixels along the polyline through `corners`, so a line crossing a text
/// box between two of its corners is seen too.
fn along(corners: &[Point]) -> Vec<Point> {
    let mut out: Vec<Point> = corners.first().copied().into_iter().collect();
    for pair in corners.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let steps = (a.distance(b) / 2.0).ceil().max(1.0) as usize;
        out.extend((1..=steps).map(|k| {
            let t = k as f32 / steps as f32;
            Point::from_xy(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t)
        }));
    }
    out
}

/// Whether two boxes share more than a pixel each way (glyph boxes of neighbours may touch).
fn overlap(a: &TextBox, b: &TextBox) -> bool {
    let w = a.2.min(b.2) - a.0.max(b.0);
    let h = a.3.min(b.3) - a.1.max(b.1);
    w > 1.0 && h > 1.0
}

fn inside(a: &TextBox, p: Point) -> bool {
    p.x > a.0 + 1.0 && p.x < a.2 - 1.0 && p.y > a.1 + 1.0 && p.y < a.3 - 1.0
}
