//! `TestInstance`: a real Kindred on `127.0.0.1:0`, named `localhost:PORT`, on a
//! fresh database (SQLite always; PostgreSQL when KINDRED_TEST_DATABASE_URL is
//! set), dropped with the instance even when the test panics.

use std::{future::Future, sync::Once, time::Duration};

use kindred::{app::App, config::Settings, federation::FedData, service};
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends this run covers: SQLite always, PostgreSQL when configured.
pub fn backends() -> Vec<Backend> {
    let mut b = vec![Backend::Sqlite];
    if std::env::var("KINDRED_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        b.push(Backend::Postgres);
    }
    b
}

pub struct TestInstance {
    pub app: Option<App>,
    pub base: String,
    pub domain: String,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
    });
}

impl TestInstance {
    pub async fn spawn(backend: Backend) -> TestInstance {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> TestInstance {
        init();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = Settings::defaults();
        settings.server.domain = format!("localhost:{port}");
        settings.server.dev_mode = Some(true);
        settings.delivery.poll_interval_secs = 0.2;
        settings.delivery.retry_base_secs = 1;
        settings.delivery.workers = 2;
        let mut pg = None;
        settings.database.url = match backend {
            Backend::Sqlite => format!("sqlite://{}/kindred.db?mode=rwc", dir.path().display()),
            Backend::Postgres => {
                let base = std::env::var("KINDRED_TEST_DATABASE_URL").expect("pg url");
                let name = format!("kindred_t_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(&base)
                    .await
                    .expect("connect to PostgreSQL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                let _ = admin.close().await;
                let url = match base.rsplit_once('/') {
                    Some((head, _)) => format!("{head}/{name}"),
                    None => panic!("KINDRED_TEST_DATABASE_URL needs a database name"),
                };
                pg = Some((base, name));
                url
            }
        };
        tweak(&mut settings);
        let app = App::build(settings, listener).await.expect("app starts");
        TestInstance {
            app: Some(app),
            base: format!("http://localhost:{port}"),
            domain: format!("localhost:{port}"),
            http: reqwest::Client::new(),
            _dir: dir,
            pg,
        }
    }

    pub fn app(&self) -> &App {
        self.app.as_ref().expect("running")
    }

    pub fn data(&self) -> FedData {
        self.app().data()
    }

    pub fn db(&self) -> &sea_orm::DatabaseConnection {
        &self.app().state.db
    }

    pub async fn create_group(&self, name: &str, title: &str) {
        service::groups::create_group(&self.app().state, name, title, "A test group")
            .await
            .expect("group created");
    }

    /// Create a member and sign in: returns the API token.
    pub async fn create_user(&self, name: &str) -> String {
        service::users::create_user(&self.app().state, name, "correct horse", false)
            .await
            .expect("user created");
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(serde_json::json!({"username": name, "password": "correct horse"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().expect("token").to_string()
    }

    /// Create an instance admin and sign in: returns the API token.
    pub async fn create_admin(&self, name: &str) -> String {
        service::users::create_user(&self.app().state, name, "correct horse", true)
            .await
            .expect("admin created");
        let (token, _) = service::users::login(&self.app().state, name, "correct horse")
            .await
            .expect("login");
        token
    }

    pub fn shared_inbox(&self) -> String {
        format!("{}/inbox", self.base)
    }

    /// One API call: status and JSON body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// POST `body` to `inbox`, signed by this instance's instance actor, the
    /// way a remote server would; returns the raw status.
    pub async fn signed_post(&self, inbox: &str, body: &Value) -> StatusCode {
        let bytes = bytes::Bytes::from(serde_json::to_vec(body).expect("json"));
        let url = reqwest::Url::parse(inbox).expect("inbox url");
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let client = reqwest_middleware::ClientWithMiddleware::from(reqwest::Client::new());
        let builder = client
            .post(inbox)
            .header("content-type", "application/activity+json")
            .header("host", host)
            .header(
                "date",
                httpdate::fmt_http_date(std::time::SystemTime::now()),
            );
        let req = self
            .data()
            .sign_request(builder, bytes)
            .await
            .expect("signed");
        self.http.execute(req).await.expect("sent").status()
    }

    pub fn instance_actor_id(&self) -> String {
        format!("{}/actor", self.base)
    }
}

impl Drop for TestInstance {
    fn drop(&mut self) {
        // Stop serving; then drop the PostgreSQL database even after a panic.
        drop(self.app.take());
        if let Some((base, name)) = self.pg.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    if let Ok(admin) = Database::connect(&base).await {
                        let _ = admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

/// Poll `check` until it yields a value, or fail after 30 s with `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Titles of a JSON array of posts.
pub fn titles(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["title"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

impl TestInstance {
    /// A second process of the same instance (same domain, same database),
    /// as behind a load balancer.
    pub async fn replica(&self) -> App {
        let settings = (*self.app().state.settings).clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        App::build(settings, listener)
            .await
            .expect("replica starts")
    }
}

/// A remote inbox that records what it receives and answers `status`.
pub struct Sink {
    pub base: String,
    pub received: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Sink {
    pub async fn start(status: StatusCode) -> Sink {
        Self::start_on(
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind"),
            status,
        )
        .await
    }

    pub async fn start_on(listener: tokio::net::TcpListener, status: StatusCode) -> Sink {
        Self::start_full(listener, status, None).await
    }

    /// Answers `status` with `Retry-After: secs`.
    pub async fn start_retry_after(status: StatusCode, secs: u64) -> Sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Self::start_full(listener, status, Some(secs)).await
    }

    /// Records each request as it arrives, then answers 202 only once the
    /// returned gate gives it a permit.
    pub async fn start_gated() -> (Sink, std::sync::Arc<tokio::sync::Semaphore>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let sink =
            Self::start_inner(listener, StatusCode::ACCEPTED, None, Some(gate.clone())).await;
        (sink, gate)
    }

    async fn start_full(
        listener: tokio::net::TcpListener,
        status: StatusCode,
        retry_after: Option<u64>,
    ) -> Sink {
        Self::start_inner(listener, status, retry_after, None).await
    }

    async fn start_inner(
        listener: tokio::net::TcpListener,
        status: StatusCode,
        retry_after: Option<u64>,
        gate: Option<std::sync::Arc<tokio::sync::Semaphore>>,
    ) -> Sink {
        use axum::{extract::State, response::IntoResponse, routing::post};
        let port = listener.local_addr().expect("addr").port();
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route(
                "/inbox",
                post(
                    move |State(r): State<std::sync::Arc<std::sync::Mutex<Vec<Value>>>>,
                          headers: axum::http::HeaderMap,
                          body: bytes::Bytes| {
                        let gate = gate.clone();
                        async move {
                            if headers.contains_key("signature")
                                && let Ok(v) = serde_json::from_slice::<Value>(&body)
                            {
                                r.lock().expect("lock").push(v);
                            }
                            if let Some(gate) = &gate {
                                gate.acquire().await.expect("gate").forget();
                            }
                            let code =
                                axum::http::StatusCode::from_u16(status.as_u16()).expect("status");
                            match retry_after {
                                Some(secs) => {
                                    (code, [("retry-after", secs.to_string())]).into_response()
                                }
                                None => code.into_response(),
                            }
                        }
                    },
                ),
            )
            .with_state(received.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Sink {
            base: format!("http://localhost:{port}"),
            received,
            _task: task,
        }
    }

    pub fn inbox(&self) -> String {
        format!("{}/inbox", self.base)
    }

    pub fn ids(&self) -> Vec<String> {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|v| v["id"].as_str().map(String::from))
            .collect()
    }
}

/// A delivery row with the body it sends (stored once per activity, in
/// `delivery_bodies`).
pub struct Queued {
    pub row: kindred::db::entities::delivery::Model,
    pub payload: String,
}

impl std::ops::Deref for Queued {
    type Target = kindred::db::entities::delivery::Model;
    fn deref(&self) -> &Self::Target {
        &self.row
    }
}

/// Every delivery this instance has queued, newest first, with its body:
/// the rows, and each inbox of a fan-out without a row of its own (id 0;
/// delivered before the fan-out's cursor, pending after it).
pub async fn deliveries(db: &sea_orm::DatabaseConnection) -> Vec<Queued> {
    use kindred::db::entities::delivery;
    use sea_orm::{EntityTrait, QueryOrder};
    let mut rows = delivery::Entity::find()
        .order_by_desc(delivery::Column::Id)
        .all(db)
        .await
        .expect("deliveries");
    rows.extend(
        kindred::db::fanouts::as_rows(db, false, None)
            .await
            .expect("fan-outs"),
    );
    rows.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
    let bodies = kindred::db::deliveries::bodies(db, rows.iter().map(|r| r.body_id).collect())
        .await
        .expect("bodies");
    rows.into_iter()
        .map(|row| Queued {
            payload: bodies
                .get(&row.body_id)
                .cloned()
                .expect("every row has its body"),
            row,
        })
        .collect()
}
