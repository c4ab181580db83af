//! Spec → Topology: checks every cross-reference, fills defaults, expands host groups,
//! allocates addresses.

mod groups;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use ipnet::Ipv4Net;

use super::model::*;
use super::{flows, ports};
use crate::spec::{
    nearest, BackupTarget, DbBackupSection, DeployTool, Dropped, Located, Proto, RawSpec, Role, SecretsBackend,
    SourceMap, SpecError, SpecErrors, SpecSource, WriteMode,
};

/// Resolves a parsed spec. All cross-reference errors are collected, not just the first.
pub fn resolve(source: &SpecSource, spec: &RawSpec) -> Result<Topology, SpecErrors> {
    resolve_recovered(source, spec, &Dropped::default())
}

/// Resolves a spec the parser left `dropped` entries out of (they were malformed, and
/// reported). The checks whose answer depends on a dropped entry are skipped: a reference
/// to a host whose table was dropped, or a default standing in for a dropped value, is a
/// consequence of the error already reported, not a mistake of its own.
pub fn resolve_recovered(source: &SpecSource, spec: &RawSpec, dropped: &Dropped) -> Result<Topology, SpecErrors> {
    let mut resolver = Resolver { map: source.source_map(), errors: Vec::new(), dropped, groups_incomplete: false };
    let topology = resolver.run(spec);
    if resolver.errors.is_empty() {
        Ok(topology)
    } else {
        Err(SpecErrors::sorted(resolver.errors))
    }
}

struct Resolver<'a> {
    map: SourceMap<'a>,
    errors: Vec<SpecError>,
    dropped: &'a Dropped,
    /// Whether a group was left out, or some of its hosts, for a mistake already reported.
    groups_incomplete: bool,
}

