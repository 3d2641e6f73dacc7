//! `on_query_plan`, last: the per-caller rate limits of [`crate::rate_limit`] (per verified user, else per
//! client IP; per operation class; one count per root field). Over the limit: `RATE_LIMITED`, HTTP 429,
//! `extensions.retryAfter`.

use hive_router::executor::response::graphql_error::GraphQLError;
use hive_router::query_planner::state::supergraph_state::OperationKind;
use parley_protocol::extensions::RETRY_AFTER;
use parley_protocol::ErrorCode;

use crate::rate_limit::{self, OperationClass, RateLimiter};

/// A refusal when the caller is over its limit for this kind of operation.
pub async fn check(
    limiter: &RateLimiter,
    verified_token: Option<&str>,
    forwarded_for: Option<&str>,
    kind: Option<&OperationKind>,
    root_fields: usize,
) -> Option<GraphQLError> {
    let ip = forwarded_for
        .and_then(|v| v.split(',').next())
        .map(str::trim);
    let subject = rate_limit::subject(verified_token, ip);
    let class = match kind {
        Some(OperationKind::Mutation) => OperationClass::Mutation,
        Some(OperationKind::Subscription) => OperationClass::Subscription,
        _ => OperationClass::Query,
    };
    let weight = u64::try_from(root_fields.max(1)).unwrap_or(u64::MAX);
    let limited = limiter.check(&subject, class, weight).await.err()?;
    let mut error = GraphQLError::from_message_and_code(
        "too many requests; retry later",
        ErrorCode::RateLimited.as_str(),
    );
    error.extensions.extensions.insert(
        RETRY_AFTER.into(),
        hive_router::sonic_rs::Value::from(limited.retry_after_secs),
    );
    Some(error)
}
