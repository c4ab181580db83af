//! Backups in the lab: `nixstack db backup --lab` runs the script the NixOS unit runs
//! (`modules/db-backup.sh`) in the backup node's namespace, now (the lab has no timer), and
//! `nixstack db restore --lab` stops every db node, restores with the scripts `db restore` runs
//! on NixOS ([`crate::stack::galera_backup`]), and brings the tier back with `lab up`, whose
//! recovery decision bootstraps the restored node (the only one with data) and lets the others
//! join by SST.
//!
//! For tests/lab.rs (not wired yet): [`backup_now`] then, after destroying the tier,
//! [`restore`] with [`RestoreSource::Local`] of the directory [`backup_now`] returned (or
//! `RestoreSource::Restic { snapshot: "latest", .. }` for a restic spec), then
//! `crate::lab::up(None, reporter)`; `nixstack db restore --lab --from DIR` does all of it.

use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::daemons::{self, Service};
use crate::stack::galera_backup::{self as backup, BackupRun, Inspection, RestoreNode, RestoreSource};
use crate::stack::galera_recovery::Position;
use crate::stack::Layout;
use crate::topology::{BackupDestination, DbBackup, Topology};

/// The backup's target in the lab: under the node's lab state directory (`state/backup`,
/// `state/restic`), never the spec's path on this machine.
pub fn lab_target(backup: &DbBackup) -> (BackupDestination, String) {
    let layout = Layout::lab(&backup.host);
    match &backup.target {
        BackupDestination::Local { .. } => {
            let path = layout.state.join("backup").display().to_string();
            (BackupDestination::Local { path: path.clone() }, path)
        }
        BackupDestination::Restic { password_secret, .. } => (
            BackupDestination::Restic {
                repository: layout.state.join("restic").display().to_string(),
                password_secret: password_secret.clone(),
            },
            layout.state.join("backup-staging").display().to_string(),
        ),
    }
}

fn run_in(node: &str, script: &str) -> Result<String> {
    crate::lab::cmd::Cmd::new("sh")
        .args(["-c", script])
        .netns(&crate::stack::address_plan::host_netns(node))
        .timeout(Duration::from_secs(1800))
        .stdout()
        .map_err(anyhow::Error::from)
}

/// One backup now on the lab's backup node; returns where it went and its Galera position.
pub fn backup_now(topology: &Topology) -> Result<(String, Position)> {
    let Some(config) = topology.db.as_ref().and_then(|db| db.backup.as_ref()) else {
        bail!("the spec has no [db.backup]")
    };
    let layout = Layout::lab(&config.host);
    let (target, path) = lab_target(config);
    let run = BackupRun {
        target,
        keep: config.keep,
        path,
        password_file: crate::secrets::restic_password_secret(topology, &config.host)
            .map(|s| layout.secret(&s).display().to_string()),
        socket: layout.mysql_socket().display().to_string(),
        defaults_file: None,
        datadir: Some(layout.mysql_datadir().display().to_string()),
        user: "root".into(),
    };
    let out = run_in(&config.host, &backup::backup_script(&run)).with_context(|| format!("{}: backup", config.host))?;
    backup::parse_backup_output(&out)
        .with_context(|| format!("{}: the backup script printed no result:\n{out}", config.host))
}

/// Stops every db node of the lab, restores `source` onto `node` and empties the others'
/// datadirs (moved aside). The caller then runs `lab up`.
pub fn restore(topology: &Topology, node: &str, source: &RestoreSource, stamp: &str) -> Result<Inspection> {
    let db = topology.db.as_ref().context("the spec has no db tier")?;
    for host in &db.hosts {
        daemons::kill(host, Service::Mariadb, libc::SIGTERM);
    }
    for host in &db.hosts {
        daemons::wait_gone(host, Service::Mariadb, Duration::from_secs(120))?;
    }
    let target = restore_node(node, stamp);
    let out = run_in(node, &backup::inspect_script(&target, source))?;
    let inspection = backup::parse_inspection(&out, source)?;
    run_in(node, &backup::restore_script(&target, &inspection, source)).with_context(|| format!("{node}: restore"))?;
    for other in db.hosts.iter().filter(|h| *h != node) {
        run_in(other, &backup::empty_script(&restore_node(other, stamp)))
            .with_context(|| format!("{other}: emptying the datadir"))?;
    }
    Ok(inspection)
}

fn restore_node(node: &str, stamp: &str) -> RestoreNode {
    RestoreNode {
        datadir: Layout::lab(node).mysql_datadir().display().to_string(),
        owner: "mysql:mysql".into(),
        stamp: stamp.into(),
    }
}
