//! Accounts: who may log in, with what, from where, and how many sessions at once.
//!
//! SFTP and FTP call the same functions here, so a rule about logins (argon2id passwords, SSH keys,
//! allowed networks, disabled accounts, session limits, the audit of every attempt) exists once.
//! Unknown names are checked against a dummy hash so that a failed login takes the same time whether
//! or not the account exists.

use crate::audit::{Audit, Event};
use crate::config::{AccountConfig, Config, SessionLimits};
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use russh::keys::ssh_key::PublicKey;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a login was refused. The client is only ever told "authentication failed"; the reason goes
/// to the log and the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Unknown account or wrong credential (indistinguishable on purpose).
    #[error("wrong name or credential")]
    BadCredentials,
    /// The account is disabled.
    #[error("account is disabled")]
    Disabled,
    /// The client's address is outside the account's allowed networks.
    #[error("address {0} is not in the account's allowed networks")]
    NetworkNotAllowed(IpAddr),
    /// The account already holds its maximum number of sessions.
    #[error("account already has {0} sessions, the maximum")]
    TooManySessions(usize),
}

/// Parses a stored password hash, accepting only argon2id.
///
/// # Errors
/// Not a PHC string, or not argon2id.
pub fn parse_password_hash(s: &str) -> Result<PasswordHash, String> {
    let h = PasswordHash::new(s).map_err(|e| e.to_string())?;
    if h.algorithm.as_str() != "argon2id" {
        return Err(format!("algorithm {} is not argon2id", h.algorithm));
    }
    Ok(h)
}

/// Hashes a password as an argon2id PHC string (what `wharf user hash-password` prints).
///
/// # Errors
/// The hasher failed (should not happen with default parameters).
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| e.to_string())
}

fn verify_password(hash: &str, password: &str) -> bool {
    parse_password_hash(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// The account table and the live session counters.
pub struct Accounts {
    by_name: HashMap<String, Arc<AccountConfig>>,
    dummy_hash: String,
    limits: SessionLimits,
    counts: Arc<Mutex<Counts>>,
    audit: Arc<Audit>,
}

#[derive(Debug, Default)]
struct Counts {
    per_account: HashMap<String, usize>,
    per_addr: HashMap<IpAddr, usize>,
}

/// Held for as long as a connection from one address is open.
#[derive(Debug)]
pub struct AddressGuard {
    counts: Arc<Mutex<Counts>>,
    addr: IpAddr,
}

/// Held for as long as a logged-in session of one account is open.
#[derive(Debug)]
pub struct SessionGuard {
    counts: Arc<Mutex<Counts>>,
    account: String,
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Drop for AddressGuard {
    fn drop(&mut self) {
        if let Ok(mut c) = self.counts.lock() {
            decrement(&mut c.per_addr, &self.addr);
        }
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if let Ok(mut c) = self.counts.lock() {
            decrement(&mut c.per_account, &self.account);
        }
    }
}

/// A successful login.
#[derive(Debug)]
pub struct Login {
    /// The account.
    pub account: Arc<AccountConfig>,
    /// Releases the account's session slot when dropped.
    pub guard: SessionGuard,
}

impl Accounts {
    /// Builds the table from a validated config.
    ///
    /// # Errors
    /// Hashing the dummy password failed.
    pub fn new(config: &Config, audit: Arc<Audit>) -> Result<Self, String> {
        Ok(Self {
            by_name: config.accounts.iter().map(|a| (a.name.clone(), Arc::new(a.clone()))).collect(),
            dummy_hash: hash_password("wharf-dummy-password-for-constant-time")?,
            limits: config.sessions.clone(),
            counts: Arc::default(),
            audit,
        })
    }

    /// The session limits in force.
    pub fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    /// Takes a connection slot for `addr`, or `None` if it already holds the maximum.
    pub fn connect(&self, addr: IpAddr) -> Option<AddressGuard> {
        let mut c = self.counts.lock().ok()?;
        let n = c.per_addr.entry(addr).or_insert(0);
        if *n >= self.limits.max_per_address {
            drop(c);
            tracing::warn!(%addr, max = self.limits.max_per_address, "connection refused: too many from this address");
            return None;
        }
        *n += 1;
        Some(AddressGuard { counts: self.counts.clone(), addr })
    }

    /// Whether `key` is one of the account's authorized keys (without logging in): lets SSH clients
    /// skip signing with keys that would be refused anyway.
    pub fn key_is_authorized(&self, name: &str, key: &PublicKey) -> bool {
        self.by_name.get(name).is_some_and(|a| a.authorized_keys.iter().any(|k| k.key_data() == key.key_data()))
    }

    /// Password login.
    ///
    /// # Errors
    /// Why the login was refused (also audited).
    pub async fn login_password(
        &self,
        name: &str,
        password: &str,
        addr: IpAddr,
        protocol: &str,
    ) -> Result<Login, AuthError> {
        let account = self.by_name.get(name).cloned();
        let hash = account.as_ref().and_then(|a| a.password_hash.clone()).unwrap_or_else(|| self.dummy_hash.clone());
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || verify_password(&hash, &password)).await.unwrap_or(false);
        let result = match account {
            Some(a) if ok && a.password_hash.is_some() => self.admit(a, addr),
            _ => Err(AuthError::BadCredentials),
        };
        self.audit_login(name, addr, protocol, "password", &result);
        result
    }

    /// Public-key login (the signature was already verified by the SSH layer).
    ///
    /// # Errors
    /// Why the login was refused (also audited).
    pub fn login_key(&self, name: &str, key: &PublicKey, addr: IpAddr, protocol: &str) -> Result<Login, AuthError> {
        let result = match self.by_name.get(name) {
            Some(a) if self.key_is_authorized(name, key) => self.admit(a.clone(), addr),
            _ => Err(AuthError::BadCredentials),
        };
        self.audit_login(name, addr, protocol, "publickey", &result);
        result
    }

    fn admit(&self, account: Arc<AccountConfig>, addr: IpAddr) -> Result<Login, AuthError> {
        if account.disabled {
            return Err(AuthError::Disabled);
        }
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        if !account.allowed_networks.is_empty() && !account.allowed_networks.iter().any(|n| n.contains(&addr)) {
            return Err(AuthError::NetworkNotAllowed(addr));
        }
        let mut c = self.counts.lock().map_err(|_| AuthError::BadCredentials)?;
        let n = c.per_account.entry(account.name.clone()).or_insert(0);
        if *n >= self.limits.max_per_account {
            return Err(AuthError::TooManySessions(self.limits.max_per_account));
        }
        *n += 1;
        let guard = SessionGuard { counts: self.counts.clone(), account: account.name.clone() };
        Ok(Login { account, guard })
    }

    fn audit_login(&self, name: &str, addr: IpAddr, protocol: &str, method: &str, result: &Result<Login, AuthError>) {
        let addr = addr.to_string();
        match result {
            Ok(_) => {
                tracing::info!(account = name, remote = %addr, protocol, method, "login ok");
                self.audit
                    .record(Event::new("login_ok").account(name).remote(Some(&addr)).protocol(protocol).reason(method));
            }
            Err(e) => {
                tracing::warn!(account = name, remote = %addr, protocol, method, reason = %e, "login failed");
                let why = format!("{method}: {e}");
                self.audit.record(
                    Event::new("login_failed").account(name).remote(Some(&addr)).protocol(protocol).reason(&why),
                );
            }
        }
    }
}

#[cfg(test)]
#[path = "accounts_tests.rs"]
mod tests;
