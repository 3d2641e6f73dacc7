//! The billing subgraph's errors, each with a stable code. Provider failures are told to the client in
//! general terms; details are logged.

use parley_kit::{CodedError, ErrorCode};

#[derive(Debug, Clone, thiserror::Error)]
pub enum BillingError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// Already subscribed, an idempotency key reused with other arguments, a change that cannot apply now.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    /// The payment provider did not answer; the payment is resolved later by the reconciliation.
    #[error("the payment provider is not reachable; the payment will be confirmed shortly")]
    ProviderUnavailable,
    #[error("store error: {0}")]
    Store(String),
}

impl From<sea_orm::DbErr> for BillingError {
    fn from(e: sea_orm::DbErr) -> Self {
        BillingError::Store(e.to_string())
    }
}

impl CodedError for BillingError {
    fn code(&self) -> ErrorCode {
        match self {
            BillingError::Invalid(_) => ErrorCode::BadUserInput,
            BillingError::NotFound(_) => ErrorCode::NotFound,
            BillingError::Conflict(_) => ErrorCode::Conflict,
            BillingError::Forbidden(_) => ErrorCode::Forbidden,
            BillingError::ProviderUnavailable => ErrorCode::SubgraphUnavailable,
            BillingError::Store(_) => ErrorCode::Internal,
        }
    }
}

pub type Result<T> = std::result::Result<T, BillingError>;

pub fn invalid(message: impl Into<String>) -> BillingError {
    BillingError::Invalid(message.into())
}

pub fn conflict(message: impl Into<String>) -> BillingError {
    BillingError::Conflict(message.into())
}
