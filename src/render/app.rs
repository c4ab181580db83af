//! The application's environment on an app host: the one contract between nixstack and the
//! app, used by the NixOS module (`nixstack.app.environment`) and by the lab alike.

use std::collections::BTreeMap;

use crate::render::Layout;
use crate::topology::{Host, Topology};

/// Environment variables of the app on `host`: the spec's `app.env`, then what nixstack
/// derives, which wins on a clash (the app must find its database and files):
///
/// - `NIXSTACK_HOST`: the host name (the demo page reports it);
/// - `NIXSTACK_LISTEN`: `address:port` to listen on (the private address);
/// - `NIXSTACK_HEALTH_PATH`: the path deploy and HAProxy probe;
/// - `NIXSTACK_DB_ADDRESSES`: `address:port,...` of the nodes that take writes, in
///   preference order (fail over to the next one);
/// - `NIXSTACK_DB_NAME`, `NIXSTACK_DB_USER`, `NIXSTACK_DB_PASSWORD_FILE`: the first
///   database user of the spec, and the secret file holding its password;
/// - with internal TLS: `NIXSTACK_TLS_CA` (verify the database and callers),
///   `NIXSTACK_TLS_CERT`, `NIXSTACK_TLS_KEY` (serve TLS to the web tier).
///
/// Paths come from `layout`; no secret value is ever part of the environment.
pub fn environment(topology: &Topology, host: &Host, layout: &Layout) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let Some(app) = &topology.app else { return env };
    env.extend(
        app.env
            .iter()
            .map(|(key, value)| (key.clone(), value.clone())),
    );
    let path = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
    env.insert("NIXSTACK_HOST".into(), host.name.clone());
    env.insert(
        "NIXSTACK_LISTEN".into(),
        format!("{}:{}", host.address, app.port),
    );
    env.insert("NIXSTACK_HEALTH_PATH".into(), app.health_path.clone());
    if !app.db_writers.is_empty() {
        let addresses: Vec<String> = app
            .db_writers
            .iter()
            .map(|db| format!("{}:{}", db.address, db.port))
            .collect();
        env.insert("NIXSTACK_DB_ADDRESSES".into(), addresses.join(","));
    }
    if let Some(user) = topology.db.as_ref().and_then(|db| db.users.first()) {
        env.insert("NIXSTACK_DB_NAME".into(), user.database.clone());
        env.insert("NIXSTACK_DB_USER".into(), user.name.clone());
        env.insert(
            "NIXSTACK_DB_PASSWORD_FILE".into(),
            path(layout.secret(&format!("db-{}.password", user.name))),
        );
    }
    if topology.internal_tls {
        env.insert("NIXSTACK_TLS_CA".into(), path(layout.ca_cert()));
        env.insert("NIXSTACK_TLS_CERT".into(), path(layout.host_cert()));
        env.insert("NIXSTACK_TLS_KEY".into(), path(layout.host_key()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::compile;
    use crate::spec::SpecSource;

    #[test]
    fn the_app_gets_its_database_nodes_and_secret_paths_not_secrets() {
        let topology = compile(&SpecSource::embedded_default()).unwrap();
        let host = topology.hosts.iter().find(|h| h.name == "app1").unwrap();
        let env = environment(&topology, host, &Layout::nixos());
        assert_eq!(env["NIXSTACK_LISTEN"], "10.10.0.31:8080");
        assert_eq!(
            env["NIXSTACK_DB_ADDRESSES"],
            "10.10.0.41:3306,10.10.0.42:3306,10.10.0.43:3306"
        );
        assert_eq!(
            env["NIXSTACK_DB_PASSWORD_FILE"],
            "/var/lib/nixstack/secrets/db-shop.password"
        );
        assert_eq!(
            env["NIXSTACK_TLS_KEY"],
            "/var/lib/nixstack/secrets/host.key"
        );
        assert_eq!(env["APP_ENV"], "production");
        let lab = environment(&topology, host, &Layout::lab("app1"));
        assert_eq!(
            lab["NIXSTACK_DB_PASSWORD_FILE"],
            "/var/lib/nixstack-lab/app1/secrets/db-shop.password"
        );
    }
}
