//! `on_http_request`: a few prefixes of the router's public origin belong to subgraphs' HTTP routes —
//! `/media/…` to media (upload tickets PUT there, signed download links GET from there) and
//! `/notifications/…` to notifications (the unsubscribe links of digest mails), `/billing/webhooks/…` to
//! billing (payment providers' signed events; nothing else of billing's is public), `/analytics/exports/…` to
//! analytics (signed report downloads) — so clients need one origin
//! and the subgraphs stay off the public network. The request is forwarded as a stream both ways — large
//! bodies are never held whole — with a short allow-list of headers each way; the subgraph checks the
//! signatures, this only carries bytes. A prefix whose subgraph is not configured answers 404.

use futures::StreamExt;
use hive_router::ntex::http::{Method, Response, StatusCode};
use hive_router::ntex::util::BytesMut as NtexBytesMut;
use hive_router::ntex::web::{DefaultError, WebRequest};

/// The prefix forwarded to media (`media_url`).
pub const MEDIA: &str = "/media/";
/// The prefix forwarded to notifications (`notifications_url`).
pub const NOTIFICATIONS: &str = "/notifications/";
/// The prefix forwarded to billing (`billing_url`): only its webhook endpoints.
pub const BILLING_WEBHOOKS: &str = "/billing/webhooks/";
/// The prefix forwarded to analytics (`analytics_url`): only its signed report downloads.
pub const ANALYTICS_EXPORTS: &str = "/analytics/exports/";

/// Request headers the subgraphs read.
const REQUEST_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "range",
    "stripe-signature",
];
/// Response headers a client needs.
const RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "content-range",
    "accept-ranges",
    "content-disposition",
    "x-content-type-options",
    "retry-after",
    "cache-control",
];

/// Chunks of a request body in flight between the client and the subgraph.
const IN_FLIGHT: usize = 8;
/// The most response chunks joined into one write.
const READY_CHUNKS: usize = 256;

/// Forwards one prefix to one subgraph.
pub struct SubgraphProxy {
    base: String,
    http: reqwest::Client,
}

impl SubgraphProxy {
    /// Forwards to the subgraph at `base` (`http://host:port`).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// The subgraph's answer to `request`, streamed; 405 for methods other than GET, HEAD, PUT and POST
    /// (a mail client's one-click unsubscribe), 502 when the subgraph cannot be reached.
    pub async fn forward(&self, request: &mut WebRequest<DefaultError>) -> Response {
        let method = match *request.method() {
            Method::GET => reqwest::Method::GET,
            Method::HEAD => reqwest::Method::HEAD,
            Method::PUT => reqwest::Method::PUT,
            Method::POST => reqwest::Method::POST,
            _ => return Response::new(StatusCode::METHOD_NOT_ALLOWED),
        };
        let target = match request.uri().path_and_query() {
            Some(path) => format!("{}{}", self.base, path.as_str()),
            None => return Response::new(StatusCode::BAD_REQUEST),
        };
        let mut outgoing = self.http.request(method.clone(), target);
        for name in REQUEST_HEADERS {
            if let Some(value) = request.headers().get(*name).and_then(|v| v.to_str().ok()) {
                outgoing = outgoing.header(*name, value);
            }
        }
        // The client's body flows through a bounded channel: read from the client only as fast as the
        // subgraph takes it.
        let (tx, rx) =
            tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(IN_FLIGHT);
        let mut payload = request.take_payload();
        let pump = async move {
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map(|c| bytes::Bytes::copy_from_slice(&c))
                    .map_err(|e| std::io::Error::other(e.to_string()));
                let failed = chunk.is_err();
                if tx.send(chunk).await.is_err() || failed {
                    break;
                }
            }
        };
        if method == reqwest::Method::PUT || method == reqwest::Method::POST {
            let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
            outgoing = outgoing.body(reqwest::Body::wrap_stream(stream));
        } else {
            drop(rx);
        }
        let (_, answer) = futures::join!(pump, outgoing.send());
        let answer = match answer {
            Ok(answer) => answer,
            Err(err) => {
                tracing::warn!(error = %err, base = %self.base, "subgraph unreachable");
                return Response::new(StatusCode::BAD_GATEWAY);
            }
        };
        let status =
            StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut response = Response::build(status);
        for name in RESPONSE_HEADERS {
            if let Some(value) = answer.headers().get(*name).and_then(|v| v.to_str().ok()) {
                response.header(*name, value);
            }
        }
        // Chunks that arrived together go out as one (copied once into the server's buffer type): per-chunk
        // costs, not bytes, bound a large download's rate.
        let body = answer
            .bytes_stream()
            .ready_chunks(READY_CHUNKS)
            .map(|chunks| {
                let len = chunks.iter().flatten().map(|c| c.len()).sum();
                let mut out = NtexBytesMut::with_capacity(len);
                for chunk in chunks {
                    let chunk = chunk.map_err(|e| std::io::Error::other(e.to_string()))?;
                    out.extend_from_slice(&chunk);
                }
                Ok::<_, std::io::Error>(out.freeze())
            });
        response.streaming(Box::pin(body))
    }
}
