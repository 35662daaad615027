//! SFTP (v3, as OpenSSH speaks it) over the vfs, with russh and russh-sftp.
//!
//! [`Connection`] is the SSH side: password and public-key authentication through
//! [`Accounts`], one `sftp` subsystem per session channel, and a refusal for everything else (shell,
//! exec, port forwarding, agent and X11 forwarding). [`SftpSession`] is the file protocol: each
//! request becomes one vfs call. Writes are queued to a writer thread and return at once (russh-sftp
//! answers requests one at a time, so per-request work must stay short); CLOSE of a write handle
//! is the commit and only answers "ok" once the spool has made the upload durable.

use crate::accounts::{Accounts, AddressGuard, Login};
use crate::config::SftpConfig;
use crate::frontends::sftp_status;

use crate::vfs::{self, Entry, Session, VPath, Vfs, path::normalize};
use russh::keys::ssh_key::{self, PrivateKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session as SshSession, VerifiedPublicKey};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use russh_sftp::protocol::{
    Attrs, Data, ExtendedReply, File, FileAttributes, Handle, Name, OpenFlags, Packet, Status, StatusCode, Version,
};
use russh_sftp::server::StatusReply;
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest SFTP packet a client may send, and the read/write sizes advertised via
/// `limits@openssh.com` (OpenSSH's own values: with them its client uses 255 KiB requests).
const MAX_PACKET: u32 = 262_144;
const MAX_DATA: u64 = 261_120;
/// Open handles per session.
const MAX_HANDLES: usize = 256;

/// Loads the host key, generating an ed25519 key (mode 0600) if the file does not exist.
///
/// # Errors
/// The key cannot be read, parsed, generated or written.
pub fn load_or_create_host_key(path: &Path) -> Result<PrivateKey, String> {
    if !path.exists() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let key = PrivateKey::random(&mut rand::rng(), ssh_key::Algorithm::Ed25519).map_err(|e| e.to_string())?;
        key.write_openssh_file(path, ssh_key::LineEnding::LF).map_err(|e| format!("{}: {e}", path.display()))?;
        tracing::info!(path = %path.display(), "generated a new ed25519 host key");
    }
    russh::keys::load_secret_key(path, None).map_err(|e| format!("{}: {e}", path.display()))
}

fn methods() -> MethodSet {
    MethodSet::from(&[MethodKind::Password, MethodKind::PublicKey][..])
}

/// The russh server configuration: our methods and identity, tuned for throughput.
pub fn ssh_config(cfg: &SftpConfig, key: PrivateKey, auth_delay: Duration, idle: Duration) -> russh::server::Config {
    use russh::cipher;
    let preferred = russh::Preferred {
        cipher: Cow::Borrowed(&[
            cipher::CHACHA20_POLY1305,
            cipher::AES_256_GCM,
            cipher::AES_128_GCM,
            cipher::AES_256_CTR,
            cipher::AES_192_CTR,
            cipher::AES_128_CTR,
        ]),
        ..russh::Preferred::default()
    };
    russh::server::Config {
        server_id: russh::SshId::Standard(Cow::Borrowed("SSH-2.0-wharf")),
        methods: methods(),
        auth_rejection_time: auth_delay,
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![key],
        inactivity_timeout: Some(idle),
        nodelay: true,
        window_size: cfg.window_size,
        channel_buffer_size: 1000,
        preferred,
        ..russh::server::Config::default()
    }
}

/// One SSH connection.
pub struct Connection {
    accounts: Arc<Accounts>,
    vfs: Arc<Vfs>,
    peer: SocketAddr,
    login: Option<Login>,
    channels: HashMap<ChannelId, Channel<Msg>>,
    _addr: AddressGuard,
}

impl Connection {
    /// A new connection from `peer`, holding its address slot.
    pub fn new(accounts: Arc<Accounts>, vfs: Arc<Vfs>, peer: SocketAddr, addr: AddressGuard) -> Self {
        Self { accounts, vfs, peer, login: None, channels: HashMap::new(), _addr: addr }
    }

    fn reject() -> Auth {
        // A plain `Auth::reject()` would drop "password" from the methods for the whole connection.
        Auth::Reject { proceed_with_methods: Some(methods()), partial_success: false }
    }