impl Resolver<'_> {
    /// Whether the hosts and their roles are all there: checks that count a tier or look a
    /// name up among the hosts run only then.
    fn hosts_complete(&self) -> bool {
        !self.dropped.hosts_incomplete() && !self.groups_incomplete
    }

    /// Whether none of the dotted keys `paths` was dropped, i.e. their values (or defaults)
    /// are what the user meant.
    fn kept(&self, paths: &[&str]) -> bool {
        !self.dropped.any_under(paths)
    }

    /// `db.suspect_timeout_ms`, checked against the range Galera's failure detection is sane in.
    fn suspect_timeout(&mut self, value: Option<&Located<u64>>) -> u64 {
        let Some(value) = value else { return DEFAULT_SUSPECT_TIMEOUT_MS };
        if !SUSPECT_TIMEOUT_MS_RANGE.contains(&value.value) {
            self.error(value.span.clone(), format!("db.suspect_timeout_ms = {} is out of range", value.value))
                .expected(format!("{} to {} milliseconds", SUSPECT_TIMEOUT_MS_RANGE.start(), SUSPECT_TIMEOUT_MS_RANGE.end()))
                .hint("1000 suits a private LAN; raise it where nodes pause for longer (VM migration, heavy GC) to avoid spurious evictions");
        }
        value.value
    }

    /// `tls.host_certificate_days`: 1 to [`MAX_HOST_CERTIFICATE_DAYS`].
    fn host_certificate_days(&mut self, value: Option<&Located<u32>>) -> u32 {
        let Some(value) = value else { return DEFAULT_HOST_CERTIFICATE_DAYS };
        if value.value == 0 || value.value > MAX_HOST_CERTIFICATE_DAYS {
            self.error(value.span.clone(), format!("tls.host_certificate_days = {} is out of range", value.value))
                .expected(format!("1 to {MAX_HOST_CERTIFICATE_DAYS} days"))
                .hint(format!("{DEFAULT_HOST_CERTIFICATE_DAYS} (the default) with `nixstack secrets rotate` before they expire; `nixstack check` warns 30 days ahead"));
        }
        value.value
    }

    /// `[db.backup]`: the node that runs it (the app's least preferred), schedule, retention
    /// and where the backups go, each value checked where it is written.
    fn backup(&mut self, section: &DbBackupSection, db_hosts: &[String], writers: &[String]) -> DbBackup {
        // A node the app never writes to, else the last writer in the app's preference order.
        let host = db_hosts
            .iter()
            .rev()
            .find(|h| !writers.contains(h))
            .or_else(|| writers.last())
            .or_else(|| db_hosts.last())
            .cloned()
            .unwrap_or_default();
        let schedule = match &section.schedule {
            None => DEFAULT_BACKUP_SCHEDULE.to_string(),
            Some(s) => {
                let ok = !s.value.trim().is_empty()
                    && s.value.chars().all(|c| c.is_ascii_alphanumeric() || " *:,./~-".contains(c));
                if !ok {
                    self.error(s.span.clone(), format!("db.backup.schedule = {:?} is not a calendar event", s.value))
                        .expected("a systemd OnCalendar= expression: letters, digits, spaces and * : , . / ~ -")
                        .hint(
                            "e.g. \"daily\", \"hourly\", \"*-*-* 03:00:00\"; check one with `systemd-analyze calendar`",
                        );
                }
                s.value.clone()
            }
        };
        let keep = match &section.keep {
            None => DEFAULT_BACKUP_KEEP,
            Some(k) => {
                if !BACKUP_KEEP_RANGE.contains(&k.value) {
                    self.error(k.span.clone(), format!("db.backup.keep = {} is out of range", k.value))
                        .expected(format!("{} to {} backups", BACKUP_KEEP_RANGE.start(), BACKUP_KEEP_RANGE.end()))
                        .hint("keep at least one: a backup is only removed after a newer one succeeded");
                }
                k.value
            }
        };
        let target_span = section.target.as_ref().map(|t| t.span.clone()).unwrap_or(0..0);
        let target = section.target.as_ref().map(|t| t.value).unwrap_or_default();
        let target = match target {
            BackupTarget::Local => {
                // A dropped `target` leaves the default, `local`, which a repository does not
                // contradict: the user meant restic.
                let target_kept = self.kept(&["db.backup.target"]);
                if let Some(r) = section.repository.as_ref().filter(|_| target_kept) {
                    self.error(r.span.clone(), "db.backup.repository is for target = \"restic\"")
                        .expected("`path` with target = \"local\"")
                        .hint("set target = \"restic\", or remove `repository`");
                }
                let path = match &section.path {
                    None => DEFAULT_BACKUP_PATH.to_string(),
                    Some(p) => {
                        self.check_backup_path(p, "db.backup.path");
                        p.value.clone()
                    }
                };
                BackupDestination::Local { path }
            }
            BackupTarget::Restic => {
                if let Some(p) = &section.path {
                    self.error(p.span.clone(), "db.backup.path is for target = \"local\"")
                        .expected("`repository` with target = \"restic\"")
                        .hint("name the restic repository in `repository`, and remove `path`");
                }
                let repository = match &section.repository {
                    None => {
                        self.error(target_span, "target = \"restic\" needs db.backup.repository")
                            .expected("repository = a local path or a restic URL (sftp:, s3:, rest:, …)")
                            .hint("e.g. repository = \"/var/backup/restic\"");
                        String::new()
                    }
                    Some(r) => {
                        let ok = !r.value.is_empty()
                            && r.value.chars().all(|c| c.is_ascii_alphanumeric() || "/:._-@+=~%".contains(c));
                        if !ok {
                            self.error(
                                r.span.clone(),
                                format!("db.backup.repository = {:?} is not a restic repository", r.value),
                            )
                            .expected("an absolute path or a restic URL without spaces or quotes")
                            .hint("e.g. \"/var/backup/restic\" or \"sftp:backup@10.0.0.9:/srv/restic\"");
                        } else if !r.value.starts_with('/') && !r.value.contains(':') {
                            self.error(
                                r.span.clone(),
                                format!("db.backup.repository = {:?} is a relative path", r.value),
                            )
                            .expected("an absolute path or a restic URL (sftp:, s3:, rest:, …)")
                            .hint("the backup runs from systemd, whose working directory is /");
                        }
                        r.value.clone()
                    }
                };
                BackupDestination::Restic { repository, password_secret: RESTIC_PASSWORD_SECRET.to_string() }
            }
        };
        DbBackup { host, schedule, keep: keep as u32, target }
    }

    fn check_backup_path(&mut self, path: &Located<String>, key: &str) {
        let safe = path.value.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
        if !path.value.starts_with('/') || !safe || path.value == "/" || path.value.contains("..") {
            self.error(path.span.clone(), format!("{key} = {:?} is not an absolute directory", path.value))
                .expected("an absolute path of letters, digits and / . _ - (not / itself, no ..)")
                .hint(format!("e.g. \"{DEFAULT_BACKUP_PATH}\""));
        }
    }

    fn error(&mut self, span: Range<usize>, message: impl Into<String>) -> ErrorBuilder<'_> {
        let error = self.map.error(span, message);
        self.errors.push(error);
        ErrorBuilder(self.errors.last_mut().expect("just pushed"))
    }

    fn run(&mut self, spec: &RawSpec) -> Topology {
        let stack = self.stack(spec);
        let networks = Networks {
            private: spec.networks.private.value.trunc(),
            public: spec.networks.public.value.trunc(),
            admin: spec.networks.admin.iter().map(|n| n.value).collect(),
            gateway: spec.networks.gateway.as_ref().map(|g| g.value),
            private_gateway: spec.networks.private_gateway.as_ref().map(|g| g.value),
            dns: spec.networks.dns.iter().map(|d| d.value).collect(),
            public6: spec.networks.public6.as_ref().map(|n| n.value.trunc()),
            gateway6: spec.networks.gateway6.as_ref().map(|g| g.value),
        };
        self.check_networks(spec);
        self.check_channel_inputs(spec);
        let mut hosts = self.hosts(spec, &networks);
        self.check_ipv6(spec, &hosts);
        let host_names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();

        let members =
            |role: Role| -> Vec<String> { hosts.iter().filter(|h| h.has(role)).map(|h| h.name.clone()).collect() };
        let (lb_hosts, web_hosts, app_hosts, db_hosts) =
            (members(Role::Lb), members(Role::Web), members(Role::App), members(Role::Db));
        if self.hosts_complete() {
            self.check_sections(spec, &lb_hosts, &web_hosts, &app_hosts, &db_hosts);
        }

        let address_of = |name: &str, hosts: &[Host]| -> Ipv4Addr {
            hosts.iter().find(|h| h.name == name).map(|h| h.address).unwrap_or(Ipv4Addr::UNSPECIFIED)
        };
        let internal_tls = spec.tls.internal.value;
        let host_certificate_days = self.host_certificate_days(spec.tls.host_certificate_days.as_ref());

        let web = spec.web.as_ref().filter(|_| !web_hosts.is_empty()).map(|w| WebTier {
            hosts: web_hosts.clone(),
            root: w.root.value.clone(),
            port: w.port.value,
            status_port: w.status_port.value,
            proxy_app: w.proxy_app.value,
            static_package: w.static_package.as_ref().map(|s| s.value.clone()),
            lab_static: w.lab.as_ref().and_then(|lab| lab.static_dir.as_ref()).map(|d| d.value.clone()),
            app_upstream: Vec::new(),
        });
        if let Some(w) = spec.web.as_ref() {
            self.check_web_static(w, spec.app.as_ref());
        }
        let app_port = spec.app.as_ref().map(|a| a.port.value).unwrap_or(8080);
        let mut web = web;
        if let Some(web) = web.as_mut() {
            if web.proxy_app {
                web.app_upstream = app_hosts
                    .iter()
                    .map(|h| Backend { host: h.clone(), address: address_of(h, &hosts), port: app_port })
                    .collect();
            }
        }

        let db = spec.db.as_ref().filter(|_| !db_hosts.is_empty()).map(|d| {
            let bootstrap = self.pick_member(d.bootstrap.as_ref(), &db_hosts, "db", "db.bootstrap");
            let primary = self.pick_member(d.primary.as_ref(), &db_hosts, "db", "db.primary");
            let writers = match d.write_mode {
                WriteMode::MultiPrimary => db_hosts.clone(),
                WriteMode::SinglePrimary => vec![primary],
            };
            let databases: Vec<String> = d.databases.iter().map(|n| n.value.clone()).collect();
            // A dropped `databases` list leaves every user's database unlisted.
            let databases_kept = self.kept(&["db.databases"]);
            for user in d.users.iter().filter(|_| databases_kept) {
                if !databases.contains(&user.database.value) {
                    let hint = match nearest(&user.database, databases.iter().map(String::as_str)) {
                        Some(n) => format!("did you mean `{n}`?"),
                        None => format!("add \"{}\" to db.databases", user.database.value),
                    };
                    self.error(
                        user.database.span.clone(),
                        format!(
                            "user `{}` names database `{}`, which db.databases does not create",
                            user.name.value, user.database.value
                        ),
                    )
                    .expected(format!("one of db.databases: {}", quoted_list(&databases)))
                    .hint(hint);
                }
            }
            for name in d.databases.iter().chain(d.users.iter().map(|u| &u.name)) {
                if !is_sql_identifier(name) {
                    self.error(name.span.clone(), format!("`{}` is not a safe database identifier", name.value))
                        .expected("letters, digits and `_`, starting with a letter, at most 64 characters")
                        .hint("rename it, e.g. with `_` instead of `-`");
                }
            }
            let backup = d.backup.as_ref().map(|b| self.backup(b, &db_hosts, &writers));
            DbTier {
                hosts: db_hosts.clone(),
                cluster_name: d.cluster_name.as_ref().map(|c| c.value.clone()).unwrap_or_else(|| stack.name.clone()),
                sst_method: d.sst_method,
                write_mode: d.write_mode,
                writers,
                bootstrap,
                peers: db_hosts
                    .iter()
                    .map(|h| Backend {
                        host: h.clone(),
                        address: address_of(h, &hosts),
                        port: ports::GALERA_REPLICATION,
                    })
                    .collect(),
                databases,
                users: d
                    .users
                    .iter()
                    .map(|u| DbUser { name: u.name.value.clone(), database: u.database.value.clone() })
                    .collect(),
                allow_unsafe_size: d.allow_unsafe_size,
                suspect_timeout_ms: self.suspect_timeout(d.suspect_timeout_ms.as_ref()),
                backup,
            }
        });
        if let (Some(d), Some(tier)) = (spec.db.as_ref(), db.as_ref()) {
            if self.hosts_complete() && self.kept(&["db.allow_unsafe_size"]) {
                self.check_galera_size(spec, d.allow_unsafe_size, &tier.hosts);
            }
        }

        let app = spec.app.as_ref().filter(|_| !app_hosts.is_empty()).map(|a| AppTier {
            hosts: app_hosts.clone(),
            source: a.source.as_ref().map(|s| s.value.clone()),
            package: if a.source.is_some() { SOURCE_APP_ATTRIBUTE.into() } else { DEMO_APP_ATTRIBUTE.into() },
            source_package: a
                .source
                .as_ref()
                .map(|_| a.package.as_ref().map_or_else(|| "default".to_string(), |p| p.value.clone())),
            command: match (&a.source, &a.command) {
                (_, Some(command)) => Some(command.value.clone()),
                (Some(_), None) => None,
                (None, None) => Some(DEMO_APP_ATTRIBUTE.into()),
            },
            lab_command: a.lab.as_ref().map(|lab| lab.command.value.clone()),
            migrate: a.migrate.as_ref().map(|m| m.split_whitespace().map(str::to_string).collect()),
            lab_migrate: a.lab.as_ref().and_then(|lab| lab.migrate.as_ref()).map(|m| m.value.clone()),
            port: a.port.value,
            terminator: internal_tls,
            listen_port: a.listen_port.value,
            env: a.env.clone(),
            health_path: a.health_path.value.clone(),
            db_writers: db
                .as_ref()
                .map(|d| {
                    d.writers
                        .iter()
                        .map(|h| Backend { host: h.clone(), address: address_of(h, &hosts), port: ports::MYSQL })
                        .collect()
                })
                .unwrap_or_default(),
        });

        let lb = spec.lb.as_ref().filter(|_| !lb_hosts.is_empty()).map(|l| {
            self.check_vip(&l.vip, &networks, &hosts);
            self.check_path(&l.health_path, "lb.health_path");
            let primary = self.pick_member(l.primary.as_ref(), &lb_hosts, "lb", "lb.primary");
            let priorities = lb_hosts
                .iter()
                .filter(|h| **h != primary)
                .enumerate()
                // 100, 90, ... down to 1: keepalived priorities are 1–254, and `10 * i` would
                // overflow a u8 from the 27th load balancer on.
                .map(|(i, h)| (h.clone(), 100usize.saturating_sub(10 * i).max(1) as u8))
                .chain([(primary.clone(), 150)])
                .collect();
            if l.virtual_router_id.value == 0 {
                self.error(l.virtual_router_id.span.clone(), "VRRP virtual router id 0 is reserved")
                    .expected("an integer from 1 to 255")
                    .hint("pick one that no other VRRP router on the public network uses, e.g. 51");
            }
            // Point at the mode the user wrote, else at the table the key belongs in.
            let mode_span = Some(l.tls.mode.span.clone())
                .filter(|span| !span.is_empty())
                .or_else(|| self.section_span("lb.tls"))
                .or_else(|| self.section_span("lb"))
                .unwrap_or_else(|| l.vip.span.clone());
            let tls_kept = self.kept(&["lb.tls"]);
            match (l.tls.mode.value, &l.tls.acme_email, &l.tls.certificate) {
                _ if !tls_kept => {}
                (crate::spec::TlsMode::Acme, None, _) => {
                    self.error(mode_span, "lb.tls.mode = \"acme\" needs an account email")
                        .expected("lb.tls.acme_email")
                        .hint("add `acme_email = \"ops@example.com\"` under [lb.tls], or use mode = \"provided\"");
                }
                (crate::spec::TlsMode::Provided, _, None) => {
                    self.error(mode_span, "lb.tls.mode = \"provided\" needs a certificate secret")
                        .expected("lb.tls.certificate")
                        .hint("add `certificate = \"public-certificate\"` under [lb.tls] and put the PEM bundle in secrets/");
                }
                _ => {}
            }
            LbTier {
                hosts: lb_hosts.clone(),
                vip: l.vip.value,
                vip6: l.vip6.as_ref().map(|v| v.value),
                algorithm: l.algorithm,
                health_path: l.health_path.value.clone(),
                tls: l.tls.mode.value,
                acme_email: l.tls.acme_email.as_ref().map(|e| e.value.clone()),
                certificate_secret: l.tls.certificate.as_ref().map(|c| c.value.clone()),
                virtual_router_id: l.virtual_router_id.value,
                priorities,
                primary,
                backends: web
                    .as_ref()
                    .map(|w| {
                        w.hosts
                            .iter()
                            .map(|h| Backend { host: h.clone(), address: address_of(h, &hosts), port: w.port })
                            .collect()
                    })
                    .unwrap_or_default(),
                stats_port: ports::HAPROXY_STATS,
            }
        });
        if let Some(app_spec) = spec.app.as_ref() {
            self.check_path(&app_spec.health_path, "app.health_path");
            self.check_app_source(app_spec);
        }

        let firewall_hosts = self.host_subset(spec.firewall.hosts.as_ref(), &host_names, "firewall.hosts");
        let monitoring = spec.monitoring.as_ref().map(|m| Monitoring {
            agent: m.agent,
            endpoint_secret: m.endpoint_secret.value.clone(),
            endpoint_cidr: m.endpoint_cidr.value,
            hosts: self.host_subset(m.hosts.as_ref(), &host_names, "monitoring.hosts"),
        });
        for host in &mut hosts {
            host.firewall = firewall_hosts.contains(&host.name);
            host.monitored = monitoring.as_ref().is_some_and(|m| m.hosts.contains(&host.name));
            host.services = services_of(host, web.as_ref(), app.as_ref());
        }
        if self.kept(&["web.port", "web.status_port", "app.port"]) {
            self.check_port_conflicts(spec, &hosts);
        }
        self.check_secret_names(spec);
        let deploy_tools = self.deploy_tools(spec);
        let nixstack_flake = spec.deploy.nixstack.as_ref().map(|reference| {
            self.check_flake_reference(
                reference,
                "deploy.nixstack",
                "\"github:acme/nixstack\" or \"github:acme/nixstack/v0.1.0\" (a tag pins it)",
            );
            reference.value.clone()
        });
        let secrets = self.secrets(spec, &stack);

        let mut topology = Topology {
            stack,
            networks,
            internal_tls,
            host_certificate_days,
            hosts,
            lb,
            web,
            app,
            db,
            monitoring,
            flows: Vec::new(),
            firewall: BTreeMap::new(),
            certificates: Vec::new(),
            start_order: Vec::new(),
            deploy_tools,
            nixstack_flake,
            secrets,
        };
        topology.flows = flows::flows(&topology);
        topology.firewall = self.firewalls(spec, &topology);
        topology.certificates = certificates(&topology);
        topology.start_order = start_order(&topology);
        topology
    }

    fn stack(&mut self, spec: &RawSpec) -> Stack {
        let s = &spec.stack;
        if !is_dns_label(&s.name) {
            self.error(s.name.span.clone(), format!("stack name `{}` is not a valid name", s.name.value))
                .expected("lowercase letters, digits and `-`, starting with a letter, at most 63 characters")
                .hint("e.g. name = \"shop\"");
        }
        if !s.domain.split('.').all(is_dns_label) || !s.domain.contains('.') {
            self.error(s.domain.span.clone(), format!("`{}` is not a domain name", s.domain.value))
                .expected("a fully qualified DNS name such as \"shop.example.com\"")
                .hint("lowercase labels separated by dots, no scheme and no path");
        }
        self.check_channel(&s.channel);
        self.check_system(&s.system);
        let version_ok = s
            .state_version
            .split_once('.')
            .is_some_and(|(y, m)| y.len() == 2 && y.chars().all(|c| c.is_ascii_digit()) && (m == "05" || m == "11"));
        if !version_ok {
            self.error(s.state_version.span.clone(), format!("`{}` is not a NixOS release", s.state_version.value))
                .expected("a release like \"25.11\" (YY.05 or YY.11)")
                .hint("use the release of the first install and never change it afterwards");
        }
        for key in &s.ssh_keys {
            let valid = key.split_whitespace().count() >= 2
                && ["ssh-ed25519 ", "ssh-rsa ", "ecdsa-sha2-", "sk-ssh-ed25519@", "sk-ecdsa-"]
                    .iter()
                    .any(|p| key.starts_with(p));
            if key.contains("PRIVATE KEY") {
                self.error(key.span.clone(), "this is a private key")
                    .expected("an SSH public key, one line like \"ssh-ed25519 AAAA... user@host\"")
                    .hint("remove it from stack.toml now (and rotate it if this file was shared); paste ~/.ssh/id_ed25519.pub instead");
            } else if !valid || key.contains('\n') {
                self.error(key.span.clone(), "not an SSH public key")
                    .expected("one line like \"ssh-ed25519 AAAA... user@host\"")
                    .hint("paste the contents of ~/.ssh/id_ed25519.pub (the public half)");
            }
        }
        Stack {
            name: s.name.value.clone(),
            domain: s.domain.value.clone(),
            channel: s.channel.value.clone(),
            system: s.system.value.clone(),
            state_version: s.state_version.value.clone(),
            image: s.image,
            deploy_user: s.deploy_user.clone(),
            ssh_keys: s.ssh_keys.iter().map(|k| k.value.clone()).collect(),
        }
    }

    /// A `channel` of the stack, a host or a group: a branch of github:NixOS/nixpkgs.
    fn check_channel(&mut self, channel: &Located<String>) {
        let channel_ok = channel.starts_with("nixos-") || channel.starts_with("nixpkgs-");
        if !channel_ok {
            self.error(channel.span.clone(), format!("`{}` is not a NixOS channel", channel.value))
                .expected("a nixpkgs branch like \"nixos-25.11\" or \"nixos-unstable\"")
                .hint("the flake pins github:NixOS/nixpkgs/<channel>");
        }
    }

    /// A `system` of the stack, a host or a group: one NixOS builds servers for.
    fn check_system(&mut self, system: &Located<String>) {
        const SYSTEMS: [&str; 2] = ["x86_64-linux", "aarch64-linux"];
        if !SYSTEMS.contains(&system.as_str()) {
            let hint =
                nearest(system, SYSTEMS).map_or("servers are Linux".to_string(), |n| format!("did you mean `{n}`?"));
            self.error(system.span.clone(), format!("unsupported system `{}`", system.value))
                .expected("\"x86_64-linux\" or \"aarch64-linux\"")
                .hint(hint);
        }
    }

    /// Every channel of the spec gets a flake input of its own name: two channels that
    /// [`nixpkgs_input`] names alike (`nixos-25.05` and `nixos-25-05`) cannot both be pinned.
    fn check_channel_inputs(&mut self, spec: &RawSpec) {
        let stack = &spec.stack.channel;
        let pinned = spec.hosts.values().filter_map(|h| h.channel.as_ref());
        let pinned = pinned.chain(spec.groups.values().filter_map(|g| g.channel.as_ref()));
        let mut named: BTreeMap<String, &str> = BTreeMap::new();
        named.insert(nixpkgs_input(stack, stack), stack);
        let mut pinned: Vec<&Located<String>> = pinned.collect();
        pinned.sort_by_key(|channel| channel.span.start);
        for channel in pinned {
            let input = nixpkgs_input(channel, stack);
            match named.get(input.as_str()) {
                Some(other) if *other != channel.as_str() => {
                    let other = other.to_string();
                    self.error(
                        channel.span.clone(),
                        format!("channel `{}` gets the flake input `{input}`, as `{other}` does", channel.value),
                    )
                    .expected("channels that differ in more than `.` against `-`")
                    .hint(format!("write the branch as github:NixOS/nixpkgs names it, e.g. `{other}`"));
                }
                Some(_) => {}
                None => {
                    named.insert(input, channel.as_str());
                }
            }
        }
    }

    fn check_networks(&mut self, spec: &RawSpec) {
        let n = &spec.networks;
        for net in [&n.private, &n.public] {
            if net.value.prefix_len() > 29 {
                self.error(net.span.clone(), format!("network {} is too small for a stack", net.value))
                    .expected("a prefix of /29 or shorter")
                    .hint("use e.g. a /24");
            }
        }
        if n.private.value.trunc().contains(&n.public.value.network())
            || n.public.value.trunc().contains(&n.private.value.network())
        {
            self.error(
                n.public.span.clone(),
                format!("public network {} overlaps private network {}", n.public.value, n.private.value),
            )
            .expected("two disjoint networks")
            .hint("the public network faces clients; keep it apart from the private one");
        }
        for admin in &n.admin {
            if admin.value.prefix_len() == 0 {
                self.error(admin.span.clone(), "admin network 0.0.0.0/0 opens SSH to the whole internet")
                    .expected("the networks your operators connect from")
                    .hint("list your office or VPN ranges, e.g. \"198.51.100.0/24\"");
            }
        }
        if let Some(gateway) = &n.gateway {
            if !n.public.value.contains(&gateway.value) {
                self.error(gateway.span.clone(), format!("gateway {} is outside the public network {}", gateway.value, n.public.value))
                    .expected(format!("an address in {}", n.public.value))
                    .hint("the gateway is the router the load balancers reach the internet through; a router of the private network is networks.private_gateway");
            }
        }
        if let Some(gateway) = &n.private_gateway {
            let private = n.private.value.trunc();
            if !private.contains(&gateway.value) {
                self.error(gateway.span.clone(), format!("private gateway {} is outside the private network {private}", gateway.value))
                    .expected(format!("an address in {private}"))
                    .hint("the private gateway is the router (or NAT gateway) the hosts without a public address reach the internet through; a router of the public network is networks.gateway");
            } else if gateway.value == private.network() || gateway.value == private.broadcast() {
                self.error(
                    gateway.span.clone(),
                    format!("private gateway {} is the network or broadcast address of {private}", gateway.value),
                )
                .expected(format!("a host address in {private}"))
                .hint("routers have host addresses, often the first one (.1)");
            }
        }
        for server in &n.dns {
            if server.value.is_unspecified() || server.value.is_broadcast() || server.value.is_multicast() {
                self.error(server.span.clone(), format!("{} is not a DNS server address", server.value))
                    .expected("the unicast address of a DNS resolver")
                    .hint("e.g. dns = [\"10.10.0.2\"]");
            }
        }
    }

    fn hosts(&mut self, spec: &RawSpec, networks: &Networks) -> Vec<Host> {
        let private = spec.networks.private.value.trunc();
        let public = spec.networks.public.value.trunc();
        let mut used_private: BTreeMap<Ipv4Addr, &Located<String>> = BTreeMap::new();
        let mut used_public: BTreeMap<Ipv4Addr, &Located<String>> = BTreeMap::new();
        let mut reserved: BTreeSet<Ipv4Addr> = networks.gateway.into_iter().chain(networks.private_gateway).collect();
        if let Some(lb) = &spec.lb {
            reserved.insert(lb.vip.value);
        }
        let groups = self.expand_groups(spec, private);
        if spec.hosts.is_empty() && spec.groups.is_empty() && self.kept(&["hosts", "groups"]) {
            self.error(0..0, "the spec has no hosts")
                .expected("a [hosts.<name>] or a [groups.<name>] table")
                .hint("add one, e.g. `[hosts.web1]` / `roles = [\"web\"]`, or `[groups.web]` / `count = 3` / `roles = [\"web\"]`");
        }

        for (name, host) in &spec.hosts {
            if !is_dns_label(name) {
                self.error(name.span.clone(), format!("host name `{}` is not a valid hostname", name.value))
                    .expected("lowercase letters, digits and `-`, starting with a letter, at most 63 characters")
                    .hint("NixOS networking.hostName must be a DNS label");
            }
            // A list emptied by dropping its unknown roles was not written empty.
            let roles_kept = self.kept(&[&format!("hosts.{}.roles", name.value)]);
            if host.roles.value.is_empty() && roles_kept {
                self.error(host.roles.span.clone(), format!("host `{}` has no roles", name.value))
                    .expected("at least one of \"lb\", \"web\", \"app\", \"db\"")
                    .hint("remove the host or give it a role");
            }
            let mut seen = BTreeSet::new();
            for role in &host.roles.value {
                if !seen.insert(role.value) {
                    self.error(
                        role.span.clone(),
                        format!("role `{}` listed twice on host `{}`", role.value, name.value),
                    )
                    .expected("each role once")
                    .hint("remove the repeated role");
                }
            }
            if let Some(channel) = &host.channel {
                self.check_channel(channel);
            }
            if let Some(system) = &host.system {
                self.check_system(system);
            }
            if let Some(address) = &host.address {
                self.check_address(address, private, "private", name, &mut used_private);
                if reserved.contains(&address.value) {
                    self.error(
                        address.span.clone(),
                        format!(
                            "address {} of host `{}` is reserved (virtual IP or gateway)",
                            address.value, name.value
                        ),
                    )
                    .expected("an address no other part of the stack uses")
                    .hint("pick another address or omit it to have one allocated");
                }
            }
            if let Some(address) = &host.public_address {
                self.check_address(address, public, "public", name, &mut used_public);
                // A public address equal to the VIP is reported by check_vip.
                if networks.gateway == Some(address.value) {
                    self.error(
                        address.span.clone(),
                        format!("public address {} of host `{}` is the gateway", address.value, name.value),
                    )
                    .expected("an address no other part of the stack uses")
                    .hint("pick another address or omit it to have one allocated");
                }
            }
        }

        let mut taken_private = Pool::taken(used_private.keys().copied().chain(reserved.iter().copied()));
        let mut taken_public = Pool::taken(used_public.keys().copied().chain(reserved.iter().copied()));
        let mut hosts = Vec::new();
        // Groups with a network of their own allocate first, so that the explicit hosts'
        // addresses (from all of networks.private) do not use up a group's part.
        for group in groups.iter().filter(|group| group.own_network) {
            self.group_hosts(group, &spec.stack, networks, &mut taken_private, &mut taken_public, &mut hosts);
        }
        let mut macs: BTreeMap<String, String> = BTreeMap::new();
        for (name, host) in &spec.hosts {
            let roles: Vec<Role> =
                host.roles.value.iter().map(|r| r.value).collect::<BTreeSet<_>>().into_iter().collect();
            let address = match &host.address {
                Some(a) => a.value,
                None => self.allocate(private, &mut taken_private, name, "networks.private"),
            };
            let public_address = match &host.public_address {
                Some(a) => Some(a.value),
                None if roles.contains(&Role::Lb) => {
                    Some(self.allocate(public, &mut taken_public, name, "networks.public"))
                }
                None => None,
            };
            let ssh_target = host.ssh.as_ref().map(|s| s.value.clone()).unwrap_or_else(|| format!("root@{address}"));
            if let Some(ssh) = &host.ssh {
                if ssh.is_empty() || ssh.contains(char::is_whitespace) {
                    self.error(ssh.span.clone(), "not an SSH target")
                        .expected("`user@host` or `user@host:port`")
                        .hint("e.g. ssh = \"root@10.10.0.11\"");
                }
            }
            self.check_macs(name, host, public_address.is_some(), &mut macs);
            if let Some(disk) = &host.disk {
                if !disk.starts_with("/dev/") {
                    self.error(disk.span.clone(), format!("disk `{}` is not a device path", disk.value))
                        .expected("a whole-disk device such as \"/dev/sda\" or \"/dev/disk/by-id/...\"")
                        .hint("disko partitions and formats this device on `nixstack install`");
                }
            }
            hosts.push(Host {
                name: name.value.clone(),
                address,
                public_address,
                public_address6: host.public_address6.as_ref().map(|a| a.value),
                roles,
                ssh_target,
                disk: host.disk.as_ref().map(|d| d.value.clone()),
                mac: host.mac.as_ref().map(|m| m.value.to_ascii_lowercase()),
                public_mac: host.public_mac.as_ref().map(|m| m.value.to_ascii_lowercase()),
                default_route: default_route(networks, public_address.is_some()),
                firewall: true,
                monitored: false,
                services: Vec::new(),
                group: None,
                channel: host.channel.as_ref().unwrap_or(&spec.stack.channel).value.clone(),
                system: host.system.as_ref().unwrap_or(&spec.stack.system).value.clone(),
                host_key: host.host_key.as_ref().map(|k| normalized_key(k)),
            });
        }
        for group in groups.iter().filter(|group| !group.own_network) {
            self.group_hosts(group, &spec.stack, networks, &mut taken_private, &mut taken_public, &mut hosts);
        }
        // The Topology keeps its hosts sorted by name (Topology::host searches them).
        hosts.sort_by(|a, b| a.name.cmp(&b.name));
        hosts
    }

    /// The host's MACs: well-formed unicast addresses, unique in the stack, a public one only
    /// for a host with a public card, and on a host with two cards both or neither (a card
    /// left to the kernel's naming could take the name the other one is expected under).
    fn check_macs(
        &mut self,
        name: &Located<String>,
        host: &crate::spec::HostSpec,
        public_card: bool,
        seen: &mut BTreeMap<String, String>,
    ) {
        let cards = [(&host.mac, "mac", "private"), (&host.public_mac, "public_mac", "public")];
        for (mac, key, card) in cards {
            let Some(mac) = mac else { continue };
            let octets: Vec<&str> = mac.split(':').collect();
            let well_formed =
                octets.len() == 6 && octets.iter().all(|o| o.len() == 2 && o.chars().all(|c| c.is_ascii_hexdigit()));
            if !well_formed {
                self.error(mac.span.clone(), format!("`{}` is not a MAC address", mac.value))
                    .expected("six hexadecimal byte pairs separated by `:`, e.g. \"52:54:00:12:34:56\"")
                    .hint(format!(
                        "read it on the machine: `cat /sys/class/net/<card>/address` for its {card} network card"
                    ));
                continue;
            }
            let first = u8::from_str_radix(octets[0], 16).unwrap_or(0);
            let normalized = mac.value.to_ascii_lowercase();
            if first & 1 == 1 || normalized == "00:00:00:00:00:00" {
                self.error(mac.span.clone(), format!("{} is not the unicast address of a network card", mac.value))
                    .expected("a card's own (permanent) address: its first byte is even and it is not all zero")
                    .hint(format!(
                        "read it on the machine: `cat /sys/class/net/<card>/address` for its {card} network card"
                    ));
            } else if key == "public_mac" && !public_card {
                self.error(mac.span.clone(), format!("host `{}` has no public card, but a public_mac", name.value))
                    .expected("public_mac only on hosts with a public address (load balancers)")
                    .hint("give the host a public_address, or name its only card with `mac`");
            } else if let Some(other) = seen.insert(normalized, format!("{key} of `{}`", name.value)) {
                self.error(
                    mac.span.clone(),
                    format!("{} is both the {other} and the {key} of `{}`", mac.value, name.value),
                )
                .expected("one MAC per network card")
                .hint("every card has its own address; check for a copy-paste");
            }
        }
        if public_card && host.mac.is_some() != host.public_mac.is_some() {
            let (given, span) = match (&host.mac, &host.public_mac) {
                (Some(mac), None) => ("mac", mac.span.clone()),
                (_, Some(mac)) => ("public_mac", mac.span.clone()),
                (None, None) => unreachable!("one of the two is given"),
            };
            let missing = if given == "mac" { "public_mac" } else { "mac" };
            self.error(
                span,
                format!("host `{}` has two network cards but names only one by MAC ({given})", name.value),
            )
            .expected("both `mac` and `public_mac`, or neither")
            .hint(format!(
                "add `{missing}`: a card left to the kernel's naming can take the name the other one is expected under"
            ));
        }
    }

    fn check_address<'s>(
        &mut self,
        address: &Located<Ipv4Addr>,
        network: Ipv4Net,
        which: &str,
        host: &'s Located<String>,
        used: &mut BTreeMap<Ipv4Addr, &'s Located<String>>,
    ) {
        if !network.contains(&address.value) {
            self.error(
                address.span.clone(),
                format!("address {} of host `{}` is outside the {which} network {network}", address.value, host.value),
            )
            .expected(format!("an address in {network} ({} – {})", first_host(network), last_host(network)))
            .hint(format!("fix the address or widen networks.{which}"));
        } else if address.value == network.network() || address.value == network.broadcast() {
            self.error(
                address.span.clone(),
                format!(
                    "{} is the {} address of {network}",
                    address.value,
                    if address.value == network.network() { "network" } else { "broadcast" }
                ),
            )
            .expected(format!("a host address in {network}"))
            .hint("hosts cannot use the first or last address of a network");
        } else if let Some(other) = used.get(&address.value) {
            let other = other.value.clone();
            self.error(
                address.span.clone(),
                format!("hosts `{other}` and `{}` both use address {}", host.value, address.value),
            )
            .expected("a unique address per host")
            .hint(format!("change one of them, or omit `{which}` addresses to have them allocated"));
        } else {
            used.insert(address.value, host);
        }
    }

    fn allocate(&mut self, network: Ipv4Net, taken: &mut Pool, host: &Located<String>, key: &str) -> Ipv4Addr {
        match taken.next_free(network) {
            Some(address) => address,
            None => {
                self.error(host.span.clone(), format!("no free address left in {network} for host `{}`", host.value))
                    .expected(format!("room in {key}"))
                    .hint(format!("widen {key} or give the host an explicit address"));
                Ipv4Addr::UNSPECIFIED
            }
        }
    }

    fn check_sections(&mut self, spec: &RawSpec, lb: &[String], web: &[String], app: &[String], db: &[String]) {
        let sections = [
            (Role::Lb, spec.lb.is_some(), lb),
            (Role::Web, spec.web.is_some(), web),
            (Role::App, spec.app.is_some(), app),
            (Role::Db, spec.db.is_some(), db),
        ];
        for (role, present, members) in sections {
            if !members.is_empty() && !present {
                let span = role_span(spec, role, &members[0]);
                self.error(
                    span,
                    format!("host `{}` has role `{role}` but the spec has no [{role}] section", members[0]),
                )
                .expected(format!("the [{role}] table"))
                .hint(format!("add `[{role}]` (docs/spec.md lists its keys; an empty table takes the defaults)"));
            }
        }
        for (role, present, members) in sections {
            if present && members.is_empty() {
                let span = self.section_span(role.as_str()).unwrap_or_else(|| match (role, &spec.lb) {
                    (Role::Lb, Some(lb_spec)) => lb_spec.vip.span.clone(),
                    _ => 0..0,
                });
                self.error(span, format!("[{role}] is configured but no host has role `{role}`"))
                    .expected(format!("at least one host with roles = [\"{role}\"]"))
                    .hint(format!("add the role to a host or remove [{role}]"));
            }
        }
        if !lb.is_empty() && web.is_empty() {
            let span = role_span(spec, Role::Lb, &lb[0]);
            self.error(span, "load balancers without web servers have nothing to balance")
                .expected("at least one host with role `web`")
                .hint("add a web host");
        }
    }

    /// The named member of a role, or the first member when unnamed.
    fn pick_member(&mut self, named: Option<&Located<String>>, members: &[String], role: &str, key: &str) -> String {
        match named {
            None => members.first().cloned().unwrap_or_default(),
            Some(name) if members.contains(&name.value) => name.value.clone(),
            Some(_) if !self.hosts_complete() => members.first().cloned().unwrap_or_default(),
            Some(name) => {
                let hint = match nearest(name, members.iter().map(String::as_str)) {
                    Some(n) => format!("did you mean `{n}`?"),
                    None => format!("give host `{}` the role `{role}`, or name one of the {role} hosts", name.value),
                };
                self.error(
                    name.span.clone(),
                    format!("{key} names `{}`, which is not a host with role `{role}`", name.value),
                )
                .expected(format!("one of the {role} hosts: {}", quoted_list(members)))
                .hint(hint);
                members.first().cloned().unwrap_or_default()
            }
        }
    }

    fn host_subset(&mut self, named: Option<&Vec<Located<String>>>, all: &[String], key: &str) -> Vec<String> {
        let Some(named) = named else { return all.to_vec() };
        let mut subset = BTreeSet::new();
        for name in named {
            if all.contains(&name.value) {
                subset.insert(name.value.clone());
            } else if self.hosts_complete() {
                let hint = match nearest(name, all.iter().map(String::as_str)) {
                    Some(n) => format!("did you mean `{n}`?"),
                    None => "add the host under [hosts] or remove it here".to_string(),
                };
                self.error(name.span.clone(), format!("{key} names `{}`, which is not a host", name.value))
                    .expected(format!("one of the hosts: {}", quoted_list(all)))
                    .hint(hint);
            }
        }
        subset.into_iter().collect()
    }

    fn check_galera_size(&mut self, spec: &RawSpec, allowed: bool, members: &[String]) {
        let n = members.len();
        if allowed || (n >= 3 && n % 2 == 1) {
            return;
        }
        // The [db] table is where both fixes go (more hosts aside): allow_unsafe_size.
        let last = members.last().cloned().unwrap_or_default();
        let span = self.section_span("db").unwrap_or_else(|| role_span(spec, Role::Db, &last));
        let problem = if n < 3 {
            format!("only {n} node{}", if n == 1 { "" } else { "s" })
        } else {
            format!("an even number of nodes ({n})")
        };
        self.error(span, format!("the Galera cluster has {problem}: {}", quoted_list(members)))
            .expected("an odd number of db hosts, at least 3, so that a network split keeps a majority")
            .hint(if n < 3 { "add db hosts to reach 3, or set db.allow_unsafe_size = true to accept losing writes when one node fails" } else { "add or remove one db host, or set db.allow_unsafe_size = true" });
    }

    /// The public side's IPv6: `networks.public6`, `gateway6`, the load balancers'
    /// `public_address6` and `lb.vip6` come together, each inside the prefix, none twice.
    fn check_ipv6(&mut self, spec: &RawSpec, hosts: &[Host]) {
        let prefix = spec.networks.public6.as_ref().map(|p| p.value.trunc());
        if let Some(public6) = &spec.networks.public6 {
            let net = public6.value.trunc();
            let addr = net.network();
            if net.prefix_len() > 126
                || addr.is_multicast()
                || addr.is_loopback()
                || (addr.segments()[0] & 0xffc0) == 0xfe80
            {
                self.error(public6.span.clone(), format!("{} is not a public IPv6 prefix", public6.value))
                    .expected("a global (or unique local) IPv6 prefix of length 126 or shorter")
                    .hint("the prefix your provider routes to the load balancers' network, e.g. \"2001:db8:10::/64\"");
            }
        }
        let lb_span = self.section_span("lb");
        let inside = |address: &Ipv6Addr| prefix.is_some_and(|p| p.contains(address));
        let mut used: BTreeMap<Ipv6Addr, String> = BTreeMap::new();
        if let Some(gateway) = &spec.networks.gateway6 {
            let link_local = (gateway.value.segments()[0] & 0xffc0) == 0xfe80;
            match prefix {
                None => {
                    self.error(gateway.span.clone(), "networks.gateway6 without networks.public6")
                        .expected("networks.public6, the IPv6 prefix the gateway routes")
                        .hint("add public6 = \"<prefix>/64\" under [networks], or drop gateway6");
                }
                Some(p) if !link_local && !p.contains(&gateway.value) => {
                    self.error(gateway.span.clone(), format!("IPv6 gateway {} is outside {p}", gateway.value))
                        .expected(format!("an address in {p}, or the router's link-local fe80:: address"))
                        .hint("routers advertise a link-local address; both work as a default route");
                }
                _ => {}
            }
            used.insert(gateway.value, "the IPv6 gateway".into());
        }
        for (name, host) in &spec.hosts {
            let Some(address) = &host.public_address6 else { continue };
            let is_lb = host.roles.value.iter().any(|r| r.value == Role::Lb);
            let Some(net) = prefix else {
                self.error(
                    address.span.clone(),
                    format!("host `{}` has a public_address6 but the stack has no networks.public6", name.value),
                )
                .expected("networks.public6, the prefix the address is in")
                .hint("add public6 = \"<prefix>/64\" under [networks]");
                continue;
            };
            if !inside(&address.value) {
                self.error(
                    address.span.clone(),
                    format!("public_address6 {} of host `{}` is outside {net}", address.value, name.value),
                )
                .expected(format!("an address in {net}"))
                .hint("the load balancers' public IPv6 addresses are in networks.public6");
            } else if !is_lb {
                self.error(
                    address.span.clone(),
                    format!(
                        "host `{}` is not a load balancer: only load balancers have a public IPv6 address",
                        name.value
                    ),
                )
                .expected("public_address6 on hosts with the \"lb\" role")
                .hint("remove it, or give the host the \"lb\" role");
            } else if let Some(other) = used.insert(address.value, format!("host `{}`", name.value)) {
                self.error(
                    address.span.clone(),
                    format!("public_address6 {} of host `{}` is also {other}", address.value, name.value),
                )
                .expected("an address no other part of the stack uses")
                .hint("give each load balancer its own address");
            }
        }
        let Some(lb) = &spec.lb else { return };
        match (&lb.vip6, &spec.networks.public6) {
            (Some(vip6), None) => {
                self.error(vip6.span.clone(), "lb.vip6 without networks.public6")
                    .expected("networks.public6, the IPv6 prefix of the public network")
                    .hint("add public6 = \"<prefix>/64\" under [networks], or drop vip6");
            }
            (None, Some(public6)) if hosts.iter().any(|h| h.has(Role::Lb)) => {
                self.error(public6.span.clone(), "networks.public6 without lb.vip6")
                    .expected("lb.vip6: the virtual IPv6 address the clients connect to")
                    .hint(format!(
                        "add vip6 = \"{}\" under [lb]",
                        public6.value.trunc().hosts().nth(9).unwrap_or(public6.value.addr())
                    ));
            }
            (Some(vip6), Some(_)) => {
                if !inside(&vip6.value) {
                    self.error(
                        vip6.span.clone(),
                        format!("virtual IPv6 {} is outside {}", vip6.value, prefix.unwrap()),
                    )
                    .expected(format!("an address in {}", prefix.unwrap()))
                    .hint("clients reach the VIP6 on the public network; pick a free address there");
                } else if let Some(other) = used.get(&vip6.value) {
                    self.error(vip6.span.clone(), format!("virtual IPv6 {} is also {other}", vip6.value))
                        .expected("an address no host or router uses")
                        .hint("the VIP6 moves between load balancers; it must not be any host's own address");
                }
                for host in hosts.iter().filter(|h| h.has(Role::Lb) && h.public_address6.is_none()) {
                    let span = spec
                        .hosts
                        .keys()
                        .find(|n| n.value == host.name)
                        .map(|n| n.span.clone())
                        .or_else(|| lb_span.clone())
                        .unwrap_or_else(|| vip6.span.clone());
                    self.error(span, format!("load balancer `{}` has no public_address6", host.name))
                        .expected("public_address6 on every load balancer of a stack with lb.vip6")
                        .hint(if host.group.is_some() {
                            "declare load balancers as [hosts.<name>] tables: a group's hosts get no IPv6 address"
                                .to_string()
                        } else {
                            format!(
                                "add public_address6 = \"<an address in {}>\" under [hosts.{}]",
                                prefix.unwrap(),
                                host.name
                            )
                        });
                }
            }
            _ => {}
        }
    }

    fn check_vip(&mut self, vip: &Located<Ipv4Addr>, networks: &Networks, hosts: &[Host]) {
        let public = networks.public;
        if !public.contains(&vip.value) {
            self.error(vip.span.clone(), format!("virtual IP {} is outside the public network {public}", vip.value))
                .expected(format!("an address in {public}"))
                .hint("clients reach the VIP on the public network; pick a free address there");
        } else if vip.value == public.network() || vip.value == public.broadcast() {
            let which = if vip.value == public.network() { "network" } else { "broadcast" };
            self.error(vip.span.clone(), format!("virtual IP {} is the {which} address of {public}", vip.value))
                .expected(format!("a host address in {public} ({} – {})", first_host(public), last_host(public)))
                .hint("the first and last address of a network cannot be assigned to an interface");
        }
        if networks.gateway == Some(vip.value) {
            self.error(vip.span.clone(), format!("virtual IP {} is the gateway", vip.value))
                .expected("an address no other part of the stack uses")
                .hint("the gateway is the router in front of the load balancers; give the VIP another free address");
        }
        if let Some(host) = hosts.iter().find(|h| h.address == vip.value || h.public_address == Some(vip.value)) {
            self.error(vip.span.clone(), format!("virtual IP {} collides with host `{}`", vip.value, host.name))
                .expected("an address no host uses")
                .hint("the VIP moves between load balancers; it must not be any host's own address");
        }
    }

    /// `[app] source` is a flake reference Nix accepts as an input URL; `package` without a
    /// source names an overlay attribute nixstack does not have.
    fn check_app_source(&mut self, app: &crate::spec::AppSection) {
        if let Some(migrate) = &app.migrate {
            let program = migrate.split_whitespace().next().unwrap_or_default();
            if program.is_empty() || program.contains('/') || migrate.contains(['"', '\\', '$', '`', '\'', ';']) {
                self.error(
                    migrate.span.clone(),
                    format!("app.migrate `{}` is not a command of the package", migrate.value),
                )
                .expected("a program in the package's bin/ and its arguments, separated by spaces")
                .hint(
                    "e.g. migrate = \"shop-server migrate\" (no quotes, `$`, `;` or paths: it is not run by a shell)",
                );
            }
            if app.source.is_some() && app.lab.as_ref().is_some_and(|lab| lab.migrate.is_none()) {
                self.error(migrate.span.clone(), "app.migrate has no [app.lab] migrate")
                    .expected("[app.lab] migrate: how the lab runs the migration without Nix")
                    .hint("e.g. migrate = [\"./shop/bin/server\", \"migrate\"] under [app.lab]");
            }
        }
        if let Some(lab_migrate) = app.lab.as_ref().and_then(|lab| lab.migrate.as_ref()) {
            if app.migrate.is_none() {
                self.error(lab_migrate.span.clone(), "app.lab.migrate without app.migrate")
                    .expected("[app] migrate, the migration the hosts run")
                    .hint("set migrate under [app] too, or drop it here");
            } else if lab_migrate.value.is_empty() {
                self.error(lab_migrate.span.clone(), "app.lab.migrate is empty")
                    .expected("the program and its arguments, e.g. [\"./shop/bin/server\", \"migrate\"]")
                    .hint("the lab runs it once with the app's environment and credentials");
            }
        }
        if let Some(source) = &app.source {
            self.check_flake_reference(
                source,
                "app.source",
                "\"github:acme/shop\", \"git+https://git.example.com/shop?ref=main\" or \"path:./shop\"",
            );
            if let Some(lab) = &app.lab {
                if lab.command.value.is_empty() {
                    self.error(lab.command.span.clone(), "app.lab.command is empty")
                        .expected("the program and its arguments, e.g. [\"./shop/bin/server\"]")
                        .hint("the lab runs it with the app's environment and credentials");
                }
            }
        } else if let Some(package) = &app.package {
            if package.value != DEMO_APP_ATTRIBUTE {
                self.error(package.span.clone(), format!("app.package `{}` names no package", package.value))
                    .expected("app.source, the flake the package comes from")
                    .hint("set `source = \"github:org/repo\"` (package then names its packages.<system> attribute), or drop `package` for the demo app");
            }
        }
    }

    fn check_web_static(&mut self, web: &crate::spec::WebSection, app: Option<&crate::spec::AppSection>) {
        if let Some(attribute) = &web.static_package {
            let valid = !attribute.is_empty()
                && attribute.split('.').all(|part| {
                    !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                });
            if !valid {
                self.error(
                    attribute.span.clone(),
                    format!("web.static `{}` is not a package attribute", attribute.value),
                )
                .expected("an attribute under the app flake's packages.<system>, e.g. \"static\"")
                .hint("letters, digits, `-`, `_`, parts separated by `.`; not a path");
            } else if app.and_then(|a| a.source.as_ref()).is_none() && attribute.value != DEMO_STATIC_ATTRIBUTE {
                self.error(attribute.span.clone(), format!("web.static `{}` names no package", attribute.value))
                    .expected(format!("[app] source, the flake whose packages.<system> holds it (without one, only the demo app's \"{DEMO_STATIC_ATTRIBUTE}\")"))
                    .hint("set `source = \"github:org/repo\"` under [app], or drop `static` (the app then serves every path)");
            }
        }
        if let Some(dir) = web.lab.as_ref().and_then(|lab| lab.static_dir.as_ref()) {
            if web.static_package.is_none() {
                self.error(dir.span.clone(), "web.lab.static without web.static")
                    .expected("[web] static, the package the hosts serve")
                    .hint("set static under [web] too, or drop it here");
            } else if dir.is_empty() || dir.contains('\n') {
                self.error(dir.span.clone(), "web.lab.static is not a directory")
                    .expected("a directory, e.g. \"./shop/public\"")
                    .hint("absolute, or relative to where `nixstack lab up` runs");
            }
        }
    }

    fn check_path(&mut self, path: &Located<String>, key: &str) {
        if !path.starts_with('/') || path.contains(char::is_whitespace) || path.contains('"') {
            self.error(path.span.clone(), format!("{key} `{}` is not an HTTP path", path.value))
                .expected("an absolute path like \"/health\"")
                .hint("start it with `/`, no spaces or quotes");
        }
    }

    fn check_port_conflicts(&mut self, spec: &RawSpec, hosts: &[Host]) {
        // One error per conflicting setting, naming every host it hits (the whiteboard's
        // three identical servers would otherwise give three identical errors).
        // (span of the setting, first service, second service, port) → hosts.
        type Conflict = ((usize, usize), String, String, u16);
        let mut conflicts: BTreeMap<Conflict, Vec<String>> = BTreeMap::new();
        for host in hosts {
            let mut by_port: BTreeMap<(u16, Proto), &Service> = BTreeMap::new();
            for service in &host.services {
                if let Some(first) = by_port.get(&(service.port, service.proto)) {
                    let span = service_span(spec, &service.name)
                        .or_else(|| service_span(spec, &first.name))
                        .unwrap_or_else(|| roles_of(spec, &host.name).map_or(0..0, |roles| roles.span.clone()));
                    conflicts
                        .entry(((span.start, span.end), first.name.clone(), service.name.clone(), service.port))
                        .or_default()
                        .push(host.name.clone());
                } else {
                    by_port.insert((service.port, service.proto), service);
                }
            }
        }
        for (((start, end), first, second, port), hosts) in conflicts {
            let span = start..end;
            let who = if hosts.len() == 1 {
                format!("host `{}` runs", hosts[0])
            } else {
                format!("hosts {} run", quoted_list(&hosts))
            };
            self.error(span, format!("{who} {first} and {second} on port {port}"))
                .expected("one service per port on a host")
                .hint("move one of the services to another port, or the roles to different hosts");
        }
    }

    /// Span of the header of table `path` (e.g. `db`, `lb.tls`), or of its first dotted
    /// key at the top of the file; `None` for inline tables.
    fn section_span(&self, path: &str) -> Option<Range<usize>> {
        let text = self.map.text;
        let mut offset = 0;
        let mut before_headers = true;
        for line in text.split_inclusive('\n') {
            let start = offset;
            offset += line.len();
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            if trimmed.starts_with('[') && !trimmed.starts_with("[[") {
                before_headers = false;
                let Some(close) = trimmed.find(']') else { continue };
                let header: String =
                    trimmed[1..close].chars().filter(|c| !c.is_whitespace() && *c != '"' && *c != '\'').collect();
                if header == path {
                    return Some(start + indent..start + indent + close + 1);
                }
            } else if before_headers {
                let key: String =
                    trimmed.split('=').next().unwrap_or_default().chars().filter(|c| !c.is_whitespace()).collect();
                if key.starts_with(&format!("{path}.")) {
                    return Some(start + indent..start + indent + trimmed.find('=').unwrap_or(0));
                }
            }
        }
        None
    }

    /// A flake reference Nix can take as an input's `url`: a known scheme, no whitespace, no
    /// quote (the value is written into flake.nix as a string).
    fn check_flake_reference(&mut self, reference: &Located<String>, key: &str, examples: &str) {
        let known = FLAKE_REFERENCE_SCHEMES.iter().any(|scheme| reference.value.starts_with(scheme));
        if !known || reference.value.contains(char::is_whitespace) || reference.value.contains('"') {
            self.error(reference.span.clone(), format!("{key} `{}` is not a flake reference", reference.value))
                .expected(format!("a flake reference starting with one of {}", FLAKE_REFERENCE_SCHEMES.join(", ")))
                .hint(format!("e.g. {examples}"));
        }
    }

    /// `[deploy] tools`, each once, sorted. colmena's hive keeps three names for itself
    /// (`reservedNames` in colmena's src/nix/hive/eval.nix): a host cannot be called that.
    fn deploy_tools(&mut self, spec: &RawSpec) -> Vec<DeployTool> {
        let mut tools = BTreeSet::new();
        for tool in &spec.deploy.tools {
            if !tools.insert(tool.value) {
                self.error(tool.span.clone(), format!("deploy tool `{}` listed twice", tool.value))
                    .expected("each tool once")
                    .hint("remove the repeated tool");
            }
        }
        if tools.contains(&DeployTool::Colmena) {
            for name in spec.hosts.keys().filter(|name| COLMENA_RESERVED_NAMES.contains(&name.value.as_str())) {
                self.error(name.span.clone(), format!("host name `{}` is reserved by colmena", name.value))
                    .expected(format!(
                        "a host name other than {}",
                        quoted_list(&COLMENA_RESERVED_NAMES.map(String::from))
                    ))
                    .hint("colmena's hive uses these names for itself: rename the host, or drop \"colmena\" from deploy.tools");
            }
        }
        tools.into_iter().collect()
    }

    /// `[secrets]`: with sops or agenix every host needs its `host_key` (the secrets are
    /// encrypted to it), and every key must be one the tools accept.
    fn secrets(&mut self, spec: &RawSpec, stack: &Stack) -> Secrets {
        let backend = spec.secrets.backend.value;
        for (name, host) in &spec.hosts {
            match &host.host_key {
                Some(key) if !is_ssh_ed25519(key) => {
                    self.error(
                        key.span.clone(),
                        format!("host_key of `{}` is not an ed25519 SSH public key", name.value),
                    )
                    .expected("one line like \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA...\"")
                    .hint("paste the host's /etc/ssh/ssh_host_ed25519_key.pub (`ssh-keyscan -t ed25519 <host>`)");
                }
                None if backend != SecretsBackend::Nixstack => {
                    self.error(name.span.clone(), format!("host `{}` has no host_key", name.value))
                        .expected(format!("`host_key = \"ssh-ed25519 ...\"` under [hosts.{}]", name.value))
                        .hint(format!(
                            "[secrets] backend = \"{}\" encrypts each host's secrets to its SSH host key: paste its /etc/ssh/ssh_host_ed25519_key.pub",
                            backend.as_str()
                        ));
                }
                _ => {}
            }
        }
        if backend != SecretsBackend::Nixstack {
            for name in spec.groups.keys() {
                self.error(name.span.clone(), format!("group `{}` cannot be used with [secrets] backend = \"{}\"", name.value, backend.as_str()))
                    .expected("hosts declared under [hosts.<name>], each with its host_key")
                    .hint("a group has no per-host host_key yet: declare its hosts under [hosts], or use backend = \"nixstack\"");
            }
        }
        let recipients = match &spec.secrets.recipients {
            Some(keys) => {
                for key in keys {
                    let age = key.starts_with("age1")
                        && key.len() > 50
                        && key[4..].chars().all(|c| "qpzry9x8gf2tvdw0s3jn54khce6mua7l".contains(c));
                    if !age && !is_ssh_ed25519(key) {
                        self.error(key.span.clone(), "not a recipient sops and age both accept")
                            .expected("\"ssh-ed25519 AAAA...\" or an age public key \"age1...\"")
                            .hint("paste ~/.ssh/id_ed25519.pub, or the public key age-keygen printed");
                    }
                }
                keys.iter().map(|k| normalized_key(k)).collect()
            }
            None => stack.ssh_keys.iter().filter(|k| is_ssh_ed25519(k)).map(|k| normalized_key(k)).collect(),
        };
        Secrets { backend, recipients }
    }

    fn check_secret_names(&mut self, spec: &RawSpec) {
        let mut names: Vec<&Located<String>> = Vec::new();
        if let Some(m) = &spec.monitoring {
            names.push(&m.endpoint_secret);
        }
        if let Some(c) = spec.lb.as_ref().and_then(|l| l.tls.certificate.as_ref()) {
            names.push(c);
        }
        for name in names {
            let ok = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
                && !name.starts_with('.');
            if !ok {
                self.error(name.span.clone(), format!("`{}` is not a secret name", name.value))
                    .expected("a file name under secrets/: letters, digits, `-`, `_`, `.`")
                    .hint("name the secret, never paste its value into stack.toml");
            }
        }
    }

    fn firewalls(&mut self, spec: &RawSpec, topology: &Topology) -> BTreeMap<String, HostFirewall> {
        let mut firewalls = flows::firewalls(topology, spec.firewall.egress);
        for rule in &spec.firewall.allow {
            let targets: Vec<String> = if let Some(role_name) = rule.to.strip_prefix('@') {
                match Role::ALL.iter().find(|r| r.as_str() == role_name) {
                    Some(role) => topology.hosts_with(*role).map(|h| h.name.clone()).collect(),
                    None => {
                        let hint = nearest(role_name, Role::ALL.iter().map(|r| r.as_str()))
                            .map_or("roles are lb, web, app, db".into(), |n| format!("did you mean `@{n}`?"));
                        self.error(rule.to.span.clone(), format!("`{}` is not a role", rule.to.value))
                            .expected("`@lb`, `@web`, `@app` or `@db`")
                            .hint(hint);
                        continue;
                    }
                }
            } else if topology.host(&rule.to).is_some() {
                vec![rule.to.value.clone()]
            } else if !self.hosts_complete() {
                continue;
            } else {
                let hint = nearest(&rule.to, topology.hosts.iter().map(|h| h.name.as_str()))
                    .map_or("name a host, or `@role`".into(), |n| format!("did you mean `{n}`?"));
                self.error(
                    rule.to.span.clone(),
                    format!("firewall.allow names `{}`, which is not a host", rule.to.value),
                )
                .expected("a host name or `@role`")
                .hint(hint);
                continue;
            };
            if rule.port.value == 0 {
                self.error(rule.port.span.clone(), "port 0 cannot be allowed")
                    .expected("a port from 1 to 65535")
                    .hint("name the port the service listens on, e.g. 9100");
                continue;
            }
            for target in targets {
                if let Some(firewall) = firewalls.get_mut(&target) {
                    // Needed only when a flow already comes in on this port from inside
                    // `from`: a rule that widens a flow's sources (SSH or MySQL from the whole
                    // internet) is not needed, whatever the port.
                    let from = rule.from.value.trunc();
                    let needed = firewall.inbound.iter().any(|a| {
                        a.needed
                            && a.port == rule.port.value
                            && a.proto == rule.proto
                            && a.peers.iter().any(|p| p.contains(&from))
                    });
                    firewall.inbound.push(Allow {
                        peers: vec![from],
                        port: rule.port.value,
                        proto: rule.proto,
                        rate_limit: None,
                        purpose: rule.reason.clone().unwrap_or_else(|| "firewall.allow".into()),
                        needed,
                    });
                    firewall.inbound.sort();
                }
            }
        }
        firewalls
    }
}

