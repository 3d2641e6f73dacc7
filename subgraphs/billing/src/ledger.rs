//! The ledger: every charge, refund and credit as a row that is inserted and never updated or deleted.
//! A payment has at most one CHARGE and one REFUND (a unique index), so recording twice records once.
//! Invoices show what was asked; the ledger is what moved, and the admin report is computed from it.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Set,
};
use uuid::Uuid;

use crate::store::{ledger, payment, plan, subscription};

pub const CHARGE: &str = "CHARGE";
pub const REFUND: &str = "REFUND";
pub const CREDIT: &str = "CREDIT";

async fn record(txn: &DatabaseTransaction, row: ledger::ActiveModel) -> Result<(), DbErr> {
    ledger::Entity::insert(row)
        .on_conflict_do_nothing()
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

fn entry(
    pay: &payment::Model,
    kind: &str,
    amount: i64,
    code: &str,
    now: DateTime<Utc>,
) -> ledger::ActiveModel {
    ledger::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(pay.user_id),
        subscription_id: Set(Some(pay.subscription_id)),
        invoice_id: Set(Some(pay.invoice_id)),
        payment_id: Set(Some(pay.id)),
        kind: Set(kind.into()),
        amount_cents: Set(amount),
        currency: Set(pay.currency.clone()),
        plan_code: Set(code.into()),
        occurred_at: Set(now),
    }
}

pub async fn charge(
    txn: &DatabaseTransaction,
    pay: &payment::Model,
    code: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    record(txn, entry(pay, CHARGE, pay.amount_cents, code, now)).await
}

pub async fn refund(
    txn: &DatabaseTransaction,
    pay: &payment::Model,
    code: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    record(txn, entry(pay, REFUND, -pay.amount_cents, code, now)).await
}

/// What an upgrade to a longer interval owes back (kept as a credit on the account).
pub async fn credit(
    txn: &DatabaseTransaction,
    sub: &subscription::Model,
    plan: &plan::Model,
    invoice_id: Uuid,
    amount: i64,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    record(
        txn,
        ledger::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(sub.user_id),
            subscription_id: Set(Some(sub.id)),
            invoice_id: Set(Some(invoice_id)),
            payment_id: Set(None),
            kind: Set(CREDIT.into()),
            amount_cents: Set(-amount),
            currency: Set(plan.currency.clone()),
            plan_code: Set(plan.code.clone()),
            occurred_at: Set(now),
        },
    )
    .await
}

/// Revenue in a window, by plan code: charged, refunded and credited, and the net (all in minor units).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revenue {
    pub plan_code: String,
    pub charged: i64,
    pub refunded: i64,
    pub credited: i64,
}

impl Revenue {
    pub fn net(&self) -> i64 {
        self.charged + self.refunded + self.credited
    }
}

/// The ledger's rows in `[from, to)`, summed per plan code.
pub async fn revenue<C: ConnectionTrait>(
    db: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Revenue>, DbErr> {
    let rows = ledger::Entity::find()
        .filter(ledger::Column::OccurredAt.gte(from))
        .filter(ledger::Column::OccurredAt.lt(to))
        .all(db)
        .await?;
    let mut by_plan: std::collections::BTreeMap<String, Revenue> = Default::default();
    for row in rows {
        let r = by_plan
            .entry(row.plan_code.clone())
            .or_insert_with(|| Revenue {
                plan_code: row.plan_code.clone(),
                ..Default::default()
            });
        match row.kind.as_str() {
            CHARGE => r.charged += row.amount_cents,
            REFUND => r.refunded += row.amount_cents,
            _ => r.credited += row.amount_cents,
        }
    }
    Ok(by_plan.into_values().collect())
}
