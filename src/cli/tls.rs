//! `consul tls ca create` and `consul tls cert create`: a private CA and the
//! certificates agents, servers and the CLI present, with Consul's file
//! names, names (SANs), key usages and defaults. Keys are ECDSA P-256, as
//! Consul's. Offline: writes files in the current directory, talks to no
//! agent.

use clap::{Args, Subcommand};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, GeneralSubtree,
    IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use time::{Duration, OffsetDateTime};

#[derive(Args, Debug)]
pub struct TlsArgs {
    #[command(subcommand)]
    pub command: TlsCommand,
}

#[derive(Subcommand, Debug)]
pub enum TlsCommand {
    /// Helpers for CAs
    Ca(CaArgs),
    /// Helpers for certificates
    Cert(CertArgs),
}

#[derive(Args, Debug)]
pub struct CaArgs {
    #[command(subcommand)]
    pub command: CaCommand,
}

#[derive(Subcommand, Debug)]
pub enum CaCommand {
    /// Create a new consul CA
    Create(CaCreateArgs),
}

#[derive(Args, Debug)]
pub struct CertArgs {
    #[command(subcommand)]
    pub command: CertCommand,
}

#[derive(Subcommand, Debug)]
pub enum CertCommand {
    /// Create a new certificate
    Create(CertCreateArgs),
}

#[derive(Args, Debug)]
pub struct CaCreateArgs {
    #[arg(
        long,
        default_value_t = 1825,
        help = "Provide number of days the CA is valid for from now on. Defaults to 5 years."
    )]
    pub days: i64,
    #[arg(
        long,
        default_value = "consul",
        help = "Domain of consul cluster. Only used in combination with -name-constraint. Defaults to consul."
    )]
    pub domain: String,
    #[arg(long = "name-constraint", num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Add name constraints for the CA. Results in rejecting certificates for other DNS than specified. If turned on localhost and -domain will be added to the allowed DNS. Defaults to false.")]
    pub name_constraint: Option<bool>,
    #[arg(long = "additional-name-constraint", action = clap::ArgAction::Append, help = "Add name constraints for the CA. Results in rejecting certificates for other DNS than specified. Can be used multiple times. Only used in combination with -name-constraint.")]
    pub additional_name_constraint: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CertCreateArgs {
    #[arg(
        long,
        default_value = "#DOMAIN#-agent-ca.pem",
        help = "Provide path to the ca. Defaults to #DOMAIN#-agent-ca.pem."
    )]
    pub ca: String,
    #[arg(
        long,
        default_value = "#DOMAIN#-agent-ca-key.pem",
        help = "Provide path to the key. Defaults to #DOMAIN#-agent-ca-key.pem."
    )]
    pub key: String,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Generate server certificate.")]
    pub server: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Generate client certificate.")]
    pub client: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Generate cli certificate.")]
    pub cli: Option<bool>,
    #[arg(
        long,
        default_value = "",
        help = "When generating a server cert and this is set an additional dns name is included of the form <node>.server.<datacenter>.<domain>."
    )]
    pub node: String,
    #[arg(
        long,
        default_value_t = 365,
        help = "Provide number of days the certificate is valid for from now on. Defaults to 1 year."
    )]
    pub days: i64,
    #[arg(
        long,
        default_value = "dc1",
        help = "Provide the datacenter. Matters only for -server certificates. Defaults to dc1."
    )]
    pub dc: String,
    #[arg(
        long,
        default_value = "consul",
        help = "Provide the domain. Matters only for -server certificates."
    )]
    pub domain: String,
    #[arg(long = "additional-dnsname", action = clap::ArgAction::Append, help = "Provide an additional dnsname for Subject Alternative Names. localhost is always included. This flag may be provided multiple times.")]
    pub additional_dnsname: Vec<String>,
    #[arg(long = "additional-ipaddress", action = clap::ArgAction::Append, help = "Provide an additional ipaddress for Subject Alternative Names. 127.0.0.1 is always included. This flag may be provided multiple times.")]
    pub additional_ipaddress: Vec<String>,
}

