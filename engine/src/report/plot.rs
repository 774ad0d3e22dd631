//! Draws one line chart as SVG with plotters: frame, grid, shaded intervals, lines, legend.
//!
//! The four report plots differ only in data, so each is described as a [`Plot`] (pure data,
//! built in `charts.rs`) and drawn here by one function. Everything is in plot coordinates
//! already (log10 applied, values clamped to the axes), so nothing here can meet a NaN.
//!
//! ```text
//! +--------------------------------------------------+
//! |                     title                        |
//! |   # warm-up    # crash app-3   # partition ...   |   <- shade labels, stacked if
//! |      +-------------------------------------+     |      they would overlap
//! |  y   |///|        |///////|  ____/\____    |     |
//! | desc |///|  ______|///////|_/             |     |
//! |      +-------------------------------------+     |
//! |                   x desc                         |
//! |     -- variant a    -- variant b    - - p50      |   <- legend strip, wraps
//! +--------------------------------------------------+
//! ```

use super::ReportError;
use super::axis::Axis;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

/// Canvas size of every plot, pixels (the PNG is rendered at a multiple of it).
pub const WIDTH: u32 = 960;
/// Canvas height, pixels, legend included.
pub const HEIGHT: u32 = 540;

/// Every text uses this family; the rasteriser maps it to the embedded DejaVu Sans.
pub const FONT: &str = "sans-serif";

/// Line colours, in variant order: Okabe-Ito (its yellow swapped for a wine red that shows
/// on white), distinguishable by colour-blind readers.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x33, 0x33, 0x33),
    RGBColor(0x88, 0x22, 0x55),
];

/// Opacity of shaded intervals: visible, yet lines drawn over them keep their colour.
const SHADE_OPACITY: f64 = 0.13;

const TEXT: RGBColor = RGBColor(0x22, 0x22, 0x22);
const FAULT: RGBColor = RGBColor(0xD6, 0x27, 0x28);
const FAULT_TEXT: RGBColor = RGBColor(0x9E, 0x1B, 0x1B);
const WARMUP: RGBColor = RGBColor(0x80, 0x80, 0x80);
const WARMUP_TEXT: RGBColor = RGBColor(0x60, 0x60, 0x60);

/// plotters writes `font-size = size / 1.24`; these are the sizes we pass it.
const TITLE_SIZE: f64 = 24.0;
const AXIS_DESC_SIZE: f64 = 19.0;
const TICK_SIZE: f64 = 17.0;
const LEGEND_SIZE: f64 = 18.0;
const SHADE_LABEL_SIZE: f64 = 15.0;

/// Height of the title strip above the shade labels.
const TITLE_PX: u32 = 44;
const LABEL_ROW_PX: u32 = 20;
const LABEL_SWATCH_PX: f64 = 11.0;
const MARGIN_LEFT_PX: i32 = 16;
const MARGIN_RIGHT_PX: i32 = 28;
const Y_LABEL_AREA_PX: i32 = 76;
/// Width of the plotting area inside the frame; plotters derives the same from the margins.
const PLOT_WIDTH_PX: u32 = WIDTH - (MARGIN_LEFT_PX + MARGIN_RIGHT_PX + Y_LABEL_AREA_PX) as u32;

const LEGEND_ROW_PX: u32 = 24;
const LEGEND_SAMPLE_PX: i32 = 28;
const MAX_LABEL_ROWS: usize = 4;

/// Number of distinct line colours.
pub const PALETTE_LEN: usize = PALETTE.len();

/// Colour of the `index`th variant; beyond the palette the colours repeat.
pub fn colour(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// How a line is stroked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stroke {
    /// Thick and solid: the main quantity.
    Solid,
    /// Dashed: a secondary quantity drawn in the same colour.
    Dashed,
    /// A translucent filled area: each segment is a closed outline (a confidence band: the
    /// upper ends left to right, then the lower ends right to left).
    Band,
}

/// Opacity of a band's fill: the lines drawn over it stay readable.
const BAND_OPACITY: f64 = 0.2;

/// One data line, broken into segments where values are missing.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// Line colour.
    pub colour: RGBColor,
    /// Solid or dashed.
    pub stroke: Stroke,
    /// Runs of consecutive points, plot coordinates; a run of one point is drawn as a dot.
    pub segments: Vec<Vec<(f64, f64)>>,
}

/// What a shaded interval stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShadeKind {
    /// An injected fault: red.
    Fault,
    /// The warm-up period, left out of the summary numbers: grey.
    Warmup,
}

