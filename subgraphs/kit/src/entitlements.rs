//! Entitlements: what a user's plan lets them do, enforced by the domains that own the thing limited —
//! media (`media.max_upload_mb`), chat (`chat.max_group_members`) and the assistant (`assistant`).
//!
//! Billing owns the plans and says, by event, what each user is entitled to (`BillingSubscriptionStarted`,
//! `…Changed`, `…Canceled`, each carrying the plan's [`Limits`] and the subscription's status). Each enforcing
//! domain keeps this projection of them ([`create_table`] in its migration, [`apply`] in its handler) and
//! reads [`of`] where it enforces: a user without a row — never subscribed, or no longer entitled — has the
//! [`FREE`] limits. A domain never asks billing at request time, so billing being down never blocks an upload.

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, Set};
use sea_orm_migration::prelude::{DeriveIden, SchemaManager, Table};
use sea_orm_migration::schema::{big_integer, boolean, string, timestamp_with_time_zone, uuid};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::events::contracts::BillingSubscriptionState;

/// The entitlement keys, as the API shows them.
pub const MEDIA_MAX_UPLOAD_MB: &str = "media.max_upload_mb";
pub const CHAT_MAX_GROUP_MEMBERS: &str = "chat.max_group_members";
pub const ASSISTANT: &str = "assistant";

/// One plan's limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_upload_mb: i64,
    pub max_group_members: i64,
    pub assistant: bool,
}

pub const FREE: Limits = Limits {
    max_upload_mb: 10,
    max_group_members: 50,
    assistant: false,
};
pub const PLUS: Limits = Limits {
    max_upload_mb: 100,
    max_group_members: 500,
    assistant: false,
};
pub const PRO: Limits = Limits {
    max_upload_mb: 1_000,
    max_group_members: 10_000,
    assistant: true,
};

impl Limits {
    /// The stored form (billing's plans table).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Option<Limits> {
        serde_json::from_str(text).ok()
    }

    /// As the API lists them: key and limit (`None` for a feature that is on, with no number); a feature
    /// that is off is not listed.
    pub fn entries(&self) -> Vec<(&'static str, Option<i64>)> {
        let mut entries = vec![
            (MEDIA_MAX_UPLOAD_MB, Some(self.max_upload_mb)),
            (CHAT_MAX_GROUP_MEMBERS, Some(self.max_group_members)),
        ];
        if self.assistant {
            entries.push((ASSISTANT, None));
        }
        entries
    }
}

pub mod entitlement {
    use sea_orm::entity::prelude::*;

    /// A user entitled to more than FREE, and by which plan.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "entitlements")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        pub plan_code: String,
        pub max_upload_mb: i64,
        pub max_group_members: i64,
        pub assistant: bool,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

#[derive(DeriveIden)]
enum Entitlements {
    Table,
    UserId,
    PlanCode,
    MaxUploadMb,
    MaxGroupMembers,
    Assistant,
    UpdatedAt,
}

/// Creates the `entitlements` table (for an enforcing domain's migration).
pub async fn create_table(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(Entitlements::Table)
            .col(uuid(Entitlements::UserId).primary_key())
            .col(string(Entitlements::PlanCode))
            .col(big_integer(Entitlements::MaxUploadMb))
            .col(big_integer(Entitlements::MaxGroupMembers))
            .col(boolean(Entitlements::Assistant))
            .col(timestamp_with_time_zone(Entitlements::UpdatedAt))
            .to_owned(),
    )
    .await
}

pub async fn drop_table(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.drop_table(Table::drop().table(Entitlements::Table).to_owned())
        .await
}

/// The migration that adds the table to an enforcing domain's store, under that domain's next migration
/// name (`CreateTable("m0004_entitlements")`).
pub struct CreateTable(pub &'static str);

impl sea_orm_migration::MigrationName for CreateTable {
    fn name(&self) -> &str {
        self.0
    }
}

#[async_trait::async_trait]
impl sea_orm_migration::MigrationTrait for CreateTable {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        create_table(m).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_table(m).await
    }
}

/// Applies billing's word on a user: the plan's limits while the subscription entitles (ACTIVE or
/// PAST_DUE), FREE otherwise. Applying the same event twice leaves the same row.
pub async fn apply(txn: &DatabaseTransaction, s: &BillingSubscriptionState) -> Result<(), DbErr> {
    if matches!(s.status.as_str(), "ACTIVE" | "PAST_DUE") {
        let row = entitlement::ActiveModel {
            user_id: Set(s.user_id),
            plan_code: Set(s.plan_code.clone()),
            max_upload_mb: Set(s.limits.max_upload_mb),
            max_group_members: Set(s.limits.max_group_members),
            assistant: Set(s.limits.assistant),
            updated_at: Set(chrono::Utc::now()),
        };
        entitlement::Entity::insert(row)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(entitlement::Column::UserId)
                    .update_columns([
                        entitlement::Column::PlanCode,
                        entitlement::Column::MaxUploadMb,
                        entitlement::Column::MaxGroupMembers,
                        entitlement::Column::Assistant,
                        entitlement::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(txn)
            .await?;
    } else {
        entitlement::Entity::delete_by_id(s.user_id)
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// `user`'s limits now.
pub async fn of<C: ConnectionTrait>(db: &C, user: Uuid) -> Result<Limits, DbErr> {
    Ok(entitlement::Entity::find_by_id(user)
        .one(db)
        .await?
        .map(|row| Limits {
            max_upload_mb: row.max_upload_mb,
            max_group_members: row.max_group_members,
            assistant: row.assistant,
        })
        .unwrap_or(FREE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_what_a_plan_grants() {
        assert_eq!(FREE.entries().len(), 2);
        assert!(PRO.entries().contains(&(ASSISTANT, None)));
        assert_eq!(Limits::from_json(&PLUS.to_json()), Some(PLUS));
    }
}