pub fn run(a: TlsArgs) -> i32 {
    let result = match a.command {
        TlsCommand::Ca(CaArgs { command: CaCommand::Create(c) }) => ca_create(&c),
        TlsCommand::Cert(CertArgs { command: CertCommand::Create(c) }) => cert_create(&c),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

const SERVER_WARNING: &str = "==> WARNING: Server Certificates grants authority to become a
    server and access all state in the cluster including root keys
    and all ACL tokens. Do not distribute them to production hosts
    that are not server nodes. Store them as securely as CA keys.";

fn ca_create(a: &CaCreateArgs) -> Result<(), String> {
    if a.days <= 0 {
        return Err("-days must be positive".into());
    }
    let cert_file = format!("{}-agent-ca.pem", a.domain);
    let key_file = format!("{}-agent-ca-key.pem", a.domain);
    for f in [&cert_file, &key_file] {
        if Path::new(f).exists() {
            return Err(format!("{f} already exists."));
        }
    }
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| format!("generating key: {e}"))?;
    let serial = serial_number();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("Consul Agent CA {}", serial_decimal(&serial)));
    params.distinguished_name.push(DnType::OrganizationName, "consul-rs");
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let (not_before, not_after) = validity(a.days);
    params.not_before = not_before;
    params.not_after = not_after;
    if a.name_constraint.unwrap_or(false) {
        let mut permitted: Vec<GeneralSubtree> =
            a.additional_name_constraint.iter().map(|n| GeneralSubtree::DnsName(n.clone())).collect();
        permitted.push(GeneralSubtree::DnsName(a.domain.clone()));
        permitted.push(GeneralSubtree::DnsName("localhost".into()));
        params.name_constraints =
            Some(NameConstraints { permitted_subtrees: permitted, excluded_subtrees: vec![] });
    }
    let cert = params.self_signed(&key).map_err(|e| format!("creating the CA certificate: {e}"))?;
    write_new(&cert_file, cert.pem().as_bytes(), 0o644)?;
    println!("==> Saved {cert_file}");
    write_new(&key_file, key.serialize_pem().as_bytes(), 0o600)?;
    println!("==> Saved {key_file}");
    Ok(())
}

/// Which kind of certificate `cert create` makes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Server,
    Client,
    Cli,
}