/// The addresses of one network (and the parts groups allocate from) already in use, and
/// the last one allocated from each part.
struct Pool {
    addresses: BTreeSet<Ipv4Addr>,
    last_allocated: BTreeMap<Ipv4Net, Ipv4Addr>,
}

impl Pool {
    fn taken(addresses: impl IntoIterator<Item = Ipv4Addr>) -> Self {
        Pool { addresses: addresses.into_iter().collect(), last_allocated: BTreeMap::new() }
    }

    /// Takes the lowest free address of `network` from its 10th host address on (its first
    /// in a network too small to spare the first ones for routers), or `None` when it is full.
    fn next_free(&mut self, network: Ipv4Net) -> Option<Ipv4Addr> {
        // Allocation in `network` always takes its lowest free address, and addresses are
        // never freed, so every address below the last one allocated there is taken: the
        // search starts above it (linear in hosts overall, not quadratic).
        let start = network.hosts().nth(reserved_for_routers(network) as usize).map(u32::from)?;
        let from = match self.last_allocated.get(&network) {
            Some(last) => start.max(u32::from(*last) + 1),
            None => start,
        };
        let last_host = u32::from(last_host(network));
        let address = (from..=last_host).map(Ipv4Addr::from).find(|a| !self.addresses.contains(a))?;
        self.addresses.insert(address);
        self.last_allocated.insert(network, address);
        Some(address)
    }
}

