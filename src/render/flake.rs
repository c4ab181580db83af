//! `flake.nix` of the artifact tree: nixpkgs pinned to the spec's channel, one
//! `nixosConfigurations.<host>` per host, `checks` (every host's system plus the daemons' own
//! checks of the rendered configs), a disk image per host, the application package, a
//! formatter and a dev shell; and, when the spec opts in (`[deploy] tools`), colmena's
//! `colmenaHive` and deploy-rs's `deploy` with their inputs. The Nix text lives in
//! `flake.nix.in`; this fills its slots and keeps or drops its `# @if name@` blocks.

use crate::render::nixos::{quote, NativeConfig, Nix, STATIC_ATTRIBUTE};
use crate::spec::{DeployTool, Role, SecretsBackend};
use crate::topology::{Host, Topology};

const TEMPLATE: &str = include_str!("flake.nix.in");

/// Where the application's package is built from in the artifact tree (`callPackage ./app`):
/// the demo app's sources, copied there by the tree renderer.
pub const APP_SOURCE_DIR: &str = "./app";

/// A check the flake carries beside its own: how the lab adds the NixOS VM test rendered
/// from its Scenario (`checks.<system>.vm-test`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraCheck {
    /// Attribute name under `checks.<system>`, e.g. `vm-test`.
    pub name: String,
    /// A Nix expression; it may use `pkgs`, `lib`, `self`, `disko` and `system`.
    pub expression: String,
}

/// `flake.nix` for `topology`, without extra checks.
pub fn flake(topology: &Topology) -> String {
    flake_with(topology, &[])
}

