//! The social subgraph's errors, each with a stable code.

use parley_kit::{CodedError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum SocialError {
    #[error("you cannot {0} yourself")]
    SelfTarget(&'static str),
    #[error("user not found")]
    UnknownUser,
    #[error("no such {0}")]
    NoRelation(&'static str),
    #[error("not allowed: {0}")]
    Forbidden(&'static str),
    #[error("store error: {0}")]
    Store(#[from] sea_orm::DbErr),
}

impl CodedError for SocialError {
    fn code(&self) -> ErrorCode {
        match self {
            SocialError::SelfTarget(_) => ErrorCode::BadUserInput,
            SocialError::UnknownUser | SocialError::NoRelation(_) => ErrorCode::NotFound,
            SocialError::Forbidden(_) => ErrorCode::Forbidden,
            SocialError::Store(_) => ErrorCode::Internal,
        }
    }
}

pub type Result<T> = std::result::Result<T, SocialError>;
