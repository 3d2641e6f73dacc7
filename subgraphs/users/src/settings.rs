//! The users subgraph's own settings: `[users]` in the `PARLEY_CONFIG` file, then these environment
//! variables. Defaults work on one machine (mail goes to files).

use std::collections::BTreeMap;

use parley_kit::config::{ConfigError, Settings};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsersSettings {
    /// SMTP server URL (`smtp://user:pass@host:587`). `PARLEY_SMTP_URL`; without it mail goes to
    /// `<data_dir>/mail/`.
    pub smtp_url: Option<String>,
    /// Sender of outgoing mail. `PARLEY_MAIL_FROM`, default `Parley <no-reply@parley.local>`.
    pub mail_from: String,
    /// Emails that get the admin role once their owner verifies them. `PARLEY_ADMIN_EMAILS`, comma-separated; default
    /// none.
    pub admin_emails: Vec<String>,
    /// Lifetime of an access token in seconds, 10 to 900. `PARLEY_ACCESS_TOKEN_TTL_SECS`, default 900 (15
    /// minutes); clients refresh with their refresh token when it runs out.
    pub access_token_ttl_secs: i64,
    /// OpenID Connect providers people may sign in with, by name (`[users.oidc.<name>]`, or
    /// `PARLEY_OIDC_<NAME>_ISSUER`, `_CLIENT_ID`, `_CLIENT_SECRET`, `_SCOPES`); default none.
    pub oidc: BTreeMap<String, OidcProvider>,
    /// Where a provider may send the browser back after sign-in: exact URLs. `PARLEY_OAUTH_REDIRECT_URIS`,
    /// comma-separated; default none (no sign-in with a provider can start).
    pub oauth_redirect_uris: Vec<String>,
    /// How long a started provider sign-in may take, in seconds. `PARLEY_OAUTH_ATTEMPT_TTL_SECS`, default
    /// 600.
    pub oauth_attempt_ttl_secs: i64,
    /// Whether the chat assistant is offered: its account is made (and kept). On when
    /// `PARLEY_ASSISTANT_URL` is set (chat talks to that endpoint); default off.
    pub assistant: bool,
}

/// One OpenID Connect provider: found from its issuer's `/.well-known/openid-configuration`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OidcProvider {
    pub issuer: String,
    pub client_id: String,
    /// Absent for a public client (PKCE alone).
    pub client_secret: Option<String>,
    /// Asked for beside `openid` (default `email profile`).
    pub scopes: Vec<String>,
}

/// A provider's name: what clients pass as `provider`.
fn provider_name(raw: &str) -> Result<String, EnvError> {
    let name = raw.trim().to_lowercase();
    let ok = (1..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(name)
    } else {
        Err((
            "PARLEY_OIDC_<NAME>_ISSUER",
            format!("{raw:?} is not 1 to 32 letters, digits, _ or -"),
        ))
    }
}

