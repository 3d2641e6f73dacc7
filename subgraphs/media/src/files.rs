//! Where media bytes live: an `object_store` — a folder under the data directory in the embedded mode, an
//! S3 bucket (AWS or S3-compatible) in production. Uploads stream in under a byte budget: the upload that
//! passes it is aborted and nothing of it is kept. Files stream out (ranges too), never read whole into
//! memory. With a bucket, clients send and fetch bytes straight to and from it through presigned URLs
//! ([`Files::bucket`], [`crate::presign`]).

use std::ops::Range;
use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, GetResult, GetResultPayload, ObjectStore, ObjectStoreExt, WriteMultipart,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::error::{MediaError, Result};

/// Bytes read at a time from a local file.
const READ_CHUNK: usize = 1024 * 1024;
use crate::presign::Bucket;
use crate::rules::HEAD_BYTES;

/// The media store.
#[derive(Clone)]
pub struct Files {
    store: Arc<dyn ObjectStore>,
    bucket: Option<Bucket>,
}

/// What an upload left behind.
#[derive(Debug, PartialEq, Eq)]
pub struct Stored {
    pub size: u64,
    /// The file's first bytes (up to [`HEAD_BYTES`]), for sniffing its type.
    pub head: Vec<u8>,
}

fn storage(err: object_store::Error) -> MediaError {
    MediaError::Storage(err.to_string())
}

impl Files {
    /// Files in the folder `root` (created if missing).
    pub fn local(root: &FsPath) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|e| MediaError::Storage(e.to_string()))?;
        let store = LocalFileSystem::new_with_prefix(root).map_err(storage)?;
        Ok(Self {
            store: Arc::new(store),
            bucket: None,
        })
    }

    /// Files in S3 bucket `bucket`.
    pub fn s3(bucket: Bucket) -> Result<Self> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&bucket.name)
            .with_region(&bucket.region)
            .with_access_key_id(&bucket.access_key_id)
            .with_secret_access_key(&bucket.secret_access_key);
        if bucket.path_style {
            builder = builder
                .with_endpoint(&bucket.store_endpoint)
                .with_allow_http(bucket.store_endpoint.starts_with("http://"));
        }
        let store = builder.build().map_err(storage)?;
        Ok(Self {
            store: Arc::new(store),
            bucket: Some(bucket),
        })
    }

    /// The bucket clients reach directly, when the files are in S3.
    pub fn bucket(&self) -> Option<&Bucket> {
        self.bucket.as_ref()
    }

    /// Streams `body` to `location`, refusing it once it passes `max` bytes (then nothing is kept).
    pub async fn put_stream<S, E>(&self, location: &str, mut body: S, max: u64) -> Result<Stored>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let path = Path::from(location);
        let upload = self.store.put_multipart(&path).await.map_err(storage)?;
        let mut writer = WriteMultipart::new(upload);
        let mut size: u64 = 0;
        let mut head = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(err) => {
                    let _ = writer.abort().await;
                    return Err(MediaError::Invalid(format!("the upload broke off: {err}")));
                }
            };
            size += chunk.len() as u64;
            if size > max {
                let _ = writer.abort().await;
                return Err(MediaError::TooLarge { max });
            }
            if head.len() < HEAD_BYTES {
                let take = (HEAD_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            writer.put(chunk);
        }
        writer.finish().await.map_err(storage)?;
        Ok(Stored { size, head })
    }

    /// The file at `location`, whole or the byte range `from..to` (to the end without `to`), as a stream.
    pub async fn read(
        &self,
        location: &str,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<GetResult> {
        let options = GetOptions {
            range: range.map(|(from, to)| match to {
                Some(to) => GetRange::Bounded(from..to),
                None => GetRange::Offset(from),
            }),
            ..Default::default()
        };
        match self.store.get_opts(&Path::from(location), options).await {
            Ok(found) => Ok(found),
            Err(object_store::Error::NotFound { .. }) => Err(MediaError::NotFound),
            Err(err) => Err(storage(err)),
        }
    }

    /// The file at `location` (whole or the range, as [`Files::read`]) as a stream of chunks: the bytes
    /// served and the stream. A local file is read [`READ_CHUNK`] at a time (`object_store`'s own stream
    /// reads 8 KiB per blocking task: a tenth of the throughput on a large download).
    pub async fn stream(
        &self,
        location: &str,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<(Range<u64>, BoxStream<'static, std::io::Result<Bytes>>)> {
        let found = self.read(location, range).await?;
        let served = found.range.clone();
        let stream = match found.payload {
            GetResultPayload::File(file, _) => {
                let (start, len) = (served.start, served.end - served.start);
                futures::stream::once(async move {
                    let mut file = tokio::fs::File::from_std(file);
                    file.seek(std::io::SeekFrom::Start(start)).await?;
                    Ok::<_, std::io::Error>(ReaderStream::with_capacity(file.take(len), READ_CHUNK))
                })
                .try_flatten()
                .boxed()
            }
            GetResultPayload::Stream(stream) => stream.map_err(std::io::Error::other).boxed(),
        };
        Ok((served, stream))
    }

    /// Writes `bytes` to `location` whole (replacing what was there in one step).
    pub async fn put(&self, location: &str, bytes: Bytes) -> Result<()> {
        self.store
            .put(&Path::from(location), bytes.into())
            .await
            .map_err(storage)?;
        Ok(())
    }

    /// The size of the file at `location`.
    pub async fn size(&self, location: &str) -> Result<u64> {
        match self.store.head(&Path::from(location)).await {
            Ok(meta) => Ok(meta.size),
            Err(object_store::Error::NotFound { .. }) => Err(MediaError::NotFound),
            Err(err) => Err(storage(err)),
        }
    }

    /// Removes the file at `location` (already gone is fine).
    pub async fn delete(&self, location: &str) -> Result<()> {
        match self.store.delete(&Path::from(location)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(storage(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(
        parts: &[&'static [u8]],
    ) -> impl Stream<Item = std::result::Result<Bytes, String>> + Unpin {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    async fn whole(files: &Files, location: &str, range: Option<(u64, Option<u64>)>) -> Vec<u8> {
        files
            .read(location, range)
            .await
            .expect("read")
            .bytes()
            .await
            .expect("bytes")
            .to_vec()
    }

    #[tokio::test]
    async fn uploads_stream_in_under_a_budget_and_out_in_ranges() {
        let files = Files::local(&parley_kit::testing::temp_dir("media-files")).expect("files");
        let stored = files
            .put_stream("uploads/a", chunks(&[b"hello ", b"world"]), 100)
            .await
            .expect("stored");
        assert_eq!(
            stored,
            Stored {
                size: 11,
                head: b"hello world".to_vec()
            }
        );
        assert_eq!(whole(&files, "uploads/a", None).await, b"hello world");
        assert_eq!(whole(&files, "uploads/a", Some((6, None))).await, b"world");
        assert_eq!(
            whole(&files, "uploads/a", Some((0, Some(5)))).await,
            b"hello"
        );

        // Over the budget: refused as it streams, and nothing is kept.
        let refused = files
            .put_stream("uploads/b", chunks(&[b"12345", b"67890", b"x"]), 10)
            .await;
        assert_eq!(refused, Err(MediaError::TooLarge { max: 10 }));
        assert_eq!(
            files.read("uploads/b", None).await.err(),
            Some(MediaError::NotFound)
        );

        files.delete("uploads/a").await.expect("delete");
        files
            .delete("uploads/a")
            .await
            .expect("deleting twice is fine");
        assert_eq!(
            files.read("uploads/a", None).await.err(),
            Some(MediaError::NotFound)
        );
    }
}
