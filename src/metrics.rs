//! Prometheus metrics: deliveries by instance and outcome, inbox activities by
//! outcome, HTTP request latency by route, and the queue's size (read from the
//! database when scraped). Served at `/metrics` to a bearer token or to a
//! loopback request that came through no proxy: the labels name the
//! instances we federate with.

use std::{net::SocketAddr, time::Instant};

use axum::{
    extract::{ConnectInfo, MatchedPath, Request, State},
    http::{HeaderMap, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

use crate::{app::AppState, db, domain::DeliveryStatus, error::AppError};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    instance: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InboxLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    status: &'static str,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    deliveries: Family<DeliveryLabels, Counter>,
    inbox: Family<InboxLabels, Counter>,
    latency: LatencyFamily,
    queue: Family<QueueLabels, Gauge>,
    /// Transactions the group committer ran, and the writes in them.
    pub group_commits: Counter,
    pub group_writes: Counter,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("kindred");
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        let inbox = Family::<InboxLabels, Counter>::default();
        let latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
        let queue = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "deliveries",
            "Delivery attempts by remote instance and outcome (delivered, retried, failed, cancelled)",
            deliveries.clone(),
        );
        registry.register(
            "inbox_activities",
            "Activities posted to our inboxes, by outcome (accepted, or the refusal's kind)",
            inbox.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method, route and status",
            latency.clone(),
        );
        registry.register(
            "delivery_queue",
            "Deliveries in the queue by status (read when scraped)",
            queue.clone(),
        );
        let group_commits = Counter::default();
        let group_writes = Counter::default();
        registry.register(
            "db_group_commits",
            "Transactions committed by the group committer (see db::group_commit)",
            group_commits.clone(),
        );
        registry.register(
            "db_group_writes",
            "Writes (received posts) run by the group committer; over db_group_commits, the writes per commit",
            group_writes.clone(),
        );
        Metrics {
            registry,
            group_commits,
            group_writes,
            deliveries,
            inbox,
            latency,
            queue,
        }
    }
}

impl Metrics {
    pub fn delivery(&self, instance: &str, outcome: &'static str) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                instance: instance.to_string(),
                outcome,
            })
            .inc();
    }

    pub fn inbox(&self, outcome: &'static str) {
        self.inbox.get_or_create(&InboxLabels { outcome }).inc();
    }
}

/// Middleware: time every request, labelled by its route pattern (never the
/// path itself, which can carry names).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let res = next.run(req).await;
    state
        .metrics
        .latency
        .get_or_create(&RouteLabels {
            method,
            route,
            status: res.status().as_u16(),
        })
        .observe(start.elapsed().as_secs_f64());
    res
}

fn allowed(state: &AppState, peer: Option<SocketAddr>, headers: &HeaderMap) -> bool {
    let token = &state.settings.metrics.token;
    if !token.is_empty() {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        return crate::web::session::constant_time_eq(sent, token);
    }
    let proxied = ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|h| headers.contains_key(*h));
    !proxied && peer.is_some_and(|p| p.ip().is_loopback())
}

pub async fn serve(State(state): State<AppState>, req: Request) -> Result<Response, AppError> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if !allowed(&state, peer, req.headers()) {
        return Err(AppError::forbidden(
            "metrics need the configured token (or a local, unproxied request)",
        ));
    }
    let m = &state.metrics;
    for s in [DeliveryStatus::Pending, DeliveryStatus::Failed] {
        let n = db::deliveries::count_by_status(&state.db, s).await?;
        m.queue
            .get_or_create(&QueueLabels { status: s.as_str() })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    let mut body = String::new();
    encode(&mut body, &m.registry).map_err(AppError::internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response())
}
