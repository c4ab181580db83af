//! `nixstack install HOST --target root@ADDR`: the first install of a machine with
//! nixos-anywhere — it boots the target into a NixOS installer (kexec), partitions and formats
//! the host's `disk` with the generated disko layout (`hosts/<host>/disko.nix`), installs the
//! host's system from the flake and copies the host's runtime secrets into
//! `/var/lib/nixstack/secrets` (`--extra-files`, never through the Nix store).
//!
//! Before anything runs it refuses what would install the wrong thing or a broken host: a host
//! without a `disk`, a flake that is not what the spec generates, missing secrets, a flake
//! Nix would read without the generated files (untracked in git) or with the secrets (copied
//! into the world-readable store), and a Nix that cannot reach the network.

use std::io::{BufRead, BufReader, Write as _};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::exit;
use crate::output::{self, WriteMode};
use crate::process::{self, CommandError};
use crate::render::{disko, NIXOS_SECRETS};
use crate::spec::{Role, SecretsBackend};
use crate::topology::{Host, Topology};

/// The flake nixos-anywhere is run from (its README's way of running it).
pub const NIXOS_ANYWHERE: &str = "github:nix-community/nixos-anywhere";

/// Mode of the secrets directory on the host (as `modules/base.nix` creates it).
pub const SECRETS_DIR_MODE: u32 = 0o750;

/// Mode of each secret file on the host: readable by the service group of the directory.
pub const SECRET_FILE_MODE: u32 = 0o640;

/// How many lines of nixos-anywhere's stderr a failure repeats.
const STDERR_TAIL: usize = 20;

/// Bound on the local `nix show-config` of the preflight check.
const NIX_CONFIG_TIMEOUT: Duration = Duration::from_secs(30);

/// Arguments of `nixstack install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The host to install, as named in the spec; it needs a `disk`.
    pub host: String,
    /// The spec [default: ./stack.toml, else the embedded default].
    pub spec: Option<PathBuf>,
    /// SSH destination of the machine as it runs now (any Linux with root or sudo, e.g. a
    /// rescue system): `root@192.0.2.10`. Its disk is erased.
    #[arg(long)]
    pub target: String,
    /// The flake directory (what `nixstack build` wrote).
    #[arg(long, default_value = ".")]
    pub flake: PathBuf,
    /// The local secrets directory (`nixstack secrets init`).
    #[arg(long, default_value = "secrets")]
    pub secrets: PathBuf,
    /// With `[secrets] backend` sops or agenix: the host's SSH host key (private half), which
    /// the host's secrets are encrypted to (its public half is the spec's `host_key`). It is
    /// installed as /etc/ssh/ssh_host_ed25519_key, so that the first activation decrypts them.
    #[arg(long, value_name = "PATH")]
    pub host_key: Option<PathBuf>,
    /// Check everything, stage the secrets, print the nixos-anywhere command, run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The flake nixos-anywhere is run from; pin a release with
    /// `github:nix-community/nixos-anywhere/<tag>`, or name a local checkout.
    #[arg(long, default_value = NIXOS_ANYWHERE)]
    pub nixos_anywhere: String,
}

