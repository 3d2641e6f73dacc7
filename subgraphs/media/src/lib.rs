//! parley-media: the media subgraph. Owns `Media`: uploads sent to signed URLs (on the platform's origin,
//! `/media/…`, forwarded by the router; or presigned straight to an S3 bucket), checked by their content,
//! images stripped of metadata and resized off the request path, downloads through signed, expiring links.
//! Chat, posts and users name media by reference (`Message.media`, `Post.attachments`, `User.avatar`).
//!
//! Layout (read top-down):
//! - [`rules`]: what an upload may be — its real type by content (magic bytes, never the declared type or
//!   name), the kinds each purpose allows, size limits, and image dimensions read from the header and
//!   checked before anything is decoded (decompression bombs).
//! - [`signing`]: links signed with HMAC-SHA256 over the media id, the variant and the expiry; expired or
//!   tampered ones are refused alike. [`presign`]: S3 presigned URLs (SigV4) that sign what the bucket
//!   must enforce (an upload's length and type, a download's response headers).
//! - [`files`]: the bytes, in an `object_store` (a local folder or an S3 bucket): uploads streamed in under a
//!   byte budget, files streamed out in ranges.
//! - [`uploads`]: the upload flow — a ticket, the bytes, then the checks on completion (refused: deleted
//!   and `Failed`; an image: `Processing`; anything else: `Ready`).
//! - [`processing`]: what an image becomes (upright, metadata stripped, three sizes, a blurhash), pure CPU;
//!   [`worker`]: the queue that runs it (the table, claims with a lease, retried after a crash).
//! - [`sweep`]: what media learns of uploads put to use, and the hourly sweep of those nobody used.
//! - [`routes`]: the HTTP side under `/media/`: the PUT of an upload, the streamed (ranged) download of a
//!   signed link.
//! - [`Media`]: the subgraph as a value; `schema/`: the GraphQL surface; `settings`: the signing key, the
//!   bucket, the size limit.
//! - `store`: the entities; `error`: [`MediaError`], one stable code per case; `fixtures` (feature
//!   `testing`): files for tests.

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
