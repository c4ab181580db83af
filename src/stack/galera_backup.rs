//! Physical backups of the Galera tier and the restore that rebuilds a cluster from one. Pure:
//! the scripts (templates beside this file and in `modules/`), their parameters, and the
//! reading of what they print. The executors run them: `modules/db.nix` (the
//! `nixstack-db-backup` unit), `nixstack db backup|restore` over SSH and in the lab
//! (`src/db.rs`, `src/lab/backup.rs`), and tests/galera_backup.rs against a real mariadbd.
//!
//! A restore, on every node stopped: the chosen node's datadir is moved aside and the backup
//! copied back into an empty one (`mariabackup --copy-back`), its `grastate.dat` written from
//! the backup's `xtrabackup_galera_info` (`uuid:seqno`, `safe_to_bootstrap: 1`); every other
//! node's datadir is moved aside (empty: it joins by SST). Then the recovery decision
//! ([`crate::stack::galera_recovery::decide`]) sees exactly one node with data and bootstraps it.
//! Nothing is ever deleted: the old datadirs stay beside the new ones.

use std::fmt;

use serde::Serialize;
use thiserror::Error;

use super::galera_recovery::{parse_position, Position, NO_HISTORY};
use super::health::shell_quote;

/// The backup script the `nixstack-db-backup` unit runs (shipped verbatim in the flake).
pub const BACKUP_SCRIPT: &str = include_str!("../../modules/db-backup.sh");
/// The restore script's template (steps `inspect`, `restore`, `empty`).
const RESTORE_SCRIPT: &str = include_str!("db-restore.sh");
/// The file the backup script writes last, once the backup is prepared and complete.
pub const COMPLETE_MARKER: &str = "nixstack-backup-complete";

/// Where a backup to restore is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RestoreSource {
    /// A backup directory on the restoring node (one of the local target's dated directories).
    Local { dir: String },
    /// A restic snapshot (`latest` or an id) of `repository`.
    Restic { repository: String, password_file: String, snapshot: String },
}

impl fmt::Display for RestoreSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreSource::Local { dir } => write!(f, "{dir}"),
            RestoreSource::Restic { repository, snapshot, .. } => {
                write!(f, "restic snapshot {snapshot} of {repository}")
            }
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum BackupError {
    #[error("{0}: no such backup directory on the restoring node")]
    Missing(String),
    #[error("{dir} is not a mariabackup backup (no xtrabackup_checkpoints): name a directory the backup made, e.g. {example}")]
    NotABackup { dir: String, example: String },
    #[error("{dir} is not prepared (xtrabackup_checkpoints: {backup_type}): run `mariabackup --prepare --target-dir={dir}` on it first, then restore again")]
    Unprepared { dir: String, backup_type: String },
    #[error("{dir} is incomplete: it has no {COMPLETE_MARKER} (the backup was interrupted, or not made by nixstack-db-backup); restore an older complete backup")]
    Incomplete { dir: String },
    #[error("{dir} has no xtrabackup_galera_info: its Galera position is unknown; restore a backup made with --galera-info (nixstack-db-backup's)")]
    NoGaleraInfo { dir: String },
    #[error("{dir}: xtrabackup_galera_info `{text}` is not a Galera position (uuid:seqno) of a history")]
    BadGaleraInfo { dir: String, text: String },
    #[error("the restore script's output has no `{0}=` line")]
    MissingLine(&'static str),
}

/// What the `inspect` step found: where the backup's files are and the Galera position they hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inspection {
    /// The directory `--copy-back` reads (for restic: inside the staging directory).
    pub source: String,
    pub position: Position,
}

/// The paths and account of the node being restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreNode {
    pub datadir: String,
    /// `user:group` owning the datadir (`mysql:mysql`).
    pub owner: String,
    /// Names the moved-aside datadirs (`<datadir>.before-restore-<stamp>`) and the restic
    /// staging directory.
    pub stamp: String,
}

impl RestoreNode {
    /// Where a restic snapshot is unpacked: beside the datadir (the same file system).
    pub fn staging(&self) -> String {
        format!("{}.restore-{}", self.datadir, self.stamp)
    }
}