    fn refuse(&mut self, channel: ChannelId, session: &mut SshSession, what: &str) -> Result<(), russh::Error> {
        tracing::warn!(peer = %self.peer, "refused {what}: this server offers SFTP only");
        session.channel_failure(channel)?;
        session.close(channel)?;
        Ok(())
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Self::reject())
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        match self.accounts.login_password(user, password, self.peer.ip(), "sftp").await {
            Ok(login) => {
                self.login = Some(login);
                Ok(Auth::Accept)
            }
            Err(_) => Ok(Self::reject()),
        }
    }

    async fn auth_publickey_offered(&mut self, user: &str, offer: PublicKeyOffer<'_>) -> Result<Auth, Self::Error> {
        if self.accounts.key_is_authorized(user, offer.public_key) { Ok(Auth::Accept) } else { Ok(Self::reject()) }
    }

    async fn auth_publickey(&mut self, user: &str, key: VerifiedPublicKey<'_>) -> Result<Auth, Self::Error> {
        match self.accounts.login_key(user, key.public_key, self.peer.ip(), "sftp") {
            Ok(login) => {
                self.login = Some(login);
                Ok(Auth::Accept)
            }
            Err(_) => Ok(Self::reject()),
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut SshSession,
    ) -> Result<(), Self::Error> {
        if self.login.is_some() && self.channels.len() < 8 {
            self.channels.insert(channel.id(), channel);
            reply.accept().await;
        }
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut SshSession,
    ) -> Result<(), Self::Error> {
        let (Some(login), true) = (self.login.as_ref(), name == "sftp") else {
            return self.refuse(channel, session, &format!("subsystem {name:?}"));
        };
        let Some(ch) = self.channels.remove(&channel) else {
            return self.refuse(channel, session, "subsystem on an unknown channel");
        };
        session.channel_success(channel)?;
        let vfs = Session::new(&self.vfs, login.account.clone(), "sftp", Some(self.peer.ip().to_string()));
        let handler = SftpSession { session: vfs, handles: HashMap::new(), next: 0 };
        let cfg = russh_sftp::server::Config { max_client_packet_len: MAX_PACKET + 1024 };
        russh_sftp::server::run_with_config(ch.into_stream(), handler, cfg).await;
        Ok(())
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut SshSession) -> Result<(), Self::Error> {
        self.refuse(channel, session, "shell")
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut SshSession,
    ) -> Result<(), Self::Error> {
        self.refuse(channel, session, "exec")
    }

    async fn channel_eof(&mut self, channel: ChannelId, session: &mut SshSession) -> Result<(), Self::Error> {
        session.close(channel)?;
        Ok(())
    }
}

enum Open {
    Read(vfs::Download),
    Write(vfs::Upload),
    Dir(Option<Vec<Entry>>),
}

/// The SFTP protocol handler of one channel.
pub struct SftpSession {
    session: Session,
    handles: HashMap<String, Open>,
    next: u64,
}

fn ok(id: u32) -> Status {
    Status { id, status_code: StatusCode::Ok, error_message: "Ok".into(), language_tag: "en-US".into() }
}

fn vp(p: &str) -> Result<VPath, StatusReply> {
    normalize(p).map_err(|e| sftp_status(&vfs::Error::from(e)))
}

fn attrs(e: &Entry) -> FileAttributes {
    let mtime = e
        .modified
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
    FileAttributes {
        size: Some(e.size),
        uid: Some(0),
        user: None,
        gid: Some(0),
        group: None,
        permissions: Some(if e.is_dir() { 0o040_755 } else { 0o100_644 }),
        atime: mtime,
        mtime,
    }
}

fn no_handle() -> StatusReply {
    StatusCode::Failure.with_message("invalid handle")
}

fn time(t: Option<u32>) -> Option<SystemTime> {
    t.map(|s| UNIX_EPOCH + Duration::from_secs(u64::from(s)))
}

impl SftpSession {
    fn add(&mut self, open: Open) -> Result<String, StatusReply> {
        if self.handles.len() >= MAX_HANDLES {
            return Err(StatusCode::Failure.with_message(format!("too many open files (at most {MAX_HANDLES})")));
        }
        self.next += 1;
        let h = self.next.to_string();
        self.handles.insert(h.clone(), open);
        Ok(h)
    }

