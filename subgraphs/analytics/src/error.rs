//! The analytics subgraph's errors, each with a stable code.

use parley_kit::{CodedError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// An input the caller has to change (a name, a range, a property too large).
    #[error("{0}")]
    Invalid(String),
    /// Reports are for admins; a user reads only their own activity.
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("store error: {0}")]
    Store(#[from] sea_orm::DbErr),
    /// A stored sketch that does not read back (logged, not shown).
    #[error("sketch error: {0}")]
    Sketch(#[from] serde_json::Error),
}

impl CodedError for AnalyticsError {
    fn code(&self) -> ErrorCode {
        match self {
            AnalyticsError::Invalid(_) => ErrorCode::BadUserInput,
            AnalyticsError::Forbidden(_) => ErrorCode::Forbidden,
            AnalyticsError::Store(_) | AnalyticsError::Sketch(_) => ErrorCode::Internal,
        }
    }
}

pub type Result<T> = std::result::Result<T, AnalyticsError>;

pub fn invalid(message: impl Into<String>) -> AnalyticsError {
    AnalyticsError::Invalid(message.into())
}
