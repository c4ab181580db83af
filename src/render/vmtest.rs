//! The NixOS VM test of a stack, `checks.<system>.vm-test` of the generated flake: the lab's one
//! [`Scenario`] run by `pkgs.testers.runNixOSTest`. Three files: the test module
//! (`checks/vm-test.nix`: a VM per host that imports the host's own configuration plus VM
//! plumbing, a `client` VM for the internet and an `admin` VM for the operators' network), the
//! test script (`checks/vm-test.py`, Python for the NixOS test driver, the same for every stack),
//! and the data it runs (`checks/scenario.json`: the Scenario's steps and what the script needs
//! of the stack). Pure: Topology → text.
//!
//! The Nix lives in `vmtest/*.nix{,.in}`, filled here with the stack's values; the script is
//! `vmtest/driver.py`, copied verbatim, which declares the data's shape and runs each step as
//! the lab's step checks it (`src/lab/run.rs`). No Python is printed here: the data is the
//! Scenario serialized.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;
use serde_json::Value;

use crate::render::flake::ExtraCheck;
use crate::render::nixos::{self, attr_name, quote, NativeConfig, Nix};
use crate::render::Layout;
use crate::spec::{Role, TlsMode};
use crate::stack::address_plan;
use crate::stack::scenario::{Scenario, Step};
use crate::stack::{self, Service};
use crate::topology::{Host, Topology};

/// Attribute name under `checks.<system>`.
pub const CHECK_NAME: &str = "vm-test";
/// The test's Nix file in the artifact tree.
pub const NIX_FILE: &str = "checks/vm-test.nix";
/// The test script in the artifact tree, read by [`NIX_FILE`]: [`DRIVER`], verbatim.
pub const SCRIPT_FILE: &str = "checks/vm-test.py";
/// The scenario's data in the artifact tree, which [`NIX_FILE`] hands the script.
pub const DATA_FILE: &str = "checks/scenario.json";
/// Where the test keeps its own files inside the VMs (a tmpfs: gone with the VM).
pub const TEST_DIR: &str = "/run/nixstack-vm-test";

/// The test script, the same for every stack.
pub const DRIVER: &str = include_str!("vmtest/driver.py");
/// The globals [`NIX_FILE`] sets in front of [`DRIVER`] in the `testScript`.
pub const NIX_GLOBALS: [&str; 2] = ["OPENSSL", "SCENARIO_JSON"];

/// The VLANs of the test driver: the spec's private network and its public one.
const PRIVATE_VLAN: i64 = 1;
const PUBLIC_VLAN: i64 = 2;

/// The group that may read the secrets directory (`nixstack.base.secretsGroup`, read-only in
/// modules/base.nix).
const SECRETS_GROUP: &str = "nixstack-secrets";
/// NixOS's default group of HAProxy (`services.haproxy.group`), which the ACME certificate
/// HAProxy serves belongs to (modules/lb.nix).
const HAPROXY_GROUP: &str = "haproxy";
/// The HAProxy backend of the web tier (render::haproxy).
const HAPROXY_BACKEND: &str = "web";
/// The scenario's own database, apart from the app's (as in the lab).
const SCENARIO_DB: &str = "nixstack_lab";

const TEST_TEMPLATE: &str = include_str!("vmtest/test.nix.in");
const NODE_TEMPLATE: &str = include_str!("vmtest/node.nix.in");
const DEFAULTS_MODULE: &str = include_str!("vmtest/defaults.nix");
const CLIENT_TEMPLATE: &str = include_str!("vmtest/client.nix.in");
const ADMIN_TEMPLATE: &str = include_str!("vmtest/admin.nix.in");
const UNAVAILABLE_TEMPLATE: &str = include_str!("vmtest/unavailable.nix.in");

/// The flake check that runs the test: `checks.<system>.vm-test`.
pub fn extra_check() -> ExtraCheck {
    ExtraCheck {
        name: CHECK_NAME.into(),
        expression: format!("pkgs.testers.runNixOSTest (import ./{NIX_FILE} {{ inherit self disko; }})"),
    }
}

