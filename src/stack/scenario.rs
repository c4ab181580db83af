//! The one Scenario that proves a stack works: a list of declarative, typed steps computed
//! from the Topology (pure, no I/O). `nixstack lab test` executes it (`crate::lab::run`); the
//! NixOS VM test runs the same steps from their data (`crate::render::vmtest` writes them to
//! `checks/scenario.json`), so a step says *what* to check with every address, port and
//! expectation spelled out, never *how*.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use super::{address_plan, monitoring};
use crate::spec::Proto;
use crate::topology::{Bind, Endpoint, Host, Topology};

/// How a TCP connect ended (the lab makes them in `crate::lab::probe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Connect {
    /// The handshake completed: something listens and the firewalls let it through.
    Open,
    /// Reset: the firewalls let it through, nothing listens on that address and port.
    Refused,
    /// No answer, or refused locally by the source's own firewall (EPERM), or unreachable.
    Filtered,
}

impl Connect {
    pub fn symbol(self) -> &'static str {
        match self {
            Connect::Open => "open",
            Connect::Refused => "refused",
            Connect::Filtered => "filtered",
        }
    }
}

/// Where a probe starts: the internet client, the admin network, or a host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Source {
    Internet,
    Admin,
    Host(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Internet => f.write_str("internet"),
            Source::Admin => f.write_str("admin"),
            Source::Host(name) => f.write_str(name),
        }
    }
}

/// A web, app or database node by name and address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub host: String,
    pub address: Ipv4Addr,
    pub port: u16,
}

/// One cell of the firewall matrix: a TCP connect and what must come of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub from: Source,
    /// The source address the connect leaves from.
    pub from_address: Ipv4Addr,
    pub to: String,
    /// `None` when the source has no route to the destination at all (e.g. internet →
    /// a host without a public address): not a firewall question, not probed.
    pub address: Option<Ipv4Addr>,
    pub port: u16,
    pub expect: Connect,
    /// Whether `Open` is as good as the expected `Refused`: the firewall allows the port and
    /// its listener exists only at times (Galera state transfers).
    pub also_open: bool,
    /// Why, in words: which rule allows it, or whose firewall blocks it.
    pub reason: String,
}

impl Probe {
    /// Whether `got` is what the Topology says.
    pub fn accepts(&self, got: Connect) -> bool {
        got == self.expect || (self.also_open && got == Connect::Open)
    }
}

/// One step of the scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// From the internet: `https://<domain>/` through the virtual IP returns the app's
    /// page, the certificate verifies against the stack's CA; `http://` redirects to HTTPS.
    HttpsViaVip { domain: String, vip: Ipv4Addr, requests: u32, web_hosts: Vec<String> },
    /// The same over IPv6, through the virtual IPv6 address; and from the internet each load
    /// balancer's public IPv6 address takes HTTPS and nothing else the firewall closes
    /// (`closed_ports`: SSH, the stats port).
    HttpsViaVip6 { domain: String, vip6: Ipv6Addr, requests: u32, lbs: Vec<(String, Ipv6Addr)>, closed_ports: Vec<u16> },
    /// From each load balancer, every web backend speaks TLS with a certificate the
    /// internal CA verifies for the backend's name, and no port the LB may reach on a web
    /// node answers plaintext HTTP.
    BackendTls { lbs: Vec<String>, backends: Vec<Node>, health_path: String, reachable_ports: Vec<(String, u16)> },
    /// From the admin network, SSH with the operator key logs in on every host.
    AdminSsh { hosts: Vec<Node> },
    /// A row written through each writer node is read back on every node.
    MultiMaster { writers: Vec<String>, nodes: Vec<String> },
    /// Every (source, destination, port) over the ports the flows use, plus SSH: allowed
    /// ones connect, all others fail, exactly as the Topology's firewall says.
    FirewallMatrix { ports: Vec<u16>, probes: Vec<Probe> },
    /// Under steady client load, `victim`'s nginx is killed: once HAProxy ejects it (within
    /// `eject_within_ms`) no client request fails; restarted, it serves again.
    WebFailover { domain: String, vip: Ipv4Addr, victim: String, eject_within_ms: u64 },
    /// `victim`'s mariadbd is killed: writes continue through `survivors` (and the app),
    /// the node restarts, rejoins and reaches Synced with the writes it missed.
    DbFailover { domain: String, vip: Ipv4Addr, victim: String, survivors: Vec<String>, writers: Vec<String> },
    /// The load balancer holding the virtual IP stops: the VIP moves to the standby and
    /// HTTPS answers again within `within_ms`.
    /// With a VIP6, it moves with the VIP (one sync group) and HTTPS answers on it too.
    LbFailover {
        domain: String,
        vip: Ipv4Addr,
        vip6: Option<Ipv6Addr>,
        active: String,
        standby: Vec<String>,
        within_ms: u64,
    },
    /// Every monitored host's collector ships to the monitoring endpoint (HTTPS on
    /// `endpoint`) through the host's egress rule (the `egress` connects), and its metrics
    /// arrive within `within_ms` with the host's name (`X-Sumo-Host`), its category
    /// (`X-Sumo-Category`) and the plugins of its roles.
    MetricsArrive { endpoint: Ipv4Addr, hosts: Vec<MonitoredHost>, egress: Vec<Probe>, within_ms: u64 },
    /// What the collectors read (nginx stub_status, HAProxy stats, MariaDB status) answers on
    /// the host itself; connects from every other namespace end as the bind address and the
    /// firewall say, and a remote login with the monitor account is refused by the server.
    CollectorEndpointsLocal { endpoints: Vec<LocalEndpoint> },
    /// From the internet, `rate` requests per second to `https://<domain><path>` through the
    /// virtual IP for `duration_ms`: the per-web-host QPS computed from the `web_metric`
    /// counters that reached the monitoring endpoint (rate during the load minus the rate
    /// before it, which is the LBs' health checks) sums to the generated rate within
    /// `tolerance_percent`, and so does the active LB's `lb_metric` counter. The collectors
    /// send a data point every `interval_ms`.
    WebQps {
        domain: String,
        vip: Ipv4Addr,
        path: String,
        rate: u32,
        duration_ms: u64,
        web_hosts: Vec<String>,
        lbs: Vec<String>,
        web_metric: String,
        lb_metric: String,
        interval_ms: u64,
        tolerance_percent: u32,
    },
}

