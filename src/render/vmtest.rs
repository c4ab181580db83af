//! The NixOS VM test of a stack, `checks.<system>.vm-test` of the generated flake: the lab's one
//! [`Scenario`] rendered as the `testScript` of `pkgs.testers.runNixOSTest` (Python for the
//! NixOS test driver, `checks/vm-test.py`), and the nodes it runs on (`checks/vm-test.nix`): a
//! VM per host that imports the host's own configuration plus VM plumbing, a `client` VM for the
//! internet and an `admin` VM for the operators' network. Pure: Topology → text.
//!
//! The Nix and the fixed Python live in `vmtest.nix.in` and `vmtest.py.in`; this fills in the
//! stack's data and renders each step of the Scenario as a call of the helper that checks what
//! the lab's step checks (`src/lab/run.rs`).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::lab::daemons::{self, Daemon};
use crate::lab::network;
use crate::lab::scenario::{Node, Probe, Scenario, Step};
use crate::render::flake::ExtraCheck;
use crate::render::nixos::{self, quote, NativeConfig, Nix};
use crate::render::Layout;
use crate::spec::{Role, TlsMode};
use crate::topology::{Host, Topology};

/// Attribute name under `checks.<system>`.
pub const CHECK_NAME: &str = "vm-test";
/// The test's Nix file in the artifact tree.
pub const NIX_FILE: &str = "checks/vm-test.nix";
/// The test script in the artifact tree, read by [`NIX_FILE`].
pub const SCRIPT_FILE: &str = "checks/vm-test.py";
/// Where the test keeps its own files inside the VMs (a tmpfs: gone with the VM).
pub const TEST_DIR: &str = "/run/nixstack-vm-test";

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

const TEMPLATE: &str = include_str!("vmtest.nix.in");
const HELPERS: &str = include_str!("vmtest.py.in");

/// The flake check that runs the test: `checks.<system>.vm-test`.
pub fn extra_check() -> ExtraCheck {
    ExtraCheck {
        name: CHECK_NAME.into(),
        expression: format!("pkgs.testers.runNixOSTest (import ./{NIX_FILE} {{ inherit self disko; }})"),
    }
}

/// Both files of the test, keyed by their path in the artifact tree.
pub fn files(topology: &Topology) -> Vec<(String, String)> {
    vec![(NIX_FILE.to_string(), nix(topology)), (SCRIPT_FILE.to_string(), script(topology))]
}

/// The line that starts step `number` (1-based) of the Scenario in the script.
pub fn step_marker(number: usize, step: &Step) -> String {
    format!("# scenario step {number}: {}", step.name())
}

