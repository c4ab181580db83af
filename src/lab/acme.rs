//! Real ACME in the lab: pebble (Let's Encrypt's RFC 8555 test server, Debian's) in the
//! internet namespace with its own issuing root, and lego on every LB run as NixOS's acme unit
//! runs it ([`crate::stack::acme`]): each LB orders its own certificate, validated by pebble
//! with HTTP-01 through the VIP, whichever LB holds it. pebble resolves the domain with
//! pebble-challtestsrv's DNS, which answers the VIP for every name; nothing leaves the lab.
//!
//! Named deviations from NixOS: lego's `--server` is pebble's directory instead of Let's
//! Encrypt's, and lego trusts pebble's TLS certificate (issued by the lab's internal CA)
//! through `LEGO_CA_CERTIFICATES`; the unit's shell script (copying lego's files to
//! /var/lib/acme/<domain>, then reloading HAProxy) is the lab's own code, as for mysql's preStart.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::accounts;
use super::context::Lab;
use super::event::Event;
use super::probe::Request;
use super::process::{self, Launch};
use crate::spec::TlsMode;
use crate::stack::acme::{self, Order};
use crate::stack::address_plan::{host_netns, INTERNET};
use crate::stack::Layout;
use crate::topology::{Host, Topology};

/// The state file's host name for pebble's processes.
const PEBBLE_HOST: &str = "pebble";
/// pebble's ACME directory (on 443, as Let's Encrypt's: the LBs' firewall lets them reach the
/// internet on HTTPS only) and management (roots) ports, its DNS helper's port.
const DIRECTORY_PORT: u16 = 443;
const MANAGEMENT_PORT: u16 = 15000;
const DNS_PORT: u16 = 8053;

/// The acme unit's user and group (data/nixpkgs-units.toml `[acme]`; nixstack's group is HAProxy's).
const ACME_USER: &str = "acme";
const ACME_GROUP: &str = "haproxy";

/// Whether the lab runs ACME: the spec's LBs order their certificate.
pub fn enabled(topology: &Topology) -> bool {
    topology.lb.as_ref().is_some_and(|lb| lb.tls == TlsMode::Acme)
}

/// pebble's ACME directory URL, as lego is given it.
pub fn directory_url(lab: &Lab) -> String {
    format!("https://{}:{DIRECTORY_PORT}/dir", lab.plan.internet_address())
}

fn pebble_layout() -> Layout {
    Layout::lab(PEBBLE_HOST)
}

