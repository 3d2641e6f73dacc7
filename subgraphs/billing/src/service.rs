//! The money mutations and the one transition every payment outcome goes through.
//!
//! A payment is made in three steps: (1) one transaction writes what is owed — the subscription or change,
//! an OPEN invoice and a PENDING payment whose id is the provider's idempotency key; (2) the provider is
//! asked to charge; (3) [`Service::settle`] applies the outcome in one transaction with its events. Step 3
//! is reached from the mutation, from the provider's webhook and from the reconciliation, in any order and
//! any number of times: it acts only on a PENDING payment, so the second arrival changes nothing. A crash
//! between (2) and (3) leaves a PENDING payment the reconciliation resolves by asking the provider with the
//! same key — never a second charge, never an entitlement without a payment.
//!
//! Compensation: a payment that succeeds for something that can no longer happen (its subscription was
//! canceled or superseded meanwhile, its invoice voided) is refunded — recorded as REFUND_PENDING in the
//! settling transaction, then refunded at the provider under its own key, retried by the reconciliation
//! until the provider confirms.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use parley_kit::events::contracts::{
    BillingSubscriptionCanceled, BillingSubscriptionChanged, BillingSubscriptionStarted,
    BillingSubscriptionState, PaymentFailed, PaymentOutcome, PaymentRefunded, PaymentSucceeded,
};
use parley_kit::events::{append, Events};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, Set,
};
use uuid::Uuid;

use crate::clock::Clock;
use crate::error::{conflict, invalid, BillingError, Result};
use crate::idempotency::{self, Keys};
use crate::ledger;
use crate::lifecycle::{self, Happening, Status, Step};
use crate::money;
use crate::plans;
use crate::provider::{Charge, ChargeRequest, Outcome, Provider, ProviderError};
use crate::settings::BillingSettings;
use crate::store::{account, invoice, payment, plan, subscription};

/// Invoice reasons (Stripe's `billing_reason`).
pub const CREATE: &str = "SUBSCRIPTION_CREATE";
pub const CYCLE: &str = "SUBSCRIPTION_CYCLE";
pub const UPDATE: &str = "SUBSCRIPTION_UPDATE";

pub struct Service {
    pub db: DatabaseConnection,
    pub events: Events,
    pub provider: Arc<dyn Provider>,
    pub clock: Clock,
    pub settings: Arc<BillingSettings>,
    pub keys: Keys,
}

/// Payment method ids: `pm_` and letters, digits or `_` (Stripe's form), at most 255 characters.
fn check_payment_method(id: &str) -> Result<()> {
    let ok = id.len() <= 255
        && id.starts_with("pm_")
        && id.len() > 3
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid("paymentMethodId: not a payment method id (pm_…)"))
    }
}

impl Service {
    // ---- the mutations -------------------------------------------------------------------------

    /// Starts a subscription to `plan_id` paid with `payment_method`: INCOMPLETE until the first invoice
    /// is paid, then ACTIVE. A user with an ACTIVE or PAST_DUE subscription gets `CONFLICT`.
    pub async fn subscribe(
        &self,
        user: Uuid,
        plan_id: &str,
        payment_method: &str,
        key: &str,
    ) -> Result<Uuid> {
        idempotency::check_key(key)?;
        check_payment_method(payment_method)?;
        if self.provider.name() == "local"
            && crate::provider::local::outcome_of(payment_method, false).is_none()
        {
            return Err(invalid(format!(
                "paymentMethodId: no such payment method {payment_method:?}"
            )));
        }
        let plan = plans::purchasable(&self.db, plan_id).await?;
        let fingerprint = idempotency::fingerprint("subscribe", &[plan_id, payment_method]);
        idempotency::once(
            &self.db,
            &self.keys,
            user,
            key,
            "subscribe",
            fingerprint,
            || self.start(user, plan, payment_method),
            || self.current_id(user),
        )
        .await
    }

