//! Error codes shared by every subgraph (docs/security.md, *Errors*) and the bridge from a crate's own error
//! enum to a GraphQL error carrying `extensions.code`.
//!
//! Each crate keeps one `thiserror` enum and implements [`CodedError`] for it; resolvers end with `.gql()?`.
//! Internal errors are logged with their detail and shown to the client as a bare "internal error".

use async_graphql::ErrorExtensions;

/// The stable, client-visible error codes (shared with the router).
pub use parley_protocol::ErrorCode;

/// A crate's error enum: every variant maps to a code; its `Display` is the client-safe message
/// (for [`ErrorCode::Internal`] the message is only logged).
pub trait CodedError: std::error::Error {
    fn code(&self) -> ErrorCode;
}

/// The result type of resolvers.
pub type ApiResult<T> = async_graphql::Result<T>;

/// Turns a coded error into a GraphQL error with `extensions.code`.
pub fn to_graphql<E: CodedError>(err: E) -> async_graphql::Error {
    let code = err.code();
    let message = if code == ErrorCode::Internal {
        tracing::error!(error = %err, "internal error");
        "internal error".to_string()
    } else {
        err.to_string()
    };
    async_graphql::Error::new(message).extend_with(|_, ext| ext.set("code", code.as_str()))
}

/// A GraphQL error with a code and a message, for the few places that have no enum variant.
pub fn coded(code: ErrorCode, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message.into()).extend_with(|_, ext| ext.set("code", code.as_str()))
}

/// `.gql()` on a `Result<T, E: CodedError>` at the resolver boundary.
pub trait ResultExt<T> {
    fn gql(self) -> ApiResult<T>;
}

impl<T, E: CodedError> ResultExt<T> for Result<T, E> {
    fn gql(self) -> ApiResult<T> {
        self.map_err(to_graphql)
    }
}

/// Database errors are internal unless a domain maps them (unique violations → `CONFLICT`).
pub fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// For errors shared behind an `Arc` (DataLoader results).
pub fn to_graphql_arc<E: CodedError>(err: &std::sync::Arc<E>) -> async_graphql::Error {
    let code = err.code();
    if code == ErrorCode::Internal {
        tracing::error!(error = %err, "internal error");
        return coded(code, "internal error");
    }
    coded(code, err.to_string())
}
