//! The users subgraph's errors, each with a stable code.

use parley_kit::{CodedError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("{0}")]
    Invalid(String),
    #[error("this email is already registered")]
    EmailTaken,
    #[error("this nickname is taken")]
    NicknameTaken,
    #[error("wrong email or password")]
    BadCredentials,
    #[error("invalid or expired refresh token")]
    BadRefreshToken,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("invalid or expired token")]
    BadOneTimeToken,
    #[error("user not found")]
    NotFound,
    #[error("only admins can do this")]
    Forbidden,
    #[error("too many attempts; try again in {0} seconds")]
    RateLimited(u64),
    #[error("store error: {0}")]
    Store(#[from] sea_orm::DbErr),
    #[error("{0}")]
    Internal(String),
}

impl CodedError for UsersError {
    fn code(&self) -> ErrorCode {
        match self {
            UsersError::Invalid(_) | UsersError::WrongPassword | UsersError::BadOneTimeToken => {
                ErrorCode::BadUserInput
            }
            UsersError::EmailTaken | UsersError::NicknameTaken => ErrorCode::Conflict,
            UsersError::BadCredentials | UsersError::BadRefreshToken => ErrorCode::Unauthenticated,
            UsersError::NotFound => ErrorCode::NotFound,
            UsersError::Forbidden => ErrorCode::Forbidden,
            UsersError::RateLimited(_) => ErrorCode::RateLimited,
            UsersError::Store(_) | UsersError::Internal(_) => ErrorCode::Internal,
        }
    }
}

pub type Result<T> = std::result::Result<T, UsersError>;
