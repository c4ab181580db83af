//! `nixstack secrets rotate`: renews the host certificates in the secrets directory with the
//! CA they already chain to, and reports what is about to expire (`check`, `audit`).
//!
//! New keys, not the old ones: a certificate's short life bounds how long a copied key is
//! worth anything only if the key changes with it, and nothing here pins a key (every
//! daemon reads the pair from its files at reload), so a new key costs nothing. The CA is
//! kept: every host trusts `ca.crt`, and the renewed certificates chain to it, so hosts
//! that still serve the old certificate and hosts that serve the new one trust each other
//! during a rollout.
//!
//! Nothing half-written: every new certificate is issued in memory, then every file is
//! staged (written and fsynced beside its target), and only then are the files renamed into
//! place, each with `rename(2)`. An error before the renames leaves the directory as it
//! was. The set of renames is not atomic (POSIX has no multi-file rename): a crash during
//! them can leave a host with a new key and the old certificate; running rotate again
//! renews that host whole.

use std::path::Path;

use super::{pki, public_certificate_file, store, SecretsError};
use crate::audit::{Finding, Severity};
use crate::spec::Role;
use crate::topology::Topology;

/// `check` warns this many days before a certificate in the secrets directory expires.
pub const EXPIRY_WARNING_DAYS: u64 = 30;

/// One certificate a rotation renewed. `file` is relative to the secrets directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewed {
    pub file: String,
    pub old_serial: String,
    pub serial: String,
    /// Seconds since the epoch.
    pub not_after: u64,
}

/// What a rotation did: the certificates renewed, and notes for the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotateReport {
    pub renewed: Vec<Renewed>,
    pub notes: Vec<String>,
}

