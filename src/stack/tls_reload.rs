//! What makes each daemon take renewed certificates without dropping a request: the one
//! record the lab (`nixstack lab rotate`) and deploy (after uploading changed certificates)
//! both act on.
//!
//! - nginx and HAProxy: their unit's `ExecReload=` (nginx: `-t`, then `SIGHUP`: new workers
//!   with the new certificate, old ones finish their requests; HAProxy: `-c`, then `SIGUSR2`
//!   to the master, which re-executes with the listeners passed on, `expose-fd listeners`).
//! - MariaDB 10.11: its unit has no `ExecReload=`, and a restart drops every client and
//!   replication connection. `FLUSH SSL` re-reads `ssl_cert`/`ssl_key`/`ssl_ca` for new
//!   client connections (MariaDB 10.4+), and `socket.ssl_reload=1` (Galera 26.4) makes the
//!   replication listener re-read `socket.ssl_*`. Verified here against mariadb-server
//!   10.11.19 and galera-4 26.4.23 with `openssl s_client` on both ports (MariaDB 10.11's
//!   `FLUSH SSL` was seen to reload Galera's context too; the explicit option keeps it so
//!   where it does not). Connections already open keep their session. SST (stunnel, started
//!   per transfer by `wsrep_sst_rsync`) reads the files each time and needs nothing.

use std::path::PathBuf;

use super::{launch, runs_nginx, units, Layout, Service};
use crate::spec::Role;
use crate::topology::{Host, Topology};

/// What MariaDB runs on its socket to take renewed certificates.
pub const MARIADB_RELOAD_SQL: &str = "FLUSH SSL;\nSET GLOBAL wsrep_provider_options='socket.ssl_reload=1';\n";

/// The secret files whose change needs a reload (see [`crate::secrets::host_secrets`]).
pub const TLS_FILES: &[&str] = &["ca.crt", "host.crt", "host.key", "host.pem", "public.pem"];

/// How one daemon takes renewed certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsReload {
    /// Its unit's `ExecReload=`: `systemctl reload <unit>` where systemd runs it, else the
    /// recorded command lines (resolved for the host's layout) with `$MAINPID` read from
    /// `pid_file`.
    Unit { service: Service, unit: String, exec_reload: Vec<Vec<String>>, pid_file: PathBuf },
    /// SQL on the server's local socket, as root.
    Sql { service: Service, socket: PathBuf, statements: String },
}

impl TlsReload {
    pub fn service(&self) -> Service {
        match self {
            TlsReload::Unit { service, .. } | TlsReload::Sql { service, .. } => *service,
        }
    }
}

/// The daemons of `host` that read a certificate or key, and how each takes new ones, in
/// start order (database, then nginx, then HAProxy).
pub fn reloads(topology: &Topology, host: &Host, layout: &Layout) -> Vec<TlsReload> {
    let mut reloads = Vec::new();
    if host.has(Role::Db) && topology.db.is_some() && topology.internal_tls {
        reloads.push(TlsReload::Sql {
            service: Service::Mariadb,
            socket: layout.mysql_socket(),
            statements: MARIADB_RELOAD_SQL.into(),
        });
    }
    if runs_nginx(topology, host) {
        reloads.push(unit(topology, host, layout, Service::Nginx, launch::nginx_pid_file(layout)));
    }
    if host.has(Role::Lb) && topology.lb.is_some() {
        reloads.push(unit(topology, host, layout, Service::Haproxy, layout.translate("/run/haproxy/haproxy.pid")));
    }
    reloads
}

fn unit(topology: &Topology, host: &Host, layout: &Layout, service: Service, pid_file: PathBuf) -> TlsReload {
    let record = units::record(service).expect("nginx and HAProxy have unit records");
    let exec_reload = launch::launch(topology, host, layout, service, false).map(|l| l.reload).unwrap_or_default();
    TlsReload::Unit { service, unit: record.unit.clone(), exec_reload, pid_file }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tier_that_reads_a_certificate_reloads_it_without_a_restart() {
        let topology = crate::topology::compile(&crate::spec::SpecSource::embedded_default()).unwrap();
        let of = |name: &str| {
            let host = topology.host(name).unwrap();
            reloads(&topology, host, &Layout::nixos())
        };
        let services = |name: &str| of(name).iter().map(TlsReload::service).collect::<Vec<_>>();
        assert_eq!(services("db1"), vec![Service::Mariadb]);
        assert_eq!(services("web1"), vec![Service::Nginx]);
        assert_eq!(services("app1"), vec![Service::Nginx], "the app hop's TLS terminator");
        assert_eq!(services("lb1"), vec![Service::Haproxy]);
        let TlsReload::Unit { unit, exec_reload, .. } = &of("web1")[0] else { panic!("nginx reloads by its unit") };
        assert_eq!(unit, "nginx.service");
        assert!(exec_reload.last().is_some_and(|argv| argv.contains(&"-HUP".to_string())), "{exec_reload:?}");
    }
}