fn cert_create(a: &CertCreateArgs) -> Result<(), String> {
    if a.ca.is_empty() {
        return Err("Please provide the ca".into());
    }
    if a.key.is_empty() {
        return Err("Please provide the key".into());
    }
    let kind = match (a.server.unwrap_or(false), a.client.unwrap_or(false), a.cli.unwrap_or(false)) {
        (true, false, false) => Kind::Server,
        (false, true, false) => Kind::Client,
        (false, false, true) => Kind::Cli,
        _ => return Err("Please provide either -server, -client, or -cli".into()),
    };
    if !a.node.is_empty() && kind != Kind::Server {
        return Err("-node requires -server".into());
    }
    if a.days <= 0 {
        return Err("-days must be positive".into());
    }
    let mut dns: Vec<String> =
        a.additional_dnsname.iter().map(|d| d.trim().to_string()).filter(|d| !d.is_empty()).collect();
    let mut ips = Vec::new();
    for ip in a.additional_ipaddress.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
        ips.push(ip.parse::<IpAddr>().map_err(|_| format!("invalid -additional-ipaddress {ip:?}"))?);
    }
    let (name, prefix, usages) = match kind {
        Kind::Server => {
            let name = format!("server.{}.{}", a.dc, a.domain);
            if !a.node.is_empty() {
                dns.push(format!("{}.server.{}.{}", a.node, a.dc, a.domain));
            }
            dns.push(name.clone());
            dns.push("localhost".into());
            ips.push(IpAddr::from([127, 0, 0, 1]));
            (
                name,
                format!("{}-server-{}", a.dc, a.domain),
                vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
            )
        }
        Kind::Client => {
            let name = format!("client.{}.{}", a.dc, a.domain);
            dns.push(name.clone());
            dns.push("localhost".into());
            ips.push(IpAddr::from([127, 0, 0, 1]));
            (
                name,
                format!("{}-client-{}", a.dc, a.domain),
                vec![ExtendedKeyUsagePurpose::ClientAuth, ExtendedKeyUsagePurpose::ServerAuth],
            )
        }
        Kind::Cli => {
            let name = format!("cli.{}.{}", a.dc, a.domain);
            dns.push(name.clone());
            dns.push("localhost".into());
            (name, format!("{}-cli-{}", a.dc, a.domain), vec![ExtendedKeyUsagePurpose::ClientAuth])
        }
    };
    let (cert_file, key_file) = free_names(&prefix)?;
    let ca_file = a.ca.replacen("#DOMAIN#", &a.domain, 1);
    let ca_key_file = a.key.replacen("#DOMAIN#", &a.domain, 1);
    let ca_pem = std::fs::read_to_string(&ca_file).map_err(|e| format!("Error reading CA: {e}"))?;
    let ca_key_pem =
        std::fs::read_to_string(&ca_key_file).map_err(|e| format!("Error reading CA key: {e}"))?;
    if kind == Kind::Server {
        println!("{SERVER_WARNING}");
    }
    println!("==> Using {ca_file} and {ca_key_file}");
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|e| {
        format!("Error parsing CA key {ca_key_file}: {e} (a PKCS#8 \"PRIVATE KEY\" PEM is expected)")
    })?;
    let issuer =
        Issuer::from_ca_cert_pem(&ca_pem, &ca_key).map_err(|e| format!("Error parsing CA {ca_file}: {e}"))?;

    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| format!("generating key: {e}"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.serial_number = Some(SerialNumber::from_slice(&serial_number()));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = usages;
    params.use_authority_key_identifier_extension = true;
    let (not_before, not_after) = validity(a.days);
    params.not_before = not_before;
    params.not_after = not_after;
    for d in dedup(dns) {
        let d = d.clone().try_into().map_err(|_| format!("invalid DNS name {d:?}"))?;
        params.subject_alt_names.push(SanType::DnsName(d));
    }
    for ip in dedup(ips) {
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    let cert = params.signed_by(&key, &issuer).map_err(|e| format!("signing the certificate: {e}"))?;
    write_new(&cert_file, cert.pem().as_bytes(), 0o644)?;
    println!("==> Saved {cert_file}");
    write_new(&key_file, key.serialize_pem().as_bytes(), 0o600)?;
    println!("==> Saved {key_file}");
    Ok(())
}

fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(items.len());
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// The first `<prefix>-N.pem` / `<prefix>-N-key.pem` pair where neither
/// file exists, counting from 0.
fn free_names(prefix: &str) -> Result<(String, String), String> {
    for i in 0..=10000 {
        let cert = format!("{prefix}-{i}.pem");
        let key = format!("{prefix}-{i}-key.pem");
        if !Path::new(&cert).exists() && !Path::new(&key).exists() {
            return Ok((cert, key));
        }
    }
    Err("Could not find a filename that doesn't already exist".into())
}

/// From a minute ago (clocks of the machines that check it may lag a
/// little) to `days` from now.
fn validity(days: i64) -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    (now - Duration::minutes(1), now + Duration::days(days))
}

/// A random positive 128-bit serial number (the top bit clear, so its DER
/// integer stays 16 bytes and positive).
fn serial_number() -> Vec<u8> {
    let mut serial: [u8; 16] = rand::random();
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    serial.to_vec()
}

fn serial_decimal(serial: &[u8]) -> u128 {
    serial.iter().fold(0u128, |acc, b| (acc << 8) | *b as u128)
}

/// Writes a file that must not exist yet (never overwrite a key).
fn write_new(path: &str, bytes: &[u8], mode: u32) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("Error writing {path}: {e}"))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| format!("Error writing {path}: {e}"))
}
