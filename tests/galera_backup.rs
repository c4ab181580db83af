//! Backups with a proven restore, against a real mariadbd (Debian's mariadb-server, galera-4,
//! mariadb-backup, restic): write, back up with the script the `nixstack-db-backup` unit runs,
//! write more, destroy the datadir, restore with the scripts `nixstack db restore` runs, let the
//! recovery decision start it, and find exactly the backed-up rows; the restored node takes
//! writes and continues the backup's Galera history. Once to a local directory, once to a restic
//! repository in a temp dir.
//!
//! Network: mariadbd runs in a fresh network namespace of its own (`unshare --net`) with only
//! loopback up, Galera listening on 127.0.0.1; nothing reaches another address. The client, the
//! backup and the restore talk to it over the unix socket.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use nixstack::stack::galera_backup::{self as backup, BackupError, BackupRun, RestoreNode, RestoreSource};
use nixstack::stack::galera_recovery::{self as recovery, ClusterFacts, Decision};
use nixstack::topology::BackupDestination;

#[path = "common/galera_node.rs"]
mod galera_node;
use galera_node::{kill_hard as stop, mysql_ids, require_prerequisites, Node};

trait BackupNode {
    fn rows(&self) -> String;
    fn status(&self, variable: &str) -> String;
    fn restore_node(&self, stamp: &str) -> RestoreNode;
}

impl BackupNode for Node {
    fn rows(&self) -> String {
        self.sql("SELECT GROUP_CONCAT(v ORDER BY id) FROM t.a").unwrap()
    }
    fn status(&self, variable: &str) -> String {
        let line = self.sql(&format!("SHOW GLOBAL STATUS LIKE '{variable}'")).unwrap();
        line.split_whitespace().nth(1).unwrap_or_default().to_string()
    }
    fn restore_node(&self, stamp: &str) -> RestoreNode {
        RestoreNode { datadir: self.datadir().display().to_string(), owner: "mysql:mysql".into(), stamp: stamp.into() }
    }
}

fn sh(script: &str) -> String {
    let output = Command::new("sh").args(["-c", script]).output().unwrap();
    assert!(
        output.status.success(),
        "script failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn new_node(root: &Path, name: &str, port: u16) -> Node {
    let node = Node::create(root, name, port);
    let dir = node.dir.clone();
    let status = Command::new("mariadb-install-db")
        .args(["--no-defaults", "--user=mysql", "--auth-root-authentication-method=socket", "--skip-test-db"])
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg(format!("--tmpdir={}", dir.display()))
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    node
}

/// The whole cycle against one target. Returns the restored node's datadir's neighbours (what
/// was moved aside).
fn backup_and_restore(target: BackupDestination, port: u16) {
    let root = tempfile::Builder::new().prefix("nixstack-backup-").tempdir_in("/tmp").unwrap();
    let (uid, gid) = mysql_ids();
    std::os::unix::fs::chown(root.path(), Some(uid), Some(gid)).unwrap();
    let node = new_node(root.path(), "db3", port);
    let password_file = root.path().join("db-backup-restic.password");
    std::fs::write(&password_file, "a-generated-secret-not-in-the-store\n").unwrap();
    let restic = matches!(target, BackupDestination::Restic { .. });
    let run = BackupRun {
        target: target.clone(),
        keep: 2,
        path: root.path().join(if restic { "staging" } else { "backups" }).display().to_string(),
        password_file: Some(password_file.display().to_string()),
        socket: node.socket().display().to_string(),
        defaults_file: None,
        datadir: Some(node.datadir().display().to_string()),
        user: "root".into(),
    };

    // Write, back up, write more (acknowledged after the backup).
    let server = node.start_new_cluster();
    node.sql("CREATE DATABASE t; CREATE TABLE t.a (id INT PRIMARY KEY AUTO_INCREMENT, v INT); INSERT INTO t.a (v) VALUES (1),(2),(3);")
        .unwrap();
    let history = node.status("wsrep_cluster_state_uuid");
    let committed = node.status("wsrep_last_committed");
    let out = sh(&backup::backup_script(&run));
    let (place, position) = backup::parse_backup_output(&out).unwrap_or_else(|| panic!("{out}"));
    assert_eq!((position.uuid.as_str(), position.seqno.to_string()), (history.as_str(), committed.clone()), "{out}");
    // Retention: three runs, two kept.
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(1100)); // the stamp has seconds
        sh(&backup::backup_script(&run));
    }
    let source = match &target {
        BackupDestination::Local { .. } => {
            let dirs: Vec<String> = std::fs::read_dir(&run.path)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect();
            assert_eq!(dirs.len(), 2, "keep = 2: {dirs:?}");
            assert!(!Path::new(&place).exists(), "the oldest backup was pruned: {place}");
            RestoreSource::Local {
                dir: format!("{}/{}", run.path, {
                    let mut d = dirs;
                    d.sort();
                    d[0].clone()
                }),
            }
        }
        BackupDestination::Restic { repository, .. } => {
            let out = sh(&format!(
                "restic -r {repository} --password-file {} snapshots --tag nixstack-db --json",
                password_file.display()
            ));
            let snapshots: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
            assert_eq!(snapshots.len(), 2, "keep = 2: {out}");
            RestoreSource::Restic {
                repository: repository.clone(),
                password_file: password_file.display().to_string(),
                snapshot: "latest".into(),
            }
        }
    };
    node.sql("INSERT INTO t.a (v) VALUES (4),(5);").unwrap();
    assert_eq!(node.rows(), "1,2,3,4,5");

    // Destroy: the server killed, its datadir gone.
    stop(server);
    std::fs::remove_dir_all(node.datadir()).unwrap();
    std::fs::create_dir(node.datadir()).unwrap();
    std::os::unix::fs::chown(node.datadir(), Some(uid), Some(gid)).unwrap();

    // Restore, as `nixstack db restore` does.
    let target_node = node.restore_node("T1");
    let inspection = backup::parse_inspection(&sh(&backup::inspect_script(&target_node, &source)), &source)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inspection.position.uuid, history);
    let out = sh(&backup::restore_script(&target_node, &inspection, &source));
    assert!(out.contains("restored="), "{out}");
    if restic {
        assert!(!Path::new(&target_node.staging()).exists(), "the staging copy is removed");
    }
    // The recovery decision bootstraps the restored node, from the backup's position.
    let facts = ClusterFacts { configured_bootstrap: "db1".into(), pc_recovery: true, lost: Vec::new() };
    let decision = recovery::decide(&[node.report("db3")], &facts);
    let Decision::Bootstrap { node: chosen, position: Some(from), .. } = &decision else { panic!("{decision:?}") };
    assert_eq!((chosen.as_str(), from), ("db3", &inspection.position));
    let server = node.start_new_cluster();
    assert_eq!(node.rows(), "1,2,3", "exactly the backed-up rows");
    assert_eq!(node.status("wsrep_cluster_state_uuid"), history, "the restored cluster continues the backup's history");
    node.sql("INSERT INTO t.a (v) VALUES (6);").unwrap();
    assert_eq!(node.rows(), "1,2,3,6", "the restored node takes writes");
    eprintln!("restored {source} at {}: rows 1,2,3; then wrote 6", inspection.position);
    stop(server);
}

