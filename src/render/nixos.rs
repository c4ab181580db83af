//! `hosts/<host>/default.nix`: the NixOS configuration of one host, data only (imports and
//! option values); the role modules in `modules/` hold the logic.
//!
//! Facts NixOS has an option for as they are (host name, addresses, Galera membership, MariaDB
//! settings, state version) are set on NixOS's own options, so the option checker judges them
//! against NixOS's types; the rest goes to `nixstack.<role>` options, mostly the paths of the
//! native configs rendered beside the file.

pub mod expr;

use std::net::Ipv4Addr;

pub use super::disko::boot_loader;
pub use expr::{attr_name, quote, Nix};

use crate::render::{galera, haproxy, keepalived, monitoring, nftables, nginx, Layout};
use crate::spec::{Agent, Role, TlsMode};
use crate::topology::{Host, Side, Topology};

/// A native config rendered beside a host's `default.nix` (and into the lab tree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NativeConfig {
    Haproxy,
    Keepalived,
    Nginx,
    Nftables,
    Otelcol,
    Collectd,
    /// collectd's secret-bearing blocks with placeholders, filled at start.
    CollectdSecrets,
    /// MariaDB's OpenSSL configuration (`OPENSSL_CONF`): the TLS groups of its client port
    /// and Galera's replication socket.
    MariadbOpenssl,
    /// stunnel's options for MariaDB's rsync state snapshot transfer (modules/sst-stunnel.sh).
    SstStunnel,
}

impl NativeConfig {
    /// The file name beside `default.nix`.
    pub fn file_name(self) -> &'static str {
        match self {
            NativeConfig::Haproxy => "haproxy.cfg",
            NativeConfig::Keepalived => "keepalived.conf",
            NativeConfig::Nginx => "nginx.conf",
            NativeConfig::Nftables => "nftables.nft",
            NativeConfig::Otelcol => "otelcol.yaml",
            NativeConfig::Collectd => "collectd.conf",
            NativeConfig::CollectdSecrets => "collectd-secrets.conf.in",
            NativeConfig::MariadbOpenssl => crate::stack::launch::MARIADB_OPENSSL_CONF,
            NativeConfig::SstStunnel => crate::stack::launch::SST_STUNNEL_OPTIONS,
        }
    }

    /// The config's text for `host` with `layout`'s paths.
    pub fn render(self, topology: &Topology, host: &Host, layout: &Layout) -> String {
        match self {
            NativeConfig::Haproxy => haproxy::render(topology, host, layout),
            NativeConfig::Keepalived => keepalived::render(topology, host, layout),
            NativeConfig::Nginx => nginx::render(topology, host, layout),
            NativeConfig::Nftables => nftables::render(topology, host, layout),
            NativeConfig::Otelcol => monitoring::otelcol(topology, host, layout),
            NativeConfig::Collectd => monitoring::collectd(topology, host, layout),
            NativeConfig::CollectdSecrets => monitoring::collectd_secrets_template(topology, host, layout),
            NativeConfig::MariadbOpenssl => super::tls::openssl_system_default(),
            NativeConfig::SstStunnel => super::tls::stunnel_options(),
        }
    }
}

/// The overlay's name of the `[web] static` package (the web hosts' `nixstack.web.static`).
pub const STATIC_ATTRIBUTE: &str = "nixstack-static";

/// The native configs `host` runs, by its roles, firewall and monitoring.
pub fn native_configs(topology: &Topology, host: &Host) -> Vec<NativeConfig> {
    let mut configs = Vec::new();
    if host.has(Role::Lb) {
        configs.extend([NativeConfig::Haproxy, NativeConfig::Keepalived]);
    }
    if crate::stack::runs_nginx(topology, host) {
        configs.push(NativeConfig::Nginx);
    }
    if host.firewall {
        configs.push(NativeConfig::Nftables);
    }
    if crate::stack::launch::mariadb_openssl_conf(topology, host) {
        configs.push(NativeConfig::MariadbOpenssl);
    }
    if crate::stack::launch::sst_stunnel(topology, host) {
        configs.push(NativeConfig::SstStunnel);
    }
    if host.monitored {
        match topology.monitoring.as_ref().map(|m| m.agent) {
            Some(Agent::Otelcol) => configs.push(NativeConfig::Otelcol),
            Some(Agent::Collectd) => configs.extend([NativeConfig::Collectd, NativeConfig::CollectdSecrets]),
            None => {}
        }
    }
    configs.sort();
    configs
}

