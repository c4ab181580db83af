//! `nixstack deploy`: plan, print the plan, then (unless `--dry-run`) carry it out against
//! NixOS machines over SSH, or against the running lab with `--lab`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;

use super::closure::{LabSystems, Systems};
use super::execute::{self, Options, Rollout};
use super::host::Host;
use super::progress::{Format, Printer};
use super::ssh::SshHost;
use super::{plan, Goal};
use crate::exit;
use crate::render::{self, LAB_ROOT};
use crate::spec::SpecSource;
use crate::topology::Topology;

/// Arguments of `nixstack deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The spec to deploy [default: ./stack.toml, else the embedded default; with --lab,
    /// the spec the lab runs].
    pub spec: Option<PathBuf>,
    /// Hosts or @roles to deploy, comma-separated [default: all].
    #[arg(long, value_delimiter = ',')]
    pub on: Vec<String>,
    #[arg(long, value_enum, default_value_t)]
    pub goal: Goal,
    /// Print the plan and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Hosts of one web or app tier switched at once.
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// One JSON event per line.
    #[arg(long)]
    pub json: bool,
    /// The flake with `nixosConfigurations` (what `nixstack build` wrote).
    #[arg(long, default_value = ".")]
    pub flake: String,
    /// The local secrets directory (`nixstack secrets init`).
    #[arg(long, default_value = "secrets")]
    pub secrets: PathBuf,
    /// Let the hosts substitute paths from their binary caches (`nix copy --substitute-on-destination`).
    #[arg(long)]
    pub substitute_on_destination: bool,
    /// With --dry-run: build the selected hosts' systems and show per host, against the
    /// system it runs, `nix store diff-closures` and the store paths and files that change.
    #[arg(long, requires = "dry_run")]
    pub diff_closures: bool,
    /// Deploy to the running lab (`nixstack lab up`): lab systems built without nixpkgs,
    /// each lab host's own Nix store, SSH from the lab's admin namespace.
    #[arg(long)]
    pub lab: bool,
}

/// The spec deployed last (what `nixstack plan` compares against).
pub const DEPLOYED_SPEC: &str = ".nixstack/deployed.toml";

/// `nixstack deploy` to NixOS machines: 0 deployed (or nothing to do), 1 a host failed or was rolled back
/// (or the plan is blocked), 2 could not start.
pub fn command(args: DeployArgs) -> Result<i32> {
    if args.lab {
        bail!("`deploy --lab` needs the running lab: the CLI finds it and calls `lab_command`");
    }
    let (source, topology) = crate::topology::load(args.spec.as_deref())?;
    let deployed = Path::new(DEPLOYED_SPEC);
    let old = if deployed.exists() {
        let text = std::fs::read_to_string(deployed).with_context(|| format!("cannot read {DEPLOYED_SPEC}"))?;
        Some(crate::topology::compile(&SpecSource { name: DEPLOYED_SPEC.into(), text })?)
    } else {
        None
    };
    let hosts: BTreeMap<String, Box<dyn Host>> = topology
        .hosts
        .iter()
        .map(|h| {
            let mut ssh = SshHost::nixos(h);
            ssh.substitute_on_destination = args.substitute_on_destination;
            (h.name.clone(), Box::new(ssh) as Box<dyn Host>)
        })
        .collect();
    let systems = Systems::Nixos { flake: args.flake.clone(), nix_config: None };
    let secrets = upload_dir(&topology, &args.secrets, args.secrets.exists());
    if secrets.is_none() && topology.secrets.backend.deploy_uploads() && !args.dry_run {
        bail!(
            "no secrets directory {}: run `nixstack secrets init` first (deploy uploads the secrets before activation)",
            args.secrets.display()
        );
    }
    let code = deploy(&args, old.as_ref(), &topology, &systems, &hosts, secrets)?;
    let everything = args.on.is_empty() && code == exit::OK && !args.dry_run && args.goal.should_switch_profile();
    if everything {
        std::fs::create_dir_all(".nixstack")?;
        std::fs::write(deployed, &source.text).with_context(|| format!("cannot write {DEPLOYED_SPEC}"))?;
    }
    Ok(code)
}

/// A running lab as a deploy target: what the lab knows of itself, found by the caller
/// (the CLI asks the lab), so that deploy never reaches into the lab.
#[derive(Debug, Clone)]
pub struct LabTarget {
    /// The spec the lab runs.
    pub running: SpecSource,
    /// The lab's admin SSH key and the known-hosts file beside it.
    pub identity: PathBuf,
    pub known_hosts: PathBuf,
    /// The lab's stack secrets (what `nixstack lab up` generated).
    pub secrets: PathBuf,
    /// The namespace `ssh` and `nix copy` run in (the lab's admin namespace).
    pub netns: String,
}

/// `nixstack deploy --lab`: the lab's spec (or a new one with the same network) deployed
/// to the lab's hosts over SSH from its admin namespace, each into its own Nix store.
pub fn lab_command(args: &DeployArgs, lab: &LabTarget) -> Result<i32> {
    let running = crate::topology::compile(&lab.running)?;
    let topology = match &args.spec {
        Some(path) => crate::topology::load(Some(path))?.1,
        None => running.clone(),
    };
    same_network(&running, &topology)?;
    let root = Path::new(LAB_ROOT);
    let hosts = lab_hosts(&topology, root, &lab.identity, &lab.known_hosts, &lab.netns);
    let flake_dir = root.join("deploy-flake");
    let systems = LabSystems::new(&topology, root)
        .write(&flake_dir)
        .with_context(|| format!("cannot write the lab systems' flake in {}", flake_dir.display()))?;
    deploy(args, Some(&running), &topology, &systems, &hosts, Some(&lab.secrets))
}

