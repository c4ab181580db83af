//! `nixstack db status` and `nixstack db recover`: read every Galera node's state, run the one
//! decision ([`crate::stack::galera_recovery`]) and, for `recover`, start exactly the chosen
//! node as a new cluster and then the others. Over SSH to NixOS hosts, or in the lab's
//! namespaces (`--lab`); `nixstack lab up` runs the same [`gather`] and decision.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde::Serialize;

use crate::deploy::host::Host as _;
use crate::deploy::ssh::SshHost;
pub use crate::host::galera::{describe, facts, gather};
pub use crate::lab::galera::gather_lab;
use crate::stack::galera_backup::{self, RestoreNode, RestoreSource};
use crate::stack::galera_recovery::{self as recovery, Decision, NodeReport, NodeState};
use crate::stack::Layout;
use crate::topology::{BackupDestination, Topology};

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Per node: running or stopped, cluster status and size, uuid, seqno, safe_to_bootstrap;
    /// and what `db recover` would do now.
    Status {
        /// The spec [default: ./stack.toml, else the embedded default].
        spec: Option<PathBuf>,
        /// The lab's nodes (its namespaces) instead of the spec's hosts over SSH.
        #[arg(long)]
        lab: bool,
        #[arg(long)]
        json: bool,
    },
    /// After every node stopped: start the node with the most advanced committed state as a
    /// new cluster, then the others. Refuses (and says what to do) when that cannot be decided.
    Recover {
        /// The spec [default: ./stack.toml, else the embedded default].
        spec: Option<PathBuf>,
        /// Nodes lost for good, decided without (writes only they hold are lost).
        #[arg(long, value_delimiter = ',')]
        without: Vec<String>,
        /// Print the decision; start nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// One backup now on the `[db.backup]` node (what its timer runs): `systemctl start
    /// nixstack-db-backup` on NixOS; the same script in the lab (`--lab`), which has no timer.
    Backup {
        /// The spec [default: ./stack.toml, else the embedded default].
        spec: Option<PathBuf>,
        #[arg(long)]
        lab: bool,
    },
    /// Rebuild the cluster from a backup: stops every node, restores the backup onto one node
    /// (its datadir moved aside, never deleted) with the backup's Galera position and
    /// `safe_to_bootstrap: 1`, empties the others' datadirs (moved aside), bootstraps the
    /// restored node and lets the others join it by SST. Writes after the backup are gone from
    /// the new cluster (they stay in the moved-aside datadirs).
    Restore {
        /// The spec [default: ./stack.toml, else the embedded default].
        spec: Option<PathBuf>,
        /// A backup directory on the restoring node (local target), or a restic snapshot id
        /// (`latest` for the newest) with a restic target.
        #[arg(long)]
        from: String,
        /// The node to restore onto [default: the `[db.backup]` node, which holds the backups].
        #[arg(long)]
        node: Option<String>,
        /// The lab's nodes instead of the spec's hosts over SSH.
        #[arg(long)]
        lab: bool,
    },
}

fn ssh_hosts(topology: &Topology) -> Vec<SshHost> {
    topology
        .db
        .iter()
        .flat_map(|db| &db.hosts)
        .map(|name| SshHost::nixos(topology.host(name).expect("db hosts are hosts")))
        .collect()
}

fn run_on(hosts: &[SshHost], node: &str, script: &str) -> Result<String> {
    let host = hosts.iter().find(|h| h.name() == node).context("a db host")?;
    Ok(host.run(script)?.stdout)
}

#[derive(Serialize)]
struct StatusReport<'a> {
    nodes: &'a [NodeReport],
    decision: &'a Decision,
}

