//! The NixOS VM test rendered from the Scenario (`checks/vm-test.nix` and `checks/vm-test.py`),
//! for both example specs: snapshots; the Nix parses (rnix and the real `nix-instantiate`) and
//! evaluates with the real Nix evaluator against stand-ins (each host's node, whole); the script
//! is valid Python carrying every step of the Scenario; the node settings are NixOS options; the
//! secrets the script makes with openssl verify against its CA; its HTTP parsing reads curl's
//! output. The VMs themselves cannot run here (no nixpkgs, no KVM-capable NixOS host).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use nixstack::lab::scenario::Scenario;
use nixstack::nixcheck::{check_files, nix_instantiate_parse, parse_nix, OptionDb, KNOWN_UNCOVERED};
use nixstack::render::{tree, vmtest};
use nixstack::spec::{Role, SpecSource, TlsMode};
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

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn topologies() -> &'static [Topology] {
    static TOPOLOGIES: OnceLock<Vec<Topology>> = OnceLock::new();
    TOPOLOGIES.get_or_init(|| {
        SPECS
            .iter()
            .map(|spec| {
                let text = std::fs::read_to_string(manifest_dir().join(spec)).unwrap();
                nixstack::cli::compile(&SpecSource { name: spec.to_string(), text }).unwrap_or_else(|e| panic!("{spec}: {e:?}"))
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
        insta::assert_snapshot!(format!("{stack}__vm_test_py"), vmtest::script(topology));
    }
}

#[test]
fn the_flake_runs_the_vm_test_under_checks_and_the_tree_carries_both_files() {
    for topology in topologies() {
        let files = tree::artifacts(topology);
        assert_eq!(files[vmtest::NIX_FILE], vmtest::nix(topology));
        assert_eq!(files[vmtest::SCRIPT_FILE], vmtest::script(topology));
        assert!(
            files["flake.nix"].contains("vm-test = pkgs.testers.runNixOSTest (import ./checks/vm-test.nix { inherit self disko; });"),
            "{}",
            files["flake.nix"]
        );
        assert!(files[vmtest::NIX_FILE].contains("builtins.readFile ./vm-test.py"));
    }
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
            parse_nix(&format!("{name}.nix"), module).unwrap_or_else(|problem| panic!("{}: {problem}", topology.stack.name));
        }
        nix_instantiate_parse(&files).unwrap_or_else(|e| panic!("{} ({e:#}); run scripts/setup if nix-instantiate is missing", topology.stack.name));
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
    nix::nix_json(Command::new("nix-instantiate").args(["--eval", "--strict", "--json", "--expr", expr]).current_dir(dir), "evaluating checks/vm-test.nix")
}

#[test]
fn the_test_module_evaluates_with_stand_ins() {
    for topology in topologies() {
        let stack = &topology.stack.name;
        let dir = tempfile::Builder::new().prefix("nxs-vmtest-").tempdir().unwrap();
        write_tree(topology, dir.path());
        let value = evaluate(dir.path());
        assert_eq!(value["name"], format!("nixstack-{stack}"));
        assert_eq!(value["pkgsReadOnly"], false);
        // The script Nix hands the driver: the openssl line, then the file beside it, verbatim.
        let script = std::fs::read_to_string(dir.path().join(vmtest::SCRIPT_FILE)).unwrap();
        assert_eq!(value["testScript"], format!("OPENSSL = \"/nix/store/stand-in-openssl/bin/openssl\"\n{script}"), "{stack}");
        assert_eq!(value["defaults"]["virtualisation"]["qemu"]["networkingOptions"]["_force"], Value::Array(Vec::new()));

        let nodes = value["nodes"].as_object().unwrap();
        let mut names: Vec<&str> = nodes.keys().map(String::as_str).collect();
        names.sort();
        let mut expected: Vec<&str> = topology.hosts.iter().map(|h| h.name.as_str()).chain(["admin", "client"]).collect();
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
            let mut cards = serde_json::json!({ "eth0": { "vlan": 1 } });
            if host.public_address.is_some() {
                cards["eth1"] = serde_json::json!({ "vlan": 2 });
            }
            let held: Vec<String> = vmtest::units(topology, host).iter().filter(|u| u.held).map(|u| u.name.trim_end_matches(".service").to_string()).collect();
            assert!(!held.is_empty(), "{stack}/{}: no held unit", host.name);
            let services: serde_json::Map<String, Value> = held.iter().map(|stem| (stem.clone(), held_back.clone())).collect();
            // NixOS starts keepalived from a boot-delay timer: held back with the service.
            let timers: serde_json::Map<String, Value> = held
                .iter()
                .filter(|stem| *stem == "keepalived")
                .map(|_| ("keepalived-boot-delay".to_string(), held_back.clone()))
                .collect();
            let acme_off = host.has(Role::Lb) && topology.lb.as_ref().is_some_and(|lb| lb.tls == TlsMode::Acme);
            let expected = serde_json::json!({
                "imports": [
                    { "path": dir.path().join("hosts").join(&host.name).to_string_lossy(), "exists": true },
                    "disko-module",
                ],
                "nixpkgs": { "overlays": ["stack-overlay"] },
                "virtualisation": { "interfaces": cards },
                "networking": { "interfaces": { "eth0": { "ipv4": { "routes": admin_routes } } } },
                "services": { "openssh": { "authorizedKeysFiles": [format!("{}/authorized_keys", vmtest::TEST_DIR)] } },
                "nixstack": { "lb": { "acme": { "_if": acme_off, "content": { "_force": null } } } },
                "systemd": { "services": services, "timers": timers },
            });
            assert_eq!(node, &expected, "{stack}/{}", host.name);
        }
        // The examples exercise every argument: a public card, held timers, ACME replaced.
        if stack == "shop" {
            let lb1 = &nodes["lb1"];
            assert_eq!(lb1["virtualisation"]["interfaces"]["eth1"]["vlan"], 2);
            assert_eq!(lb1["systemd"]["timers"]["keepalived-boot-delay"]["wantedBy"]["_force"], Value::Array(Vec::new()));
            assert_eq!(lb1["nixstack"]["lb"]["acme"]["_if"], true);
            assert_eq!(nodes["web1"]["nixstack"]["lb"]["acme"]["_if"], false);
        }
        let client = &nodes["client"];
        assert_eq!(client["virtualisation"]["interfaces"]["eth0"]["vlan"], 2);
        let plan = nixstack::lab::network::plan(topology).unwrap();
        assert_eq!(client["networking"]["interfaces"]["eth0"]["ipv4"]["addresses"][0]["address"], plan.internet_address().to_string());
        assert_eq!(nodes["admin"]["networking"]["interfaces"]["eth0"]["ipv4"]["addresses"][0]["address"], plan.admin_address().to_string());
    }
}

