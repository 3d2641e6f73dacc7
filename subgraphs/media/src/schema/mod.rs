//! The media subgraph's GraphQL surface (DESIGN §6): `Media` (an entity owned here), `createUpload` → an
//! `UploadTicket` with a signed URL for the bytes, `completeUpload` (the bytes checked), `deleteMedia`, and
//! `media(id)`. The rules live in `uploads` and `rules`; this layer only maps them.

use std::sync::Arc;

use async_graphql::{
    Context, EmptySubscription, Enum, InputObject, Object, Schema, SimpleObject, ID,
};
use chrono::{DateTime, Duration, Utc};
use parley_kit::auth::{identity, require_identity};
use parley_kit::error::to_graphql;
use parley_kit::ids::{parse_id, to_id};
use parley_kit::{ApiResult, ResultExt};

use crate::store::media::{self, Purpose, Status};
use crate::uploads::{NewUpload, Uploads};
use crate::MediaError;

pub type MediaSchema = Schema<Query, Mutation, EmptySubscription>;

/// How long a download link from `Media.url` works.
const LINK_TTL: Duration = Duration::minutes(15);

pub fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query, Mutation, EmptySubscription).enable_federation()
}

pub fn build(uploads: Arc<Uploads>) -> MediaSchema {
    builder().data(uploads).finish()
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

/// Sizes of an image: the original, and (once processing exists) 128 / 480 / 1080 px on the long side.
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
            Status::Pending | Status::Uploaded => MediaStatus::Pending,
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
    /// A signed link that works for 15 minutes; `null` until the media is READY. Variants other than
    /// ORIGINAL come with image processing.
    async fn url(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "MediaVariant::Original")] variant: MediaVariant,
    ) -> ApiResult<Option<String>> {
        if self.0.status != Status::Ready || variant != MediaVariant::Original {
            return Ok(None);
        }
        Ok(Some(
            uploads(ctx)?.download_url(self.0.id, "original", LINK_TTL),
        ))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Media `id` if the caller may see it, else `None` (for entities) — not found is not told apart.
async fn readable(ctx: &Context<'_>, id: &ID) -> ApiResult<Option<Media>> {
    let Ok(id) = parse_id(id) else {
        return Ok(None);
    };
    let viewer = identity(ctx).map(|me| me.user_id);
    match uploads(ctx)?.readable(viewer, id).await {
        Ok(row) => Ok(Some(Media(row))),
        Err(MediaError::NotFound) => Ok(None),
        Err(err) => Err(to_graphql(err)),
    }
}

pub struct Query;

#[Object]
impl Query {
    /// Media the caller may see (its owner; anyone for an avatar); `NOT_FOUND` otherwise.
    async fn media(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Media>> {
        parse_id(&id)?;
        match readable(ctx, &id).await? {
            Some(media) => Ok(Some(media)),
            None => Err(to_graphql(MediaError::NotFound)),
        }
    }

    #[graphql(entity)]
    async fn find_media_by_id(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Media>> {
        readable(ctx, &id).await
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

    /// Checks the uploaded bytes: READY, or `BAD_USER_INPUT` saying why (and nothing is kept).
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
