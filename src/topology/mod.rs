//! The Topology: the spec resolved into a complete, validated model.

mod flows;
mod model;
mod resolve;

pub use model::*;
pub use resolve::resolve;

/// Parses and resolves spec text: the whole front half of the pipeline.
pub fn compile(source: &crate::spec::SpecSource) -> Result<Topology, crate::spec::SpecErrors> {
    let raw = crate::spec::parse(source)?;
    resolve(source, &raw)
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
    pub const MYSQL: u16 = 3306;
    pub const GALERA_REPLICATION: u16 = 4567;
    pub const GALERA_IST: u16 = 4568;
    pub const GALERA_SST: u16 = 4444;
    pub const DNS: u16 = 53;
    pub const NTP: u16 = 123;
}

impl Topology {
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|host| host.name == name)
    }

    pub fn hosts_with(&self, role: crate::spec::Role) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(move |host| host.has(role))
    }
}
