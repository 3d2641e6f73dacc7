//! Analytics figures (issue 24), in phases that print figures:
//!
//! 1. `ingest --dir D --events N`: domain events (posts, comments, votes, messages, logins of `--users`
//!    users) applied to the analytics store as its consumer applies what the bus brings — batches of 100 in
//!    one transaction each, through the inbox — into raw rows, counts, activity and first-seen days:
//!    events/s.
//! 2. `seed --dir D --users U --events E --days 90`: E raw events over the last 90 days (a fixed seed: every
//!    run the same rows), written straight into the store with the activity rows they imply: heavy, medium and
//!    light users (20 / 30 / 50 % of U, active on 80 / 30 / 5 % of days); rows/s and the store's bytes per
//!    million events.
//! 3. `query --dir D`: `activeUsers(MONTH)` over the 90 days as the subgraph answers it (merged daily
//!    sketches; the first call builds the closed days' sketches, timed apart), p50/p99 over repeated calls,
//!    side by side with the exact answer — `COUNT(DISTINCT user_id)` over the raw events of each month —
//!    timed in the same run; the sketches' error against it; then the same report in Europe/Berlin (its
//!    days built once from the activity rows' hours and kept, then merged alike).
//!
//! `benches/analytics.sh` runs them on a release build.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use parley_analytics::projection::Projection;
use parley_analytics::reports;
use parley_analytics::time::{day_of, day_start, Bucket, Clock};
use parley_bench::Samples;
use parley_kit::events::contracts::{
    ChatMessage, CommentChanged, CommentCreated, Event, MessageSent, PostChanged, PostCreated,
    UserLoggedIn, VoteCast, VoteSubmitted,
};
use parley_kit::events::EventEnvelope;
use parley_kit::Domain;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, Statement, Value};
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    phase: Phase,
}

#[derive(Subcommand)]
enum Phase {
    Ingest {
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 200_000)]
        events: usize,
        #[arg(long, default_value_t = 10_000)]
        users: usize,
    },
    Seed {
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        users: usize,
        #[arg(long, default_value_t = 50_000_000)]
        events: usize,
        #[arg(long, default_value_t = 90)]
        days: i64,
    },
    Query {
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 90)]
        days: i64,
        #[arg(long, default_value_t = 200)]
        samples: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().phase {
        Phase::Ingest { dir, events, users } => ingest(dir, events, users).await,
        Phase::Seed {
            dir,
            users,
            events,
            days,
        } => seed(dir, users, events, days).await,
        Phase::Query { dir, days, samples } => query(dir, days, samples).await,
    }
}

async fn store(dir: &std::path::Path) -> anyhow::Result<DatabaseConnection> {
    std::fs::create_dir_all(dir)?;
    let config = parley_kit::ServiceConfig {
        name: parley_analytics::Analytics::NAME.into(),
        data_dir: dir.to_path_buf(),
        ..Default::default()
    };
    Ok(parley_kit::store::connect::<parley_analytics::Migrator>(&config).await?)
}

