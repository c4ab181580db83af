//! A Sumo Logic HTTP source stand-in for the lab: the documented ingestion API
//! (`POST /receiver/v1/http/<token>`), storing what it receives so tests and
//! `nixstack lab qps` can query it. It never talks to the real Sumo Logic.

mod formats;
mod http;
pub mod rate;
mod store;

pub use formats::{MetricsFormat, Sample};
pub use store::{Payload, Record, Store, DEFAULT_RETENTION_SECONDS};

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flate2::read::{GzDecoder, ZlibDecoder};

use http::{Request, Response};

/// Upper bound of one request body, decompressed; Sumo Logic documents 1 MB per request
/// as the recommended maximum, we allow more to stay lenient but bounded.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// The receiver: one token, one store.
pub struct Receiver {
    pub token: String,
    pub store: Arc<Store>,
}

impl Receiver {
    pub fn new(token: impl Into<String>) -> Self {
        Receiver { token: token.into(), store: Arc::new(Store::default()) }
    }

    /// Serves connections until the listener fails; one thread per connection.
    pub fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        for stream in listener.incoming() {
            let stream = stream?;
            let receiver = Arc::clone(&self);
            std::thread::spawn(move || {
                let _ = receiver.connection(stream);
            });
        }
        Ok(())
    }

    fn connection(&self, stream: TcpStream) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut writer = stream.try_clone()?;
        let mut reader = BufReader::new(stream);
        loop {
            let request = match http::read_request(&mut reader, MAX_BODY) {
                Ok(Some(request)) => request,
                Ok(None) => return Ok(()),
                Err(error) => {
                    let _ = Response::text(400, &error).write(&mut writer, false);
                    return Ok(());
                }
            };
            let keep_alive = request.keep_alive();
            self.handle(&request).write(&mut writer, keep_alive)?;
            writer.flush()?;
            if !keep_alive {
                return Ok(());
            }
        }
    }

    /// Routes one request.
    pub fn handle(&self, request: &Request) -> Response {
        let path = request.path.split('?').next().unwrap_or("");
        match (request.method.as_str(), path) {
            ("POST", p) if p.starts_with("/receiver/v1/http/") => {
                self.ingest(request, &p["/receiver/v1/http/".len()..])
            }
            ("GET", "/api/records") => Response::json(200, &self.store.query(&http::query(&request.path))),
            ("GET", "/api/sources") => Response::json(200, &self.store.sources()),
            ("GET", "/healthz") => Response::text(200, "ok"),
            (_, p) if p.starts_with("/receiver/v1/http/") => Response::text(405, "use POST"),
            _ => Response::text(404, "not found"),
        }
    }

    fn ingest(&self, request: &Request, token: &str) -> Response {
        // Sumo Logic answers an unknown collector token with 401.
        if !constant_time_eq(token.as_bytes(), self.token.as_bytes()) {
            return Response::text(401, "invalid token");
        }
        let body = match decode(request.header("content-encoding"), &request.body) {
            Ok(body) => body,
            Err(error) => return Response::text(400, &error),
        };
        let Ok(text) = String::from_utf8(body) else {
            return Response::text(400, "body is not UTF-8");
        };
        let payload = match request.header("content-type").and_then(MetricsFormat::from_content_type) {
            Some(format) => match format.parse(&text) {
                Ok(samples) => Payload::Metrics { format, samples },
                Err(error) => return Response::text(400, &error),
            },
            None => Payload::Logs { lines: text.lines().map(str::to_string).collect() },
        };
        let received_at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        self.store.push(Record {
            received_at,
            category: request.header("x-sumo-category").map(str::to_string),
            host: request.header("x-sumo-host").map(str::to_string),
            name: request.header("x-sumo-name").map(str::to_string),
            payload,
        });
        Response::text(200, "")
    }
}

