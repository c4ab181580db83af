//! Monitoring agent configs: OpenTelemetry Collector (contrib) YAML and collectd.conf, both shipping to Sumo Logic.

use crate::render::Layout;
use crate::topology::{Host, Topology};

/// The OpenTelemetry Collector (contrib) config of `host`, YAML.
pub fn otelcol(topology: &Topology, host: &Host, layout: &Layout) -> String {
    let _ = (topology, host, layout);
    String::new()
}

/// The collectd.conf of `host`.
pub fn collectd(topology: &Topology, host: &Host, layout: &Layout) -> String {
    let _ = (topology, host, layout);
    String::new()
}
