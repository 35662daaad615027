//! FTP and explicit FTPS (AUTH TLS) over the vfs, with libunftp.
//!
//! wharf accepts connections itself (so the per-address connection limit applies before anything
//! else) and hands each one to a libunftp `Server` built for it. [`Backend`] implements libunftp's
//! `StorageBackend` by calling [`crate::vfs::Session`] only; `put` returns (and libunftp sends 226)
//! only after the spool commit.
//!
//! Plain FTP cannot tell a dropped data connection from the end of a file: both are a TCP close. A
//! client killed mid-STOR therefore looks like a complete (short) upload. Under FTPS an unclean TLS
//! close is an error and the upload is refused. Use FTPS (`require_tls = true`) for anything that
//! matters; the README says so too.

use crate::accounts::{Accounts, SessionGuard};
use crate::config::{AccountConfig, FtpConfig};
use crate::frontends::ftp_kind;

use crate::vfs::{self, Entry, Session, VPath, Vfs, path::normalize};
use async_trait::async_trait;
use libunftp::ServerBuilder;
use libunftp::options::{FtpsRequired, PassiveHost};
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::SystemTime;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use unftp_core::auth::{
    AuthenticationError, Authenticator, ChannelEncryptionState, Credentials, Principal, UserDetail, UserDetailError,
    UserDetailProvider,
};
use unftp_core::storage::{self, Fileinfo, Metadata, StorageBackend};

/// A logged-in FTP user: the account and its vfs session.
pub struct FtpUser {
    session: Arc<Session>,
    _guard: Arc<SessionGuard>,
}

impl fmt::Display for FtpUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.session.account().name)
    }
}

impl fmt::Debug for FtpUser {
    // libunftp's spans Debug-print the user: keep it to the name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FtpUser({})", self.session.account().name)
    }
}

impl UserDetail for FtpUser {}

struct Pending {
    account: Arc<AccountConfig>,
    guard: SessionGuard,
    protocol: &'static str,
    addr: IpAddr,
}

/// Authenticator and user-detail provider in one: the authenticator checks the password through
/// [`Accounts`] and parks the login; the provider picks it up and builds the [`FtpUser`].
pub struct FtpAuth {
    accounts: Arc<Accounts>,
    vfs: Arc<Vfs>,
    pending: Mutex<HashMap<String, Vec<Pending>>>,
}

impl fmt::Debug for FtpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FtpAuth")
    }
}

#[async_trait]
impl Authenticator for FtpAuth {
    async fn authenticate(&self, username: &str, creds: &Credentials) -> Result<Principal, AuthenticationError> {
        let protocol = match creds.command_channel_security {
            ChannelEncryptionState::Tls => "ftps",
            ChannelEncryptionState::Plaintext => "ftp",
        };
        let password = creds.password.as_deref().unwrap_or("");
        match self.accounts.login_password(username, password, creds.source_ip, protocol).await {
            Ok(login) => {
                if let Ok(mut p) = self.pending.lock() {
                    p.entry(username.to_string()).or_default().push(Pending {
                        account: login.account,
                        guard: login.guard,
                        protocol,
                        addr: creds.source_ip,
                    });
                }
                Ok(Principal { username: username.to_string() })
            }
            Err(e) => {
                tokio::time::sleep(self.accounts.limits().auth_failure_delay).await;
                Err(AuthenticationError::new(e.to_string()))
            }
        }
    }
}

#[async_trait]
impl UserDetailProvider for FtpAuth {
    type User = FtpUser;

    async fn provide_user_detail(&self, principal: &Principal) -> Result<FtpUser, UserDetailError> {
        let pending = self
            .pending
            .lock()
            .ok()
            .and_then(|mut p| p.get_mut(&principal.username).and_then(Vec::pop))
            .ok_or_else(|| UserDetailError::Generic("no pending login".into()))?;
        let session = Session::new(&self.vfs, pending.account, pending.protocol, Some(pending.addr.to_string()));
        Ok(FtpUser { session: Arc::new(session), _guard: Arc::new(pending.guard) })
    }
}

/// libunftp metadata over a vfs [`Entry`].
#[derive(Debug, Clone)]
pub struct Meta(Entry);

impl Metadata for Meta {
    fn len(&self) -> u64 {
        self.0.size
    }
    fn is_dir(&self) -> bool {
        self.0.is_dir()
    }
    fn is_file(&self) -> bool {
        !self.0.is_dir()
    }
    fn is_symlink(&self) -> bool {
        false
    }
    fn modified(&self) -> storage::Result<SystemTime> {
        Ok(self.0.modified.unwrap_or(SystemTime::UNIX_EPOCH))
    }
    fn gid(&self) -> u32 {
        0
    }
    fn uid(&self) -> u32 {
        0
    }
}

/// The storage backend: every call goes to the user's vfs session.
#[derive(Debug, Default)]
pub struct Backend;

