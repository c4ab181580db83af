//! Health and readiness of every service, as data: what to run on the host and how to judge
//! its output. The lab (bring-up, `lab status`, the scenario) and deploy's health gates run
//! these same checks through their host (a network namespace or SSH), so "healthy" means one
//! thing everywhere. Pure: building a check and judging its output do no I/O.

use std::net::Ipv4Addr;

use serde::Serialize;

use super::{Layout, Service};
use crate::spec::Role;
use crate::topology::{Host, Topology};

/// One probe of a host, run on that host as a shell command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Check {
    /// An HTTP(S) answer 200. `ca`: verify against this CA file; `None` with `https`:
    /// accept any certificate (the LB's public certificate is not the deploy's to judge).
    Http { what: String, url: String, ca: Option<String> },
    /// A Galera node: `Primary`, `Synced`, ready, and (when `size` is given) the cluster at
    /// that size. Bring-up waits without a size: the cluster grows as nodes join.
    Galera { socket: String, size: Option<usize> },
    /// A TCP service that greets first (sshd): its banner starts with `banner`.
    Banner { what: String, address: Ipv4Addr, port: u16, banner: String },
    /// The firewall's table is loaded.
    Nftables { table: String },
    /// Whether this host holds the virtual IP: informative, never unhealthy (a backup
    /// keepalived is as healthy as the master).
    VipHolder { vip: Ipv4Addr },
}

impl Check {
    pub fn name(&self) -> String {
        match self {
            Check::Http { what, .. } | Check::Banner { what, .. } => what.clone(),
            Check::Galera { .. } => "galera".into(),
            Check::Nftables { .. } => "firewall".into(),
            Check::VipHolder { .. } => "virtual IP".into(),
        }
    }

    /// The shell command that probes, for `sh -c` on the host (NixOS has bash, curl and
    /// the mariadb client on the hosts that need them; so does the lab machine).
    pub fn script(&self) -> String {
        match self {
            Check::Http { url, ca, .. } => {
                let tls = match ca {
                    Some(ca) => format!("--cacert {} ", shell_quote(ca)),
                    None if url.starts_with("https:") => "-k ".into(),
                    None => String::new(),
                };
                format!("curl -sS -o /dev/null -w '%{{http_code}}' --max-time 3 {tls}{}", shell_quote(url))
            }
            Check::Galera { socket, .. } => format!(
                "mysql --socket={} -N -B -e \"SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_status','wsrep_local_state_comment','wsrep_cluster_size','wsrep_ready')\"",
                shell_quote(socket)
            ),
            Check::Banner { address, port, .. } => {
                format!("exec timeout 2 bash -c 'exec 3<>/dev/tcp/{address}/{port}; head -n 1 <&3'")
            }
            Check::Nftables { table } => format!("nft list table inet {}", shell_quote(table)),
            Check::VipHolder { vip } => vip_script(*vip),
        }
    }

    /// Judges the probe's output: Ok(detail) or Err(why not healthy).
    pub fn judge(&self, stdout: &str) -> Result<String, String> {
        match self {
            Check::Http { url, .. } => {
                let code = stdout.trim();
                if code == "200" {
                    Ok(format!("{url} 200"))
                } else {
                    Err(format!("{url} answered {code}"))
                }
            }
            Check::Galera { size, .. } => {
                let status = GaleraStatus::parse(stdout);
                status
                    .healthy(*size)
                    .map(|()| format!("Primary, Synced, cluster size {}", status.size))
                    .map_err(|why| format!("galera: {why}"))
            }
            Check::Banner { banner, .. } => {
                let line = stdout.trim();
                if line.starts_with(banner.as_str()) {
                    Ok(line.to_string())
                } else {
                    Err(format!("no {banner} banner: {line:?}"))
                }
            }
            Check::Nftables { .. } => {
                let rules = stdout.lines().filter(|l| l.contains("accept") || l.contains("drop")).count();
                if rules == 0 {
                    Err("the table holds no rule".into())
                } else {
                    Ok(format!("{rules} rules"))
                }
            }
            Check::VipHolder { .. } => {
                Ok(if holds_vip(stdout) { "MASTER (holds the virtual IP)".into() } else { "BACKUP".into() })
            }
        }
    }
}

