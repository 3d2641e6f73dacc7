//! The Parley plugin for the engine.
//!
//! - `on_http_request`: serves the offline GraphiQL page at `GET /` and its assets under `/graphiql/`; sets
//!   `x-forwarded-for` to the peer address when no proxy did.
//! - `on_graphql_error`: one vocabulary of codes for clients ([`CLIENT_CODES`]; every error gets one, an engine
//!   failure with no better name is `INTERNAL`). Every token failure becomes `UNAUTHENTICATED`
//!   (HTTP 401; the engine's code stays in `extensions.reason`), since token-refresh flows key on it; a subgraph
//!   that cannot be reached becomes `SUBGRAPH_UNAVAILABLE`; validation rule names become
//!   `GRAPHQL_VALIDATION_FAILED`; an operation over a limit (depth, aliases, directives, tokens) becomes
//!   `QUERY_TOO_COMPLEX`; a request that is not a usable GraphQL request (too large, wrong content type,
//!   mutation over GET, unknown operation name) becomes `BAD_REQUEST` with its HTTP status kept.
//! - `on_http_request` also gives every request an `x-request-id` (the client's, when sane), propagated to the
//!   subgraphs and returned in the response.
//! - `on_subgraph_http_request`: drops the per-request headers from subgraph fetches the engine may share
//!   between identical concurrent requests (queries), so the sharing still happens.
//! - `on_graphql_params`: automatic persisted queries (see [`crate::apq`]).
//! - `on_graphql_parse`: answers syntax errors itself (see [`crate::parse_guard`]: the engine's parser would
//!   put freed memory in the message).
//! - `on_query_plan` also refuses an operation selecting more than `max_root_fields` root fields or estimated
//!   to cost more than `max_cost` ([`crate::cost`], with the field types `on_supergraph_reload` keeps; both
//!   `QUERY_TOO_COMPLEX`), then applies the per-caller rate limits of [`crate::rate_limit`] (`RATE_LIMITED`, HTTP 429).
//! - `on_query_plan`: an operation whose `Authorization` token (HTTP header, or the WebSocket
//!   `connection_init` payload) the engine could not verify is refused with `UNAUTHENTICATED` instead of running
//!   anonymously. (Planning is the first hook every query, mutation and subscription passes after the engine
//!   checked the token; `on_execute` does not see subscriptions.)

use hive_router::executor::introspection::schema::SchemaMetadata;
use hive_router::executor::response::graphql_error::{GraphQLError, GraphQLErrorPath};
use hive_router::http::StatusCode;
use hive_router::ntex::http::header::{HeaderName, HeaderValue};
use hive_router::ntex::http::Response;
use hive_router::plugins::hooks::on_graphql_error::{
    OnGraphQLErrorHookPayload, OnGraphQLErrorHookResult,
};
use hive_router::plugins::hooks::on_graphql_params::{
    OnGraphQLParamsStartHookPayload, OnGraphQLParamsStartHookResult,
};
use hive_router::plugins::hooks::on_graphql_parse::{
    OnGraphQLParseHookResult, OnGraphQLParseStartHookPayload,
};
use hive_router::plugins::hooks::on_http_request::{
    OnHttpRequestHookFuture, OnHttpRequestHookPayload,
};
use hive_router::plugins::hooks::on_plugin_init::{OnPluginInitPayload, OnPluginInitResult};
use hive_router::plugins::hooks::on_query_plan::{
    OnQueryPlanStartHookPayload, OnQueryPlanStartHookResult,
};
use hive_router::plugins::hooks::on_subgraph_http_request::{
    OnSubgraphHttpRequestHookPayload, OnSubgraphHttpRequestHookResult,
};
use hive_router::plugins::hooks::on_supergraph_load::{
    OnSupergraphLoadStartHookPayload, OnSupergraphLoadStartHookResult,
};
use hive_router::plugins::plugin_trait::{EndHookPayload, RouterPlugin, StartHookPayload};
use serde::Deserialize;

use std::sync::Arc;

