//! The NixOS VM test rendered from the Scenario (`checks/vm-test.nix`, the static script
//! `checks/vm-test.py` and its data `checks/scenario.json`), for both example specs: snapshots;
//! the Nix parses (rnix and the real `nix-instantiate`) and evaluates with the real Nix evaluator
//! against stand-ins (each host's node, whole; the script and the data handed to Python, then
//! type-checked and linted as the test driver's build does); the script compiles and passes
//! pyflakes; the data carries every step of the Scenario and has
//! exactly the keys the script declares, which are exactly the keys its source reads; the script
//! runs every step it gets, in order; the node settings are NixOS options; the secrets the
//! script makes with openssl verify against its CA; its HTTP parsing reads curl's output. The
//! VMs themselves cannot run here (no nixpkgs, no KVM-capable NixOS host).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use nixstack::nixcheck::{check_files, nix_instantiate_parse, parse_nix, OptionDb, KNOWN_UNCOVERED};
use nixstack::render::{tree, vmtest};
use nixstack::spec::{Role, SpecSource, TlsMode};
use nixstack::stack::scenario::{Scenario, Step};
use nixstack::topology::Topology;
use serde_json::Value;

const SPECS: &[&str] = &["examples/default.toml", "examples/whiteboard.toml"];

#[path = "common/nix.rs"]
mod nix;

/// Option paths the node settings use outside the NixOS option data's families, each declared
/// by NixOS itself:
const VM_UNCOVERED: &[&str] = &[
    // nixos/modules/virtualisation/qemu-vm.nix and nixos/lib/testing/network.nix (VLAN cards,
    // QEMU's networking options, memory).
    "virtualisation.*",
    // nixos/modules/misc/nixpkgs.nix (the stack's overlay, as `nixosConfigurations` add it).
    "nixpkgs.overlays",
    // nixos/modules/system/boot/systemd.nix (keepalived's boot-delay timer, held back).
    "systemd.timers.*",
];

/// The globals of the NixOS test driver the script uses, from its `test_symbols` (nixpkgs
/// nixos/lib/test-driver/src/test_driver/driver.py, read at commits e92a8275e21b71ff3b6b6a9f033afcd235fe6b11
/// and 003d58163f469fbeb0d51e4ef8d46af622759627: both define them, and expose each machine as
/// a global named after its node). The machines the script looks up by name at run time.
const DRIVER_SYMBOLS: &[&str] = &["start_all", "subtest"];

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The script as it is in the repository (the renderer embeds this file).
fn driver_source() -> String {
    std::fs::read_to_string(manifest_dir().join("src/render/vmtest/driver.py")).unwrap()
}

fn data_of(topology: &Topology) -> String {
    vmtest::data(topology).unwrap_or_else(|why| panic!("{}: {why}", topology.stack.name))
}

fn topologies() -> &'static [Topology] {
    static TOPOLOGIES: OnceLock<Vec<Topology>> = OnceLock::new();
    TOPOLOGIES.get_or_init(|| {
        SPECS
            .iter()
            .map(|spec| {
                let text = std::fs::read_to_string(manifest_dir().join(spec)).unwrap();
                nixstack::cli::compile(&SpecSource { name: spec.to_string(), text })
                    .unwrap_or_else(|e| panic!("{spec}: {e:?}"))
            })
            .collect()
    })
}

fn python3() -> Command {
    Command::new("python3")
}

