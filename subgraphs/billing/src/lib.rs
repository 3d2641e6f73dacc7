//! parley-billing: the billing subgraph. Owns `Plan`, `BillingSubscription` and `Invoice`, adds `plan`,
//! `billingSubscription`, `invoices` and `entitlements` to `User`, and tells the other domains by event what
//! each user is entitled to (media and chat enforce it).
//!
//! Layout (read top-down):
//! - [`money`] (integer minor units, proration), [`plans`] (the catalogue and its limits), [`lifecycle`]
//!   (INCOMPLETE → ACTIVE → PAST_DUE → CANCELED as a pure function), [`signature`] (Stripe's webhook
//!   signature, also the local provider's).
//! - [`provider`]: the payment provider trait, the local test provider and the Stripe adapter.
//! - [`idempotency`]: keys for the money mutations; [`service`]: the mutations and the one transition
//!   every payment outcome goes through (with compensation); [`ledger`]: what moved, insert-only.
//! - [`jobs`]: renewals, dunning retries, reconciliation, refunds; [`clock`]: billing's time (movable in
//!   tests); [`routes`]: the webhook endpoint and the test clock.
//! - `schema/`: the GraphQL surface; [`Billing`]: the subgraph as a value; `settings`, `store`, `error`.

pub mod clock;
mod error;
pub mod idempotency;
pub mod jobs;
pub mod ledger;
pub mod lifecycle;
pub mod money;
pub mod plans;
pub mod provider;
pub mod routes;
pub mod schema;
pub mod service;
pub mod settings;
pub mod signature;
pub mod store;

use std::sync::Arc;

use async_graphql::{EmptySubscription, SchemaBuilder};
use parley_kit::events::NoHandler;
use parley_kit::{Domain, Parts, Runtime};

pub use error::BillingError;
pub use migration_billing::Migrator;

/// The billing subgraph.
pub struct Billing;

#[async_trait::async_trait]
impl Domain for Billing {
    const NAME: &'static str = "billing";
    const PORT: u16 = 4009;
    type Migrator = Migrator;
    /// Billing consumes nothing: it is the source of what others are entitled to.
    type Handler = NoHandler;
    type Settings = settings::BillingSettings;
    type Query = schema::Query;
    type Mutation = schema::Mutation;
    type Subscription = EmptySubscription;

    fn schema() -> SchemaBuilder<schema::Query, schema::Mutation, EmptySubscription> {
        schema::builder()
    }

    /// The provider (local or Stripe), the service, and the jobs.
    async fn build(runtime: &mut Runtime, settings: Self::Settings) -> anyhow::Result<Parts<Self>> {
        let db = runtime.db.clone();
        let provider: Arc<dyn provider::Provider> = match settings.provider.as_str() {
            "stripe" => Arc::new(provider::stripe::StripeProvider::new(
                &settings.stripe_api_base,
                settings.stripe_secret_key.clone().unwrap_or_default(),
                settings.stripe_webhook_secret.clone().unwrap_or_default(),
            )),
            _ => {
                let secret = match &settings.local_webhook_secret {
                    Some(secret) => secret.clone(),
                    None => String::from_utf8_lossy(&parley_kit::store::local_secret(
                        &runtime.config.data_dir,
                        "billing-webhook.key",
                    )?)
                    .into_owned(),
                };
                let url = settings.local_webhook_url.clone().unwrap_or_else(|| {
                    format!(
                        "{}/billing/webhooks/local",
                        runtime.config.public_url.trim_end_matches('/')
                    )
                });
                Arc::new(provider::local::LocalProvider::new(
                    db.clone(),
                    secret,
                    Some(url),
                ))
            }
        };
        let test_clock = settings.test_clock;
        let service = Arc::new(service::Service {
            db: db.clone(),
            events: runtime.events.clone(),
            provider,
            clock: clock::Clock::new(db, test_clock),
            settings: Arc::new(settings),
            keys: idempotency::Keys::default(),
        });
        runtime.add_task(tokio::spawn(jobs::run(service.clone())));
        Ok(Parts {
            schema: schema::build(service.clone()),
            routes: routes::routes(service, test_clock),
            handler: NoHandler,
        })
    }
}
