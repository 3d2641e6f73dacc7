//! What a subgraph process holds while it runs: its store, event relay and consumers, and token verifier.
//! A domain's `run` is: [`Runtime::start`] → build the schema → [`Runtime::serve`].

use std::future::Future;
use std::sync::Arc;

use async_graphql::{ObjectType, Schema, SubscriptionType};
use axum::Router;
use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::auth::JwtVerifier;
use crate::events::feed::FeedState;
use crate::events::{relay, spawn_consumers, EventBus, EventHandler, Events, InProcessBus};
use crate::server::{serve, ServerParts};
use crate::ServiceConfig;

pub struct Runtime {
    pub config: ServiceConfig,
    pub db: DatabaseConnection,
    pub events: Events,
    pub verifier: Arc<JwtVerifier>,
    /// Background tasks (relay, consumers), aborted when the server stops.
    tasks: Vec<JoinHandle<()>>,
}

impl Runtime {
    /// Connects the store, runs migrations and starts the outbox relay.
    pub async fn start<M: MigratorTrait>(config: ServiceConfig) -> Result<Self, DbErr> {
        let db = crate::store::connect::<M>(&config).await?;
        let bus: Arc<dyn EventBus> = InProcessBus::new();
        let (events, relay_task) = relay::start(db.clone(), config.name.clone(), bus);
        let verifier = Arc::new(JwtVerifier::new(config.jwks_url.clone()));
        Ok(Self {
            config,
            db,
            events,
            verifier,
            tasks: vec![relay_task],
        })
    }

    /// Consumes the configured event sources with `handler`.
    pub fn consume(&mut self, handler: Arc<dyn EventHandler>) {
        let tasks = spawn_consumers(self.db.clone(), &self.config.event_sources, handler);
        self.tasks.extend(tasks);
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
            feed: FeedState {
                db: self.db.clone(),
                source: self.config.name.clone(),
                events: self.events.clone(),
            },
            extra_routes,
        };
        let result = serve(schema, parts, listener, shutdown).await;
        for task in &self.tasks {
            task.abort();
        }
        result
    }
}
