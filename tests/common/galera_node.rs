//! One real mariadbd with galera-4 for the recovery and backup tests: a datadir and socket under
//! a private directory owned by mysql, started in a fresh network namespace (`unshare --net`,
//! only loopback up, Galera on 127.0.0.1): nothing reaches another address.
// Each test file uses a different part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nixstack::stack::galera_recovery::{self as recovery, NodePaths, NodeReport, ShellWord};

pub const MARIADBD: &str = "/usr/sbin/mariadbd";
pub const PROVIDER: &str = "/usr/lib/galera/libgalera_smm.so";

pub struct Node {
    pub dir: PathBuf,
    /// The client port; Galera listens 10000 above it.
    pub port: u16,
}

impl Node {
    /// A node directory under `root`, owned by mysql (its datadir empty).
    pub fn create(root: &Path, name: &str, port: u16) -> Node {
        let (uid, gid) = mysql_ids();
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        for path in [&dir, &dir.join("data")] {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
        }
        Node { dir, port }
    }
    pub fn datadir(&self) -> PathBuf {
        self.dir.join("data")
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }
    /// The server's options (what a unit's my.cnf would hold), loopback only.
    pub fn options(&self) -> Vec<String> {
        vec![
            "--no-defaults".into(),
            "--user=mysql".into(),
            format!("--datadir={}", self.datadir().display()),
            format!("--socket={}", self.socket().display()),
            format!("--pid-file={}", self.dir.join("mysqld.pid").display()),
            "--bind-address=127.0.0.1".into(),
            format!("--port={}", self.port),
            "--wsrep-on=ON".into(),
            format!("--wsrep-provider={PROVIDER}"),
            "--wsrep-cluster-address=gcomm://".into(),
            format!("--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:{}", self.port + 10_000),
            "--binlog-format=ROW".into(),
            "--innodb-autoinc-lock-mode=2".into(),
            format!("--log-error={}", self.dir.join("error.log").display()),
        ]
    }
    /// What the gather script reads: the socket, the datadir and the server's own command.
    pub fn paths(&self) -> NodePaths {
        let mut mysqld = vec![ShellWord::Literal(MARIADBD.into())];
        mysqld.extend(self.options().into_iter().filter(|o| !o.starts_with("--log-error")).map(ShellWord::Literal));
        NodePaths { socket: self.socket().display().to_string(), datadir: self.datadir().display().to_string(), mysqld }
    }
    /// The gather script's report, run in a namespace of its own.
    pub fn report(&self, name: &str) -> NodeReport {
        let script = recovery::gather_script(&self.paths());
        let output = Command::new("unshare")
            .args(["--net", "sh", "-c", &format!("ip link set lo up\n{script}")])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        let state = recovery::parse_report(&text)
            .unwrap_or_else(|e| panic!("{e}: {text}\n{}", String::from_utf8_lossy(&output.stderr)));
        NodeReport { node: name.into(), state }
    }
    /// Starts mariadbd as a new cluster; waits until it takes queries.
    pub fn start_new_cluster(&self) -> Child {
        let command = format!("ip link set lo up && exec {MARIADBD} {} --wsrep-new-cluster", self.options().join(" "));
        let child = Command::new("unshare")
            .args(["--net", "sh", "-c", &command])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.sql("SELECT 1").is_err() {
            assert!(
                Instant::now() < deadline,
                "mariadbd did not start:\n{}",
                std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        child
    }
    /// SQL over the socket as root; the output, trimmed.
    pub fn sql(&self, statements: &str) -> Result<String, String> {
        let output = Command::new("mariadb")
            .args(["--no-defaults", "--user=root", "--batch", "--skip-column-names", "--connect-timeout=2"])
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-e", statements])
            .output()
            .map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }
}

/// Fails unless this machine can run the Galera tests: root, mariadbd, galera-4, unshare, and
/// each of `more` (path, Debian package). scripts/setup installs all of it; never a skip.
pub fn require_prerequisites(more: &[(&str, &str)]) {
    let base = [
        (MARIADBD, "mariadb-server"),
        ("/usr/bin/mariadb-install-db", "mariadb-server"),
        (PROVIDER, "galera-4"),
        ("/usr/bin/unshare", "util-linux"),
    ];
    for (path, package) in base.iter().chain(more) {
        assert!(Path::new(path).exists(), "{path} is absent: apt-get install {package} (scripts/setup installs it)");
    }
    assert!(unsafe { libc::geteuid() } == 0, "not root: unshare --net and mariadbd --user=mysql need root");
}

/// SIGKILL: no clean shutdown, grastate.dat keeps seqno -1.
pub fn kill_hard(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

pub fn mysql_ids() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let fields: Vec<&str> =
        passwd.lines().find(|l| l.starts_with("mysql:")).expect("a mysql user").split(':').collect();
    (fields[2].parse().unwrap(), fields[3].parse().unwrap())
}
