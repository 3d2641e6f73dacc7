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
    /// An OpenID Connect sign-in that cannot go on: an unknown or used `state`, a code the provider
    /// refused, an ID token that fails a check.
    #[error("sign-in failed: {0}")]
    SignInRefused(String),
    /// The OpenID Connect provider did not answer.
    #[error("the sign-in provider did not answer; try again later")]
    ProviderUnavailable,
    /// A sign-in method that would clash with another account's or leave this one without any.
    #[error("{0}")]
    Conflict(&'static str),
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
            UsersError::EmailTaken | UsersError::NicknameTaken | UsersError::Conflict(_) => {
                ErrorCode::Conflict
            }
            UsersError::BadCredentials
            | UsersError::BadRefreshToken
            | UsersError::SignInRefused(_) => ErrorCode::Unauthenticated,
            UsersError::ProviderUnavailable => ErrorCode::SubgraphUnavailable,
            UsersError::NotFound => ErrorCode::NotFound,
            UsersError::Forbidden => ErrorCode::Forbidden,
            UsersError::RateLimited(_) => ErrorCode::RateLimited,
            UsersError::Store(_) | UsersError::Internal(_) => ErrorCode::Internal,
        }
    }
}

pub type Result<T> = std::result::Result<T, UsersError>;