/// A monitored host as the monitoring service must see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonitoredHost {
    pub host: String,
    /// Its `_sourceCategory`, sent as `X-Sumo-Category`.
    pub category: String,
    /// Collector plugins (collectd `plugin=` tags) whose metrics must arrive: host metrics
    /// on every host, plus its roles' (nginx, HAProxy through curl, MariaDB).
    pub plugins: Vec<String>,
}

/// A local endpoint a collector reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectorSource {
    /// nginx `stub_status` on loopback.
    NginxStubStatus,
    /// HAProxy's stats page on the private address.
    HaproxyStats,
    /// MariaDB's status over the local socket, as the monitor account.
    MariadbStatus,
}

/// One collector endpoint of one host and who must not reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalEndpoint {
    pub host: String,
    pub source: CollectorSource,
    /// The URL the collector reads (HTTP endpoints); MariaDB is read over its socket.
    pub url: Option<String>,
    /// The endpoint's TCP port (MariaDB: the server port a remote login would use).
    pub port: u16,
    /// Connects from the internet, the admin network and every other host to `port` on
    /// the host's addresses, each with what the bind address and the firewall say.
    pub remote: Vec<Probe>,
    /// MariaDB: hosts the firewall lets reach the server; logging in from them as the
    /// monitor account (with its password) must be refused.
    pub remote_logins: Vec<String>,
    /// MariaDB: the monitor account.
    pub user: Option<String>,
}

impl Step {
    /// Short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Step::HttpsViaVip { .. } => "https via the virtual IP",
            Step::HttpsViaVip6 { .. } => "https via the virtual IPv6",
            Step::BackendTls { .. } => "lb → web is TLS only",
            Step::AdminSsh { .. } => "ssh from admin",
            Step::MultiMaster { .. } => "multi-master writes",
            Step::FirewallMatrix { .. } => "firewall matrix",
            Step::WebFailover { .. } => "web failover",
            Step::DbFailover { .. } => "db failover",
            Step::LbFailover { .. } => "lb failover",
            Step::MetricsArrive { .. } => "metrics reach sumo logic",
            Step::CollectorEndpointsLocal { .. } => "collector endpoints are local",
            Step::WebQps { .. } => "web qps from the counters",
        }
    }
}

/// The scenario of one stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scenario {
    pub stack: String,
    pub steps: Vec<Step>,
    /// Steps left out and why (e.g. no LB failover with a single load balancer).
    pub omitted: Vec<String>,
}

/// Budget of HAProxy's ejection of a dead web node, and of an LB failover.
pub const WEB_EJECT_WITHIN_MS: u64 = 2000;
pub const LB_FAILOVER_WITHIN_MS: u64 = 3000;

