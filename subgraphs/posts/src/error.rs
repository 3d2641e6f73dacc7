//! The posts subgraph's errors, each with a stable code.

use parley_kit::{CodedError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum PostsError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("not allowed: {0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("store error: {0}")]
    Store(#[from] sea_orm::DbErr),
}

impl CodedError for PostsError {
    fn code(&self) -> ErrorCode {
        match self {
            PostsError::Invalid(_) => ErrorCode::BadUserInput,
            PostsError::NotFound(_) => ErrorCode::NotFound,
            PostsError::Forbidden(_) => ErrorCode::Forbidden,
            PostsError::Conflict(_) => ErrorCode::Conflict,
            PostsError::Store(_) => ErrorCode::Internal,
        }
    }
}

pub type Result<T> = std::result::Result<T, PostsError>;

pub fn invalid(message: impl Into<String>) -> PostsError {
    PostsError::Invalid(message.into())
}
