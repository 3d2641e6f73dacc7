//! The media subgraph's errors, each with a stable code.

use parley_kit::{CodedError, ErrorCode};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MediaError {
    /// The upload is not what its purpose allows (type, size, dimensions) or not a file at all.
    #[error("{0}")]
    Invalid(String),
    /// More bytes than the purpose allows arrived (the upload was aborted, nothing kept).
    #[error("the file is larger than {max} bytes")]
    TooLarge { max: u64 },
    /// A download link that is expired, tampered with or not for this file: nothing more is said.
    #[error("this link is not valid")]
    BadLink,
    #[error("not found")]
    NotFound,
    /// The object store failed (the message is logged, not shown).
    #[error("storage: {0}")]
    Storage(String),
    #[error("store error: {0}")]
    Store(#[from] sea_orm::DbErr),
}

impl CodedError for MediaError {
    fn code(&self) -> ErrorCode {
        match self {
            MediaError::Invalid(_) | MediaError::TooLarge { .. } => ErrorCode::BadUserInput,
            MediaError::BadLink => ErrorCode::Forbidden,
            MediaError::NotFound => ErrorCode::NotFound,
            MediaError::Storage(_) | MediaError::Store(_) => ErrorCode::Internal,
        }
    }
}

pub type Result<T> = std::result::Result<T, MediaError>;

pub fn invalid(message: impl Into<String>) -> MediaError {
    MediaError::Invalid(message.into())
}
