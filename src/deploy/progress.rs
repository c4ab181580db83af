//! Deploy progress: workers send [`Event`]s to one printer thread, which writes one JSON
//! object per line (`--json`), or lines for humans; on a terminal each line carries a
//! progress bar of the hosts done.

use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde::Serialize;

/// Something that happened during a deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The rollout starts: these hosts, in these batches.
    Start {
        hosts: Vec<String>,
        batches: Vec<Vec<String>>,
        goal: String,
    },
    /// All selected systems were built (one `nix build`).
    Built {
        systems: Vec<(String, String)>,
        ms: u64,
    },
    /// The host already runs this system: nothing to copy or activate.
    Unchanged {
        host: String,
        path: String,
    },
    /// The host runs another system (or none yet).
    Outdated {
        host: String,
        current: Option<String>,
        new: String,
    },
    Copied {
        host: String,
        path: String,
        ms: u64,
    },
    SecretsUploaded {
        host: String,
        updated: Vec<String>,
        unchanged: usize,
    },
    /// The app's schema migration ran on this app host and succeeded (before any switch).
    Migrated {
        host: String,
        ms: u64,
    },
    /// Renewed certificates reached the host and its daemons took them (reloaded, not
    /// restarted), then it passed its health gate.
    TlsReloaded {
        host: String,
        reloaded: Vec<String>,
        ms: u64,
    },
    /// The host was put in drain mode in a load balancer and its sessions ended.
    Drained {
        host: String,
        lb: String,
        ms: u64,
    },
    /// The app host's hop refuses new connections (the web tier sends its requests to the
    /// other app hosts) and the requests accepted before it had time to reach the app.
    OutOfRotation {
        host: String,
        ms: u64,
    },
    /// The app host's hop accepts new connections again.
    BackInRotation {
        host: String,
    },
    Activated {
        host: String,
        goal: String,
        path: String,
        ms: u64,
    },
    Healthy {
        host: String,
        details: Vec<String>,
        ms: u64,
    },
    /// The host is back in a load balancer's pool and up there.
    Undrained {
        host: String,
        lb: String,
    },
    GateFailed {
        host: String,
        reason: String,
    },
    RolledBack {
        host: String,
        to: String,
        healthy: bool,
        detail: String,
    },
    /// A step failed; the rollout stops.
    Failed {
        host: Option<String>,
        error: String,
    },
    /// Anything else worth a line.
    Note {
        host: Option<String>,
        message: String,
    },
    /// The end: `ok` is false after any failure or rollback.
    Done {
        ok: bool,
        activated: Vec<String>,
        unchanged: Vec<String>,
        rolled_back: Vec<String>,
        failed: Vec<String>,
        ms: u64,
    },
}

impl Event {
    fn host(&self) -> Option<&str> {
        match self {
            Event::Unchanged { host, .. }
            | Event::Outdated { host, .. }
            | Event::Copied { host, .. }
            | Event::SecretsUploaded { host, .. }
            | Event::Migrated { host, .. }
            | Event::TlsReloaded { host, .. }
            | Event::Drained { host, .. }
            | Event::OutOfRotation { host, .. }
            | Event::BackInRotation { host }
            | Event::Activated { host, .. }
            | Event::Healthy { host, .. }
            | Event::Undrained { host, .. }
            | Event::GateFailed { host, .. }
            | Event::RolledBack { host, .. } => Some(host),
            Event::Failed { host, .. } | Event::Note { host, .. } => host.as_deref(),
            Event::Start { .. } | Event::Built { .. } | Event::Done { .. } => None,
        }
    }

