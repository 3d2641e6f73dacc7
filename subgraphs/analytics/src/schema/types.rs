//! The GraphQL types of analytics: the inputs and enums, and the report rows as clients read them (counts
//! as `Int`, saturating).

use async_graphql::{Enum, InputObject, Json, SimpleObject, ID};
use chrono::{DateTime, Utc};

use crate::time::Bucket;
use crate::{perf, reports};

/// One event a client saw happen.
#[derive(InputObject)]
pub struct TrackEventInput {
    /// A lowercase letter, then lowercase letters, digits, `_ . : -`; at most 64 characters.
    pub name: String,
    /// A JSON object of at most 4 KiB.
    pub properties: Option<Json<serde_json::Value>>,
    /// When it happened; now if not given. At most 7 days ago.
    pub occurred_at: Option<DateTime<Utc>>,
    /// A client-made id for a signed-out visitor (required when signed out). Sent signed in, it joins what
    /// that visitor did before signing in to the user, in funnels (an id joins the first user who sends it).
    pub anonymous_id: Option<String>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ActivityPeriod {
    Day,
    /// Monday to Sunday, UTC.
    Week,
    /// Calendar months, UTC.
    Month,
}

impl From<ActivityPeriod> for Bucket {
    fn from(period: ActivityPeriod) -> Bucket {
        match period {
            ActivityPeriod::Day => Bucket::Day,
            ActivityPeriod::Week => Bucket::Week,
            ActivityPeriod::Month => Bucket::Month,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ReportBucket {
    Hour,
    Day,
    Week,
    Month,
}

impl From<ReportBucket> for Bucket {
    fn from(bucket: ReportBucket) -> Bucket {
        match bucket {
            ReportBucket::Hour => Bucket::Hour,
            ReportBucket::Day => Bucket::Day,
            ReportBucket::Week => Bucket::Week,
            ReportBucket::Month => Bucket::Month,
        }
    }
}

pub(super) fn int(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Distinct signed-in users active in one bucket: exact for a day, within about 0.8 % (HyperLogLog++) for
/// longer buckets.
#[derive(SimpleObject)]
pub struct ActivityPoint {
    pub start: DateTime<Utc>,
    pub active_users: i32,
}

impl From<reports::ActivityPoint> for ActivityPoint {
    fn from(p: reports::ActivityPoint) -> Self {
        Self {
            start: p.start,
            active_users: int(p.active_users),
        }
    }
}

/// Users first active in one week, and how many of them came back in each week since.
#[derive(SimpleObject)]
pub struct RetentionCohort {
    /// The week's Monday (UTC).
    pub start: DateTime<Utc>,
    pub size: i32,
    /// Index k: the cohort's users active in the k-th week after their first (0: all of them).
    pub retained: Vec<i32>,
}

impl From<reports::Cohort> for RetentionCohort {
    fn from(c: reports::Cohort) -> Self {
        Self {
            start: c.start,
            size: int(c.size),
            retained: c.retained.into_iter().map(int).collect(),
        }
    }
}

/// How many people (signed-in users and anonymous ids) got as far as one step.
#[derive(SimpleObject)]
pub struct FunnelStep {
    pub name: String,
    pub users: i32,
}

impl From<reports::FunnelStep> for FunnelStep {
    fn from(s: reports::FunnelStep) -> Self {
        Self {
            name: s.name,
            users: int(s.actors),
        }
    }
}

/// What was made in one bucket.
#[derive(SimpleObject)]
pub struct ContentPoint {
    pub start: DateTime<Utc>,
    pub posts: i32,
    pub comments: i32,
    /// First votes (a changed vote is not a new one).
    pub votes: i32,
    pub messages: i32,
    pub uploads: i32,
    pub signups: i32,
}

impl From<reports::ContentPoint> for ContentPoint {
    fn from(p: reports::ContentPoint) -> Self {
        Self {
            start: p.start,
            posts: int(p.posts),
            comments: int(p.comments),
            votes: int(p.votes),
            messages: int(p.messages),
            uploads: int(p.uploads),
            signups: int(p.signups),
        }
    }
}

#[derive(SimpleObject)]
pub struct EventCount {
    pub name: String,
    pub count: i32,
}

/// One user's activity: first seen ever; the rest over the retention period.
#[derive(SimpleObject)]
pub struct UserActivity {
    pub user_id: ID,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub active_days: i32,
    pub events: i32,
    /// Their most frequent events, most first (at most 10).
    pub top_events: Vec<EventCount>,
}

impl UserActivity {
    pub fn new(user_id: ID, a: reports::UserActivity) -> Self {
        Self {
            user_id,
            first_seen: a.first_seen,
            last_seen: a.last_seen,
            active_days: int(a.active_days),
            events: int(a.events),
            top_events: a
                .top_events
                .into_iter()
                .map(|(name, n)| EventCount {
                    name,
                    count: int(n),
                })
                .collect(),
        }
    }
}

/// One GraphQL operation on the routers in one bucket (from their request-duration histograms).
#[derive(SimpleObject)]
pub struct PerformancePoint {
    pub start: DateTime<Utc>,
    /// The operation's name, as the router labels it (`UNKNOWN`: unnamed operations and its other routes).
    pub operation: String,
    pub requests: i32,
    /// Requests per second over the bucket.
    pub request_rate: f64,
    /// The share of requests answered with errors (0 to 1).
    pub error_rate: f64,
    /// Milliseconds, interpolated within the histogram's buckets.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl From<perf::PerformancePoint> for PerformancePoint {
    fn from(p: perf::PerformancePoint) -> Self {
        Self {
            start: p.start,
            operation: p.operation,
            requests: int(p.requests.round() as i64),
            request_rate: p.request_rate,
            error_rate: p.error_rate,
            p50_ms: p.p50,
            p95_ms: p.p95,
            p99_ms: p.p99,
        }
    }
}

/// A report to download as CSV.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum AnalyticsReport {
    ActiveUsers,
    Retention,
    Funnel,
    Content,
    Performance,
}

impl From<AnalyticsReport> for crate::export::Report {
    fn from(report: AnalyticsReport) -> Self {
        use crate::export::Report;
        match report {
            AnalyticsReport::ActiveUsers => Report::ActiveUsers,
            AnalyticsReport::Retention => Report::Retention,
            AnalyticsReport::Funnel => Report::Funnel,
            AnalyticsReport::Content => Report::Content,
            AnalyticsReport::Performance => Report::Performance,
        }
    }
}

/// A report and its arguments, as the report's own query takes them.
#[derive(InputObject)]
pub struct ReportExportInput {
    pub report: AnalyticsReport,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// CONTENT and PERFORMANCE: any; ACTIVE_USERS: DAY, WEEK or MONTH (its period).
    #[graphql(default_with = "ReportBucket::Day")]
    pub bucket: ReportBucket,
    /// FUNNEL: its 2 to 10 steps.
    #[graphql(default)]
    pub steps: Vec<String>,
    /// FUNNEL: its window.
    #[graphql(default = 24)]
    pub window_hours: i32,
    /// Every report but FUNNEL: days (and weeks) from midnight in this IANA zone.
    #[graphql(default_with = "String::from(\"UTC\")")]
    pub time_zone: String,
}

/// A download link: a CSV file of the report, made when the link is opened.
#[derive(SimpleObject)]
pub struct ReportExport {
    /// Works without a session until `expiresAt`; treat it as a secret.
    pub url: String,
    pub expires_at: DateTime<Utc>,
}
