//! nginx.conf of a host that runs nginx. On a web host: one listener for the load balancers
//! (TLS with the internal CA when `tls.internal`, plain HTTP otherwise, never both), a health
//! answer that does not depend on the app, the static root, the app upstream with keepalive
//! and verified re-encryption, and `stub_status` on loopback. On an app host with internal
//! TLS: the app hop's TLS terminator, which proxies to the plain-HTTP app on loopback (a host
//! with both roles gets both servers in one file).
//!
//! The same text is the lab's nginx.conf and NixOS's `services.nginx.config`. That NixOS
//! option is not the whole file: the module writes `pid /run/nginx/nginx.pid;`,
//! `error_log stderr;` and `daemon off;` in front of it, and nginx rejects a second `pid`
//! or `daemon`. So the NixOS layout renders no `pid` (the lab's does), neither renders
//! `daemon` (a supervising lab passes `-g 'daemon off;'`), and neither renders `user`
//! (NixOS starts nginx as its `nginx` user already; the root-run lab keeps the
//! compiled-in worker user, `nobody` on Debian, which must be able to read the web root).
//!
//! Every path is absolute, so the `-p` prefix does not matter; the lab runs
//! `nginx -c <etc>/nginx.conf -p <root>/<host>/ -e stderr` (`-e` keeps nginx's very first
//! log lines off the machine's /var/log) after creating [`required_dirs`]. Only a host
//! [`crate::stack::runs_nginx`] names should get this file.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::render::{tls, Layout, LayoutKind};
use crate::topology::{Host, Topology};

/// Name of the upstream block holding every app backend.
const APP_UPSTREAM: &str = "app";

/// The app backends again, without kept-alive connections (non-idempotent requests).
const APP_UPSTREAM_NO_REUSE: &str = "app_no_reuse";

/// The methods nginx treats as non-idempotent: never passed to another upstream server once
/// sent to one (ngx_http_upstream_next, unless `proxy_next_upstream non_idempotent`).
const NON_IDEMPOTENT_METHODS: [&str; 3] = ["POST", "PATCH", "LOCK"];

/// Path of the `stub_status` page on the loopback status server (the NixOS `statusPage`
/// and the Prometheus nginx exporter use the same path).
pub const STATUS_PATH: &str = "/nginx_status";

/// Health path when the stack has no load balancer tier to say one.
const DEFAULT_HEALTH_PATH: &str = "/health";

/// Name under which nginx verifies every app backend's certificate. nginx checks one name
/// per upstream block (with `X509_check_host`, which matches DNS names only, never IP
/// SANs), so all app hosts must carry one shared DNS SAN: `app.<stack>.internal`.
pub fn app_tls_name(topology: &Topology) -> String {
    format!("app.{}.internal", topology.stack.name)
}

/// Directory of nginx's temporary files (request bodies, buffered upstream responses).
/// NixOS runs nginx under `ProtectSystem=strict`, where only its `CacheDirectory`,
/// `LogsDirectory` and `RuntimeDirectory` are writable; the cache directory is the one
/// on disk. In the lab each host keeps them in its own state directory.
pub fn temp_dir(layout: &Layout) -> PathBuf {
    match layout.kind {
        LayoutKind::Nixos => PathBuf::from("/var/cache/nginx"),
        LayoutKind::Lab => layout.state.join("nginx"),
    }
}

/// Directory of nginx's error and access logs (NixOS: the unit's `LogsDirectory`).
pub fn log_dir(layout: &Layout) -> PathBuf {
    layout.log.join("nginx")
}

/// The directories nginx needs to exist before `nginx -t` or a start: temp and log, and
/// in the lab the unit's RuntimeDirectory (systemd makes it on NixOS) for the pid file.
/// (nginx creates the temp subdirectories itself, one level deep.)
pub fn required_dirs(layout: &Layout) -> Vec<PathBuf> {
    let mut dirs = vec![temp_dir(layout), log_dir(layout)];
    if layout.kind == LayoutKind::Lab {
        dirs.push(layout.translate("/run/nginx"));
    }
    dirs
}

