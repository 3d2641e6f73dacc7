//! The Parley plugin for the engine: one module per stage, in the order a request meets them (in the manner
//! of the engine's own `pipeline/`). Each hook appears once below; its module says what it does and why.
//!
//! 1. `on_http_request` — [`http`]: stamp the client's address and a request id (returned on every
//!    response); cap long-lived clients per caller ([`clients`]); forward `/media/…` and `/notifications/…` to
//!    their subgraphs ([`forward`], with CORS for `/media/…`: [`cors`]); serve a post's live viewers from
//!    shared streams (SSE: [`live`]; WebSocket connections taken over: [`live_ws`], the rest of their operations
//!    relayed to the engine over one link per worker: [`relay`]); serve the offline GraphiQL page and its assets.
//! 2. `on_graphql_params` — [`crate::apq`]: automatic persisted queries (a hash alone becomes its query, or
//!    `PERSISTED_QUERY_NOT_FOUND`); then [`inputs`]: lists in the variables bounded, integer variables kept
//!    for the cost estimate.
//! 3. `on_graphql_parse` — [`crate::parse_guard`]: syntax errors answered here (the engine's parser would put
//!    freed memory in the message).
//! 4. `on_query_plan` — [`auth`] (a token that did not verify is refused), then [`limits`] (root fields,
//!    estimated cost; a query sent for APQ is remembered once it passed), then [`rate`] (per-caller rate
//!    limits; a WebSocket's operations by the connection's address, [`http::operation_address`]).
//! 5. `on_subgraph_http_request` — [`http`]: per-request headers dropped from fetches the engine may share;
//!    a WebSocket operation's others carry the connection's address, not one its client wrote.
//! 6. `on_graphql_error` — [`errors`]: every error gets one of Parley's codes and a path.
//!
//! Beside the request path: `on_plugin_init` (the plugin's config, [`ParleyPluginConfig`]) and
//! `on_supergraph_reload` (the field types [`limits`] estimates cost with).

mod audience;
mod auth;
mod clients;
mod cors;
mod errors;
mod forward;
mod http;
mod inputs;
mod limits;
mod listed;
mod live;
mod live_ws;
mod rate;
mod relay;
mod roster;

use std::collections::HashMap;
use std::sync::Arc;

use hive_router::executor::response::graphql_error::GraphQLError;
use hive_router::http::StatusCode;
use hive_router::plugins::hooks::on_graphql_error::{
    OnGraphQLErrorHookPayload, OnGraphQLErrorHookResult,
};
use hive_router::plugins::hooks::on_graphql_params::{
    OnGraphQLParamsStartHookPayload, OnGraphQLParamsStartHookResult,
};
use hive_router::plugins::hooks::on_graphql_parse::{
    OnGraphQLParseHookResult, OnGraphQLParseStartHookPayload,
};
use hive_router::plugins::hooks::on_http_request::{
    OnHttpRequestHookFuture, OnHttpRequestHookPayload,
};
use hive_router::plugins::hooks::on_plugin_init::{OnPluginInitPayload, OnPluginInitResult};
use hive_router::plugins::hooks::on_query_plan::{
    OnQueryPlanStartHookPayload, OnQueryPlanStartHookResult,
};
use hive_router::plugins::hooks::on_subgraph_http_request::{
    OnSubgraphHttpRequestHookPayload, OnSubgraphHttpRequestHookResult,
};
use hive_router::plugins::hooks::on_supergraph_load::{
    OnSupergraphLoadStartHookPayload, OnSupergraphLoadStartHookResult,
};
use hive_router::plugins::plugin_trait::{EndHookPayload, RouterPlugin, StartHookPayload};
use parley_protocol::headers::AUTHORIZATION;
use parley_protocol::ErrorCode;
use serde::Deserialize;

use crate::apq::{ApqCache, Pending};
use crate::parse_guard::ParseGuard;
use crate::rate_limit::{RateLimitConfig, RateLimiter};

pub use errors::{parley_code, CLIENT_CODES};