/// The store's files on disk.
fn store_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("analytics"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn envelope<E: Event>(position: i64, event: E, at: DateTime<Utc>) -> EventEnvelope {
    EventEnvelope {
        position,
        id: Uuid::now_v7(),
        source: E::KIND.source.into(),
        kind: E::KIND.name.into(),
        aggregate_id: position.to_string(),
        occurred_at: at,
        payload: serde_json::to_value(event).unwrap_or_default(),
    }
}

async fn ingest(dir: std::path::PathBuf, events: usize, users: usize) -> anyhow::Result<()> {
    let db = store(&dir).await?;
    let handler = Projection {
        clock: Clock::default(),
    };
    let mut rng = StdRng::seed_from_u64(24);
    let people: Vec<Uuid> = (0..users).map(|_| Uuid::now_v7()).collect();
    let now = Utc::now();
    // Per source, in order, as each producer's stream delivers them.
    let mut streams: std::collections::BTreeMap<&str, Vec<EventEnvelope>> = Default::default();
    for i in 0..events {
        let who = people[rng.gen_range(0..users)];
        let position = i as i64 + 1;
        let event = match rng.gen_range(0..10) {
            0 => envelope(
                position,
                PostCreated(PostChanged {
                    post_id: Uuid::now_v7(),
                    author_id: who,
                    ..Default::default()
                }),
                now,
            ),
            1..=2 => envelope(
                position,
                CommentCreated(CommentChanged {
                    comment_id: Uuid::now_v7(),
                    author_id: who,
                    ..Default::default()
                }),
                now,
            ),
            3..=6 => envelope(
                position,
                VoteSubmitted(VoteCast {
                    user_id: who,
                    ..Default::default()
                }),
                now,
            ),
            7..=8 => envelope(
                position,
                MessageSent(ChatMessage {
                    message_id: Uuid::now_v7(),
                    author_id: who,
                    created_at: now,
                    ..Default::default()
                }),
                now,
            ),
            _ => envelope(
                position,
                UserLoggedIn {
                    user_id: who,
                    provider: None,
                },
                now,
            ),
        };
        let source = match event.source.as_str() {
            "posts" => "posts",
            "chat" => "chat",
            _ => "users",
        };
        streams.entry(source).or_default().push(event);
    }
    let started = Instant::now();
    for (source, events) in &streams {
        for batch in events.chunks(100) {
            parley_kit::events::consumer::apply_batch_only(&db, source, &handler, batch)
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        }
    }
    let took = started.elapsed();
    println!(
        "ingest: {events} domain events of {users} users through the consumer path (batches of 100): {:.2} s, {:.0} events/s",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64()
    );
    println!(
        "ingest: store {:.1} MB ({:.0} bytes per event, inbox included)",
        store_bytes(&dir) as f64 / 1e6,
        store_bytes(&dir) as f64 / events as f64
    );
    Ok(())
}

/// How often a user of each kind is active, and what share of users is of it.
const KINDS: [(f64, f64); 3] = [(0.2, 0.8), (0.3, 0.3), (0.5, 0.05)];
const NAMES: [&str; 5] = [
    "PostCreated",
    "CommentCreated",
    "VoteSubmitted",
    "MessageSent",
    "UserLoggedIn",
];

async fn seed(
    dir: std::path::PathBuf,
    users: usize,
    events: usize,
    days: i64,
) -> anyhow::Result<()> {
    let db = store(&dir).await?;
    db.execute_unprepared("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")
        .await?;
    let mut rng = StdRng::seed_from_u64(24);
    let people: Vec<(Uuid, f64)> = (0..users)
        .map(|i| {
            let share = i as f64 / users as f64;
            let chance = if share < KINDS[0].0 {
                KINDS[0].1
            } else if share < KINDS[0].0 + KINDS[1].0 {
                KINDS[1].1
            } else {
                KINDS[2].1
            };
            (Uuid::from_u128(rng.gen()), chance)
        })
        .collect();
    let today = day_of(Utc::now());
    let first_day = today - days;
    let per_day = events / days as usize;
    let started = Instant::now();
    let (mut raw, mut active_rows) = (0usize, 0usize);
    let mut first_seen: std::collections::HashMap<Uuid, i64> = Default::default();
    for day in first_day..today {
        let active: Vec<Uuid> = people
            .iter()
            .filter(|(_, chance)| rng.gen_bool(*chance))
            .map(|(id, _)| *id)
            .collect();
        if active.is_empty() {
            continue;
        }
        let start = day_start(day).timestamp();
        let txn_rows = |rng: &mut StdRng, n: usize| -> Vec<(Uuid, &'static str, Uuid, i64)> {
            (0..n)
                .map(|i| {
                    // Every active user has at least one event that day.
                    let who = if i < active.len() {
                        active[i]
                    } else {
                        active[rng.gen_range(0..active.len())]
                    };
                    let at = start + rng.gen_range(0..86_400);
                    (
                        Uuid::now_v7(),
                        NAMES[rng.gen_range(0..NAMES.len())],
                        who,
                        at,
                    )
                })
                .collect()
        };
        let rows = txn_rows(&mut rng, per_day.max(active.len()));
        let txn = parley_kit::store::begin_write(&db).await?;
        // Index pages of tens of millions of rows: an 8 GiB page cache keeps the inserts off the disk.
        txn.execute_unprepared("PRAGMA cache_size = -8000000")
            .await?;
        for chunk in rows.chunks(400) {
            let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 7);
            for (id, name, who, at) in chunk {
                values.extend([
                    (*id).into(),
                    (*name).into(),
                    "bench".into(),
                    (*who).into(),
                    format!("u:{who}").into(),
                    DateTime::from_timestamp(*at, 0).unwrap_or_default().into(),
                    day.into(),
                ]);
            }
            insert(
                &txn,
                "analytics_events (id, name, source, user_id, actor, occurred_at, day)",
                7,
                values,
            )
            .await?;
        }
        for chunk in active.chunks(400) {
            let days: Vec<Value> = chunk
                .iter()
                .flat_map(|u| [day.into(), (*u).into()])
                .collect();
            insert(&txn, "analytics_active (day, user_id)", 2, days).await?;
            let week = parley_analytics::time::week_of(day);
            let weeks: Vec<Value> = chunk
                .iter()
                .flat_map(|u| [week.into(), (*u).into()])
                .collect();
            insert(&txn, "analytics_active_weeks (week, user_id)", 2, weeks).await?;
        }
        txn.commit().await?;
        for u in &active {
            first_seen.entry(*u).or_insert(day);
        }
        raw += rows.len();
        active_rows += active.len();
        eprint!("\rseed: day {} of {days}", day - first_day + 1);
    }
    let txn = parley_kit::store::begin_write(&db).await?;
    let seen: Vec<(Uuid, i64)> = first_seen.into_iter().collect();
    for chunk in seen.chunks(400) {
        let values: Vec<Value> = chunk
            .iter()
            .flat_map(|(u, d)| [(*u).into(), (*d).into()])
            .collect();
        insert(&txn, "analytics_first_seen (user_id, day)", 2, values).await?;
    }
    txn.commit().await?;
    db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE);")
        .await?;
    let took = started.elapsed();
    let bytes = store_bytes(&dir);
    eprintln!();
    println!(
        "seed: {raw} raw events, {active_rows} user-days, {} users seen, over {days} days: {:.0} s ({:.0} events/s written straight, indexes included)",
        seen.len(),
        took.as_secs_f64(),
        raw as f64 / took.as_secs_f64()
    );
    println!(
        "seed: store {:.2} GB: {:.0} MB per million events (raw rows with their three indexes, plus activity)",
        bytes as f64 / 1e9,
        bytes as f64 / 1e6 / (raw as f64 / 1e6)
    );
    Ok(())
}

