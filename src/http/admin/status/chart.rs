//! Line charts as inline SVG, drawn on the server: no script, no external resource, and the
//! figures are in the document (each point is a `circle` with `data-minute` (or `data-day`) and
//! `data-value`), which is what the headless-browser test reads back.

use std::fmt::Write;

use chrono::{DateTime, TimeDelta, Utc};

use super::html::esc;

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 30.0;

/// One line: values at bucket offsets (minutes or days) from the chart's start. A missing
/// bucket is a gap.
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub points: Vec<(usize, i64)>,
}

/// How long one bucket of a chart is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Minute,
    Day,
}

impl Step {
    fn delta(self) -> TimeDelta {
        match self {
            Step::Minute => TimeDelta::minutes(1),
            Step::Day => TimeDelta::days(1),
        }
    }

    /// The bottom axis' labels.
    fn label(self) -> &'static str {
        match self {
            Step::Minute => "%H:%M",
            Step::Day => "%m-%d",
        }
    }

    /// Each point's attribute and its value's format.
    fn attribute(self) -> (&'static str, &'static str) {
        match self {
            Step::Minute => ("data-minute", "%Y-%m-%dT%H:%MZ"),
            Step::Day => ("data-day", "%Y-%m-%d"),
        }
    }

    fn window(self) -> &'static str {
        match self {
            Step::Minute => "in this hour",
            Step::Day => "in these days",
        }
    }
}

/// A chart over `buckets` buckets of `step` from `start`.
pub struct LineChart<'a> {
    /// The `id` of the `svg` element.
    pub id: &'a str,
    pub title: &'a str,
    pub start: DateTime<Utc>,
    pub step: Step,
    pub buckets: usize,
    pub series: Vec<Series>,
}

impl LineChart<'_> {
    pub fn to_html(&self) -> String {
        let max = nice_ceiling(
            self.series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1))
                .max()
                .unwrap_or(0),
        );
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let span = self.buckets.saturating_sub(1).max(1) as f64;
        let x = |minute: usize| LEFT + minute as f64 * plot_w / span;
        let y = |value: i64| TOP + plot_h - value as f64 * plot_h / max as f64;

        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg id="{id}" class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{title}" data-max="{max}">"#,
            id = esc(self.id),
            title = esc(self.title),
        );
        // Horizontal grid with the scale at 0, half and the top.
        for v in [0, max / 2, max] {
            let _ = write!(
                svg,
                r##"<line class="grid" x1="{LEFT}" x2="{x2}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e5e7eb"/><text x="{tx}" y="{ty:.1}" text-anchor="end" font-size="11" fill="#6b7280">{v}</text>"##,
                x2 = WIDTH - RIGHT,
                yy = y(v),
                tx = LEFT - 6.0,
                ty = y(v) + 4.0,
            );
        }
        // Times along the bottom (UTC): start, middle, now.
        for minute in [0, self.buckets / 2, self.buckets.saturating_sub(1)] {
            let at = self.at(minute);
            let _ = write!(
                svg,
                r##"<text x="{tx:.1}" y="{ty}" text-anchor="middle" font-size="11" fill="#6b7280">{t}</text>"##,
                tx = x(minute),
                ty = HEIGHT - 10.0,
                t = at.format(self.step.label()),
            );
        }
        let drawn = self.series.iter().any(|s| !s.points.is_empty());
        if !drawn {
            let _ = write!(
                svg,
                r##"<text class="empty" x="{cx}" y="{cy}" text-anchor="middle" font-size="13" fill="#6b7280">no data {w}</text>"##,
                w = self.step.window(),
                cx = LEFT + plot_w / 2.0,
                cy = TOP + plot_h / 2.0,
            );
        }
        for s in &self.series {
            let name = esc(&s.name);
            let _ = write!(svg, r#"<g class="series" data-series="{name}">"#);
            for run in runs(&s.points) {
                let points: Vec<String> = run
                    .iter()
                    .map(|&(m, v)| format!("{:.1},{:.1}", x(m), y(v)))
                    .collect();
                let _ = write!(
                    svg,
                    r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{p}"/>"#,
                    c = s.color,
                    p = points.join(" "),
                );
            }
            let (attribute, format) = self.step.attribute();
            for &(m, v) in &s.points {
                let at = self.at(m);
                let _ = write!(
                    svg,
                    r#"<circle class="point" cx="{cx:.1}" cy="{cy:.1}" r="2.5" fill="{c}" {attribute}="{t}" data-value="{v}"><title>{name} {hm}: {v}</title></circle>"#,
                    cx = x(m),
                    cy = y(v),
                    c = s.color,
                    t = at.format(format),
                    hm = at.format(self.step.label()),
                );
            }
            svg.push_str("</g>");
        }
        svg.push_str("</svg>");

        let mut legend = String::new();
        for s in &self.series {
            let _ = write!(
                legend,
                r#"<li><span class="swatch" style="background:{c}"></span>{n}</li>"#,
                c = s.color,
                n = esc(&s.name),
            );
        }
        format!(
            r#"<figure class="chart"><figcaption>{title}</figcaption>{svg}<ul class="legend">{legend}</ul></figure>"#,
            title = esc(self.title),
        )
    }

    fn at(&self, bucket: usize) -> DateTime<Utc> {
        self.start + self.step.delta() * bucket as i32
    }
}

