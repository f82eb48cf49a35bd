//! The findings-over-time chart: stacked bars by severity in inline SVG, so
//! a burst stands out without any script or network.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use vigil::model::Severity;

use super::data::{sev_index, BySeverity};
use super::escape::html;

/// At most this many bars; the bucket widens to fit.
const MAX_BARS: i64 = 72;
/// Bucket widths a person reads easily, in seconds.
const NICE_BUCKETS: [i64; 14] = [
    60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604_800, 2_592_000, 31_536_000,
];

const WIDTH: f64 = 1240.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 40.0;
const TOP: f64 = 12.0;

/// Severity colours, shared with the page's CSS (`.sev-*`).
pub(crate) fn colour(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "#8b1a1a",
        Severity::High => "#d9412b",
        Severity::Medium => "#ee9a2f",
        Severity::Low => "#e6c229",
        Severity::Informational => "#8aa0b6",
    }
}

/// The bucket width for a time range of `span` seconds.
pub(crate) fn bucket_seconds(span: i64) -> i64 {
    let wanted = span / MAX_BARS + 1;
    NICE_BUCKETS
        .iter()
        .copied()
        .find(|b| *b >= wanted)
        .unwrap_or_else(|| (wanted + 31_535_999) / 31_536_000 * 31_536_000)
}

/// Findings per bucket by severity, from counts per epoch minute: the
/// first bucket's start and the buckets in order (empty ones included).
pub(crate) fn buckets(
    per_minute: &BTreeMap<i64, BySeverity>,
) -> Option<(i64, i64, Vec<BySeverity>)> {
    let first = *per_minute.keys().next()? * 60;
    let last = *per_minute.keys().next_back()? * 60;
    let width = bucket_seconds(last - first);
    let start = first - first.rem_euclid(width);
    let n = ((last - start) / width + 1) as usize;
    let mut out = vec![[0u64; 5]; n];
    for (minute, counts) in per_minute {
        let i = ((minute * 60 - start) / width) as usize;
        for (slot, c) in out[i].iter_mut().zip(counts) {
            *slot += c;
        }
    }
    Some((start, width, out))
}

fn label(t: i64, width: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp(t, 0).unwrap_or_default();
    match width {
        w if w >= 86400 => t.format("%Y-%m-%d").to_string(),
        _ => t.format("%Y-%m-%d %H:%M").to_string(),
    }
}

fn duration(width: i64) -> String {
    match width {
        w if w % 86400 == 0 => format!("{} d", w / 86400),
        w if w % 3600 == 0 => format!("{} h", w / 3600),
        w => format!("{} min", w / 60),
    }
}

/// The chart, or a sentence when there is nothing to draw.
pub(crate) fn findings_over_time(per_minute: &BTreeMap<i64, BySeverity>) -> String {
    let Some((start, width, bars)) = buckets(per_minute) else {
        return "<p class=\"empty\">No findings.</p>".to_string();
    };
    let max = bars
        .iter()
        .map(|b| b.iter().sum::<u64>())
        .max()
        .unwrap_or(1)
        .max(1);
    let plot_w = WIDTH - LEFT - 8.0;
    let plot_h = HEIGHT - BOTTOM - TOP;
    let step = plot_w / bars.len() as f64;
    let bar_w = (step * 0.8).max(1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" role=\"img\" viewBox=\"0 0 {WIDTH} {HEIGHT}\">\
         <title>Findings per {} by severity</title>",
        duration(width)
    );
    axes(&mut s, max, plot_h);
    for (i, counts) in bars.iter().enumerate() {
        let x = LEFT + i as f64 * step + (step - bar_w) / 2.0;
        let when = label(start + i as i64 * width, width);
        let mut y = TOP + plot_h;
        for sev in Severity::ALL {
            let n = counts[sev_index(sev)];
            if n == 0 {
                continue;
            }
            let h = n as f64 / max as f64 * plot_h;
            y -= h;
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_w:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{}: {n} {}</title></rect>",
                colour(sev),
                html(&when),
                sev.as_str()
            );
        }
    }
    x_labels(&mut s, start, width, bars.len(), step);
    s.push_str("</svg>");
    s
}

fn axes(s: &mut String, max: u64, plot_h: f64) {
    for (frac, value) in [(0.0, 0), (0.5, max / 2), (1.0, max)] {
        let y = TOP + plot_h - frac * plot_h;
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/>\
             <text x=\"{}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{value}</text>",
            WIDTH - 8.0,
            LEFT - 6.0,
            y + 4.0
        );
    }
}

/// Start, middle and end times under the bars, and the bucket width.
fn x_labels(s: &mut String, start: i64, width: i64, n: usize, step: f64) {
    let y = HEIGHT - BOTTOM + 16.0;
    let mut marks = vec![(0usize, "start")];
    if n > 2 {
        marks.push((n / 2, "middle"));
    }
    if n > 1 {
        marks.push((n - 1, "end"));
    }
    for (i, anchor) in marks {
        let x = LEFT + i as f64 * step + step / 2.0;
        let text_anchor = match anchor {
            "start" if n > 1 => "start",
            "end" => "end",
            _ => "middle",
        };
        let _ = write!(
            s,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" class=\"tick\" text-anchor=\"{text_anchor}\">{}</text>",
            html(&label(start + i as i64 * width, width))
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">one bar = {}</text>",
        WIDTH - 8.0,
        HEIGHT - 6.0,
        duration(width)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_widen_with_the_range_and_keep_every_count() {
        assert_eq!(bucket_seconds(0), 60);
        assert_eq!(bucket_seconds(3600), 60);
        assert_eq!(bucket_seconds(86400), 1800);
        assert_eq!(bucket_seconds(7 * 86400), 10800);
        // Attacker-written times can span centuries: still few bars.
        let centuries = 300 * 31_536_000;
        assert!(centuries / bucket_seconds(centuries) <= MAX_BARS);

        let mut per_minute = BTreeMap::new();
        per_minute.insert(100, [1, 0, 0, 2, 0]);
        per_minute.insert(101, [0, 0, 0, 1, 0]);
        per_minute.insert(100 + 60 * 24 * 7, [0, 0, 0, 0, 5]);
        let (start, width, bars) = buckets(&per_minute).unwrap();
        assert!(start <= 6000 && width == 10800);
        assert!(bars.len() as i64 <= MAX_BARS + 1);
        assert_eq!(bars[0], [1, 0, 0, 3, 0]);
        assert_eq!(bars.iter().flatten().sum::<u64>(), 9);
        assert_eq!(bars.last().unwrap()[4], 5);
    }

    #[test]
    fn the_chart_draws_one_segment_per_severity_present() {
        let mut per_minute = BTreeMap::new();
        per_minute.insert(29_000_000, [0, 1, 0, 3, 2]);
        let svg = findings_over_time(&per_minute);
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains(": 2 CRITICAL</title>"));
        assert!(findings_over_time(&BTreeMap::new()).contains("No findings"));
    }
}
