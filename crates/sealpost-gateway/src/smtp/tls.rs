//! Loading the server's certificate and key for STARTTLS.
//!
//! Both files are PEM, read with `rustls-pki-types`: the certificate file holds the chain,
//! leaf first; the key file one private key (PKCS#8, PKCS#1 or SEC1). The TLS configuration
//! uses rustls's ring provider and its safe defaults (TLS 1.2 and 1.3), without client
//! certificates. Errors name the file and say what is wrong with it. This module does not
//! watch the files for changes: a new certificate takes a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// Why [`load_tls`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate file could not be read or holds no usable certificate.
    #[error("TLS certificate file {}: {reason}", path.display())]
    Certificate {
        /// The certificate file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key file could not be read or holds no usable private key.
    #[error("TLS key file {}: {reason}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The certificate and key were read but rustls refused them (for example the key does not
    /// belong to the certificate, or its algorithm is not supported).
    #[error("TLS certificate {} with key {}: {source}", cert.display(), key.display())]
    Config {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
}

/// Reads a PEM certificate chain and private key into a rustls server configuration for
/// [`SmtpConfig::tls`](super::SmtpConfig::tls).
pub fn load_tls(cert_pem: &Path, key_pem: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_error = |reason: String| TlsError::Certificate {
        path: cert_pem.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(cert_pem)
        .map_err(|e| cert_error(describe(e, "certificate")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(describe(e, "certificate")))?;
    if certs.is_empty() {
        return Err(cert_error(describe(
            pem::Error::NoItemsFound,
            "certificate",
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key_pem).map_err(|e| TlsError::Key {
        path: key_pem.to_owned(),
        reason: describe(e, "private key"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(certs, key))
        .map(Arc::new)
        .map_err(|source| TlsError::Config {
            cert: cert_pem.to_owned(),
            key: key_pem.to_owned(),
            source,
        })
}

fn describe(e: pem::Error, what: &str) -> String {
    match e {
        pem::Error::Io(e) => format!("cannot read it: {e}"),
        pem::Error::NoItemsFound => format!("no PEM {what} found in it"),
        other => format!("not valid PEM: {other}"),
    }
}