pub fn command(command: DbCommand) -> Result<i32> {
    match command {
        DbCommand::Backup { spec, lab } => backup_command(spec, lab),
        DbCommand::Restore { spec, from, node, lab } => restore_command(spec, from, node, lab),
        DbCommand::Status { spec, lab, json } => {
            let topology = if lab { lab_topology()? } else { crate::topology::load(spec.as_deref())?.1 };
            let nodes = if lab {
                crate::lab::require_root()?;
                gather_lab(&topology)
            } else {
                let hosts = ssh_hosts(&topology);
                gather(&topology, |_| Layout::nixos(), |node, script| run_on(&hosts, node, script))
            };
            let decision = recovery::decide(&nodes, &facts(&topology, &[])?);
            if json {
                println!("{}", serde_json::to_string_pretty(&StatusReport { nodes: &nodes, decision: &decision })?);
            } else {
                print!("{}", status_table(&nodes));
                println!("\n{}", describe(&decision));
            }
            Ok(crate::exit::OK)
        }
        DbCommand::Recover { spec, without, dry_run, json } => {
            let topology = crate::topology::load(spec.as_deref())?.1;
            let hosts = ssh_hosts(&topology);
            let nodes = gather(&topology, |_| Layout::nixos(), |node, script| run_on(&hosts, node, script));
            let decision = recovery::decide(&nodes, &facts(&topology, &without)?);
            if json {
                println!("{}", serde_json::to_string_pretty(&StatusReport { nodes: &nodes, decision: &decision })?);
            } else {
                print!("{}", status_table(&nodes));
                println!("\n{}", describe(&decision));
            }
            if dry_run {
                return Ok(crate::exit::OK);
            }
            let datadir = Layout::nixos().mysql_datadir().display().to_string();
            match &decision {
                Decision::Refuse(_) => return Ok(crate::exit::FINDINGS),
                Decision::Bootstrap { node, others, position, .. } => {
                    run_on(&hosts, node, &recovery::prepare_bootstrap_script(&datadir, position.as_ref()))
                        .with_context(|| format!("{node}: readying grastate.dat to bootstrap"))?;
                    run_on(&hosts, node, recovery::NIXOS_BOOTSTRAP_SCRIPT)
                        .with_context(|| format!("{node}: starting mysql as a new cluster"))?;
                    eprintln!("{node}: started as a new cluster");
                    start_each(&hosts, others)?;
                }
                Decision::Rejoin { stopped, .. } => start_each(&hosts, stopped)?,
                Decision::WaitForPcRecovery { start, .. } => start_each(&hosts, start)?,
            }
            Ok(crate::exit::OK)
        }
    }
}

/// Where `--from` points, for the spec's `[db.backup]` target (`layout`: the restoring node's).
fn restore_source(topology: &Topology, from: &str, node: &str, layout: &Layout, lab: bool) -> Result<RestoreSource> {
    let config = topology.db.as_ref().and_then(|db| db.backup.as_ref());
    let target = match (config, lab) {
        (Some(config), true) => crate::lab::backup::lab_target(config).0,
        (Some(config), false) => config.target.clone(),
        (None, _) => BackupDestination::Local { path: String::new() },
    };
    Ok(match target {
        BackupDestination::Local { .. } => RestoreSource::Local { dir: from.to_string() },
        BackupDestination::Restic { repository, password_secret } => {
            if crate::secrets::restic_password_secret(topology, node).is_none() && !lab {
                bail!("{node} is not the [db.backup] node: restore a restic snapshot there (it has the repository password)");
            }
            RestoreSource::Restic {
                repository,
                password_file: layout.secret(&password_secret).display().to_string(),
                snapshot: from.to_string(),
            }
        }
    })
}

fn restore_node_of(node: &str, stamp: &str) -> RestoreNode {
    RestoreNode {
        datadir: Layout::nixos().mysql_datadir().display().to_string(),
        owner: "mysql:mysql".into(),
        stamp: format!("{stamp}-{node}"),
    }
}

