//! Payment providers behind one trait. A charge is made under an idempotency key (the payment row's id): the
//! provider makes it at most once, and asking again with the same key returns the first outcome — which is
//! how the reconciliation resolves a payment whose outcome billing never recorded.
//!
//! Layout: the trait and its types here; [`local`] (the embedded default: Stripe's test-mode payment methods,
//! outcomes also sent as signed webhooks, late, shuffled and duplicated) and [`stripe`] (Stripe's HTTP API).
//! Both send Stripe-shaped webhook events, parsed once by [`parse_event`].

pub mod local;
pub mod stripe;

use async_trait::async_trait;
use serde::Deserialize;
use uuid::Uuid;

/// A charge to make.
#[derive(Debug, Clone)]
pub struct ChargeRequest {
    /// The payment's id: the idempotency key.
    pub key: Uuid,
    pub user_id: Uuid,
    /// The user's customer at the provider (see [`Provider::customer`]).
    pub customer: Option<String>,
    pub amount_cents: i64,
    pub currency: String,
    pub payment_method: String,
    /// A renewal or retry made without the customer present.
    pub off_session: bool,
}

/// What became of a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Declined: a machine code (`card_declined`, `insufficient_funds`) and a message for the customer.
    Failed {
        code: String,
        message: String,
    },
    /// The customer must authenticate (3-D Secure) first; treated as a failure with that reason.
    RequiresAction,
}

impl Outcome {
    /// (code, message) of an outcome that did not succeed.
    pub fn failure(&self) -> Option<(String, String)> {
        match self {
            Outcome::Succeeded => None,
            Outcome::Failed { code, message } => Some((code.clone(), message.clone())),
            Outcome::RequiresAction => Some((
                "authentication_required".into(),
                "This payment requires authentication.".into(),
            )),
        }
    }
}

/// A charge as the provider records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// The provider's id (`pi_…`).
    pub id: String,
    /// The idempotency key it was made with (our payment id).
    pub key: Uuid,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// No answer, or the provider failed: the outcome is unknown (the reconciliation asks again later).
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// The request itself was refused (an unknown payment method, a key reused with other parameters).
    #[error("{0}")]
    Rejected(String),
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// `local` or `stripe`: the webhook path's last segment.
    fn name(&self) -> &'static str;

    /// The provider's customer for `user`, made once (a payment method is saved to it at the first charge,
    /// so renewals can charge it off-session); `None` for a provider without customers.
    async fn customer(&self, user: Uuid) -> Result<Option<String>, ProviderError>;

    /// Charges once per key; the same key again returns the first outcome.
    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, ProviderError>;

    /// The charge made with `key`, if the provider ever received it.
    async fn find(&self, key: Uuid) -> Result<Option<Charge>, ProviderError>;

    /// Refunds `amount_cents` of charge `charge_id`, once per `key`.
    async fn refund(
        &self,
        charge_id: &str,
        amount_cents: i64,
        key: &str,
    ) -> Result<(), ProviderError>;

    /// The secret webhooks are signed with.
    fn webhook_secret(&self) -> &str;
}

/// A provider's webhook event, Stripe's shape: `{id, type, data: {object: PaymentIntent}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: WebhookData,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WebhookData {
    pub object: serde_json::Value,
}

impl WebhookEvent {
    /// The charge a `payment_intent.*` event reports, with our payment id from its metadata; `None` for other
    /// kinds or objects that are not ours.
    pub fn charge(&self) -> Option<Charge> {
        if !self.kind.starts_with("payment_intent.") {
            return None;
        }
        intent_charge(&self.data.object)
    }
}

/// A PaymentIntent object (as Stripe returns it) as a [`Charge`]; `None` without our metadata.
pub fn intent_charge(intent: &serde_json::Value) -> Option<Charge> {
    let id = intent.get("id")?.as_str()?.to_string();
    let key = intent
        .pointer("/metadata/parley_payment_id")
        .and_then(|k| k.as_str())
        .and_then(|k| Uuid::parse_str(k).ok())?;
    let outcome = match intent.get("status")?.as_str()? {
        "succeeded" => Outcome::Succeeded,
        "requires_action" => Outcome::RequiresAction,
        "requires_payment_method" | "canceled" => {
            let error = intent.get("last_payment_error");
            let field = |name: &str| {
                error
                    .and_then(|e| e.get(name))
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            };
            Outcome::Failed {
                code: field("decline_code")
                    .or_else(|| field("code"))
                    .unwrap_or_else(|| "payment_failed".into()),
                message: field("message").unwrap_or_else(|| "The payment failed.".into()),
            }
        }
        // processing, requires_confirmation, …: not an outcome yet.
        _ => return None,
    };
    Some(Charge { id, key, outcome })
}

/// Parses a webhook body (after its signature was verified).
pub fn parse_event(body: &[u8]) -> Option<WebhookEvent> {
    serde_json::from_slice(body).ok()
}