/// Runs `program` with `stdin`; a missing program fails with the fix.
fn run_with_stdin(mut command: Command, stdin: &str, what: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what} ({e}): run scripts/setup"));
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Writes the artifact tree of `topology` (with the writer's headers) into `dir`.
fn write_tree(topology: &Topology, dir: &Path) {
    for (path, text) in nixstack::output::artifacts(topology) {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
}

#[test]
fn snapshots_of_the_vm_test_for_both_examples() {
    for topology in topologies() {
        let stack = &topology.stack.name;
        insta::assert_snapshot!(format!("{stack}__vm_test_nix"), vmtest::nix(topology));
        insta::assert_snapshot!(format!("{stack}__scenario_json"), data_of(topology));
    }
}

#[test]
fn the_flake_runs_the_vm_test_under_checks_and_the_tree_carries_its_files() {
    for topology in topologies() {
        let files = tree::artifacts(topology);
        assert_eq!(files[vmtest::NIX_FILE], vmtest::nix(topology));
        // The script is the repository's file, byte for byte: no stack's data in it.
        assert_eq!(files[vmtest::SCRIPT_FILE], driver_source());
        assert_eq!(files[vmtest::DATA_FILE], data_of(topology));
        let data: Value = serde_json::from_str(&files[vmtest::DATA_FILE]).unwrap();
        assert_eq!(data["stack"], topology.stack.name.as_str());
        assert!(
            files["flake.nix"]
                .contains("vm-test = pkgs.testers.runNixOSTest (import ./checks/vm-test.nix { inherit self disko; });"),
            "{}",
            files["flake.nix"]
        );
        assert!(files[vmtest::NIX_FILE].contains("builtins.readFile ./vm-test.py"));
        assert!(files[vmtest::NIX_FILE].contains("builtins.readFile ./scenario.json"));
    }
}

/// A stack the VM test cannot place (no admin network) gets a Nix file that says why, and no
/// script or data.
#[test]
fn a_stack_without_an_admin_network_gets_a_vm_test_that_says_why() {
    let mut topology = topologies()[0].clone();
    topology.networks.admin.clear();
    let files = vmtest::files(&topology);
    let paths: Vec<&str> = files.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(paths, [vmtest::NIX_FILE]);
    let text = &files[0].1;
    assert!(text.contains("throw \"nixstack: no VM test for stack shop: "), "{text}");
    parse_nix(vmtest::NIX_FILE, text).unwrap();
}

#[test]
fn the_nix_parses_with_rnix_and_nix_instantiate() {
    for topology in topologies() {
        let files: Vec<(String, String)> = nixstack::output::artifacts(topology)
            .into_iter()
            .filter(|(path, _)| path == vmtest::NIX_FILE || path == "flake.nix")
            .collect();
        assert_eq!(files.len(), 2);
        for (path, text) in &files {
            parse_nix(path, text).unwrap_or_else(|problem| panic!("{}: {problem}", topology.stack.name));
        }
        // The node modules alone (what the option check reads) parse too; their `self` and
        // `disko` are bound by the file's function, so only rnix reads them standalone.
        let modules = vmtest::node_modules(topology);
        assert!(modules.len() >= 4, "{modules:?}");
        for (name, module) in &modules {
            parse_nix(&format!("{name}.nix"), module)
                .unwrap_or_else(|problem| panic!("{}: {problem}", topology.stack.name));
        }
        nix_instantiate_parse(&files).unwrap_or_else(|e| {
            panic!("{} ({e:#}); run scripts/setup if nix-instantiate is missing", topology.stack.name)
        });
    }
}

/// The real Nix evaluator on `checks/vm-test.nix` of a written tree, with stand-ins for the
/// flake's inputs and nixpkgs' `lib`: the test module's attributes, every node module applied
/// to stand-in arguments, and the test script as Nix assembles it. `genAttrs` and
/// `optionalAttrs` are nixpkgs' definitions; `mkForce` and `mkIf` leave markers to assert on.
fn evaluate(dir: &Path) -> Value {
    let expr = r#"
let
  lib = {
    mkForce = value: { _force = value; };
    mkIf = condition: content: { _if = condition; inherit content; };
    genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
    optionalAttrs = condition: attrs: if condition then attrs else { };
    getExe = package: "/nix/store/stand-in-${package}/bin/${package}";
  };
  pkgs = { curl = "curl"; mariadb = "mariadb"; socat = "socat"; openssh = "openssh"; };
  test = import ./checks/vm-test.nix {
    self = { overlays.default = "stack-overlay"; };
    disko = { nixosModules.disko = "disko-module"; };
  };
  module = test { hostPkgs = { openssl = "openssl"; }; inherit lib; };
  apply = node: node { inherit lib pkgs; };
  # Paths are written as strings (with whether they exist), so nothing is copied to a store.
  plain = value:
    if builtins.isPath value then { path = toString value; exists = builtins.pathExists value; }
    else if builtins.isList value then map plain value
    else if builtins.isAttrs value then builtins.mapAttrs (_: plain) value
    else value;
in {
  inherit (module) name;
  pkgsReadOnly = module.node.pkgsReadOnly;
  defaults = plain (apply module.defaults);
  nodes = builtins.mapAttrs (_: node: plain (apply node)) module.nodes;
  testScript = module.testScript;
}
"#;
    nix::nix_json(
        Command::new("nix-instantiate").args(["--eval", "--strict", "--json", "--expr", expr]).current_dir(dir),
        "evaluating checks/vm-test.nix",
    )
}

#[test]
fn the_test_module_evaluates_with_stand_ins() {
    let mypy_cache = tempfile::Builder::new().prefix("nxs-vmtest-mypy-").tempdir().unwrap();
    for topology in topologies() {
        let stack = &topology.stack.name;
        let dir = tempfile::Builder::new().prefix("nxs-vmtest-").tempdir().unwrap();
        write_tree(topology, dir.path());
        let value = evaluate(dir.path());
        assert_eq!(value["name"], format!("nixstack-{stack}"));
        assert_eq!(value["pkgsReadOnly"], false);
        // The script Nix hands the driver: the globals vm-test.nix sets, then the file beside
        // it, verbatim.
        let script = std::fs::read_to_string(dir.path().join(vmtest::SCRIPT_FILE)).unwrap();
        let test_script = value["testScript"].as_str().unwrap();
        let prefix = test_script
            .strip_suffix(script.as_str())
            .unwrap_or_else(|| panic!("{stack}: the testScript does not end with the script"));
        // Python reads the prefix as vm-test.nix means it: OPENSSL the stand-in's path, and
        // SCENARIO_JSON exactly the data file's text (Nix's JSON string escapes taken as a
        // Python string literal).
        let data = std::fs::read_to_string(dir.path().join(vmtest::DATA_FILE)).unwrap();
        let output = run_with_stdin(
            {
                let mut command = python3();
                command.args([
                    "-c",
                    "import ast, json, sys\n\
                     prefix = sys.stdin.read()\n\
                     names = [target.id for statement in ast.parse(prefix).body for target in statement.targets]\n\
                     values = {}\n\
                     exec(prefix, values)\n\
                     print(json.dumps({'names': names, 'OPENSSL': values['OPENSSL'], 'SCENARIO_JSON': values['SCENARIO_JSON']}))",
                ]);
                command
            },
            prefix,
            "python3",
        );
        assert!(output.status.success(), "{stack}: {}\n{prefix:.300}", text(&output));
        let read: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(read["names"], serde_json::json!(vmtest::NIX_GLOBALS), "{stack}");
        assert_eq!(read["OPENSSL"], "/nix/store/stand-in-openssl/bin/openssl", "{stack}");
        assert!(
            read["SCENARIO_JSON"] == data.as_str(),
            "{stack}: SCENARIO_JSON is not the text of {}",
            vmtest::DATA_FILE
        );
        driver_build_checks(topology, test_script, &mypy_cache);
        assert_eq!(
            value["defaults"]["virtualisation"]["qemu"]["networkingOptions"]["_force"],
            Value::Array(Vec::new())
        );

        let nodes = value["nodes"].as_object().unwrap();
        let mut names: Vec<&str> = nodes.keys().map(String::as_str).collect();
        names.sort();
        let mut expected: Vec<&str> =
            topology.hosts.iter().map(|h| h.name.as_str()).chain(["admin", "client"]).collect();
        expected.sort();
        assert_eq!(names, expected, "{stack}");
        // Each host's node, whole: what `vmNode` makes of the host's arguments is exactly the
        // VM plumbing the Topology asks for, and nothing else.
        let files = tree::artifacts(topology);
        // `nixstack.lb.acme` is set (under `mkIf`) on every host: the option exists on all of
        // them, as every host imports every module.
        assert!(files["modules/default.nix"].contains("./lb.nix"), "{stack}");
        let admin_routes: Vec<Value> = topology
            .networks
            .admin
            .iter()
            .map(|network| serde_json::json!({ "address": network.network().to_string(), "prefixLength": network.prefix_len() }))
            .collect();
        assert!(!admin_routes.is_empty(), "{stack}");
        let held_back = serde_json::json!({ "wantedBy": { "_force": [] } });
        for host in &topology.hosts {
            let node = &nodes[&host.name];
            // The cards as the host file names them (by MAC on the load balancers).
            let layout = nixstack::render::Layout::nixos_for(host);
            let mut cards = serde_json::json!({ layout.private_interface.clone(): { "vlan": 1 } });
            if host.public_address.is_some() {
                cards[&layout.public_interface] = serde_json::json!({ "vlan": 2 });
            }
            let held: Vec<String> = vmtest::units(topology, host)
                .iter()
                .filter(|u| u.held)
                .map(|u| u.name.trim_end_matches(".service").to_string())
                .collect();
            assert!(!held.is_empty(), "{stack}/{}: no held unit", host.name);
            let services: serde_json::Map<String, Value> =
                held.iter().map(|stem| (stem.clone(), held_back.clone())).collect();
            // NixOS starts keepalived from a boot-delay timer: held back with the service.
            let timers: serde_json::Map<String, Value> = held
                .iter()
                .filter(|stem| *stem == "keepalived")
                .map(|_| ("keepalived-boot-delay".to_string(), held_back.clone()))
                .collect();
            let acme_off = host.has(Role::Lb) && topology.lb.as_ref().is_some_and(|lb| lb.tls == TlsMode::Acme);
            let disk = vmtest::disk_size_mib(topology, host);
            assert_eq!(disk.is_some(), host.has(Role::Db), "{stack}/{}", host.name);
            let expected = serde_json::json!({
                "imports": [
                    { "path": dir.path().join("hosts").join(&host.name).to_string_lossy(), "exists": true },
                    "disko-module",
                ],
                "nixpkgs": { "overlays": ["stack-overlay"] },
                "virtualisation": { "interfaces": cards, "diskSize": { "_if": disk.is_some(), "content": disk } },
                "networking": { "interfaces": { layout.private_interface.clone(): { "ipv4": { "routes": admin_routes } } } },
                "services": { "openssh": { "authorizedKeysFiles": [format!("{}/authorized_keys", vmtest::TEST_DIR)] } },
                "nixstack": { "lb": { "acme": { "_if": acme_off, "content": { "_force": null } } } },
                "systemd": { "services": services, "timers": timers },
            });
            assert_eq!(node, &expected, "{stack}/{}", host.name);
        }
        // The examples exercise every argument: a public card, held timers, ACME replaced.
        if stack == "shop" {
            let lb1 = &nodes["lb1"];
            assert_eq!(lb1["virtualisation"]["interfaces"]["pub0"]["vlan"], 2);
            assert_eq!(nodes["web1"]["virtualisation"]["interfaces"]["eth0"]["vlan"], 1);
            assert_eq!(
                lb1["systemd"]["timers"]["keepalived-boot-delay"]["wantedBy"]["_force"],
                Value::Array(Vec::new())
            );
            assert_eq!(lb1["nixstack"]["lb"]["acme"]["_if"], true);
            assert_eq!(nodes["web1"]["nixstack"]["lb"]["acme"]["_if"], false);
        }
        let client = &nodes["client"];
        assert_eq!(client["virtualisation"]["interfaces"]["eth0"]["vlan"], 2);
        let plan = nixstack::stack::address_plan::plan(topology).unwrap();
        assert_eq!(
            client["networking"]["interfaces"]["eth0"]["ipv4"]["addresses"][0]["address"],
            plan.internet_address().to_string()
        );
        assert_eq!(
            nodes["admin"]["networking"]["interfaces"]["eth0"]["ipv4"]["addresses"][0]["address"],
            plan.admin_address().to_string()
        );
    }
}

/// A Galera node preallocates its write-set cache (`gcache.size` in the host file's
/// `wsrep_provider_options`) in its datadir, next to InnoDB's files: NixOS's default 1 GiB VM
/// disk, which also holds the rest of the system, cannot take a 512 MiB cache. The db nodes'
/// disks are NixOS's default plus the rendered cache plus room for the datadir
/// (tests/db_configs.rs measures a real bootstrapped datadir against that room).
#[test]
fn galera_nodes_get_a_disk_for_their_gcache_and_datadir() {
    for topology in topologies() {
        let stack = &topology.stack.name;
        let dir = tempfile::Builder::new().prefix("nxs-vmtest-").tempdir().unwrap();
        write_tree(topology, dir.path());
        let nodes = evaluate(dir.path())["nodes"].clone();
        let files = tree::artifacts(topology);
        for host in topology.hosts.iter().filter(|h| h.has(Role::Db)) {
            let host_file = &files[&format!("hosts/{}/default.nix", host.name)];
            let gcache_mib: u64 = host_file
                .split("gcache.size=")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|digits| digits.parse().ok())
                .unwrap_or_else(|| panic!("{stack}/{}: no gcache.size=<n>M in the host file", host.name));
            assert!(
                host_file.contains(&format!("gcache.size={gcache_mib}M")),
                "{stack}/{}: the size is in MiB",
                host.name
            );
            let disk = &nodes[&host.name]["virtualisation"]["diskSize"];
            // Without a setting the node keeps NixOS's default disk.
            let size =
                if disk["_if"] == true { disk["content"].as_u64().unwrap() } else { vmtest::NIXOS_DEFAULT_DISK_MIB };
            let beside_the_system = size.saturating_sub(vmtest::NIXOS_DEFAULT_DISK_MIB);
            assert!(
                beside_the_system >= gcache_mib + 256,
                "{stack}/{}: a {size} MiB disk leaves {beside_the_system} MiB beside the system for a {gcache_mib} MiB gcache and the datadir",
                host.name
            );
        }
    }
}

/// A host whose MACs the spec gives names its cards priv0/pub0 (by permanent MAC, which
/// QEMU's cards do not have): its VM node names the cards the same, so the host file's
/// addresses, routes and keepalived's interface find them.
#[test]
fn vm_cards_carry_the_names_the_host_file_uses() {
    // The example names its load balancers' cards by MAC; db1's one card gets a MAC here.
    let text = std::fs::read_to_string(manifest_dir().join("examples/default.toml"))
        .unwrap()
        .replace("[hosts.db1]\n", "[hosts.db1]\nmac = \"52:54:00:0a:00:29\"\n");
    let topology =
        nixstack::cli::compile(&SpecSource { name: "macs.toml".into(), text }).unwrap_or_else(|e| panic!("{e:?}"));
    let dir = tempfile::Builder::new().prefix("nxs-vmtest-").tempdir().unwrap();
    write_tree(&topology, dir.path());
    let nodes = evaluate(dir.path())["nodes"].clone();
    let files = tree::artifacts(&topology);
    for (host, cards) in [
        ("lb1", vec![("priv0", 1), ("pub0", 2)]),
        ("db1", vec![("priv0", 1)]),
        ("lb2", vec![("priv0", 1), ("pub0", 2)]),
        ("web1", vec![("eth0", 1)]),
    ] {
        let host_file = &files[&format!("hosts/{host}/default.nix")];
        let expected: serde_json::Map<String, Value> =
            cards.iter().map(|(card, vlan)| (card.to_string(), serde_json::json!({ "vlan": vlan }))).collect();
        assert_eq!(nodes[host]["virtualisation"]["interfaces"], Value::Object(expected), "{host}");
        for (card, _) in &cards {
            assert!(host_file.contains(&format!("{card}.ipv4.addresses")), "{host}: the host file has no {card}");
        }
        let (private, _) = cards[0];
        assert!(
            nodes[host]["networking"]["interfaces"][private]["ipv4"]["routes"].is_array(),
            "{host}: admin routes on {private}"
        );
    }
}

/// What the build of the NixOS test driver runs on the `testScript` (nixpkgs
/// nixos/lib/testing/driver.nix, read at commit 01fbdeef22b76df85ea168fbfe1bfd9e63681b30): mypy
/// `--no-implicit-optional` on the script behind the driver's type hints
/// (nixos/lib/test-script-prepend.py, commit 161b3b0108441b7b27fa89a8ce75823bf9229e43: the two
/// globals the script uses, with its types; the machines, which it looks up by name, as `Any`),
/// then pyflakes with the machines and the driver's symbols as builtins. Debian's mypy and
/// pyflakes (scripts/setup) stand in for nixpkgs'.
fn driver_build_checks(topology: &Topology, test_script: &str, mypy_cache: &tempfile::TempDir) {
    let stack = &topology.stack.name;
    let machines: Vec<String> =
        topology.hosts.iter().map(|h| h.name.replace('-', "_")).chain(["admin".into(), "client".into()]).collect();
    let dir = tempfile::Builder::new().prefix("nxs-vmtest-driver-").tempdir().unwrap();
    let mut typed = String::from("from typing import Any, Callable, ContextManager\nstart_all: Callable[[], None]\nsubtest: Callable[[str], ContextManager[None]]\n");
    for machine in &machines {
        typed.push_str(&format!("{machine}: Any\n"));
    }
    typed.push_str(test_script);
    std::fs::write(dir.path().join("testScriptWithTypes"), typed).unwrap();
    let mypy = Command::new("/usr/bin/python3")
        .args(["-m", "mypy", "--no-implicit-optional", "--pretty", "--no-color-output", "--cache-dir"])
        .arg(mypy_cache.path())
        .arg("testScriptWithTypes")
        .current_dir(dir.path())
        .output()
        .expect("/usr/bin/python3: run scripts/setup");
    assert!(mypy.status.success(), "{stack}: mypy (python3-mypy missing? run scripts/setup):\n{}", text(&mypy));
    std::fs::write(dir.path().join("test-script"), test_script).unwrap();
    let builtins: Vec<&str> = machines.iter().map(String::as_str).chain(DRIVER_SYMBOLS.iter().copied()).collect();
    let pyflakes = Command::new("/usr/bin/python3")
        .args(["-m", "pyflakes", "test-script"])
        .env("PYFLAKES_BUILTINS", builtins.join(","))
        .current_dir(dir.path())
        .output()
        .expect("/usr/bin/python3: run scripts/setup");
    assert!(pyflakes.status.success(), "{stack}: pyflakes on the testScript:\n{}", text(&pyflakes));
}

/// The script compiles (`py_compile`) and passes pyflakes (Debian's python3-pyflakes, from
/// scripts/setup), with the globals the test driver and vm-test.nix put in front of it as the
/// only names it does not define; and the lint bites.
#[test]
fn the_script_compiles_and_passes_pyflakes() {
    let driver = manifest_dir().join("src/render/vmtest/driver.py");
    let dir = tempfile::Builder::new().prefix("nxs-vmtest-lint-").tempdir().unwrap();
    let compiled = Command::new("python3")
        .args(["-c", "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)"])
        .arg(&driver)
        .arg(dir.path().join("driver.pyc"))
        .output()
        .expect("python3: run scripts/setup");
    assert!(compiled.status.success(), "{}", text(&compiled));

    let builtins: Vec<&str> = DRIVER_SYMBOLS.iter().chain(vmtest::NIX_GLOBALS.iter()).copied().collect();
    let pyflakes = |path: &Path| -> Output {
        Command::new("/usr/bin/python3")
            .args(["-m", "pyflakes"])
            .arg(path)
            .env("PYFLAKES_BUILTINS", builtins.join(","))
            .output()
            .expect("/usr/bin/python3: run scripts/setup")
    };
    let output = pyflakes(&driver);
    assert!(output.status.success(), "pyflakes (python3-pyflakes missing? run scripts/setup):\n{}", text(&output));
    // An undefined name, an unused import, a misspelt injected global: each is reported.
    let source = driver_source();
    for (broken, expected) in [
        (format!("{source}\nprint(undefined_name)\n"), "undefined name 'undefined_name'"),
        (format!("import base64\n{source}"), "'base64' imported but unused"),
        (source.replace("with subtest(title):", "with subtests(title):"), "undefined name 'subtests'"),
    ] {
        let file = dir.path().join("broken.py");
        std::fs::write(&file, broken).unwrap();
        let output = pyflakes(&file);
        assert!(
            !output.status.success() && text(&output).contains(expected),
            "pyflakes missed {expected:?}: {}",
            text(&output)
        );
    }
}

/// The data carries every step of the Scenario, in order: its name, and either the step exactly
/// as the Scenario serializes it or why the VM test skips it; and every step the Scenario left
/// out, with its reason.
#[test]
fn the_data_carries_every_scenario_step() {
    for topology in topologies() {
        let stack = &topology.stack.name;
        let scenario = Scenario::for_topology(topology);
        let data: Value = serde_json::from_str(&data_of(topology)).unwrap();
        let steps = data["steps"].as_array().unwrap();
        assert!(!scenario.steps.is_empty());
        assert_eq!(steps.len(), scenario.steps.len(), "{stack}");
        let mut run = 0;
        for (step, entry) in scenario.steps.iter().zip(steps) {
            assert_eq!(entry["name"], step.name(), "{stack}");
            if entry["check"].is_null() {
                assert!(
                    entry["skip"].as_str().is_some_and(|why| !why.is_empty()),
                    "{stack}: {} is neither run nor skipped with a reason",
                    step.name()
                );
            } else {
                assert_eq!(entry["check"], serde_json::to_value(step).unwrap(), "{stack}: {}", step.name());
                assert!(entry["skip"].is_null(), "{stack}");
                run += 1;
            }
        }
        // Only the two steps that read what reached the monitoring service are skipped, and
        // the IPv6 one (the VM test's VLAN is IPv4-only; the lab runs it).
        let skipped: Vec<&str> =
            steps.iter().filter(|e| e["check"].is_null()).map(|e| e["name"].as_str().unwrap()).collect();
        let mut expected = Vec::new();
        if scenario.steps.iter().any(|s| s.name() == "https via the virtual IPv6") {
            expected.push("https via the virtual IPv6");
        }
        expected.extend(["metrics reach sumo logic", "web qps from the counters"]);
        assert_eq!(skipped, expected, "{stack}");
        assert_eq!(run + skipped.len(), scenario.steps.len());
        assert_eq!(data["omitted"], serde_json::json!(scenario.omitted), "{stack}");
        // The matrix's probes are there whole, the unrouted ones too (the script leaves those out).
        let matrix = steps.iter().find(|e| e["check"]["step"] == "firewall_matrix").unwrap();
        assert!(matrix["check"]["probes"].as_array().unwrap().iter().any(|p| p["address"].is_null()), "{stack}");
    }
}

/// The contract between the renderer and the script: the script declares the data's shape
/// (TypedDicts) and checks it on load; the rendered data of both examples loads, a data file with
/// a key missing, a key too many, a wrong type or an unknown step does not; the keys the
/// script's source reads are exactly the declared ones; and the script has a function for every
/// kind of step it declares.
#[test]
fn the_data_has_exactly_the_keys_the_script_declares_and_reads() {
    let mut rendered_keys = std::collections::BTreeSet::new();
    for topology in topologies() {
        let data = data_of(topology);
        collect_keys(&serde_json::from_str(&data).unwrap(), &mut rendered_keys);
        let output = run_definitions(
            topology,
            &data,
            r#"
import copy
import json
read, declared = harness_read_keys(), harness_declared_keys()
assert read == declared, f"read but not declared: {sorted(read - declared)}; declared but not read: {sorted(declared - read)}"
tags = {get_args(get_type_hints(kind)["step"])[0] for kind in get_args(Check)}
assert tags == set(STEPS), (sorted(tags), sorted(STEPS))
data = json.loads(SCENARIO_JSON)
load_scenario(json.dumps(data))
matrix = next(step for step in data["steps"] if step["check"] and step["check"]["step"] == "firewall_matrix")
def broken(change):
    copied = copy.deepcopy(data)
    change(copied)
    try:
        load_scenario(json.dumps(copied))
    except ScenarioDataError as error:
        return str(error)
    raise AssertionError("broken data loads")
print(json.dumps({
    "keys": sorted(declared),
    "missing": broken(lambda d: next(s for s in d["steps"] if s["check"] and s["check"]["step"] == "firewall_matrix")["check"]["probes"][0].pop("reason")),
    "unknown": broken(lambda d: d["paths"].update({"extra": "/tmp"})),
    "type": broken(lambda d: d["units"][d["hosts"][0]][0].update({"held": "yes"})),
    "step": broken(lambda d: d["steps"][0]["check"].update({"step": "teleport"})),
    "both": broken(lambda d: d["steps"][0].update({"skip": "why not"})),
}))
"#,
        );
        assert!(output.status.success(), "{}: {}", topology.stack.name, text(&output));
        let result: Value =
            serde_json::from_slice(output.stdout.split(|b| *b == b'\n').rfind(|line| !line.is_empty()).unwrap())
                .unwrap();
        for (case, expected) in [
            ("missing", "missing keys ['reason']"),
            ("unknown", "unknown keys ['extra']"),
            ("type", "[0].held: not of type bool"),
            ("step", "is none of"),
            ("both", "a check or the reason for skipping it"),
        ] {
            assert!(result[case].as_str().unwrap().contains(expected), "{case}: {}", result[case]);
        }
        if topology.stack.name == "shop" {
            // Every declared key is in the rendered data of the examples.
            let declared: std::collections::BTreeSet<String> =
                result["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
            let missing: Vec<&String> = declared.difference(&rendered_keys).collect();
            assert!(missing.is_empty(), "declared keys no example renders: {missing:?}");
        }
    }
}

/// Every object key in `value` (map keys such as host names included).
fn collect_keys(value: &Value, keys: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Object(members) => {
            for (key, item) in members {
                keys.insert(key.clone());
                collect_keys(item, keys);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_keys(item, keys)),
        _ => {}
    }
}

/// `main()`, with the steps' functions and the bring-up replaced by recorders: it reports what
/// the Scenario left out, runs every step the data gives a check, in order and with its check,
/// skips the others with their reason, goes on after a failing step and fails at the end.
#[test]
fn main_runs_every_step_in_order_and_fails_at_the_end() {
    for topology in topologies() {
        let stack = &topology.stack.name;
        let data = data_of(topology);
        let output = run_definitions(
            topology,
            &data,
            r#"
import json
calls = []
bring_up = lambda: calls.append(["bring_up"])
def recorder(tag):
    def step(check):
        calls.append([tag, check])
        if tag == "admin_ssh":
            raise ScenarioFailure("refused")
        return "ok"
    return step
for tag in STEPS:
    STEPS[tag] = recorder(tag)
try:
    main()
    failed = None
except ScenarioFailure as error:
    failed = str(error)
print(json.dumps({"calls": calls, "results": RESULTS, "failed": failed}))
"#,
        );
        assert!(output.status.success(), "{stack}: {}", text(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        for note in Scenario::for_topology(topology).omitted {
            assert!(stdout.contains(&format!("omitted by the Scenario: {note}")), "{stack}: {note}");
        }
        let printed: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        let calls = printed["calls"].as_array().unwrap();
        assert_eq!(calls[0], serde_json::json!(["bring_up"]), "{stack}");
        let scenario = Scenario::for_topology(topology);
        let run: Vec<&Step> = scenario
            .steps
            .iter()
            .filter(|s| !matches!(s, Step::MetricsArrive { .. } | Step::WebQps { .. } | Step::HttpsViaVip6 { .. }))
            .collect();
        assert_eq!(calls.len(), 1 + run.len(), "{stack}: {calls:?}");
        for (call, step) in calls[1..].iter().zip(&run) {
            let expected = serde_json::to_value(step).unwrap();
            assert_eq!(call[0], expected["step"], "{stack}");
            assert_eq!(call[1], expected, "{stack}");
        }
        let results = printed["results"].as_array().unwrap();
        assert_eq!(results.len(), scenario.steps.len(), "{stack}");
        for (number, (result, step)) in results.iter().zip(&scenario.steps).enumerate() {
            assert_eq!(result[1], format!("step {}: {}", number + 1, step.name()), "{stack}");
            let verdict = match step {
                Step::MetricsArrive { .. } | Step::WebQps { .. } | Step::HttpsViaVip6 { .. } => "SKIP",
                Step::AdminSsh { .. } => "FAIL",
                _ => "PASS",
            };
            assert_eq!(result[0], verdict, "{stack}: {}", step.name());
        }
        let ssh = scenario.steps.iter().position(|s| matches!(s, Step::AdminSsh { .. })).unwrap() + 1;
        assert_eq!(printed["failed"], format!("1 step(s) failed: step {ssh}: ssh from admin"), "{stack}");
    }
}

/// The node settings are NixOS options of fitting types: the host files' own settings are
/// judged by tests/nix_render.rs, these are what the VM test sets over them.
#[test]
fn node_settings_are_nixos_options() {
    for topology in topologies() {
        let files = tree::artifacts(topology);
        let modules: Vec<(&String, &String)> =
            files.iter().filter(|(p, _)| p.starts_with("modules/") && p.ends_with(".nix")).collect();
        let mut db = OptionDb::nixos();
        db.with_modules(&modules).unwrap_or_else(|problems| panic!("{problems:?}"));
        let nodes = vmtest::node_modules(topology);
        let report = check_files(&db, &nodes);
        let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        assert!(problems.is_empty(), "{}:\n{}", topology.stack.name, problems.join("\n"));
        let allowed: Vec<&str> = KNOWN_UNCOVERED.iter().chain(VM_UNCOVERED).copied().collect();
        assert_eq!(report.uncovered_outside(&allowed), Vec::<&str>::new(), "{}", topology.stack.name);
        // The judged paths are really there: the data covers these families.
        let all: String = nodes.iter().map(|(_, text)| text.as_str()).collect();
        for path in
            ["services.openssh.authorizedKeysFiles", "networking.interfaces.eth0.ipv4", "environment.systemPackages"]
        {
            assert!(all.contains(path), "{path}");
        }
        // Every host's node is the one function's module (its arguments are checked by
        // evaluating it, in the_test_module_evaluates_with_stand_ins): the checker reads through
        // its arguments and the node module's to the settings.
        let names: Vec<&str> = nodes.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, [vmtest::DEFAULTS, vmtest::HOST_NODE_FUNCTION, "admin", "client"], "{}", topology.stack.name);
        let (name, host_node) = nodes.iter().find(|(name, _)| name == vmtest::HOST_NODE_FUNCTION).unwrap();
        for path in ["nixstack.lb.acme", "networking.interfaces.${privateCard}.ipv4.routes", "systemd.services"] {
            assert!(host_node.contains(path), "{path}");
        }
        // And the check bites: a misspelt setting or a wrong type in the host nodes' function
        // is reported, also behind `mkIf`.
        let broken_nodes = [
            host_node.replace("authorizedKeysFiles", "authorizedKeyFiles"),
            host_node.replace("prefixLength = 24;", "prefixLength = \"24\";"),
            host_node.replace("(lib.mkForce null)", "(lib.mkForce 1)"),
            host_node.replace("nixstack.lb.acme", "nixstack.lb.acmee"),
        ];
        for broken in broken_nodes {
            assert_ne!(&broken, host_node);
            let report = check_files(&db, &[(format!("{name}.nix"), broken)]);
            assert!(!report.problems.is_empty(), "a broken {name} passes");
        }
    }
}

/// Python run with the script's definitions and `data` as its scenario, as the test driver runs
/// it (no VM starts, no step runs: tests/vmtest/harness.py), and `harness` after them.
fn run_definitions(topology: &Topology, data: &str, harness: &str) -> Output {
    let dir = tempfile::Builder::new().prefix("nxs-vmtest-data-").tempdir().unwrap();
    let file = dir.path().join("scenario.json");
    std::fs::write(&file, data).unwrap();
    let mut command = python3();
    command
        .arg(manifest_dir().join("tests/vmtest/harness.py"))
        .arg(manifest_dir().join("src/render/vmtest/driver.py"))
        .arg(&file);
    let output = run_with_stdin(command, harness, "python3");
    assert!(!text(&output).contains("no VM runs here"), "{}: {}", topology.stack.name, text(&output));
    output
}

/// The secrets the script makes with openssl, as the driver makes them: every file each host
/// gets exists, each host certificate chains to the throwaway CA for server and client use
/// with the names the Topology gives it, keys match, passwords are 32 alphanumerics.
#[test]
fn the_secrets_the_script_makes_verify_against_its_ca() {
    for topology in topologies() {
        let stack = &topology.stack.name;
        let output = run_definitions(
            topology,
            &data_of(topology),
            "directory = make_secrets()\n\
             sources = [file['source'] for files in SECRETS['hosts'].values() for file in files]\n\
             missing = [source for source in sources if not os.path.isfile(os.path.join(directory, source))]\n\
             assert sources and not missing, missing\n\
             modes = {oct(os.stat(os.path.join(directory, source)).st_mode & 0o777) for source in sources}\n\
             assert modes == {'0o600'}, modes\n\
             print(directory)\n",
        );
        assert!(output.status.success(), "{stack}: {}", text(&output));
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim().lines().last().unwrap());
        struct Cleanup(PathBuf);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let _cleanup = Cleanup(dir.clone());
        assert!(!dir.starts_with(manifest_dir()), "secrets must not land in the repo");

        let openssl = |args: &[&str]| -> String {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .unwrap_or_else(|e| panic!("cannot run openssl ({e}): run scripts/setup"));
            assert!(output.status.success(), "{stack}: openssl {args:?}: {}", text(&output));
            String::from_utf8_lossy(&output.stdout).into_owned()
        };
        let ca_subject = openssl(&["x509", "-in", "ca.crt", "-noout", "-subject"]);
        assert!(ca_subject.contains(&nixstack::secrets::ca_name(stack)), "{ca_subject}");
        for certificate in &topology.certificates {
            let crt = format!("hosts/{}/host.crt", certificate.host);
            for purpose in ["sslserver", "sslclient"] {
                let verified = openssl(&["verify", "-CAfile", "ca.crt", "-purpose", purpose, &crt]);
                assert!(verified.contains(": OK"), "{verified}");
            }
            let names = openssl(&["x509", "-in", &crt, "-noout", "-ext", "subjectAltName"]);
            for dns in &certificate.dns_names {
                assert!(names.contains(&format!("DNS:{dns}")), "{stack}/{}: {names}", certificate.host);
            }
            for ip in &certificate.ip_addresses {
                assert!(names.contains(&format!("IP Address:{ip}")), "{stack}/{}: {names}", certificate.host);
            }
            let key = format!("hosts/{}/host.key", certificate.host);
            assert_eq!(
                openssl(&["x509", "-in", &crt, "-noout", "-pubkey"]),
                openssl(&["pkey", "-in", &key, "-pubout"])
            );
            let pem = std::fs::read_to_string(dir.join(format!("hosts/{}/host.pem", certificate.host))).unwrap();
            assert_eq!(
                pem,
                std::fs::read_to_string(dir.join(&crt)).unwrap() + &std::fs::read_to_string(dir.join(&key)).unwrap()
            );
        }
        let public = nixstack::secrets::public_certificate_file(topology);
        let domain = &topology.stack.domain;
        let verified =
            openssl(&["verify", "-CAfile", "ca.crt", "-purpose", "sslserver", "-verify_hostname", domain, &public]);
        assert!(verified.contains(": OK"), "{verified}");
        let db = topology.db.as_ref().unwrap();
        for user in &db.users {
            let password = std::fs::read_to_string(dir.join(nixstack::secrets::db_password_file(&user.name))).unwrap();
            assert!(password.len() == 32 && password.chars().all(|c| c.is_ascii_alphanumeric()), "{password:?}");
        }
    }
}

/// The helpers read curl's `--include` output and the app's page as the lab's probes do, and
/// the data the script carries agrees with the Topology.
#[test]
fn the_helpers_parse_curl_output_and_the_data_matches_the_topology() {
    let topology = &topologies()[0];
    let output = run_definitions(
        topology,
        &data_of(topology),
        r#"
text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/2 200 \r\nx-served-by: web2\r\ncontent-type: text/html\r\n\r\n<p id=\"served\">served-by web=10.10.0.22 app=app1 db=db3 row=17</p>\n"
response = parse_response(text)
assert response.status == 200, response.status
assert response.header("X-Served-By") == "web2"
served = served_by(response.body)
assert served == ServedBy(web="10.10.0.22", app="app1", db="db3"), served
assert web_of(response, served) == "web2"
assert web_of(Response(200, {}, response.body), served) == "web2"
assert served_by("<p>served-by web=10.10.0.22 row=1</p>") is None
assert served_by("<h1>Welcome to nginx</h1>") is None
try:
    parse_response("garbage")
    raise AssertionError("garbage parsed")
except ScenarioFailure:
    pass
probe = {"from": {"kind": "admin"}, "from_address": "198.51.100.254", "to": "db1", "address": "10.10.0.41", "port": 4444, "expect": "refused", "also_open": True, "reason": "why"}
assert accepts(probe, "open") and accepts(probe, "refused") and not accepts(probe, "filtered")
assert not accepts({**probe, "expect": "filtered", "also_open": False}, "open")
assert source_name(probe["from"]) == "admin" and source_name({"kind": "host", "name": "web1"}) == "web1"
assert routed([probe, {**probe, "address": None}]) == [probe]
assert python_name("web-1") == "web_1" and python_name("1db") == "_db" and python_name("server3") == "server3"
sample = Sample("1.5 2.0 0 200 web1 1")
assert sample.ok and sample.web == "web1"
assert not Sample("1.5 2.0 28 0 - 0").ok
print(sorted(MACHINES), SCENARIO["start_order"][0], SCENARIO["bootstrap"], VIP, LBS)
"#,
    );
    assert!(output.status.success(), "{}", text(&output));
    let printed = String::from_utf8_lossy(&output.stdout);
    let db = topology.db.as_ref().unwrap();
    let lb = topology.lb.as_ref().unwrap();
    assert!(printed.contains(&format!("'{}'", db.bootstrap)), "{printed}");
    assert!(printed.contains(&lb.vip.to_string()), "{printed}");
    assert!(printed.contains("'admin', 'app1'") && printed.contains("'client'"), "{printed}");
}