/// `flake.nix` with `extra_checks` added under `checks.<system>` (the VM test hook).
pub fn flake_with(topology: &Topology, extra_checks: &[ExtraCheck]) -> String {
    let stack = &topology.stack;
    let host_path = |name: &str| Nix::relative_path(&format!("./hosts/{name}"));

    let configurations = topology
        .hosts
        .iter()
        .map(|host| {
            let channel = Nix::Raw(topology.nixpkgs_input_of(host));
            (vec![host.name.clone()], call("nixosHost", &[channel, host_path(&host.name)]))
        })
        .collect();

    let mut checks: Vec<(Vec<String>, Nix)> = Vec::new();
    for host in &topology.hosts {
        let name = &host.name;
        let configs = crate::render::nixos::native_configs(topology, host);
        let system = Nix::select("self", &["nixosConfigurations", name]);
        let beside = |config: NativeConfig| Nix::relative_path(&format!("./hosts/{name}/{}", config.file_name()));
        if configs.contains(&NativeConfig::Haproxy) {
            checks.push((vec![format!("{name}-haproxy")], call("haproxyCheck", &[Nix::str(name), system.clone()])));
        }
        if configs.contains(&NativeConfig::Keepalived) {
            checks
                .push((vec![format!("{name}-keepalived")], call("keepalivedCheck", &[Nix::str(name), system.clone()])));
        }
        if configs.contains(&NativeConfig::Nftables) {
            checks.push((
                vec![format!("{name}-nftables")],
                call("nftablesCheck", &[Nix::str(name), beside(NativeConfig::Nftables)]),
            ));
        }
    }
    for extra in extra_checks {
        checks.push((vec![extra.name.clone()], Nix::Raw(extra.expression.clone())));
    }

    let mut packages: Vec<(Vec<String>, Nix)> = topology
        .hosts
        .iter()
        .map(|host| {
            let image = Nix::select(
                "self",
                &["nixosConfigurations", &host.name, "config", "system", "build", "images", stack.image.as_str()],
            );
            (vec![format!("{}-image", host.name)], image)
        })
        .collect();
    let mut overlay = Vec::new();
    let (mut app_input, mut app_argument) = (String::new(), String::new());
    if let Some(app) = topology.app.as_ref().filter(|_| topology.hosts.iter().any(|h| h.has(Role::App))) {
        let path: Vec<String> = app.package.split('.').map(str::to_string).collect();
        let names: Vec<&str> = path.iter().map(String::as_str).collect();
        packages.push((vec![app.package.replace('.', "-")], Nix::select("pkgs", &names)));
        match (&app.source, &app.source_package) {
            (Some(source), Some(package)) => {
                // The team's code: pinned in flake.lock, bumped with `nix flake update app`.
                app_input = format!(
                    "\n    # The application's code ([app] source); `nix flake update app` bumps its pin.\n    app = {{\n      url = {};\n      inputs.nixpkgs.follows = \"nixpkgs\";\n    }};",
                    quote(source)
                );
                app_argument = "\n      app,".into();
                let mut attribute = vec!["packages", "${final.stdenv.hostPlatform.system}"];
                attribute.extend(package.split('.'));
                overlay.push((path, Nix::Raw(format!("app.{}", attribute.join(".")))));
                if let Some(assets) = topology.web.as_ref().and_then(|web| web.static_package.as_ref()) {
                    // [web] static: the web hosts serve this package's files from the store.
                    let mut attribute = vec!["packages", "${final.stdenv.hostPlatform.system}"];
                    attribute.extend(assets.split('.'));
                    overlay.push((vec![STATIC_ATTRIBUTE.into()], Nix::Raw(format!("app.{}", attribute.join(".")))));
                }
            }
            _ => {
                overlay.push((path, Nix::Raw(format!("final.callPackage {APP_SOURCE_DIR} {{ }}"))));
                if topology.web.as_ref().is_some_and(|web| web.static_package.is_some()) {
                    // The demo app's assets, from the flake's own ./app/static.
                    overlay.push((
                        vec![STATIC_ATTRIBUTE.into()],
                        Nix::Raw(format!("final.callPackage {APP_SOURCE_DIR}/static.nix {{ }}")),
                    ));
                }
            }
        }
    }

    let pinned_away = pinned_away(topology);
    fill(
        TEMPLATE,
        &[
            ("colmena", topology.serves(DeployTool::Colmena)),
            ("deploy_rs", topology.serves(DeployTool::DeployRs)),
            ("node_nixpkgs", !pinned_away.is_empty()),
            ("sops", topology.secrets.backend == SecretsBackend::Sops),
            ("agenix", topology.secrets.backend == SecretsBackend::Agenix),
            ("nixstack", topology.nixstack_flake.is_some()),
        ],
        &[
            ("description", quote(&format!("{}: NixOS hosts generated by nixstack from stack.toml", stack.name))),
            ("nixpkgs_url", quote(&nixpkgs_url(&stack.channel))),
            ("channel_inputs", channel_inputs(topology)),
            ("channel_arguments", channel_arguments(topology)),
            ("colmena_node_nixpkgs", render_at(&colmena_node_nixpkgs(topology, &pinned_away), 5)),
            ("system", quote(&stack.system)),
            ("nixos_configurations", render_at(&Nix::Attrs(configurations), 3)),
            ("checks", render_at(&Nix::Attrs(checks), 4)),
            ("own_system_configurations", own_system_configurations(topology)),
            ("other_system_checks", other_system_checks(topology)),
            ("packages", render_at(&Nix::Attrs(packages), 3)),
            ("overlay", render_at(&Nix::Attrs(overlay), 3)),
            ("formatter", formatter(&stack.channel).to_string()),
            ("colmena_nodes", render_at(&colmena_nodes(topology), 4)),
            ("deploy_nodes", render_at(&deploy_nodes(topology), 3)),
            ("app_input", app_input),
            ("app_argument", app_argument),
            ("nixstack_url", topology.nixstack_flake.as_deref().map(quote).unwrap_or_default()),
        ],
    )
}

fn nixpkgs_url(channel: &str) -> String {
    format!("github:NixOS/nixpkgs/{channel}")
}

/// The nixpkgs inputs besides the stack's `nixpkgs`: one per other channel a host or group
/// pins, named by [`crate::topology::nixpkgs_input`], with the hosts it builds.
fn channel_inputs(topology: &Topology) -> String {
    let mut text = String::new();
    for channel in topology.channels().into_iter().skip(1) {
        let hosts: Vec<&str> =
            topology.hosts.iter().filter(|h| h.channel == channel).map(|h| h.name.as_str()).collect();
        let input = crate::topology::nixpkgs_input(channel, &topology.stack.channel);
        text.push_str(&format!(
            "\n    # The channel of {} (stack.toml: `channel` of a host or group).\n    {input}.url = {};",
            hosts.join(", "),
            quote(&nixpkgs_url(channel))
        ));
    }
    text
}

