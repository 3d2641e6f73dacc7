//! The notifications subgraph's own settings: `[notifications]` in the `PARLEY_CONFIG` file, then these
//! variables. Defaults work on one machine (mail goes to files).

use parley_kit::config::{ConfigError, Settings};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsSettings {
    /// SMTP server URL (`smtp://host:25`, `smtps://user:pass@host:465`). `PARLEY_SMTP_URL`, as users';
    /// without it digests go to `<data_dir>/mail/`.
    pub smtp_url: Option<String>,
    /// Sender of digests. `PARLEY_MAIL_FROM`, default `Parley <no-reply@parley.local>`.
    pub mail_from: String,
    /// At most one digest per user per this many seconds; a notification waits as long after its last
    /// change before it is mailed (time to read it in the app first). `PARLEY_DIGEST_SECONDS`, default 900.
    pub digest_seconds: u64,
    /// How long a chat message waits for its reader's app to take it live before it notifies.
    /// `PARLEY_MESSAGE_GRACE_MS`, default 3000.
    pub message_grace_ms: u64,
    /// Read notifications are pruned after this many days. `PARLEY_NOTIFICATION_RETENTION_DAYS`, default 90.
    pub retention_days: i64,
    /// The VAPID `sub` claim push services contact about abuse. `PARLEY_VAPID_SUBJECT`, default
    /// `mailto:admin@parley.local`.
    pub vapid_subject: String,
    /// Accept push endpoints on plain HTTP and private or loopback addresses (tests' local push service only:
    /// otherwise the subgraph could be aimed at the internal network). `PARLEY_PUSH_ALLOW_PRIVATE`.
    pub push_allow_private: bool,
}

impl Default for NotificationsSettings {
    fn default() -> Self {
        Self {
            smtp_url: None,
            mail_from: "Parley <no-reply@parley.local>".into(),
            digest_seconds: 900,
            message_grace_ms: 3000,
            retention_days: 90,
            vapid_subject: "mailto:admin@parley.local".into(),
            push_allow_private: false,
        }
    }
}

impl Settings for NotificationsSettings {
    fn apply_env(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("PARLEY_SMTP_URL") {
            self.smtp_url = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = get("PARLEY_MAIL_FROM") {
            self.mail_from = v;
        }
        if let Some(v) = get("PARLEY_DIGEST_SECONDS") {
            self.digest_seconds = v
                .parse()
                .map_err(|_| ConfigError::Env("PARLEY_DIGEST_SECONDS", v))?;
        }
        if let Some(v) = get("PARLEY_MESSAGE_GRACE_MS") {
            self.message_grace_ms = v
                .parse()
                .map_err(|_| ConfigError::Env("PARLEY_MESSAGE_GRACE_MS", v))?;
        }
        if let Some(v) = get("PARLEY_NOTIFICATION_RETENTION_DAYS") {
            self.retention_days = v
                .parse()
                .map_err(|_| ConfigError::Env("PARLEY_NOTIFICATION_RETENTION_DAYS", v))?;
        }
        if let Some(v) = get("PARLEY_VAPID_SUBJECT") {
            self.vapid_subject = v;
        }
        if let Some(v) = get("PARLEY_PUSH_ALLOW_PRIVATE") {
            self.push_allow_private = matches!(v.as_str(), "1" | "true");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_file_section() {
        let mut settings: NotificationsSettings =
            toml::from_str("digest_seconds = 60\nmessage_grace_ms = 10").expect("toml");
        settings
            .apply_env(&|key| (key == "PARLEY_DIGEST_SECONDS").then(|| "5".into()))
            .expect("env");
        assert_eq!(settings.digest_seconds, 5);
        assert_eq!(settings.message_grace_ms, 10);
        assert!(settings
            .apply_env(&|key| (key == "PARLEY_MESSAGE_GRACE_MS").then(|| "soon".into()))
            .is_err());
        assert!(toml::from_str::<NotificationsSettings>("nope = 1").is_err());
    }
}
