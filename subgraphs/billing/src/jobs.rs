//! Billing's background work, every tick: renewals of periods that ended (or their cancellation, or the
//! downgrade waiting for them), dunning retries that are due, the reconciliation of payments whose outcome
//! was never recorded, refunds still owed, and expired idempotency keys. Each step is safe to run on every
//! instance at once: it claims its row with a conditional update, so one instance does each piece.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::error::{BillingError, Result};
use crate::lifecycle::Status;
use crate::plans;
use crate::provider::{Outcome, ProviderError};
use crate::service::{self, Service, CYCLE};
use crate::store::{invoice, payment, subscription};

/// At most this many rows per step per tick.
const BATCH: u64 = 200;
/// An INCOMPLETE subscription left unpaid this long expires (Stripe: 23 hours).
const INCOMPLETE_HOURS: i64 = 23;
/// Past this age a provider no longer answers by idempotency key (Stripe keeps keys 24 h): the
/// reconciliation searches instead.
const KEY_LIFETIME_SECS: i64 = 23 * 3600;

pub async fn run(service: Arc<Service>) {
    let tick = Duration::from_millis(service.settings.tick_ms.max(10));
    loop {
        if let Err(e) = once(&service).await {
            tracing::warn!(error = %e, "billing jobs failed; retried next tick");
        }
        tokio::time::sleep(tick).await;
    }
}

/// One pass of every job.
pub async fn once(service: &Service) -> Result<()> {
    renew(service).await?;
    retry(service).await?;
    reconcile(service).await?;
    expire(service).await?;
    service.refund_pending().await;
    crate::idempotency::prune(&service.db).await?;
    Ok(())
}

/// Subscriptions whose period ended: canceled if set to, otherwise invoiced for the next period (on the
/// pending downgrade's plan, if any) and charged off-session.
pub async fn renew(service: &Service) -> Result<usize> {
    let now = service.clock.now().await?;
    let due = subscription::Entity::find()
        .filter(subscription::Column::Status.eq(Status::Active.as_str()))
        .filter(subscription::Column::CurrentPeriodEnd.lte(now))
        .order_by_asc(subscription::Column::CurrentPeriodEnd)
        .limit(BATCH)
        .all(&service.db)
        .await?;
    let mut renewed = 0;
    for sub in due {
        let txn = parley_kit::store::begin_write(&service.db).await?;
        // Claim: only the instance that moves `updated_at` from what it read renews this period.
        let claimed = subscription::Entity::update_many()
            .col_expr(subscription::Column::UpdatedAt, Expr::value(now))
            .filter(subscription::Column::Id.eq(sub.id))
            .filter(subscription::Column::UpdatedAt.eq(sub.updated_at))
            .filter(subscription::Column::Status.eq(Status::Active.as_str()))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if !claimed {
            continue;
        }
        if sub.cancel_at_period_end {
            service.cancel_in(&txn, sub, now, "period ended").await?;
            txn.commit().await?;
            service.events.wake();
            continue;
        }
        let plan_id = sub.pending_plan_id.clone().unwrap_or(sub.plan_id.clone());
        let plan = plans::get(&txn, &plan_id)
            .await?
            .ok_or_else(|| BillingError::Store("renewal plan missing".into()))?;
        let start = sub.current_period_end;
        let end = plans::interval(&plan).period_end(start);
        // The period's invoice is made once: a second pass finds it open and leaves it to the retries.
        let open = invoice::Entity::find()
            .filter(invoice::Column::SubscriptionId.eq(sub.id))
            .filter(invoice::Column::Reason.eq(CYCLE))
            .filter(invoice::Column::PeriodStart.eq(start))
            .one(&txn)
            .await?;
        if open.is_some() {
            continue;
        }
        let mut active: subscription::ActiveModel = sub.clone().into();
        active.pending_plan_id = sea_orm::Set(None);
        sea_orm::ActiveModelTrait::update(active, &txn).await?;
        let pay = service::owe(&txn, &sub, &plan, CYCLE, plan.price_cents, start, end, now).await?;
        txn.commit().await?;
        service.collect(pay, true).await.ok();
        renewed += 1;
    }
    Ok(renewed)
}

