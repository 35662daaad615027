//! Intakes other than SFTP and FTP: every way an item enters a channel besides an upload. Each
//! hands the spool the same kind of transfer an upload does (same journal states, same rules).

pub mod hotfolder;
pub mod poll;
pub mod webhook;
pub mod webhook_package;
