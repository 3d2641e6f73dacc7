//! The upload flow, in three steps, so large bodies never pass through GraphQL:
//! 1. [`Uploads::create`]: the declared size is checked against the purpose, a `Pending` row is written and
//!    a ticket returned — a signed URL to PUT the bytes to, valid for [`UPLOAD_TTL`];
//! 2. [`Uploads::receive`] (the PUT): the signature is checked, the body streamed to the object store under
//!    the declared size (past it the upload is aborted and nothing kept); the row becomes `Uploaded`;
//! 3. [`Uploads::complete`]: the owner asks for the bytes to be checked — their real type by content, the
//!    kinds and size the purpose allows, image dimensions before any decoding. Refused: the file is deleted
//!    and the row `Failed`. Accepted (`MediaUploaded`): an image becomes `Processing` and waits for the
//!    [`crate::worker`] (completion waits a few seconds for it, then answers with the row as it is; the
//!    `mediaProcessed` subscription follows it from there); anything else is `Ready` at once.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::Stream;
use parley_kit::events::contracts::{MediaChanged, MediaDeleted, MediaProcessed, MediaUploaded};
use parley_kit::events::{append, Events};
use parley_kit::store::begin_write;
use sea_orm::{ActiveEnum, ActiveModelTrait, DatabaseConnection, EntityTrait, Set};
use tokio::sync::{broadcast, Notify};
use uuid::Uuid;

use crate::error::{invalid, MediaError, Result};
use crate::files::Files;
use crate::presign::Presign;
use crate::processing::Variant;
use crate::rules::{self, Kind, SizeLimits, HEAD_BYTES};
use crate::signing::Signer;
use crate::store::media::{self, Purpose, Status};

/// How long an upload URL works.
pub const UPLOAD_TTL: Duration = Duration::minutes(15);
/// The signed "variant" of an upload URL (download links sign their variant's name).
const UPLOAD: &str = "upload";
/// How long completing an image waits for its variants before answering with it still `Processing`.
pub const COMPLETE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The upload flow's handle.
pub struct Uploads {
    pub db: DatabaseConnection,
    /// `MediaProcessed` / `MediaDeleted` go out with the change that makes them true.
    pub events: Events,
    pub files: Files,
    pub signer: Signer,
    /// The router's public origin: upload and download URLs are under its `/media/`.
    pub public_url: String,
    /// Wakes the processing worker when an image is queued.
    pub work: Arc<Notify>,
    /// The id of each row the worker finished with (READY, FAILED, or left to retry).
    pub done: broadcast::Sender<Uuid>,
    /// The operator's ceilings: avatars' limit, and the most any plan's content limit can be (none by
    /// default: plans decide).
    pub limits: SizeLimits,
}

/// What a client declares before sending bytes.
pub struct NewUpload {
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub purpose: Purpose,
}

/// Where and how to send the bytes.
pub struct Ticket {
    pub media: media::Model,
    pub upload_url: String,
    pub method: &'static str,
    pub headers: Vec<(String, String)>,
    pub expires_at: DateTime<Utc>,
}

/// When an avatar's link expires: never in practice (9999-12-31). Avatars are public, shown beside every
/// post and message and kept in other domains' cards; the link stops working when the avatar is deleted.
pub const AVATAR_LINK_EXPIRES: i64 = 253_402_300_799;

/// Where an upload's original bytes live in the object store.
pub fn original(id: Uuid) -> String {
    format!("originals/{id}")
}

/// How a file is offered: shown for images, video and audio, saved for documents; under its given name.
pub fn disposition(m: &media::Model) -> String {
    let inline = matches!(m.kind.as_deref(), Some("IMAGE" | "VIDEO" | "AUDIO"));
    format!(
        "{}; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        percent_encode(&m.file_name)
    )
}

/// RFC 5987 encoding of a file name (`filename*=`).
pub fn percent_encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where variant `variant` of media `id` lives in the object store.
pub fn variant_path(id: Uuid, variant: Variant) -> String {
    format!("variants/{id}/{}", variant.name())
}

impl Uploads {
    pub fn new(
        db: DatabaseConnection,
        events: Events,
        files: Files,
        signer: Signer,
        public_url: String,
    ) -> Self {
        Self {
            db,
            events,
            files,
            signer,
            public_url,
            work: Arc::new(Notify::new()),
            done: broadcast::channel(64).0,
            limits: SizeLimits {
                content: u64::MAX,
                ..SizeLimits::default()
            },
        }
    }