    async fn start(&self, user: Uuid, plan: plan::Model, payment_method: &str) -> Result<Uuid> {
        let now = self.clock.now().await?;
        let txn = parley_kit::store::begin_write(&self.db).await?;
        let account = lock_account(&txn, user, now).await?;
        if let Some(current) = current_of(&txn, &account).await? {
            let status = status_of(&current);
            if status.is_live() {
                return Err(conflict(
                    "already subscribed: use changePlan to change plans",
                ));
            }
            if status == Status::Incomplete {
                // A payment still in flight (or of unknown outcome) is awaited, never raced: a second
                // charge would only have to be refunded.
                let pending = payment::Entity::find()
                    .filter(payment::Column::SubscriptionId.eq(current.id))
                    .filter(payment::Column::Status.eq("PENDING"))
                    .one(&txn)
                    .await?;
                if pending.is_some() {
                    return Err(conflict(
                        "a payment for your subscription is still being processed",
                    ));
                }
                // A declined attempt is superseded by the new one.
                self.cancel_in(&txn, current, now, "superseded").await?;
            }
        }
        let end = plans::interval(&plan).period_end(now);
        let sub = subscription::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user),
            plan_id: Set(plan.id.clone()),
            status: Set(Status::Incomplete.as_str().into()),
            payment_method: Set(payment_method.to_string()),
            current_period_start: Set(now),
            current_period_end: Set(end),
            cancel_at_period_end: Set(false),
            pending_plan_id: Set(None),
            failure_reason: Set(None),
            retries: Set(0),
            next_retry_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        account::Entity::update_many()
            .col_expr(account::Column::SubscriptionId, Expr::value(sub.id))
            .filter(account::Column::UserId.eq(user))
            .exec(&txn)
            .await?;
        let pay = owe(&txn, &sub, &plan, CREATE, plan.price_cents, now, end, now).await?;
        txn.commit().await?;
        self.collect(pay, false).await?;
        Ok(sub.id)
    }

    /// Changes plan: an upgrade is charged now, prorated over what is left of the period; a downgrade
    /// takes effect at the period's end (choosing the current plan again undoes a pending downgrade).
    pub async fn change_plan(&self, user: Uuid, plan_id: &str, key: &str) -> Result<Uuid> {
        idempotency::check_key(key)?;
        let target = plans::purchasable(&self.db, plan_id).await?;
        let fingerprint = idempotency::fingerprint("changePlan", &[plan_id]);
        idempotency::once(
            &self.db,
            &self.keys,
            user,
            key,
            "changePlan",
            fingerprint,
            || self.change(user, target),
            || self.current_id(user),
        )
        .await
    }

    async fn change(&self, user: Uuid, target: plan::Model) -> Result<Uuid> {
        let now = self.clock.now().await?;
        let txn = parley_kit::store::begin_write(&self.db).await?;
        let account = lock_account(&txn, user, now).await?;
        let sub = match current_of(&txn, &account).await? {
            Some(s) if status_of(&s) == Status::Active => s,
            Some(s) if status_of(&s) == Status::PastDue => {
                return Err(conflict("the subscription is past due: pay it first"))
            }
            _ => return Err(conflict("not subscribed: use subscribe")),
        };
        let current = plans::get(&txn, &sub.plan_id)
            .await?
            .ok_or_else(|| BillingError::Store("subscription's plan missing".into()))?;
        let id = sub.id;
        if target.id == current.id || !plans::is_upgrade(&current, &target) {
            // The same plan (undoing a pending downgrade) or a downgrade at the period's end.
            let pending = (target.id != current.id).then(|| target.id.clone());
            let mut active: subscription::ActiveModel = sub.into();
            active.pending_plan_id = Set(pending);
            active.updated_at = Set(now);
            active.update(&txn).await?;
            txn.commit().await?;
            return Ok(id);
        }
        // An upgrade. Same interval: the rest of this period at the difference. Longer interval: a new
        // period from now, less the unused part of the old one.
        let period = (sub.current_period_end - sub.current_period_start).num_seconds();
        let remaining = (sub.current_period_end - now).num_seconds();
        let (start, end, amount) = if target.interval == current.interval {
            let charge =
                money::upgrade_charge(current.price_cents, target.price_cents, remaining, period);
            (now, sub.current_period_end, charge)
        } else {
            let credit = money::prorate(current.price_cents, remaining, period);
            let end = plans::interval(&target).period_end(now);
            (now, end, target.price_cents - credit)
        };
        let pay = owe(&txn, &sub, &target, UPDATE, amount.max(0), start, end, now).await?;
        if amount < 0 {
            ledger::credit(&txn, &sub, &target, pay.invoice_id, -amount, now).await?;
        }
        txn.commit().await?;
        self.collect(pay, true).await?;
        Ok(id)
    }

    /// Cancels at the period's end (the plan stays until then; `resumeSubscription` undoes it) or now.
    pub async fn cancel(&self, user: Uuid, at_period_end: bool, key: &str) -> Result<Uuid> {
        idempotency::check_key(key)?;
        let flag = if at_period_end { "end" } else { "now" };
        let fingerprint = idempotency::fingerprint("cancelSubscription", &[flag]);
        idempotency::once(
            &self.db,
            &self.keys,
            user,
            key,
            "cancelSubscription",
            fingerprint,
            || async move {
                let now = self.clock.now().await?;
                let txn = parley_kit::store::begin_write(&self.db).await?;
                let account = lock_account(&txn, user, now).await?;
                let sub = match current_of(&txn, &account).await? {
                    Some(s) if status_of(&s) != Status::Canceled => s,
                    _ => return Err(conflict("not subscribed")),
                };
                let id = sub.id;
                if at_period_end && status_of(&sub) == Status::Active {
                    let mut active: subscription::ActiveModel = sub.into();
                    active.cancel_at_period_end = Set(true);
                    active.pending_plan_id = Set(None);
                    active.updated_at = Set(now);
                    active.update(&txn).await?;
                } else {
                    self.cancel_in(&txn, sub, now, "canceled").await?;
                }
                txn.commit().await?;
                self.events.wake();
                Ok(id)
            },
            || self.current_id(user),
        )
        .await
    }

    /// Undoes a cancellation at period end.
    pub async fn resume(&self, user: Uuid, key: &str) -> Result<Uuid> {
        idempotency::check_key(key)?;
        let fingerprint = idempotency::fingerprint("resumeSubscription", &[]);
        idempotency::once(
            &self.db,
            &self.keys,
            user,
            key,
            "resumeSubscription",
            fingerprint,
            || async move {
                let now = self.clock.now().await?;
                let txn = parley_kit::store::begin_write(&self.db).await?;
                let account = lock_account(&txn, user, now).await?;
                let sub = match current_of(&txn, &account).await? {
                    Some(s) if status_of(&s) == Status::Active && s.cancel_at_period_end => s,
                    _ => return Err(conflict("no subscription set to cancel at period end")),
                };
                let id = sub.id;
                let mut active: subscription::ActiveModel = sub.into();
                active.cancel_at_period_end = Set(false);
                active.updated_at = Set(now);
                active.update(&txn).await?;
                txn.commit().await?;
                Ok(id)
            },
            || self.current_id(user),
        )
        .await
    }

    /// The user's current subscription id (the answer to a key whose first call never finished).
    async fn current_id(&self, user: Uuid) -> Result<Uuid> {
        let account = account::Entity::find_by_id(user).one(&self.db).await?;
        account
            .and_then(|a| a.subscription_id)
            .ok_or_else(|| conflict("not subscribed"))
    }

    // ---- payments ------------------------------------------------------------------------------

    /// Asks the provider to charge a PENDING payment and settles the answer. An unreachable provider
    /// leaves it PENDING for the reconciliation; a refused request fails it.
    pub async fn collect(&self, pay: payment::Model, off_session: bool) -> Result<()> {
        let charged = match self.request(&pay, off_session).await {
            Ok(request) => self.provider.charge(&request).await,
            Err(e) => Err(e),
        };
        if self.settings.fault.as_deref() == Some("hang_after_charge") {
            // Fault injection: as if the process died here, after the charge and before its record.
            std::future::pending::<()>().await;
        }
        match charged {
            Ok(charge) => self.settle(&charge).await,
            Err(ProviderError::Unavailable(reason)) => {
                tracing::warn!(payment = %pay.id, %reason, "payment outcome unknown; left to the reconciliation");
                Ok(())
            }
            Err(ProviderError::Rejected(reason)) => {
                self.settle(&Charge {
                    id: String::new(),
                    key: pay.id,
                    outcome: Outcome::Failed {
                        code: "invalid_request".into(),
                        message: reason.clone(),
                    },
                })
                .await?;
                Err(invalid(format!("paymentMethodId: {reason}")))
            }
        }
    }

    /// The charge request for `pay`, with the user's customer at the provider (made on first use and kept
    /// on the account).
    pub async fn request(
        &self,
        pay: &payment::Model,
        off_session: bool,
    ) -> std::result::Result<ChargeRequest, ProviderError> {
        let stored = |e: sea_orm::DbErr| ProviderError::Unavailable(e.to_string());
        let account = account::Entity::find_by_id(pay.user_id)
            .one(&self.db)
            .await
            .map_err(stored)?;
        let customer = match account.and_then(|a| a.provider_customer) {
            Some(customer) => Some(customer),
            None => match self.provider.customer(pay.user_id).await? {
                Some(made) => {
                    // The first one recorded wins; the provider made it under a key per user, so a race
                    // makes one customer, not two.
                    account::Entity::update_many()
                        .col_expr(account::Column::ProviderCustomer, Expr::value(made.clone()))
                        .filter(account::Column::UserId.eq(pay.user_id))
                        .filter(account::Column::ProviderCustomer.is_null())
                        .exec(&self.db)
                        .await
                        .map_err(stored)?;
                    Some(made)
                }
                None => None,
            },
        };
        Ok(ChargeRequest {
            key: pay.id,
            user_id: pay.user_id,
            customer,
            amount_cents: pay.amount_cents,
            currency: pay.currency.clone(),
            payment_method: pay.payment_method.clone(),
            off_session,
        })
    }

    /// Applies a charge's outcome to its payment, invoice and subscription, with their events, in one
    /// transaction. Only a PENDING payment moves; anything else was settled already and nothing changes
    /// (except a success arriving for a payment concluded FAILED, which is refunded).
    pub async fn settle(&self, charge: &Charge) -> Result<()> {
        let now = self.clock.now().await?;
        let txn = parley_kit::store::begin_write(&self.db).await?;
        let Some(pay) = payment::Entity::find_by_id(charge.key).one(&txn).await? else {
            tracing::info!(key = %charge.key, "a charge for no payment of ours: ignored");
            return Ok(());
        };
        // Claim the payment: only one settler moves it out of PENDING.
        let next = match &charge.outcome {
            Outcome::Succeeded => "SUCCEEDED",
            _ => "FAILED",
        };
        let failure = charge.outcome.failure();
        let moved = payment::Entity::update_many()
            .col_expr(payment::Column::Status, Expr::value(next))
            .col_expr(
                payment::Column::ProviderRef,
                Expr::value(Some(charge.id.clone()).filter(|id| !id.is_empty())),
            )
            .col_expr(
                payment::Column::FailureCode,
                Expr::value(failure.as_ref().map(|f| f.0.clone())),
            )
            .col_expr(
                payment::Column::FailureMessage,
                Expr::value(failure.as_ref().map(|f| f.1.clone())),
            )
            .col_expr(payment::Column::ResolvedAt, Expr::value(Some(now)))
            .filter(payment::Column::Id.eq(pay.id))
            .filter(payment::Column::Status.eq("PENDING"))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if !moved {
            if pay.status == "FAILED" && charge.outcome == Outcome::Succeeded {
                // Concluded failed (the provider had no record), yet it was charged: give it back.
                self.refund_in(&txn, &pay, Some(&charge.id), now).await?;
                txn.commit().await?;
                self.refund_pending().await;
            }
            return Ok(());
        }
        let inv = invoice::Entity::find_by_id(pay.invoice_id)
            .one(&txn)
            .await?
            .ok_or_else(|| BillingError::Store("payment's invoice missing".into()))?;
        let sub = lock_subscription(&txn, pay.subscription_id)
            .await?
            .ok_or_else(|| BillingError::Store("payment's subscription missing".into()))?;
        let target = plans::get(&txn, &inv.plan_id)
            .await?
            .ok_or_else(|| BillingError::Store("invoice's plan missing".into()))?;
        let outcome = PaymentOutcome {
            payment_id: pay.id,
            user_id: pay.user_id,
            subscription_id: sub.id,
            invoice_id: inv.id,
            amount_cents: pay.amount_cents,
            currency: pay.currency.clone(),
            failure_code: failure.as_ref().map(|f| f.0.clone()),
            failure_message: failure.as_ref().map(|f| f.1.clone()),
        };
        let mut refund = false;
        if charge.outcome == Outcome::Succeeded {
            ledger::charge(&txn, &pay, &target.code, now).await?;
            append(&txn, pay.user_id, &PaymentSucceeded(outcome)).await?;
            let step = lifecycle::next(status_of(&sub), Happening::Paid);
            if inv.status != "OPEN" || step == Step::Refused {
                // Compensation: nothing to pay for any more.
                refund = true;
                self.refund_in(&txn, &pay, Some(&charge.id), now).await?;
            } else {
                finalize(&txn, &inv, "PAID", Some(now)).await?;
                self.paid(&txn, sub, &inv, &target, step, now).await?;
            }
        } else {
            append(&txn, pay.user_id, &PaymentFailed(outcome)).await?;
            let message = failure.map(|f| f.1);
            self.failed(&txn, sub, &inv, message, now).await?;
        }
        txn.commit().await?;
        self.events.wake();
        if refund {
            self.refund_pending().await;
        }
        Ok(())
    }

    /// A paid invoice moves its subscription: started, renewed (a new period), back from PAST_DUE, or
    /// changed to the upgraded plan.
    async fn paid(
        &self,
        txn: &DatabaseTransaction,
        sub: subscription::Model,
        inv: &invoice::Model,
        plan: &plan::Model,
        step: Step,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let was = status_of(&sub);
        let mut active: subscription::ActiveModel = sub.clone().into();
        active.failure_reason = Set(None);
        active.retries = Set(0);
        active.next_retry_at = Set(None);
        active.updated_at = Set(now);
        if let Step::To(status) = step {
            active.status = Set(status.as_str().into());
        }
        if inv.reason == CYCLE || inv.reason == UPDATE {
            active.plan_id = Set(plan.id.clone());
            active.current_period_end = Set(inv.period_end);
            if inv.reason == CYCLE || inv.period_end != sub.current_period_end {
                active.current_period_start = Set(inv.period_start);
            }
        }
        let sub = active.update(txn).await?;
        let state = state_of(&sub, plan);
        if was == Status::Incomplete && matches!(step, Step::To(_)) {
            append(txn, sub.user_id, &BillingSubscriptionStarted(state)).await?;
        } else {
            // Back from PAST_DUE, renewed (a new period, perhaps a downgrade taking effect), upgraded.
            append(txn, sub.user_id, &BillingSubscriptionChanged(state)).await?;
        }
        Ok(())
    }

    /// A failed payment: the first invoice stays open (the subscription INCOMPLETE); a renewal puts the
    /// subscription PAST_DUE with the next retry scheduled, or cancels it after the last; a failed upgrade
    /// voids its invoice and leaves the plan as it was.
    async fn failed(
        &self,
        txn: &DatabaseTransaction,
        sub: subscription::Model,
        inv: &invoice::Model,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if inv.status != "OPEN" {
            // Its invoice was settled or voided meanwhile: nothing more to move.
            return Ok(());
        }
        let was = status_of(&sub);
        let mut active: subscription::ActiveModel = sub.clone().into();
        active.failure_reason = Set(reason);
        active.updated_at = Set(now);
        match inv.reason.as_str() {
            CYCLE => match self.settings.retry_hours.get(sub.retries.max(0) as usize) {
                Some(hours) => {
                    active.status = Set(Status::PastDue.as_str().into());
                    active.retries = Set(sub.retries + 1);
                    active.next_retry_at =
                        Set(Some(inv.period_start + chrono::Duration::hours(*hours)));
                    let sub = active.update(txn).await?;
                    if was != Status::PastDue {
                        let plan = plans::get(txn, &sub.plan_id).await?.ok_or_else(|| {
                            BillingError::Store("subscription's plan missing".into())
                        })?;
                        let state = state_of(&sub, &plan);
                        append(txn, sub.user_id, &BillingSubscriptionChanged(state)).await?;
                    }
                }
                None => {
                    // Dunning exhausted: the invoice is uncollectible and the subscription ends.
                    finalize(txn, inv, "UNCOLLECTIBLE", None).await?;
                    let sub = active.update(txn).await?;
                    self.cancel_in(txn, sub, now, "payment failed").await?;
                }
            },
            UPDATE => {
                finalize(txn, inv, "VOID", None).await?;
                active.update(txn).await?;
            }
            _ => {
                active.update(txn).await?;
            }
        }
        Ok(())
    }

    /// Ends `sub` now (in the caller's transaction): its open invoices are voided, its entitlements end.
    pub async fn cancel_in(
        &self,
        txn: &DatabaseTransaction,
        sub: subscription::Model,
        now: DateTime<Utc>,
        why: &str,
    ) -> Result<()> {
        if lifecycle::next(status_of(&sub), Happening::Canceled) == Step::Unchanged {
            return Ok(());
        }
        invoice::Entity::update_many()
            .col_expr(invoice::Column::Status, Expr::value("VOID"))
            .filter(invoice::Column::SubscriptionId.eq(sub.id))
            .filter(invoice::Column::Status.eq("OPEN"))
            .exec(txn)
            .await?;
        let was = status_of(&sub);
        let mut active: subscription::ActiveModel = sub.into();
        active.status = Set(Status::Canceled.as_str().into());
        active.cancel_at_period_end = Set(false);
        active.pending_plan_id = Set(None);
        active.next_retry_at = Set(None);
        active.updated_at = Set(now);
        let sub = active.update(txn).await?;
        tracing::info!(subscription = %sub.id, why, "subscription canceled");
        if was != Status::Incomplete {
            let plan = plans::get(txn, &sub.plan_id)
                .await?
                .ok_or_else(|| BillingError::Store("subscription's plan missing".into()))?;
            append(
                txn,
                sub.user_id,
                &BillingSubscriptionCanceled(state_of(&sub, &plan)),
            )
            .await?;
        }
        Ok(())
    }

    /// Marks a succeeded payment for refund (in the caller's transaction); [`Self::refund_pending`] makes
    /// the refund at the provider.
    async fn refund_in(
        &self,
        txn: &DatabaseTransaction,
        pay: &payment::Model,
        provider_ref: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        payment::Entity::update_many()
            .col_expr(payment::Column::Status, Expr::value("REFUND_PENDING"))
            .col_expr(
                payment::Column::ProviderRef,
                Expr::value(
                    provider_ref
                        .map(str::to_string)
                        .or(pay.provider_ref.clone()),
                ),
            )
            .col_expr(payment::Column::ResolvedAt, Expr::value(Some(now)))
            .filter(payment::Column::Id.eq(pay.id))
            .exec(txn)
            .await?;
        Ok(())
    }

    /// Refunds every REFUND_PENDING payment at the provider (key `refund-<payment id>`, so a retry never
    /// refunds twice) and records each in the ledger.
    pub async fn refund_pending(&self) -> usize {
        let pending = match payment::Entity::find()
            .filter(payment::Column::Status.eq("REFUND_PENDING"))
            .all(&self.db)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "listing refunds failed");
                return 0;
            }
        };
        let mut done = 0;
        for pay in pending {
            let charge_id = pay.provider_ref.clone().unwrap_or_default();
            let key = format!("refund-{}", pay.id);
            if let Err(e) = self
                .provider
                .refund(&charge_id, pay.amount_cents, &key)
                .await
            {
                tracing::warn!(payment = %pay.id, error = %e, "refund failed; retried later");
                continue;
            }
            match self.refunded(&pay).await {
                Ok(()) => done += 1,
                Err(e) => {
                    tracing::warn!(payment = %pay.id, error = %e, "recording a refund failed")
                }
            }
        }
        done
    }

    async fn refunded(&self, pay: &payment::Model) -> Result<()> {
        let now = self.clock.now().await?;
        let txn = parley_kit::store::begin_write(&self.db).await?;
        let moved = payment::Entity::update_many()
            .col_expr(payment::Column::Status, Expr::value("REFUNDED"))
            .filter(payment::Column::Id.eq(pay.id))
            .filter(payment::Column::Status.eq("REFUND_PENDING"))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if moved {
            let code = match invoice::Entity::find_by_id(pay.invoice_id)
                .one(&txn)
                .await?
            {
                Some(inv) => plans::get(&txn, &inv.plan_id)
                    .await?
                    .map(|p| p.code)
                    .unwrap_or_default(),
                None => String::new(),
            };
            ledger::refund(&txn, pay, &code, now).await?;
            let outcome = PaymentOutcome {
                payment_id: pay.id,
                user_id: pay.user_id,
                subscription_id: pay.subscription_id,
                invoice_id: pay.invoice_id,
                amount_cents: pay.amount_cents,
                currency: pay.currency.clone(),
                failure_code: None,
                failure_message: None,
            };
            append(&txn, pay.user_id, &PaymentRefunded(outcome)).await?;
        }
        txn.commit().await?;
        self.events.wake();
        Ok(())
    }
}

