//! The application's contract with nixstack (docs/app.md): its environment and the credential
//! files it reads. The NixOS host file sets them on the `nixstack-app` unit (modules/app.nix:
//! `environment`, `LoadCredential=`) and the lab starts the app with exactly these; the demo app
//! (app/nixstack_demo_app.py) reads them, which tests hold against the app's source.
//!
//! Names follow common conventions where one exists (`HOST`/`PORT` as twelve-factor platforms
//! set them, `DATABASE_*`); secrets are files in `$CREDENTIALS_DIRECTORY` (systemd's
//! `LoadCredential=`), never values in the environment or the store.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::Layout;
use crate::topology::{Host, Topology};

/// The credential holding the database user's password.
pub const DATABASE_PASSWORD_CREDENTIAL: &str = "database-password";
/// The credential holding the internal CA certificate that signs the database's certificate.
pub const DATABASE_CA_CREDENTIAL: &str = "database-ca.pem";

/// The systemd unit that runs the app (modules/app.nix).
pub const UNIT: &str = "nixstack-app.service";

/// Environment variables of the app on `host`: the spec's `app.env`, then what nixstack
/// derives, which wins on a clash (the app must find its database):
///
/// - `HOST`, `PORT`: where to listen, plain HTTP. Behind the TLS terminator (internal TLS)
///   `127.0.0.1` and `app.listen_port`; without internal TLS the host's private address and
///   `app.port`, which the web tier reaches directly;
/// - `DATABASE_HOSTS`: `address:port,...` of the nodes that take writes, in preference order
///   (the app fails over to the next one);
/// - `DATABASE_NAME`, `DATABASE_USER`: the first database user of the spec; its password is
///   the credential [`DATABASE_PASSWORD_CREDENTIAL`];
/// - `DATABASE_TLS=verify-full` with internal TLS: connect with TLS, verify the certificate
///   against the credential [`DATABASE_CA_CREDENTIAL`] and the node's address;
/// - `NIXSTACK_HOST`: the host name (the demo page reports it);
/// - `NIXSTACK_HEALTH_PATH`: the path the terminator, deploy and the lab probe.
///
/// No secret, and no path of one, is ever part of the environment.
pub fn environment(topology: &Topology, host: &Host) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let Some(app) = &topology.app else { return env };
    env.extend(app.env.iter().map(|(key, value)| (key.clone(), value.clone())));
    let (address, port) = listen(topology, host).expect("an app tier");
    env.insert("HOST".into(), address);
    env.insert("PORT".into(), port.to_string());
    env.insert("NIXSTACK_HOST".into(), host.name.clone());
    env.insert("NIXSTACK_HEALTH_PATH".into(), app.health_path.clone());
    if !app.db_writers.is_empty() {
        let addresses: Vec<String> = app.db_writers.iter().map(|db| format!("{}:{}", db.address, db.port)).collect();
        env.insert("DATABASE_HOSTS".into(), addresses.join(","));
    }
    if let Some(user) = topology.db.as_ref().and_then(|db| db.users.first()) {
        env.insert("DATABASE_NAME".into(), user.database.clone());
        env.insert("DATABASE_USER".into(), user.name.clone());
    }
    if topology.internal_tls && topology.db.is_some() {
        let [tls] = INTERNAL_TLS_APP_VARIABLES;
        env.insert(tls.into(), "verify-full".into());
    }
    env
}

/// Where the app itself listens on `host` (address, port): loopback behind the terminator.
pub fn listen(topology: &Topology, host: &Host) -> Option<(String, u16)> {
    let app = topology.app.as_ref()?;
    Some(if app.terminator { ("127.0.0.1".into(), app.listen_port) } else { (host.address.to_string(), app.port) })
}

/// A file systemd hands the unit (`LoadCredential=NAME:SOURCE`): readable by the unit's
/// (dynamic) user in `$CREDENTIALS_DIRECTORY/NAME`, whatever the source's owner and mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credential {
    pub name: &'static str,
    /// The file on the host (in the secrets directory of `layout`).
    pub source: PathBuf,
}

/// The credentials of the app on a host of `layout`.
pub fn credentials(topology: &Topology, layout: &Layout) -> Vec<Credential> {
    let mut credentials = Vec::new();
    if let Some(user) = topology.db.as_ref().and_then(|db| db.users.first()) {
        credentials.push(Credential {
            name: DATABASE_PASSWORD_CREDENTIAL,
            source: layout.secret(&crate::secrets::db_password_file(&user.name)),
        });
        if topology.internal_tls {
            credentials.push(Credential { name: DATABASE_CA_CREDENTIAL, source: layout.ca_cert() });
        }
    }
    credentials
}

/// The directory systemd puts the unit's credentials in (`$CREDENTIALS_DIRECTORY`).
pub fn credentials_directory(layout: &Layout) -> PathBuf {
    layout.translate(&format!("/run/credentials/{UNIT}"))
}

/// The variables set only with internal TLS (without it the app connects to the database in
/// the clear, as the spec asked).
pub const INTERNAL_TLS_APP_VARIABLES: [&str; 1] = ["DATABASE_TLS"];

/// Variables the demo app reads that nixstack leaves to their defaults on purpose: tuning
/// knobs an operator may set through `app.env`.
pub const OPTIONAL_APP_VARIABLES: &[&str] = &["DATABASE_CONNECT_TIMEOUT"];

/// Variables systemd sets for every unit with credentials, which the app reads.
pub const SYSTEMD_APP_VARIABLES: &[&str] = &["CREDENTIALS_DIRECTORY"];