/// The lab's network is the one it was started with: a deploy changes configs, not wiring.
fn same_network(running: &Topology, new: &Topology) -> Result<()> {
    let wiring = |t: &Topology| {
        t.hosts.iter().map(|h| (h.name.clone(), h.address, h.public_address, h.roles.clone())).collect::<Vec<_>>()
    };
    if wiring(running) != wiring(new) {
        bail!("the lab runs a spec with other hosts, addresses or roles; a deploy changes configs, not the lab's network: run `nixstack lab down` and `nixstack lab up` with the new spec");
    }
    Ok(())
}

/// Every host of a lab under `root`, reached from `netns` with `identity`.
pub fn lab_hosts(
    topology: &Topology,
    root: &Path,
    identity: &Path,
    known_hosts: &Path,
    netns: &str,
) -> BTreeMap<String, Box<dyn Host>> {
    topology
        .hosts
        .iter()
        .map(|h| (h.name.clone(), Box::new(SshHost::lab(h, root, identity, known_hosts, netns)) as Box<dyn Host>))
        .collect()
}

/// The plan of deploying `topology` over `old` (`None`: every host counts as new).
pub fn make_plan(
    old: Option<&Topology>,
    topology: &Topology,
    on: &[String],
    goal: Goal,
    parallel: usize,
) -> Result<plan::Plan> {
    let selected = plan::select(topology, on).map_err(anyhow::Error::msg)?;
    let new_files = render::tree::artifacts(topology);
    Ok(match old {
        Some(old) => {
            plan::plan(Some((old, &render::tree::artifacts(old))), topology, &new_files, &selected, goal, parallel)
        }
        None => {
            let empty = Topology { hosts: Vec::new(), ..topology.clone() };
            plan::plan(Some((&empty, &render::Artifacts::new())), topology, &new_files, &selected, goal, parallel)
        }
    })
}

fn deploy(
    args: &DeployArgs,
    old: Option<&Topology>,
    topology: &Topology,
    systems: &Systems,
    hosts: &BTreeMap<String, Box<dyn Host>>,
    secrets: Option<&Path>,
) -> Result<i32> {
    let plan = make_plan(old, topology, &args.on, args.goal, args.parallel)?;
    if args.json {
        let mut value = serde_json::to_value(&plan)?;
        value["event"] = "plan".into();
        println!("{}", serde_json::to_string(&value)?);
    } else {
        print!("{}", plan.describe());
    }
    if args.dry_run {
        let mut ok = plan.blockers.is_empty();
        if args.diff_closures {
            let selected: Vec<String> = plan.batches.iter().flat_map(|b| b.hosts.iter().cloned()).collect();
            let diffs = super::diff::diff_hosts(systems, hosts, &selected, Options::default().build_timeout)?;
            ok &= !diffs.iter().any(|(_, d)| matches!(d, super::diff::HostDiff::Failed { .. }));
            if args.json {
                for event in super::diff::events(&diffs) {
                    println!("{}", serde_json::to_string(&event)?);
                }
            } else {
                print!("{}", super::diff::describe(&diffs));
            }
        }
        return Ok(if ok { exit::OK } else { exit::FINDINGS });
    }
    let (progress, printer) = Printer::start(Format::detect(args.json), Box::new(std::io::stdout()));
    let options = Options { copy_parallel: args.parallel.max(4), ..Options::default() };
    let rollout = Rollout { topology, plan: &plan, systems, hosts, secrets_dir: secrets, options };
    let outcome = execute::execute(&rollout, &progress);
    printer.finish(progress);
    Ok(if outcome.ok { exit::OK } else { exit::FINDINGS })
}

/// The secrets directory deploy uploads from: none with `[secrets] backend` sops or agenix
/// (sops-nix / agenix decrypt the flake's encrypted files on the host), none when it does
/// not exist (deploy then refuses, outside `--dry-run`).
pub fn upload_dir<'a>(topology: &Topology, dir: &'a Path, exists: bool) -> Option<&'a Path> {
    (topology.secrets.backend.deploy_uploads() && exists).then_some(dir)
}

#[cfg(test)]
mod upload_tests {
    use super::*;
    use crate::spec::SecretsBackend;

    fn topology(backend: SecretsBackend) -> Topology {
        let mut topology =
            crate::topology::compile(&crate::spec::SpecSource::embedded_default()).expect("the default spec compiles");
        topology.secrets.backend = backend;
        topology
    }

    #[test]
    fn only_the_nixstack_backend_uploads_secrets() {
        let dir = Path::new("secrets");
        assert_eq!(upload_dir(&topology(SecretsBackend::Nixstack), dir, true), Some(dir));
        assert_eq!(upload_dir(&topology(SecretsBackend::Nixstack), dir, false), None);
        assert_eq!(upload_dir(&topology(SecretsBackend::Sops), dir, true), None);
        assert_eq!(upload_dir(&topology(SecretsBackend::Agenix), dir, true), None);
    }
}
