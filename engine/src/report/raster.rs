//! Turns the report's SVGs into PNGs with resvg, using fonts embedded in the binary.
//!
//! Plotters' own bitmap backend would need the system's fonts (fontconfig); a CI machine or a
//! container often has none, and a different machine's fonts would give different pixels. So
//! we rasterise the SVG instead, with DejaVu Sans compiled in and no system font ever loaded.

use super::ReportError;
use resvg::tiny_skia::{Color, Pixmap, Transform};
use resvg::usvg::{self, fontdb};
use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

/// PNG pixels per SVG pixel: 2 gives sharp images on high-density screens and in print.
pub const SCALE: f32 = 2.0;

/// The family name inside the embedded font files; `sans-serif` resolves to it.
const FAMILY: &str = "DejaVu Sans";

/// The font database, built once: parsing the fonts costs more than rendering a plot.
fn fonts() -> Arc<fontdb::Database> {
    static FONTS: OnceLock<Arc<fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut db = fontdb::Database::new();
            db.load_font_data(dejavu::sans::regular().to_vec());
            db.load_font_data(dejavu::sans::bold().to_vec());
            db.set_sans_serif_family(FAMILY);
            Arc::new(db)
        })
        .clone()
}

/// usvg options that resolve every font to the embedded DejaVu Sans.
pub fn font_options() -> usvg::Options<'static> {
    usvg::Options {
        fontdb: fonts(),
        // Text without a family (there should be none) gets DejaVu rather than a serif nobody has.
        font_family: FAMILY.to_string(),
        ..usvg::Options::default()
    }
}

/// Renders `svg` to PNG bytes at [`SCALE`] times its size, on a white background.
///
/// `file` names the output in errors.
pub fn svg_to_png(svg: &str, file: &str) -> Result<Vec<u8>, ReportError> {
    let fail = |message: String| ReportError::Png {
        file: file.to_string(),
        message,
    };
    let tree = usvg::Tree::from_str(svg, &font_options()).map_err(|e| fail(e.to_string()))?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(SCALE)
        .ok_or_else(|| fail("image size out of range".to_string()))?;
    let len = size.width() as usize * size.height() as usize * 4;
    let mut pixels = SPARE_PIXELS.with(|spare| std::mem::take(&mut *spare.borrow_mut()));
    if pixels.capacity() < len {
        // Zeroed memory from the allocator is not written here, only by `fill` below.
        pixels = vec![0; len];
    }
    // Only a grown part is written here: `fill` paints every byte anyway.
    pixels.resize(len, 0);
    let mut pixmap = Pixmap::from_vec(pixels, size)
        .ok_or_else(|| fail(format!("cannot allocate {size:?} pixels")))?;
    pixmap.fill(Color::WHITE);
    resvg::render(
        &tree,
        Transform::from_scale(SCALE, SCALE),
        &mut pixmap.as_mut(),
    );
    let (width, height) = (pixmap.width(), pixmap.height());
    let rgb = rgba_to_rgb(pixmap.take());
    let png = encode_png(&rgb, width, height).map_err(|e| fail(e.to_string()));
    SPARE_PIXELS.with(|spare| *spare.borrow_mut() = rgb);
    png
}

thread_local! {
    /// The pixel buffer of the last plot this thread rasterised, kept for its next plot: a
    /// fresh 8 MB buffer (1920×1080 RGBA) costs about 2,000 page faults to paint white, more
    /// than a plot's drawing. Each thread keeps at most one, the size of its largest plot.
    static SPARE_PIXELS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// PNG bytes of an opaque pixmap's RGB bytes: 8-bit RGB (the background is white, so there is no alpha
/// to keep, and premultiplied colours are the colours), compressed with `png`'s fast
/// (fdeflate) setting. Measured on the four plots of a report: zlib level 6 took 1.1 G
/// instructions for 200 KB, level 1 330 M for 350 KB, fdeflate 60 M for 470 KB; deflate was
/// most of the time of a whole run. Rows are filtered with Paeth alone rather than the
/// setting's adaptive choice (which tries all five filters on every row): on a report's
/// plots, 4% larger files for 46 M fewer instructions. The bytes are still a pure function of
/// the pixels.
fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(png::Filter::Paeth);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

/// Drops the alpha byte of every RGBA pixel, in place: a 1920×1080 plot is 8 MB of RGBA, and
/// a second, 6 MB buffer for the RGB copy cost more in page faults than the copy itself.
fn rgba_to_rgb(mut data: Vec<u8>) -> Vec<u8> {
    let pixels = data.len() / 4;
    for i in 0..pixels {
        // Writing all four bytes at 3i is safe: pixel i has been read, and the stray alpha
        // byte lands on 3i + 3 <= 4i + 3, before the next pixel's first unread byte 4i + 4.
        // The next pixel overwrites it, and the last one is cut off below.
        let px: [u8; 4] = data[4 * i..4 * i + 4].try_into().expect("four bytes");
        data[3 * i..3 * i + 4].copy_from_slice(&px);
    }
    data.truncate(3 * pixels);
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVG: &str = r##"<svg width="40" height="20" viewBox="0 0 40 20" xmlns="http://www.w3.org/2000/svg"><text x="2" y="15" font-family="sans-serif" font-size="14" fill="#000000">Hi</text></svg>"##;

    #[test]
    fn text_renders_with_the_embedded_font() {
        let png = svg_to_png(SVG, "t.png").expect("renders");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let pixmap = Pixmap::decode_png(&png).expect("decodes");
        assert_eq!((pixmap.width(), pixmap.height()), (80, 40));
        // Without a usable font the text would be dropped and every pixel left white.
        let dark = pixmap.pixels().iter().filter(|p| p.red() < 128).count();
        assert!(dark > 20, "only {dark} dark pixels");
    }

    #[test]
    fn rgba_to_rgb_drops_alpha_in_order() {
        let rgba: Vec<u8> = (0..40).collect();
        let want: Vec<u8> = rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        assert_eq!(rgba_to_rgb(rgba), want);
        assert_eq!(rgba_to_rgb(vec![1, 2, 3, 4]), vec![1, 2, 3]);
        assert!(rgba_to_rgb(Vec::new()).is_empty());
    }

    #[test]
    fn a_reused_pixel_buffer_leaves_no_trace_of_the_previous_plot() {
        // Rendered alone on a fresh thread (no spare buffer), then after a larger, black plot
        // and after a smaller one on this thread: the same bytes each time.
        let fresh = std::thread::spawn(|| svg_to_png(SVG, "t.png").expect("renders"))
            .join()
            .expect("thread");
        let black = r##"<svg width="90" height="50" xmlns="http://www.w3.org/2000/svg"><rect width="90" height="50" fill="#000000"/></svg>"##;
        let small = r##"<svg width="10" height="10" xmlns="http://www.w3.org/2000/svg"></svg>"##;
        svg_to_png(black, "black.png").expect("renders");
        assert_eq!(svg_to_png(SVG, "t.png").expect("renders"), fresh);
        svg_to_png(small, "small.png").expect("renders");
        assert_eq!(svg_to_png(SVG, "t.png").expect("renders"), fresh);
    }

    #[test]
    fn broken_svg_is_an_error_not_a_panic() {
        assert!(svg_to_png("<svg", "bad.png").is_err());
    }
}
