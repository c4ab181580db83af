//! The Topology: the spec resolved into a complete, validated model.

mod flows;
mod model;
mod resolve;

pub use model::*;
pub use resolve::{resolve, resolve_recovered};

/// Parses and resolves spec text: the whole front half of the pipeline. Every error is
/// reported, in the order of the file: the shape errors, and the cross-reference errors of
/// what was well-formed.
pub fn compile(source: &crate::spec::SpecSource) -> Result<Topology, crate::spec::SpecErrors> {
    let parsed = crate::spec::parse_recovering(source);
    let mut errors = parsed.errors;
    if let Some(raw) = &parsed.spec {
        match resolve_recovered(source, raw, &parsed.dropped) {
            Ok(topology) if errors.is_empty() => return Ok(topology),
            Ok(_) => {}
            Err(cross_reference) => errors.extend(cross_reference.0),
        }
    }
    Err(crate::spec::SpecErrors::sorted(errors))
}

/// Reads ([`crate::spec::read`]), parses and resolves a spec.
pub fn load(path: Option<&std::path::Path>) -> anyhow::Result<(crate::spec::SpecSource, Topology)> {
    let source = crate::spec::read(path)?;
    let topology = compile(&source)?;
    Ok((source, topology))
}

/// Fixed ports of the stack's services.
pub mod ports {
    pub const SSH: u16 = 22;
    pub const HTTP: u16 = 80;
    pub const HTTPS: u16 = 443;
    pub const HAPROXY_STATS: u16 = 8404;
    /// lego's HTTP-01 challenge server during an order (`security.acme.certs.<d>.listenHTTP`).
    pub const ACME_HTTP01: u16 = 8402;
    pub const MYSQL: u16 = 3306;
    pub const GALERA_REPLICATION: u16 = 4567;
    pub const GALERA_IST: u16 = 4568;
    pub const GALERA_SST: u16 = 4444;
    pub const DNS: u16 = 53;
    pub const NTP: u16 = 123;
}

impl Topology {
    /// The host named `name`. `hosts` is sorted by name (the resolver builds it from the
    /// spec's sorted map), so this is a binary search; a Topology built by hand out of order
    /// still finds its hosts, by the linear search the miss falls back to.
    pub fn host(&self, name: &str) -> Option<&Host> {
        match self.hosts.binary_search_by(|host| host.name.as_str().cmp(name)) {
            Ok(i) => Some(&self.hosts[i]),
            Err(_) => self.hosts.iter().find(|host| host.name == name),
        }
    }

    /// The hosts of `role`'s tier, what [`Endpoint::Tier`] stands for: empty when the spec
    /// has no such tier.
    pub fn tier_hosts(&self, role: crate::spec::Role) -> &[String] {
        use crate::spec::Role;
        match role {
            Role::Lb => self.lb.as_ref().map(|t| t.hosts.as_slice()),
            Role::Web => self.web.as_ref().map(|t| t.hosts.as_slice()),
            Role::App => self.app.as_ref().map(|t| t.hosts.as_slice()),
            Role::Db => self.db.as_ref().map(|t| t.hosts.as_slice()),
        }
        .unwrap_or_default()
    }

    pub fn hosts_with(&self, role: crate::spec::Role) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(move |host| host.has(role))
    }
}
