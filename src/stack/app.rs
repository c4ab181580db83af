//! The application's environment on an app host: the one contract between nixstack and the
//! app. The NixOS host file sets it as `nixstack.app.environment` (modules/app.nix puts it on
//! the `nixstack-app` unit) and the lab starts the app with exactly these variables; the demo
//! app (app/nixstack_demo_app.py) reads them, which `tests` hold against the app's source.

use std::collections::BTreeMap;

use super::Layout;
use crate::topology::{Host, Topology};

/// Environment variables of the app on `host`: the spec's `app.env`, then what nixstack
/// derives, which wins on a clash (the app must find its database and files):
///
/// - `NIXSTACK_APP_NAME`: the host name (the demo page reports it);
/// - `NIXSTACK_APP_LISTEN`: `address:port` to listen on (the private address);
/// - `NIXSTACK_APP_HEALTH_PATH`: the path HAProxy, deploy and the lab probe;
/// - `NIXSTACK_DB_HOSTS`: `address:port,...` of the nodes that take writes, in preference
///   order (the app fails over to the next one);
/// - `NIXSTACK_DB_NAME`, `NIXSTACK_DB_USER`, `NIXSTACK_DB_PASSWORD_FILE`: the first database
///   user of the spec, and the secret file holding its password;
/// - with internal TLS: `NIXSTACK_APP_TLS_CERT`, `NIXSTACK_APP_TLS_KEY` (serve TLS to the web
///   tier) and `NIXSTACK_DB_CA` (verify the database's certificate; turns TLS to it on).
///
/// Paths come from `layout`; no secret value is ever part of the environment.
pub fn environment(topology: &Topology, host: &Host, layout: &Layout) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let Some(app) = &topology.app else { return env };
    env.extend(app.env.iter().map(|(key, value)| (key.clone(), value.clone())));
    let path = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
    env.insert("NIXSTACK_APP_NAME".into(), host.name.clone());
    env.insert("NIXSTACK_APP_LISTEN".into(), format!("{}:{}", host.address, app.port));
    env.insert("NIXSTACK_APP_HEALTH_PATH".into(), app.health_path.clone());
    if !app.db_writers.is_empty() {
        let addresses: Vec<String> = app.db_writers.iter().map(|db| format!("{}:{}", db.address, db.port)).collect();
        env.insert("NIXSTACK_DB_HOSTS".into(), addresses.join(","));
    }
    if let Some(user) = topology.db.as_ref().and_then(|db| db.users.first()) {
        env.insert("NIXSTACK_DB_NAME".into(), user.database.clone());
        env.insert("NIXSTACK_DB_USER".into(), user.name.clone());
        env.insert(
            "NIXSTACK_DB_PASSWORD_FILE".into(),
            path(layout.secret(&crate::secrets::db_password_file(&user.name))),
        );
    }
    if topology.internal_tls {
        let [ca, cert, key] = INTERNAL_TLS_APP_VARIABLES;
        env.insert(ca.into(), path(layout.ca_cert()));
        env.insert(cert.into(), path(layout.host_cert()));
        env.insert(key.into(), path(layout.host_key()));
    }
    env
}

/// The variables set only with internal TLS (without it the app serves plain HTTP and
/// connects to the database in the clear, as the spec asked).
pub const INTERNAL_TLS_APP_VARIABLES: [&str; 3] = ["NIXSTACK_DB_CA", "NIXSTACK_APP_TLS_CERT", "NIXSTACK_APP_TLS_KEY"];

/// Variables the demo app reads that nixstack leaves to their defaults on purpose: tuning
/// knobs an operator may set through `app.env`.
pub const OPTIONAL_APP_VARIABLES: &[&str] = &["NIXSTACK_DB_CONNECT_TIMEOUT"];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::spec::SpecSource;
    use crate::topology::compile;

    /// The variables the demo app reads, from its own source: every `env("NAME"` call.
    fn variables_the_app_reads() -> BTreeSet<String> {
        let source = include_str!("../../app/nixstack_demo_app.py");
        source.split("env(\"").skip(1).filter_map(|rest| rest.split('"').next()).map(str::to_string).collect()
    }

    #[test]
    fn the_environment_is_exactly_what_the_demo_app_reads() {
        let topology = compile(&SpecSource::embedded_default()).unwrap();
        let host = topology.hosts.iter().find(|h| h.name == "app1").unwrap();
        let reads = variables_the_app_reads();
        assert!(reads.len() >= 8, "the parser found the app's reads: {reads:?}");
        for layout in [Layout::nixos(), Layout::lab("app1")] {
            let env = environment(&topology, host, &layout);
            let ours: BTreeSet<String> = env.keys().filter(|k| k.starts_with("NIXSTACK_")).cloned().collect();
            let unread: Vec<_> = ours.difference(&reads).collect();
            assert!(unread.is_empty(), "nixstack sets variables the app never reads: {unread:?}");
            let unset: Vec<_> =
                reads.iter().filter(|r| !ours.contains(*r) && !OPTIONAL_APP_VARIABLES.contains(&r.as_str())).collect();
            assert!(unset.is_empty(), "the app reads variables nixstack never sets: {unset:?}");
        }
    }

    #[test]
    fn the_app_gets_paths_of_secrets_never_secrets() {
        let topology = compile(&SpecSource::embedded_default()).unwrap();
        let host = topology.hosts.iter().find(|h| h.name == "app1").unwrap();
        let env = environment(&topology, host, &Layout::nixos());
        assert_eq!(env["NIXSTACK_APP_LISTEN"], format!("{}:{}", host.address, topology.app.as_ref().unwrap().port));
        assert_eq!(env["NIXSTACK_DB_PASSWORD_FILE"], "/var/lib/nixstack/secrets/db-shop.password");
        let lab = environment(&topology, host, &Layout::lab("app1"));
        assert_eq!(lab["NIXSTACK_DB_PASSWORD_FILE"], "/var/lib/nixstack-lab/app1/secrets/db-shop.password");
        assert!(env.keys().all(|k| !k.contains("PASSWORD") || k.ends_with("_FILE")));
    }
}
