//! The reports, read from the rollups: active users per bucket (merged daily sketches), weekly retention
//! cohorts (first-seen days joined to active weeks), ordered funnels (raw events), content counts per bucket
//! (daily or hourly counts) and one user's activity. Ranges are checked by the schema layer's rules
//! ([`crate::validate`]) before anything here runs.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Order,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement, Value,
};
use uuid::Uuid;

use crate::error::Result;
use crate::sketches;
use crate::store::{active, daily, event, first_seen, hourly};
use chrono_tz::Tz;

use crate::time::{
    buckets, day_of, day_start, hour_of, local_buckets, week_first_day, week_of, Bucket, Span,
};

/// One bucket's distinct active users.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityPoint {
    pub start: DateTime<Utc>,
    pub active_users: i64,
}

/// Distinct signed-in users active in each bucket of `[from, to)` (a bucket cut by the range counts the
/// days, or in a zone the hours, inside it), days from midnight in `tz` (none: UTC). `now` is analytics'
/// time.
pub async fn active_users<C: ConnectionTrait>(
    db: &C,
    period: Bucket,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
    tz: Option<Tz>,
) -> Result<Vec<ActivityPoint>> {
    let today = day_of(now);
    let Some(tz) = tz else {
        let spans = buckets(period, from, to)?;
        let (Some(first), Some(last)) = (spans.first(), spans.last()) else {
            return Ok(Vec::new());
        };
        let days = sketches::days(db, first.first, last.end, today).await?;
        return Ok(spans
            .iter()
            .map(|span| ActivityPoint {
                start: span.start,
                active_users: sketches::distinct(&days, span.first, span.end),
            })
            .collect());
    };
    // The zone's days as spans of UTC hours, each in the bucket that holds its first hour.
    let outer = local_buckets(period, from, to, tz)?;
    let days: Vec<(i64, i64)> = local_buckets(Bucket::Day, from, to, tz)?
        .iter()
        .map(|day| (day.first, day.end))
        .collect();
    let counted = sketches::spans(db, &days, today, crate::time::hour_of(now)).await?;
    Ok(outer
        .iter()
        .map(|bucket| {
            let inside: Vec<(i64, i64)> = days
                .iter()
                .copied()
                .filter(|(first, _)| (bucket.first..bucket.end).contains(first))
                .collect();
            ActivityPoint {
                start: bucket.start,
                active_users: sketches::distinct_spans(&counted, &inside),
            }
        })
        .collect())
}

/// Users whose first active day fell in one week, and how many of them were active in each week since.
#[derive(Debug, Clone, PartialEq)]
pub struct Cohort {
    /// The week's Monday.
    pub start: DateTime<Utc>,
    pub size: i64,
    /// `retained[k]`: the cohort's users active in the k-th week from their first (week 0 is everyone).
    pub retained: Vec<i64>,
}

/// Weekly cohorts of the users first seen in `[from, to)`, followed up to `to`; weeks from Monday midnight
/// in `tz` (none: UTC, counted in the store; a zone's are counted here from each user's first hour and
/// each active week's first and last hour).
pub async fn retention<C: ConnectionTrait>(
    db: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: Option<Tz>,
) -> Result<Vec<Cohort>> {
    if let Some(tz) = tz {
        return zone_retention(db, from, to, tz).await;
    }
    let (first, end) = (day_of(from), day_of(to - Duration::nanoseconds(1)) + 1);
    let backend = db.get_database_backend();
    // Week numbers: (day + 3) / 7 puts Monday first (1970-01-01 was a Thursday).
    let sizes = db
        .query_all_raw(statement(
            backend,
            "SELECT (day + 3) / 7 AS cohort, COUNT(*) AS users FROM analytics_first_seen \
             WHERE day >= ? AND day < ? GROUP BY (day + 3) / 7",
            [first.into(), end.into()],
        ))
        .await?;
    let last_week = week_of(end - 1);
    let followed = db
        .query_all_raw(statement(
            backend,
            "SELECT (f.day + 3) / 7 AS cohort, a.week AS week, COUNT(*) AS users \
             FROM analytics_first_seen f JOIN analytics_active_weeks a ON a.user_id = f.user_id \
             WHERE f.day >= ? AND f.day < ? AND a.week >= (f.day + 3) / 7 AND a.week <= ? \
             GROUP BY (f.day + 3) / 7, a.week",
            [first.into(), end.into(), last_week.into()],
        ))
        .await?;
    let mut cohorts: Vec<Cohort> = Vec::new();
    let mut index = HashMap::new();
    for row in sizes {
        let week: i64 = row.try_get("", "cohort")?;
        let size: i64 = row.try_get("", "users")?;
        index.insert(week, cohorts.len());
        cohorts.push(Cohort {
            start: day_start(week_first_day(week)),
            size,
            retained: vec![0; (last_week - week + 1).max(0) as usize],
        });
    }
    for row in followed {
        let (week, active_week, users): (i64, i64, i64) = (
            row.try_get("", "cohort")?,
            row.try_get("", "week")?,
            row.try_get("", "users")?,
        );
        if let Some(cohort) = index.get(&week).map(|&i| &mut cohorts[i]) {
            if let Some(slot) = cohort.retained.get_mut((active_week - week) as usize) {
                *slot = users;
            }
        }
    }
    cohorts.sort_by_key(|c| c.start);
    Ok(cohorts)
}

