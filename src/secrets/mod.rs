//! The stack's secrets (`nixstack secrets init`): the internal CA, host certificates and
//! keys, the public certificate for the lab, database passwords and the monitoring
//! endpoint, in a local directory (0700, files 0600) that never enters the Nix store; and
//! which of them each host needs at runtime ([`host_secrets`]).
//!
//! Layout of the directory:
//!
//! ```text
//! ca.crt ca.key                              internal CA
//! hosts/<host>/host.crt host.key host.pem    per host (pem = certificate + key, for HAProxy)
//! public.pem | <lb.tls.certificate>          the LBs' public bundle (certificate + key)
//! db-<user>.password mysql-root.password     32 random alphanumerics (db-monitor.password
//!                                            too when db hosts are monitored; and
//!                                            db-backup-restic.password with a restic [db.backup])
//! <monitoring.endpoint_secret>               the Sumo Logic HTTP source URL (placeholder)
//! ```

mod backend;
mod pki;
mod rotate;
mod store;

use std::path::{Path, PathBuf};

use anyhow::Result;
use rand::distributions::Alphanumeric;
use rand::rngs::OsRng;
use rand::Rng;

use crate::exit;
use crate::spec::{Role, TlsMode};
use crate::topology::Topology;

pub use backend::{age_file, encrypted_files, sops_file, tree_files, HOST_KEY_PATH, TREE_DIR};
pub use pki::{ca_name, date, issue, load_ca, pem_body, unix_now, validity, Ca, Issued, Validity};
pub use rotate::{expiry_findings, rotate, Renewed, RotateReport, EXPIRY_WARNING_DAYS};

/// What `secrets/<monitoring.endpoint_secret>` holds until the operator puts the real
/// Sumo Logic HTTP source URL there.
pub const SUMOLOGIC_PLACEHOLDER: &str = "https://endpoint.collection.sumologic.com/receiver/v1/http/REPLACE_ME";

/// Length of generated passwords (alphanumeric: safe in every config syntax and URL).
pub const PASSWORD_LENGTH: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {action}: {reason}")]
    Crypto { action: &'static str, reason: String },
    #[error("{file} cannot be used: {reason}")]
    Invalid { file: String, reason: String },
    #[error("{what} is incomplete: present {present}, missing {missing}; {advice}")]
    Incomplete { what: String, present: String, missing: String, advice: String },
}

/// What `init` found and did. Paths are relative to the secrets directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitReport {
    pub created: Vec<String>,
    pub existing: Vec<String>,
    /// Things the operator should know or do (placeholders to fill, stale certificates,
    /// modes that were tightened).
    pub notes: Vec<String>,
}

/// The local name of the LBs' public certificate bundle: `lb.tls.certificate` when the
/// operator provides it, else `public.pem` (signed by the internal CA; the lab serves it,
/// and NixOS uses ACME instead).
pub fn public_certificate_file(topology: &Topology) -> String {
    match &topology.lb {
        Some(lb) if lb.tls == TlsMode::Provided => lb.certificate_secret.clone().unwrap_or_else(|| "public.pem".into()),
        _ => "public.pem".into(),
    }
}

/// The password file of database user `user`.
pub fn db_password_file(user: &str) -> String {
    format!("db-{user}.password")
}

/// The group that reads the runtime secrets (modules/base.nix: `nixstack.base.secretsGroup`).
pub const SECRETS_GROUP: &str = "nixstack-secrets";

pub const MYSQL_ROOT_PASSWORD: &str = "mysql-root.password";