fn vpath(p: &Path) -> Result<VPath, storage::Error> {
    let s = p.to_str().ok_or_else(|| storage::Error::from(storage::ErrorKind::FileNameNotAllowedError))?;
    normalize(s).map_err(|e| fail(&vfs::Error::from(e)))
}

fn fail(e: &vfs::Error) -> storage::Error {
    tracing::info!(reason = %e, "ftp request refused");
    storage::Error::new(ftp_kind(e), e.to_string())
}

/// A download stream that records how much was sent when it is dropped.
struct Sending {
    inner: tokio::io::Take<tokio::fs::File>,
    download: vfs::Download,
    sent: u64,
}

impl AsyncRead for Sending {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.sent += n;
        r
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        self.download.mark_sent(self.sent);
    }
}

const CHUNK: usize = 256 * 1024;

#[async_trait]
impl StorageBackend<FtpUser> for Backend {
    type Metadata = Meta;

    fn supported_features(&self) -> u32 {
        unftp_core::storage::FEATURE_RESTART
    }

    async fn metadata<P: AsRef<Path> + Send + fmt::Debug>(&self, user: &FtpUser, path: P) -> storage::Result<Meta> {
        let p = vpath(path.as_ref())?;
        user.session.stat(&p).await.map(Meta).map_err(|e| fail(&e))
    }

    async fn list<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &FtpUser,
        path: P,
    ) -> storage::Result<Vec<Fileinfo<PathBuf, Meta>>> {
        let p = vpath(path.as_ref())?;
        let entries = user.session.list(&p).await.map_err(|e| fail(&e))?;
        Ok(entries.into_iter().map(|e| Fileinfo { path: PathBuf::from(&e.name), metadata: Meta(e) }).collect())
    }

    /// RETR: the file copied to the data connection chunk by chunk. The download counts as
    /// complete only when every byte was written, flushed and the connection shut down without
    /// an error (TLS close_notify, then FIN), so a client that is gone before the end leaves a
    /// `download_incomplete` and a package it never got stays in its box. (Bytes the kernel took
    /// can still be lost with the connection afterwards: TCP gives no receipt.)
    async fn get_into<'a, P, W>(
        &self,
        user: &FtpUser,
        path: P,
        start_pos: u64,
        output: &'a mut W,
    ) -> storage::Result<u64>
    where
        W: tokio::io::AsyncWrite + Unpin + Sync + Send + ?Sized,
        P: AsRef<Path> + Send + fmt::Debug,
    {
        use tokio::io::AsyncWriteExt;
        let p = vpath(path.as_ref())?;
        let download = user.session.open_read(&p).await.map_err(|e| fail(&e))?;
        let mut input = download.stream_from(start_pos).map_err(|e| fail(&e))?;
        let (mut buf, mut written) = (vec![0u8; CHUNK], 0u64);
        let outcome: std::io::Result<()> = async {
            loop {
                let n = input.read(&mut buf).await?;
                if n == 0 {
                    output.flush().await?;
                    return output.shutdown().await;
                }
                output.write_all(&buf[..n]).await?;
                written += n as u64;
            }
        }
        .await;
        match outcome {
            Ok(()) => {
                download.mark_sent(start_pos + written);
                Ok(written)
            }
            Err(e) => {
                // bytes written but perhaps still in a buffer never make the download complete
                download.mark_sent((start_pos + written).min(download.size().saturating_sub(1)));
                Err(storage::Error::from(e))
            }
        }
    }

    async fn get<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &FtpUser,
        path: P,
        start_pos: u64,
    ) -> storage::Result<Box<dyn AsyncRead + Send + Sync + Unpin>> {
        let p = vpath(path.as_ref())?;
        let download = user.session.open_read(&p).await.map_err(|e| fail(&e))?;
        let inner = download.stream_from(start_pos).map_err(|e| fail(&e))?;
        Ok(Box::new(Sending { inner, download, sent: start_pos }))
    }

    async fn put<P: AsRef<Path> + Send + fmt::Debug, R: AsyncRead + Send + Sync + Unpin + 'static>(
        &self,
        user: &FtpUser,
        mut input: R,
        path: P,
        start_pos: u64,
    ) -> storage::Result<u64> {
        let p = vpath(path.as_ref())?;
        if start_pos > 0 {
            return Err(fail(&vfs::Error::Unsupported(format!(
                "{p}: resuming an upload (REST/APPE) is not supported; upload the whole file again"
            ))));
        }
        let upload = user.session.create(&p, false).await.map_err(|e| fail(&e))?;
        let mut offset = 0u64;
        loop {
            let mut buf = Vec::with_capacity(CHUNK);
            let n = match (&mut input).take(CHUNK as u64).read_to_end(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    // Dropping `upload` aborts it: nothing half-received is ever committed.
                    tracing::warn!(path = %p, error = %e, "ftp upload broken off");
                    return Err(storage::Error::new(storage::ErrorKind::ConnectionClosed, e));
                }
            };
            if n == 0 {
                break;
            }
            upload.write_at(offset, buf).await.map_err(|e| fail(&e))?;
            offset += n as u64;
        }
        let done = upload.commit().await.map_err(|e| fail(&e))?;
        Ok(done.written.size)
    }

    async fn del<P: AsRef<Path> + Send + fmt::Debug>(&self, user: &FtpUser, path: P) -> storage::Result<()> {
        let p = vpath(path.as_ref())?;
        user.session.remove(&p).await.map_err(|e| fail(&e))
    }

    async fn mkd<P: AsRef<Path> + Send + fmt::Debug>(&self, user: &FtpUser, path: P) -> storage::Result<()> {
        let p = vpath(path.as_ref())?;
        user.session.mkdir(&p).await.map_err(|e| fail(&e))
    }

    async fn rename<P: AsRef<Path> + Send + fmt::Debug>(&self, user: &FtpUser, from: P, to: P) -> storage::Result<()> {
        let (a, b) = (vpath(from.as_ref())?, vpath(to.as_ref())?);
        user.session.rename(&a, &b).await.map_err(|e| fail(&e))
    }

    async fn rmd<P: AsRef<Path> + Send + fmt::Debug>(&self, user: &FtpUser, path: P) -> storage::Result<()> {
        let p = vpath(path.as_ref())?;
        user.session.rmdir(&p).await.map_err(|e| fail(&e))
    }

    async fn cwd<P: AsRef<Path> + Send + fmt::Debug>(&self, user: &FtpUser, path: P) -> storage::Result<()> {
        let p = vpath(path.as_ref())?;
        let e = user.session.stat(&p).await.map_err(|e| fail(&e))?;
        if e.is_dir() { Ok(()) } else { Err(fail(&vfs::Error::NotFound(format!("{p}: not a folder")))) }
    }
}