use crate::apq::ApqCache;
use crate::graphiql;
use crate::parse_guard::ParseGuard;
use crate::rate_limit::{self, OperationClass, RateLimitConfig, RateLimiter};
use hive_router::query_planner::ast::operation::OperationDefinition;
use hive_router::query_planner::ast::selection_item::SelectionItem;
use hive_router::query_planner::ast::selection_set::SelectionSet;
use hive_router::query_planner::state::supergraph_state::OperationKind;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParleyPluginConfig {
    /// Serve the playground at `/` (default true).
    #[serde(default)]
    pub disable_playground: bool,
    /// Queries the automatic-persisted-query cache remembers (0 turns APQ off).
    #[serde(default = "default_apq_capacity")]
    pub apq_capacity: usize,
    /// Per-caller limits kept in Redis (off without `redis_url`).
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// Top-level fields one operation may select (aliases count; each is a separate fetch).
    #[serde(default = "default_max_root_fields")]
    pub max_root_fields: usize,
    /// The most an operation's estimated cost may be ([`crate::cost`]).
    #[serde(default = "default_max_cost")]
    pub max_cost: u64,
}

fn default_max_cost() -> u64 {
    crate::cost::DEFAULT_MAX_COST
}

fn default_max_root_fields() -> usize {
    20
}

fn default_apq_capacity() -> usize {
    crate::apq::DEFAULT_CAPACITY
}

pub struct ParleyPlugin {
    playground: bool,
    apq: Option<Arc<ApqCache>>,
    limiter: Option<RateLimiter>,
    max_root_fields: usize,
    max_cost: u64,
    /// The loaded supergraph's field types, for the cost estimate (swapped when the supergraph reloads).
    schema: std::sync::RwLock<Option<Arc<SchemaMetadata>>>,
    parse_guard: ParseGuard,
}

/// A refusal with its code and, as `extensions.reason`, the finer cause (the limit exceeded, the engine's
/// token error).
fn refusal(message: String, code: &str, reason: &str) -> GraphQLError {
    let mut error = GraphQLError::from_message_and_code(message, code);
    error
        .extensions
        .extensions
        .insert("reason".into(), hive_router::sonic_rs::Value::from(reason));
    error
}

impl ParleyPlugin {
    /// `QUERY_TOO_COMPLEX` for an operation over a limit: too many root fields, or an estimated cost over
    /// `max_cost` (skipped until a supergraph was loaded; a poisoned lock still holds the last schema).
    fn over_a_limit(&self, operation: &OperationDefinition) -> Option<GraphQLError> {
        let selected = root_fields(&operation.selection_set);
        if selected > self.max_root_fields {
            return Some(refusal(
                format!(
                    "the operation selects {selected} root fields; at most {} are allowed",
                    self.max_root_fields
                ),
                "QUERY_TOO_COMPLEX",
                "MAX_ROOT_FIELDS_EXCEEDED",
            ));
        }
        let schema = self
            .schema
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        let cost = crate::cost::estimate(
            &schema,
            operation.operation_kind.clone(),
            &operation.selection_set,
        );
        (cost > self.max_cost).then(|| {
            refusal(
                format!(
                    "the operation's estimated cost is {cost}; at most {} is allowed",
                    self.max_cost
                ),
                "QUERY_TOO_COMPLEX",
                "COST_ESTIMATED_TOO_EXPENSIVE",
            )
        })
    }
}

/// The fields an operation selects at its root (inline fragments looked into).
fn root_fields(selections: &SelectionSet) -> usize {
    selections
        .items
        .iter()
        .map(|item| match item {
            SelectionItem::InlineFragment(fragment) => root_fields(&fragment.selections),
            SelectionItem::Field(_) | SelectionItem::FragmentSpread(_) => 1,
        })
        .sum()
}

/// The codes a client may see from Parley (docs/security.md, plus the parse, validation and persisted-query
/// codes the router keeps). Anything else reaching a client is a bug.
pub const CLIENT_CODES: &[&str] = &[
    "BAD_REQUEST",
    "BAD_USER_INPUT",
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "QUERY_TOO_COMPLEX",
    "PERSISTED_QUERY_NOT_FOUND",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "RATE_LIMITED",
    "SUBGRAPH_UNAVAILABLE",
    "INTERNAL",
];

