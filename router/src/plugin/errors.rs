//! `on_graphql_error`, the last stage: one vocabulary of codes for clients ([`CLIENT_CODES`]). Parley's own
//! codes (and its subgraphs') pass; the engine's are grouped by what the client can do about them, with the
//! engine's code kept in `extensions.reason`; an error that came without a code, or an engine failure with no
//! better name, is `INTERNAL`. Every token failure is `UNAUTHENTICATED` with HTTP 401, since token-refresh
//! flows key on it.

use hive_router::executor::response::graphql_error::{GraphQLError, GraphQLErrorPath};
use hive_router::http::StatusCode;
use hive_router::plugins::hooks::on_graphql_error::OnGraphQLErrorHookPayload;
use hive_router::sonic_rs::JsonValueTrait;
use parley_protocol::extensions::{REASON, TOKEN_REFUSED};
use parley_protocol::ErrorCode;

/// The codes a client may see from Parley (docs/security.md). Anything else reaching a client is a bug.
pub const CLIENT_CODES: &[&str] = &{
    let mut codes = [""; ErrorCode::ALL.len()];
    let mut i = 0;
    while i < codes.len() {
        codes[i] = ErrorCode::ALL[i].as_str();
        i += 1;
    }
    codes
};

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

/// Maps any code to Parley's client vocabulary: Parley's own stay (`None`), the engine's are grouped by
/// what the client can do about them, and an engine failure with no better name is `INTERNAL`.
pub fn parley_code(code: &str) -> Option<ErrorCode> {
    if ErrorCode::parse(code).is_some() {
        None
    } else if TOKEN_CODES.contains(&code) {
        Some(ErrorCode::Unauthenticated)
    } else if TOO_COMPLEX_CODES.contains(&code) {
        Some(ErrorCode::QueryTooComplex)
    } else if UNREACHABLE_CODES.contains(&code)
        || code.starts_with("SUBGRAPH_")
        || code.starts_with("SUBREQUEST_")
        || code == "GATEWAY_TIMEOUT"
    {
        Some(ErrorCode::SubgraphUnavailable)
    } else if BAD_REQUEST_CODES.contains(&code) {
        Some(ErrorCode::BadRequest)
    } else if FORBIDDEN_CODES.contains(&code) {
        Some(ErrorCode::Forbidden)
    } else if code == "PERSISTED_DOCUMENT_NOT_FOUND" {
        Some(ErrorCode::PersistedQueryNotFound)
    } else if is_rule_name(code) {
        Some(ErrorCode::GraphqlValidationFailed)
    } else {
        Some(ErrorCode::Internal)
    }
}

/// Validation errors carry the rule's name (`FieldsOnCorrectType`) as their code.
fn is_rule_name(code: &str) -> bool {
    code.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && code.chars().any(|c| c.is_ascii_lowercase())
        && code.chars().all(|c| c.is_ascii_alphanumeric())
}

/// A refusal with its code and, as `extensions.reason`, the finer cause (the limit exceeded, the engine's
/// token error).
pub fn refusal(message: String, code: ErrorCode, reason: &str) -> GraphQLError {
    let mut error = GraphQLError::from_message_and_code(message, code.as_str());
    error
        .extensions
        .extensions
        .insert(REASON.into(), hive_router::sonic_rs::Value::from(reason));
    error
}

/// Gives the error a path and one of Parley's codes (the engine's kept as the reason).
pub fn map(payload: &mut OnGraphQLErrorHookPayload<'_>) {
    add_path_from_affected_path(&mut payload.error);
    // Every error a client sees has a code; one that came without is an internal failure.
    let code = payload
        .error
        .extensions
        .code
        .clone()
        .unwrap_or_else(|| ErrorCode::Internal.as_str().to_string());
    // A query nested deeper than the parser recurses fails to parse before the depth limit can count it:
    // for the client it is the same refusal.
    let too_deep = code == ErrorCode::GraphqlParseFailed.as_str()
        && payload.error.message.contains("Recursion limit exceeded");
    let mapped = if too_deep {
        Some(ErrorCode::QueryTooComplex)
    } else {
        parley_code(&code)
    };
    // A token failure is HTTP 401 wherever it was found: at the edge, or by a subgraph (a revoked session).
    let refused_by_subgraph = code == ErrorCode::Unauthenticated.as_str()
        && payload
            .error
            .extensions
            .extensions
            .get(REASON)
            .and_then(|r| r.as_str())
            == Some(TOKEN_REFUSED);
    if mapped == Some(ErrorCode::Unauthenticated) || refused_by_subgraph {
        payload.status_code = StatusCode::UNAUTHORIZED;
    }
    if let Some(mapped) = mapped {
        payload.error.extensions.extensions.insert(
            REASON.into(),
            hive_router::sonic_rs::Value::from(code.as_str()),
        );
        payload.error.extensions.code = Some(mapped.as_str().to_string());
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
        use ErrorCode::*;
        assert_eq!(parley_code("INVALID_JWT"), Some(Unauthenticated));
        assert_eq!(parley_code("JWT_LOOKUP_FAILED"), Some(Unauthenticated));
        assert_eq!(
            parley_code("SUBREQUEST_HTTP_ERROR"),
            Some(SubgraphUnavailable)
        );
        assert_eq!(
            parley_code("FieldsOnCorrectType"),
            Some(GraphqlValidationFailed)
        );
        assert_eq!(parley_code("BAD_USER_INPUT"), None);
        assert_eq!(parley_code("NOT_FOUND"), None);
        assert_eq!(parley_code("SUBSCRIPTIONS_NOT_SUPPORTED"), Some(BadRequest));
        assert_eq!(
            parley_code("SUBGRAPH_COST_ESTIMATED_TOO_EXPENSIVE"),
            Some(QueryTooComplex)
        );
        assert_eq!(
            parley_code("SUBGRAPH_WEBSOCKET_STREAM_CLOSED_EMPTY"),
            Some(SubgraphUnavailable)
        );
        assert_eq!(parley_code("INTROSPECTION_DISABLED"), Some(Forbidden));
        assert_eq!(parley_code("QUERY_PLAN_BUILD_FAILED"), Some(Internal));
        assert_eq!(CLIENT_CODES.len(), ErrorCode::ALL.len());
        assert!(CLIENT_CODES.contains(&"SUBGRAPH_UNAVAILABLE"));
    }
}