/// The complete nginx.conf of `host`.
pub fn render(topology: &Topology, host: &Host, layout: &Layout) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# nginx.conf of {}, rendered by nixstack from the stack spec; edit the spec, not this file.",
        host.name
    );
    // NixOS's module writes pid, error_log stderr and daemon off in front of
    // services.nginx.config; the lab runs the file as the module installs it.
    out.push_str("# Installed as services.nginx.config: NixOS puts pid, error_log stderr and daemon off in front.\n");
    out.push_str("worker_processes auto;\n");
    out.push_str("worker_rlimit_nofile 8192;\n");
    out.push_str("# Lets a reload finish in-flight requests but never hang on a stuck client.\n");
    out.push_str("worker_shutdown_timeout 10s;\n");
    let logs = log_dir(layout);
    let _ = writeln!(out, "error_log {} warn;", logs.join("error.log").display());
    out.push_str("\nevents {\n    worker_connections 4096;\n}\n\n");

    out.push_str("http {\n");
    http_common(&mut out, layout);

    let web = topology.web.as_ref().filter(|_| host.has(crate::spec::Role::Web));
    let upstream = web.filter(|web| web.proxy_app && !web.app_upstream.is_empty());
    if let Some(web) = upstream {
        if web.full_mesh() {
            out.push_str("\n    # Every app backend; a failed one rests 2s, then gets a request again.\n");
        } else {
            let _ = writeln!(out, "\n    # This host's {} of the {} app backends (the app tier is split among the web hosts); a failed one rests 2s.", crate::topology::APP_UPSTREAM_SUBSET, web.app_upstream.len());
        }
        let _ = writeln!(out, "    upstream {APP_UPSTREAM} {{");
        let servers = |out: &mut String| {
            for backend in web.upstream_of(&host.name) {
                let _ = writeln!(
                    out,
                    "        server {}:{} max_fails=1 fail_timeout=2s;  # {}",
                    backend.address, backend.port, backend.host
                );
            }
        };
        servers(&mut out);
        out.push_str("        keepalive 32;\n");
        out.push_str("        keepalive_timeout 60s;\n");
        out.push_str("    }\n");
        out.push_str("\n    # The same backends without kept-alive connections, for the requests nginx never passes\n");
        out.push_str("    # on once one reached an app (POST, PATCH, LOCK): a reused connection the app host\n");
        out.push_str("    # closes as it restarts would fail such a request; a new one is refused instead, and\n");
        out.push_str("    # nginx passes the request to another app host before sending it.\n");
        let _ = writeln!(out, "    upstream {APP_UPSTREAM_NO_REUSE} {{");
        servers(&mut out);
        out.push_str("    }\n");
        out.push_str("    map $request_method $app_upstream {\n");
        let _ = writeln!(out, "        default {APP_UPSTREAM};");
        for method in NON_IDEMPOTENT_METHODS {
            let _ = writeln!(out, "        {method} {APP_UPSTREAM_NO_REUSE};");
        }
        out.push_str("    }\n");
    }

    if web.is_some() {
        site_server(&mut out, topology, host, layout, upstream.is_some());
        status_server(&mut out, topology);
    }
    if crate::stack::terminates_app_tls(topology, host) {
        app_terminator(&mut out, topology, host, layout);
    }
    out.push_str("}\n");
    out
}

/// Name of the upstream block of the app on loopback, behind the terminator.
const LOCAL_APP_UPSTREAM: &str = "app_on_loopback";

