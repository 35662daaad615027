//! The one error type every virtual-filesystem operation returns. Front-ends translate it into their
//! protocol's replies through the tables in `frontends`; nothing else decides a reply code.

use super::path::PathError;

/// What went wrong with a client operation, with a message a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path does not exist (or is not visible to this account, which is the same to a client).
    #[error("{0}")]
    NotFound(String),
    /// The mount's permissions do not allow this operation.
    #[error("{0}")]
    Denied(String),
    /// The name is not acceptable (normalisation, naming rules).
    #[error("{0}")]
    NameRejected(String),
    /// The target already exists and the operation may not replace it.
    #[error("{0}")]
    Exists(String),
    /// The operation is not supported in this kind of folder.
    #[error("{0}")]
    Unsupported(String),
    /// The account or box exceeded a size or count limit.
    #[error("{0}")]
    Quota(String),
    /// The spool's disk is full.
    #[error("{0}")]
    DiskFull(String),
    /// A temporary condition; the client may retry.
    #[error("{0}")]
    Transient(String),
    /// A fault inside the gateway; details are logged, the client gets a short message.
    #[error("{0}")]
    Internal(String),
}

impl From<PathError> for Error {
    fn from(e: PathError) -> Self {
        Error::NameRejected(e.to_string())
    }
}

impl Error {
    /// Classifies an I/O error from the spool's disk, keeping the operation in the message.
    pub fn io(what: &str, e: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::NotFound => Error::NotFound(format!("{what}: no such file or folder")),
            K::AlreadyExists => Error::Exists(format!("{what}: already exists")),
            K::StorageFull | K::QuotaExceeded => {
                Error::DiskFull(format!("{what}: the gateway's storage is full; try again later"))
            }
            K::DirectoryNotEmpty => Error::Denied(format!("{what}: folder is not empty")),
            K::NotADirectory => Error::NotFound(format!("{what}: not a folder")),
            K::IsADirectory => Error::Unsupported(format!("{what}: is a folder")),
            _ if e.raw_os_error() == Some(libc::ELOOP) => {
                Error::Denied(format!("{what}: symbolic links are not followed"))
            }
            _ => {
                tracing::error!(error = %e, "{what}");
                Error::Internal(format!("{what}: internal error"))
            }
        }
    }
}

/// Short alias used across the vfs.
pub type Result<T> = std::result::Result<T, Error>;
