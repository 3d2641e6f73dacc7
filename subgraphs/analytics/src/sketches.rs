//! Distinct active users per day as HyperLogLog++ sketches (the `hyperloglogplus` crate: exact-ish sparse
//! sketches for small days, bias-corrected dense ones above), so users active over a
//! week, a month or any range are a merge of that range's daily sketches rather than a scan of who did what.
//! A closed day's sketch is built once from the day's activity and kept (with the day's exact count); the
//! open day's is built when asked. A late event on a closed day drops its sketch ([`crate::ingest`]).

use std::collections::HashMap;

use std::hash::BuildHasher;

use hyperloglogplus::{HyperLogLog as _, HyperLogLogPlus};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher13;
use uuid::Uuid;

use crate::error::Result;
use crate::store::{active, sketch};

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
