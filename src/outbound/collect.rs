//! Collection tracking: a complete download of a published package marks it collected (once,
//! audited) and, for jobs with `delete_after_download`, removes it from the box. An incomplete
//! download changes nothing (the vfs audits it as `download_incomplete`).

use super::publish;
use crate::spool::Spool;
use std::sync::Arc;

/// Called by the vfs after a complete download of `rel` from `owner`'s outbound box by
/// `account`. Files that are not packages are ignored.
pub async fn downloaded(spool: Arc<Spool>, owner: String, rel: String, account: String) {
    let journal = spool.journal();
    let row = match journal.package_at(&owner, &rel).await {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => return tracing::warn!(error = %e, path = %rel, "cannot look up a downloaded package"),
    };
    match journal.mark_collected(&row.id, &account).await {
        Ok(true) => {
            spool.audit().record(publish::event("package_collected", &row).reason(&format!("collected by {account}")))
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, path = %rel, "cannot mark a package collected"),
    }
    if row.delete_after_download {
        match publish::remove(&spool, &row) {
            Ok(_) => {
                if journal.mark_removed(&row.id, "collected").await.unwrap_or(false) {
                    spool
                        .audit()
                        .record(publish::event("package_deleted", &row).reason("deleted after a complete download"));
                }
            }
            Err(e) => tracing::warn!(error = %e, path = %rel, "cannot delete a collected package"),
        }
    }
}
