//! Recording one event, the only write path: the raw row, its hour's and its day's count, and for a
//! signed-in user the day's and the week's activity and their first active day — all in the caller's
//! transaction. An event is recorded once however often it comes (its id: a domain event's bus id), so a
//! redelivery counts nothing.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, ExprTrait, QueryFilter, Set, TryInsertResult,
};
use uuid::Uuid;

use crate::error::{invalid, AnalyticsError};
use crate::store::{
    active, active_week, alias, daily, event, first_seen, hour_sketch, hourly, sketch, span_sketch,
};
use crate::time::{day_of, hour_of, week_first_day, week_of};
use crate::validate;

/// How late a client's event may be dated (offline apps send what they buffered); older is refused.
pub const MAX_LATE_DAYS: i64 = 7;

/// One event to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: Uuid,
    /// A domain event's kind or a client event's name.
    pub name: String,
    /// The producing subgraph, or [`CLIENT`].
    pub source: String,
    /// The signed-in user who acted (they count as active that day).
    pub user_id: Option<Uuid>,
    /// Who acted, for funnels: `u:<id>` or `a:<anonymous id>`.
    pub actor: Option<String>,
    /// The anonymous actor (`a:<id>`) a signed-in client says it was before signing in.
    pub was_anonymous: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub properties: Option<String>,
}

/// The source of events clients send.
pub const CLIENT: &str = "client";

/// The funnel key of a signed-in user.
pub fn user_actor(user: Uuid) -> String {
    format!("u:{user}")
}

/// An event as a client sends it (`trackEvent`).
#[derive(Debug, Clone, Default)]
pub struct ClientEvent {
    pub name: String,
    pub properties: Option<serde_json::Value>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub anonymous_id: Option<String>,
}

/// The record of a client's event, its inputs checked: a signed-in `user` acts as themselves, a signed-out
/// client under its anonymous id.
pub fn client_record(
    user: Option<Uuid>,
    event: ClientEvent,
    now: DateTime<Utc>,
) -> Result<Record, AnalyticsError> {
    validate::client_name(&event.name)?;
    let properties = validate::properties(event.properties.as_ref())?;
    let occurred_at = validate::occurred_at(event.occurred_at, now)?;
    if let Some(anonymous) = &event.anonymous_id {
        validate::anonymous_id(anonymous)?;
    }
    let anonymous = event.anonymous_id.map(|id| format!("a:{id}"));
    let (actor, was_anonymous) = match (user, anonymous) {
        (Some(user), was) => (user_actor(user), was),
        (None, Some(anonymous)) => (anonymous, None),
        (None, None) => return Err(invalid("anonymousId is required when signed out")),
    };
    Ok(Record {
        id: Uuid::now_v7(),
        name: event.name,
        source: CLIENT.into(),
        user_id: user,
        actor: Some(actor),
        was_anonymous,
        occurred_at,
        properties,
    })
}