/// The files `host` needs at runtime: (file in `dir`, name under `Layout.secrets` on the
/// host). Deploy uploads them and the lab copies them; the rendered configs reference
/// exactly these names.
pub fn host_secrets(topology: &Topology, host: &str, dir: &Path) -> Vec<(PathBuf, String)> {
    let Some(host) = topology.hosts.iter().find(|h| h.name == host) else {
        return Vec::new();
    };
    let mut files = vec![(dir.join("ca.crt"), "ca.crt".to_string())];
    if topology.certificates.iter().any(|c| c.host == host.name) {
        for name in ["host.crt", "host.key", "host.pem"] {
            files.push((dir.join("hosts").join(&host.name).join(name), name.to_string()));
        }
    }
    if host.has(Role::Lb) && topology.lb.is_some() {
        files.push((dir.join(public_certificate_file(topology)), "public.pem".to_string()));
    }
    if let Some(db) = &topology.db {
        if host.has(Role::Db) || host.has(Role::App) {
            for user in &db.users {
                let name = db_password_file(&user.name);
                files.push((dir.join(&name), name));
            }
        }
        if host.has(Role::Db) {
            files.push((dir.join(MYSQL_ROOT_PASSWORD), MYSQL_ROOT_PASSWORD.to_string()));
        }
        if let Some(secret) = restic_password_secret(topology, &host.name) {
            files.push((dir.join(&secret), secret));
        }
    }
    if let Some(monitoring) = &topology.monitoring {
        if host.monitored {
            files.push((dir.join(&monitoring.endpoint_secret), monitoring.endpoint_secret.clone()));
            if host.has(Role::Db) && topology.db.is_some() {
                let name = db_monitor_password_file();
                files.push((dir.join(&name), name));
            }
        }
    }
    files
}

/// The restic repository's password file, on the node that runs `[db.backup]` with
/// `target = "restic"` (read by restic with `--password-file`).
pub fn restic_password_secret(topology: &Topology, host: &str) -> Option<String> {
    let backup = topology.db.as_ref()?.backup.as_ref().filter(|b| b.host == host)?;
    match &backup.target {
        crate::topology::BackupDestination::Restic { password_secret, .. } => Some(password_secret.clone()),
        crate::topology::BackupDestination::Local { .. } => None,
    }
}

/// The password of the database account the monitoring agent reads server and Galera
/// status with (created by the db module on monitored db hosts).
pub fn db_monitor_password_file() -> String {
    db_password_file(crate::topology::DB_MONITOR_USER)
}

