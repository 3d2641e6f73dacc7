//! The GraphQL types billing owns (`Plan`, `BillingSubscription`, `Invoice`, `Entitlement`, the admin
//! report) and its fields on `User`, which only the user and admins may read.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::connection::Connection;
use async_graphql::dataloader::Loader;
use async_graphql::{Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use parley_kit::auth::require_identity;
use parley_kit::error::coded;
use parley_kit::ids::to_id;
use parley_kit::pagination::{connection, keyset_desc, sort_key, Page};
use parley_kit::{ApiResult, ErrorCode, ResultExt, Role};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::error::BillingError;
use crate::lifecycle::Status;
use crate::plans::{self, Interval};
use crate::service::status_of;
use crate::store::{account, invoice, plan, subscription};

fn db<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a DatabaseConnection> {
    ctx.data::<DatabaseConnection>()
}

/// An amount in minor units as a GraphQL Int (amounts beyond its range are refused as plans are made).
fn cents(amount: i64) -> i32 {
    i32::try_from(amount).unwrap_or(i32::MAX)
}

/// A price of a plan: code and interval (`pro-month`), in minor units of its currency.
pub struct Plan(pub plan::Model);

#[Object]
impl Plan {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// `FREE`, `PLUS` or `PRO`.
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn price_cents(&self) -> i32 {
        cents(self.0.price_cents)
    }
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    async fn interval(&self) -> Interval {
        plans::interval(&self.0)
    }
    async fn entitlements(&self) -> Vec<Entitlement> {
        Entitlement::list(&self.0)
    }
}

/// Something a plan lets you do: `media.max_upload_mb`, `chat.max_group_members` (with a limit) or
/// `assistant` (no limit: on).
#[derive(SimpleObject)]
pub struct Entitlement {
    pub key: String,
    pub limit: Option<i32>,
}

impl Entitlement {
    pub fn list(p: &plan::Model) -> Vec<Entitlement> {
        plans::limits(p)
            .entries()
            .into_iter()
            .map(|(key, limit)| Entitlement {
                key: key.into(),
                limit: limit.map(cents),
            })
            .collect()
    }
}

pub struct BillingSubscription(pub subscription::Model);

#[Object]
impl BillingSubscription {
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    async fn plan(&self, ctx: &Context<'_>) -> ApiResult<Plan> {
        plan_of(ctx, &self.0.plan_id).await
    }
    async fn status(&self) -> Status {
        status_of(&self.0)
    }
    async fn current_period_start(&self) -> DateTime<Utc> {
        self.0.current_period_start
    }
    async fn current_period_end(&self) -> DateTime<Utc> {
        self.0.current_period_end
    }
    async fn cancel_at_period_end(&self) -> bool {
        self.0.cancel_at_period_end
    }
    /// Why the last payment failed (`Your card was declined.`), while it matters.
    async fn failure_reason(&self) -> Option<&str> {
        self.0.failure_reason.as_deref()
    }
    /// A downgrade that takes effect at the period's end.
    async fn pending_plan(&self, ctx: &Context<'_>) -> ApiResult<Option<Plan>> {
        match &self.0.pending_plan_id {
            Some(id) => Ok(Some(plan_of(ctx, id).await?)),
            None => Ok(None),
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceStatus {
    Open,
    Paid,
    Void,
    Uncollectible,
}

pub struct Invoice(pub invoice::Model);

#[Object]
impl Invoice {
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    async fn amount_cents(&self) -> i32 {
        cents(self.0.amount_cents)
    }
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    async fn status(&self) -> InvoiceStatus {
        match self.0.status.as_str() {
            "PAID" => InvoiceStatus::Paid,
            "VOID" => InvoiceStatus::Void,
            "UNCOLLECTIBLE" => InvoiceStatus::Uncollectible,
            _ => InvoiceStatus::Open,
        }
    }
    /// `SUBSCRIPTION_CREATE`, `SUBSCRIPTION_CYCLE` (a renewal) or `SUBSCRIPTION_UPDATE` (a prorated upgrade).
    async fn reason(&self) -> &str {
        &self.0.reason
    }
    async fn plan(&self, ctx: &Context<'_>) -> ApiResult<Plan> {
        plan_of(ctx, &self.0.plan_id).await
    }
    async fn period_start(&self) -> DateTime<Utc> {
        self.0.period_start
    }
    async fn period_end(&self) -> DateTime<Utc> {
        self.0.period_end
    }
    async fn paid_at(&self) -> Option<DateTime<Utc>> {
        self.0.paid_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A user's billing, for the user and admins: anyone else gets `FORBIDDEN`.
pub struct User {
    pub id: Uuid,
}

impl User {
    fn check(&self, ctx: &Context<'_>) -> ApiResult<()> {
        let me = require_identity(ctx)?;
        if me.user_id == self.id || me.has_role(Role::Admin) {
            Ok(())
        } else {
            Err(coded(
                ErrorCode::Forbidden,
                "billing is visible to its owner only",
            ))
        }
    }

    async fn subscription(&self, ctx: &Context<'_>) -> ApiResult<Option<subscription::Model>> {
        self.check(ctx)?;
        ctx.data::<async_graphql::dataloader::DataLoader<SubscriptionLoader>>()?
            .load_one(self.id)
            .await
            .map_err(|e| parley_kit::error::to_graphql_arc(&e))
    }

    /// The plan in force: the subscription's while it entitles, FREE otherwise.
    async fn plan_model(&self, ctx: &Context<'_>) -> ApiResult<Plan> {
        let id = match self.subscription(ctx).await? {
            Some(s) if status_of(&s).entitles() => s.plan_id,
            _ => plans::FREE_PLAN.to_string(),
        };
        plan_of(ctx, &id).await
    }
}

#[Object]
impl User {
    #[graphql(external)]
    async fn id(&self) -> ID {
        to_id(self.id)
    }

    /// The plan in force (FREE without a paid subscription).
    async fn plan(&self, ctx: &Context<'_>) -> ApiResult<Plan> {
        self.plan_model(ctx).await
    }

    /// The current (or last) subscription; `null` if there never was one.
    async fn billing_subscription(
        &self,
        ctx: &Context<'_>,
    ) -> ApiResult<Option<BillingSubscription>> {
        Ok(self.subscription(ctx).await?.map(BillingSubscription))
    }

    /// Invoices, newest first.
    async fn invoices(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, Invoice>> {
        self.check(ctx)?;
        let page = Page::new(first, after)?;
        let rows = keyset_desc(
            invoice::Entity::find().filter(invoice::Column::UserId.eq(self.id)),
            None,
            invoice::Column::Id,
            page.after.as_ref(),
        )?
        .limit(page.limit())
        .all(db(ctx)?)
        .await
        .map_err(BillingError::from)
        .gql()?;
        Ok(connection(&page, rows, |i| sort_key(None, i.id), Invoice))
    }

    /// What the plan in force lets you do.
    async fn entitlements(&self, ctx: &Context<'_>) -> ApiResult<Vec<Entitlement>> {
        Ok(Entitlement::list(&self.plan_model(ctx).await?.0))
    }
}

/// A plan by id, through the request's loader.
pub async fn plan_of(ctx: &Context<'_>, id: &str) -> ApiResult<Plan> {
    ctx.data::<async_graphql::dataloader::DataLoader<PlanLoader>>()?
        .load_one(id.to_string())
        .await
        .map_err(|e| parley_kit::error::to_graphql_arc(&e))?
        .map(Plan)
        .ok_or_else(|| coded(ErrorCode::Internal, "plan missing"))
}

/// Plans by id, one read per batch.
pub struct PlanLoader(pub DatabaseConnection);

impl Loader<String> for PlanLoader {
    type Value = plan::Model;
    type Error = Arc<BillingError>;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, plan::Model>, Self::Error> {
        let rows = plan::Entity::find()
            .filter(plan::Column::Id.is_in(keys.iter().cloned()))
            .all(&self.0)
            .await
            .map_err(|e| Arc::new(BillingError::from(e)))?;
        Ok(rows.into_iter().map(|p| (p.id.clone(), p)).collect())
    }
}

/// Users' current subscriptions, one read of accounts and one of subscriptions per batch.
pub struct SubscriptionLoader(pub DatabaseConnection);

impl Loader<Uuid> for SubscriptionLoader {
    type Value = subscription::Model;
    type Error = Arc<BillingError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, subscription::Model>, Self::Error> {
        let err = |e: sea_orm::DbErr| Arc::new(BillingError::from(e));
        let ids: Vec<Uuid> = account::Entity::find()
            .filter(account::Column::UserId.is_in(keys.iter().copied()))
            .all(&self.0)
            .await
            .map_err(err)?
            .into_iter()
            .filter_map(|a| a.subscription_id)
            .collect();
        let rows = subscription::Entity::find()
            .filter(subscription::Column::Id.is_in(ids))
            .all(&self.0)
            .await
            .map_err(err)?;
        Ok(rows.into_iter().map(|s| (s.user_id, s)).collect())
    }
}

/// Revenue for one plan code in a report.
#[derive(SimpleObject)]
pub struct PlanRevenue {
    pub plan_code: String,
    pub charged_cents: i64,
    pub refunded_cents: i64,
    pub credited_cents: i64,
    pub net_cents: i64,
    /// Subscriptions to it that entitle now.
    pub active_subscriptions: i64,
    /// Their monthly recurring revenue (a yearly price counts a twelfth).
    pub mrr_cents: i64,
    /// Subscriptions to it canceled within the window.
    pub churned: i64,
}

/// The admin report over `[from, to)`: from the ledger (what moved) and the subscriptions (MRR, churn).
#[derive(SimpleObject)]
pub struct BillingReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub net_revenue_cents: i64,
    pub mrr_cents: i64,
    pub churned: i64,
    pub by_plan: Vec<PlanRevenue>,
}
