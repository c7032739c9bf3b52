//! `Remote`: a hand-driven fake fediverse server for hostile-input tests. It
//! serves whatever documents a test puts at a path (any status, content type,
//! redirects), answers WebFinger from a table, records every request it gets,
//! and signs POSTs in the draft-cavage form Mastodon uses — or in any broken
//! form a test asks for.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use base64::Engine;
use rsa::{
    RsaPrivateKey,
    pkcs1v15::SigningKey,
    pkcs8::{EncodePublicKey, LineEnding},
    signature::{SignatureEncoding, Signer},
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[derive(Clone)]
pub enum Doc {
    /// Status, content type, body.
    Raw(u16, &'static str, String),
    /// 302 to this URL.
    Redirect(String),
}

impl Doc {
    pub fn ap(v: &Value) -> Doc {
        Doc::Raw(200, "application/activity+json", v.to_string())
    }
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Default)]
struct Inner {
    docs: HashMap<String, Doc>,
    seen: Vec<Seen>,
}

pub struct Remote {
    pub base: String,
    pub domain: String,
    pub key: RsaPrivateKey,
    state: Arc<Mutex<Inner>>,
    http: reqwest::Client,
    _task: tokio::task::JoinHandle<()>,
}

pub fn new_key() -> RsaPrivateKey {
    RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("rsa key")
}

pub fn public_pem(key: &RsaPrivateKey) -> String {
    key.to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("pem")
}

async fn serve(
    State(state): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = if uri.path() == "/.well-known/webfinger" {
        let q = uri.query().unwrap_or_default();
        let resource = q
            .split('&')
            .find_map(|p| p.strip_prefix("resource="))
            .unwrap_or_default();
        format!("wf:{}", resource.replace("%40", "@").replace("%3A", ":"))
    } else {
        uri.path().to_string()
    };
    let doc = {
        let mut s = state.lock().expect("lock");
        s.seen.push(Seen {
            method: method.to_string(),
            path: uri.path().to_string(),
            headers,
            body,
        });
        s.docs.get(&key).cloned()
    };
    match doc {
        Some(Doc::Raw(status, ct, body)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            [(header::CONTENT_TYPE, ct)],
            body,
        )
            .into_response(),
        Some(Doc::Redirect(to)) => {
            (StatusCode::FOUND, [(header::LOCATION, to)], "").into_response()
        }
        None if method == Method::POST => StatusCode::ACCEPTED.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// How to sign (or mis-sign) a POST.
pub struct Sign<'a> {
    pub headers: &'a [&'a str],
    pub key: Option<&'a RsaPrivateKey>,
    pub key_id: Option<String>,
    pub date: Option<String>,
    /// Sign this body but send another.
    pub send_body: Option<Vec<u8>>,
    /// Send a Digest header (signed or not).
    pub digest: bool,
}

impl Default for Sign<'_> {
    fn default() -> Self {
        Sign {
            headers: &["(request-target)", "host", "date", "digest"],
            key: None,
            key_id: None,
            date: None,
            send_body: None,
            digest: true,
        }
    }
}

impl Remote {
    pub async fn start() -> Remote {
        crate::helpers::init();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Remote {
            base: format!("http://localhost:{port}"),
            domain: format!("localhost:{port}"),
            key: tokio::task::spawn_blocking(new_key).await.expect("key"),
            state,
            http: reqwest::Client::new(),
            _task: task,
        }
    }

    pub fn put(&self, path: &str, doc: Doc) {
        // Keyed as requests arrive: percent-encoded.
        let path = if path.starts_with('/') {
            reqwest::Url::parse(&format!("http://x{path}"))
                .map(|u| u.path().to_string())
                .unwrap_or_else(|_| path.to_string())
        } else {
            path.to_string()
        };
        self.state
            .lock()
            .expect("lock")
            .docs
            .insert(path.to_string(), doc);
    }

    /// WebFinger for `acct:name@<this host>` pointing at `href`.
    pub fn webfinger(&self, name: &str, href: &str, link_type: &str) {
        let subject = format!("acct:{name}@{}", self.domain);
        let body = json!({
            "subject": subject,
            "links": [{"rel": "self", "type": link_type, "href": href}],
        });
        self.put(
            &format!("wf:{subject}"),
            Doc::Raw(200, "application/jrd+json", body.to_string()),
        );
    }

    /// A URL on this server, percent-encoded as servers send them.
    pub fn id(&self, path: &str) -> String {
        let raw = format!("{}{path}", self.base);
        reqwest::Url::parse(&raw).map(String::from).unwrap_or(raw)
    }

    /// An actor document (`Person` or `Group`) at `/users/{name}` with this
    /// server's key; `tweak` edits it before it is served.
    pub fn actor(&self, kind: &str, name: &str, tweak: impl FnOnce(&mut Value)) -> String {
        self.actor_with_key(kind, name, &public_pem(&self.key), tweak)
    }

