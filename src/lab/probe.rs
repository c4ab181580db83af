//! Probes the lab with real clients from inside its namespaces: TCP connects (in-process,
//! after entering the namespace), HTTP(S) requests with curl, SQL with the mariadb client.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::Serialize;

use super::cmd::Cmd;
use super::netns;
use crate::stack::scenario::Connect;

/// One TCP connect from inside `netns`.
pub fn tcp_connect(netns: &str, address: impl Into<std::net::IpAddr>, port: u16, timeout: Duration) -> Result<Connect> {
    let target = SocketAddr::from((address.into(), port));
    netns::run_in(netns, || classify(TcpStream::connect_timeout(&target, timeout)))
}

/// TCP connects from inside `netns` to every target at once (one thread each), so a
/// matrix of filtered ports costs one timeout, not one per cell. Same order as `targets`.
pub fn tcp_connect_many(netns: &str, targets: &[(Ipv4Addr, u16)], timeout: Duration) -> Result<Vec<Connect>> {
    netns::run_in(netns, || {
        std::thread::scope(|scope| {
            let handles: Vec<_> = targets
                .iter()
                .map(|(address, port)| {
                    let target = SocketAddr::from((*address, *port));
                    scope.spawn(move || classify(TcpStream::connect_timeout(&target, timeout)))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(Connect::Filtered)).collect()
        })
    })
}

fn classify(result: std::io::Result<TcpStream>) -> Connect {
    match result {
        Ok(_) => Connect::Open,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Connect::Refused,
        Err(_) => Connect::Filtered,
    }
}

/// Reads the first bytes a TCP server sends (an SSH banner) from inside `netns`.
pub fn tcp_banner(netns: &str, address: Ipv4Addr, port: u16, timeout: Duration) -> Result<String> {
    netns::run_in(netns, || -> Result<String> {
        let mut stream = TcpStream::connect_timeout(&SocketAddr::from((address, port)), timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        let mut buffer = [0u8; 64];
        let n = stream.read(&mut buffer)?;
        Ok(String::from_utf8_lossy(&buffer[..n]).trim().to_string())
    })?
}

/// An HTTP request made with curl.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub url: String,
    /// Verify the server against this CA (else no TLS verification is asked for: plain HTTP).
    pub cacert: Option<PathBuf>,
    /// `--resolve host:port:address`, to reach a name at a lab address.
    pub resolve: Option<(String, u16, std::net::IpAddr)>,
    pub timeout: Duration,
    /// Extra curl arguments.
    pub extra: Vec<String>,
}

impl Request {
    pub fn get(url: impl Into<String>) -> Self {
        Request { url: url.into(), timeout: Duration::from_secs(3), ..Request::default() }
    }

    pub fn cacert(mut self, path: impl AsRef<Path>) -> Self {
        self.cacert = Some(path.as_ref().to_path_buf());
        self
    }

    pub fn resolve(mut self, name: &str, port: u16, address: impl Into<std::net::IpAddr>) -> Self {
        self.resolve = Some((name.into(), port, address.into()));
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra.push(arg.into());
        self
    }

    /// curl's arguments (without the program).
    pub fn curl_args(&self) -> Vec<String> {
        let mut args = vec![
            "--silent".into(),
            "--show-error".into(),
            "--include".into(),
            "--max-time".into(),
            format!("{:.1}", self.timeout.as_secs_f64()),
        ];
        args.extend(["--connect-timeout".into(), format!("{:.1}", self.timeout.as_secs_f64().min(2.0))]);
        if let Some(cacert) = &self.cacert {
            args.extend(["--cacert".into(), cacert.display().to_string()]);
        }
        if let Some((name, port, address)) = &self.resolve {
            // curl takes an IPv6 address in brackets.
            let address = match address {
                std::net::IpAddr::V4(v4) => v4.to_string(),
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            };
            args.extend(["--resolve".into(), format!("{name}:{port}:{address}")]);
        }
        args.extend(self.extra.iter().cloned());
        args.push(self.url.clone());
        args
    }

    /// Runs the request from inside `netns`.
    pub fn send(&self, netns: &str) -> Result<Response> {
        let output = Cmd::new("curl")
            .args(self.curl_args())
            .netns(netns)
            .timeout(self.timeout + Duration::from_secs(2))
            .run()?;
        Response::parse(&output.stdout)
    }
}

/// An HTTP response: status, headers (lower-case names), body.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Response {
    /// Parses curl `--include` output (the last header block wins, after redirects or 100s).
    pub fn parse(text: &str) -> Result<Response> {
        let mut rest = text;
        loop {
            let Some((head, body)) = rest.split_once("\r\n\r\n") else { bail!("no HTTP response in {text:?}") };
            let mut lines = head.lines();
            let status_line = lines.next().unwrap_or_default();
            let status: u16 = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            if status == 0 {
                bail!("not an HTTP status line: {status_line:?}");
            }
            if (100..200).contains(&status) && body.starts_with("HTTP/") {
                rest = body;
                continue;
            }
            let headers = lines
                .filter_map(|line| line.split_once(':'))
                .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
                .collect();
            return Ok(Response { status, headers, body: body.to_string() });
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// What the demo app's page says served the request (`served-by web=.. app=.. db=.. row=..`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ServedBy {
    pub web: String,
    pub app: String,
    pub db: String,
    pub row: u64,
}

impl ServedBy {
    pub fn parse(body: &str) -> Option<ServedBy> {
        let line = body.lines().find_map(|line| line.split_once("served-by ").map(|(_, rest)| rest))?;
        let line = line.split('<').next().unwrap_or(line);
        let mut served = ServedBy::default();
        for pair in line.split_whitespace() {
            match pair.split_once('=') {
                Some(("web", v)) => served.web = v.into(),
                Some(("app", v)) => served.app = v.into(),
                Some(("db", v)) => served.db = v.into(),
                Some(("row", v)) => served.row = v.parse().ok()?,
                _ => {}
            }
        }
        (!served.app.is_empty() && !served.db.is_empty()).then_some(served)
    }
}

/// Runs SQL as root through the unix socket of a database node (`mariadb --batch`); the
/// statements go through stdin, never the command line.
pub fn sql(socket: &Path, statements: &str, timeout: Duration) -> Result<String> {
    let output = Cmd::new("mariadb")
        .args(["--no-defaults", "--user=root", "--batch", "--skip-column-names", "--connect-timeout=2"])
        .arg(format!("--socket={}", socket.display()))
        .stdin(statements)
        .timeout(timeout)
        .run()?;
    Ok(output.stdout)
}

/// `SHOW STATUS` values of a node, e.g. `wsrep_local_state_comment`.
pub fn wsrep_status(socket: &Path) -> Result<BTreeMap<String, String>> {
    let text = sql(socket, "SHOW GLOBAL STATUS LIKE 'wsrep_%';", Duration::from_secs(5))?;
    Ok(text.lines().filter_map(|l| l.split_once('\t')).map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

/// Polls `check` every `interval` until it returns `Ok(Some(value))` or `deadline` passes;
/// the error of the last attempt explains a timeout.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("never answered");
    loop {
        match check() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() >= deadline {
            bail!("{what}: not ready after {:.0}s (last: {last})", timeout.as_secs_f64());
        }
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_curl_include_output_and_skips_interim_responses() {
        let text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/2 200 \r\nx-served-by: web2\r\ncontent-type: text/html\r\n\r\n<p id=\"served\">served-by web=10.10.0.22 app=app1 db=db3 row=17</p>\n";
        let response = Response::parse(text).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.header("X-Served-By"), Some("web2"));
        let served = ServedBy::parse(&response.body).unwrap();
        assert_eq!(served, ServedBy { web: "10.10.0.22".into(), app: "app1".into(), db: "db3".into(), row: 17 });
    }

    #[test]
    fn a_page_without_the_served_line_is_not_the_app() {
        assert_eq!(ServedBy::parse("<h1>Welcome to nginx</h1>"), None);
        assert!(Response::parse("garbage").is_err());
    }
}
