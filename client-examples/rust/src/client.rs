//! [`Parley`]: one person's connection to the API over HTTP — tokens in memory, operations with the access
//! token, the refresh on `UNAUTHENTICATED` done once for every caller waiting on it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use graphql_client::{GraphQLQuery, QueryBody, Response};
use serde::{Deserialize, Serialize};

use crate::error::ClientError;
use crate::operations::{self, Login, Refresh, Register};

/// What signing in returns and the CLI keeps between runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    /// RFC 3339.
    pub access_token_expires_at: String,
    pub refresh_token: String,
    pub user_id: String,
    pub nickname: String,
}

// The three sign-in mutations return the same `Tokens` fragment, generated once per operation module.
macro_rules! tokens_from {
    ($($module:ident),*) => {$(
        impl From<operations::$module::Tokens> for Tokens {
            fn from(payload: operations::$module::Tokens) -> Self {
                Tokens {
                    access_token: payload.access_token,
                    access_token_expires_at: payload.access_token_expires_at,
                    refresh_token: payload.refresh_token,
                    user_id: payload.user.id,
                    nickname: payload.user.nickname,
                }
            }
        }
    )*};
}
tokens_from!(register, login, refresh);

/// A client of one Parley router; cheap to clone (the clones share the session).
#[derive(Clone)]
pub struct Parley {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    url: String,
    tokens: Mutex<Option<Tokens>>,
    /// Held while a refresh is in flight: later callers wait, then use its result.
    refreshing: tokio::sync::Mutex<()>,
    refreshes: AtomicU64,
}

impl Parley {
    /// A client of the router's GraphQL endpoint (`http://127.0.0.1:4000/graphql` for `parley up`).
    pub fn new(url: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                http: reqwest::Client::new(),
                url: url.to_string(),
                tokens: Mutex::new(None),
                refreshing: tokio::sync::Mutex::new(()),
                refreshes: AtomicU64::new(0),
            }),
        }
    }

    /// The GraphQL endpoint.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The same endpoint for WebSockets (`ws://…/graphql`).
    pub fn ws_url(&self) -> String {
        self.inner.url.replacen("http", "ws", 1)
    }

    pub fn tokens(&self) -> Option<Tokens> {
        self.lock_tokens().clone()
    }

    /// Signs in with tokens kept from an earlier run (the CLI's session file).
    pub fn set_tokens(&self, tokens: Option<Tokens>) {
        *self.lock_tokens() = tokens;
    }

    /// How many refreshes went to the server.
    pub fn refreshes(&self) -> u64 {
        self.inner.refreshes.load(Ordering::Relaxed)
    }

    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, Option<Tokens>> {
        // A panic elsewhere cannot leave the tokens half-written: they are replaced whole.
        self.inner
            .tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn access_token(&self) -> Option<String> {
        self.lock_tokens().as_ref().map(|t| t.access_token.clone())
    }

    pub async fn register(
        &self,
        email: &str,
        password: &str,
        name: &str,
        nickname: &str,
    ) -> Result<Tokens, ClientError> {
        let input = operations::register::RegisterInput {
            email: email.into(),
            password: password.into(),
            name: name.into(),
            nickname: nickname.into(),
        };
        let data = self
            .run::<Register>(operations::register::Variables { input })
            .await?;
        Ok(self.signed_in(data.register.into()))
    }

    pub async fn login(&self, email: &str, password: &str) -> Result<Tokens, ClientError> {
        let variables = operations::login::Variables {
            email: email.into(),
            password: password.into(),
        };
        let data = self.run::<Login>(variables).await?;
        Ok(self.signed_in(data.login.into()))
    }

    fn signed_in(&self, tokens: Tokens) -> Tokens {
        self.set_tokens(Some(tokens.clone()));
        tokens
    }

    /// Runs one operation as the signed-in person (or anonymously). An `UNAUTHENTICATED` answer (the access
    /// token expired) costs one refresh and one retry.
    pub async fn run<Q: GraphQLQuery>(
        &self,
        variables: Q::Variables,
    ) -> Result<Q::ResponseData, ClientError> {
        let body = Q::build_query(variables);
        let token = self.access_token();
        match self.post::<Q>(&body, token.as_deref()).await {
            Err(error) if error.is_unauthenticated() && token.is_some() => {
                self.refresh(token.as_deref()).await?;
                self.post::<Q>(&body, self.access_token().as_deref()).await
            }
            answer => answer,
        }
    }

    async fn post<Q: GraphQLQuery>(
        &self,
        body: &QueryBody<Q::Variables>,
        token: Option<&str>,
    ) -> Result<Q::ResponseData, ClientError> {
        let mut request = self.inner.http.post(&self.inner.url).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status();
        let answer: Response<Q::ResponseData> = response
            .json()
            .await
            .map_err(|e| ClientError::Network(format!("HTTP {status}: {e}")))?;
        if let Some(error) = answer.errors.and_then(|errors| errors.into_iter().next()) {
            return Err(error.into());
        }
        answer
            .data
            .ok_or_else(|| ClientError::Protocol("an answer without data or errors".into()))
    }

    /// Trades the refresh token for new tokens, once for everyone: a caller that saw `stale` fail waits for
    /// a refresh in flight and then uses its result rather than spending the (already spent) refresh token
    /// again. A refused refresh token signs out.
    pub async fn refresh(&self, stale: Option<&str>) -> Result<(), ClientError> {
        let _one_at_a_time = self.inner.refreshing.lock().await;
        if stale.is_some() && self.access_token().as_deref() != stale {
            return Ok(());
        }
        let refresh_token = self.tokens().ok_or(ClientError::SignedOut)?.refresh_token;
        self.inner.refreshes.fetch_add(1, Ordering::Relaxed);
        let body = Refresh::build_query(operations::refresh::Variables { refresh_token });
        match self.post::<Refresh>(&body, None).await {
            Ok(data) => {
                self.set_tokens(Some(data.refresh_token.into()));
                Ok(())
            }
            Err(ClientError::GraphQl { .. }) => {
                self.set_tokens(None);
                Err(ClientError::SignedOut)
            }
            // Offline: keep the refresh token for the next try.
            Err(error) => Err(error),
        }
    }
}
