//! Migrations of the billing subgraph's store: plans (seeded FREE, PLUS and PRO, monthly and yearly), each
//! user's billing account (the one row a subscribe locks), subscriptions, invoices, payment attempts (written
//! before the provider is called, so a crash leaves a PENDING row for the reconciliation), the ledger (insert
//! only), idempotency keys, the provider event ids already applied, the test clock, and the local provider's
//! own record of what it charged (it plays an outside service and must survive billing's restarts).

use parley_kit::entitlements::{self, Limits};
use parley_kit::migration::{index, unique_index};
pub use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateBilling)]
    }
}

#[derive(DeriveIden)]
enum BillingPlans {
    Table,
    Id,
    Code,
    Name,
    PriceCents,
    Currency,
    Interval,
    Rank,
    Entitlements,
    Active,
}

#[derive(DeriveIden)]
enum BillingAccounts {
    Table,
    UserId,
    SubscriptionId,
    ProviderCustomer,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BillingSubscriptions {
    Table,
    Id,
    UserId,
    PlanId,
    Status,
    PaymentMethod,
    CurrentPeriodStart,
    CurrentPeriodEnd,
    CancelAtPeriodEnd,
    PendingPlanId,
    FailureReason,
    Retries,
    NextRetryAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BillingInvoices {
    Table,
    Id,
    UserId,
    SubscriptionId,
    PlanId,
    Reason,
    AmountCents,
    Currency,
    Status,
    PeriodStart,
    PeriodEnd,
    CreatedAt,
    PaidAt,
}

#[derive(DeriveIden)]
enum BillingPayments {
    Table,
    Id,
    InvoiceId,
    UserId,
    SubscriptionId,
    AmountCents,
    Currency,
    PaymentMethod,
    Status,
    ProviderRef,
    FailureCode,
    FailureMessage,
    CreatedAt,
    ResolvedAt,
}

#[derive(DeriveIden)]
enum BillingLedger {
    Table,
    Id,
    UserId,
    SubscriptionId,
    InvoiceId,
    PaymentId,
    Kind,
    AmountCents,
    Currency,
    PlanCode,
    OccurredAt,
}

#[derive(DeriveIden)]
enum BillingIdempotency {
    Table,
    UserId,
    Key,
    Operation,
    Fingerprint,
    Response,
    CreatedAt,
}

#[derive(DeriveIden)]
enum BillingWebhookEvents {
    Table,
    Id,
    Kind,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum BillingClock {
    Table,
    Id,
    OffsetSecs,
}

#[derive(DeriveIden)]
enum LocalProviderCharges {
    Table,
    Key,
    Id,
    PaymentMethod,
    AmountCents,
    Currency,
    Status,
    Code,
    RefundedCents,
    CreatedAt,
}

struct CreateBilling;

impl MigrationName for CreateBilling {
    fn name(&self) -> &str {
        "m0001_create_billing"
    }
}

/// The seeded catalogue: (id, code, name, price in cents, interval, rank, limits).
fn seed() -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    i64,
    &'static str,
    i32,
    Limits,
)> {
    vec![
        ("free", "FREE", "Free", 0, "MONTH", 0, entitlements::FREE),
        (
            "plus-month",
            "PLUS",
            "Plus",
            500,
            "MONTH",
            1,
            entitlements::PLUS,
        ),
        (
            "plus-year",
            "PLUS",
            "Plus, yearly",
            5_000,
            "YEAR",
            1,
            entitlements::PLUS,
        ),
        (
            "pro-month",
            "PRO",
            "Pro",
            1_500,
            "MONTH",
            2,
            entitlements::PRO,
        ),
        (
            "pro-year",
            "PRO",
            "Pro, yearly",
            15_000,
            "YEAR",
            2,
            entitlements::PRO,
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for CreateBilling {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(BillingPlans::Table)
                .col(string(BillingPlans::Id).primary_key())
                .col(string(BillingPlans::Code))
                .col(string(BillingPlans::Name))
                .col(big_integer(BillingPlans::PriceCents))
                .col(string(BillingPlans::Currency))
                .col(string(BillingPlans::Interval))
                .col(integer(BillingPlans::Rank))
                .col(text(BillingPlans::Entitlements))
                .col(boolean(BillingPlans::Active))
                .to_owned(),
        )
        .await?;
        for (id, code, name, price, interval, rank, limits) in seed() {
            m.exec_stmt(
                Query::insert()
                    .into_table(BillingPlans::Table)
                    .columns([
                        BillingPlans::Id,
                        BillingPlans::Code,
                        BillingPlans::Name,
                        BillingPlans::PriceCents,
                        BillingPlans::Currency,
                        BillingPlans::Interval,
                        BillingPlans::Rank,
                        BillingPlans::Entitlements,
                        BillingPlans::Active,
                    ])
                    .values_panic([
                        id.into(),
                        code.into(),
                        name.into(),
                        price.into(),
                        "USD".into(),
                        interval.into(),
                        rank.into(),
                        limits.to_json().into(),
                        true.into(),
                    ])
                    .to_owned(),
            )
            .await?;
        }
        m.create_table(
            Table::create()
                .table(BillingAccounts::Table)
                .col(uuid(BillingAccounts::UserId).primary_key())
                .col(uuid_null(BillingAccounts::SubscriptionId))
                .col(string_null(BillingAccounts::ProviderCustomer))
                .col(timestamp_with_time_zone(BillingAccounts::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(BillingSubscriptions::Table)
                .col(uuid(BillingSubscriptions::Id).primary_key())
                .col(uuid(BillingSubscriptions::UserId))
                .col(string(BillingSubscriptions::PlanId))
                .col(string(BillingSubscriptions::Status))
                .col(string(BillingSubscriptions::PaymentMethod))
                .col(timestamp_with_time_zone(
                    BillingSubscriptions::CurrentPeriodStart,
                ))
                .col(timestamp_with_time_zone(
                    BillingSubscriptions::CurrentPeriodEnd,
                ))
                .col(boolean(BillingSubscriptions::CancelAtPeriodEnd))
                .col(string_null(BillingSubscriptions::PendingPlanId))
                .col(string_null(BillingSubscriptions::FailureReason))
                .col(integer(BillingSubscriptions::Retries))
                .col(timestamp_with_time_zone_null(
                    BillingSubscriptions::NextRetryAt,
                ))
                .col(timestamp_with_time_zone(BillingSubscriptions::CreatedAt))
                .col(timestamp_with_time_zone(BillingSubscriptions::UpdatedAt))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_billing_subscriptions_user",
            BillingSubscriptions::Table,
            vec![BillingSubscriptions::UserId.into_iden()],
        )
        .await?;
        // The scheduler's two questions: whose period ended, whose retry is due.
        index(
            m,
            "idx_billing_subscriptions_period_end",
            BillingSubscriptions::Table,
            vec![
                BillingSubscriptions::Status.into_iden(),
                BillingSubscriptions::CurrentPeriodEnd.into_iden(),
            ],
        )
        .await?;
        index(
            m,
            "idx_billing_subscriptions_retry",
            BillingSubscriptions::Table,
            vec![
                BillingSubscriptions::Status.into_iden(),
                BillingSubscriptions::NextRetryAt.into_iden(),
            ],
        )
        .await?;
        m.create_table(
            Table::create()
                .table(BillingInvoices::Table)
                .col(uuid(BillingInvoices::Id).primary_key())
                .col(uuid(BillingInvoices::UserId))
                .col(uuid(BillingInvoices::SubscriptionId))
                .col(string(BillingInvoices::PlanId))
                .col(string(BillingInvoices::Reason))
                .col(big_integer(BillingInvoices::AmountCents))
                .col(string(BillingInvoices::Currency))
                .col(string(BillingInvoices::Status))
                .col(timestamp_with_time_zone(BillingInvoices::PeriodStart))
                .col(timestamp_with_time_zone(BillingInvoices::PeriodEnd))
                .col(timestamp_with_time_zone(BillingInvoices::CreatedAt))
                .col(timestamp_with_time_zone_null(BillingInvoices::PaidAt))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_billing_invoices_user",
            BillingInvoices::Table,
            vec![
                BillingInvoices::UserId.into_iden(),
                BillingInvoices::Id.into_iden(),
            ],
        )
        .await?;
        m.create_table(
            Table::create()
                .table(BillingPayments::Table)
                .col(uuid(BillingPayments::Id).primary_key())
                .col(uuid(BillingPayments::InvoiceId))
                .col(uuid(BillingPayments::UserId))
                .col(uuid(BillingPayments::SubscriptionId))
                .col(big_integer(BillingPayments::AmountCents))
                .col(string(BillingPayments::Currency))
                .col(string(BillingPayments::PaymentMethod))
                .col(string(BillingPayments::Status))
                .col(string_null(BillingPayments::ProviderRef))
                .col(string_null(BillingPayments::FailureCode))
                .col(string_null(BillingPayments::FailureMessage))
                .col(timestamp_with_time_zone(BillingPayments::CreatedAt))
                .col(timestamp_with_time_zone_null(BillingPayments::ResolvedAt))
                .to_owned(),
        )
        .await?;
        // The reconciliation's question: which payments are still PENDING, oldest first.
        index(
            m,
            "idx_billing_payments_status",
            BillingPayments::Table,
            vec![
                BillingPayments::Status.into_iden(),
                BillingPayments::CreatedAt.into_iden(),
            ],
        )
        .await?;
        m.create_table(
            Table::create()
                .table(BillingLedger::Table)
                .col(uuid(BillingLedger::Id).primary_key())
                .col(uuid(BillingLedger::UserId))
                .col(uuid_null(BillingLedger::SubscriptionId))
                .col(uuid_null(BillingLedger::InvoiceId))
                .col(uuid_null(BillingLedger::PaymentId))
                .col(string(BillingLedger::Kind))
                .col(big_integer(BillingLedger::AmountCents))
                .col(string(BillingLedger::Currency))
                .col(string(BillingLedger::PlanCode))
                .col(timestamp_with_time_zone(BillingLedger::OccurredAt))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_billing_ledger_time",
            BillingLedger::Table,
            vec![BillingLedger::OccurredAt.into_iden()],
        )
        .await?;
        // One charge and one refund per payment at most, whoever records it first.
        unique_index(
            m,
            "idx_billing_ledger_payment_kind",
            BillingLedger::Table,
            vec![
                BillingLedger::PaymentId.into_iden(),
                BillingLedger::Kind.into_iden(),
            ],
        )
        .await?;
        m.create_table(
            Table::create()
                .table(BillingIdempotency::Table)
                .col(uuid(BillingIdempotency::UserId))
                .col(string(BillingIdempotency::Key))
                .col(string(BillingIdempotency::Operation))
                .col(string(BillingIdempotency::Fingerprint))
                .col(text_null(BillingIdempotency::Response))
                .col(timestamp_with_time_zone(BillingIdempotency::CreatedAt))
                .primary_key(
                    Index::create()
                        .col(BillingIdempotency::UserId)
                        .col(BillingIdempotency::Key),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(BillingWebhookEvents::Table)
                .col(string(BillingWebhookEvents::Id).primary_key())
                .col(string(BillingWebhookEvents::Kind))
                .col(timestamp_with_time_zone(BillingWebhookEvents::ReceivedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(BillingClock::Table)
                .col(integer(BillingClock::Id).primary_key())
                .col(big_integer(BillingClock::OffsetSecs))
                .to_owned(),
        )
        .await?;
        m.exec_stmt(
            Query::insert()
                .into_table(BillingClock::Table)
                .columns([BillingClock::Id, BillingClock::OffsetSecs])
                .values_panic([1.into(), 0i64.into()])
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(LocalProviderCharges::Table)
                .col(string(LocalProviderCharges::Key).primary_key())
                .col(string(LocalProviderCharges::Id))
                .col(string(LocalProviderCharges::PaymentMethod))
                .col(big_integer(LocalProviderCharges::AmountCents))
                .col(string(LocalProviderCharges::Currency))
                .col(string(LocalProviderCharges::Status))
                .col(string_null(LocalProviderCharges::Code))
                .col(big_integer(LocalProviderCharges::RefundedCents))
                .col(timestamp_with_time_zone(LocalProviderCharges::CreatedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            BillingPlans::Table.into_iden(),
            BillingAccounts::Table.into_iden(),
            BillingSubscriptions::Table.into_iden(),
            BillingInvoices::Table.into_iden(),
            BillingPayments::Table.into_iden(),
            BillingLedger::Table.into_iden(),
            BillingIdempotency::Table.into_iden(),
            BillingWebhookEvents::Table.into_iden(),
            BillingClock::Table.into_iden(),
            LocalProviderCharges::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
