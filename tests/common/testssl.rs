//! A real TLS scanner against a running listener: Debian's `testssl.sh` (3.0, `scripts/setup`
//! installs it), run inside the test's own network namespace, its JSON findings parsed into the
//! offered protocols, cipher suites (IANA names) and key exchange groups; and Mozilla's
//! intermediate sets read from Mozilla's guidelines file in `data/mozilla/` (not retyped here).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// What the scanner found a listener offering.
#[derive(Debug, PartialEq, Eq)]
pub struct Offered {
    /// `TLSv1.2`, `TLSv1.3`, … (OpenSSL names, as Mozilla's file spells them).
    pub protocols: BTreeSet<String>,
    /// TLS 1.2 (and older) cipher suites, IANA names.
    pub tls12_ciphers: BTreeSet<String>,
    /// TLS 1.3 cipher suites, IANA names.
    pub tls13_ciphers: BTreeSet<String>,
    /// Key exchange groups (testssl's `PFS_ECDHE_curves`, OpenSSL names).
    pub curves: BTreeSet<String>,
    /// Finite-field groups (testssl's `DH_groups`), empty when none is offered.
    pub dh_groups: BTreeSet<String>,
}

/// Mozilla intermediate as the scanner would report it for a server with an ECDSA certificate
/// (nixstack's internal CA issues ECDSA P-256 keys): the RSA-authenticated suites Mozilla lists
/// (ECDHE-RSA-*, DHE-RSA-*) need an RSA certificate and can never be offered with this one.
pub fn mozilla_intermediate_for_ecdsa() -> Offered {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mozilla/server-side-tls-5.7.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["version"].as_f64(), Some(5.7), "{}", path.display());
    let intermediate = &json["configurations"]["intermediate"];
    let set = |value: &serde_json::Value| -> BTreeSet<String> {
        value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    };
    Offered {
        protocols: set(&intermediate["tls_versions"]),
        tls12_ciphers: set(&intermediate["ciphers"]["iana"]).into_iter().filter(|c| c.contains("_ECDSA_")).collect(),
        tls13_ciphers: set(&intermediate["ciphersuites"]),
        curves: set(&intermediate["tls_curves"]),
        dh_groups: BTreeSet::new(),
    }
}

/// Scans `target` (`address:port`) from inside network namespace `netns`; `starttls` e.g.
/// `Some("mysql")`. `work` holds the JSON report. Panics with the scanner's output on failure.
pub fn scan(netns: &str, target: &str, starttls: Option<&str>, work: &Path) -> Offered {
    assert!(Path::new("/usr/bin/testssl").exists(), "testssl missing: run scripts/setup (testssl.sh)");
    let json = work.join(format!("testssl-{}.json", target.replace([':', '.'], "_")));
    let _ = std::fs::remove_file(&json);
    let mut command = Command::new("ip");
    command.args(["netns", "exec", netns, "testssl", "--quiet", "--color", "0", "--warnings", "off"]);
    if let Some(protocol) = starttls {
        command.args(["--starttls", protocol]);
    }
    // -p protocols, -e every cipher suite, -f forward secrecy (curves and DH groups).
    command.args(["-p", "-e", "-f", "--jsonfile"]).arg(&json).arg(target);
    let output = command.output().expect("running testssl");
    let text = std::fs::read_to_string(&json).unwrap_or_else(|_| {
        panic!(
            "testssl wrote no report ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let offered = parse(&text);
    assert!(
        !offered.protocols.is_empty(),
        "testssl found no protocol on {target}:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    offered
}

/// Parses testssl 3.0's flat JSON findings.
pub fn parse(text: &str) -> Offered {
    let findings: Vec<serde_json::Value> = serde_json::from_str(text).expect("testssl JSON");
    let mut offered = Offered {
        protocols: BTreeSet::new(),
        tls12_ciphers: BTreeSet::new(),
        tls13_ciphers: BTreeSet::new(),
        curves: BTreeSet::new(),
        dh_groups: BTreeSet::new(),
    };
    let mut saw_protocols = false;
    for finding in &findings {
        let id = finding["id"].as_str().unwrap_or_default();
        let value = finding["finding"].as_str().unwrap_or_default();
        let protocol = match id {
            "SSLv2" => Some("SSLv2"),
            "SSLv3" => Some("SSLv3"),
            "TLS1" => Some("TLSv1"),
            "TLS1_1" => Some("TLSv1.1"),
            "TLS1_2" => Some("TLSv1.2"),
            "TLS1_3" => Some("TLSv1.3"),
            _ => None,
        };
        if let Some(protocol) = protocol {
            saw_protocols = true;
            if value.starts_with("offered") {
                offered.protocols.insert(protocol.to_string());
            } else {
                assert!(value.starts_with("not offered"), "{id}: unexpected finding {value:?}");
            }
        } else if let Some(hex) = id.strip_prefix("cipher_x") {
            // "xc02b   ECDHE-ECDSA-AES128-GCM-SHA256   ECDH 253   AESGCM   128   TLS_ECDHE_…"
            let iana = value.split_whitespace().last().expect("a cipher finding names the suite").to_string();
            if hex.starts_with("13") && hex.len() == 4 {
                offered.tls13_ciphers.insert(iana);
            } else {
                offered.tls12_ciphers.insert(iana);
            }
        } else if id == "PFS_ECDHE_curves" {
            offered.curves = value.split_whitespace().map(str::to_string).collect();
        } else if id == "DH_groups" {
            offered.dh_groups = value.split_whitespace().map(str::to_string).collect();
        } else if id == "scanProblem" || (finding["severity"] == "FATAL") {
            panic!("testssl could not scan: {value}");
        }
    }
    assert!(saw_protocols, "testssl reported no protocol findings:\n{text}");
    offered
}

/// Scans and asserts that `target` offers exactly Mozilla intermediate (ECDSA certificate).
#[allow(dead_code)] // not every test file scans an exact listener
pub fn assert_mozilla_intermediate(netns: &str, target: &str, starttls: Option<&str>, work: &Path) {
    let offered = scan(netns, target, starttls, work);
    eprintln!("testssl {target}: {offered:?}");
    assert_eq!(offered, mozilla_intermediate_for_ecdsa(), "{target} is not exactly Mozilla intermediate 5.7");
}
