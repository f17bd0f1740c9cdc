//! Trust for the gateway's TLS: the one crypto provider, PEM certificate reading, and the
//! roots of the gateway's own HTTPS clients (the jobs backend, object storage, located
//! archive URLs).
//!
//! Everything runs on rustls with the aws-lc-rs provider, the one object_store's HTTP client
//! already builds, so the binary carries a single crypto library.
//!
//! [`client_config`] trusts the platform's CA store (`rustls-native-certs`, which honours
//! `SSL_CERT_FILE` and `SSL_CERT_DIR`) plus an extra bundle such as `upstream.ca_file`
//! ([`ca_certificates`]). Where the platform has no CA store at all (a bare container image)
//! the Mozilla roots compiled into the binary stand in, with a warning.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// The crypto provider of every TLS configuration here, whatever the process default is.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// Every `CERTIFICATE` section of a PEM text, in order; at least one.
pub fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate (expected BEGIN CERTIFICATE)".to_owned());
    }
    Ok(certs)
}

/// The CA certificates of a PEM bundle (`upstream.ca_file`, `storage.ca_file`): at least one,
/// each usable as a trust anchor. Errors name the file, not the key (callers add it).
pub fn ca_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = certificates(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
    for (i, cert) in certs.iter().enumerate() {
        RootCertStore::empty().add(cert.clone()).map_err(|e| {
            format!(
                "{}: certificate {} of {} is not usable as a CA: {e}",
                path.display(),
                i + 1,
                certs.len()
            )
        })?;
    }
    Ok(certs)
}

/// A client configuration trusting the platform's roots plus `extra` (TLS 1.3 and 1.2, no
/// ALPN: the HTTP connector sets that).
pub fn client_config(extra: &[CertificateDer<'static>]) -> ClientConfig {
    let mut roots = platform_roots().clone();
    for cert in extra {
        if let Err(error) = roots.add(cert.clone()) {
            // `ca_certificates` has checked each one; only a caller's own list ends up here.
            tracing::warn!(%error, "extra CA certificate ignored");
        }
    }
    ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("aws-lc-rs supports TLS 1.3 and 1.2")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// The platform's CA store, read once per process. Without one, the bundled Mozilla roots.
fn platform_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        for error in &found.errors {
            tracing::debug!(%error, "reading the platform's CA certificates");
        }
        if added > 0 {
            tracing::debug!(added, ignored, "platform CA certificates loaded");
            return roots;
        }
        tracing::warn!(
            errors = found.errors.len(),
            "no CA certificates found on this system (install ca-certificates, or set \
             SSL_CERT_FILE); trusting the Mozilla roots built into the gateway instead"
        );
        RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }
    })
}
