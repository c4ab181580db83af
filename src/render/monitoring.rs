//! Monitoring agent configs: OpenTelemetry Collector (contrib) YAML and collectd.conf, both shipping to Sumo Logic.
//!
//! Both agents collect the same things from the same model: host metrics everywhere, nginx
//! `stub_status` on web hosts (its request counter gives per-host web QPS), HAProxy stats on
//! load balancers (the LB's request counter), MariaDB/Galera status on db hosts, and logs.
//!
//! Secrets never enter the rendered files, the Nix store or a unit's environment:
//! - otelcol reads each one from a file with its `${file:…}` config provider: systemd copies
//!   the secret file into the unit's credentials directory (`LoadCredential=NAME:PATH`, read
//!   as root, so the `DynamicUser` collector needs no access to root's secrets) and the config
//!   names `/run/credentials/opentelemetry-collector.service/NAME` ([`otelcol_credentials`]
//!   says which secret file feeds which credential). The build sandbox has no such file, so
//!   nixpkgs' `validateConfigFile` (`otelcol validate` in the sandbox) cannot judge this config:
//!   modules/monitoring.nix turns it off for the collector and tests/build_checks.rs checks
//!   what that validation checks, with the credentials in place.
//! - collectd has no way to read one value from a file, and Sumo Logic's plugin rebuilds its
//!   whole configuration from each `<Module>` block, so the blocks carrying secrets (the Sumo
//!   Logic module with its URL, the MySQL credentials) live in a second file
//!   ([`collectd_secrets_template`]) with placeholders, filled from the secret files at
//!   start ([`collectd_secret_inputs`], [`fill_collectd_secrets`]) into
//!   [`collectd_secrets_path`], which the main file includes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::render::Layout;
use crate::spec::Role;
use crate::topology::{Host, Topology};

/// The OpenTelemetry Collector contrib release the config is written for; its component
/// list is `data/otelcol-contrib-components.json`.
pub const OTELCOL_CONTRIB_RELEASE: &str = "0.136.0";

// What the agents read and how they name a host are shared with the lab and the Scenario.
pub use crate::stack::monitoring::{
    haproxy_stats_url, nginx_status_url, source_category, DB_MONITOR_USER, HAPROXY_STATS_PATH, NGINX_STATUS_PATH,
};
use crate::stack::monitoring::{roles, COLLECTD_INTERVAL_LAB_SECONDS, COLLECTD_INTERVAL_NIXOS_SECONDS};

/// The HAProxy frontend that takes the site's HTTPS traffic: its request counter is the
/// LB's QPS. haproxy.cfg must name the frontend so.
pub const HAPROXY_FRONTEND: &str = "https";

/// The collector's credential holding the Sumo Logic HTTP source URL.
pub const CREDENTIAL_SUMOLOGIC_ENDPOINT: &str = "sumologic-endpoint";
/// The collector's credential holding the monitor account's MariaDB password.
pub const CREDENTIAL_DB_MONITOR_PASSWORD: &str = "db-monitor-password";
/// The collector's systemd unit, whose credentials directory the config reads.
pub const OTELCOL_UNIT: &str = "opentelemetry-collector.service";

/// Placeholders in [`collectd_secrets_template`].
pub const PLACEHOLDER_SUMOLOGIC_URL: &str = "@SUMOLOGIC_URL@";
pub const PLACEHOLDER_DB_MONITOR_PASSWORD: &str = "@DB_MONITOR_PASSWORD@";

/// nginx's access and error logs: nginx.conf must log there. On NixOS (`/var/log`) these are
/// nginx's defaults.
pub fn nginx_logs(layout: &Layout) -> [PathBuf; 2] {
    [layout.log_file("nginx/access.log"), layout.log_file("nginx/error.log")]
}

fn secret_name_db_monitor() -> String {
    format!("db-{DB_MONITOR_USER}.password")
}

// ---------------------------------------------------------------------------------------
// OpenTelemetry Collector

