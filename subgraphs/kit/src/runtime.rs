//! What a subgraph process holds while it runs: its store, event relay and consumers, and token verifier.
//! A subgraph runs as: [`Runtime::start`] → the domain builds its schema → [`Runtime::serve`]
//! ([`crate::subgraph`] does this for every domain).
//!
//! Without `redis_url` the process is the only instance: an in-process bus, and consumers pull the producers'
//! `/events` feeds. With it, events go through Redis Streams, several instances of a subgraph can run side by
//! side, and the relay and each consumer group run on whichever instance holds their lease.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{ObjectType, Schema, SubscriptionType};
use axum::Router;
use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::auth::JwtVerifier;
use crate::events::consumer::Named;
use crate::events::group::GroupConsumer;
use crate::events::log::LogState;
use crate::events::redis_bus::RedisBus;
use crate::events::{relay, spawn_consumers, EventBus, EventHandler, Events, InProcessBus};
use crate::lease::Leadership;
use crate::server::{serve, ServerParts};
use crate::ServiceConfig;

pub struct Runtime {
    pub config: ServiceConfig,
    pub db: DatabaseConnection,
    pub events: Events,
    pub verifier: Arc<JwtVerifier>,
    /// Set when events go through Redis.
    redis: Option<Arc<RedisBus>>,
    leadership: Leadership,
    /// This process among the subgraph's instances.
    pub instance: String,
    /// The address it serves on, once known (set before the domain builds; `None` in tests that only
    /// build).
    pub address: Option<std::net::SocketAddr>,
    /// Background tasks (relay, consumers), aborted when the server stops.
    tasks: Vec<JoinHandle<()>>,
}

impl Runtime {
    /// Connects the store (running migrations) and the bus, and starts the outbox relay.
    pub async fn start<M: MigratorTrait>(config: ServiceConfig) -> anyhow::Result<Self> {
        let db = crate::store::connect::<M>(&config).await?;
        let instance = format!("{}-{}", config.name, uuid::Uuid::now_v7().simple());
        let (bus, redis, leadership): (Arc<dyn EventBus>, _, _) = match &config.redis_url {
            Some(url) => {
                let redis =
                    RedisBus::connect(url, &config.name, config.event_stream_maxlen).await?;
                let leadership = Leadership::Redis {
                    conn: redis.conn.clone(),
                    instance: instance.clone(),
                    ttl: Duration::from_millis(config.event_takeover_ms.max(300)),
                };
                (redis.clone(), Some(redis), leadership)
            }
            None => (InProcessBus::new(), None, Leadership::Alone),
        };
        let (events, relay_task) =
            relay::start(db.clone(), config.name.clone(), bus, leadership.clone());
        let verifier = Arc::new(JwtVerifier::new(config.jwks_url.clone()));
        Ok(Self {
            config,
            db,
            events,
            verifier,
            redis,
            leadership,
            instance,
            address: None,
            tasks: vec![relay_task],
        })
    }

    /// Consumes the configured event sources with `handler`: from their Redis streams through this
    /// subgraph's consumer groups, or by pulling their `/events` feeds. (The kit calls it with the domain's
    /// handler; see [`crate::subgraph`].)
    pub fn consume(&mut self, handler: Arc<dyn EventHandler>) {
        let handler: Arc<dyn EventHandler> = Arc::new(Named {
            consumer: self.config.name.clone(),
            handler,
            events: self.events.clone(),
        });
        let Some(redis) = &self.redis else {
            let tasks = spawn_consumers(
                self.db.clone(),
                &self.config.event_sources,
                handler,
                self.config.router_key.as_deref(),
                self.config.event_max_deliveries.max(1),
            );
            self.tasks.extend(tasks);
            return;
        };
        for source in &self.config.event_sources {
            let consumer = GroupConsumer {
                client: redis.client.clone(),
                conn: redis.conn.clone(),
                source: source.name.clone(),
                group: self.config.name.clone(),
                consumer: self.instance.clone(),
                claim_after: Duration::from_millis(self.config.event_takeover_ms.max(300)),
                max_deliveries: self.config.event_max_deliveries.max(1),
            };
            let lease = format!("consume:{}:{}", self.config.name, source.name);
            let (db, handler, leadership) =
                (self.db.clone(), handler.clone(), self.leadership.clone());
            self.tasks.push(tokio::spawn(async move {
                leadership
                    .run(&lease, || consumer.clone().run(db.clone(), handler.clone()))
                    .await;
            }));
        }
    }

    /// Keeps a domain's background task (aborted with the others when the server stops).
    pub fn add_task(&mut self, task: JoinHandle<()>) {
        self.tasks.push(task);
    }

    /// Uses `verifier` instead of the one built from `jwks_url` (the users subgraph verifies against itself).
    pub fn set_verifier(&mut self, verifier: Arc<JwtVerifier>) {
        self.verifier = verifier;
    }

    /// Serves until `shutdown`, then stops the background tasks.
    pub async fn serve<Q, M, S>(
        self,
        schema: Schema<Q, M, S>,
        extra_routes: Router,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()>
    where
        Q: ObjectType + 'static,
        M: ObjectType + 'static,
        S: SubscriptionType + 'static,
    {
        let parts = ServerParts {
            name: self.config.name.clone(),
            db: self.db.clone(),
            verifier: self.verifier.clone(),
            router_key: self.config.router_key.clone(),
            log: LogState {
                db: self.db.clone(),
                source: self.config.name.clone(),
                events: self.events.clone(),
            },
            extra_routes,
        };
        // Every subgraph refuses signed-out sessions within a second or so (see `crate::revocation`).
        let revocations = tokio::spawn(crate::revocation::poll(
            self.verifier.revoked().clone(),
            self.verifier.revocations_url(),
            self.config.router_key.clone(),
        ));
        let result = serve(schema, parts, listener, shutdown).await;
        revocations.abort();
        for task in &self.tasks {
            task.abort();
        }
        result
    }
}