/// `hosts/<host>/default.nix` of `host` (without the writer's header line).
pub fn host(topology: &Topology, host: &Host) -> String {
    let layout = Layout::nixos_for(host);
    let mut bindings: Vec<(Vec<String>, Nix)> = Vec::new();
    let mut bind = |path: &str, value: Nix| bindings.push((path.split('.').map(str::to_string).collect(), value));

    // A host with a `disk` also imports its disko layout (`disko.nix`, see render::disko).
    let disk_layout =
        if host.disk.is_some() { format!(" ./{}", crate::render::disko::FILE_NAME) } else { String::new() };
    bind(
        "imports",
        Nix::Raw(format!(
            "[ ../../modules{disk_layout} ] ++ lib.optional (builtins.pathExists ./local.nix) ./local.nix"
        )),
    );
    bind("networking", networking(topology, host, &layout));
    if let Some(links) = links(host, &layout) {
        bind("systemd.network.links", links);
    }
    bind("nixpkgs.hostPlatform", Nix::str(&host.system));
    bind("system.stateVersion", Nix::str(&topology.stack.state_version));
    bind("nixstack.base", base(topology, host));
    for (path, value) in backend_secrets(topology, host) {
        bind(path, value);
    }
    let file = |config: NativeConfig| Nix::relative_path(&format!("./{}", config.file_name()));
    let configs = native_configs(topology, host);
    if configs.contains(&NativeConfig::Nftables) {
        bind("nixstack.firewall", attrs([("enable", Nix::Bool(true)), ("ruleset", file(NativeConfig::Nftables))]));
    }
    if let (true, Some(lb)) = (host.has(Role::Lb), &topology.lb) {
        let mut values = vec![
            ("enable", Nix::Bool(true)),
            ("haproxyConfig", file(NativeConfig::Haproxy)),
            ("keepalivedConfig", file(NativeConfig::Keepalived)),
            ("vip", Nix::str(lb.vip.to_string())),
            ("vipInterface", Nix::str(&layout.public_interface)),
        ];
        if lb.tls == TlsMode::Acme {
            let mut acme = vec![("domain", Nix::str(&topology.stack.domain))];
            if let Some(email) = &lb.acme_email {
                acme.push(("email", Nix::str(email)));
            }
            // Where haproxy.cfg sends `/.well-known/acme-challenge/`.
            let (address, port) = haproxy::acme_challenge_address(host);
            acme.push(("challengeAddress", Nix::str(address.to_string())));
            acme.push(("challengePort", Nix::Int(i64::from(port))));
            values.push(("acme", attrs(acme)));
        }
        bind("nixstack.lb", attrs(values));
    }
    if configs.contains(&NativeConfig::Nginx) {
        bind("nixstack.nginx", attrs([("enable", Nix::Bool(true)), ("config", file(NativeConfig::Nginx))]));
    }
    if let (true, Some(web)) = (host.has(Role::Web), &topology.web) {
        let mut values = vec![("enable", Nix::Bool(true)), ("root", Nix::str(&web.root))];
        if web.static_package.is_some() {
            values.push(("static", Nix::select("pkgs", &[STATIC_ATTRIBUTE])));
        }
        bind("nixstack.web", attrs(values));
    }
    if let (true, Some(app)) = (host.has(Role::App), &topology.app) {
        let environment = crate::stack::app::environment(topology, host);
        let credentials = crate::stack::app::credentials(topology, &layout);
        let (_, port) = crate::stack::app::listen(topology, host).expect("an app tier");
        let command = app.command.as_ref().map_or(Nix::Null, Nix::str);
        let mut values = vec![
            ("enable", Nix::Bool(true)),
            ("package", Nix::select("pkgs", &app.package.split('.').collect::<Vec<_>>())),
            ("command", command),
            ("port", Nix::Int(i64::from(port))),
            ("healthPath", Nix::str(&app.health_path)),
            ("environment", Nix::Attrs(environment.into_iter().map(|(k, v)| (vec![k], Nix::Str(v))).collect())),
            (
                "credentials",
                Nix::Attrs(
                    credentials
                        .into_iter()
                        .map(|c| (vec![c.name.to_string()], Nix::str(c.source.display().to_string())))
                        .collect(),
                ),
            ),
        ];
        if let Some(migrate) = &app.migrate {
            values.push(("migrate", Nix::strs(migrate)));
        }
        bind("nixstack.app", attrs(values));
    }
    if let (true, Some(db)) = (host.has(Role::Db), &topology.db) {
        let private = topology.networks.private;
        // MariaDB host patterns take a network as address/netmask.
        let client_hosts = format!("{}/{}", private.network(), private.netmask());
        let mut users: Vec<Nix> = db
            .users
            .iter()
            .map(|user| {
                attrs([
                    ("name", Nix::str(&user.name)),
                    ("database", Nix::str(&user.database)),
                    ("host", Nix::str(&client_hosts)),
                    ("requireTls", Nix::Bool(topology.internal_tls)),
                ])
            })
            .collect();
        if host.monitored && topology.monitoring.is_some() {
            // The agents read server and Galera status over the local socket.
            users.push(attrs([
                ("name", Nix::str(monitoring::DB_MONITOR_USER)),
                ("privileges", Nix::str("PROCESS, REPLICATION CLIENT")),
                ("host", Nix::str("localhost")),
            ]));
        }
        let mut values =
            vec![("enable", Nix::Bool(true)), ("databases", Nix::strs(&db.databases)), ("users", Nix::List(users))];
        if configs.contains(&NativeConfig::MariadbOpenssl) {
            values.push(("opensslConfig", file(NativeConfig::MariadbOpenssl)));
        }
        if configs.contains(&NativeConfig::SstStunnel) {
            values.push(("sstStunnelOptions", file(NativeConfig::SstStunnel)));
        }
        bind("nixstack.db", attrs(values));
        if let Some(backup) = db.backup.as_ref().filter(|b| b.host == host.name) {
            let mut options = vec![
                ("enable", Nix::Bool(true)),
                ("schedule", Nix::str(&backup.schedule)),
                ("keep", Nix::Int(i64::from(backup.keep))),
            ];
            match &backup.target {
                crate::topology::BackupDestination::Local { path } => {
                    options.extend([("target", Nix::str("local")), ("path", Nix::str(path))]);
                }
                crate::topology::BackupDestination::Restic { repository, .. } => {
                    options.extend([("target", Nix::str("restic")), ("repository", Nix::str(repository))]);
                }
            }
            bind("nixstack.db.backup", attrs(options));
        }
        let cluster = galera::galera_cluster(topology, host);
        bind(
            "services.mysql.galeraCluster",
            attrs([
                ("name", Nix::str(&cluster.name)),
                ("localName", Nix::str(&cluster.local_name)),
                ("localAddress", Nix::str(&cluster.local_address)),
                ("nodeAddresses", Nix::strs(&cluster.node_addresses)),
                ("sstMethod", Nix::str(cluster.sst_method.as_str())),
            ]),
        );
        bind("services.mysql.settings", mysql_settings(&galera::settings(topology, host, &layout)));
    }
    if configs.contains(&NativeConfig::Otelcol) {
        let credentials = monitoring::otelcol_credentials(topology, host, &layout)
            .into_iter()
            .map(|(name, file)| (vec![name.to_string()], Nix::str(file.to_string_lossy())))
            .collect();
        bind(
            "nixstack.monitoring",
            attrs([
                ("enable", Nix::Bool(true)),
                ("agent", Nix::str("otelcol")),
                ("configFile", file(NativeConfig::Otelcol)),
                ("credentials", Nix::Attrs(credentials)),
                ("supplementaryGroups", Nix::strs(monitoring::otelcol_supplementary_groups(host, &layout))),
            ]),
        );
    }
    if configs.contains(&NativeConfig::Collectd) {
        let inputs = monitoring::collectd_secret_inputs(topology, host, &layout)
            .into_iter()
            .map(|(placeholder, file)| (vec![placeholder.to_string()], Nix::str(file.to_string_lossy())))
            .collect();
        bind(
            "nixstack.monitoring",
            attrs([
                ("enable", Nix::Bool(true)),
                ("agent", Nix::str("collectd")),
                ("configFile", file(NativeConfig::Collectd)),
                ("secretsTemplate", file(NativeConfig::CollectdSecrets)),
                ("secretInputs", Nix::Attrs(inputs)),
                ("secretsFile", Nix::str(monitoring::collectd_secrets_path(&layout).to_string_lossy())),
                ("pythonModulePath", Nix::str(monitoring::collectd_python_path(&layout).to_string_lossy())),
            ]),
        );
    }

    let serves_static = host.has(Role::Web) && topology.web.as_ref().is_some_and(|w| w.static_package.is_some());
    let arguments = if host.has(Role::App) || serves_static { "{ lib, pkgs, ... }:" } else { "{ lib, ... }:" };
    let roles: Vec<&str> = host.roles.iter().map(|role| role.as_str()).collect();
    format!(
        "# {host_name} ({roles}) of the {stack} stack: data only, the modules in ../../modules do the work.\n\
         # Your own changes go in ./local.nix, imported when present and never written by nixstack.\n\
         {arguments}\n{body}\n",
        host_name = host.name,
        roles = if roles.is_empty() { "no role".to_string() } else { roles.join(", ") },
        stack = topology.stack.name,
        body = Nix::Attrs(bindings).render(),
    )
}