#[test]
fn a_local_backup_restores_exactly_its_rows_and_takes_writes() {
    require_prerequisites(&[("/usr/bin/mariabackup", "mariadb-backup"), ("/usr/bin/restic", "restic")]);
    backup_and_restore(BackupDestination::Local { path: String::new() }, 33081);
}

#[test]
fn a_restic_backup_restores_exactly_its_rows_and_takes_writes() {
    require_prerequisites(&[("/usr/bin/mariabackup", "mariadb-backup"), ("/usr/bin/restic", "restic")]);
    let repo = tempfile::Builder::new().prefix("nixstack-restic-").tempdir_in("/tmp").unwrap();
    backup_and_restore(
        BackupDestination::Restic {
            repository: repo.path().join("repo").display().to_string(),
            password_secret: "db-backup-restic.password".into(),
        },
        33082,
    );
}

/// Recovery never guesses: an interrupted or unprepared backup is refused with what to do.
#[test]
fn incomplete_and_unprepared_backups_are_refused() {
    require_prerequisites(&[("/usr/bin/mariabackup", "mariadb-backup"), ("/usr/bin/restic", "restic")]);
    let root = tempfile::Builder::new().prefix("nixstack-backup-").tempdir_in("/tmp").unwrap();
    let (uid, gid) = mysql_ids();
    std::os::unix::fs::chown(root.path(), Some(uid), Some(gid)).unwrap();
    let node = new_node(root.path(), "db3", 33083);
    let server = node.start_new_cluster();
    let raw = root.path().join("raw");
    sh(&format!(
        "mariabackup --no-defaults --backup --galera-info --user=root --socket={} --datadir={} --target-dir={} 2>/dev/null",
        node.socket().display(),
        node.datadir().display(),
        raw.display()
    ));
    stop(server);
    let target = node.restore_node("T2");
    let source = RestoreSource::Local { dir: raw.display().to_string() };
    let refused = backup::parse_inspection(&sh(&backup::inspect_script(&target, &source)), &source);
    assert!(
        matches!(&refused, Err(BackupError::Unprepared { backup_type, .. }) if backup_type == "full-backuped"),
        "{refused:?}"
    );
    sh(&format!("mariabackup --no-defaults --prepare --target-dir={} 2>/dev/null", raw.display()));
    let refused = backup::parse_inspection(&sh(&backup::inspect_script(&target, &source)), &source);
    assert!(matches!(refused, Err(BackupError::Incomplete { .. })), "no completion marker: {refused:?}");
    let missing = RestoreSource::Local { dir: root.path().join("nope").display().to_string() };
    let refused = backup::parse_inspection(&sh(&backup::inspect_script(&target, &missing)), &missing);
    assert!(matches!(refused, Err(BackupError::Missing(_))), "{refused:?}");
    // Nothing was touched: the datadir still holds the server's files.
    assert!(node.datadir().join("ibdata1").exists());
}
