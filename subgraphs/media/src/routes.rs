//! The media subgraph's HTTP routes, beside GraphQL: where upload tickets send the bytes and where signed
//! download links point. Both sit under `/media/` (the router's public origin forwards that prefix here).
//!
//! - `PUT /media/uploads/{id}?expires&sig`: the body streamed into the object store ([`Uploads::receive`]);
//!   204, or 400 / 403 / 404 / 413.
//! - `GET /media/files/{id}/{variant}?expires&sig`: the file (`original`, or an image's `thumbnail`, `small`
//!   or `medium`) streamed out, never read whole into memory;
//!   `Range: bytes=a-b` answered with 206 and `Content-Range` (416 outside the file); `Content-Type` is what
//!   the bytes are, `Content-Disposition` inline for images, video and audio, attachment for documents. An
//!   expired or tampered link is a bare 403.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use serde::Deserialize;
use uuid::Uuid;

use crate::error::MediaError;
use crate::processing::Variant;
use crate::uploads::{disposition, original, variant_path, Uploads};

/// The signed part of a link.
#[derive(Deserialize)]
pub struct Signed {
    expires: i64,
    sig: String,
}

pub fn routes(uploads: Arc<Uploads>) -> Router {
    Router::new()
        .route("/media/uploads/{id}", put(upload))
        .route("/media/files/{id}/{variant}", get(download))
        // The upload's own budget (its declared size) applies, as the body streams.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(uploads)
}