/// The arguments of `outputs` for [`channel_inputs`].
fn channel_arguments(topology: &Topology) -> String {
    let others = topology.channels().into_iter().skip(1);
    others
        .map(|channel| format!("\n      {},", crate::topology::nixpkgs_input(channel, &topology.stack.channel)))
        .collect()
}

/// The hosts whose channel or system is not the stack's.
fn pinned_away(topology: &Topology) -> Vec<&Host> {
    topology.hosts.iter().filter(|host| host.pin() != topology.stack_pin()).collect()
}

/// The hosts of a system other than the stack's, sorted by name.
fn other_system_hosts(topology: &Topology) -> Vec<&Host> {
    topology.hosts.iter().filter(|host| host.system != topology.stack.system).collect()
}

/// The configurations whose toplevels are checks of the stack's system: all but those of
/// [`other_system_hosts`].
fn own_system_configurations(topology: &Topology) -> String {
    let others = other_system_hosts(topology);
    if others.is_empty() {
        return "self.nixosConfigurations".into();
    }
    let names = Nix::strs(others.iter().map(|host| host.name.as_str())).render();
    format!("(removeAttrs self.nixosConfigurations {names})")
}

/// `checks.<system>` of each other system a host runs: the toplevels of its hosts.
fn other_system_checks(topology: &Topology) -> String {
    let mut by_system: std::collections::BTreeMap<&str, Vec<(Vec<String>, Nix)>> = Default::default();
    for host in other_system_hosts(topology) {
        let toplevel =
            Nix::select("self", &["nixosConfigurations", &host.name, "config", "system", "build", "toplevel"]);
        by_system.entry(&host.system).or_default().push((vec![format!("{}-toplevel", host.name)], toplevel));
    }
    by_system
        .into_iter()
        .map(|(system, checks)| format!("\n      checks.{system} = {};", render_at(&Nix::Attrs(checks), 3)))
        .collect()
}

/// colmena's `meta.nodeNixpkgs`: per host of [`pinned_away`] the package set of its channel
/// and system, as colmena's hive wants (an initialized nixpkgs).
fn colmena_node_nixpkgs(topology: &Topology, pinned_away: &[&Host]) -> Nix {
    let nodes = pinned_away
        .iter()
        .map(|host| {
            let input = topology.nixpkgs_input_of(host);
            (vec![host.name.clone()], Nix::select(&input, &["legacyPackages", &host.system]))
        })
        .collect();
    Nix::Attrs(nodes)
}

/// colmena's nodes (`colmena.lib.makeHive`): per host the modules of its nixosConfiguration
/// and `deployment` (colmena's src/nix/hive/options.nix, `deploymentOptions`): the SSH login of
/// `nixstack deploy` as `targetHost`, `targetUser` and, when the target names one,
/// `targetPort`; the host's roles as `tags`.
fn colmena_nodes(topology: &Topology) -> Nix {
    let nodes = topology
        .hosts
        .iter()
        .map(|host| {
            let target = host.ssh();
            let mut deployment = vec![
                (vec!["targetHost".into()], Nix::str(target.host)),
                (vec!["targetUser".into()], Nix::str(target.user)),
            ];
            if let Some(port) = target.port {
                deployment.push((vec!["targetPort".into()], Nix::Int(port.into())));
            }
            deployment.push((vec!["tags".into()], tags(host)));
            let node = Nix::Attrs(vec![
                (vec!["deployment".into()], Nix::Attrs(deployment)),
                (vec!["imports".into()], call("hostModules", &[Nix::relative_path(&format!("./hosts/{}", host.name))])),
            ]);
            (vec![host.name.clone()], node)
        })
        .collect();
    Nix::Attrs(nodes)
}

/// The host's roles, as colmena tags (`--on @web`).
fn tags(host: &Host) -> Nix {
    Nix::strs(host.roles.iter().map(|role| role.as_str()))
}

