//! Running external tools (ip, nft, mariadb, curl...) with a timeout, optionally inside a
//! lab namespace; a failure names the command, the namespace, the status and stderr's tail.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use thiserror::Error;

/// Default bound for short administrative commands (`ip`, `nft`, `sysctl`).
pub const SHORT: Duration = Duration::from_secs(20);

#[derive(Debug, Error)]
pub enum CmdError {
    #[error("`{command}`{where_}: cannot start: {source} (run scripts/setup to install the lab's tools)")]
    Spawn { command: String, where_: String, source: std::io::Error },
    #[error("`{command}`{where_}: timed out after {seconds:.1}s")]
    Timeout { command: String, where_: String, seconds: f64 },
    #[error("`{command}`{where_}: {status}: {stderr_tail}")]
    Failed { command: String, where_: String, status: String, stderr_tail: String, stdout: String },
}

/// A command's captured output (stderr goes into errors only).
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: String,
}

/// A command to run: a program, its arguments, optionally a namespace and stdin text.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: String,
    args: Vec<String>,
    netns: Option<String>,
    stdin: Option<String>,
    timeout: Duration,
}

impl Cmd {
    pub fn new(program: &str) -> Self {
        Cmd { program: program.into(), args: Vec::new(), netns: None, stdin: None, timeout: SHORT }
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

    /// Runs inside the network namespace `netns` (through `ip netns exec`).
    pub fn netns(mut self, netns: &str) -> Self {
        self.netns = Some(netns.into());
        self
    }

    /// Text written to the command's stdin (SQL, secrets: never in arguments).
    pub fn stdin(mut self, text: impl Into<String>) -> Self {
        self.stdin = Some(text.into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn display(&self) -> String {
        std::iter::once(self.program.as_str()).chain(self.args.iter().map(String::as_str)).collect::<Vec<_>>().join(" ")
    }

    fn where_(&self) -> String {
        self.netns.as_ref().map(|ns| format!(" in {ns}")).unwrap_or_default()
    }

    /// Runs to completion; Err unless it exits 0.
    pub fn run(&self) -> Result<Output, CmdError> {
        let mut command = match &self.netns {
            Some(ns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", ns, &self.program]);
                command
            }
            None => Command::new(&self.program),
        };
        command.args(&self.args);
        command.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|source| CmdError::Spawn { command: self.display(), where_: self.where_(), source })?;
        if let Some(text) = &self.stdin {
            let mut stdin = child.stdin.take().expect("piped stdin");
            let text = text.clone();
            // A writer thread, so that a command that does not read its stdin cannot block us.
            std::thread::spawn(move || {
                let _ = stdin.write_all(text.as_bytes());
            });
        }
        let stdout_reader = read_in_background(child.stdout.take().expect("piped stdout"));
        let stderr_reader = read_in_background(child.stderr.take().expect("piped stderr"));
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(CmdError::Timeout { command: self.display(), where_: self.where_(), seconds: self.timeout.as_secs_f64() });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(CmdError::Spawn { command: self.display(), where_: self.where_(), source: e }),
            }
        };
        let stdout = stdout_reader.join().unwrap_or_default();
        let stderr = stderr_reader.join().unwrap_or_default();
        if status.success() {
            Ok(Output { stdout })
        } else {
            Err(CmdError::Failed { command: self.display(), where_: self.where_(), status: status.to_string(), stderr_tail: tail(&stderr, 20), stdout })
        }
    }

    /// Runs and returns stdout.
    pub fn stdout(&self) -> Result<String, CmdError> {
        self.run().map(|output| output.stdout)
    }
}

fn read_in_background(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// The last `lines` lines of `text`, trimmed.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
