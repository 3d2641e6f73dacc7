//! The client's one error type: what went wrong, with a stable code a caller can match on.

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached, or its answer was not GraphQL.
    #[error("network: {0}")]
    Network(String),
    /// The server answered with a GraphQL error (`extensions.code`, e.g. `BAD_USER_INPUT`).
    #[error("{code}: {message}")]
    GraphQl { code: String, message: String },
    /// Signed out: no tokens, or the server refused the refresh token.
    #[error("signed out")]
    SignedOut,
    /// The WebSocket peer broke graphql-transport-ws.
    #[error("protocol: {0}")]
    Protocol(String),
}

impl ClientError {
    /// A stable code: the server's for GraphQL errors, the client's own otherwise.
    pub fn code(&self) -> &str {
        match self {
            Self::Network(_) => "NETWORK",
            Self::GraphQl { code, .. } => code,
            Self::SignedOut => "SIGNED_OUT",
            Self::Protocol(_) => "PROTOCOL",
        }
    }

    /// Whether a fresh access token would help.
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self, Self::GraphQl { code, .. } if code == "UNAUTHENTICATED")
    }
}

impl From<graphql_client::Error> for ClientError {
    /// A GraphQL error as the server wrote it: its `extensions.code` (`INTERNAL` when it has none).
    fn from(error: graphql_client::Error) -> Self {
        let code = error
            .extensions
            .as_ref()
            .and_then(|extensions| extensions.get("code"))
            .and_then(|code| code.as_str())
            .unwrap_or("INTERNAL")
            .to_string();
        Self::GraphQl {
            code,
            message: error.message,
        }
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(error: reqwest::Error) -> Self {
        Self::Network(error.to_string())
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for ClientError {
    fn from(error: tokio_tungstenite::tungstenite::Error) -> Self {
        Self::Network(error.to_string())
    }
}
