//! parley-media: the media subgraph. Owns `Media`: uploads through signed URLs on the platform's origin
//! (`/media/…`, forwarded by the router), checked by their content, stored through `object_store` (a folder
//! under the data dir), downloaded through signed, expiring links. Still to come (issue 18): image processing
//! (EXIF stripped, variants), S3 in production, events, and `Message.media` / `Post.attachments` /
//! `User.avatar`.
//!
//! Layout (read top-down):
//! - [`rules`]: what an upload may be — its real type by content (magic bytes, never the declared type or
//!   name), the kinds each purpose allows, size limits per purpose, and image dimensions read from the
//!   header and checked before anything is decoded (decompression bombs).
//! - [`signing`]: download URLs signed with HMAC-SHA256 over the media id, the variant and the expiry;
//!   expired or tampered ones are refused alike.
//! - [`files`]: the bytes, in an `object_store` (a local folder here): uploads streamed in under a byte
//!   budget, files streamed out in ranges.
//! - [`uploads`]: the upload flow — a ticket with a signed URL, the bytes PUT to it under the declared size,
//!   then checked on completion (refused: deleted and `Failed`; accepted: `Ready`).
//! - [`routes`]: the HTTP side under `/media/`: the PUT of an upload, the streamed (ranged) download of a
//!   signed link.
//! - [`Media`]: the subgraph as a value; `schema/`: the GraphQL surface; `settings`: the signing key.
//! - `store`: the entities; `error`: [`MediaError`], one stable code per case.

mod error;
pub mod files;
#[cfg(any(test, feature = "testing"))]
pub mod fixtures;
pub mod presign;
pub mod processing;
pub mod routes;
pub mod rules;
pub mod schema;
pub mod settings;
pub mod signing;
pub mod store;
pub mod sweep;
pub mod uploads;
pub mod worker;

use std::sync::Arc;

use async_graphql::SchemaBuilder;
use parley_kit::{Domain, Parts, Runtime};

pub use error::MediaError;
pub use migration_media::Migrator;

/// The media subgraph.
pub struct Media;

#[async_trait::async_trait]
impl Domain for Media {
    const NAME: &'static str = "media";
    const PORT: u16 = 4006;
    type Migrator = Migrator;
    /// Media learns from chat, posts and users which uploads were put to use (the sweep keeps those).
    type Handler = sweep::Projection;
    type Settings = settings::MediaSettings;
    type Query = schema::Query;
    type Mutation = schema::Mutation;
    type Subscription = schema::Subscription;

    fn schema() -> SchemaBuilder<schema::Query, schema::Mutation, schema::Subscription> {
        schema::builder()
    }

    /// The object store under `<data_dir>/media`, the signing key, the upload flow, its HTTP routes.
    async fn build(runtime: &mut Runtime, settings: Self::Settings) -> anyhow::Result<Parts<Self>> {
        let data_dir = runtime.config.data_dir.clone();
        let key = settings::signing_key(&settings, &data_dir)?;
        let mut uploads = uploads::Uploads::new(
            runtime.db.clone(),
            runtime.events.clone(),
            match settings.bucket()? {
                Some(bucket) => files::Files::s3(bucket)?,
                None => files::Files::local(&data_dir.join("media"))?,
            },
            signing::Signer::new(&key),
            runtime.config.public_url.clone(),
        );
        if let Some(mb) = settings.max_upload_mb {
            uploads.limits.content = mb.saturating_mul(1024 * 1024);
        }
        let uploads = Arc::new(uploads);
        runtime.add_task(tokio::spawn(worker::run(uploads.clone())));
        runtime.add_task(tokio::spawn(sweep::run(uploads.clone())));
        Ok(Parts {
            schema: schema::build(
                uploads.clone(),
                Arc::new(parley_kit::live::Live::new(
                    runtime.events.bus.clone(),
                    Self::NAME,
                )),
            ),
            routes: routes::routes(uploads),
            handler: sweep::Projection,
        })
    }
}