impl Scenario {
    pub fn for_topology(topology: &Topology) -> Scenario {
        let mut steps = Vec::new();
        let mut omitted = Vec::new();
        let domain = topology.stack.domain.clone();
        let web_hosts: Vec<String> = topology.web.as_ref().map(|w| w.hosts.clone()).unwrap_or_default();

        if let Some(lb) = &topology.lb {
            if topology.app.is_some() && !web_hosts.is_empty() {
                steps.push(Step::HttpsViaVip {
                    domain: domain.clone(),
                    vip: lb.vip,
                    requests: 6,
                    web_hosts: web_hosts.clone(),
                });
                if let Some(vip6) = lb.vip6 {
                    let lbs = lb
                        .hosts
                        .iter()
                        .filter_map(|name| topology.host(name)?.public_address6.map(|a| (name.clone(), a)))
                        .collect();
                    let closed_ports = vec![crate::topology::ports::SSH, lb.stats_port];
                    steps.push(Step::HttpsViaVip6 { domain: domain.clone(), vip6, requests: 6, lbs, closed_ports });
                }
            }
            if topology.internal_tls {
                let backends: Vec<Node> = lb
                    .backends
                    .iter()
                    .map(|b| Node { host: b.host.clone(), address: b.address, port: b.port })
                    .collect();
                let mut reachable_ports = Vec::new();
                for backend in &lb.backends {
                    for port in ports_allowed_from(topology, &lb.hosts, &backend.host) {
                        reachable_ports.push((backend.host.clone(), port));
                    }
                }
                steps.push(Step::BackendTls {
                    lbs: lb.hosts.clone(),
                    backends,
                    health_path: lb.health_path.clone(),
                    reachable_ports,
                });
            } else {
                omitted.push("lb → web is TLS only: tls.internal = false, the LB talks plain HTTP to the web tier (the audit reports it)".into());
            }
        }

        steps.push(Step::AdminSsh {
            hosts: topology.hosts.iter().map(|h| Node { host: h.name.clone(), address: h.address, port: 22 }).collect(),
        });

        if let Some(db) = &topology.db {
            steps.push(Step::MultiMaster { writers: db.writers.clone(), nodes: db.hosts.clone() });
        }

        steps.push(firewall_matrix(topology));

        monitoring_steps(topology, &mut steps, &mut omitted);

        if let Some(lb) = &topology.lb {
            if web_hosts.len() >= 2 && topology.app.is_some() {
                steps.push(Step::WebFailover {
                    domain: domain.clone(),
                    vip: lb.vip,
                    victim: web_hosts[0].clone(),
                    eject_within_ms: WEB_EJECT_WITHIN_MS,
                });
            } else {
                omitted.push("web failover: fewer than two web nodes".into());
            }
        }

        if let (Some(db), Some(lb), Some(app)) = (&topology.db, &topology.lb, &topology.app) {
            if db.hosts.len() >= 3 {
                // Kill the app's first choice when another node takes writes too, so the
                // app's failover is exercised; with one writer, a node that is not it.
                let victim = if db.writers.len() >= 2 {
                    app.db_writers.first().map(|b| b.host.clone()).unwrap_or_else(|| db.hosts[0].clone())
                } else {
                    db.hosts
                        .iter()
                        .rev()
                        .find(|h| !db.writers.contains(h))
                        .cloned()
                        .unwrap_or_else(|| db.hosts[0].clone())
                };
                let survivors: Vec<String> = db.hosts.iter().filter(|h| **h != victim).cloned().collect();
                let writers: Vec<String> = db.writers.iter().filter(|h| **h != victim).cloned().collect();
                steps.push(Step::DbFailover { domain: domain.clone(), vip: lb.vip, victim, survivors, writers });
            } else {
                omitted.push("db failover: fewer than three Galera nodes cannot lose one and keep a majority".into());
            }
        }

        if let Some(lb) = &topology.lb {
            if lb.hosts.len() >= 2 {
                let standby: Vec<String> = lb.hosts.iter().filter(|h| **h != lb.primary).cloned().collect();
                steps.push(Step::LbFailover {
                    domain,
                    vip: lb.vip,
                    vip6: lb.vip6,
                    active: lb.primary.clone(),
                    standby,
                    within_ms: LB_FAILOVER_WITHIN_MS,
                });
            } else {
                omitted
                    .push("lb failover: a single load balancer (the audit reports the single point of failure)".into());
            }
        }
        Scenario { stack: topology.stack.name.clone(), steps, omitted }
    }
}

/// TCP ports `to`'s firewall lets in from any of `from` (its inbound rules), sorted.
fn ports_allowed_from(topology: &Topology, from: &[String], to: &str) -> Vec<u16> {
    let sources: Vec<Ipv4Addr> = from.iter().filter_map(|name| topology.host(name)).map(|h| h.address).collect();
    let mut ports: Vec<u16> = match topology.firewall.get(to) {
        Some(firewall) if firewall.enabled && topology.host(to).is_some_and(|h| h.firewall) => firewall
            .inbound
            .iter()
            .filter(|allow| {
                allow.proto == Proto::Tcp && allow.peers.iter().any(|net| sources.iter().any(|s| net.contains(s)))
            })
            .map(|allow| allow.port)
            .collect(),
        // No firewall: every listening port.
        _ => topology
            .host(to)
            .map(|h| h.services.iter().filter(|s| s.bind != Bind::Local).map(|s| s.port).collect())
            .unwrap_or_default(),
    };
    ports.sort();
    ports.dedup();
    ports
}