/// `nixstack secrets init`.
pub fn init_command(spec: Option<&Path>, dir: &Path) -> Result<i32> {
    let (_, topology) = crate::topology::load(spec)?;
    let report = init(&topology, dir)?;
    for file in &report.created {
        println!("created  {file}");
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    println!(
        "nixstack: secrets in {}: {} existing, {} created",
        dir.display(),
        report.existing.len(),
        report.created.len()
    );
    Ok(exit::OK)
}

/// `nixstack secrets rotate`: renews the host certificates of `hosts` (all when empty).
pub fn rotate_command(spec: Option<&Path>, dir: &Path, hosts: &[String]) -> Result<i32> {
    let (_, topology) = crate::topology::load(spec)?;
    let report = rotate(&topology, dir, hosts)?;
    for renewed in &report.renewed {
        println!(
            "renewed  {}: serial {} → {}, valid until {}",
            renewed.file,
            renewed.old_serial,
            renewed.serial,
            date(renewed.not_after)
        );
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    println!(
        "nixstack: {} certificate(s) renewed in {} ({} days each); `nixstack deploy` uploads them and reloads the daemons",
        report.renewed.len(),
        dir.display(),
        topology.host_certificate_days
    );
    Ok(exit::OK)
}

/// Creates every missing secret of `topology` in `dir`; never rewrites an existing one.
pub fn init(topology: &Topology, dir: &Path) -> Result<InitReport, SecretsError> {
    let mut init = Init { dir, topology, report: InitReport::default(), ca: None };
    init.dir_0700(dir, ".")?;
    init.certificates()?;
    init.passwords()?;
    init.monitoring_endpoint()?;
    init.encrypt()?;
    init.report.created.sort();
    init.report.existing.sort();
    Ok(init.report)
}

struct Init<'a> {
    dir: &'a Path,
    topology: &'a Topology,
    report: InitReport,
    /// Loaded or created when the first certificate must be issued.
    ca: Option<pki::Ca>,
}

impl Init<'_> {
    fn certificates(&mut self) -> Result<(), SecretsError> {
        let stack = self.topology.stack.name.clone();
        let (ca_crt, ca_key) = (self.dir.join("ca.crt"), self.dir.join("ca.key"));
        let mut issued_elsewhere: Vec<PathBuf> =
            self.topology.certificates.iter().map(|c| self.dir.join("hosts").join(&c.host).join("host.crt")).collect();
        if self.topology.lb.is_some() {
            issued_elsewhere.push(self.dir.join(public_certificate_file(self.topology)));
        }
        match (ca_crt.exists(), ca_key.exists()) {
            (true, true) => {
                self.existing("ca.crt")?;
                self.existing("ca.key")?;
            }
            (false, false) => {
                // A new CA would not have signed the certificates that are already there.
                let orphans = store::existing(&issued_elsewhere);
                if !orphans.is_empty() {
                    return Err(SecretsError::Incomplete {
                        what: "the internal CA".into(),
                        present: self.relative_list(&orphans),
                        missing: "ca.crt and ca.key".into(),
                        advice: "restore the CA, or move those certificates away to issue new ones".into(),
                    });
                }
                let (ca, files) = pki::new_ca(&stack)?;
                self.create("ca.key", files.key_pem.as_bytes())?;
                self.create("ca.crt", files.cert_pem.as_bytes())?;
                self.ca = Some(ca);
            }
            (crt, _) => {
                let (present, missing) = if crt { ("ca.crt", "ca.key") } else { ("ca.key", "ca.crt") };
                return Err(SecretsError::Incomplete {
                    what: "the internal CA".into(),
                    present: present.into(),
                    missing: missing.into(),
                    advice: format!(
                        "restore {missing}, or move {present} and every issued certificate away to start a new CA"
                    ),
                });
            }
        }

        let days = self.topology.host_certificate_days;
        for certificate in &self.topology.certificates {
            let host_dir = format!("hosts/{}", certificate.host);
            self.dir_0700(&self.dir.join("hosts"), "hosts")?;
            self.dir_0700(&self.dir.join(&host_dir), &host_dir)?;
            let crt = format!("{host_dir}/host.crt");
            let key = format!("{host_dir}/host.key");
            let pem = format!("{host_dir}/host.pem");
            match (self.dir.join(&crt).exists(), self.dir.join(&key).exists()) {
                (true, true) => {
                    self.existing(&crt)?;
                    self.existing(&key)?;
                    let cert_pem = store::read(&self.dir.join(&crt))?;
                    let missing = pki::missing_names(&cert_pem, &certificate.dns_names, &certificate.ip_addresses);
                    if !missing.is_empty() {
                        self.report.notes.push(format!(
                            "{crt} does not name {} (the spec changed since it was issued); move {host_dir} away and run again to reissue it",
                            missing.join(", ")
                        ));
                    }
                    if self.dir.join(&pem).exists() {
                        self.existing(&pem)?;
                    } else {
                        // The bundle is derived from the pair, not a new secret.
                        let key_pem = store::read(&self.dir.join(&key))?;
                        self.create(&pem, format!("{cert_pem}{key_pem}").as_bytes())?;
                    }
                }
                (false, false) => {
                    if self.dir.join(&pem).exists() {
                        return Err(self.incomplete_pair(&host_dir, &pem, "host.crt and host.key"));
                    }
                    let issued = pki::issue(
                        self.ca()?,
                        &certificate.common_name,
                        &certificate.dns_names,
                        &certificate.ip_addresses,
                        days,
                    )?;
                    self.create(&key, issued.key_pem.as_bytes())?;
                    self.create(&crt, issued.cert_pem.as_bytes())?;
                    self.create(&pem, format!("{}{}", issued.cert_pem, issued.key_pem).as_bytes())?;
                }
                (crt_exists, _) => {
                    let (present, missing) = if crt_exists { (&crt, "host.key") } else { (&key, "host.crt") };
                    return Err(self.incomplete_pair(&host_dir, present, missing));
                }
            }
        }

        if let Some(lb) = &self.topology.lb {
            let public = public_certificate_file(self.topology);
            if self.dir.join(&public).exists() {
                self.existing(&public)?;
            } else {
                let domain = self.topology.stack.domain.clone();
                let issued = pki::issue(self.ca()?, &domain, std::slice::from_ref(&domain), &[lb.vip], days)?;
                self.create(&public, format!("{}{}", issued.cert_pem, issued.key_pem).as_bytes())?;
                if lb.tls == TlsMode::Provided {
                    self.report.notes.push(format!(
                        "{public} is signed by the internal CA so the lab works; on NixOS replace it with your real certificate and key (PEM, certificate first)"
                    ));
                }
            }
        }
        Ok(())
    }

    fn passwords(&mut self) -> Result<(), SecretsError> {
        let Some(db) = &self.topology.db else {
            return Ok(());
        };
        let mut files: Vec<String> = db.users.iter().map(|user| db_password_file(&user.name)).collect();
        files.push(MYSQL_ROOT_PASSWORD.into());
        if self.topology.monitoring.is_some() && self.topology.hosts.iter().any(|h| h.monitored && h.has(Role::Db)) {
            files.push(db_monitor_password_file());
        }
        if let Some(backup) = &db.backup {
            files.extend(restic_password_secret(self.topology, &backup.host));
        }
        for file in files {
            if self.dir.join(&file).exists() {
                self.existing(&file)?;
            } else {
                self.create(&file, random_password().as_bytes())?;
            }
        }
        Ok(())
    }

    fn monitoring_endpoint(&mut self) -> Result<(), SecretsError> {
        let Some(monitoring) = &self.topology.monitoring else {
            return Ok(());
        };
        let file = monitoring.endpoint_secret.clone();
        if self.dir.join(&file).exists() {
            self.existing(&file)?;
        } else {
            self.create(&file, SUMOLOGIC_PLACEHOLDER.as_bytes())?;
        }
        if is_placeholder(&store::read(&self.dir.join(&file))?) {
            self.report.notes.push(format!(
                "{file} is a placeholder: write your Sumo Logic HTTP source URL into it before deploying"
            ));
        }
        Ok(())
    }

    fn ca(&mut self) -> Result<&pki::Ca, SecretsError> {
        if self.ca.is_none() {
            let cert = store::read(&self.dir.join("ca.crt"))?;
            let key = store::read(&self.dir.join("ca.key"))?;
            self.ca = Some(pki::load_ca(&self.topology.stack.name, &cert, &key)?);
        }
        Ok(self.ca.as_ref().expect("set above"))
    }

    fn create(&mut self, relative: &str, bytes: &[u8]) -> Result<(), SecretsError> {
        store::create(&self.dir.join(relative), bytes)?;
        self.report.created.push(relative.to_string());
        Ok(())
    }

    /// Records an existing secret, tightening its mode if others could read it.
    fn existing(&mut self, relative: &str) -> Result<(), SecretsError> {
        if store::tighten(&self.dir.join(relative), store::FILE_MODE)? {
            self.report.notes.push(format!("{relative} was readable by others; its mode is now 0600"));
        }
        self.report.existing.push(relative.to_string());
        Ok(())
    }

    fn dir_0700(&mut self, path: &Path, relative: &str) -> Result<(), SecretsError> {
        if store::ensure_dir(path)? {
            self.report.notes.push(format!("directory {relative} was open to others; its mode is now 0700"));
        }
        Ok(())
    }

    fn incomplete_pair(&self, host_dir: &str, present: &str, missing: &str) -> SecretsError {
        SecretsError::Incomplete {
            what: host_dir.to_string(),
            present: present.to_string(),
            missing: missing.to_string(),
            advice: format!("move {host_dir} away and run again to issue a new certificate and key"),
        }
    }

    fn relative_list(&self, paths: &[&PathBuf]) -> String {
        paths
            .iter()
            .map(|path| path.strip_prefix(self.dir).unwrap_or(path).display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Whether an endpoint file still holds the placeholder.
pub fn is_placeholder(text: &str) -> bool {
    text.contains("REPLACE_ME")
}

fn random_password() -> String {
    OsRng.sample_iter(&Alphanumeric).take(PASSWORD_LENGTH).map(char::from).collect()
}
