//! The stack's internal CA and the certificates it issues (rcgen, ECDSA P-256).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    date_time_ymd, BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

use super::SecretsError;

/// Years a CA certificate is valid. The CA is not rotated (`nixstack secrets rotate`
/// renews the host certificates it signs): every host trusts it, so replacing it means
/// distributing a new `ca.crt` before any certificate it signs is served.
const CA_YEARS: i32 = 20;
/// How long before now a new host certificate starts to be valid: room for hosts whose
/// clocks are a little behind.
const LEAF_BACKDATE_SECS: u64 = 3600;
const DAY_SECS: u64 = 86_400;

/// The internal CA: its key and the certificate rcgen signs with.
pub struct Ca {
    key: KeyPair,
    /// Rebuilt from the same name and key when loaded: rcgen signs with the issuer's
    /// name, key identifier method and key, which are all equal to the written CA's.
    issuer: Certificate,
}

/// A certificate and its key, both PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn ca_name(stack: &str) -> String {
    format!("{stack} internal CA")
}

fn ca_params(stack: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, ca_name(stack));
    params.distinguished_name.push(DnType::OrganizationName, stack);
    // Path length 0: the CA signs host certificates only, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let year = current_year();
    params.not_before = date_time_ymd(year - 1, 1, 1);
    params.not_after = date_time_ymd(year + CA_YEARS, 1, 1);
    params
}

/// A new CA for `stack`, and its certificate and key as PEM.
pub fn new_ca(stack: &str) -> Result<(Ca, Issued), SecretsError> {
    let key = KeyPair::generate().map_err(rcgen_error("generate the CA key"))?;
    let issuer = ca_params(stack).self_signed(&key).map_err(rcgen_error("sign the CA certificate"))?;
    let issued = Issued { cert_pem: issuer.pem(), key_pem: key.serialize_pem() };
    Ok((Ca { key, issuer }, issued))
}

/// The existing CA of `stack` from its PEM files, checked to be this stack's CA and a
/// matching pair, so new host certificates chain to the `ca.crt` every host trusts.
pub fn load_ca(stack: &str, cert_pem: &str, key_pem: &str) -> Result<Ca, SecretsError> {
    let key = KeyPair::from_pem(key_pem).map_err(rcgen_error("read ca.key"))?;
    let der = pem_body(cert_pem, "CERTIFICATE")
        .ok_or_else(|| SecretsError::Invalid { file: "ca.crt".into(), reason: "it holds no PEM certificate".into() })?;
    if !contains(&der, &key.public_key_der()) {
        return Err(SecretsError::Invalid { file: "ca.crt".into(), reason: "it does not belong to ca.key".into() });
    }
    if !contains(&der, ca_name(stack).as_bytes()) {
        return Err(SecretsError::Invalid {
            file: "ca.crt".into(),
            reason: format!("it is not named \"{}\" (was the stack renamed?); keep the old name, or move secrets/ away to start a new CA", ca_name(stack)),
        });
    }
    let issuer = ca_params(stack).self_signed(&key).map_err(rcgen_error("rebuild the CA issuer"))?;
    Ok(Ca { key, issuer })
}

