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
        /// Secrets directory whose certificates are checked for expiry (when it exists).
        #[arg(long, default_value = "secrets")]
        secrets: PathBuf,
    },
    /// Print the audit findings only.
    Audit {
        /// The spec [default: ./stack.toml, else the embedded default].
        spec: Option<PathBuf>,
        /// Secrets directory whose certificates are checked for expiry (when it exists).
        #[arg(long, default_value = "secrets")]
        secrets: PathBuf,
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
    /// Draw the whiteboard as SVG: hosts by tier, the virtual IP, the flows between them
    /// marked plaintext or encrypted, which hosts a firewall guards, the audit's findings.
    Diagram {
        /// The spec [default: ./stack.toml, else the embedded default].
        spec: Option<PathBuf>,
        /// Where to write the SVG (atomically); `-` for standard output.
        #[arg(short, long, default_value = "stack.svg")]
        out: PathBuf,
    },
    /// Print the JSON Schema of stack.toml.
    Schema,
    /// Render the NixOS flake: flake.nix, hosts/, modules/, lab/ configs.
    Build {
        /// The spec [default: ./stack.toml, else the embedded default].
        spec: Option<PathBuf>,
        /// Output directory.
        #[arg(short, long, default_value = ".")]
        out: PathBuf,
        /// Render and compare without writing; exit 1 on drift.
        #[arg(long)]
        check: bool,
        /// Overwrite generated files even if they were edited by hand.
        #[arg(long)]
        force: bool,
        /// Secrets directory: with `[secrets] backend` sops or agenix its encrypted files
        /// (never the plaintext) are shipped in the flake under encrypted-secrets/.
        #[arg(long, default_value = "secrets")]
        secrets: PathBuf,
    },
    /// Manage the stack's secrets (never in the Nix store).
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Show what a deploy would change, per host, in operator terms.
    Plan {
        /// The new spec [default: ./stack.toml, else the embedded default].
        spec: Option<PathBuf>,
        /// The spec that is deployed now [default: .nixstack/deployed.toml when present].
        #[arg(long)]
        from: Option<PathBuf>,
        /// Hosts or @roles to deploy, comma-separated [default: all].
        #[arg(long, value_delimiter = ',')]
        on: Vec<String>,
        #[arg(long, value_enum, default_value_t)]
        goal: crate::deploy::Goal,
        /// Hosts of one web or app tier switched at once.
        #[arg(long, default_value_t = 1)]
        parallel: usize,
        /// The plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Roll the spec out: build, copy, drain, switch, health gate, undrain; roll back and
    /// stop on a failed gate. Exit 0 deployed, 1 a host failed or was rolled back.
    Deploy(crate::deploy::DeployArgs),
    /// First install of a machine with nixos-anywhere: erase and partition the host's `disk`
    /// (its generated disko layout), install its system from the flake, copy its secrets.
    /// Refuses a host without `disk`, a stale flake and missing secrets.
    Install(crate::deploy::install::InstallArgs),
    /// Serve a Sumo Logic HTTP source stand-in (the lab's monitoring endpoint).
    SumologicStandin {
        /// Address to listen on, e.g. 127.0.0.1:8090.
        #[arg(long)]
        listen: String,
        /// File holding the endpoint URL (or just its token).
        #[arg(long)]
        token_file: PathBuf,
    },
    /// The Galera cluster: each node's state, and recovery after every node stopped.
    Db {
        #[command(subcommand)]
        command: crate::db::DbCommand,
    },
    /// Run the stack on this machine in network namespaces with the real daemons.
    Lab {
        #[command(subcommand)]
        command: LabCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Create every missing secret (internal CA, host certificates, passwords); idempotent.
    Init {
        /// The spec [default: ./stack.toml, else the embedded default].
        spec: Option<PathBuf>,
        /// Secrets directory (mode 0700).
        #[arg(long, default_value = "secrets")]
        dir: PathBuf,
    },
    /// Renew the host certificates (new keys, same CA, `tls.host_certificate_days` long);
    /// `nixstack deploy` then uploads them and reloads each daemon.
    Rotate {
        /// The spec [default: ./stack.toml, else the embedded default].
        spec: Option<PathBuf>,
        /// Secrets directory (mode 0700).
        #[arg(long, default_value = "secrets")]
        dir: PathBuf,
        /// Only these hosts (comma-separated; default: every host).
        #[arg(long, value_delimiter = ',')]
        hosts: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Create the namespaces and start every host's daemons; idempotent.
    Up {
        spec: Option<PathBuf>,
        /// One JSON event per line.
        #[arg(long)]
        json: bool,
    },
    /// Run the scenario against the running lab.
    Test {
        spec: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// The database tier's fault suite: concurrent writers through every Galera node, faults
    /// injected and recovered, every acknowledged write checked on every node.
    Chaos {
        spec: Option<PathBuf>,
        /// Faults to run, in order: steady, kill-one, freeze-one, partition-one,
        /// kill-rolling, kill-all (default: all of them).
        #[arg(long, value_delimiter = ',')]
        faults: Vec<String>,
        /// How long the steady run writes, in seconds.
        #[arg(long, default_value_t = 10)]
        steady_secs: u64,
        #[arg(long)]
        json: bool,
    },
    /// ACME against the lab's pebble: order (or, with --renew, renew) the public certificate
    /// on each LB through the VIP, as NixOS's acme units do, and reload HAProxy.
    Acme {
        spec: Option<PathBuf>,
        /// Renew the existing certificates now (lego renew), instead of ordering missing ones.
        #[arg(long)]
        renew: bool,
        /// Only these LBs (comma-separated; default: every LB).
        #[arg(long, value_delimiter = ',')]
        on: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Renew the lab's host certificates (`secrets rotate` on the lab's secrets), install
    /// them and reload each daemon that reads one, as deploy does, without a restart.
    Rotate {
        spec: Option<PathBuf>,
        /// Only these hosts (comma-separated; default: every host).
        #[arg(long, value_delimiter = ',')]
        hosts: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Restart one daemon of one lab host as systemd restarts its unit: SIGTERM, wait until it
    /// has exited (a graceful stop answers the requests in flight), start it again. The lab's
    /// `switch-to-configuration` runs it when a new app version is deployed.
    Restart {
        host: String,
        /// The daemon's name in `lab status` (app, nginx, haproxy, ...).
        daemon: String,
        #[arg(long)]
        json: bool,
    },
    /// Show each host's daemons and health.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Remove everything `lab up` created, and nothing else.
    Down {
        #[arg(long)]
        json: bool,
    },
    /// Live requests per second per web host and per load balancer, computed from the
    /// request counters the collectors shipped to the lab's Sumo Logic stand-in.
    Qps {
        /// One JSON object per refresh.
        #[arg(long)]
        json: bool,
        /// Refresh every collection interval until interrupted.
        #[arg(long)]
        watch: bool,
    },
}
