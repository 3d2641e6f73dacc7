//! The billing subgraph schema: the plan catalogue, the four money mutations (each with an idempotency
//! key), the user's billing on `User` (owner and admins), and the admin `billingReport`.

mod types;

use std::sync::Arc;

use async_graphql::{Context, Object, Schema, ID};
use chrono::{DateTime, Utc};
use parley_kit::auth::{identity, require_identity};
use parley_kit::error::{coded, to_graphql};
use parley_kit::ids::parse_id;
use parley_kit::{ApiResult, ErrorCode, ResultExt, Role};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::error::BillingError;
use crate::ledger;
use crate::lifecycle::Status;
use crate::plans;
use crate::service::Service;
use crate::store::{invoice, subscription};
pub use types::{
    BillingReport, BillingSubscription, Entitlement, Invoice, InvoiceStatus, Plan, PlanLoader,
    PlanRevenue, SubscriptionLoader, User,
};

/// The longest window `billingReport` covers (checked before any row is read).
pub const MAX_REPORT_DAYS: i64 = 3_660;

pub type BillingSchema = Schema<Query, Mutation, async_graphql::EmptySubscription>;

pub fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, async_graphql::EmptySubscription>
{
    Schema::build(Query, Mutation, async_graphql::EmptySubscription).enable_federation()
}

pub fn build(service: Arc<Service>) -> BillingSchema {
    let db = service.db.clone();
    builder()
        .data(db.clone())
        .data(parley_kit::server::loader(PlanLoader(db.clone())))
        .data(parley_kit::server::loader(SubscriptionLoader(db)))
        .data(service)
        .finish()
}

fn db<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a DatabaseConnection> {
    ctx.data::<DatabaseConnection>()
}

fn service<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a Arc<Service>> {
    ctx.data::<Arc<Service>>()
}

trait Stored<T> {
    fn stored(self) -> ApiResult<T>;
}

impl<T> Stored<T> for Result<T, sea_orm::DbErr> {
    fn stored(self) -> ApiResult<T> {
        self.map_err(BillingError::from).gql()
    }
}

/// Whether the caller may read `owner`'s billing.
fn may_read(ctx: &Context<'_>, owner: uuid::Uuid) -> bool {
    identity(ctx).is_some_and(|me| me.user_id == owner || me.has_role(Role::Admin))
}

/// The subscription a mutation returns.
async fn answer(ctx: &Context<'_>, id: uuid::Uuid) -> ApiResult<BillingSubscription> {
    subscription::Entity::find_by_id(id)
        .one(db(ctx)?)
        .await
        .stored()?
        .map(BillingSubscription)
        .ok_or_else(|| coded(ErrorCode::Internal, "subscription missing"))
}

pub struct Query;

#[Object]
impl Query {
    /// The plans on offer, cheapest first (FREE is everyone's without subscribing).
    async fn plans(&self, ctx: &Context<'_>) -> ApiResult<Vec<Plan>> {
        Ok(plans::offered(db(ctx)?)
            .await
            .stored()?
            .into_iter()
            .map(Plan)
            .collect())
    }

