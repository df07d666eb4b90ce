//! A throwaway certificate authority and a server certificate it signed, for a private
//! `redis-server` that also listens with TLS. Clients trust the CA file; nothing is ever
//! valid outside the test that made it.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::error::HarnessError;

/// The PEM files a TLS listener is configured with.
#[derive(Debug, Clone)]
pub(crate) struct TlsFiles {
    /// The CA certificate clients must trust.
    pub(crate) ca: PathBuf,
    pub(crate) certificate: PathBuf,
    pub(crate) key: PathBuf,
}

/// Creates a fresh CA and a server certificate for `server_names` in `dir`.
pub(crate) fn write_throwaway_certificates(
    dir: &Path,
    server_names: &[String],
) -> Result<TlsFiles, HarnessError> {
    let generate = |e: rcgen::Error| HarnessError::Certificate(e.to_string());
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "redis-harness throwaway CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(generate)?)
        .map_err(generate)?;
    let server_key = KeyPair::generate().map_err(generate)?;
    let server = CertificateParams::new(server_names.to_vec())
        .map_err(generate)?
        .signed_by(&server_key, &ca)
        .map_err(generate)?;

    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        certificate: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    let write = |path: &Path, contents: String| {
        fs::write(path, contents).map_err(|e| HarnessError::io("writing a TLS file", e))
    };
    write(&files.ca, ca.pem())?;
    write(&files.certificate, server.pem())?;
    write(&files.key, server_key.serialize_pem())?;
    Ok(files)
}