/// The files of the test, keyed by their path in the artifact tree: the Nix file, the script
/// and its data; only the Nix file (which says why) when the stack has no VM test.
pub fn files(topology: &Topology) -> Vec<(String, String)> {
    match data(topology) {
        Ok(data) => vec![
            (NIX_FILE.to_string(), nix(topology)),
            (SCRIPT_FILE.to_string(), DRIVER.to_string()),
            (DATA_FILE.to_string(), data),
        ],
        Err(_) => vec![(NIX_FILE.to_string(), nix(topology))],
    }
}

/// A unit the test waits for on a host. `held` units read secrets: the VM keeps them from
/// starting at boot, and the script starts them once the secrets are in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unit {
    pub name: String,
    pub held: bool,
}

impl Unit {
    fn new(name: &str, held: bool) -> Unit {
        Unit { name: name.to_string(), held }
    }

    /// The unit's name without `.service`, as `systemd.services.<name>` takes it.
    fn stem(&self) -> &str {
        self.name.trim_end_matches(".service")
    }
}

/// The units of `host`, in the order the lab starts its daemons, then the monitoring agent.
pub fn units(topology: &Topology, host: &Host) -> Vec<Unit> {
    let mut units = Vec::new();
    for daemon in stack::for_host(topology, host) {
        match daemon {
            // modules/firewall.nix is on only where the host file enables it.
            Service::Nftables if host.firewall => units.push(Unit::new("nftables.service", false)),
            Service::Nftables => {}
            Service::Sshd => units.push(Unit::new("sshd.service", false)),
            Service::Mariadb => {
                units.push(Unit::new("mysql.service", true));
                if has_db_users(topology, host) {
                    units.push(Unit::new("nixstack-db-users.service", true));
                }
            }
            Service::App => units.push(Unit::new("nixstack-app.service", true)),
            Service::Nginx => units.push(Unit::new("nginx.service", true)),
            Service::Haproxy => units.push(Unit::new("haproxy.service", true)),
            // NixOS starts keepalived from a boot-delay timer, held back in the node.
            Service::Keepalived => units.push(Unit::new("keepalived.service", true)),
            // The lab runs collectd whatever the spec's agent; a NixOS host runs the agent
            // its host file configures (modules/monitoring.nix).
            Service::Collectd => {
                for config in nixos::native_configs(topology, host) {
                    match config {
                        NativeConfig::Otelcol => units.push(Unit::new("opentelemetry-collector.service", true)),
                        NativeConfig::Collectd => units.push(Unit::new("collectd.service", true)),
                        _ => {}
                    }
                }
            }
        }
    }
    units
}

/// Whether modules/db.nix runs `nixstack-db-users` on the host (it has users to create).
fn has_db_users(topology: &Topology, host: &Host) -> bool {
    host.has(Role::Db)
        && topology
            .db
            .as_ref()
            .is_some_and(|db| !db.users.is_empty() || (host.monitored && topology.monitoring.is_some()))
}

/// The VM test's view of a stack: node names and the addresses of the extra nodes, which the
/// lab's address plan places (the Scenario's firewall matrix expects connects from there).
struct Vm<'t> {
    topology: &'t Topology,
    client: String,
    admin: String,
    internet_address: Ipv4Addr,
    admin_address: Ipv4Addr,
    admin_network: Ipv4Net,
}

impl<'t> Vm<'t> {
    fn new(topology: &'t Topology) -> Result<Vm<'t>, String> {
        let plan = address_plan::plan(topology).map_err(|e| format!("{e:#}"))?;
        let admin_network = *topology.networks.admin.first().ok_or("the VM test needs an admin network")?;
        Ok(Vm {
            topology,
            client: free_node_name(topology, "client"),
            admin: free_node_name(topology, "admin"),
            internet_address: plan.internet_address(),
            admin_address: plan.admin_address(),
            admin_network,
        })
    }

    fn nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self.topology.hosts.iter().map(|h| h.name.clone()).collect();
        nodes.extend([self.client.clone(), self.admin.clone()]);
        nodes.sort();
        nodes
    }
}

/// `wanted`, or with `0`s appended until no host has the name.
fn free_node_name(topology: &Topology, wanted: &str) -> String {
    let mut name = wanted.to_string();
    while topology.host(&name).is_some() {
        name.push('0');
    }
    name
}

// ---------------------------------------------------------------------------------------------
// The Nix file

