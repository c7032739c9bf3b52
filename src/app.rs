//! Wiring: the shared state, the router, and `App::build`, which production
//! and tests alike use to start a server on a bound listener.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use activitypub_federation::config::FederationConfig;
use axum::{
    Router,
    extract::MatchedPath,
    http::{Request, StatusCode},
    routing::{get, post},
};
use sea_orm::DatabaseConnection;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tower_http::{
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use crate::{
    api,
    config::Settings,
    db,
    error::AppError,
    federation::{
        self, FederationMiddleware, delivery, inbox::post_inbox, routes, urls::Urls, wellknown,
    },
    service, web,
};

/// The time as the server sees it: the system clock plus an offset that only
/// tests move (by hours or days, instead of sleeping). Delivery timing, the
/// retry window and the inbox's `Date` check read it.
#[derive(Clone, Default)]
pub struct Clock {
    offset_ms: Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let offset = self.offset_ms.load(std::sync::atomic::Ordering::Relaxed);
        chrono::Utc::now() + chrono::Duration::milliseconds(offset)
    }

    /// Move this instance's time forward (tests).
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_ms
            .fetch_add(by.num_milliseconds(), std::sync::atomic::Ordering::Relaxed);
    }
}

/// What every handler and worker shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
    pub urls: Urls,
    pub delivery_wakeup: delivery::Wakeup,
    /// When each remote actor's key was last refetched after a failed
    /// signature (this process only): the refetch rate limit.
    pub key_refetches: Arc<std::sync::Mutex<HashMap<String, Instant>>>,
    /// Sign-in attempts per client and per username (this process).
    pub signin_limits: Arc<crate::web::session::SigninLimits>,
    /// Inbound activities per sending instance (this process).
    pub inbox_limits: Arc<governor::DefaultKeyedRateLimiter<String>>,
    pub clock: Clock,
    /// When this process last noted each instance's contact (throttle).
    pub contacts: Arc<std::sync::Mutex<HashMap<String, Instant>>>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Deliveries in flight per remote host (this process).
    pub host_slots: Arc<delivery::HostSlots>,
    /// This process's copy of the federation policy (see `federation::policy`).
    pub policy: Arc<federation::policy::Cache>,
    /// Signing threads and parsed local keys (see `federation::signing`).
    pub signer: Arc<federation::signing::Signer>,
    /// The client deliveries are sent with (built on first use).
    pub delivery_http: Arc<std::sync::OnceLock<reqwest::Client>>,
    /// Local groups' rendered actor documents (see `federation::docs`).
    pub group_docs: Arc<federation::docs::GroupDocs>,
    /// Remote actors' rows kept across requests (see `federation::memo`).
    pub remote_actors: Arc<federation::memo::Remote>,
    /// Received posts' writes, committed together (see `db::group_commit`).
    pub writes: Arc<db::group_commit::Committer>,
}

impl AppState {
    /// Connect to and migrate the database; no server, no workers (CLI).
    pub async fn connect(settings: Settings) -> Result<AppState, AppError> {
        let db = db::connect(&settings.database).await?;
        db::migrate(&db).await?;
        // A fresh pool after migrating: SQLite connections opened before an
        // ALTER TABLE were seen to read a new NOT NULL column as missing.
        db.close().await?;
        let db = db::connect(&settings.database).await?;
        let urls = Urls::new(settings.scheme(), &settings.server.domain)?;
        let signin_limits = Arc::new(crate::web::session::SigninLimits::new(&settings));
        let inbox_limits = Arc::new(federation::inbox::limiter(&settings.federation));
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let writes = db::group_commit::Committer::new(
            db::connect_writer(&settings.database, &db).await?,
            metrics.group_commits.clone(),
            metrics.group_writes.clone(),
        );
        Ok(AppState {
            settings: Arc::new(settings),
            urls,
            delivery_wakeup: Arc::default(),
            key_refetches: Arc::default(),
            signin_limits,
            inbox_limits,
            clock: Clock::default(),
            policy: Arc::default(),
            metrics,
            host_slots: Arc::default(),
            signer: Arc::default(),
            delivery_http: Arc::default(),
            group_docs: Arc::default(),
            remote_actors: Arc::default(),
            contacts: Arc::default(),
            writes: Arc::new(writes),
            db,
        })
    }

    /// May we refetch `actor`'s key now? Records the attempt when yes.
    pub fn key_refetch_allowed(&self, actor: &str) -> bool {
        let interval = Duration::from_secs(self.settings.federation.key_refetch_interval_secs);
        let now = Instant::now();
        let Ok(mut map) = self.key_refetches.lock() else {
            return false;
        };
        if map.len() > 10_000 {
            map.retain(|_, t| now.duration_since(*t) < interval);
        }
        match map.get(actor) {
            Some(t) if now.duration_since(*t) < interval => false,
            _ => {
                map.insert(actor.to_string(), now);
                true
            }
        }
    }

