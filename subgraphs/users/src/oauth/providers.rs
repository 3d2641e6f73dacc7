//! The configured OpenID Connect providers and the protocol with them (the `openidconnect` crate): each
//! provider's metadata and signing keys found from its issuer's `/.well-known/openid-configuration` on first
//! use and kept an hour (found again at once when an ID token names a key not seen yet: the provider rotated
//! its keys), the authorization URL with a PKCE (S256) challenge and a nonce, and the code exchange whose ID
//! token is checked — signature, issuer, audience, expiry, nonce and, when present, the access token's hash.
//! The HTTP client follows no redirects (the crate's warning: a redirect would let a provider's answer
//! send Parley's requests elsewhere) and gives up after a few seconds.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenVerifier, CoreProviderMetadata,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, SignatureVerificationError, TokenResponse,
};
use tokio::sync::RwLock;

use crate::error::{Result, UsersError};
use crate::settings::OidcProvider;

/// How long discovered metadata and keys are used before they are fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);

/// A sign-in to send the browser to, and what finishing it needs (kept server-side).
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// Who signed in, as the provider's checked ID token says.
#[derive(Debug, Clone)]
pub struct Verified {
    pub provider: String,
    /// The provider's `sub`.
    pub subject: String,
    /// The email, lower-cased, only when the provider says it verified it.
    pub verified_email: Option<String>,
    pub name: Option<String>,
    pub preferred_username: Option<String>,
}

pub struct Providers {
    configured: BTreeMap<String, OidcProvider>,
    redirect_uris: Vec<String>,
    http: reqwest::Client,
    discovered: RwLock<HashMap<String, (CoreProviderMetadata, Instant)>>,
}

impl Providers {
    pub fn new(
        configured: BTreeMap<String, OidcProvider>,
        redirect_uris: Vec<String>,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            configured,
            redirect_uris,
            http,
            discovered: RwLock::new(HashMap::new()),
        })
    }

    /// The providers people may sign in with, by name.
    pub fn names(&self) -> Vec<String> {
        self.configured.keys().cloned().collect()
    }

    fn configured(&self, provider: &str) -> Result<&OidcProvider> {
        self.configured
            .get(provider)
            .ok_or_else(|| UsersError::Invalid(format!("provider: no provider {provider:?}")))
    }

    /// `uri` exactly as the allow-list (`PARLEY_OAUTH_REDIRECT_URIS`) has it.
    pub fn check_redirect_uri(&self, uri: &str) -> Result<()> {
        if self.redirect_uris.iter().any(|allowed| allowed == uri) {
            Ok(())
        } else {
            Err(UsersError::Invalid(
                "redirectUri: not one this server allows".into(),
            ))
        }
    }

    /// Where to send the browser to sign in at `provider`, coming back to `redirect_uri`.
    pub async fn authorize(&self, provider: &str, redirect_uri: &str) -> Result<Authorization> {
        self.configured(provider)?;
        self.check_redirect_uri(redirect_uri)?;
        let client = self.client(provider, redirect_uri, false).await?;
        let scopes = &self.configured(provider)?.scopes;
        let scopes: Vec<&str> = if scopes.is_empty() {
            vec!["email", "profile"]
        } else {
            scopes.iter().map(String::as_str).collect()
        };
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in scopes {
            request = request.add_scope(Scope::new(scope.to_string()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(Authorization {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges `code` (with the sign-in's PKCE verifier, at the redirect URI it was issued for) and checks
    /// the ID token that comes back.
    pub async fn exchange(
        &self,
        provider: &str,
        redirect_uri: &str,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<Verified> {
        let client = self.client(provider, redirect_uri, false).await?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(unavailable)?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(|err| match err {
                RequestTokenError::ServerResponse(answer) => UsersError::SignInRefused(format!(
                    "the provider refused the code ({})",
                    answer.error()
                )),
                RequestTokenError::Request(e) => unavailable(e),
                other => UsersError::SignInRefused(format!("the provider's answer: {other}")),
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| UsersError::SignInRefused("the provider sent no ID token".into()))?;
        let nonce = Nonce::new(nonce.to_string());
        let fresh;
        let mut verifier = client.id_token_verifier();
        let claims = match id_token.claims(&verifier, &nonce) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // A key not seen yet: the provider rotated its keys. Fetch them once more.
                fresh = self.client(provider, redirect_uri, true).await?;
                verifier = fresh.id_token_verifier();
                id_token.claims(&verifier, &nonce)
            }
            checked => checked,
        }
        .map_err(|e| UsersError::SignInRefused(format!("the ID token: {e}")))?;
        check_access_token_hash(&response, id_token, &verifier, claims.access_token_hash())?;
        Ok(Verified {
            provider: provider.to_string(),
            subject: claims.subject().as_str().to_string(),
            verified_email: claims
                .email()
                .filter(|_| claims.email_verified() == Some(true))
                .map(|email| email.as_str().trim().to_lowercase()),
            name: claims
                .name()
                .and_then(|name| name.get(None))
                .map(|name| name.as_str().to_string()),
            preferred_username: claims
                .preferred_username()
                .map(|name| name.as_str().to_string()),
        })
    }

    /// A client of `provider` for `redirect_uri`, over metadata found within the hour (or now, `fresh`).
    async fn client(
        &self,
        provider: &str,
        redirect_uri: &str,
        fresh: bool,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
    > {
        let config = self.configured(provider)?;
        let metadata = self.metadata(provider, config, fresh).await?;
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|_| UsersError::Invalid("redirectUri: not a URL".into()))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(config.client_id.clone()),
            config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }

    async fn metadata(
        &self,
        provider: &str,
        config: &OidcProvider,
        fresh: bool,
    ) -> Result<CoreProviderMetadata> {
        if !fresh {
            if let Some((metadata, at)) = self.discovered.read().await.get(provider) {
                if at.elapsed() < METADATA_TTL {
                    return Ok(metadata.clone());
                }
            }
        }
        let issuer = IssuerUrl::new(config.issuer.clone()).map_err(unavailable)?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(unavailable)?;
        self.discovered
            .write()
            .await
            .insert(provider.to_string(), (metadata.clone(), Instant::now()));
        Ok(metadata)
    }
}

/// The provider did not answer (or not as a provider does): said in the log, and to the caller as a
/// service that did not answer.
fn unavailable(err: impl std::fmt::Display) -> UsersError {
    tracing::warn!(error = %err, "OpenID Connect provider unavailable");
    UsersError::ProviderUnavailable
}

/// The ID token's `at_hash`, when it has one, must be the access token's: else the access token was
/// swapped for another's.
fn check_access_token_hash(
    response: &openidconnect::core::CoreTokenResponse,
    id_token: &openidconnect::core::CoreIdToken,
    verifier: &CoreIdTokenVerifier,
    expected: Option<&AccessTokenHash>,
) -> Result<()> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let refused = |e: String| UsersError::SignInRefused(format!("the access token hash: {e}"));
    let alg = id_token.signing_alg().map_err(|e| refused(e.to_string()))?;
    let key = id_token
        .signing_key(verifier)
        .map_err(|e| refused(e.to_string()))?;
    let actual = AccessTokenHash::from_token(response.access_token(), alg, key)
        .map_err(|e| refused(e.to_string()))?;
    if actual == *expected {
        Ok(())
    } else {
        Err(refused("does not match".into()))
    }
}
