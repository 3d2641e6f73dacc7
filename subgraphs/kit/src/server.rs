//! The HTTP server every subgraph runs (axum on tokio):
//!
//! - `POST /graphql`: the subgraph schema; the bearer token, if any, is verified and becomes an [`Identity`].
//! - `GET /ws`: graphql-transport-ws for subscriptions (see [`crate::ws`]: the router's shared connection, or a
//!   client's own with its token in `connection_init`).
//! - `GET /health`: 200 once the store answers; `GET /metrics`: Prometheus text.
//! - `GET /events`: this subgraph's published event log (see [`crate::events`]), for holders of the router key
//!   only (the other subgraphs).
//!
//! [`serve`] takes a bound listener and a shutdown future, so tests run servers on port 0.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use async_graphql::http::{create_multipart_mixed_stream, is_accept_multipart_mixed};
use async_graphql::{ObjectType, Schema, SubscriptionType};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tokio::net::TcpListener;

use crate::auth::{bearer, ClientIp, JwtVerifier};
use crate::events::log::{self, LogState};
use crate::ws::WsSettings;

/// Everything a subgraph's server needs besides its schema.
pub struct ServerParts {
    pub name: String,
    pub db: DatabaseConnection,
    pub verifier: Arc<JwtVerifier>,
    pub log: LogState,
    /// The secret the router presents on its subscription connections (see [`crate::ws`]).
    pub router_key: Option<String>,
    /// Domain-specific routes (e.g. users' `/.well-known/jwks.json`).
    pub extra_routes: Router,
}

struct AppState<Q, M, S> {
    schema: Schema<Q, M, S>,
    db: DatabaseConnection,
    verifier: Arc<JwtVerifier>,
    ws: Arc<WsSettings>,
    name: String,
}

impl<Q, M, S> Clone for AppState<Q, M, S> {
    fn clone(&self) -> Self {
        Self {
            schema: self.schema.clone(),
            db: self.db.clone(),
            verifier: self.verifier.clone(),
            ws: self.ws.clone(),
            name: self.name.clone(),
        }
    }
}

/// Serves `schema` on `listener` until `shutdown` resolves.
pub async fn serve<Q, M, S>(
    schema: Schema<Q, M, S>,
    parts: ServerParts,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    // Install the recorder before anything records: metrics emitted before the first scrape would be lost.
    prometheus();
    let router_key: Option<Arc<str>> = parts.router_key.map(Arc::from);
    let state = AppState {
        schema,
        db: parts.db,
        ws: Arc::new(WsSettings {
            subgraph: parts.name.clone(),
            verifier: parts.verifier.clone(),
            router_key: router_key.clone(),
            open: crate::ws::OpenSubscriptions::default(),
        }),
        verifier: parts.verifier,
        name: parts.name,
    };
    let app = Router::new()
        .route("/graphql", get(graphiql_hint).post(graphql::<Q, M, S>))
        .route("/ws", get(websocket::<Q, M, S>))
        .route("/health", get(health::<Q, M, S>))
        .route("/metrics", get(metrics_text))
        .with_state(state)
        .merge(internal_events(parts.log, router_key))
        .merge(parts.extra_routes);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// `GET /events` (the published event log: chat texts, blocks), for the other subgraphs only.
fn internal_events(log: LogState, key: Option<Arc<str>>) -> Router {
    internal(
        Router::new()
            .route("/events", get(log::handler))
            .with_state(log),
        key,
    )
}

/// `routes` answering only callers presenting the router key in `x-parley-router-key` — the platform's own
/// processes, which share it; without a configured key, no one (403).
pub fn internal(routes: Router, key: Option<Arc<str>>) -> Router {
    routes.route_layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let key = key.clone();
            async move {
                if presents_router_key(request.headers(), key.as_deref()) {
                    next.run(request).await
                } else {
                    StatusCode::FORBIDDEN.into_response()
                }
            }
        },
    ))
}

/// Whether `headers` carry the configured router `key` (compared in constant time); never without a key.
fn presents_router_key(headers: &HeaderMap, key: Option<&str>) -> bool {
    let presented = headers.get(parley_protocol::headers::ROUTER_KEY);
    matches!((key, presented),
        (Some(key), Some(presented)) if crate::ws::same_secret(presented.as_bytes(), key.as_bytes()))
}

