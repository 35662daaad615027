//! When jobs run: a cron expression in a time zone (croner; 5 fields, or 6 with seconds), the
//! catch-up rule, and the clock the scheduler reads, so that tests move time by hand instead of
//! sleeping through real minutes.
//!
//! Catch-up: a job runs for the *latest* occurrence at or before now that is later than its
//! last fire. After downtime that is one run, however many occurrences were missed.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
    text: String,
}

impl Schedule {
    /// Parses `expr` (cron, 5 or 6 fields) in the IANA zone `tz` (e.g. `Europe/Berlin`).
    ///
    /// # Errors
    /// The expression or the zone is not valid, as a sentence.
    pub fn parse(expr: &str, tz: &str) -> Result<Self, String> {
        let tz: Tz = tz.parse().map_err(|_| format!("`{tz}` is not an IANA time zone such as `Europe/Berlin`"))?;
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expr)
            .map_err(|e| format!("`{expr}` is not a cron expression ({e}); e.g. `0 6 * * *` is 06:00 daily"))?;
        Ok(Self { cron, tz, text: expr.to_string() })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The zone the expression is read in.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The first occurrence strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&t.with_timezone(&self.tz), false).ok().map(|d| d.with_timezone(&Utc))
    }

    /// The latest occurrence at or before `t`.
    pub fn latest_until(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_previous_occurrence(&t.with_timezone(&self.tz), true).ok().map(|d| d.with_timezone(&Utc))
    }

    /// The occurrence to run now, if any: the latest one at or before `now` that is after
    /// `last_fire` (so a run after downtime catches up once).
    pub fn due(&self, last_fire: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.latest_until(now).filter(|fire| *fire > last_fire)
    }
}

/// The time source of the scheduler.
#[async_trait]
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
    /// Returns at `t` or later (or earlier, spuriously; callers re-read [`Clock::now`]).
    async fn sleep_until(&self, t: DateTime<Utc>);
}

/// The wall clock. Sleeps at most a minute at a time, so a clock step is noticed.
#[derive(Debug, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, t: DateTime<Utc>) {
        let wait = (t - Utc::now()).to_std().unwrap_or(Duration::ZERO).min(Duration::from_secs(60));
        tokio::time::sleep(wait).await;
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
    moved: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self { now: Mutex::new(start), moved: watch::Sender::new(start) }
    }

    /// Sets the time and wakes every sleeper.
    pub fn set(&self, t: DateTime<Utc>) {
        if let Ok(mut now) = self.now.lock() {
            *now = t;
        }
        self.moved.send_replace(t);
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.now.lock().map(|n| *n).unwrap_or_else(|e| *e.into_inner())
    }

    async fn sleep_until(&self, t: DateTime<Utc>) {
        let mut rx = self.moved.subscribe();
        while *rx.borrow_and_update() < t {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn berlin(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        chrono_tz::Europe::Berlin
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .expect("an unambiguous local time")
            .with_timezone(&Utc)
    }

    #[test]
    fn daily_at_six_in_berlin() {
        let s = Schedule::parse("0 6 * * *", "Europe/Berlin").expect("valid");
        // winter: 06:00 CET is 05:00 UTC
        assert_eq!(s.next_after(berlin(2026, 12, 2, 5, 0)), Some(berlin(2026, 12, 2, 6, 0)));
        assert_eq!(berlin(2026, 12, 2, 6, 0).format("%H:%M").to_string(), "05:00");
        // summer: 06:00 CEST is 04:00 UTC
        assert_eq!(s.next_after(berlin(2026, 7, 1, 7, 0)), Some(berlin(2026, 7, 2, 6, 0)));
    }

    #[test]
    fn catch_up_runs_once_for_the_latest_missed_occurrence() {
        let s = Schedule::parse("0 6 * * *", "Europe/Berlin").expect("valid");
        let last = berlin(2026, 11, 28, 6, 0);
        let now = berlin(2026, 12, 2, 9, 30);
        assert_eq!(s.due(last, now), Some(berlin(2026, 12, 2, 6, 0)));
        // once that has run, nothing more is due until tomorrow
        assert_eq!(s.due(berlin(2026, 12, 2, 6, 0), now), None);
        assert_eq!(s.due(last, berlin(2026, 11, 28, 6, 0)), None, "an occurrence runs once");
    }

    #[test]
    fn six_fields_mean_seconds_and_errors_are_sentences() {
        let s = Schedule::parse("*/10 * * * * *", "UTC").expect("valid");
        let t = Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 3).single().expect("valid");
        assert_eq!(s.next_after(t), Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 10).single());
        assert!(Schedule::parse("61 * * * *", "UTC").unwrap_err().contains("not a cron expression"));
        assert!(Schedule::parse("0 6 * * *", "Mars/Olympus").unwrap_err().contains("IANA"));
    }

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_when_moved_past_their_time() {
        let start = Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).single().expect("valid");
        let clock = std::sync::Arc::new(ManualClock::new(start));
        let c = clock.clone();
        let sleeper = tokio::spawn(async move { c.sleep_until(start + chrono::Duration::hours(1)).await });
        clock.set(start + chrono::Duration::minutes(59));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.set(start + chrono::Duration::hours(1));
        tokio::time::timeout(Duration::from_secs(5), sleeper).await.expect("woken").expect("no panic");
    }
}