/// Renews the certificates of `hosts` (every host when empty) in `dir`, and the LBs'
/// public bundle when it is the internal CA's own (the lab's `public.pem`) and an LB is
/// among them. Each must exist already (`nixstack secrets init` issues the first ones).
pub fn rotate(topology: &Topology, dir: &Path, hosts: &[String]) -> Result<RotateReport, SecretsError> {
    for name in hosts {
        if !topology.certificates.iter().any(|c| &c.host == name) {
            let known: Vec<&str> = topology.certificates.iter().map(|c| c.host.as_str()).collect();
            return Err(SecretsError::Invalid {
                file: "--hosts".into(),
                reason: format!("{name:?} is not a host of the spec (its hosts: {})", known.join(", ")),
            });
        }
    }
    let selected: Vec<_> =
        topology.certificates.iter().filter(|c| hosts.is_empty() || hosts.contains(&c.host)).collect();
    let (ca_crt, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    if !ca_crt.exists() || !ca_key.exists() {
        return Err(SecretsError::Incomplete {
            what: "the internal CA".into(),
            present: [&ca_crt, &ca_key]
                .iter()
                .filter(|p| p.exists())
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
            missing: "ca.crt and ca.key".into(),
            advice: format!(
                "run `nixstack secrets init --dir {}` first: rotate renews what init issued",
                dir.display()
            ),
        });
    }
    let ca = pki::load_ca(&topology.stack.name, &store::read(&ca_crt)?, &store::read(&ca_key)?)?;
    let days = topology.host_certificate_days;

    // 1. Issue everything in memory.
    let mut report = RotateReport::default();
    let mut files: Vec<(String, String)> = Vec::new();
    for certificate in &selected {
        let host_dir = format!("hosts/{}", certificate.host);
        let crt = format!("{host_dir}/host.crt");
        let old = read_existing(dir, &crt, &host_dir)?;
        let issued =
            pki::issue(&ca, &certificate.common_name, &certificate.dns_names, &certificate.ip_addresses, days)?;
        report.renewed.push(renewed(&crt, &old, &issued.cert_pem));
        files.push((format!("{host_dir}/host.key"), issued.key_pem.clone()));
        files.push((crt, issued.cert_pem.clone()));
        files.push((format!("{host_dir}/host.pem"), format!("{}{}", issued.cert_pem, issued.key_pem)));
    }
    let lb_selected = hosts.is_empty() || topology.hosts.iter().any(|h| h.has(Role::Lb) && hosts.contains(&h.name));
    if let (Some(lb), true) = (&topology.lb, lb_selected) {
        let public = public_certificate_file(topology);
        match std::fs::read_to_string(dir.join(&public)) {
            Ok(old) if signed_by_internal_ca(&old, topology) => {
                let domain = topology.stack.domain.clone();
                let issued = pki::issue(&ca, &domain, std::slice::from_ref(&domain), &[lb.vip], days)?;
                report.renewed.push(renewed(&public, &old, &issued.cert_pem));
                files.push((public, format!("{}{}", issued.cert_pem, issued.key_pem)));
            }
            Ok(_) => report.notes.push(format!(
                "{public} is not signed by the internal CA (your own certificate): renew it where it was issued"
            )),
            Err(_) => report.notes.push(format!("{public} does not exist: `nixstack secrets init` creates it")),
        }
    }

    // 2. Stage every file; any error here drops the staged files and changes nothing.
    let staged = files
        .iter()
        .map(|(relative, text)| store::stage(&dir.join(relative), text.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    // 3. Rename each into place.
    for file in staged {
        file.commit()?;
    }
    // 4. With sops or agenix the hosts read the encrypted copies: encrypt the renewed hosts'
    //    secrets again (init encrypts what is missing). A failure here leaves the plaintext
    //    renewed and `nixstack secrets init` encrypting what is still missing.
    if !topology.secrets.backend.deploy_uploads() {
        let public_renewed = report.renewed.iter().any(|r| r.file == public_certificate_file(topology));
        let mut stale: Vec<String> = Vec::new();
        for host in &topology.hosts {
            if selected.iter().any(|c| c.host == host.name) || (public_renewed && host.has(Role::Lb)) {
                stale.extend(super::backend::host_encrypted_files(topology, &host.name));
            }
        }
        for local in &stale {
            store::remove(&dir.join(local))?;
        }
        super::init(topology, dir)?;
        report.notes.push(format!(
            "{} encrypted file(s) of the renewed hosts encrypted again for {}: run `nixstack build` to ship them",
            stale.len(),
            topology.secrets.backend.as_str()
        ));
    }
    Ok(report)
}

fn read_existing(dir: &Path, crt: &str, host_dir: &str) -> Result<String, SecretsError> {
    let missing: Vec<&str> =
        ["host.crt", "host.key"].into_iter().filter(|name| !dir.join(host_dir).join(name).exists()).collect();
    if !missing.is_empty() {
        return Err(SecretsError::Incomplete {
            what: host_dir.to_string(),
            present: String::new(),
            missing: missing.join(" and "),
            advice: "run `nixstack secrets init` to issue its first certificate; nothing was renewed".into(),
        });
    }
    store::read(&dir.join(crt))
}

fn renewed(file: &str, old: &str, new: &str) -> Renewed {
    let old = pki::validity(old);
    let new = pki::validity(new).expect("a certificate just issued parses");
    Renewed {
        file: file.to_string(),
        old_serial: old.map(|v| v.serial).unwrap_or_else(|| "?".into()),
        serial: new.serial,
        not_after: new.not_after,
    }
}

/// Whether the first certificate of `pem` names the stack's internal CA (as its issuer:
/// a certificate from elsewhere does not carry that name).
fn signed_by_internal_ca(pem: &str, topology: &Topology) -> bool {
    let name = pki::ca_name(&topology.stack.name);
    pki::pem_body(pem, "CERTIFICATE").is_some_and(|der| der.windows(name.len()).any(|w| w == name.as_bytes()))
}

/// The certificates of the secrets directory that expire within [`EXPIRY_WARNING_DAYS`]
/// of `now` (a warning) or have expired (an error), each named by file and date. Files
/// that do not exist are not reported (`secrets init` has not run).
pub fn expiry_findings(topology: &Topology, dir: &Path, now: u64) -> Vec<Finding> {
    let mut files: Vec<(String, Vec<String>)> = vec![("ca.crt".to_string(), Vec::new())];
    files.extend(topology.certificates.iter().map(|c| (format!("hosts/{}/host.crt", c.host), vec![c.host.clone()])));
    if topology.lb.is_some() {
        let lbs = topology.hosts.iter().filter(|h| h.has(Role::Lb)).map(|h| h.name.clone()).collect();
        files.push((public_certificate_file(topology), lbs));
    }
    let mut findings = Vec::new();
    for (file, hosts) in files {
        let path = dir.join(&file);
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let shown = path.display().to_string();
        let Some(validity) = pki::validity(&text) else {
            findings.push(Finding {
                severity: Severity::Warning,
                code: "certificate-unreadable",
                message: format!("{shown} holds no certificate nixstack can read"),
                hosts,
                flows: Vec::new(),
                fix: "restore it, or move it away and run `nixstack secrets init`".into(),
            });
            continue;
        };
        let fix = if file == "ca.crt" {
            "the internal CA cannot be rotated in place: move secrets/ away, run `nixstack secrets init` and deploy"
                .to_string()
        } else {
            format!("nixstack secrets rotate --dir {}, then nixstack deploy", dir.display())
        };
        let date = pki::date(validity.not_after);
        if validity.not_after <= now {
            findings.push(Finding {
                severity: Severity::Error,
                code: "certificate-expired",
                message: format!("{shown} expired on {date} (serial {})", validity.serial),
                hosts,
                flows: Vec::new(),
                fix,
            });
        } else if validity.not_after - now < EXPIRY_WARNING_DAYS * 86_400 {
            let days = (validity.not_after - now).div_ceil(86_400);
            findings.push(Finding {
                severity: Severity::Warning,
                code: "certificate-expiring",
                message: format!("{shown} expires on {date}, in {days} day(s) (serial {})", validity.serial),
                hosts,
                flows: Vec::new(),
                fix,
            });
        }
    }
    findings
}