fn script(params: &[(&str, &str)]) -> String {
    let mut text = String::new();
    for (name, value) in params {
        text.push_str(&format!("{name}={}\n", shell_quote(value)));
    }
    text.push_str(RESTORE_SCRIPT);
    text
}

/// Step 1, on the restoring node: fetch the backup and print what it holds. Changes nothing but
/// the restic staging directory.
pub fn inspect_script(node: &RestoreNode, source: &RestoreSource) -> String {
    let staging = node.staging();
    let mut params = vec![
        ("step", "inspect"),
        ("datadir", node.datadir.as_str()),
        ("owner", node.owner.as_str()),
        ("stamp", node.stamp.as_str()),
        ("staging", staging.as_str()),
    ];
    match source {
        RestoreSource::Local { dir } => params.extend([("kind", "local"), ("from", dir.as_str())]),
        RestoreSource::Restic { repository, password_file, snapshot } => params.extend([
            ("kind", "restic"),
            ("from", snapshot.as_str()),
            ("repository", repository.as_str()),
            ("password_file", password_file.as_str()),
        ]),
    }
    script(&params)
}

fn line<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
}

/// Reads the `inspect` step's output; refuses (with what to do) anything but a complete,
/// prepared backup that knows its Galera position.
pub fn parse_inspection(text: &str, source: &RestoreSource) -> Result<Inspection, BackupError> {
    if let Some(missing) = line(text, "missing") {
        return Err(BackupError::Missing(missing.to_string()));
    }
    let dir = line(text, "source").ok_or(BackupError::MissingLine("source"))?.to_string();
    let Some(checkpoints) = line(text, "checkpoints") else {
        let example = match source {
            RestoreSource::Local { .. } => "/var/backup/nixstack-db/20260101T030000Z".to_string(),
            RestoreSource::Restic { .. } => "a snapshot id from `restic snapshots --tag nixstack-db`".to_string(),
        };
        return Err(BackupError::NotABackup { dir, example });
    };
    let backup_type = checkpoints.trim_start_matches("backup_type").trim_start_matches([' ', '=']).trim().to_string();
    if !matches!(backup_type.as_str(), "log-applied" | "full-prepared") {
        return Err(BackupError::Unprepared { dir, backup_type });
    }
    if line(text, "complete") != Some("yes") {
        return Err(BackupError::Incomplete { dir });
    }
    let info = line(text, "galera_info").ok_or_else(|| BackupError::NoGaleraInfo { dir: dir.clone() })?;
    let position =
        parse_galera_info(info).ok_or_else(|| BackupError::BadGaleraInfo { dir: dir.clone(), text: info.into() })?;
    Ok(Inspection { source: dir, position })
}

/// `xtrabackup_galera_info` as mariabackup 10.11 writes it: `uuid:seqno`, then the GTID domain
/// id (`60af5804-eee7-11f1-8a98-4f2d1962122b:5 0`). A position of no history, or `-1`, is not one
/// a cluster can continue from.
pub fn parse_galera_info(text: &str) -> Option<Position> {
    let position = parse_position(text.split_whitespace().next()?).ok()?;
    (position.uuid != NO_HISTORY && position.seqno >= 0).then_some(position)
}

/// grastate.dat of the restored node: the backup's position, and `safe_to_bootstrap: 1` (it is
/// the only node with data once the others are emptied; the decision then bootstraps it and the
/// cluster continues the backup's history, so a later IST works).
pub fn restored_grastate(position: &Position) -> String {
    format!(
        "# GALERA saved state\nversion: 2.1\nuuid:    {}\nseqno:   {}\nsafe_to_bootstrap: 1\n",
        position.uuid, position.seqno
    )
}