    /// Revenue (from the ledger), MRR and churn by plan over `[from, to)`; admins only; at most
    /// ten years.
    async fn billing_report(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> ApiResult<BillingReport> {
        let me = require_identity(ctx)?;
        if !me.has_role(Role::Admin) {
            return Err(coded(ErrorCode::Forbidden, "admins only"));
        }
        if to <= from || (to - from).num_days() > MAX_REPORT_DAYS {
            return Err(coded(
                ErrorCode::BadUserInput,
                format!("from/to: a window of at most {MAX_REPORT_DAYS} days, from before to"),
            ));
        }
        let db = db(ctx)?;
        let revenue = ledger::revenue(db, from, to).await.stored()?;
        let subs = subscription::Entity::find()
            .filter(subscription::Column::Status.is_in([
                Status::Active.as_str(),
                Status::PastDue.as_str(),
                Status::Canceled.as_str(),
            ]))
            .all(db)
            .await
            .stored()?;
        let catalogue = plans::offered(db).await.stored()?;
        let mut by_plan: std::collections::BTreeMap<String, PlanRevenue> = Default::default();
        for r in &revenue {
            let row = by_plan
                .entry(r.plan_code.clone())
                .or_insert_with(|| blank(&r.plan_code));
            row.charged_cents += r.charged;
            row.refunded_cents += r.refunded;
            row.credited_cents += r.credited;
            row.net_cents += r.net();
        }
        for sub in subs {
            let Some(plan) = catalogue
                .iter()
                .find(|p| p.id == sub.plan_id)
                .cloned()
                .or(plans::get(db, &sub.plan_id).await.stored()?)
            else {
                continue;
            };
            let row = by_plan
                .entry(plan.code.clone())
                .or_insert_with(|| blank(&plan.code));
            let status = Status::parse(&sub.status).unwrap_or(Status::Canceled);
            if status.entitles() {
                row.active_subscriptions += 1;
                row.mrr_cents += match plans::interval(&plan) {
                    plans::Interval::Month => plan.price_cents,
                    plans::Interval::Year => plan.price_cents / 12,
                };
            } else if sub.updated_at >= from && sub.updated_at < to {
                row.churned += 1;
            }
        }
        let by_plan: Vec<PlanRevenue> = by_plan.into_values().collect();
        Ok(BillingReport {
            from,
            to,
            net_revenue_cents: by_plan.iter().map(|p| p.net_cents).sum(),
            mrr_cents: by_plan.iter().map(|p| p.mrr_cents).sum(),
            churned: by_plan.iter().map(|p| p.churned).sum(),
            by_plan,
        })
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> ApiResult<User> {
        Ok(User { id: parse_id(&id)? })
    }

    #[graphql(entity)]
    async fn find_plan_by_id(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Plan>> {
        if id.len() > 64 {
            return Ok(None);
        }
        Ok(plans::get(db(ctx)?, id.as_str()).await.stored()?.map(Plan))
    }

    /// A subscription, for its owner and admins.
    #[graphql(entity)]
    async fn find_billing_subscription_by_id(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> ApiResult<Option<BillingSubscription>> {
        let Ok(id) = parse_id(&id) else {
            return Ok(None);
        };
        let row = subscription::Entity::find_by_id(id)
            .one(db(ctx)?)
            .await
            .stored()?;
        Ok(row
            .filter(|s| may_read(ctx, s.user_id))
            .map(BillingSubscription))
    }

    /// An invoice, for its owner and admins.
    #[graphql(entity)]
    async fn find_invoice_by_id(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Invoice>> {
        let Ok(id) = parse_id(&id) else {
            return Ok(None);
        };
        let row = invoice::Entity::find_by_id(id)
            .one(db(ctx)?)
            .await
            .stored()?;
        Ok(row.filter(|i| may_read(ctx, i.user_id)).map(Invoice))
    }
}

fn blank(code: &str) -> PlanRevenue {
    PlanRevenue {
        plan_code: code.to_string(),
        charged_cents: 0,
        refunded_cents: 0,
        credited_cents: 0,
        net_cents: 0,
        active_subscriptions: 0,
        mrr_cents: 0,
        churned: 0,
    }
}

/// An admin's edit of a plan: only the fields given change.
#[derive(async_graphql::InputObject)]
pub struct PlanInput {
    pub name: Option<String>,
    pub price_cents: Option<i32>,
    /// Offered (and subscribable) or retired.
    pub active: Option<bool>,
    pub limits: Option<PlanLimitsInput>,
}

/// A plan's limits, all three together.
#[derive(async_graphql::InputObject)]
pub struct PlanLimitsInput {
    pub max_upload_mb: i32,
    pub max_group_members: i32,
    pub assistant: bool,
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Subscribes to a plan, paying with `paymentMethodId`. ACTIVE once paid; INCOMPLETE (with
    /// `failureReason`) if the payment failed or needs action. Already subscribed: `CONFLICT` (use
    /// `changePlan`). The same `idempotencyKey` again returns the first answer; with other arguments it is
    /// a `CONFLICT`.
    async fn subscribe(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        payment_method_id: String,
        idempotency_key: String,
    ) -> ApiResult<BillingSubscription> {
        let me = require_identity(ctx)?.user_id;
        let id = service(ctx)?
            .subscribe(me, plan_id.as_str(), &payment_method_id, &idempotency_key)
            .await
            .map_err(to_graphql)?;
        answer(ctx, id).await
    }

    /// Changes plan: an upgrade now, charged for the rest of the period (prorated); a downgrade at the
    /// period's end.
    async fn change_plan(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        idempotency_key: String,
    ) -> ApiResult<BillingSubscription> {
        let me = require_identity(ctx)?.user_id;
        let id = service(ctx)?
            .change_plan(me, plan_id.as_str(), &idempotency_key)
            .await
            .map_err(to_graphql)?;
        answer(ctx, id).await
    }

    /// Cancels at the period's end (default; the plan stays until then) or now.
    async fn cancel_subscription(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(true)")] at_period_end: Option<bool>,
        idempotency_key: String,
    ) -> ApiResult<BillingSubscription> {
        let me = require_identity(ctx)?.user_id;
        let id = service(ctx)?
            .cancel(me, at_period_end.unwrap_or(true), &idempotency_key)
            .await
            .map_err(to_graphql)?;
        answer(ctx, id).await
    }

    /// Edits a plan (admins): its name, price (from each subscription's next renewal), whether it is offered,
    /// and — for PLUS and PRO — its limits (applied to its subscribers at once).
    async fn update_plan(&self, ctx: &Context<'_>, id: ID, input: PlanInput) -> ApiResult<Plan> {
        let me = require_identity(ctx)?;
        if !me.has_role(Role::Admin) {
            return Err(coded(ErrorCode::Forbidden, "admins only"));
        }
        let change = plans::PlanChange {
            name: input.name,
            price_cents: input.price_cents.map(i64::from),
            active: input.active,
            limits: input.limits.map(|l| parley_kit::entitlements::Limits {
                max_upload_mb: i64::from(l.max_upload_mb),
                max_group_members: i64::from(l.max_group_members),
                assistant: l.assistant,
            }),
        };
        let updated = plans::update(db(ctx)?, id.as_str(), change)
            .await
            .map_err(to_graphql)?;
        service(ctx)?.events.wake();
        Ok(Plan(updated))
    }

    /// Undoes a cancellation at the period's end.
    async fn resume_subscription(
        &self,
        ctx: &Context<'_>,
        idempotency_key: String,
    ) -> ApiResult<BillingSubscription> {
        let me = require_identity(ctx)?.user_id;
        let id = service(ctx)?
            .resume(me, &idempotency_key)
            .await
            .map_err(to_graphql)?;
        answer(ctx, id).await
    }
}
