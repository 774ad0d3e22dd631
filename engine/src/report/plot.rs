//! Draws one figure as SVG with plotters: title, fault labels, one or more panels sharing
//! their axes (lines, bands, or coloured cells for timelines and heatmaps), legend.
//!
//! Every report figure is described as a [`Plot`] (pure data, built in `charts.rs` and
//! friends) and drawn here by one function. Everything is in plot coordinates already (log10
//! applied, values clamped to the axes), so nothing here can meet a NaN.
//!
//! ```text
//! +--------------------------------------------------+
//! |                     title                        |
//! |   # warm-up    # crash app-3   # partition ×3    |   <- one label per distinct fault,
//! |      +-------------------------------------+     |      stacked if they would overlap
//! |  y   | panel title (small multiples)       |     |
//! | desc |///|  ______|///////|_/             |     |   <- panels share x (and y) axes
//! |      +-------------------------------------+     |
//! |      +-------------------------------------+     |
//! |      |   ...                               |     |
//! |      +-------------------------------------+     |
//! |                   x desc                         |
//! |   -●- variant a   -■- variant b (= a)   [scale]  |   <- legend strip, wraps
//! +--------------------------------------------------+
//! ```
//!
//! No line is ever hidden by another: each variant has its own colour, dash pattern and
//! marker (markers placed at a phase of their own along the line), so a line drawn exactly
//! on top of another still shows both.

use super::ReportError;
use super::axis::Axis;
use super::text::width_px;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

/// Canvas width of every plot, pixels (the PNG is rendered at a multiple of it).
pub const WIDTH: u32 = 960;
/// Canvas height of a one-panel plot, pixels, legend included.
pub const HEIGHT: u32 = 540;

/// Every text uses this family; the rasteriser maps it to the embedded DejaVu Sans.
pub const FONT: &str = "sans-serif";

/// Line colours, in variant order: Okabe-Ito (its yellow swapped for a wine red that shows
/// on white), distinguishable by colour-blind readers.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x33, 0x33, 0x33),
    RGBColor(0x88, 0x22, 0x55),
];

/// Dash patterns, in variant order: with markers, the second way a variant differs.
const DASHES: [Dash; 4] = [Dash::Solid, Dash::Long, Dash::Short, Dash::Dot];

/// Markers, in variant order; five against four dashes so combinations repeat only after 20.
const MARKERS: [Marker; 5] = [
    Marker::Circle,
    Marker::Square,
    Marker::Triangle,
    Marker::Diamond,
    Marker::Cross,
];

/// Most lines one panel shows; beyond, charts switch to small multiples or a heatmap.
pub const MAX_LINES_PER_PANEL: usize = 6;

/// Opacity of shaded intervals: visible, yet lines drawn over them keep their colour.
const SHADE_OPACITY: f64 = 0.13;

const TEXT: RGBColor = RGBColor(0x22, 0x22, 0x22);
const WARMUP: RGBColor = RGBColor(0x80, 0x80, 0x80);
const WARMUP_TEXT: RGBColor = RGBColor(0x60, 0x60, 0x60);

/// plotters writes `font-size = size / 1.24`; these are the sizes we pass it.
const TITLE_SIZE: f64 = 24.0;
const AXIS_DESC_SIZE: f64 = 19.0;
const TICK_SIZE: f64 = 17.0;
const LEGEND_SIZE: f64 = 18.0;
const SHADE_LABEL_SIZE: f64 = 15.0;
const PANEL_TITLE_SIZE: f64 = 17.0;

/// Height of the title strip above the shade labels.
const TITLE_PX: u32 = 44;
const LABEL_ROW_PX: u32 = 20;
const LABEL_SWATCH_PX: f64 = 11.0;
const MARGIN_LEFT_PX: i32 = 16;
const MARGIN_RIGHT_PX: i32 = 28;
/// Height of the x axis' tick labels and title under the last panel.
const X_LABEL_AREA_PX: u32 = 50;
/// Room for a panel's title above its frame.
const PANEL_TITLE_PX: u32 = 24;
/// Smallest height of a panel of lines, frame only.
const LINE_PANEL_PX: u32 = 150;
/// Height of one row of a timeline or heatmap.
const ROW_PX: u32 = 24;

