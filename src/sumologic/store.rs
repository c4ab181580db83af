//! What the stand-in received, queryable by host, category, name and metric; records older
//! than the retention are dropped, so a lab left up for days does not grow without bound.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::formats::{MetricsFormat, Sample};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payload {
    Metrics { format: MetricsFormat, samples: Vec<Sample> },
    Logs { lines: Vec<String> },
}

/// One accepted request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub received_at: f64,
    pub category: Option<String>,
    pub host: Option<String>,
    pub name: Option<String>,
    pub payload: Payload,
}

/// How long records are kept by default: enough for `lab test`'s windows (the QPS step
/// looks back about 40 s) and for `nixstack lab qps`, bounded for a lab that stays up:
/// collectd at a 2 s interval on the 11 hosts of the default spec sends about 400 samples
/// a second, some 0.5 MB of memory a second in this store (measured).
pub const DEFAULT_RETENTION_SECONDS: f64 = 120.0;

#[derive(Debug)]
pub struct Store {
    /// In arrival order, so that old records leave from the front.
    records: Mutex<VecDeque<Record>>,
    retention_seconds: f64,
}

impl Default for Store {
    fn default() -> Self {
        Store::with_retention(DEFAULT_RETENTION_SECONDS)
    }
}

impl Store {
    pub fn with_retention(retention_seconds: f64) -> Self {
        Store { records: Mutex::new(VecDeque::new()), retention_seconds }
    }

    /// Adds `record` and drops the records that left the retention window before it.
    pub fn push(&self, record: Record) {
        let mut records = self.records.lock().expect("store lock");
        let oldest = record.received_at - self.retention_seconds;
        while records.front().is_some_and(|r| r.received_at < oldest) {
            records.pop_front();
        }
        records.push_back(record);
    }

    pub fn is_empty(&self) -> bool {
        self.records.lock().expect("store lock").is_empty()
    }

    /// Records matching every given filter: `host`, `category`, `name`, `kind`
    /// (`metrics`/`logs`), `metric` (keeps only samples of that metric), `since` (seconds).
    pub fn query(&self, filters: &BTreeMap<String, String>) -> Vec<Record> {
        let records = self.records.lock().expect("store lock");
        let matches = |wanted: Option<&String>, actual: &Option<String>| {
            wanted.is_none_or(|w| actual.as_deref() == Some(w.as_str()))
        };
        let since: f64 = filters.get("since").and_then(|s| s.parse().ok()).unwrap_or(0.0);
        // Records are in arrival order: skip the older ones without looking at them.
        let first = records.partition_point(|r| r.received_at < since);
        records
            .range(first..)
            .filter(|r| {
                matches(filters.get("host"), &r.host)
                    && matches(filters.get("category"), &r.category)
                    && matches(filters.get("name"), &r.name)
            })
            .filter_map(|r| {
                let mut record = r.clone();
                match (&mut record.payload, filters.get("kind").map(String::as_str)) {
                    (Payload::Metrics { .. }, Some("logs")) | (Payload::Logs { .. }, Some("metrics")) => return None,
                    (Payload::Metrics { samples, .. }, _) => {
                        if let Some(metric) = filters.get("metric") {
                            samples.retain(|s| &s.metric == metric);
                            if samples.is_empty() {
                                return None;
                            }
                        }
                    }
                    (Payload::Logs { .. }, _) if filters.contains_key("metric") => return None,
                    _ => {}
                }
                Some(record)
            })
            .collect()
    }

    /// Distinct (host, category) pairs seen.
    pub fn sources(&self) -> BTreeSet<(Option<String>, Option<String>)> {
        self.records.lock().expect("store lock").iter().map(|r| (r.host.clone(), r.category.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(at: f64, host: &str) -> Record {
        Record {
            received_at: at,
            category: None,
            host: Some(host.into()),
            name: None,
            payload: Payload::Logs { lines: vec!["x".into()] },
        }
    }

    #[test]
    fn records_older_than_the_retention_are_dropped() {
        let store = Store::with_retention(10.0);
        store.push(logs(100.0, "a"));
        store.push(logs(105.0, "b"));
        store.push(logs(112.0, "c"));
        let hosts: Vec<String> = store.query(&BTreeMap::new()).into_iter().filter_map(|r| r.host).collect();
        assert_eq!(hosts, ["b", "c"]);
    }

    #[test]
    fn since_filters_by_arrival_time() {
        let store = Store::default();
        for (at, host) in [(1.0, "a"), (2.0, "b"), (3.0, "c")] {
            store.push(logs(at, host));
        }
        let filters = [("since".to_string(), "2".to_string())].into_iter().collect();
        let hosts: Vec<String> = store.query(&filters).into_iter().filter_map(|r| r.host).collect();
        assert_eq!(hosts, ["b", "c"]);
    }
}
