//! The HTTP edges of a request. First stage (`on_http_request`): the client's address and a request id are
//! stamped on the request, and the offline GraphiQL page and its assets are served. The client's address is
//! the peer's, unless the peer is a configured trusted proxy: then `x-forwarded-for` is read from the right,
//! through trusted proxies, to the first address that is not one. Whatever the client wrote there is
//! replaced, so no one picks their own address for per-IP limits — over a WebSocket too, whose operations'
//! headers the engine takes from what the client wrote ([`ConnectionAddress`]). Long-lived clients take
//! slots of their caller ([`super::clients`]). Towards the subgraphs (`on_subgraph_http_request`): the
//! per-request headers are dropped from fetches the engine may share.

use std::net::IpAddr;
use std::sync::Arc;

use hive_router::ntex::http::body::Body;
use hive_router::ntex::http::header::{HeaderName, HeaderValue};
use hive_router::ntex::http::{Response, StatusCode};
use hive_router::plugins::hooks::on_http_request::{
    OnHttpRequestHookFuture, OnHttpRequestHookPayload, OnHttpResponseHookPayload,
};
use hive_router::plugins::hooks::on_subgraph_http_request::OnSubgraphHttpRequestHookPayload;
use hive_router::plugins::plugin_context::PluginContext;
use hive_router::plugins::plugin_trait::{EndHookPayload, StartHookPayload};
use ipnet::IpNet;
use parley_protocol::headers::{AUTHORIZATION, FORWARDED_FOR, REQUEST_ID};

use super::clients::{ClientCaps, Held, HeldSlots, Slots};
use super::cors::MediaCors;
use super::live::{LiveFront, LIVE_FRONT};

use crate::graphiql;
use crate::rate_limit::RateLimiter;

/// Stamps the request; answers `GET /` and `/graphiql/…` itself when the playground is on. Every response
/// carries the request's id.
pub fn on_request<'req>(
    playground: bool,
    edge: &'req Edge,
    limiter: Option<&'req Arc<RateLimiter>>,
    mut payload: OnHttpRequestHookPayload<'req>,
) -> OnHttpRequestHookFuture<'req> {
    Box::pin(async move {
        // The live front's own requests to the engine name the viewer's address themselves.
        let own = edge.live.as_ref().is_some_and(|live| {
            live.is_own(
                payload
                    .router_http_request
                    .headers()
                    .get(LIVE_FRONT)
                    .map(|v| v.as_bytes()),
            )
        });
        let client = if own {
            own_client_ip(&payload)
        } else {
            stamp_client_ip(&mut payload, &edge.trusted_proxies)
        };
        let request_id = stamp_request_id(&mut payload);
        // A WebSocket takes its address's slot before it is accepted.
        let websocket = is_websocket_upgrade(payload.router_http_request.headers());
        if websocket && !own {
            let Some(slot) = edge.slots.take(address_key(client), edge.caps.per_address) else {
                return payload.end_with_response(too_many_clients());
            };
            let live = edge.live.as_ref().filter(|live| live.takes_websockets());
            if let (Some(live), true) = (live, payload.router_http_request.path() == "/graphql") {
                // The front serves the connection (posts' streams shared, the rest relayed to the engine).
                let takeover = super::live_ws::Takeover {
                    front: live.clone(),
                    limiter: limiter.cloned(),
                    slots: edge.slots.clone(),
                    per_address: edge.caps.per_address,
                    per_user: edge.caps.per_user,
                    client,
                    _slot: slot,
                };
                return take_over_websocket(payload, takeover).await;
            }
            // The request's plugin context lives as long as the WebSocket's service (the engine hands it to
            // the connection), unlike the handshake's response body.
            payload.context.insert(HeldSlots::new(vec![slot]));
            payload.context.insert(ConnectionAddress(client));
        }
        let authorization = payload
            .router_http_request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // Only an event stream: a client that also takes JSON gets the engine's JSON refusal (401) as before.
        let wants_event_stream = payload
            .router_http_request
            .headers()
            .get(hive_router::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/event-stream") && !v.contains("json"));
        let respond_with_id = move |payload: OnHttpRequestHookPayload<'req>| {
            payload.on_end(move |mut end| {
                if wants_event_stream && authorization.is_some() {
                    end = token_refused_as_event_stream(end);
                }
                end.response
                    .headers_mut()
                    .insert(HeaderName::from_static(REQUEST_ID), request_id);
                // An SSE or multipart stream takes its caller's slots once it is known to be one.
                if !websocket && !own && is_stream(end.response.headers()) {
                    end = hold_stream_slots(edge, client, authorization.as_deref(), end);
                }
                end.proceed()
            })
        };
        if let (Some(live), false) = (&edge.live, own) {
            // The engine's CORS policy does not see what the front answers: the same origins are let in here.
            let origin = edge
                .media_cors
                .allowed_origin(payload.router_http_request.headers());
            // The address's slot, or (given a verified user) the user's.
            let slots = |user: Option<&str>| match user {
                None => edge.slots.take(address_key(client), edge.caps.per_address),
                Some(user) => edge.slots.take(user.to_string(), edge.caps.per_user),
            };
            let answer = live
                .answer(
                    &mut payload.router_http_request,
                    client,
                    limiter.map(|l| &**l),
                    slots,
                )
                .await;
            if let Some(mut response) = answer {
                if let Some(origin) = origin {
                    MediaCors::allow(&mut response, origin);
                }
                return payload.end_with_response(response);
            }
        }
        let path = payload.router_http_request.path();
        let forwarded = if path.starts_with(super::forward::MEDIA) {
            Some(&edge.media)
        } else if path.starts_with(super::forward::NOTIFICATIONS) {
            Some(&edge.notifications)
        } else if path.starts_with(super::forward::BILLING_WEBHOOKS) {
            Some(&edge.billing)
        } else if path.starts_with(super::forward::ANALYTICS_EXPORTS) {
            Some(&edge.analytics)
        } else {
            None
        };
        if let Some(proxy) = forwarded {
            let origin = path
                .starts_with(super::forward::MEDIA)
                .then(|| {
                    edge.media_cors
                        .allowed_origin(payload.router_http_request.headers())
                })
                .flatten();
            if payload.router_http_request.method() == hive_router::http::Method::OPTIONS {
                if let Some(origin) = origin {
                    return payload.end_with_response(MediaCors::preflight(origin));
                }
            }
            let mut response = match proxy {
                Some(proxy) => proxy.forward(&mut payload.router_http_request).await,
                None => Response::NotFound().finish(),
            };
            if let Some(origin) = origin {
                MediaCors::allow(&mut response, origin);
            }
            return payload.end_with_response(response);
        }
        if !playground || payload.router_http_request.method() != hive_router::http::Method::GET {
            return respond_with_id(payload);
        }
        let path = payload.router_http_request.path().to_string();
        if path == "/" {
            let page = Response::Ok()
                .content_type("text/html; charset=utf-8")
                .header("cache-control", "no-cache")
                .body(graphiql::PAGE);
            return payload.end_with_response(page);
        }
        if let Some(name) = path.strip_prefix(graphiql::ASSET_PREFIX) {
            let response = match graphiql::asset(name) {
                Some((content_type, bytes)) => Response::Ok()
                    .content_type(content_type)
                    // Content-hashed names: a new build has new names.
                    .header("cache-control", "public, max-age=31536000, immutable")
                    .body(bytes),
                None => Response::NotFound().finish(),
            };
            return payload.end_with_response(response);
        }
        respond_with_id(payload)
    })
}

