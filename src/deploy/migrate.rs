//! The app's schema migration in a deploy (`[app] migrate`, docs/app.md): once per deploy,
//! on one app host, after every closure is copied and before any host switches. The new
//! system carries the oneshot unit `nixstack-app-migrate.service` (modules/app.nix); the
//! host does not run that system yet, so deploy loads the new system's unit file as a
//! runtime unit under its own name, starts it (a oneshot's `systemctl start` returns when
//! the migration exits, non-zero if it failed), and removes it again. A system without the
//! unit (no `migrate`) runs nothing.

use std::path::Path;

use super::closure::StorePath;
use crate::process::shell_quote;
use crate::spec::Role;
use crate::topology::Topology;

/// The unit modules/app.nix renders for `[app] migrate`.
pub const UNIT: &str = "nixstack-app-migrate.service";

/// The runtime unit deploy loads the new system's migration unit as: a name of its own, so
/// that it shadows nothing in `/etc/systemd/system` (which outranks `/run/systemd/system`).
pub const DEPLOY_UNIT: &str = "nixstack-app-migrate-deploy.service";

/// What the migration step printed when the system has no migration unit.
pub const NONE: &str = "nixstack-migrate: no migration unit";

/// The app host that runs the migration: the first app host (in name order) that this
/// deploy switches, if the spec has a migration. The migration itself talks to the first
/// `DATABASE_HOSTS` node only, the same on every app host.
pub fn host<'a>(topology: &Topology, outdated: &'a [String]) -> Option<&'a String> {
    topology.app.as_ref()?.migrate.as_ref()?;
    outdated.iter().find(|name| topology.host(name).is_some_and(|h| h.has(Role::App)))
}

/// systemd's directory of runtime units, where deploy puts [`DEPLOY_UNIT`].
pub const RUNTIME_UNITS: &str = "/run/systemd/system";

/// The script that runs `system`'s migration unit on a host whose store is rooted at `root`
/// (`/` on NixOS), the runtime unit in `runtime_units` ([`RUNTIME_UNITS`]). Prints [`NONE`]
/// and succeeds when the system has no such unit; exits with the unit's failure, its
/// journal's last lines on stderr, when the migration fails; removes the runtime unit either way.
pub fn script(system: &StorePath, root: &Path, runtime_units: &Path) -> String {
    let unit = system.under(root).join("etc/systemd/system").join(UNIT);
    let unit = shell_quote(&unit.display().to_string());
    let units = shell_quote(&runtime_units.display().to_string());
    format!(
        "set -u\nunit={unit}\n\
         if [ ! -e \"$unit\" ]; then echo '{NONE}'; exit 0; fi\n\
         runtime={units}/{DEPLOY_UNIT}\n\
         mkdir -p {units}\n\
         cp \"$unit\" \"$runtime\" || exit 1\n\
         trap 'rm -f \"$runtime\"; systemctl daemon-reload' EXIT\n\
         systemctl daemon-reload || exit 1\n\
         if systemctl start {DEPLOY_UNIT}; then\n\
           echo 'nixstack-migrate: done'\n\
           journalctl -u {DEPLOY_UNIT} -n 20 --no-pager -o cat 2>/dev/null || true\n\
         else\n\
           status=$?\n\
           journalctl -u {DEPLOY_UNIT} -n 20 --no-pager -o cat >&2 2>/dev/null || true\n\
           exit $status\n\
         fi"
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    use super::*;

    /// A host's store root holding a system, with or without the migration unit, and a PATH
    /// whose `systemctl` and `journalctl` log their calls and make `start` exit `start_exit`.
    fn host(with_unit: bool, start_exit: i32) -> (tempfile::TempDir, StorePath, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let system = StorePath::parse("/nix/store/22222222222222222222222222222222-nixos-system-app1").unwrap();
        let units = system.under(dir.path()).join("etc/systemd/system");
        std::fs::create_dir_all(&units).unwrap();
        if with_unit {
            std::fs::write(units.join(UNIT), "[Service]\nType=oneshot\n").unwrap();
        }
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let log = dir.path().join("calls");
        let systemctl = format!(
            "#!/bin/sh\necho \"systemctl $*\" >> {log}\nif [ \"$1\" = start ]; then ls {runtime} >> {log}; exit {start_exit}; fi\n",
            log = log.display(),
            runtime = dir.path().join("run-units").display()
        );
        let journalctl =
            format!("#!/bin/sh\necho 'ERROR 1050: table exists'\necho \"journalctl $*\" >> {}\n", log.display());
        for (name, text) in [("systemctl", systemctl), ("journalctl", journalctl)] {
            std::fs::write(bin.join(name), text).unwrap();
            std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        (dir, system, log)
    }

    fn run(dir: &Path, system: &StorePath) -> std::process::Output {
        let path = format!("{}:/usr/bin:/bin", dir.join("bin").display());
        Command::new("sh")
            .arg("-c")
            .arg(script(system, dir, &dir.join("run-units")))
            .env("PATH", path)
            .output()
            .unwrap()
    }

    #[test]
    fn a_system_without_the_unit_runs_nothing() {
        let (dir, system, log) = host(false, 0);
        let out = run(dir.path(), &system);
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), NONE);
        assert!(!log.exists(), "systemctl was never called");
    }

    #[test]
    fn the_new_systems_unit_runs_under_its_runtime_name_and_is_removed_after() {
        let (dir, system, log) = host(true, 0);
        let out = run(dir.path(), &system);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let calls = std::fs::read_to_string(&log).unwrap();
        let calls: Vec<&str> = calls.lines().filter(|l| !l.starts_with("journalctl")).collect();
        assert_eq!(
            calls,
            [
                "systemctl daemon-reload",
                &format!("systemctl start {DEPLOY_UNIT}"),
                DEPLOY_UNIT,
                "systemctl daemon-reload"
            ]
        );
        assert!(!dir.path().join("run-units").join(DEPLOY_UNIT).exists(), "removed again");
    }

    #[test]
    fn a_failing_migration_fails_the_script_with_its_journal_and_leaves_no_unit() {
        let (dir, system, _) = host(true, 3);
        let out = run(dir.path(), &system);
        assert_eq!(out.status.code(), Some(3), "systemctl start's status");
        assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR 1050"), "the journal's tail on stderr");
        assert!(!dir.path().join("run-units").join(DEPLOY_UNIT).exists());
    }
}
