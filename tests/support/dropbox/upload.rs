//! `files/upload`: one request, at most 150 MiB, committed under the namespace write lock.

use super::Shared;
use super::http::{Arg, TempFile, drain, endpoint_error, json_reply, plain, receive, too_many_write_operations};
use super::sessions::{HDR, check_received, register};
use super::write::{CommitInfo, Content};
use axum::body::Body;
use axum::response::Response;
use serde_json::{Value, json};
use std::sync::Arc;

/// `files/upload` (arg = CommitInfo + `content_hash`) → `FileMetadata`. Errors (UploadError):
/// `payload_too_large` (over 150 MiB), `content_hash_mismatch`, `path` = UploadWriteFailed
/// `{reason: WriteError, upload_session_id}`; 429 `too_many_write_operations` when the namespace
/// lock is taken.
/// Decision (UNVERIFIED): `upload_session_id` is a real, closed session holding the uploaded data,
/// so a client may retry the commit with `upload_session/finish` (offset = size, no data), as the
/// SPEC says ("this may be used to retry the commit").
pub async fn upload(sh: &Arc<Shared>, route: &str, arg: Value, body: Body) -> Response {
    let parsed = (|| {
        let a = Arg::new(&arg, route, HDR)?;
        Ok((CommitInfo::parse(&a)?, a.content_hash()?))
    })();
    let (info, expect) = match parsed {
        Ok(x) => x,
        Err(r) => {
            drain(body).await;
            return r;
        }
    };
    let tmp = TempFile::new(sh.st().new_blob("incoming"));
    let mut f = match tokio::fs::File::create(&tmp.path).await {
        Ok(f) => f,
        Err(e) => return plain(500, format!("could not store the upload: {e}")),
    };
    let r = match receive(body, &mut f, route, None).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    drop(f);
    if let Err(resp) = check_received(&r, expect.as_deref()) {
        return resp;
    }
    let (content_hash, sha256) = r.hasher.clone().finish();
    let Some(held) = sh.lock.acquire().await else { return too_many_write_operations() };
    let mut st = sh.st();
    let content = Content { src: &tmp.path, size: r.size, content_hash, sha256 };
    match st.write_file(&info, &content) {
        Ok((key, _)) => {
            held.committed();
            json_reply(200, st.metadata(&key, false))
        }
        Err(e) => {
            let sid = register(&mut st, tmp, r.size, true, false, r.hasher);
            endpoint_error(
                &format!("path/{}", e.summary()),
                json!({".tag": "path", "reason": e.json(), "upload_session_id": sid}),
            )
        }
    }
}
