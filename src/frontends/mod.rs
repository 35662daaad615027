//! Protocol front-ends: thin adapters that turn SFTP and FTP operations into [`crate::vfs`] calls
//! and [`vfs::Error`]s into protocol replies. This module holds the one table of those replies.

pub mod ftp;
pub mod sftp;

use crate::vfs;
use russh_sftp::protocol::StatusCode;
use russh_sftp::server::StatusReply;
use unftp_core::storage::ErrorKind;

/// The SFTP status for a vfs error. SFTP v3 has few codes, so most refusals are `Failure` with the
/// reason as the message (OpenSSH's `sftp` prints it).
pub fn sftp_status(e: &vfs::Error) -> StatusReply {
    let code = match e {
        vfs::Error::NotFound(_) => StatusCode::NoSuchFile,
        vfs::Error::Denied(_) => StatusCode::PermissionDenied,
        vfs::Error::Unsupported(_) => StatusCode::OpUnsupported,
        vfs::Error::NameRejected(_)
        | vfs::Error::Exists(_)
        | vfs::Error::Quota(_)
        | vfs::Error::DiskFull(_)
        | vfs::Error::Transient(_)
        | vfs::Error::Internal(_) => StatusCode::Failure,
    };
    code.with_message(e.to_string())
}

/// The FTP reply kind for a vfs error (libunftp picks the reply text from the kind).
pub fn ftp_kind(e: &vfs::Error) -> ErrorKind {
    match e {
        vfs::Error::NotFound(_) => ErrorKind::PermanentFileNotAvailable,
        vfs::Error::Denied(_) => ErrorKind::PermissionDenied,
        vfs::Error::NameRejected(_) => ErrorKind::FileNameNotAllowedError,
        vfs::Error::Exists(_) => ErrorKind::PermanentFileNotAvailable,
        vfs::Error::Unsupported(_) => ErrorKind::CommandNotImplemented,
        vfs::Error::Quota(_) => ErrorKind::ExceededStorageAllocationError,
        vfs::Error::DiskFull(_) => ErrorKind::InsufficientStorageSpaceError,
        vfs::Error::Transient(_) => ErrorKind::TransientFileNotAvailable,
        vfs::Error::Internal(_) => ErrorKind::LocalError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vfs_error_has_its_reply() {
        let m = || "m".to_string();
        let table = [
            (vfs::Error::NotFound(m()), "550", StatusCode::NoSuchFile),
            (vfs::Error::Denied(m()), "550", StatusCode::PermissionDenied),
            (vfs::Error::NameRejected(m()), "553", StatusCode::Failure),
            (vfs::Error::Exists(m()), "550", StatusCode::Failure),
            (vfs::Error::Unsupported(m()), "502", StatusCode::OpUnsupported),
            (vfs::Error::Quota(m()), "552", StatusCode::Failure),
            (vfs::Error::DiskFull(m()), "452", StatusCode::Failure),
            (vfs::Error::Transient(m()), "450", StatusCode::Failure),
            (vfs::Error::Internal(m()), "451", StatusCode::Failure),
        ];
        for (err, ftp, sftp) in table {
            assert!(ftp_kind(&err).to_string().starts_with(ftp), "{err:?} → {}", ftp_kind(&err));
            let s = sftp_status(&err);
            assert_eq!(s.status_code, sftp, "{err:?}");
            assert_eq!(s.error_message.as_deref(), Some("m"));
        }
    }
}
