//! parley-search: the search subgraph. Finds users, posts, comments and the caller's chat messages in a
//! tantivy index it keeps from the other domains' events: every word must match, typos forgiven as
//! Meilisearch forgives them, the last word completed as it is typed, phrases and exclusions, filters,
//! three sorts, highlighted snippets — and only what the caller could read directly (DESIGN §4), decided
//! when the query runs.
//!
//! Layout (read top-down):
//! - [`documents`]: what is searchable, kept in the store and numbered by a change clock;
//!   [`projection`]: the events that write them (and the visibility rule's tables).
//! - [`index`]: the tantivy schema and analyzer, the index's generations on disk, the tail that keeps this
//!   instance's index current, rebuilding.
//! - [`query`]: what the user typed, as words, phrases and exclusions; [`access`]: what the caller may
//!   find; [`search`]: running a search (typo expansion, filters, sorts, counts, snippets).
//! - `schema/`: the GraphQL surface; [`Search`]: the subgraph as a value.
//! - `settings`, `store` (entities), `error` ([`SearchError`]).

pub mod access;
pub mod documents;
mod error;
pub mod index;
pub mod projection;
pub mod query;
pub mod schema;
pub mod search;
pub mod settings;
pub mod store;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_graphql::{EmptyMutation, EmptySubscription, SchemaBuilder};
use parley_kit::{Domain, Parts, Runtime};
use tokio::sync::Notify;

pub use error::SearchError;
pub use migration_search::Migrator;

/// The search subgraph.
pub struct Search;

#[async_trait::async_trait]
impl Domain for Search {
    const NAME: &'static str = "search";
    const PORT: u16 = 4008;
    type Migrator = Migrator;
    /// Search learns from users, social, posts and chat what there is to find and who may find it.
    type Handler = projection::Projection;
    type Settings = settings::SearchSettings;
    type Query = schema::Query;
    type Mutation = EmptyMutation;
    type Subscription = EmptySubscription;

    fn schema() -> SchemaBuilder<schema::Query, EmptyMutation, EmptySubscription> {
        schema::builder()
    }

    /// Opens (or builds) this instance's index and starts the tail that keeps it current.
    async fn build(runtime: &mut Runtime, settings: Self::Settings) -> anyhow::Result<Parts<Self>> {
        let db = runtime.db.clone();
        let port = runtime.address.map_or(Self::PORT, |a| a.port());
        let dir = index_dir(&runtime.config, &settings, port);
        let shelf = index::Shelf::open(dir, &db).await?;
        let wake = Arc::new(Notify::new());
        runtime.add_task(tokio::spawn(
            index::Tail {
                shelf: shelf.clone(),
                db: db.clone(),
                wake: wake.clone(),
                poll: settings.poll(),
            }
            .run(),
        ));
        Ok(Parts {
            schema: schema::build(db, shelf),
            routes: axum::Router::new(),
            handler: projection::Projection { wake },
        })
    }
}

/// `parley search reindex`: builds a new generation of this instance's index from the store and makes it the
/// one in use; a running instance switches to it at its next look and catches up from where it was built.
/// Returns the documents indexed.
pub async fn reindex(config: &parley_kit::ServiceConfig) -> anyhow::Result<u64> {
    let settings = config.settings::<settings::SearchSettings>()?;
    let db = parley_kit::store::connect::<Migrator>(config).await?;
    let dir = index_dir(
        config,
        &settings,
        if config.port == 0 {
            Search::PORT
        } else {
            config.port
        },
    );
    std::fs::create_dir_all(&dir)?;
    let generation = index::build(&dir, &db).await?;
    Ok(generation.reader.searcher().num_docs())
}

/// Where an instance serving on `port` keeps its index.
fn index_dir(
    config: &parley_kit::ServiceConfig,
    settings: &settings::SearchSettings,
    port: u16,
) -> std::path::PathBuf {
    // Each instance its own index: by default a folder per port, so instances sharing a data folder (tests,
    // one machine) do not share one.
    settings
        .index_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.join("search").join(port.to_string()))
}