/// The app hop on an app host: TLS from the web tier ends here, with the same certificate and
/// Mozilla settings as every internal listener, and the plain-HTTP app answers on loopback.
/// The web tier's forwarding headers pass unchanged (nginx keeps request headers it does not
/// set); a request the app cannot take fails fast with 502, which sends an idempotent request
/// to another app host (the web tier's `proxy_next_upstream`).
fn app_terminator(out: &mut String, topology: &Topology, host: &Host, layout: &Layout) {
    let Some(app) = &topology.app else { return };
    let Some((address, port)) = crate::stack::app::listen(topology, host) else { return };
    out.push_str("\n    # The app itself, plain HTTP on loopback, a new connection per request: an app closes an\n");
    out.push_str("    # idle kept-alive connection when it likes (gunicorn after 2s, uvicorn 5s, any app as it\n");
    out.push_str("    # stops), and a request nginx just sent on it would fail; on loopback a connection is cheap.\n");
    let _ = writeln!(out, "    upstream {LOCAL_APP_UPSTREAM} {{");
    // max_fails=0: the only server is never marked down, so a restarted app is used at once.
    let _ = writeln!(out, "        server {address}:{port} max_fails=0;");
    out.push_str("    }\n");
    out.push_str("\n    # The app hop: the web tier's TLS ends here (internal CA), never plaintext off the host.\n");
    out.push_str("    server {\n");
    let _ = writeln!(out, "        listen {}:{} ssl;", host.address, app.port);
    let _ = writeln!(
        out,
        "        server_name {} {} {}.{}.internal;",
        app_tls_name(topology),
        host.name,
        host.name,
        topology.stack.name
    );
    server_tls(out, layout);
    let _ = writeln!(out, "        add_header X-App-Host {} always;", host.name);
    out.push_str("        location / {\n");
    let _ = writeln!(out, "            proxy_pass http://{LOCAL_APP_UPSTREAM};");
    out.push_str("            proxy_http_version 1.1;\n");
    out.push_str("            proxy_set_header Connection close;\n");
    out.push_str("            proxy_set_header Host $host;\n");
    out.push_str("            # The web host that sent it, appended: the app's last hop.\n");
    out.push_str("            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n");
    out.push_str("            proxy_connect_timeout 1s;\n");
    out.push_str("            proxy_send_timeout 30s;\n");
    out.push_str("            proxy_read_timeout 30s;\n");
    out.push_str("            # One app behind: nothing to retry here; the web tier picks another app host.\n");
    out.push_str("            proxy_next_upstream off;\n");
    out.push_str("        }\n");
    out.push_str("    }\n");
}

/// Certificate, key and the Mozilla intermediate settings of an internal TLS listener.
fn server_tls(out: &mut String, layout: &Layout) {
    let _ = writeln!(out, "        ssl_certificate {};", layout.host_cert().display());
    let _ = writeln!(out, "        ssl_certificate_key {};", layout.host_key().display());
    let _ = writeln!(out, "        # Mozilla intermediate (Server Side TLS {}).", tls::version());
    let _ = writeln!(out, "        ssl_protocols {};", tls::versions(" "));
    let _ = writeln!(out, "        ssl_ciphers {};", tls::openssl_ciphers());
    // TLS 1.3 suites are not `ssl_ciphers`'; nginx 1.19.4+ passes them to OpenSSL this way.
    let _ = writeln!(out, "        ssl_conf_command Ciphersuites {};", tls::ciphersuites());
    let _ = writeln!(out, "        ssl_ecdh_curve {};", tls::groups());
    out.push_str("        ssl_prefer_server_ciphers off;\n");
    out.push_str("        ssl_session_cache shared:TLS:10m;\n");
    out.push_str("        ssl_session_timeout 1d;\n");
    out.push_str("        ssl_session_tickets off;\n");
}