    /// The event payload of a checked upload (with an avatar's lasting link).
    pub(crate) fn changed(&self, m: &media::Model) -> MediaChanged {
        let avatar = m.purpose == Purpose::Avatar && m.kind.as_deref() == Some("IMAGE");
        MediaChanged {
            media_id: m.id,
            owner_id: m.owner_id,
            purpose: m.purpose.to_value(),
            kind: m.kind.clone().unwrap_or_default(),
            mime: m.mime.clone().unwrap_or_default(),
            link: avatar.then(|| self.link(m.id, Variant::Small.name(), AVATAR_LINK_EXPIRES)),
        }
    }

    /// `user`'s limits: the content limit their plan grants (billing's entitlement, FREE's without one),
    /// never above the operator's ceiling.
    pub async fn limits_of(&self, user: Uuid) -> Result<SizeLimits> {
        let plan = parley_kit::entitlements::of(&self.db, user).await?;
        let granted = u64::try_from(plan.max_upload_mb)
            .unwrap_or(0)
            .saturating_mul(1024 * 1024);
        Ok(SizeLimits {
            avatar: self.limits.avatar,
            content: granted.min(self.limits.content),
        })
    }

    pub async fn create(&self, me: Uuid, input: NewUpload) -> Result<Ticket> {
        let file_name = input.file_name.trim();
        if file_name.is_empty()
            || file_name.chars().count() > 255
            || file_name.chars().any(char::is_control)
        {
            return Err(invalid(
                "fileName: 1 to 255 characters, no control characters",
            ));
        }
        if input.content_type.len() > 255 {
            return Err(invalid("contentType: at most 255 characters"));
        }
        let size = u64::try_from(input.size).map_err(|_| invalid("size: not a size"))?;
        rules::check_declared(input.purpose.rules(), size, &self.limits_of(me).await?)?;
        let now = Utc::now();
        let row = media::ActiveModel {
            id: Set(Uuid::now_v7()),
            owner_id: Set(me),
            purpose: Set(input.purpose),
            status: Set(Status::Pending),
            file_name: Set(file_name.to_string()),
            declared_type: Set(input.content_type.trim().to_string()),
            declared_size: Set(input.size),
            mime: Set(None),
            kind: Set(None),
            size: Set(None),
            width: Set(None),
            height: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            blurhash: Set(None),
            variant_type: Set(None),
            attempts: Set(0),
            claimed_at: Set(None),
            attached_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        let expires_at = now + UPLOAD_TTL;
        // The bytes are sent as they are, never as a type the client picks.
        let content_type = ("content-type", "application/octet-stream".to_string());
        let upload_url = match self.files.bucket() {
            // Straight to the bucket; S3 takes exactly the declared length (signed) and nothing else.
            Some(bucket) => bucket.presign(&Presign {
                method: "PUT",
                key: &original(row.id),
                now,
                expires_in: UPLOAD_TTL.num_seconds() as u64,
                headers: &[
                    ("content-length", input.size.to_string()),
                    content_type.clone(),
                ],
                query: &[],
            }),
            None => {
                let query = self.signer.query(row.id, UPLOAD, expires_at.timestamp());
                format!("{}/media/uploads/{}?{query}", self.public_url, row.id)
            }
        };
        Ok(Ticket {
            upload_url,
            method: "PUT",
            headers: vec![(content_type.0.into(), content_type.1)],
            expires_at,
            media: row,
        })
    }

    /// The bytes of upload `id`, sent to its signed URL (`expires`, `sig`).
    pub async fn receive<S, E>(&self, id: Uuid, expires: i64, sig: &str, body: S) -> Result<()>
    where
        S: Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        self.signer
            .verify(id, UPLOAD, expires, sig, Utc::now().timestamp())?;
        let row = self.row(id).await?;
        if row.status != Status::Pending {
            return Err(invalid("this upload has its bytes already"));
        }
        let max = u64::try_from(row.declared_size).unwrap_or(0);
        let stored = self.files.put_stream(&original(id), body, max).await?;
        let mut active: media::ActiveModel = row.into();
        active.status = Set(Status::Uploaded);
        active.size = Set(Some(i64::try_from(stored.size).unwrap_or(i64::MAX)));
        active.updated_at = Set(Utc::now());
        active.update(&self.db).await?;
        Ok(())
    }