/// The nftables table that takes an app host out of the web tier's rotation.
pub const ROTATION_TABLE: &str = "nixstack_rotation";

/// After the app hop refuses new connections, how long a deploy waits before the app
/// restarts: a request the terminator accepted just before reaches the app within
/// milliseconds, and the app's graceful stop answers it. A request whose body is still
/// being uploaded after this long may fail (docs/app.md, "Rollout").
pub const ROTATION_SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

/// The nftables ruleset that takes `host`'s app hop out of rotation (loaded with `nft -f`);
/// `None` when the host runs no app.
pub fn out_of_rotation(topology: &Topology, host: &Host) -> Option<String> {
    let app = topology.app.as_ref().filter(|_| host.has(crate::spec::Role::App))?;
    Some(include_str!("app-rotation.nft").replace("@PORT@", &app.port.to_string()))
}

/// The nftables ruleset that puts an app host back: the rotation table declared and
/// deleted, which removes it whether or not it is there.
pub fn back_in_rotation() -> String {
    format!("table inet {ROTATION_TABLE}\ndelete table inet {ROTATION_TABLE}\n")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::spec::SpecSource;
    use crate::topology::compile;

    fn whiteboard() -> SpecSource {
        SpecSource { name: "whiteboard.toml".into(), text: include_str!("../../examples/whiteboard.toml").into() }
    }

    /// The demo app's source, from which the tests read what it reads.
    const APP_SOURCE: &str = include_str!("../../app/nixstack_demo_app.py");

    /// Every `NAME` of a `marker"NAME"` call in the demo app's source.
    fn names_after(marker: &str) -> BTreeSet<String> {
        APP_SOURCE.split(marker).skip(1).filter_map(|rest| rest.split('"').next()).map(str::to_string).collect()
    }

    #[test]
    fn the_environment_is_exactly_what_the_demo_app_reads() {
        for spec in [SpecSource::embedded_default(), whiteboard()] {
            let topology = compile(&spec).unwrap();
            let host = topology.hosts.iter().find(|h| h.has(crate::spec::Role::App)).unwrap();
            let reads = names_after("env(\"");
            assert!(reads.len() >= 8, "the parser found the app's reads: {reads:?}");
            let env = environment(&topology, host);
            let ours: BTreeSet<String> =
                env.keys().filter(|k| !topology.app.as_ref().unwrap().env.contains_key(*k)).cloned().collect();
            let unread: Vec<_> = ours.difference(&reads).collect();
            assert!(unread.is_empty(), "nixstack sets variables the app never reads: {unread:?}");
            let unset: Vec<_> = reads
                .iter()
                .filter(|r| !ours.contains(*r))
                .filter(|r| {
                    !OPTIONAL_APP_VARIABLES.contains(&r.as_str()) && !SYSTEMD_APP_VARIABLES.contains(&r.as_str())
                })
                .filter(|r| topology.internal_tls || !INTERNAL_TLS_APP_VARIABLES.contains(&r.as_str()))
                .collect();
            assert!(unset.is_empty(), "the app reads variables nixstack never sets: {unset:?}");
        }
    }

    #[test]
    fn the_credentials_are_exactly_what_the_demo_app_opens() {
        let topology = compile(&SpecSource::embedded_default()).unwrap();
        let opens = names_after("credential(\"");
        let ours: BTreeSet<String> =
            credentials(&topology, &Layout::nixos()).iter().map(|c| c.name.to_string()).collect();
        assert_eq!(ours, opens, "LoadCredential names and the app's credential() calls");
    }

    #[test]
    fn behind_the_terminator_the_app_listens_on_loopback_only() {
        let topology = compile(&SpecSource::embedded_default()).unwrap();
        let host = topology.hosts.iter().find(|h| h.name == "app1").unwrap();
        let app = topology.app.as_ref().unwrap();
        let env = environment(&topology, host);
        assert_eq!((env["HOST"].as_str(), env["PORT"].parse::<u16>().unwrap()), ("127.0.0.1", app.listen_port));
        assert_ne!(app.listen_port, app.port);
        // The whiteboard has no internal TLS: no terminator, the app on its private address.
        let whiteboard = compile(&whiteboard()).unwrap();
        let server = whiteboard.hosts.iter().find(|h| h.has(crate::spec::Role::App)).unwrap();
        let env = environment(&whiteboard, server);
        assert_eq!(env["HOST"], server.address.to_string());
        assert_eq!(env["PORT"], whiteboard.app.as_ref().unwrap().port.to_string());
    }

    #[test]
    fn the_app_gets_credentials_never_secrets_or_their_paths() {
        let topology = compile(&SpecSource::embedded_default()).unwrap();
        let host = topology.hosts.iter().find(|h| h.name == "app1").unwrap();
        let env = environment(&topology, host);
        assert!(env.iter().all(|(k, v)| !k.contains("PASSWORD") && !v.contains("/secrets/")), "{env:?}");
        let nixos = credentials(&topology, &Layout::nixos());
        assert_eq!(nixos[0].source, PathBuf::from("/var/lib/nixstack/secrets/db-shop.password"));
        let lab = credentials(&topology, &Layout::lab("app1"));
        assert_eq!(lab[0].source, PathBuf::from("/var/lib/nixstack-lab/app1/secrets/db-shop.password"));
        assert_eq!(credentials_directory(&Layout::nixos()), PathBuf::from("/run/credentials/nixstack-app.service"));
    }
}