/// How many of a network's first host addresses allocation leaves to routers and gateways:
/// nine in a /26 or larger, none in a network too small to spare them.
fn reserved_for_routers(network: Ipv4Net) -> u32 {
    if network.prefix_len() <= 26 {
        9
    } else {
        0
    }
}

/// Lets resolver errors be built fluently in place.
struct ErrorBuilder<'e>(&'e mut SpecError);

impl ErrorBuilder<'_> {
    fn expected(self, expected: impl Into<String>) -> Self {
        self.0.expected = Some(expected.into());
        self
    }
    fn hint(self, hint: impl Into<String>) -> Self {
        self.0.hint = Some(hint.into());
        self
    }
}

/// The roles list `host` got its roles from: its own, or its group's.
fn roles_of<'s>(spec: &'s RawSpec, host: &str) -> Option<&'s Located<Vec<Located<Role>>>> {
    spec.hosts.get_key_value(&Located::synthetic(host.to_string())).map(|(_, h)| &h.roles).or_else(|| {
        spec.groups.iter().find(|(name, group)| group.number_of(name, host).is_some()).map(|(_, group)| &group.roles)
    })
}

/// Span of `role` in the roles list of `host`, for errors about a host's role.
fn role_span(spec: &RawSpec, role: Role, host: &str) -> Range<usize> {
    roles_of(spec, host)
        .map(|roles| roles.value.iter().find(|r| r.value == role).map_or(roles.span.clone(), |r| r.span.clone()))
        .unwrap_or(0..0)
}