/// Starts pebble and its DNS helper in the internet namespace (unless they run). Returns
/// whether pebble's issuing root is new (pebble makes one per start): certificates issued
/// under an earlier root no longer validate and must be ordered again.
pub fn pebble_up(lab: &Lab) -> Result<bool> {
    let Some(lb) = &lab.topology.lb else { return Ok(false) };
    let address = lab.plan.internet_address();
    let layout = pebble_layout();
    for dir in [&layout.etc, &layout.log, &layout.secrets] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::set_permissions(&layout.secrets, std::fs::Permissions::from_mode(0o700))?;
    // pebble's own HTTPS listener: a certificate of the lab's internal CA for its address.
    let ca = read_secret("ca.crt")?;
    let authority = crate::secrets::load_ca(&lab.topology.stack.name, &ca, &read_secret("ca.key")?)?;
    let issued = crate::secrets::issue(&authority, "pebble", &[], &[address], lab.topology.host_certificate_days)?;
    std::fs::write(layout.secret("pebble.crt"), &issued.cert_pem)?;
    // What lego (running as the acme user) trusts pebble's listener by: the public CA certificate.
    std::fs::write(trusted_ca(), &ca)?;
    std::fs::set_permissions(trusted_ca(), std::fs::Permissions::from_mode(0o644))?;
    std::fs::write(layout.secret("pebble.key"), &issued.key_pem)?;
    let config = serde_json::json!({ "pebble": {
        "listenAddress": format!("{address}:{DIRECTORY_PORT}"),
        "managementListenAddress": format!("{address}:{MANAGEMENT_PORT}"),
        "certificate": layout.secret("pebble.crt"),
        "privateKey": layout.secret("pebble.key"),
        // HTTP-01 is validated on port 80 of the name, as Let's Encrypt does.
        "httpPort": 80,
        "tlsPort": 443,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
    }});
    std::fs::write(layout.config("pebble.json"), serde_json::to_string_pretty(&config)?)?;

    let standin = |program: &str, args: Vec<String>, env: Vec<(String, String)>, log: &str| Launch {
        program: program.into(),
        args,
        env,
        netns: INTERNET.into(),
        hostname: PEBBLE_HOST.into(),
        log: layout.log_file(log),
        credentials: None,
        umask: 0o022,
    };
    let dns = standin(
        "/usr/bin/pebble-challtestsrv",
        [
            "-defaultIPv4",
            &lb.vip.to_string(),
            // No AAAA answer: the lab's public side is IPv4 (else pebble dials [::1]).
            "-defaultIPv6",
            "",
            "-dns01",
            &format!("{address}:{DNS_PORT}"),
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-management",
            &format!("127.0.0.1:{}", DNS_PORT + 2),
        ]
        .map(String::from)
        .into(),
        Vec::new(),
        "challtestsrv.log",
    );
    lab.ensure_standin(PEBBLE_HOST, "challtestsrv", &dns, || {
        Ok(listening(address, DNS_PORT, true)
            .then(|| format!("DNS on {address}:{DNS_PORT}: every name is the VIP {}", lb.vip)))
    })?;
    let pebble = standin(
        "/usr/bin/pebble",
        vec![
            "-config".into(),
            layout.config("pebble.json").display().to_string(),
            "-dnsserver".into(),
            format!("{address}:{DNS_PORT}"),
        ],
        // No artificial validation delay; no injected bad nonces (lego retries them, but
        // they only slow the lab down).
        vec![("PEBBLE_VA_NOSLEEP".into(), "1".into()), ("PEBBLE_WFE_NONCEREJECT".into(), "0".into())],
        "pebble.log",
    );
    let url = format!("https://{address}:{DIRECTORY_PORT}/dir");
    lab.ensure_standin(PEBBLE_HOST, "pebble", &pebble, || {
        let response = Request::get(&url).cacert(super::secrets_dir().join("ca.crt")).send(INTERNET)?;
        Ok((response.status == 200 && response.body.contains("newOrder")).then(|| format!("ACME directory {url}")))
    })?;
    let root = root_certificate(lab)?;
    let known = std::fs::read_to_string(root_file()).unwrap_or_default();
    if known == root {
        return Ok(false);
    }
    for file in [root_file(), super::public_trust()] {
        std::fs::write(&file, &root).with_context(|| format!("cannot write {}", file.display()))?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(true)
}

/// pebble's current issuing root, as the lab saved it.
fn root_file() -> PathBuf {
    pebble_layout().config("root.pem")
}

/// The lab CA's certificate, readable by lego: `LEGO_CA_CERTIFICATES`.
fn trusted_ca() -> PathBuf {
    pebble_layout().config("lab-ca.crt")
}

fn read_secret(name: &str) -> Result<String> {
    let path = super::secrets_dir().join(name);
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
}

/// Whether something listens on `address:port` in the internet namespace (UDP for DNS).
fn listening(address: std::net::Ipv4Addr, port: u16, udp: bool) -> bool {
    let flag = if udp { "-Hlun" } else { "-Hltn" };
    super::cmd::Cmd::new("ss")
        .args([flag, &format!("sport = :{port}")])
        .netns(INTERNET)
        .run()
        .is_ok_and(|out| out.stdout.contains(&format!("{address}:{port}")))
}

/// The placeholder HAProxy serves until the first order succeeds (NixOS: acme-<cert>.service's
/// self-signed certificate): the lab's certificate for the domain from its internal CA.
/// Owned by the acme unit's user and group (HAProxy's), as the unit leaves it.
pub fn ensure_placeholder(lab: &Lab, layout: &Layout) -> Result<()> {
    let domain = &lab.topology.stack.domain;
    let full = layout.public_pem(domain, true);
    if full.exists() {
        return Ok(());
    }
    let (uid, gid) = acme_ids(lab)?;
    let dir = acme::cert_dir(layout, domain);
    std::fs::create_dir_all(&dir)?;
    std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750))?;
    let placeholder = std::fs::read_to_string(layout.secret("public.pem"))
        .with_context(|| format!("cannot read {}", layout.secret("public.pem").display()))?;
    write_private(&full, &placeholder)?;
    std::os::unix::fs::chown(&full, Some(uid), Some(gid))?;
    Ok(())
}

/// The acme unit's user and group on this machine (created when Debian lacks them).
fn acme_ids(lab: &Lab) -> Result<(u32, u32)> {
    let (uid, _) = accounts::ensure_user(lab.state, ACME_USER, ACME_GROUP)?;
    Ok((uid, accounts::ensure_group(lab.state, ACME_GROUP)?))
}

