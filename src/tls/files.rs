//! Reading PEM files: CA bundles (`ca_file`) and directories of them
//! (`ca_path`), certificate chains and private keys. Every error names the
//! file and what was wrong with it.

use super::TlsError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;
use std::path::Path;

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { what, path: path.to_path_buf(), source })
}

fn certs_in(bytes: &[u8], path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Parse { what, path: path.to_path_buf(), reason: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::Parse {
            what,
            path: path.to_path_buf(),
            reason: "no PEM CERTIFICATE block found".into(),
        });
    }
    Ok(certs)
}

/// A certificate chain, end entity first.
pub(super) fn cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certs_in(&read(path, "certificate")?, path, "certificate")
}

pub(super) fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path, "key")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Parse {
        what: "key",
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The trust roots of `ca_file` and every file in `ca_path`.
pub(super) fn roots(ca_file: Option<&Path>, ca_path: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    let mut add = |path: &Path, certs: Vec<CertificateDer<'static>>| -> Result<(), TlsError> {
        for cert in certs {
            store.add(cert).map_err(|e| TlsError::Parse {
                what: "CA certificate",
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    };
    if let Some(path) = ca_file {
        add(path, certs_in(&read(path, "CA certificate")?, path, "CA certificate")?)?;
    }
    if let Some(dir) = ca_path {
        let io = |source| TlsError::Read { what: "CA directory", path: dir.to_path_buf(), source };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        for path in files {
            add(&path, certs_in(&read(&path, "CA certificate")?, &path, "CA certificate")?)?;
        }
    }
    Ok(store)
}

/// The certificates of a CA bundle, as they are (for clients that add
/// them to trust roots of their own).
pub(super) fn roots_as_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certs_in(&read(path, "CA certificate")?, path, "CA certificate")
}
