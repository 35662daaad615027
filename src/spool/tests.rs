use super::*;
use crate::config::SpoolConfig;

async fn spool(dir: &Path) -> Arc<Spool> {
    let cfg = SpoolConfig {
        root: dir.join("spool"),
        journal: dir.join("spool/journal.db"),
        audit_log: dir.join("audit.jsonl"),
    };
    let audit = Arc::new(Audit::open(&cfg.audit_log).expect("audit"));
    Spool::open(&cfg, audit).await.expect("spool")
}

fn origin() -> Origin {
    Origin { account: "acme".into(), protocol: "sftp", remote_addr: Some("127.0.0.1".into()) }
}

#[tokio::test]
async fn close_of_write_handle_commits_to_spool() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(io_err("tempdir"))?;
    let s = spool(dir.path()).await;
    let up = s.begin_transfer("invoices", "invoices", "a.pdf", &origin()).await?;
    let id = up.id().to_string();
    assert_eq!(s.journal().get(&id).await?.map(|r| r.state), Some("receiving".into()));
    up.write_at(0, b"%PDF-1.7 hello".to_vec()).await.map_err(io_err("write"))?;
    let done = up.commit().await?;
    let row = s.journal().get(&id).await?.expect("row");
    assert_eq!(row.state, "received");
    assert_eq!(row.size, Some(14));
    assert_eq!(row.sha256.as_deref(), Some(done.written.sha256.as_str()));
    assert_eq!(fs::read(s.body(&row.body_path)).map_err(io_err("read"))?, b"%PDF-1.7 hello");
    assert!(!s.temp_path(&id).exists());
    Ok(())
}

#[tokio::test]
async fn a_dropped_upload_is_aborted_and_leaves_nothing() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(io_err("tempdir"))?;
    let s = spool(dir.path()).await;
    let up = s.begin_transfer("invoices", "invoices", "a.pdf", &origin()).await?;
    let id = up.id().to_string();
    up.write_at(0, vec![1; 1000]).await.map_err(io_err("write"))?;
    drop(up);
    for _ in 0..100 {
        if s.journal().get(&id).await?.map(|r| r.state) == Some("aborted".into()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let row = s.journal().get(&id).await?.expect("row");
    assert_eq!(row.state, "aborted");
    assert!(row.reason.unwrap_or_default().contains("connection ended"));
    assert!(!s.temp_path(&id).exists());
    assert!(!s.body(&row.body_path).exists());
    Ok(())
}

#[tokio::test]
async fn recovery_aborts_receiving_and_keeps_received() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(io_err("tempdir"))?;
    let s = spool(dir.path()).await;
    let done = s.begin_transfer("invoices", "invoices", "ok.pdf", &origin()).await?;
    done.write_at(0, b"ok".to_vec()).await.map_err(io_err("write"))?;
    let kept = done.commit().await?.transfer_id.expect("id");
    // Simulate a crash mid-upload: the row says receiving, a partial body sits in tmp/, the process is gone.
    let half = ulid::Ulid::generate().to_string();
    s.journal()
        .insert_receiving(&NewTransfer {
            id: half.clone(),
            channel: "invoices".into(),
            account: "acme".into(),
            mount: "invoices".into(),
            name: "half.pdf".into(),
            protocol: "sftp".into(),
            remote_addr: None,
            body_path: format!("inbound/invoices/acme/{half}"),
        })
        .await?;
    fs::write(s.temp_path(&half), b"half").map_err(io_err("write"))?;
    fs::write(s.root().join("tmp/stray.part"), b"x").map_err(io_err("write"))?;

    let report = s.recover().await?;
    assert_eq!(report.aborted, vec![half.clone()]);
    assert_eq!(report.received, 1);
    assert_eq!(report.stray_temp_files, 1, "only the stray file; the partial body went with its transfer");
    assert_eq!(s.journal().get(&half).await?.map(|r| r.state), Some("aborted".into()));
    assert_eq!(s.journal().get(&kept).await?.map(|r| r.state), Some("received".into()));
    assert_eq!(fs::read_dir(s.root().join("tmp")).map_err(io_err("ls"))?.count(), 0);
    Ok(())
}

#[tokio::test]
async fn exclusive_file_commit_never_replaces() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(io_err("tempdir"))?;
    let s = spool(dir.path()).await;
    let dest = s.exceptions_dir().join("invoices/acme/x.pdf");
    let a = s.begin_file(dest.clone(), true)?;
    a.write_at(0, b"first".to_vec()).await.map_err(io_err("write"))?;
    a.commit().await?;
    let b = s.begin_file(dest.clone(), true)?;
    b.write_at(0, b"second".to_vec()).await.map_err(io_err("write"))?;
    assert!(b.commit().await.is_err());
    assert_eq!(fs::read(&dest).map_err(io_err("read"))?, b"first");
    let c = s.begin_file(dest.clone(), false)?;
    c.write_at(0, b"third".to_vec()).await.map_err(io_err("write"))?;
    c.commit().await?;
    assert_eq!(fs::read(&dest).map_err(io_err("read"))?, b"third");
    Ok(())
}
