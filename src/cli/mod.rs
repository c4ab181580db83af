//! The command line: argument types and one function per command. `main` only parses
//! arguments and calls [`run`].

mod args;
mod report;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub use args::{Cli, Command, LabCommand, SecretsCommand};

use crate::audit::{self, Severity};
use crate::spec::{self, SpecErrors, SpecSource};

pub use crate::exit;
pub use crate::spec::read as read_spec;
pub use crate::topology::{compile, load};

/// Runs one command and returns the process exit status. Only `main` exits.
pub fn run(cli: Cli) -> i32 {
    match dispatch(cli) {
        Ok(code) => code,
        // The reader went away (`nixstack check | head -1`): what it read was all it wanted.
        Err(error) if error.downcast_ref::<StdoutClosed>().is_some() => exit::OK,
        Err(error) => {
            if let Some(spec_errors) = error.downcast_ref::<SpecErrors>() {
                eprint!("{spec_errors}");
                let n = spec_errors.0.len();
                eprintln!("{n} error{} in the spec; nothing was written", if n == 1 { "" } else { "s" });
            } else {
                eprintln!("error: {error:#}");
            }
            exit::INVALID
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Init { path } => init(&path.unwrap_or_else(|| PathBuf::from("stack.toml"))),
        Command::Check { spec, secrets } => {
            let (source, topology) = load(spec.as_deref())?;
            let findings = findings_with_secrets(&topology, &secrets);
            emit(&report::summary(&source, &topology))?;
            emit(&report::findings(&findings))?;
            Ok(exit_for(&findings))
        }
        Command::Audit { spec, secrets, json } => {
            let (_, topology) = load(spec.as_deref())?;
            let findings = findings_with_secrets(&topology, &secrets);
            if json {
                emit(&(serde_json::to_string_pretty(&findings)? + "\n"))?;
            } else {
                emit(&report::findings(&findings))?;
            }
            Ok(exit_for(&findings))
        }
        Command::Topology { spec, json: _ } => {
            let (_, topology) = load(spec.as_deref())?;
            emit(&(serde_json::to_string_pretty(&topology)? + "\n"))?;
            Ok(exit::OK)
        }
        Command::Diagram { spec, out } => diagram(spec.as_deref(), &out),
        Command::Schema => {
            emit(&schema())?;
            Ok(exit::OK)
        }
        Command::Build { spec, out, check, force, secrets } => {
            crate::output::build_command(spec.as_deref(), &out, &secrets, check, force)
        }
        Command::Secrets { command: SecretsCommand::Init { spec, dir } } => {
            crate::secrets::init_command(spec.as_deref(), &dir)
        }
        Command::Secrets { command: SecretsCommand::Rotate { spec, dir, hosts } } => {
            crate::secrets::rotate_command(spec.as_deref(), &dir, &hosts)
        }
        Command::Plan { spec, from, on, goal, parallel, json } => {
            plan(spec.as_deref(), from.as_deref(), &on, goal, parallel, json)
        }
        Command::Deploy(args) if args.lab => deploy_to_lab(&args),
        Command::Deploy(args) => crate::deploy::command(args),
        Command::Install(args) => crate::deploy::install::command(args),
        Command::SumologicStandin { listen, token_file } => crate::sumologic::standin_command(&listen, &token_file),
        Command::Db { command } => crate::db::command(command),
        Command::Lab { command } => lab(command),
    }
}

/// Standard output was closed before everything was written to it.
#[derive(Debug, thiserror::Error)]
#[error("standard output is closed")]
struct StdoutClosed;

/// Writes `text` to standard output. A closed pipe ends the command quietly with
/// [`StdoutClosed`] (`print!` would panic), as a command line tool should.
fn emit(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        other => Ok(other?),
    }
}

/// The audit's findings and, when `secrets` exists, its certificates' expiry.
fn findings_with_secrets(topology: &crate::topology::Topology, secrets: &Path) -> Vec<audit::Finding> {
    let mut findings = audit::audit(topology);
    if secrets.is_dir() {
        findings.extend(crate::secrets::expiry_findings(topology, secrets, crate::secrets::unix_now()));
        findings.sort();
    }
    findings
}

fn exit_for(findings: &[audit::Finding]) -> i32 {
    if audit::worst(findings) == Some(Severity::Error) {
        exit::FINDINGS
    } else {
        exit::OK
    }
}