/// The engine's codes for a missing, malformed, expired, tampered or unverifiable token.
const TOKEN_CODES: &[&str] = &[
    "INVALID_JWT",
    "INVALID_JWT_HEADER",
    "JWK_ALGORITHM_NOT_SUPPORTED",
    "JWT_ERROR",
    "JWT_LOOKUP_FAILED",
    "JWT_NOT_SUPPORTED",
    "MISSING_JWT",
];

/// The engine's codes for a subgraph that did not answer.
const UNREACHABLE_CODES: &[&str] = &[
    "SUBREQUEST_HTTP_ERROR",
    "SUBGRAPH_REQUEST_TIMEOUT",
    "SUBGRAPH_RESPONSE_FAILURE",
    "SUBGRAPH_RESPONSE_BODY_READ_FAILURE",
    "SUBGRAPH_RESPONSE_BODY_EMPTY",
    "SUBGRAPH_CIRCUIT_BREAKER_REJECTED",
    "SUBGRAPH_WEBSOCKET_CONNECT_FAILURE",
    "SUBGRAPH_WEBSOCKET_HANDSHAKE_FAILURE",
];

/// The engine's codes for an operation over a configured limit (depth, aliases, directives, tokens).
const TOO_COMPLEX_CODES: &[&str] = &[
    "MAX_DEPTH_EXCEEDED",
    "MAX_ALIASES_EXCEEDED",
    "MAX_DIRECTIVES_EXCEEDED",
    "TOKEN_LIMIT_EXCEEDED",
    "COST_ESTIMATED_TOO_EXPENSIVE",
    "COST_INVALID_SLICING_ARGUMENTS",
    "SUBGRAPH_COST_ESTIMATED_TOO_EXPENSIVE",
];

/// The engine's codes for a request that is not a usable GraphQL request (its HTTP status is kept:
/// 413, 415, 405, 400).
const BAD_REQUEST_CODES: &[&str] = &[
    "PAYLOAD_TOO_LARGE_CONTENT_LENGTH",
    "PAYLOAD_TOO_LARGE_BODY_STREAM",
    "UNSUPPORTED_CONTENT_TYPE",
    "UNSUPPORTED_CONTENT_ENCODING",
    "MISSING_CONTENT_TYPE_HEADER",
    "MUTATION_NOT_ALLOWED_OVER_HTTP_GET",
    "METHOD_NOT_ALLOWED",
    "OPERATION_RESOLUTION_FAILURE",
    "FAILED_TO_PARSE_REQUEST",
    "MISSING_QUERY_PARAM",
    "UNPROCESSABLE_QUERY_PARAMS",
    "INVALID_HEADER",
    "REQUEST_HEADER_FIELDS_TOO_LARGE",
    "READ_BODY_STREAM_ERROR",
    "CSRF_PREVENTION_FAILED",
    // A subscription sent where only a query or mutation can be answered (plain JSON over HTTP).
    "SUBSCRIPTIONS_NOT_SUPPORTED",
    "SUBSCRIPTIONS_TRANSPORT_NOT_SUPPORTED",
    // Allow-list mode: a request without a document id, or one the engine cannot read.
    "PERSISTED_DOCUMENT_ID_REQUIRED",
    "PERSISTED_DOCUMENT_EXTRACTION_FAILED",
];

/// The engine's codes for what the caller may not do.
const FORBIDDEN_CODES: &[&str] = &[
    "INTROSPECTION_DISABLED",
    "UNAUTHORIZED_FIELD_OR_TYPE",
    "UNAUTHORIZED_OPERATION",
];

/// Maps any code to Parley's client vocabulary ([`CLIENT_CODES`]): Parley's own (and its subgraphs') stay
/// (`None`), the engine's are grouped by what the client can do about them, and an engine failure with no
/// better name is `INTERNAL`.
pub fn parley_code(code: &str) -> Option<&'static str> {
    if CLIENT_CODES.contains(&code) {
        None
    } else if TOKEN_CODES.contains(&code) {
        Some("UNAUTHENTICATED")
    } else if TOO_COMPLEX_CODES.contains(&code) {
        Some("QUERY_TOO_COMPLEX")
    } else if UNREACHABLE_CODES.contains(&code)
        || code.starts_with("SUBGRAPH_")
        || code.starts_with("SUBREQUEST_")
        || code == "GATEWAY_TIMEOUT"
    {
        Some("SUBGRAPH_UNAVAILABLE")
    } else if BAD_REQUEST_CODES.contains(&code) {
        Some("BAD_REQUEST")
    } else if FORBIDDEN_CODES.contains(&code) {
        Some("FORBIDDEN")
    } else if code == "PERSISTED_DOCUMENT_NOT_FOUND" {
        Some("PERSISTED_QUERY_NOT_FOUND")
    } else if is_rule_name(code) {
        Some("GRAPHQL_VALIDATION_FAILED")
    } else {
        Some("INTERNAL")
    }
}