/// The plugin's section of the engine config (`plugins.parley.config`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParleyPluginConfig {
    /// Serve the playground at `/` (default true).
    #[serde(default)]
    pub disable_playground: bool,
    /// Queries the automatic-persisted-query cache remembers (0 turns APQ off).
    #[serde(default = "default_apq_capacity")]
    pub apq_capacity: usize,
    /// Bytes of query text the APQ cache holds at most.
    #[serde(default = "default_apq_max_bytes")]
    pub apq_max_bytes: usize,
    /// Per-caller limits, in process or in Redis (`redis_url`).
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// Addresses (CIDRs) of proxies whose `x-forwarded-for` is believed (`PARLEY_TRUSTED_PROXIES`).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// The media subgraph's base URL: `/media/…` on the router is forwarded there (off without it).
    #[serde(default)]
    pub media_url: Option<String>,
    /// The notifications subgraph's base URL: `/notifications/…` is forwarded there (off without it).
    #[serde(default)]
    pub notifications_url: Option<String>,
    /// The billing subgraph's base URL: `/billing/webhooks/…` is forwarded there (off without it).
    #[serde(default)]
    pub billing_url: Option<String>,
    /// The analytics subgraph's base URL: `/analytics/exports/…` is forwarded there (off without it).
    #[serde(default)]
    pub analytics_url: Option<String>,
    /// Browser origins allowed on `/media/…` (the `--cors-origins` the engine's CORS policy also gets).
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// Long-lived clients (WebSockets, SSE streams) per caller.
    #[serde(default)]
    pub long_lived_clients: clients::ClientCaps,
    /// Top-level fields one operation may select (aliases count; each is a separate fetch).
    #[serde(default = "default_max_root_fields")]
    pub max_root_fields: usize,
    /// The most an operation's estimated cost may be ([`crate::cost`]).
    #[serde(default = "default_max_cost")]
    pub max_cost: u64,
    /// Shared live streams ([`live`]); `parley router` fills it in.
    #[serde(default)]
    pub live_sharing: live::LiveSharingConfig,
}

fn default_max_cost() -> u64 {
    crate::cost::DEFAULT_MAX_COST
}

fn default_max_root_fields() -> usize {
    20
}

fn default_apq_capacity() -> usize {
    crate::apq::DEFAULT_CAPACITY
}

fn default_apq_max_bytes() -> usize {
    crate::apq::DEFAULT_MAX_BYTES
}

pub struct ParleyPlugin {
    playground: bool,
    edge: http::Edge,
    apq: Option<Arc<ApqCache>>,
    parse_guard: ParseGuard,
    limits: limits::Limits,
    limiter: Option<Arc<RateLimiter>>,
}

#[hive_router::async_trait]
impl RouterPlugin for ParleyPlugin {
    type Config = ParleyPluginConfig;

