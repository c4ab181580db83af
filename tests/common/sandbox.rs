//! Runs a command the way Nix runs a derivation's builder, for the checks NixOS runs while it
//! builds a system (`nft --check`, gixy, `otelcol validate`, the flake's own checks): a new
//! network namespace with only `lo`, a private mount namespace where /etc holds only nix's
//! passwd, group and hosts and /var, /run and /tmp are empty, a cleared environment, the
//! builder's uid 1000 / gid 100. `sandbox.sh` beside this file does it and says, line by line,
//! which part of nix's `linux-derivation-builder.cc` each step mirrors and where it cannot.
//!
//! Inputs (what a derivation gets as store paths) are written to an inputs directory that the
//! build user can read but not write; the build directory is the working directory, writable,
//! and `$out` is below it.
// Each test file uses a different part of it.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SCRIPT: &str = include_str!("sandbox.sh");

/// Who the command runs as inside the sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum User {
    /// The build user (uid 1000, gid 100, no capabilities): what every builder is.
    Nixbld,
    /// root in the sandbox's namespaces: only for `nft`, which nixpkgs' nftables check runs
    /// against LKL (a Linux kernel inside the process, with only `lo`), where it may do anything;
    /// here a fresh network namespace with only `lo` plays that kernel.
    Root,
}

/// One sandboxed build: its inputs and its build directory.
pub struct Sandbox {
    root: tempfile::TempDir,
}

/// The result of a sandboxed command.
pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.status.success()
    }
    /// stdout and stderr, for messages.
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

fn require(tool: &str) {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().map(|o| o.status.success());
    assert!(found.unwrap_or(false), "{tool} is not installed: run scripts/setup");
}

impl Sandbox {
    pub fn new() -> Sandbox {
        for tool in ["unshare", "setpriv", "ip", "hostname"] {
            require(tool);
        }
        // Below the target directory; sandbox.sh binds it back if the tmpfs over /tmp,
        // /var or /run would hide it.
        let root = tempfile::Builder::new()
            .prefix("sandbox-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("a temporary directory under the target directory");
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for dir in ["inputs", "build"] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
        }
        std::fs::set_permissions(root.path().join("inputs"), std::fs::Permissions::from_mode(0o755)).unwrap();
        // nix: the build directory belongs to the build user, 0700.
        let build = root.path().join("build");
        std::os::unix::fs::chown(&build, Some(1000), Some(100)).unwrap();
        std::fs::set_permissions(&build, std::fs::Permissions::from_mode(0o700)).unwrap();
        Sandbox { root }
    }

    /// The build directory (nix: `/build`).
    pub fn build_dir(&self) -> PathBuf {
        self.root.path().join("build")
    }

    /// Writes an input (a store path, for the derivation): readable by all, writable by none.
    pub fn input(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.root.path().join("inputs").join(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        path
    }

    /// Runs `script` with `sh -c` in the sandbox as `user`.
    pub fn run(&self, user: User, script: &str) -> Run {
        self.run_with_etc(user, &[], script)
    }

    /// [`Sandbox::run`], with the system's own `/etc/<name>` for each of `etc` (a check that
    /// redirects those paths, as nixpkgs' nftables check does with libredirect).
    pub fn run_with_etc(&self, user: User, etc: &[&str], script: &str) -> Run {
        let template = self.root.path().join("sandbox.sh");
        std::fs::write(&template, SCRIPT).unwrap();
        let user = match user {
            User::Nixbld => "nixbld",
            User::Root => "root",
        };
        let output: Output = Command::new("unshare")
            .args(["--net", "--mount", "--uts", "--ipc", "--pid", "--fork", "--kill-child", "--mount-proc"])
            .arg("sh")
            .arg(&template)
            .arg(self.build_dir())
            .arg(user)
            .arg("--")
            .args(["sh", "-c", script])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("SANDBOX_ETC", etc.join(" "))
            .output()
            .expect("unshare runs");
        Run {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Where a sandbox command's files are; for messages.
    pub fn path(&self) -> &Path {
        self.root.path()
    }
}

/// The harness itself, against what nix's sandbox is: each property checked from inside.
pub fn assert_sandbox_conditions() {
    let sandbox = Sandbox::new();
    let run = sandbox.run(
        User::Nixbld,
        "set -e; id -u; id -g; echo \"HOME=$HOME\"; env | sort | cut -d= -f1 | tr '\\n' ' '; echo; \
         ls -A /etc | tr '\\n' ' '; echo; ls -A /var /run | tr '\\n' ' '; echo; \
         ip -o link | cut -d: -f2 | tr -d ' ' | tr '\\n' ' '; echo; hostname; pwd",
    );
    assert!(run.ok(), "{}", run.text());
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "1000", "{}", run.text());
    assert_eq!(lines[1], "100", "{}", run.text());
    assert_eq!(lines[2], "HOME=/homeless-shelter");
    assert_eq!(
        lines[3].split_whitespace().collect::<Vec<_>>(),
        ["HOME", "NIX_BUILD_TOP", "NIX_STORE", "PATH", "PWD", "TEMP", "TEMPDIR", "TMP", "TMPDIR", "out"],
        "{}",
        run.text()
    );
    assert_eq!(
        lines[4].split_whitespace().collect::<Vec<_>>(),
        ["alternatives", "group", "hosts", "ld.so.cache", "passwd"]
    );
    assert_eq!(lines[5].split_whitespace().collect::<Vec<_>>(), ["/run:", "/var:"], "{}", run.text());
    assert_eq!(lines[6].trim(), "lo", "{}", run.text());
    assert_eq!(lines[7], "localhost");
    assert_eq!(Path::new(lines[8]), sandbox.build_dir());
}