/// PAST_DUE subscriptions whose next retry is due: a new attempt at the open renewal invoice.
pub async fn retry(service: &Service) -> Result<usize> {
    let now = service.clock.now().await?;
    let due = subscription::Entity::find()
        .filter(subscription::Column::Status.eq(Status::PastDue.as_str()))
        .filter(subscription::Column::NextRetryAt.lte(now))
        .limit(BATCH)
        .all(&service.db)
        .await?;
    let mut retried = 0;
    for sub in due {
        let txn = parley_kit::store::begin_write(&service.db).await?;
        // Claim the retry by clearing its time (a failure schedules the next one).
        let claimed = subscription::Entity::update_many()
            .col_expr(
                subscription::Column::NextRetryAt,
                Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            )
            .filter(subscription::Column::Id.eq(sub.id))
            .filter(subscription::Column::NextRetryAt.eq(sub.next_retry_at))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if !claimed {
            continue;
        }
        let Some(inv) = invoice::Entity::find()
            .filter(invoice::Column::SubscriptionId.eq(sub.id))
            .filter(invoice::Column::Reason.eq(CYCLE))
            .filter(invoice::Column::Status.eq("OPEN"))
            .order_by_desc(invoice::Column::PeriodStart)
            .one(&txn)
            .await?
        else {
            continue;
        };
        let pay = service::pay_for(&txn, &inv, &sub.payment_method, now).await?;
        txn.commit().await?;
        service.collect(pay, true).await.ok();
        retried += 1;
    }
    Ok(retried)
}

/// Payments still PENDING after `reconcile_after_secs`: their outcome was never recorded (a crash after
/// the charge, a provider timeout). While the invoice is still owed the provider is asked with the same
/// key — it answers with the charge it made, or makes the one charge it never received; otherwise (or past
/// the key's lifetime) it is searched by the key. A payment the provider never saw is failed; one it made
/// for an invoice no longer owed is refunded by [`Service::settle`].
pub async fn reconcile(service: &Service) -> Result<usize> {
    let now = service.clock.now().await?;
    let cutoff = now - chrono::Duration::seconds(service.settings.reconcile_after_secs);
    let stuck = payment::Entity::find()
        .filter(payment::Column::Status.eq("PENDING"))
        .filter(payment::Column::CreatedAt.lte(cutoff))
        .order_by_asc(payment::Column::CreatedAt)
        .limit(BATCH)
        .all(&service.db)
        .await?;
    let mut resolved = 0;
    for pay in stuck {
        let age = (now - pay.created_at).num_seconds();
        // Still owed: ask again with the key (the provider answers with the charge it made, or makes the
        // one it never received). No longer owed (canceled meanwhile): only look, and refund what is found.
        let owed = invoice::Entity::find_by_id(pay.invoice_id)
            .one(&service.db)
            .await?
            .is_some_and(|inv| inv.status == "OPEN");
        let answer = if owed && age < KEY_LIFETIME_SECS {
            match service.request(&pay, true).await {
                Ok(request) => service.provider.charge(&request).await.map(Some),
                Err(e) => Err(e),
            }
        } else {
            service.provider.find(pay.id).await
        };
        let charge = match answer {
            Ok(Some(charge)) => charge,
            Ok(None) => crate::provider::Charge {
                id: String::new(),
                key: pay.id,
                outcome: Outcome::Failed {
                    code: "not_charged".into(),
                    message: "The payment was not made.".into(),
                },
            },
            Err(ProviderError::Rejected(reason)) => crate::provider::Charge {
                id: String::new(),
                key: pay.id,
                outcome: Outcome::Failed {
                    code: "invalid_request".into(),
                    message: reason,
                },
            },
            Err(ProviderError::Unavailable(reason)) => {
                tracing::warn!(payment = %pay.id, %reason, "reconciliation: provider unavailable");
                continue;
            }
        };
        service.settle(&charge).await?;
        resolved += 1;
    }
    Ok(resolved)
}

/// INCOMPLETE subscriptions whose first payment failed a day ago and was never retried end (Stripe's
/// `incomplete_expired`); one whose payment is still pending is the reconciliation's first.
pub async fn expire(service: &Service) -> Result<usize> {
    let now = service.clock.now().await?;
    let stale = subscription::Entity::find()
        .filter(subscription::Column::Status.eq(Status::Incomplete.as_str()))
        .filter(
            subscription::Column::CreatedAt.lte(now - chrono::Duration::hours(INCOMPLETE_HOURS)),
        )
        .limit(BATCH)
        .all(&service.db)
        .await?;
    let mut expired = 0;
    for sub in stale {
        let txn = parley_kit::store::begin_write(&service.db).await?;
        let pending = payment::Entity::find()
            .filter(payment::Column::SubscriptionId.eq(sub.id))
            .filter(payment::Column::Status.eq("PENDING"))
            .one(&txn)
            .await?;
        if pending.is_none() {
            service
                .cancel_in(&txn, sub, now, "incomplete expired")
                .await?;
            txn.commit().await?;
            expired += 1;
        }
    }
    Ok(expired)
}