/// Ports whose listener exists only during a Galera state transfer (SST, IST).
const TRANSIENT_PORTS: [u16; 2] = [crate::topology::ports::GALERA_SST, crate::topology::ports::GALERA_IST];

/// Every TCP port a flow between parts of the stack uses, plus SSH, sorted.
pub fn matrix_ports(topology: &Topology) -> Vec<u16> {
    let mut ports: Vec<u16> = topology
        .flows
        .iter()
        .filter(|flow| flow.proto == Proto::Tcp && matches!(flow.to, Endpoint::Host(_)))
        .map(|flow| flow.port)
        .chain([crate::topology::ports::SSH])
        // Ports that listen beyond loopback but no flow needs (HAProxy stats) are probed
        // too: the matrix proves the firewall keeps them closed.
        .chain(
            topology
                .hosts
                .iter()
                .flat_map(|h| &h.services)
                .filter(|s| s.proto == Proto::Tcp && s.bind != crate::topology::Bind::Local)
                .map(|s| s.port),
        )
        .collect();
    ports.sort();
    ports.dedup();
    ports
}

/// How many hosts of one class the matrices probe from and to: the first, the middle and
/// the last of the class in name order. Three per class keeps a small stack's matrix
/// complete (the default spec has three hosts per role) and a large one's constant in size.
pub const SAMPLE_PER_CLASS: usize = 3;

/// The hosts the firewall matrices probe, in name order: per class of hosts that the
/// Topology cannot tell apart (same roles, listeners, firewall on or off, monitoring, public
/// card, and the same rules by port, protocol and purpose), [`SAMPLE_PER_CLASS`] of them.
/// Every rule of every host is a rule of its class, so probing between the sampled hosts of
/// every pair of classes still exercises each rule (a wrong rule fails its probes), and the
/// matrix grows with the number of classes, not with the square of the number of hosts.
pub fn sampled_hosts(topology: &Topology) -> Vec<&Host> {
    use std::collections::BTreeMap;
    type Rules = Vec<(u16, Proto, String, bool, Option<u32>)>;
    let rules = |allows: &[crate::topology::Allow]| -> Rules {
        allows.iter().map(|a| (a.port, a.proto, a.purpose.clone(), a.needed, a.rate_limit)).collect()
    };
    let mut classes: BTreeMap<_, Vec<usize>> = BTreeMap::new();
    for (i, host) in topology.hosts.iter().enumerate() {
        let firewall = topology.firewall.get(&host.name);
        let key = (
            host.roles.clone(),
            host.services.clone(),
            host.firewall,
            host.monitored,
            host.public_address.is_some(),
            firewall.map(|f| {
                (f.enabled, f.egress == crate::spec::EgressPolicy::Restricted, rules(&f.inbound), rules(&f.outbound))
            }),
        );
        classes.entry(key).or_default().push(i);
    }
    let mut picked: Vec<usize> = classes
        .values()
        .flat_map(|members| {
            let n = members.len();
            if n <= SAMPLE_PER_CLASS {
                members.clone()
            } else {
                vec![members[0], members[n / 2], members[n - 1]]
            }
        })
        .collect();
    picked.sort_unstable();
    picked.into_iter().map(|i| &topology.hosts[i]).collect()
}

/// The firewall matrix: for every source, destination host and port, the expected outcome
/// from the Topology's firewall (inbound rules of the destination, outbound rules of a
/// source host with restricted egress) and the services that listen. Sources and
/// destinations are the internet, the admin network and the [`sampled_hosts`].
pub fn firewall_matrix(topology: &Topology) -> Step {
    let ports = matrix_ports(topology);
    // The lab and the VM test place internet and admin the same way.
    let plan = address_plan::plan(topology).ok();
    let internet = plan.as_ref().map(|p| p.internet_address()).unwrap_or(Ipv4Addr::UNSPECIFIED);
    let admin = plan.as_ref().map(|p| p.admin_address()).unwrap_or(Ipv4Addr::UNSPECIFIED);
    let sampled = sampled_hosts(topology);
    let mut sources = vec![(Source::Internet, internet), (Source::Admin, admin)];
    sources.extend(sampled.iter().map(|h| (Source::Host(h.name.clone()), h.address)));
    let mut probes = Vec::new();
    for (source, from_private) in &sources {
        for to in sampled.iter().copied() {
            if *source == Source::Host(to.name.clone()) {
                continue;
            }
            for &port in &ports {
                probes.push(expect(topology, source, *from_private, to, port));
            }
        }
    }
    Step::FirewallMatrix { ports, probes }
}