/// Every request runs in a span carrying the router's `x-request-id`, so whatever it logs (internal errors
/// included) names the request.
async fn graphql<Q, M, S>(
    State(state): State<AppState<Q, M, S>>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> Response
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    use tracing::Instrument;
    let request_id = headers
        .get(parley_protocol::headers::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let span = tracing::info_span!("graphql", subgraph = %state.name, request_id = %request_id);
    execute(state, headers, request).instrument(span).await
}

async fn execute<Q, M, S>(
    state: AppState<Q, M, S>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> Response
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    metrics::counter!("parley_graphql_requests_total", "subgraph" => state.name.clone())
        .increment(1);
    let mut request = request.into_inner().data(ClientIp::from_headers(&headers));
    if presents_router_key(&headers, state.ws.router_key.as_deref()) {
        request = request.data(crate::auth::ViaRouter);
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    if let Some(token) = token {
        match state.verifier.verify(token).await {
            Ok(identity) => request = request.data(identity),
            Err(err) => {
                let response = async_graphql::Response::from_errors(vec![err
                    .to_graphql()
                    .into_server_error(async_graphql::Pos::default())]);
                // 200 with the error: the router passes `UNAUTHENTICATED` on (with HTTP 401 to the client);
                // a 401 here would add a "subgraph unavailable" error beside it.
                return (StatusCode::OK, GraphQLResponse::from(response)).into_response();
            }
        }
    }
    tracing::debug!("graphql request");
    if is_accept_multipart_mixed(
        headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    ) {
        let stream = state.schema.execute_stream(request);
        let body = axum::body::Body::from_stream(
            create_multipart_mixed_stream(stream, std::time::Duration::from_secs(30))
                .map(Ok::<_, std::io::Error>),
        );
        return Response::builder()
            .header("content-type", "multipart/mixed; boundary=graphql")
            .body(body)
            .unwrap_or_default();
    }
    GraphQLResponse::from(state.schema.execute(request).await).into_response()
}

use futures::StreamExt;

/// The one WebSocket subprotocol served.
const GRAPHQL_TRANSPORT_WS: &str = "graphql-transport-ws";
/// Per-connection read buffer of a subscription WebSocket.
const WS_READ_BUFFER: usize = 4 * 1024;
/// Bytes of frames gathered before a socket write.
const WS_WRITE_BUFFER: usize = 64 * 1024;
/// Largest message a client may send (a `subscribe` with its document and variables).
const WS_MAX_MESSAGE: usize = 256 * 1024;

async fn websocket<Q, M, S>(
    State(state): State<AppState<Q, M, S>>,
    upgrade: WebSocketUpgrade,
) -> Response
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    upgrade
        .protocols([GRAPHQL_TRANSPORT_WS])
        // The default 128 KiB read buffer is allocated and zeroed per connection and per read: at thousands of
        // client connections it was most of a subgraph's memory and half its CPU. Subscription frames are small.
        .read_buffer_size(WS_READ_BUFFER)
        // Frames queue up to this before a write (the server flushes after each batch): the router's shared
        // connection gets few large writes instead of one per frame.
        .write_buffer_size(WS_WRITE_BUFFER)
        .max_message_size(WS_MAX_MESSAGE)
        .on_upgrade(move |socket| crate::ws::serve(socket, state.schema, state.ws))
}

async fn graphiql_hint() -> impl IntoResponse {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        "POST GraphQL requests here; the playground is served by the router.",
    )
}

async fn health<Q, M, S>(State(state): State<AppState<Q, M, S>>) -> Response {
    match state.db.execute_unprepared("SELECT 1").await {
        Ok(_) => (StatusCode::OK, "ok").into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "health: store unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response()
        }
    }
}

/// The process-wide Prometheus recorder (installed once; every server in the process shares it).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed already; then ours just stays empty.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

async fn metrics_text() -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        prometheus().render(),
    )
}

/// How long a DataLoader waits to gather keys into one batch. async-graphql's default is 1 ms, paid on every
/// entity hop of a federated query; the keys of one `_entities` call arrive within microseconds of each other.
pub const BATCH_DELAY: std::time::Duration = std::time::Duration::from_micros(50);

/// A DataLoader on tokio with Parley's batching delay.
pub fn loader<L: Send + Sync + 'static>(loader: L) -> async_graphql::dataloader::DataLoader<L> {
    async_graphql::dataloader::DataLoader::new(loader, tokio::spawn).delay(BATCH_DELAY)
}
