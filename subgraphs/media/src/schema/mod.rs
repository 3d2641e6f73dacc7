//! The media subgraph's GraphQL surface (DESIGN §6): `Media` (an entity owned here), `createUpload` → an
//! `UploadTicket` with a signed URL for the bytes, `completeUpload` (the bytes checked), `deleteMedia`,
//! `media(id)`, and `mediaProcessed(id)` (an image's processing, followed live). The rules live in
//! `uploads` and `rules`; this layer only maps them.

use std::sync::Arc;

use async_graphql::{Context, Enum, InputObject, Object, Schema, SimpleObject, Subscription, ID};
use chrono::{DateTime, Duration, Utc};
use futures::{Stream, StreamExt};
use parley_kit::auth::{identity, require_identity};
use parley_kit::error::to_graphql;
use parley_kit::events::contracts::{MediaFailed, MediaProcessed};
use parley_kit::ids::{parse_id, to_id};
use parley_kit::live::Live;
use parley_kit::{ApiResult, ResultExt};

use crate::processing::Variant;
use crate::store::media::{self, Purpose, Status};
use crate::uploads::{NewUpload, Uploads};
use crate::MediaError;

pub type MediaSchema = Schema<Query, Mutation, Subscription>;

/// How long a download link from `Media.url` works.
const LINK_TTL: Duration = Duration::minutes(15);

pub fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query, Mutation, Subscription)
        .enable_federation()
        .enable_subscription_in_federation()
}

pub fn build(uploads: Arc<Uploads>, live: Arc<Live>) -> MediaSchema {
    builder().data(uploads).data(live).finish()
}

fn uploads<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a Arc<Uploads>> {
    ctx.data::<Arc<Uploads>>()
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "MediaKind")]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    File,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "MediaStatus")]
pub enum MediaStatus {
    Pending,
    Ready,
    Failed,
}

/// Sizes of an image: the original, and 128 / 480 / 1080 px on the long side (never enlarged).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "MediaVariant")]
pub enum MediaVariant {
    Original,
    Thumbnail,
    Small,
    Medium,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "MediaPurpose")]
pub enum MediaPurpose {
    Avatar,
    Post,
    Message,
}

impl From<MediaPurpose> for Purpose {
    fn from(p: MediaPurpose) -> Self {
        match p {
            MediaPurpose::Avatar => Purpose::Avatar,
            MediaPurpose::Post => Purpose::Post,
            MediaPurpose::Message => Purpose::Message,
        }
    }
}

#[derive(InputObject)]
pub struct CreateUploadInput {
    pub file_name: String,
    /// As the client believes it; the bytes decide.
    pub content_type: String,
    /// Bytes the client will send; more are refused as they arrive.
    pub size: i32,
    pub purpose: MediaPurpose,
}

#[derive(SimpleObject)]
pub struct HttpHeader {
    pub name: String,
    pub value: String,
}

/// Where and how to send an upload's bytes (a signed URL on the platform's origin).
#[derive(SimpleObject)]
pub struct UploadTicket {
    pub media: Media,
    pub upload_url: String,
    pub method: String,
    pub headers: Vec<HttpHeader>,
    pub expires_at: DateTime<Utc>,
}

// A reference to a user (owned by users); no description: an `extend type` takes none.
#[derive(SimpleObject)]
#[graphql(extends, name = "User")]
pub struct User {
    #[graphql(external)]
    pub id: ID,
}

pub struct Media(pub media::Model);

