//! `nixstack secrets init` on real temporary directories: idempotence and modes, the
//! certificates checked by `openssl`, what each host gets, and the leak scan: no private key
//! and no secret value appears in any file `nixstack build` writes.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nixstack::output::{self, WriteMode};
use nixstack::secrets::{self, host_secrets};
use nixstack::spec::SpecSource;
use nixstack::topology::Topology;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn spec(path: &str) -> SpecSource {
    SpecSource { name: path.into(), text: std::fs::read_to_string(Path::new(REPO).join(path)).unwrap() }
}

fn topology(source: &SpecSource) -> Topology {
    nixstack::cli::compile(source).unwrap_or_else(|e| panic!("{e}"))
}

fn temp() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("nixstack-secrets-test-").tempdir().unwrap()
}

/// Every file and directory under `dir`: relative path → (mode, bytes; empty for directories).
fn entries(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, found: &mut BTreeMap<String, (u32, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            if path.is_dir() {
                found.insert(format!("{relative}/"), (mode, Vec::new()));
                walk(root, &path, found);
            } else {
                found.insert(relative, (mode, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut found = BTreeMap::new();
    walk(dir, dir, &mut found);
    found
}

/// Runs openssl; a missing binary fails the test with the fix.
fn openssl(args: &[&str]) -> (bool, String) {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl ({e}): run scripts/setup"));
    (
        output.status.success(),
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
    )
}

/// The subject alternative names of a certificate as openssl prints them.
fn sans(cert: &Path) -> Vec<String> {
    let (ok, text) = openssl(&["x509", "-noout", "-ext", "subjectAltName", "-in", cert.to_str().unwrap()]);
    assert!(ok, "{text}");
    let mut names: Vec<String> =
        text.lines().nth(1).unwrap_or_default().split(',').map(|s| s.trim().to_string()).collect();
    names.sort();
    names
}

fn verify(ca: &Path, cert: &Path) {
    let (ok, text) = openssl(&["verify", "-CAfile", ca.to_str().unwrap(), cert.to_str().unwrap()]);
    assert!(ok && text.contains(": OK"), "openssl verify {}: {text}", cert.display());
}

// ---------------------------------------------------------------------------------------

#[test]
fn init_twice_creates_once_with_private_modes_and_rewrites_nothing() {
    let work = temp();
    let dir = work.path().join("secrets");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_nixstack"))
            .args(["secrets", "init", "examples/default.toml", "--dir", dir.to_str().unwrap()])
            .current_dir(REPO)
            .output()
            .unwrap()
    };
    let first = run();
    assert_eq!(first.status.code(), Some(0), "{}", String::from_utf8_lossy(&first.stderr));
    let created = entries(&dir);
    let n_files = created.keys().filter(|p| !p.ends_with('/')).count();
    // CA 2 + 11 hosts × 3 + public.pem + db-shop, db-monitor, mysql-root + sumologic-endpoint.
    assert_eq!(n_files, 2 + 11 * 3 + 5, "{:#?}", created.keys());
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    for (path, (mode, _)) in &created {
        let expected = if path.ends_with('/') { 0o700 } else { 0o600 };
        assert_eq!(*mode, expected, "{path} has mode {mode:o}");
    }
    for file in ["db-shop.password", "db-monitor.password", "mysql-root.password"] {
        let password = String::from_utf8(created[file].1.clone()).unwrap();
        assert_eq!(password.len(), 32);
        assert!(password.chars().all(|c| c.is_ascii_alphanumeric()), "{password}");
    }
    assert_ne!(created["db-shop.password"].1, created["mysql-root.password"].1);
    assert_eq!(created["sumologic-endpoint"].1, secrets::SUMOLOGIC_PLACEHOLDER.as_bytes());

    let second = run();
    assert_eq!(second.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains(&format!("{n_files} existing, 0 created")), "{stdout}");
    assert_eq!(entries(&dir), created, "a second init changes no byte and no mode");
}

#[test]
fn certificates_chain_to_the_ca_and_name_their_host() {
    let work = temp();
    let source = spec("examples/default.toml");
    let topology = topology(&source);
    secrets::init(&topology, work.path()).unwrap();
    let ca = work.path().join("ca.crt");

    let (ok, text) = openssl(&["x509", "-noout", "-subject", "-ext", "basicConstraints", "-in", ca.to_str().unwrap()]);
    assert!(ok && text.contains("CN = shop internal CA") && text.contains("CA:TRUE"), "{text}");

    for certificate in &topology.certificates {
        let host_dir = work.path().join("hosts").join(&certificate.host);
        let crt = host_dir.join("host.crt");
        verify(&ca, &crt);
        let mut expected: Vec<String> = certificate.dns_names.iter().map(|n| format!("DNS:{n}")).collect();
        expected.extend(certificate.ip_addresses.iter().map(|ip| format!("IP Address:{ip}")));
        expected.sort();
        assert_eq!(sans(&crt), expected, "{}", certificate.host);
        let (ok, text) = openssl(&["x509", "-noout", "-ext", "extendedKeyUsage", "-in", crt.to_str().unwrap()]);
        assert!(
            ok && text.contains("TLS Web Server Authentication") && text.contains("TLS Web Client Authentication"),
            "{text}"
        );
        // host.pem is the certificate then the key, and the key belongs to the certificate.
        let pem = std::fs::read_to_string(host_dir.join("host.pem")).unwrap();
        let cert_text = std::fs::read_to_string(&crt).unwrap();
        let key_text = std::fs::read_to_string(host_dir.join("host.key")).unwrap();
        assert_eq!(pem, format!("{cert_text}{key_text}"));
        let (_, cert_pub) = openssl(&["x509", "-noout", "-pubkey", "-in", crt.to_str().unwrap()]);
        let (_, key_pub) = openssl(&["pkey", "-pubout", "-in", host_dir.join("host.key").to_str().unwrap()]);
        assert_eq!(cert_pub, key_pub, "{}: key and certificate match", certificate.host);
    }

    let public = work.path().join("public.pem");
    verify(&ca, &public);
    let vip = topology.lb.as_ref().unwrap().vip;
    assert_eq!(sans(&public), vec![format!("DNS:{}", topology.stack.domain), format!("IP Address:{vip}")]);
}

#[test]
fn a_new_host_gets_only_its_certificate_signed_by_the_same_ca() {
    let work = temp();
    let source = spec("examples/default.toml");
    secrets::init(&topology(&source), work.path()).unwrap();
    let before = entries(work.path());

    let grown = SpecSource {
        name: "grown.toml".into(),
        text: source
            .text
            .replace("[hosts.app1]", "[hosts.web4]\naddress = \"10.10.0.24\"\nroles = [\"web\"]\n\n[hosts.app1]"),
    };
    let report = secrets::init(&topology(&grown), work.path()).unwrap();
    assert_eq!(report.created, vec!["hosts/web4/host.crt", "hosts/web4/host.key", "hosts/web4/host.pem"]);
    assert_eq!(report.existing.len(), before.keys().filter(|p| !p.ends_with('/')).count());
    let after = entries(work.path());
    for (path, entry) in &before {
        assert_eq!(&after[path], entry, "{path} is unchanged");
    }
    verify(&work.path().join("ca.crt"), &work.path().join("hosts/web4/host.crt"));
    assert!(sans(&work.path().join("hosts/web4/host.crt")).contains(&"IP Address:10.10.0.24".to_string()));
}

#[test]
fn a_half_missing_ca_is_an_error_and_nothing_is_created() {
    let work = temp();
    let topology = topology(&spec("examples/default.toml"));
    secrets::init(&topology, work.path()).unwrap();
    std::fs::remove_file(work.path().join("ca.key")).unwrap();
    std::fs::remove_dir_all(work.path().join("hosts/web1")).unwrap();
    let error = secrets::init(&topology, work.path()).unwrap_err().to_string();
    assert!(error.contains("ca.key"), "{error}");
    assert!(!work.path().join("hosts/web1").exists(), "no certificate is issued by a CA that cannot be loaded");

    // Without any CA but with certificates it issued, a new CA is refused too.
    std::fs::remove_file(work.path().join("ca.crt")).unwrap();
    let error = secrets::init(&topology, work.path()).unwrap_err().to_string();
    assert!(error.contains("hosts/web2/host.crt"), "{error}");
    assert!(!work.path().join("ca.crt").exists());
}

#[test]
fn each_host_gets_exactly_the_secrets_its_roles_need() {
    let work = temp();
    let topology = topology(&spec("examples/default.toml"));
    secrets::init(&topology, work.path()).unwrap();
    let names = |host: &str| -> Vec<String> {
        let files = host_secrets(&topology, host, work.path());
        for (local, name) in &files {
            assert!(local.exists(), "{host}: {} ({name}) exists after init", local.display());
        }
        let mut names: Vec<String> = files.into_iter().map(|(_, name)| name).collect();
        names.sort();
        names
    };
    let base = ["ca.crt", "host.crt", "host.key", "host.pem", "sumologic-endpoint"];
    let with = |extra: &[&str]| {
        let mut all: Vec<String> = base.iter().chain(extra).map(|s| s.to_string()).collect();
        all.sort();
        all
    };
    assert_eq!(names("lb1"), with(&["public.pem"]));
    assert_eq!(names("web1"), with(&[]));
    assert_eq!(names("app1"), with(&["db-shop.password"]));
    assert_eq!(names("db1"), with(&["db-monitor.password", "db-shop.password", "mysql-root.password"]));
    assert!(names("nosuchhost").is_empty());
    assert_eq!(
        host_secrets(&topology, "web1", work.path())[1].0,
        work.path().join("hosts/web1/host.crt"),
        "the local file is the host's own certificate"
    );

    // A provided public certificate is kept under its secret name and lands as public.pem.
    let whiteboard = topology_of("examples/whiteboard.toml");
    let lb = host_secrets(&whiteboard, "lb", work.path());
    let public = lb.iter().find(|(_, name)| name == "public.pem").expect("the LB gets public.pem");
    assert_eq!(public.0, work.path().join(whiteboard.lb.as_ref().unwrap().certificate_secret.as_ref().unwrap()));
}

fn topology_of(path: &str) -> Topology {
    topology(&spec(path))
}

// ---------------------------------------------------------------------------------------
// The leak scan

/// Values that must never appear in a generated file: every password, every line of every
/// private key, the monitoring endpoint. Labelled by the secret file they come from.
fn secret_values(dir: &Path) -> Vec<(String, String)> {
    let mut values = Vec::new();
    for (path, (_, bytes)) in entries(dir) {
        if path.ends_with('/') {
            continue;
        }
        let text = String::from_utf8(bytes).unwrap();
        if let Some(start) = text.find("-----BEGIN PRIVATE KEY-----") {
            let key = &text[start..];
            for line in key.lines().filter(|l| !l.starts_with("-----") && l.len() >= 16) {
                values.push((format!("{path} (private key)"), line.to_string()));
            }
        } else if !text.contains("-----BEGIN CERTIFICATE-----") {
            values.push((path.clone(), text.trim().to_string()));
        }
    }
    values
}

/// Every leak in `files`: private-key markers and secret values, as `path: what`.
fn scan(files: &BTreeMap<String, Vec<u8>>, secrets: &[(String, String)]) -> Vec<String> {
    let mut leaks = Vec::new();
    for (path, bytes) in files {
        let text = String::from_utf8_lossy(bytes);
        if text.contains("PRIVATE KEY") {
            leaks.push(format!("{path}: a private-key marker"));
        }
        for (label, value) in secrets {
            if text.contains(value.as_str()) {
                leaks.push(format!("{path}: the value of {label}"));
            }
        }
    }
    leaks
}

/// What `nixstack build` writes for `spec_path`, as the files on disk.
fn built_files(spec_path: &str, out: &Path) -> BTreeMap<String, Vec<u8>> {
    let source = spec(spec_path);
    let artifacts = output::artifacts(&topology(&source));
    assert!(
        artifacts.keys().any(|p| p.starts_with("hosts/")),
        "{spec_path}: render::tree::artifacts rendered no host files (the tree renderer has not landed), so nothing can be scanned"
    );
    output::write(out, &artifacts, WriteMode::Write, false).unwrap();
    let mut files = BTreeMap::new();
    let mut stack = vec![out.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(
                    path.strip_prefix(out).unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    files
}

#[test]
fn no_generated_file_contains_a_private_key_or_a_secret_value() {
    for spec_path in ["examples/default.toml", "examples/whiteboard.toml"] {
        let work = temp();
        let dir = work.path().join("secrets");
        let topology = topology_of(spec_path);
        // An operator's real endpoint, written before init (which keeps it).
        std::fs::create_dir_all(&dir).unwrap();
        let endpoint = topology.monitoring.as_ref().unwrap().endpoint_secret.clone();
        std::fs::write(dir.join(&endpoint), "https://collectors.sumologic.com/receiver/v1/http/ZaVnC4dhaV0tD8x5l6yMpQ")
            .unwrap();
        secrets::init(&topology, &dir).unwrap();
        let values = secret_values(&dir);
        assert!(values.len() > 20, "{spec_path}: the scan looks for every secret ({} values)", values.len());

        let files = built_files(spec_path, &work.path().join("out"));
        let leaks = scan(&files, &values);
        assert!(leaks.is_empty(), "{spec_path}: secrets leaked into generated files:\n{}", leaks.join("\n"));
    }
}

#[test]
fn the_leak_scanner_finds_an_injected_secret() {
    let work = temp();
    let dir = work.path().join("secrets");
    let topology = topology_of("examples/default.toml");
    secrets::init(&topology, &dir).unwrap();
    let values = secret_values(&dir);
    let password = std::fs::read_to_string(dir.join("db-shop.password")).unwrap();
    let key = std::fs::read_to_string(dir.join("hosts/db1/host.key")).unwrap();
    let key_line = key.lines().nth(1).unwrap().to_string();

    // A copy of a real artifact (or of a stand-in while the tree renderer is a stub).
    let artifacts = output::artifacts(&topology);
    let (path, text) = artifacts
        .iter()
        .find(|(path, _)| path.ends_with(".nix"))
        .map(|(p, t)| (p.clone(), t.clone()))
        .unwrap_or_else(|| ("hosts/db1/default.nix".into(), "{ }\n".into()));
    let clean = BTreeMap::from([(path.clone(), text.clone().into_bytes())]);
    assert!(scan(&clean, &values).is_empty());

    let with_password = BTreeMap::from([(path.clone(), format!("{text}  password = \"{password}\";\n").into_bytes())]);
    assert_eq!(scan(&with_password, &values), vec![format!("{path}: the value of db-shop.password")]);

    let with_key_line = BTreeMap::from([(path.clone(), format!("{text}# {key_line}\n").into_bytes())]);
    // The same key is also inside host.pem: both are named.
    let leaks = scan(&with_key_line, &values);
    assert!(leaks.contains(&format!("{path}: the value of hosts/db1/host.key (private key)")), "{leaks:?}");
    assert!(leaks.contains(&format!("{path}: the value of hosts/db1/host.pem (private key)")), "{leaks:?}");

    let with_marker = BTreeMap::from([(path.clone(), format!("{text}-----BEGIN EC PRIVATE KEY-----\n").into_bytes())]);
    assert_eq!(scan(&with_marker, &values), vec![format!("{path}: a private-key marker")]);
}

/// `openssl x509 -noout <field>` of a certificate file, e.g. `serial=…`.
fn x509_field(cert: &Path, field: &str) -> String {
    let (ok, text) = openssl(&["x509", "-noout", field, "-in", cert.to_str().unwrap()]);
    assert!(ok, "{text}");
    text.trim().to_string()
}

/// `notAfter - notBefore` in days, from openssl's own reading of the dates (`date -d`).
fn lifetime_days(cert: &Path) -> i64 {
    let epoch = |field: &str| {
        let text = x509_field(cert, field);
        let date = text.split_once('=').unwrap().1.to_string();
        let out = Command::new("date").args(["-u", "-d", &date, "+%s"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse::<i64>().unwrap()
    };
    (epoch("-enddate") - epoch("-startdate")) / 86_400
}

#[test]
fn host_certificates_live_90_days_and_the_ca_keeps_its_long_life() {
    let work = temp();
    let topology = topology(&spec("examples/default.toml"));
    assert_eq!(topology.host_certificate_days, 90);
    secrets::init(&topology, work.path()).unwrap();
    for certificate in &topology.certificates {
        let crt = work.path().join("hosts").join(&certificate.host).join("host.crt");
        // Valid from an hour ago: 90 days and one hour.
        assert_eq!(lifetime_days(&crt), 90, "{}", certificate.host);
    }
    assert_eq!(lifetime_days(&work.path().join("public.pem")), 90);
    assert!(lifetime_days(&work.path().join("ca.crt")) > 20 * 365, "the CA lives long");
}

#[test]
fn rotate_renews_certificates_and_keys_with_the_same_ca_and_nothing_else() {
    let work = temp();
    let topology = topology(&spec("examples/default.toml"));
    secrets::init(&topology, work.path()).unwrap();
    let before = entries(work.path());
    let ca = work.path().join("ca.crt");

    let report = secrets::rotate(&topology, work.path(), &[]).unwrap();
    assert_eq!(report.renewed.len(), topology.certificates.len() + 1, "every host and public.pem");
    let after = entries(work.path());
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>(), "no file added or left behind");
    for (path, (mode, bytes)) in &before {
        let renewed = path.starts_with("hosts/") && !path.ends_with('/') || path == "public.pem";
        assert_eq!(after[path].0, *mode, "{path} keeps its mode");
        assert_eq!(&after[path].1 != bytes, renewed, "{path} renewed: {renewed}");
    }
    for certificate in &topology.certificates {
        let dir = work.path().join("hosts").join(&certificate.host);
        verify(&ca, &dir.join("host.crt"));
        let (_, cert_pub) = openssl(&["x509", "-noout", "-pubkey", "-in", dir.join("host.crt").to_str().unwrap()]);
        let (_, key_pub) = openssl(&["pkey", "-pubout", "-in", dir.join("host.key").to_str().unwrap()]);
        assert_eq!(cert_pub, key_pub, "{}: the new key belongs to the new certificate", certificate.host);
        let renewed = report.renewed.iter().find(|r| r.file == format!("hosts/{}/host.crt", certificate.host)).unwrap();
        assert_eq!(x509_field(&dir.join("host.crt"), "-serial"), format!("serial={}", renewed.serial));
        assert_ne!(renewed.serial, renewed.old_serial);
        let pem = std::fs::read_to_string(dir.join("host.pem")).unwrap();
        assert_eq!(
            pem,
            std::fs::read_to_string(dir.join("host.crt")).unwrap()
                + &std::fs::read_to_string(dir.join("host.key")).unwrap()
        );
    }
    verify(&ca, &work.path().join("public.pem"));

    // Only the hosts asked for; the LBs' public bundle only with an LB.
    let before = entries(work.path());
    let report = secrets::rotate(&topology, work.path(), &["web2".to_string()]).unwrap();
    assert_eq!(report.renewed.iter().map(|r| r.file.as_str()).collect::<Vec<_>>(), vec!["hosts/web2/host.crt"]);
    let after = entries(work.path());
    for (path, entry) in &before {
        assert_eq!(&after[path] != entry, path.starts_with("hosts/web2/") && !path.ends_with('/'), "{path}");
    }
}

#[test]
fn rotate_refuses_an_unknown_host_or_a_missing_certificate_and_changes_nothing() {
    let work = temp();
    let topology = topology(&spec("examples/default.toml"));
    secrets::init(&topology, work.path()).unwrap();
    let before = entries(work.path());
    let error = secrets::rotate(&topology, work.path(), &["web9".to_string()]).unwrap_err().to_string();
    assert!(error.contains("\"web9\" is not a host") && error.contains("web1"), "{error}");
    // A host whose certificate was never issued: found after others were issued in memory,
    // before anything is written.
    std::fs::remove_file(work.path().join("hosts/web3/host.key")).unwrap();
    let mut before = before;
    before.remove("hosts/web3/host.key");
    let error = secrets::rotate(&topology, work.path(), &[]).unwrap_err().to_string();
    assert!(error.contains("hosts/web3") && error.contains("host.key"), "{error}");
    assert_eq!(entries(work.path()), before, "nothing was written, no temporary file is left");
}

#[test]
fn check_warns_of_a_certificate_expiring_within_30_days_and_fails_on_an_expired_one() {
    let work = temp();
    let text = std::fs::read_to_string(Path::new(REPO).join("examples/default.toml"))
        .unwrap()
        .replace("host_certificate_days = 90 ", "host_certificate_days = 10 ");
    let spec_path = work.path().join("stack.toml");
    std::fs::write(&spec_path, &text).unwrap();
    let topology = topology(&SpecSource { name: "stack.toml".into(), text: text.clone() });
    let dir = work.path().join("secrets");
    secrets::init(&topology, &dir).unwrap();
    let run = |command: &str| {
        Command::new(env!("CARGO_BIN_EXE_nixstack"))
            .args([command, spec_path.to_str().unwrap(), "--secrets", dir.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = run("check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let end = x509_field(&dir.join("hosts/web1/host.crt"), "-enddate");
    let date = Command::new("date").args(["-u", "-d", end.split_once('=').unwrap().1, "+%F"]).output().unwrap();
    let date = String::from_utf8_lossy(&date.stdout).trim().to_string();
    assert!(
        stdout.contains(&format!(
            "[certificate-expiring] {}/hosts/web1/host.crt expires on {date}, in 10 day(s)",
            dir.display()
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("ca.crt expires"), "the CA is far from expiry: {stdout}");
    assert_eq!(out.status.code(), Some(0), "a warning does not fail check");
    let audit = run("audit");
    assert!(String::from_utf8_lossy(&audit.stdout).contains("certificate-expiring"));

    // Past the end date (the clock moved on): an error, named by file and date.
    let later =
        secrets::validity(&std::fs::read_to_string(dir.join("hosts/web1/host.crt")).unwrap()).unwrap().not_after + 1;
    let findings = secrets::expiry_findings(&topology, &dir, later);
    let expired = findings.iter().find(|f| f.message.contains("hosts/web1/host.crt")).unwrap();
    assert_eq!((expired.code, expired.severity), ("certificate-expired", nixstack::audit::Severity::Error));
    assert!(expired.message.contains(&format!("expired on {date}")), "{}", expired.message);

    // Renewed: no finding left; and no secrets directory, no finding at all.
    secrets::rotate(&topology, &dir, &[]).unwrap();
    let topology90 = nixstack::cli::compile(&spec("examples/default.toml")).unwrap();
    secrets::rotate(&topology90, &dir, &[]).unwrap();
    let stdout = String::from_utf8_lossy(&run("check").stdout).into_owned();
    assert!(!stdout.contains("certificate-"), "{stdout}");
}
