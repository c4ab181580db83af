//! Galera/MariaDB settings: one key/value source rendered as NixOS `services.mysql` values and as the lab's my.cnf.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::render::Layout;
use crate::spec::SstMethod;
use crate::topology::{Host, Topology};

/// One my.cnf value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Str(String),
}

/// my.cnf sections → keys → values, sorted.
pub type Sections = BTreeMap<String, BTreeMap<String, Value>>;

/// Values for NixOS `services.mysql.galeraCluster.*` (the module that adds the Galera unit plumbing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GaleraCluster {
    pub name: String,
    pub local_name: String,
    pub local_address: String,
    pub node_addresses: Vec<String>,
    pub sst_method: SstMethod,
}

pub fn galera_cluster(topology: &Topology, host: &Host) -> GaleraCluster {
    let _ = topology;
    GaleraCluster {
        name: String::new(),
        local_name: host.name.clone(),
        local_address: host.address.to_string(),
        node_addresses: Vec::new(),
        sst_method: SstMethod::Rsync,
    }
}

/// What goes into NixOS `services.mysql.settings` (sections → keys): our durable settings and TLS.
pub fn settings(topology: &Topology, host: &Host, layout: &Layout) -> Sections {
    let _ = (topology, host, layout);
    Sections::new()
}

/// The lab's my.cnf.
pub fn lab_ini(topology: &Topology, host: &Host, layout: &Layout) -> String {
    let _ = (topology, host, layout);
    String::new()
}