    async fn set_attrs(&self, path: &VPath, a: &FileAttributes) -> Result<(), StatusReply> {
        if a.size.is_some() {
            return Err(StatusCode::OpUnsupported.with_message("changing a file's size is not supported"));
        }
        if a.atime.is_some() || a.mtime.is_some() {
            self.session.set_times(path, time(a.atime), time(a.mtime)).await.map_err(|e| sftp_status(&e))?;
        }
        // Permission and owner changes are ignored: boxes have no owners or modes of their own.
        Ok(())
    }
}

fn u32_string(data: &[u8], pos: &mut usize) -> Option<String> {
    let len = u32::from_be_bytes(data.get(*pos..*pos + 4)?.try_into().ok()?) as usize;
    *pos += 4;
    let s = std::str::from_utf8(data.get(*pos..*pos + len)?).ok()?.to_string();
    *pos += len;
    Some(s)
}

impl russh_sftp::server::Handler for SftpSession {
    type Error = StatusReply;

    fn unimplemented(&self) -> Self::Error {
        StatusCode::OpUnsupported.with_message("operation not supported by this server")
    }

    async fn init(&mut self, _version: u32, _ext: HashMap<String, String>) -> Result<Version, Self::Error> {
        let mut v = Version::new();
        v.extensions.insert("limits@openssh.com".into(), "1".into());
        v.extensions.insert("posix-rename@openssh.com".into(), "1".into());
        Ok(v)
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        _attrs: FileAttributes,
    ) -> Result<Handle, Self::Error> {
        let path = vp(&filename)?;
        let open = if pflags.intersects(OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::APPEND)
        {
            if pflags.contains(OpenFlags::APPEND) && !pflags.contains(OpenFlags::TRUNCATE) {
                return Err(StatusCode::OpUnsupported.with_message(format!(
                    "{path}: appending to or resuming an upload is not supported; upload the whole file"
                )));
            }
            let up =
                self.session.create(&path, pflags.contains(OpenFlags::EXCLUDE)).await.map_err(|e| sftp_status(&e))?;
            Open::Write(up)
        } else {
            Open::Read(self.session.open_read(&path).await.map_err(|e| sftp_status(&e))?)
        };
        Ok(Handle { id, handle: self.add(open)? })
    }

    async fn read(&mut self, id: u32, handle: String, offset: u64, len: u32) -> Result<Data, Self::Error> {
        let Some(Open::Read(d)) = self.handles.get(&handle) else { return Err(no_handle()) };
        let len = len.min(MAX_DATA as u32) as usize;
        let data = d.read_at(offset, len).await.map_err(|e| sftp_status(&e))?;
        if data.is_empty() {
            return Err(StatusCode::Eof.into());
        }
        Ok(Data { id, data })
    }