fn attrs<'a>(bindings: impl IntoIterator<Item = (&'a str, Nix)>) -> Nix {
    Nix::Attrs(bindings.into_iter().map(|(key, value)| (key.split('.').map(str::to_string).collect(), value)).collect())
}

/// `networking = { ... }`: identity, static addresses, default gateway.
fn networking(topology: &Topology, host: &Host, layout: &Layout) -> Nix {
    let mut values = vec![("hostName", Nix::str(&host.name))];
    if let Some(domain) = internal_domain(topology, host) {
        values.push(("domain", Nix::str(domain)));
    }
    let address = |address: Ipv4Addr, prefix_length: u8| {
        Nix::List(vec![attrs([
            ("address", Nix::str(address.to_string())),
            ("prefixLength", Nix::Int(i64::from(prefix_length))),
        ])])
    };
    let private = (layout.private_interface.as_str(), host.address, topology.networks.private);
    let public = host.public_address.map(|a| (layout.public_interface.as_str(), a, topology.networks.public));
    let mut interfaces: Vec<(Vec<String>, Nix)> = Vec::new();
    for (interface, ip, network) in public.into_iter().chain([private]) {
        interfaces
            .push((vec![interface.to_string(), "ipv4".into(), "addresses".into()], address(ip, network.prefix_len())));
    }
    // A dual-stack LB: its public IPv6 address beside the IPv4 one (the VIP6 is keepalived's).
    if let (Some(ip6), Some(public6)) = (host.public_address6, topology.networks.public6) {
        interfaces.push((
            vec![layout.public_interface.clone(), "ipv6".into(), "addresses".into()],
            Nix::List(vec![attrs([
                ("address", Nix::str(ip6.to_string())),
                ("prefixLength", Nix::Int(i64::from(public6.prefix_len()))),
            ])]),
        ));
    }
    values.push(("interfaces", Nix::Attrs(interfaces)));
    if let (Some(gateway6), Some(_)) = (topology.networks.gateway6, host.public_address6) {
        values.push((
            "defaultGateway6",
            attrs([("address", Nix::str(gateway6.to_string())), ("interface", Nix::str(&layout.public_interface))]),
        ));
    }
    // The default route goes through a gateway on one of the host's own networks, on that
    // network's interface (the topology picks it); a host without one gets none.
    if let Some(route) = host.default_route {
        let interface = match route.via {
            Side::Public => &layout.public_interface,
            Side::Private => &layout.private_interface,
        };
        values.push((
            "defaultGateway",
            attrs([("address", Nix::str(route.gateway.to_string())), ("interface", Nix::str(interface))]),
        ));
    }
    if !topology.networks.dns.is_empty() {
        values.push(("nameservers", Nix::strs(topology.networks.dns.iter().map(ToString::to_string))));
    }
    attrs(values)
}