/// Which secret file feeds which credential (`LoadCredential=NAME:FILE`) of the collector on `host`.
pub fn otelcol_credentials(topology: &Topology, host: &Host, layout: &Layout) -> Vec<(&'static str, PathBuf)> {
    let mut credentials = Vec::new();
    if let Some(monitoring) = &topology.monitoring {
        credentials.push((CREDENTIAL_SUMOLOGIC_ENDPOINT, layout.secret(&monitoring.endpoint_secret)));
    }
    if host.has(Role::Db) {
        credentials.push((CREDENTIAL_DB_MONITOR_PASSWORD, layout.secret(&secret_name_db_monitor())));
    }
    credentials
}

/// Where systemd puts the collector's credential `name` (`$CREDENTIALS_DIRECTORY/NAME`).
pub fn otelcol_credential_path(layout: &Layout, name: &str) -> PathBuf {
    layout.run.join("credentials").join(OTELCOL_UNIT).join(name)
}

/// The config's reference to credential `name`: otelcol's file provider (`${file:PATH}`).
fn credential_reference(layout: &Layout, name: &str) -> String {
    format!("${{file:{}}}", otelcol_credential_path(layout, name).display())
}

/// The log files the collector on `host` tails (its `filelog` receiver), each with the
/// nixpkgs unit that writes it (a table of data/nixpkgs-units.toml).
pub fn otelcol_tailed_logs(host: &Host, layout: &Layout) -> Vec<(PathBuf, &'static str)> {
    if host.has(Role::Web) {
        nginx_logs(layout).into_iter().map(|path| (path, "nginx")).collect()
    } else {
        Vec::new()
    }
}

/// The groups the collector's dynamic user joins besides nixpkgs' own (`systemd-journal`): the
/// group of each unit whose logs it tails, as that unit's record names it. nginx keeps
/// `/var/log/nginx` `0750` and writes its logs `0640` (`LogsDirectoryMode`, `UMask=0027`).
pub fn otelcol_supplementary_groups(host: &Host, layout: &Layout) -> Vec<String> {
    let mut groups: Vec<String> = otelcol_tailed_logs(host, layout)
        .into_iter()
        .map(|(_, unit)| crate::stack::units::all()[unit].group.clone())
        .collect();
    groups.dedup();
    groups
}

/// The component types a host's collector config uses, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Components {
    pub receivers: Vec<String>,
    pub processors: Vec<String>,
    pub exporters: Vec<String>,
    pub extensions: Vec<String>,
}

/// A YAML node; rendered in the order built (deterministic), strings always quoted.
enum Yaml {
    Map(Vec<(String, Yaml)>),
    List(Vec<Yaml>),
    Str(String),
    Int(i64),
    Bool(bool),
}