    /// Checks the bytes of `me`'s upload `id`; the upload (`Ready`, or `Processing` if its variants take
    /// longer than [`COMPLETE_WAIT`]), or why it was refused.
    pub async fn complete(&self, me: Uuid, id: Uuid) -> Result<media::Model> {
        let row = self.row(id).await?;
        if row.owner_id != me {
            return Err(MediaError::NotFound);
        }
        let row = match row.status {
            Status::Ready | Status::Processing => return Ok(row),
            Status::Failed => return Err(invalid("this upload was refused")),
            Status::Pending if self.files.bucket().is_some() => self.arrived(row).await?,
            Status::Pending => return Err(invalid("nothing was uploaded yet")),
            Status::Uploaded => row,
        };
        let location = original(id);
        let head = self
            .files
            .read(&location, Some((0, Some(HEAD_BYTES as u64))))
            .await?
            .bytes()
            .await
            .map_err(|e| MediaError::Storage(e.to_string()))?;
        let size = u64::try_from(row.size.unwrap_or(0)).unwrap_or(0);
        let mut active: media::ActiveModel = row.clone().into();
        active.updated_at = Set(Utc::now());
        let limits = self.limits_of(row.owner_id).await?;
        let sniffed = match rules::check(row.purpose.rules(), &head, size, &limits) {
            Ok(sniffed) => sniffed,
            Err(refused) => {
                self.files.delete(&location).await?;
                active.status = Set(Status::Failed);
                active.update(&self.db).await?;
                return Err(refused);
            }
        };
        let image = sniffed.kind == Kind::Image;
        active.status = Set(if image {
            Status::Processing
        } else {
            Status::Ready
        });
        active.mime = Set(Some(sniffed.mime.to_string()));
        active.kind = Set(Some(format!("{:?}", sniffed.kind).to_uppercase()));
        let (width, height) = sniffed.dimensions.unzip();
        active.width = Set(width.map(|w| w as i64));
        active.height = Set(height.map(|h| h as i64));
        // Listening before the work is queued, so a fast worker's answer is not missed.
        let mut done = self.done.subscribe();
        let txn = begin_write(&self.db).await?;
        let checked = active.update(&txn).await?;
        append(&txn, id, &MediaUploaded(self.changed(&checked))).await?;
        if !image {
            append(&txn, id, &MediaProcessed(self.changed(&checked))).await?;
        }
        txn.commit().await?;
        self.events.wake();
        if !image {
            return Ok(checked);
        }
        self.work.notify_one();
        let finished = async {
            while let Ok(finished) = done.recv().await {
                if finished == id {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(COMPLETE_WAIT, finished).await;
        let now = self.row(id).await?;
        match now.status {
            Status::Failed => Err(invalid("file: the image cannot be decoded")),
            _ => Ok(now),
        }
    }

    /// An upload sent straight to the bucket: `Uploaded` with its size once the object is there.
    async fn arrived(&self, row: media::Model) -> Result<media::Model> {
        let size = match self.files.size(&original(row.id)).await {
            Ok(size) => size,
            Err(MediaError::NotFound) => return Err(invalid("nothing was uploaded yet")),
            Err(err) => return Err(err),
        };
        let mut active: media::ActiveModel = row.into();
        active.status = Set(Status::Uploaded);
        active.size = Set(Some(i64::try_from(size).unwrap_or(i64::MAX)));
        active.updated_at = Set(Utc::now());
        Ok(active.update(&self.db).await?)
    }

    /// Deletes `me`'s upload `id` and its files.
    pub async fn delete(&self, me: Uuid, id: Uuid) -> Result<bool> {
        let row = self.row(id).await?;
        if row.owner_id != me {
            return Err(MediaError::NotFound);
        }
        let txn = begin_write(&self.db).await?;
        media::Entity::delete_by_id(id).exec(&txn).await?;
        if row.status == Status::Ready {
            append(&txn, id, &MediaDeleted(self.changed(&row))).await?;
        }
        txn.commit().await?;
        self.events.wake();
        // After the row: a failed delete leaves orphan files (swept), never a row without its files.
        crate::worker::remove_files(self, id).await?;
        Ok(true)
    }

    /// Media `id` if `viewer` may see it: its owner; anyone for an avatar; anyone the router brings a
    /// reference for (`referenced`: a message's media, a post's attachment — chat and posts returned the
    /// reference only to whom the chat's or the post's rule lets see it), once READY.
    pub async fn readable(
        &self,
        viewer: Option<Uuid>,
        id: Uuid,
        referenced: bool,
    ) -> Result<media::Model> {
        let row = self.row(id).await?;
        let ready = row.status == Status::Ready;
        if viewer == Some(row.owner_id) || (ready && (row.purpose == Purpose::Avatar || referenced))
        {
            Ok(row)
        } else {
            Err(MediaError::NotFound)
        }
    }

    /// A link to `variant` of media `m` that works for `ttl`: presigned to the bucket when the files are in
    /// S3 (which then answers with the checked type and name, whatever was stored), else a signed link here.
    pub fn download_url(
        &self,
        m: &media::Model,
        variant: Option<Variant>,
        ttl: Duration,
    ) -> String {
        let now = Utc::now();
        let name = variant.map_or("original", Variant::name);
        let Some(bucket) = self.files.bucket() else {
            return self.link(m.id, name, (now + ttl).timestamp());
        };
        let (key, mime) = match variant {
            None => (original(m.id), m.mime.clone()),
            Some(v) => (variant_path(m.id, v), m.variant_type.clone()),
        };
        bucket.presign(&Presign {
            method: "GET",
            key: &key,
            now,
            expires_in: ttl.num_seconds().max(1) as u64,
            headers: &[],
            query: &[
                (
                    "response-content-type",
                    mime.unwrap_or_else(|| "application/octet-stream".into()),
                ),
                ("response-content-disposition", disposition(m)),
            ],
        })
    }

    /// A link to `variant` of media `id` that works until `expires` (Unix seconds).
    fn link(&self, id: Uuid, variant: &str, expires: i64) -> String {
        let query = self.signer.query(id, variant, expires);
        format!("{}/media/files/{id}/{variant}?{query}", self.public_url)
    }

    /// Media `id`, `Ready`, if a link (`expires`, `sig`) to its `variant` is good.
    pub async fn ready_for_link(
        &self,
        id: Uuid,
        variant: &str,
        expires: i64,
        sig: &str,
    ) -> Result<media::Model> {
        self.signer
            .verify(id, variant, expires, sig, Utc::now().timestamp())?;
        let row = self.row(id).await?;
        if row.status != Status::Ready {
            return Err(MediaError::NotFound);
        }
        Ok(row)
    }

    pub(crate) async fn row(&self, id: Uuid) -> Result<media::Model> {
        media::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(MediaError::NotFound)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use bytes::Bytes;

    use super::*;
    pub(crate) use crate::fixtures::{pdf, png};

    fn png_header(len: usize) -> Vec<u8> {
        crate::fixtures::png_header(640, 480, len)
    }

    async fn uploads() -> Arc<Uploads> {
        testing("http://127.0.0.1:4000").await
    }

    /// An upload flow on a fresh SQLite store and folder, its URLs under `public_url`, its worker running.
    pub(crate) async fn testing(public_url: &str) -> Arc<Uploads> {
        let uploads = idle(public_url).await;
        tokio::spawn(crate::worker::run(uploads.clone()));
        uploads
    }

    /// As [`testing`], without a worker.
    pub(crate) async fn idle(public_url: &str) -> Arc<Uploads> {
        let dir = parley_kit::testing::temp_dir("media-uploads");
        let url = format!("sqlite://{}?mode=rwc", dir.join("media.db").display());
        let db = parley_kit::store::connect_url::<migration_media::Migrator>(&url, 2)
            .await
            .expect("store");
        let (events, _relay) = parley_kit::events::relay::start(
            db.clone(),
            "media".into(),
            parley_kit::events::InProcessBus::new(),
            parley_kit::lease::Leadership::Alone,
        );
        Arc::new(Uploads::new(
            db,
            events,
            Files::local(&dir.join("files")).expect("files"),
            Signer::new(b"test key"),
            public_url.into(),
        ))
    }

    /// A ticket of `me`'s for `bytes` (named `name`, for `purpose`) with the bytes sent to it; its id.
    pub(crate) async fn received(u: &Uploads, me: Uuid, bytes: Vec<u8>, purpose: Purpose) -> Uuid {
        let ticket = u
            .create(
                me,
                declared("a.png", "image/png", bytes.len() as i64, purpose),
            )
            .await
            .expect("ticket");
        let (expires, sig) = signed(&ticket);
        u.receive(ticket.media.id, expires, &sig, body(bytes))
            .await
            .expect("received");
        ticket.media.id
    }

    /// The `expires` and `sig` of a ticket's URL.
    pub(crate) fn signed(ticket: &Ticket) -> (i64, String) {
        let query = ticket.upload_url.split_once('?').expect("query").1;
        let value = |key: &str| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix(&format!("{key}=")))
                .expect("in the query")
                .to_string()
        };
        (value("expires").parse().expect("expires"), value("sig"))
    }

    pub(crate) fn body(
        bytes: Vec<u8>,
    ) -> impl Stream<Item = std::result::Result<Bytes, String>> + Unpin {
        futures::stream::iter(vec![Ok(Bytes::from(bytes))])
    }

    pub(crate) fn declared(
        name: &str,
        content_type: &str,
        size: i64,
        purpose: Purpose,
    ) -> NewUpload {
        NewUpload {
            file_name: name.into(),
            content_type: content_type.into(),
            size,
            purpose,
        }
    }

    #[tokio::test]
    async fn a_png_named_jpg_is_stored_as_the_png_it_is() {
        let u = uploads().await;
        let me = Uuid::now_v7();
        let bytes = png(640, 480);
        let size = bytes.len() as i64;
        let ticket = u
            .create(me, declared("me.jpg", "image/jpeg", size, Purpose::Avatar))
            .await
            .expect("ticket");
        assert!(ticket
            .upload_url
            .starts_with("http://127.0.0.1:4000/media/uploads/"));
        let (expires, sig) = signed(&ticket);
        let id = ticket.media.id;
        // A tampered signature is refused, and so is completing before the bytes came.
        assert_eq!(
            u.receive(id, expires, "AAAA", body(bytes.clone())).await,
            Err(MediaError::BadLink)
        );
        assert!(u.complete(me, id).await.is_err());
        u.receive(id, expires, &sig, body(bytes.clone()))
            .await
            .expect("received");
        // Only once, and only its owner completes it.
        assert!(u
            .receive(id, expires, &sig, body(bytes.clone()))
            .await
            .is_err());
        assert_eq!(
            u.complete(Uuid::now_v7(), id).await.err(),
            Some(MediaError::NotFound)
        );
        let ready = u.complete(me, id).await.expect("ready");
        assert_eq!(ready.status, Status::Ready);
        assert_eq!(ready.mime.as_deref(), Some("image/png"));
        assert_eq!((ready.width, ready.height), (Some(640), Some(480)));
        assert!(ready.blurhash.is_some());
        // READY means every variant is there.
        for variant in crate::processing::VARIANTS {
            assert!(
                u.files
                    .size(&variant_path(id, variant))
                    .await
                    .expect("variant")
                    > 0
            );
        }
        assert_eq!(
            ready.file_name, "me.jpg",
            "the name is shown back, never trusted"
        );
    }

    #[tokio::test]
    async fn what_the_purpose_refuses_leaves_nothing() {
        let u = uploads().await;
        let me = Uuid::now_v7();
        // Declared too large: no ticket at all.
        assert!(u
            .create(
                me,
                declared("big.png", "image/png", 50 * 1024 * 1024, Purpose::Avatar)
            )
            .await
            .is_err());
        // More bytes than declared: aborted as they stream.
        let ticket = u
            .create(me, declared("a.png", "image/png", 100, Purpose::Avatar))
            .await
            .expect("ticket");
        let (expires, sig) = signed(&ticket);
        assert_eq!(
            u.receive(ticket.media.id, expires, &sig, body(png_header(5_000)))
                .await,
            Err(MediaError::TooLarge { max: 100 })
        );
        // Text declared as an image: refused on completion, the file deleted, the row failed.
        let ticket = u
            .create(me, declared("cat.png", "image/png", 40, Purpose::Avatar))
            .await
            .expect("ticket");
        let (expires, sig) = signed(&ticket);
        let id = ticket.media.id;
        u.receive(
            id,
            expires,
            &sig,
            body(b"not an image, just some text".to_vec()),
        )
        .await
        .expect("received");
        assert!(matches!(
            u.complete(me, id).await,
            Err(MediaError::Invalid(_))
        ));
        assert_eq!(
            u.files.read(&original(id), None).await.err(),
            Some(MediaError::NotFound)
        );
        assert_eq!(u.row(id).await.expect("row").status, Status::Failed);
    }

    #[tokio::test]
    async fn an_image_that_does_not_decode_is_refused_and_removed() {
        let u = uploads().await;
        let me = Uuid::now_v7();
        let ticket = u
            .create(me, declared("a.png", "image/png", 4_000, Purpose::Post))
            .await
            .expect("ticket");
        let (expires, sig) = signed(&ticket);
        let id = ticket.media.id;
        u.receive(id, expires, &sig, body(png_header(4_000)))
            .await
            .expect("received");
        assert!(matches!(
            u.complete(me, id).await,
            Err(MediaError::Invalid(_))
        ));
        assert_eq!(u.row(id).await.expect("row").status, Status::Failed);
        assert_eq!(
            u.files.read(&original(id), None).await.err(),
            Some(MediaError::NotFound)
        );
    }
}