/// deploy-rs's nodes (deploy-rs's interface.json, `node_settings` and `generic_settings`): per
/// host the SSH login of `nixstack deploy` as `hostname`, `sshUser` and, when the target names
/// a port, `sshOpts`; one profile, `system`, activating its nixosConfiguration as root.
fn deploy_nodes(topology: &Topology) -> Nix {
    let nodes = topology
        .hosts
        .iter()
        .map(|host| {
            let target = host.ssh();
            let mut node =
                vec![(vec!["hostname".into()], Nix::str(target.host)), (vec!["sshUser".into()], Nix::str(target.user))];
            if let Some(port) = target.port {
                node.push((vec!["sshOpts".into()], Nix::strs(["-p".to_string(), port.to_string()])));
            }
            let system = Nix::select("self", &["nixosConfigurations", &host.name]);
            let profile = Nix::Attrs(vec![
                (vec!["user".into()], Nix::str("root")),
                (vec!["path".into()], call("activateNixos", &[Nix::str(&host.system), system])),
            ]);
            node.push((vec!["profiles".into(), "system".into()], profile));
            (vec![host.name.clone()], Nix::Attrs(node))
        })
        .collect();
    Nix::Attrs(nodes)
}

/// `function arg1 arg2`.
fn call(function: &str, args: &[Nix]) -> Nix {
    let mut text = function.to_string();
    for arg in args {
        text.push(' ');
        let rendered = arg.render();
        if rendered.contains(' ') && !rendered.starts_with('"') && !rendered.starts_with('(') {
            text.push_str(&format!("({rendered})"));
        } else {
            text.push_str(&rendered);
        }
    }
    Nix::Raw(text)
}