/// A shaded x interval over the whole y range, plot coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct Shade {
    /// Start, already clamped to the x axis.
    pub start: f64,
    /// End, already clamped to the x axis and not before `start`.
    pub end: f64,
    /// Text written at the top of the interval.
    pub label: String,
    /// Fault or warm-up.
    pub kind: ShadeKind,
}

/// One legend entry: a short line sample and a name.
#[derive(Clone, Debug, PartialEq)]
pub struct LegendEntry {
    /// The text.
    pub label: String,
    /// The sample's colour.
    pub colour: RGBColor,
    /// The sample's stroke.
    pub stroke: Stroke,
}

/// A complete description of one chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Plot {
    /// Title above the frame.
    pub title: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// Intervals shaded behind the lines.
    pub shades: Vec<Shade>,
    /// The data, drawn in order (later on top).
    pub lines: Vec<Line>,
    /// The legend, drawn under the frame.
    pub legend: Vec<LegendEntry>,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Renders `plot` as an SVG document.
pub fn to_svg(plot: &Plot) -> Result<String, ReportError> {
    let mut svg = String::new();
    let fail = |e: &dyn std::fmt::Display| ReportError::Plot {
        title: plot.title.clone(),
        message: e.to_string(),
    };
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let legend = legend_rows(&plot.legend, WIDTH as i32 - 40);
        let legend_px = if legend.is_empty() {
            8
        } else {
            legend.len() as u32 * LEGEND_ROW_PX + 14
        };
        let labels = place_shade_labels(plot);
        let label_rows = labels.iter().map(|l| l.row + 1).max().unwrap_or(0);
        let header_px = TITLE_PX + label_rows as u32 * LABEL_ROW_PX;
        let (header, rest) = root.split_vertically(header_px);
        let (middle, lower) = rest.split_vertically(HEIGHT.saturating_sub(header_px + legend_px));
        draw_header(&header, &plot.title, &labels).map_err(|e| fail(&e))?;
        draw_chart(&middle, plot).map_err(|e| fail(&e))?;
        draw_legend(&lower, &legend).map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(svg)
}

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn draw_chart(area: &Area<'_>, plot: &Plot) -> DrawResult {
    let x_range = AxisCoord::from(&plot.x);
    let y_range = AxisCoord::from(&plot.y);
    let mut chart = ChartBuilder::on(area)
        .margin_top(12)
        .margin_left(MARGIN_LEFT_PX)
        .margin_right(MARGIN_RIGHT_PX)
        .x_label_area_size(50)
        .y_label_area_size(Y_LABEL_AREA_PX)
        .build_cartesian_2d(x_range, y_range)?;
    let x_fmt = |v: &f64| plot.x.tick_label(*v);
    let y_fmt = |v: &f64| plot.y.tick_label(*v);
    chart
        .configure_mesh()
        .x_desc(plot.x.label.as_str())
        .y_desc(plot.y.label.as_str())
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((FONT, TICK_SIZE).into_font().color(&TEXT))
        .axis_desc_style((FONT, AXIS_DESC_SIZE).into_font().color(&TEXT))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(0.05))
        .axis_style(BLACK.mix(0.6))
        .draw()?;
    draw_shades(&mut chart, plot)?;
    for line in &plot.lines {
        draw_line(&mut chart, line)?;
    }
    Ok(())
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<AxisCoord, AxisCoord>>;

/// An [`Axis`] as a plotters coordinate: a linear map with our own tick positions.
///
/// Plotters' `f64` ranges choose ticks themselves (with `powf`), and its key-point wrapper
/// cannot be given label formatters, so we implement the small `Ranged` trait directly.
struct AxisCoord {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    minor: Vec<f64>,
}

impl From<&Axis> for AxisCoord {
    fn from(axis: &Axis) -> Self {
        AxisCoord {
            lo: axis.lo,
            hi: axis.hi,
            ticks: axis.tick_positions(),
            minor: axis.minor.clone(),
        }
    }
}

