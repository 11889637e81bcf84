//! Plots of a sweep's results with plotters, as PNG bytes: lines (mean PW against pattern size,
//! UAP success against ε) and grouped bars (mean PW per canvas kind, per-class PW at one size).

use crate::font::{ensure, FAMILY};
use crate::{png_out, Error, Result};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

const SIZE: (u32, u32) = (640, 400);

/// One line: its legend, points (x, y) in x order, whether it is dashed (a held-out twin), and
/// its colour's index (lines of one setting share one).
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
    pub color: usize,
}

/// One series of bars: its legend and a value per category (None: no bar).
#[derive(Debug, Clone)]
pub struct Bars {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

fn color(i: usize) -> RGBColor {
    const P: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
    ];
    P[i % P.len()]
}

fn finish(title: &str, rgb: Vec<u8>) -> Vec<u8> {
    png_out::encode(SIZE.0, SIZE.1, &rgb, &[("Title", title.to_string())])
}

fn range(values: impl Iterator<Item = f64>, floor_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
        (l.min(v), h.max(v))
    });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if floor_zero {
        lo = lo.min(0.0);
    }
    if hi - lo < 1e-9 {
        hi = lo + 1.0;
    }
    let pad = (hi - lo) * 0.08;
    (if floor_zero { lo } else { lo - pad }, hi + pad)
}

/// Draws the legend of the chart's labelled series at `position`.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FAMILY, 13))
        .position(position)
        .draw()
}

/// Lines on shared axes; `x_percent` writes x ticks as percentages (pattern sizes).
pub fn lines(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    lines: &[Line],
    x_percent: bool,
) -> Result<Vec<u8>> {
    ensure();
    let mut rgb = vec![255u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let e = |e| Error::draw(title, e);
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        let (x0, x1) = range(
            lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)),
            false,
        );
        let (y0, y1) = range(
            lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)),
            true,
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FAMILY, 18).into_font())
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(e)?;
        let pct = |v: &f64| format!("{:.0}%", v * 100.0);
        let plain = |v: &f64| format!("{v:.2}");
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(if x_percent { &pct } else { &plain })
            .y_label_formatter(&|v| format!("{v:.2}"))
            .label_style((FAMILY, 13))
            .axis_desc_style((FAMILY, 14))
            .light_line_style(RGBColor(238, 238, 242))
            .draw()
            .map_err(e)?;
        for l in lines {
            let c = color(l.color);
            let style = c.stroke_width(2);
            let series = if l.dashed {
                chart.draw_series(DashedLineSeries::new(l.points.iter().copied(), 6, 4, style))
            } else {
                chart.draw_series(LineSeries::new(l.points.iter().copied(), style))
            }
            .map_err(e)?;
            let dashed = l.dashed;
            series.label(&l.name).legend(move |(x, y)| {
                // A dashed line's legend is dashed too.
                let gap = if dashed { 5 } else { 0 };
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (9 - gap / 2, 0)], c.stroke_width(2))
                    + PathElement::new(vec![(9 + gap / 2 + gap % 2, 0), (18, 0)], c.stroke_width(2))
            });
            chart
                .draw_series(l.points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                .map_err(e)?;
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight).map_err(e)?;
        root.present().map_err(e)?;
    }
    Ok(finish(title, rgb))
}

/// Grouped bars: a group per category, a bar per series in it.
pub fn bars(title: &str, y_desc: &str, categories: &[String], series: &[Bars]) -> Result<Vec<u8>> {
    ensure();
    let m = series.len().max(1);
    let slots = categories.len() * (m + 1);
    let mut rgb = vec![255u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let e = |e| Error::draw(title, e);
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        let (_, y1) = range(
            series
                .iter()
                .flat_map(|s| s.values.iter().flatten().copied()),
            true,
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FAMILY, 18).into_font())
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d((0..slots as i32).into_segmented(), 0f64..y1)
            .map_err(e)?;
        let label = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(k) | SegmentValue::Exact(k) => {
                let (g, j) = (*k as usize / (m + 1), *k as usize % (m + 1));
                if j == (m - 1) / 2 {
                    categories.get(g).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            }
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(slots)
            .x_label_formatter(&label)
            .y_desc(y_desc)
            .y_label_formatter(&|v| format!("{v:.2}"))
            .label_style((FAMILY, 13))
            .axis_desc_style((FAMILY, 14))
            .light_line_style(RGBColor(238, 238, 242))
            .draw()
            .map_err(e)?;
        for (j, s) in series.iter().enumerate() {
            let c = color(j);
            let rects = s.values.iter().enumerate().filter_map(|(g, v)| {
                let v = (*v)?;
                let k = (g * (m + 1) + j) as i32;
                Some(Rectangle::new(
                    [
                        (SegmentValue::Exact(k), 0.0),
                        (SegmentValue::Exact(k + 1), v),
                    ],
                    c.filled(),
                ))
            });
            chart
                .draw_series(rects)
                .map_err(e)?
                .label(&s.name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        if series.len() > 1 {
            legend(&mut chart, SeriesLabelPosition::UpperRight).map_err(e)?;
        }
        root.present().map_err(e)?;
    }
    Ok(finish(title, rgb))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decodes(png: &[u8]) -> (u32, u32) {
        let r = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .unwrap();
        (r.info().width, r.info().height)
    }

    #[test]
    fn plots_draw_and_decode() {
        let l = lines(
            "PW against size",
            "pattern size",
            "mean PW",
            &[
                Line {
                    name: "natural".into(),
                    points: vec![(0.01, 0.3), (0.05, 0.7), (0.1, 0.9)],
                    dashed: false,
                    color: 0,
                },
                Line {
                    name: "natural (held-out)".into(),
                    points: vec![(0.01, 0.25), (0.05, 0.6), (0.1, 0.85)],
                    dashed: true,
                    color: 0,
                },
            ],
            true,
        )
        .unwrap();
        assert_eq!(decodes(&l), SIZE);
        let b = bars(
            "PW per canvas kind",
            "mean PW",
            &["positive".into(), "white".into()],
            &[
                Bars {
                    name: "natural".into(),
                    values: vec![Some(0.8), Some(0.4)],
                },
                Bars {
                    name: "badnets".into(),
                    values: vec![Some(0.9), None],
                },
            ],
        )
        .unwrap();
        assert_eq!(decodes(&b), SIZE);
        assert!(png_out::texts(&b)
            .iter()
            .any(|(k, v)| k == "Title" && v == "PW per canvas kind"));
    }
}
