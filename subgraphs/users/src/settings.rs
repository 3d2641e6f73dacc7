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
}

impl Default for UsersSettings {
    fn default() -> Self {
        Self {
            smtp_url: None,
            mail_from: "Parley <no-reply@parley.local>".into(),
            admin_emails: Vec::new(),
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
