//! The billing store's entities (tables in `migration-billing`). Money columns are `*_cents`: integers in
//! the currency's minor unit.

pub mod plan {
    use sea_orm::entity::prelude::*;

    /// A price for a plan code and interval (`plus-month`, `pro-year`, …) and the limits it grants.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_plans")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub code: String,
        pub name: String,
        pub price_cents: i64,
        pub currency: String,
        /// `MONTH` or `YEAR`.
        pub interval: String,
        /// Higher is more: a change to a higher rank (or the same rank billed for longer) is an upgrade.
        pub rank: i32,
        /// [`parley_kit::entitlements::Limits`] as JSON.
        pub entitlements: String,
        /// Retired plans are not offered and cannot be subscribed to.
        pub active: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod account {
    use sea_orm::entity::prelude::*;

    /// One row per user who ever subscribed: the row a subscribe locks, naming the user's current
    /// subscription (so two subscribes with different keys cannot both start one).
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_accounts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        pub subscription_id: Option<Uuid>,
        /// The provider's customer for this user (Stripe's `cus_…`), made at the first charge: a payment
        /// method is saved to it, so renewals can charge it without the user.
        pub provider_customer: Option<String>,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod subscription {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_subscriptions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        pub plan_id: String,
        /// [`crate::lifecycle::Status`] by name.
        pub status: String,
        /// Charged at renewals and dunning retries.
        pub payment_method: String,
        pub current_period_start: DateTimeUtc,
        pub current_period_end: DateTimeUtc,
        pub cancel_at_period_end: bool,
        /// A downgrade waiting for the period's end.
        pub pending_plan_id: Option<String>,
        pub failure_reason: Option<String>,
        /// Dunning retries made for the open renewal invoice.
        pub retries: i32,
        pub next_retry_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod invoice {
    use sea_orm::entity::prelude::*;

    /// What is owed for a period (or a proration). Created OPEN; once PAID, VOID or UNCOLLECTIBLE it is
    /// final and never changes again.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_invoices")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        pub subscription_id: Uuid,
        pub plan_id: String,
        /// `SUBSCRIPTION_CREATE`, `SUBSCRIPTION_CYCLE` or `SUBSCRIPTION_UPDATE` (Stripe's billing reasons).
        pub reason: String,
        pub amount_cents: i64,
        pub currency: String,
        /// `OPEN`, `PAID`, `VOID` or `UNCOLLECTIBLE`.
        pub status: String,
        pub period_start: DateTimeUtc,
        pub period_end: DateTimeUtc,
        pub created_at: DateTimeUtc,
        pub paid_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod payment {
    use sea_orm::entity::prelude::*;

    /// One attempt to collect an invoice. Written PENDING before the provider is called; its id is the
    /// provider's idempotency key, so asking again (a retry, the reconciliation) can never charge twice.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_payments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub invoice_id: Uuid,
        pub user_id: Uuid,
        pub subscription_id: Uuid,
        pub amount_cents: i64,
        pub currency: String,
        pub payment_method: String,
        /// `PENDING`, `SUCCEEDED`, `FAILED` or `REFUNDED`.
        pub status: String,
        /// The provider's charge id once known.
        pub provider_ref: Option<String>,
        pub failure_code: Option<String>,
        pub failure_message: Option<String>,
        pub created_at: DateTimeUtc,
        pub resolved_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod ledger {
    use sea_orm::entity::prelude::*;

    /// Money that moved: a `CHARGE` (positive), a `REFUND` (negative) or a `CREDIT` (negative, owed back
    /// by proration). Rows are inserted, never updated or deleted.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_ledger")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        pub subscription_id: Option<Uuid>,
        pub invoice_id: Option<Uuid>,
        pub payment_id: Option<Uuid>,
        pub kind: String,
        pub amount_cents: i64,
        pub currency: String,
        pub plan_code: String,
        pub occurred_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod idempotency {
    use sea_orm::entity::prelude::*;

    /// A money mutation's idempotency key: claimed (no response yet) while the first call runs, then its
    /// answer. Kept 24 hours, as Stripe keeps its keys.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_idempotency")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub operation: String,
        /// SHA-256 of the operation and its arguments.
        pub fingerprint: String,
        /// The first call's answer as JSON (`{"ok": id}` or `{"error": …}`); `None` while it runs.
        pub response: Option<String>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod webhook_event {
    use sea_orm::entity::prelude::*;

    /// A provider event already applied (`<provider>:<event id>`): a replay changes nothing.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_webhook_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub kind: String,
        pub received_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod clock {
    use sea_orm::entity::prelude::*;

    /// One row: how far the test clock has been moved ahead of the wall clock.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_clock")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub offset_secs: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod local_charge {
    use sea_orm::entity::prelude::*;

    /// The local provider's record of a charge, by the idempotency key it was made with.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "local_provider_charges")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub id: String,
        pub payment_method: String,
        pub amount_cents: i64,
        pub currency: String,
        /// `succeeded`, `failed` or `requires_action`.
        pub status: String,
        pub code: Option<String>,
        pub refunded_cents: i64,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