/// Why an install is refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("no host `{host}` in the spec (hosts: {known})")]
    UnknownHost { host: String, known: String },
    #[error(
        "host `{host}` has no `disk` in stack.toml: install erases and partitions one whole disk \
         and must be told which; add `disk = \"/dev/sda\"` (or a /dev/disk/by-id/... path) under \
         [hosts.{host}], then run `nixstack build`"
    )]
    NoDisk { host: String },
    #[error("--target `{target}` {reason}; expected an SSH destination such as root@192.0.2.10")]
    BadTarget { target: String, reason: &'static str },
    #[error(
        "the flake in {dir} is not what the spec generates ({n} file{s} differ: {paths}); \
         run `{rebuild}` first, so that the machine gets the configuration the spec describes",
        n = drift.len(),
        s = if drift.len() == 1 { "" } else { "s" },
        paths = drift.join(", ")
    )]
    StaleFlake { dir: String, drift: Vec<String>, rebuild: String },
    #[error("{0}")]
    Output(#[from] output::OutputError),
    #[error("{0}")]
    Secrets(#[from] crate::secrets::SecretsError),
    #[error(
        "secrets of {host} missing in {dir}: {missing}; run `{init}` (the host's services read \
         them from {NIXOS_SECRETS} from the first boot on)",
        missing = missing.join(", ")
    )]
    SecretsMissing { host: String, dir: String, missing: Vec<String>, init: String },
    #[error(
        "[secrets] backend = \"{backend}\" encrypts the secrets of {host} to its SSH host key, and a \
         new machine makes a new one: pass the key whose public half is its host_key with \
         --host-key PATH (make one with `ssh-keygen -t ed25519 -N '' -f {host}_host_key`, put the \
         .pub line in stack.toml and run `nixstack secrets init`)"
    )]
    HostKeyMissing { host: String, backend: &'static str },
    #[error(
        "--host-key {path} is not the host key of {host}: its public half is `{found}`, the spec's \
         host_key is `{expected}`; pass the matching key, or put its public half in stack.toml and \
         re-encrypt with `nixstack secrets init`"
    )]
    HostKeyMismatch { host: String, path: String, found: String, expected: String },
    #[error(
        "--host-key {path} is given, but [secrets] backend = \"nixstack\" uploads the secrets themselves; drop it"
    )]
    HostKeyUnused { path: String },
    #[error("--host-key {path}: ssh-keygen cannot read a private key from it: {detail}")]
    HostKeyUnreadable { path: String, detail: String },
    #[error(
        "{dir} is a git repository and Nix evaluates a git flake from tracked files only: {} \
         {} not tracked, so nixos-anywhere would not see {}; run `git -C {dir} add {}` first",
        abbreviate(untracked),
        if untracked.len() == 1 { "is" } else { "are" },
        if untracked.len() == 1 { "it" } else { "them" },
        top_level(untracked)
    )]
    Untracked { dir: String, untracked: Vec<String> },
    #[error("{what}: Nix would copy them with the flake into the world-readable Nix store; {fix}")]
    SecretsInFlake { what: String, fix: String },
    #[error(
        "cannot run `nix` ({detail}): nixos-anywhere runs through `nix run {NIXOS_ANYWHERE}`; \
         install Nix on this machine (Debian: apt-get install nix-bin), or run `nixstack install` \
         where Nix is (--dry-run prints the command)"
    )]
    NixMissing { detail: String },
    #[error(
        "this Nix has no substituters (`substituters` is empty{origin}), which nixstack takes as \
         offline: nixos-anywhere ({NIXOS_ANYWHERE}) and the host's nixpkgs come from GitHub and \
         cache.nixos.org, so the install cannot work here; run `nixstack install` on a machine \
         with Nix and network access (--dry-run prints the command to run there)"
    )]
    Offline { origin: String },
    #[error("{command} exited with {status}: {headline}{tail}")]
    Failed { command: String, status: String, headline: String, tail: String },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The first few paths of a list, and how many more.
fn abbreviate(paths: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = paths.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if paths.len() > SHOWN {
        text.push_str(&format!(" and {} more", paths.len() - SHOWN));
    }
    text
}