/// Splits points (in bucket order) where a bucket is missing, so a gap is not drawn across.
fn runs(points: &[(usize, i64)]) -> Vec<&[(usize, i64)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=points.len() {
        if i == points.len() || points[i].0 != points[i - 1].0 + 1 {
            if i > start {
                out.push(&points[start..i]);
            }
            start = i;
        }
    }
    out
}

/// The smallest of 1, 2, 5 × 10^k at or above `v` (at least 2, so the half line is whole).
fn nice_ceiling(v: i64) -> i64 {
    let v = v.max(2);
    let mut base = 1i64;
    loop {
        for m in [1, 2, 5] {
            if let Some(n) = base.checked_mul(m)
                && n >= v
            {
                return n;
            }
        }
        match base.checked_mul(10) {
            Some(b) => base = b,
            None => return i64::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_rounds_up_to_one_two_or_five() {
        for (v, want) in [
            (0, 2),
            (1, 2),
            (2, 2),
            (3, 5),
            (6, 10),
            (11, 20),
            (20, 20),
            (401, 500),
        ] {
            assert_eq!(nice_ceiling(v), want, "{v}");
        }
    }

    #[test]
    fn a_missing_minute_breaks_the_line() {
        let points = [(0, 1), (1, 2), (3, 4), (4, 5), (7, 1)];
        let runs = runs(&points);
        assert_eq!(runs, vec![&points[0..2], &points[2..4], &points[4..5]]);
        assert!(super::runs(&[]).is_empty());
    }

    #[test]
    fn every_point_and_name_is_in_the_svg_escaped() {
        let chart = LineChart {
            id: "chart-x",
            title: "Depth <now>",
            start: "2025-01-01T10:00:00Z".parse().unwrap(),
            step: Step::Minute,
            buckets: 60,
            series: vec![Series {
                name: "<script>".into(),
                color: "#000",
                points: vec![(0, 3), (59, 7)],
            }],
        }
        .to_html();
        assert!(chart.contains(r#"<svg id="chart-x""#));
        assert!(chart.contains(r#"data-minute="2025-01-01T10:00Z" data-value="3""#));
        assert!(chart.contains(r#"data-minute="2025-01-01T10:59Z" data-value="7""#));
        assert!(chart.contains("Depth &lt;now&gt;"));
        assert!(!chart.contains("<script>"));
        assert_eq!(
            chart.matches("<polyline").count(),
            2,
            "a gap between the points"
        );
    }
}
