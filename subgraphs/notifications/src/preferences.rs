//! Each recipient's channels per kind: a row only where they changed the default ([`NotificationKind::on_by_default`]).

use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use crate::kinds::{NotificationChannel, NotificationKind, CHANNELS, KINDS};
use crate::store::preference;

/// One kind on one channel, on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub kind: NotificationKind,
    pub channel: NotificationChannel,
    pub enabled: bool,
}

/// Whether `user` gets `kind` on `channel`.
pub async fn enabled<C: ConnectionTrait>(
    db: &C,
    user: Uuid,
    kind: NotificationKind,
    channel: NotificationChannel,
) -> Result<bool, DbErr> {
    let row = preference::Entity::find_by_id((
        user,
        kind.as_str().to_string(),
        channel.as_str().to_string(),
    ))
    .one(db)
    .await?;
    Ok(row.map_or_else(|| kind.on_by_default(channel), |r| r.enabled))
}

/// Whether `user` gets `kind` in the app and by push (one read for both: what a new notification needs).
pub async fn in_app_and_push<C: ConnectionTrait>(
    db: &C,
    user: Uuid,
    kind: NotificationKind,
) -> Result<(bool, bool), DbErr> {
    let rows = preference::Entity::find()
        .filter(preference::Column::UserId.eq(user))
        .filter(preference::Column::Kind.eq(kind.as_str()))
        .all(db)
        .await?;
    let on = |channel: NotificationChannel| {
        rows.iter()
            .find(|r| r.channel == channel.as_str())
            .map_or_else(|| kind.on_by_default(channel), |r| r.enabled)
    };
    Ok((
        on(NotificationChannel::InApp),
        on(NotificationChannel::Push),
    ))
}

/// Every kind × channel for `user`, defaults filled in, in a stable order.
pub async fn all<C: ConnectionTrait>(db: &C, user: Uuid) -> Result<Vec<Setting>, DbErr> {
    let rows = preference::Entity::find()
        .filter(preference::Column::UserId.eq(user))
        .all(db)
        .await?;
    let chosen = |kind: NotificationKind, channel: NotificationChannel| {
        rows.iter()
            .find(|r| r.kind == kind.as_str() && r.channel == channel.as_str())
            .map(|r| r.enabled)
    };
    Ok(KINDS
        .into_iter()
        .flat_map(|kind| CHANNELS.into_iter().map(move |channel| (kind, channel)))
        .map(|(kind, channel)| Setting {
            kind,
            channel,
            enabled: chosen(kind, channel).unwrap_or_else(|| kind.on_by_default(channel)),
        })
        .collect())
}

/// Turns `kind` on `channel` on or off for `user`.
pub async fn set<C: ConnectionTrait>(db: &C, user: Uuid, setting: Setting) -> Result<(), DbErr> {
    preference::Entity::insert(preference::ActiveModel {
        user_id: Set(user),
        kind: Set(setting.kind.as_str().to_string()),
        channel: Set(setting.channel.as_str().to_string()),
        enabled: Set(setting.enabled),
    })
    .on_conflict(
        OnConflict::columns([
            preference::Column::UserId,
            preference::Column::Kind,
            preference::Column::Channel,
        ])
        .update_column(preference::Column::Enabled)
        .to_owned(),
    )
    .exec(db)
    .await?;
    Ok(())
}