impl IntoResponse for MediaError {
    fn into_response(self) -> Response {
        let status = match &self {
            MediaError::Invalid(_) => StatusCode::BAD_REQUEST,
            MediaError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            // Why a link fails is nobody's business.
            MediaError::BadLink => return StatusCode::FORBIDDEN.into_response(),
            MediaError::NotFound => StatusCode::NOT_FOUND,
            MediaError::Storage(_) | MediaError::Store(_) => {
                tracing::error!(error = %self, "media request failed");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
        (status, self.to_string()).into_response()
    }
}

async fn upload(
    State(uploads): State<Arc<Uploads>>,
    Path(id): Path<Uuid>,
    Query(signed): Query<Signed>,
    body: Body,
) -> Result<StatusCode, MediaError> {
    let stream = body.into_data_stream();
    uploads
        .receive(id, signed.expires, &signed.sig, stream)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn download(
    State(uploads): State<Arc<Uploads>>,
    Path((id, variant)): Path<(Uuid, String)>,
    Query(signed): Query<Signed>,
    headers: HeaderMap,
) -> Result<Response, MediaError> {
    let row = uploads
        .ready_for_link(id, &variant, signed.expires, &signed.sig)
        .await?;
    // The original, or a variant of an image (each has its own file, type and size).
    let (location, mime, size) = if variant == "original" {
        let size = u64::try_from(row.size.unwrap_or(0)).unwrap_or(0);
        (original(id), row.mime.clone(), size)
    } else {
        let variant = Variant::from_name(&variant).ok_or(MediaError::NotFound)?;
        let mime = row.variant_type.clone().ok_or(MediaError::NotFound)?;
        let location = variant_path(id, variant);
        let size = uploads.files.size(&location).await?;
        (location, Some(mime), size)
    };
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(value) => match byte_range(value, size) {
            Some(range) => Some(range),
            None => {
                return Ok((
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{size}"))],
                )
                    .into_response())
            }
        },
        None => None,
    };
    let (served, stream) = uploads
        .files
        .stream(&location, range.map(|(from, to)| (from, Some(to + 1))))
        .await?;
    let mut response = Response::new(Body::from_stream(stream));
    let out = response.headers_mut();
    let mime = mime.as_deref().unwrap_or("application/octet-stream");
    out.insert(header::CONTENT_TYPE, header_value(mime));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(
        header::CONTENT_LENGTH,
        header_value(&(served.end - served.start).to_string()),
    );
    out.insert(
        header::CONTENT_DISPOSITION,
        header_value(&disposition(&row)),
    );
    // What the bytes are is what is served: no sniffing by the browser.
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if range.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        response.headers_mut().insert(
            header::CONTENT_RANGE,
            header_value(&format!(
                "bytes {}-{}/{size}",
                served.start,
                served.end.saturating_sub(1)
            )),
        );
    }
    Ok(response)
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

/// A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range within a file of `size` bytes, as (first, last);
/// `None` when it is not satisfiable (or not one range).
fn byte_range(value: &str, size: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = match (first.trim(), last.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (size.saturating_sub(n), size - 1)
        }
        (first, "") => (first.parse().ok()?, size - 1),
        (first, last) => (first.parse().ok()?, last.parse::<u64>().ok()?.min(size - 1)),
    };
    (first <= last && first < size).then_some((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(byte_range("bytes=0-4", 10), Some((0, 4)));
        assert_eq!(byte_range("bytes=6-", 10), Some((6, 9)));
        assert_eq!(byte_range("bytes=-3", 10), Some((7, 9)));
        assert_eq!(byte_range("bytes=5-100", 10), Some((5, 9)));
        assert_eq!(byte_range("bytes=10-", 10), None);
        assert_eq!(byte_range("bytes=0-1,4-5", 10), None);
        assert_eq!(byte_range("items=0-1", 10), None);
        assert_eq!(
            crate::uploads::percent_encode("my photo.jpg"),
            "my%20photo.jpg"
        );
    }

    /// Through HTTP as a client would: the PUT to the ticket's URL, then downloads by signed link — whole,
    /// ranged, expired, tampered.
    #[tokio::test]
    async fn bytes_go_up_and_come_down_by_signed_links() {
        use crate::store::media::Purpose;
        use crate::uploads::tests::{declared, pdf, testing};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let uploads = testing(&base).await;
        let app = routes(uploads.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let http = reqwest::Client::new();
        let me = Uuid::now_v7();

        let ticket = uploads
            .create(
                me,
                declared(
                    "holiday notes.pdf",
                    "application/pdf",
                    4_000,
                    Purpose::Message,
                ),
            )
            .await
            .expect("ticket");
        let put = http
            .put(&ticket.upload_url)
            .body(pdf(4_000))
            .send()
            .await
            .expect("put");
        assert_eq!(put.status(), 204);
        // A second PUT to the same ticket, and one over the declared size, are refused.
        let again = http
            .put(&ticket.upload_url)
            .body(pdf(4_000))
            .send()
            .await
            .expect("put");
        assert_eq!(again.status(), 400);
        let id = ticket.media.id;
        uploads.complete(me, id).await.expect("ready");

        let row = uploads.row(id).await.expect("row");
        let link = uploads.download_url(&row, None, chrono::Duration::minutes(5));
        let whole = http.get(&link).send().await.expect("get");
        assert_eq!(whole.status(), 200);
        assert_eq!(whole.headers()["content-type"], "application/pdf");
        assert_eq!(
            whole.headers()["content-disposition"],
            "attachment; filename*=UTF-8''holiday%20notes.pdf"
        );
        assert_eq!(whole.bytes().await.expect("body").to_vec(), pdf(4_000));
        let part = http
            .get(&link)
            .header("range", "bytes=1-3")
            .send()
            .await
            .expect("get");
        assert_eq!(part.status(), 206);
        assert_eq!(part.headers()["content-range"], "bytes 1-3/4000");
        assert_eq!(part.bytes().await.expect("body").as_ref(), b"PDF");
        let outside = http
            .get(&link)
            .header("range", "bytes=5000-")
            .send()
            .await
            .expect("get");
        assert_eq!(outside.status(), 416);

        let expired = uploads.download_url(&row, None, chrono::Duration::minutes(-1));
        let tampered = link.replace("original", "thumbnail");
        for bad in [expired, tampered] {
            let answer = http.get(&bad).send().await.expect("get");
            assert_eq!(answer.status(), 403, "{bad}");
            assert!(
                answer.bytes().await.expect("body").is_empty(),
                "says nothing"
            );
        }

        // Larger than any default body limit: streamed in, within its declared size.
        let large = uploads
            .create(
                me,
                declared("scan.pdf", "application/pdf", 3_000_000, Purpose::Message),
            )
            .await
            .expect("ticket");
        let put = http
            .put(&large.upload_url)
            .body(pdf(3_000_000))
            .send()
            .await
            .expect("put");
        assert_eq!(put.status(), 204);

        let small = uploads
            .create(
                me,
                declared("tiny.pdf", "application/pdf", 10, Purpose::Message),
            )
            .await
            .expect("ticket");
        let over = http
            .put(&small.upload_url)
            .body(pdf(4_000))
            .send()
            .await
            .expect("put");
        assert_eq!(over.status(), 413);
    }
}
