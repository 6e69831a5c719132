//! What a certificate says about its holder: its DNS names (to tell a
//! server's certificate, `server.<dc>.<domain>`, from a client's), its
//! serial number and validity (for log lines on load and reload).

use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

/// The DNS names of a certificate's subject alternative names (lowercase);
/// empty when it cannot be parsed.
pub fn dns_names(cert: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, x509)) = x509_parser::certificate::X509Certificate::from_der(cert) else { return Vec::new() };
    let Ok(Some(san)) = x509.subject_alternative_name() else { return Vec::new() };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// Whether a certificate names `name` among its DNS names.
pub fn names(cert: &CertificateDer<'_>, name: &str) -> bool {
    dns_names(cert).iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// Serial number (colon-separated hex, as openssl prints it) and expiry
/// (RFC 2822), for log lines.
pub fn describe(cert: &CertificateDer<'_>) -> (String, String) {
    match x509_parser::certificate::X509Certificate::from_der(cert) {
        Ok((_, x509)) => (x509.raw_serial_as_string(), x509.validity().not_after.to_string()),
        Err(_) => ("?".into(), "?".into()),
    }
}
