//! Command-line arguments (clap derive); the variant docs are the help text.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Compile one stack.toml into a NixOS flake, prove it in a namespace lab, deploy it.
#[derive(Debug, Parser)]
#[command(name = "nixstack", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented stack.toml (the default spec); never overwrites.
    Init {
        /// Where to write it [default: ./stack.toml].
        path: Option<PathBuf>,
    },
    /// Parse, resolve and audit a spec; print the topology and the findings.
    /// Exit 0 clean, 1 findings of severity error, 2 invalid spec.
    Check {
        /// The spec [default: ./stack.toml, else the embedded default].
        spec: Option<PathBuf>,
    },
    /// Print the audit findings only.
    Audit {
        /// The spec [default: ./stack.toml, else the embedded default].
        spec: Option<PathBuf>,
        /// One JSON array of findings.
        #[arg(long)]
        json: bool,
    },
    /// Dump the resolved Topology.
    Topology {
        /// The spec [default: ./stack.toml, else the embedded default].
        spec: Option<PathBuf>,
        /// JSON output (the only format).
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of stack.toml.
    Schema,
}
