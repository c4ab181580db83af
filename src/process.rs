//! Running an external command to completion, the one way every part of nixstack does it:
//! in its own process group (a timeout kills the group, so `nix copy`'s `ssh` or a
//! script's `sleep` cannot linger), both pipes drained while it runs (a chatty command
//! cannot block on a full pipe), a bound on how long it may take, optional stdin, and a
//! failure whose first line is the cause, then the command line, then its output's tail.
//!
//! Long-lived daemons (the lab's `process::spawn`) are spawned elsewhere: they are not
//! waited for. A command can still be prepared by its caller (credentials, namespaces in
//! `pre_exec`) and handed to [`run`].

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use thiserror::Error;

/// Default bound for short administrative commands (`ip`, `nft`, `sysctl`).
pub const SHORT: Duration = Duration::from_secs(20);

/// Lines of output a failure quotes.
pub const TAIL_LINES: usize = 20;

/// How long, once the command is gone, its pipes may stay open (held by a descendant that
/// left the group, e.g. a daemon it started) before we stop reading them.
const PIPE_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Error)]
pub enum CommandError {
    #[error("cannot start it: {source} (is it installed? run scripts/setup)\n  command: {command}")]
    Spawn { command: String, source: std::io::Error },
    #[error("did not finish within {seconds:.1}s and was stopped\n  command: {command}{}", tail_block(.stderr_tail, .stdout_tail))]
    Timeout { command: String, seconds: f64, stderr_tail: String, stdout_tail: String },
    #[error("{headline}\n  command: {command}\n  exit status: {status}{}", tail_block(.stderr_tail, &tail(.stdout, TAIL_LINES)))]
    Failed { command: String, status: String, headline: String, stderr_tail: String, stdout: String },
}

impl CommandError {
    /// The command line, as a shell would show it.
    pub fn command(&self) -> &str {
        match self {
            CommandError::Spawn { command, .. }
            | CommandError::Timeout { command, .. }
            | CommandError::Failed { command, .. } => command,
        }
    }

    /// The first line of the message: the cause.
    pub fn headline(&self) -> String {
        self.to_string().lines().next().unwrap_or_default().to_string()
    }
}

/// The output's last lines: stderr's when it said anything, else stdout's.
fn tail_block(stderr_tail: &str, stdout_tail: &str) -> String {
    let (which, text) = if stderr_tail.trim().is_empty() { ("stdout", stdout_tail) } else { ("stderr", stderr_tail) };
    if text.trim().is_empty() {
        String::new()
    } else {
        format!("\n  {which} (last lines):\n{}", indent(text))
    }
}

/// `text` indented by four spaces, line by line.
pub fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

/// Captured output of a finished command.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

/// The last `lines` lines of `text`, trailing blank space dropped.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The line that says why a command failed: Nix's last `error:` line, else the last line
/// of stderr, else of stdout.
pub fn headline(stderr: &str, stdout: &str, status: &str) -> String {
    fn meaningful(text: &str) -> Vec<&str> {
        text.lines().map(str::trim).filter(|l| !l.is_empty()).collect()
    }
    let err = meaningful(stderr);
    if let Some(line) = err.iter().rev().find(|l| l.starts_with("error:") || l.contains(" error: ")) {
        return line.to_string();
    }
    if let Some(line) = err.last() {
        return line.to_string();
    }
    meaningful(stdout)
        .last()
        .map(|l| l.to_string())
        .unwrap_or_else(|| format!("exited with {status} and printed nothing"))
}