/// The load of the web QPS step: requests per second through the virtual IP, for how
/// long, and how close the QPS from the counters must come.
pub const QPS_RATE: u32 = 20;
pub const QPS_DURATION_MS: u64 = 20_000;
pub const QPS_TOLERANCE_PERCENT: u32 = 10;
/// How soon after `lab up` every host's metrics must have arrived.
pub const METRICS_WITHIN_MS: u64 = 10_000;
/// The metrics the lab's agent (collectd) names the request counters: nginx's, and HAProxy's
/// `req_tot` of the HTTPS frontend read through the curl plugin (`<type>.<instance>`).
pub const WEB_REQUESTS_METRIC: &str = "nginx_requests";
pub const LB_REQUESTS_METRIC: &str = "http_requests.https";

/// The monitoring steps: metrics arrive, the collectors' endpoints stay local, web QPS.
fn monitoring_steps(topology: &Topology, steps: &mut Vec<Step>, omitted: &mut Vec<String>) {
    use crate::spec::Role;
    let Some(_) = &topology.monitoring else {
        omitted.push("monitoring: the spec has no [monitoring] section".into());
        return;
    };
    let monitored: Vec<&Host> = topology.hosts.iter().filter(|h| h.monitored).collect();
    if monitored.is_empty() {
        omitted.push("monitoring: no host is monitored".into());
        return;
    }
    let endpoint = match address_plan::standin_address(topology) {
        Ok(address) => address,
        Err(e) => {
            omitted.push(format!("monitoring: {e:#}"));
            return;
        }
    };
    let plan = address_plan::plan(topology).ok();
    let hosts = monitored
        .iter()
        .map(|host| {
            let mut plugins = vec!["cpu".to_string(), "load".into(), "memory".into()];
            if host.has(Role::Web) {
                plugins.push("nginx".into());
            }
            if host.has(Role::Lb) {
                plugins.push("curl".into());
            }
            if host.has(Role::Db) {
                plugins.push("mysql".into());
            }
            plugins.sort();
            MonitoredHost { host: host.name.clone(), category: monitoring::source_category(topology, host), plugins }
        })
        .collect();
    let egress = monitored.iter().flat_map(|host| egress_probes(topology, host, endpoint)).collect();
    steps.push(Step::MetricsArrive { endpoint, hosts, egress, within_ms: METRICS_WITHIN_MS });

    // Everyone else who could try: the internet client, the admin network, the other hosts.
    let internet = plan.as_ref().map(|p| p.internet_address()).unwrap_or(Ipv4Addr::UNSPECIFIED);
    let admin = plan.as_ref().map(|p| p.admin_address()).unwrap_or(Ipv4Addr::UNSPECIFIED);
    // Sampled as the firewall matrix is: the hosts of a class share their rules.
    let sampled = sampled_hosts(topology);
    let others = |host: &Host| -> Vec<(Source, Ipv4Addr)> {
        let mut sources = vec![(Source::Internet, internet), (Source::Admin, admin)];
        sources
            .extend(sampled.iter().filter(|h| h.name != host.name).map(|h| (Source::Host(h.name.clone()), h.address)));
        sources
    };
    let remote = |host: &Host, port: u16| -> Vec<Probe> {
        others(host)
            .iter()
            .map(|(source, from)| expect(topology, source, *from, host, port))
            .filter(|p| p.address.is_some())
            .collect()
    };
    let mut endpoints = Vec::new();
    for host in monitored.iter().filter(|h| sampled.iter().any(|s| s.name == h.name)) {
        if let (true, Some(web)) = (host.has(Role::Web), &topology.web) {
            endpoints.push(LocalEndpoint {
                host: host.name.clone(),
                source: CollectorSource::NginxStubStatus,
                url: monitoring::nginx_status_url(topology),
                port: web.status_port,
                remote: remote(host, web.status_port),
                remote_logins: Vec::new(),
                user: None,
            });
        }
        if let (true, Some(lb)) = (host.has(Role::Lb), &topology.lb) {
            endpoints.push(LocalEndpoint {
                host: host.name.clone(),
                source: CollectorSource::HaproxyStats,
                url: monitoring::haproxy_stats_url(topology, host),
                port: lb.stats_port,
                remote: remote(host, lb.stats_port),
                remote_logins: Vec::new(),
                user: None,
            });
        }
        if host.has(Role::Db) && topology.db.is_some() {
            let port = crate::topology::ports::MYSQL;
            let remote_probes = remote(host, port);
            let remote_logins = remote_probes
                .iter()
                .filter(|p| p.expect == Connect::Open)
                .filter_map(|p| match &p.from {
                    Source::Host(name) => Some(name.clone()),
                    _ => None,
                })
                .collect();
            endpoints.push(LocalEndpoint {
                host: host.name.clone(),
                source: CollectorSource::MariadbStatus,
                url: None,
                port,
                remote: remote_probes,
                remote_logins,
                user: Some(monitoring::DB_MONITOR_USER.into()),
            });
        }
    }
    if !endpoints.is_empty() {
        steps.push(Step::CollectorEndpointsLocal { endpoints });
    }

    match (&topology.lb, &topology.web) {
        (Some(lb), Some(web)) => {
            let unmonitored: Vec<&String> =
                web.hosts.iter().filter(|h| !topology.host(h).is_some_and(|h| h.monitored)).collect();
            if !unmonitored.is_empty() {
                omitted.push(format!("web qps: web hosts {unmonitored:?} are not monitored"));
                return;
            }
            // The lab's agent ships at this interval (the VM test skips this step).
            let interval = monitoring::COLLECTD_INTERVAL_LAB_SECONDS;
            steps.push(Step::WebQps {
                domain: topology.stack.domain.clone(),
                vip: lb.vip,
                path: "/".into(),
                rate: QPS_RATE,
                duration_ms: QPS_DURATION_MS,
                web_hosts: web.hosts.clone(),
                lbs: lb.hosts.iter().filter(|h| topology.host(h).is_some_and(|h| h.monitored)).cloned().collect(),
                web_metric: WEB_REQUESTS_METRIC.into(),
                lb_metric: LB_REQUESTS_METRIC.into(),
                interval_ms: u64::from(interval) * 1000,
                tolerance_percent: QPS_TOLERANCE_PERCENT,
            });
        }
        _ => omitted.push("web qps: no load balancer or no web tier to send load through".into()),
    }
}