/// The checks that say `service` on `host` serves, with the paths of `layout`. Deploy gates
/// on the checks of every service of a host; the lab waits for each service's own before
/// starting the next.
pub fn service_checks(topology: &Topology, host: &Host, layout: &Layout, service: Service) -> Vec<Check> {
    let tls = topology.internal_tls;
    let scheme = if tls { "https" } else { "http" };
    let ca = tls.then(|| layout.ca_cert().display().to_string());
    match service {
        Service::Nftables if host.firewall => vec![Check::Nftables { table: super::NFTABLES_TABLE.into() }],
        Service::Nftables => Vec::new(),
        Service::Sshd => {
            vec![Check::Banner { what: "ssh".into(), address: host.address, port: 22, banner: "SSH-".into() }]
        }
        Service::Mariadb => vec![Check::Galera { socket: layout.mysql_socket().display().to_string(), size: None }],
        // The app itself, plain HTTP where it listens (loopback behind the terminator).
        Service::App => topology
            .app
            .iter()
            .zip(super::app::listen(topology, host))
            .map(|(app, (address, port))| Check::Http {
                what: "app health".into(),
                url: format!("http://{address}:{port}{}", app.health_path),
                ca: None,
            })
            .collect(),
        Service::Nginx => {
            let mut checks = Vec::new();
            if let (true, Some(web)) = (host.has(Role::Web), &topology.web) {
                let health = topology.lb.as_ref().map_or("/health", |lb| lb.health_path.as_str());
                checks.push(Check::Http {
                    what: "web health".into(),
                    url: format!("{scheme}://{}:{}{health}", host.address, web.port),
                    ca: ca.clone(),
                });
            }
            // The app hop as the web tier reaches it: through the terminator, verified TLS.
            if let (true, Some(app)) = (super::terminates_app_tls(topology, host), &topology.app) {
                checks.push(Check::Http {
                    what: "app hop health".into(),
                    url: format!("https://{}:{}{}", host.address, app.port, app.health_path),
                    ca: ca.clone(),
                });
            }
            checks
        }
        // Through this LB's own frontend to a backend: the whole path answers.
        Service::Haproxy => match (&topology.lb, host.public_address) {
            (Some(lb), Some(public)) => vec![Check::Http {
                what: "lb frontend".into(),
                url: format!("https://{public}:443{}", lb.health_path),
                ca: None,
            }],
            _ => Vec::new(),
        },
        Service::Keepalived => topology.lb.iter().map(|lb| Check::VipHolder { vip: lb.vip }).collect(),
        // The collector's health is whether its data arrives, which only the receiving end
        // knows (the lab asks its Sumo Logic stand-in; on NixOS, Sumo Logic itself).
        Service::Collectd => Vec::new(),
    }
}

/// What deploy gates a host on after switching it: its roles' serving checks, the Galera
/// node at the cluster's full size.
pub fn gate_checks(topology: &Topology, host: &Host, layout: &Layout) -> Vec<Check> {
    let full_size = topology.db.as_ref().map(|db| db.hosts.len());
    let mut checks = Vec::new();
    let runs = super::for_host(topology, host);
    for service in [Service::Mariadb, Service::App, Service::Nginx, Service::Haproxy] {
        if runs.contains(&service) {
            checks.extend(service_checks(topology, host, layout, service).into_iter().map(|check| match check {
                Check::Galera { socket, .. } => Check::Galera { socket, size: full_size },
                other => other,
            }));
        }
    }
    checks
}

/// The wsrep status a check reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GaleraStatus {
    pub cluster_status: String,
    pub state: String,
    pub size: usize,
    pub ready: String,
}

impl GaleraStatus {
    pub fn parse(text: &str) -> Self {
        let mut status = GaleraStatus::default();
        for line in text.lines() {
            let mut fields = line.split('\t');
            let (Some(name), Some(value)) = (fields.next(), fields.next()) else { continue };
            match name.trim().to_ascii_lowercase().as_str() {
                "wsrep_cluster_status" => status.cluster_status = value.trim().into(),
                "wsrep_local_state_comment" => status.state = value.trim().into(),
                "wsrep_cluster_size" => status.size = value.trim().parse().unwrap_or(0),
                "wsrep_ready" => status.ready = value.trim().into(),
                _ => {}
            }
        }
        status
    }

    pub fn healthy(&self, full_size: Option<usize>) -> Result<(), String> {
        if self.cluster_status != "Primary" {
            return Err(format!("cluster status {:?}, not Primary", self.cluster_status));
        }
        if self.state != "Synced" {
            return Err(format!("node state {:?}, not Synced", self.state));
        }
        if self.ready != "ON" {
            return Err(format!("wsrep_ready {:?}", self.ready));
        }
        match full_size {
            Some(full) if self.size != full => Err(format!("cluster size {} of {full}", self.size)),
            _ => Ok(()),
        }
    }
}

/// The shell command that tells whether this host carries `vip` (see [`holds_vip`]).
pub fn vip_script(vip: impl Into<std::net::IpAddr>) -> String {
    let (family, vip) = match vip.into() {
        std::net::IpAddr::V4(v4) => ("-4", v4.to_string()),
        std::net::IpAddr::V6(v6) => ("-6", v6.to_string()),
    };
    format!("if ip {family} -o addr show | grep -qF ' {vip}/'; then echo holds; else echo free; fi")
}

/// Judges [`vip_script`]'s output.
pub fn holds_vip(stdout: &str) -> bool {
    stdout.trim() == "holds"
}