/// A token the engine could not verify, on a request that accepts only an event stream: the engine's answer
/// is an event carrying `BAD_REQUEST` (it cannot write the refusal in a single-response type the client did
/// not accept). Clients' token-refresh flows key on `UNAUTHENTICATED` and 401, so that is what they get, as
/// one `next` event. (A request with a token the engine refused is always a refusal: planning refuses it.)
fn token_refused_as_event_stream(
    end: OnHttpResponseHookPayload<'_>,
) -> OnHttpResponseHookPayload<'_> {
    let refused = end
        .request_context
        .read()
        .ok()
        .and_then(|ctx| ctx.authentication().jwt_status().copied())
        == Some(false);
    if !refused {
        return end;
    }
    let OnHttpResponseHookPayload {
        response,
        context,
        request_context,
    } = end;
    let refusal = serde_json::json!({ "errors": [{
        "message": "invalid or expired access token",
        "extensions": {
            "code": parley_protocol::ErrorCode::Unauthenticated.as_str(),
            parley_protocol::extensions::REASON: "INVALID_JWT",
        },
    }] });
    OnHttpResponseHookPayload {
        response: response.into_response(super::live::single_payload(
            StatusCode::UNAUTHORIZED,
            refusal,
        )),
        context,
        request_context,
    }
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