/// The distinct first components of relative paths (`hosts/lb1/disko.nix` → `hosts`).
fn top_level(paths: &[String]) -> String {
    let tops: std::collections::BTreeSet<&str> =
        paths.iter().map(|path| path.split('/').next().unwrap_or(path)).collect();
    tops.into_iter().collect::<Vec<_>>().join(" ")
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> InstallError {
    let path = path.to_path_buf();
    move |source| InstallError::Io { action, path, source }
}

/// What an install of one host takes, checked against the spec and the secrets directory.
#[derive(Debug, Clone)]
pub struct InstallPlan {
    pub host: String,
    /// The spec's `disk` of the host: what disko erases.
    pub disk: String,
    /// `--target`, as given.
    pub target: String,
    /// `<flake dir>#<host>`, as nixos-anywhere takes it.
    pub flake_ref: String,
    /// The flake `nix run` takes nixos-anywhere from.
    pub nixos_anywhere: String,
    /// The host's secrets: (local file, name under `/var/lib/nixstack/secrets`); none with the
    /// sops and agenix backends, whose encrypted files come with the flake.
    pub secrets: Vec<(PathBuf, String)>,
    /// The SSH host key to install (sops and agenix backends): (private key file, its public line).
    pub host_key: Option<(PathBuf, String)>,
    /// What the operator must know about this host's first start (the Galera bootstrap).
    pub notes: Vec<String>,
}

/// Checks the host, its disk, the target and the presence of the host's secrets;
/// `init_command` is the `nixstack secrets init` to suggest.
pub fn plan(topology: &Topology, args: &InstallArgs, init_command: &str) -> Result<InstallPlan, InstallError> {
    let (host, target, secrets_dir) = (args.host.as_str(), args.target.as_str(), args.secrets.as_path());
    let Some(found) = topology.hosts.iter().find(|h| h.name == host) else {
        let known = topology.hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", ");
        return Err(InstallError::UnknownHost { host: host.into(), known });
    };
    let Some(disk) = found.disk.clone() else {
        return Err(InstallError::NoDisk { host: host.into() });
    };
    check_target(target)?;
    let backend = topology.secrets.backend;
    let host_key = match (&found.host_key, &args.host_key) {
        (_, Some(path)) if backend == SecretsBackend::Nixstack => {
            return Err(InstallError::HostKeyUnused { path: path.display().to_string() })
        }
        (Some(expected), Some(path)) => Some((path.clone(), matching_public_key(host, path, expected)?)),
        (_, None) if backend != SecretsBackend::Nixstack => {
            return Err(InstallError::HostKeyMissing { host: host.into(), backend: backend.as_str() })
        }
        _ => None,
    };
    let secrets = if backend == SecretsBackend::Nixstack {
        crate::secrets::host_secrets(topology, host, secrets_dir)
    } else {
        Vec::new()
    };
    let missing: Vec<String> = secrets
        .iter()
        .filter(|(path, _)| !path.is_file())
        .map(|(path, _)| path.strip_prefix(secrets_dir).unwrap_or(path).display().to_string())
        .collect();
    if !missing.is_empty() {
        return Err(InstallError::SecretsMissing {
            host: host.into(),
            dir: secrets_dir.display().to_string(),
            missing,
            init: init_command.into(),
        });
    }
    let mut notes = galera_notes(topology, found);
    if let Some(monitoring) = topology.monitoring.as_ref().filter(|_| found.monitored) {
        let endpoint = secrets_dir.join(&monitoring.endpoint_secret);
        if std::fs::read_to_string(&endpoint).is_ok_and(|text| crate::secrets::is_placeholder(&text)) {
            notes.push(format!(
                "{} still holds the placeholder URL: {host} ships no metrics or logs until the real \
                 Sumo Logic HTTP source URL is there and `nixstack deploy --on {host}` uploads it.",
                endpoint.display()
            ));
        }
    }
    Ok(InstallPlan {
        host: host.into(),
        disk,
        target: target.into(),
        flake_ref: flake_ref(&args.flake, host),
        nixos_anywhere: args.nixos_anywhere.clone(),
        secrets,
        host_key,
        notes,
    })
}

/// The public line of the private key at `path` (by `ssh-keygen -y`, the key's own tool),
/// when it is the spec's `expected` host key.
fn matching_public_key(host: &str, path: &Path, expected: &str) -> Result<String, InstallError> {
    let shown = path.display().to_string();
    let public = process::Cmd::new("ssh-keygen")
        .args(["-y", "-f", shown.as_str()])
        .stdout()
        .map_err(|e| InstallError::HostKeyUnreadable { path: shown.clone(), detail: e.headline() })?;
    let found = public.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    if found != expected {
        return Err(InstallError::HostKeyMismatch { host: host.into(), path: shown, found, expected: expected.into() });
    }
    Ok(found)
}

