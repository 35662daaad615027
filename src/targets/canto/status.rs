//! The third step: polling `GET /api/v1/upload/status?hours=1` until Canto has processed the
//! upload (`Done`, with the asset id) or failed it (`Error`). Our upload is the entry with its
//! file name that was not in the listing taken just before the POST (Canto's status has no
//! upload id; FW matches by name too).

use super::client::{ApiError, Client};
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// How an upload ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Processed: the asset id.
    Done(String),
    /// Canto reported `Error`.
    Error,
    /// Still `Initial` (or absent) when the time ran out.
    Stuck,
}

fn entries(v: &Value) -> Vec<(String, String, String, String)> {
    v["results"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    let s = |k: &str| r[k].as_str().map(str::to_string).unwrap_or_else(|| r[k].to_string());
                    (s("name"), s("time"), s("status"), s("id"))
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn list(client: &Client) -> Result<Value, ApiError> {
    client.get_json("/api/v1/upload/status", &[("hours", "1".to_string())]).await
}

/// The `(name, time)` pairs listed now, taken before the POST.
///
/// # Errors
/// The classified failure.
pub async fn snapshot(client: &Client, name: &str) -> Result<HashSet<(String, String)>, ApiError> {
    let v = list(client).await?;
    Ok(entries(&v).into_iter().filter(|e| e.0 == name).map(|e| (e.0, e.1)).collect())
}

/// Polls until the new entry named `name` is `Done` or `Error`, or `timeout` passes.
///
/// # Errors
/// The classified failure of a status call.
pub async fn wait(
    client: &Client,
    name: &str,
    before: &HashSet<(String, String)>,
    timeout: Duration,
    every: Duration,
) -> Result<Outcome, ApiError> {
    let deadline = Instant::now() + timeout;
    loop {
        let v = list(client).await?;
        let mine = entries(&v).into_iter().find(|e| e.0 == name && !before.contains(&(e.0.clone(), e.1.clone())));
        if let Some((_, _, status, id)) = mine {
            match status.as_str() {
                "Done" if !id.is_empty() && id != "null" => return Ok(Outcome::Done(id)),
                "Error" => return Ok(Outcome::Error),
                _ => {}
            }
        }
        if Instant::now() + every > deadline {
            return Ok(Outcome::Stuck);
        }
        tokio::time::sleep(every).await;
    }
}
