//! The Galera recovery path against a real mariadbd (Debian's mariadb-server and galera-4):
//! the gather script reads a real datadir (fresh, running, crashed by SIGKILL), and the decision
//! over those real reports bootstraps the most advanced copy, not the configured node.
//!
//! Network: every mariadbd runs in a fresh network namespace of its own (`unshare --net`) with
//! only loopback up, Galera listening on 127.0.0.1; nothing reaches another address. The client
//! talks over the unix socket in the datadir's directory.

use std::path::Path;
use std::process::{Child, Command};

use nixstack::stack::galera_recovery::{
    self as recovery, BootstrapReason, ClusterFacts, Decision, NodeReport, NodeState,
};

#[path = "common/galera_node.rs"]
mod galera_node;
use galera_node::{kill_hard as crash, mysql_ids, require_prerequisites, Node};

fn new_node(root: &Path, name: &str) -> Node {
    Node::create(root, name, 33061)
}

/// Copies a stopped node's datadir (what a node that stopped at that point would hold).
fn copy_node(from: &Node, root: &Path, name: &str) -> Node {
    let dir = root.join(name);
    let status = Command::new("cp").args(["-a"]).arg(&from.dir).arg(&dir).status().unwrap();
    assert!(status.success());
    Node { dir, port: from.port }
}

fn seqno_of(report: &NodeReport) -> i64 {
    match &report.state {
        NodeState::Stopped(s) => s.recovered.as_ref().map(|p| p.seqno).unwrap_or(-1),
        NodeState::Running(s) => s.position.as_ref().map(|p| p.seqno).unwrap_or(-1),
        NodeState::Unreachable { reason } => panic!("unreachable: {reason}"),
    }
}

#[test]
fn recovery_reads_real_datadirs_and_bootstraps_the_most_advanced_copy() {
    require_prerequisites(&[]);
    let root = tempfile::Builder::new().prefix("nixstack-galera-").tempdir_in("/tmp").unwrap();
    let (uid, gid) = mysql_ids();
    std::os::unix::fs::chown(root.path(), Some(uid), Some(gid)).unwrap();
    let ahead = new_node(root.path(), "db2");

    // A datadir that never ran Galera: no grastate.dat, nothing to recover.
    let status = Command::new("mariadb-install-db")
        .args(["--no-defaults", "--user=mysql", "--auth-root-authentication-method=socket", "--skip-test-db"])
        .arg(format!("--datadir={}", ahead.datadir().display()))
        .arg(format!("--tmpdir={}", ahead.dir.display()))
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let fresh = ahead.report("db2");
    assert!(matches!(&fresh.state, NodeState::Stopped(s) if s.grastate.is_none()), "{fresh:?}");

    // Running: the status variables of a one-node primary component.
    let server = ahead.start_new_cluster();
    ahead.sql("CREATE DATABASE t; CREATE TABLE t.a (id INT PRIMARY KEY AUTO_INCREMENT, v INT); INSERT INTO t.a (v) VALUES (1),(2);").unwrap();
    let running = ahead.report("db2");
    let NodeState::Running(status) = &running.state else { panic!("{running:?}") };
    assert_eq!(
        (status.cluster_status.as_str(), status.cluster_size, status.local_state.as_str()),
        ("Primary", 1, "Synced")
    );
    let committed_then = seqno_of(&running);
    assert!(committed_then > 0, "{running:?}");

    // Crashed: grastate.dat says -1, --wsrep-recover reads InnoDB's committed position.
    crash(server);
    let crashed = ahead.report("db2");
    let NodeState::Stopped(state) = &crashed.state else { panic!("{crashed:?}") };
    assert_eq!(state.grastate.as_ref().unwrap().seqno, -1);
    assert_eq!(state.recovered.as_ref().unwrap().seqno, committed_then, "{crashed:?}");
    assert!(state.gvwstate, "a crashed node keeps its saved primary component");
    let uuid = state.recovered.as_ref().unwrap().uuid.clone();

    // db1, the configured bootstrap node, "died" here: a copy of this state.
    let behind = copy_node(&ahead, root.path(), "db1");
    let facts = ClusterFacts { configured_bootstrap: "db1".into(), pc_recovery: true, lost: Vec::new() };
    let tie = recovery::decide(&[behind.report("db1"), ahead.report("db2")], &facts);
    assert!(
        matches!(&tie, Decision::Bootstrap { node, reason: BootstrapReason::TieOfEqualStates { .. }, .. } if node == "db1"),
        "{tie:?}"
    );

    // db2 goes on (bootstrapped as the decision's executor does) and acknowledges more writes.
    let tie_position = match &tie {
        Decision::Bootstrap { position, .. } => position.clone(),
        _ => unreachable!(),
    };
    let server = ahead.start_new_cluster_from(tie_position.as_ref());
    ahead.sql("INSERT INTO t.a (v) VALUES (3); INSERT INTO t.a (v) VALUES (4);").unwrap();
    crash(server);

    let reports = [behind.report("db1"), ahead.report("db2")];
    assert!(seqno_of(&reports[1]) > seqno_of(&reports[0]), "{reports:?}");
    let decision = recovery::decide(&reports, &facts);
    let Decision::Bootstrap { node, position, reason, others } = &decision else { panic!("{decision:?}") };
    assert_eq!(
        (node.as_str(), reason, others.as_slice()),
        ("db2", &BootstrapReason::MostAdvanced, ["db1".to_string()].as_slice())
    );
    assert_eq!(position.as_ref().unwrap().uuid, uuid, "one history");
    eprintln!("real positions: db1 {}, db2 {}: bootstrap {node}", seqno_of(&reports[0]), seqno_of(&reports[1]));

    // The chosen copy holds every acknowledged row.
    let server = ahead.start_new_cluster_from(position.as_ref());
    let NodeState::Running(status) = ahead.report("db2").state else { panic!("db2 runs") };
    assert_eq!(status.position.as_ref().unwrap().uuid, uuid, "the bootstrapped cluster continues the history");
    assert_eq!(ahead.sql("SELECT COUNT(*) FROM t.a").unwrap().trim(), "4");
    crash(server);
}

impl Node {
    /// As the executors do: grastate.dat readied on this node only, then `--wsrep-new-cluster`.
    fn start_new_cluster_from(&self, position: Option<&recovery::Position>) -> Child {
        let grastate = self.datadir().join("grastate.dat");
        std::fs::write(
            &grastate,
            recovery::prepare_bootstrap_grastate(&std::fs::read_to_string(&grastate).unwrap(), position),
        )
        .unwrap();
        self.start_new_cluster()
    }
}