/// `checks/vm-test.nix`: a function of the flake's `self` and `disko` returning the test module.
pub fn nix(topology: &Topology) -> String {
    let vm = match Vm::new(topology) {
        Ok(vm) => vm,
        Err(why) => {
            return fill(
                UNAVAILABLE_TEMPLATE,
                &[
                    ("stack", one_line(&topology.stack.name)),
                    ("why", one_line(&why)),
                    ("message", quote(&format!("nixstack: no VM test for stack {}: {why}", topology.stack.name))),
                ],
            )
        }
    };
    let mut nodes = String::from("{\n");
    for (name, node) in nodes_of(&vm) {
        let name = attr_name(&name);
        match node {
            NodeText::Module(module) => nodes.push_str(&format!("  {name} =\n{};\n", indent(&module, 2))),
            NodeText::Call(call) => nodes.push_str(&format!("  {name} = {};\n", indent(&call, 1).trim_start())),
        }
    }
    nodes.push('}');
    let file_name = |path: &'static str| path.rsplit('/').next().expect("a file name").to_string();
    fill(
        TEST_TEMPLATE,
        &[
            ("stack", one_line(&topology.stack.name)),
            ("check", CHECK_NAME.to_string()),
            ("script", file_name(SCRIPT_FILE)),
            ("data", file_name(DATA_FILE)),
            ("client", vm.client.clone()),
            ("admin", vm.admin.clone()),
            ("name", quote(&format!("nixstack-{}", topology.stack.name))),
            ("defaults", defaults_module()),
            ("node_function_name", HOST_NODE_FUNCTION.to_string()),
            ("node_function", host_node_function(&vm)),
            ("nodes", nodes),
        ],
    )
}

/// The name [`node_modules`] gives the module every node imports (`defaults`).
pub const DEFAULTS: &str = "defaults";

/// Every NixOS module of the test as standalone text, what the option checker judges:
/// `defaults` (set on every node), the function that makes each host's node
/// ([`HOST_NODE_FUNCTION`], a module behind its arguments), then the client's and the admin's.
pub fn node_modules(topology: &Topology) -> Vec<(String, String)> {
    let Ok(vm) = Vm::new(topology) else { return Vec::new() };
    let mut modules =
        vec![(DEFAULTS.to_string(), defaults_module()), (HOST_NODE_FUNCTION.to_string(), host_node_function(&vm))];
    modules.extend(nodes_of(&vm).into_iter().filter_map(|(name, node)| match node {
        NodeText::Module(module) => Some((name, module)),
        NodeText::Call(_) => None,
    }));
    modules
}

/// A node of the test as the file writes it.
enum NodeText {
    /// A module of its own (the client, the admin).
    Module(String),
    /// A call of [`HOST_NODE_FUNCTION`] (a host).
    Call(String),
}

/// Every node, sorted by name.
fn nodes_of(vm: &Vm) -> Vec<(String, NodeText)> {
    vm.nodes()
        .into_iter()
        .map(|name| {
            let node = if name == vm.client {
                NodeText::Module(client_module(vm))
            } else if name == vm.admin {
                NodeText::Module(admin_module(vm))
            } else {
                NodeText::Call(host_node_call(vm, vm.topology.host(&name).expect("a host node")))
            };
            (name, node)
        })
        .collect()
}

/// The module every node imports (`vmtest/defaults.nix`), without its final newline.
fn defaults_module() -> String {
    DEFAULTS_MODULE.trim_end().to_string()
}

/// `[ { address; prefixLength; } ]`.
fn addresses(address: Ipv4Addr, network: Ipv4Net) -> Nix {
    Nix::List(vec![Nix::Attrs(vec![
        (vec!["address".into()], Nix::str(address.to_string())),
        (vec!["prefixLength".into()], Nix::Int(i64::from(network.prefix_len()))),
    ])])
}

/// On-link routes to `networks` (no gateway: the networks share the VLAN).
fn routes(networks: &[Ipv4Net]) -> Nix {
    Nix::List(
        networks
            .iter()
            .map(|network| {
                Nix::Attrs(vec![
                    (vec!["address".into()], Nix::str(network.network().to_string())),
                    (vec!["prefixLength".into()], Nix::Int(i64::from(network.prefix_len()))),
                ])
            })
            .collect(),
    )
}

