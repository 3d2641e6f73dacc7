//! Distinct active users per day as HyperLogLog++ sketches (the `hyperloglogplus` crate: exact-ish sparse
//! sketches for small days, bias-corrected dense ones above), so users active over a
//! week, a month or any range are a merge of that range's daily sketches rather than a scan of who did what.
//! A closed day's sketch is built once from the day's activity and kept (with the day's exact count); the
//! open day's is built when asked. A late event on a closed day drops its sketch ([`crate::ingest`]).
//!
//! Days that start at midnight in another time zone are spans of UTC hours ([`spans`]): counted exactly
//! from the activity rows' hour bits while the rows are kept, merged from kept hourly sketches after, and
//! kept once closed, so a zone's month is a merge of its days' sketches too.

use std::collections::HashMap;

use std::hash::BuildHasher;

use hyperloglogplus::{HyperLogLog as _, HyperLogLogPlus};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher13;
use uuid::Uuid;

use crate::error::Result;
use crate::store::{active, hour_sketch, sketch, span_sketch};

/// 2^14 registers: a standard error of 1.04 / √16384 ≈ 0.8 % for a dense sketch (12 KiB).
const PRECISION: u8 = 14;
/// The standard error of a merged count, for docs and tests.
pub const STANDARD_ERROR: f64 = 0.0081;

/// SipHash-1-3 under fixed keys: every build hashes a user alike, so kept sketches merge with new ones
/// (std's hasher promises no stability across Rust releases).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct StableHash;

impl BuildHasher for StableHash {
    type Hasher = SipHasher13;

    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(0x7061_726c_6579_2d61, 0x6e61_6c79_7469_6373)
    }
}

pub type Sketch = HyperLogLogPlus<Uuid, StableHash>;

/// An empty sketch.
pub fn empty() -> Sketch {
    // The precision is within the crate's bounds (4..=18).
    HyperLogLogPlus::new(PRECISION, StableHash).unwrap_or_else(|_| unreachable!())
}

/// One day's distinct users: exact, and as a sketch to merge.
pub struct Day {
    pub users: i64,
    pub sketch: Sketch,
}

/// The days `first..end`: kept sketches where there are, built from the activity otherwise (and kept when
/// the day is closed, i.e. before `today`).
pub async fn days<C: ConnectionTrait>(
    db: &C,
    first: i64,
    end: i64,
    today: i64,
) -> Result<HashMap<i64, Day>> {
    let mut days = HashMap::new();
    for kept in sketch::Entity::find()
        .filter(sketch::Column::Day.gte(first))
        .filter(sketch::Column::Day.lt(end))
        .all(db)
        .await?
    {
        let sketch = serde_json::from_str(&kept.sketch)?;
        days.insert(
            kept.day,
            Day {
                users: kept.users,
                sketch,
            },
        );
    }
    for day in first..end.min(today + 1) {
        if days.contains_key(&day) {
            continue;
        }
        let built = build(db, day).await?;
        if day < today {
            keep(db, day, &built).await?;
        }
        days.insert(day, built);
    }
    Ok(days)
}

/// The day's sketch from its activity rows.
async fn build<C: ConnectionTrait>(db: &C, day: i64) -> Result<Day> {
    let users: Vec<Uuid> = active::Entity::find()
        .select_only()
        .column(active::Column::UserId)
        .filter(active::Column::Day.eq(day))
        .into_tuple()
        .all(db)
        .await?;
    let mut sketch = empty();
    for user in &users {
        sketch.insert(user);
    }
    Ok(Day {
        users: users.len() as i64,
        sketch,
    })
}

