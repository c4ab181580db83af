//! The whole artifact tree of a Topology: `flake.nix`, the role modules, per host its NixOS
//! configuration with the native configs (and, given a `disk`, its disko layout) beside it, and
//! the same native configs rendered with the lab layout under `lab/<host>/`. Pure and
//! deterministic: a sorted map path → text.

use crate::render::nixos;
use crate::render::{disko, flake, galera, vmtest, Artifacts, Layout};
use crate::spec::Role;
use crate::topology::Topology;

/// The hand-written role modules of this repository, shipped in every artifact tree.
pub const MODULES: &[(&str, &str)] = &[
    ("modules/app.nix", include_str!("../../modules/app.nix")),
    ("modules/base.nix", include_str!("../../modules/base.nix")),
    ("modules/db-backup.sh", include_str!("../../modules/db-backup.sh")),
    ("modules/db.nix", include_str!("../../modules/db.nix")),
    ("modules/default.nix", include_str!("../../modules/default.nix")),
    ("modules/firewall.nix", include_str!("../../modules/firewall.nix")),
    ("modules/lb.nix", include_str!("../../modules/lb.nix")),
    ("modules/monitoring.nix", include_str!("../../modules/monitoring.nix")),
    ("modules/nginx.nix", include_str!("../../modules/nginx.nix")),
    ("modules/sst-stunnel.sh", include_str!("../../modules/sst-stunnel.sh")),
    ("modules/web.nix", include_str!("../../modules/web.nix")),
];

/// The demo app's sources: the flake builds `nixstack-demo-app` with `callPackage ./app`, so
/// every output tree carries them, verbatim like the modules.
pub const APP: &[(&str, &str)] = &[
    ("app/default.nix", include_str!("../../app/default.nix")),
    ("app/nixstack_demo_app.py", include_str!("../../app/nixstack_demo_app.py")),
    ("app/static.nix", include_str!("../../app/static.nix")),
    (
        "app/static/assets/nixstack-demo.5f0c2b9e.css",
        include_str!("../../app/static/assets/nixstack-demo.5f0c2b9e.css"),
    ),
    ("app/static/robots.txt", include_str!("../../app/static/robots.txt")),
];

/// The lab's MariaDB config file beside the other lab configs of a db host.
pub const LAB_MY_CNF: &str = "my.cnf";

/// Every generated file for `topology`, keyed by path relative to the output directory.
pub fn artifacts(topology: &Topology) -> Artifacts {
    let mut files = Artifacts::new();
    // `checks.<system>.vm-test`: the lab's Scenario as a NixOS VM test (render::vmtest).
    files.insert("flake.nix".to_string(), flake::flake_with(topology, &[vmtest::extra_check()]));
    files.extend(vmtest::files(topology));
    for (path, text) in MODULES.iter().chain(APP) {
        files.insert(path.to_string(), text.to_string());
    }
    for host in &topology.hosts {
        let name = &host.name;
        let nixos = Layout::nixos_for(host);
        files.insert(format!("hosts/{name}/default.nix"), nixos::host(topology, host));
        if let Some(layout) = disko::disko(topology, host) {
            files.insert(format!("hosts/{name}/{}", disko::FILE_NAME), layout);
        }
        let lab = Layout::lab(name);
        for config in nixos::native_configs(topology, host) {
            let file = config.file_name();
            files.insert(format!("hosts/{name}/{file}"), config.render(topology, host, &nixos));
            files.insert(format!("lab/{name}/{file}"), config.render(topology, host, &lab));
        }
        if host.has(Role::Db) {
            files.insert(format!("lab/{name}/{LAB_MY_CNF}"), galera::lab_ini(topology, host, &lab));
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SpecSource;
    use crate::topology::compile;

    #[test]
    fn every_module_on_disk_is_shipped() {
        let on_disk: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/modules"))
            .unwrap()
            .map(|entry| format!("modules/{}", entry.unwrap().file_name().to_string_lossy()))
            .filter(|path| path.ends_with(".nix") || path.ends_with(".sh"))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let shipped: Vec<&str> = MODULES.iter().map(|(path, _)| *path).collect();
        assert_eq!(on_disk, shipped);
    }

    #[test]
    fn every_file_of_the_demo_app_on_disk_is_shipped() {
        fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, base, out);
                } else if path.extension().is_none_or(|e| e != "pyc") {
                    out.push(format!("app/{}", path.strip_prefix(base).unwrap().display()));
                }
            }
        }
        let base = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/app"));
        let mut on_disk = Vec::new();
        walk(base, base, &mut on_disk);
        on_disk.sort();
        let shipped: Vec<&str> = APP.iter().map(|(path, _)| *path).collect();
        assert_eq!(on_disk, shipped);
    }

    #[test]
    fn the_flakes_app_package_ships_with_the_tree() {
        let topology = compile(&SpecSource::embedded_default()).unwrap();
        let files = artifacts(&topology);
        assert!(files["flake.nix"].contains("callPackage ./app"), "the flake builds the demo app from ./app");
        assert!(
            files.contains_key("app/default.nix") && files.contains_key("app/nixstack_demo_app.py"),
            "{:?}",
            files.keys().collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_tree_has_a_host_file_and_lab_configs_per_host() {
        let topology = compile(&SpecSource::embedded_default()).unwrap();
        let files = artifacts(&topology);
        for host in &topology.hosts {
            assert!(files.contains_key(&format!("hosts/{}/default.nix", host.name)));
        }
        assert!(files.contains_key("hosts/lb1/haproxy.cfg"));
        assert!(files.contains_key("lab/lb1/haproxy.cfg"));
        assert!(files.contains_key("lab/db1/my.cnf"));
        assert!(!files.contains_key("hosts/db1/my.cnf"));
        assert!(files.contains_key("flake.nix"));
        assert!(files.contains_key("hosts/lb1/disko.nix"));
        assert!(!files.contains_key("hosts/web1/disko.nix"));
    }
}