// ---- helpers shared by the mutations, renewals and the reconciliation ------------------------------

pub fn status_of(sub: &subscription::Model) -> Status {
    Status::parse(&sub.status).unwrap_or(Status::Canceled)
}

/// What the enforcing domains learn of a subscription.
pub fn state_of(sub: &subscription::Model, plan: &plan::Model) -> BillingSubscriptionState {
    BillingSubscriptionState {
        subscription_id: sub.id,
        user_id: sub.user_id,
        plan_code: plan.code.clone(),
        plan_id: plan.id.clone(),
        status: sub.status.clone(),
        limits: plans::limits(plan),
        current_period_end: Some(sub.current_period_end),
    }
}

/// Takes the user's account row for the rest of the transaction (made on first use): two calls for one
/// user run one after the other from here.
async fn lock_account(
    txn: &DatabaseTransaction,
    user: Uuid,
    now: DateTime<Utc>,
) -> Result<account::Model> {
    account::Entity::insert(account::ActiveModel {
        user_id: Set(user),
        subscription_id: Set(None),
        provider_customer: Set(None),
        updated_at: Set(now),
    })
    .on_conflict_do_nothing()
    .exec_without_returning(txn)
    .await?;
    account::Entity::update_many()
        .col_expr(account::Column::UpdatedAt, Expr::value(now))
        .filter(account::Column::UserId.eq(user))
        .exec(txn)
        .await?;
    account::Entity::find_by_id(user)
        .one(txn)
        .await?
        .ok_or_else(|| BillingError::Store("billing account missing".into()))
}

