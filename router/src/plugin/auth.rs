//! `on_query_plan`, first: the engine treats a token it could not verify like no token when authentication
//! is optional (Parley serves anonymous operations: register, login, public posts). Parley refuses it with
//! `UNAUTHENTICATED` (HTTP 401), so a client with a stale or forged token learns at once. Planning is the first
//! hook every query, mutation and subscription passes after the engine checked the token (HTTP header, or
//! the WebSocket `connection_init` payload); `on_execute` does not see subscriptions.

use hive_router::executor::response::graphql_error::GraphQLError;
use parley_protocol::ErrorCode;

use super::errors::refusal;

/// A refusal when a token was presented and the engine could not verify it.
pub fn refuse_unverified(token: Option<&str>, verified: bool) -> Option<GraphQLError> {
    (token.is_some() && !verified).then(|| {
        refusal(
            "invalid or expired access token".into(),
            ErrorCode::Unauthenticated,
            "INVALID_JWT",
        )
    })
}
