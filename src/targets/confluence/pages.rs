//! Pages found or created by title, and page bodies replaced as the next version: the one
//! mechanism behind attachments' pages (their metadata table) and pages published from files.

use super::client::{ApiError, enc};
use super::{ConfluenceTarget, Failure, Page, Space};
use reqwest::Method;
use serde_json::json;

/// A page by title, and whether wharf just made it.
pub(super) enum Found {
    /// Made now, with the body asked for.
    Created(Page),
    /// There already (or made meanwhile by a concurrent delivery).
    Existing(Page),
}

impl ConfluenceTarget {
    /// The page `title` of the space, or a new one with `body` under `parent_page` (or the
    /// space homepage). A concurrent create of the same title is adopted as existing.
    pub(super) async fn find_or_create(&self, space: &Space, title: &str, body: &str) -> Result<Found, Failure> {
        if let Some(page) = self.page_by_title(space, title).await? {
            return Ok(Found::Existing(page));
        }
        let mut create = json!({
            "spaceId": space.id, "status": "current", "title": title,
            "body": { "representation": "storage", "value": body },
        });
        if let Some(parent) = self.cfg.parent_page.clone().or_else(|| space.homepage.clone()) {
            create["parentId"] = json!(parent);
        }
        match self.client.json(Method::POST, "/wiki/api/v2/pages", Some(&create)).await {
            Ok(v) => Page::from_v2(&v)
                .map(Found::Created)
                .ok_or_else(|| Failure::Retry("page create: unreadable reply".into())),
            Err(ApiError::Permanent { status: 400, message }) if message.contains("already exists") => {
                match self.page_by_title(space, title).await? {
                    Some(p) => Ok(Found::Existing(p)),
                    None => Err(Failure::Retry(format!("page {title:?}: {message}"))),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sets the page's body to `body_of(page)` as version current + 1, unless it already is
    /// that (then `true`: nothing to do). A 409 (edited meanwhile) re-reads the page and tries
    /// once more.
    /// Decision (UNVERIFIED): a stale `version.number` is refused with 409 (v1 documents it; v2
    /// does not say); any other refusal goes to exceptions with the server's message.
    pub(super) async fn put_page(
        &self,
        mut page: Page,
        body_of: impl Fn(&Page) -> String,
        message: &str,
    ) -> Result<(Page, bool), Failure> {
        for attempt in 0..2 {
            let body = body_of(&page);
            if body.trim() == page.body.trim() {
                return Ok((page, true));
            }
            let update = json!({
                "id": page.id, "status": "current", "title": page.title,
                "body": { "representation": "storage", "value": body },
                "version": { "number": page.version + 1, "message": message },
            });
            match self.client.json(Method::PUT, &format!("/wiki/api/v2/pages/{}", enc(&page.id)), Some(&update)).await {
                Ok(v) => {
                    let page =
                        Page::from_v2(&v).ok_or_else(|| Failure::Retry("page update: unreadable reply".into()))?;
                    return Ok((page, false));
                }
                Err(ApiError::Permanent { status: 409, message }) if attempt == 0 => {
                    tracing::info!(page = %page.id, %message, "page edited meanwhile; reading it again");
                    page = self.page_by_id(&page.id).await?;
                }
                Err(ApiError::Permanent { status: 409, message }) => {
                    return Err(Failure::Retry(format!("page {} keeps changing: {message}", page.id)));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok((page, false))
    }
}
