//! Why a Workflow Service call failed, classified for the pipeline (transient = try again later,
//! everything else = an exception a person acts on), and how a reply body becomes a message.
//!
//! Messages come from the body's `exception` (400s), `details`, the gateway's
//! `fault.faultstring`, or OAuth's `error_description`/`error`; never from a URL or a request
//! body, so no secret can reach an error (and [`redact`] removes one that a server echoed).

use serde_json::Value;
use std::time::Duration;

/// A failed Workflow Service call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Worth trying again later: network trouble, a dropped connection, 429, 5xx.
    #[error("OpenText Workflow Service is unavailable for now: {message}")]
    Transient {
        /// What happened.
        message: String,
        /// How long the service asked to wait (a 429's `Retry-After`).
        retry_after: Option<Duration>,
    },
    /// The service refused the request for good (a 4xx other than 401/404/429).
    #[error("OpenText Workflow Service refused {what}: {message} (HTTP {status})")]
    Refused {
        /// HTTP status.
        status: u16,
        /// What wharf asked for, e.g. "to start process definition `approval` (business key `a1`)".
        what: String,
        /// What the service said.
        message: String,
    },
    /// The instance (or route) does not exist.
    #[error("OpenText Workflow Service has no {what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// The token endpoint refused the client (wrong id or secret, grant not allowed), or a fresh
    /// token was refused again.
    #[error("OpenText Workflow Service did not accept wharf's client credentials: {0}; check client_id and the secret")]
    Credentials(String),
    /// The call cannot be made as asked (caught before sending).
    #[error("{0}")]
    Invalid(String),
    /// A reply wharf cannot read (not JSON, or without the fields it needs).
    #[error("OpenText Workflow Service sent a reply wharf cannot read: {0}")]
    Protocol(String),
}

impl Error {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Transient { .. })
    }

    /// The wait the service asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The secret could not be read.
    #[error("workflow service {service}: client secret: {source}")]
    Secret {
        /// The `[[workflows]]` name.
        service: String,
        /// Cause.
        #[source]
        source: crate::config::secret::SecretError,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// The readable part of an error body.
pub fn message_of(body: &str) -> String {
    let text = |v: &Value| match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Object(o) => o.get("message").and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    if let Ok(j) = serde_json::from_str::<Value>(body) {
        let found = text(&j["exception"])
            .or_else(|| text(&j["details"]))
            .or_else(|| text(&j["fault"]["faultstring"]))
            .or_else(|| text(&j["error_description"]))
            .or_else(|| text(&j["error"]))
            .or_else(|| text(&j["message"]));
        if let Some(m) = found {
            return m.chars().take(300).collect();
        }
    }
    let plain: String = body.trim().chars().take(200).collect();
    if plain.is_empty() { "no details given".into() } else { plain }
}

/// `message` with every occurrence of `secret` replaced by `***`.
pub fn redact(message: &str, secret: &str) -> String {
    if secret.is_empty() { message.to_string() } else { message.replace(secret, "***") }
}

/// A reqwest error in a few words, never with its URL.
pub fn short(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else if e.is_request() || e.is_body() || e.is_decode() {
        "the connection closed before a complete reply".into()
    } else {
        e.to_string().split(" for url (").next().unwrap_or_default().to_string()
    }
}

/// Classifies a failed reply (401 and 429 are handled by the caller first).
pub fn classify(status: u16, body: &str, what: &str, retry_after: Option<Duration>) -> Error {
    let message = message_of(body);
    match status {
        404 => Error::NotFound { what: what.trim_start_matches("to read ").to_string() },
        429 => Error::Transient { message: format!("rate limited (429): {message}"), retry_after },
        408 | 500..=599 => Error::Transient { message: format!("HTTP {status}: {message}"), retry_after },
        401 | 403 => Error::Credentials(message),
        s => Error::Refused { status: s, what: what.to_string(), message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_from_each_error_shape() {
        assert_eq!(
            message_of(r#"{"exception":"No process definition found with key 'x'"}"#),
            "No process definition found with key 'x'"
        );
        assert_eq!(message_of(r#"{"details":"Could not find a task"}"#), "Could not find a task");
        assert_eq!(message_of(r#"{"fault":{"faultstring":"Invalid access token"}}"#), "Invalid access token");
        assert_eq!(
            message_of(r#"{"error":"invalid_client","error_description":"Client authentication failed"}"#),
            "Client authentication failed"
        );
        assert_eq!(message_of("Bad Gateway"), "Bad Gateway");
        assert_eq!(message_of(""), "no details given");
    }

    #[test]
    fn statuses_are_classified() {
        assert!(classify(503, "", "x", None).is_transient());
        assert!(classify(429, "", "x", Some(Duration::from_secs(3))).retry_after() == Some(Duration::from_secs(3)));
        assert!(matches!(classify(400, r#"{"exception":"bad"}"#, "x", None), Error::Refused { status: 400, .. }));
        assert!(
            matches!(classify(404, "", "to read instance 7", None), Error::NotFound { what } if what == "instance 7")
        );
        assert_eq!(redact("echo s3cret!", "s3cret"), "echo ***!");
    }
}