fn map<const N: usize>(entries: [(&str, Yaml); N]) -> Yaml {
    Yaml::Map(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}
fn s(value: impl Into<String>) -> Yaml {
    Yaml::Str(value.into())
}
fn strs<I: IntoIterator<Item = S>, S: Into<String>>(values: I) -> Yaml {
    Yaml::List(values.into_iter().map(|v| Yaml::Str(v.into())).collect())
}
fn empty() -> Yaml {
    Yaml::Map(Vec::new())
}

impl Yaml {
    fn render(&self, out: &mut String, indent: usize) {
        let pad = " ".repeat(indent);
        match self {
            Yaml::Map(entries) => {
                for (key, value) in entries {
                    match value {
                        Yaml::Map(inner) if !inner.is_empty() => {
                            let _ = writeln!(out, "{pad}{key}:");
                            value.render(out, indent + 2);
                        }
                        Yaml::List(items) if !items.is_empty() => {
                            let _ = writeln!(out, "{pad}{key}:");
                            value.render(out, indent + 2);
                        }
                        _ => {
                            let _ = writeln!(out, "{pad}{key}: {}", value.scalar());
                        }
                    }
                }
            }
            Yaml::List(items) => {
                for item in items {
                    match item {
                        Yaml::Map(entries) if !entries.is_empty() => {
                            // First entry on the dash line, the rest aligned under it.
                            let mut block = String::new();
                            item.render(&mut block, indent + 2);
                            let block = block.replacen(&format!("{pad}  "), &format!("{pad}- "), 1);
                            out.push_str(&block);
                        }
                        _ => {
                            let _ = writeln!(out, "{pad}- {}", item.scalar());
                        }
                    }
                }
            }
            scalar => {
                let _ = writeln!(out, "{pad}{}", scalar.scalar());
            }
        }
    }

    fn scalar(&self) -> String {
        match self {
            // JSON string escaping is valid YAML double-quoted style.
            Yaml::Str(text) => serde_json::to_string(text).expect("strings serialize"),
            Yaml::Int(i) => i.to_string(),
            Yaml::Bool(b) => b.to_string(),
            Yaml::Map(_) => "{}".into(),
            Yaml::List(_) => "[]".into(),
        }
    }
}

fn otelcol_tree(topology: &Topology, host: &Host, layout: &Layout) -> (Yaml, Components) {
    let mut components = Components::default();
    let mut receivers = Vec::new();
    let mut metrics_receivers = Vec::new();
    let mut logs_receivers = Vec::new();

    receivers.push((
        "hostmetrics".to_string(),
        map([
            ("collection_interval", s("30s")),
            (
                "scrapers",
                map([
                    ("cpu", empty()),
                    ("disk", empty()),
                    ("filesystem", empty()),
                    ("load", empty()),
                    ("memory", empty()),
                    ("network", empty()),
                ]),
            ),
        ]),
    ));
    metrics_receivers.push("hostmetrics");

    if host.has(Role::Web) {
        if let Some(url) = nginx_status_url(topology) {
            // `nginx.requests` (cumulative) per host: its rate is the host's web QPS.
            receivers.push(("nginx".into(), map([("endpoint", s(url)), ("collection_interval", s("10s"))])));
            metrics_receivers.push("nginx");
        }
        receivers.push((
            "filelog".into(),
            map([
                ("include", strs(nginx_logs(layout).iter().map(|p| p.display().to_string()))),
                ("start_at", s("end")),
                ("include_file_path", Yaml::Bool(true)),
                ("storage", s("file_storage")),
            ]),
        ));
        logs_receivers.push("filelog");
    }
    if host.has(Role::Lb) {
        if let Some(url) = haproxy_stats_url(topology, host) {
            // `haproxy.requests.total` of the HTTPS frontend: the LB's QPS.
            receivers.push(("haproxy".into(), map([("endpoint", s(url)), ("collection_interval", s("10s"))])));
            metrics_receivers.push("haproxy");
        }
    }
    if host.has(Role::Db) {
        receivers.push((
            "mysql".into(),
            map([
                ("endpoint", s(layout.mysql_socket().display().to_string())),
                ("transport", s("unix")),
                ("username", s(DB_MONITOR_USER)),
                ("password", s(credential_reference(layout, CREDENTIAL_DB_MONITOR_PASSWORD))),
                ("collection_interval", s("30s")),
            ]),
        ));
        metrics_receivers.push("mysql");
    }
    // The journal: every unit's messages, HAProxy's access log among them (it logs to
    // syslog, which journald keeps), keepalived transitions, sshd logins, MariaDB.
    receivers.push(("journald".into(), map([("directory", s("/var/log/journal")), ("priority", s("info"))])));
    logs_receivers.push("journald");

    let processors = ["memory_limiter", "resourcedetection", "resource", "batch"];
    let processor_config = map([
        (
            "memory_limiter",
            map([
                ("check_interval", s("1s")),
                ("limit_percentage", Yaml::Int(80)),
                ("spike_limit_percentage", Yaml::Int(20)),
            ]),
        ),
        (
            "resourcedetection",
            map([("detectors", strs(["system"])), ("system", map([("hostname_sources", strs(["os"]))]))]),
        ),
        (
            "resource",
            map([(
                "attributes",
                Yaml::List(
                    [
                        ("host.name", host.name.clone()),
                        ("_sourceHost", host.name.clone()),
                        ("_sourceCategory", source_category(topology, host)),
                        ("nixstack.stack", topology.stack.name.clone()),
                        ("nixstack.roles", roles(host)),
                    ]
                    .into_iter()
                    .map(|(key, value)| map([("key", s(key)), ("value", s(value)), ("action", s("upsert"))]))
                    .collect(),
                ),
            )]),
        ),
        ("batch", empty()),
    ]);

    let endpoint = credential_reference(layout, CREDENTIAL_SUMOLOGIC_ENDPOINT);
    let exporters = map([(
        "sumologic",
        map([
            ("endpoint", s(endpoint)),
            // Prometheus text for metrics, plain text for logs: what Sumo Logic's HTTP source
            // (and the lab's stand-in) ingest at the source URL itself.
            ("metric_format", s("prometheus")),
            ("log_format", s("text")),
            ("sending_queue", map([("enabled", Yaml::Bool(true)), ("storage", s("file_storage"))])),
        ]),
    )]);
    let extensions = map([
        ("health_check", map([("endpoint", s("127.0.0.1:13133"))])),
        (
            "file_storage",
            // The unit's StateDirectory; `create_directory` lets validation pass where it is
            // missing (filestorage's Validate refuses a missing directory otherwise).
            map([
                ("directory", s(layout.state.join("opentelemetry-collector").display().to_string())),
                ("create_directory", Yaml::Bool(true)),
            ]),
        ),
    ]);

    let pipeline = |receivers: &[&str]| {
        map([
            ("receivers", strs(receivers.iter().copied())),
            ("processors", strs(processors)),
            ("exporters", strs(["sumologic"])),
        ])
    };
    let service = map([
        ("extensions", strs(["health_check", "file_storage"])),
        ("pipelines", map([("metrics", pipeline(&metrics_receivers)), ("logs", pipeline(&logs_receivers))])),
    ]);

    components.receivers = receivers.iter().map(|(name, _)| name.clone()).collect();
    components.processors = processors.iter().map(|p| p.to_string()).collect();
    components.exporters = vec!["sumologic".into()];
    components.extensions = vec!["health_check".into(), "file_storage".into()];

    let tree = Yaml::Map(vec![
        ("extensions".into(), extensions),
        ("receivers".into(), Yaml::Map(receivers)),
        ("processors".into(), processor_config),
        ("exporters".into(), exporters),
        ("service".into(), service),
    ]);
    (tree, components)
}

/// The OpenTelemetry Collector (contrib) config of `host`, YAML.
pub fn otelcol(topology: &Topology, host: &Host, layout: &Layout) -> String {
    let (tree, _) = otelcol_tree(topology, host, layout);
    let mut out = format!(
        "# OpenTelemetry Collector (contrib {OTELCOL_CONTRIB_RELEASE}) on {}: generated by nixstack, do not edit.\n\
         # Secrets come from the unit's credentials (LoadCredential=): {}.\n",
        host.name,
        otelcol_credentials(topology, host, layout).iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
    );
    tree.render(&mut out, 0);
    out
}

/// The component types [`otelcol`] uses on `host`.
pub fn otelcol_components(topology: &Topology, host: &Host, layout: &Layout) -> Components {
    otelcol_tree(topology, host, layout).1
}

// ---------------------------------------------------------------------------------------
// collectd

/// Where the Python modules of the collectd agent live: Sumo Logic's
/// `sumologic-collectd-metrics` 4.1.1 and its dependencies (`requests`, `retry`). NixOS
/// links its packaged plugin here; the lab links the copy `scripts/setup` installs.
pub fn collectd_python_path(layout: &Layout) -> PathBuf {
    layout.config("collectd-python")
}

/// The file with the secret-bearing blocks, written at service start (mode 0600).
pub fn collectd_secrets_path(layout: &Layout) -> PathBuf {
    layout.run.join("collectd").join("secrets.conf")
}

/// Which secret file replaces which placeholder of [`collectd_secrets_template`].
pub fn collectd_secret_inputs(topology: &Topology, host: &Host, layout: &Layout) -> Vec<(&'static str, PathBuf)> {
    let mut inputs = Vec::new();
    if let Some(monitoring) = &topology.monitoring {
        inputs.push((PLACEHOLDER_SUMOLOGIC_URL, layout.secret(&monitoring.endpoint_secret)));
    }
    if host.has(Role::Db) {
        inputs.push((PLACEHOLDER_DB_MONITOR_PASSWORD, layout.secret(&secret_name_db_monitor())));
    }
    inputs
}

/// Escapes a value for a collectd double-quoted string.
fn collectd_quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Fills the placeholders of a secrets template with secret values (trailing newlines of
/// the secret files dropped, quotes escaped for collectd).
pub fn fill_collectd_secrets(template: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(template.to_string(), |text, (placeholder, value)| {
        let escaped = collectd_quote(value.trim_end_matches(['\n', '\r']));
        // The placeholder sits inside quotes in the template: replace the quoted form.
        text.replace(&format!("\"{placeholder}\""), &escaped)
    })
}

/// The collectd blocks that carry secrets, with placeholders instead of the secrets.
pub fn collectd_secrets_template(topology: &Topology, host: &Host, layout: &Layout) -> String {
    let mut out = format!(
        "# collectd secrets of {}: generated by nixstack from a template at service start, do not edit.\n",
        host.name
    );
    let category = source_category(topology, host);
    let _ = write!(
        out,
        "<Plugin python>\n\
         \x20 <Module \"sumologic_collectd_metrics\">\n\
         \x20   URL \"{PLACEHOLDER_SUMOLOGIC_URL}\"\n\
         \x20   SourceName \"collectd\"\n\
         \x20   SourceHost {host_q}\n\
         \x20   SourceCategory {category_q}\n\
         \x20   Dimensions \"stack\" {stack_q} \"roles\" {roles_q}\n\
         \x20   ContentEncoding \"gzip\"\n\
         \x20 </Module>\n\
         </Plugin>\n",
        host_q = collectd_quote(&host.name),
        category_q = collectd_quote(&category),
        stack_q = collectd_quote(&topology.stack.name),
        roles_q = collectd_quote(&roles(host)),
    );
    if host.has(Role::Db) {
        let _ = write!(
            out,
            "<Plugin mysql>\n\
             \x20 <Database \"galera\">\n\
             \x20   Socket {socket}\n\
             \x20   User {user}\n\
             \x20   Password \"{PLACEHOLDER_DB_MONITOR_PASSWORD}\"\n\
             \x20   InnodbStats true\n\
             \x20   WsrepStats true\n\
             \x20   ConnectTimeout 5\n\
             \x20 </Database>\n\
             </Plugin>\n",
            socket = collectd_quote(&layout.mysql_socket().display().to_string()),
            user = collectd_quote(DB_MONITOR_USER),
        );
    }
    out
}

/// How often collectd reads and ships on `layout`, in seconds.
pub fn collectd_interval_seconds(layout: &Layout) -> u32 {
    if layout.is_lab() {
        COLLECTD_INTERVAL_LAB_SECONDS
    } else {
        COLLECTD_INTERVAL_NIXOS_SECONDS
    }
}

/// HAProxy's stats CSV field holding the frontend's total HTTP requests (`req_tot`, the
/// 49th field in HAProxy 2.6).
const HAPROXY_REQ_TOT_FIELD: usize = 48;

/// The collectd.conf of `host`. For the lab layout it is a complete file; for NixOS it is
/// `services.collectd.extraConfig`, to which the module appends its own lines (`BaseDir`,
/// `AutoLoadPlugin false`, `Hostname`, `LoadPlugin syslog`) at `mkOrder 1200`, i.e. after
/// ours (data/nixpkgs-units.toml, `[collectd]` notes).
pub fn collectd(topology: &Topology, host: &Host, layout: &Layout) -> String {
    let mut out = format!("# collectd 5.12 on {}: generated by nixstack, do not edit.\n", host.name);
    let q = |p: &Path| collectd_quote(&p.display().to_string());
    if layout.is_lab() {
        let _ = write!(
            out,
            "Hostname {}\nFQDNLookup false\nBaseDir {}\nPIDFile {}\n\
             LoadPlugin logfile\n<Plugin logfile>\n  LogLevel \"info\"\n  File {}\n  Timestamp true\n</Plugin>\n",
            collectd_quote(&host.name),
            q(&layout.state.join("collectd")),
            q(&layout.pid_file("collectd")),
            q(&layout.log_file("collectd.log")),
        );
    }
    let _ = write!(out, "Interval {}\n\n", collectd_interval_seconds(layout));

    out.push_str(
        "LoadPlugin cpu\n<Plugin cpu>\n  ReportByCpu false\n  ReportByState true\n  ValuesPercentage true\n</Plugin>\n\
         LoadPlugin memory\n<Plugin memory>\n  ValuesAbsolute true\n  ValuesPercentage true\n</Plugin>\n\
         LoadPlugin load\n\
         LoadPlugin df\n<Plugin df>\n  FSType \"tmpfs\"\n  FSType \"devtmpfs\"\n  FSType \"overlay\"\n  FSType \"squashfs\"\n  IgnoreSelected true\n  ValuesPercentage true\n</Plugin>\n\
         LoadPlugin interface\n<Plugin interface>\n  Interface \"lo\"\n  IgnoreSelected true\n</Plugin>\n",
    );
    if host.has(Role::Web) {
        if let Some(url) = nginx_status_url(topology) {
            // nginx_requests (derive) per host: its rate is the host's web QPS.
            let _ = write!(
                out,
                "LoadPlugin nginx\n<Plugin nginx>\n  URL {}\n  Timeout 2000\n</Plugin>\n",
                collectd_quote(&url)
            );
        }
    }
    if host.has(Role::Lb) {
        if let Some(url) = haproxy_stats_url(topology, host) {
            // collectd 5.12 has no HAProxy plugin: read the stats CSV and take the HTTPS
            // frontend's `req_tot` (the first subexpression is the value; POSIX regexes
            // have no non-capturing groups, hence the spelled-out fields).
            let regex = format!("^{HAPROXY_FRONTEND},FRONTEND,{}([0-9]+),", "[^,]*,".repeat(HAPROXY_REQ_TOT_FIELD - 2));
            let _ = write!(
                out,
                "LoadPlugin curl\n<Plugin curl>\n  <Page \"haproxy\">\n    URL {}\n    Timeout 2000\n    <Match>\n      Regex {}\n      DSType \"DeriveSet\"\n      Type \"http_requests\"\n      Instance {}\n    </Match>\n  </Page>\n</Plugin>\n",
                collectd_quote(&format!("{url};csv")),
                collectd_quote(&regex),
                collectd_quote(HAPROXY_FRONTEND),
            );
        }
    }
    if host.has(Role::Db) {
        // Configured in the secrets file (it needs the monitor account's password).
        out.push_str("LoadPlugin mysql\n");
    }
    let _ = write!(
        out,
        "\n<LoadPlugin python>\n  Globals true\n</LoadPlugin>\n<Plugin python>\n  ModulePath {}\n  LogTraces true\n  Interactive false\n  Import \"sumologic_collectd_metrics\"\n</Plugin>\n\n\
         # The Sumo Logic module (URL) and the MySQL credentials: written at start from the secrets.\n\
         Include {}\n",
        q(&collectd_python_path(layout)),
        q(&collectd_secrets_path(layout)),
    );
    out
}