/// Validation errors carry the rule's name (`FieldsOnCorrectType`) as their code.
fn is_rule_name(code: &str) -> bool {
    code.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && code.chars().any(|c| c.is_ascii_lowercase())
        && code.chars().all(|c| c.is_ascii_alphanumeric())
}

#[hive_router::async_trait]
impl RouterPlugin for ParleyPlugin {
    type Config = ParleyPluginConfig;

    fn plugin_name() -> &'static str {
        "parley"
    }

    fn on_plugin_init(payload: OnPluginInitPayload<Self>) -> OnPluginInitResult<Self> {
        let config = payload.config()?;
        payload.initialize_plugin(ParleyPlugin {
            playground: !config.disable_playground,
            apq: (config.apq_capacity > 0).then(|| Arc::new(ApqCache::new(config.apq_capacity))),
            limiter: RateLimiter::new(config.rate_limit.clone())
                .map_err(|e| format!("rate_limit.redis_url: {e}"))?,
            max_root_fields: config.max_root_fields,
            max_cost: config.max_cost,
            schema: std::sync::RwLock::new(None),
            parse_guard: ParseGuard::new(crate::config::MAX_TOKENS),
        })
    }

    fn on_http_request<'req>(
        &'req self,
        mut payload: OnHttpRequestHookPayload<'req>,
    ) -> OnHttpRequestHookFuture<'req> {
        Box::pin(async move {
            stamp_client_ip(&mut payload);
            let request_id = stamp_request_id(&mut payload);
            let respond_with_id = move |payload: OnHttpRequestHookPayload<'req>| {
                payload.on_end(move |mut end| {
                    end.response
                        .headers_mut()
                        .insert(HeaderName::from_static(REQUEST_ID), request_id);
                    end.proceed()
                })
            };
            if !self.playground
                || payload.router_http_request.method() != hive_router::http::Method::GET
            {
                return respond_with_id(payload);
            }
            let path = payload.router_http_request.path().to_string();
            if path == "/" {
                let page = Response::Ok()
                    .content_type("text/html; charset=utf-8")
                    .body(graphiql::PAGE);
                return payload.end_with_response(page);
            }
            if let Some(name) = path.strip_prefix(graphiql::ASSET_PREFIX) {
                let response = match graphiql::asset(name) {
                    Some((content_type, bytes)) => Response::Ok()
                        .content_type(content_type)
                        .header("cache-control", "public, max-age=86400")
                        .body(bytes),
                    None => Response::NotFound().finish(),
                };
                return payload.end_with_response(response);
            }
            respond_with_id(payload)
        })
    }

    /// Automatic persisted queries: once the engine has read the request's parameters, a hash alone is
    /// replaced by the query it stands for (or refused with `PERSISTED_QUERY_NOT_FOUND`).
    async fn on_graphql_params<'exec>(
        &'exec self,
        payload: OnGraphQLParamsStartHookPayload<'exec>,
    ) -> OnGraphQLParamsStartHookResult<'exec> {
        let Some(apq) = self.apq.clone() else {
            return payload.proceed();
        };
        payload.on_end(move |mut end| match apq.resolve(&mut end.graphql_params) {
            Ok(()) => end.proceed(),
            Err(err) => end.end_with_graphql_error(err.to_graphql(), StatusCode::OK),
        })
    }

    /// Syntax errors are answered here, not by the engine (see [`crate::parse_guard`]).
    async fn on_graphql_parse<'exec>(
        &'exec self,
        payload: OnGraphQLParseStartHookPayload<'exec>,
    ) -> OnGraphQLParseHookResult<'exec> {
        let Some(query) = payload.graphql_params.query.as_deref() else {
            return payload.proceed();
        };
        match self.parse_guard.check(query) {
            Ok(()) => payload.proceed(),
            Err(message) => payload.end_with_graphql_error(
                GraphQLError::from_message_and_code(message, "GRAPHQL_PARSE_FAILED"),
                StatusCode::OK,
            ),
        }
    }

    /// Runs after the engine checked the token. The engine treats a bad token like no token when
    /// authentication is optional; Parley refuses it, so a client with a stale or forged token learns at once.
    async fn on_query_plan<'exec>(
        &'exec self,
        payload: OnQueryPlanStartHookPayload<'exec>,
    ) -> OnQueryPlanStartHookResult<'exec> {
        let headers = &payload.router_http_request.headers;
        let token = headers.get("authorization").and_then(|v| v.to_str().ok());
        let verified = payload
            .request_context
            .read()
            .ok()
            .and_then(|ctx| ctx.authentication().jwt_status().copied())
            .unwrap_or(false);
        if token.is_some() && !verified {
            let error = refusal(
                "invalid or expired access token".into(),
                "UNAUTHENTICATED",
                "INVALID_JWT",
            );
            return payload.end_with_graphql_error(error, StatusCode::UNAUTHORIZED);
        }
        let operation = payload.filtered_operation_for_plan;
        if let Some(error) = self.over_a_limit(operation) {
            return payload.end_with_graphql_error(error, StatusCode::OK);
        }
        let Some(limiter) = &self.limiter else {
            return payload.proceed();
        };
        let ip = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim);
        let subject = rate_limit::subject(token.filter(|_| verified), ip);
        let class = match operation.operation_kind {
            Some(OperationKind::Mutation) => OperationClass::Mutation,
            Some(OperationKind::Subscription) => OperationClass::Subscription,
            _ => OperationClass::Query,
        };
        match limiter.check(&subject, class).await {
            Ok(()) => payload.proceed(),
            Err(limited) => {
                let mut error = GraphQLError::from_message_and_code(
                    "too many requests; retry later",
                    "RATE_LIMITED",
                );
                error.extensions.extensions.insert(
                    "retryAfter".into(),
                    hive_router::sonic_rs::Value::from(limited.retry_after_secs),
                );
                payload.end_with_graphql_error(error, StatusCode::TOO_MANY_REQUESTS)
            }
        }
    }

    /// Keeps the new supergraph's field types for the cost estimate.
    fn on_supergraph_reload<'exec>(
        &'exec self,
        payload: OnSupergraphLoadStartHookPayload,
    ) -> OnSupergraphLoadStartHookResult<'exec> {
        payload.on_end(move |end| {
            let metadata = end.new_supergraph.metadata.clone();
            *self.schema.write().unwrap_or_else(|p| p.into_inner()) = Some(metadata);
            end.proceed()
        })
    }

    /// Identical concurrent subgraph fetches share one request (the engine's dedupe), but only when their
    /// headers match: the per-request `x-request-id` and `x-forwarded-for` would make every fetch unique.
    /// They are dropped from fetches that may be shared (queries); mutations keep them.
    async fn on_subgraph_http_request<'exec>(
        &'exec self,
        mut payload: OnSubgraphHttpRequestHookPayload<'exec>,
    ) -> OnSubgraphHttpRequestHookResult<'exec> {
        // The engine's flag is true when the fetch skips deduplication (see its http executor).
        let shared = !payload.deduplicate_request;
        if shared {
            let headers = &mut payload.execution_request.headers;
            headers.remove(REQUEST_ID);
            headers.remove("x-forwarded-for");
        }
        payload.proceed()
    }

    fn on_graphql_error<'req>(
        &'req self,
        mut payload: OnGraphQLErrorHookPayload<'req>,
    ) -> OnGraphQLErrorHookResult<'req> {
        add_path_from_affected_path(&mut payload.error);
        // Every error a client sees has a code; one that came without is an internal failure.
        let code = payload
            .error
            .extensions
            .code
            .clone()
            .unwrap_or_else(|| "INTERNAL".to_string());
        // A query nested deeper than the parser recurses fails to parse before the depth limit can count it:
        // for the client it is the same refusal.
        let too_deep = code == "GRAPHQL_PARSE_FAILED"
            && payload.error.message.contains("Recursion limit exceeded");
        let mapped = if too_deep {
            Some("QUERY_TOO_COMPLEX")
        } else {
            parley_code(&code)
        };
        if let Some(mapped) = mapped {
            if mapped == "UNAUTHENTICATED" {
                payload.status_code = StatusCode::UNAUTHORIZED;
            }
            payload.error.extensions.extensions.insert(
                "reason".into(),
                hive_router::sonic_rs::Value::from(code.as_str()),
            );
            payload.error.extensions.code = Some(mapped.to_string());
        }
        payload.proceed()
    }
}

