//! Text extents measured with the embedded DejaVu Sans, so layout (label areas, legend rows,
//! fault labels) and the overlap test agree with what the PNG and a browser show.
//!
//! A guess per character (the old 0.58 em) was wrong by up to a third for digits and capitals,
//! which is how a y axis title came to sit on its tick labels. usvg lays the text out with the
//! same font the rasteriser uses; the result is cached per (text, size), since a report
//! measures the same tick labels many times.

use super::raster::font_options;
use resvg::usvg;
use std::cell::RefCell;
use std::collections::BTreeMap;

thread_local! {
    /// Widths already measured on this thread, by (text, font size bits).
    static WIDTHS: RefCell<BTreeMap<(String, u64), f64>> = const { RefCell::new(BTreeMap::new()) };
}

/// Width in pixels of `text` set in DejaVu Sans at `font_px` pixels.
pub fn width_px(text: &str, font_px: f64) -> f64 {
    if text.trim().is_empty() {
        return 0.0;
    }
    let key = (text.to_string(), font_px.to_bits());
    if let Some(w) = WIDTHS.with(|c| c.borrow().get(&key).copied()) {
        return w;
    }
    let w = measure(text, font_px);
    WIDTHS.with(|c| c.borrow_mut().insert(key, w));
    w
}

fn measure(text: &str, font_px: f64) -> f64 {
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"4000\" height=\"100\">\
         <text x=\"0\" y=\"50\" font-family=\"sans-serif\" font-size=\"{font_px}\">{}</text></svg>",
        super::format::html_escape(text)
    );
    match usvg::Tree::from_str(&svg, &font_options()) {
        Ok(tree) => f64::from(tree.root().abs_bounding_box().width()),
        // Unparseable text cannot happen for escaped input; a generous guess keeps layout safe.
        Err(_) => text.chars().count() as f64 * font_px * 0.7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wider_text_measures_wider_and_digits_are_about_six_tenths_of_an_em() {
        let one = width_px("0", 20.0);
        let six = width_px("000000", 20.0);
        assert!((11.0..14.5).contains(&one), "{one}");
        assert!((six / one - 6.0).abs() < 0.6, "{six} vs {one}");
        assert_eq!(width_px("", 20.0), 0.0);
        assert!(width_px("WWW", 20.0) > width_px("iii", 20.0));
    }
}
