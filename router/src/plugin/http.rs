//! The HTTP edges of a request. First stage (`on_http_request`): the client's address and a request id are
//! stamped on the request, and the offline GraphiQL page and its assets are served. Towards the subgraphs
//! (`on_subgraph_http_request`): the per-request headers are dropped from fetches the engine may share.

use hive_router::ntex::http::header::{HeaderName, HeaderValue};
use hive_router::ntex::http::Response;
use hive_router::plugins::hooks::on_http_request::{
    OnHttpRequestHookFuture, OnHttpRequestHookPayload,
};
use hive_router::plugins::hooks::on_subgraph_http_request::OnSubgraphHttpRequestHookPayload;
use hive_router::plugins::plugin_trait::{EndHookPayload, StartHookPayload};
use parley_protocol::headers::{FORWARDED_FOR, REQUEST_ID};

use crate::graphiql;

/// Stamps the request; answers `GET /` and `/graphiql/…` itself when the playground is on. Every response
/// carries the request's id.
pub fn on_request<'req>(
    playground: bool,
    mut payload: OnHttpRequestHookPayload<'req>,
) -> OnHttpRequestHookFuture<'req> {
    Box::pin(async move {
        stamp_client_ip(&mut payload);
        let request_id = stamp_request_id(&mut payload);
        let respond_with_id = move |payload: OnHttpRequestHookPayload<'req>| {
            payload.on_end(move |mut end| {
                end.response
                    .headers_mut()
                    .insert(HeaderName::from_static(REQUEST_ID), request_id);
                end.proceed()
            })
        };
        if !playground || payload.router_http_request.method() != hive_router::http::Method::GET {
            return respond_with_id(payload);
        }
        let path = payload.router_http_request.path().to_string();
        if path == "/" {
            let page = Response::Ok()
                .content_type("text/html; charset=utf-8")
                .body(graphiql::PAGE);
            return payload.end_with_response(page);
        }
        if let Some(name) = path.strip_prefix(graphiql::ASSET_PREFIX) {
            let response = match graphiql::asset(name) {
                Some((content_type, bytes)) => Response::Ok()
                    .content_type(content_type)
                    .header("cache-control", "public, max-age=86400")
                    .body(bytes),
                None => Response::NotFound().finish(),
            };
            return payload.end_with_response(response);
        }
        respond_with_id(payload)
    })
}

/// Keeps the client's `x-request-id` (when it is a sane token) or gives the request a new one; the header is
/// propagated to the subgraphs and returned to the client.
fn stamp_request_id(payload: &mut OnHttpRequestHookPayload<'_>) -> HeaderValue {
    let headers = payload.router_http_request.headers_mut();
    let given = headers.get(REQUEST_ID).filter(|v| {
        let bytes = v.as_bytes();
        (1..=128).contains(&bytes.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    });
    if let Some(id) = given {
        return id.clone();
    }
    let id = HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
    headers.insert(HeaderName::from_static(REQUEST_ID), id.clone());
    id
}

/// Subgraphs apply per-IP limits (failed logins) on `x-forwarded-for`; when no proxy in front of the router
/// set it, the router sets it to the peer address so every client does not share one "unknown" bucket.
fn stamp_client_ip(payload: &mut OnHttpRequestHookPayload<'_>) {
    let request = &mut payload.router_http_request;
    if request.headers().contains_key(FORWARDED_FOR) {
        return;
    }
    let Some(addr) = request.peer_addr() else {
        return;
    };
    if let Ok(value) = HeaderValue::from_str(&addr.ip().to_string()) {
        request
            .headers_mut()
            .insert(HeaderName::from_static(FORWARDED_FOR), value);
    }
}

/// Identical concurrent subgraph fetches share one request (the engine's dedupe), but only when their
/// headers match: the per-request `x-request-id` and `x-forwarded-for` would make every fetch unique.
/// They are dropped from fetches that may be shared (queries); mutations keep them.
pub fn shareable_fetch(payload: &mut OnSubgraphHttpRequestHookPayload<'_>) {
    // The engine's flag is true when the fetch skips deduplication (see its http executor).
    let shared = !payload.deduplicate_request;
    if shared {
        let headers = &mut payload.execution_request.headers;
        headers.remove(REQUEST_ID);
        headers.remove(FORWARDED_FOR);
    }
}