/// An SSH destination ssh and nixos-anywhere take as one argument, never as an option.
fn check_target(target: &str) -> Result<(), InstallError> {
    let bad = |reason| Err(InstallError::BadTarget { target: target.into(), reason });
    if target.is_empty() {
        return bad("is empty");
    }
    if target.starts_with('-') {
        return bad("starts with `-` (it would be read as an option)");
    }
    if target.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("contains whitespace");
    }
    if target.ends_with('@') || target.matches('@').count() > 1 {
        return bad("has no host after its user");
    }
    Ok(())
}

/// `<dir>#<host>`; a relative directory gets `./` so that Nix reads it as a path, not as a
/// flake registry name.
pub fn flake_ref(dir: &Path, host: &str) -> String {
    let text = dir.display().to_string();
    let path_like =
        dir.is_absolute() || text == "." || text == ".." || text.starts_with("./") || text.starts_with("../");
    if path_like {
        format!("{text}#{host}")
    } else {
        format!("./{text}#{host}")
    }
}

/// The first start of a Galera node needs peers, or, for the very first node of a new
/// cluster, `nixstack.db.bootstrapNewCluster`.
fn galera_notes(topology: &Topology, host: &Host) -> Vec<String> {
    let (true, Some(db)) = (host.has(Role::Db), &topology.db) else {
        return Vec::new();
    };
    if db.bootstrap == host.name {
        let others = db.hosts.iter().filter(|h| **h != host.name).cloned().collect::<Vec<_>>().join(", ");
        vec![format!(
            "{name} is the Galera bootstrap node (db.bootstrap). If no other node of the cluster runs yet \
             (a brand-new cluster), its first start must form the cluster: before installing, put \
             `{{ nixstack.db.bootstrapNewCluster = true; }}` in hosts/{name}/local.nix (git add it), install \
             {name}, then install {others}, which join it; then delete that line and run \
             `nixstack deploy --on {name}`, or every restart of {name} would form a cluster of its own. \
             If the cluster already runs (you are replacing {name}), install without it: {name} joins its peers.",
            name = host.name,
        )]
    } else {
        vec![format!(
            "{name} joins the Galera cluster of {peers} on its first start: at least one of them must \
             be running (on a new cluster, install {bootstrap} first; see its install notes).",
            name = host.name,
            peers = db.hosts.iter().filter(|h| **h != host.name).cloned().collect::<Vec<_>>().join(", "),
            bootstrap = db.bootstrap,
        )]
    }
}

/// Refuses a flake directory that is not exactly what the spec generates (`nixstack build
/// --check` would report drift).
pub fn check_fresh(dir: &Path, topology: &Topology, secrets_dir: &Path, rebuild: &str) -> Result<(), InstallError> {
    let artifacts = output::build_artifacts(topology, secrets_dir)?;
    let report = output::write(dir, &artifacts, WriteMode::Check, false)?;
    if report.is_fresh() {
        return Ok(());
    }
    Err(InstallError::StaleFlake {
        dir: dir.display().to_string(),
        drift: report.drift.iter().map(|drift| drift.path().to_string()).collect(),
        rebuild: rebuild.into(),
    })
}

