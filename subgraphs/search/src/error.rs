//! The search subgraph's errors, each with a stable code.

use parley_kit::{CodedError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// A query, filter or cursor the caller has to change.
    #[error("{0}")]
    Invalid(String),
    #[error("store error: {0}")]
    Store(#[from] sea_orm::DbErr),
    /// The index files (logged, not shown).
    #[error("index error: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// The index's folder (logged, not shown).
    #[error("index files: {0}")]
    Files(#[from] std::io::Error),
}

impl CodedError for SearchError {
    fn code(&self) -> ErrorCode {
        match self {
            SearchError::Invalid(_) => ErrorCode::BadUserInput,
            SearchError::Store(_) | SearchError::Index(_) | SearchError::Files(_) => {
                ErrorCode::Internal
            }
        }
    }
}

pub type Result<T> = std::result::Result<T, SearchError>;

pub fn invalid(message: impl Into<String>) -> SearchError {
    SearchError::Invalid(message.into())
}