/// `systemd.network.links`: the cards the spec names by MAC, named by their permanent
/// address (`nixos/modules/system/boot/networkd.nix` writes `.link` files that udev applies
/// with or without networkd, in the initrd too). `10-` sorts them before systemd's
/// `99-default.link`, the first match wins.
fn links(host: &Host, layout: &Layout) -> Option<Nix> {
    let cards = [(&host.mac, &layout.private_interface), (&host.public_mac, &layout.public_interface)];
    let links: Vec<(Vec<String>, Nix)> = cards
        .into_iter()
        .filter_map(|(mac, name)| {
            let mac = mac.as_ref()?;
            Some((
                vec![format!("10-{name}")],
                attrs([("matchConfig.PermanentMACAddress", Nix::str(mac)), ("linkConfig.Name", Nix::str(name))]),
            ))
        })
        .collect();
    (!links.is_empty()).then_some(Nix::Attrs(links))
}

/// The DNS domain of the host's internal name (`db1.shop.internal` → `shop.internal`), from
/// the certificate the internal CA issues it, so that `hostname -f` matches the certificate.
/// With `[secrets] backend` sops or agenix: every runtime secret of the host declared for
/// sops-nix (`sops.secrets`) or agenix (`age.secrets`), decrypted at activation from the
/// encrypted files in `encrypted-secrets/` to the same path the modules read under
/// `nixstack.base.secretsDir`, root:nixstack-secrets 0640 as modules/base.nix lays them out.
/// Only the encrypted files enter the Nix store. See docs/nixos.md, "Secrets backends".
fn backend_secrets(topology: &Topology, host: &Host) -> Vec<(&'static str, Nix)> {
    let backend = topology.secrets.backend;
    if backend.deploy_uploads() {
        return Vec::new();
    }
    let runtime = Layout::nixos_for(host).secrets;
    let common = |name: &str| {
        vec![
            ("owner", Nix::str("root")),
            ("group", Nix::str(crate::secrets::SECRETS_GROUP)),
            ("mode", Nix::str("0640")),
            ("path", Nix::str(format!("{}/{name}", runtime.display()))),
        ]
    };
    let names: Vec<String> = crate::secrets::host_secrets(topology, &host.name, std::path::Path::new(""))
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    match backend {
        crate::spec::SecretsBackend::Sops => {
            let file = Nix::relative_path(&format!("../../{}", crate::secrets::sops_file(&host.name)));
            let secrets = names
                .iter()
                .map(|name| {
                    let mut values =
                        vec![("sopsFile", file.clone()), ("format", Nix::str("yaml")), ("key", Nix::str(name))];
                    values.extend(common(name));
                    (vec![name.clone()], attrs(values))
                })
                .collect();
            vec![
                ("sops.secrets", Nix::Attrs(secrets)),
                // The files are encrypted to the host's ssh-ed25519 key itself (an age
                // `ssh-ed25519` stanza), which sops decrypts with this identity; sops-nix's
                // own sshKeyPaths import turns the key into an X25519 identity instead.
                ("sops.environment.SOPS_AGE_SSH_PRIVATE_KEY_FILE", Nix::str(crate::secrets::HOST_KEY_PATH)),
            ]
        }
        crate::spec::SecretsBackend::Agenix => {
            let secrets = names
                .iter()
                .map(|name| {
                    let file = Nix::relative_path(&format!("../../{}", crate::secrets::age_file(&host.name, name)));
                    let mut values = vec![("file", file)];
                    values.extend(common(name));
                    (vec![name.clone()], attrs(values))
                })
                .collect();
            vec![("age.secrets", Nix::Attrs(secrets))]
        }
        crate::spec::SecretsBackend::Nixstack => Vec::new(),
    }
}

