//! The notifications subgraph schema: the recipient's list, unread count, settings and push subscriptions;
//! marking read; the live `notificationAdded`. Everything is the caller's own: no one reads another's
//! notifications (staff included).

mod types;

use std::sync::Arc;

use async_graphql::connection::Connection;
use async_graphql::{Context, Object, Schema, Subscription, ID};
use futures::Stream;
use parley_kit::auth::{identity, require_identity};
use parley_kit::error::coded;
use parley_kit::events::contracts::{NotificationCreated, NotificationGrouped};
use parley_kit::ids::parse_id;
use parley_kit::live::Live;
use parley_kit::pagination::{connection, keyset_desc, sort_key, Page};
use parley_kit::{ApiResult, ErrorCode, ResultExt};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};
use uuid::Uuid;

use crate::notify;
use crate::preferences::{self, Setting};
use crate::push::{self, EndpointRule, Vapid};
use crate::store::notification;
pub use types::{
    Notification, NotificationSetting, NotificationSettings, NotificationSettingsInput,
    PushSubscriptionInput,
};

/// Ids one `markNotificationsRead` takes (checked before any is parsed).
pub const MAX_MARK_IDS: usize = 100;

pub type NotificationsSchema = Schema<Query, Mutation, Subscription>;

pub fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query, Mutation, Subscription)
        .enable_federation()
        .enable_subscription_in_federation()
}

pub fn build(
    db: DatabaseConnection,
    live: Arc<Live>,
    vapid: Arc<Vapid>,
    endpoints: EndpointRule,
) -> NotificationsSchema {
    builder()
        .data(db)
        .data(live)
        .data(vapid)
        .data(endpoints)
        .finish()
}

fn db<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a DatabaseConnection> {
    ctx.data::<DatabaseConnection>()
}

/// The caller's listed notifications.
fn mine(me: Uuid) -> sea_orm::Select<notification::Entity> {
    notification::Entity::find()
        .filter(notification::Column::RecipientId.eq(me))
        .filter(notification::Column::Listed.eq(true))
}

/// Store errors at the resolver boundary: `INTERNAL`, the detail logged, not shown.
trait Stored<T> {
    fn stored(self) -> ApiResult<T>;
}

impl<T> Stored<T> for Result<T, sea_orm::DbErr> {
    fn stored(self) -> ApiResult<T> {
        self.map_err(crate::NotificationsError::from).gql()
    }
}

pub struct Query;