const LEGEND_ROW_PX: u32 = 26;
const LEGEND_SAMPLE_PX: i32 = 34;
const MAX_LABEL_ROWS: usize = 4;
/// Distance between two markers along a line, pixels.
const MARKER_SPACING_PX: f64 = 110.0;

/// How a line is dashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dash {
    /// Unbroken.
    Solid,
    /// Long dashes.
    Long,
    /// Short dashes.
    Short,
    /// Dots.
    Dot,
}

impl Dash {
    /// (dash, gap) in pixels; `None` for a solid line.
    fn pattern(self) -> Option<(u32, u32)> {
        match self {
            Dash::Solid => None,
            Dash::Long => Some((12, 5)),
            Dash::Short => Some((6, 4)),
            Dash::Dot => Some((2, 4)),
        }
    }
}

/// A marker drawn at intervals along a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// No marker.
    None,
    /// A filled circle.
    Circle,
    /// A filled square.
    Square,
    /// A filled triangle.
    Triangle,
    /// A filled diamond.
    Diamond,
    /// An ×.
    Cross,
}

/// How one series looks: the same in every plot of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Look {
    /// Colour.
    pub colour: RGBColor,
    /// Dash pattern.
    pub dash: Dash,
    /// Marker along the line.
    pub marker: Marker,
}

/// The look of the `index`th variant (or node, within one variant's panel).
pub fn look(index: usize) -> Look {
    Look {
        colour: PALETTE[index % PALETTE.len()],
        dash: DASHES[index % DASHES.len()],
        marker: MARKERS[index % MARKERS.len()],
    }
}

/// A plain look: one colour, solid, no marker (objective lines, bands, neutral legend entries).
pub fn plain(colour: RGBColor) -> Look {
    Look {
        colour,
        dash: Dash::Solid,
        marker: Marker::None,
    }
}

/// How a line is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stroke {
    /// A line of its look; `thin` for a secondary quantity.
    Line {
        /// One pixel instead of two, no markers.
        thin: bool,
    },
    /// A translucent filled area: each segment is a closed outline (a confidence band: the
    /// upper ends left to right, then the lower ends right to left).
    Band,
}

/// The main stroke.
pub const LINE: Stroke = Stroke::Line { thin: false };

/// Opacity of a band's fill: the lines drawn over it stay readable.
const BAND_OPACITY: f64 = 0.2;

/// One data line, broken into segments where values are missing.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// Colour, dash and marker.
    pub look: Look,
    /// Line or band.
    pub stroke: Stroke,
    /// Runs of consecutive points, plot coordinates; a run of one point is drawn as a dot.
    pub segments: Vec<Vec<(f64, f64)>>,
    /// Which marker slot this line's markers take, so two lines on top of each other put
    /// their markers in different places.
    pub phase: usize,
}

impl Line {
    /// A main line of `look`, its markers at the phase of `phase`.
    pub fn new(look: Look, segments: Vec<Vec<(f64, f64)>>, phase: usize) -> Line {
        Line {
            look,
            stroke: LINE,
            segments,
            phase,
        }
    }
}

/// A coloured rectangle in plot coordinates: a state interval or a heatmap cell.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// Left and right edge.
    pub x: (f64, f64),
    /// Bottom and top edge.
    pub y: (f64, f64),
    /// Fill.
    pub colour: RGBColor,
}

/// What kind of fault a shaded interval stands for; each has its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// A node crashed or restarted.
    Crash,
    /// A node paused (GC, VM stall).
    Pause,
    /// A node slowed down.
    Slowdown,
    /// A partition or isolation: links cut.
    Partition,
    /// Links slower or lossy.
    Link,
}

/// What a shaded interval stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShadeKind {
    /// An injected fault, coloured by its kind.
    Fault(FaultKind),
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
    /// Text written above the frame; empty for a repeat of a fault already labelled.
    pub label: String,
    /// Fault or warm-up.
    pub kind: ShadeKind,
}

