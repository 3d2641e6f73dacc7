//! The notifications subgraph's errors, each with a stable code.

use parley_kit::{CodedError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum NotificationsError {
    #[error("{0}")]
    Invalid(String),
    /// An unsubscribe link that is tampered with or not ours: nothing more is said.
    #[error("this link is not valid")]
    BadLink,
    #[error("store error: {0}")]
    Store(#[from] sea_orm::DbErr),
    /// A secret in the store does not decode (logged, not shown).
    #[error("internal error: {0}")]
    Internal(String),
}

impl CodedError for NotificationsError {
    fn code(&self) -> ErrorCode {
        match self {
            NotificationsError::Invalid(_) => ErrorCode::BadUserInput,
            NotificationsError::BadLink => ErrorCode::Forbidden,
            NotificationsError::Store(_) | NotificationsError::Internal(_) => ErrorCode::Internal,
        }
    }
}

pub type Result<T> = std::result::Result<T, NotificationsError>;

pub fn invalid(message: impl Into<String>) -> NotificationsError {
    NotificationsError::Invalid(message.into())
}
