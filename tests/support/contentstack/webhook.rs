//! The webhook sender: POSTs Contentstack's payload for an entry event to a URL.
//!
//! Decision (UNVERIFIED): Contentstack webhooks let the stack owner add custom headers and basic
//! auth; the `X-Contentstack-Signature` HMAC is documented only in an advisory source. The
//! emulator sends the shared secret in a configurable custom header (default
//! `X-Wharf-Webhook-Secret`), which is what a wharf intake should check, and also
//! `X-Contentstack-Signature: <hex HMAC-SHA256(secret, body)>`, which an intake may verify instead.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Hex HMAC-SHA256 (RFC 2104) of `body` under `key`.
pub fn hmac_sha256_hex(key: &[u8], body: &[u8]) -> String {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let mut inner = Sha256::new();
    inner.update(pad(0x36));
    inner.update(body);
    let mut outer = Sha256::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    hex::encode(outer.finalize())
}

/// The payload for `event` (a channel such as `entries.unpublish`, or a bare action).
pub fn payload(api_key: &str, event: &str, ct: &str, entry: Value) -> Value {
    let action = event.rsplit('.').next().unwrap_or(event);
    json!({
        "module": "entry",
        "api_key": api_key,
        "event": action,
        "triggered_at": super::state::now(),
        "data": {"entry": entry, "content_type": {"uid": ct}},
    })
}

/// POSTs `body` with the secret header and signature; returns the receiver's status.
pub async fn post(url: &str, header: &str, secret: &str, body: &Value) -> Result<u16, reqwest::Error> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let sig = hmac_sha256_hex(secret.as_bytes(), &bytes);
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header(header, secret)
        .header("x-contentstack-signature", sig)
        .body(bytes)
        .send()
        .await?;
    Ok(resp.status().as_u16())
}
