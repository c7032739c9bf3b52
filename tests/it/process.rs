//! The real binary as a child process (`kindred serve`), killed the hard way
//! and the polite way in the middle of a fan-out to slow inboxes.

use std::{
    path::Path,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use kindred::{config::DatabaseSettings, db};
use serde_json::{Value, json};

use crate::helpers::{eventually, init};

/// `kindred serve` on `port`, with its SQLite database in `dir`.
struct Server {
    child: tokio::process::Child,
}

impl Server {
    /// Start and wait until ready. If `port` was taken meanwhile (another
    /// test's socket got it between runs), another free port is used: the
    /// deliveries under test do not depend on it. Any other failure to start
    /// panics with the server's log.
    async fn start(dir: &Path, port: u16) -> Server {
        let mut port = port;
        for _ in 0..3 {
            let log_path = dir.join(format!("server-{port}.log"));
            let log = std::fs::File::create(&log_path).expect("log file");
            let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kindred"))
                .arg("serve")
                .current_dir(dir)
                .env("KINDRED_DOMAIN", format!("localhost:{port}"))
                .env("KINDRED_BIND", format!("127.0.0.1:{port}"))
                .env(
                    "KINDRED_DATABASE_URL",
                    format!("sqlite://{}/kindred.db?mode=rwc", dir.display()),
                )
                .env("KINDRED_DEV_MODE", "true")
                .env("KINDRED_DELIVERY__WORKERS", "1")
                .env("KINDRED_DELIVERY__BATCH_SIZE", "2")
                .env("KINDRED_DELIVERY__LEASE_SECS", "3")
                .env("KINDRED_DELIVERY__POLL_INTERVAL_SECS", "0.2")
                .env("KINDRED_DELIVERY__RETRY_BASE_SECS", "1")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .expect("kindred serve starts");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
            loop {
                let ready = reqwest::Client::new()
                    .get(format!("http://127.0.0.1:{port}/readyz"))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ready {
                    return Server { child };
                }
                if let Ok(Some(status)) = child.try_wait() {
                    let out = std::fs::read_to_string(&log_path).unwrap_or_default();
                    if out.contains("cannot listen") {
                        port = free_port();
                        break;
                    }
                    panic!("kindred serve exited ({status}):\n{out}");
                }
                if tokio::time::Instant::now() > deadline {
                    let out = std::fs::read_to_string(&log_path).unwrap_or_default();
                    panic!("kindred serve not ready after 90 s:\n{out}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!("no free port for kindred serve");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.id().expect("running").to_string();
        let ok = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    async fn exit(&mut self, within: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(within, self.child.wait())
            .await
            .expect("the server exits in time")
            .expect("wait")
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Inboxes that note each request as it arrives, then take `delay` to
/// answer 202.
struct SlowSinks {
    ports: Vec<u16>,
    /// (port, activity id) in arrival order.
    received: Arc<Mutex<Vec<(u16, String)>>>,
}

impl SlowSinks {
    async fn start(n: usize, delay: Duration) -> SlowSinks {
        let received = Arc::new(Mutex::new(vec![]));
        let mut ports = vec![];
        for _ in 0..n {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let port = listener.local_addr().expect("addr").port();
            let seen = received.clone();
            let app = axum::Router::new().route(
                "/inbox",
                axum::routing::post(move |body: bytes::Bytes| {
                    let seen = seen.clone();
                    async move {
                        let id = serde_json::from_slice::<Value>(&body)
                            .ok()
                            .and_then(|v| v["id"].as_str().map(String::from))
                            .unwrap_or_default();
                        seen.lock().expect("lock").push((port, id));
                        tokio::time::sleep(delay).await;
                        axum::http::StatusCode::ACCEPTED
                    }
                }),
            );
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            ports.push(port);
        }
        SlowSinks { ports, received }
    }

    fn inboxes(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("http://localhost:{p}/inbox"))
            .collect()
    }

    fn count(&self) -> usize {
        self.received.lock().expect("lock").len()
    }

    fn per_sink(&self) -> Vec<usize> {
        let got = self.received.lock().expect("lock").clone();
        self.ports
            .iter()
            .map(|p| got.iter().filter(|(q, _)| q == p).count())
            .collect()
    }
}

async fn open_db(dir: &Path) -> sea_orm::DatabaseConnection {
    db::connect(&DatabaseSettings {
        url: format!("sqlite://{}/kindred.db?mode=rwc", dir.display()),
        max_connections: 2,
        acquire_timeout_secs: 5,
    })
    .await
    .expect("open the server's database")
}

/// One activity from the instance actor to every inbox, queued as a post's
/// fan-out would be.
async fn fan_out(db: &sea_orm::DatabaseConnection, port: u16, inboxes: &[String]) {
    let actor = db::actors::instance_actor(db)
        .await
        .expect("db")
        .expect("instance actor");
    let id = format!("http://localhost:{port}/activities/announce/1");
    let payload = json!({"type": "Announce", "id": id, "actor": actor.ap_id,
        "object": format!("http://localhost:{port}/posts/1")});
    db::deliveries::enqueue(db, &id, actor.id, &payload.to_string(), inboxes)
        .await
        .expect("enqueue");
}

async fn statuses(db: &sea_orm::DatabaseConnection) -> (usize, usize) {
    let rows = db::deliveries::list(db, None, 1000).await.expect("list");
    let delivered = rows.iter().filter(|r| r.status == "delivered").count();
    (delivered, rows.len() - delivered)
}

/// SIGKILL halfway through a fan-out to 20 instances; after a restart every
/// instance has the activity, and only the deliveries in flight at the kill
/// (at most one batch) may arrive twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_fan_out_loses_nothing() {
    init();
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let sinks = SlowSinks::start(20, Duration::from_millis(300)).await;
    let mut server = Server::start(dir.path(), port).await;
    let db = open_db(dir.path()).await;
    fan_out(&db, port, &sinks.inboxes()).await;
    eventually("a third of the fan-out is out", || async {
        (sinks.count() >= 6).then_some(())
    })
    .await;
    server.signal("KILL");
    server.exit(Duration::from_secs(10)).await;
    let (delivered_before, _) = statuses(&db).await;
    let before = sinks.per_sink();
    assert!(
        delivered_before < 20,
        "the kill came mid fan-out ({delivered_before} delivered)"
    );

    let _server = Server::start(dir.path(), port).await;
    eventually("every delivery recorded as delivered", || async {
        (statuses(&db).await == (20, 0)).then_some(())
    })
    .await;
    let after = sinks.per_sink();
    assert!(
        after.iter().all(|n| *n >= 1),
        "every instance got it: {after:?}"
    );
    let duplicates: usize = after.iter().map(|n| n - 1).sum();
    assert!(
        duplicates <= 2,
        "only the batch in flight may repeat: {after:?} (before the kill: {before:?})"
    );
}

/// SIGTERM during a fan-out: the server stops taking requests at once,
/// finishes the deliveries it is sending (bounded by the request timeout),
/// and leaves the rest queued for the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_deliveries_and_keeps_the_rest() {
    init();
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let sinks = SlowSinks::start(6, Duration::from_millis(1500)).await;
    let mut server = Server::start(dir.path(), port).await;
    let db = open_db(dir.path()).await;
    fan_out(&db, port, &sinks.inboxes()).await;
    eventually("the first batch is being sent", || async {
        (sinks.count() >= 2).then_some(())
    })
    .await;
    server.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .timeout(Duration::from_secs(1))
        .send()
        .await;
    assert!(refused.is_err(), "no new requests after SIGTERM");
    let status = server.exit(Duration::from_secs(15)).await;
    assert!(status.success(), "a clean exit: {status}");
    assert_eq!(sinks.count(), 2, "nothing new sent after SIGTERM");
    assert_eq!(
        statuses(&db).await,
        (2, 4),
        "the batch in flight finished; the rest stays queued"
    );

    // The next start sends the rest.
    let _server = Server::start(dir.path(), port).await;
    eventually("the rest goes out", || async {
        (statuses(&db).await == (6, 0)).then_some(())
    })
    .await;
    assert_eq!(sinks.per_sink(), vec![1; 6]);
}
