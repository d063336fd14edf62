//! The trend chart: the score and each pillar's score over the stored runs, as inline SVG (no
//! script, no library). Pure: the points in, the markup out.

use maud::{Markup, html};

/// One run on the chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// When it completed, as shown under the chart.
    pub label: String,
    pub score: u8,
    /// (pillar, score) for the pillars that run had.
    pub pillars: Vec<(&'static str, u8)>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 32.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 20.0;

/// The `points` attribute of one series: x spread evenly over the runs (oldest first), y from
/// the score (0 at the bottom, 100 at the top).
pub fn polyline(scores: &[u8]) -> String {
    let plot = WIDTH - LEFT - 8.0;
    let step = if scores.len() > 1 { plot / (scores.len() - 1) as f64 } else { 0.0 };
    scores
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{:.1},{:.1}", LEFT + step * i as f64, y(*s)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn y(score: u8) -> f64 {
    TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - f64::from(score.min(100)) / 100.0)
}

/// The series to draw: the overall score, then each pillar seen in any run (a run without that
/// pillar leaves a gap, drawn as separate segments).
pub fn series(points: &[Point]) -> Vec<(String, Vec<Option<u8>>)> {
    let mut out = vec![("score".to_owned(), points.iter().map(|p| Some(p.score)).collect())];
    let mut names: Vec<&'static str> = Vec::new();
    for p in points {
        for (name, _) in &p.pillars {
            if !names.contains(name) {
                names.push(name);
            }
        }
    }
    for name in names {
        let values = points.iter().map(|p| p.pillars.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)).collect();
        out.push((name.to_owned(), values));
    }
    out
}

/// The chart, oldest run on the left. `title` names it for screen readers.
pub fn svg(title: &str, points: &[Point]) -> Markup {
    if points.is_empty() {
        return html! { p.muted { "No completed run yet: the trend appears after the first." } };
    }
    let n = points.len();
    let plot = WIDTH - LEFT - 8.0;
    let step = if n > 1 { plot / (n - 1) as f64 } else { 0.0 };
    html! {
        figure.trend {
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(title) {
                title { (title) }
                @for grid in [0u8, 50, 100] {
                    line.grid x1=(LEFT) x2=(WIDTH - 8.0) y1=(format!("{:.1}", y(grid))) y2=(format!("{:.1}", y(grid))) {}
                    text.axis x="2" y=(format!("{:.1}", y(grid) + 4.0)) { (grid) }
                }
                @for (name, values) in series(points) {
                    @for segment in segments(&values) {
                        @if segment.len() == 1 {
                            circle class=(format!("series s-{name}")) r="3"
                                cx=(format!("{:.1}", LEFT + step * segment[0].0 as f64)) cy=(format!("{:.1}", y(segment[0].1))) {}
                        } @else {
                            polyline class=(format!("series s-{name}")) data-series=(name)
                                points=(segment.iter().map(|(i, s)| format!("{:.1},{:.1}", LEFT + step * *i as f64, y(*s))).collect::<Vec<_>>().join(" ")) {}
                        }
                    }
                }
                text.axis x=(LEFT) y=(HEIGHT - 4.0) { (points[0].label) }
                @if n > 1 {
                    text.axis x=(WIDTH - 8.0) y=(HEIGHT - 4.0) text-anchor="end" { (points[n - 1].label) }
                }
            }
            figcaption {
                @for (name, _) in series(points) {
                    span class=(format!("key s-{name}")) { (name) }
                }
            }
        }
    }
}

/// Runs of consecutive present values: (index, value).
fn segments(values: &[Option<u8>]) -> Vec<Vec<(usize, u8)>> {
    let mut out: Vec<Vec<(usize, u8)>> = Vec::new();
    let mut current = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(s) => current.push((i, *s)),
            None if !current.is_empty() => out.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(label: &str, score: u8, pillars: &[(&'static str, u8)]) -> Point {
        Point { label: label.into(), score, pillars: pillars.to_vec() }
    }

    #[test]
    fn scores_map_to_heights_and_runs_spread_evenly() {
        assert_eq!(polyline(&[100, 0]), "32.0,8.0 632.0,180.0");
        assert_eq!(polyline(&[50, 50, 50]), "32.0,94.0 332.0,94.0 632.0,94.0");
        assert_eq!(polyline(&[70]), "32.0,59.6");
    }

    #[test]
    fn every_pillar_gets_a_series_and_a_missing_run_leaves_a_gap() {
        let points = [
            point("a", 80, &[("security", 70)]),
            point("b", 90, &[("reliability", 60)]),
            point("c", 85, &[("security", 75), ("reliability", 65)]),
        ];
        let s = series(&points);
        assert_eq!(s[0], ("score".into(), vec![Some(80), Some(90), Some(85)]));
        assert_eq!(s[1], ("security".into(), vec![Some(70), None, Some(75)]));
        assert_eq!(s[2], ("reliability".into(), vec![None, Some(60), Some(65)]));
        assert_eq!(segments(&s[1].1), vec![vec![(0, 70)], vec![(2, 75)]]);
        let markup = svg("Score <trend>", &points).into_string();
        assert!(markup.contains("data-series=\"score\""), "{markup}");
        assert!(markup.contains("Score &lt;trend&gt;"), "{markup}");
        assert_eq!(markup.matches("<polyline").count(), 2, "{markup}");
        assert_eq!(markup.matches("<circle").count(), 2, "{markup}");
    }

    #[test]
    fn no_run_says_so() {
        assert!(svg("t", &[]).into_string().contains("No completed run yet"));
    }
}