/// What the first stage needs: whom to believe about addresses, and the long-lived client caps.
pub struct Edge {
    pub trusted_proxies: Vec<IpNet>,
    pub caps: ClientCaps,
    pub slots: Slots,
    /// Where `/media/…` goes, when a media subgraph is configured.
    pub media: Option<super::forward::SubgraphProxy>,
    /// Where `/notifications/…` goes, when a notifications subgraph is configured.
    pub notifications: Option<super::forward::SubgraphProxy>,
    /// Where `/billing/webhooks/…` goes, when a billing subgraph is configured.
    pub billing: Option<super::forward::SubgraphProxy>,
    /// Where `/analytics/exports/…` goes, when an analytics subgraph is configured.
    pub analytics: Option<super::forward::SubgraphProxy>,
    /// The browser origins allowed on `/media/…` and on the live front's answers (the engine's CORS covers
    /// only what the engine answers).
    pub media_cors: MediaCors,
    /// Shared live streams (SSE and WebSocket viewers of a post), when on.
    pub live: Option<Arc<LiveFront>>,
}

/// The slot key of a client address.
pub(super) fn address_key(client: Option<IpAddr>) -> String {
    format!(
        "ip:{}",
        client.map_or("unknown".into(), |ip| ip.to_string())
    )
}

/// A streamed response holding its caller's slots (address; user, with a verified token) in its body, or
/// HTTP 429 when either is over its cap.
fn hold_stream_slots<'req>(
    edge: &Edge,
    client: Option<IpAddr>,
    authorization: Option<&str>,
    end: OnHttpResponseHookPayload<'req>,
) -> OnHttpResponseHookPayload<'req> {
    let verified = end
        .request_context
        .read()
        .ok()
        .and_then(|ctx| ctx.authentication().jwt_status().copied())
        .unwrap_or(false);
    let user = authorization
        .filter(|_| verified)
        .map(|token| crate::rate_limit::subject(Some(token), None))
        .filter(|subject| subject.starts_with("user:"));
    let mut wanted = vec![(address_key(client), edge.caps.per_address)];
    wanted.extend(user.map(|user| (user, edge.caps.per_user)));
    let mut held = Vec::new();
    for (key, cap) in wanted {
        match edge.slots.take(key, cap) {
            Some(slot) => held.push(slot),
            None => {
                let OnHttpResponseHookPayload {
                    response,
                    context,
                    request_context,
                } = end;
                return OnHttpResponseHookPayload {
                    response: response.into_response(too_many_clients()),
                    context,
                    request_context,
                };
            }
        }
    }
    let OnHttpResponseHookPayload {
        response,
        context,
        request_context,
    } = end;
    let response = response
        .map_body(|_, body| Body::from_message(Held::new(body.into_body().into(), held)).into());
    OnHttpResponseHookPayload {
        response,
        context,
        request_context,
    }
}

/// HTTP 429 for a caller over its long-lived client cap.
pub(super) fn too_many_clients() -> Response {
    Response::TooManyRequests()
        .header("retry-after", "5")
        .content_type("text/plain; charset=utf-8")
        .body("too many open connections from this caller")
}

/// Hands the upgrade to the live front: the request is taken apart for ntex's handshake (which takes the
/// connection's IO from it) and put back for the engine to send the handshake's answer.
async fn take_over_websocket<'req>(
    payload: OnHttpRequestHookPayload<'req>,
    takeover: super::live_ws::Takeover,
) -> hive_router::plugins::hooks::on_http_request::OnHttpRequestHookResult<'req> {
    let OnHttpRequestHookPayload {
        router_http_request,
        context,
        request_context,
    } = payload;
    let (request, body) = router_http_request.into_parts();
    let response = super::live_ws::start(request.clone(), takeover).await;
    // `start` took its clone by value and dropped it: the request is whole again.
    let router_http_request = hive_router::ntex::web::WebRequest::from_parts(request, body)
        .unwrap_or_else(|_| panic!("the live front keeps no clone of the upgrade request"));
    OnHttpRequestHookPayload {
        router_http_request,
        context,
        request_context,
    }
    .end_with_response(response)
}

/// WebSocket upgrade: `Upgrade: websocket` and `Connection: upgrade`.
fn is_websocket_upgrade(headers: &hive_router::ntex::http::HeaderMap) -> bool {
    let has = |name: &str, value: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains(value))
    };
    has("upgrade", "websocket") && has("connection", "upgrade")
}

/// A streamed answer (a subscription over SSE or multipart), by the response's content type.
fn is_stream(headers: &hive_router::ntex::http::HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream") || v.starts_with("multipart/mixed"))
}