/// From `host` to the monitoring endpoint: HTTPS connects (its egress rule allows it), and
/// plain HTTP on port 80 ends as the egress rules say (blocked when restricted; else refused,
/// nothing listens there).
fn egress_probes(topology: &Topology, host: &Host, endpoint: Ipv4Addr) -> Vec<Probe> {
    let firewall = topology.firewall.get(&host.name);
    let restricted =
        host.firewall && firewall.is_some_and(|f| f.enabled && f.egress == crate::spec::EgressPolicy::Restricted);
    let allows = |port: u16| {
        !restricted
            || firewall.is_some_and(|f| {
                f.outbound.iter().any(|a| {
                    a.proto == Proto::Tcp && a.port == port && a.peers.iter().any(|net| net.contains(&endpoint))
                })
            })
    };
    let probe = |port: u16, expect: Connect, reason: String| Probe {
        from: Source::Host(host.name.clone()),
        from_address: host.address,
        to: "sumologic".into(),
        address: Some(endpoint),
        port,
        expect,
        also_open: false,
        reason,
    };
    let https = crate::topology::ports::HTTPS;
    let http = crate::topology::ports::HTTP;
    let mut probes = Vec::new();
    if allows(https) {
        probes.push(probe(https, Connect::Open, "allowed: monitoring → sumologic https".into()));
    } else {
        probes.push(probe(https, Connect::Filtered, format!("{}'s egress rules block it", host.name)));
    }
    if allows(http) {
        probes.push(probe(http, Connect::Refused, "allowed, nothing listens on the endpoint's port 80".into()));
    } else {
        probes.push(probe(http, Connect::Filtered, format!("{}'s egress rules block it", host.name)));
    }
    probes
}

fn expect(topology: &Topology, source: &Source, from_address: Ipv4Addr, to: &Host, port: u16) -> Probe {
    // The internet reaches only public addresses; everyone else the private network.
    let address = match source {
        Source::Internet => to.public_address,
        _ => Some(to.address),
    };
    let mut probe = Probe {
        from: source.clone(),
        from_address,
        to: to.name.clone(),
        address,
        port,
        expect: Connect::Filtered,
        also_open: false,
        reason: String::new(),
    };
    let Some(address) = address else {
        probe.reason = "no route (not on the same network)".into();
        return probe;
    };
    if let Source::Host(name) = source {
        let firewall = topology.firewall.get(name);
        let source_host = topology.host(name);
        let restricted = firewall.is_some_and(|f| f.enabled && f.egress == crate::spec::EgressPolicy::Restricted)
            && source_host.is_some_and(|h| h.firewall);
        if restricted {
            let allowed = firewall.expect("checked").outbound.iter().any(|allow| {
                allow.proto == Proto::Tcp && allow.port == port && allow.peers.iter().any(|net| net.contains(&address))
            });
            if !allowed {
                probe.reason = format!("{name}'s egress rules block it");
                return probe;
            }
        }
    }
    let inbound = match topology.firewall.get(&to.name) {
        Some(firewall) if firewall.enabled && to.firewall => firewall
            .inbound
            .iter()
            .find(|allow| {
                allow.proto == Proto::Tcp
                    && allow.port == port
                    && allow.peers.iter().any(|net| net.contains(&from_address))
            })
            .map(|allow| allow.purpose.clone()),
        _ => Some("no firewall on the destination".into()),
    };
    let Some(purpose) = inbound else {
        probe.reason = format!("{}'s firewall blocks it", to.name);
        return probe;
    };
    let listening = to.services.iter().any(|service| {
        service.port == port
            && service.proto == Proto::Tcp
            && match service.bind {
                Bind::Local => false,
                Bind::Private => address == to.address,
                Bind::Public => Some(address) == to.public_address,
            }
    });
    if listening && TRANSIENT_PORTS.contains(&port) {
        // Galera's SST and IST listeners exist only while a node receives a state transfer.
        probe.expect = Connect::Refused;
        probe.also_open = true;
        probe.reason = format!("allowed ({purpose}); listens only during a state transfer");
    } else if listening {
        probe.expect = Connect::Open;
        probe.reason = format!("allowed: {purpose}");
    } else {
        probe.expect = Connect::Refused;
        probe.reason = format!("allowed ({purpose}), nothing listens on {address}:{port}");
    }
    probe
}