/// A certificate for a server that is also a client (mutual TLS between tiers, Galera),
/// valid from an hour ago for `days` days, with a new key and a random serial.
pub fn issue(
    ca: &Ca,
    common_name: &str,
    dns_names: &[String],
    ip_addresses: &[Ipv4Addr],
    days: u32,
) -> Result<Issued, SecretsError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, common_name);
    for name in dns_names {
        let name = name.clone().try_into().map_err(|_| SecretsError::Invalid {
            file: format!("certificate of {common_name}"),
            reason: format!("{name:?} is not a DNS name"),
        })?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    params.subject_alt_names.extend(ip_addresses.iter().map(|ip| SanType::IpAddress(IpAddr::V4(*ip))));
    // ECDSA keys sign (ECDHE handshakes); key encipherment is an RSA-only usage.
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let now = unix_now();
    let start = now.saturating_sub(LEAF_BACKDATE_SECS);
    params.not_before = date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(start);
    params.not_after = date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(now + u64::from(days) * DAY_SECS);
    // A random positive 128-bit serial (RFC 5280: unique per CA, at most 20 bytes), so a
    // renewal never repeats one even where a key were reused.
    let mut serial: [u8; 16] = rand::random();
    serial[0] = (serial[0] & 0x7f) | 0x01;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let key = KeyPair::generate().map_err(rcgen_error("generate a key"))?;
    let cert = params.signed_by(&key, &ca.issuer, &ca.key).map_err(rcgen_error("sign a certificate"))?;
    Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// The subject alternative names `cert_pem` lacks, by looking for their DER encodings
/// (`[2] IA5String` for DNS names, `[7] OCTET STRING` for addresses) in the certificate.
pub fn missing_names(cert_pem: &str, dns_names: &[String], ip_addresses: &[Ipv4Addr]) -> Vec<String> {
    let Some(der) = pem_body(cert_pem, "CERTIFICATE") else {
        return vec!["(no certificate)".into()];
    };
    let mut missing = Vec::new();
    for name in dns_names {
        let mut encoded = vec![0x82, name.len() as u8];
        encoded.extend_from_slice(name.as_bytes());
        if name.len() > 127 || !contains(&der, &encoded) {
            missing.push(name.clone());
        }
    }
    for ip in ip_addresses {
        let mut encoded = vec![0x87, 4];
        encoded.extend_from_slice(&ip.octets());
        if !contains(&der, &encoded) {
            missing.push(ip.to_string());
        }
    }
    missing
}

fn rcgen_error(action: &'static str) -> impl Fn(rcgen::Error) -> SecretsError {
    move |source| SecretsError::Crypto { action, reason: source.to_string() }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|window| window == needle)
}

/// Year now (UTC), for the CA's validity dates; a day off at New Year is harmless because
/// the CA starts on January 1st of the year before.
fn current_year() -> i32 {
    civil_from_days((unix_now() / DAY_SECS) as i64).0 as i32
}

/// Seconds since the epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What [`validity`] reads from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validity {
    /// Seconds since the epoch.
    pub not_before: u64,
    pub not_after: u64,
    /// The serial as upper-case hex, as `openssl x509 -serial` prints it.
    pub serial: String,
}

/// The serial and validity of the first certificate in `cert_pem`, read from its DER
/// (Certificate → tbsCertificate → [0] version, serialNumber, signature, issuer, validity).
pub fn validity(cert_pem: &str) -> Option<Validity> {
    let der = pem_body(cert_pem, "CERTIFICATE")?;
    let (_, certificate, _) = der_element(&der)?;
    let (_, tbs, _) = der_element(certificate)?;
    let (mut tag, mut value, mut rest) = der_element(tbs)?;
    if tag == 0xa0 {
        (tag, value, rest) = der_element(rest)?;
    }
    if tag != 0x02 {
        return None;
    }
    let serial: String = value.iter().skip_while(|b| **b == 0).map(|b| format!("{b:02X}")).collect();
    let (_, _signature, rest) = der_element(rest)?;
    let (_, _issuer, rest) = der_element(rest)?;
    let (tag, validity, _) = der_element(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (tag_before, before, rest) = der_element(validity)?;
    let (tag_after, after, _) = der_element(rest)?;
    Some(Validity {
        not_before: der_time(tag_before, before)?,
        not_after: der_time(tag_after, after)?,
        serial: if serial.is_empty() { "00".into() } else { serial },
    })
}

/// One DER element: (tag, contents, what follows it).
fn der_element(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count].iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
        rest = &rest[count..];
        length
    };
    (rest.len() >= length).then(|| (tag, &rest[..length], &rest[length..]))
}