/// Span of the spec key that sets a service's port, where the user can change it.
/// The overlay attribute of nixstack's demo app (`callPackage ./app`).
pub const DEMO_APP_ATTRIBUTE: &str = "nixstack-demo-app";
/// `[web] static` of the demo app (no `[app] source`): its assets, app/static.
pub const DEMO_STATIC_ATTRIBUTE: &str = "nixstack-demo-static";
/// The overlay attribute the generated flake gives the package of `[app] source`.
pub const SOURCE_APP_ATTRIBUTE: &str = "nixstack-app";

/// The flake reference schemes an input URL may start with (Nix manual, "Flake references").
const FLAKE_REFERENCE_SCHEMES: &[&str] = &[
    "github:",
    "gitlab:",
    "sourcehut:",
    "git+https://",
    "git+ssh://",
    "git+http://",
    "git+file:",
    "git://",
    "hg+https://",
    "path:",
    "https://",
    "http://",
    "tarball+https://",
    "file+https://",
    "flake:",
];

fn service_span(spec: &RawSpec, service: &str) -> Option<Range<usize>> {
    match service {
        "nginx" => spec.web.as_ref().map(|w| w.port.span.clone()),
        "nginx stub_status" => spec.web.as_ref().map(|w| w.status_port.span.clone()),
        "app TLS terminator" => spec.app.as_ref().map(|a| a.port.span.clone()),
        // Behind the terminator the app itself listens on `listen_port`.
        "app" if spec.tls.internal.value => spec.app.as_ref().map(|a| a.listen_port.span.clone()),
        "app" => spec.app.as_ref().map(|a| a.port.span.clone()),
        _ => None,
    }
    .filter(|span| !span.is_empty())
}

