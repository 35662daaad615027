//! Journal statements for outbound jobs: each job's progress (`job_state`: package sequence,
//! source watermark, last scheduled fire, last result), the packages it published (`packages`)
//! and which source items each package exported (`job_items`, so an item goes out once).
//!
//! A package is *staged* (row `pending` plus its items, in one durable transaction) before its
//! file is renamed into the box, and marked `published` after. Recovery rolls a `pending`
//! package forward when its file (built or renamed) still exists and back otherwise, so the
//! watermark and the box always agree.

use super::{Error, Journal, timestamp};
use chrono::{DateTime, Utc};

/// The progress of one job.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct JobState {
    /// Job name.
    pub job: String,
    /// Packages numbered so far (the next `{seq}` is this + 1).
    pub seq: i64,
    /// Source watermark (e.g. the last exported modification time), if the source has one.
    pub watermark: Option<String>,
    /// The scheduled time of the last run the scheduler fired.
    pub last_fire: Option<String>,
    /// When the job last ran (scheduled or by hand).
    pub last_run: Option<String>,
    /// What that run did, one line.
    pub last_result: Option<String>,
}

/// A package about to be published.
#[derive(Debug, Clone)]
pub struct NewPackage {
    /// Package id (ULID).
    pub id: String,
    /// The job.
    pub job: String,
    /// The run that built it.
    pub run_id: String,
    /// The account whose outbound box it goes into.
    pub owner: String,
    /// Final path inside the box (`/`-separated).
    pub path: String,
    /// Hidden build file inside the box, renamed to `path` on publish.
    pub build_path: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the package file.
    pub sha256: String,
    /// Source items it holds.
    pub items: usize,
    /// Write `<path>.ready` after the rename.
    pub ready_marker: bool,
    /// Remove after the first complete download.
    pub delete_after_download: bool,
    /// When retention removes it.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A package as the journal holds it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PackageRow {
    /// Package id.
    pub id: String,
    /// The job.
    pub job: String,
    /// The run that built it.
    pub run_id: String,
    /// Owner of the box.
    pub owner: String,
    /// Final path inside the box.
    pub path: String,
    /// Build file inside the box.
    pub build_path: String,
    /// `pending`, `published` or `removed`.
    pub state: String,
    /// Bytes.
    pub size: i64,
    /// SHA-256.
    pub sha256: String,
    /// Items held.
    pub items: i64,
    /// Whether a `.ready` marker goes with it.
    pub ready_marker: bool,
    /// Removed after the first complete download.
    pub delete_after_download: bool,
    /// Staged at.
    pub created_at: String,
    /// Renamed into the box at.
    pub published_at: Option<String>,
    /// Retention removes it at.
    pub expires_at: Option<String>,
    /// First complete download at.
    pub collected_at: Option<String>,
    /// Account that collected it.
    pub collected_by: Option<String>,
    /// Removed from the box at.
    pub removed_at: Option<String>,
    /// Why it was removed (`expired`, `collected`, `gone`).
    pub removed_why: Option<String>,
    /// The job's source watermark once this package is published.
    pub watermark: Option<String>,
}

impl Journal {
    /// The job's progress (a default, empty state for a job that never ran).
    ///
    /// # Errors
    /// Database errors.
    pub async fn job_state(&self, job: &str) -> Result<JobState, Error> {
        let row: Option<JobState> =
            sqlx::query_as("SELECT * FROM job_state WHERE job = ?").bind(job).fetch_optional(&self.pool).await?;
        Ok(row.unwrap_or_else(|| JobState { job: job.to_string(), ..JobState::default() }))
    }

    /// Records the scheduled time the scheduler fired (or took as its starting point).
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_last_fire(&self, job: &str, fire: DateTime<Utc>) -> Result<(), Error> {
        let q = sqlx::query(
            "INSERT INTO job_state (job, last_fire) VALUES (?, ?)
             ON CONFLICT (job) DO UPDATE SET last_fire = excluded.last_fire",
        )
        .bind(job)
        .bind(timestamp(fire));
        self.execute_durable(q).await?;
        Ok(())
    }