/// A command as a shell would show it.
pub fn display(command: &std::process::Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| shell_quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes `text` for a POSIX shell when it needs it.
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@,%+".contains(c)) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// A command to run: a program, its arguments and environment, optionally a network
/// namespace (through `ip netns exec`), stdin text and a bound (default [`SHORT`]).
#[derive(Debug, Clone)]
pub struct Cmd {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    netns: Option<String>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

impl Cmd {
    pub fn new(program: &str) -> Self {
        Cmd { program: program.into(), args: Vec::new(), env: Vec::new(), netns: None, stdin: None, timeout: SHORT }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable (added to the inherited environment).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs inside the network namespace `netns` (through `ip netns exec`).
    pub fn netns(mut self, netns: &str) -> Self {
        self.netns = Some(netns.into());
        self
    }

    /// Runs inside `netns` when there is one.
    pub fn netns_opt(self, netns: Option<&str>) -> Self {
        match netns {
            Some(netns) => self.netns(netns),
            None => self,
        }
    }

    /// Text written to the command's stdin (SQL, scripts, secrets: never in arguments,
    /// where other users could read them).
    pub fn stdin(mut self, text: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(text.into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The `std::process::Command` this describes (the namespace as an `ip netns exec` prefix).
    pub fn command(&self) -> std::process::Command {
        let mut command = match &self.netns {
            Some(netns) => {
                let mut command = std::process::Command::new("ip");
                command.args(["netns", "exec", netns, &self.program]);
                command
            }
            None => std::process::Command::new(&self.program),
        };
        command.args(&self.args).envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs to completion; Err unless it exits 0.
    pub fn run(&self) -> Result<Output, CommandError> {
        run(self.command(), self.stdin.as_deref(), self.timeout)
    }

    /// Runs and returns stdout.
    pub fn stdout(&self) -> Result<String, CommandError> {
        self.run().map(|output| output.stdout)
    }
}

/// Runs `command` with `stdin`, waiting at most `timeout`, in a process group of its own
/// whose every member is killed when the time is up. Err unless it exits 0.
pub fn run(
    mut command: std::process::Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<Output, CommandError> {
    let shown = display(&command);
    command
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: getpid, getpgrp and setpgid are async-signal-safe and touch no memory. This
    // runs after any `pre_exec` of the caller's: a child that already made itself a session
    // leader (`setsid`) leads its own group, and setpgid would fail on it, so it is skipped.
    unsafe {
        command.pre_exec(|| {
            if libc::getpgrp() != libc::getpid() && libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|source| CommandError::Spawn { command: shown.clone(), source })?;
    let group = child.id() as i32;
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin piped");
        let bytes = bytes.to_vec();
        // A writer thread, so that a command that does not read its stdin cannot block us;
        // one that exits without reading it must not fail the write loudly.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let stdout = drain(child.stdout.take().expect("stdout piped"));
    let stderr = drain(child.stderr.take().expect("stderr piped"));
    let deadline = Instant::now() + timeout;
    let kill_group = || {
        // SAFETY: kill(2) on the process group our child leads; no memory is involved.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                kill_group();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(source) => {
                kill_group();
                let _ = child.wait();
                return Err(CommandError::Spawn { command: shown, source });
            }
        }
    };
    // The pipes close when every holder has exited. Members of the group may outlive its
    // leader: they share its bound, and are killed when it passes; whatever left the group
    // gets a short grace, then we stop reading (keeping what it printed).
    let mut pipes = [stdout, stderr];
    if !pipes.iter_mut().all(|pipe| pipe.read_until(deadline)) {
        kill_group();
        let grace = Instant::now() + PIPE_GRACE;
        for pipe in &mut pipes {
            pipe.read_until(grace);
        }
    }
    let [stdout, stderr] = pipes.map(Drain::into_text);
    match status {
        None => Err(CommandError::Timeout {
            command: shown,
            seconds: timeout.as_secs_f64(),
            stderr_tail: tail(&stderr, TAIL_LINES),
            stdout_tail: tail(&stdout, TAIL_LINES),
        }),
        Some(status) if status.success() => Ok(Output { stdout, stderr }),
        Some(status) => {
            let status_text = match status.code() {
                Some(code) => format!("exit code {code}"),
                None => format!("killed ({status})"),
            };
            let headline = headline(&stderr, &stdout, &status_text);
            Err(CommandError::Failed {
                command: shown,
                status: status_text,
                headline,
                stderr_tail: tail(&stderr, TAIL_LINES),
                stdout,
            })
        }
    }
}

/// A pipe read on a thread of its own, chunk by chunk, so that what a command printed
/// before it hung is still there to quote.
struct Drain {
    chunks: mpsc::Receiver<Vec<u8>>,
    bytes: Vec<u8>,
}

fn drain(mut pipe: impl Read + Send + 'static) -> Drain {
    let (sender, chunks) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match pipe.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    if sender.send(buffer[..n].to_vec()).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });
    Drain { chunks, bytes: Vec::new() }
}

impl Drain {
    /// Reads until the pipe closes (true) or `deadline` passes (false).
    fn read_until(&mut self, deadline: Instant) -> bool {
        loop {
            match self.chunks.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(chunk) => self.bytes.extend_from_slice(&chunk),
                Err(mpsc::RecvTimeoutError::Disconnected) => return true,
                Err(mpsc::RecvTimeoutError::Timeout) => return false,
            }
        }
    }

    fn into_text(self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_than_a_mebibyte_on_both_pipes_completes() {
        // 2 MiB on each pipe, interleaved: a runner that read one pipe after the other
        // would block the command on the other's full pipe buffer.
        let script = "i=0; while [ $i -lt 32 ]; do head -c 65536 /dev/zero | tr '\\0' o; head -c 65536 /dev/zero | tr '\\0' e >&2; i=$((i + 1)); done";
        let output = Cmd::new("sh").args(["-c", script]).timeout(Duration::from_secs(30)).run().expect("completes");
        assert_eq!(output.stdout.len(), 2 << 20);
        assert_eq!(output.stderr.len(), 2 << 20);
    }

    #[test]
    fn a_timeout_kills_the_grandchildren_too() {
        let marker = tempfile::NamedTempFile::new().unwrap();
        let path = marker.path().display().to_string();
        // The grandchild holds the pipes open and would write the marker after 2 seconds.
        let script = format!("sh -c 'sleep 2; echo alive > {path}' & echo $! ; wait");
        let started = Instant::now();
        let error = Cmd::new("sh").args(["-c", script.as_str()]).timeout(Duration::from_millis(300)).run().unwrap_err();
        assert!(matches!(error, CommandError::Timeout { .. }), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the group is killed and the pipes close: {:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(2500));
        assert_eq!(std::fs::read_to_string(marker.path()).unwrap(), "", "the grandchild died with its group");
    }

    #[test]
    fn a_failure_puts_the_cause_first_then_the_command_then_the_tail() {
        let script = "echo building >&2; echo 'error: cannot add path /nix/store/x because it lacks a valid signature' >&2; echo done >&2; exit 1";
        let error = Cmd::new("sh").args(["-c", script]).run().unwrap_err();
        let text = error.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("error: cannot add path"), "{text}");
        assert!(lines[1].starts_with("  command: sh -c "), "{text}");
        assert_eq!(lines[2], "  exit status: exit code 1", "{text}");
        assert_eq!(lines[3], "  stderr (last lines):", "{text}");
        assert_eq!(lines.last(), Some(&"    done"), "{text}");
    }

    #[test]
    fn without_an_error_line_the_cause_is_the_last_stderr_line() {
        let error = Cmd::new("sh")
            .args(["-c", "echo one >&2; echo 'Permission denied (publickey).' >&2; exit 255"])
            .run()
            .unwrap_err();
        assert_eq!(error.headline(), "Permission denied (publickey).");
    }

    #[test]
    fn a_missing_program_says_so_first() {
        let error = Cmd::new("nixstack-no-such-program").run().unwrap_err();
        assert!(matches!(error, CommandError::Spawn { .. }));
        assert!(error.headline().starts_with("cannot start it: "), "{error}");
        assert!(error.to_string().contains("command: nixstack-no-such-program"), "{error}");
    }

    #[test]
    fn stdin_reaches_the_command_and_a_command_that_ignores_it_still_finishes() {
        let output = Cmd::new("cat").stdin("select 1;\n").run().unwrap();
        assert_eq!(output.stdout, "select 1;\n");
        let output = Cmd::new("true").stdin(vec![b'x'; 4 << 20]).run().unwrap();
        assert_eq!(output.stdout, "");
    }

    #[test]
    fn a_caller_prepared_session_leader_still_runs() {
        let mut command = std::process::Command::new("sh");
        command.args(["-c", "echo $$"]);
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            command.pre_exec(|| if libc::setsid() < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) });
        }
        let output = run(command, None, Duration::from_secs(10)).expect("a session leader needs no group of its own");
        assert!(!output.stdout.trim().is_empty());
    }
}
