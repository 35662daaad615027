//! Large File Upload: settings, begin, parts (`part_content`), complete, cancel; the completed file is
//! then used by a create or add-version with `upload_key`.
//! Decisions (UNVERIFIED): an unknown or consumed key is "Multipart Upload session expired."; a part of
//! the wrong length is 500 "Invalid block size: Block {n} must be {len} bytes."; completing with missing
//! parts is 500 "Invalid status. Missing blocks: …"; using a key not yet completed is 500
//! "Invalid status. The upload has not been completed.".

use super::Shared;
use super::http::{FileLimits, TempFile, error, json_reply, read_fields};
use super::nodes::Content;
use super::state::{LfuSession, State};
use axum::extract::Request;
use axum::response::Response;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn expired() -> Response {
    error(500, "Multipart Upload session expired.")
}

/// `GET /v2/multipart/settings`. Decision (shape UNVERIFIED): the keys flat and also under
/// `results.data`; `threshold` is the emulator's hint for when to switch to LFU.
pub fn settings(sh: &Shared) -> Response {
    let m = &sh.multipart;
    let d =
        json!({"is_enabled": m.is_enabled, "max_size": m.max_size, "min_size": m.min_size, "threshold": m.threshold});
    json_reply(
        200,
        json!({"is_enabled": m.is_enabled, "max_size": m.max_size, "min_size": m.min_size, "threshold": m.threshold,
            "results": {"data": d}}),
    )
}

/// `POST /v2/multipart`: form `file_name`, `file_size`, `mime_type`.
pub async fn begin(sh: &Shared, req: Request) -> Response {
    let lim = FileLimits { dir: &sh.dir, file_fields: &[], max_size: 0, seq: &sh.seq };
    let f = match read_fields(req, lim).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let m = &sh.multipart;
    if !m.is_enabled {
        return error(500, "Large File Upload is not enabled.");
    }
    let Some(file_name) = f.text.get("file_name").filter(|s| !s.is_empty()) else {
        return error(400, "Missing required parameter 'file_name'");
    };
    let Some(size) = f.text.get("file_size").and_then(|s| s.trim().parse::<u64>().ok()) else {
        return error(400, "Missing required parameter 'file_size'");
    };
    if size < m.min_size || size > m.max_size || size == 0 {
        return error(
            500,
            format!("Invalid block size: File size must be between {} and {} bytes.", m.min_size, m.max_size),
        );
    }
    let mime = f.text.get("mime_type").unwrap_or("application/octet-stream").to_string();
    let n = sh.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let key = format!("lfu{:x}{n:06}", sh.random & 0xffff_ffff);
    let num_parts = size.div_ceil(m.part_size);
    sh.st().uploads.insert(
        key.clone(),
        LfuSession {
            file_name: file_name.to_string(),
            file_size: size,
            mime,
            num_parts,
            part_size: m.part_size,
            parts: Default::default(),
            expires: Instant::now() + Duration::from_secs(m.session_ttl_secs),
            completed: None,
        },
    );
    json_reply(
        200,
        json!({"upload_key": key, "max_retries": m.max_retries, "num_parts": num_parts, "part_size": m.part_size,
            "results": {"upload_key": key, "max_retries": m.max_retries, "num_parts": num_parts, "part_size": m.part_size}}),
    )
}

fn live<'a>(st: &'a mut State, key: &str) -> Result<&'a mut LfuSession, Response> {
    let now = Instant::now();
    if st.uploads.get(key).is_some_and(|s| s.expires <= now) {
        st.uploads.remove(key);
    }
    st.uploads.get_mut(key).ok_or_else(expired)
}