fn services_of(host: &Host, web: Option<&WebTier>, app: Option<&AppTier>) -> Vec<Service> {
    let service = |name: &str, port: u16, bind: Bind| Service { name: name.into(), port, proto: Proto::Tcp, bind };
    let mut services = vec![service("sshd", ports::SSH, Bind::Private)];
    for role in &host.roles {
        match role {
            Role::Lb => services.extend([
                service("haproxy http", ports::HTTP, Bind::Public),
                service("haproxy https", ports::HTTPS, Bind::Public),
                service("haproxy stats", ports::HAPROXY_STATS, Bind::Private),
            ]),
            Role::Web => {
                if let Some(web) = web {
                    services.push(service("nginx", web.port, Bind::Private));
                    services.push(service("nginx stub_status", web.status_port, Bind::Local));
                }
            }
            Role::App => {
                if let Some(app) = app {
                    if app.terminator {
                        services.push(service("app TLS terminator", app.port, Bind::Private));
                        services.push(service("app", app.listen_port, Bind::Local));
                    } else {
                        services.push(service("app", app.port, Bind::Private));
                    }
                }
            }
            Role::Db => services.extend([
                service("mariadb", ports::MYSQL, Bind::Private),
                service("galera replication", ports::GALERA_REPLICATION, Bind::Private),
                service("galera ist", ports::GALERA_IST, Bind::Private),
                service("galera sst", ports::GALERA_SST, Bind::Private),
            ]),
        }
    }
    services
}