fn decode(encoding: Option<&str>, body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let result = match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("identity") => return Ok(body.to_vec()),
        Some("gzip") => GzDecoder::new(body).take(MAX_BODY as u64 + 1).read_to_end(&mut out),
        Some("deflate") => ZlibDecoder::new(body).take(MAX_BODY as u64 + 1).read_to_end(&mut out),
        Some(other) => return Err(format!("unsupported Content-Encoding `{other}` (gzip, deflate or none)")),
    };
    result.map_err(|e| format!("cannot decompress body: {e}"))?;
    if out.len() > MAX_BODY {
        return Err("decompressed body too large".into());
    }
    Ok(out)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `nixstack sumologic-standin`: serve on `listen` with the token read from `token_file`
/// (the last path segment of the endpoint URL in the secret).
pub fn standin_command(listen: &str, token_file: &std::path::Path) -> anyhow::Result<i32> {
    use anyhow::Context;
    let secret =
        std::fs::read_to_string(token_file).with_context(|| format!("cannot read {}", token_file.display()))?;
    let token = secret.trim().rsplit('/').next().unwrap_or_default().to_string();
    anyhow::ensure!(!token.is_empty(), "{} holds no endpoint token", token_file.display());
    let listener = TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("nixstack: sumologic stand-in listening on {listen}");
    Arc::new(Receiver::new(token)).serve(listener)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{GzEncoder, ZlibEncoder};
    use flate2::Compression;

    fn post(token: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Request {
        Request {
            method: "POST".into(),
            path: format!("/receiver/v1/http/{token}"),
            headers: headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())).collect(),
            body,
            version: "HTTP/1.1".into(),
        }
    }

    #[test]
    fn wrong_token_is_401_and_stores_nothing() {
        let receiver = Receiver::new("secret-token");
        let response = receiver.handle(&post("guess", &[], b"hello".to_vec()));
        assert_eq!(response.status, 401);
        assert!(receiver.store.is_empty());
    }

    #[test]
    fn gzip_carbon2_with_sumo_headers_is_stored() {
        let receiver = Receiver::new("t");
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(b"metric=nginx_requests host=web1  x=y 10 1700000000\n").unwrap();
        let request = post(
            "t",
            &[
                ("Content-Type", "application/vnd.sumologic.carbon2"),
                ("Content-Encoding", "gzip"),
                ("X-Sumo-Category", "shop/web"),
                ("X-Sumo-Host", "web1"),
                ("X-Sumo-Name", "collectd"),
            ],
            gz.finish().unwrap(),
        );
        assert_eq!(receiver.handle(&request).status, 200);
        let records = receiver
            .store
            .query(&[("host".into(), "web1".into()), ("category".into(), "shop/web".into())].into_iter().collect());
        assert_eq!(records.len(), 1);
        match &records[0].payload {
            Payload::Metrics { samples, .. } => assert_eq!(samples[0].value, 10.0),
            other => panic!("expected metrics, got {other:?}"),
        }
    }

    #[test]
    fn deflate_logs_are_lines() {
        let receiver = Receiver::new("t");
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(b"GET / 200\nGET /x 404\n").unwrap();
        let request =
            post("t", &[("Content-Encoding", "deflate"), ("Content-Type", "text/plain")], z.finish().unwrap());
        assert_eq!(receiver.handle(&request).status, 200);
        let records = receiver.store.query(&Default::default());
        assert!(matches!(&records[0].payload, Payload::Logs { lines } if lines.len() == 2));
    }

    #[test]
    fn malformed_metrics_and_bad_encoding_are_400() {
        let receiver = Receiver::new("t");
        let bad = post("t", &[("Content-Type", "application/vnd.sumologic.graphite")], b"not graphite".to_vec());
        assert_eq!(receiver.handle(&bad).status, 400);
        let bad_gzip = post("t", &[("Content-Encoding", "gzip")], b"plain".to_vec());
        assert_eq!(receiver.handle(&bad_gzip).status, 400);
        assert!(receiver.store.is_empty());
    }
}
