//! The analytics subgraph schema: `trackEvent` / `trackEvents` for clients (signed in or not), the reports
//! for admins (`activeUsers`, `retention`, `funnel`, `contentReport`, `performanceReport`, and any of them as
//! a CSV download, `exportReport`), and `userActivity` for the user themselves or an admin.

mod types;

use async_graphql::{Context, Object, Schema, ID};
use chrono::{DateTime, Duration, Utc};
use parley_kit::auth::{identity, require_identity};
use parley_kit::ids::parse_id;
use parley_kit::{ApiResult, ResultExt, Role};
use sea_orm::DatabaseConnection;

use crate::error::AnalyticsError;
use crate::export::{self, Links};
use crate::ingest::{self, ClientEvent};
use crate::time::Clock;
use crate::validate;
use crate::{perf, reports};
pub use types::{
    ActivityPeriod, ActivityPoint, AnalyticsReport, ContentPoint, EventCount, FunnelStep,
    PerformancePoint, ReportBucket, ReportExport, ReportExportInput, RetentionCohort,
    TrackEventInput, UserActivity,
};

pub type AnalyticsSchema = Schema<Query, Mutation, async_graphql::EmptySubscription>;

pub fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, async_graphql::EmptySubscription>
{
    Schema::build(Query, Mutation, async_graphql::EmptySubscription).enable_federation()
}

pub fn build(db: DatabaseConnection, clock: Clock, links: Links) -> AnalyticsSchema {
    builder().data(db).data(clock).data(links).finish()
}

fn db<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a DatabaseConnection> {
    ctx.data::<DatabaseConnection>()
}

fn clock<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a Clock> {
    ctx.data::<Clock>()
}

/// Reports are for admins: `UNAUTHENTICATED` signed out, `FORBIDDEN` for anyone else.
fn require_admin(ctx: &Context<'_>) -> ApiResult<()> {
    if require_identity(ctx)?.has_role(Role::Admin) {
        Ok(())
    } else {
        Err(AnalyticsError::Forbidden(
            "analytics reports are for admins",
        ))
        .gql()
    }
}

/// What every report over counts checks first: the caller, the range, the time zone.
fn bucketed(
    ctx: &Context<'_>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    time_zone: &str,
) -> ApiResult<Option<chrono_tz::Tz>> {
    require_admin(ctx)?;
    validate::range(from, to, validate::MAX_REPORT_DAYS).gql()?;
    validate::time_zone(time_zone).gql()
}

fn stored<T>(result: Result<T, sea_orm::DbErr>) -> ApiResult<T> {
    result.map_err(AnalyticsError::from).gql()
}

pub struct Query;

#[Object]
impl Query {
    /// Distinct signed-in users active in each bucket of `[from, to)`, days from midnight in `timeZone`
    /// (an IANA name; exact for zones whole hours from UTC, to the hour in the others; a bucket cut by the
    /// range counts the hours inside it): exact per day, within about 0.8 % for weeks and months (and for a
    /// zone's days older than the activity rows' retention, merged from hourly sketches). Admins only.
    async fn active_users(
        &self,
        ctx: &Context<'_>,
        period: ActivityPeriod,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        #[graphql(default_with = "String::from(\"UTC\")")] time_zone: String,
    ) -> ApiResult<Vec<ActivityPoint>> {
        let tz = bucketed(ctx, from, to, &time_zone)?;
        let now = clock(ctx)?.now();
        let points = reports::active_users(db(ctx)?, period.into(), from, to, now, tz)
            .await
            .gql()?;
        Ok(points.into_iter().map(Into::into).collect())
    }

    /// Weekly cohorts of the users first active in `[from, to)`, each followed week by week up to `to`;
    /// weeks from Monday midnight in `timeZone`. Admins only.
    async fn retention(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        #[graphql(default_with = "String::from(\"UTC\")")] time_zone: String,
    ) -> ApiResult<Vec<RetentionCohort>> {
        let tz = bucketed(ctx, from, to, &time_zone)?;
        let cohorts = reports::retention(db(ctx)?, from, to, tz).await.gql()?;
        Ok(cohorts.into_iter().map(Into::into).collect())
    }

    /// How many people did `steps[0]` in `[from, to)` and then each next step in order within
    /// `windowHours` of it (2 to 10 steps; client event names or domain event kinds such as
    /// `PostCreated`; at most 92 days, read from the raw events of the retention period). Admins only.
    async fn funnel(
        &self,
        ctx: &Context<'_>,
        steps: Vec<String>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        #[graphql(default = 24)] window_hours: i32,
    ) -> ApiResult<Vec<FunnelStep>> {
        // The steps are bounded before anything else looks at them.
        validate::funnel(&steps, i64::from(window_hours)).gql()?;
        require_admin(ctx)?;
        validate::range(from, to, validate::MAX_FUNNEL_DAYS).gql()?;
        let window = Duration::hours(i64::from(window_hours));
        let reached = reports::funnel(db(ctx)?, &steps, from, to, window)
            .await
            .gql()?;
        Ok(reached.into_iter().map(Into::into).collect())
    }

