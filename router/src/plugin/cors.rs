//! CORS for the forwarded `/media/…` routes. The engine applies its CORS policy (`cors` in the YAML, from
//! `--cors-origins`) only to its GraphQL endpoint's responses; uploads and downloads under `/media/…` are
//! answered by this plugin before that, so the same origins are allowed here: a browser app on another
//! origin (a Vite dev server) gets its upload's preflight answered and `Access-Control-Allow-Origin` on the
//! answer. With S3 an upload goes to the bucket itself, whose CORS rules are the bucket's
//! (docs/production.md).

use hive_router::ntex::http::header::{HeaderMap, HeaderName, HeaderValue};
use hive_router::ntex::http::{Response, StatusCode};

/// The origins allowed to call `/media/…` from a browser (`*` allows any).
#[derive(Debug, Default)]
pub struct MediaCors {
    origins: Vec<String>,
}

impl MediaCors {
    pub fn new(origins: Vec<String>) -> Self {
        Self { origins }
    }

    /// The request's `Origin`, when it is allowed.
    pub fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get("origin")?;
        let text = origin.to_str().ok()?;
        self.origins
            .iter()
            .any(|allowed| allowed == "*" || allowed == text)
            .then(|| origin.clone())
    }

    /// The answer to a preflight from an allowed `origin`: the methods and the one header an upload uses.
    pub fn preflight(origin: HeaderValue) -> Response {
        let mut response = Response::new(StatusCode::NO_CONTENT);
        let headers = response.headers_mut();
        headers.insert(
            HeaderName::from_static("access-control-allow-methods"),
            HeaderValue::from_static("GET, HEAD, PUT"),
        );
        headers.insert(
            HeaderName::from_static("access-control-allow-headers"),
            HeaderValue::from_static("content-type"),
        );
        headers.insert(
            HeaderName::from_static("access-control-max-age"),
            HeaderValue::from_static("600"),
        );
        Self::allow(&mut response, origin);
        response
    }

    /// Lets `origin` read `response`.
    pub fn allow(response: &mut Response, origin: HeaderValue) {
        let headers = response.headers_mut();
        headers.insert(
            HeaderName::from_static("access-control-allow-origin"),
            origin,
        );
        headers.insert(
            HeaderName::from_static("vary"),
            HeaderValue::from_static("Origin"),
        );
    }
}