async fn keep<C: ConnectionTrait>(db: &C, day: i64, built: &Day) -> Result<()> {
    sketch::Entity::insert(sketch::ActiveModel {
        day: Set(day),
        users: Set(built.users),
        sketch: Set(serde_json::to_string(&built.sketch)?),
    })
    // Two readers may build the same day at once: the first kept wins, both are the same.
    .on_conflict_do_nothing_on([sketch::Column::Day])
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The closed hours `first..end`: kept sketches where there are, else built from the activity rows of their
/// days and kept — for days from `oldest_row_day` on (before it the rows are gone, and an hour without a
/// kept sketch is left out rather than kept empty).
pub async fn hours<C: ConnectionTrait>(
    db: &C,
    first: i64,
    end: i64,
    oldest_row_day: Option<i64>,
) -> Result<HashMap<i64, Day>> {
    let mut hours = HashMap::new();
    for kept in hour_sketch::Entity::find()
        .filter(hour_sketch::Column::Hour.gte(first))
        .filter(hour_sketch::Column::Hour.lt(end))
        .all(db)
        .await?
    {
        let sketch = serde_json::from_str(&kept.sketch)?;
        let users = kept.users;
        hours.insert(kept.hour, Day { users, sketch });
    }
    let Some(oldest) = oldest_row_day else {
        return Ok(hours);
    };
    let missing: Vec<i64> = (first.max(oldest * 24)..end)
        .filter(|h| !hours.contains_key(h))
        .collect();
    let (Some(&low), Some(&high)) = (missing.first(), missing.last()) else {
        return Ok(hours);
    };
    let mut built: HashMap<i64, Vec<Uuid>> = HashMap::new();
    for (day, user, bits) in activity(db, low.div_euclid(24), high.div_euclid(24) + 1).await? {
        for in_day in 0..24 {
            let hour = day * 24 + in_day;
            if bits & (1 << in_day) != 0 && missing.binary_search(&hour).is_ok() {
                built.entry(hour).or_default().push(user);
            }
        }
    }
    for hour in missing {
        let users = built.remove(&hour).unwrap_or_default();
        let day = of_users(&users);
        hour_sketch::Entity::insert(hour_sketch::ActiveModel {
            hour: Set(hour),
            users: Set(day.users),
            sketch: Set(serde_json::to_string(&day.sketch)?),
        })
        .on_conflict_do_nothing_on([hour_sketch::Column::Hour])
        .exec_without_returning(db)
        .await?;
        hours.insert(hour, day);
    }
    Ok(hours)
}

/// The activity rows of the days `first..end`: (day, user, hour bits).
async fn activity<C: ConnectionTrait>(
    db: &C,
    first: i64,
    end: i64,
) -> Result<Vec<(i64, Uuid, i64)>> {
    Ok(active::Entity::find()
        .select_only()
        .columns([
            active::Column::Day,
            active::Column::UserId,
            active::Column::Hours,
        ])
        .filter(active::Column::Day.gte(first))
        .filter(active::Column::Day.lt(end))
        .into_tuple()
        .all(db)
        .await?)
}

fn of_users(users: &[Uuid]) -> Day {
    let mut sketch = empty();
    for user in users {
        sketch.insert(user);
    }
    Day {
        users: users.len() as i64,
        sketch,
    }
}

/// Distinct users in each span of UTC hours `(first, end)` (a zone's days): whole UTC days from [`days`];
/// others kept where they were built before, else counted from the activity rows (exact) while the rows of
/// their days are kept (`oldest_row_day` on), else merged from [`hours`]' sketches. Built spans are kept
/// once they have ended (`now_hour`).
pub async fn spans<C: ConnectionTrait>(
    db: &C,
    wanted: &[(i64, i64)],
    today: i64,
    now_hour: i64,
) -> Result<HashMap<(i64, i64), Day>> {
    let mut out = HashMap::new();
    let whole_days: Vec<i64> = wanted
        .iter()
        .filter(|(first, end)| first.rem_euclid(24) == 0 && end - first == 24)
        .map(|(first, _)| first / 24)
        .collect();
    if let (Some(&low), Some(&high)) = (whole_days.iter().min(), whole_days.iter().max()) {
        let mut days = days(db, low, high + 1, today).await?;
        for day in whole_days {
            if let Some(found) = days.remove(&day) {
                out.insert((day * 24, day * 24 + 24), found);
            }
        }
    }
    let others: Vec<(i64, i64)> = wanted
        .iter()
        .copied()
        .filter(|span| !out.contains_key(span))
        .collect();
    let (Some(low), Some(high)) = (
        others.iter().map(|s| s.0).min(),
        others.iter().map(|s| s.1).max(),
    ) else {
        return Ok(out);
    };
    for kept in span_sketch::Entity::find()
        .filter(span_sketch::Column::FirstHour.gte(low))
        .filter(span_sketch::Column::EndHour.lte(high))
        .all(db)
        .await?
    {
        if others.contains(&(kept.first_hour, kept.end_hour)) {
            let sketch = serde_json::from_str(&kept.sketch)?;
            let day = Day {
                users: kept.users,
                sketch,
            };
            out.insert((kept.first_hour, kept.end_hour), day);
        }
    }
    let oldest_row_day = oldest_row_day(db).await?;
    for (first, end) in others {
        if out.contains_key(&(first, end)) {
            continue;
        }
        let built = if oldest_row_day.is_some_and(|oldest| first.div_euclid(24) >= oldest) {
            let mut users = Vec::new();
            for (day, user, bits) in
                activity(db, first.div_euclid(24), (end - 1).div_euclid(24) + 1).await?
            {
                let (from_bit, to_bit) = ((first - day * 24).max(0), (end - day * 24).min(24));
                let mask = (1i64 << to_bit) - (1i64 << from_bit);
                if bits & mask != 0 {
                    users.push(user);
                }
            }
            users.sort_unstable();
            users.dedup();
            of_users(&users)
        } else {
            let hours = hours(db, first, end.min(now_hour), oldest_row_day).await?;
            let mut merged = empty();
            for hour in hours.values() {
                let _ = merged.merge(&hour.sketch);
            }
            Day {
                users: merged.count().round() as i64,
                sketch: merged,
            }
        };
        if end <= now_hour {
            span_sketch::Entity::insert(span_sketch::ActiveModel {
                first_hour: Set(first),
                end_hour: Set(end),
                users: Set(built.users),
                sketch: Set(serde_json::to_string(&built.sketch)?),
            })
            .on_conflict_do_nothing_on([
                span_sketch::Column::FirstHour,
                span_sketch::Column::EndHour,
            ])
            .exec_without_returning(db)
            .await?;
        }
        out.insert((first, end), built);
    }
    Ok(out)
}

/// The first day whose activity rows are still kept (none: no rows at all).
pub async fn oldest_row_day<C: ConnectionTrait>(db: &C) -> Result<Option<i64>> {
    Ok(active::Entity::find()
        .select_only()
        .column_as(active::Column::Day.min(), "oldest")
        .into_tuple::<Option<i64>>()
        .one(db)
        .await?
        .flatten())
}

/// Distinct users over the spans of `keys`: exact for one, a merge of their sketches otherwise.
pub fn distinct_spans(spans: &HashMap<(i64, i64), Day>, keys: &[(i64, i64)]) -> i64 {
    if let [one] = keys {
        return spans.get(one).map_or(0, |day| day.users);
    }
    let mut merged = empty();
    for key in keys {
        if let Some(day) = spans.get(key) {
            let _ = merged.merge(&day.sketch);
        }
    }
    merged.count().round() as i64
}

/// Distinct users over `first..end`: exact for one day, a merge of the days' sketches otherwise.
pub fn distinct(days: &HashMap<i64, Day>, first: i64, end: i64) -> i64 {
    if end - first == 1 {
        return days.get(&first).map_or(0, |day| day.users);
    }
    let mut merged = empty();
    for day in first..end {
        if let Some(day) = days.get(&day) {
            // Every sketch here has the one precision.
            let _ = merged.merge(&day.sketch);
        }
    }
    merged.count().round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_counts_within_the_stated_error_and_survives_a_round_trip() {
        // Fixed ids: the test is the same every run.
        let users: Vec<Uuid> = (0..20_000u128)
            .map(|i| Uuid::from_u128(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)))
            .collect();
        // Two overlapping days: 0..12,000 and 8,000..20,000.
        let mut a = empty();
        users[..12_000].iter().for_each(|u| a.insert(u));
        let mut b = empty();
        users[8_000..].iter().for_each(|u| b.insert(u));
        let b: Sketch =
            serde_json::from_str(&serde_json::to_string(&b).expect("json")).expect("back");
        let mut merged = empty();
        merged.merge(&a).expect("same precision");
        merged.merge(&b).expect("same precision");
        let error = (merged.count() - 20_000.0).abs() / 20_000.0;
        assert!(error < 2.0 * STANDARD_ERROR, "error {error}");
        // Dense at this size: the 6-bit registers, as JSON.
        let size = serde_json::to_string(&merged).expect("json").len();
        assert!(size < 40_000, "{size} bytes");
    }
}
