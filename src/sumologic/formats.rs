//! Sumo Logic HTTP source payload formats: Prometheus, Carbon 2.0 and Graphite metrics.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One metric data point as Sumo Logic would store it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub metric: String,
    /// Intrinsic and meta tags (Carbon 2.0), labels (Prometheus); empty for Graphite.
    pub tags: BTreeMap<String, String>,
    /// JSON has no NaN or infinities: serde_json writes them as `null`, read back as NaN.
    #[serde(deserialize_with = "nan_from_null")]
    pub value: f64,
    /// Seconds since the epoch, when the sender gave one.
    pub timestamp: Option<f64>,
}

fn nan_from_null<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// The metrics formats of the HTTP source, chosen by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsFormat {
    Prometheus,
    Carbon2,
    Graphite,
}

impl MetricsFormat {
    /// `application/vnd.sumologic.<format>`, as documented for HTTP sources.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/vnd.sumologic.prometheus" => Some(MetricsFormat::Prometheus),
            "application/vnd.sumologic.carbon2" => Some(MetricsFormat::Carbon2),
            "application/vnd.sumologic.graphite" => Some(MetricsFormat::Graphite),
            _ => None,
        }
    }

    pub fn parse(self, body: &str) -> Result<Vec<Sample>, String> {
        body.lines()
            .map(str::trim)
            .enumerate()
            .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
            .map(|(i, line)| {
                match self {
                    MetricsFormat::Prometheus => prometheus(line),
                    MetricsFormat::Carbon2 => carbon2(line),
                    MetricsFormat::Graphite => graphite(line),
                }
                .map_err(|e| format!("line {}: {e}: {line}", i + 1))
            })
            .collect()
    }
}

fn number(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text.parse::<f64>().map_err(|_| format!("`{text}` is not a number")),
    }
}

/// `name{label="value",...} value [timestamp_ms]`
fn prometheus(line: &str) -> Result<Sample, String> {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return Err("expected `name value`".into()),
    };
    let mut tags = BTreeMap::new();
    let rest = if let Some(labels) = rest.strip_prefix('{') {
        let close = find_label_end(labels).ok_or("unterminated label set")?;
        parse_labels(&labels[..close], &mut tags)?;
        &labels[close + 1..]
    } else {
        rest
    };
    let mut fields = rest.split_whitespace();
    let value = number(fields.next().ok_or("missing value")?)?;
    let timestamp = fields.next().map(|t| number(t).map(|ms| ms / 1000.0)).transpose()?;
    Ok(Sample { metric: name.to_string(), tags, value, timestamp })
}

fn find_label_end(labels: &str) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in labels.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '}' if !in_string => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_labels(text: &str, tags: &mut BTreeMap<String, String>) -> Result<(), String> {
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').ok_or("expected label=\"value\"")?;
        let after = after.trim_start().strip_prefix('"').ok_or("label value must be quoted")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => break,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                _ => value.push(c),
            }
        }
        let end = end.ok_or("unterminated label value")?;
        tags.insert(key.trim().to_string(), value);
        rest = after[end + 1..].trim_start().trim_start_matches(',').trim_start();
    }
    Ok(())
}

/// `intrinsic=tags  meta=tags value timestamp`: two spaces separate intrinsic from meta
/// tags; `metric=` names the metric.
fn carbon2(line: &str) -> Result<Sample, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 3 {
        return Err("expected `tags value timestamp`".into());
    }
    let timestamp = number(fields[fields.len() - 1])?;
    let value = number(fields[fields.len() - 2])?;
    let mut tags = BTreeMap::new();
    for tag in &fields[..fields.len() - 2] {
        let (key, value) = tag.split_once('=').ok_or_else(|| format!("tag `{tag}` is not key=value"))?;
        tags.insert(key.to_string(), value.to_string());
    }
    let metric = tags.get("metric").cloned().ok_or("carbon2 needs a `metric=` tag")?;
    Ok(Sample { metric, tags, value, timestamp: Some(timestamp) })
}

/// `metric.path value timestamp`
fn graphite(line: &str) -> Result<Sample, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() != 3 {
        return Err("expected `path value timestamp`".into());
    }
    Ok(Sample {
        metric: fields[0].to_string(),
        tags: BTreeMap::new(),
        value: number(fields[1])?,
        timestamp: Some(number(fields[2])?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_with_labels_and_timestamp() {
        let samples = MetricsFormat::Prometheus
            .parse("# HELP x\nnginx_requests{host=\"web1\",path=\"a\\\"b\"} 42 1700000000000\nup 1\n")
            .unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].metric, "nginx_requests");
        assert_eq!(samples[0].tags["host"], "web1");
        assert_eq!(samples[0].tags["path"], "a\"b");
        assert_eq!(samples[0].value, 42.0);
        assert_eq!(samples[0].timestamp, Some(1_700_000_000.0));
        assert_eq!(samples[1].timestamp, None);
    }

    #[test]
    fn carbon2_intrinsic_and_meta_tags() {
        let samples = MetricsFormat::Carbon2
            .parse("metric=nginx_requests host=web1  _sourceCategory=shop/web 1234 1700000000")
            .unwrap();
        assert_eq!(samples[0].metric, "nginx_requests");
        assert_eq!(samples[0].tags["host"], "web1");
        assert_eq!(samples[0].tags["_sourceCategory"], "shop/web");
        assert_eq!(samples[0].value, 1234.0);
    }

    #[test]
    fn graphite_path_value_time() {
        let samples = MetricsFormat::Graphite.parse("web1.nginx.requests 12.5 1700000000").unwrap();
        assert_eq!(samples[0].metric, "web1.nginx.requests");
        assert_eq!(samples[0].value, 12.5);
    }

    #[test]
    fn malformed_lines_are_rejected_with_the_line() {
        let error = MetricsFormat::Graphite.parse("ok 1 2\nbroken").unwrap_err();
        assert!(error.contains("line 2"), "{error}");
        assert!(MetricsFormat::Carbon2.parse("host=a 1 2").is_err());
        assert!(MetricsFormat::Prometheus.parse("x{a=\"b\" 1").is_err());
        assert!(MetricsFormat::Prometheus.parse("x notanumber").is_err());
    }
}
