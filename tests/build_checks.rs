//! The checks that run while the generated flake builds, reproduced under the Nix build
//! sandbox's conditions (tests/common/sandbox.rs: only `lo`, empty /var and /run, nix's
//! /etc, a cleared environment, the build user) on every generated host of
//! `examples/default.toml` and `examples/whiteboard.toml`:
//!
//! - the flake's own checks (src/render/flake.nix.in): `haproxy -c -f` on the file NixOS
//!   installs, `keepalived --config-test` on the file the unit runs;
//! - nixpkgs' nftables module `checkRuleset` (nixos/modules/services/networking/nftables.nix,
//!   Swarsel/nixpkgs@4aa6836a): the rules script as the module writes it, the same
//!   `checkPhase` steps, `nft --check --file ruleset.conf`;
//! - nixpkgs' nginx module `validateConfigFile` (`pkgs.writers.writeNginxConfig`): the awk
//!   re-indent, blank lines dropped, then `gixy` (from the venv scripts/setup installs);
//! - collectd's `validateConfig` cannot be reproduced with Debian's collectd (see the last test).
//!
//! docs/nixos.md ("Build-time checks under the sandbox") records what was read.

#[path = "common/examples.rs"]
mod examples;
#[path = "common/sandbox.rs"]
mod sandbox;

use nixstack::render::{tree, Artifacts};
use nixstack::stack::launch;
use nixstack::stack::Layout;
use sandbox::{Sandbox, User};

const SPECS: &[&str] = &["default", "whiteboard"];

/// The gixy scripts/setup installs (PyPI `gixy`, the program nixpkgs' writeNginxConfig runs).
const GIXY: &str = "/opt/nixstack/gixy-venv/bin/gixy";

/// Each generated host of `spec` with its files (`hosts/<host>/<file>` → text).
fn hosts(spec: &str) -> Vec<(String, Artifacts)> {
    let topology = examples::spec(spec);
    let artifacts = tree::artifacts(&topology);
    topology
        .hosts
        .iter()
        .map(|host| {
            let prefix = format!("hosts/{}/", host.name);
            let files = artifacts
                .iter()
                .filter_map(|(path, text)| path.strip_prefix(&prefix).map(|name| (name.to_string(), text.clone())))
                .collect();
            (host.name.clone(), files)
        })
        .collect()
}

#[test]
fn the_sandbox_has_what_nix_gives_a_builder_and_nothing_else() {
    sandbox::assert_sandbox_conditions();
}

// ---------------------------------------------------------------------------------------
// haproxy -c (the flake's haproxyCheck)

/// The flake's `haproxyCheck`: a throwaway certificate at every `/var/lib/…` path the config
/// names, which the flake reaches through libredirect (`NIX_REDIRECTS=/var/lib=$PWD/fake/var/lib`);
/// libredirect is not installable here, so the same redirect is made on the file's paths.
/// Debian's openssl finds its config through /etc/ssl (nixpkgs' in its store path).
fn haproxy_check(sandbox: &Sandbox, config: &str) -> sandbox::Run {
    let installed = launch::haproxy_config_as_installed(&Layout::nixos(), config);
    let file = sandbox.input("haproxy.conf", &installed);
    sandbox.run_with_etc(
        User::Nixbld,
        &["ssl"],
        &format!(
            "set -eu\n\
             openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=check -keyout key.pem -out cert.pem 2>/dev/null\n\
             for file in $(grep -oE '/var/lib/[^ ]+[.](pem|crt|key)' {cfg} | sort -u); do\n\
               mkdir -p \"fake$(dirname \"$file\")\"\n\
               cat cert.pem key.pem > \"fake$file\"\n\
             done\n\
             sed \"s|/var/lib/|$PWD/fake/var/lib/|g\" {cfg} > redirected.cfg\n\
             haproxy -c -f redirected.cfg\n",
            cfg = file.display()
        ),
    )
}

