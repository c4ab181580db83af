//! Bare-metal install: the generated disko layouts (snapshots, parsed by rnix and by Nix,
//! evaluated by Nix and held against the file systems modules/base.nix mounts), and
//! `nixstack install` on real temporary directories: the staged secrets and their modes, the
//! printed nixos-anywhere command, every refusal, the offline refusal, and the command line
//! going through a real `nix run` to a local program that records what it was given.
//!
//! What cannot run here, and is not pretended: nixos-anywhere itself (it needs the network,
//! nixpkgs and a machine to erase), disko's partitioning, and booting the result. The
//! recorder below stands in for nixos-anywhere and says so.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nixstack::deploy::install::{self, InstallArgs};
use nixstack::nixcheck::nix_instantiate_parse;
use nixstack::output;
use nixstack::render::{disko, tree, NIXOS_SECRETS};
use nixstack::secrets::host_secrets;
use nixstack::spec::{SpecSource, DEFAULT_SPEC};
use nixstack::topology::Topology;
use serde_json::{json, Value};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

#[path = "common/nix.rs"]
mod nix;

use nix::OFFLINE_NIX_CONFIG;

const TARGET: &str = "root@192.0.2.10";

// ---------------------------------------------------------------------------------------
// Helpers

fn compile(text: &str) -> Topology {
    nixstack::cli::compile(&SpecSource { name: "stack.toml".into(), text: text.into() })
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The default spec with a disk on db1 (the Galera bootstrap node) and db2 as well.
fn spec_with_db_disks() -> String {
    let mut text = DEFAULT_SPEC.to_string();
    for (host, address) in [("db1", "10.10.0.41"), ("db2", "10.10.0.42")] {
        let block = format!("[hosts.{host}]\naddress = \"{address}\"\nroles = [\"db\"]\n");
        assert!(text.contains(&block), "the default spec's {host} block changed");
        text = text.replace(&block, &format!("{block}disk = \"/dev/nvme0n1\"\n"));
    }
    text
}

fn temp(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

/// Writes the artifact tree of `topology` (unstamped, as the renderers give it) into `dir`.
fn write_tree(topology: &Topology, dir: &Path) {
    for (path, text) in tree::artifacts(topology) {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
}

fn nix_instantiate(args: &[&str], dir: &Path) -> Value {
    nix::nix_json(Command::new("nix-instantiate").args(args).current_dir(dir), &format!("nix-instantiate {args:?}"))
}

/// `hosts/<host>/disko.nix` of a tree in `dir`, evaluated by Nix.
fn eval_disko(dir: &Path, host: &str) -> Value {
    nix_instantiate(&["--eval", "--strict", "--json", &format!("hosts/{host}/disko.nix")], dir)
}

/// The host file and the role modules evaluated with stand-ins for nixpkgs
/// (`tests/nix_render/eval-host.nix`): what base.nix sets for this host.
fn eval_host(dir: &Path, host: &str, overrides: &str) -> Value {
    let expr = format!(
        "import {REPO}/tests/nix_render/eval-host.nix {{ hostFile = {dir}/hosts/{host}/default.nix; modulesDir = {dir}/modules; overrides = {overrides}; }}",
        dir = dir.display()
    );
    nix_instantiate(&["--eval", "--strict", "--json", "--expr", &expr], dir)
}

/// Runs the nixstack binary in `dir` with `env` added.
fn nixstack(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nixstack"));
    command.args(args).current_dir(dir);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A working directory as an operator has it: `stack.toml`, the flake `nixstack build` wrote
/// in `flake/`, the secrets `nixstack secrets init` made in `secrets/`, and a TMPDIR of the
/// test's own so that staging directories left behind would show.
struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    fn new(spec: &str) -> Workdir {
        let workdir = Workdir { dir: temp("nxs-install-") };
        std::fs::write(workdir.path().join("stack.toml"), spec).unwrap();
        std::fs::create_dir(workdir.tmp()).unwrap();
        for args in
            [&["build", "stack.toml", "-o", "flake"][..], &["secrets", "init", "stack.toml", "--dir", "secrets"][..]]
        {
            let output = nixstack(workdir.path(), args, &[]);
            assert!(output.status.success(), "nixstack {args:?}: {}", text(&output.stderr));
        }
        workdir
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn tmp(&self) -> PathBuf {
        self.path().join("tmp")
    }

    /// `nixstack install <host> stack.toml --target root@192.0.2.10 --flake flake <extra>`.
    fn install(&self, host: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let tmp = self.tmp();
        let mut env: Vec<(&str, &str)> = env.to_vec();
        env.push(("TMPDIR", tmp.to_str().unwrap()));
        let mut args = vec!["install", host, "stack.toml", "--target", TARGET, "--flake", "flake"];
        args.extend(extra);
        nixstack(self.path(), &args, &env)
    }

    fn topology(&self) -> Topology {
        compile(&std::fs::read_to_string(self.path().join("stack.toml")).unwrap())
    }

    /// Staging directories still in the test's TMPDIR (there must be none after a run).
    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.tmp()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
    }
}

/// What the staging directory of `host` must hold: the directories down to the secrets
/// directory with the modes NixOS gives them, and each secret of the host at 0640.
fn expected_staging(topology: &Topology, host: &str, secrets_dir: &Path) -> Vec<(String, u32)> {
    let mut expected = vec![
        ("var/".to_string(), 0o755),
        ("var/lib/".to_string(), 0o755),
        ("var/lib/nixstack/".to_string(), 0o755),
        ("var/lib/nixstack/secrets/".to_string(), 0o750),
    ];
    for (_, name) in host_secrets(topology, host, secrets_dir) {
        expected.push((format!("var/lib/nixstack/secrets/{name}"), 0o640));
    }
    expected.sort();
    expected
}

/// Every entry under `dir`: relative path (directories end in `/`) → mode.
fn modes(dir: &Path) -> Vec<(String, u32)> {
    fn walk(root: &Path, dir: &Path, found: &mut Vec<(String, u32)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().display().to_string();
            let mode = std::fs::symlink_metadata(&path).unwrap().permissions().mode() & 0o7777;
            if path.is_dir() {
                found.push((format!("{relative}/"), mode));
                walk(root, &path, found);
            } else {
                found.push((relative, mode));
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, dir, &mut found);
    found.sort();
    found
}

// ---------------------------------------------------------------------------------------
// The disko layouts

#[test]
fn snapshots_of_every_disko_layout_of_the_default_spec() {
    let topology = compile(DEFAULT_SPEC);
    let files = tree::artifacts(&topology);
    let mut with_layout = Vec::new();
    for host in &topology.hosts {
        let path = format!("hosts/{}/{}", host.name, disko::FILE_NAME);
        let default_nix = &files[&format!("hosts/{}/default.nix", host.name)];
        let imports_layout = default_nix.contains("imports = [ ../../modules ./disko.nix ]");
        match &host.disk {
            Some(_) => {
                insta::assert_snapshot!(format!("disko__{}", host.name), files[&path]);
                assert!(imports_layout, "{}: default.nix does not import its layout", host.name);
                with_layout.push(host.name.as_str());
            }
            None => {
                assert!(!files.contains_key(&path), "{path} without a disk");
                assert!(!imports_layout && !default_nix.contains("disko.nix"), "{}", host.name);
            }
        }
    }
    assert_eq!(with_layout, ["lb1", "lb2"], "the default spec gives the load balancers a disk");
}

#[test]
fn every_layout_parses_with_rnix_and_nix_instantiate() {
    for spec in
        [DEFAULT_SPEC.to_string(), spec_with_db_disks(), DEFAULT_SPEC.replace("image = \"raw-efi\"", "image = \"raw\"")]
    {
        let topology = compile(&spec);
        // As `nixstack build` writes them: with the header line.
        let files: Vec<(String, String)> = output::stamp(&tree::artifacts(&topology), "stack `shop`")
            .into_iter()
            .filter(|(path, _)| path.ends_with(disko::FILE_NAME))
            .collect();
        assert!(!files.is_empty());
        for (path, text) in &files {
            let errors = rnix::Root::parse(text).errors().to_vec();
            assert!(errors.is_empty(), "{path}: {errors:?}");
        }
        if let Err(error) = nix_instantiate_parse(&files) {
            panic!("{error:#}; run scripts/setup if nix-instantiate is missing");
        }
    }
}

/// The layout Nix evaluates: the spec's disk, GPT, an EFI system partition on /boot and an
/// ext4 root, labelled as base.nix's default file systems name them (so that they agree),
/// with the mount options base.nix uses.
#[test]
fn every_efi_layout_evaluates_to_the_disk_and_the_file_systems_base_nix_mounts() {
    let topology = compile(&spec_with_db_disks());
    let dir = temp("nxs-install-disko-");
    write_tree(&topology, dir.path());
    let mut evaluated = 0;
    for host in topology.hosts.iter().filter(|h| h.disk.is_some()) {
        let layout = eval_disko(dir.path(), &host.name);
        let main = &layout["disko"]["devices"]["disk"]["main"];
        assert_eq!(layout["disko"]["devices"]["disk"].as_object().unwrap().len(), 1, "{}: one disk", host.name);
        assert_eq!(main["type"], "disk");
        assert_eq!(main["device"], json!(host.disk.as_ref().unwrap()), "{}", host.name);
        assert_eq!(main["content"]["type"], "gpt");
        let partitions = main["content"]["partitions"].as_object().unwrap();
        assert_eq!(partitions.keys().collect::<Vec<_>>(), ["ESP", "root"], "{}", host.name);

        let esp = &partitions["ESP"];
        assert_eq!((&esp["type"], &esp["size"]), (&json!("EF00"), &json!("512M")));
        assert_eq!(esp["content"]["type"], "filesystem");
        assert_eq!(esp["content"]["format"], "vfat");
        assert_eq!(esp["content"]["mountpoint"], "/boot");
        assert_eq!(esp["content"]["extraArgs"], json!(["-n", "ESP"]));
        let root = &partitions["root"];
        assert_eq!(root["size"], "100%");
        assert_eq!(root["content"]["format"], "ext4");
        assert_eq!(root["content"]["mountpoint"], "/");
        assert_eq!(root["content"]["extraArgs"], json!(["-L", "nixos"]));

        // What base.nix mounts when no disko layout is there: the same labels, file system
        // types and /boot options, so the two never disagree about the disk.
        let config = &eval_host(dir.path(), &host.name, "{ }")["config"];
        assert_eq!(config["boot"]["loader"]["systemd-boot"]["enable"], true, "{}", host.name);
        let file_systems = &config["fileSystems"];
        for (mountpoint, partition) in [("/", root), ("/boot", esp)] {
            let label = partition["content"]["extraArgs"][1].as_str().unwrap();
            assert_eq!(
                file_systems[mountpoint]["device"],
                json!(format!("/dev/disk/by-label/{label}")),
                "{}: {mountpoint}",
                host.name
            );
            assert_eq!(
                file_systems[mountpoint]["fsType"], partition["content"]["format"],
                "{}: {mountpoint}",
                host.name
            );
        }
        assert_eq!(file_systems["/boot"]["options"], esp["content"]["mountOptions"], "{}", host.name);
        evaluated += 1;
    }
    assert_eq!(evaluated, 4, "lb1, lb2, db1, db2");
}

/// A BIOS image variant boots with GRUB: the layout has a 1M BIOS boot partition (EF02, from
/// which disko sets GRUB's device) and no ESP, and base.nix points GRUB at the same disk.
#[test]
fn a_bios_layout_has_a_bios_boot_partition_for_grub_and_no_esp() {
    let spec = DEFAULT_SPEC.replace("image = \"raw-efi\"", "image = \"raw\"");
    assert_ne!(spec, DEFAULT_SPEC, "the default spec's image line changed");
    let topology = compile(&spec);
    let dir = temp("nxs-install-bios-");
    write_tree(&topology, dir.path());
    let layout = eval_disko(dir.path(), "lb1");
    let partitions = &layout["disko"]["devices"]["disk"]["main"]["content"]["partitions"];
    assert_eq!(partitions.as_object().unwrap().keys().collect::<Vec<_>>(), ["boot", "root"]);
    assert_eq!(partitions["boot"], json!({ "type": "EF02", "size": "1M" }));
    assert_eq!(partitions["root"]["content"]["extraArgs"], json!(["-L", "nixos"]));

    let config = &eval_host(dir.path(), "lb1", "{ }")["config"];
    let grub = &config["boot"]["loader"]["grub"];
    assert_eq!(grub["enable"], true);
    assert_eq!(grub["devices"], json!(["/dev/sda"]));
    assert!(config["fileSystems"].get("/boot").is_none(), "no ESP to mount: {}", config["fileSystems"]);
}

// ---------------------------------------------------------------------------------------
// Staging the secrets

#[test]
fn staging_holds_exactly_the_host_secrets_with_their_modes_and_is_removed() {
    let workdir = Workdir::new(&spec_with_db_disks());
    let topology = workdir.topology();
    let secrets_dir = workdir.path().join("secrets");
    for host in ["lb1", "db1"] {
        let secrets = host_secrets(&topology, host, &secrets_dir);
        let staging = install::stage_secrets(&secrets).unwrap();
        let root = staging.root().to_path_buf();
        assert_eq!(std::fs::metadata(&root).unwrap().permissions().mode() & 0o7777, 0o700, "{host}");
        assert_eq!(modes(&root), expected_staging(&topology, host, &secrets_dir), "{host}");
        for (source, name) in &secrets {
            let staged = root.join(NIXOS_SECRETS.trim_start_matches('/')).join(name);
            assert_eq!(std::fs::read(&staged).unwrap(), std::fs::read(source).unwrap(), "{host}: {name}");
        }
        // What `--dry-run` prints comes from the disk, not from constants.
        let listed: Vec<(String, u32)> = staging.entries().unwrap().into_iter().map(|e| (e.path, e.mode)).collect();
        assert_eq!(listed, modes(&root));
        drop(staging);
        assert!(!root.exists(), "{host}: the staging directory outlived the install");
    }
    let db1 = host_secrets(&topology, "db1", &secrets_dir);
    assert!(db1.iter().any(|(_, name)| name == "db-shop.password"), "{db1:?}");
}

/// nixos-anywhere copies `--extra-files` with `tar -C "$extraFiles" -cpf- . | ... tar -C /mnt
/// -xf- --no-same-owner` (its src/nixos-anywhere.sh): every file arrives owned by root, so the
/// services' group cannot read it. base.nix's tmpfiles rules hand the files to the secrets
/// group; here the real tar copies the staging tree into a stand-in root and the real
/// systemd-tmpfiles applies the rules base.nix evaluates to, with the secrets directory and
/// group pointed at the test's own (the group is Debian's `daemon`).
#[test]
fn installed_secrets_become_readable_by_the_secrets_group_at_boot() {
    let workdir = Workdir::new(DEFAULT_SPEC);
    let topology = workdir.topology();
    let staging = install::stage_secrets(&host_secrets(&topology, "lb1", &workdir.path().join("secrets"))).unwrap();
    let new_root = workdir.path().join("mnt");
    std::fs::create_dir(&new_root).unwrap();
    let copy = Command::new("sh")
        .arg("-c")
        .arg("tar -C \"$1\" -cpf- . | tar -C \"$2\" -xf- --no-same-owner")
        .args(["copy", staging.root().to_str().unwrap(), new_root.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(copy.status.success(), "tar: {}", text(&copy.stderr));
    let secrets_dir = new_root.join(NIXOS_SECRETS.trim_start_matches('/'));
    let key = secrets_dir.join("host.key");
    assert_eq!(std::fs::metadata(&key).unwrap().gid(), 0, "tar made it root's");

    let group = "daemon";
    let daemon_gid = Command::new("getent").args(["group", group]).output().unwrap();
    assert!(daemon_gid.status.success(), "Debian's `daemon` group is missing");
    let gid: u32 = text(&daemon_gid.stdout).split(':').nth(2).unwrap().trim().parse().unwrap();

    let dir = temp("nxs-install-tmpfiles-");
    write_tree(&topology, dir.path());
    let overrides =
        format!("{{ nixstack.base = {{ secretsDir = \"{}\"; secretsGroup = \"{group}\"; }}; }}", secrets_dir.display());
    let config = &eval_host(dir.path(), "lb1", &overrides)["config"];
    let rules: Vec<&str> =
        config["systemd"]["tmpfiles"]["rules"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    let ours: Vec<&str> = rules.iter().copied().filter(|rule| rule.contains(secrets_dir.to_str().unwrap())).collect();
    assert!(!ours.is_empty(), "{rules:?}");
    let conf = dir.path().join("nixstack.conf");
    std::fs::write(&conf, ours.join("\n") + "\n").unwrap();
    let tmpfiles = Command::new("systemd-tmpfiles")
        .arg("--create")
        .arg(&conf)
        .output()
        .unwrap_or_else(|e| panic!("cannot run systemd-tmpfiles ({e}): run scripts/setup"));
    assert!(tmpfiles.status.success(), "systemd-tmpfiles: {}", text(&tmpfiles.stderr));

    let dir_meta = std::fs::metadata(&secrets_dir).unwrap();
    assert_eq!((dir_meta.permissions().mode() & 0o7777, dir_meta.uid(), dir_meta.gid()), (0o750, 0, gid));
    for (_, name) in host_secrets(&topology, "lb1", Path::new("/")) {
        let meta = std::fs::metadata(secrets_dir.join(&name)).unwrap();
        assert_eq!((meta.permissions().mode() & 0o7777, meta.uid(), meta.gid()), (0o640, 0, gid), "{name}");
    }
}

// ---------------------------------------------------------------------------------------
// nixstack install

#[test]
fn dry_run_prints_the_command_and_the_staged_secrets_and_runs_nothing() {
    let workdir = Workdir::new(DEFAULT_SPEC);
    let output = workdir.install("lb1", &["--dry-run"], &[]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    insta::assert_snapshot!("install_dry_run_lb1", stdout);

    let expected_command = format!(
        "  command  nix --extra-experimental-features 'nix-command flakes' run github:nix-community/nixos-anywhere -- --flake ./flake#lb1 --target-host {TARGET} --extra-files \"$STAGING\" --ssh-option ConnectTimeout=10\n"
    );
    assert!(stdout.contains(&expected_command), "{stdout}");
    // The staged tree as printed (read back from the staging directory) is exactly the host's.
    let listed: Vec<(String, u32)> = stdout
        .lines()
        .filter_map(|line| {
            let (mode, path) = line.trim().split_once(' ')?;
            (path.starts_with("var/")).then(|| (path.to_string(), u32::from_str_radix(mode, 8).unwrap()))
        })
        .collect();
    assert_eq!(listed, expected_staging(&workdir.topology(), "lb1", Path::new("secrets")));
    assert!(stdout.contains("dry run: nothing was run"), "{stdout}");
    assert_eq!(workdir.leftovers(), Vec::<String>::new(), "the staging directory was left behind");
}

#[test]
fn the_galera_bootstrap_node_gets_the_new_cluster_guidance() {
    let workdir = Workdir::new(&spec_with_db_disks());
    let db1 = workdir.install("db1", &["--dry-run"], &[]);
    let stdout = text(&db1.stdout);
    assert!(db1.status.success(), "{stdout}{}", text(&db1.stderr));
    assert!(stdout.contains("note: db1 is the Galera bootstrap node"), "{stdout}");
    assert!(stdout.contains("nixstack.db.bootstrapNewCluster = true;"), "{stdout}");
    assert!(stdout.contains("hosts/db1/local.nix"), "{stdout}");
    assert!(stdout.contains("nixstack deploy --on db1"), "{stdout}");
    assert!(stdout.contains("/dev/nvme0n1 is erased"), "{stdout}");

    let db2 = workdir.install("db2", &["--dry-run"], &[]);
    let stdout = text(&db2.stdout);
    assert!(db2.status.success(), "{stdout}");
    assert!(stdout.contains("note: db2 joins the Galera cluster of db1, db3"), "{stdout}");
    assert!(!stdout.contains("bootstrapNewCluster"), "{stdout}");

    // The option the guidance names exists in the db module.
    let db_module = std::fs::read_to_string(Path::new(REPO).join("modules/db.nix")).unwrap();
    assert!(db_module.contains("bootstrapNewCluster = mkOption"));
}

fn refused(output: &Output) -> String {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "expected a refusal: {}{stderr}", text(&output.stdout));
    assert!(!text(&output.stdout).contains("nixos-anywhere --"), "a refused install printed a command");
    stderr
}

#[test]
fn a_host_without_a_disk_is_refused_naming_the_disk_setting() {
    let workdir = Workdir::new(DEFAULT_SPEC);
    for extra in [&["--dry-run"][..], &[][..]] {
        let stderr = refused(&workdir.install("web1", extra, &[("NIX_CONFIG", OFFLINE_NIX_CONFIG)]));
        assert!(stderr.contains("host `web1` has no `disk` in stack.toml"), "{stderr}");
        assert!(stderr.contains("[hosts.web1]"), "{stderr}");
    }
    let stderr = refused(&workdir.install("web9", &["--dry-run"], &[]));
    assert!(stderr.contains("no host `web9`"), "{stderr}");
}

#[test]
fn missing_secrets_are_refused_with_the_init_command() {
    let workdir = Workdir::new(DEFAULT_SPEC);
    std::fs::remove_file(workdir.path().join("secrets/hosts/lb1/host.key")).unwrap();
    let stderr = refused(&workdir.install("lb1", &["--dry-run"], &[]));
    assert!(stderr.contains("secrets of lb1 missing in secrets: hosts/lb1/host.key"), "{stderr}");
    assert!(stderr.contains("run `nixstack secrets init stack.toml --dir secrets`"), "{stderr}");
    // lb2's secrets are all there.
    assert!(workdir.install("lb2", &["--dry-run"], &[]).status.success());
}

#[test]
fn a_stale_flake_is_refused_with_the_build_command() {
    let workdir = Workdir::new(DEFAULT_SPEC);
    assert!(workdir.install("lb1", &["--dry-run"], &[]).status.success());
    // The spec moved on (another disk), the flake did not.
    let spec = DEFAULT_SPEC.replacen("disk = \"/dev/sda\"", "disk = \"/dev/vda\"", 1);
    std::fs::write(workdir.path().join("stack.toml"), spec).unwrap();
    let stderr = refused(&workdir.install("lb1", &["--dry-run"], &[]));
    assert!(stderr.contains("the flake in flake is not what the spec generates"), "{stderr}");
    assert!(stderr.contains("hosts/lb1/disko.nix"), "{stderr}");
    assert!(stderr.contains("run `nixstack build stack.toml -o flake` first"), "{stderr}");
    // A generated file edited by hand is drift too.
    std::fs::write(workdir.path().join("stack.toml"), DEFAULT_SPEC).unwrap();
    let layout = workdir.path().join("flake/hosts/lb2/disko.nix");
    let edited = std::fs::read_to_string(&layout).unwrap().replace("512M", "1G");
    std::fs::write(&layout, edited).unwrap();
    let stderr = refused(&workdir.install("lb2", &["--dry-run"], &[]));
    assert!(stderr.contains("hosts/lb2/disko.nix"), "{stderr}");
}

#[test]
fn a_flake_nix_would_read_without_its_files_or_with_the_secrets_is_refused() {
    let workdir = Workdir::new(DEFAULT_SPEC);
    // Outside git, Nix copies the whole flake directory into the store.
    let inside = workdir.path().join("flake/secrets");
    let copy = Command::new("cp").arg("-a").arg(workdir.path().join("secrets")).arg(&inside).status().unwrap();
    assert!(copy.success());
    let stderr = refused(&workdir.install("lb1", &["--dry-run", "--secrets", "flake/secrets"], &[]));
    assert!(stderr.contains("is inside the flake directory flake, which is not a git repository"), "{stderr}");
    assert!(stderr.contains("world-readable Nix store"), "{stderr}");

    // In git, Nix sees tracked files only.
    let git = |args: &[&str]| {
        let output = Command::new("git").arg("-C").arg(workdir.path().join("flake")).args(args).output().unwrap();
        assert!(output.status.success(), "git {args:?}: {}", text(&output.stderr));
    };
    git(&["init", "-q", "."]);
    std::fs::write(workdir.path().join("flake/.gitignore"), "secrets/\n").unwrap();
    // Everything but the layout `nixstack build` just added.
    git(&["add", "."]);
    git(&["rm", "-q", "--cached", "hosts/lb1/disko.nix"]);
    let stderr = refused(&workdir.install("lb1", &["--dry-run", "--secrets", "flake/secrets"], &[]));
    assert!(
        stderr.contains(
            "flake is a git repository and Nix evaluates a git flake from tracked files only: \
             hosts/lb1/disko.nix is not tracked, so nixos-anywhere would not see it; \
             run `git -C flake add hosts` first"
        ),
        "{stderr}"
    );
    git(&["add", "."]);
    let output = workdir.install("lb1", &["--dry-run", "--secrets", "flake/secrets"], &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    // Secrets that git tracks would enter the store with the flake.
    git(&["add", "-f", "secrets/ca.crt"]);
    let stderr = refused(&workdir.install("lb1", &["--dry-run", "--secrets", "flake/secrets"], &[]));
    assert!(stderr.contains("git tracks secrets in flake (secrets/ca.crt)"), "{stderr}");
}

/// Without `--dry-run` on an offline Nix (no substituters, as this machine is set up), the
/// install stops before running anything, says why and what to do, and exits non-zero.
#[test]
fn without_network_the_install_is_refused_before_anything_runs() {
    let workdir = Workdir::new(DEFAULT_SPEC);
    let stderr = refused(&workdir.install("lb1", &[], &[("NIX_CONFIG", OFFLINE_NIX_CONFIG)]));
    assert!(stderr.contains("this Nix has no substituters"), "{stderr}");
    assert!(stderr.contains("run `nixstack install` on a machine with Nix and network access"), "{stderr}");
    assert_eq!(workdir.leftovers(), Vec::<String>::new());

    let stderr = refused(&workdir.install("lb1", &[], &[("PATH", "/nonexistent")]));
    assert!(stderr.contains("cannot run `nix` (not found on PATH)"), "{stderr}");
}

/// A local flake whose program records its arguments and the `--extra-files` tree, then
/// exits with `$RECORDER_EXIT`. It stands in for nixos-anywhere, which cannot run here.
const RECORDER_FLAKE: &str = r#"{
  outputs =
    { self }:
    let
      system = "@system@";
      recorder = builtins.derivation {
        name = "nixos-anywhere-recorder";
        inherit system;
        builder = "/bin/sh";
        args = [
          "-c"
          ''
            /bin/mkdir -p $out/bin
            /bin/cat > $out/bin/recorder <<'SCRIPT'
            #!/bin/sh
            printf '%s\n' "$@" > "$RECORD_DIR/argv"
            previous=
            for argument in "$@"; do
              if [ "$previous" = --extra-files ]; then /bin/cp -a "$argument" "$RECORD_DIR/staged"; fi
              previous=$argument
            done
            if [ "$RECORDER_EXIT" != 0 ]; then echo "aborted: the recorder stands in for nixos-anywhere" >&2; fi
            exit "$RECORDER_EXIT"
            SCRIPT
            /bin/chmod +x $out/bin/recorder
          ''
        ];
      };
    in
    {
      apps.${system}.default = {
        type = "app";
        program = "${recorder}/bin/recorder";
      };
    };
}
"#;

/// The real path of `install`: the command line goes through a real `nix run` (with a local
/// binary cache as the only substituter, so nothing leaves this machine) to the program of
/// `--nixos-anywhere`, here the recorder; the staging directory exists with exactly the
/// host's secrets while it runs and is gone afterwards; the program's failure is the
/// install's failure, with its last stderr line as the headline.
#[test]
fn the_command_line_reaches_the_program_nix_runs_and_its_failure_is_reported() {
    let workdir = Workdir::new(DEFAULT_SPEC);
    let recorder = workdir.path().join("recorder");
    std::fs::create_dir(&recorder).unwrap();
    let system = format!("{}-linux", std::env::consts::ARCH);
    std::fs::write(recorder.join("flake.nix"), RECORDER_FLAKE.replace("@system@", &system)).unwrap();
    let cache = workdir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let nix_config = format!(
        "experimental-features = nix-command flakes\nsubstituters = file://{}\nbuild-users-group =\nsandbox = false",
        cache.display()
    );
    let anywhere = format!("path:{}", recorder.display());

    for exit_code in ["0", "3"] {
        let record = workdir.path().join(format!("record-{exit_code}"));
        std::fs::create_dir(&record).unwrap();
        let output = workdir.install(
            "lb1",
            &["--nixos-anywhere", &anywhere],
            &[("NIX_CONFIG", &nix_config), ("RECORD_DIR", record.to_str().unwrap()), ("RECORDER_EXIT", exit_code)],
        );
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));

        let argv: Vec<String> = std::fs::read_to_string(record.join("argv"))
            .unwrap_or_else(|e| panic!("the recorder did not run ({e}): {stdout}{stderr}"))
            .lines()
            .map(String::from)
            .collect();
        let staging = argv[5].clone();
        assert_eq!(
            argv,
            [
                "--flake",
                "./flake#lb1",
                "--target-host",
                TARGET,
                "--extra-files",
                &staging,
                "--ssh-option",
                "ConnectTimeout=10"
            ],
        );
        assert!(Path::new(&staging).starts_with(workdir.tmp()), "{staging}");
        assert!(!Path::new(&staging).exists(), "the staging directory outlived the install");
        assert_eq!(modes(&record.join("staged")), expected_staging(&workdir.topology(), "lb1", Path::new("secrets")));
        assert!(stdout.contains(&format!("--extra-files {staging} ")), "{stdout}");

        if exit_code == "0" {
            assert!(output.status.success(), "{stdout}{stderr}");
            assert!(stdout.contains("lb1 installed"), "{stdout}");
        } else {
            assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
            assert!(
                stderr.contains(&format!(
                    "nix run {anywhere} exited with exit status: 3: aborted: the recorder stands in for nixos-anywhere"
                )),
                "{stderr}"
            );
        }
    }
    assert_eq!(workdir.leftovers(), Vec::<String>::new());
}

/// `InstallArgs` as the library takes them: the plan names the host's flake attribute and
/// its secrets, and refuses a target ssh would read as an option.
#[test]
fn the_plan_names_the_flake_attribute_and_refuses_an_option_as_target() {
    let topology = compile(DEFAULT_SPEC);
    let args = |target: &str| InstallArgs {
        host: "lb2".into(),
        spec: None,
        target: target.into(),
        flake: PathBuf::from("/srv/shop"),
        secrets: PathBuf::from(REPO).join("nonexistent-secrets"),
        host_key: None,
        dry_run: true,
        nixos_anywhere: install::NIXOS_ANYWHERE.into(),
    };
    let error = install::plan(&topology, &args("-oProxyCommand=sh"), "init").unwrap_err();
    assert!(error.to_string().contains("would be read as an option"), "{error}");
    let error = install::plan(&topology, &args(TARGET), "nixstack secrets init").unwrap_err();
    assert!(error.to_string().contains("run `nixstack secrets init`"), "{error}");
    let names: BTreeMap<String, ()> =
        host_secrets(&topology, "lb2", Path::new("/")).into_iter().map(|(_, n)| (n, ())).collect();
    assert!(names.contains_key("host.pem") && names.contains_key("public.pem"), "{names:?}");
    assert_eq!(install::flake_ref(&args(TARGET).flake, "lb2"), "/srv/shop#lb2");
}

// ---------------------------------------------------------------------------------------
// [secrets] backend = "agenix" (and sops): the host key instead of the secrets

/// An ed25519 key pair made by ssh-keygen: (private key file, public line without comment).
fn host_key_pair(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let output = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(output.status.success(), "ssh-keygen: {}", text(&output.stderr));
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
}

/// With the agenix backend the secrets are encrypted to each host's SSH key and come with the
/// flake: install uploads none of them, and instead puts the host key whose public half is
/// the spec's host_key where sshd and agenix read it, so that the first activation decrypts
/// them. Without the key, with another host's key, or with a key under the nixstack backend,
/// it refuses.
#[test]
fn with_an_encrypting_backend_install_stages_the_host_key_and_no_secret() {
    let workdir = Workdir { dir: temp("nxs-install-") };
    std::fs::create_dir(workdir.tmp()).unwrap();
    let keys = workdir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let mut spec = String::new();
    let mut pairs = BTreeMap::new();
    for line in spec_with_db_disks().lines() {
        spec.push_str(line);
        spec.push('\n');
        if let Some(host) = line.strip_prefix("[hosts.").and_then(|rest| rest.strip_suffix(']')) {
            let (private, public) = host_key_pair(&keys, host);
            spec.push_str(&format!("host_key = \"{public}\"\n"));
            pairs.insert(host.to_string(), (private, public));
        }
    }
    // The example's stack.ssh_keys entry is a made-up key age refuses: an operator of our own.
    let (_, operator) = host_key_pair(&keys, "operator");
    spec.push_str(&format!("\n[secrets]\nbackend = \"agenix\"\nrecipients = [\"{operator}\"]\n"));
    std::fs::write(workdir.path().join("stack.toml"), &spec).unwrap();
    // The encrypted files exist before the build ships them in the flake.
    for args in [
        &["secrets", "init", "stack.toml", "--dir", "secrets"][..],
        &["build", "stack.toml", "-o", "flake", "--secrets", "secrets"][..],
    ] {
        let output = nixstack(workdir.path(), args, &[]);
        assert!(output.status.success(), "nixstack {args:?}: {}", text(&output.stderr));
    }
    let (db1_key, db1_public) = &pairs["db1"];

    let stderr = refused(&workdir.install("db1", &["--dry-run"], &[]));
    assert!(stderr.contains("encrypts the secrets of db1 to its SSH host key"), "{stderr}");
    assert!(stderr.contains("--host-key PATH"), "{stderr}");

    let db2_key = pairs["db2"].0.to_str().unwrap();
    let stderr = refused(&workdir.install("db1", &["--dry-run", "--host-key", db2_key], &[]));
    assert!(stderr.contains("is not the host key of db1"), "{stderr}");
    assert!(stderr.contains(&pairs["db2"].1), "names the key it found: {stderr}");

    let output = workdir.install("db1", &["--dry-run", "--host-key", db1_key.to_str().unwrap()], &[]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("encrypted in the flake (agenix)"), "{stdout}");
    let listed: Vec<(String, u32)> = stdout
        .lines()
        .filter_map(|line| {
            let (mode, path) = line.trim().split_once(' ')?;
            (path.starts_with("etc/") || path.starts_with("var/"))
                .then(|| (path.to_string(), u32::from_str_radix(mode, 8).unwrap()))
        })
        .collect();
    let want: Vec<(String, u32)> = [
        ("etc/", 0o755),
        ("etc/ssh/", 0o755),
        ("etc/ssh/ssh_host_ed25519_key", 0o600),
        ("etc/ssh/ssh_host_ed25519_key.pub", 0o644),
        ("var/", 0o755),
        ("var/lib/", 0o755),
        ("var/lib/nixstack/", 0o755),
        ("var/lib/nixstack/secrets/", 0o750),
    ]
    .map(|(p, m)| (p.to_string(), m))
    .to_vec();
    assert_eq!(listed, want, "no secret is staged, only the host key: {stdout}");
    assert_eq!(workdir.leftovers(), Vec::<String>::new(), "the staging directory was left behind");

    // What is staged is the key itself: stage it through the library and read it back.
    let topology = workdir.topology();
    let args = InstallArgs {
        host: "db1".into(),
        spec: None,
        target: TARGET.into(),
        flake: workdir.path().join("flake"),
        secrets: workdir.path().join("secrets"),
        host_key: Some(db1_key.clone()),
        dry_run: true,
        nixos_anywhere: install::NIXOS_ANYWHERE.into(),
    };
    let plan = install::plan(&topology, &args, "nixstack secrets init").unwrap();
    assert!(plan.secrets.is_empty());
    let staging = install::stage(&plan).unwrap();
    let staged = staging.root().join("etc/ssh/ssh_host_ed25519_key");
    assert_eq!(std::fs::read(&staged).unwrap(), std::fs::read(db1_key).unwrap());
    let derived = Command::new("ssh-keygen").arg("-y").arg("-f").arg(&staged).output().unwrap();
    assert!(text(&derived.stdout).starts_with(db1_public.as_str()), "{}", text(&derived.stderr));
    let public = std::fs::read_to_string(staged.with_extension("pub")).unwrap();
    assert_eq!(public.trim(), db1_public);

    // The nixstack backend uploads secrets itself and has no use for a host key.
    let plain = Workdir::new(&spec_with_db_disks());
    let stderr = refused(&plain.install("db1", &["--dry-run", "--host-key", db1_key.to_str().unwrap()], &[]));
    assert!(stderr.contains("backend = \"nixstack\" uploads the secrets themselves"), "{stderr}");
}