/// The name of the function in the file's `let` that makes a host's node.
pub const HOST_NODE_FUNCTION: &str = "vmNode";

/// `vmNode` (`vmtest/node.nix.in`): the function of a host's VM settings that makes its node
/// module. The settings every host shares, and their comments, are written once there; each
/// host's node is a call ([`host_node_call`]) with what differs.
fn host_node_function(vm: &Vm) -> String {
    let layout = Layout::nixos();
    fill(
        NODE_TEMPLATE,
        &[
            ("private_interface", quote(&layout.private_interface)),
            ("private_vlan", PRIVATE_VLAN.to_string()),
            ("public_vlan", PUBLIC_VLAN.to_string()),
            ("admin_routes", routes(&vm.topology.networks.admin).render()),
            ("authorized_keys", Nix::strs([authorized_keys()]).render()),
        ],
    )
    .trim_end()
    .to_string()
}

/// A host's node: a call of [`host_node_function`] with the host's VM settings.
fn host_node_call(vm: &Vm, host: &Host) -> String {
    let mut arguments = vec![(vec!["host".to_string()], Nix::str(host.name.clone()))];
    // The cards as the host file names them (by MAC: `Layout::nixos_for`).
    let layout = Layout::nixos_for(host);
    if layout.private_interface != Layout::nixos().private_interface {
        arguments.push((vec!["privateCard".into()], Nix::str(&layout.private_interface)));
    }
    if host.public_address.is_some() {
        arguments.push((vec!["publicCard".into()], Nix::str(&layout.public_interface)));
    }
    let held: Vec<Unit> = units(vm.topology, host).into_iter().filter(|unit| unit.held).collect();
    let mut stems: Vec<&str> = held.iter().map(Unit::stem).collect();
    stems.sort();
    arguments.push((vec!["heldServices".into()], Nix::strs(stems)));
    // NixOS starts keepalived from a boot-delay timer: it is held back with the service.
    if held.iter().any(|unit| unit.name == "keepalived.service") {
        arguments.push((vec!["heldTimers".into()], Nix::strs(["keepalived-boot-delay"])));
    }
    if host.has(Role::Lb) && vm.topology.lb.as_ref().is_some_and(|lb| lb.tls == TlsMode::Acme) {
        arguments.push((vec!["disableAcme".into()], Nix::Bool(true)));
    }
    if let Some(size) = disk_size_mib(vm.topology, host) {
        arguments.push((vec!["diskSize".into()], Nix::Int(size as i64)));
    }
    format!("{HOST_NODE_FUNCTION} {}", Nix::Attrs(arguments).render())
}

/// NixOS's `virtualisation.diskSize` default (MiB): what a test VM's system needs itself.
pub const NIXOS_DEFAULT_DISK_MIB: u64 = 1024;

/// Room for a Galera node's datadir besides its write-set cache (MiB): a freshly bootstrapped
/// MariaDB 10.11 datadir is ~126 MiB (the 96 MiB redo log, the 12 MiB system tablespace, the
/// system tables), to which the scenario's data, a snapshot transfer and the binary logs add.
pub const DATADIR_MIB: u64 = 512;

/// Galera's default `gcache.page_size` (MiB): the overflow page it adds when a write set does
/// not fit the ring buffer.
const GCACHE_PAGE_MIB: u64 = 128;

/// The VM disk of a db host, in MiB: NixOS's default for the system, plus the rendered
/// `gcache.size` (preallocated in the datadir) and one overflow page, plus [`DATADIR_MIB`].
/// `None` (NixOS's default) for the other hosts.
pub fn disk_size_mib(topology: &Topology, host: &Host) -> Option<u64> {
    if !host.has(Role::Db) || topology.db.is_none() {
        return None;
    }
    let gcache =
        crate::render::galera::gcache_size_mib(&crate::render::galera::settings(topology, host, &Layout::nixos()))?;
    Some(NIXOS_DEFAULT_DISK_MIB + gcache + GCACHE_PAGE_MIB + DATADIR_MIB)
}