/// `POST /v2/multipart/{key}/{n}`: field `part_content`, parts numbered `1..=num_parts`.
pub async fn part(sh: &Shared, key: &str, n: &str, req: Request) -> Response {
    let lim =
        FileLimits { dir: &sh.dir, file_fields: &["part_content"], max_size: sh.multipart.max_size, seq: &sh.seq };
    let mut f = match read_fields(req, lim).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut st = sh.st();
    let s = match live(&mut st, key) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let num = n.parse::<u64>().ok().filter(|x| (1..=s.num_parts).contains(x));
    let Some(num) = num else {
        return error(500, format!("Invalid BlockID: Expected BlockID between 1 and {}.", s.num_parts));
    };
    if s.completed.is_some() || s.parts.contains_key(&num) {
        return error(500, format!("BlockID {num} has already been uploaded."));
    }
    let Some(p) = f.take_file("part_content") else { return error(400, "Missing required parameter 'part_content'") };
    if let Some((status, text)) = sh.faults.take_part_failure(num) {
        return error(status, text);
    }
    let expect = if num == s.num_parts { s.file_size - (s.num_parts - 1) * s.part_size } else { s.part_size };
    if p.size != expect {
        return error(500, format!("Invalid block size: Block {num} must be {expect} bytes."));
    }
    let dest = sh.dir.join(format!("{key}-part-{num}"));
    if let Err(e) = p.tmp.persist(&dest) {
        return error(500, format!("Could not store the block: {e}"));
    }
    s.parts.insert(num, dest);
    json_reply(200, json!({"links": {}, "results": {}}))
}

/// `POST /v2/multipart/{key}`: assembles the parts (all must be there).
pub async fn complete(sh: &Shared, key: &str) -> Response {
    let (parts, num_parts) = {
        let mut st = sh.st();
        let s = match live(&mut st, key) {
            Ok(s) => s,
            Err(r) => return r,
        };
        if s.parts.is_empty() || s.completed.is_some() {
            return error(500, "Invalid status. Cannot close an empty or already closed upload.");
        }
        (s.parts.clone(), s.num_parts)
    };
    let missing: Vec<String> = (1..=num_parts).filter(|i| !parts.contains_key(i)).map(|i| i.to_string()).collect();
    if !missing.is_empty() {
        return error(500, format!("Invalid status. Missing blocks: {}.", missing.join(", ")));
    }
    let out = sh.dir.join(format!("{key}-assembled"));
    let job = tokio::task::spawn_blocking(move || -> std::io::Result<(u64, String)> {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&out)?);
        let mut h = Sha256::new();
        let mut total = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        for p in parts.values() {
            let mut r = std::fs::File::open(p)?;
            loop {
                let k = r.read(&mut buf)?;
                if k == 0 {
                    break;
                }
                h.update(&buf[..k]);
                w.write_all(&buf[..k])?;
                total += k as u64;
            }
            std::fs::remove_file(p)?;
        }
        w.flush()?;
        Ok((total, hex::encode(h.finalize())))
    });
    let (size, sha) = match job.await {
        Ok(Ok(x)) => x,
        _ => return error(500, "Could not assemble the upload"),
    };
    let mut st = sh.st();
    match st.uploads.get_mut(key) {
        Some(s) => s.completed = Some((sh.dir.join(format!("{key}-assembled")), size, sha)),
        None => return expired(),
    }
    json_reply(200, json!({"links": {}, "results": {}}))
}

/// `DELETE /v2/multipart/{key}`: cancels and deletes the parts.
pub fn cancel(sh: &Shared, key: &str) -> Response {
    let Some(s) = sh.st().uploads.remove(key) else { return expired() };
    for p in s.parts.values() {
        let _ = std::fs::remove_file(p);
    }
    if let Some((p, _, _)) = s.completed {
        let _ = std::fs::remove_file(p);
    }
    json_reply(200, json!({"links": {}, "results": {}}))
}

/// Consumes a completed session as document content.
pub fn take_completed(st: &mut State, key: &str, name_hint: &str) -> Result<Content, Response> {
    let s = live(st, key)?;
    if s.completed.is_none() {
        return Err(error(500, "Invalid status. The upload has not been completed."));
    }
    let s = st.uploads.remove(key).ok_or_else(expired)?;
    let (path, size, sha256) = s.completed.ok_or_else(expired)?;
    let file_name = if s.file_name.is_empty() { name_hint.to_string() } else { s.file_name };
    Ok(Content { tmp: TempFile::new(path), size, sha256, file_name, mime: s.mime, via_upload_key: true })
}
