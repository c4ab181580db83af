//! Progress of lab commands: typed events, printed as plain lines for humans or as one
//! JSON object per line with `--json`. Workers only emit events; this module formats.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use serde::Serialize;

/// What happened to one part of the lab.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A namespace, directory, link or file was created.
    Created { kind: String, name: String },
    /// It was already there (an idempotent `up` run).
    Present { kind: String, name: String },
    /// A daemon was started.
    Started { host: String, daemon: String, pid: u32 },
    /// A daemon was already running (an idempotent `up` run).
    Running { host: String, daemon: String, pid: u32 },
    /// A probe found the daemon ready.
    Ready { host: String, daemon: String, detail: String, elapsed_ms: u64 },
    /// A one-shot action ran on a host (firewall loaded, databases created...).
    Applied { host: String, what: String },
    /// A process was stopped by `down`.
    Stopped { host: String, daemon: String, pid: u32 },
    /// A namespace or directory was removed by `down`.
    Removed { kind: String, name: String },
    /// Something was recorded but not found, or could not be removed.
    Warning { message: String },
    /// A scenario step began.
    StepStarted { step: String },
    /// A line of a step's output (e.g. the firewall matrix).
    StepDetail { step: String, line: String },
    /// A number a step measured (failover times), for benchmarks; JSON output only.
    Metric { step: String, name: String, seconds: f64 },
    /// What one fault of `lab chaos` did (JSON output only; humans get the step's lines).
    Chaos { report: Box<FaultReport> },
    /// A scenario step ended.
    StepFinished { step: String, passed: bool, summary: String, elapsed_ms: u64 },
    /// A whole command ended.
    Done { command: String, ok: bool, elapsed_ms: u64 },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Created { kind, name } => write!(f, "  + {kind} {name}"),
            Event::Present { kind, name } => write!(f, "  = {kind} {name} (already there)"),
            Event::Started { host, daemon, pid } => write!(f, "  ▶ {host}: {daemon} started (pid {pid})"),
            Event::Running { host, daemon, pid } => write!(f, "  = {host}: {daemon} already running (pid {pid})"),
            Event::Ready { host, daemon, detail, elapsed_ms } => {
                write!(f, "  ✓ {host}: {daemon} ready after {:.1}s ({detail})", *elapsed_ms as f64 / 1000.0)
            }
            Event::Applied { host, what } => write!(f, "  ✓ {host}: {what}"),
            Event::Stopped { host, daemon, pid } => write!(f, "  ■ {host}: {daemon} stopped (pid {pid})"),
            Event::Removed { kind, name } => write!(f, "  - {kind} {name}"),
            Event::Warning { message } => write!(f, "  ! {message}"),
            Event::StepStarted { step } => write!(f, "── {step}"),
            Event::StepDetail { line, .. } => write!(f, "   {line}"),
            Event::Metric { step, name, seconds } => write!(f, "   {step}: {name} = {seconds:.3}s"),
            Event::Chaos { report } => write!(f, "   {}: {}", report.fault, report.summary),
            Event::StepFinished { step, passed, summary, elapsed_ms } => write!(
                f,
                "   {} {step}: {summary} ({:.1}s)",
                if *passed { "PASS" } else { "FAIL" },
                *elapsed_ms as f64 / 1000.0
            ),
            Event::Done { command, ok, elapsed_ms } => {
                write!(f, "lab {command}: {} in {:.1}s", if *ok { "ok" } else { "FAILED" }, *elapsed_ms as f64 / 1000.0)
            }
        }
    }
}

/// Prints events in the chosen format. Shared by the threads of one command.
#[derive(Debug)]
pub struct Reporter {
    json: bool,
    started: Instant,
}

impl Reporter {
    pub fn new(json: bool) -> Self {
        Reporter { json, started: Instant::now() }
    }

    pub fn emit(&self, event: Event) {
        if !self.json && matches!(event, Event::Metric { .. } | Event::Chaos { .. }) {
            // Humans read the numbers in the step's detail lines already.
            return;
        }
        let line = if self.json { serde_json::to_string(&event).expect("events serialize") } else { event.to_string() };
        // One locked write per line so that lines of parallel workers never interleave.
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }

    pub fn created(&self, kind: &str, name: impl Into<String>) {
        self.emit(Event::Created { kind: kind.into(), name: name.into() });
    }

    pub fn present(&self, kind: &str, name: impl Into<String>) {
        self.emit(Event::Present { kind: kind.into(), name: name.into() });
    }

    pub fn warning(&self, message: impl Into<String>) {
        self.emit(Event::Warning { message: message.into() });
    }

    pub fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn done(&self, command: &str, ok: bool) {
        self.emit(Event::Done { command: command.into(), ok, elapsed_ms: self.elapsed_ms() });
    }
}

/// What one fault of `lab chaos` did to the writers and the data (the `chaos` event).
#[derive(Debug, Clone, Serialize)]
pub struct FaultReport {
    pub fault: String,
    /// The nodes the fault hit.
    pub victims: Vec<String>,
    pub acknowledged: usize,
    pub unacknowledged: usize,
    /// Acknowledged writes missing on at least one node.
    pub lost: usize,
    /// Writes found more than once on some node.
    pub duplicated: usize,
    /// Nodes whose set of writes differs from the first node's.
    pub divergent_nodes: Vec<String>,
    /// Failed or unanswered writes per writer node.
    pub client_errors: BTreeMap<String, usize>,
    /// The longest gap between two acknowledgements from the fault until the recovery began
    /// (the node restarted, resumed or healed), per writer the fault did not touch (ms).
    pub stall_ms: BTreeMap<String, u64>,
    pub max_stall_ms: Option<u64>,
    /// The same while the victim rejoined (its view change and state transfer), per writer.
    pub rejoin_stall_ms: BTreeMap<String, u64>,
    /// From the fault until the first acknowledgement on any node after it (ms).
    pub unavailable_ms: Option<u64>,
    /// From the fault until every node was Synced in one primary component again (ms).
    pub recovery_ms: u64,
    /// Galera view changes seen during a steady run (`wsrep_cluster_conf_id` steps); a
    /// non-zero value is a spurious eviction.
    pub view_changes: Option<u64>,
    /// The app through the VIP (HTTPS `GET /`, which writes through the app's preferred db
    /// node and fails over to the next) while the fault lasted, until recovery began.
    pub app: Option<AppDuringFault>,
    pub passed: bool,
    pub summary: String,
}

/// What clients of the app saw during a fault.
#[derive(Debug, Clone, Serialize)]
pub struct AppDuringFault {
    pub requests: usize,
    /// Requests that failed (not 200, not the app's page, or no answer within 5 s).
    pub failed: usize,
    /// The slowest request's latency (ms).
    pub max_latency_ms: u64,
}