    pub fn actor_with_key(
        &self,
        kind: &str,
        name: &str,
        pem: &str,
        tweak: impl FnOnce(&mut Value),
    ) -> String {
        let id = self.id(&format!("/users/{name}"));
        let mut doc = json!({
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "type": kind,
            "id": id,
            "preferredUsername": name,
            "name": name,
            "inbox": format!("{id}/inbox"),
            "outbox": format!("{id}/outbox"),
            "followers": format!("{id}/followers"),
            "endpoints": {"sharedInbox": self.id("/inbox")},
            "publicKey": {"id": format!("{id}#main-key"), "owner": id, "publicKeyPem": pem},
        });
        tweak(&mut doc);
        self.put(&format!("/users/{name}"), Doc::ap(&doc));
        self.webfinger(name, &id, "application/activity+json");
        id
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().expect("lock").seen.clone()
    }

    /// JSON bodies POSTed to this server, oldest first.
    pub fn posted(&self) -> Vec<Value> {
        self.seen()
            .iter()
            .filter(|s| s.method == "POST")
            .filter_map(|s| serde_json::from_slice(&s.body).ok())
            .collect()
    }

    pub fn gets_of(&self, path: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == "GET" && s.path == path)
            .count()
    }

    /// A signed GET the way Mastodon sends one: `(request-target) host date`,
    /// no Digest.
    pub async fn get_signed(&self, url: &str, actor: &str) -> u16 {
        let url_p = reqwest::Url::parse(url).expect("url");
        let host = match url_p.port() {
            Some(p) => format!("{}:{p}", url_p.host_str().unwrap_or_default()),
            None => url_p.host_str().unwrap_or_default().to_string(),
        };
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let signing = format!(
            "(request-target): get {}\nhost: {host}\ndate: {date}",
            url_p.path()
        );
        let signer = SigningKey::<Sha256>::new(self.key.clone());
        let sig = signer.sign(signing.as_bytes());
        let signature = format!(
            r#"keyId="{actor}#main-key",algorithm="rsa-sha256",headers="(request-target) host date",signature="{}""#,
            base64::engine::general_purpose::STANDARD.encode(sig.to_bytes())
        );
        self.http
            .get(url)
            .header("accept", "application/activity+json")
            .header("date", date)
            .header("signature", signature)
            .send()
            .await
            .expect("get")
            .status()
            .as_u16()
    }

    /// POST `body` to `url`, signed as `actor` (its `#main-key`) per `how`.
    pub async fn post(&self, url: &str, actor: &str, body: &Value, how: Sign<'_>) -> u16 {
        let bytes = serde_json::to_vec(body).expect("json");
        self.post_bytes(url, actor, bytes, how).await
    }

    /// `post`, with the answer's status and its JSON `message` (empty when
    /// none): what a sender's admin reads to learn why.
    pub async fn post_answer(
        &self,
        url: &str,
        actor: &str,
        body: &Value,
        how: Sign<'_>,
    ) -> (u16, String) {
        let bytes = serde_json::to_vec(body).expect("json");
        let res = self.send_signed(url, actor, bytes, how).await;
        let status = res.status().as_u16();
        let answer: Value = res.json().await.unwrap_or_default();
        let message = answer["message"].as_str().unwrap_or_default().to_string();
        (status, message)
    }

    /// POST these exact bytes, signed (digest included) as `actor`.
    pub async fn post_bytes(&self, url: &str, actor: &str, bytes: Vec<u8>, how: Sign<'_>) -> u16 {
        let res = self.send_signed(url, actor, bytes, how).await;
        res.status().as_u16()
    }

    async fn send_signed(
        &self,
        url: &str,
        actor: &str,
        bytes: Vec<u8>,
        how: Sign<'_>,
    ) -> reqwest::Response {
        let url_p = reqwest::Url::parse(url).expect("url");
        let host = match url_p.port() {
            Some(p) => format!("{}:{p}", url_p.host_str().unwrap_or_default()),
            None => url_p.host_str().unwrap_or_default().to_string(),
        };
        let date = how
            .date
            .clone()
            .unwrap_or_else(|| httpdate::fmt_http_date(std::time::SystemTime::now()));
        let digest = format!(
            "SHA-256={}",
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&bytes))
        );
        let line = |h: &str| -> String {
            match h {
                "(request-target)" => format!("(request-target): post {}", url_p.path()),
                "host" => format!("host: {host}"),
                "date" => format!("date: {date}"),
                "digest" => format!("digest: {digest}"),
                "content-type" => "content-type: application/activity+json".to_string(),
                other => format!("{other}: "),
            }
        };
        let signing_string: Vec<String> = how.headers.iter().map(|h| line(h)).collect();
        let key = how.key.unwrap_or(&self.key).clone();
        let signer = SigningKey::<Sha256>::new(key);
        let sig = signer.sign(signing_string.join("\n").as_bytes());
        let key_id = how
            .key_id
            .clone()
            .unwrap_or_else(|| format!("{actor}#main-key"));
        let signature = format!(
            r#"keyId="{key_id}",algorithm="rsa-sha256",headers="{}",signature="{}""#,
            how.headers.join(" "),
            base64::engine::general_purpose::STANDARD.encode(sig.to_bytes())
        );
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/activity+json")
            .header("date", &date)
            .header("signature", signature);
        if how.digest {
            req = req.header("digest", &digest);
        }
        let sent = how.send_body.unwrap_or(bytes);
        req.body(sent).send().await.expect("post")
    }
}
