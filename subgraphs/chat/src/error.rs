//! The chat subgraph's errors, each with a stable code.

use parley_kit::{CodedError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Also the answer for a chat that does not exist, so non-members learn nothing.
    #[error("not allowed: {0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    /// The caller registered a moment ago and chat has not heard of the account yet.
    #[error("your account is still being set up; try again in a moment")]
    AccountPending,
    #[error("store error: {0}")]
    Store(#[from] sea_orm::DbErr),
}

impl CodedError for ChatError {
    fn code(&self) -> ErrorCode {
        match self {
            ChatError::Invalid(_) => ErrorCode::BadUserInput,
            ChatError::NotFound(_) => ErrorCode::NotFound,
            ChatError::Forbidden(_) => ErrorCode::Forbidden,
            ChatError::Conflict(_) | ChatError::AccountPending => ErrorCode::Conflict,
            ChatError::Store(_) => ErrorCode::Internal,
        }
    }
}

pub type Result<T> = std::result::Result<T, ChatError>;

pub fn invalid(message: impl Into<String>) -> ChatError {
    ChatError::Invalid(message.into())
}

/// The one answer a non-member gets, whether or not the chat exists.
pub const NOT_A_MEMBER: ChatError = ChatError::Forbidden("not a member of this chat");
