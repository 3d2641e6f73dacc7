//! parley-protocol: the words the router and the subgraphs exchange, stated once for both sides (`router/`
//! and the kit depend on it; it depends on nothing).
//!
//! Layout: [`headers`] (HTTP headers the router sets or forwards), [`extensions`] (keys in GraphQL
//! `extensions`, request and error), [`live_front`] (what the router's shared live streams ask of users,
//! posts and chat), [`revocation`] (sessions signed out), [`ErrorCode`] (every code a client may see in
//! `extensions.code`).

/// HTTP headers between clients, the router and the subgraphs (lower case, as HTTP/2 and the engine want).
pub mod headers {
    /// Names a request in the router's and the subgraphs' logs and in the response: the client's, when sane,
    /// or one the router makes.
    pub const REQUEST_ID: &str = "x-request-id";
    /// The client's address, for per-IP limits; the router sets it when no proxy in front of it did.
    pub const FORWARDED_FOR: &str = "x-forwarded-for";
    /// `Bearer <access token>`.
    pub const AUTHORIZATION: &str = "authorization";
    /// The secret the router presents in `connection_init` of its shared subscription connection.
    pub const ROUTER_KEY: &str = "x-parley-router-key";
}

/// Keys in GraphQL `extensions`.
pub mod extensions {
    /// In a `subscribe` on the router's shared connection: the claims the router verified for that operation.
    pub const IDENTITY: &str = "parleyIdentity";
    /// In an error: the finer cause behind `code` (the limit exceeded, the engine's own code).
    pub const REASON: &str = "reason";
    /// The `reason` of an `UNAUTHENTICATED` a subgraph gives a token it refuses (expired, tampered, its
    /// session revoked): the router answers it with HTTP 401, as it does its own token refusals, so
    /// clients refresh or sign in again. ("Sign in to do this", without a token, stays a plain error.)
    pub const TOKEN_REFUSED: &str = "TOKEN_REFUSED";
    /// In a `RATE_LIMITED` error: seconds until the caller may try again.
    pub const RETRY_AFTER: &str = "retryAfter";
}

/// The router's live front (shared live streams, docs/live-sharing.md) and the internal endpoints it calls,
/// both behind the router key.
pub mod live_front {
    /// The account the front opens signed-in viewers' shared streams as: it sees what staff see, so one
    /// upstream carries every event some viewer may see, and the front keeps each viewer to their own. No
    /// account row has this id (users' ids are random); users signs its tokens for the router alone, with the
    /// role `user`, so it can read but moderate nothing.
    pub const ACCOUNT: &str = "00000000-0000-4000-8000-00000000f20e";
    /// The session of the front's tokens (never revoked: it is not a sign-in).
    pub const SESSION: &str = "00000000-0000-4000-8000-00000000f20f";
    /// `POST` on users: `{"token": "<access JWT for ACCOUNT>", "expiresAt": <Unix seconds>}`.
    pub const TOKEN_PATH: &str = "/internal/live-token";
    /// `POST` on posts and chat: `{"questions": [{"postId", "commentId"?, "viewers": [{"user", "session",
    /// "staff"}]}, …]}` (chat: `"chatId"`) → `{"answers": [["see" | "skip" | "end" | "revoked", …], …]}`,
    /// one per question in the viewers' order: whether each viewer sees this event, does not see it but
    /// keeps the stream, or has lost the right to it (the post gone from their view; their session revoked).
    pub const AUDIENCE_PATH: &str = "/internal/live-audience";
}

/// Sessions signed out before their access tokens expire, which users lists for the subgraphs and the
/// router's live front.
pub mod revocation {
    /// `GET` on users, `?since=<Unix ms>` → `{"sessions": [{"sid", "until": <Unix seconds>}], "now": <Unix
    /// ms>}`: the sessions revoked since then, each until its last access token expires.
    pub const PATH: &str = "/internal/revoked-sessions";
}

/// Every code a client may see in `extensions.code`. Stable: clients branch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Not a usable GraphQL request (too large, wrong content type, mutation over GET, …).
    BadRequest,
    /// An argument or input field fails its rule.
    BadUserInput,
    GraphqlParseFailed,
    GraphqlValidationFailed,
    /// Over a limit: depth, aliases, root fields, tokens, estimated cost.
    QueryTooComplex,
    /// An automatic persisted query's hash the router does not know (the client resends the query).
    PersistedQueryNotFound,
    /// No, or no valid, access token where one is needed.
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    RateLimited,
    /// A subgraph did not answer in time or at all; the rest of the answer still comes back.
    SubgraphUnavailable,
    /// A live stream's reader fell too far behind its events: this is the stream's last payload, and the
    /// client reloads what it shows and subscribes again.
    SubscriptionLagged,
    Internal,
}

impl ErrorCode {
    /// Every code, in the order above.
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::BadRequest,
        ErrorCode::BadUserInput,
        ErrorCode::GraphqlParseFailed,
        ErrorCode::GraphqlValidationFailed,
        ErrorCode::QueryTooComplex,
        ErrorCode::PersistedQueryNotFound,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::RateLimited,
        ErrorCode::SubgraphUnavailable,
        ErrorCode::SubscriptionLagged,
        ErrorCode::Internal,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            ErrorCode::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            ErrorCode::QueryTooComplex => "QUERY_TOO_COMPLEX",
            ErrorCode::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::SubgraphUnavailable => "SUBGRAPH_UNAVAILABLE",
            ErrorCode::SubscriptionLagged => "SUBSCRIPTION_LAGGED",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// The code spelled `code`, if it is one of Parley's.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        Self::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            assert!(code
                .as_str()
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_'));
        }
        assert_eq!(ErrorCode::parse("FieldsOnCorrectType"), None);
    }
}