    /// Call after committing a transaction that queued deliveries.
    pub fn wake_delivery(&self) {
        self.delivery_wakeup.notify_waiters();
    }
}

/// A running instance: its port, its state, and the handles to stop it.
pub struct App {
    pub port: u16,
    pub state: AppState,
    pub federation: FederationConfig<AppState>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
}

impl App {
    /// Connect and migrate the database, make sure the instance actor exists,
    /// then serve on `listener` and start the delivery workers.
    pub async fn build(settings: Settings, listener: TcpListener) -> Result<App, AppError> {
        let port = listener
            .local_addr()
            .map_err(|e| AppError::internal(format!("listener: {e}")))?
            .port();
        let state = AppState::connect(settings).await?;
        let instance_actor = service::instance::ensure_instance_actor(&state).await?;
        let federation = federation::build_config(state.clone(), &instance_actor).await?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let router = router(state.clone(), federation.clone());
        let mut server_stop = shutdown_rx.clone();
        let server = tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
            let res = axum::serve(listener, service)
                .with_graceful_shutdown(async move {
                    let _ = server_stop.wait_for(|stop| *stop).await;
                })
                .await;
            if let Err(e) = res {
                tracing::error!(error = %e, "server stopped");
            }
        });
        let mut workers = delivery::spawn_workers(federation.clone(), shutdown_rx.clone());
        workers.extend(federation::directory::spawn_refresher(
            federation.clone(),
            shutdown_rx,
        ));
        tracing::info!(port, domain = %state.settings.server.domain, dev_mode = state.settings.dev_mode(), "Kindred is up");
        Ok(App {
            port,
            state,
            federation,
            shutdown,
            server,
            workers,
        })
    }

    /// Federation data for calling services outside a request (CLI, tests).
    pub fn data(&self) -> federation::FedData {
        self.federation.to_request_data()
    }

    /// Serve until the server task ends (it ends on `stop`).
    pub async fn wait(self) {
        let _ = self.server.await;
        for w in self.workers {
            let _ = w.await;
        }
    }

    /// Stop taking requests, let in-flight requests and delivery batches
    /// finish; what is still queued stays queued.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        self.wait().await;
    }

    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

pub fn router(state: AppState, federation: FederationConfig<AppState>) -> Router {
    let settings = state.settings.clone();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::serve))
        .route("/.well-known/webfinger", get(wellknown::webfinger))
        .route("/.well-known/nodeinfo", get(wellknown::nodeinfo_links))
        .route("/nodeinfo/2.1", get(wellknown::nodeinfo))
        .route("/actor", get(routes::get_instance_actor))
        .route("/actor/inbox", post(post_inbox))
        .route("/inbox", post(post_inbox))
        .route("/groups/{name}/inbox", post(post_inbox))
        .route("/users/{name}/inbox", post(post_inbox))
        .merge(content_routes())
        .merge(api::router())
        .merge(web::router(state.clone()))
        .fallback(web::fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .with_state(state)
        .layer(FederationMiddleware::new(federation))
        .layer(RequestBodyLimitLayer::new(settings.server.max_body_bytes))
        .layer(axum::middleware::map_response(crate::error::json_errors))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(settings.server.request_timeout_secs),
        ))
        .layer(
            // Method and route only: paths and queries can carry names.
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let route = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_else(|| "unmatched".into());
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_owned();
                tracing::info_span!("request", id, method = %req.method(), route)
            }),
        )
        // Outermost: every request gets an id (or keeps its proxy's), logged
        // with it and sent back, so a report can be matched to its log lines.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Our content as ActivityPub: behind the federation policy's fetch gate.
fn content_routes() -> Router<AppState> {
    Router::new()
        .route("/groups/{name}", get(routes::get_group))
        .route("/groups/{name}/followers", get(routes::get_group_followers))
        .route("/groups/{name}/outbox", get(routes::get_group_outbox))
        .route(
            "/groups/{name}/moderators",
            get(routes::get_group_moderators),
        )
        .route("/groups/{name}/links", get(routes::get_group_links))
        .route(
            "/directory/groups",
            get(federation::directory::get_directory),
        )
        .route(
            "/directory/instances",
            get(federation::directory::get_instances),
        )
        .route("/users/{name}", get(routes::get_person))
        .route("/users/{name}/outbox", get(routes::get_person_outbox))
        .route("/users/{name}/followers", get(routes::get_person_followers))
        .route("/posts/{id}", get(routes::get_post))
        .route_layer(axum::middleware::from_fn(federation::policy::gate_fetch))
}

/// The process is up (liveness).
async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// The database answers and its schema is current (readiness): 503 with the
/// reason otherwise, so a load balancer sends traffic elsewhere.
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match db::readiness(&state.db).await {
        Ok(()) => axum::Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(why) => {
            tracing::warn!(%why, "not ready");
            AppError::Unavailable(why).into_response()
        }
    }
}