/// What a legend entry's sample shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sample {
    /// A short line with its dash and marker.
    Line,
    /// A translucent band.
    Band,
    /// A filled square (a state of a timeline).
    Swatch,
}

/// One legend entry: a sample and a name.
#[derive(Clone, Debug, PartialEq)]
pub struct LegendEntry {
    /// The text.
    pub label: String,
    /// The sample's look.
    pub look: Look,
    /// The sample's shape.
    pub sample: Sample,
}

impl LegendEntry {
    /// An entry for a line of `look`.
    pub fn line(label: impl Into<String>, look: Look) -> LegendEntry {
        LegendEntry {
            label: label.into(),
            look,
            sample: Sample::Line,
        }
    }
}

/// A continuous colour scale, shown in the legend strip as a bar from `lo` to `hi`.
#[derive(Clone, Debug, PartialEq)]
pub struct ColourScale {
    /// What the colours measure, with the unit.
    pub label: String,
    /// Value of the lightest colour.
    pub lo: f64,
    /// Value of the darkest colour.
    pub hi: f64,
}

/// One panel: a frame with its own title, sharing the plot's x axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    /// Written above the frame; empty for a single-panel plot.
    pub title: String,
    /// This panel's y axis, when it is not the plot's (the rows of a timeline or heatmap).
    pub y: Option<Axis>,
    /// Cells, drawn first.
    pub cells: Vec<Cell>,
    /// Lines, drawn in order (later on top).
    pub lines: Vec<Line>,
}

impl Panel {
    /// An untitled panel of lines on the plot's axes.
    pub fn lines(lines: Vec<Line>) -> Panel {
        Panel::titled(String::new(), lines)
    }

    /// A titled panel of lines on the plot's axes.
    pub fn titled(title: String, lines: Vec<Line>) -> Panel {
        Panel {
            title,
            y: None,
            cells: Vec::new(),
            lines,
        }
    }
}

/// A complete description of one figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Plot {
    /// Title above everything.
    pub title: String,
    /// Horizontal axis, shared by all panels.
    pub x: Axis,
    /// Vertical axis of every panel that has none of its own.
    pub y: Axis,
    /// Intervals shaded behind the data of every panel.
    pub shades: Vec<Shade>,
    /// The panels, top to bottom.
    pub panels: Vec<Panel>,
    /// The legend, drawn under the panels.
    pub legend: Vec<LegendEntry>,
    /// A colour scale, drawn after the legend entries.
    pub scale: Option<ColourScale>,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Height of the frame of each panel.
fn panel_heights(plot: &Plot) -> Vec<u32> {
    plot.panels
        .iter()
        .map(|p| match &p.y {
            Some(y) if p.lines.is_empty() => (y.hi - y.lo).max(1.0) as u32 * ROW_PX + 8,
            _ => LINE_PANEL_PX,
        })
        .collect()
}

/// Width of the y label area: the widest tick label, a gap, the rotated axis title.
fn y_label_area_px(plot: &Plot) -> i32 {
    let tick_px = TICK_SIZE / 1.24;
    let widest = plot
        .panels
        .iter()
        .map(|p| p.y.as_ref().unwrap_or(&plot.y))
        .flat_map(|y| y.ticks.iter())
        .map(|t| width_px(&t.label, tick_px))
        .fold(0.0_f64, f64::max);
    let desc = if plot.y.label.is_empty() { 0.0 } else { 30.0 };
    (widest + 20.0 + desc).ceil() as i32
}

/// Heights of the parts of the canvas: (header, each panel's block, legend).
struct Layout {
    header_px: u32,
    blocks: Vec<u32>,
    legend_px: u32,
    y_area_px: i32,
}

