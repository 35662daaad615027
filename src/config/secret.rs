//! Secrets of connector targets: named in the config as an environment variable or a file,
//! never written in it, and read only when the connection is set up (so they never appear in a
//! config dump or an error). Also the shared check of a connector's base URL.

use super::locate::{Checker, KeyPath};
use std::path::{Path, PathBuf};

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable.
    Env(String),
    /// A file (first line).
    File(PathBuf),
}

/// A secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is not set.
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The variable or the file's first line is empty.
    #[error("the secret in {0} is empty")]
    Empty(String),
}

impl SecretSource {
    /// The secret, trimmed; an empty one is an error.
    ///
    /// # Errors
    /// The variable is unset, the file unreadable, or the value empty.
    pub fn read(&self) -> Result<String, SecretError> {
        let (value, place) = match self {
            Self::Env(v) => (std::env::var(v).map_err(|_| SecretError::MissingEnv(v.clone()))?, v.clone()),
            Self::File(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|source| SecretError::File { path: p.display().to_string(), source })?;
                (text.lines().next().unwrap_or_default().to_string(), p.display().to_string())
            }
        };
        let value = value.trim().to_string();
        if value.is_empty() { Err(SecretError::Empty(place)) } else { Ok(value) }
    }
}

/// The secret named by a pair of keys (`x_env` or `x_file`, not both; `None` when neither).
pub fn from_keys(
    env: &Option<String>,
    file: &Option<String>,
    key: &KeyPath,
    names: (&str, &str),
    base: &Path,
    ck: &mut Checker<'_>,
) -> Option<SecretSource> {
    match (env, file) {
        (Some(v), None) => Some(SecretSource::Env(v.clone())),
        (None, Some(f)) => Some(SecretSource::File(super::resolve(base, f))),
        (None, None) => None,
        (Some(_), Some(_)) => {
            ck.report(&key.key(names.1), format!("give `{}` or `{}`, not both", names.0, names.1));
            None
        }
    }
}

/// An http(s) base URL without its trailing slash; reports anything else.
pub fn http_url(u: &str, key: &KeyPath, ck: &mut Checker<'_>) -> String {
    let u = u.trim().trim_end_matches('/').to_string();
    if !(u.starts_with("https://") || u.starts_with("http://")) || reqwest::Url::parse(&u).is_err() {
        ck.report(key, "must be an http(s) URL");
    }
    u
}