/// Refuses a flake directory Nix would read wrongly: in a git repository, generated files Nix
/// evaluates but git does not track (Nix would not see them) or tracked secrets; outside git,
/// a secrets directory inside the flake directory (Nix copies the whole directory into the
/// store).
pub fn check_flake_source(dir: &Path, secrets_dir: &Path, topology: &Topology) -> Result<(), InstallError> {
    let secrets_inside = inside(secrets_dir, dir);
    let Some(tracked) = git_tracked(dir) else {
        return match secrets_inside {
            Some(relative) => Err(InstallError::SecretsInFlake {
                what: format!(
                    "the secrets directory {} is inside the flake directory {}, which is not a git repository",
                    secrets_dir.display(),
                    dir.display()
                ),
                fix: format!(
                    "keep the secrets outside it (--secrets), or make {} a git repository with `{}` in .gitignore",
                    dir.display(),
                    relative.display()
                ),
            }),
            None => Ok(()),
        };
    };
    if let Some(relative) = secrets_inside {
        let prefix = format!("{}/", relative.display());
        let leaked: Vec<&String> = tracked.iter().filter(|path| path.starts_with(&prefix)).collect();
        if !leaked.is_empty() {
            return Err(InstallError::SecretsInFlake {
                what: format!(
                    "git tracks secrets in {} ({})",
                    dir.display(),
                    leaked.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
                fix: format!(
                    "`git -C {} rm --cached -r {}`, add it to .gitignore, and treat these secrets as disclosed",
                    dir.display(),
                    relative.display()
                ),
            });
        }
    }
    // What Nix evaluates for a host; the lab configs and the manifest it never reads.
    let untracked: Vec<String> = output::artifacts(topology)
        .into_keys()
        .filter(|path| !path.starts_with("lab/"))
        .filter(|path| !tracked.contains(path))
        .collect();
    if untracked.is_empty() {
        Ok(())
    } else {
        Err(InstallError::Untracked { dir: dir.display().to_string(), untracked })
    }
}

/// `child` relative to `parent` when it lies inside it (both resolved; `None` if either
/// does not exist).
fn inside(child: &Path, parent: &Path) -> Option<PathBuf> {
    let child = child.canonicalize().ok()?;
    let parent = parent.canonicalize().ok()?;
    child.strip_prefix(&parent).ok().map(Path::to_path_buf)
}

/// The files git tracks under `dir` (relative to it), or `None` when `dir` is not in a git
/// work tree (or git is not installed).
fn git_tracked(dir: &Path) -> Option<std::collections::BTreeSet<String>> {
    let mut command = Command::new("git");
    command.arg("-C").arg(dir).args(["ls-files", "-z", "--cached"]);
    let output = process::run(command, None, process::SHORT).ok()?;
    Some(output.stdout.split('\0').filter(|name| !name.is_empty()).map(str::to_string).collect())
}

/// The host's secrets laid out as nixos-anywhere's `--extra-files` copies them onto the new
/// root: `var/lib/nixstack/secrets/<name>`, in a temporary directory of mode 0700 that is
/// removed when this value is dropped.
#[derive(Debug)]
pub struct Staging {
    dir: tempfile::TempDir,
}

/// One entry of a staged tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedEntry {
    /// Relative to the staging root; directories end with `/`.
    pub path: String,
    pub mode: u32,
}

impl Staging {
    /// The directory to pass as `--extra-files`.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Every directory and file of the staged tree with its mode, read back from disk, sorted.
    pub fn entries(&self) -> Result<Vec<StagedEntry>, InstallError> {
        fn walk(root: &Path, dir: &Path, entries: &mut Vec<StagedEntry>) -> Result<(), InstallError> {
            for entry in std::fs::read_dir(dir).map_err(io("read", dir))? {
                let path = entry.map_err(io("read", dir))?.path();
                let metadata = std::fs::symlink_metadata(&path).map_err(io("inspect", &path))?;
                let relative = path.strip_prefix(root).unwrap_or(&path).display().to_string();
                let mode = metadata.permissions().mode() & 0o7777;
                if metadata.is_dir() {
                    entries.push(StagedEntry { path: format!("{relative}/"), mode });
                    walk(root, &path, entries)?;
                } else {
                    entries.push(StagedEntry { path: relative, mode });
                }
            }
            Ok(())
        }
        let mut entries = Vec::new();
        walk(self.root(), self.root(), &mut entries)?;
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(entries)
    }
}

