//! A subgraph as a value.
//!
//! A domain crate implements [`Domain`] once: its name and default port, its own migrations, the handler of
//! the events it consumes, its schema's shape and how it builds on a started [`Runtime`]. Every `Domain` is
//! a [`Subgraph`], the object-safe view that the `parley` registry lists and that `up`, `subgraph`,
//! `migrate`, `compose` and the guard-rail tests iterate; the kit does the rest (the SDL, migrations with
//! the kit's own tables, consuming exactly the declared events from their producers, serving).

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use async_graphql::{ObjectType, Schema, SchemaBuilder, SubscriptionType};
use async_trait::async_trait;
use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;
use tokio::net::TcpListener;

use crate::config::{EventSource, Settings};
use crate::events::contracts::{Consumed, DecodeError, EventKind};
use crate::events::tables::WithKitTables;
use crate::events::{EventEnvelope, Handler};
use crate::{Runtime, ServiceConfig};

/// Resolves when a subgraph should stop.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A domain's schema type.
pub type DomainSchema<D> =
    Schema<<D as Domain>::Query, <D as Domain>::Mutation, <D as Domain>::Subscription>;

/// What a domain builds on its runtime: the schema with its data, HTTP routes beside `/graphql` (empty for
/// most), and its event handler.
pub struct Parts<D: Domain> {
    pub schema: DomainSchema<D>,
    pub routes: axum::Router,
    pub handler: D::Handler,
}

/// One domain: what only it knows. See the module doc.
#[async_trait]
pub trait Domain: Sized + Send + Sync + 'static {
    /// Its name in the supergraph; also its store's file and database name and its event stream's.
    const NAME: &'static str;
    /// The port its URL carries in the checked-in supergraph (every router overrides it at start).
    const PORT: u16;
    /// Its own migrations; the kit adds its tables ([`WithKitTables`]).
    type Migrator: MigratorTrait;
    /// Its reaction to other domains' events; `Handler::Event` is all it is subscribed to.
    type Handler: Handler;
    /// Its own settings (`[<name>]` in the config file; `NoSettings` for most).
    type Settings: Settings;
    type Query: ObjectType + 'static;
    type Mutation: ObjectType + 'static;
    type Subscription: SubscriptionType + 'static;

    /// The schema's shape, without data: the SDL comes from it (no store, no server).
    fn schema() -> SchemaBuilder<Self::Query, Self::Mutation, Self::Subscription>;

    /// Builds the running parts on a started runtime (whose store is migrated); may add background tasks.
    async fn build(runtime: &mut Runtime, settings: Self::Settings) -> anyhow::Result<Parts<Self>>;

    /// Starts the runtime, builds, and starts consuming, without serving (what `run` does before it
    /// serves; tests use it to reach the schema and the store).
    async fn start(config: ServiceConfig) -> anyhow::Result<(Runtime, DomainSchema<Self>)> {
        let (runtime, schema, _) = start::<Self>(config, None).await?;
        Ok((runtime, schema))
    }
}

async fn start<D: Domain>(
    mut config: ServiceConfig,
    address: Option<SocketAddr>,
) -> anyhow::Result<(Runtime, DomainSchema<D>, axum::Router)> {
    if config.redis_url.is_some() && config.event_sources.is_empty() {
        // Through Redis a source is only a stream's name: default to the producers of what it consumes.
        let kinds = <D::Handler as Handler>::Event::KINDS;
        config.event_sources = sources_of(kinds)
            .into_iter()
            .map(|name| EventSource {
                name: name.to_string(),
                url: String::new(),
            })
            .collect();
    }
    let settings = config.settings::<D::Settings>()?;
    let mut runtime = Runtime::start::<D::Migrator>(config).await?;
    runtime.address = address;
    let Parts {
        schema,
        routes,
        handler,
    } = D::build(&mut runtime, settings).await?;
    if !<D::Handler as Handler>::Event::KINDS.is_empty() {
        runtime.consume(Arc::new(handler));
    }
    Ok((runtime, schema, routes))
}

/// The producers of `kinds`, sorted, once each.
fn sources_of(kinds: &[EventKind]) -> Vec<&'static str> {
    let sources: BTreeSet<_> = kinds.iter().map(|kind| kind.source).collect();
    sources.into_iter().collect()
}

/// The object-safe view of a [`Domain`]: what the registry holds.
#[async_trait]
pub trait Subgraph: Send + Sync {
    fn name(&self) -> &'static str;
    /// See [`Domain::PORT`].
    fn port(&self) -> u16;
    /// Every event kind it applies.
    fn consumes(&self) -> &'static [EventKind];
    /// Whether its handler takes `event` (decodes it as one of [`Self::consumes`]), without applying it.
    fn takes(&self, event: &EventEnvelope) -> Result<bool, DecodeError>;
    /// The subgraphs whose events it consumes (the producers of [`Self::consumes`]), sorted.
    fn sources(&self) -> Vec<&'static str> {
        sources_of(self.consumes())
    }
    /// Its federation SDL.
    fn sdl(&self) -> String;
    /// Runs its migrations (the kit's tables too) up, or `down` that many back.
    async fn migrate(&self, db: &DatabaseConnection, down: Option<u32>) -> Result<(), DbErr>;
    /// How many of its migrations `db` has not applied.
    async fn pending_migrations(&self, db: &DatabaseConnection) -> Result<usize, DbErr>;
    /// Serves on `listener` until `shutdown`.
    async fn run(
        &self,
        config: ServiceConfig,
        listener: TcpListener,
        shutdown: Shutdown,
    ) -> anyhow::Result<()>;
}

#[async_trait]
impl<D: Domain> Subgraph for D {
    fn name(&self) -> &'static str {
        D::NAME
    }

    fn port(&self) -> u16 {
        D::PORT
    }

    fn consumes(&self) -> &'static [EventKind] {
        <D::Handler as Handler>::Event::KINDS
    }

    fn takes(&self, event: &EventEnvelope) -> Result<bool, DecodeError> {
        Ok(<D::Handler as Handler>::Event::decode(event)?.is_some())
    }

    fn sdl(&self) -> String {
        D::schema()
            .finish()
            .sdl_with_options(async_graphql::SDLExportOptions::new().federation())
    }

    async fn migrate(&self, db: &DatabaseConnection, down: Option<u32>) -> Result<(), DbErr> {
        match down {
            None => WithKitTables::<D::Migrator>::up(db, None).await,
            Some(steps) => WithKitTables::<D::Migrator>::down(db, Some(steps)).await,
        }
    }

    async fn pending_migrations(&self, db: &DatabaseConnection) -> Result<usize, DbErr> {
        Ok(WithKitTables::<D::Migrator>::get_pending_migrations(db)
            .await?
            .len())
    }

    async fn run(
        &self,
        config: ServiceConfig,
        listener: TcpListener,
        shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        let (runtime, schema, routes) = start::<D>(config, Some(listener.local_addr()?)).await?;
        runtime.serve(schema, routes, listener, shutdown).await?;
        Ok(())
    }
}