impl Layout {
    fn of(plot: &Plot, legend_rows: usize, labels: &[PlacedLabel]) -> Layout {
        let label_rows = labels.iter().map(|l| l.row + 1).max().unwrap_or(0);
        let header_px = TITLE_PX + label_rows as u32 * LABEL_ROW_PX;
        let legend_px = if legend_rows == 0 {
            8
        } else {
            legend_rows as u32 * LEGEND_ROW_PX + 14
        };
        let titled = plot.panels.iter().any(|p| !p.title.is_empty());
        let title_px = if titled { PANEL_TITLE_PX } else { 12 };
        let mut blocks: Vec<u32> = panel_heights(plot).iter().map(|h| h + title_px).collect();
        if let Some(last) = blocks.last_mut() {
            *last += X_LABEL_AREA_PX;
        }
        // Panels of lines share out the standard canvas when they fit in it.
        let used = header_px + legend_px + blocks.iter().sum::<u32>();
        if plot.panels.iter().all(|p| p.y.is_none()) && used < HEIGHT && !blocks.is_empty() {
            let extra = HEIGHT - used;
            let n = blocks.len() as u32;
            for (i, block) in blocks.iter_mut().enumerate() {
                *block += extra / n + u32::from((i as u32) < extra % n);
            }
        }
        Layout {
            header_px,
            blocks,
            legend_px,
            y_area_px: y_label_area_px(plot),
        }
    }

    fn height(&self) -> u32 {
        self.header_px + self.blocks.iter().sum::<u32>() + self.legend_px
    }
}