/// The internet's node (`vmtest/client.nix.in`).
fn client_module(vm: &Vm) -> String {
    fill(
        CLIENT_TEMPLATE,
        &[
            ("public_vlan", PUBLIC_VLAN.to_string()),
            ("addresses", addresses(vm.internet_address, vm.topology.networks.public).render()),
        ],
    )
    .trim_end()
    .to_string()
}

/// The operators' node (`vmtest/admin.nix.in`).
fn admin_module(vm: &Vm) -> String {
    fill(
        ADMIN_TEMPLATE,
        &[
            ("private_vlan", PRIVATE_VLAN.to_string()),
            ("addresses", addresses(vm.admin_address, vm.admin_network).render()),
            ("routes", routes(&[vm.topology.networks.private]).render()),
        ],
    )
    .trim_end()
    .to_string()
}

/// Prefixes every non-empty line of `text` with `level` indentation steps.
fn indent(text: &str, level: usize) -> String {
    let pad = "  ".repeat(level);
    text.lines()
        .map(|line| if line.is_empty() { String::new() } else { format!("{pad}{line}") })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Replaces every `@name@` slot of `template` with its value; the lines after the first of a
/// value get the indentation of the line the slot is on. Values are not searched for slots. A
/// slot without a value, or a value without a slot, is a bug.
fn fill(template: &str, slots: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut used = vec![false; slots.len()];
    let mut rest = template;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let name_len = after.find(|c: char| !(c.is_ascii_lowercase() || c == '_')).unwrap_or(after.len());
        if name_len == 0 || !after[name_len..].starts_with('@') {
            out.push('@');
            rest = after;
            continue;
        }
        let name = &after[..name_len];
        let index = slots
            .iter()
            .position(|(slot, _)| *slot == name)
            .unwrap_or_else(|| panic!("vmtest template slot @{name}@ has no value"));
        used[index] = true;
        let line_start = out.rfind('\n').map_or(0, |i| i + 1);
        let pad: String = out[line_start..].chars().take_while(|c| *c == ' ').collect();
        let value = slots[index].1.lines().enumerate().map(|(i, line)| {
            if i == 0 || line.is_empty() {
                line.to_string()
            } else {
                format!("{pad}{line}")
            }
        });
        out.push_str(&value.collect::<Vec<_>>().join("\n"));
        rest = &after[name_len + 1..];
    }
    out.push_str(rest);
    for ((name, _), used) in slots.iter().zip(used) {
        assert!(used, "vmtest template has no slot @{name}@");
    }
    out
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

fn authorized_keys() -> String {
    format!("{TEST_DIR}/authorized_keys")
}

// ---------------------------------------------------------------------------------------------
// The scenario's data

/// `checks/scenario.json`, what the script runs: the Scenario's steps, each the Scenario's own
/// serialization, and the stack's facts the script needs. Every key here is one the script
/// declares and reads (its `Scenario` TypedDict); tests/vmtest.rs holds both sides to that.
#[derive(Debug, Serialize)]
struct Data<'s> {
    stack: &'s str,
    /// The name of the stack's CA (`nixstack secrets init` names it so).
    ca_name: String,
    /// Every node of the test; the driver's globals are named after them.
    nodes: Vec<String>,
    client: String,
    admin: String,
    hosts: Vec<String>,
    lbs: Vec<String>,
    vip: Option<Ipv4Addr>,
    host_addresses: BTreeMap<String, Ipv4Addr>,
    /// Private and public addresses → host (the app reports its web peer by address).
    address_to_host: BTreeMap<String, String>,
    paths: Paths,
    secrets_group: &'static str,
    haproxy_backend: &'static str,
    scenario_db: &'static str,
    secrets: Secrets,
    start_order: &'s [Vec<String>],
    units: BTreeMap<String, Vec<Unit>>,
    bootstrap: Option<&'s str>,
    omitted: &'s [String],
    steps: Vec<StepData<'s>>,
}

/// Where the test and the hosts keep what the steps use, inside the VMs.
#[derive(Debug, Serialize)]
struct Paths {
    test_dir: &'static str,
    client_ca: String,
    admin_key: String,
    authorized_keys: String,
    secrets_dir: String,
    host_ca: String,
    mysql_socket: String,
    haproxy_socket: String,
}