/// Step 2, on the restoring node: datadir aside, `--copy-back`, ownership, grastate.dat.
pub fn restore_script(node: &RestoreNode, inspection: &Inspection, source: &RestoreSource) -> String {
    let grastate = restored_grastate(&inspection.position);
    let staging = match source {
        RestoreSource::Restic { .. } => node.staging(),
        RestoreSource::Local { .. } => String::new(),
    };
    script(&[
        ("step", "restore"),
        ("datadir", &node.datadir),
        ("owner", &node.owner),
        ("stamp", &node.stamp),
        ("source", &inspection.source),
        ("grastate", &grastate),
        ("staging", &staging),
    ])
}

/// On every other node: datadir aside, an empty one in its place (it joins by SST).
pub fn empty_script(node: &RestoreNode) -> String {
    script(&[("step", "empty"), ("datadir", &node.datadir), ("owner", &node.owner), ("stamp", &node.stamp)])
}

/// The parameters of [`BACKUP_SCRIPT`], as shell assignments before it (the NixOS unit sets the
/// same names as its environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRun {
    pub target: crate::topology::BackupDestination,
    pub keep: u32,
    /// local: the backups' directory; restic: the staging directory.
    pub path: String,
    /// restic: the password file.
    pub password_file: Option<String>,
    pub socket: String,
    /// The server's my.cnf (`None`: `--no-defaults`, then `datadir` must be set).
    pub defaults_file: Option<String>,
    pub datadir: Option<String>,
    /// The account mariabackup connects as over the socket (unix_socket authentication).
    pub user: String,
}

/// The backup script with its parameters, for `sh -c` (as root in the lab, or as the account).
pub fn backup_script(run: &BackupRun) -> String {
    use crate::topology::BackupDestination;
    let keep = run.keep.to_string();
    let mut params: Vec<(&str, &str)> = vec![
        ("NIXSTACK_BACKUP_KEEP", &keep),
        ("NIXSTACK_BACKUP_PATH", &run.path),
        ("NIXSTACK_BACKUP_SOCKET", &run.socket),
        ("NIXSTACK_BACKUP_USER", &run.user),
        ("NIXSTACK_BACKUP_DEFAULTS_FILE", run.defaults_file.as_deref().unwrap_or("")),
        ("NIXSTACK_BACKUP_DATADIR", run.datadir.as_deref().unwrap_or("")),
    ];
    match &run.target {
        BackupDestination::Local { .. } => params.push(("NIXSTACK_BACKUP_TARGET", "local")),
        BackupDestination::Restic { repository, .. } => params.extend([
            ("NIXSTACK_BACKUP_TARGET", "restic"),
            ("NIXSTACK_BACKUP_REPOSITORY", repository.as_str()),
            ("NIXSTACK_BACKUP_PASSWORD_FILE", run.password_file.as_deref().unwrap_or("")),
        ]),
    }
    let mut text = String::new();
    for (name, value) in params {
        text.push_str(&format!("{name}={}\nexport {name}\n", shell_quote(value)));
    }
    text.push_str(BACKUP_SCRIPT);
    text
}

