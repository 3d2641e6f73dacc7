//! The billing subgraph's own settings: `[billing]` in the `PARLEY_CONFIG` file, then these variables.
//! Defaults run on one machine with the local provider.

use parley_kit::config::{ConfigError, Settings};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BillingSettings {
    /// `local` (Stripe's test mode, played in-process) or `stripe`. `PARLEY_BILLING_PROVIDER`.
    pub provider: String,
    /// `PARLEY_STRIPE_SECRET_KEY` (`sk_live_…` / `sk_test_…`).
    pub stripe_secret_key: Option<String>,
    /// The webhook endpoint's signing secret (`whsec_…`). `PARLEY_STRIPE_WEBHOOK_SECRET`.
    pub stripe_webhook_secret: Option<String>,
    /// `PARLEY_STRIPE_API_BASE`, default `https://api.stripe.com`.
    pub stripe_api_base: String,
    /// The local provider's webhook secret. `PARLEY_BILLING_LOCAL_WEBHOOK_SECRET`; default: made once and
    /// kept in `<data_dir>/billing-webhook.key`.
    pub local_webhook_secret: Option<String>,
    /// Where the local provider sends its webhooks; default `<public_url>/billing/webhooks/local`.
    /// `PARLEY_BILLING_LOCAL_WEBHOOK_URL`.
    pub local_webhook_url: Option<String>,
    /// A test clock (Stripe's test clocks): `POST /billing/test-clock` on the subgraph (never through the
    /// router) moves billing's time ahead. `PARLEY_BILLING_TEST_CLOCK`. Never in production.
    pub test_clock: bool,
    /// How often renewals, dunning retries and the reconciliation run, in ms. `PARLEY_BILLING_TICK_MS`,
    /// default 30,000.
    pub tick_ms: u64,
    /// Dunning: hours after a failed renewal each retry is made; after the last one fails the subscription
    /// is canceled. `PARLEY_BILLING_RETRY_HOURS`, default `24,72,168`.
    pub retry_hours: Vec<i64>,
    /// A payment still PENDING this long (its outcome never recorded: a crash, a provider timeout) is
    /// resolved by asking the provider. `PARLEY_BILLING_RECONCILE_AFTER_SECS`, default 60.
    pub reconcile_after_secs: i64,
    /// Fault injection for the tests: `hang_after_charge` stops a payment between the provider's answer and
    /// its record, as a crash there would. `PARLEY_BILLING_FAULT`.
    pub fault: Option<String>,
}

impl Default for BillingSettings {
    fn default() -> Self {
        Self {
            provider: "local".into(),
            stripe_secret_key: None,
            stripe_webhook_secret: None,
            stripe_api_base: "https://api.stripe.com".into(),
            local_webhook_secret: None,
            local_webhook_url: None,
            test_clock: false,
            tick_ms: 30_000,
            retry_hours: vec![24, 72, 168],
            reconcile_after_secs: 60,
            fault: None,
        }
    }
}

/// `v` as a `T`, or the error naming `name`.
fn number<T: std::str::FromStr>(name: &'static str, v: String) -> Result<T, Box<ConfigError>> {
    v.parse().map_err(|_| Box::new(ConfigError::Env(name, v)))
}

impl Settings for BillingSettings {
    fn apply_env(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let text = |name: &str| get(name).filter(|v| !v.is_empty());
        if let Some(v) = text("PARLEY_BILLING_PROVIDER") {
            self.provider = v;
        }
        if !matches!(self.provider.as_str(), "local" | "stripe") {
            return Err(ConfigError::Env(
                "PARLEY_BILLING_PROVIDER",
                self.provider.clone(),
            ));
        }
        if let Some(v) = text("PARLEY_STRIPE_SECRET_KEY") {
            self.stripe_secret_key = Some(v);
        }
        if let Some(v) = text("PARLEY_STRIPE_WEBHOOK_SECRET") {
            self.stripe_webhook_secret = Some(v);
        }
        if let Some(v) = text("PARLEY_STRIPE_API_BASE") {
            self.stripe_api_base = v;
        }
        if let Some(v) = text("PARLEY_BILLING_LOCAL_WEBHOOK_SECRET") {
            self.local_webhook_secret = Some(v);
        }
        if let Some(v) = text("PARLEY_BILLING_LOCAL_WEBHOOK_URL") {
            self.local_webhook_url = Some(v);
        }
        if let Some(v) = text("PARLEY_BILLING_TEST_CLOCK") {
            self.test_clock = matches!(v.as_str(), "1" | "true");
        }
        if let Some(v) = text("PARLEY_BILLING_TICK_MS") {
            self.tick_ms = number("PARLEY_BILLING_TICK_MS", v).map_err(|e| *e)?;
        }
        if let Some(v) = text("PARLEY_BILLING_RETRY_HOURS") {
            self.retry_hours = v
                .split(',')
                .map(|h| number("PARLEY_BILLING_RETRY_HOURS", h.trim().to_string()))
                .collect::<Result<_, _>>()
                .map_err(|e| *e)?;
        }
        if let Some(v) = text("PARLEY_BILLING_RECONCILE_AFTER_SECS") {
            self.reconcile_after_secs =
                number("PARLEY_BILLING_RECONCILE_AFTER_SECS", v).map_err(|e| *e)?;
        }
        if let Some(v) = text("PARLEY_BILLING_FAULT") {
            self.fault = Some(v);
        }
        if self.provider == "stripe"
            && (self.stripe_secret_key.is_none() || self.stripe_webhook_secret.is_none())
        {
            return Err(ConfigError::Env(
                "PARLEY_STRIPE_SECRET_KEY",
                "the stripe provider needs PARLEY_STRIPE_SECRET_KEY and PARLEY_STRIPE_WEBHOOK_SECRET"
                    .into(),
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
        let mut settings: BillingSettings =
            toml::from_str("tick_ms = 100\nretry_hours = [1]").expect("toml");
        settings
            .apply_env(&|key| (key == "PARLEY_BILLING_RETRY_HOURS").then(|| "1, 2,3".into()))
            .expect("env");
        assert_eq!(settings.retry_hours, vec![1, 2, 3]);
        assert_eq!(settings.tick_ms, 100);
        assert!(settings
            .apply_env(&|key| (key == "PARLEY_BILLING_PROVIDER").then(|| "paypal".into()))
            .is_err());
        let mut stripe = BillingSettings::default();
        assert!(stripe
            .apply_env(&|key| (key == "PARLEY_BILLING_PROVIDER").then(|| "stripe".into()))
            .is_err());
    }
}
