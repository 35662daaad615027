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
//! - [`intake`]: hot folders: intakes other than SFTP/FTP, feeding the same spool.
//! - [`pipeline`]: workers that apply a channel's rules and deliver, or put the file in an
//!   exception folder with its reason.
//! - [`outbound`]: scheduled jobs that package what is new at a source and publish it
//!   atomically into a partner's outbound box; collection tracking and retention.
//! - [`targets`]: where documents are delivered (one trait; `fs` is the embedded default).
//! - [`audit`]: the append-only, hash-chained audit trail.
//! - [`rules`]: the rules engine: rule files (`rules/<channel>.toml`), checks, metadata, destinations
//!   and inline rule tests. Pure: evaluates one file to an outcome; moves nothing.
//! - [`gateway`]: wiring of a running gateway.
#![warn(missing_docs)]

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod config;
pub mod frontends;
pub mod gateway;
pub mod intake;
pub mod outbound;
pub mod pipeline;
pub mod rules;
pub mod spool;
pub mod targets;
pub mod vfs;
