//! # wharf
//!
//! A managed file-transfer gateway: an embedded SFTP and FTP/FTPS server whose folders are
//! channels, a durable spool and journal behind every upload, and (in later parts) a rules
//! pipeline that delivers each file to its target or to an exception folder.
//!
//! # Layout
//! - [`config`]: the typed, validated configuration (errors name file, line and key).
//! - [`accounts`]: logins (argon2id passwords, SSH keys, networks) and session limits.
//! - [`vfs`]: the virtual tree of an account; path jail, mounts, permissions. The only code that
//!   maps a client path to storage.
//! - [`frontends`]: SFTP (russh + russh-sftp) and FTP/FTPS (libunftp) adapters over [`vfs`].
//! - [`spool`]: bodies on disk (tmp → fsync → rename) and the journal (SQLite); crash recovery.
//! - [`audit`]: the append-only, hash-chained audit trail.
//! - [`gateway`]: wiring of a running gateway.
#![warn(missing_docs)]

pub mod accounts;
pub mod audit;
pub mod config;
pub mod frontends;
pub mod gateway;
pub mod spool;
pub mod vfs;
