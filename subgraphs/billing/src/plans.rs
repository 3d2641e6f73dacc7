//! The plan catalogue: FREE (everyone's, no subscription), PLUS and PRO, each billed monthly or yearly
//! (one row per price: `plus-month`, `pro-year`, …), with the limits it grants. Seeded by the migration;
//! a retired plan (`active = false`) is no longer offered or subscribable, and existing subscriptions to it
//! renew on it until changed. Admins edit a plan with [`update`]: a new price applies from each
//! subscription's next renewal, new limits at once (every entitled subscriber's projection is told). FREE's
//! limits are the kit's ([`parley_kit::entitlements::FREE`]: the enforcing domains apply them to everyone
//! without a subscription) and are not edited here.

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

/// An admin's edit of a plan; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct PlanChange {
    pub name: Option<String>,
    pub price_cents: Option<i64>,
    pub active: Option<bool>,
    pub limits: Option<Limits>,
}

/// The most a price may be, in minor units (a GraphQL Int, and far above any plan).
pub const MAX_PRICE_CENTS: i64 = 100_000_000;

/// Applies `change` to plan `id` in one transaction with a `BillingSubscriptionChanged` for every entitled
/// subscription on it when its limits change (so media and chat apply them now).
pub async fn update(
    db: &sea_orm::DatabaseConnection,
    id: &str,
    change: PlanChange,
) -> Result<plan::Model> {
    use parley_kit::events::append;
    use parley_kit::events::contracts::BillingSubscriptionChanged;
    use sea_orm::{ActiveModelTrait, Set};

    use crate::store::subscription;

    if let Some(name) = &change.name {
        if name.trim().is_empty() || name.chars().count() > 60 {
            return Err(invalid("name: 1 to 60 characters"));
        }
    }
    if change
        .price_cents
        .is_some_and(|p| !(0..=MAX_PRICE_CENTS).contains(&p))
    {
        return Err(invalid(format!("priceCents: 0 to {MAX_PRICE_CENTS}")));
    }
    if let Some(l) = &change.limits {
        if l.max_upload_mb < 1
            || l.max_upload_mb > 100_000
            || l.max_group_members < 2
            || l.max_group_members > 10_000
        {
            return Err(invalid(
                "limits: maxUploadMb 1 to 100,000, maxGroupMembers 2 to 10,000",
            ));
        }
    }
    let txn = parley_kit::store::begin_write(db).await?;
    let Some(current) = get(&txn, id).await? else {
        return Err(invalid(format!("id: unknown plan {id:?}")));
    };
    if current.id == FREE_PLAN
        && (change.limits.is_some() || change.price_cents.is_some_and(|p| p != 0))
    {
        return Err(invalid(
            "FREE is free and its limits are everyone's default: edit PLUS or PRO",
        ));
    }
    let mut active: plan::ActiveModel = current.clone().into();
    if let Some(name) = change.name {
        active.name = Set(name.trim().to_string());
    }
    if let Some(price) = change.price_cents {
        active.price_cents = Set(price);
    }
    if let Some(on) = change.active {
        active.active = Set(on);
    }
    if let Some(limits) = change.limits {
        active.entitlements = Set(limits.to_json());
    }
    let updated = active.update(&txn).await?;
    if updated.entitlements != current.entitlements {
        let entitled = subscription::Entity::find()
            .filter(subscription::Column::PlanId.eq(&updated.id))
            .filter(subscription::Column::Status.is_in(["ACTIVE", "PAST_DUE"]))
            .all(&txn)
            .await?;
        for sub in entitled {
            let state = crate::service::state_of(&sub, &updated);
            append(&txn, sub.user_id, &BillingSubscriptionChanged(state)).await?;
        }
    }
    txn.commit().await?;
    Ok(updated)
}