/// Builds the rustls config for FTPS: TLS 1.2 and 1.3, TLS 1.2 session resumption, no TLS 1.3
/// tickets (see below).
///
/// # Errors
/// The PEM files cannot be read or do not form a usable certificate and key.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not match or are unusable: {e}"))?;
    // TLS 1.2 session IDs let clients resume the control connection's session on data connections.
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(4096);
    // No TLS 1.3 session tickets: rustls sends them after the handshake on every connection, data
    // connections included, and curl before 8.8 never reads them on an upload; closing with that
    // unread data makes the kernel reset the connection and the end of the upload is lost
    // (curl/curl#13904: most FTPS uploads from Debian 12's curl failed with 426). A TLS 1.3 data
    // connection then does a full handshake, which every client tested accepts.
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// Everything needed to serve one FTP control connection.
pub struct FtpFrontend {
    config: FtpConfig,
    auth: Arc<FtpAuth>,
    tls: Option<Arc<rustls::ServerConfig>>,
    idle_timeout_secs: u64,
}

impl FtpFrontend {
    /// Prepares the front-end (loads the TLS certificate once).
    ///
    /// # Errors
    /// The TLS files are unusable.
    pub fn new(config: &FtpConfig, accounts: Arc<Accounts>, vfs: Arc<Vfs>) -> Result<Self, String> {
        let tls = match &config.tls {
            Some(t) => Some(tls_config(&t.cert, &t.key)?),
            None => None,
        };
        let idle_timeout_secs = accounts.limits().idle_timeout.as_secs();
        Ok(Self {
            config: config.clone(),
            auth: Arc::new(FtpAuth { accounts, vfs, pending: Mutex::new(HashMap::new()) }),
            tls,
            idle_timeout_secs,
        })
    }

    /// Serves one accepted control connection until it ends.
    pub async fn serve(&self, stream: tokio::net::TcpStream) {
        let mut b = ServerBuilder::with_user_detail_provider(Box::new(|| Backend), self.auth.clone())
            .authenticator(self.auth.clone())
            .greeting("wharf FTP gateway ready")
            .passive_ports(self.config.passive_ports.clone())
            .idle_session_timeout(self.idle_timeout_secs);
        if let Some(IpAddr::V4(ip)) = self.config.advertised_address {
            b = b.passive_host(PassiveHost::Ip(ip));
        }
        if let Some(tls) = &self.tls {
            b = b.ftps_manual::<PathBuf>(tls.clone());
            if self.config.require_tls {
                b = b.ftps_required(FtpsRequired::All, FtpsRequired::All);
            }
        }
        match b.build() {
            Ok(server) => {
                if let Err(e) = server.service(stream).await {
                    tracing::debug!(error = ?e, "ftp control connection ended with an error");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot build the FTP server"),
        }
    }
}