/// The shell command that sends `command` to HAProxy's admin socket.
pub fn haproxy_script(socket: &str, command: &str) -> String {
    let socket = shell_quote(socket);
    format!(
        "if command -v socat >/dev/null 2>&1; then printf '%s\\n' {c} | socat -t 5 stdio UNIX-CONNECT:{socket}; else printf '%s\\n' {c} | nc -U {socket}; fi",
        c = shell_quote(command)
    )
}

/// A server's line of HAProxy's `show stat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerStat {
    /// Current sessions.
    pub scur: u64,
    /// `UP`, `DOWN`, `DRAIN`, `MAINT`, `UP 1/2`...
    pub status: String,
}

/// Parses `show stat` CSV for `backend`/`server`.
pub fn parse_stat(csv: &str, backend: &str, server: &str) -> Option<ServerStat> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (px, sv, scur, status) = (column("pxname")?, column("svname")?, column("scur")?, column("status")?);
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| f.get(px) == Some(&backend) && f.get(sv) == Some(&server))
        .map(|f| ServerStat {
            scur: f.get(scur).and_then(|s| s.parse().ok()).unwrap_or(0),
            status: f.get(status).unwrap_or(&"").to_string(),
        })
}

/// Quotes `text` for a POSIX shell.
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@,%+".contains(c)) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn galera_status_parses_and_judges() {
        let text = "wsrep_cluster_size\t3\nwsrep_cluster_status\tPrimary\nwsrep_local_state_comment\tSynced\nwsrep_ready\tON\n";
        let status = GaleraStatus::parse(text);
        assert_eq!(status.healthy(Some(3)), Ok(()));
        assert_eq!(status.healthy(None), Ok(()));
        assert!(status.healthy(Some(4)).unwrap_err().contains("cluster size 3 of 4"));
        let donor = GaleraStatus::parse(&text.replace("Synced", "Donor/Desynced"));
        assert!(donor.healthy(Some(3)).unwrap_err().contains("Donor/Desynced"));
        let split = GaleraStatus::parse(&text.replace("Primary", "non-Primary"));
        assert!(split.healthy(None).unwrap_err().contains("not Primary"));
    }

    #[test]
    fn show_stat_is_read_by_column_name() {
        let csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight\n\
                   web,FRONTEND,,,0,1,,,,,,,,,,,,OPEN,\n\
                   web,web1,0,0,2,3,,9,0,0,,0,,0,0,0,0,DRAIN,0\n\
                   web,web2,0,0,1,3,,9,0,0,,0,,0,0,0,0,UP,1\n";
        assert_eq!(parse_stat(csv, "web", "web1"), Some(ServerStat { scur: 2, status: "DRAIN".into() }));
        assert_eq!(parse_stat(csv, "web", "web2").unwrap().status, "UP");
        assert_eq!(parse_stat(csv, "web", "web3"), None);
    }

    #[test]
    fn gate_checks_cover_every_role_of_a_host() {
        let topology = crate::topology::compile(&crate::spec::SpecSource::embedded_default()).unwrap();
        let layout = Layout::lab("web1");
        let web = gate_checks(&topology, topology.host("web1").unwrap(), &layout);
        assert_eq!(
            web,
            vec![Check::Http {
                what: "web health".into(),
                url: "https://10.10.0.21:443/health".into(),
                ca: Some("/var/lib/nixstack-lab/web1/secrets/ca.crt".into())
            }]
        );
        let db = gate_checks(&topology, topology.host("db1").unwrap(), &Layout::nixos());
        assert_eq!(db, vec![Check::Galera { socket: "/run/mysqld/mysqld.sock".into(), size: Some(3) }]);
        let lb = gate_checks(&topology, topology.host("lb1").unwrap(), &Layout::nixos());
        assert!(matches!(&lb[0], Check::Http { url, ca: None, .. } if url == "https://203.0.113.11:443/health"));
        let white = crate::topology::compile(&crate::spec::SpecSource {
            name: "w".into(),
            text: include_str!("../../examples/whiteboard.toml").into(),
        })
        .unwrap();
        let all = gate_checks(&white, white.host("server1").unwrap(), &Layout::nixos());
        assert_eq!(all.iter().map(Check::name).collect::<Vec<_>>(), ["galera", "app health", "web health"]);
    }

    /// The banner and VIP scripts, run for real by `sh` against fixed outputs.
    #[test]
    fn judges_read_what_the_scripts_print() {
        let ssh = Check::Banner { what: "ssh".into(), address: Ipv4Addr::LOCALHOST, port: 22, banner: "SSH-".into() };
        assert!(ssh.judge("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n").is_ok());
        assert!(ssh.judge("").is_err());
        assert!(holds_vip("holds\n"));
        assert!(!holds_vip("free\n"));
        let out =
            std::process::Command::new("sh").arg("-c").arg(vip_script(Ipv4Addr::new(192, 0, 2, 254))).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "free", "no such address on this machine");
    }
}