/// A unit the test waits for on a host. `held` units read secrets: the VM keeps them from
/// starting at boot, and the script starts them once the secrets are in place.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    for daemon in daemons::for_host(host) {
        match daemon {
            // modules/firewall.nix is on only where the host file enables it.
            Daemon::Nftables if host.firewall => units.push(Unit::new("nftables.service", false)),
            Daemon::Nftables => {}
            Daemon::Sshd => units.push(Unit::new("sshd.service", false)),
            Daemon::Mariadb => {
                units.push(Unit::new("mysql.service", true));
                if has_db_users(topology, host) {
                    units.push(Unit::new("nixstack-db-users.service", true));
                }
            }
            Daemon::App => units.push(Unit::new("nixstack-app.service", true)),
            Daemon::Nginx => units.push(Unit::new("nginx.service", true)),
            Daemon::Haproxy => units.push(Unit::new("haproxy.service", true)),
            // NixOS starts keepalived from a boot-delay timer, held back in the node.
            Daemon::Keepalived => units.push(Unit::new("keepalived.service", true)),
            // The lab runs collectd whatever the spec's agent; a NixOS host runs the agent
            // its host file configures (modules/monitoring.nix).
            Daemon::Collectd => {
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
/// lab's network plan places (the Scenario's firewall matrix expects connects from there).
struct Vm<'t> {
    topology: &'t Topology,
    scenario: Scenario,
    client: String,
    admin: String,
    internet_address: Ipv4Addr,
    admin_address: Ipv4Addr,
    admin_network: Ipv4Net,
}

impl<'t> Vm<'t> {
    fn new(topology: &'t Topology) -> Result<Vm<'t>, String> {
        let plan = network::plan(topology).map_err(|e| format!("{e:#}"))?;
        let admin_network = *topology.networks.admin.first().ok_or("the VM test needs an admin network")?;
        Ok(Vm {
            topology,
            scenario: Scenario::for_topology(topology),
            client: free_node_name(topology, "client"),
            admin: free_node_name(topology, "admin"),
            internet_address: plan.internet_address(),
            admin_address: plan.admin_address(),
            admin_network,
        })
    }

    /// The machine that probes for a Scenario source (`internet`, `admin` or a host).
    fn source_machine(&self, source: &str) -> String {
        match source {
            "internet" => self.client.clone(),
            "admin" => self.admin.clone(),
            host => host.to_string(),
        }
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
            return format!(
                "# The NixOS VM test of the {} stack cannot be rendered: {why}.\n{{ self, disko }}:\nthrow {}\n",
                topology.stack.name,
                quote(&format!("nixstack: no VM test for stack {}: {why}", topology.stack.name))
            )
        }
    };
    let mut nodes = String::from("{\n");
    for (name, node) in nodes_of(&vm) {
        let name = nixos::attr_name(&name);
        match node {
            NodeText::Module(module) => nodes.push_str(&format!("    {name} =\n{};\n", indent(&module, 3))),
            NodeText::Call(call) => nodes.push_str(&format!("    {name} = {};\n", indent(&call, 2).trim_start())),
        }
    }
    nodes.push_str("  }");
    let script_name = SCRIPT_FILE.rsplit('/').next().expect("a file name");
    fill(
        TEMPLATE,
        &[
            ("stack", topology.stack.name.clone()),
            ("check", CHECK_NAME.to_string()),
            ("script", script_name.to_string()),
            ("client", vm.client.clone()),
            ("admin", vm.admin.clone()),
            ("name", quote(&format!("nixstack-{}", topology.stack.name))),
            ("defaults", indent(&defaults_module(), 2)),
            ("node_function_name", HOST_NODE_FUNCTION.to_string()),
            ("node_function", indent(&host_node_function(&vm), 2)),
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
    let mut modules = vec![
        (DEFAULTS.to_string(), defaults_module()),
        (HOST_NODE_FUNCTION.to_string(), host_node_function(&vm)),
    ];
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

/// One binding of a module: why, where, what.
struct Setting {
    comment: &'static str,
    path: String,
    value: Nix,
}

fn setting(comment: &'static str, path: impl Into<String>, value: Nix) -> Setting {
    Setting { comment, path: path.into(), value }
}

/// `arguments\n{ ... }` with a comment line above each binding that has one.
fn module(arguments: &str, settings: &[Setting]) -> String {
    let mut text = format!("{arguments}\n{{\n");
    for (i, setting) in settings.iter().enumerate() {
        if !setting.comment.is_empty() {
            if i > 0 {
                text.push('\n');
            }
            for line in setting.comment.lines() {
                text.push_str(&format!("  # {line}\n"));
            }
        }
        let value = indent(&setting.value.render(), 1);
        text.push_str(&format!("  {} = {};\n", setting.path, value.trim_start()));
    }
    text.push('}');
    text
}

fn defaults_module() -> String {
    module(
        "{ lib, pkgs, ... }:",
        &[
            setting(
                "No SLiRP card: the test driver talks to the VMs over a virtio console, and without\n\
                 it the first VLAN card is eth0, as the rendered configs expect (Layout::nixos).",
                "virtualisation.qemu.networkingOptions",
                Nix::Raw("lib.mkForce [ ]".into()),
            ),
            setting("", "virtualisation.memorySize", Nix::Int(1024)),
            setting(
                "The scenario's clients: curl, socat for HAProxy's admin socket, the MariaDB client.",
                "environment.systemPackages",
                Nix::List(vec![Nix::Raw("pkgs.curl".into()), Nix::Raw("pkgs.mariadb".into()), Nix::Raw("pkgs.socat".into())]),
            ),
        ],
    )
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

fn vlans(cards: &[(&str, i64)]) -> Nix {
    Nix::Attrs(cards.iter().map(|(card, vlan)| (vec![card.to_string(), "vlan".into()], Nix::Int(*vlan))).collect())
}

/// The name of the function in the file's `let` that makes a host's node.
pub const HOST_NODE_FUNCTION: &str = "vmNode";

/// `vmNode`: the function of a host's VM settings that makes its node module. The settings
/// every host shares, and their comments, are written once here; each host's node is a call
/// ([`host_node_call`]) with what differs.
fn host_node_function(vm: &Vm) -> String {
    let layout = Layout::nixos();
    let held_back = |attribute: &str| Nix::Raw(format!("lib.genAttrs {attribute} (_: {{ wantedBy = lib.mkForce [ ]; }})"));
    let settings = [
        setting(
            "The host's own configuration, with the modules `nixosConfigurations` give it.",
            "imports",
            Nix::List(vec![Nix::Raw("../hosts + \"/${host}\"".into()), Nix::Raw("disko.nixosModules.disko".into())]),
        ),
        setting("", "nixpkgs.overlays", Nix::List(vec![Nix::Raw("self.overlays.default".into())])),
        setting(
            "Cards named as the rendered configs name them, on the spec's networks; the addresses\n\
             are the host file's (the test framework assigns none to named cards).",
            "virtualisation.interfaces",
            Nix::Raw(format!(
                "{}\n// lib.optionalAttrs publicCard {{ {}.vlan = {PUBLIC_VLAN}; }}",
                vlans(&[(layout.private_interface.as_str(), PRIVATE_VLAN)]).render(),
                layout.public_interface
            )),
        ),
        setting(
            "The admin network reaches the hosts on the private VLAN, as in the lab.",
            format!("networking.interfaces.{}.ipv4.routes", layout.private_interface),
            routes(&vm.topology.networks.admin),
        ),
        setting(
            "The throwaway operator key the script installs (the spec's keys stay as they are).",
            "services.openssh.authorizedKeysFiles",
            Nix::strs([format!("{TEST_DIR}/authorized_keys")]),
        ),
        setting(
            "No Let's Encrypt in a VM: the script puts a certificate from the throwaway CA where\n\
             lego would put it.",
            "nixstack.lb.acme",
            Nix::Raw("lib.mkIf disableAcme (lib.mkForce null)".into()),
        ),
        setting(
            "Daemons that read secrets start when the script has put the secrets in place, in the\n\
             lab's order, instead of at boot.",
            "systemd.services",
            held_back("heldServices"),
        ),
        setting("", "systemd.timers", held_back("heldTimers")),
    ];
    let arguments = "{\n  host,\n  publicCard ? false,\n  heldServices,\n  heldTimers ? [ ],\n  disableAcme ? false,\n}:\n\
                     { lib, ... }:";
    module(arguments, &settings)
}

/// A host's node: a call of [`host_node_function`] with the host's VM settings.
fn host_node_call(vm: &Vm, host: &Host) -> String {
    let mut arguments = vec![(vec!["host".to_string()], Nix::str(host.name.clone()))];
    if host.public_address.is_some() {
        arguments.push((vec!["publicCard".into()], Nix::Bool(true)));
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
    format!("{HOST_NODE_FUNCTION} {}", Nix::Attrs(arguments).render())
}

fn client_module(vm: &Vm) -> String {
    let public = vm.topology.networks.public;
    module(
        "{ ... }:",
        &[
            setting(
                "The internet: one card on the public VLAN, at the address the lab gives it.",
                "virtualisation.interfaces",
                vlans(&[("eth0", PUBLIC_VLAN)]),
            ),
            setting("", "networking.interfaces.eth0.ipv4.addresses", addresses(vm.internet_address, public)),
            setting("", "networking.firewall.enable", Nix::Bool(false)),
        ],
    )
}

fn admin_module(vm: &Vm) -> String {
    module(
        "{ pkgs, ... }:",
        &[
            setting(
                "The operators' network, routed on-link to the private VLAN as in the lab.",
                "virtualisation.interfaces",
                vlans(&[("eth0", PRIVATE_VLAN)]),
            ),
            setting(
                "",
                "networking.interfaces.eth0.ipv4",
                Nix::Attrs(vec![
                    (vec!["addresses".into()], addresses(vm.admin_address, vm.admin_network)),
                    (vec!["routes".into()], routes(&[vm.topology.networks.private])),
                ]),
            ),
            setting("", "networking.firewall.enable", Nix::Bool(false)),
            setting("", "environment.systemPackages", Nix::List(vec![Nix::Raw("pkgs.openssh".into())])),
        ],
    )
}

/// Prefixes every non-empty line of `text` with `level` indentation steps.
fn indent(text: &str, level: usize) -> String {
    let pad = "  ".repeat(level);
    text.lines()
        .map(|line| if line.is_empty() { String::new() } else { format!("{pad}{line}") })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Replaces every `@name@` slot of `template`; a slot left unfilled is a bug.
fn fill(template: &str, slots: &[(&str, String)]) -> String {
    let mut text = template.to_string();
    for (name, value) in slots {
        let slot = format!("@{name}@");
        assert!(text.contains(&slot), "vmtest template has no slot {slot}");
        text = text.replace(&slot, value);
    }
    text
}

// ---------------------------------------------------------------------------------------------
// The Python script

/// `checks/vm-test.py`: [`definitions`], then the bring-up, the Scenario's steps and the verdict.
/// The Nix file prepends `OPENSSL = "<store path>"`.
pub fn script(topology: &Topology) -> String {
    let vm = match Vm::new(topology) {
        Ok(vm) => vm,
        Err(why) => return format!("{}raise RuntimeError({})\n", header(topology), py(&format!("no VM test: {why}"))),
    };
    let mut text = definitions_of(&vm);
    text.push_str("\n\n# --- the run: bring-up in the Topology's start order, then the Scenario -------------------------\n\n");
    text.push_str("bring_up()\n");
    for note in &vm.scenario.omitted {
        text.push_str(&format!("# omitted by the Scenario: {}\nreport({})\n", one_line(note), py(&format!("omitted by the Scenario: {note}"))));
    }
    for (index, step) in vm.scenario.steps.iter().enumerate() {
        let number = index + 1;
        text.push('\n');
        text.push_str(&step_marker(number, step));
        text.push('\n');
        match step_call(number, step) {
            StepCall::Run { data, call } => {
                text.push_str(&data);
                text.push_str(&format!("run_step({number}, {}, lambda: {call})\n", py(step.name())));
            }
            StepCall::Skip { why } => {
                text.push_str(&format!("# skipped: {why}\nskip_step({number}, {}, {})\n", py(step.name()), py(why)));
            }
        }
    }
    text.push_str("\nfinish()\n");
    text
}

/// The script without its actions: the helpers and the stack's data. Executing it starts no
/// VM; [`script`] appends the run.
pub fn definitions(topology: &Topology) -> String {
    match Vm::new(topology) {
        Ok(vm) => definitions_of(&vm),
        Err(_) => header(topology),
    }
}

fn header(topology: &Topology) -> String {
    format!(
        "# The NixOS VM test script of the {} stack, rendered by nixstack from the same Scenario that\n\
         # `nixstack lab test` runs (see vm-test.nix beside it). For the NixOS test driver: the\n\
         # machines are the driver's globals, named after the nodes. nixstack's own test suite checks\n\
         # that it is valid Python carrying every step, and runs its secret generation with openssl;\n\
         # it cannot run the VMs (no nixpkgs, no KVM-capable NixOS host there).\n\n",
        one_line(&topology.stack.name)
    )
}

fn definitions_of(vm: &Vm) -> String {
    let mut text = header(vm.topology);
    text.push_str(HELPERS);
    text.push_str("\n\n# --- the stack (from its Topology) -----------------------------------------------------------\n\n");
    text.push_str(&data(vm));
    text
}

/// How a step runs in the VM test.
enum StepCall {
    /// `data` (constants the call uses), then `run_step(n, name, lambda: <call>)`.
    Run { data: String, call: String },
    /// A step the VM test cannot run, and why: rendered as a comment and a reported skip.
    Skip { why: &'static str },
}

fn run(call: String) -> StepCall {
    StepCall::Run { data: String::new(), call }
}

/// Every step of the Scenario, as the helper call that checks what the lab's step checks.
/// A new kind of step must be handled here (run, or skipped with a reason) before this compiles.
fn step_call(number: usize, step: &Step) -> StepCall {
    match step {
        Step::HttpsViaVip { domain, vip, requests, web_hosts } => run(format!(
            "https_via_vip(domain={}, vip={}, requests={requests}, web_hosts={})",
            py(domain),
            py(&vip.to_string()),
            py_strs(web_hosts)
        )),
        Step::BackendTls { lbs, backends, health_path, reachable_ports } => run(format!(
            "backend_tls(lbs={}, backends={}, health_path={}, reachable_ports={})",
            py_strs(lbs),
            py_nodes(backends),
            py(health_path),
            py_list(reachable_ports.iter().map(|(host, port)| format!("({}, {port})", py(host))))
        )),
        Step::AdminSsh { hosts } => run(format!("admin_ssh(hosts={})", py_nodes(hosts))),
        Step::MultiMaster { writers, nodes } => {
            run(format!("multi_master(writers={}, nodes={})", py_strs(writers), py_strs(nodes)))
        }
        Step::FirewallMatrix { ports, probes } => {
            let constant = format!("FIREWALL_PROBES_{number}");
            let mut data = format!(
                "# (source, destination, address, port, expected, open as good as refused, why); a source\n\
                 # without a route to a destination is not probed.\n{constant}: list[Probe] = [\n"
            );
            for probe in probes.iter().filter(|probe| probe.address.is_some()) {
                data.push_str(&format!("    {},\n", py_probe(probe)));
            }
            data.push_str("]\n");
            StepCall::Run {
                data,
                call: format!(
                    "firewall_matrix(ports={}, probes={constant})",
                    py_list(ports.iter().map(u16::to_string))
                ),
            }
        }
        Step::WebFailover { domain, vip, victim, eject_within_ms } => run(format!(
            "web_failover(domain={}, vip={}, victim={}, eject_within_ms={eject_within_ms})",
            py(domain),
            py(&vip.to_string()),
            py(victim)
        )),
        Step::DbFailover { domain, vip, victim, survivors, writers } => run(format!(
            "db_failover(domain={}, vip={}, victim={}, survivors={}, writers={})",
            py(domain),
            py(&vip.to_string()),
            py(victim),
            py_strs(survivors),
            py_strs(writers)
        )),
        Step::MetricsArrive { .. } => StepCall::Skip { why: NO_SUMOLOGIC_STANDIN },
        Step::CollectorEndpointsLocal { endpoints } => {
            let constant = format!("COLLECTOR_ENDPOINTS_{number}");
            let mut data = format!("{constant}: list[Endpoint] = [\n");
            for endpoint in endpoints {
                let optional = |value: &Option<String>| value.as_deref().map(py).unwrap_or_else(|| "None".into());
                let password_file = endpoint.user.as_deref().map(crate::secrets::db_password_file);
                let remote = endpoint.remote.iter().filter(|probe| probe.address.is_some()).map(py_probe);
                data.push_str(&format!(
                    "    {{\n        \"host\": {},\n        \"source\": {},\n        \"url\": {},\n        \"port\": {},\n        \"remote\": {},\n        \"remote_logins\": {},\n        \"user\": {},\n        \"password_file\": {},\n    }},\n",
                    py(&endpoint.host),
                    py(&serde_json::to_value(endpoint.source).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()),
                    optional(&endpoint.url),
                    endpoint.port,
                    // Under `"remote": ` in a dict whose keys sit 8 columns in (`indent` counts
                    // two-space Nix levels).
                    indent(&py_list(remote), 4).trim_start(),
                    py_strs(&endpoint.remote_logins),
                    optional(&endpoint.user),
                    optional(&password_file),
                ));
            }
            data.push_str("]\n");
            StepCall::Run { data, call: format!("collector_endpoints_local(endpoints={constant})") }
        }
        Step::WebQps { .. } => StepCall::Skip { why: NO_SUMOLOGIC_STANDIN },
        Step::LbFailover { domain, vip, active, standby, within_ms } => run(format!(
            "lb_failover(domain={}, vip={}, primary={}, standby={}, within_ms={within_ms})",
            py(domain),
            py(&vip.to_string()),
            py(active),
            py_strs(standby)
        )),
    }
}

/// Why the steps that read what reached the monitoring service do not run in the VM test.
const NO_SUMOLOGIC_STANDIN: &str = "it reads what reached the monitoring endpoint, which the lab provides with a Sumo Logic stand-in; the VM test has no stand-in node and keeps the endpoint secret a placeholder";

fn py_probe(probe: &Probe) -> String {
    format!(
        "({}, {}, {}, {}, {}, {}, {})",
        py(&probe.from.to_string()),
        py(&probe.to),
        py(&probe.address.map(|a| a.to_string()).unwrap_or_default()),
        probe.port,
        py(probe.expect.symbol()),
        if probe.also_open { "True" } else { "False" },
        py(&probe.reason)
    )
}

fn py_nodes(nodes: &[Node]) -> String {
    py_list(nodes.iter().map(|node| format!("({}, {}, {})", py(&node.host), py(&node.address.to_string()), node.port)))
}

/// The stack's data the helpers read, as Python constants.
fn data(vm: &Vm) -> String {
    let topology = vm.topology;
    let layout = Layout::nixos();
    let hosts: Vec<String> = topology.hosts.iter().map(|h| h.name.clone()).collect();
    let lbs: Vec<String> = topology.lb.as_ref().map(|lb| lb.hosts.clone()).unwrap_or_default();
    let mut out = String::new();
    let mut constant = |name: &str, annotation: &str, value: String| {
        if annotation.is_empty() {
            out.push_str(&format!("{name} = {value}\n"));
        } else {
            out.push_str(&format!("{name}: {annotation} = {value}\n"));
        }
    };
    constant("STACK", "", py(&topology.stack.name));
    constant("CA_NAME", "", py(&crate::secrets::ca_name(&topology.stack.name)));
    constant("CLIENT", "", py(&vm.client));
    constant("ADMIN", "", py(&vm.admin));
    constant("HOSTS", "list[str]", py_strs(&hosts));
    constant("LBS", "list[str]", py_strs(&lbs));
    constant("VIP", "", py(&topology.lb.as_ref().map(|lb| lb.vip.to_string()).unwrap_or_default()));
    constant(
        "MACHINES",
        "dict[str, Any]",
        py_dict(vm.nodes().iter().map(|node| (py(node), python_name(node)))),
    );
    constant(
        "SOURCE_MACHINES",
        "dict[str, str]",
        py_dict(["internet", "admin"].iter().map(|source| (py(source), py(&vm.source_machine(source))))),
    );
    constant(
        "HOST_ADDRESSES",
        "dict[str, str]",
        py_dict(topology.hosts.iter().map(|h| (py(&h.name), py(&h.address.to_string())))),
    );
    let mut by_address: Vec<(String, String)> = topology
        .hosts
        .iter()
        .flat_map(|h| std::iter::once(h.address).chain(h.public_address).map(move |a| (py(&a.to_string()), py(&h.name))))
        .collect();
    by_address.sort();
    constant("ADDRESS_TO_HOST", "dict[str, str]", py_dict(by_address.into_iter()));
    constant("TEST_DIR", "", py(TEST_DIR));
    constant("CLIENT_CA", "", py(&format!("{TEST_DIR}/ca.crt")));
    constant("ADMIN_KEY", "", py(&format!("{TEST_DIR}/admin_ed25519")));
    constant("AUTHORIZED_KEYS", "", py(&format!("{TEST_DIR}/authorized_keys")));
    constant("SECRETS_DIR", "", py(&layout.secrets.to_string_lossy()));
    constant("SECRETS_GROUP", "", py(SECRETS_GROUP));
    constant("HOST_CA", "", py(&layout.ca_cert().to_string_lossy()));
    constant("MYSQL_SOCKET", "", py(&layout.mysql_socket().to_string_lossy()));
    constant("HAPROXY_SOCKET", "", py(&layout.haproxy_socket().to_string_lossy()));
    constant("HAPROXY_BACKEND", "", py(HAPROXY_BACKEND));
    constant("PUBLIC_INTERFACE", "", py(&layout.public_interface));
    constant("SCENARIO_DB", "", py(SCENARIO_DB));

    // The secrets, laid out as `nixstack secrets init` lays out `secrets/`.
    constant(
        "CERTIFICATES",
        "list[tuple[str, str, list[str], list[str]]]",
        py_list(topology.certificates.iter().map(|c| {
            format!(
                "({}, {}, {}, {})",
                py(&format!("hosts/{}", c.host)),
                py(&c.common_name),
                py_strs(&c.dns_names),
                py_strs(&c.ip_addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>())
            )
        })),
    );
    let public = topology.lb.as_ref().map(|lb| {
        let domain = &topology.stack.domain;
        format!(
            "({}, {}, {}, {})",
            py(&crate::secrets::public_certificate_file(topology)),
            py(domain),
            py_strs(std::slice::from_ref(domain)),
            py_strs(&[lb.vip.to_string()])
        )
    });
    constant("PUBLIC_CERTIFICATE", "tuple[str, str, list[str], list[str]] | None", public.unwrap_or_else(|| "None".into()));
    let host_secrets: Vec<(String, Vec<(String, String)>)> = topology
        .hosts
        .iter()
        .map(|host| {
            let files = crate::secrets::host_secrets(topology, &host.name, std::path::Path::new(""))
                .into_iter()
                .map(|(source, name)| (source.to_string_lossy().into_owned(), name))
                .collect();
            (host.name.clone(), files)
        })
        .collect();
    let mut passwords: Vec<String> = host_secrets
        .iter()
        .flat_map(|(_, files)| files.iter().map(|(source, _)| source.clone()))
        .filter(|source| source.ends_with(".password"))
        .collect();
    passwords.sort();
    passwords.dedup();
    constant("PASSWORDS", "list[str]", py_strs(&passwords));
    constant(
        "PLAIN_SECRETS",
        "list[tuple[str, str]]",
        py_list(topology.monitoring.iter().map(|m| {
            // Nothing ships metrics out of a VM test: the endpoint stays the placeholder.
            format!("({}, {})", py(&m.endpoint_secret), py(crate::secrets::SUMOLOGIC_PLACEHOLDER))
        })),
    );
    constant(
        "HOST_SECRETS",
        "dict[str, list[tuple[str, str]]]",
        py_dict(host_secrets.iter().map(|(host, files)| {
            (py(host), py_list(files.iter().map(|(source, name)| format!("({}, {})", py(source), py(name)))))
        })),
    );
    // HAProxy serves lego's `full.pem` on NixOS with ACME: the public bundle goes there.
    let extra: Vec<(String, String)> = match &topology.lb {
        Some(lb) if lb.tls == TlsMode::Acme => lb
            .hosts
            .iter()
            .map(|host| {
                let target = layout.public_pem(&topology.stack.domain, true);
                (
                    py(host),
                    py_list(std::iter::once(format!(
                        "({}, {}, {})",
                        py(&crate::secrets::public_certificate_file(topology)),
                        py(&target.to_string_lossy()),
                        py(HAPROXY_GROUP)
                    ))),
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    constant("EXTRA_COPIES", "dict[str, list[tuple[str, str, str]]]", py_dict(extra.into_iter()));

    // The bring-up.
    constant(
        "START_ORDER",
        "list[list[str]]",
        py_list(topology.start_order.iter().map(|stage| py_strs(stage))),
    );
    constant(
        "UNITS",
        "dict[str, list[tuple[str, bool]]]",
        py_dict(topology.hosts.iter().map(|host| {
            let units = units(topology, host)
                .into_iter()
                .map(|unit| format!("({}, {})", py(&unit.name), if unit.held { "True" } else { "False" }));
            (py(&host.name), py_list(units))
        })),
    );
    constant(
        "BOOTSTRAP",
        "str | None",
        topology.db.as_ref().map(|db| py(&db.bootstrap)).unwrap_or_else(|| "None".into()),
    );
    out
}

/// A Python string literal (JSON's escapes are Python's).
fn py(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

fn py_strs<S: AsRef<str>>(items: &[S]) -> String {
    py_list(items.iter().map(|item| py(item.as_ref())))
}

/// `[a, b]` on one line when short, else one item per line.
fn py_list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    let one_line = format!("[{}]", items.join(", "));
    if one_line.len() <= 80 {
        return one_line;
    }
    format!("[\n{}]", items.iter().map(|item| format!("    {},\n", item.replace('\n', "\n    "))).collect::<String>())
}

fn py_dict(items: impl Iterator<Item = (String, String)>) -> String {
    let items: Vec<String> = items.map(|(key, value)| format!("{key}: {value}")).collect();
    let one_line = format!("{{{}}}", items.join(", "));
    if one_line.len() <= 80 {
        return one_line;
    }
    format!("{{\n{}}}", items.iter().map(|item| format!("    {},\n", item.replace('\n', "\n    "))).collect::<String>())
}

/// The driver's global for a node: its name with every character Python cannot have in a name
/// replaced by `_` (the test driver's `pythonize_name`).
fn python_name(node: &str) -> String {
    node.chars()
        .enumerate()
        .map(|(i, c)| {
            let allowed = c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit());
            if allowed {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::compile;
    use crate::spec::SpecSource;

    #[test]
    fn python_names_follow_the_driver() {
        assert_eq!(python_name("web-1"), "web_1");
        assert_eq!(python_name("1db"), "_db");
        assert_eq!(python_name("server3"), "server3");
    }

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
}
