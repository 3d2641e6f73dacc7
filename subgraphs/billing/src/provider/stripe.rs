//! The Stripe adapter: Stripe's HTTP API as documented. Requests are form-encoded with a secret key as the
//! bearer token; every POST carries an `Idempotency-Key` (the payment id, or `refund-<payment id>`), which
//! Stripe keeps for 24 hours and answers with the first result. A charge is a PaymentIntent confirmed at
//! once (`confirm=true`, redirect-free methods only, `off_session` for renewals) with our payment id in its
//! metadata, which is how webhook events and searches find their way back to our rows. Each user is a
//! Customer (made once, key `customer-<user id>`); the first, on-session charge saves its payment method to
//! the customer (`setup_future_usage=off_session`), which is what lets renewals charge it later.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use super::{intent_charge, Charge, ChargeRequest, Outcome, Provider, ProviderError};

pub struct StripeProvider {
    api_base: String,
    secret_key: String,
    webhook_secret: String,
    http: reqwest::Client,
}

impl StripeProvider {
    /// `api_base` is `https://api.stripe.com` in production (tests point it at a local server).
    pub fn new(api_base: &str, secret_key: String, webhook_secret: String) -> Self {
        Self {
            api_base: api_base.trim_end_matches('/').to_string(),
            secret_key,
            webhook_secret,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                // Stripe never redirects its API; following one would send the key elsewhere.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }

    async fn post(
        &self,
        path: &str,
        key: &str,
        form: &[(&str, String)],
    ) -> Result<(StatusCode, Value), ProviderError> {
        let response = self
            .http
            .post(format!("{}{path}", self.api_base))
            .bearer_auth(&self.secret_key)
            .header("Idempotency-Key", key)
            .form(form)
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        Self::read(response).await
    }

    async fn read(response: reqwest::Response) -> Result<(StatusCode, Value), ProviderError> {
        let status = response.status();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(ProviderError::Unavailable(format!(
                "stripe answered {status}"
            )));
        }
        let body = response
            .json::<Value>()
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        Ok((status, body))
    }
}

/// Stripe's error message, for a refused request.
fn error_message(body: &Value) -> String {
    body.pointer("/error/message")
        .and_then(|m| m.as_str())
        .unwrap_or("the payment provider refused the request")
        .to_string()
}

#[async_trait]
impl Provider for StripeProvider {
    fn name(&self) -> &'static str {
        "stripe"
    }

    async fn customer(&self, user: Uuid) -> Result<Option<String>, ProviderError> {
        let form = [("metadata[parley_user_id]", user.to_string())];
        let (status, body) = self
            .post("/v1/customers", &format!("customer-{user}"), &form)
            .await?;
        if !status.is_success() {
            return Err(ProviderError::Rejected(error_message(&body)));
        }
        body.get("id")
            .and_then(|id| id.as_str())
            .map(|id| Some(id.to_string()))
            .ok_or_else(|| ProviderError::Unavailable("a customer without an id".into()))
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, ProviderError> {
        let mut form = vec![
            ("amount", request.amount_cents.to_string()),
            ("currency", request.currency.to_lowercase()),
            ("payment_method", request.payment_method.clone()),
            ("confirm", "true".into()),
            ("automatic_payment_methods[enabled]", "true".into()),
            ("automatic_payment_methods[allow_redirects]", "never".into()),
            ("metadata[parley_payment_id]", request.key.to_string()),
            ("metadata[parley_user_id]", request.user_id.to_string()),
        ];
        if let Some(customer) = &request.customer {
            form.push(("customer", customer.clone()));
        }
        if request.off_session {
            form.push(("off_session", "true".into()));
        } else {
            form.push(("setup_future_usage", "off_session".into()));
        }
        let (status, body) = self
            .post("/v1/payment_intents", &request.key.to_string(), &form)
            .await?;
        match status {
            s if s.is_success() => intent_charge(&body)
                .ok_or_else(|| ProviderError::Unavailable("payment intent not settled".into())),
            // A decline: 402 with the PaymentIntent inside the error.
            StatusCode::PAYMENT_REQUIRED => {
                let error = body.get("error").cloned().unwrap_or(Value::Null);
                let field =
                    |name: &str| error.get(name).and_then(|v| v.as_str()).map(str::to_string);
                let id = error
                    .pointer("/payment_intent/id")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string();
                let outcome = if field("code").as_deref() == Some("authentication_required") {
                    Outcome::RequiresAction
                } else {
                    Outcome::Failed {
                        code: field("decline_code")
                            .or_else(|| field("code"))
                            .unwrap_or_else(|| "card_declined".into()),
                        message: field("message")
                            .unwrap_or_else(|| "The card was declined.".into()),
                    }
                };
                Ok(Charge {
                    id,
                    key: request.key,
                    outcome,
                })
            }
            _ => Err(ProviderError::Rejected(error_message(&body))),
        }
    }

    async fn find(&self, key: Uuid) -> Result<Option<Charge>, ProviderError> {
        let response = self
            .http
            .get(format!("{}/v1/payment_intents/search", self.api_base))
            .bearer_auth(&self.secret_key)
            .query(&[("query", format!("metadata['parley_payment_id']:'{key}'"))])
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        let (status, body) = Self::read(response).await?;
        if !status.is_success() {
            return Err(ProviderError::Rejected(error_message(&body)));
        }
        Ok(body
            .get("data")
            .and_then(|d| d.as_array())
            .and_then(|found| found.iter().find_map(intent_charge)))
    }

    async fn refund(
        &self,
        charge_id: &str,
        amount_cents: i64,
        key: &str,
    ) -> Result<(), ProviderError> {
        let form = [
            ("payment_intent", charge_id.to_string()),
            ("amount", amount_cents.to_string()),
        ];
        let (status, body) = self.post("/v1/refunds", key, &form).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(ProviderError::Rejected(error_message(&body)))
        }
    }

    fn webhook_secret(&self) -> &str {
        &self.webhook_secret
    }
}