    async fn write(&mut self, id: u32, handle: String, offset: u64, data: Vec<u8>) -> Result<Status, Self::Error> {
        let Some(Open::Write(up)) = self.handles.get(&handle) else { return Err(no_handle()) };
        up.write_at(offset, data).await.map_err(|e| sftp_status(&e))?;
        Ok(ok(id))
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        match self.handles.remove(&handle) {
            Some(Open::Write(up)) => {
                up.commit().await.map_err(|e| sftp_status(&e))?;
                Ok(ok(id))
            }
            Some(_) => Ok(ok(id)),
            None => Err(no_handle()),
        }
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, Self::Error> {
        let path = vp(&path)?;
        let entries = self.session.list(&path).await.map_err(|e| sftp_status(&e))?;
        Ok(Handle { id, handle: self.add(Open::Dir(Some(entries)))? })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        let Some(Open::Dir(entries)) = self.handles.get_mut(&handle) else { return Err(no_handle()) };
        match entries.take() {
            Some(list) => Ok(Name { id, files: list.iter().map(|e| File::new(e.name.clone(), attrs(e))).collect() }),
            None => Err(StatusCode::Eof.into()),
        }
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let path = vp(&path)?;
        let e = self.session.stat(&path).await.map_err(|e| sftp_status(&e))?;
        Ok(Attrs { id, attrs: attrs(&e) })
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        self.stat(id, path).await
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        match self.handles.get(&handle) {
            Some(Open::Read(d)) => Ok(Attrs {
                id,
                attrs: attrs(&Entry {
                    name: String::new(),
                    kind: vfs::EntryKind::File,
                    size: d.size(),
                    modified: None,
                }),
            }),
            Some(Open::Write(..)) => {
                Ok(Attrs { id, attrs: FileAttributes { permissions: Some(0o100_644), ..FileAttributes::empty() } })
            }
            Some(Open::Dir(_)) => {
                Ok(Attrs { id, attrs: FileAttributes { permissions: Some(0o040_755), ..FileAttributes::empty() } })
            }
            None => Err(no_handle()),
        }
    }

    async fn setstat(&mut self, id: u32, path: String, a: FileAttributes) -> Result<Status, Self::Error> {
        let path = vp(&path)?;
        self.set_attrs(&path, &a).await?;
        Ok(ok(id))
    }

    async fn fsetstat(&mut self, id: u32, handle: String, a: FileAttributes) -> Result<Status, Self::Error> {
        // Times on an open handle (OpenSSH `put -p` sends them before CLOSE) are accepted; an upload's
        // time is the time it was committed.
        if !self.handles.contains_key(&handle) {
            return Err(no_handle());
        }
        if a.size.is_some() {
            return Err(StatusCode::OpUnsupported.with_message("changing a file's size is not supported"));
        }
        Ok(ok(id))
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, Self::Error> {
        let path = vp(&filename)?;
        self.session.remove(&path).await.map_err(|e| sftp_status(&e))?;
        Ok(ok(id))
    }

    async fn mkdir(&mut self, id: u32, path: String, _attrs: FileAttributes) -> Result<Status, Self::Error> {
        let path = vp(&path)?;
        self.session.mkdir(&path).await.map_err(|e| sftp_status(&e))?;
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, Self::Error> {
        let path = vp(&path)?;
        self.session.rmdir(&path).await.map_err(|e| sftp_status(&e))?;
        Ok(ok(id))
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let path = vp(&path)?;
        Ok(Name { id, files: vec![File::dummy(path.to_string())] })
    }

    async fn rename(&mut self, id: u32, oldpath: String, newpath: String) -> Result<Status, Self::Error> {
        let (a, b) = (vp(&oldpath)?, vp(&newpath)?);
        self.session.rename(&a, &b).await.map_err(|e| sftp_status(&e))?;
        Ok(ok(id))
    }

    async fn readlink(&mut self, _id: u32, path: String) -> Result<Name, Self::Error> {
        Err(StatusCode::NoSuchFile.with_message(format!("{path}: not a symbolic link")))
    }

    async fn symlink(&mut self, _id: u32, _linkpath: String, _targetpath: String) -> Result<Status, Self::Error> {
        Err(StatusCode::PermissionDenied.with_message("symbolic links cannot be created on this server"))
    }

    async fn extended(&mut self, id: u32, request: String, data: Vec<u8>) -> Result<Packet, Self::Error> {
        match request.as_str() {
            "limits@openssh.com" => {
                let limits = russh_sftp::extensions::LimitsExtension {
                    max_packet_len: u64::from(MAX_PACKET),
                    max_read_len: MAX_DATA,
                    max_write_len: MAX_DATA,
                    max_open_handles: MAX_HANDLES as u64,
                };
                let data = russh_sftp::ser::to_bytes(&limits)
                    .map_err(|_| StatusCode::Failure.with_message("cannot encode limits"))?
                    .to_vec();
                Ok(Packet::ExtendedReply(ExtendedReply { id, data }))
            }
            "posix-rename@openssh.com" => {
                let mut pos = 0;
                let (Some(a), Some(b)) = (u32_string(&data, &mut pos), u32_string(&data, &mut pos)) else {
                    return Err(StatusCode::BadMessage.with_message("malformed posix-rename request"));
                };
                self.rename(id, a, b).await.map(Packet::Status)
            }
            other => Err(StatusCode::OpUnsupported.with_message(format!("extension {other} is not supported"))),
        }
    }
}