fn certificates(topology: &Topology) -> Vec<Certificate> {
    topology
        .hosts
        .iter()
        .map(|host| {
            let mut dns_names = vec![host.name.clone(), format!("{}.{}.internal", host.name, topology.stack.name)];
            if host.has(Role::Lb) {
                dns_names.push(topology.stack.domain.clone());
            }
            // nginx verifies one name per upstream group and never IP SANs, so every app
            // host also answers to the tier's shared name.
            if host.has(Role::App) {
                dns_names.push(format!("app.{}.internal", topology.stack.name));
            }
            let mut ip_addresses = vec![host.address];
            ip_addresses.extend(host.public_address);
            Certificate { host: host.name.clone(), common_name: host.name.clone(), dns_names, ip_addresses }
        })
        .collect()
}

/// db bootstrap node, the other db nodes, then app, web, lb: each tier starts once the
/// tier it depends on answers. A host with several roles starts with its earliest one.
fn start_order(topology: &Topology) -> Vec<Vec<String>> {
    let bootstrap = topology.db.as_ref().map(|d| d.bootstrap.clone());
    let stage_of = |host: &Host| -> usize {
        if Some(&host.name) == bootstrap.as_ref() {
            0
        } else if host.has(Role::Db) {
            1
        } else if host.has(Role::App) {
            2
        } else if host.has(Role::Web) {
            3
        } else {
            4
        }
    };
    let mut stages: Vec<Vec<String>> = vec![Vec::new(); 5];
    for host in &topology.hosts {
        stages[stage_of(host)].push(host.name.clone());
    }
    stages.retain(|stage| !stage.is_empty());
    stages
}