fn restore_command(spec: Option<PathBuf>, from: String, node: Option<String>, lab: bool) -> Result<i32> {
    let topology = if lab { lab_topology()? } else { crate::topology::load(spec.as_deref())?.1 };
    let db = topology.db.as_ref().context("the spec has no db tier")?;
    let node = match node.or_else(|| db.backup.as_ref().map(|b| b.host.clone())) {
        Some(node) if db.hosts.contains(&node) => node,
        Some(node) => bail!("{node} is not a db node (one of {})", db.hosts.join(", ")),
        None => bail!("the spec has no [db.backup]: name the node that holds the backup with --node"),
    };
    let stamp = chrono_stamp();
    if lab {
        crate::lab::require_root()?;
        let source = restore_source(&topology, &from, &node, &Layout::lab(&node), true)?;
        let inspection = crate::lab::backup::restore(&topology, &node, &source, &stamp)?;
        eprintln!("{node}: restored {source} at {}; starting the lab", inspection.position);
        return crate::lab::up(None, &crate::lab::Reporter::new(false));
    }
    let source = restore_source(&topology, &from, &node, &Layout::nixos(), false)?;
    let hosts = ssh_hosts(&topology);
    for host in &db.hosts {
        run_on(&hosts, host, "systemctl stop mysql.service\n").with_context(|| format!("{host}: stopping mysql"))?;
    }
    let stopped = gather(&topology, |_| Layout::nixos(), |n, script| run_on(&hosts, n, script));
    if let Some(bad) = stopped.iter().find(|r| !matches!(r.state, NodeState::Stopped(_))) {
        bail!("{}: not stopped ({:?}); nothing was restored: stop it, then run db restore again", bad.node, bad.state);
    }
    let target = restore_node_of(&node, &stamp);
    let out = run_on(&hosts, &node, &galera_backup::inspect_script(&target, &source))?;
    let inspection = galera_backup::parse_inspection(&out, &source)?;
    run_on(&hosts, &node, &galera_backup::restore_script(&target, &inspection, &source))
        .with_context(|| format!("{node}: restoring {source}"))?;
    for other in db.hosts.iter().filter(|h| **h != node) {
        run_on(&hosts, other, &galera_backup::empty_script(&restore_node_of(other, &stamp)))
            .with_context(|| format!("{other}: emptying the datadir"))?;
    }
    eprintln!("{node}: restored {source} at {}", inspection.position);
    // The same decision as `db recover`: exactly the restored node holds data.
    let nodes = gather(&topology, |_| Layout::nixos(), |n, script| run_on(&hosts, n, script));
    match recovery::decide(&nodes, &facts(&topology, &[])?) {
        Decision::Bootstrap { node: chosen, others, position, .. } if chosen == node => {
            run_on(
                &hosts,
                &node,
                &recovery::prepare_bootstrap_script(
                    &Layout::nixos().mysql_datadir().display().to_string(),
                    position.as_ref(),
                ),
            )?;
            run_on(&hosts, &node, recovery::NIXOS_BOOTSTRAP_SCRIPT)
                .with_context(|| format!("{node}: starting mysql as a new cluster"))?;
            eprintln!("{node}: started as a new cluster");
            start_each(&hosts, &others)?;
            Ok(crate::exit::OK)
        }
        decision => bail!("after the restore, recovery would not bootstrap {node}: {}", describe(&decision)),
    }
}

/// `20260101T030000Z`: names what a restore moves aside.
fn chrono_stamp() -> String {
    let output = std::process::Command::new("date").args(["-u", "+%Y%m%dT%H%M%SZ"]).output();
    output.ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_else(|| "now".into())
}

fn backup_command(spec: Option<PathBuf>, lab: bool) -> Result<i32> {
    let topology = if lab { lab_topology()? } else { crate::topology::load(spec.as_deref())?.1 };
    if lab {
        crate::lab::require_root()?;
        let (place, position) = crate::lab::backup::backup_now(&topology)?;
        println!("{place} at {position}");
        return Ok(crate::exit::OK);
    }
    let config = topology.db.as_ref().and_then(|db| db.backup.as_ref()).context("the spec has no [db.backup]")?;
    let hosts = ssh_hosts(&topology);
    let out = run_on(
        &hosts,
        &config.host,
        "systemctl start nixstack-db-backup.service && journalctl -u nixstack-db-backup.service -n 5 -o cat\n",
    )
    .with_context(|| format!("{}: nixstack-db-backup", config.host))?;
    print!("{out}");
    Ok(crate::exit::OK)
}

/// Starts each node's mysql unit in turn: each joins by state transfer before the next.
fn start_each(hosts: &[SshHost], nodes: &[String]) -> Result<()> {
    for node in nodes {
        run_on(hosts, node, recovery::NIXOS_START_SCRIPT).with_context(|| format!("{node}: starting mysql"))?;
        eprintln!("{node}: started");
    }
    Ok(())
}

fn lab_topology() -> Result<Topology> {
    let Some(state) = crate::lab::state::State::load()? else { bail!("no lab is up: run `nixstack lab up` first") };
    Ok(crate::topology::compile(&crate::spec::SpecSource {
        name: state.spec_name.clone(),
        text: state.spec_text.clone(),
    })?)
}