#[test]
fn the_script_is_valid_python() {
    for topology in topologies() {
        let script = vmtest::script(topology);
        let output = run_with_stdin(
            {
                let mut command = python3();
                command.args(["-c", "import ast, sys; ast.parse(sys.stdin.read(), 'vm-test.py')"]);
                command
            },
            &script,
            "python3",
        );
        assert!(output.status.success(), "{}: {}", topology.stack.name, text(&output));
    }
}

/// Walks the Scenario: every step has its marker, in order, followed by its run (or an explicit
/// skip naming why), and every step the Scenario left out is named.
#[test]
fn every_scenario_step_appears_in_the_script() {
    for topology in topologies() {
        let stack = &topology.stack.name;
        let scenario = Scenario::for_topology(topology);
        let script = vmtest::script(topology);
        assert!(!scenario.steps.is_empty());
        let mut from = 0;
        for (index, step) in scenario.steps.iter().enumerate() {
            let number = index + 1;
            let marker = vmtest::step_marker(number, step);
            let at = script[from..].find(&marker).unwrap_or_else(|| panic!("{stack}: no `{marker}` after byte {from}")) + from;
            let rest = &script[at..];
            let name = serde_json::to_string(step.name()).unwrap();
            let run = format!("run_step({number}, {name}, lambda: ");
            let skip = format!("skip_step({number}, {name}, ");
            let next = rest[marker.len()..].find("# scenario step ").map(|i| i + marker.len()).unwrap_or(rest.len());
            let body = &rest[..next];
            assert!(body.contains(&run) || (body.contains(&skip) && body.contains("# skipped: ")), "{stack}: step {number} ({}) is neither run nor skipped with a reason:\n{body}", step.name());
            from = at + marker.len();
        }
        assert_eq!(script.matches("# scenario step ").count(), scenario.steps.len(), "{stack}");
        for note in &scenario.omitted {
            assert!(script.contains(&format!("# omitted by the Scenario: {note}")), "{stack}: {note}");
        }
        assert!(script.trim_end().ends_with("finish()"), "{stack}");
    }
}