/// The header that names a request in the router's and the subgraphs' logs and in the response.
const REQUEST_ID: &str = "x-request-id";

/// Keeps the client's `x-request-id` (when it is a sane token) or gives the request a new one; the header is
/// propagated to the subgraphs and returned to the client.
fn stamp_request_id(payload: &mut OnHttpRequestHookPayload<'_>) -> HeaderValue {
    let headers = payload.router_http_request.headers_mut();
    let given = headers.get(REQUEST_ID).filter(|v| {
        let bytes = v.as_bytes();
        (1..=128).contains(&bytes.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    });
    if let Some(id) = given {
        return id.clone();
    }
    let id = HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
    headers.insert(HeaderName::from_static(REQUEST_ID), id.clone());
    id
}

/// Subgraphs apply per-IP limits (failed logins) on `x-forwarded-for`; when no proxy in front of the router
/// set it, the router sets it to the peer address so every client does not share one "unknown" bucket.
fn stamp_client_ip(payload: &mut OnHttpRequestHookPayload<'_>) {
    let request = &mut payload.router_http_request;
    if request.headers().contains_key("x-forwarded-for") {
        return;
    }
    let Some(addr) = request.peer_addr() else {
        return;
    };
    if let Ok(value) = HeaderValue::from_str(&addr.ip().to_string()) {
        request
            .headers_mut()
            .insert(HeaderName::from_static("x-forwarded-for"), value);
    }
}

/// A failed entity fetch names the field it was for in `extensions.affectedPath` but has no `path`; clients
/// (and the GraphQL spec) look at `path`, so give it one when the affected path has no list positions.
fn add_path_from_affected_path(error: &mut GraphQLError) {
    if error.path.is_some() {
        return;
    }
    let Some(affected) = error.extensions.affected_path.as_deref() else {
        return;
    };
    if affected.is_empty() || affected.contains('@') {
        return;
    }
    let mut path = GraphQLErrorPath::with_capacity(affected.matches('.').count() + 1);
    for field in affected.split('.') {
        path.push_field(field);
    }
    error.path = Some(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_parley_vocabulary() {
        assert_eq!(parley_code("INVALID_JWT"), Some("UNAUTHENTICATED"));
        assert_eq!(parley_code("JWT_LOOKUP_FAILED"), Some("UNAUTHENTICATED"));
        assert_eq!(
            parley_code("SUBREQUEST_HTTP_ERROR"),
            Some("SUBGRAPH_UNAVAILABLE")
        );
        assert_eq!(
            parley_code("FieldsOnCorrectType"),
            Some("GRAPHQL_VALIDATION_FAILED")
        );
        assert_eq!(parley_code("BAD_USER_INPUT"), None);
        assert_eq!(parley_code("NOT_FOUND"), None);
        assert_eq!(
            parley_code("SUBSCRIPTIONS_NOT_SUPPORTED"),
            Some("BAD_REQUEST")
        );
        assert_eq!(
            parley_code("SUBGRAPH_COST_ESTIMATED_TOO_EXPENSIVE"),
            Some("QUERY_TOO_COMPLEX")
        );
        assert_eq!(
            parley_code("SUBGRAPH_WEBSOCKET_STREAM_CLOSED_EMPTY"),
            Some("SUBGRAPH_UNAVAILABLE")
        );
        assert_eq!(parley_code("INTROSPECTION_DISABLED"), Some("FORBIDDEN"));
        assert_eq!(parley_code("QUERY_PLAN_BUILD_FAILED"), Some("INTERNAL"));
    }
}