/// The secrets, laid out as `nixstack secrets init` lays out `secrets/`, which the script
/// makes (throwaway ones, with openssl) and copies where the deploy puts them.
#[derive(Debug, Serialize)]
struct Secrets {
    certificates: Vec<HostCertificate>,
    public_certificate: Option<PublicCertificate>,
    passwords: Vec<String>,
    plain: Vec<PlainSecret>,
    hosts: BTreeMap<String, Vec<SecretFile>>,
    extra_copies: BTreeMap<String, Vec<ExtraCopy>>,
    /// MariaDB account → its password file (the accounts the steps log in with).
    db_password_files: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
struct HostCertificate {
    directory: String,
    common_name: String,
    dns_names: Vec<String>,
    ip_addresses: Vec<String>,
}

#[derive(Debug, Serialize)]
struct PublicCertificate {
    file: String,
    common_name: String,
    dns_names: Vec<String>,
    ip_addresses: Vec<String>,
}

#[derive(Debug, Serialize)]
struct PlainSecret {
    file: String,
    text: &'static str,
}

#[derive(Debug, Serialize)]
struct SecretFile {
    source: String,
    name: String,
}

#[derive(Debug, Serialize)]
struct ExtraCopy {
    source: String,
    target: String,
    group: &'static str,
}

/// One step of the Scenario: its data, or why the VM test does not run it.
#[derive(Debug, Serialize)]
struct StepData<'s> {
    name: &'static str,
    skip: Option<&'static str>,
    check: Option<&'s Step>,
}

/// `checks/scenario.json` of `topology`, or why the stack has no VM test.
pub fn data(topology: &Topology) -> Result<String, String> {
    let vm = Vm::new(topology)?;
    let scenario = Scenario::for_topology(topology);
    let value = serde_json::to_value(data_of(&vm, &scenario)).expect("the scenario's data serializes");
    Ok(json_text(&value))
}

fn data_of<'s>(vm: &Vm<'s>, scenario: &'s Scenario) -> Data<'s> {
    let topology = vm.topology;
    let layout = Layout::nixos();
    let path = |path: std::path::PathBuf| path.to_string_lossy().into_owned();
    let mut address_to_host = BTreeMap::new();
    for host in &topology.hosts {
        for address in std::iter::once(host.address).chain(host.public_address) {
            address_to_host.insert(address.to_string(), host.name.clone());
        }
    }
    Data {
        stack: &topology.stack.name,
        ca_name: crate::secrets::ca_name(&topology.stack.name),
        nodes: vm.nodes(),
        client: vm.client.clone(),
        admin: vm.admin.clone(),
        hosts: topology.hosts.iter().map(|h| h.name.clone()).collect(),
        lbs: topology.lb.as_ref().map(|lb| lb.hosts.clone()).unwrap_or_default(),
        vip: topology.lb.as_ref().map(|lb| lb.vip),
        host_addresses: topology.hosts.iter().map(|h| (h.name.clone(), h.address)).collect(),
        address_to_host,
        paths: Paths {
            test_dir: TEST_DIR,
            client_ca: format!("{TEST_DIR}/ca.crt"),
            admin_key: format!("{TEST_DIR}/admin_ed25519"),
            authorized_keys: authorized_keys(),
            secrets_dir: path(layout.secrets.clone()),
            host_ca: path(layout.ca_cert()),
            mysql_socket: path(layout.mysql_socket()),
            haproxy_socket: path(layout.haproxy_socket()),
        },
        secrets_group: SECRETS_GROUP,
        haproxy_backend: HAPROXY_BACKEND,
        scenario_db: SCENARIO_DB,
        secrets: secrets_of(topology, scenario, &layout),
        start_order: &topology.start_order,
        units: topology.hosts.iter().map(|host| (host.name.clone(), units(topology, host))).collect(),
        bootstrap: topology.db.as_ref().map(|db| db.bootstrap.as_str()),
        omitted: &scenario.omitted,
        steps: scenario.steps.iter().map(|step| step_data(step)).collect(),
    }
}