fn internal_domain<'a>(topology: &'a Topology, host: &Host) -> Option<&'a str> {
    let prefix = format!("{}.", host.name);
    topology
        .certificates
        .iter()
        .filter(|certificate| certificate.host == host.name)
        .flat_map(|certificate| &certificate.dns_names)
        .find_map(|name| name.strip_prefix(&prefix))
}

/// `nixstack.base = { ... }`.
fn base(topology: &Topology, host: &Host) -> Nix {
    let mut values = vec![
        ("enable", Nix::Bool(true)),
        ("deployUser", Nix::str(&topology.stack.deploy_user)),
        ("sshKeys", Nix::strs(&topology.stack.ssh_keys)),
        ("bootLoader", Nix::str(boot_loader(topology.stack.image))),
    ];
    if let Some(disk) = &host.disk {
        values.push(("disk", Nix::str(disk)));
    }
    attrs(values)
}

/// `services.mysql.settings`: sections → keys → values, as NixOS's INI format takes them.
fn mysql_settings(sections: &galera::Sections) -> Nix {
    Nix::Attrs(
        sections
            .iter()
            .map(|(section, keys)| {
                let keys = keys
                    .iter()
                    .map(|(key, value)| {
                        let value = match value {
                            galera::Value::Bool(b) => Nix::Bool(*b),
                            galera::Value::Int(i) => Nix::Int(*i),
                            galera::Value::Str(s) => Nix::str(s),
                        };
                        (vec![key.clone()], value)
                    })
                    .collect();
                (vec![section.clone()], Nix::Attrs(keys))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SpecSource;
    use crate::topology::compile;

    fn default_topology() -> Topology {
        compile(&SpecSource::embedded_default()).unwrap()
    }

    fn host_file(name: &str) -> String {
        let topology = default_topology();
        let found = topology.hosts.iter().find(|h| h.name == name).unwrap();
        host(&topology, found)
    }

    #[test]
    fn a_load_balancer_points_at_its_rendered_configs() {
        let text = host_file("lb1");
        assert!(text.contains("haproxyConfig = ./haproxy.cfg;"), "{text}");
        assert!(text.contains("keepalivedConfig = ./keepalived.conf;"), "{text}");
        assert!(text.contains("ruleset = ./nftables.nft;"), "{text}");
        assert!(text.contains("configFile = ./otelcol.yaml;"), "{text}");
        assert!(text.contains("hostName = \"lb1\";"), "{text}");
        // Its two cards, named by the MACs the spec gives.
        assert!(text.contains("priv0.ipv4.addresses = [\n"), "{text}");
        assert!(text.contains("pub0.ipv4.addresses = [\n"), "{text}");
        assert!(text.contains("\"10-pub0\" = {\n"), "{text}");
        assert!(host_file("web1").contains("eth0.ipv4.addresses = [\n"));
        assert!(!host_file("web1").contains("systemd.network.links"));
    }

    #[test]
    fn only_app_hosts_take_pkgs() {
        assert!(host_file("app1").starts_with("# app1 (app)"));
        assert!(host_file("app1").contains("{ lib, pkgs, ... }:\n{\n"));
        assert!(host_file("db1").contains("{ lib, ... }:\n{\n"));
        assert!(host_file("app1").contains("package = pkgs.nixstack-demo-app;"));
    }

    #[test]
    fn native_configs_follow_roles() {
        let topology = default_topology();
        let by_name = |name: &str| topology.hosts.iter().find(|h| h.name == name).unwrap();
        assert_eq!(
            native_configs(&topology, by_name("lb1")),
            [NativeConfig::Haproxy, NativeConfig::Keepalived, NativeConfig::Nftables, NativeConfig::Otelcol]
        );
        assert_eq!(
            native_configs(&topology, by_name("db1")),
            [NativeConfig::Nftables, NativeConfig::Otelcol, NativeConfig::MariadbOpenssl, NativeConfig::SstStunnel]
        );
    }

    #[test]
    fn bios_images_boot_with_grub() {
        assert_eq!(boot_loader(crate::spec::ImageVariant::Raw), "grub");
        assert_eq!(boot_loader(crate::spec::ImageVariant::RawEfi), "systemd-boot");
    }
}