/// The last line the backup script prints on success: where the backup went and its position.
pub fn parse_backup_output(text: &str) -> Option<(String, Position)> {
    let line = text.lines().rev().find(|l| l.starts_with("nixstack-db-backup: ") && l.contains(" at "))?;
    let rest = line.strip_prefix("nixstack-db-backup: ")?;
    let (place, position) = rest.rsplit_once(" at ")?;
    Some((place.to_string(), parse_galera_info(position)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From mariabackup 10.11.19 on this machine.
    const GALERA_INFO: &str = "60af5804-eee7-11f1-8a98-4f2d1962122b:4 0";

    fn local() -> RestoreSource {
        RestoreSource::Local { dir: "/b/20261203T070156Z".into() }
    }

    fn inspected(extra: &str) -> String {
        format!("source=/b/20261203T070156Z\n{extra}")
    }

    #[test]
    fn a_complete_prepared_backup_gives_its_galera_position() {
        let text =
            inspected(&format!("checkpoints=backup_type = log-applied\ncomplete=yes\ngalera_info={GALERA_INFO}\n"));
        let inspection = parse_inspection(&text, &local()).unwrap();
        assert_eq!(inspection.position, Position { uuid: "60af5804-eee7-11f1-8a98-4f2d1962122b".into(), seqno: 4 });
        assert_eq!(inspection.source, "/b/20261203T070156Z");
        assert_eq!(
            restored_grastate(&inspection.position),
            "# GALERA saved state\nversion: 2.1\nuuid:    60af5804-eee7-11f1-8a98-4f2d1962122b\nseqno:   4\nsafe_to_bootstrap: 1\n"
        );
        // The grastate.dat written is one the recovery code reads back the same.
        let g = crate::stack::galera_recovery::parse_grastate(&restored_grastate(&inspection.position)).unwrap();
        assert_eq!((g.seqno, g.safe_to_bootstrap), (4, true));
    }

    #[test]
    fn anything_but_a_complete_prepared_backup_is_refused_with_what_to_do() {
        let s = local();
        assert_eq!(parse_inspection("missing=/nope\n", &s), Err(BackupError::Missing("/nope".into())));
        assert!(matches!(parse_inspection(&inspected("complete=no\n"), &s), Err(BackupError::NotABackup { .. })));
        let unprepared = parse_inspection(&inspected("checkpoints=backup_type = full-backuped\ncomplete=no\n"), &s);
        let Err(e @ BackupError::Unprepared { .. }) = unprepared else { panic!("{unprepared:?}") };
        assert!(e.to_string().contains("mariabackup --prepare --target-dir=/b/20261203T070156Z"), "{e}");
        let incomplete =
            inspected(&format!("checkpoints=backup_type = log-applied\ncomplete=no\ngalera_info={GALERA_INFO}\n"));
        assert!(matches!(parse_inspection(&incomplete, &s), Err(BackupError::Incomplete { .. })));
        let no_info = inspected("checkpoints=backup_type = log-applied\ncomplete=yes\n");
        assert!(matches!(parse_inspection(&no_info, &s), Err(BackupError::NoGaleraInfo { .. })));
        for bad in [format!("{NO_HISTORY}:-1 0"), "garbage".into(), "60af5804-eee7-11f1-8a98-4f2d1962122b:-1".into()] {
            let text = inspected(&format!("checkpoints=backup_type = log-applied\ncomplete=yes\ngalera_info={bad}\n"));
            assert!(matches!(parse_inspection(&text, &s), Err(BackupError::BadGaleraInfo { .. })), "{bad}");
        }
    }

    #[test]
    fn scripts_carry_their_parameters_quoted_before_the_template() {
        let node = RestoreNode { datadir: "/var/lib/mysql".into(), owner: "mysql:mysql".into(), stamp: "S".into() };
        let source = RestoreSource::Restic {
            repository: "sftp:b@h:/r".into(),
            password_file: "/var/lib/nixstack/secrets/db-backup-restic.password".into(),
            snapshot: "latest".into(),
        };
        let text = inspect_script(&node, &source);
        assert!(text.starts_with("step=inspect\n"), "{text}");
        assert!(text.contains("staging=/var/lib/mysql.restore-S\n") && text.contains("kind=restic\n"), "{text}");
        let inspection = Inspection {
            source: "/var/lib/mysql.restore-S".into(),
            position: Position { uuid: "60af5804-eee7-11f1-8a98-4f2d1962122b".into(), seqno: 4 },
        };
        let restore = restore_script(&node, &inspection, &source);
        assert!(restore.contains("grastate='# GALERA saved state\nversion: 2.1\n"), "{restore}");
        assert!(empty_script(&node).starts_with("step=empty\n"));
    }

    #[test]
    fn the_backup_scripts_last_line_names_the_backup_and_its_position() {
        let out = "[00] completed OK!\nnixstack-db-backup: /b/20261203T070156Z at 60af5804-eee7-11f1-8a98-4f2d1962122b:5\nnixstack-db-backup: removed /b/x (keep 2)\n";
        let (place, position) = parse_backup_output(out).unwrap();
        assert_eq!((place.as_str(), position.seqno), ("/b/20261203T070156Z", 5));
    }
}