#[Object]
impl Media {
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    async fn kind(&self) -> MediaKind {
        match self.0.kind.as_deref() {
            Some("IMAGE") => MediaKind::Image,
            Some("VIDEO") => MediaKind::Video,
            Some("AUDIO") => MediaKind::Audio,
            _ => MediaKind::File,
        }
    }
    async fn status(&self) -> MediaStatus {
        match self.0.status {
            Status::Pending | Status::Uploaded | Status::Processing => MediaStatus::Pending,
            Status::Ready => MediaStatus::Ready,
            Status::Failed => MediaStatus::Failed,
        }
    }
    /// What the bytes are once checked (before that, what the client declared).
    async fn content_type(&self) -> &str {
        self.0.mime.as_deref().unwrap_or(&self.0.declared_type)
    }
    async fn size(&self) -> i32 {
        i32::try_from(self.0.size.unwrap_or(self.0.declared_size)).unwrap_or(i32::MAX)
    }
    async fn width(&self) -> Option<i32> {
        self.0.width.and_then(|w| i32::try_from(w).ok())
    }
    async fn height(&self) -> Option<i32> {
        self.0.height.and_then(|h| i32::try_from(h).ok())
    }
    async fn file_name(&self) -> &str {
        &self.0.file_name
    }
    async fn owner(&self) -> User {
        User {
            id: to_id(self.0.owner_id),
        }
    }
    /// A BlurHash of an image (a placeholder to paint while it loads), once READY.
    async fn blurhash(&self) -> Option<&str> {
        self.0.blurhash.as_deref()
    }
    /// A signed link that works for 15 minutes; `null` until the media is READY, and for a size other than
    /// ORIGINAL of what is not an image.
    async fn url(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "MediaVariant::Original")] variant: MediaVariant,
    ) -> ApiResult<Option<String>> {
        if self.0.status != Status::Ready {
            return Ok(None);
        }
        let variant = match variant {
            MediaVariant::Original => None,
            _ if self.0.variant_type.is_none() => return Ok(None),
            MediaVariant::Thumbnail => Some(Variant::Thumbnail),
            MediaVariant::Small => Some(Variant::Small),
            MediaVariant::Medium => Some(Variant::Medium),
        };
        Ok(Some(uploads(ctx)?.download_url(&self.0, variant, LINK_TTL)))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Media `id` if the caller may see it, else `None` — not found is not told apart. `referenced`: asked
/// for through a reference the router brings (`_entities`).
async fn readable(ctx: &Context<'_>, id: &ID, referenced: bool) -> ApiResult<Option<Media>> {
    let Ok(id) = parse_id(id) else {
        return Ok(None);
    };
    let viewer = identity(ctx).map(|me| me.user_id);
    match uploads(ctx)?.readable(viewer, id, referenced).await {
        Ok(row) => Ok(Some(Media(row))),
        Err(MediaError::NotFound) => Ok(None),
        Err(err) => Err(to_graphql(err)),
    }
}

pub struct Query;

#[Object]
impl Query {
    /// Media the caller may see (its owner; anyone for an avatar); `NOT_FOUND` otherwise. A message's
    /// media and a post's attachments are read through the message and the post.
    async fn media(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Media>> {
        parse_id(&id)?;
        match readable(ctx, &id, false).await? {
            Some(media) => Ok(Some(media)),
            None => Err(to_graphql(MediaError::NotFound)),
        }
    }

    /// A reference from another subgraph: trusted only when the router brings it (the router key), since
    /// chat and posts hand out references only to those who may see what holds them.
    #[graphql(entity)]
    async fn find_media_by_id(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Media>> {
        readable(ctx, &id, parley_kit::auth::via_router(ctx)).await
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> User {
        User { id }
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// A ticket to upload bytes to: send them with `method` and `headers` to `uploadUrl` before `expiresAt`,
    /// then call `completeUpload`.
    async fn create_upload(
        &self,
        ctx: &Context<'_>,
        input: CreateUploadInput,
    ) -> ApiResult<UploadTicket> {
        let me = require_identity(ctx)?.user_id;
        let ticket = uploads(ctx)?
            .create(
                me,
                NewUpload {
                    file_name: input.file_name,
                    content_type: input.content_type,
                    size: i64::from(input.size),
                    purpose: input.purpose.into(),
                },
            )
            .await
            .gql()?;
        Ok(UploadTicket {
            media: Media(ticket.media),
            upload_url: ticket.upload_url,
            method: ticket.method.to_string(),
            headers: ticket
                .headers
                .into_iter()
                .map(|(name, value)| HttpHeader { name, value })
                .collect(),
            expires_at: ticket.expires_at,
        })
    }

    /// Checks the uploaded bytes: READY (an image with its variants), PENDING if an image's processing takes
    /// longer than a few seconds (follow it with `mediaProcessed`), or `BAD_USER_INPUT` saying why (and
    /// nothing is kept).
    async fn complete_upload(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Media> {
        let me = require_identity(ctx)?.user_id;
        let id = parse_id(&id)?;
        Ok(Media(uploads(ctx)?.complete(me, id).await.gql()?))
    }

    /// The owner deletes the media and its files.
    async fn delete_media(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        let me = require_identity(ctx)?.user_id;
        let id = parse_id(&id)?;
        uploads(ctx)?.delete(me, id).await.gql()
    }
}

pub struct Subscription;

#[Subscription]
impl Subscription {
    /// The caller's upload `id` once its processing ends: one READY or FAILED `Media`, then the stream ends
    /// (at once if it already has).
    async fn media_processed(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<impl Stream<Item = Media>> {
        let me = require_identity(ctx)?.user_id;
        let id = parse_id(&id)?;
        let uploads = uploads(ctx)?.clone();
        // Listening before reading, so an end in between is not missed.
        let reader = uploads.clone();
        let ended = ctx.data::<Arc<Live>>()?.stream(
            &id.to_string(),
            |e| e.is::<MediaProcessed>() || e.is::<MediaFailed>(),
            move |_| {
                let reader = reader.clone();
                async move { reader.row(id).await.ok() }
            },
        );
        let now = uploads.row(id).await.gql()?;
        if now.owner_id != me {
            return Err(to_graphql(MediaError::NotFound));
        }
        let already = matches!(now.status, Status::Ready | Status::Failed).then_some(now);
        Ok(futures::stream::iter(already)
            .chain(ended)
            .take(1)
            .map(Media))
    }
}
