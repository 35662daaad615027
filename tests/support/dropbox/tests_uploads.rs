//! Tests of the Dropbox emulator's uploads: content hashes, sessions (sequential and concurrent),
//! finish_batch_v2 and the namespace write lock.

use super::tests::{C, bytes, dropbox_hash, send};
use super::{Emulator, Seed};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[tokio::test]
async fn dropbox_emulator_upload_content_hash() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::new(&e).await;
    let data = bytes(9 * 1024 * 1024 + 17, 3);
    let h = dropbox_hash(&data);
    let (s, v) = c
        .upload(json!({"path": "/In/Big.bin", "content_hash": h, "client_modified": "2026-01-02T03:04:05Z"}), &data)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["content_hash"], h.as_str());
    assert_eq!((v["size"].as_u64(), v["path_display"].as_str()), (Some(data.len() as u64), Some("/In/Big.bin")));
    assert!(v["id"].as_str().expect("id").starts_with("id:") && v.get(".tag").is_none());
    let f = e.file("/in/big.BIN").expect("stored");
    assert_eq!(
        (f.sha256, f.content_hash, f.client_modified),
        (hex::encode(Sha256::digest(&data)), h, "2026-01-02T03:04:05Z".into())
    );
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let (s, v) = c.upload(json!({"path": "/In/empty.txt", "content_hash": empty}), b"").await;
    assert_eq!((s, v["content_hash"].as_str()), (200, Some(empty)));

    let commits = e.commits();
    let (s, v) = c.upload(json!({"path": "/In/bad.txt", "content_hash": dropbox_hash(b"other")}), b"hello").await;
    assert_eq!((s, v["error"][".tag"].as_str()), (409, Some("content_hash_mismatch")), "{v}");
    assert!(e.file("/In/bad.txt").is_none() && e.commits() == commits);
    let (s, v) = c.upload(json!({"path": "/In/bad.txt", "content_hash": "abc"}), b"hello").await;
    assert_eq!(s, 400, "{v}");
    assert!(v.as_str().expect("plain text").contains("content_hash"));
}

#[tokio::test]
async fn dropbox_emulator_session_offsets_and_finish() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::new(&e).await;
    let sid = c.start(b"0123456789", false).await;
    let cur = |o: u64| json!({"session_id": sid, "offset": o});
    let (s, v) = send(c.content("files/upload_session/append_v2", json!({"cursor": cur(5)}), b"abc".to_vec())).await;
    assert_eq!(s, 409);
    assert_eq!(v["error"], json!({".tag": "incorrect_offset", "correct_offset": 10}));
    let arg = json!({"cursor": cur(10), "close": true, "content_hash": dropbox_hash(b"abcdefghij")});
    let (s, v) = send(c.content("files/upload_session/append_v2", arg, b"abcdefghij".to_vec())).await;
    assert_eq!((s, &v), (200, &Value::Null));
    let (s, v) = send(c.content("files/upload_session/append_v2", json!({"cursor": cur(20)}), b"x".to_vec())).await;
    assert_eq!((s, v["error"][".tag"].as_str()), (409, Some("closed")));
    let all = b"0123456789abcdefghij";
    let arg = json!({"cursor": cur(20), "commit": {"path": "/In/s.bin"}, "content_hash": dropbox_hash(all)});
    let (s, v) = send(c.content("files/upload_session/finish", arg.clone(), vec![])).await;
    assert_eq!((s, v["size"].as_u64()), (200, Some(20)), "{v}");
    assert_eq!(e.content("/in/s.bin").expect("content"), all.to_vec());
    let (s, v) = send(c.content("files/upload_session/finish", arg, vec![])).await;
    assert_eq!(
        (s, v["error"][".tag"].as_str(), v["error"]["lookup_failed"][".tag"].as_str()),
        (409, Some("lookup_failed"), Some("not_found"))
    );
    let (s, v) = send(c.content("files/upload_session/append_v2", json!({"cursor": cur(20)}), b"x".to_vec())).await;
    assert_eq!((s, v["error"][".tag"].as_str()), (409, Some("closed")), "committed sessions are closed");
    // Finish carrying the last data, with a wrong whole-file hash: the session is left as it was.
    let sid2 = c.start(b"abc", false).await;
    let arg = json!({"cursor": {"session_id": sid2, "offset": 3}, "commit": {"path": "/In/t.bin"}, "content_hash": dropbox_hash(b"nope")});
    let (s, v) = send(c.content("files/upload_session/finish", arg, b"def".to_vec())).await;
    assert_eq!((s, v["error"][".tag"].as_str()), (409, Some("content_hash_mismatch")));
    let arg = json!({"cursor": {"session_id": sid2, "offset": 3}, "commit": {"path": "/In/t.bin"}, "content_hash": dropbox_hash(b"abcdef")});
    let (s, v) = send(c.content("files/upload_session/finish", arg, b"def".to_vec())).await;
    assert_eq!((s, v["content_hash"].as_str()), (200, Some(dropbox_hash(b"abcdef").as_str())), "{v}");
    let sid3 = c.start(b"", false).await;
    e.expire_sessions();
    let (s, v) = send(c.content(
        "files/upload_session/append_v2",
        json!({"cursor": {"session_id": sid3, "offset": 0}}),
        vec![1],
    ))
    .await;
    assert_eq!((s, v["error"][".tag"].as_str()), (409, Some("not_found")));
}

