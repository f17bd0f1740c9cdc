//! HTTPS on the listener: the [`Acceptor`], whose certificate reloads without a restart.
//! The crypto provider and PEM reading are [`crate::trust`]'s.
//!
//! [`Acceptor::new`] reads `tls.cert_file` (PEM chain, leaf first) and
//! `tls.key_file` (PEM key: PKCS#8, PKCS#1 or SEC1) and checks that they belong together.
//! TLS 1.3 and 1.2 are offered, and ALPN `h2` then `http/1.1`. The certificate is served
//! through a resolver holding it in an [`ArcSwap`]: [`Acceptor::reload`] (on SIGHUP) and the
//! task of [`Acceptor::watch`] (when a file's modification time, size or inode changes) swap
//! in a newly read one for the handshakes that follow, while established connections keep
//! the session they have. A reload that fails (a half-written renewal, a key that does not
//! match) keeps the old certificate and logs why; the next change of either file retries.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;
use crate::trust::{certificates, provider};

/// ALPN protocol ids offered by the listener, in order of preference.
const ALPN_H2: &[u8] = b"h2";
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The listener's TLS: handshakes with the current certificate, which can be reloaded.
pub struct Acceptor {
    config: TlsConfig,
    resolver: Arc<Resolver>,
    acceptor: TlsAcceptor,
    /// What the files looked like when they were last read (or last failed to load), so that
    /// the watcher reloads once per change, not once per interval.
    seen: Mutex<Stamp>,
}

impl Acceptor {
    /// Load the certificate chain and key; errors name the key, the file and what is wrong.
    pub fn new(config: &TlsConfig) -> Result<Self, String> {
        let stamp = Stamp::of(config);
        let key = load(config)?;
        let resolver = Arc::new(Resolver {
            current: ArcSwap::new(key),
        });
        let mut server = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("tls: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        server.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
        Ok(Acceptor {
            config: config.clone(),
            resolver,
            acceptor: TlsAcceptor::from(Arc::new(server)),
            seen: Mutex::new(stamp),
        })
    }

    /// Re-read the files now (SIGHUP). New handshakes use the new certificate; established
    /// connections are untouched. On error the old certificate stays and the error is logged.
    pub fn reload(&self) -> Result<(), String> {
        let stamp = Stamp::of(&self.config);
        let result = load(&self.config);
        // Remembered on failure too: the watcher retries on the next change, not every tick.
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = stamp;
        match result {
            Ok(key) => {
                self.resolver.current.store(key);
                tracing::info!(
                    cert_file = %self.config.cert_file.display(),
                    "TLS certificate reloaded"
                );
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, "TLS certificate not reloaded; keeping the current one");
                Err(error)
            }
        }
    }

    /// Spawn a task that reloads when the files' modification time, size or inode changes
    /// (checked every `reload_interval`); returns its JoinHandle. The task ends by itself once
    /// the acceptor is dropped everywhere else, or when the handle is aborted.
    pub fn watch(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let acceptor = Arc::downgrade(self);
        let interval = self.config.reload_interval;
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await; // the first tick is immediate; the files were just read
            loop {
                ticks.tick().await;
                let Some(acceptor) = acceptor.upgrade() else {
                    return;
                };
                let config = acceptor.config.clone();
                let Ok(now) = tokio::task::spawn_blocking(move || Stamp::of(&config)).await else {
                    continue;
                };
                let changed = *acceptor.seen.lock().unwrap_or_else(|e| e.into_inner()) != now;
                if changed {
                    // Logged inside; the old certificate stays on failure.
                    let _ = tokio::task::spawn_blocking(move || acceptor.reload()).await;
                }
            }
        })
    }

    /// Handshake over an accepted TCP stream, at most `tls.handshake_timeout`. Returns the
    /// stream and whether ALPN chose h2.
    pub async fn accept(&self, stream: TcpStream) -> io::Result<(TlsStream<TcpStream>, bool)> {
        let handshake = self.acceptor.accept(stream);
        let stream = tokio::time::timeout(self.config.handshake_timeout, handshake)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        let h2 = stream.get_ref().1.alpn_protocol() == Some(ALPN_H2);
        Ok((stream, h2))
    }

    /// The leaf certificate new handshakes present (DER).
    pub fn certificate(&self) -> CertificateDer<'static> {
        self.resolver.current.load().cert[0].clone()
    }
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Serves whatever certificate is current; a reload swaps it.
#[derive(Debug)]
struct Resolver {
    current: ArcSwap<CertifiedKey>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Identity of one file's contents as far as the file system tells without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    /// A file renamed into place (Kubernetes secrets, `mv`) is a new inode.
    inode: u64,
}

/// Both files' stamps; `None` for one that cannot be read (a change as well).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp([Option<FileStamp>; 2]);

impl Stamp {
    fn of(config: &TlsConfig) -> Stamp {
        Stamp([
            FileStamp::of(&config.cert_file),
            FileStamp::of(&config.key_file),
        ])
    }
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        // Follows symlinks: a Kubernetes secret's file is a link into a directory swapped whole.
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some(FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode,
        })
    }
}

/// Reads the certificate chain and key named by `config` and checks that they match.
fn load(config: &TlsConfig) -> Result<Arc<CertifiedKey>, String> {
    let cert_file = &config.cert_file;
    let key_file = &config.key_file;
    let cert_pem = read("tls.cert_file", cert_file)?;
    let chain = certificates(&cert_pem)
        .map_err(|e| format!("tls.cert_file: {}: {e}", cert_file.display()))?;
    let key_pem = read("tls.key_file", key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        let what = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no PEM private key (expected BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
                    .to_owned()
            }
            other => format!("not a valid PEM private key: {other}"),
        };
        format!("tls.key_file: {}: {what}", key_file.display())
    })?;
    let signing_key = provider().key_provider.load_private_key(key).map_err(|e| {
        format!(
            "tls.key_file: {}: unusable private key: {e}",
            key_file.display()
        )
    })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(format!(
                "tls.key_file: {} is not the key of the certificate in {}",
                key_file.display(),
                cert_file.display()
            ))
        }
        Err(e) => {
            return Err(format!(
                "tls.cert_file: {}: the first certificate cannot be parsed: {e}",
                cert_file.display()
            ))
        }
    }
    Ok(Arc::new(certified))
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{key}: cannot read {}: {e}", path.display()))
}