/// Copies `secrets` (local file, name on the host) into a new [`Staging`]. Directories get
/// the modes the host gives them (`/var/lib/nixstack` 0755, the secrets directory 0750), the
/// files 0640; nixos-anywhere copies modes, and makes everything owned by root.
pub fn stage_secrets(secrets: &[(PathBuf, String)]) -> Result<Staging, InstallError> {
    let dir = tempfile::Builder::new()
        .prefix("nixstack-install-")
        .tempdir()
        .map_err(io("create a staging directory in", &std::env::temp_dir()))?;
    let root = dir.path().to_path_buf();
    set_mode(&root, 0o700)?;
    let relative = NIXOS_SECRETS.trim_start_matches('/');
    let target = root.join(relative);
    // Every directory above the secrets keeps the mode it has on any NixOS host: tar sets
    // the modes of the directories it creates on the new root from these.
    let mut path = root.clone();
    for component in Path::new(relative).components() {
        path.push(component);
        std::fs::create_dir(&path).map_err(io("create", &path))?;
        let mode = if path == target { SECRETS_DIR_MODE } else { 0o755 };
        set_mode(&path, mode)?;
    }
    for (source, name) in secrets {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(InstallError::Io {
                action: "stage",
                path: source.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("secret name {name:?} is not a plain file name"),
                ),
            });
        }
        let bytes = std::fs::read(source).map_err(io("read", source))?;
        write_new(&target.join(name), &bytes, SECRET_FILE_MODE)?;
    }
    Ok(Staging { dir })
}

/// Everything the install of `plan` copies onto the new root: the host's secrets (nixstack
/// backend), or its SSH host key (sops, agenix), which nixos-anywhere's `--extra-files` puts
/// in place before the first activation decrypts the secrets with it.
pub fn stage(plan: &InstallPlan) -> Result<Staging, InstallError> {
    let staging = stage_secrets(&plan.secrets)?;
    if let Some((private, public)) = &plan.host_key {
        let ssh = staging.root().join(HOST_KEY_DIR);
        for dir in [staging.root().join("etc"), ssh.clone()] {
            std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
            set_mode(&dir, 0o755)?;
        }
        let name = Path::new(crate::secrets::HOST_KEY_PATH).file_name().expect("a file name");
        let key = ssh.join(name);
        let bytes = std::fs::read(private).map_err(io("read", private))?;
        write_new(&key, &bytes, 0o600)?;
        write_new(&key.with_extension("pub"), format!("{public}\n").as_bytes(), 0o644)?;
    }
    Ok(staging)
}

/// Where sshd and the secrets backends read the host key, relative to the new root.
const HOST_KEY_DIR: &str = "etc/ssh";

/// Writes a new file (never an existing one) with `mode`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), InstallError> {
    let mut out =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io("create", path))?;
    out.write_all(bytes).map_err(io("write", path))?;
    drop(out);
    set_mode(path, mode)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), InstallError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io("set the mode of", path))
}