    /// The event as a human reads it.
    pub fn describe(&self) -> String {
        match self {
            Event::Start { hosts, batches, goal } => format!(
                "deploying {} host(s) in {} batch(es), goal {goal}: {}",
                hosts.len(),
                batches.len(),
                batches.iter().map(|b| b.join("+")).collect::<Vec<_>>().join(" → ")
            ),
            Event::Built { systems, ms } => {
                format!("built {} system(s) in one nix build ({:.1}s)", systems.len(), *ms as f64 / 1000.0)
            }
            Event::Unchanged { path, .. } => format!("already runs {path}: skipped"),
            Event::Outdated { current, new, .. } => {
                format!("runs {} → {new}", current.as_deref().unwrap_or("no deployed system"))
            }
            Event::Copied { ms, .. } => format!("closure copied ({:.1}s)", *ms as f64 / 1000.0),
            Event::Migrated { ms, .. } => format!("app migration ran ({:.1}s)", *ms as f64 / 1000.0),
            Event::SecretsUploaded { updated, unchanged, .. } if updated.is_empty() => {
                format!("secrets: {unchanged} unchanged")
            }
            Event::SecretsUploaded { updated, unchanged, .. } => {
                format!("secrets: updated {}; {unchanged} unchanged", updated.join(", "))
            }
            Event::TlsReloaded { reloaded, ms, .. } => {
                format!("certificates reloaded: {}; healthy ({:.1}s)", reloaded.join("; "), *ms as f64 / 1000.0)
            }
            Event::Drained { lb, ms, .. } => format!("drained in {lb} ({:.1}s)", *ms as f64 / 1000.0),
            Event::OutOfRotation { ms, .. } => {
                format!("out of the web tier's rotation: new connections refused ({:.1}s)", *ms as f64 / 1000.0)
            }
            Event::BackInRotation { .. } => "back in the web tier's rotation".into(),
            Event::Activated { goal, ms, .. } => format!("{goal} done ({:.1}s)", *ms as f64 / 1000.0),
            Event::Healthy { details, ms, .. } => {
                format!("healthy: {} ({:.1}s)", details.join("; "), *ms as f64 / 1000.0)
            }
            Event::Undrained { lb, .. } => format!("back in {lb}'s pool"),
            Event::GateFailed { reason, .. } => format!("HEALTH GATE FAILED: {reason}"),
            Event::RolledBack { to, healthy, detail, .. } => {
                format!(
                    "ROLLED BACK to {to}; {}",
                    if *healthy { format!("healthy again ({detail})") } else { format!("STILL UNHEALTHY: {detail}") }
                )
            }
            Event::Failed { error, .. } => format!("FAILED: {error}"),
            Event::Note { message, .. } => message.clone(),
            Event::Done { ok, activated, unchanged, rolled_back, failed, ms } => format!(
                "{}: {} activated, {} unchanged, {} rolled back, {} failed ({:.1}s)",
                if *ok { "deploy done" } else { "DEPLOY FAILED" },
                activated.len(),
                unchanged.len(),
                rolled_back.len(),
                failed.len(),
                *ms as f64 / 1000.0
            ),
        }
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line on stdout.
    Json,
    /// Lines on stdout; with a progress bar when stdout is a terminal.
    Human { bar: bool },
}

impl Format {
    pub fn detect(json: bool) -> Self {
        if json {
            Format::Json
        } else {
            Format::Human { bar: std::io::stdout().is_terminal() }
        }
    }
}

/// The sending side, cloned into every worker. Keeps a copy of every event (tests and
/// the final report read them).
#[derive(Debug, Clone)]
pub struct Progress {
    sender: Sender<Event>,
    log: Arc<Mutex<Vec<Event>>>,
}

impl Progress {
    pub fn emit(&self, event: Event) {
        self.log.lock().expect("progress log").push(event.clone());
        let _ = self.sender.send(event);
    }

    pub fn note(&self, host: Option<&str>, message: impl Into<String>) {
        self.emit(Event::Note { host: host.map(str::to_string), message: message.into() });
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.log.lock().expect("progress log").clone()
    }
}

/// The printer thread; [`Printer::finish`] waits until everything is printed.
pub struct Printer {
    handle: JoinHandle<()>,
}

impl Printer {
    /// Starts a printer writing to `out`.
    pub fn start(format: Format, mut out: Box<dyn Write + Send>) -> (Progress, Printer) {
        let (sender, receiver) = mpsc::channel::<Event>();
        let handle = std::thread::spawn(move || {
            let mut total = 0usize;
            let mut done = 0usize;
            for event in receiver {
                match &event {
                    Event::Start { hosts, .. } => total = hosts.len(),
                    Event::Unchanged { .. } | Event::Healthy { .. } | Event::RolledBack { .. } => done += 1,
                    _ => {}
                }
                let line = match format {
                    Format::Json => serde_json::to_string(&event).expect("events serialize"),
                    Format::Human { bar } => {
                        let who =
                            event.host().map(|h| format!("{h:>8}  ")).unwrap_or_else(|| format!("{:>8}  ", "deploy"));
                        let bar = if bar && total > 0 {
                            format!("{} ", progress_bar(done.min(total), total))
                        } else {
                            String::new()
                        };
                        format!("{bar}{who}{}", event.describe())
                    }
                };
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        });
        (Progress { sender, log: Arc::new(Mutex::new(Vec::new())) }, Printer { handle })
    }

    /// Drops the last sender and waits for the printer to drain.
    pub fn finish(self, progress: Progress) {
        drop(progress);
        let _ = self.handle.join();
    }
}

/// `[#####.....] 5/10`
pub fn progress_bar(done: usize, total: usize) -> String {
    const WIDTH: usize = 20;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    format!("[{}{}] {done:>2}/{total}", "#".repeat(filled), ".".repeat(WIDTH - filled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_is_one_event_per_line_from_many_workers() {
        let buffer = Shared(Arc::new(Mutex::new(Vec::new())));
        let (progress, printer) = Printer::start(Format::Json, Box::new(buffer.clone()));
        std::thread::scope(|scope| {
            for i in 0..8 {
                let progress = progress.clone();
                scope.spawn(move || {
                    progress.emit(Event::Copied { host: format!("web{i}"), path: "/nix/store/x".into(), ms: i })
                });
            }
        });
        let events = progress.events();
        printer.finish(progress);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 8);
        assert_eq!(events.len(), 8);
        for line in text.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(value["event"], "copied");
        }
    }

    #[test]
    fn human_lines_name_the_host_and_show_a_bar_on_terminals() {
        let buffer = Shared(Arc::new(Mutex::new(Vec::new())));
        let (progress, printer) = Printer::start(Format::Human { bar: true }, Box::new(buffer.clone()));
        progress.emit(Event::Start {
            hosts: vec!["web1".into(), "web2".into()],
            batches: vec![vec!["web1".into()], vec!["web2".into()]],
            goal: "switch".into(),
        });
        progress.emit(Event::Unchanged { host: "web1".into(), path: "/nix/store/x".into() });
        printer.finish(progress);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("[##########..........]  1/2     web1  already runs /nix/store/x: skipped"), "{text}");
        assert_eq!(progress_bar(2, 2), "[####################]  2/2");
    }
}