    fn plugin_name() -> &'static str {
        "parley"
    }

    fn on_plugin_init(payload: OnPluginInitPayload<Self>) -> OnPluginInitResult<Self> {
        let config = payload.config()?;
        payload.initialize_plugin(ParleyPlugin {
            playground: !config.disable_playground,
            edge: http::Edge {
                trusted_proxies: http::parse_trusted(&config.trusted_proxies)?,
                caps: config.long_lived_clients.clone(),
                slots: clients::Slots::default(),
                media: config.media_url.as_deref().map(forward::SubgraphProxy::new),
                notifications: config
                    .notifications_url
                    .as_deref()
                    .map(forward::SubgraphProxy::new),
                billing: config
                    .billing_url
                    .as_deref()
                    .map(forward::SubgraphProxy::new),
                analytics: config
                    .analytics_url
                    .as_deref()
                    .map(forward::SubgraphProxy::new),
                media_cors: cors::MediaCors::new(config.cors_origins.clone()),
                live: live::LiveFront::new(&config.live_sharing).map(Arc::new),
            },
            apq: (config.apq_capacity > 0)
                .then(|| Arc::new(ApqCache::new(config.apq_capacity, config.apq_max_bytes))),
            parse_guard: ParseGuard::new(crate::config::MAX_TOKENS),
            limits: limits::Limits::new(config.max_root_fields, config.max_cost),
            limiter: RateLimiter::new(config.rate_limit.clone())
                .map_err(|e| format!("rate_limit.redis_url: {e}"))?
                .map(Arc::new),
        })
    }

    fn on_http_request<'req>(
        &'req self,
        payload: OnHttpRequestHookPayload<'req>,
    ) -> OnHttpRequestHookFuture<'req> {
        http::on_request(self.playground, &self.edge, self.limiter.as_ref(), payload)
    }

    async fn on_graphql_params<'exec>(
        &'exec self,
        payload: OnGraphQLParamsStartHookPayload<'exec>,
    ) -> OnGraphQLParamsStartHookResult<'exec> {
        let apq = self.apq.clone();
        payload.on_end(move |mut end| {
            if let Some(apq) = apq {
                match apq.resolve(&mut end.graphql_params) {
                    Ok(Some(pending)) => {
                        end.context.insert(pending);
                    }
                    Ok(None) => {}
                    Err(err) => {
                        return end.end_with_graphql_error(err.to_graphql(), StatusCode::OK)
                    }
                }
            }
            match inputs::check(&end.graphql_params.variables) {
                Ok(ints) => {
                    end.context.insert(ints);
                    end.proceed()
                }
                Err(error) => end.end_with_graphql_error(*error, StatusCode::OK),
            }
        })
    }

    async fn on_graphql_parse<'exec>(
        &'exec self,
        payload: OnGraphQLParseStartHookPayload<'exec>,
    ) -> OnGraphQLParseHookResult<'exec> {
        let Some(query) = payload.graphql_params.query.as_deref() else {
            return payload.proceed();
        };
        match self.parse_guard.check(query) {
            Ok(()) => payload.proceed(),
            Err(message) => payload.end_with_graphql_error(
                GraphQLError::from_message_and_code(
                    message,
                    ErrorCode::GraphqlParseFailed.as_str(),
                ),
                StatusCode::OK,
            ),
        }
    }

    async fn on_query_plan<'exec>(
        &'exec self,
        payload: OnQueryPlanStartHookPayload<'exec>,
    ) -> OnQueryPlanStartHookResult<'exec> {
        let headers = &payload.router_http_request.headers;
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let verified = payload
            .request_context
            .read()
            .ok()
            .and_then(|ctx| ctx.authentication().jwt_status().copied())
            .unwrap_or(false);
        let token = header(AUTHORIZATION);
        if let Some(error) = auth::refuse_unverified(token, verified) {
            return payload.end_with_graphql_error(error, StatusCode::UNAUTHORIZED);
        }
        let operation = payload.filtered_operation_for_plan;
        let refused = {
            let ints = payload.context.get_ref::<inputs::IntVariables>();
            let empty = HashMap::new();
            let variables = ints.as_ref().map_or(&empty, |ints| &ints.0);
            self.limits.check(operation, variables)
        };
        if let Some(error) = refused {
            return payload.end_with_graphql_error(error, StatusCode::OK);
        }
        if let (Some(apq), Some(pending)) = (&self.apq, payload.context.get_ref::<Pending>()) {
            apq.register(&pending);
        }
        // The live front's own requests: it counted the viewer's subscription itself.
        let own =
            self.edge.live.as_ref().is_some_and(|live| {
                live.is_own(headers.get(live::LIVE_FRONT).map(|v| v.as_bytes()))
            });
        let Some(limiter) = self.limiter.as_deref().filter(|_| !own) else {
            return payload.proceed();
        };
        let kind = operation.operation_kind.as_ref();
        let verified_token = token.filter(|_| verified);
        let root_fields = limits::root_fields(&operation.selection_set);
        match rate::check(
            limiter,
            verified_token,
            http::operation_address(payload.context, headers).as_deref(),
            kind,
            root_fields,
        )
        .await
        {
            None => payload.proceed(),
            Some(error) => payload.end_with_graphql_error(error, StatusCode::TOO_MANY_REQUESTS),
        }
    }

    fn on_supergraph_reload<'exec>(
        &'exec self,
        payload: OnSupergraphLoadStartHookPayload,
    ) -> OnSupergraphLoadStartHookResult<'exec> {
        payload.on_end(move |end| {
            self.limits.set_schema(end.new_supergraph.metadata.clone());
            end.proceed()
        })
    }

    async fn on_subgraph_http_request<'exec>(
        &'exec self,
        mut payload: OnSubgraphHttpRequestHookPayload<'exec>,
    ) -> OnSubgraphHttpRequestHookResult<'exec> {
        http::shareable_fetch(&mut payload);
        payload.proceed()
    }

    fn on_graphql_error<'req>(
        &'req self,
        mut payload: OnGraphQLErrorHookPayload<'req>,
    ) -> OnGraphQLErrorHookResult<'req> {
        errors::map(&mut payload);
        payload.proceed()
    }
}