/// One multi-row insert (`INSERT OR IGNORE`: a user-week comes once per day of it) with bound values, encoded
/// as the store's own writes encode them.
async fn insert(
    txn: &DatabaseTransaction,
    into: &str,
    columns: usize,
    values: Vec<Value>,
) -> anyhow::Result<()> {
    let row = format!("({})", vec!["?"; columns].join(","));
    let rows = vec![row; values.len() / columns].join(",");
    txn.execute_raw(Statement::from_sql_and_values(
        txn.get_database_backend(),
        format!("INSERT OR IGNORE INTO {into} VALUES {rows}"),
        values,
    ))
    .await?;
    Ok(())
}

async fn query(dir: std::path::PathBuf, days: i64, samples: usize) -> anyhow::Result<()> {
    let db = store(&dir).await?;
    let now = Utc::now();
    let today = day_of(now);
    let (from, to) = (day_start(today - days), day_start(today));
    let started = Instant::now();
    let first = reports::active_users(&db, Bucket::Month, from, to, now, None).await?;
    println!(
        "activeUsers(MONTH) over {days} days, first call (builds and keeps the closed days' sketches): {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    let mut warm = Samples::default();
    for _ in 0..samples {
        let started = Instant::now();
        reports::active_users(&db, Bucket::Month, from, to, now, None).await?;
        warm.push(started.elapsed());
    }
    println!(
        "activeUsers(MONTH) over {days} days, sketches kept ({samples} calls): {}",
        warm.summary()
    );
    // The exact answer, the way a report without sketches would count.
    let mut exact = Duration::ZERO;
    let backend = db.get_database_backend();
    let spans = parley_analytics::time::buckets(Bucket::Month, from, to)?;
    for (point, span) in first.iter().zip(&spans) {
        let started = Instant::now();
        let row = db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                "SELECT COUNT(DISTINCT user_id) AS n FROM analytics_events WHERE day >= ? AND day < ?",
                [span.first.into(), span.end.into()],
            ))
            .await?
            .ok_or_else(|| anyhow::anyhow!("no count"))?;
        let took = started.elapsed();
        exact += took;
        let n: i64 = row.try_get("", "n")?;
        let error = if n > 0 {
            (point.active_users - n) as f64 / n as f64 * 100.0
        } else {
            0.0
        };
        println!(
            "  month from {}: sketches {} vs exact {n} ({error:+.2} %); exact COUNT(DISTINCT) took {:.0} ms",
            point.start.format("%Y-%m-%d"),
            point.active_users,
            took.as_secs_f64() * 1000.0
        );
    }
    let p99 = warm.percentile(99.0);
    println!(
        "exact COUNT(DISTINCT) for the whole report: {:.0} ms ({:.1}x the sketches' p99)",
        exact.as_secs_f64() * 1000.0,
        exact.as_secs_f64() / p99.as_secs_f64().max(1e-9)
    );
    // The same report with days from midnight in Berlin: the zone's days are built once from the activity
    // rows' hours and kept, then merged like UTC's.
    let berlin = parley_analytics::validate::time_zone("Europe/Berlin")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    reports::active_users(&db, Bucket::Month, from, to, now, berlin).await?;
    println!(
        "activeUsers(MONTH, timeZone: Europe/Berlin) over {days} days, first call (builds and keeps the zone's days): {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    let mut zoned = Samples::default();
    for _ in 0..samples {
        let started = Instant::now();
        reports::active_users(&db, Bucket::Month, from, to, now, berlin).await?;
        zoned.push(started.elapsed());
    }
    println!(
        "activeUsers(MONTH, timeZone: Europe/Berlin), zone days kept ({samples} calls): {}",
        zoned.summary()
    );
    Ok(())
}