/// Orders (or renews) the certificate of LB `host` from pebble with the acme unit's lego
/// command and installs it where HAProxy reads it; the caller reloads HAProxy
/// ([`super::daemons::reload`], as the unit's `reloadServices`).
pub fn order(lab: &Lab, host: &Host, order: Order) -> Result<()> {
    let layout = Layout::lab(&host.name);
    let domain = lab.topology.stack.domain.clone();
    let (uid, gid) = acme_ids(lab)?;
    let work = acme::lego_dir(&layout, &domain);
    for dir in [work.as_path(), acme::cert_dir(&layout, &domain).as_path()] {
        std::fs::create_dir_all(dir)?;
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))?;
    }
    chown_tree(&work, uid, gid)?;
    let argv = acme::lego_argv(lab.topology, host, &layout, &directory_url(lab), order);
    let launch = Launch {
        program: "/usr/bin/lego".into(),
        args: argv[1..].to_vec(),
        env: vec![
            ("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into()),
            ("LEGO_CA_CERTIFICATES".into(), trusted_ca().display().to_string()),
        ],
        netns: host_netns(&host.name),
        hostname: host.name.clone(),
        log: layout.log_file("lego.log"),
        credentials: Some(process::Credentials { uid, gid, groups: vec![gid], ambient: Vec::new() }),
        umask: 0o022,
    };
    let output = process::run_unit_command(
        &launch,
        &[launch.program.clone()].into_iter().chain(launch.args.clone()).collect::<Vec<_>>(),
    )
    .with_context(|| format!("{}: lego {}", host.name, argv.join(" ")))?;
    let (certificate, key) = acme::lego_outputs(&layout, &domain);
    let chain = std::fs::read_to_string(&certificate)
        .with_context(|| format!("{}: lego left no {} ({})", host.name, certificate.display(), output.trim()))?;
    let key = std::fs::read_to_string(&key)?;
    // The acme unit's script: fullchain.pem, key.pem and full.pem = key + fullchain.
    let dir = acme::cert_dir(&layout, &domain);
    write_private(&dir.join("fullchain.pem"), &chain)?;
    write_private(&dir.join("key.pem"), &key)?;
    write_private(&layout.public_pem(&domain, true), &format!("{key}{chain}"))?;
    for name in ["fullchain.pem", "key.pem", "full.pem"] {
        std::os::unix::fs::chown(dir.join(name), Some(uid), Some(gid))?;
    }
    let (serial, issuer) = certificate_facts(&certificate)?;
    lab.reporter.emit(Event::Applied {
        host: host.name.clone(),
        what: format!("certificate for {domain} from pebble (serial {serial}, issuer {issuer})"),
    });
    Ok(())
}

/// Orders a certificate on every LB that does not hold one of pebble's yet, or on every LB
/// when pebble's root is new (`lab up`); returns the LBs that got one.
pub fn order_missing<'t>(lab: &Lab<'t>, new_root: bool) -> Result<Vec<&'t Host>> {
    let Some(lb) = &lab.topology.lb else { return Ok(Vec::new()) };
    let mut results = Vec::new();
    for name in &lb.hosts {
        let host = lab.topology.host(name).expect("LB names come from the topology");
        let layout = Layout::lab(name);
        let (certificate, _) = acme::lego_outputs(&layout, &lab.topology.stack.domain);
        if !new_root && certificate.exists() && layout.public_pem(&lab.topology.stack.domain, true).exists() {
            continue;
        }
        order(lab, host, Order::Run)?;
        results.push(host);
    }
    Ok(results)
}

/// pebble's issuing root (`/roots/0` of its management API): what a client trusts.
fn root_certificate(lab: &Lab) -> Result<String> {
    let url = format!("https://{}:{MANAGEMENT_PORT}/roots/0", lab.plan.internet_address());
    let response = Request::get(&url)
        .cacert(super::secrets_dir().join("ca.crt"))
        .timeout(Duration::from_secs(5))
        .send(INTERNET)?;
    if response.status != 200 || !response.body.contains("BEGIN CERTIFICATE") {
        bail!("pebble's root from {url}: {} {}", response.status, response.body);
    }
    Ok(response.body)
}

/// Serial and issuer of the first certificate in `pem`.
fn certificate_facts(pem: &Path) -> Result<(String, String)> {
    let output = super::cmd::Cmd::new("openssl")
        .args(["x509", "-noout", "-serial", "-issuer", "-in"])
        .arg(pem.display().to_string())
        .run()?;
    let field = |prefix: &str| {
        output.stdout.lines().find_map(|l| l.strip_prefix(prefix)).map(|v| v.trim().to_string()).unwrap_or_default()
    };
    Ok((field("serial="), field("issuer=")))
}

/// Writes `text` to `path` via a temporary file and a rename, mode 0640.
fn write_private(path: &Path, text: &str) -> Result<()> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text).with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o640))?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}

fn chown_tree(dir: &Path, uid: u32, gid: u32) -> Result<()> {
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
        if path.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        }
    }
    Ok(())
}
