//! Analytics' background work, every tick: raw events and per-day activity older than the retention period
//! go, after the sketches of those days and their hours are made (counts, sketches and first-seen days stay); active weeks
//! go after two years. On PostgreSQL the raw events' day partitions are made ahead and dropped when old
//! ([`crate::partitions`]).

use std::time::Duration;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::error::Result;
use crate::store::{active, active_week, event};
use crate::time::{day_of, week_of, Clock};
use crate::validate::MAX_REPORT_DAYS;
use crate::{partitions, sketches};

pub async fn run(db: DatabaseConnection, clock: Clock, retention_days: i64, tick_ms: u64) {
    let tick = Duration::from_millis(tick_ms.max(10));
    loop {
        if let Err(e) = once(&db, &clock, retention_days).await {
            tracing::warn!(error = %e, "analytics retention failed; retried next tick");
        }
        tokio::time::sleep(tick).await;
    }
}

/// One pass; returns the raw events deleted. Safe to run on several instances at once.
pub async fn once(db: &DatabaseConnection, clock: &Clock, retention_days: i64) -> Result<u64> {
    let today = day_of(clock.now());
    let cutoff = today - retention_days;
    let oldest = sketches::oldest_row_day(db).await?;
    if let Some(first) = oldest.filter(|&day| day < cutoff) {
        sketches::days(db, first, cutoff, today).await?;
        // What a time zone's days are merged from once these rows are gone.
        sketches::hours(db, first * 24, cutoff * 24, oldest).await?;
    }
    active::Entity::delete_many()
        .filter(active::Column::Day.lt(cutoff))
        .exec(db)
        .await?;
    // Weeks serve retention cohorts, whose reports span at most two years.
    active_week::Entity::delete_many()
        .filter(active_week::Column::Week.lt(week_of(today - MAX_REPORT_DAYS) - 1))
        .exec(db)
        .await?;
    partitions::maintain(db, today, cutoff).await?;
    // On SQLite (and PostgreSQL's default partition) the old rows themselves.
    let gone = event::Entity::delete_many()
        .filter(event::Column::Day.lt(cutoff))
        .exec(db)
        .await?;
    Ok(gone.rows_affected)
}
