//! Simulated remote instances: one HTTP listener per instance on loopback
//! (`localhost:PORT`), each serving its member's actor document (with a real
//! RSA public key), a NodeInfo document saying it runs Mastodon (the most
//! common server a group's followers are on), and an inbox that records what
//! Kindred delivers, then answers 202 after the instance's delay — or never.

use std::{
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::json;

use crate::{error::Result, signing::Key};

/// How an instance's inbox answers.
#[derive(Clone, Copy, Debug)]
pub enum Behavior {
    /// 202 after this long.
    After(Duration),
    /// Holds the request open and never answers.
    Never,
}

const NEVER: u64 = u64::MAX;

/// What arrived at an inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Accept,
    Announce,
    Other,
}

#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    pub instance: u32,
    pub at: Instant,
    pub kind: Kind,
    /// Kindred's post number the delivery carries (first `/posts/N` of ours).
    pub post: Option<u64>,
}

/// Every delivery received by every instance, in arrival order.
pub struct Recorder {
    arrivals: Mutex<Vec<Arrival>>,
    /// Prefix of Kindred's post ids, e.g. `http://localhost:8080/posts/`.
    post_prefix: String,
    epoch: Instant,
    /// Nanoseconds after `epoch` of the last request of any kind.
    last_request: AtomicU64,
}

impl Recorder {
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().map(|a| a.clone()).unwrap_or_default()
    }

    pub fn count(&self) -> usize {
        self.arrivals.lock().map(|a| a.len()).unwrap_or(0)
    }

    /// Drop what was recorded so far.
    pub fn clear(&self) {
        if let Ok(mut a) = self.arrivals.lock() {
            a.clear();
        }
    }

    /// How long since any instance last got a request.
    pub fn quiet_for(&self) -> Duration {
        let last = Duration::from_nanos(self.last_request.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }

    fn touch(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_request.store(now, Ordering::Relaxed);
    }

    fn record(&self, instance: u32, body: &[u8]) {
        let at = Instant::now();
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let kind = match v["type"].as_str() {
            Some("Accept") => Kind::Accept,
            Some("Announce") => Kind::Announce,
            _ => Kind::Other,
        };
        let post = post_number(body, self.post_prefix.as_bytes());
        if let Ok(mut a) = self.arrivals.lock() {
            a.push(Arrival {
                instance,
                at,
                kind,
                post,
            });
        }
    }
}