/// The node settings are NixOS options of fitting types: the host files' own settings are
/// judged by tests/nix_render.rs, these are what the VM test sets over them.
#[test]
fn node_settings_are_nixos_options() {
    for topology in topologies() {
        let files = tree::artifacts(topology);
        let modules: Vec<(&String, &String)> = files.iter().filter(|(p, _)| p.starts_with("modules/")).collect();
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
        for path in ["services.openssh.authorizedKeysFiles", "networking.interfaces.eth0.ipv4", "environment.systemPackages"] {
            assert!(all.contains(path), "{path}");
        }
        // Every host's node is the one function's module (its arguments are checked by
        // evaluating it, in the_test_module_evaluates_with_stand_ins): the checker reads through
        // its arguments and the node module's to the settings.
        let names: Vec<&str> = nodes.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, [vmtest::DEFAULTS, vmtest::HOST_NODE_FUNCTION, "admin", "client"], "{}", topology.stack.name);
        let (name, host_node) = nodes.iter().find(|(name, _)| name == vmtest::HOST_NODE_FUNCTION).unwrap();
        for path in ["nixstack.lb.acme", "networking.interfaces.eth0.ipv4.routes", "systemd.services"] {
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

/// Python run with the script's definitions (no VM starts) and `harness` after them.
fn run_definitions(topology: &Topology, harness: &str) -> Output {
    let program = format!("OPENSSL = \"openssl\"\n{}\n{harness}", vmtest::definitions(topology));
    // The driver's globals the definitions name: the machines, `subtest`, `start_all`.
    let mut stubs = String::from("class Stub:\n    name = 'stub'\n");
    for node in topology.hosts.iter().map(|h| h.name.clone()).chain(["client".to_string(), "admin".to_string()]) {
        stubs.push_str(&format!("{} = Stub()\n", node.replace('-', "_")));
    }
    let mut command = python3();
    command.arg("-");
    run_with_stdin(command, &format!("{stubs}{program}"), "python3")
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
            "directory = make_secrets()\n\
             missing = [source for files in HOST_SECRETS.values() for source, _ in files if not os.path.isfile(os.path.join(directory, source))]\n\
             assert not missing, missing\n\
             modes = {oct(os.stat(os.path.join(directory, source)).st_mode & 0o777) for files in HOST_SECRETS.values() for source, _ in files}\n\
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
            let output = Command::new("openssl").args(args).current_dir(&dir).output().unwrap_or_else(|e| panic!("cannot run openssl ({e}): run scripts/setup"));
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
            assert_eq!(openssl(&["x509", "-in", &crt, "-noout", "-pubkey"]), openssl(&["pkey", "-in", &key, "-pubout"]));
            let pem = std::fs::read_to_string(dir.join(format!("hosts/{}/host.pem", certificate.host))).unwrap();
            assert_eq!(pem, std::fs::read_to_string(dir.join(&crt)).unwrap() + &std::fs::read_to_string(dir.join(&key)).unwrap());
        }
        let public = nixstack::secrets::public_certificate_file(topology);
        let domain = &topology.stack.domain;
        let verified = openssl(&["verify", "-CAfile", "ca.crt", "-purpose", "sslserver", "-verify_hostname", domain, &public]);
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
        r#"
text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/2 200 \r\nx-served-by: web2\r\ncontent-type: text/html\r\n\r\n<p id=\"served\">served-by web=10.10.0.22 app=app1 db=db3 row=17</p>\n"
response = parse_response(text)
assert response.status == 200, response.status
assert response.header("X-Served-By") == "web2"
served = served_by(response.body)
assert served == {"web": "10.10.0.22", "app": "app1", "db": "db3", "row": "17"}, served
assert web_of(Response(200, {}, response.body), served) == "web2"
assert served_by("<h1>Welcome to nginx</h1>") is None
try:
    parse_response("garbage")
    raise AssertionError("garbage parsed")
except ScenarioFailure:
    pass
assert accepts(("a", "b", "1.2.3.4", 4444, "refused", True, "why"), "open")
assert not accepts(("a", "b", "1.2.3.4", 22, "filtered", False, "why"), "open")
sample = Sample("1.5 2.0 0 200 web1 1")
assert sample.ok and sample.web == "web1"
assert not Sample("1.5 2.0 28 0 - 0").ok
print(sorted(MACHINES), START_ORDER[0], BOOTSTRAP, VIP, LBS)
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