    /// Posts, comments, first votes, messages, uploads and sign-ups in each bucket of `[from, to)`, days
    /// from midnight in `timeZone` (an IANA name; exact for zones whole hours from UTC, to the hour in the
    /// others). Admins only.
    async fn content_report(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket: ReportBucket,
        #[graphql(default_with = "String::from(\"UTC\")")] time_zone: String,
    ) -> ApiResult<Vec<ContentPoint>> {
        let tz = bucketed(ctx, from, to, &time_zone)?;
        let points = reports::content(db(ctx)?, bucket.into(), from, to, tz)
            .await
            .gql()?;
        Ok(points.into_iter().map(Into::into).collect())
    }

    /// Each GraphQL operation's requests, request rate, error rate and p50/p95/p99 on the routers in each
    /// bucket of `[from, to)` (days from midnight in `timeZone`), read from their request-duration
    /// histograms as analytics sampled them. Admins only.
    async fn performance_report(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket: ReportBucket,
        #[graphql(default_with = "String::from(\"UTC\")")] time_zone: String,
    ) -> ApiResult<Vec<PerformancePoint>> {
        let tz = bucketed(ctx, from, to, &time_zone)?;
        let points = perf::report(db(ctx)?, bucket.into(), from, to, tz)
            .await
            .gql()?;
        Ok(points.into_iter().map(Into::into).collect())
    }

    /// A link to download a report as CSV (any report, with its query's arguments), working for 15 minutes
    /// without a session. Admins only.
    async fn export_report(
        &self,
        ctx: &Context<'_>,
        input: ReportExportInput,
    ) -> ApiResult<ReportExport> {
        // The steps are bounded before anything else looks at them.
        if input.steps.len() > validate::MAX_STEPS {
            return Err(crate::error::invalid(format!(
                "a funnel has at most {} steps",
                validate::MAX_STEPS
            )))
            .gql();
        }
        require_admin(ctx)?;
        let now = clock(ctx)?.now();
        let request = export::Request {
            report: input.report.into(),
            from: input.from,
            to: input.to,
            bucket: input.bucket.into(),
            steps: input.steps,
            window_hours: i64::from(input.window_hours),
            time_zone: Some(input.time_zone).filter(|zone| zone != "UTC"),
            expires: now + Duration::minutes(export::LINK_MINUTES),
        };
        request.check().gql()?;
        let links = ctx.data::<Links>()?;
        Ok(ReportExport {
            url: export::link(&links.signer, &links.public_url, &request).gql()?,
            expires_at: request.expires,
        })
    }

    /// A user's activity: first seen, and over the retention period their last event, active days, event
    /// count and most frequent events. The user themselves or an admin.
    async fn user_activity(&self, ctx: &Context<'_>, user_id: ID) -> ApiResult<UserActivity> {
        let me = require_identity(ctx)?;
        let user = parse_id(&user_id)?;
        if me.user_id != user && !me.has_role(Role::Admin) {
            return Err(AnalyticsError::Forbidden(
                "a user's activity is theirs and the admins' to read",
            ))
            .gql();
        }
        let activity = reports::user_activity(db(ctx)?, user).await.gql()?;
        Ok(UserActivity::new(user_id, activity))
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Records one event the client saw (signed in, or with an `anonymousId`).
    async fn track_event(&self, ctx: &Context<'_>, input: TrackEventInput) -> ApiResult<bool> {
        Ok(track(ctx, vec![input]).await? == 1)
    }

    /// Records up to 100 buffered events at once: all or none (the first bad one refuses the call).
    /// Returns how many were recorded.
    async fn track_events(&self, ctx: &Context<'_>, input: Vec<TrackEventInput>) -> ApiResult<i32> {
        validate::batch(input.len()).gql()?;
        track(ctx, input).await
    }
}

async fn track(ctx: &Context<'_>, input: Vec<TrackEventInput>) -> ApiResult<i32> {
    let now = clock(ctx)?.now();
    let user = identity(ctx).map(|me| me.user_id);
    let records = input
        .into_iter()
        .map(|e| {
            ingest::client_record(
                user,
                ClientEvent {
                    name: e.name,
                    properties: e.properties.map(|p| p.0),
                    occurred_at: e.occurred_at,
                    anonymous_id: e.anonymous_id,
                },
                now,
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .gql()?;
    let db = db(ctx)?;
    let txn = stored(parley_kit::store::begin_write(db).await)?;
    let mut recorded = 0;
    for record in records {
        if stored(ingest::record(&txn, record, now).await)? {
            recorded += 1;
        }
    }
    stored(txn.commit().await)?;
    Ok(recorded)
}