/// Records `record`; `false` when it was recorded before. `now` is analytics' time: a late event on a
/// closed day or hour drops the sketches that counted without it, which are built again when next read.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    record: Record,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let day = day_of(record.occurred_at);
    if let (Some(from), Some(to)) = (&record.was_anonymous, &record.actor) {
        // The first user to claim an anonymous id keeps it (a shared device does not merge two people).
        alias::Entity::insert(alias::ActiveModel {
            actor_from: Set(from.clone()),
            actor_to: Set(to.clone()),
        })
        .on_conflict_do_nothing_on([alias::Column::ActorFrom])
        .exec_without_returning(db)
        .await?;
    }
    let inserted = event::Entity::insert(event::ActiveModel {
        id: Set(record.id),
        name: Set(record.name.clone()),
        source: Set(record.source),
        user_id: Set(record.user_id),
        actor: Set(record.actor),
        occurred_at: Set(record.occurred_at),
        day: Set(day),
        properties: Set(record.properties),
    })
    .on_conflict_do_nothing_on([event::Column::Day, event::Column::Id])
    .exec_without_returning(db)
    .await?;
    if !matches!(inserted, TryInsertResult::Inserted(n) if n > 0) {
        return Ok(false);
    }
    hourly::Entity::insert(hourly::ActiveModel {
        hour: Set(hour_of(record.occurred_at)),
        name: Set(record.name.clone()),
        count: Set(1),
    })
    .on_conflict(
        OnConflict::columns([hourly::Column::Hour, hourly::Column::Name])
            .value(
                hourly::Column::Count,
                Expr::col((hourly::Entity, hourly::Column::Count)).add(1),
            )
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    daily::Entity::insert(daily::ActiveModel {
        day: Set(day),
        name: Set(record.name),
        count: Set(1),
    })
    .on_conflict(
        OnConflict::columns([daily::Column::Day, daily::Column::Name])
            .value(
                daily::Column::Count,
                Expr::col((daily::Entity, daily::Column::Count)).add(1),
            )
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    if let Some(user) = record.user_id {
        was_active(db, user, hour_of(record.occurred_at), now).await?;
    }
    Ok(true)
}

/// `user` was active in `hour`: the hour's bit in the day's row, the week's first and last hour, their first
/// day and hour moved back if this is earlier, and the sketches of closed days, hours and zone days that
/// counted without it dropped. Only a new day or hour writes more than the one statement.
async fn was_active<C: ConnectionTrait>(
    db: &C,
    user: Uuid,
    hour: i64,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let day = hour.div_euclid(24);
    let in_day = hour - day * 24;
    let bit = 1i64 << in_day;
    // One statement: a new row, or the hour's bit added to the day's row; nothing when it is set already.
    let changed = active::Entity::insert(active::ActiveModel {
        day: Set(day),
        user_id: Set(user),
        hours: Set(bit),
    })
    .on_conflict(
        OnConflict::columns([active::Column::Day, active::Column::UserId])
            .value(
                active::Column::Hours,
                Expr::col((active::Entity, active::Column::Hours))
                    .bit_or(Expr::cust("excluded.hours")),
            )
            .action_and_where(
                Expr::col((active::Entity, active::Column::Hours))
                    .bit_and(Expr::cust("excluded.hours"))
                    .eq(0),
            )
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    if changed == 0 {
        return Ok(());
    }
    let week = week_of(day);
    let in_week = (day - week_first_day(week)) * 24 + in_day;
    active_week::Entity::insert(active_week::ActiveModel {
        week: Set(week),
        user_id: Set(user),
        first_hour: Set(in_week),
        last_hour: Set(in_week),
    })
    .on_conflict(
        OnConflict::columns([active_week::Column::Week, active_week::Column::UserId])
            // The same words in SQLite and PostgreSQL (no MIN/LEAST common to both for two values).
            .value(
                active_week::Column::FirstHour,
                Expr::cust(
                    "CASE WHEN excluded.first_hour < analytics_active_weeks.first_hour \
                     THEN excluded.first_hour ELSE analytics_active_weeks.first_hour END",
                ),
            )
            .value(
                active_week::Column::LastHour,
                Expr::cust(
                    "CASE WHEN excluded.last_hour > analytics_active_weeks.last_hour \
                     THEN excluded.last_hour ELSE analytics_active_weeks.last_hour END",
                ),
            )
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    first_seen::Entity::insert(first_seen::ActiveModel {
        user_id: Set(user),
        day: Set(day),
        hour: Set(in_day),
    })
    .on_conflict(
        OnConflict::column(first_seen::Column::UserId)
            // The earlier of the two (events may come late); both sides read the row as it was.
            .value(
                first_seen::Column::Day,
                Expr::cust(
                    "CASE WHEN excluded.day < analytics_first_seen.day \
                     THEN excluded.day ELSE analytics_first_seen.day END",
                ),
            )
            .value(
                first_seen::Column::Hour,
                Expr::cust(
                    "CASE WHEN excluded.day < analytics_first_seen.day \
                     OR (excluded.day = analytics_first_seen.day AND excluded.hour < analytics_first_seen.hour) \
                     THEN excluded.hour ELSE analytics_first_seen.hour END",
                ),
            )
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    // A late event: the closed day's sketch may lack this user (a new hour of a day they were in already
    // leaves it as it was, but telling the two apart would cost every event a statement more).
    if day < day_of(now) {
        sketch::Entity::delete_by_id(day).exec(db).await?;
    }
    if hour < hour_of(now) {
        hour_sketch::Entity::delete_by_id(hour).exec(db).await?;
        span_sketch::Entity::delete_many()
            .filter(span_sketch::Column::FirstHour.lte(hour))
            .filter(span_sketch::Column::EndHour.gt(hour))
            .exec(db)
            .await?;
    }
    Ok(())
}