/// UTCTime (`YYMMDDHHMMSSZ`, 0x17) or GeneralizedTime (`YYYYMMDDHHMMSSZ`, 0x18), as RFC
/// 5280 profiles them, in seconds since the epoch.
fn der_time(tag: u8, value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?.strip_suffix('Z')?;
    let (year, rest) = match (tag, text.len()) {
        (0x17, 12) => {
            let yy: i64 = text[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
        }
        (0x18, 14) => (text[..4].parse().ok()?, &text[4..]),
        _ => return None,
    };
    let field = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let days = days_from_civil(year, field(0)?, field(2)?);
    let secs = days * 86_400 + field(4)? * 3600 + field(6)? * 60 + field(8)?;
    u64::try_from(secs).ok()
}

/// The date of `unix` seconds, `YYYY-MM-DD` (UTC).
pub fn date(unix: u64) -> String {
    let (y, m, d) = civil_from_days((unix / DAY_SECS) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The DER bytes of the first PEM block labelled `label`.
pub fn pem_body(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    base64_decode(&pem[start..stop])
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
        }
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificate_has_its_names_and_a_foreign_name_is_missing() {
        let (ca, ca_files) = new_ca("shop").unwrap();
        let names = vec!["web1".to_string(), "web1.shop.internal".to_string()];
        let ips = vec![Ipv4Addr::new(10, 10, 0, 21)];
        let issued = issue(&ca, "web1", &names, &ips, 90).unwrap();
        assert!(missing_names(&issued.cert_pem, &names, &ips).is_empty());
        // What openssl reads from it (an independent parser), against our DER reader.
        let validity = validity(&issued.cert_pem).unwrap();
        assert_eq!(validity.not_after - validity.not_before, 90 * DAY_SECS + LEAF_BACKDATE_SECS);
        let openssl = openssl_x509(&issued.cert_pem, &["-noout", "-serial", "-enddate", "-startdate"]);
        if let Some(text) = openssl {
            assert!(text.contains(&format!("serial={}", validity.serial)), "{text} vs {validity:?}");
            let end = text.lines().find_map(|l| l.strip_prefix("notAfter=")).unwrap().to_string();
            assert!(openssl_date(&end).is_some_and(|d| d == date(validity.not_after)), "{end} vs {validity:?}");
        }
        let again = issue(&ca, "web1", &names, &ips, 90).unwrap();
        assert_ne!(validity.serial, super::validity(&again.cert_pem).unwrap().serial, "a renewal has a new serial");
        assert_eq!(
            missing_names(&issued.cert_pem, &["web2".to_string()], &[Ipv4Addr::new(10, 10, 0, 22)]),
            vec!["web2".to_string(), "10.10.0.22".to_string()]
        );
        // The CA round-trips through its files and rejects another stack's name.
        assert!(load_ca("shop", &ca_files.cert_pem, &ca_files.key_pem).is_ok());
        assert!(load_ca("other", &ca_files.cert_pem, &ca_files.key_pem).is_err());
        let (_, foreign) = new_ca("shop").unwrap();
        assert!(load_ca("shop", &ca_files.cert_pem, &foreign.key_pem).is_err());
    }

    /// `openssl x509 ARGS` on `pem`, when openssl is installed.
    fn openssl_x509(pem: &str, args: &[&str]) -> Option<String> {
        use std::io::Write;
        let mut child = std::process::Command::new("openssl")
            .arg("x509")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(pem.as_bytes()).ok()?;
        let out = child.wait_with_output().ok()?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `Mar  3 17:00:00 2027 GMT` → `2027-03-03`.
    fn openssl_date(text: &str) -> Option<String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let first = *words.first()?;
        let month = months.iter().position(|m| *m == first)? + 1;
        Some(format!("{}-{month:02}-{:02}", words.get(3)?, words.get(1)?.parse::<u32>().ok()?))
    }

    #[test]
    fn dates_round_trip_and_utc_time_is_read() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(date(1_798_761_600), "2027-01-01");
        assert_eq!(der_time(0x17, b"270101000000Z"), Some(1_798_761_600));
        assert_eq!(der_time(0x18, b"20270101000000Z"), Some(1_798_761_600));
        assert_eq!(der_time(0x17, b"2701010000Z"), None);
    }

    #[test]
    fn base64_decodes_padding() {
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        assert_eq!(base64_decode("aGkh\n").unwrap(), b"hi!");
    }
}
