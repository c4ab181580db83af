//! Mozilla's Server Side TLS "intermediate" configuration, the one TLS policy of every listener
//! nixstack renders (HAProxy at the VIP, nginx, the app, MariaDB's client port, Galera
//! replication), read from Mozilla's own guidelines file rather than retyped.
//!
//! The file is `data/mozilla/server-side-tls-5.7.json`: `src/static/guidelines/5.7.json` of
//! github.com/mozilla/ssl-config-generator at commit b2a5a068fbfbe46007c16dd6528c7ada56bcf20f,
//! byte for byte (published as <https://ssl-config.mozilla.org/guidelines/5.7.json>). 5.7 is the
//! version the issue names; 6.0 (2026-04) prepends the hybrid group X25519MLKEM768, which needs
//! OpenSSL 3.5 (Debian 12 ships 3.0), and drops the DHE suites.
//!
//! The tests scan the running daemons with a TLS scanner and compare against the same file.

use std::sync::OnceLock;

use serde::Deserialize;

/// The guidelines file, embedded at build time.
pub const GUIDELINES_JSON: &str = include_str!("../../data/mozilla/server-side-tls-5.7.json");

/// One Mozilla configuration ("intermediate"), the fields nixstack uses.
#[derive(Debug, Deserialize)]
pub struct Configuration {
    /// TLS 1.2 cipher suites by naming scheme (`openssl`, `iana`, …), in Mozilla's order.
    pub ciphers: Ciphers,
    /// TLS 1.3 cipher suites (IANA = OpenSSL names).
    pub ciphersuites: Vec<String>,
    /// Key exchange groups ("curves"), OpenSSL names (`prime256v1` is P-256).
    pub tls_curves: Vec<String>,
    /// Protocol versions, OpenSSL names (`TLSv1.2`).
    pub tls_versions: Vec<String>,
    /// Finite-field DH group size for the DHE suites.
    pub dh_param_size: u32,
    /// `Strict-Transport-Security` max-age.
    pub hsts_min_age: u64,
}

/// TLS 1.2 cipher names.
#[derive(Debug, Deserialize)]
pub struct Ciphers {
    /// OpenSSL names.
    pub openssl: Vec<String>,
    /// IANA names.
    pub iana: Vec<String>,
}

#[derive(Deserialize)]
struct Guidelines {
    version: f64,
    configurations: Configurations,
}

#[derive(Deserialize)]
struct Configurations {
    intermediate: Configuration,
}

fn guidelines() -> &'static Guidelines {
    static GUIDELINES: OnceLock<Guidelines> = OnceLock::new();
    GUIDELINES.get_or_init(|| serde_json::from_str(GUIDELINES_JSON).expect("the embedded Mozilla guidelines parse"))
}

/// Mozilla intermediate.
pub fn intermediate() -> &'static Configuration {
    &guidelines().configurations.intermediate
}

/// The guidelines' version, e.g. `5.7`.
pub fn version() -> String {
    guidelines().version.to_string()
}

/// TLS 1.2 ciphers as an OpenSSL cipher string (`A:B:C`).
pub fn openssl_ciphers() -> String {
    intermediate().ciphers.openssl.join(":")
}

/// TLS 1.3 cipher suites as an OpenSSL ciphersuites string.
pub fn ciphersuites() -> String {
    intermediate().ciphersuites.join(":")
}

/// Groups as an OpenSSL groups list (`X25519:prime256v1:secp384r1`), accepted by nginx's
/// `ssl_ecdh_curve`, HAProxy's `curves`, stunnel's `curves` and `SSL_CTX_set1_groups_list`.
pub fn groups() -> String {
    intermediate().tls_curves.join(":")
}

/// An OpenSSL configuration whose `system_default` section limits the groups (curves) of
/// every TLS context the process creates, for daemons that have no option of their own:
/// MariaDB 10.11's client port and Galera 26.4's replication socket take protocols and
/// ciphers, not groups, and OpenSSL 3.0's defaults add X448, secp521r1 and the ffdhe groups.
/// libssl loads the file named by `OPENSSL_CONF` when it initialises (OPENSSL_init_ssl loads
/// the default configuration since OpenSSL 1.1.1); the daemon's own cipher and protocol
/// options still apply on top. tests/db_configs.rs scans both ports with it in place.
pub fn openssl_system_default() -> String {
    include_str!("openssl-system-default.cnf.in").replace("@version@", &version()).replace("@groups@", &groups())
}

/// stunnel's options for MariaDB's rsync state snapshot transfer (modules/sst-stunnel.sh puts
/// them before the configuration wsrep_sst_rsync writes): stunnel 5.68 sets its own ciphers
/// and curves, so `OPENSSL_CONF` cannot limit them. tests/db_configs.rs scans the joiner's
/// stunnel started this way.
pub fn stunnel_options() -> String {
    include_str!("sst-stunnel.conf.in")
        .replace("@version@", &version())
        .replace("@min_version@", min_version())
        .replace("@ciphers@", &openssl_ciphers())
        .replace("@ciphersuites@", &ciphersuites())
        .replace("@groups@", &groups())
}

/// socat's OpenSSL address options for MariaDB's mariabackup state snapshot transfer
/// (`[sst] sockopt`): the lowest protocol version (socat spells it `TLS1.2`) and the TLS 1.2
/// ciphers.
pub fn socat_options() -> String {
    format!("openssl-min-proto-version={},cipher={}", min_version().replace("TLSv", "TLS"), openssl_ciphers())
}

/// The lowest protocol version (`TLSv1.2`).
pub fn min_version() -> &'static str {
    intermediate().tls_versions.iter().min().expect("Mozilla lists protocol versions")
}

/// Protocol versions separated by `sep` (nginx: `" "`, MariaDB's `tls_version`: `","`).
pub fn versions(sep: &str) -> String {
    intermediate().tls_versions.join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intermediate_5_7_as_published() {
        assert_eq!(version(), "5.7");
        assert_eq!(versions(" "), "TLSv1.2 TLSv1.3");
        assert_eq!(min_version(), "TLSv1.2");
        assert_eq!(groups(), "X25519:prime256v1:secp384r1");
        assert_eq!(ciphersuites(), "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
        assert_eq!(intermediate().ciphers.openssl.len(), 9);
        assert_eq!(intermediate().ciphers.iana.len(), 9);
        assert_eq!(intermediate().dh_param_size, 2048);
    }
}
