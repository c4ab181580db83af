//! A scenario step's verdict and its streamed detail lines: what the lab's step executors
//! (run, monitoring, chaos) report through, below all of them.

use std::time::Duration;

use super::event::{Event, Reporter};

/// The outcome of one step.
pub(super) struct Verdict {
    pub(super) passed: bool,
    pub(super) summary: String,
}

impl Verdict {
    pub(super) fn pass(summary: impl Into<String>) -> Self {
        Verdict { passed: true, summary: summary.into() }
    }
    pub(super) fn fail(summary: impl Into<String>) -> Self {
        Verdict { passed: false, summary: summary.into() }
    }

    /// Pass unless there are failures (each reported as a `✗` line).
    pub(super) fn from_failures(log: &StepLog, failures: &[String], passed: impl Into<String>) -> Self {
        for failure in failures {
            log.line(format!("✗ {failure}"));
        }
        if failures.is_empty() {
            Verdict::pass(passed)
        } else {
            Verdict::fail(failures.join("; "))
        }
    }
}

/// Streams a step's detail lines as they happen, interleaved with daemon events.
pub(super) struct StepLog<'a> {
    pub(super) reporter: &'a Reporter,
    pub(super) step: String,
}

impl StepLog<'_> {
    pub(super) fn line(&self, line: impl Into<String>) {
        self.reporter.emit(Event::StepDetail { step: self.step.clone(), line: line.into() });
    }

    pub(super) fn metric(&self, name: &str, duration: Duration) {
        self.reporter.emit(Event::Metric {
            step: self.step.clone(),
            name: name.into(),
            seconds: duration.as_secs_f64(),
        });
    }
}
