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

/// The script that runs `system`'s migration unit on a host whose store is rooted at `root`
/// (`/` on NixOS). Prints [`NONE`] and succeeds when the system has no such unit; exits
/// with the unit's failure, its journal's last lines on stderr, when the migration fails.
pub fn script(system: &StorePath, root: &Path) -> String {
    let unit = system.under(root).join("etc/systemd/system").join(UNIT);
    let unit = shell_quote(&unit.display().to_string());
    format!(
        "set -u\nunit={unit}\n\
         if [ ! -e \"$unit\" ]; then echo '{NONE}'; exit 0; fi\n\
         runtime=/run/systemd/system/{DEPLOY_UNIT}\n\
         mkdir -p /run/systemd/system\n\
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
