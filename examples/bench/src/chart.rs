//! The round-trip comparison as an SVG chart: one horizontal bar per
//! method and size (the median, on a log scale) with a whisker to p99.

use std::path::Path;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::Error;
use crate::report::{ns_label, size_label, Report};
use crate::Method;

const FLOOR: RGBColor = RGBColor(140, 140, 140);
const SHM: RGBColor = RGBColor(31, 119, 180);
const OTHER: RGBColor = RGBColor(255, 127, 14);

struct Bar {
    label: String,
    median: f64,
    p99: f64,
    color: RGBColor,
}

/// Draws the round-trip rows of `report` to `path`.
pub fn draw(report: &Report, path: &Path) -> Result<(), Error> {
    let bars: Vec<Bar> = report
        .round_trip
        .iter()
        .filter_map(|r| {
            let (median, p99) = (r.figures.median_ns? as f64, r.figures.p99_ns? as f64);
            let color = match r.method {
                m if m == Method::AtomicFloor.id() => FLOOR,
                _ if r.shm => SHM,
                _ => OTHER,
            };
            Some(Bar { label: format!("{} · {}", size_label(r.size), r.label), median, p99, color })
        })
        .collect();
    if bars.is_empty() {
        return Err(Error::Usage("no round-trip figures to draw".into()));
    }
    let n = bars.len() as i32;
    let lo = bars.iter().map(|b| b.median).fold(f64::MAX, f64::min).max(1.0);
    let hi = bars.iter().map(|b| b.p99).fold(1.0, f64::max);
    let (lo, hi) = (10f64.powf((lo / 2.0).log10().floor()), 10f64.powf((hi * 8.0).log10().ceil()));
    draw_bars(&bars, n, lo, hi, report, path).map_err(|source| Error::Chart { path: path.into(), source })
}

fn draw_bars(
    bars: &[Bar],
    n: i32,
    lo: f64,
    hi: f64,
    report: &Report,
    path: &Path,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let height = 140 + 26 * n as u32;
    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!(
        "Round trip between two processes, median (bar) and p99 (whisker) — shm-bench {}",
        report.date_utc.get(..10).unwrap_or_default()
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(300)
        .build_cartesian_2d((lo..hi).log_scale(), (0..n).into_segmented())?;
    // Row i of `bars` is drawn at y = n - 1 - i, so the first is on top.
    let row = |i: usize| n - 1 - i as i32;
    let label_of = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(y) | SegmentValue::Exact(y) if (0..n).contains(y) => {
            bars[(n - 1 - y) as usize].label.clone()
        }
        _ => String::new(),
    };
    let x_fmt = |v: &f64| tick_label(*v);
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n as usize)
        .y_label_formatter(&label_of)
        .x_label_formatter(&x_fmt)
        .x_desc("round trip (log scale)")
        .draw()?;
    for (name, color) in [("atomic ping-pong (floor)", FLOOR), ("shared memory (shm)", SHM), ("kernel IPC", OTHER)] {
        let rects = bars.iter().enumerate().filter(|(_, b)| b.color == color).map(|(i, b)| {
            let mut r = Rectangle::new(
                [(lo, SegmentValue::Exact(row(i))), (b.median, SegmentValue::Exact(row(i) + 1))],
                b.color.filled(),
            );
            r.set_margin(4, 4, 0, 0);
            r
        });
        chart
            .draw_series(rects)?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        PathElement::new(
            vec![(b.median, SegmentValue::CenterOf(row(i))), (b.p99, SegmentValue::CenterOf(row(i)))],
            BLACK,
        )
    }))?;
    let text = TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        Text::new(
            format!(" {}", ns_label(b.median as u64)),
            (b.p99 * 1.08, SegmentValue::CenterOf(row(i))),
            text.clone(),
        )
    }))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Axis ticks, which fall on powers of ten: `100 ns`, `1 µs`, `10 ms`.
fn tick_label(ns: f64) -> String {
    let (value, unit) = match ns {
        v if v >= 1e9 => (v / 1e9, "s"),
        v if v >= 1e6 => (v / 1e6, "ms"),
        v if v >= 1e3 => (v / 1e3, "µs"),
        v => (v, "ns"),
    };
    format!("{} {unit}", (value * 100.0).round() / 100.0)
}