/// A value rendered to sit at indentation `level` (its first line follows the `=`).
fn render_at(value: &Nix, level: usize) -> String {
    let pad = "  ".repeat(level);
    value
        .render()
        .lines()
        .enumerate()
        .map(|(i, line)| if i == 0 || line.is_empty() { line.to_string() } else { format!("{pad}{line}") })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The RFC 166 formatter: named `nixfmt` from NixOS 25.11 on (`nixfmt-rfc-style` became an
/// alias), `nixfmt-rfc-style` before.
fn formatter(channel: &str) -> &'static str {
    let release = channel
        .strip_prefix("nixos-")
        .or_else(|| channel.strip_prefix("release-"))
        .and_then(|version| version.split_once('.'))
        .and_then(|(year, month)| Some((year.parse::<u32>().ok()?, month.parse::<u32>().ok()?)));
    match release {
        Some(version) if version < (25, 11) => "pkgs.nixfmt-rfc-style",
        _ => "pkgs.nixfmt",
    }
}

/// Keeps the lines between `# @if name@` and `# @end@` where `blocks` says `name` is on (the
/// marker lines go either way; a block inside another is kept only when both are on), then
/// replaces every `@name@` slot. A slot or block the template does not have is a bug; a slot
/// inside a dropped block is not filled.
fn fill(template: &str, blocks: &[(&str, bool)], slots: &[(&str, String)]) -> String {
    let mut lines = Vec::new();
    // The blocks the current line is inside, innermost last, each with whether it is on.
    let mut open: Vec<(&str, bool)> = Vec::new();
    for line in template.lines() {
        let marker = line.trim();
        if let Some(name) = marker.strip_prefix("# @if ").and_then(|rest| rest.strip_suffix('@')) {
            let (_, on) = blocks
                .iter()
                .find(|(block, _)| *block == name)
                .unwrap_or_else(|| panic!("flake template block @if {name}@ has no value"));
            open.push((name, *on));
        } else if marker == "# @end@" {
            assert!(open.pop().is_some(), "flake template: @end@ without @if@");
        } else if open.iter().all(|(_, on)| *on) {
            lines.push(line);
        }
    }
    assert!(open.is_empty(), "flake template: @if {open:?}@ is never closed");
    for (name, _) in blocks {
        assert!(template.contains(&format!("# @if {name}@")), "flake template has no block @if {name}@");
    }
    let mut text = lines.join("\n") + "\n";
    for (name, value) in slots {
        let slot = format!("@{name}@");
        assert!(template.contains(&slot), "flake template has no slot {slot}");
        text = text.replace(&slot, value);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SpecSource;
    use crate::topology::compile;

    #[test]
    fn formatter_follows_the_channel() {
        assert_eq!(formatter("nixos-25.11"), "pkgs.nixfmt");
        assert_eq!(formatter("nixos-25.05"), "pkgs.nixfmt-rfc-style");
        assert_eq!(formatter("nixos-unstable"), "pkgs.nixfmt");
    }

    #[test]
    fn every_slot_is_filled_and_every_host_has_a_system_and_an_image() {
        let topology = compile(&SpecSource::embedded_default()).unwrap();
        let text = flake(&topology);
        // `@` only in colmena's tag selectors (`--on @db`), never a slot or a block marker.
        assert!(text.split('@').skip(1).all(|after| after.starts_with("db")), "{text}");
        for host in &topology.hosts {
            assert!(text.contains(&format!("{0} = nixosHost nixpkgs ./hosts/{0};", host.name)), "{text}");
            assert!(text.contains(&format!(
                "{0}-image = self.nixosConfigurations.{0}.config.system.build.images.raw-efi;",
                host.name
            )));
        }
        assert!(text.contains("lb1-haproxy = haproxyCheck \"lb1\" self.nixosConfigurations.lb1;"), "{text}");
        assert!(text.contains("nixpkgs.url = \"github:NixOS/nixpkgs/nixos-25.11\";"));
    }

    /// The default spec with `[deploy] tools` set to `tools`.
    fn with_tools(tools: &str) -> Topology {
        let text = SpecSource::embedded_default().text.replace("tools = [\"colmena\", \"deploy-rs\"]", tools);
        compile(&SpecSource { name: "t.toml".into(), text }).unwrap()
    }

    #[test]
    fn without_deploy_tools_the_flake_has_neither_their_inputs_nor_their_outputs() {
        let text = flake(&with_tools("tools = []"));
        for absent in ["colmena", "deploy-rs", "colmenaHive", "deploy.nodes", "activateNixos", "@if", "@end@"] {
            assert!(!text.contains(absent), "{absent}:\n{text}");
        }
        assert!(text.contains("      disko,\n    }:"), "{text}");
    }

    #[test]
    fn each_deploy_tool_brings_its_input_and_its_output() {
        let text = flake(&with_tools("tools = [\"colmena\"]"));
        assert!(text.contains("url = \"github:zhaofengli/colmena\";"), "{text}");
        assert!(text.contains("colmenaHive = colmena.lib.makeHive ("), "{text}");
        assert!(text.contains("imports = hostModules ./hosts/db1;"), "{text}");
        assert!(!text.contains("deploy-rs"), "{text}");

        let text = flake(&with_tools("tools = [\"deploy-rs\"]"));
        assert!(text.contains("url = \"github:serokell/deploy-rs\";"), "{text}");
        assert!(text.contains("path = activateNixos \"x86_64-linux\" self.nixosConfigurations.db1;"), "{text}");
        assert!(text.contains("// deploy-rs.lib.${system}.deployChecks self.deploy"), "{text}");
        assert!(!text.contains("colmena"), "{text}");
    }

    #[test]
    fn a_block_inside_another_is_kept_only_when_both_are_on() {
        let template = "a\n# @if outer@\nb\n# @if inner@\nc\n# @end@\nd\n# @end@\ne\n";
        let both = fill(template, &[("outer", true), ("inner", true)], &[]);
        assert_eq!(both, "a\nb\nc\nd\ne\n");
        let outer_only = fill(template, &[("outer", true), ("inner", false)], &[]);
        assert_eq!(outer_only, "a\nb\nd\ne\n");
        let inner_only = fill(template, &[("outer", false), ("inner", true)], &[]);
        assert_eq!(inner_only, "a\ne\n");
    }

    #[test]
    fn blocks_are_kept_or_dropped_with_their_markers() {
        let template = "a\n  # @if on@\n  b @x@\n  # @end@\n  # @if off@\n  c @y@\n  # @end@\nd\n";
        let text = fill(template, &[("on", true), ("off", false)], &[("x", "1".into()), ("y", "2".into())]);
        assert_eq!(text, "a\n  b 1\nd\n");
    }

    #[test]
    fn extra_checks_land_under_checks() {
        let topology = compile(&SpecSource::embedded_default()).unwrap();
        let vm_test =
            ExtraCheck { name: "vm-test".into(), expression: "pkgs.testers.runNixOSTest ./tests/vm.nix".into() };
        let text = flake_with(&topology, &[vm_test]);
        assert!(text.contains("vm-test = pkgs.testers.runNixOSTest ./tests/vm.nix;"), "{text}");
    }
}