    /// Records when the job ran and what it did.
    ///
    /// # Errors
    /// Database errors.
    pub async fn record_run(&self, job: &str, at: DateTime<Utc>, result: &str) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO job_state (job, last_run, last_result) VALUES (?, ?, ?)
             ON CONFLICT (job) DO UPDATE SET last_run = excluded.last_run, last_result = excluded.last_result",
        )
        .bind(job)
        .bind(timestamp(at))
        .bind(result)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether the job already exported this item at this fingerprint (staged or published).
    ///
    /// # Errors
    /// Database errors.
    pub async fn exported(&self, job: &str, item: &str, fingerprint: &str) -> Result<bool, Error> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM job_items WHERE job = ? AND item = ? AND fingerprint = ?")
                .bind(job)
                .bind(item)
                .bind(fingerprint)
                .fetch_one(&self.pool)
                .await?;
        Ok(n > 0)
    }

    /// Stages a package in one transaction, durable before it returns: the `pending` row (with
    /// the watermark it sets once published), its items and the job's package sequence.
    ///
    /// # Errors
    /// Database errors (nothing is staged then).
    pub async fn stage_package(
        &self,
        p: &NewPackage,
        items: &[(String, String)],
        seq: i64,
        watermark: Option<&str>,
    ) -> Result<(), Error> {
        {
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO packages (id, job, run_id, owner, path, build_path, state, size, sha256, items,
                                       ready_marker, delete_after_download, created_at, expires_at, watermark)
                 VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&p.id)
            .bind(&p.job)
            .bind(&p.run_id)
            .bind(&p.owner)
            .bind(&p.path)
            .bind(&p.build_path)
            .bind(i64::try_from(p.size).unwrap_or(i64::MAX))
            .bind(&p.sha256)
            .bind(i64::try_from(p.items).unwrap_or(i64::MAX))
            .bind(p.ready_marker)
            .bind(p.delete_after_download)
            .bind(timestamp(Utc::now()))
            .bind(p.expires_at.map(timestamp))
            .bind(watermark)
            .execute(&mut *tx)
            .await?;
            for (item, fingerprint) in items {
                sqlx::query("INSERT OR IGNORE INTO job_items (job, item, fingerprint, package_id) VALUES (?, ?, ?, ?)")
                    .bind(&p.job)
                    .bind(item)
                    .bind(fingerprint)
                    .bind(&p.id)
                    .execute(&mut *tx)
                    .await?;
            }
            // The sequence moves now (a rolled-back package leaves a gap, never a reused name);
            // the watermark moves only when the package is published (`mark_published`).
            sqlx::query(
                "INSERT INTO job_state (job, seq) VALUES (?, ?)
                 ON CONFLICT (job) DO UPDATE SET seq = MAX(seq, excluded.seq)",
            )
            .bind(&p.job)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        // durable as a whole: the package is placed only after this
        self.sync().await
    }

    /// Rolls a staged package back: its row and its items go, so the items export again.
    ///
    /// # Errors
    /// Database errors.
    pub async fn unstage_package(&self, id: &str) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM job_items WHERE package_id = ?").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM packages WHERE id = ? AND state = 'pending'").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// `pending → published`, and the job's watermark moves to the package's (never back).
    ///
    /// # Errors
    /// Database errors.
    pub async fn mark_published(&self, id: &str) -> Result<(), Error> {
        let now = timestamp(Utc::now());
        {
            let mut tx = self.pool.begin().await?;
            let r = sqlx::query(
                "UPDATE packages SET state = 'published', published_at = ? WHERE id = ? AND state = 'pending'",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 1 {
                sqlx::query(
                    "UPDATE job_state SET watermark = p.watermark FROM packages p
                     WHERE p.id = ? AND job_state.job = p.job AND p.watermark IS NOT NULL
                       AND (job_state.watermark IS NULL OR job_state.watermark < p.watermark)",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
        self.sync().await
    }

    /// The job's staged, not yet published packages.
    ///
    /// # Errors
    /// Database errors.
    pub async fn pending_packages(&self, job: &str) -> Result<Vec<PackageRow>, Error> {
        Ok(sqlx::query_as("SELECT * FROM packages WHERE job = ? AND state = 'pending' ORDER BY id")
            .bind(job)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Every package of a job, newest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn packages(&self, job: &str) -> Result<Vec<PackageRow>, Error> {
        Ok(sqlx::query_as("SELECT * FROM packages WHERE job = ? ORDER BY id DESC")
            .bind(job)
            .fetch_all(&self.pool)
            .await?)
    }

    /// The published package at this path of an account's box, if any.
    ///
    /// # Errors
    /// Database errors.
    pub async fn package_at(&self, owner: &str, path: &str) -> Result<Option<PackageRow>, Error> {
        Ok(sqlx::query_as(
            "SELECT * FROM packages WHERE owner = ? AND path = ? AND state = 'published' ORDER BY id DESC LIMIT 1",
        )
        .bind(owner)
        .bind(path)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Records the first complete download. False if it was already collected.
    ///
    /// # Errors
    /// Database errors.
    pub async fn mark_collected(&self, id: &str, account: &str) -> Result<bool, Error> {
        let r =
            sqlx::query("UPDATE packages SET collected_at = ?, collected_by = ? WHERE id = ? AND collected_at IS NULL")
                .bind(timestamp(Utc::now()))
                .bind(account)
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() == 1)
    }

    /// `published → removed` with the reason. False if it was not published.
    ///
    /// # Errors
    /// Database errors.
    pub async fn mark_removed(&self, id: &str, why: &str) -> Result<bool, Error> {
        let q = sqlx::query(
            "UPDATE packages SET state = 'removed', removed_at = ?, removed_why = ? WHERE id = ? AND state = 'published'",
        )
        .bind(timestamp(Utc::now()))
        .bind(why)
        .bind(id);
        Ok(self.execute_durable(q).await?.rows_affected() == 1)
    }

    /// Published packages whose retention ended at or before `now`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn expired_packages(&self, now: DateTime<Utc>) -> Result<Vec<PackageRow>, Error> {
        Ok(sqlx::query_as(
            "SELECT * FROM packages WHERE state = 'published' AND expires_at IS NOT NULL AND expires_at <= ? ORDER BY id",
        )
        .bind(timestamp(now))
        .fetch_all(&self.pool)
        .await?)
    }
}
