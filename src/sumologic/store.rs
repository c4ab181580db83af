//! What the stand-in received, queryable by host, category, name and metric.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde::Serialize;

use super::formats::{MetricsFormat, Sample};

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payload {
    Metrics { format: MetricsFormat, samples: Vec<Sample> },
    Logs { lines: Vec<String> },
}

/// One accepted request.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub received_at: f64,
    pub category: Option<String>,
    pub host: Option<String>,
    pub name: Option<String>,
    pub payload: Payload,
}

#[derive(Debug, Default)]
pub struct Store {
    records: Mutex<Vec<Record>>,
}

impl Store {
    pub fn push(&self, record: Record) {
        self.records.lock().expect("store lock").push(record);
    }

    pub fn is_empty(&self) -> bool {
        self.records.lock().expect("store lock").is_empty()
    }

    /// Records matching every given filter: `host`, `category`, `name`, `kind`
    /// (`metrics`/`logs`), `metric` (keeps only samples of that metric), `since` (seconds).
    pub fn query(&self, filters: &BTreeMap<String, String>) -> Vec<Record> {
        let records = self.records.lock().expect("store lock");
        let matches = |wanted: Option<&String>, actual: &Option<String>| wanted.is_none_or(|w| actual.as_deref() == Some(w.as_str()));
        let since: f64 = filters.get("since").and_then(|s| s.parse().ok()).unwrap_or(0.0);
        records
            .iter()
            .filter(|r| matches(filters.get("host"), &r.host) && matches(filters.get("category"), &r.category) && matches(filters.get("name"), &r.name))
            .filter(|r| r.received_at >= since)
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