/// [`retention`] with weeks from Monday midnight in `tz`. A UTC week's activity lies between its first and
/// last hour, and a zone's week is a week long, so those two hours name every zone week it touches.
async fn zone_retention<C: ConnectionTrait>(
    db: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: Tz,
) -> Result<Vec<Cohort>> {
    let (from_hour, to_hour) = (hour_of(from), hour_of(to - Duration::nanoseconds(1)) + 1);
    // The zone's weeks from the one holding `from` to past `to`: (first UTC hour, local Monday midnight).
    let weeks: Vec<(i64, DateTime<Utc>)> =
        local_buckets(Bucket::Week, from, to + Duration::days(7), tz)?
            .iter()
            .map(|week| (hour_of(week.start), week.start))
            .collect();
    let week_index = |hour: i64| weeks.partition_point(|w| w.0 <= hour).checked_sub(1);
    let Some(last) = week_index(to_hour - 1) else {
        return Ok(Vec::new());
    };
    let (first_day, end_day) = (from_hour.div_euclid(24), (to_hour - 1).div_euclid(24) + 1);
    let firsts: Vec<(Uuid, i64, i64)> = first_seen::Entity::find()
        .select_only()
        .columns([
            first_seen::Column::UserId,
            first_seen::Column::Day,
            first_seen::Column::Hour,
        ])
        .filter(first_seen::Column::Day.gte(first_day))
        .filter(first_seen::Column::Day.lt(end_day))
        .into_tuple()
        .all(db)
        .await?;
    let mut cohort_of: HashMap<Uuid, usize> = HashMap::new();
    let mut sizes: HashMap<usize, i64> = HashMap::new();
    for (user, day, hour) in firsts {
        let first = day * 24 + hour;
        if let Some(k) = week_index(first).filter(|_| (from_hour..to_hour).contains(&first)) {
            cohort_of.insert(user, k);
            *sizes.entry(k).or_default() += 1;
        }
    }
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(statement(
            backend,
            "SELECT a.user_id AS user_id, a.week AS week, a.first_hour AS first_hour, \
             a.last_hour AS last_hour FROM analytics_first_seen f \
             JOIN analytics_active_weeks a ON a.user_id = f.user_id \
             WHERE f.day >= ? AND f.day < ? AND a.week >= ? AND a.week <= ?",
            [
                first_day.into(),
                end_day.into(),
                (week_of(first_day) - 1).into(),
                (week_of(end_day) + 1).into(),
            ],
        ))
        .await?;
    let mut seen: std::collections::HashSet<(Uuid, usize)> = Default::default();
    let mut retained: HashMap<(usize, usize), i64> = HashMap::new();
    for row in rows {
        let user: Uuid = row.try_get("", "user_id")?;
        let Some(&k) = cohort_of.get(&user) else {
            continue;
        };
        let base = week_first_day(row.try_get("", "week")?) * 24;
        for in_week in [
            row.try_get::<i64>("", "first_hour")?,
            row.try_get("", "last_hour")?,
        ] {
            let hour = base + in_week;
            match week_index(hour) {
                Some(w) if hour < to_hour && w >= k && seen.insert((user, w)) => {
                    *retained.entry((k, w)).or_default() += 1;
                }
                _ => {}
            }
        }
    }
    let mut cohorts: Vec<Cohort> = sizes
        .into_iter()
        .map(|(k, size)| Cohort {
            start: weeks[k].1,
            size,
            retained: (k..=last)
                .map(|w| retained.get(&(k, w)).copied().unwrap_or(0))
                .collect(),
        })
        .collect();
    cohorts.sort_by_key(|c| c.start);
    Ok(cohorts)
}