#[test]
fn haproxy_check_passes_in_the_sandbox_on_every_lb() {
    let mut checked = 0;
    for spec in SPECS {
        for (host, files) in hosts(spec) {
            let Some(config) = files.get("haproxy.cfg") else { continue };
            let sandbox = Sandbox::new();
            let run = haproxy_check(&sandbox, config);
            assert!(run.ok(), "{spec}/{host}: haproxy -c in the sandbox:\n{}", run.text());
            assert!(run.text().contains("Configuration file is valid"), "{}", run.text());
            checked += 1;
        }
    }
    assert_eq!(checked, 3, "lb1, lb2 and the whiteboard's lb");
}

#[test]
fn haproxy_check_fails_on_a_user_the_sandbox_does_not_have() {
    let (_, files) = hosts("default").into_iter().find(|(h, _)| h == "lb1").unwrap();
    let config = files["haproxy.cfg"].replacen("global\n", "global\n    user haproxy\n", 1);
    let run = haproxy_check(&Sandbox::new(), &config);
    assert!(!run.ok(), "no user haproxy in the sandbox's /etc/passwd:\n{}", run.text());
    assert!(run.text().contains("haproxy"), "{}", run.text());
}

// ---------------------------------------------------------------------------------------
// keepalived --config-test (the flake's keepalivedCheck)

/// The config the flake checks and the unit runs: `nixstack.lb.keepalivedConfig` through
/// modules/lb.nix's `replaceVars` (each `@name@` of the rendered file becomes a store path).
/// Here Debian's curl stands in for `${pkgs.curl}/bin/curl`: an absolute path to an
/// executable no user but root can write, inside the build's input closure.
fn keepalived_as_installed(config: &str) -> String {
    config.replace("@curl@", "/usr/bin/curl")
}

/// The flake's `keepalivedCheck` script (src/render/flake.nix.in), on `config`.
fn keepalived_check(sandbox: &Sandbox, config: &str) -> sandbox::Run {
    let file = sandbox.input("keepalived.conf", config);
    let script = KEEPALIVED_CHECK.replace("@config@", &file.display().to_string());
    sandbox.run(User::Nixbld, &format!("{script}cat log >&2\n"))
}

/// The body of the flake's `keepalivedCheck` (src/render/flake.nix.in) with `${config}`
/// as `@config@`; the test below proves the flake carries this text.
const KEEPALIVED_CHECK: &str = r#"for program in $(sed -n 's/^ *script "\([^ "]*\).*/\1/p' @config@); do
  if [ ! -x "$program" ]; then
    echo "@config@: script $program is not an executable of the closure" >&2
    exit 1
  fi
done
if ! keepalived --config-test --use-file=@config@ 2> log; then
  if grep -v -x -E 'Disabling track script [A-Za-z0-9_]+ due to insecure' log | grep -q .; then
    cat log >&2
    exit 1
  fi
fi
"#;

#[test]
fn the_flake_runs_the_keepalived_check_this_file_runs() {
    let flake = nixstack::render::flake::flake(&examples::spec("default"));
    let body: String =
        KEEPALIVED_CHECK.replace("@config@", "${config}").lines().map(|l| format!("          {l}\n")).collect();
    assert!(flake.contains(&body), "flake.nix's keepalivedCheck differs from KEEPALIVED_CHECK:\n{flake}");
}

/// keepalived 2.2.7 run by a user other than root (the builder) disables the root track
/// script as insecure even when every path to it is root's: the one message the flake's
/// check lets through. As root in the same sandbox the config passes outright.
#[test]
fn keepalived_config_test_as_the_builder_only_inhibits_the_root_track_script() {
    let (_, files) = hosts("default").into_iter().find(|(h, _)| h == "lb1").unwrap();
    let file_text = keepalived_as_installed(&files["keepalived.conf"]);
    let sandbox = Sandbox::new();
    let file = sandbox.input("keepalived.conf", &file_text);
    let builder = sandbox.run(User::Nixbld, &format!("keepalived --config-test --use-file={}", file.display()));
    assert_eq!(builder.status.code(), Some(5), "{}", builder.text());
    assert_eq!(builder.stderr.trim(), "Disabling track script chk_haproxy due to insecure", "{}", builder.text());
    let root = sandbox.run(User::Root, &format!("keepalived --config-test --use-file={}", file.display()));
    assert!(root.ok(), "{}", root.text());
}