/// `nixstack diagram`: the whiteboard of the spec as SVG, with its findings drawn on it.
/// Exit 0 when the picture is written, whatever it shows: `check` is the gate.
fn diagram(spec: Option<&Path>, out: &Path) -> Result<i32> {
    let (_, topology) = load(spec)?;
    let findings = audit::audit(&topology);
    let svg = crate::render::diagram::render(&topology, &findings);
    if out == Path::new("-") {
        emit(&svg)?;
    } else {
        crate::output::write_file(out, svg.as_bytes())?;
        eprintln!("nixstack: wrote {} ({} hosts, {} findings)", out.display(), topology.hosts.len(), findings.len());
    }
    Ok(exit::OK)
}

/// The JSON Schema of stack.toml, as committed in `schema/stack.schema.json`.
pub fn schema() -> String {
    let schema = schemars::schema_for!(spec::RawSpec);
    serde_json::to_string_pretty(&schema).expect("schema serializes") + "\n"
}

fn init(path: &Path) -> Result<i32> {
    let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            anyhow::bail!(
                "{} already exists; nixstack init never overwrites a spec (remove it first or pass another path)",
                path.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    };
    file.write_all(spec::DEFAULT_SPEC.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("nixstack: wrote {}; edit it, then run `nixstack check {}`", path.display(), path.display());
    Ok(exit::OK)
}

/// `nixstack plan`: what a deploy of `spec` over the deployed spec would change.
fn plan(
    spec: Option<&Path>,
    from: Option<&Path>,
    on: &[String],
    goal: crate::deploy::Goal,
    parallel: usize,
    json: bool,
) -> Result<i32> {
    let (_, topology) = load(spec)?;
    let deployed = Path::new(crate::deploy::DEPLOYED_SPEC);
    let from = from.or_else(|| deployed.exists().then_some(deployed));
    let old = match from {
        Some(path) => {
            let source = SpecSource {
                name: path.display().to_string(),
                text: std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the deployed spec {}", path.display()))?,
            };
            Some(compile(&source)?)
        }
        None => {
            eprintln!("nixstack: no deployed spec known ({}); every host counts as new", crate::deploy::DEPLOYED_SPEC);
            None
        }
    };
    let plan = crate::deploy::make_plan(old.as_ref(), &topology, on, goal, parallel)?;
    if json {
        emit(&(serde_json::to_string_pretty(&plan)? + "\n"))?;
    } else {
        emit(&plan.describe())?;
    }
    Ok(if plan.blockers.is_empty() { exit::OK } else { exit::FINDINGS })
}

/// `nixstack deploy --lab`: the lab says what it runs and where its key and secrets are;
/// deploy does the rest. This glue lives here so that deploy never imports the lab.
fn deploy_to_lab(args: &crate::deploy::DeployArgs) -> Result<i32> {
    let Some(state) = crate::lab::state::State::load()? else { bail!("no lab is up: run `nixstack lab up` first") };
    let admin = crate::lab::admin_dir();
    let target = crate::deploy::LabTarget {
        running: SpecSource { name: state.spec_name, text: state.spec_text },
        identity: crate::lab::sshd::admin_key(&admin),
        known_hosts: admin.join("known_hosts"),
        secrets: crate::lab::secrets_dir(),
        netns: crate::stack::address_plan::ADMIN.to_string(),
    };
    crate::deploy::lab_command(args, &target)
}

/// `nixstack lab ...`: every subcommand needs root.
fn lab(command: LabCommand) -> Result<i32> {
    use crate::lab::{self, Reporter};
    lab::require_root()?;
    match command {
        LabCommand::Up { spec, json } => lab::up(spec.as_deref(), &Reporter::new(json)),
        LabCommand::Test { spec, json } => lab::test(spec.as_deref(), &Reporter::new(json)),
        LabCommand::Acme { spec, renew, on, json } => {
            lab::acme_orders(spec.as_deref(), renew, &on, &Reporter::new(json))
        }
        LabCommand::Chaos { spec, faults, steady_secs, json } => {
            let faults = if faults.is_empty() {
                lab::chaos::Fault::ALL.to_vec()
            } else {
                faults.iter().map(|f| lab::chaos::Fault::parse(f)).collect::<Result<_>>()?
            };
            let timing =
                lab::chaos::Timing { steady: std::time::Duration::from_secs(steady_secs), ..Default::default() };
            lab::chaos(spec.as_deref(), &faults, timing, &Reporter::new(json))
        }
        LabCommand::Rotate { spec, hosts, json } => lab::rotate(spec.as_deref(), &hosts, &Reporter::new(json)),
        LabCommand::Restart { host, daemon, json } => lab::restart(&host, &daemon, &Reporter::new(json)),
        LabCommand::Status { json } => lab::status(json),
        LabCommand::Down { json } => lab::down(&Reporter::new(json)),
        LabCommand::Qps { json, watch } => lab::monitoring::qps_command(json, watch),
    }
}