#[Object]
impl Query {
    /// Your notifications, the most recently changed first; `unreadOnly` leaves out those you read.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        unread_only: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, Notification>> {
        let me = require_identity(ctx)?.user_id;
        let page = Page::new(first, after)?;
        let mut select = mine(me);
        if unread_only == Some(true) {
            select = select.filter(notification::Column::ReadAt.is_null());
        }
        let rows = keyset_desc(
            select,
            None,
            notification::Column::SortKey,
            page.after.as_ref(),
        )?
        .limit(page.limit())
        .all(db(ctx)?)
        .await
        .stored()?;
        Ok(connection(
            &page,
            rows,
            |n| sort_key(None, n.sort_key),
            Notification,
        ))
    }

    /// How many of your notifications are unread (the badge).
    async fn unread_notification_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        let me = require_identity(ctx)?.user_id;
        let count = mine(me)
            .filter(notification::Column::ReadAt.is_null())
            .count(db(ctx)?)
            .await
            .stored()?;
        Ok(count as i64)
    }

    /// Every kind × channel you get, defaults filled in.
    async fn notification_settings(&self, ctx: &Context<'_>) -> ApiResult<NotificationSettings> {
        let me = require_identity(ctx)?.user_id;
        let all = preferences::all(db(ctx)?, me).await.stored()?;
        Ok(NotificationSettings::of(all))
    }

    /// The VAPID public key (base64url, uncompressed P-256) to pass as `applicationServerKey` to
    /// `pushManager.subscribe`.
    async fn push_public_key(&self, ctx: &Context<'_>) -> ApiResult<String> {
        Ok(ctx.data::<Arc<Vapid>>()?.public_key.clone())
    }

    /// A notification, for its recipient only.
    #[graphql(entity)]
    async fn find_notification_by_id(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> ApiResult<Option<Notification>> {
        let (Some(me), Ok(id)) = (identity(ctx), parse_id(&id)) else {
            return Ok(None);
        };
        let row = mine(me.user_id)
            .filter(notification::Column::Id.eq(id))
            .one(db(ctx)?)
            .await
            .stored()?;
        Ok(row.map(Notification))
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Marks your notifications read: those in `ids` (at most 100), or all of them when `ids` is null.
    /// Returns how many were unread.
    async fn mark_notifications_read(
        &self,
        ctx: &Context<'_>,
        ids: Option<Vec<ID>>,
    ) -> ApiResult<i64> {
        let me = require_identity(ctx)?.user_id;
        let ids = match ids {
            Some(ids) if ids.len() > MAX_MARK_IDS => {
                return Err(coded(
                    ErrorCode::BadUserInput,
                    format!("ids: at most {MAX_MARK_IDS}"),
                ))
            }
            Some(ids) => Some(
                ids.iter()
                    .map(parse_id)
                    .collect::<async_graphql::Result<Vec<_>>>()?,
            ),
            None => None,
        };
        let marked = notify::mark_read(db(ctx)?, me, ids.as_deref())
            .await
            .stored()?;
        Ok(marked as i64)
    }

    /// Turns one kind on one channel on or off; returns every setting.
    async fn update_notification_settings(
        &self,
        ctx: &Context<'_>,
        input: NotificationSettingsInput,
    ) -> ApiResult<NotificationSettings> {
        let me = require_identity(ctx)?.user_id;
        let db = db(ctx)?;
        let setting = Setting {
            kind: input.kind,
            channel: input.channel,
            enabled: input.enabled,
        };
        preferences::set(db, me, setting).await.stored()?;
        Ok(NotificationSettings::of(
            preferences::all(db, me).await.stored()?,
        ))
    }

    /// Registers this browser's or device's push subscription (`endpoint`: an https URL of a push service;
    /// `p256dh`, `auth`: its keys, base64url). Registering an endpoint again replaces its keys.
    async fn register_push_subscription(
        &self,
        ctx: &Context<'_>,
        input: PushSubscriptionInput,
    ) -> ApiResult<bool> {
        let me = require_identity(ctx)?.user_id;
        let rule = ctx.data::<EndpointRule>()?;
        push::register(
            db(ctx)?,
            me,
            rule,
            &input.endpoint,
            &input.p256dh,
            &input.auth,
        )
        .await
        .gql()?;
        Ok(true)
    }

    /// Removes your push subscription at `endpoint`; false if you had none there.
    async fn unregister_push_subscription(
        &self,
        ctx: &Context<'_>,
        endpoint: String,
    ) -> ApiResult<bool> {
        let me = require_identity(ctx)?.user_id;
        push::unregister(db(ctx)?, me, &endpoint).await.gql()
    }
}

pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Each new notification of yours, and each one that grew (another event grouped in), as it happens.
    async fn notification_added(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = Notification>> {
        let me = require_identity(ctx)?.user_id;
        let db = db(ctx)?.clone();
        let live = ctx.data::<Arc<Live>>()?;
        Ok(live.stream(
            &me.to_string(),
            |e| e.is::<NotificationCreated>() || e.is::<NotificationGrouped>(),
            move |e| {
                let db = db.clone();
                async move {
                    let id = e
                        .payload
                        .get("notification_id")
                        .and_then(|v| v.as_str())
                        .and_then(|v| Uuid::parse_str(v).ok())?;
                    // The row as it is now (it may have grown again, been read or removed since).
                    mine(me)
                        .filter(notification::Column::Id.eq(id))
                        .one(&db)
                        .await
                        .ok()?
                        .map(Notification)
                }
            },
        ))
    }
}
