//! The stack's internal CA and the certificates it issues (rcgen, ECDSA P-256).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    date_time_ymd, BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

use super::SecretsError;

/// Years a CA certificate is valid. There is no rotation command yet: a long life keeps
/// a lab or a small stack working; replace `secrets/` to rotate.
const CA_YEARS: i32 = 20;
/// Years a host or public certificate is valid.
const LEAF_YEARS: i32 = 10;

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

/// A certificate for a server that is also a client (mutual TLS between tiers, Galera).
pub fn issue(
    ca: &Ca,
    common_name: &str,
    dns_names: &[String],
    ip_addresses: &[Ipv4Addr],
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
    let year = current_year();
    params.not_before = date_time_ymd(year - 1, 1, 1);
    params.not_after = date_time_ymd(year + LEAF_YEARS, 1, 1);
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

/// Year now (UTC), for validity dates; a day off at New Year is harmless because
/// certificates start on January 1st of the year before.
fn current_year() -> i32 {
    let days = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() / 86_400).unwrap_or(0);
    1970 + (days as f64 / 365.2425) as i32
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
        let issued = issue(&ca, "web1", &names, &ips).unwrap();
        assert!(missing_names(&issued.cert_pem, &names, &ips).is_empty());
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

    #[test]
    fn base64_decodes_padding() {
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        assert_eq!(base64_decode("aGkh\n").unwrap(), b"hi!");
    }
}