#[test]
fn keepalived_check_passes_in_the_sandbox_on_every_lb() {
    let mut checked = 0;
    for spec in SPECS {
        for (host, files) in hosts(spec) {
            let Some(config) = files.get("keepalived.conf") else { continue };
            let installed = keepalived_as_installed(config);
            assert!(
                !installed.contains('@'),
                "{spec}/{host}: a placeholder modules/lb.nix does not fill:\n{installed}"
            );
            let run = keepalived_check(&Sandbox::new(), &installed);
            assert!(
                run.ok(),
                "{spec}/{host}: keepalived --config-test in the sandbox ({}):\n{}\n{installed}",
                run.status,
                run.text()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 3, "lb1, lb2 and the whiteboard's lb");
}

/// What failed before: the sandbox has no card of the host (only `lo`) and no
/// /run/current-system. Both are refused by the real keepalived; the rendered config must
/// carry neither problem.
#[test]
fn keepalived_check_refuses_a_missing_card_and_a_script_outside_the_closure() {
    let (_, files) = hosts("default").into_iter().find(|(h, _)| h == "lb1").unwrap();
    let good = keepalived_as_installed(&files["keepalived.conf"]);
    assert!(keepalived_check(&Sandbox::new(), &good).ok());

    let static_interfaces = good.replace("    dynamic_interfaces\n", "");
    assert_ne!(static_interfaces, good, "the config allows cards that appear after start");
    let run = keepalived_check(&Sandbox::new(), &static_interfaces);
    assert!(!run.ok(), "{}", run.text());
    assert!(run.text().contains("Non-existent interface"), "{}", run.text());

    let profile = good.replace("/usr/bin/curl", "/run/current-system/sw/bin/curl");
    let run = keepalived_check(&Sandbox::new(), &profile);
    assert!(!run.ok(), "{}", run.text());
    assert!(
        run.text().contains("script /run/current-system/sw/bin/curl is not an executable of the closure"),
        "{}",
        run.text()
    );
}

// ---------------------------------------------------------------------------------------
// nft --check (nixpkgs' networking.nftables.checkRuleset)

/// `rulesScript` of nixpkgs' nftables module with `flushRuleset = true`, no `tables`,
/// `ruleset` = the rendered file (modules/firewall.nix), no `rulesetFile`.
fn nftables_rules_script(deletions: &str, ruleset: &str) -> String {
    format!(
        "#! /usr/sbin/nft -f\n# previous deletions, if any\ninclude \"/var/lib/nftables/deletions.nft\"\n# current deletions\ninclude \"{deletions}\"\n\n{ruleset}\n\n"
    )
}

/// The module's `checkPhase`: copy, strip the `/var/lib` include, no `preCheckRuleset`, then
/// `nft --check --file ruleset.conf`. nixpkgs runs nft against LKL with libredirect mapping
/// `checkRulesetRedirects` (/etc/hosts, /etc/protocols, /etc/services); here nft runs as
/// root of a network namespace with only `lo`, and the system's /etc/protocols and
/// /etc/services are bound where the redirects point.
fn nftables_check(sandbox: &Sandbox, ruleset: &str) -> sandbox::Run {
    let deletions = sandbox.input("nftables-deletions", "flush ruleset\n\n");
    let script = sandbox.input("nftables-rules", &nftables_rules_script(&deletions.display().to_string(), ruleset));
    sandbox.run_with_etc(
        User::Root,
        &["protocols", "services"],
        &format!(
            "set -eu\ncp {} ruleset.conf\nchmod u+w ruleset.conf\nsed 's|include \"/var/lib/nftables/deletions.nft\"||' -i ruleset.conf\nnft --check --file ruleset.conf\n",
            script.display()
        ),
    )
}

#[test]
fn nftables_check_ruleset_passes_in_the_sandbox_on_every_host() {
    let mut checked = 0;
    for spec in SPECS {
        for (host, files) in hosts(spec) {
            let Some(ruleset) = files.get("nftables.nft") else { continue };
            let run = nftables_check(&Sandbox::new(), ruleset);
            assert!(run.ok(), "{spec}/{host}: nft --check in the sandbox:\n{}", run.text());
            checked += 1;
        }
    }
    assert!(checked >= 11, "every host of the default spec and the whiteboard's firewalled ones: {checked}");
}

#[test]
fn nftables_check_refuses_a_device_the_sandbox_lacks() {
    let (_, files) = hosts("default").into_iter().find(|(h, _)| h == "web1").unwrap();
    let ruleset = &files["nftables.nft"];
    let device = ruleset.replacen("iifname \"lo\" accept", "iif \"pub0\" accept", 1);
    assert_ne!(&device, ruleset, "the ruleset accepts loopback by name");
    let run = nftables_check(&Sandbox::new(), &device);
    assert!(!run.ok(), "iif resolves the card when nft loads the rule:\n{}", run.text());
}

// ---------------------------------------------------------------------------------------
// gixy (nixpkgs' services.nginx.validateConfigFile)

/// `pkgs.writers.writeNginxConfig`'s awk program (pkgs/build-support/writers, as
/// tests/web_firewall_configs.rs records it).
const AWK_FORMAT_NGINX: &str = r#"{sub(/^[ \t]+/,"");idx=0}
/\{/{ctx++;idx=1}
/\}/{ctx--}
{id="";for(i=idx;i<ctx;i++)id=sprintf("%s%s", id, "\t");printf "%s%s\n", id, $0}
"#;

fn gixy_check(sandbox: &Sandbox, config: &str) -> sandbox::Run {
    assert!(std::path::Path::new(GIXY).exists(), "{GIXY} missing: run scripts/setup");
    let text = launch::nginx_config_as_installed(&Layout::nixos(), config);
    let file = sandbox.input("nginx.conf", &text);
    let awk = sandbox.input("awkFormat-nginx.awk", AWK_FORMAT_NGINX);
    sandbox.run(
        User::Nixbld,
        &format!(
            "set -eu\nawk -f {awk} {file} | sed '/^\\s*$/d' > $out\n{GIXY} $out || (echo \"\\n\\nThis can be caused by combining multiple incompatible services on the same hostname.\\n\\nFull merged config:\\n\\n\"; cat $out; exit 1)\n",
            awk = awk.display(),
            file = file.display()
        ),
    )
}

#[test]
fn gixy_passes_in_the_sandbox_on_every_nginx_host() {
    let mut checked = 0;
    for spec in SPECS {
        for (host, files) in hosts(spec) {
            let Some(config) = files.get("nginx.conf") else { continue };
            let run = gixy_check(&Sandbox::new(), config);
            assert!(run.ok(), "{spec}/{host}: gixy in the sandbox:\n{}", run.text());
            assert!(run.text().contains("No issues found"), "{}", run.text());
            checked += 1;
        }
    }
    // web1..web3, app1..app3 (the app hop's terminator) and the whiteboard's servers.
    assert!(checked >= 7, "{checked} nginx.conf checked");
}

#[test]
fn gixy_fails_on_a_finding() {
    let (_, files) = hosts("default").into_iter().find(|(h, _)| h == "web1").unwrap();
    // gixy's add_header_redefinition / host spoofing checks: `$http_host` in a proxy header.
    let config = files["nginx.conf"].replacen("server {", "server {\n        add_header X-Frame-Options DENY;\n        location /gixy { add_header X-Test 1; return 204; }", 1);
    let run = gixy_check(&Sandbox::new(), &config);
    assert!(!run.ok(), "{}", run.text());
    assert!(run.text().contains("Full merged config"), "{}", run.text());
}

// ---------------------------------------------------------------------------------------
// collectd -t

/// nixpkgs' collectd module (`validateConfig`, default true) runs `collectd -t -C
/// collectd.conf` in the sandbox; modules/monitoring.nix turns it off. Debian's collectd
/// 5.12.0 cannot stand in for it: its `-t` exits 0 on a file it never read, so no check here
/// can say what the NixOS build would say. This test keeps that fact honest: when it fails,
/// the collectd here judges configs and the check belongs above.
#[test]
fn collectd_t_here_accepts_anything_so_it_cannot_reproduce_validate_config() {
    let sandbox = Sandbox::new();
    let file = sandbox.input(
        "collectd.conf",
        "BogusDirective 1\nLoadPlugin no_such_plugin\nInclude \"/run/collectd/secrets.conf\"\n",
    );
    let run = sandbox.run(User::Nixbld, &format!("collectd -t -C {}", file.display()));
    assert!(run.ok(), "collectd -t now rejects a broken file: reproduce validateConfig here:\n{}", run.text());
}

// ---------------------------------------------------------------------------------------
// otelcol validate (nixpkgs' services.opentelemetry-collector.validateConfigFile)

/// What `otelcol validate --config=file:$out` refuses in the build sandbox, as the sources
/// read say (docs/nixos.md): config providers resolve first (`${env:X}` of an unset variable
/// is empty; `${file:PATH}` of a missing file is an error), then each component's `Validate()`:
/// filestorage's "directory must exist" unless `create_directory`, sumologicexporter's "no
/// endpoint and no auth extension specified". otelcol is not installable here: this is the
/// model, and the collector's config is checked against it in the sandbox (`exists` asks it).
fn otelcol_validate_model(
    config: &str,
    env: &dyn Fn(&str) -> Option<String>,
    exists: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut errors = Vec::new();
    let mut resolved = String::new();
    let mut rest = config;
    while let Some(start) = rest.find("${") {
        resolved.push_str(&rest[..start]);
        let end = start + rest[start..].find('}').expect("closed reference");
        let reference = &rest[start + 2..end];
        let value = match reference.split_once(':') {
            Some(("env", name)) => env(name).unwrap_or_default(),
            Some(("file", path)) => env(path).unwrap_or_else(|| {
                errors.push(format!("retrieving file:{path}: open {path}: no such file or directory"));
                String::new()
            }),
            _ => panic!("unknown provider in ${{{reference}}}"),
        };
        resolved.push_str(&value);
        rest = &rest[end + 1..];
    }
    resolved.push_str(rest);
    if !errors.is_empty() {
        return errors;
    }
    // The two components' settings, from the generated (fixed-shape) YAML.
    let section = |top: &str, name: &str| -> Vec<(String, String)> {
        let mut lines = resolved.lines().skip_while(|l| *l != format!("{top}:")).skip(1);
        let mut out = Vec::new();
        let mut inside = false;
        for line in lines.by_ref() {
            if !line.starts_with(' ') {
                break;
            }
            if line.starts_with("  ") && !line.starts_with("   ") {
                inside = line.trim_end_matches(':').trim() == name;
                continue;
            }
            if inside && line.starts_with("    ") && !line.starts_with("     ") {
                if let Some((key, value)) = line.trim().split_once(": ") {
                    out.push((key.to_string(), value.trim_matches('"').to_string()));
                }
            }
        }
        out
    };
    let get = |pairs: &[(String, String)], key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let storage = section("extensions", "file_storage");
    if let Some(directory) = get(&storage, "directory") {
        if get(&storage, "create_directory").as_deref() != Some("true") && !exists(&directory) {
            errors.push(format!(
                "extensions::file_storage: directory must exist: stat {directory}: no such file or directory"
            ));
        }
    }
    let sumologic = section("exporters", "sumologic");
    if get(&sumologic, "endpoint").unwrap_or_default().is_empty() && get(&sumologic, "auth").is_none() {
        errors.push("exporters::sumologic: no endpoint and no auth extension specified".into());
    }
    errors
}

/// `test -e PATH` in the sandbox, as the build user.
fn exists_in_sandbox(sandbox: &Sandbox) -> impl Fn(&str) -> bool + '_ {
    move |path| sandbox.run(User::Nixbld, &format!("test -e '{path}'")).ok()
}

#[test]
fn otelcol_validation_refused_the_old_config_in_the_sandbox() {
    let sandbox = Sandbox::new();
    let unset = |_: &str| None;
    for host in ["web1", "db1"] {
        let old = std::fs::read_to_string(format!(
            "{}/tests/build_checks/otelcol-{host}-before.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert!(old.contains("${env:SUMOLOGIC_ENDPOINT}"), "the fixture is the config before credentials");
        let errors = otelcol_validate_model(&old, &unset, &exists_in_sandbox(&sandbox));
        assert_eq!(
            errors,
            [
                "extensions::file_storage: directory must exist: stat /var/lib/opentelemetry-collector: no such file or directory",
                "exporters::sumologic: no endpoint and no auth extension specified"
            ],
            "{host}"
        );
    }
}

#[test]
fn otelcol_config_cannot_validate_without_its_credentials_and_passes_with_them() {
    let sandbox = Sandbox::new();
    let mut checked = 0;
    for spec in SPECS {
        for (host, files) in hosts(spec) {
            let Some(config) = files.get("otelcol.yaml") else { continue };
            assert!(!config.contains("${env:"), "{spec}/{host}: a secret from the environment");
            // As nixpkgs would run it: no credentials in the sandbox. Hence validateConfigFile = false.
            let errors = otelcol_validate_model(config, &|_| None, &exists_in_sandbox(&sandbox));
            assert!(
                !errors.is_empty()
                    && errors.iter().all(|e| e.contains("/run/credentials/opentelemetry-collector.service/")),
                "{spec}/{host}: {errors:?}"
            );
            // nixstack's own check: the credentials systemd would load, stood in by placeholders.
            let credential = |path: &str| {
                path.strip_prefix("/run/credentials/opentelemetry-collector.service/").map(|name| match name {
                    "sumologic-endpoint" => nixstack::secrets::SUMOLOGIC_PLACEHOLDER.to_string(),
                    other => format!("placeholder-{other}"),
                })
            };
            let errors = otelcol_validate_model(config, &credential, &exists_in_sandbox(&sandbox));
            assert!(errors.is_empty(), "{spec}/{host}: {errors:?}\n{config}");
            checked += 1;
        }
    }
    assert!(checked >= 11, "{checked}");
}

// ---------------------------------------------------------------------------------------
// The collector reads what it tails

/// Every log the collector tails is readable by its dynamic user: the producing unit's
/// directory and file modes (LogsDirectoryMode, UMask, from data/nixpkgs-units.toml as read in
/// nixpkgs) grant read to its group only, so the collector's groups (nixpkgs' unit record's
/// SupplementaryGroups plus nixstack's, as the host's Nix renders them) must hold that group.
#[test]
fn the_collector_can_read_every_log_it_tails() {
    use nixstack::render::monitoring;
    use nixstack::stack::units;
    let collector = &units::all()["opentelemetry-collector"];
    assert!(collector.dynamic_user, "a dynamic user: in no group but those listed");
    let mut checked = 0;
    for spec in SPECS {
        let topology = examples::spec(spec);
        for host in &topology.hosts {
            let layout = Layout::nixos();
            let artifacts = tree::artifacts(&topology);
            if !artifacts.contains_key(&format!("hosts/{}/otelcol.yaml", host.name)) {
                continue; // collectd tails no file
            }
            let host_nix = &artifacts[&format!("hosts/{}/default.nix", host.name)];
            for (path, unit) in monitoring::otelcol_tailed_logs(host, &layout) {
                let producer = &units::all()[unit];
                let dir_mode = producer.logs_directory_mode();
                let file_mode = 0o666 & !producer.umask();
                let mut groups = collector.supplementary_groups.clone();
                // What the host's Nix sets (modules/monitoring.nix adds it to SupplementaryGroups).
                let rendered = host_nix
                    .split("supplementaryGroups = [")
                    .nth(1)
                    .map(|rest| {
                        rest[..rest.find(']').unwrap()]
                            .split('"')
                            .skip(1)
                            .step_by(2)
                            .map(str::to_string)
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                groups.extend(rendered);
                let in_group = groups.contains(&producer.group);
                let can_enter = dir_mode & 0o001 != 0 || (in_group && dir_mode & 0o010 != 0);
                let can_read = file_mode & 0o004 != 0 || (in_group && file_mode & 0o040 != 0);
                assert!(
                    can_enter && can_read,
                    "{spec}/{}: the collector (groups {groups:?}) cannot read {} ({unit}: dir {dir_mode:o}, file {file_mode:o}, group {})",
                    host.name,
                    path.display(),
                    producer.group
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 6, "web1..web3, two logs each: {checked}");
}
