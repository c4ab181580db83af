//! Renderers: pure functions Topology → files (path → bytes). No I/O here; the one
//! writer is [`crate::output`].
//!
//! Native configs (one file each) take `(topology, host, layout)` and return text; the
//! same function renders the NixOS file and the lab file, only the [`Layout`] differs.

pub mod diagram;
pub mod disko;
pub mod flake;
pub mod galera;
pub mod haproxy;
pub mod keepalived;
pub mod monitoring;
pub mod nftables;
pub mod nginx;
pub mod nixos;
pub mod services;
pub mod sshd;
pub mod tls;
pub mod tree;
pub mod vmtest;

use std::collections::BTreeMap;

pub use crate::stack::{Layout, LayoutKind, LAB_ROOT, NIXOS_SECRETS};

/// A rendered artifact tree: relative path → contents, sorted, deterministic.
pub type Artifacts = BTreeMap<String, String>;

/// The topology of `examples/<file>`, for unit tests.
#[cfg(test)]
pub(crate) fn example(file: &str) -> crate::topology::Topology {
    let path = format!("{}/examples/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("example exists");
    crate::topology::compile(&crate::spec::SpecSource { name: file.into(), text }).expect("example compiles")
}
