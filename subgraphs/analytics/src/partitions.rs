//! PostgreSQL's day partitions of the raw events. There `analytics_events` is partitioned by range of
//! `day` (migration m0002): one partition per day, `analytics_events_<day>`, and a default partition that
//! catches any day without one, so an insert never fails for want of a partition. Each tick of the job makes
//! the partitions of yesterday, today and the next [`AHEAD_DAYS`] (events arrive into their own day's
//! partition) and of any day the default partition holds (a late or test-dated event: its rows move in), and
//! drops the partitions older than the retention period — a whole day goes as one `DROP TABLE`, not a delete
//! of its rows. Reports over a range read only its days' partitions. SQLite keeps one table; this does
//! nothing there.

use std::collections::BTreeSet;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value};

use crate::error::Result;

/// Days made ahead of today.
pub const AHEAD_DAYS: i64 = 3;

/// The parent table, and its default partition.
const EVENTS: &str = "analytics_events";
const DEFAULT: &str = "analytics_events_default";

/// Serializes partition changes between instances (each runs the job); the value is arbitrary but fixed.
const LOCK_KEY: i64 = 0x5041_524c_4559_4131;

/// The partition of `day`.
fn partition(day: i64) -> String {
    format!("{EVENTS}_{day}")
}

/// Makes and drops day partitions around `today`, keeping none before `cutoff` (the first retained day).
pub async fn maintain(db: &DatabaseConnection, today: i64, cutoff: i64) -> Result<()> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let existing = days(db).await?;
    let stray = days_in_default(db, cutoff).await?;
    let wanted: BTreeSet<i64> = (today - 1..=today + AHEAD_DAYS)
        .chain(stray)
        .filter(|&day| day >= cutoff.max(0))
        .collect();
    for &day in wanted.difference(&existing) {
        create(db, day).await?;
    }
    for &day in existing.iter().filter(|&&day| day < cutoff) {
        let txn = db.begin().await?;
        lock(&txn).await?;
        txn.execute_unprepared(&format!("DROP TABLE IF EXISTS {}", partition(day)))
            .await?;
        txn.commit().await?;
    }
    Ok(())
}

/// The days that have a partition.
pub async fn days<C: ConnectionTrait>(db: &C) -> Result<BTreeSet<i64>> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 WHERE i.inhparent = '{EVENTS}'::regclass"
            ),
        ))
        .await?;
    let prefix = format!("{EVENTS}_");
    let mut days = BTreeSet::new();
    for row in rows {
        let name: String = row.try_get("", "name")?;
        if let Some(day) = name.strip_prefix(&prefix).and_then(|d| d.parse().ok()) {
            days.insert(day);
        }
    }
    Ok(days)
}

/// The retained days that have rows in the default partition.
async fn days_in_default<C: ConnectionTrait>(db: &C, cutoff: i64) -> Result<Vec<i64>> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("SELECT DISTINCT day FROM {DEFAULT} WHERE day >= $1"),
            [Value::from(cutoff)],
        ))
        .await?;
    rows.iter()
        .map(|row| Ok(row.try_get::<i64>("", "day")?))
        .collect()
}

/// Makes `day`'s partition, moving its rows out of the default partition, in one transaction. The default
/// partition is locked meanwhile (inserts into it wait, briefly): attaching checks it holds none of the day's
/// rows, and one inserted after the move would fail that check.
async fn create(db: &DatabaseConnection, day: i64) -> Result<()> {
    let txn = db.begin().await?;
    lock(&txn).await?;
    // Another instance may have made it while this one waited for the lock.
    if days(&txn).await?.contains(&day) {
        return Ok(txn.commit().await?);
    }
    let table = partition(day);
    for statement in [
        format!("LOCK TABLE {DEFAULT} IN ACCESS EXCLUSIVE MODE"),
        format!("CREATE TABLE {table} (LIKE {EVENTS} INCLUDING DEFAULTS)"),
        format!("INSERT INTO {table} SELECT * FROM {DEFAULT} WHERE day = {day}"),
        format!("DELETE FROM {DEFAULT} WHERE day = {day}"),
        format!(
            "ALTER TABLE {EVENTS} ATTACH PARTITION {table} FOR VALUES FROM ({day}) TO ({})",
            day + 1
        ),
    ] {
        txn.execute_unprepared(&statement).await?;
    }
    Ok(txn.commit().await?)
}

/// Holds the partitions' lock until the transaction ends.
async fn lock<C: ConnectionTrait>(txn: &C) -> Result<()> {
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [Value::from(LOCK_KEY)],
    ))
    .await?;
    Ok(())
}