/// One line per node: state, cluster status and size, uuid, seqno, safe_to_bootstrap.
pub fn status_table(nodes: &[NodeReport]) -> String {
    let mut text = format!(
        "{:<10} {:<12} {:<12} {:>4}  {:<36} {:>10}  {}\n",
        "node", "mariadbd", "cluster", "size", "uuid", "seqno", "safe_to_bootstrap"
    );
    for report in nodes {
        let line = match &report.state {
            NodeState::Running(s) => {
                let (uuid, seqno) = s
                    .position
                    .as_ref()
                    .map_or(("?".to_string(), "?".to_string()), |p| (p.uuid.clone(), p.seqno.to_string()));
                format!(
                    "{:<10} {:<12} {:<12} {:>4}  {:<36} {:>10}  -",
                    report.node, s.local_state, s.cluster_status, s.cluster_size, uuid, seqno
                )
            }
            NodeState::Stopped(s) => {
                let uuid = s.grastate.as_ref().map_or("-".to_string(), |g| g.uuid.clone());
                let seqno = match (&s.grastate, &s.recovered) {
                    (Some(g), _) if g.seqno >= 0 => g.seqno.to_string(),
                    (_, Some(r)) => format!("{} (recovered)", r.seqno),
                    (Some(_), None) => "-1 (unknown)".into(),
                    (None, None) => "-".into(),
                };
                let safe = s.grastate.as_ref().map_or("-", |g| if g.safe_to_bootstrap { "1" } else { "0" });
                let gvw = if s.gvwstate { " gvwstate.dat" } else { "" };
                format!(
                    "{:<10} {:<12} {:<12} {:>4}  {:<36} {:>10}  {safe}{gvw}",
                    report.node, "stopped", "-", "-", uuid, seqno
                )
            }
            NodeState::Unreachable { reason } => format!("{:<10} unreachable: {reason}", report.node),
        };
        text.push_str(&line);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SpecSource;

    const CRASHED: &str = "nixstack-galera-report=1\nmariadbd=stopped\ngvwstate=absent\ngrastate: # GALERA saved state\ngrastate: version: 2.1\ngrastate: uuid:    a0130a89-eedb-11f1-88b7-ea8a99582dce\ngrastate: seqno:   -1\ngrastate: safe_to_bootstrap: 0\nrecover_exit=0\n";

    fn crashed_at(seqno: i64) -> String {
        format!("{CRASHED}recover: 2026-12-03  5:37:29 0 [Note] WSREP: Recovered position: a0130a89-eedb-11f1-88b7-ea8a99582dce:{seqno}\n")
    }

    #[test]
    fn gathering_runs_each_nodes_script_and_a_failure_is_a_missing_node() {
        let topology = crate::topology::compile(&SpecSource::embedded_default()).unwrap();
        let db = topology.db.as_ref().unwrap();
        let (first, second, third) = (db.hosts[0].clone(), db.hosts[1].clone(), db.hosts[2].clone());
        let reports = gather(&topology, Layout::lab, |node, script| {
            assert!(script.contains(&format!("/{node}/")), "{node}'s own paths: {script}");
            match node {
                n if n == first => Ok(crashed_at(10)),
                n if n == second => Ok(crashed_at(12)),
                _ => anyhow::bail!("ssh: connect to host: No route to host"),
            }
        });
        assert_eq!(
            reports.iter().map(|r| r.node.as_str()).collect::<Vec<_>>(),
            db.hosts.iter().map(String::as_str).collect::<Vec<_>>()
        );
        assert!(matches!(&reports[2].state, NodeState::Unreachable { reason } if reason.contains("No route")));
        let decision = recovery::decide(&reports, &facts(&topology, &[]).unwrap());
        assert!(matches!(&decision, Decision::Refuse(_)), "{decision:?}");
        let decision = recovery::decide(&reports, &facts(&topology, std::slice::from_ref(&third)).unwrap());
        assert!(matches!(&decision, Decision::Bootstrap { node, .. } if *node == second), "{decision:?}");
        assert!(describe(&decision).contains(":12"), "{}", describe(&decision));
        assert!(status_table(&reports).contains("12 (recovered)"), "{}", status_table(&reports));
        assert!(facts(&topology, &["nosuch".into()]).is_err());
    }
}