fn secrets_of(topology: &Topology, scenario: &Scenario, layout: &Layout) -> Secrets {
    let certificates = topology
        .certificates
        .iter()
        .map(|c| HostCertificate {
            directory: format!("hosts/{}", c.host),
            common_name: c.common_name.clone(),
            dns_names: c.dns_names.clone(),
            ip_addresses: c.ip_addresses.iter().map(|a| a.to_string()).collect(),
        })
        .collect();
    let public_certificate = topology.lb.as_ref().map(|lb| PublicCertificate {
        file: crate::secrets::public_certificate_file(topology),
        common_name: topology.stack.domain.clone(),
        dns_names: vec![topology.stack.domain.clone()],
        ip_addresses: vec![lb.vip.to_string()],
    });
    let hosts: BTreeMap<String, Vec<SecretFile>> = topology
        .hosts
        .iter()
        .map(|host| {
            let files = crate::secrets::host_secrets(topology, &host.name, std::path::Path::new(""))
                .into_iter()
                .map(|(source, name)| SecretFile { source: source.to_string_lossy().into_owned(), name })
                .collect();
            (host.name.clone(), files)
        })
        .collect();
    let mut passwords: Vec<String> = hosts
        .values()
        .flatten()
        .map(|file| file.source.clone())
        .filter(|source| source.ends_with(".password"))
        .collect();
    passwords.sort();
    passwords.dedup();
    // Nothing ships metrics out of a VM test: the endpoint stays the placeholder.
    let plain = topology
        .monitoring
        .iter()
        .map(|m| PlainSecret { file: m.endpoint_secret.clone(), text: crate::secrets::SUMOLOGIC_PLACEHOLDER })
        .collect();
    // HAProxy serves lego's `full.pem` on NixOS with ACME: the public bundle goes there.
    let extra_copies = match &topology.lb {
        Some(lb) if lb.tls == TlsMode::Acme => lb
            .hosts
            .iter()
            .map(|host| {
                let copy = ExtraCopy {
                    source: crate::secrets::public_certificate_file(topology),
                    target: layout.public_pem(&topology.stack.domain, true).to_string_lossy().into_owned(),
                    group: HAPROXY_GROUP,
                };
                (host.clone(), vec![copy])
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    let db_password_files = scenario
        .steps
        .iter()
        .filter(|step| step_data(step).check.is_some())
        .flat_map(|step| match step {
            Step::CollectorEndpointsLocal { endpoints } => endpoints.iter().filter_map(|e| e.user.clone()).collect(),
            _ => Vec::new(),
        })
        .map(|user| {
            let file = crate::secrets::db_password_file(&user);
            (user, file)
        })
        .collect();
    Secrets { certificates, public_certificate, passwords, plain, hosts, extra_copies, db_password_files }
}

/// Every step of the Scenario as the script gets it: its data, or why the VM test cannot run
/// it. A new kind of step must be decided here (and, to run, handled by the script) before
/// this compiles.
fn step_data(step: &Step) -> StepData<'_> {
    let skip = match step {
        Step::HttpsViaVip { .. }
        | Step::BackendTls { .. }
        | Step::AdminSsh { .. }
        | Step::MultiMaster { .. }
        | Step::FirewallMatrix { .. }
        | Step::WebFailover { .. }
        | Step::DbFailover { .. }
        | Step::LbFailover { .. }
        | Step::CollectorEndpointsLocal { .. } => None,
        Step::MetricsArrive { .. } | Step::WebQps { .. } => Some(NO_SUMOLOGIC_STANDIN),
        Step::HttpsViaVip6 { .. } => Some(NO_IPV6_CLIENT),
    };
    StepData { name: step.name(), skip, check: if skip.is_none() { Some(step) } else { None } }
}

/// Why the IPv6 step does not run in the VM test (the lab runs it).
const NO_IPV6_CLIENT: &str = "the VM test's client reaches the load balancers over the test driver's IPv4 VLAN only; the lab runs this step between its namespaces";

/// Why the steps that read what reached the monitoring service do not run in the VM test.
const NO_SUMOLOGIC_STANDIN: &str = "it reads what reached the monitoring endpoint, which the lab provides with a Sumo Logic stand-in; the VM test has no stand-in node and keeps the endpoint secret a placeholder";

/// JSON, deterministic (keys sorted) and diffable: a value on one line when it fits in 100
/// columns, a record in a list (an object of scalars and small objects, such as a probe) on
/// one line always, else one member per line.
fn json_text(value: &Value) -> String {
    let mut out = String::new();
    write_json(value, 0, false, &mut out);
    out.push('\n');
    out
}

fn write_json(value: &Value, level: usize, in_list: bool, out: &mut String) {
    let compact = compact_json(value);
    let record = in_list && value.is_object() && depth(value) <= 2;
    if record || level * 2 + compact.len() <= 100 {
        out.push_str(&compact);
        return;
    }
    let pad = "  ".repeat(level + 1);
    match value {
        Value::Array(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                out.push_str(&pad);
                write_json(item, level + 1, true, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            out.push_str(&"  ".repeat(level));
            out.push(']');
        }
        Value::Object(members) => {
            out.push_str("{\n");
            for (i, (key, item)) in members.iter().enumerate() {
                out.push_str(&pad);
                out.push_str(&Value::String(key.clone()).to_string());
                out.push_str(": ");
                write_json(item, level + 1, false, out);
                out.push_str(if i + 1 < members.len() { ",\n" } else { "\n" });
            }
            out.push_str(&"  ".repeat(level));
            out.push('}');
        }
        _ => out.push_str(&compact),
    }
}

/// `value` on one line, with a space after each `,` and `:`.
fn compact_json(value: &Value) -> String {
    match value {
        Value::Array(items) => format!("[{}]", items.iter().map(compact_json).collect::<Vec<_>>().join(", ")),
        Value::Object(members) => format!(
            "{{{}}}",
            members
                .iter()
                .map(|(key, item)| format!("{}: {}", Value::String(key.clone()), compact_json(item)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        scalar => scalar.to_string(),
    }
}

/// How deep containers nest in `value`: 0 for a scalar, 1 for a container of scalars.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(members) => 1 + members.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SpecSource;
    use crate::topology::compile;

    #[test]
    fn units_follow_the_lab_order_and_hold_back_what_reads_secrets() {
        let topology = compile(&SpecSource::embedded_default()).unwrap();
        let db1 = topology.host("db1").unwrap();
        let names: Vec<(String, bool)> = units(&topology, db1).into_iter().map(|u| (u.name, u.held)).collect();
        assert_eq!(
            names,
            [
                ("nftables.service".to_string(), false),
                ("sshd.service".to_string(), false),
                ("mysql.service".to_string(), true),
                ("nixstack-db-users.service".to_string(), true),
                ("opentelemetry-collector.service".to_string(), true),
            ]
        );
    }

    #[test]
    fn a_node_name_taken_by_a_host_gets_another() {
        let mut topology = compile(&SpecSource::embedded_default()).unwrap();
        topology.hosts[0].name = "client".into();
        assert_eq!(free_node_name(&topology, "client"), "client0");
        assert_eq!(free_node_name(&topology, "admin"), "admin");
    }

    #[test]
    fn slots_take_the_indentation_of_their_line_and_values_are_not_searched() {
        let filled =
            fill("a\n  b = @value@;\n@other@\n", &[("value", "[\n  1\n\n]".into()), ("other", "@value@".into())]);
        assert_eq!(filled, "a\n  b = [\n    1\n\n  ];\n@value@\n");
        assert_eq!(fill("mail me@example.org", &[]), "mail me@example.org");
    }

    #[test]
    #[should_panic(expected = "has no value")]
    fn a_slot_without_a_value_is_a_bug() {
        fill("@missing@", &[]);
    }

    #[test]
    fn json_is_one_record_per_line_and_parses_back() {
        let value = serde_json::json!({
            "b": [{ "from": { "kind": "host", "name": "web1" }, "port": 22, "reason": "a long reason that does not fit on one line with the rest of it, not at all" }],
            "a": 1,
        });
        let text = json_text(&value);
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
        assert_eq!(
            text,
            "{\"a\": 1, \"b\": [{\"from\": {\"kind\": \"host\", \"name\": \"web1\"}, \"port\": 22, \"reason\": \"a long reason that does not fit on one line with the rest of it, not at all\"}]}\n"
                .replace("{\"a\": 1, \"b\": [", "{\n  \"a\": 1,\n  \"b\": [\n    ")
                .replace("}]}\n", "}\n  ]\n}\n")
        );
    }
}