/// The web host behind an address (the app reports its web peer by address).
pub fn host_by_address<'t>(topology: &'t Topology, address: &str) -> Option<&'t str> {
    topology.hosts.iter().find(|h| h.address.to_string() == address || h.name == address).map(|h| h.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(file: &str) -> Topology {
        let path = format!("{}/examples/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("example exists");
        crate::topology::compile(&crate::spec::SpecSource { name: file.into(), text }).expect("example compiles")
    }

    fn probe<'s>(step: &'s Step, from: &str, to: &str, port: u16) -> &'s Probe {
        let Step::FirewallMatrix { probes, .. } = step else { panic!("not a matrix") };
        probes
            .iter()
            .find(|p| p.from.to_string() == from && p.to == to && p.port == port)
            .unwrap_or_else(|| panic!("no probe {from} → {to}:{port}"))
    }

    #[test]
    fn default_stack_runs_every_step() {
        let scenario = Scenario::for_topology(&example("default.toml"));
        let names: Vec<&str> = scenario.steps.iter().map(Step::name).collect();
        assert_eq!(
            names,
            [
                "https via the virtual IP",
                "https via the virtual IPv6",
                "lb → web is TLS only",
                "ssh from admin",
                "multi-master writes",
                "firewall matrix",
                "metrics reach sumo logic",
                "collector endpoints are local",
                "web qps from the counters",
                "web failover",
                "db failover",
                "lb failover"
            ]
        );
        assert!(scenario.omitted.is_empty(), "{:?}", scenario.omitted);
        let db = scenario.steps.iter().find_map(|s| match s {
            Step::DbFailover { victim, survivors, .. } => Some((victim.clone(), survivors.clone())),
            _ => None,
        });
        assert_eq!(
            db,
            Some(("db1".to_string(), vec!["db2".to_string(), "db3".to_string()])),
            "the app's first choice dies"
        );
    }

    #[test]
    fn whiteboard_omits_what_its_shape_cannot_do_and_says_why() {
        let scenario = Scenario::for_topology(&example("whiteboard.toml"));
        assert!(!scenario.steps.iter().any(|s| matches!(s, Step::LbFailover { .. } | Step::BackendTls { .. })));
        assert_eq!(scenario.omitted.len(), 2, "{:?}", scenario.omitted);
        let victim = scenario.steps.iter().find_map(|s| match s {
            Step::DbFailover { victim, writers, .. } => Some((victim.clone(), writers.clone())),
            _ => None,
        });
        assert_eq!(
            victim,
            Some(("server3".to_string(), vec!["server1".to_string()])),
            "single primary: a replica dies"
        );
    }

    #[test]
    fn matrix_expectations_follow_the_firewall() {
        let topology = example("default.toml");
        let step = firewall_matrix(&topology);
        let Step::FirewallMatrix { ports, .. } = &step else { unreachable!() };
        assert_eq!(ports, &[22, 80, 443, 3306, 4444, 4567, 4568, 8080, 8402, 8404]);
        // Peers reach lego on the LB's public address (host probes go to private ones, and
        // tests/lab.rs's ACME test crosses the public path): the private path stays closed.
        assert_eq!(probe(&step, "lb1", "lb2", 8402).expect, Connect::Filtered);
        assert_eq!(probe(&step, "web1", "lb2", 8402).expect, Connect::Filtered);
        assert_eq!(probe(&step, "internet", "lb1", 443).expect, Connect::Open);
        assert_eq!(probe(&step, "internet", "lb1", 22).expect, Connect::Filtered);
        assert_eq!(probe(&step, "internet", "web1", 443).address, None);
        assert_eq!(probe(&step, "admin", "web1", 22).expect, Connect::Open);
        assert_eq!(probe(&step, "admin", "lb1", 8404).expect, Connect::Filtered, "stats serve the LB itself only");
        assert_eq!(probe(&step, "admin", "web1", 443).expect, Connect::Filtered);
        assert_eq!(probe(&step, "lb1", "web2", 443).expect, Connect::Open);
        assert_eq!(probe(&step, "web1", "app3", 8080).expect, Connect::Open);
        assert_eq!(probe(&step, "web1", "db1", 3306).expect, Connect::Filtered);
        assert_eq!(probe(&step, "app2", "db3", 3306).expect, Connect::Open);
        assert_eq!(probe(&step, "db2", "db1", 4567).expect, Connect::Open);
        // The LBs accept 443 from anywhere, but HAProxy listens on the public side only.
        assert_eq!(probe(&step, "admin", "lb1", 443).expect, Connect::Refused);
        // Egress: a web node may not open SSH to another host.
        assert!(probe(&step, "web1", "web2", 22).reason.contains("egress"), "{:?}", probe(&step, "web1", "web2", 22));
    }

    #[test]
    fn monitoring_steps_spell_out_hosts_categories_and_who_may_not_read_the_collectors() {
        let scenario = Scenario::for_topology(&example("default.toml"));
        let arrive = scenario.steps.iter().find_map(|s| match s {
            Step::MetricsArrive { endpoint, hosts, egress, .. } => Some((endpoint, hosts, egress)),
            _ => None,
        });
        let (endpoint, hosts, egress) = arrive.expect("a metrics step");
        assert_eq!(endpoint.to_string(), "192.0.2.10");
        assert_eq!(hosts.len(), 11);
        let db1 = hosts.iter().find(|h| h.host == "db1").unwrap();
        assert_eq!(db1.category, "shop/db");
        assert_eq!(db1.plugins, ["cpu", "load", "memory", "mysql"]);
        let web1_egress: Vec<(u16, Connect)> =
            egress.iter().filter(|p| p.from == Source::Host("web1".into())).map(|p| (p.port, p.expect)).collect();
        assert_eq!(web1_egress, [(443, Connect::Open), (80, Connect::Filtered)], "only HTTPS leaves for the endpoint");

        let endpoints = scenario.steps.iter().find_map(|s| match s {
            Step::CollectorEndpointsLocal { endpoints } => Some(endpoints),
            _ => None,
        });
        let endpoints = endpoints.expect("an endpoints step");
        let stub = endpoints.iter().find(|e| e.host == "web1" && e.source == CollectorSource::NginxStubStatus).unwrap();
        assert_eq!(stub.url.as_deref(), Some("http://127.0.0.1:8081/nginx_status"));
        assert!(stub.remote.iter().all(|p| p.expect != Connect::Open), "stub_status is loopback only");
        let stats = endpoints.iter().find(|e| e.host == "lb1" && e.source == CollectorSource::HaproxyStats).unwrap();
        let open: Vec<String> =
            stats.remote.iter().filter(|p| p.expect == Connect::Open).map(|p| p.from.to_string()).collect();
        assert!(open.is_empty(), "HAProxy stats answer the LB itself only: {open:?}");
        let db = endpoints.iter().find(|e| e.host == "db1" && e.source == CollectorSource::MariadbStatus).unwrap();
        assert_eq!(db.remote_logins, ["app1", "app2", "app3"], "the hosts that reach 3306 try to log in as monitor");

        let qps = scenario.steps.iter().find_map(|s| match s {
            Step::WebQps { web_hosts, lbs, rate, interval_ms, .. } => {
                Some((web_hosts.clone(), lbs.clone(), *rate, *interval_ms))
            }
            _ => None,
        });
        assert_eq!(
            qps,
            Some((vec!["web1".into(), "web2".into(), "web3".into()], vec!["lb1".into(), "lb2".into()], QPS_RATE, 2000))
        );
    }

    #[test]
    fn whiteboard_lb_without_firewall_is_open_to_what_listens() {
        let topology = example("whiteboard.toml");
        let step = firewall_matrix(&topology);
        assert_eq!(
            probe(&step, "internet", "lb", 22).expect,
            Connect::Refused,
            "sshd listens privately only; nothing filters"
        );
        assert_eq!(probe(&step, "admin", "lb", 8404).expect, Connect::Open);
        assert_eq!(probe(&step, "server2", "server1", 3306).expect, Connect::Open);
        assert_eq!(
            probe(&step, "server1", "server2", 3306).expect,
            Connect::Filtered,
            "single primary: only the writer takes app connections"
        );
    }
}
