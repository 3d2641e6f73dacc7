//! parley-notifications: the notifications subgraph. Owns `Notification`: made from other domains' events
//! (comments, replies, mentions, vote milestones, follows and requests, messages while away, group
//! invitations), grouped per target while unread, listed and counted in the app, streamed live
//! (`notificationAdded`), mailed as a digest over SMTP and pushed to browsers and devices (Web Push), each
//! kind × channel switchable by its recipient.
//!
//! Layout (read top-down):
//! - [`kinds`]: the kinds and channels, and which channels a kind uses by default.
//! - [`preferences`]: each recipient's choices per kind × channel.
//! - [`notify`]: a notice folding into its unread group (or starting one), with its event and push jobs.
//! - [`rules`]: who is told of which event, under the visibility rule; [`projection`]: the events applied.
//! - [`held`]: chat messages held for a moment, dropped if their reader's app took them live.
//! - [`digest`]: the digest mail and its signed one-click unsubscribe links; [`push`]: Web Push
//!   subscriptions, the VAPID key, the send queue with retries.
//! - [`routes`]: the unsubscribe page under `/notifications/`; `schema/`: the GraphQL surface;
//!   [`Notifications`]: the subgraph as a value.
//! - `settings`, `store` (entities), `error` ([`NotificationsError`]).

pub mod digest;
mod error;
pub mod held;
pub mod kinds;
pub mod notify;
pub mod preferences;
pub mod projection;
pub mod push;
pub mod routes;
pub mod rules;
pub mod schema;
pub mod settings;
pub mod store;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_graphql::SchemaBuilder;
use parley_kit::mail::Mailer;
use parley_kit::{Domain, Parts, Runtime};

pub use error::NotificationsError;
pub use migration_notifications::Migrator;

/// The notifications subgraph.
pub struct Notifications;

#[async_trait::async_trait]
impl Domain for Notifications {
    const NAME: &'static str = "notifications";
    const PORT: u16 = 4007;
    type Migrator = Migrator;
    /// Notifications learns from users, social, posts and chat what happened and who may hear of it.
    type Handler = projection::Projection;
    type Settings = settings::NotificationsSettings;
    type Query = schema::Query;
    type Mutation = schema::Mutation;
    type Subscription = schema::Subscription;

    fn schema() -> SchemaBuilder<schema::Query, schema::Mutation, schema::Subscription> {
        schema::builder()
    }

    /// The VAPID key and link key (made once, shared through the store), the mailer, and the background
    /// work: held messages, digests, pushes, pruning.
    async fn build(runtime: &mut Runtime, settings: Self::Settings) -> anyhow::Result<Parts<Self>> {
        let db = runtime.db.clone();
        let vapid = Arc::new(push::Vapid::load_or_create(&db).await?);
        let links = Arc::new(digest::Links::load_or_create(&db, &runtime.config.public_url).await?);
        let mailer = Mailer::new(
            &settings.mail_from,
            settings.smtp_url.as_deref(),
            runtime.config.data_dir.join("mail"),
        )?;
        let digests = digest::Digests {
            db: db.clone(),
            events: runtime.events.clone(),
            mailer,
            links: links.clone(),
            interval: chrono::Duration::seconds(settings.digest_seconds as i64),
        };
        let pusher = push::Pusher::new(
            db.clone(),
            runtime.events.clone(),
            vapid.clone(),
            settings.vapid_subject.clone(),
        )?;
        runtime.add_task(tokio::spawn(held::run(db.clone(), runtime.events.clone())));
        runtime.add_task(tokio::spawn(digest::run(digests)));
        runtime.add_task(tokio::spawn(push::run(pusher)));
        runtime.add_task(tokio::spawn(prune(db.clone(), settings.retention_days)));
        let live = Arc::new(parley_kit::live::Live::new(
            runtime.events.bus.clone(),
            Self::NAME,
        ));
        let endpoints = push::EndpointRule {
            allow_private: settings.push_allow_private,
        };
        Ok(Parts {
            schema: schema::build(db.clone(), live, vapid, endpoints),
            routes: routes::routes(db, links),
            handler: projection::Projection {
                grace: chrono::Duration::milliseconds(settings.message_grace_ms as i64),
            },
        })
    }
}

/// Read notifications older than the retention go, hourly.
async fn prune(db: sea_orm::DatabaseConnection, days: i64) {
    loop {
        match notify::prune_read(&db, days).await {
            Ok(n) if n > 0 => tracing::info!(pruned = n, "read notifications pruned"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning notifications failed"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
}