impl Ranged for AxisCoord {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        // Axis guarantees hi > lo; the clamp keeps a stray value from overflowing i32.
        let fraction = ((value - self.lo) / (self.hi - self.lo)).clamp(-1.0, 2.0);
        let fraction = if fraction.is_nan() { 0.0 } else { fraction };
        limit.0 + (f64::from(limit.1 - limit.0) * fraction).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.minor.clone()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

fn draw_shades(chart: &mut Chart<'_, '_>, plot: &Plot) -> DrawResult {
    // A zero-length fault would vanish; give it a sliver of width so it is still seen.
    let min_width = (plot.x.hi - plot.x.lo) / 400.0;
    let rects = plot.shades.iter().map(|shade| {
        let colour = shade_colours(shade.kind).0.mix(SHADE_OPACITY);
        let end = shade.end.max(shade.start + min_width).min(plot.x.hi);
        Rectangle::new(
            [(shade.start, plot.y.lo), (end, plot.y.hi)],
            colour.filled(),
        )
    });
    chart.draw_series(rects)?;
    Ok(())
}

fn draw_line(chart: &mut Chart<'_, '_>, line: &Line) -> DrawResult {
    let style = match line.stroke {
        Stroke::Solid => line.colour.stroke_width(2),
        Stroke::Dashed => line.colour.mix(0.85).stroke_width(2),
        Stroke::Band => line.colour.mix(BAND_OPACITY).filled(),
    };
    for segment in &line.segments {
        match (segment.len(), line.stroke) {
            (0, _) => {}
            (_, Stroke::Band) => {
                chart.draw_series(std::iter::once(Polygon::new(segment.clone(), style)))?;
            }
            (1, _) => {
                chart.draw_series(std::iter::once(Circle::new(segment[0], 3, style.filled())))?;
            }
            (_, Stroke::Solid) => {
                chart.draw_series(LineSeries::new(segment.iter().copied(), style))?;
            }
            (_, Stroke::Dashed) => {
                chart.draw_series(DashedLineSeries::new(segment.iter().copied(), 7, 5, style))?;
            }
        }
    }
    Ok(())
}

/// A shade's label placed in the strip above the frame.
#[derive(Clone, Debug, PartialEq)]
struct PlacedLabel {
    text: String,
    kind: ShadeKind,
    /// Left edge, pixels from the left of the plotting area.
    x_px: i32,
    /// Row in the strip, 0 at the top.
    row: usize,
}

/// Puts each shade's label above the frame at the shade's start, stacking overlapping ones.
///
/// Above the frame, not inside it: inside, a label would hide the data of whichever plot has
/// its lines at the top (availability at 100%, throughput at its plateau).
fn place_shade_labels(plot: &Plot) -> Vec<PlacedLabel> {
    let width_px = f64::from(PLOT_WIDTH_PX);
    let px_per_unit = width_px / (plot.x.hi - plot.x.lo);
    let mut wanted: Vec<(f64, f64, &Shade)> = plot
        .shades
        .iter()
        .map(|shade| {
            let text_px = LABEL_SWATCH_PX + 6.0 + text_width_px(&shade.label, SHADE_LABEL_SIZE);
            let start_px = ((shade.start - plot.x.lo) * px_per_unit)
                .min(width_px - text_px)
                .max(0.0);
            (start_px, text_px, shade)
        })
        .collect();
    // Left to right, so the first row fills up before a label is pushed down (stable sort:
    // ties keep schedule order).
    wanted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut row_ends: Vec<f64> = Vec::new();
    let mut placed = Vec::new();
    for (start_px, text_px, shade) in wanted {
        // Too crowded for another row: the fault table still lists it.
        if let Some(row) = free_row(&mut row_ends, start_px, text_px) {
            placed.push(PlacedLabel {
                text: shade.label.clone(),
                kind: shade.kind,
                x_px: start_px.round() as i32,
                row,
            });
        }
    }
    placed
}

/// The title, and under it the shade labels, each after a swatch of its shade's colour.
fn draw_header(area: &Area<'_>, title: &str, labels: &[PlacedLabel]) -> DrawResult {
    let title_font = (FONT, TITLE_SIZE)
        .into_font()
        .color(&TEXT)
        .pos(Pos::new(HPos::Center, VPos::Top));
    area.draw(&Text::new(title, (WIDTH as i32 / 2, 10), title_font))?;
    let plot_left = MARGIN_LEFT_PX + Y_LABEL_AREA_PX;
    for label in labels {
        let (colour, text_colour) = shade_colours(label.kind);
        let x = plot_left + label.x_px;
        let y = (TITLE_PX + label.row as u32 * LABEL_ROW_PX) as i32 + LABEL_ROW_PX as i32 / 2;
        let swatch = LABEL_SWATCH_PX as i32;
        area.draw(&Rectangle::new(
            [(x, y - swatch / 2), (x + swatch, y + swatch / 2)],
            colour.mix(0.45).filled(),
        ))?;
        let font = (FONT, SHADE_LABEL_SIZE)
            .into_font()
            .color(&text_colour)
            .pos(Pos::new(HPos::Left, VPos::Center));
        area.draw(&Text::new(label.text.as_str(), (x + swatch + 5, y), font))?;
    }
    Ok(())
}

/// Fill and text colour of a shade.
fn shade_colours(kind: ShadeKind) -> (RGBColor, RGBColor) {
    match kind {
        ShadeKind::Fault => (FAULT, FAULT_TEXT),
        ShadeKind::Warmup => (WARMUP, WARMUP_TEXT),
    }
}

/// The first label row with room at `start_px`, claiming it; `None` when all rows are full.
fn free_row(row_ends: &mut Vec<f64>, start_px: f64, width_px: f64) -> Option<usize> {
    let end = start_px + width_px + 4.0;
    if let Some(row) = row_ends.iter().position(|&e| e <= start_px) {
        row_ends[row] = end;
        return Some(row);
    }
    if row_ends.len() < MAX_LABEL_ROWS {
        row_ends.push(end);
        return Some(row_ends.len() - 1);
    }
    None
}

/// Roughly how wide DejaVu Sans sets `text` at plotters size `size` (0.58 em per character).
fn text_width_px(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * 0.58 * size / 1.24
}

/// Width of one legend entry: sample, gap, text, gap to the next entry.
fn entry_width_px(entry: &LegendEntry) -> i32 {
    LEGEND_SAMPLE_PX + 8 + text_width_px(&entry.label, LEGEND_SIZE).round() as i32 + 28
}

/// Splits the legend into rows that fit in `width_px`.
fn legend_rows(entries: &[LegendEntry], width_px: i32) -> Vec<Vec<&LegendEntry>> {
    let mut rows: Vec<Vec<&LegendEntry>> = Vec::new();
    let mut used = 0;
    for entry in entries {
        let width = entry_width_px(entry);
        match rows.last_mut() {
            Some(row) if used + width <= width_px => row.push(entry),
            _ => {
                rows.push(vec![entry]);
                used = 0;
            }
        }
        used += width;
    }
    rows
}

fn draw_legend(area: &Area<'_>, rows: &[Vec<&LegendEntry>]) -> DrawResult {
    let (width_px, _) = area.dim_in_pixel();
    for (i, row) in rows.iter().enumerate() {
        let row_width: i32 = row.iter().map(|e| entry_width_px(e)).sum::<i32>() - 28;
        let mut x = (width_px as i32 - row_width).max(0) / 2;
        let y = 6 + i as i32 * LEGEND_ROW_PX as i32 + LEGEND_ROW_PX as i32 / 2;
        for entry in row {
            draw_legend_entry(area, entry, x, y)?;
            x += entry_width_px(entry);
        }
    }
    Ok(())
}

fn draw_legend_entry(area: &Area<'_>, entry: &LegendEntry, x: i32, y: i32) -> DrawResult {
    let sample = vec![(x, y), (x + LEGEND_SAMPLE_PX, y)];
    match entry.stroke {
        Stroke::Solid => area.draw(&PathElement::new(sample, entry.colour.stroke_width(3)))?,
        Stroke::Dashed => area.draw(&DashedPathElement::new(
            sample,
            7,
            5,
            entry.colour.stroke_width(2),
        ))?,
        Stroke::Band => area.draw(&Rectangle::new(
            [(x, y - 6), (x + LEGEND_SAMPLE_PX, y + 6)],
            entry.colour.mix(BAND_OPACITY * 2.0).filled(),
        ))?,
    }
    let font = (FONT, LEGEND_SIZE)
        .into_font()
        .color(&TEXT)
        .pos(Pos::new(HPos::Left, VPos::Center));
    area.draw(&Text::new(
        entry.label.clone(),
        (x + LEGEND_SAMPLE_PX + 8, y),
        font,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(label: &str) -> LegendEntry {
        LegendEntry {
            label: label.to_string(),
            colour: colour(0),
            stroke: Stroke::Solid,
        }
    }

    #[test]
    fn legend_wraps_when_a_row_is_full() {
        let entries: Vec<LegendEntry> = (0..12).map(|i| entry(&format!("variant {i}"))).collect();
        let rows = legend_rows(&entries, 900);
        assert!(rows.len() > 1);
        assert_eq!(rows.iter().map(Vec::len).sum::<usize>(), 12);
        assert!(legend_rows(&[], 900).is_empty());
    }

    #[test]
    fn overlapping_labels_go_to_new_rows() {
        let mut rows = Vec::new();
        assert_eq!(free_row(&mut rows, 0.0, 100.0), Some(0));
        assert_eq!(free_row(&mut rows, 50.0, 100.0), Some(1));
        assert_eq!(free_row(&mut rows, 200.0, 100.0), Some(0));
        assert_eq!(free_row(&mut rows, 210.0, 10.0), Some(1));
        assert_eq!(free_row(&mut rows, 210.0, 10.0), Some(2));
        assert_eq!(free_row(&mut rows, 210.0, 10.0), Some(3));
        assert_eq!(free_row(&mut rows, 210.0, 10.0), None);
    }
}
