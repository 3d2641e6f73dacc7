//! parley-analytics: the analytics subgraph. Records every domain event from the bus and the events clients
//! send (`trackEvent`), keeps hourly and daily counts per event name, who was active each day and a
//! distinct-users sketch per day, and answers the admins' reports from them: active users, retention
//! cohorts, funnels, content per bucket, the routers' performance per operation, and one user's activity
//! (theirs to read too).
//!
//! Layout (read top-down):
//! - [`time`]: days and hours as integers, report buckets, the clock (movable in tests).
//! - [`validate`]: input rules; [`ingest`]: recording one event (the only write path);
//!   [`projection`]: the domain events and who acted in each.
//! - [`sketches`]: per-day HyperLogLog sketches; [`reports`]: the reports; [`perf`]: the routers'
//!   histograms, sampled, and the performance report; [`jobs`]: retention; [`partitions`]: PostgreSQL's
//!   day partitions of the raw events.
//! - [`export`]: reports as CSV behind signed links.
//! - `schema/`: the GraphQL surface; [`routes`]: downloads and the test clock; [`Analytics`]: the subgraph
//!   as a value; `settings`, `store` (entities), `error` ([`AnalyticsError`]).

mod error;
pub mod export;
pub mod ingest;
pub mod jobs;
pub mod partitions;
pub mod perf;
pub mod projection;
pub mod reports;
pub mod routes;
pub mod schema;
pub mod settings;
pub mod sketches;
pub mod store;
#[cfg(test)]
mod tests;
pub mod time;
pub mod validate;

use async_graphql::{EmptySubscription, SchemaBuilder};
use parley_kit::{Domain, Parts, Runtime};

pub use error::AnalyticsError;
pub use migration_analytics::Migrator;

/// The analytics subgraph.
pub struct Analytics;

#[async_trait::async_trait]
impl Domain for Analytics {
    const NAME: &'static str = "analytics";
    const PORT: u16 = 4010;
    type Migrator = Migrator;
    /// Every domain event of every producer.
    type Handler = projection::Projection;
    type Settings = settings::AnalyticsSettings;
    type Query = schema::Query;
    type Mutation = schema::Mutation;
    type Subscription = EmptySubscription;

    fn schema() -> SchemaBuilder<schema::Query, schema::Mutation, EmptySubscription> {
        schema::builder()
    }

    /// The clock, the retention job, the schema and the test clock's route.
    async fn build(runtime: &mut Runtime, settings: Self::Settings) -> anyhow::Result<Parts<Self>> {
        let db = runtime.db.clone();
        let clock = time::Clock::default();
        let key = match &settings.export_key {
            Some(key) => key.as_bytes().to_vec(),
            None => {
                parley_kit::store::local_secret(&runtime.config.data_dir, "analytics-export.key")?
            }
        };
        let links = export::Links {
            signer: parley_kit::signed::Signer::new(key),
            public_url: runtime.config.public_url.clone(),
        };
        let retention = settings.retention_days();
        runtime.add_task(tokio::spawn(jobs::run(
            db.clone(),
            clock.clone(),
            retention,
            settings.tick_ms,
        )));
        if !settings.scrape_urls.is_empty() {
            runtime.add_task(tokio::spawn(perf::run(
                db.clone(),
                clock.clone(),
                settings.scrape_urls.clone(),
                std::time::Duration::from_millis(settings.scrape_ms.max(100)),
                retention,
            )));
        }
        Ok(Parts {
            schema: schema::build(db.clone(), clock.clone(), links.clone()),
            routes: routes::routes(db, clock.clone(), links, retention, settings.test_clock),
            handler: projection::Projection { clock },
        })
    }
}