/// The first and last usable host addresses (the network and broadcast addresses are
/// not, except in the /31 and /32 networks, which the resolver rejects anyway).
fn first_host(network: Ipv4Net) -> Ipv4Addr {
    if network.prefix_len() >= 31 {
        network.network()
    } else {
        Ipv4Addr::from(u32::from(network.network()) + 1)
    }
}

fn last_host(network: Ipv4Net) -> Ipv4Addr {
    if network.prefix_len() >= 31 {
        network.broadcast()
    } else {
        Ipv4Addr::from(u32::from(network.broadcast()) - 1)
    }
}

fn is_dns_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !label.ends_with('-')
}

fn is_sql_identifier(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_alphabetic()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// A host's default route: through the public gateway when it has a public address, else
/// through the private one (every host is on the private network); none without either.
/// Names a colmena hive keeps for itself: no node may have one (colmena's src/nix/hive/eval.nix,
/// `reservedNames`, at zhaofengli/colmena@5bf4ce6a24ad).
const COLMENA_RESERVED_NAMES: [&str; 3] = ["defaults", "network", "meta"];

fn default_route(networks: &Networks, has_public_address: bool) -> Option<DefaultRoute> {
    let public =
        networks.gateway.filter(|_| has_public_address).map(|gateway| DefaultRoute { gateway, via: Side::Public });
    public.or(networks.private_gateway.map(|gateway| DefaultRoute { gateway, via: Side::Private }))
}

fn quoted_list(items: &[String]) -> String {
    if items.is_empty() {
        return "(none)".into();
    }
    items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod allocation_tests {
    use crate::spec::SpecSource;

    fn compile(text: &str) -> crate::topology::Topology {
        crate::topology::compile(&SpecSource { name: "t.toml".into(), text: text.into() }).expect("valid spec")
    }

    const SPEC: &str = r#"
[stack]
name = "t"
domain = "t.example.com"
[networks]
private = "PRIVATE"
public = "203.0.113.0/24"
admin = ["198.51.100.0/24"]
[hosts.web1]
roles = ["web"]
[hosts.web2]
address = "ADDRESS"
roles = ["web"]
[hosts.web3]
roles = ["web"]
[web]
"#;

    fn addresses(private: &str, taken: &str) -> Vec<String> {
        let topology = compile(&SPEC.replace("PRIVATE", private).replace("ADDRESS", taken));
        topology.hosts.iter().map(|h| h.address.to_string()).collect()
    }

    #[test]
    fn omitted_addresses_are_allocated_from_dot_ten_in_host_order_around_taken_ones() {
        assert_eq!(addresses("10.0.0.0/24", "10.0.0.10"), ["10.0.0.11", "10.0.0.10", "10.0.0.12"]);
        // Same spec, same addresses: allocation is deterministic.
        assert_eq!(addresses("10.0.0.0/24", "10.0.0.10"), addresses("10.0.0.0/24", "10.0.0.10"));
    }

    #[test]
    fn a_small_network_is_allocated_from_its_first_address() {
        assert_eq!(addresses("10.0.0.0/29", "10.0.0.2"), ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    }
}

#[cfg(test)]
mod group_tests {
    use crate::spec::SpecSource;

    fn compile(private: &str, groups: &str) -> Result<crate::topology::Topology, crate::spec::SpecErrors> {
        let text = format!(
            "[stack]\nname = \"t\"\ndomain = \"t.example.com\"\n[networks]\nprivate = \"{private}\"\n\
             public = \"203.0.113.0/24\"\nadmin = [\"198.51.100.0/24\"]\n{groups}\n[web]\n"
        );
        crate::topology::compile(&SpecSource { name: "t.toml".into(), text })
    }

    #[test]
    fn a_group_in_a_large_private_network_gets_consecutive_addresses_from_dot_ten() {
        let topology = compile("10.0.0.0/8", "[groups.web]\ncount = 3\nroles = [\"web\"]").expect("valid");
        let hosts: Vec<(String, String)> =
            topology.hosts.iter().map(|h| (h.name.clone(), h.address.to_string())).collect();
        let expected = [("web1", "10.0.0.10"), ("web2", "10.0.0.11"), ("web3", "10.0.0.12")];
        assert_eq!(hosts, expected.map(|(n, a)| (n.to_string(), a.to_string())));
    }

    #[test]
    fn a_small_group_network_is_used_to_its_last_address_and_no_further() {
        // A /28 spares no addresses for routers: its 14 host addresses all go to the group.
        let full = "[groups.web]\ncount = 14\nroles = [\"web\"]\nnetwork = \"10.1.2.16/28\"";
        let topology = compile("10.1.0.0/16", full).expect("14 hosts fit a /28");
        let last = topology.host("web14").expect("web14").address.to_string();
        assert_eq!(
            (topology.host("web1").unwrap().address.to_string(), last),
            ("10.1.2.17".into(), "10.1.2.30".into())
        );
        let errors = compile("10.1.0.0/16", &full.replace("14", "15")).expect_err("15 do not fit");
        assert_eq!(errors.0.len(), 1, "{errors}");
        assert_eq!(errors.0[0].message, "group `web` has 15 hosts, but 10.1.2.16/28 has room for 14");
    }

    #[test]
    fn a_host_or_group_pin_overrides_the_stacks_and_names_a_nixpkgs_input() {
        let spec = "[hosts.web1]\nroles = [\"web\"]\n\
                    [hosts.web2]\nroles = [\"web\"]\nsystem = \"aarch64-linux\"\n\
                    [groups.edge]\ncount = 2\nroles = [\"web\"]\nchannel = \"nixos-unstable\"\n\
                    [groups.tail]\ncount = 1\nroles = [\"web\"]\nchannel = \"nixpkgs-unstable\"";
        let topology = compile("10.0.0.0/24", spec).expect("valid");
        let pins: Vec<(&str, &str, &str)> =
            topology.hosts.iter().map(|h| (h.name.as_str(), h.channel.as_str(), h.system.as_str())).collect();
        assert_eq!(
            pins,
            [
                ("edge1", "nixos-unstable", "x86_64-linux"),
                ("edge2", "nixos-unstable", "x86_64-linux"),
                ("tail1", "nixpkgs-unstable", "x86_64-linux"),
                ("web1", "nixos-25.11", "x86_64-linux"),
                ("web2", "nixos-25.11", "aarch64-linux"),
            ]
        );
        assert_eq!(topology.channels(), ["nixos-25.11", "nixos-unstable", "nixpkgs-unstable"]);
        // The names docs/spec.md gives.
        let inputs: Vec<String> = topology.hosts.iter().map(|h| topology.nixpkgs_input_of(h)).collect();
        assert_eq!(inputs, ["nixpkgs-unstable", "nixpkgs-unstable", "nixpkgs-nixpkgs-unstable", "nixpkgs", "nixpkgs"]);
        assert_eq!(crate::topology::nixpkgs_input("nixos-25.05", "nixos-25.11"), "nixpkgs-25-05");
    }

    #[test]
    fn groups_and_explicit_hosts_share_the_private_network_without_collisions() {
        let spec = "[hosts.web1]\naddress = \"10.0.0.11\"\nroles = [\"web\"]\n\
                    [groups.more]\ncount = 3\nroles = [\"web\"]\nname = \"w{n}\"";
        let topology = compile("10.0.0.0/24", spec).expect("valid");
        let addresses: Vec<String> = topology.hosts.iter().map(|h| h.address.to_string()).collect();
        assert_eq!(addresses, ["10.0.0.10", "10.0.0.12", "10.0.0.13", "10.0.0.11"]);
        assert_eq!(topology.host("w1").and_then(|h| h.group.as_deref()), Some("more"));
        assert_eq!(topology.host("web1").and_then(|h| h.group.as_deref()), None);
    }
}

/// Whether `key` is `ssh-ed25519 <base64>[ comment]` whose base64 is the wire form of an
/// ed25519 public key (string "ssh-ed25519", then 32 bytes).
fn is_ssh_ed25519(key: &str) -> bool {
    let mut words = key.split_whitespace();
    if words.next() != Some("ssh-ed25519") || key.contains('\n') {
        return false;
    }
    let Some(blob) = words.next().and_then(base64_decode) else { return false };
    let mut expected = Vec::new();
    expected.extend_from_slice(&11u32.to_be_bytes());
    expected.extend_from_slice(b"ssh-ed25519");
    expected.extend_from_slice(&32u32.to_be_bytes());
    blob.len() == expected.len() + 32 && blob.starts_with(&expected)
}

/// The key's type and base64, without its comment (what sops and age store as the recipient).
fn normalized_key(key: &str) -> String {
    key.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// Standard base64 with padding; `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let body = text.trim_end_matches('=');
    if text.len() - body.len() > 2 {
        return None;
    }
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in body.bytes() {
        let value = ALPHABET.iter().position(|&a| a == byte)? as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}