fn post_number(body: &[u8], prefix: &[u8]) -> Option<u64> {
    let start = body.windows(prefix.len()).position(|w| w == prefix)? + prefix.len();
    let digits: Vec<u8> = body[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

struct State {
    idx: u32,
    actor_path: String,
    actor_doc: Bytes,
    delay_ms: AtomicU64,
    open: AtomicUsize,
    max_open: AtomicUsize,
    /// Kindred has read this instance's NodeInfo document.
    nodeinfo_read: std::sync::atomic::AtomicBool,
    base: String,
}

/// One simulated instance with one member, `{base}/users/member`.
pub struct Instance {
    pub base: String,
    pub actor_id: String,
    pub key: Arc<Key>,
    state: Arc<State>,
}

impl Instance {
    pub fn set_behavior(&self, b: Behavior) {
        let ms = match b {
            Behavior::After(d) => u64::try_from(d.as_millis()).unwrap_or(NEVER - 1),
            Behavior::Never => NEVER,
        };
        self.state.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// Most inbox requests this instance held open at once.
    pub fn max_open(&self) -> usize {
        self.state.max_open.load(Ordering::Relaxed)
    }

    pub fn reset_max_open(&self) {
        self.state
            .max_open
            .store(self.state.open.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    pub fn key_id(&self) -> String {
        format!("{}#main-key", self.actor_id)
    }
}

/// A set of simulated instances sharing one recorder.
pub struct Sim {
    pub instances: Vec<Instance>,
    pub recorder: Arc<Recorder>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Sim {
    /// `n` instances, keys taken round-robin from `keys`, each answering per
    /// `behavior`; `kindred_base` is the server's base URL.
    pub async fn start(
        n: usize,
        keys: &[Arc<Key>],
        behavior: Behavior,
        kindred_base: &str,
    ) -> Result<Sim> {
        let recorder = Arc::new(Recorder {
            arrivals: Mutex::new(Vec::new()),
            post_prefix: format!("{kindred_base}/posts/"),
            epoch: Instant::now(),
            last_request: AtomicU64::new(0),
        });
        let mut instances = Vec::with_capacity(n);
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let port = listener.local_addr()?.port();
            let base = format!("http://localhost:{port}");
            let actor_id = format!("{base}/users/member");
            let key = keys[i % keys.len().max(1)].clone();
            let doc = json!({
                "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
                "type": "Person",
                "id": actor_id,
                "preferredUsername": "member",
                "name": format!("Member of instance {i}"),
                "inbox": format!("{actor_id}/inbox"),
                "outbox": format!("{actor_id}/outbox"),
                "followers": format!("{actor_id}/followers"),
                "endpoints": {"sharedInbox": format!("{base}/inbox")},
                "publicKey": {"id": format!("{actor_id}#main-key"), "owner": actor_id, "publicKeyPem": key.public_pem},
            });
            let state = Arc::new(State {
                idx: u32::try_from(i).unwrap_or(u32::MAX),
                actor_path: "/users/member".into(),
                actor_doc: Bytes::from(doc.to_string()),
                delay_ms: AtomicU64::new(0),
                open: AtomicUsize::new(0),
                max_open: AtomicUsize::new(0),
                nodeinfo_read: std::sync::atomic::AtomicBool::new(false),
                base: base.clone(),
            });
            let inst = Instance {
                base,
                actor_id,
                key,
                state: state.clone(),
            };
            inst.set_behavior(behavior);
            instances.push(inst);
            tasks.push(tokio::spawn(serve(listener, state, recorder.clone())));
        }
        Ok(Sim {
            instances,
            recorder,
            tasks,
        })
    }

    /// Wait until every instance has received an Accept (its member's
    /// Follow was taken), or fail after `timeout`.
    pub async fn wait_accepted(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut got = vec![false; self.instances.len()];
            for a in self.recorder.arrivals() {
                if a.kind == Kind::Accept
                    && let Some(g) = got.get_mut(a.instance as usize)
                {
                    *g = true;
                }
            }
            let missing = got.iter().filter(|g| !**g).count();
            if missing == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                return crate::error::fail(format!(
                    "{missing} of {} simulated instances never got the Accept of their Follow",
                    self.instances.len()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until Kindred has read every instance's NodeInfo (it does so in
    /// the background after first contact; it decides the form of a new
    /// thread's boost), at most `max`; how many were read.
    pub async fn wait_nodeinfo(&self, max: Duration) -> usize {
        let deadline = Instant::now() + max;
        loop {
            let read = self
                .instances
                .iter()
                .filter(|i| i.state.nodeinfo_read.load(Ordering::Relaxed))
                .count();
            if read == self.instances.len() || Instant::now() > deadline {
                return read;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until no instance got any request for `quiet` (at most `max`).
    pub async fn wait_quiet(&self, quiet: Duration, max: Duration) {
        let deadline = Instant::now() + max;
        while self.recorder.quiet_for() < quiet && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn serve(listener: tokio::net::TcpListener, state: Arc<State>, rec: Arc<Recorder>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let rec = rec.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(state.clone(), rec.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Counts an inbox request as open until it is answered or dropped.
struct Open(Arc<State>);

impl Open {
    fn new(s: &Arc<State>) -> Open {
        let n = s.open.fetch_add(1, Ordering::Relaxed) + 1;
        s.max_open.fetch_max(n, Ordering::Relaxed);
        Open(s.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn handle(
    s: Arc<State>,
    rec: Arc<Recorder>,
    req: Request<Incoming>,
) -> std::result::Result<Response<Full<Bytes>>, Infallible> {
    rec.touch();
    let path = req.uri().path().to_string();
    if req.method() == hyper::Method::POST {
        let _open = Open::new(&s);
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        rec.record(s.idx, &body);
        match s.delay_ms.load(Ordering::Relaxed) {
            NEVER => std::future::pending::<()>().await,
            0 => {}
            ms => tokio::time::sleep(Duration::from_millis(ms)).await,
        }
        return Ok(status(202));
    }
    if path == "/.well-known/nodeinfo" {
        let links = json!({"links": [{
            "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
            "href": format!("{}/nodeinfo/2.1", s.base),
        }]});
        return Ok(json_response(links.to_string(), "application/json"));
    }
    if path == "/nodeinfo/2.1" {
        s.nodeinfo_read.store(true, Ordering::Relaxed);
        let doc = json!({
            "version": "2.1",
            "software": {"name": "mastodon", "version": "4.5.0"},
            "protocols": ["activitypub"],
            "usage": {"users": {}},
            "openRegistrations": false,
            "metadata": {},
        });
        return Ok(json_response(doc.to_string(), "application/json"));
    }
    if path == s.actor_path {
        let mut r = Response::new(Full::new(s.actor_doc.clone()));
        r.headers_mut().insert(
            "content-type",
            hyper::header::HeaderValue::from_static("application/activity+json"),
        );
        return Ok(r);
    }
    Ok(status(404))
}

fn json_response(body: String, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

fn status(code: u16) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::OK);
    r
}
