//! The chat subgraph's own settings: `[chat]` in the `PARLEY_CONFIG` file, then these environment variables.
//! Everything here is the assistant's; without `PARLEY_ASSISTANT_URL` there is no assistant.

use parley_kit::config::{ConfigError, Settings};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatSettings {
    /// An OpenAI-compatible API's base URL (`https://api.openai.com/v1`; `/chat/completions` is added).
    /// `PARLEY_ASSISTANT_URL`; default none: no assistant.
    pub assistant_url: Option<String>,
    /// `PARLEY_ASSISTANT_MODEL`, default `gpt-4o-mini`.
    pub assistant_model: String,
    /// Sent as a bearer token. `PARLEY_ASSISTANT_API_KEY`; default none.
    pub assistant_api_key: Option<String>,
    /// `PARLEY_ASSISTANT_SYSTEM_PROMPT`.
    pub assistant_system_prompt: String,
    /// The chat's last messages it reads, at most. `PARLEY_ASSISTANT_CONTEXT_MESSAGES`, default 20.
    pub assistant_context_messages: u64,
    /// …and at most about this many tokens of them. `PARLEY_ASSISTANT_CONTEXT_TOKENS`, default 3,000.
    pub assistant_context_tokens: u64,
    /// An answer not finished by then ends with an error message. `PARLEY_ASSISTANT_TIMEOUT_MS`, default
    /// 60,000.
    pub assistant_timeout_ms: u64,
    /// Questions one user may ask a minute. `PARLEY_ASSISTANT_PER_MINUTE`, default 6.
    pub assistant_per_minute: u64,
    /// Tokens one user may spend a UTC day. `PARLEY_ASSISTANT_DAILY_TOKENS`, default 50,000.
    pub assistant_daily_tokens: u64,
    /// The growing answer is shown at most this often. `PARLEY_ASSISTANT_EDIT_MS`, default 250.
    pub assistant_edit_ms: u64,
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            assistant_url: None,
            assistant_model: "gpt-4o-mini".into(),
            assistant_api_key: None,
            assistant_system_prompt:
                "You are Parley's assistant, a member of this chat. Answer briefly \
                                      and helpfully."
                    .into(),
            assistant_context_messages: 20,
            assistant_context_tokens: 3_000,
            assistant_timeout_ms: 60_000,
            assistant_per_minute: 6,
            assistant_daily_tokens: 50_000,
            assistant_edit_ms: 250,
        }
    }
}

impl Settings for ChatSettings {
    fn apply_env(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let text = |key: &str| get(key).filter(|v| !v.trim().is_empty());
        if let Some(v) = get(parley_kit::assistant::URL_VAR) {
            self.assistant_url = Some(v).filter(|v| !v.trim().is_empty());
        }
        if let Some(v) = text("PARLEY_ASSISTANT_MODEL") {
            self.assistant_model = v;
        }
        if let Some(v) = text("PARLEY_ASSISTANT_API_KEY") {
            self.assistant_api_key = Some(v);
        }
        if let Some(v) = text("PARLEY_ASSISTANT_SYSTEM_PROMPT") {
            self.assistant_system_prompt = v;
        }
        for (key, field) in [
            (
                "PARLEY_ASSISTANT_CONTEXT_MESSAGES",
                &mut self.assistant_context_messages,
            ),
            (
                "PARLEY_ASSISTANT_CONTEXT_TOKENS",
                &mut self.assistant_context_tokens,
            ),
            (
                "PARLEY_ASSISTANT_TIMEOUT_MS",
                &mut self.assistant_timeout_ms,
            ),
            (
                "PARLEY_ASSISTANT_PER_MINUTE",
                &mut self.assistant_per_minute,
            ),
            (
                "PARLEY_ASSISTANT_DAILY_TOKENS",
                &mut self.assistant_daily_tokens,
            ),
            ("PARLEY_ASSISTANT_EDIT_MS", &mut self.assistant_edit_ms),
        ] {
            if let Some(v) = get(key) {
                *field = v.trim().parse().map_err(|_| ConfigError::Env(key, v))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assistant_is_configured_by_environment_and_off_without_an_endpoint() {
        let mut settings = ChatSettings::default();
        settings.apply_env(&|_| None).expect("env");
        assert_eq!(settings.assistant_url, None);
        let env = |key: &str| {
            match key {
                "PARLEY_ASSISTANT_URL" => Some("http://127.0.0.1:9/v1"),
                "PARLEY_ASSISTANT_PER_MINUTE" => Some("2"),
                "PARLEY_ASSISTANT_MODEL" => Some(" "),
                _ => None,
            }
            .map(str::to_string)
        };
        settings.apply_env(&env).expect("env");
        assert_eq!(
            settings.assistant_url.as_deref(),
            Some("http://127.0.0.1:9/v1")
        );
        assert_eq!(settings.assistant_per_minute, 2);
        assert_eq!(
            settings.assistant_model, "gpt-4o-mini",
            "a blank value changes nothing"
        );
        let bad = |key: &str| (key == "PARLEY_ASSISTANT_TIMEOUT_MS").then(|| "soon".to_string());
        assert!(ChatSettings::default().apply_env(&bad).is_err());
    }
}