/// Types, timeouts, temp paths and the access log format: everything outside the servers.
fn http_common(out: &mut String, layout: &Layout) {
    // Inline MIME types: the rendered file must not name a store path or a distribution's
    // mime.types, and a static root of a web app needs only these.
    out.push_str("    types {\n");
    for (mime, extensions) in MIME_TYPES {
        let _ = writeln!(out, "        {mime} {extensions};");
    }
    out.push_str("    }\n");
    out.push_str("    default_type application/octet-stream;\n\n");

    out.push_str("    server_tokens off;\n");
    out.push_str("    sendfile on;\n");
    out.push_str("    tcp_nopush on;\n");
    out.push_str("    keepalive_timeout 65s;\n");
    out.push_str("    keepalive_requests 1000;\n");
    out.push_str("    client_max_body_size 10m;\n\n");

    let temp = temp_dir(layout);
    for (directive, dir) in [
        ("client_body_temp_path", "client_body"),
        ("proxy_temp_path", "proxy"),
        ("fastcgi_temp_path", "fastcgi"),
        ("uwsgi_temp_path", "uwsgi"),
        ("scgi_temp_path", "scgi"),
    ] {
        let _ = writeln!(out, "    {directive} {};", temp.join(dir).display());
    }

    out.push_str("\n    # Combined format plus the forwarded client, the upstream that answered and how long\n");
    out.push_str("    # connecting, the first byte and the whole answer took (\"-\" when served locally).\n");
    out.push_str("    log_format upstream_timing '$remote_addr - $remote_user [$time_local] \"$request\" '\n");
    out.push_str("        '$status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" '\n");
    out.push_str("        'xff=\"$http_x_forwarded_for\" rt=$request_time upstream=$upstream_addr '\n");
    out.push_str("        'ustatus=$upstream_status uct=$upstream_connect_time uht=$upstream_header_time '\n");
    out.push_str("        'urt=$upstream_response_time';\n");
    let _ = writeln!(out, "    access_log {} upstream_timing;", log_dir(layout).join("access.log").display());

    out.push_str("\n    # The load balancer says how the client came in; a request without it came straight here.\n");
    out.push_str("    map $http_x_forwarded_proto $forwarded_proto {\n");
    out.push_str("        default $http_x_forwarded_proto;\n");
    out.push_str("        \"\" $scheme;\n");
    out.push_str("    }\n");
}

/// The server the load balancers reach: health, static files, the app.
fn site_server(out: &mut String, topology: &Topology, host: &Host, layout: &Layout, proxy_app: bool) {
    let tls = topology.internal_tls;
    let (port, root) = match &topology.web {
        Some(web) => (web.port, web.root.clone()),
        None => (if tls { 443 } else { 80 }, String::from("/var/www")),
    };
    let root = layout.web_root.as_ref().map(|path| path.display().to_string()).unwrap_or(root);
    let health_path = topology.lb.as_ref().map_or(DEFAULT_HEALTH_PATH, |lb| lb.health_path.as_str());

    out.push_str("\n    server {\n");
    if tls {
        out.push_str("        # TLS only: the load balancers verify this certificate against the internal CA,\n");
        out.push_str("        # and no plaintext port is open beside it.\n");
        let _ = writeln!(out, "        listen {}:{port} ssl default_server;", host.address);
    } else {
        out.push_str("        # Plain HTTP: the spec turned internal TLS off.\n");
        let _ = writeln!(out, "        listen {}:{port} default_server;", host.address);
    }
    let _ = writeln!(
        out,
        "        server_name {} {} {}.{}.internal;",
        topology.stack.domain, host.name, host.name, topology.stack.name
    );
    if tls {
        server_tls(out, layout);
    }
    out.push_str("\n        # Which web node answered, also on errors: the first question when one misbehaves.\n");
    let _ = writeln!(out, "        add_header X-Served-By {} always;", host.name);
    let _ = writeln!(out, "        root {root};");

    out.push_str("\n        # The load balancers' health check, answered by nginx itself: a database or app\n");
    out.push_str("        # blip must not take every web node out of the load balancer at once.\n");
    let _ = writeln!(out, "        location = {health_path} {{");
    out.push_str("            access_log off;\n");
    out.push_str("            default_type text/plain;\n");
    out.push_str("            return 200 \"ok\\n\";\n");
    out.push_str("        }\n");

    if topology.web.as_ref().is_some_and(|web| web.static_package.is_some()) {
        static_locations(out, host, layout, proxy_app);
    } else {
        out.push_str("\n        location / {\n");
        if proxy_app {
            out.push_str("            # Static files win; a directory serves its index.html; the rest is the app's.\n");
            out.push_str("            try_files $uri $uri/index.html @app;\n");
        } else {
            out.push_str("            try_files $uri $uri/index.html =404;\n");
        }
        out.push_str("        }\n");
    }

    if proxy_app {
        app_location(out, topology, layout);
    }
    out.push_str("    }\n");
}

/// The URL prefix of fingerprinted assets: a file under it is named by its content (a hash in
/// its name, as Vite, Rails, Phoenix and webpack emit them under `assets/`), so it never
/// changes and may be cached for a year.
pub const FINGERPRINTED_PREFIX: &str = "/assets/";

/// `Cache-Control` of a fingerprinted asset.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `[web] static`: the package's files straight from the store (through the layout's static
/// link), the rest to the app. Store files all carry the mtime 1 (Nix canonicalises it), so
/// nginx's validators (`Last-Modified` 1970, an `ETag` of mtime and size) would call a
/// changed file of the same size unchanged: a file outside the fingerprinted prefix is
/// served without them (`etag off`, `if_modified_since off`) and `Cache-Control: no-cache`.
fn static_locations(out: &mut String, host: &Host, layout: &Layout, proxy_app: bool) {
    let root = layout.static_root();
    let served_by = format!("            add_header X-Served-By {} always;\n", host.name);
    let _ = writeln!(out, "\n        # [web] static: fingerprinted files under {FINGERPRINTED_PREFIX} never change, so clients keep them a year.");
    let _ = writeln!(out, "        location {FINGERPRINTED_PREFIX} {{");
    let _ = writeln!(out, "            root {};", root.display());
    out.push_str("            # A location's add_header replaces the server's: the node header again.\n");
    out.push_str(&served_by);
    let _ = writeln!(out, "            add_header Cache-Control \"{IMMUTABLE}\" always;");
    out.push_str("            # An asset the package does not hold is a 404 here, never a request to the app.\n");
    out.push_str("            try_files $uri =404;\n");
    out.push_str("        }\n");
    out.push_str("\n        # Other files of the package (robots.txt, favicon.ico) revalidate every time: the\n");
    out.push_str("        # store's mtime (1) makes nginx's Last-Modified and ETag meaningless.\n");
    out.push_str("        location / {\n");
    let _ = writeln!(out, "            root {};", root.display());
    out.push_str("            etag off;\n");
    out.push_str("            if_modified_since off;\n");
    if proxy_app {
        out.push_str("            # The package's file when it has one; every other path is the app's.\n");
        out.push_str("            try_files $uri @app;\n");
    } else {
        out.push_str("            try_files $uri =404;\n");
    }
    out.push_str(&served_by);
    out.push_str("            add_header Cache-Control \"no-cache\" always;\n");
    out.push_str("        }\n");
}

/// The named location that proxies to the app upstream.
fn app_location(out: &mut String, topology: &Topology, layout: &Layout) {
    let tls = topology.internal_tls;
    out.push_str("\n        location @app {\n");
    out.push_str("            # The kept-alive pool, or for a POST new connections ($app_upstream, above).\n");
    let _ = writeln!(out, "            proxy_pass {}://$app_upstream;", if tls { "https" } else { "http" });
    out.push_str("            # HTTP/1.1 without a Connection header, so the upstream keepalive pool is used.\n");
    out.push_str("            proxy_http_version 1.1;\n");
    out.push_str("            proxy_set_header Connection \"\";\n");
    out.push_str("            proxy_set_header Host $host;\n");
    out.push_str("            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n");
    out.push_str("            proxy_set_header X-Forwarded-Proto $forwarded_proto;\n");
    out.push_str("            proxy_set_header X-Forwarded-Host $host;\n");
    out.push_str("            proxy_connect_timeout 2s;\n");
    out.push_str("            proxy_send_timeout 30s;\n");
    out.push_str("            proxy_read_timeout 30s;\n");
    out.push_str("            # Another app node takes over a failed or overloaded one; nginx never retries a\n");
    out.push_str("            # non-idempotent request that already reached an app.\n");
    out.push_str("            proxy_next_upstream error timeout http_502 http_503;\n");
    out.push_str("            proxy_next_upstream_tries 3;\n");
    out.push_str("            proxy_next_upstream_timeout 10s;\n");
    if tls {
        let _ = writeln!(
            out,
            "            # Re-encrypted and verified: an app's certificate must chain to the internal CA and\n            # carry the app tier's shared name {} (nginx checks one name per upstream).",
            app_tls_name(topology)
        );
        out.push_str("            proxy_ssl_verify on;\n");
        out.push_str("            proxy_ssl_verify_depth 2;\n");
        let _ = writeln!(out, "            proxy_ssl_trusted_certificate {};", layout.ca_cert().display());
        let _ = writeln!(out, "            proxy_ssl_name {};", app_tls_name(topology));
        out.push_str("            proxy_ssl_server_name on;\n");
        let _ = writeln!(out, "            proxy_ssl_protocols {};", tls::versions(" "));
        out.push_str("            proxy_ssl_session_reuse on;\n");
        out.push_str("            # The host's own certificate, for apps that want to verify their client.\n");
        let _ = writeln!(out, "            proxy_ssl_certificate {};", layout.host_cert().display());
        let _ = writeln!(out, "            proxy_ssl_certificate_key {};", layout.host_key().display());
    }
    out.push_str("        }\n");
}

/// `stub_status` for the monitoring collector: loopback address, loopback clients.
fn status_server(out: &mut String, topology: &Topology) {
    let Some(web) = &topology.web else { return };
    out.push_str("\n    # Request and connection counters for the monitoring collector (web QPS); loopback only.\n");
    out.push_str("    server {\n");
    let _ = writeln!(out, "        listen 127.0.0.1:{};", web.status_port);
    out.push_str("        server_name localhost;\n");
    out.push_str("        access_log off;\n");
    let _ = writeln!(out, "        location = {STATUS_PATH} {{");
    out.push_str("            stub_status;\n");
    out.push_str("            allow 127.0.0.1;\n");
    out.push_str("            deny all;\n");
    out.push_str("        }\n");
    out.push_str("        location / {\n");
    out.push_str("            return 404;\n");
    out.push_str("        }\n");
    out.push_str("    }\n");
}

/// MIME types of the files a web app's static root holds.
const MIME_TYPES: &[(&str, &str)] = &[
    ("text/html", "html htm"),
    ("text/css", "css"),
    ("text/javascript", "js mjs"),
    ("text/plain", "txt"),
    ("text/xml", "xml"),
    ("text/csv", "csv"),
    ("application/json", "json map"),
    ("application/manifest+json", "webmanifest"),
    ("application/pdf", "pdf"),
    ("application/wasm", "wasm"),
    ("application/zip", "zip"),
    ("image/avif", "avif"),
    ("image/gif", "gif"),
    ("image/jpeg", "jpg jpeg"),
    ("image/png", "png"),
    ("image/svg+xml", "svg svgz"),
    ("image/vnd.microsoft.icon", "ico"),
    ("image/webp", "webp"),
    ("font/woff", "woff"),
    ("font/woff2", "woff2"),
    ("font/ttf", "ttf"),
    ("font/otf", "otf"),
    ("audio/mpeg", "mp3"),
    ("video/mp4", "mp4"),
    ("video/webm", "webm"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SpecSource;
    use crate::topology::compile;

    fn topology(path: &str) -> Topology {
        let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        compile(&SpecSource { name: path.into(), text }).unwrap()
    }

    fn render_for(topology: &Topology, name: &str, layout: &Layout) -> String {
        render(topology, topology.host(name).unwrap(), layout)
    }

    #[test]
    fn internal_tls_listens_with_ssl_only_and_verifies_apps() {
        let topology = topology("examples/default.toml");
        let cfg = render_for(&topology, "web1", &Layout::nixos());
        let listens: Vec<&str> = cfg.lines().map(str::trim).filter(|l| l.starts_with("listen ")).collect();
        assert_eq!(listens, ["listen 10.10.0.21:443 ssl default_server;", "listen 127.0.0.1:8081;"]);
        assert!(cfg.contains("ssl_certificate /var/lib/nixstack/secrets/host.crt;"), "{cfg}");
        assert!(cfg.contains("proxy_pass https://$app_upstream;"), "{cfg}");
        // Non-idempotent requests go to the upstream without kept-alive connections.
        assert!(cfg.contains("upstream app_no_reuse {") && cfg.contains("        POST app_no_reuse;"), "{cfg}");
        let no_reuse = &cfg[cfg.find("upstream app_no_reuse {").unwrap()..];
        assert!(!no_reuse[..no_reuse.find('}').unwrap()].contains("keepalive"), "{cfg}");
        assert!(cfg.contains("proxy_ssl_verify on;"));
        assert!(cfg.contains("proxy_ssl_trusted_certificate /var/lib/nixstack/secrets/ca.crt;"));
        assert!(cfg.contains("proxy_ssl_name app.shop.internal;"));
        for app in ["10.10.0.31", "10.10.0.32", "10.10.0.33"] {
            assert!(cfg.contains(&format!("server {app}:8080 max_fails=1 fail_timeout=2s;")), "{cfg}");
        }
        // NixOS writes pid and daemon itself; a second one would fail nginx -t.
        let directive = |name: &str| cfg.lines().any(|line| line.trim_start().starts_with(&format!("{name} ")));
        assert!(!directive("pid") && !directive("daemon") && !directive("user"), "{cfg}");
        assert!(cfg.contains("client_body_temp_path /var/cache/nginx/client_body;"));
    }

    #[test]
    fn plain_http_without_internal_tls() {
        let topology = topology("examples/whiteboard.toml");
        let layout = Layout::lab("server1");
        let cfg = render_for(&topology, "server1", &layout);
        assert!(cfg.contains("listen 10.20.0.11:80 default_server;"), "{cfg}");
        assert!(!cfg.contains("ssl"), "{cfg}");
        assert!(cfg.contains("proxy_pass http://$app_upstream;"));
        assert!(
            !cfg.contains("\npid "),
            "the pid line is the nixpkgs module's prelude, added where the config is installed"
        );
        assert!(cfg.contains("root /var/lib/nixstack-lab/server1/www;"));
    }

    #[test]
    fn health_answers_without_the_app_and_status_is_loopback_only() {
        let topology = topology("examples/default.toml");
        let cfg = render_for(&topology, "web2", &Layout::nixos());
        let health = cfg.split("location = /health {").nth(1).unwrap().split('}').next().unwrap();
        assert!(health.contains("return 200"), "{health}");
        assert!(!health.contains("proxy_pass"), "{health}");
        let status = cfg.split("location = /nginx_status {").nth(1).unwrap().split('}').next().unwrap();
        assert!(status.contains("allow 127.0.0.1;") && status.contains("deny all;"), "{status}");
        assert!(cfg.contains("add_header X-Served-By web2 always;"));
    }

    #[test]
    fn deterministic() {
        let topology = topology("examples/default.toml");
        let layout = Layout::lab("web3");
        assert_eq!(render_for(&topology, "web3", &layout), render_for(&topology, "web3", &layout));
    }
}
