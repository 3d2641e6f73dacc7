//! The users subgraph's own settings: `[users]` in the `PARLEY_CONFIG` file, then these environment
//! variables. Defaults work on one machine (mail goes to files).

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
}

impl Default for UsersSettings {
    fn default() -> Self {
        Self {
            smtp_url: None,
            mail_from: "Parley <no-reply@parley.local>".into(),
            admin_emails: Vec::new(),
            access_token_ttl_secs: 900,
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
        if !(10..=900).contains(&self.access_token_ttl_secs) {
            return Err(ConfigError::Env(
                "PARLEY_ACCESS_TOKEN_TTL_SECS",
                format!("{} is not 10 to 900 seconds", self.access_token_ttl_secs),
            ));
        }
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
}