/// The nixos-anywhere command line for `plan`, with `extra_files` as `--extra-files`.
pub fn command_line(plan: &InstallPlan, extra_files: &str) -> Vec<String> {
    [
        "nix",
        "--extra-experimental-features",
        "nix-command flakes",
        "run",
        &plan.nixos_anywhere,
        "--",
        "--flake",
        &plan.flake_ref,
        "--target-host",
        &plan.target,
        "--extra-files",
        extra_files,
        // Each SSH connection attempt is bounded; nixos-anywhere retries on its own.
        "--ssh-option",
        "ConnectTimeout=10",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect()
}

/// A command line as a POSIX shell reads it back (arguments quoted where needed).
pub fn shell_line(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| {
            let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@#%+,".contains(c));
            if plain {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Refuses a Nix that cannot run nixos-anywhere: none on the PATH, or one with no
/// substituters (how this project's offline machines are configured). Runs only local Nix
/// commands; nothing here touches the network.
pub fn nix_preflight() -> Result<(), InstallError> {
    let mut last_error = String::new();
    for subcommand in [&["show-config", "--json"][..], &["config", "show", "--json"][..]] {
        let mut command = Command::new("nix");
        command.args(["--extra-experimental-features", "nix-command flakes"]).args(subcommand);
        let output = match process::run(command, None, NIX_CONFIG_TIMEOUT) {
            Ok(output) => output,
            Err(CommandError::Spawn { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(InstallError::NixMissing { detail: "not found on PATH".into() });
            }
            // An older Nix lacks one of the two subcommands: try the other.
            Err(CommandError::Failed { stderr_tail, .. }) => {
                last_error = tail(&stderr_tail, 1);
                continue;
            }
            Err(error) => return Err(InstallError::NixMissing { detail: error.headline() }),
        };
        let config: serde_json::Value = serde_json::from_str(&output.stdout).map_err(|e| InstallError::NixMissing {
            detail: format!("`nix {}` printed no JSON: {e}", subcommand.join(" ")),
        })?;
        let substituters = config["substituters"]["value"].as_array().map(Vec::len).unwrap_or(0);
        if substituters == 0 {
            let origin = if std::env::var_os("NIX_CONFIG").is_some() { ", set by NIX_CONFIG" } else { "" };
            return Err(InstallError::Offline { origin: origin.into() });
        }
        return Ok(());
    }
    Err(InstallError::NixMissing { detail: format!("it cannot show its configuration: {last_error}") })
}

/// The last `n` non-empty lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs nixos-anywhere with the terminal attached (it may ask for the target's password),
/// echoing its stderr and keeping the tail for the error.
fn run_nixos_anywhere(plan: &InstallPlan, argv: &[String]) -> Result<(), InstallError> {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| InstallError::NixMissing { detail: error.to_string() })?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut kept: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        eprintln!("{line}");
        if kept.len() == STDERR_TAIL {
            kept.pop_front();
        }
        kept.push_back(line);
    }
    let status =
        child.wait().map_err(|source| InstallError::Io { action: "wait for", path: PathBuf::from("nix"), source })?;
    if status.success() {
        return Ok(());
    }
    let text = kept.iter().cloned().collect::<Vec<_>>().join("\n");
    let headline = text
        .lines()
        .rev()
        .find(|line| line.contains("error") || line.starts_with("aborted"))
        .or_else(|| text.lines().rev().find(|line| !line.trim().is_empty()))
        .unwrap_or("no output")
        .trim()
        .to_string();
    Err(InstallError::Failed {
        command: format!("nix run {}", plan.nixos_anywhere),
        status: status.to_string(),
        headline,
        tail: if text.is_empty() { String::new() } else { format!("\nlast lines of its stderr:\n{text}") },
    })
}

/// Stands for the staging directory in a printed command until it is replaced by `"$STAGING"`
/// (a shell-plain word, so that quoting leaves it alone).
const STAGING_SLOT: &str = "@STAGING@";

/// The summary printed before running (and all of `--dry-run`).
/// `extra_files` is the staging directory's path, or `None` to write it as `"$STAGING"`.
pub fn describe(
    plan: &InstallPlan,
    topology: &Topology,
    staging: &Staging,
    secrets_dir: &Path,
    extra_files: Option<&Path>,
) -> Result<String, InstallError> {
    let mut text = format!("nixstack: install {} on {} with nixos-anywhere\n", plan.host, plan.target);
    text.push_str(&format!("  flake    {} (fresh)\n", plan.flake_ref));
    text.push_str(&format!(
        "  disk     {} is erased and partitioned as hosts/{}/{}:\n",
        plan.disk,
        plan.host,
        disko::FILE_NAME
    ));
    for line in disko::describe(topology) {
        text.push_str(&format!("             {line}\n"));
    }
    match &plan.host_key {
        None => text.push_str(&format!(
            "  secrets  {} files from {}/ to {}, owned by root:\n",
            plan.secrets.len(),
            secrets_dir.display(),
            NIXOS_SECRETS
        )),
        Some((private, _)) => text.push_str(&format!(
            "  secrets  encrypted in the flake ({}); host key {} to {}, owned by root:\n",
            topology.secrets.backend.as_str(),
            private.display(),
            crate::secrets::HOST_KEY_PATH
        )),
    }
    for entry in staging.entries()? {
        text.push_str(&format!("             {:04o} {}\n", entry.mode, entry.path));
    }
    let line = match extra_files {
        Some(path) => shell_line(&command_line(plan, &path.display().to_string())),
        None => shell_line(&command_line(plan, STAGING_SLOT)).replace(STAGING_SLOT, "\"$STAGING\""),
    };
    text.push_str(&format!("  command  {line}\n"));
    for note in &plan.notes {
        text.push_str(&format!("note: {note}\n"));
    }
    Ok(text)
}

/// `nixstack install`: 0 installed (or, with `--dry-run`, ready to), 2 refused or failed.
pub fn command(args: InstallArgs) -> Result<i32> {
    let (_, topology) = crate::topology::load(args.spec.as_deref())?;
    let spec_arg = args.spec.as_ref().map(|path| format!(" {}", path.display())).unwrap_or_default();
    let init = format!("nixstack secrets init{spec_arg} --dir {}", args.secrets.display());
    let out_arg = if args.flake == Path::new(".") { String::new() } else { format!(" -o {}", args.flake.display()) };
    // The encrypted files come from the secrets directory: the build must read the same one.
    let secrets_arg = if args.secrets == Path::new("secrets") || topology.secrets.backend.deploy_uploads() {
        String::new()
    } else {
        format!(" --secrets {}", args.secrets.display())
    };
    let rebuild = format!("nixstack build{spec_arg}{out_arg}{secrets_arg}");
    let plan = plan(&topology, &args, &init)?;
    check_fresh(&args.flake, &topology, &args.secrets, &rebuild)?;
    check_flake_source(&args.flake, &args.secrets, &topology)?;
    let staging = stage(&plan)?;

    if args.dry_run {
        // The staging directory is removed when this returns: the printed command names it
        // by a variable, as the operator would when running it by hand.
        print!("{}", describe(&plan, &topology, &staging, &args.secrets, None)?);
        println!(
            "dry run: nothing was run. $STAGING stands for a directory of mode 0700 holding the tree above \
             (install creates and removes it)."
        );
        return Ok(exit::OK);
    }

    nix_preflight()?;
    print!("{}", describe(&plan, &topology, &staging, &args.secrets, Some(staging.root()))?);
    std::io::stdout().flush().ok();
    run_nixos_anywhere(&plan, &command_line(&plan, &staging.root().display().to_string()))?;
    drop(staging);
    println!(
        "nixstack: {} installed and rebooting; from now on `nixstack deploy --on {}` updates it",
        plan.host, plan.host
    );
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_flake_directory_stays_a_path() {
        assert_eq!(flake_ref(Path::new("."), "lb1"), ".#lb1");
        assert_eq!(flake_ref(Path::new("deploy"), "lb1"), "./deploy#lb1");
        assert_eq!(flake_ref(Path::new("../x"), "lb1"), "../x#lb1");
        assert_eq!(flake_ref(Path::new("/srv/stack"), "db1"), "/srv/stack#db1");
    }

    #[test]
    fn targets_that_ssh_would_misread_are_refused() {
        for bad in ["", "-oProxyCommand=x", "root@", "root@a b", "a@b@c"] {
            assert!(check_target(bad).is_err(), "{bad:?}");
        }
        for good in ["root@192.0.2.10", "203.0.113.5", "admin@host.example.com"] {
            assert!(check_target(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn shell_lines_quote_what_the_shell_would_split() {
        let argv: Vec<String> = ["nix", "nix-command flakes", ".#lb1", "$STAGING", "it's"].map(String::from).to_vec();
        assert_eq!(shell_line(&argv), r#"nix 'nix-command flakes' .#lb1 '$STAGING' 'it'\''s'"#);
    }

    #[test]
    fn a_failure_keeps_the_last_lines() {
        assert_eq!(tail("a\n\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("", 2), "");
    }
}