/// Renders `plot` as an SVG document.
pub fn to_svg(plot: &Plot) -> Result<String, ReportError> {
    let mut svg = String::new();
    let fail = |e: &dyn std::fmt::Display| ReportError::Plot {
        title: plot.title.clone(),
        message: e.to_string(),
    };
    let legend = legend_rows(&plot.legend, plot.scale.as_ref(), WIDTH as i32 - 40);
    let y_area_px = y_label_area_px(plot);
    let labels = place_shade_labels(plot, y_area_px);
    let layout = Layout::of(plot, legend.len(), &labels);
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, layout.height())).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let (header, mut rest) = root.split_vertically(layout.header_px);
        draw_header(&header, &plot.title, &labels, layout.y_area_px).map_err(|e| fail(&e))?;
        let last = plot.panels.len().saturating_sub(1);
        for (i, (panel, block)) in plot.panels.iter().zip(&layout.blocks).enumerate() {
            let (area, below) = rest.split_vertically(*block);
            draw_panel(&area, plot, panel, i == last, layout.y_area_px).map_err(|e| fail(&e))?;
            rest = below;
        }
        draw_legend(&rest, &legend, plot.scale.as_ref()).map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(svg)
}

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn draw_panel(area: &Area<'_>, plot: &Plot, panel: &Panel, last: bool, y_area: i32) -> DrawResult {
    let y_axis = panel.y.as_ref().unwrap_or(&plot.y);
    let titled = plot.panels.iter().any(|p| !p.title.is_empty());
    let top = if titled { PANEL_TITLE_PX } else { 12 };
    if !panel.title.is_empty() {
        let font = (FONT, PANEL_TITLE_SIZE)
            .into_font()
            .color(&TEXT)
            .pos(Pos::new(HPos::Left, VPos::Center));
        let x = MARGIN_LEFT_PX + y_area;
        area.draw(&Text::new(panel.title.as_str(), (x, top as i32 / 2), font))?;
    }
    let mut chart = ChartBuilder::on(area)
        .margin_top(top)
        .margin_left(MARGIN_LEFT_PX)
        .margin_right(MARGIN_RIGHT_PX)
        .x_label_area_size(if last { X_LABEL_AREA_PX } else { 0 })
        .y_label_area_size(y_area)
        .build_cartesian_2d(AxisCoord::from(&plot.x), AxisCoord::from(y_axis))?;
    let x_fmt = |v: &f64| plot.x.tick_label(*v);
    let y_fmt = |v: &f64| y_axis.tick_label(*v);
    let mut mesh = chart.configure_mesh();
    mesh.x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((FONT, TICK_SIZE).into_font().color(&TEXT))
        .axis_desc_style((FONT, AXIS_DESC_SIZE).into_font().color(&TEXT))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(0.05))
        .axis_style(BLACK.mix(0.6));
    if last {
        mesh.x_desc(plot.x.label.as_str());
    }
    if panel.y.is_none() || panel.lines.is_empty() && !y_axis.label.is_empty() {
        mesh.y_desc(y_axis.label.as_str());
    }
    if panel.y.is_some() && panel.lines.is_empty() {
        // Rows of a timeline or heatmap: no horizontal grid through the cells.
        mesh.disable_y_mesh();
    }
    mesh.draw()?;
    draw_cells(&mut chart, &panel.cells)?;
    if panel.cells.is_empty() {
        draw_shades(&mut chart, plot, y_axis)?;
    } else {
        // A tint over coloured cells would change their colour, which carries the data:
        // mark where each interval starts and ends instead.
        draw_shade_edges(&mut chart, plot, y_axis)?;
    }
    for line in &panel.lines {
        draw_line(&mut chart, line, plot, y_axis)?;
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

fn draw_cells(chart: &mut Chart<'_, '_>, cells: &[Cell]) -> DrawResult {
    let rects = cells
        .iter()
        .map(|c| Rectangle::new([(c.x.0, c.y.0), (c.x.1, c.y.1)], c.colour.filled()));
    chart.draw_series(rects)?;
    Ok(())
}

fn draw_shades(chart: &mut Chart<'_, '_>, plot: &Plot, y: &Axis) -> DrawResult {
    // A zero-length fault would vanish; give it a sliver of width so it is still seen.
    let min_width = (plot.x.hi - plot.x.lo) / 400.0;
    let rects = plot.shades.iter().map(|shade| {
        let colour = shade_colours(shade.kind).0.mix(SHADE_OPACITY);
        let end = shade.end.max(shade.start + min_width).min(plot.x.hi);
        Rectangle::new([(shade.start, y.lo), (end, y.hi)], colour.filled())
    });
    chart.draw_series(rects)?;
    Ok(())
}

fn draw_shade_edges(chart: &mut Chart<'_, '_>, plot: &Plot, y: &Axis) -> DrawResult {
    for shade in &plot.shades {
        let colour = shade_colours(shade.kind).0.stroke_width(2);
        for at in [shade.start, shade.end] {
            let edge = vec![(at, y.lo), (at, y.hi)];
            chart.draw_series(std::iter::once(DashedPathElement::new(edge, 5, 4, colour)))?;
        }
    }
    Ok(())
}

fn draw_line(chart: &mut Chart<'_, '_>, line: &Line, plot: &Plot, y: &Axis) -> DrawResult {
    let colour = line.look.colour;
    let thin = matches!(line.stroke, Stroke::Line { thin: true });
    let style = match line.stroke {
        Stroke::Band => colour.mix(BAND_OPACITY).filled(),
        Stroke::Line { thin } => colour.stroke_width(if thin { 1 } else { 2 }),
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
            _ => match line.look.dash.pattern() {
                None => {
                    chart.draw_series(LineSeries::new(segment.iter().copied(), style))?;
                }
                Some((dash, gap)) => {
                    let points = segment.iter().copied();
                    chart.draw_series(DashedLineSeries::new(points, dash, gap, style))?;
                }
            },
        }
    }
    if line.stroke == LINE && !thin {
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        let scale = (
            f64::from(xs.end - xs.start) / (plot.x.hi - plot.x.lo),
            f64::from(ys.end - ys.start) / (y.hi - y.lo),
        );
        let at = marker_positions(&line.segments, scale, line.phase);
        draw_markers(chart, line.look, &at)?;
    }
    Ok(())
}

/// Points every [`MARKER_SPACING_PX`] along the segments, starting at an offset set by
/// `phase`, so that lines drawn on top of each other show their markers side by side.
fn marker_positions(
    segments: &[Vec<(f64, f64)>],
    scale: (f64, f64),
    phase: usize,
) -> Vec<(f64, f64)> {
    let offset = 14.0 + (phase % 6) as f64 * MARKER_SPACING_PX / 6.0;
    let mut out = Vec::new();
    for segment in segments.iter().filter(|s| s.len() > 1) {
        let mut next = offset;
        let mut travelled = 0.0;
        for pair in segment.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let dx = (b.0 - a.0) * scale.0;
            let dy = (b.1 - a.1) * scale.1;
            let length = (dx * dx + dy * dy).sqrt();
            while length > 0.0 && next <= travelled + length {
                let t = (next - travelled) / length;
                out.push((a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t));
                next += MARKER_SPACING_PX;
            }
            travelled += length;
        }
    }
    out
}