#[tokio::test]
async fn dropbox_emulator_finish_batch_with_unclosed_session() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::new(&e).await;
    let closed = c.start(b"one", true).await;
    let open = c.start(b"two", false).await;
    let commits = e.commits();
    let entry = |sid: &str, path: &str| json!({"cursor": {"session_id": sid, "offset": 3}, "commit": {"path": path}});
    let body = json!({"entries": [entry(&closed, "/B/one.txt"), entry(&open, "/B/two.txt")]});
    let (s, v) = send(c.rpc("files/upload_session/finish_batch_v2", body)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["entries"][0][".tag"], "success");
    assert_eq!(v["entries"][0]["path_display"], "/B/one.txt");
    assert_eq!(
        v["entries"][1],
        json!({".tag": "failure", "failure": {".tag": "lookup_failed", "lookup_failed": {".tag": "not_closed"}}})
    );
    assert_eq!(e.commits(), commits + 1);
    assert!(e.file("/B/two.txt").is_none() && e.file("/b/ONE.txt").is_some());
    let (s, v) = send(c.rpc("files/upload_session/start_batch", json!({"num_sessions": 3}))).await;
    assert_eq!((s, v["session_ids"].as_array().map(Vec::len)), (200, Some(3)));
    let (s, _) = send(c.rpc("files/upload_session/start_batch", json!({"num_sessions": 0}))).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn dropbox_emulator_write_lock_single_uploads_vs_batch() {
    let seed = Seed { write_concurrency: 1, write_lock_wait_ms: 0, commit_ms: 150, ..Seed::default() };
    let e = Emulator::start(seed).await;
    let c = C::new(&e).await;
    let futs = (0..8).map(|i| {
        let r =
            c.content("files/upload", json!({"path": format!("/L/single-{i}.txt")}), format!("file {i}").into_bytes());
        async move {
            let resp = r.send().await.expect("send");
            let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap_or("").to_string());
            let s = resp.status().as_u16();
            (s, retry, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    });
    let results = futures_util::future::join_all(futs).await;
    let throttled: Vec<_> = results.iter().filter(|(s, _, _)| *s == 429).collect();
    assert!(!throttled.is_empty(), "{results:?}");
    assert!(results.iter().any(|(s, _, _)| *s == 200));
    for (_, retry, v) in &throttled {
        assert_eq!(retry.as_deref(), Some("1"));
        assert_eq!(v["error"]["reason"][".tag"], "too_many_write_operations");
        assert_eq!(v["error"]["retry_after"], 1);
    }
    assert_eq!(e.max_concurrent_commits(), 1);
    let mut entries = vec![];
    for i in 0..8 {
        let data = format!("batched {i}");
        let sid = c.start(data.as_bytes(), true).await;
        entries.push(json!({"cursor": {"session_id": sid, "offset": data.len()}, "commit": {"path": format!("/L/batch-{i}.txt")}}));
    }
    let commits = e.commits();
    let (s, v) = send(c.rpc("files/upload_session/finish_batch_v2", json!({"entries": entries}))).await;
    assert_eq!(s, 200, "{v}");
    let ok = v["entries"].as_array().expect("entries").iter().filter(|x| x[".tag"] == "success").count();
    assert_eq!(ok, 8, "{v}");
    assert_eq!(e.commits(), commits + 1);
    assert_eq!(e.list("/L").iter().filter(|f| f.path_display.contains("batch-")).count(), 8);
}

#[tokio::test]
async fn dropbox_emulator_concurrent_session() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::new(&e).await;
    let arg = json!({"session_type": {".tag": "concurrent"}});
    let (s, v) = send(c.content("files/upload_session/start", arg.clone(), b"x".to_vec())).await;
    assert_eq!((s, v["error"][".tag"].as_str()), (409, Some("concurrent_session_data_not_allowed")));
    let (s, v) = send(c.content("files/upload_session/start", arg, vec![])).await;
    assert_eq!(s, 200);
    let sid = v["session_id"].as_str().expect("session_id").to_string();
    let block = 4 << 20;
    let data = bytes(2 * block + 1000, 9);
    let append = |offset: usize, chunk: &[u8], close: bool| {
        let arg = json!({"cursor": {"session_id": sid, "offset": offset}, "close": close});
        send(c.content("files/upload_session/append_v2", arg, chunk.to_vec()))
    };
    let (s, v) = append(1000, &data[..10], false).await;
    assert_eq!((s, v["error"][".tag"].as_str()), (409, Some("concurrent_session_invalid_offset")));
    let (s, v) = append(0, &data[..1000], false).await;
    assert_eq!((s, v["error"][".tag"].as_str()), (409, Some("concurrent_session_invalid_data_size")));
    // Out of order: the closing piece first, then the two full blocks at once.
    let (last, first, second) = (&data[2 * block..], &data[..block], &data[block..2 * block]);
    let (r1, r2, r3) =
        tokio::join!(append(2 * block, last, true), append(0, first, false), append(block, second, false));
    assert_eq!((r1.0, r2.0, r3.0), (200, 200, 200), "{r1:?} {r2:?} {r3:?}");
    let finish = |offset: usize, extra: Vec<u8>| {
        let arg = json!({"cursor": {"session_id": sid, "offset": offset}, "commit": {"path": "/C/big.bin"}});
        send(c.content("files/upload_session/finish", arg, extra))
    };
    let (s, v) = finish(data.len(), b"x".to_vec()).await;
    assert_eq!((s, v["error"][".tag"].as_str()), (409, Some("concurrent_session_data_not_allowed")));
    let (s, v) = finish(data.len(), vec![]).await;
    assert_eq!((s, v["content_hash"].as_str()), (200, Some(dropbox_hash(&data).as_str())), "{v}");
    assert_eq!(e.file("/C/big.bin").expect("file").sha256, hex::encode(Sha256::digest(&data)));
}

#[tokio::test]
async fn dropbox_emulator_payload_too_large() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::new(&e).await;
    let big = vec![7u8; 150 * 1024 * 1024 + 1];
    let (s, v) = c.upload(json!({"path": "/T/huge.bin"}), &big).await;
    assert_eq!((s, v["error"][".tag"].as_str()), (409, Some("payload_too_large")), "{v}");
    assert!(e.file("/T/huge.bin").is_none());
    let sid = c.start(b"abc", false).await;
    let arg = json!({"cursor": {"session_id": sid, "offset": 3}});
    let (s, v) = send(c.content("files/upload_session/append_v2", arg, big)).await;
    assert_eq!((s, v["error"][".tag"].as_str()), (409, Some("payload_too_large")));
    // The failed append left the session as it was.
    let arg = json!({"cursor": {"session_id": sid, "offset": 3}, "commit": {"path": "/T/small.bin"}});
    let (s, v) = send(c.content("files/upload_session/finish", arg, b"def".to_vec())).await;
    assert_eq!((s, v["size"].as_u64()), (200, Some(6)), "{v}");
    assert_eq!(e.content("/T/small.bin").expect("content"), b"abcdef".to_vec());
}