/// Raw SQL with `?` placeholders, numbered for PostgreSQL.
fn statement<const N: usize>(backend: DbBackend, sql: &str, values: [Value; N]) -> Statement {
    let sql = if backend == DbBackend::Postgres {
        let mut numbered = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                numbered.push_str(&format!("${n}"));
            } else {
                numbered.push(c);
            }
        }
        numbered
    } else {
        sql.to_string()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// How many actors reached each step.
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelStep {
    pub name: String,
    pub actors: i64,
}

/// Actors (signed-in or anonymous) who did `steps[0]` in `[from, to)` and then each next step in order, each
/// within `window` of their first step: how many got as far as each step.
pub async fn funnel(
    db: &DatabaseConnection,
    steps: &[String],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    window: Duration,
) -> Result<Vec<FunnelStep>> {
    // An anonymous visitor who signed in is the user they became, before and after.
    let mut rows = event::Entity::find()
        .select_only()
        .column_as(
            Expr::cust(
                "COALESCE((SELECT actor_to FROM analytics_aliases \
                 WHERE actor_from = analytics_events.actor), analytics_events.actor)",
            ),
            "who",
        )
        .columns([event::Column::Name, event::Column::OccurredAt])
        .filter(event::Column::Name.is_in(steps.iter().cloned()))
        .filter(event::Column::Actor.is_not_null())
        .filter(event::Column::OccurredAt.gte(from))
        .filter(event::Column::OccurredAt.lt(to + window))
        // The same range in days: PostgreSQL reads only those days' partitions.
        .filter(event::Column::Day.between(day_of(from), day_of(to + window)))
        .order_by(Expr::cust("who"), Order::Asc)
        .order_by(event::Column::OccurredAt, Order::Asc)
        .into_tuple::<(Option<String>, String, DateTime<Utc>)>()
        .stream(db)
        .await?;
    let mut reached = vec![0i64; steps.len()];
    let mut current: Option<String> = None;
    let mut trail: Vec<(String, DateTime<Utc>)> = Vec::new();
    while let Some((actor, name, at)) = rows.try_next().await? {
        if actor != current {
            count(&mut reached, furthest(steps, &trail, to, window));
            trail.clear();
            current = actor;
        }
        trail.push((name, at));
    }
    count(&mut reached, furthest(steps, &trail, to, window));
    Ok(steps
        .iter()
        .zip(reached)
        .map(|(name, actors)| FunnelStep {
            name: name.clone(),
            actors,
        })
        .collect())
}

fn count(reached: &mut [i64], steps_done: usize) {
    for slot in reached.iter_mut().take(steps_done) {
        *slot += 1;
    }
}

/// How many steps one actor's events (in time order) complete in order, from any first step before `to`,
/// each within `window` of that first step.
fn furthest(
    steps: &[String],
    trail: &[(String, DateTime<Utc>)],
    to: DateTime<Utc>,
    window: Duration,
) -> usize {
    let mut best = 0;
    for (i, (name, start)) in trail.iter().enumerate() {
        if name != &steps[0] || *start >= to {
            continue;
        }
        let deadline = *start + window;
        let mut done = 1;
        for (name, at) in &trail[i + 1..] {
            if done == steps.len() || *at > deadline {
                break;
            }
            if name == &steps[done] {
                done += 1;
            }
        }
        best = best.max(done);
        if best == steps.len() {
            break;
        }
    }
    best
}

/// What was made in one bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContentPoint {
    pub start: DateTime<Utc>,
    pub posts: i64,
    pub comments: i64,
    pub votes: i64,
    pub messages: i64,
    pub uploads: i64,
    pub signups: i64,
}

/// The domain events each column counts.
const CONTENT: [&str; 6] = [
    "PostCreated",
    "CommentCreated",
    "VoteSubmitted",
    "MessageSent",
    "MediaUploaded",
    "UserRegistered",
];

/// The buckets of a report over counts kept per hour and per day, and whether they are in hours: UTC days
/// read the daily counts; days in another time zone, and hours, the hourly ones.
pub fn spans(
    bucket: Bucket,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: Option<Tz>,
) -> Result<(Vec<Span>, bool)> {
    match tz {
        Some(tz) if bucket != Bucket::Hour => Ok((local_buckets(bucket, from, to, tz)?, true)),
        _ => Ok((buckets(bucket, from, to)?, bucket == Bucket::Hour)),
    }
}