fn draw_markers(chart: &mut Chart<'_, '_>, look: Look, at: &[(f64, f64)]) -> DrawResult {
    let fill = look.colour.filled();
    let area = chart.plotting_area();
    for &c in at {
        match look.marker {
            Marker::None => {}
            Marker::Circle => area.draw(&Circle::new(c, 4, fill))?,
            Marker::Square => {
                area.draw(&(EmptyElement::at(c) + Rectangle::new([(-4, -4), (4, 4)], fill)))?
            }
            Marker::Triangle => area.draw(&TriangleMarker::new(c, 5, fill))?,
            Marker::Diamond => area.draw(
                &(EmptyElement::at(c) + Polygon::new(vec![(0, -6), (5, 0), (0, 6), (-5, 0)], fill)),
            )?,
            Marker::Cross => area.draw(&Cross::new(c, 4, look.colour.stroke_width(2)))?,
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

/// Puts each labelled shade's label above the frame at the shade's start, stacking
/// overlapping ones.
///
/// Above the frame, not inside it: inside, a label would hide the data of whichever plot has
/// its lines at the top (availability at 100%, throughput at its plateau).
fn place_shade_labels(plot: &Plot, y_area_px: i32) -> Vec<PlacedLabel> {
    let plot_left = f64::from(MARGIN_LEFT_PX + y_area_px);
    // Labels may use the whole width right of the plot's left edge, up to the canvas margin.
    let room_px = f64::from(WIDTH) - plot_left - 8.0;
    let frame_px = f64::from(WIDTH as i32 - MARGIN_RIGHT_PX) - plot_left;
    let px_per_unit = frame_px / (plot.x.hi - plot.x.lo);
    let mut wanted: Vec<(f64, f64, &Shade)> = plot
        .shades
        .iter()
        .filter(|shade| !shade.label.is_empty())
        .map(|shade| {
            let text_px = LABEL_SWATCH_PX + 6.0 + width_px(&shade.label, SHADE_LABEL_SIZE / 1.24);
            let start_px = ((shade.start - plot.x.lo) * px_per_unit)
                .min(room_px - text_px)
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
fn draw_header(area: &Area<'_>, title: &str, labels: &[PlacedLabel], y_area: i32) -> DrawResult {
    let title_font = (FONT, TITLE_SIZE)
        .into_font()
        .color(&TEXT)
        .pos(Pos::new(HPos::Center, VPos::Top));
    area.draw(&Text::new(title, (WIDTH as i32 / 2, 10), title_font))?;
    let plot_left = MARGIN_LEFT_PX + y_area;
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

/// Fill and text colour of a shade: faults by kind, so a crash never looks like a pause.
pub fn shade_colours(kind: ShadeKind) -> (RGBColor, RGBColor) {
    match kind {
        ShadeKind::Fault(FaultKind::Crash) => {
            (RGBColor(0xD6, 0x27, 0x28), RGBColor(0x9E, 0x1B, 0x1B))
        }
        ShadeKind::Fault(FaultKind::Pause) => {
            (RGBColor(0x94, 0x67, 0xBD), RGBColor(0x5E, 0x3C, 0x85))
        }
        ShadeKind::Fault(FaultKind::Slowdown) => {
            (RGBColor(0xE0, 0x7B, 0x00), RGBColor(0x8A, 0x4B, 0x00))
        }
        ShadeKind::Fault(FaultKind::Partition) => {
            (RGBColor(0x1F, 0x9E, 0xB4), RGBColor(0x0E, 0x5F, 0x6E))
        }
        ShadeKind::Fault(FaultKind::Link) => {
            (RGBColor(0x8C, 0x56, 0x4B), RGBColor(0x5E, 0x37, 0x30))
        }
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

/// Width of one legend item: sample, gap, text, gap to the next item.
fn entry_width_px(label: &str) -> i32 {
    LEGEND_SAMPLE_PX + 8 + width_px(label, LEGEND_SIZE / 1.24).ceil() as i32 + 26
}

/// Width of the colour scale in the legend: labels at both ends of a bar, and its title.
const SCALE_BAR_PX: i32 = 160;

fn scale_width_px(scale: &ColourScale) -> i32 {
    let font = LEGEND_SIZE / 1.24;
    let ends = width_px(&scale_value(scale.lo), font) + width_px(&scale_value(scale.hi), font);
    let title = width_px(&scale.label, font);
    (ends + title).ceil() as i32 + SCALE_BAR_PX + 30
}

fn scale_value(v: f64) -> String {
    super::format::grouped(v, if v.abs() < 10.0 { 1 } else { 0 })
}

/// One item of the legend strip.
#[derive(Clone, Copy, Debug)]
enum Item<'a> {
    Entry(&'a LegendEntry),
    Scale(&'a ColourScale),
}

impl Item<'_> {
    fn width(&self) -> i32 {
        match self {
            Item::Entry(e) => entry_width_px(&e.label),
            Item::Scale(s) => scale_width_px(s),
        }
    }
}

/// Splits the legend into rows that fit in `width_px`.
fn legend_rows<'a>(
    entries: &'a [LegendEntry],
    scale: Option<&'a ColourScale>,
    width_px: i32,
) -> Vec<Vec<Item<'a>>> {
    let items = entries
        .iter()
        .map(Item::Entry)
        .chain(scale.map(Item::Scale));
    let mut rows: Vec<Vec<Item<'a>>> = Vec::new();
    let mut used = 0;
    for item in items {
        let width = item.width();
        match rows.last_mut() {
            Some(row) if used + width <= width_px => row.push(item),
            _ => {
                rows.push(vec![item]);
                used = 0;
            }
        }
        used += width;
    }
    rows
}

fn draw_legend(
    area: &Area<'_>,
    rows: &[Vec<Item<'_>>],
    _scale: Option<&ColourScale>,
) -> DrawResult {
    let (width_px, _) = area.dim_in_pixel();
    for (i, row) in rows.iter().enumerate() {
        let row_width: i32 = row.iter().map(Item::width).sum::<i32>() - 26;
        let mut x = (width_px as i32 - row_width).max(0) / 2;
        let y = 6 + i as i32 * LEGEND_ROW_PX as i32 + LEGEND_ROW_PX as i32 / 2;
        for item in row {
            match item {
                Item::Entry(e) => draw_legend_entry(area, e, x, y)?,
                Item::Scale(s) => draw_scale(area, s, x, y)?,
            }
            x += item.width();
        }
    }
    Ok(())
}

fn legend_font() -> TextStyle<'static> {
    (FONT, LEGEND_SIZE)
        .into_font()
        .color(&TEXT)
        .pos(Pos::new(HPos::Left, VPos::Center))
}

fn draw_legend_entry(area: &Area<'_>, entry: &LegendEntry, x: i32, y: i32) -> DrawResult {
    let colour = entry.look.colour;
    let sample = vec![(x, y), (x + LEGEND_SAMPLE_PX, y)];
    match (entry.sample, entry.look.dash.pattern()) {
        (Sample::Line, None) => area.draw(&PathElement::new(sample, colour.stroke_width(3)))?,
        (Sample::Line, Some((dash, gap))) => area.draw(&DashedPathElement::new(
            sample,
            dash,
            gap,
            colour.stroke_width(3),
        ))?,
        (Sample::Band, _) => area.draw(&Rectangle::new(
            [(x, y - 6), (x + LEGEND_SAMPLE_PX, y + 6)],
            colour.mix(BAND_OPACITY * 2.0).filled(),
        ))?,
        (Sample::Swatch, _) => area.draw(&Rectangle::new(
            [(x + 8, y - 8), (x + LEGEND_SAMPLE_PX - 8, y + 8)],
            colour.filled(),
        ))?,
    }
    if entry.sample == Sample::Line {
        let centre = (x + LEGEND_SAMPLE_PX / 2, y);
        let fill = colour.filled();
        match entry.look.marker {
            Marker::None => {}
            Marker::Circle => area.draw(&Circle::new(centre, 4, fill))?,
            Marker::Square => area.draw(&Rectangle::new(
                [(centre.0 - 4, y - 4), (centre.0 + 4, y + 4)],
                fill,
            ))?,
            Marker::Triangle => area.draw(&TriangleMarker::new(centre, 5, fill))?,
            Marker::Diamond => area.draw(&Polygon::new(
                vec![
                    (centre.0, y - 6),
                    (centre.0 + 5, y),
                    (centre.0, y + 6),
                    (centre.0 - 5, y),
                ],
                fill,
            ))?,
            Marker::Cross => area.draw(&Cross::new(centre, 4, colour.stroke_width(2)))?,
        }
    }
    area.draw(&Text::new(
        entry.label.clone(),
        (x + LEGEND_SAMPLE_PX + 8, y),
        legend_font(),
    ))
}

/// The colour scale: title, low value, a bar of graded colour, high value.
fn draw_scale(area: &Area<'_>, scale: &ColourScale, x: i32, y: i32) -> DrawResult {
    let font_px = LEGEND_SIZE / 1.24;
    let mut at = x;
    for (i, text) in [scale.label.clone(), scale_value(scale.lo)]
        .iter()
        .enumerate()
    {
        area.draw(&Text::new(text.clone(), (at, y), legend_font()))?;
        at += width_px(text, font_px).ceil() as i32 + if i == 0 { 10 } else { 6 };
    }
    let steps = 32;
    let step_px = SCALE_BAR_PX / steps;
    for s in 0..steps {
        let colour = sequential(f64::from(s) / f64::from(steps - 1));
        let left = at + s * step_px;
        area.draw(&Rectangle::new(
            [(left, y - 8), (left + step_px, y + 8)],
            colour.filled(),
        ))?;
    }
    at += steps * step_px + 6;
    area.draw(&Text::new(scale_value(scale.hi), (at, y), legend_font()))
}

/// A colour-blind-safe sequential scale (viridis' ends and midpoints) at `t` in 0..=1.
pub fn sequential(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 5] = [
        (0xFD, 0xE7, 0x25),
        (0x5E, 0xC9, 0x62),
        (0x21, 0x91, 0x8C),
        (0x3B, 0x52, 0x8B),
        (0x44, 0x01, 0x54),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let at = t * (STOPS.len() - 1) as f64;
    let i = (at.floor() as usize).min(STOPS.len() - 2);
    let f = at - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(label: &str) -> LegendEntry {
        LegendEntry::line(label, look(0))
    }

    #[test]
    fn legend_wraps_when_a_row_is_full() {
        let entries: Vec<LegendEntry> = (0..12).map(|i| entry(&format!("variant {i}"))).collect();
        let rows = legend_rows(&entries, None, 900);
        assert!(rows.len() > 1);
        assert_eq!(rows.iter().map(Vec::len).sum::<usize>(), 12);
        assert!(legend_rows(&[], None, 900).is_empty());
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

    #[test]
    fn the_first_twenty_looks_are_all_different() {
        let looks: Vec<Look> = (0..20).map(look).collect();
        for (i, a) in looks.iter().enumerate() {
            for b in &looks[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn markers_of_lines_on_top_of_each_other_do_not_coincide() {
        let line = vec![vec![(0.0, 0.0), (1000.0, 0.0)]];
        let a = marker_positions(&line, (1.0, 1.0), 0);
        let b = marker_positions(&line, (1.0, 1.0), 1);
        assert!(a.len() >= 8, "{a:?}");
        for p in &a {
            assert!(b.iter().all(|q| (p.0 - q.0).abs() > 10.0), "{a:?} {b:?}");
        }
    }

    #[test]
    fn the_sequential_scale_runs_light_to_dark() {
        let luma =
            |c: RGBColor| 0.3 * f64::from(c.0) + 0.59 * f64::from(c.1) + 0.11 * f64::from(c.2);
        let steps: Vec<f64> = (0..=10)
            .map(|i| luma(sequential(f64::from(i) / 10.0)))
            .collect();
        assert!(steps.windows(2).all(|w| w[0] > w[1]), "{steps:?}");
        assert_eq!(sequential(f64::NAN), sequential(0.0));
    }
}