async fn current_of(
    txn: &DatabaseTransaction,
    account: &account::Model,
) -> Result<Option<subscription::Model>> {
    match account.subscription_id {
        Some(id) => lock_subscription(txn, id).await,
        None => Ok(None),
    }
}

/// Reads subscription `id` holding its row for the rest of the transaction (a no-op UPDATE first: on
/// PostgreSQL a plain read could be overtaken by a concurrent `settle` between it and this transaction's
/// write; SQLite's writers are serialized anyway).
async fn lock_subscription<C: ConnectionTrait>(
    txn: &C,
    id: Uuid,
) -> Result<Option<subscription::Model>> {
    subscription::Entity::update_many()
        .col_expr(
            subscription::Column::UpdatedAt,
            Expr::col(subscription::Column::UpdatedAt),
        )
        .filter(subscription::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(subscription::Entity::find_by_id(id).one(txn).await?)
}

/// Writes an OPEN invoice and its PENDING payment.
#[allow(clippy::too_many_arguments)]
pub async fn owe(
    txn: &DatabaseTransaction,
    sub: &subscription::Model,
    plan: &plan::Model,
    reason: &str,
    amount: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<payment::Model> {
    let inv = invoice::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(sub.user_id),
        subscription_id: Set(sub.id),
        plan_id: Set(plan.id.clone()),
        reason: Set(reason.into()),
        amount_cents: Set(amount),
        currency: Set(plan.currency.clone()),
        status: Set("OPEN".into()),
        period_start: Set(start),
        period_end: Set(end),
        created_at: Set(now),
        paid_at: Set(None),
    }
    .insert(txn)
    .await?;
    Ok(pay_for(txn, &inv, &sub.payment_method, now).await?)
}

/// A PENDING payment for an open invoice.
pub async fn pay_for(
    txn: &DatabaseTransaction,
    inv: &invoice::Model,
    payment_method: &str,
    now: DateTime<Utc>,
) -> std::result::Result<payment::Model, sea_orm::DbErr> {
    payment::ActiveModel {
        id: Set(Uuid::now_v7()),
        invoice_id: Set(inv.id),
        user_id: Set(inv.user_id),
        subscription_id: Set(inv.subscription_id),
        amount_cents: Set(inv.amount_cents),
        currency: Set(inv.currency.clone()),
        payment_method: Set(payment_method.to_string()),
        status: Set("PENDING".into()),
        provider_ref: Set(None),
        failure_code: Set(None),
        failure_message: Set(None),
        created_at: Set(now),
        resolved_at: Set(None),
    }
    .insert(txn)
    .await
}

/// Moves an OPEN invoice to a final status (only an OPEN one: a final invoice never changes).
async fn finalize(
    txn: &DatabaseTransaction,
    inv: &invoice::Model,
    status: &str,
    paid_at: Option<DateTime<Utc>>,
) -> Result<()> {
    invoice::Entity::update_many()
        .col_expr(invoice::Column::Status, Expr::value(status))
        .col_expr(invoice::Column::PaidAt, Expr::value(paid_at))
        .filter(invoice::Column::Id.eq(inv.id))
        .filter(invoice::Column::Status.eq("OPEN"))
        .exec(txn)
        .await?;
    Ok(())
}
