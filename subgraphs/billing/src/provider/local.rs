//! The local provider: the embedded default, behaving like Stripe's test mode. Payment methods
//! `pm_card_visa` (succeeds), `pm_card_chargeDeclined` (`card_declined`),
//! `pm_card_chargeDeclinedInsufficientFunds` (`insufficient_funds`) and `pm_card_authenticationRequired`
//! (needs action), and `pm_card_chargeCustomerFail` (Stripe's card that attaches but whose later charges fail:
//! here the first, on-session payment succeeds and renewals decline); anything else is refused as Stripe
//! refuses an unknown payment method.
//!
//! It plays an outside service: what it charged is kept in its own table (`local_provider_charges`, in
//! billing's store only for convenience — billing's code never reads it) so it outlives a crash of billing,
//! and each outcome is also sent as signed `payment_intent.*` webhooks to the public webhook endpoint —
//! late, in random order and sometimes twice, as real providers do.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use rand::Rng;
use sea_orm::{DatabaseConnection, EntityTrait, Set};
use serde_json::json;
use uuid::Uuid;

use super::{Charge, ChargeRequest, Outcome, Provider, ProviderError};
use crate::signature;
use crate::store::local_charge;

/// The test payment methods and what a charge with one does (`off_session`: a renewal or retry).
pub fn outcome_of(payment_method: &str, off_session: bool) -> Option<Outcome> {
    Some(match payment_method {
        "pm_card_visa" => Outcome::Succeeded,
        "pm_card_chargeCustomerFail" if !off_session => Outcome::Succeeded,
        "pm_card_chargeDeclined" | "pm_card_chargeCustomerFail" => declined("card_declined"),
        "pm_card_chargeDeclinedInsufficientFunds" => declined("insufficient_funds"),
        "pm_card_authenticationRequired" => Outcome::RequiresAction,
        _ => return None,
    })
}

fn declined(code: &str) -> Outcome {
    Outcome::Failed {
        code: code.into(),
        message: match code {
            "insufficient_funds" => "Your card has insufficient funds.",
            _ => "Your card was declined.",
        }
        .into(),
    }
}

pub struct LocalProvider {
    db: DatabaseConnection,
    secret: String,
    /// Where webhooks go (the public origin's `/billing/webhooks/local`); `None`: not sent.
    webhook_url: Option<String>,
    http: reqwest::Client,
}

impl LocalProvider {
    pub fn new(db: DatabaseConnection, secret: String, webhook_url: Option<String>) -> Self {
        Self {
            db,
            secret,
            webhook_url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    fn charge_of(row: &local_charge::Model) -> Option<Charge> {
        let key = Uuid::parse_str(&row.key).ok()?;
        let outcome = match row.status.as_str() {
            "succeeded" => Outcome::Succeeded,
            "requires_action" => Outcome::RequiresAction,
            _ => declined(row.code.as_deref().unwrap_or("card_declined")),
        };
        Some(Charge {
            id: row.id.clone(),
            key,
            outcome,
        })
    }

    /// Sends the charge's outcome as a webhook: after a random delay, and one time in four twice, so
    /// deliveries arrive late, out of order and duplicated.
    fn send_webhook(&self, row: &local_charge::Model) {
        let Some(url) = self.webhook_url.clone() else {
            return;
        };
        let kind = match row.status.as_str() {
            "succeeded" => "payment_intent.succeeded",
            "requires_action" => "payment_intent.requires_action",
            _ => "payment_intent.payment_failed",
        };
        let failure = Self::charge_of(row).and_then(|c| c.outcome.failure());
        let event = json!({
            "id": format!("evt_{}", Uuid::now_v7().simple()),
            "object": "event",
            "type": kind,
            "created": Utc::now().timestamp(),
            "data": {"object": {
                "id": row.id,
                "object": "payment_intent",
                "amount": row.amount_cents,
                "currency": row.currency.to_lowercase(),
                "status": match row.status.as_str() {
                    "succeeded" => "succeeded",
                    "requires_action" => "requires_action",
                    _ => "requires_payment_method",
                },
                "metadata": {"parley_payment_id": row.key},
                "last_payment_error": failure.map(|(code, message)| json!({
                    "type": "card_error", "code": "card_declined", "decline_code": code, "message": message,
                })),
            }},
        })
        .to_string();
        let copies = if rand::thread_rng().gen_ratio(1, 4) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let (http, url, body, secret) = (
                self.http.clone(),
                url.clone(),
                event.clone(),
                self.secret.clone(),
            );
            let delay = Duration::from_millis(rand::thread_rng().gen_range(20..400));
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                // Signed when sent, as Stripe signs each delivery attempt.
                let header = signature::header(&secret, Utc::now().timestamp(), body.as_bytes());
                for attempt in 0..5u64 {
                    let sent = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("stripe-signature", &header)
                        .body(body.clone())
                        .send()
                        .await;
                    if sent.is_ok_and(|r| r.status().is_success()) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
                }
                tracing::warn!(%url, "local provider: webhook not delivered");
            });
        }
    }
}

