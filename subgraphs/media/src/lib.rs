//! parley-media: the media subgraph, being built (issue 18). Not yet in the registry: these are the rules
//! the upload flow will stand on, each tested on its own.
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
//! - `store`: the entities; `error`: [`MediaError`], one stable code per case.

mod error;
pub mod files;
pub mod routes;
pub mod rules;
pub mod signing;
pub mod store;
pub mod uploads;

pub use error::MediaError;
