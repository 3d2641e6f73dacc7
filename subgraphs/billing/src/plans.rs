//! The plan catalogue: FREE (everyone's, no subscription), PLUS and PRO, each billed monthly or yearly
//! (one row per price: `plus-month`, `pro-year`, …), with the limits it grants. Seeded by the migration;
//! a retired plan (`active = false`) is no longer offered or subscribable, and existing subscriptions to it
//! renew on it until changed.

use async_graphql::Enum;
use chrono::{DateTime, Months, Utc};
use parley_kit::entitlements::{Limits, FREE};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

use crate::error::{invalid, Result};
use crate::store::plan;

/// The plan everyone has without a subscription.
pub const FREE_PLAN: &str = "free";

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "BillingInterval")]
pub enum Interval {
    Month,
    Year,
}

impl Interval {
    pub fn parse(text: &str) -> Interval {
        if text == "YEAR" {
            Interval::Year
        } else {
            Interval::Month
        }
    }

    /// The end of a period starting at `start` (calendar months: Jan 31 + 1 month = Feb 28/29).
    pub fn period_end(self, start: DateTime<Utc>) -> DateTime<Utc> {
        let months = match self {
            Interval::Month => 1,
            Interval::Year => 12,
        };
        start
            .checked_add_months(Months::new(months))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

pub fn interval(p: &plan::Model) -> Interval {
    Interval::parse(&p.interval)
}

pub fn limits(p: &plan::Model) -> Limits {
    Limits::from_json(&p.entitlements).unwrap_or(FREE)
}

/// Whether moving from `from` to `to` is an upgrade (charged now, prorated) rather than a downgrade (at the
/// period's end): a higher plan, or the same plan billed yearly instead of monthly.
pub fn is_upgrade(from: &plan::Model, to: &plan::Model) -> bool {
    to.rank > from.rank
        || (to.rank == from.rank
            && interval(to) == Interval::Year
            && interval(from) == Interval::Month)
}

/// The plans on offer, cheapest first.
pub async fn offered<C: ConnectionTrait>(db: &C) -> std::result::Result<Vec<plan::Model>, DbErr> {
    plan::Entity::find()
        .filter(plan::Column::Active.eq(true))
        .order_by_asc(plan::Column::Rank)
        .order_by_asc(plan::Column::PriceCents)
        .all(db)
        .await
}

pub async fn get<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> std::result::Result<Option<plan::Model>, DbErr> {
    plan::Entity::find_by_id(id.to_string()).one(db).await
}

/// A plan one can subscribe or change to: known, offered, and not FREE.
pub async fn purchasable<C: ConnectionTrait>(db: &C, id: &str) -> Result<plan::Model> {
    if id.len() > 64 {
        return Err(invalid("planId: unknown plan"));
    }
    match get(db, id).await? {
        Some(p) if p.active && p.id != FREE_PLAN => Ok(p),
        Some(p) if p.id == FREE_PLAN => Err(invalid(
            "planId: FREE needs no subscription (cancel to return to it)",
        )),
        _ => Err(invalid(format!("planId: unknown plan {id:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn periods_are_calendar_months() {
        let jan31 = Utc
            .with_ymd_and_hms(2027, 1, 31, 12, 0, 0)
            .single()
            .expect("date");
        assert_eq!(
            Interval::Month.period_end(jan31),
            Utc.with_ymd_and_hms(2027, 2, 28, 12, 0, 0)
                .single()
                .expect("date")
        );
        assert_eq!(
            Interval::Year.period_end(jan31),
            Utc.with_ymd_and_hms(2028, 1, 31, 12, 0, 0)
                .single()
                .expect("date")
        );
    }
}