#[async_trait]
impl Provider for LocalProvider {
    fn name(&self) -> &'static str {
        "local"
    }

    /// Test cards need no customer.
    async fn customer(&self, _user: Uuid) -> Result<Option<String>, ProviderError> {
        Ok(None)
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, ProviderError> {
        let Some(outcome) = outcome_of(&request.payment_method, request.off_session) else {
            return Err(ProviderError::Rejected(format!(
                "No such PaymentMethod: '{}'",
                request.payment_method
            )));
        };
        let key = request.key.to_string();
        let status = match outcome {
            Outcome::Succeeded => "succeeded",
            Outcome::RequiresAction => "requires_action",
            Outcome::Failed { .. } => "failed",
        };
        let row = local_charge::ActiveModel {
            key: Set(key.clone()),
            id: Set(format!("pi_{}", Uuid::now_v7().simple())),
            payment_method: Set(request.payment_method.clone()),
            amount_cents: Set(request.amount_cents),
            currency: Set(request.currency.clone()),
            status: Set(status.into()),
            code: Set(outcome.failure().map(|(code, _)| code)),
            refunded_cents: Set(0),
            created_at: Set(Utc::now()),
        };
        // The key is the primary key: a second charge with it finds the first (any parameters: like Stripe,
        // the first request's result is returned).
        let inserted = local_charge::Entity::insert(row)
            .on_conflict_do_nothing()
            .exec_without_returning(&self.db)
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        let row = local_charge::Entity::find_by_id(key)
            .one(&self.db)
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?
            .ok_or_else(|| ProviderError::Unavailable("charge not recorded".into()))?;
        if matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0) {
            self.send_webhook(&row);
        }
        Self::charge_of(&row).ok_or_else(|| ProviderError::Unavailable("bad charge record".into()))
    }

    async fn find(&self, key: Uuid) -> Result<Option<Charge>, ProviderError> {
        let row = local_charge::Entity::find_by_id(key.to_string())
            .one(&self.db)
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        Ok(row.as_ref().and_then(Self::charge_of))
    }

    async fn refund(
        &self,
        charge_id: &str,
        amount_cents: i64,
        _key: &str,
    ) -> Result<(), ProviderError> {
        use sea_orm::{ColumnTrait, QueryFilter};
        let row = local_charge::Entity::find()
            .filter(local_charge::Column::Id.eq(charge_id))
            .one(&self.db)
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?
            .ok_or_else(|| ProviderError::Rejected(format!("No such charge: '{charge_id}'")))?;
        if row.status != "succeeded" {
            return Err(ProviderError::Rejected("charge was not paid".into()));
        }
        // Billing refunds a payment at most once (one amount, one key): a repeat changes nothing.
        let refunded = row.refunded_cents.max(amount_cents.min(row.amount_cents));
        let mut active: local_charge::ActiveModel = row.into();
        active.refunded_cents = Set(refunded);
        local_charge::Entity::update(active)
            .exec(&self.db)
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        Ok(())
    }

    fn webhook_secret(&self) -> &str {
        &self.secret
    }
}