/// The address the live front's own request names (the viewer's), else its peer's.
fn own_client_ip(payload: &OnHttpRequestHookPayload<'_>) -> Option<IpAddr> {
    let request = &payload.router_http_request;
    request
        .headers()
        .get(FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or_else(|| request.peer_addr().map(|addr| addr.ip()))
}

/// Sets `x-forwarded-for` to the one client address the limits (here and in the subgraphs) count by, and
/// drops `x-real-ip`, which no one checks. Returns that address.
fn stamp_client_ip(
    payload: &mut OnHttpRequestHookPayload<'_>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let request = &mut payload.router_http_request;
    let forwarded = request
        .headers()
        .get(FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let peer = request.peer_addr().map(|addr| addr.ip());
    let headers = request.headers_mut();
    headers.remove(FORWARDED_FOR);
    headers.remove("x-real-ip");
    let client = client_ip(peer, forwarded.as_deref(), trusted)?;
    if let Ok(value) = HeaderValue::from_str(&client.to_string()) {
        headers.insert(HeaderName::from_static(FORWARDED_FOR), value);
    }
    Some(client)
}

/// The client's address: the peer, or when the peer is a trusted proxy, the right-most `forwarded` entry
/// that is not one (each proxy appends the address it was reached from, so entries further left were
/// written by whoever is to the right of them, possibly the client).
pub fn client_ip(
    peer: Option<IpAddr>,
    forwarded: Option<&str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer?;
    let mut hops = forwarded.into_iter().flat_map(|v| v.rsplit(','));
    while is_trusted(&client) {
        let Some(next) = hops
            .next()
            .and_then(|hop| hop.trim().parse::<IpAddr>().ok())
        else {
            break;
        };
        client = next;
    }
    Some(client)
}

/// Parses `PARLEY_TRUSTED_PROXIES`-style entries: CIDRs or single addresses.
pub fn parse_trusted(entries: &[String]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .map(|entry| entry.trim())
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("trusted_proxies: {entry:?} is not an address or CIDR"))
        })
        .collect()
}

/// The address a WebSocket the engine serves was opened from, kept in its plugin context (which every
/// operation on the connection shares). The engine makes a WebSocket operation's headers from what the
/// client wrote (the `connection_init` payload, `extensions.headers`), so an `x-forwarded-for` there could
/// name any address: the operation's limits, here and in the subgraphs, count by this one instead.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionAddress(pub Option<IpAddr>);

/// The client address an operation counts against: its WebSocket's ([`ConnectionAddress`]), else the
/// `x-forwarded-for` this plugin stamped on its HTTP request (or the live front named).
pub fn operation_address(
    context: &PluginContext,
    headers: &hive_router::ntex::http::HeaderMap,
) -> Option<String> {
    match context.get_ref::<ConnectionAddress>() {
        Some(address) => address.0.map(|ip| ip.to_string()),
        None => headers
            .get(FORWARDED_FOR)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }
}

/// Identical concurrent subgraph fetches share one request (the engine's dedupe), but only when their
/// headers match: the per-request `x-request-id` and `x-forwarded-for` would make every fetch unique.
/// They are dropped from fetches that may be shared (queries); mutations keep them, a WebSocket operation's
/// `x-forwarded-for` being its connection's address ([`ConnectionAddress`]).
pub fn shareable_fetch(payload: &mut OnSubgraphHttpRequestHookPayload<'_>) {
    // The engine's flag is true when the fetch skips deduplication (see its http executor).
    let shared = !payload.deduplicate_request;
    let headers = &mut payload.execution_request.headers;
    if shared {
        headers.remove(REQUEST_ID);
        headers.remove(FORWARDED_FOR);
    } else if let Some(address) = payload.context.get_ref::<ConnectionAddress>() {
        // A WebSocket operation: the connection's address, not the one its client wrote.
        headers.remove(FORWARDED_FOR);
        let value = address
            .0
            .and_then(|ip| hive_router::http::HeaderValue::from_str(&ip.to_string()).ok());
        if let Some(value) = value {
            headers.insert(FORWARDED_FOR, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let trusted = parse_trusted(&["10.0.0.0/8".into(), "192.168.1.5".into()]).expect("parse");
        // A client speaking to the router directly cannot name an address.
        assert_eq!(
            client_ip(ip("203.0.113.9"), Some("1.2.3.4"), &trusted),
            ip("203.0.113.9")
        );
        // Through one trusted proxy: the address it saw.
        assert_eq!(
            client_ip(ip("10.1.1.1"), Some("198.51.100.7"), &trusted),
            ip("198.51.100.7")
        );
        // A client's own entry further left is ignored; chains of trusted proxies are walked.
        assert_eq!(
            client_ip(
                ip("10.1.1.1"),
                Some("6.6.6.6, 198.51.100.7, 192.168.1.5"),
                &trusted
            ),
            ip("198.51.100.7")
        );
        // A trusted proxy that sent no (or a garbled) header: the proxy itself.
        assert_eq!(client_ip(ip("10.1.1.1"), None, &trusted), ip("10.1.1.1"));
        assert_eq!(
            client_ip(ip("10.1.1.1"), Some("junk"), &trusted),
            ip("10.1.1.1")
        );
        assert!(parse_trusted(&["not-a-net".into()]).is_err());
    }
}