/// Posts, comments, votes, messages, uploads and sign-ups in each bucket of `[from, to)`, days starting at
/// midnight in `tz` (UTC without one).
pub async fn content<C: ConnectionTrait>(
    db: &C,
    bucket: Bucket,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: Option<Tz>,
) -> Result<Vec<ContentPoint>> {
    let (spans, hourly) = spans(bucket, from, to, tz)?;
    let (Some(first), Some(last)) = (spans.first(), spans.last()) else {
        return Ok(Vec::new());
    };
    // (unit, name, count): hours or days, as the spans are.
    let counts: Vec<(i64, String, i64)> = if hourly {
        hourly::Entity::find()
            .filter(hourly::Column::Hour.gte(first.first))
            .filter(hourly::Column::Hour.lt(last.end))
            .filter(hourly::Column::Name.is_in(CONTENT))
            .all(db)
            .await?
            .into_iter()
            .map(|r| (r.hour, r.name, r.count))
            .collect()
    } else {
        daily::Entity::find()
            .filter(daily::Column::Day.gte(first.first))
            .filter(daily::Column::Day.lt(last.end))
            .filter(daily::Column::Name.is_in(CONTENT))
            .all(db)
            .await?
            .into_iter()
            .map(|r| (r.day, r.name, r.count))
            .collect()
    };
    let mut points: Vec<ContentPoint> = spans
        .iter()
        .map(|span| ContentPoint {
            start: span.start,
            ..Default::default()
        })
        .collect();
    for (unit, name, n) in counts {
        let Some(i) = spans
            .iter()
            .position(|s: &Span| s.first <= unit && unit < s.end)
        else {
            continue;
        };
        let point = &mut points[i];
        let slot = match name.as_str() {
            "PostCreated" => &mut point.posts,
            "CommentCreated" => &mut point.comments,
            "VoteSubmitted" => &mut point.votes,
            "MessageSent" => &mut point.messages,
            "MediaUploaded" => &mut point.uploads,
            _ => &mut point.signups,
        };
        *slot += n;
    }
    Ok(points)
}

/// One user's activity over the retention period (first seen: ever).
#[derive(Debug, Clone, PartialEq)]
pub struct UserActivity {
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub active_days: i64,
    pub events: i64,
    /// The user's most frequent events, most first (at most [`TOP_EVENTS`]).
    pub top_events: Vec<(String, i64)>,
}

pub const TOP_EVENTS: usize = 10;

pub async fn user_activity<C: ConnectionTrait>(db: &C, user: Uuid) -> Result<UserActivity> {
    let first_seen = first_seen::Entity::find_by_id(user)
        .one(db)
        .await?
        .map(|f| day_start(f.day));
    let active_days = active::Entity::find()
        .filter(active::Column::UserId.eq(user))
        .count(db)
        .await? as i64;
    let last_seen = event::Entity::find()
        .select_only()
        .column(event::Column::OccurredAt)
        .filter(event::Column::UserId.eq(user))
        .order_by(event::Column::OccurredAt, Order::Desc)
        .into_tuple::<DateTime<Utc>>()
        .one(db)
        .await?;
    let mut by_name: Vec<(String, i64)> = event::Entity::find()
        .select_only()
        .column(event::Column::Name)
        .column_as(event::Column::Id.count(), "n")
        .filter(event::Column::UserId.eq(user))
        .group_by(event::Column::Name)
        .into_tuple()
        .all(db)
        .await?;
    let events = by_name.iter().map(|(_, n)| n).sum();
    by_name.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    by_name.truncate(TOP_EVENTS);
    Ok(UserActivity {
        first_seen,
        last_seen,
        active_days,
        events,
        top_events: by_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_funnel_follows_the_order_and_the_window() {
        let t0 = day_start(20_000);
        let hour = Duration::hours(1);
        let to = t0 + Duration::days(1);
        let s = steps(&["view", "signup", "post"]);
        let at = |name: &str, h: i32| (name.to_string(), t0 + hour * h);
        // In order, within the window.
        assert_eq!(
            furthest(
                &s,
                &[at("view", 0), at("signup", 1), at("post", 2)],
                to,
                hour * 24
            ),
            3
        );
        // Out of order: the post before the sign-up does not count.
        assert_eq!(
            furthest(
                &s,
                &[at("view", 0), at("post", 1), at("signup", 2)],
                to,
                hour * 24
            ),
            2
        );
        // Too slow from the first view, but a later view starts a faster run.
        assert_eq!(
            furthest(
                &s,
                &[
                    at("view", 0),
                    at("view", 20),
                    at("signup", 21),
                    at("post", 30)
                ],
                to,
                hour * 12
            ),
            3
        );
        // A first step after the range does not start one.
        assert_eq!(
            furthest(&s, &[at("view", 25), at("signup", 26)], to, hour * 24),
            0
        );
    }
}
