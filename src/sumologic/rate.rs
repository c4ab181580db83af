//! Rates of counters from received samples, as Sumo Logic's `rate counter` computes them:
//! per series (one source host), the increase between consecutive data points divided by
//! the time between them; a decrease is a counter reset (a restarted daemon) and is skipped.

use std::collections::BTreeMap;

use serde::Serialize;

use super::store::{Payload, Record};

/// One data point of a counter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Seconds since the epoch, as the sender stamped it.
    pub time: f64,
    pub value: f64,
}

/// The rate of one counter over a window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    /// Increase per second.
    pub per_second: f64,
    /// Seconds spanned by the data points used.
    pub seconds: f64,
    /// Total increase over those seconds.
    pub increase: f64,
    /// Data points inside the window.
    pub points: usize,
    /// Counter resets skipped.
    pub resets: usize,
}

/// The points of `metric` per source host (`X-Sumo-Host`), sorted by time; of several
/// points with the same timestamp the last received wins. Samples without a timestamp or
/// with a non-finite value are ignored.
pub fn series_by_host(records: &[Record], metric: &str) -> BTreeMap<String, Vec<Point>> {
    let mut series: BTreeMap<String, BTreeMap<u64, Point>> = BTreeMap::new();
    for record in records {
        let Payload::Metrics { samples, .. } = &record.payload else { continue };
        let Some(host) = &record.host else { continue };
        for sample in samples.iter().filter(|s| s.metric == metric) {
            let Some(time) = sample.timestamp else { continue };
            if !sample.value.is_finite() || !time.is_finite() {
                continue;
            }
            // Keyed by milliseconds: exact for the whole-second stamps collectd sends.
            series
                .entry(host.clone())
                .or_default()
                .insert((time * 1000.0).round() as u64, Point { time, value: sample.value });
        }
    }
    series.into_iter().map(|(host, points)| (host, points.into_values().collect())).collect()
}

/// The rate of a counter over the points whose time lies in `[from, to]`: the sum of the
/// increases between consecutive points divided by the seconds they span, skipping a pair
/// whose value went down (a reset). `None` with fewer than two points in the window.
pub fn counter_rate(points: &[Point], from: f64, to: f64) -> Option<Rate> {
    let inside: Vec<&Point> = points.iter().filter(|p| p.time >= from && p.time <= to).collect();
    if inside.len() < 2 {
        return None;
    }
    let (mut increase, mut seconds, mut resets) = (0.0, 0.0, 0);
    for pair in inside.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if b.value < a.value {
            resets += 1;
            continue;
        }
        increase += b.value - a.value;
        seconds += b.time - a.time;
    }
    if seconds <= 0.0 {
        return None;
    }
    Some(Rate { per_second: increase / seconds, seconds, increase, points: inside.len(), resets })
}

/// The time of the newest point, if any.
pub fn last_time(points: &[Point]) -> Option<f64> {
    points.last().map(|p| p.time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sumologic::{MetricsFormat, Sample};

    fn points(values: &[(f64, f64)]) -> Vec<Point> {
        values.iter().map(|&(time, value)| Point { time, value }).collect()
    }

    #[test]
    fn rate_is_increase_over_time_inside_the_window() {
        let series = points(&[(0.0, 0.0), (2.0, 10.0), (4.0, 30.0), (6.0, 50.0), (8.0, 50.0)]);
        let rate = counter_rate(&series, 2.0, 6.0).unwrap();
        assert_eq!(rate.per_second, 10.0);
        assert_eq!(rate.points, 3);
        assert_eq!(counter_rate(&series, 6.0, 8.0).unwrap().per_second, 0.0);
        assert_eq!(counter_rate(&series, 7.0, 8.0), None, "one point gives no rate");
    }

    #[test]
    fn a_reset_is_skipped_not_counted_as_negative() {
        let series = points(&[(0.0, 100.0), (2.0, 120.0), (4.0, 3.0), (6.0, 23.0)]);
        let rate = counter_rate(&series, 0.0, 6.0).unwrap();
        assert_eq!(rate.resets, 1);
        assert_eq!(rate.per_second, 10.0, "40 requests over the 4 s of intact pairs");
    }

    #[test]
    fn series_are_per_source_host_sorted_and_deduplicated() {
        let sample = |value: f64, time: f64| Sample {
            metric: "nginx_requests".into(),
            tags: Default::default(),
            value,
            timestamp: Some(time),
        };
        let record = |host: &str, samples: Vec<Sample>| Record {
            received_at: 0.0,
            category: None,
            host: Some(host.into()),
            name: None,
            payload: Payload::Metrics { format: MetricsFormat::Carbon2, samples },
        };
        let records = vec![
            record("web2", vec![sample(5.0, 4.0)]),
            record("web1", vec![sample(3.0, 2.0), sample(f64::NAN, 3.0)]),
            record("web1", vec![sample(1.0, 0.0), sample(4.0, 2.0)]),
        ];
        let series = series_by_host(&records, "nginx_requests");
        assert_eq!(series["web1"], points(&[(0.0, 1.0), (2.0, 4.0)]));
        assert_eq!(series["web2"], points(&[(4.0, 5.0)]));
        assert!(series_by_host(&records, "other").is_empty());
    }
}