/// A setting that is wrong: its variable, and why (a [`ConfigError::Env`] once out of here).
type EnvError = (&'static str, String);

impl Default for UsersSettings {
    fn default() -> Self {
        Self {
            smtp_url: None,
            mail_from: "Parley <no-reply@parley.local>".into(),
            admin_emails: Vec::new(),
            access_token_ttl_secs: 900,
            oidc: BTreeMap::new(),
            oauth_redirect_uris: Vec::new(),
            oauth_attempt_ttl_secs: 600,
            assistant: false,
        }
    }
}

impl Settings for UsersSettings {
    fn apply_env(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("PARLEY_SMTP_URL") {
            self.smtp_url = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = get("PARLEY_MAIL_FROM") {
            self.mail_from = v;
        }
        if let Some(v) = get("PARLEY_ADMIN_EMAILS") {
            self.admin_emails = v
                .split(',')
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
                .collect();
        }
        if let Some(v) = get("PARLEY_ACCESS_TOKEN_TTL_SECS") {
            self.access_token_ttl_secs = v.trim().parse().map_err(|_| {
                ConfigError::Env(
                    "PARLEY_ACCESS_TOKEN_TTL_SECS",
                    format!("{v:?} is not a number"),
                )
            })?;
        }
        if let Some(url) = get(parley_kit::assistant::URL_VAR) {
            self.assistant = !url.trim().is_empty();
        }
        self.apply_oidc_env(get)
            .map_err(|(key, why)| ConfigError::Env(key, why))?;
        if !(10..=900).contains(&self.access_token_ttl_secs) {
            return Err(ConfigError::Env(
                "PARLEY_ACCESS_TOKEN_TTL_SECS",
                format!("{} is not 10 to 900 seconds", self.access_token_ttl_secs),
            ));
        }
        Ok(())
    }
}

impl UsersSettings {
    /// Providers from the environment: the names `PARLEY_OIDC_PROVIDERS` lists (comma-separated), or else
    /// every `PARLEY_OIDC_<NAME>_ISSUER` set; each needs its issuer and client id.
    fn apply_oidc_env(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), EnvError> {
        let names: Vec<String> = match get("PARLEY_OIDC_PROVIDERS") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            None => std::env::vars()
                .filter_map(|(key, _)| {
                    key.strip_prefix("PARLEY_OIDC_")?
                        .strip_suffix("_ISSUER")
                        .map(str::to_string)
                })
                .collect(),
        };
        for raw in names {
            let name = provider_name(&raw)?;
            let key = |suffix: &str| format!("PARLEY_OIDC_{}_{suffix}", name.to_uppercase());
            let required = |suffix: &str| {
                get(&key(suffix)).filter(|v| !v.is_empty()).ok_or_else(|| {
                    (
                        "PARLEY_OIDC_<NAME>_…",
                        format!("{} is not set", key(suffix)),
                    )
                })
            };
            let provider = OidcProvider {
                issuer: required("ISSUER")?,
                client_id: required("CLIENT_ID")?,
                client_secret: get(&key("CLIENT_SECRET")).filter(|v| !v.is_empty()),
                scopes: get(&key("SCOPES"))
                    .map(|v| {
                        v.split([' ', ','])
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            self.oidc.insert(name, provider);
        }
        if let Some(v) = get("PARLEY_OAUTH_REDIRECT_URIS") {
            self.oauth_redirect_uris = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
        }
        if let Some(v) = get("PARLEY_OAUTH_ATTEMPT_TTL_SECS") {
            self.oauth_attempt_ttl_secs = v.trim().parse().map_err(|_| {
                (
                    "PARLEY_OAUTH_ATTEMPT_TTL_SECS",
                    format!("{v:?} is not a number"),
                )
            })?;
        }
        if !(1..=3600).contains(&self.oauth_attempt_ttl_secs) {
            return Err((
                "PARLEY_OAUTH_ATTEMPT_TTL_SECS",
                format!("{} is not 1 to 3600 seconds", self.oauth_attempt_ttl_secs),
            ));
        }
        // Names from the file are checked the same way.
        let named: Result<BTreeMap<_, _>, _> = std::mem::take(&mut self.oidc)
            .into_iter()
            .map(|(name, provider)| Ok((provider_name(&name)?, provider)))
            .collect();
        self.oidc = named?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_file_section() {
        let mut settings: UsersSettings =
            toml::from_str("admin_emails = [\"a@example.com\"]\nmail_from = \"A <a@x>\"")
                .expect("toml");
        settings
            .apply_env(&|key| (key == "PARLEY_ADMIN_EMAILS").then(|| " B@example.com , ".into()))
            .expect("env");
        assert_eq!(settings.admin_emails, ["b@example.com"]);
        assert_eq!(settings.mail_from, "A <a@x>");
        assert!(toml::from_str::<UsersSettings>("nope = 1").is_err());
    }

    #[test]
    fn providers_come_from_the_environment() {
        let env = |key: &str| {
            match key {
                "PARLEY_OIDC_PROVIDERS" => Some("Corp"),
                "PARLEY_OIDC_CORP_ISSUER" => Some("http://127.0.0.1:9/"),
                "PARLEY_OIDC_CORP_CLIENT_ID" => Some("parley"),
                "PARLEY_OIDC_CORP_SCOPES" => Some("email, profile"),
                "PARLEY_OAUTH_REDIRECT_URIS" => Some("http://a/cb, http://b/cb"),
                _ => None,
            }
            .map(str::to_string)
        };
        let mut settings = UsersSettings::default();
        settings.apply_env(&env).expect("env");
        let corp = &settings.oidc["corp"];
        assert_eq!(corp.issuer, "http://127.0.0.1:9/");
        assert_eq!(corp.client_secret, None);
        assert_eq!(corp.scopes, ["email", "profile"]);
        assert_eq!(settings.oauth_redirect_uris, ["http://a/cb", "http://b/cb"]);
        // A provider without its client id is a configuration error, not a provider that fails later.
        let missing = |key: &str| {
            (key != "PARLEY_OIDC_CORP_CLIENT_ID")
                .then(|| env(key))
                .flatten()
        };
        assert!(UsersSettings::default().apply_env(&missing).is_err());
    }
}
