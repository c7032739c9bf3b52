//! `Peer`: the Fedify-based ActivityPub server in tests/interop/peer (their
//! framework, our small app), spawned with Node and driven over its JSON
//! control API. Installs its npm packages on first use when they are missing.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

pub struct Peer {
    pub base: String,
    pub domain: String,
    http: reqwest::Client,
    // Dropping the child closes its stdin: the peer exits.
    _child: tokio::process::Child,
}

fn peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/peer")
}

/// `npm ci` once, when node_modules is missing (CI's `.ci/run` does it first).
fn ensure_installed() {
    let dir = peer_dir();
    if dir.join("node_modules/@fedify/fedify").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .expect("npm is needed for the interop test (Node.js 20 with npm)");
    assert!(status.success(), "npm ci in {} failed", dir.display());
}

impl Peer {
    pub async fn spawn() -> Peer {
        crate::helpers::init();
        tokio::task::spawn_blocking(ensure_installed)
            .await
            .expect("npm ci");
        let mut child = tokio::process::Command::new("node")
            .arg(peer_dir().join("peer.mjs"))
            .args(["--port", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node is needed for the interop test");
        let stdout = child.stdout.take().expect("peer stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("PEER READY ") {
                    return url.trim().to_string();
                }
            }
            panic!("the peer exited before it was ready");
        })
        .await
        .expect("the peer did not start within 60 s");
        // Keep draining stdout so the peer never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let domain = base.trim_start_matches("http://").to_string();
        Peer {
            base,
            domain,
            http: reqwest::Client::new(),
            _child: child,
        }
    }

    pub fn actor_id(&self) -> String {
        format!("{}/users/alice", self.base)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("peer control call");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// A control call that must succeed; its answer.
    pub async fn control(&self, path: &str, body: Value) -> Value {
        let res = self
            .http
            .post(format!("{}/control/{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("peer control call");
        let status = res.status();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "peer {path}: {status} {v}");
        v
    }

    pub async fn received(&self) -> Vec<Value> {
        let (_, v) = self.get("/control/received").await;
        v.as_array().cloned().unwrap_or_default()
    }

    pub async fn rejected(&self) -> Vec<Value> {
        let (_, v) = self.get("/control/rejected").await;
        v.as_array().cloned().unwrap_or_default()
    }
}
