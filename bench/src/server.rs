//! The Kindred under test: a `kindred serve` child process on a fresh
//! database (SQLite file in a temporary directory, or a new PostgreSQL
//! database dropped afterwards), pinned to core 0 when `taskset` is there;
//! its CLI for setup; its memory and CPU read from /proc.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::{io::AsyncWriteExt, process::Command};

use crate::{
    error::{Result, fail},
    http::Conn,
    signing::sign_post,
    sim::Instance,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    pub fn name(self) -> &'static str {
        match self {
            Db::Sqlite => "sqlite",
            Db::Postgres => "postgres",
        }
    }
}

/// How to start servers in this run.
#[derive(Clone, Debug)]
pub struct Launch {
    pub bin: PathBuf,
    pub pg_url: String,
    /// Run the server under `taskset -c 0`.
    pub pin: bool,
    /// Extra `KINDRED_*` settings (applied after the ones every server gets,
    /// so they override them).
    pub env: Vec<(String, String)>,
}

impl Launch {
    /// The same launch with more `KINDRED_*` settings, for one section's
    /// servers (e.g. `KINDRED_FEDERATION__INBOX_PER_SEC`); the others keep
    /// Kindred's defaults.
    pub fn with_env(&self, extra: &[(&str, String)]) -> Launch {
        let mut l = self.clone();
        l.env
            .extend(extra.iter().map(|(k, v)| ((*k).to_string(), v.clone())));
        l
    }
}

pub struct Server {
    pub port: u16,
    pub base: String,
    pub pid: u32,
    child: tokio::process::Child,
    env: Vec<(String, String)>,
    bin: PathBuf,
    dir: PathBuf,
    pg: Option<(String, String)>,
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

async fn psql(admin_url: &str, sql: &str) -> Result<()> {
    let out = Command::new("psql")
        .args([admin_url, "-qAtc", sql])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| {
            crate::error::Error(format!("cannot run psql (needed for PostgreSQL): {e}"))
        })?;
    if !out.status.success() {
        return fail(format!(
            "psql `{sql}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

impl Server {
    /// Start Kindred on a fresh database; `groups` are created with the CLI
    /// first (open, public). Returns once `/healthz` answers.
    pub async fn start(launch: &Launch, db: Db, tag: &str, groups: &[&str]) -> Result<Server> {
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!(
            "kindred-bench-{}-{tag}-{}",
            std::process::id(),
            db.name()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut pg = None;
        let url = match db {
            Db::Sqlite => format!("sqlite://{}/kindred.db?mode=rwc", dir.display()),
            Db::Postgres => {
                let name = format!("kindred_bench_{}_{tag}", std::process::id());
                psql(&launch.pg_url, &format!("DROP DATABASE IF EXISTS {name}")).await?;
                psql(&launch.pg_url, &format!("CREATE DATABASE {name}")).await?;
                pg = Some((launch.pg_url.clone(), name.clone()));
                // Options after the database name (`?sslmode=disable`)
                // are kept for the new database.
                let (base, query) = match launch.pg_url.split_once('?') {
                    Some((base, query)) => (base, format!("?{query}")),
                    None => (launch.pg_url.as_str(), String::new()),
                };
                match base.rsplit_once('/') {
                    Some((head, _)) => format!("{head}/{name}{query}"),
                    None => return fail("--pg-url needs a database name"),
                }
            }
        };
        let mut env = vec![
            ("KINDRED_DOMAIN".to_string(), format!("localhost:{port}")),
            ("KINDRED_BIND".to_string(), format!("127.0.0.1:{port}")),
            ("KINDRED_DATABASE_URL".to_string(), url),
            ("KINDRED_DEV_MODE".to_string(), "true".to_string()),
            ("KINDRED_LOG__FILTER".to_string(), "error".to_string()),
        ];
        env.extend(launch.env.iter().cloned());
        let log = std::fs::File::create(dir.join("server.log"))?;
        let mut server = Server {
            port,
            base: format!("http://localhost:{port}"),
            pid: 0,
            child: Command::new("true").spawn()?,
            env,
            bin: launch.bin.clone(),
            dir,
            pg,
        };
        // Whatever fails from here on, the database and directory go.
        if let Err(e) = server.launch(launch, groups, log).await {
            server.stop().await;
            return Err(e);
        }
        Ok(server)
    }

    /// Create `groups` with the CLI, then start `kindred serve` and wait
    /// until it is ready.
    async fn launch(&mut self, launch: &Launch, groups: &[&str], log: std::fs::File) -> Result<()> {
        for g in groups {
            self.cli(
                &["group", "create", g, "--title", &format!("Bench {g}")],
                None,
            )
            .await?;
        }
        let mut cmd = if launch.pin {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(&launch.bin);
            c
        } else {
            Command::new(&launch.bin)
        };
        cmd.arg("serve")
            .envs(self.env.iter().cloned())
            .env_remove("RUST_LOG")
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        self.child = cmd.spawn()?;
        self.pid = self.child.id().unwrap_or(0);
        self.wait_ready().await?;
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return fail(format!(
                    "kindred exited at start ({status}): {}",
                    self.log_tail()
                ));
            }
            let mut c = Conn::new(self.port);
            if let Ok(a) = c.get("/readyz", &[]).await
                && a.status == 200
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return fail(format!("kindred not ready after 60 s: {}", self.log_tail()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(8)..].join("\n")
    }

    /// Run a `kindred` CLI command on this instance's database.
    pub async fn cli(&self, args: &[&str], stdin: Option<&str>) -> Result<()> {
        let mut child = Command::new(&self.bin)
            .args(args)
            .envs(self.env.iter().cloned())
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut input) = child.stdin.take() {
            input
                .write_all(stdin.unwrap_or_default().as_bytes())
                .await?;
        }
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            return fail(format!(
                "kindred {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    }

    pub fn group_id(&self, name: &str) -> String {
        format!("{}/groups/{name}", self.base)
    }

    /// A local member of `group`, signed in: its API token.
    pub async fn local_member(&self, name: &str, group: &str) -> Result<String> {
        self.cli(&["user", "create", name], Some("bench password 1234\n"))
            .await?;
        let mut c = Conn::new(self.port);
        let a = c
            .post_json(
                "/api/v1/auth/login",
                None,
                &json!({"username": name, "password": "bench password 1234"}),
            )
            .await?;
        let v: Value = serde_json::from_slice(&a.body).unwrap_or_default();
        let Some(token) = v["token"].as_str() else {
            return fail(format!("login failed ({}): {v}", a.status));
        };
        let a = c
            .post_json(
                &format!("/api/v1/groups/{group}/join"),
                Some(token),
                &json!({}),
            )
            .await?;
        if a.status >= 300 {
            return fail(format!("join failed ({})", a.status));
        }
        Ok(token.to_string())
    }

    /// POST `activity` to the shared inbox, signed as `inst`'s member.
    pub async fn signed_post(
        &self,
        c: &mut Conn,
        inst: &Instance,
        activity: &Value,
    ) -> Result<u16> {
        let body = bytes::Bytes::from(activity.to_string());
        let host = format!("localhost:{}", self.port);
        let key = inst.key.clone();
        let key_id = inst.key_id();
        let b = body.clone();
        let s = tokio::task::spawn_blocking(move || sign_post(&key, &key_id, &host, "/inbox", &b))
            .await?;
        let a = c
            .send(
                "POST",
                "/inbox",
                &[
                    ("content-type", "application/activity+json"),
                    ("date", &s.date),
                    ("digest", &s.digest),
                    ("signature", &s.signature),
                ],
                body,
            )
            .await?;
        Ok(a.status)
    }

    /// Each instance's member follows `group` (open: accepted at once);
    /// `concurrency` Follows at a time. Fails on any answer but 202.
    pub async fn follow_all(
        &self,
        instances: &[Instance],
        group: &str,
        concurrency: usize,
    ) -> Result<()> {
        let group_id = self.group_id(group);
        let mut chunks: Vec<Vec<&Instance>> = vec![Vec::new(); concurrency.max(1)];
        let k = chunks.len();
        for (i, inst) in instances.iter().enumerate() {
            chunks[i % k].push(inst);
        }
        let mut futs = Vec::new();
        for chunk in chunks {
            let group_id = group_id.clone();
            futs.push(async move {
                let mut c = Conn::new(self.port);
                for inst in chunk {
                    let follow = json!({
                        "@context": "https://www.w3.org/ns/activitystreams",
                        "type": "Follow",
                        "id": format!("{}/follows/{group}", inst.base),
                        "actor": inst.actor_id,
                        "object": group_id,
                    });
                    let code = self.signed_post(&mut c, inst, &follow).await?;
                    if code != 202 {
                        return fail(format!(
                            "Follow from {} answered {code}: {}",
                            inst.base,
                            self.log_tail()
                        ));
                    }
                }
                Ok(())
            });
        }
        for r in join_all(futs).await {
            r?;
        }
        Ok(())
    }

    /// Resident memory now and at its peak (VmRSS, VmHWM), in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// CPU time used so far (user + system).
    pub fn cpu(&self) -> Duration {
        cpu_of(self.pid)
    }

    /// CPU time used so far (user + system) by each of the server's threads
    /// whose name starts with `prefix`, by thread id.
    pub fn thread_cpu(&self, prefix: &str) -> BTreeMap<u32, Duration> {
        threads_cpu_of(self.pid, prefix)
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        if let Some((admin, name)) = self.pg.take() {
            let _ = psql(
                &admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// CPU time (user + system) of process `pid`, from /proc/PID/stat.
pub fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat_cpu(&stat)
}

/// CPU time (user + system) of each thread of process `pid` whose name
/// (its comm) starts with `prefix`, by thread id, from
/// /proc/PID/task/TID/stat. Threads that end while being read are left out.
pub fn threads_cpu_of(pid: u32, prefix: &str) -> BTreeMap<u32, Duration> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // The name (what /proc/PID/task/TID/comm holds) is between the
        // first '(' and the last ')' of the same line: one read, so the
        // name and the times are of the same thread.
        let name = stat
            .split_once('(')
            .and_then(|(_, r)| r.rsplit_once(')'))
            .map_or("", |(n, _)| n);
        if name.starts_with(prefix) {
            out.insert(tid, stat_cpu(&stat));
        }
    }
    out
}

/// utime + stime of a /proc/…/stat line.
fn stat_cpu(stat: &str) -> Duration {
    // Fields after the command name, which is in parentheses and may itself
    // hold spaces or ')': split after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 (1-based) of the whole line: 12 and 13 here (0-based after the state field at 0).
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / clock_ticks())
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Await every future, concurrently (on this task), results in order.
pub async fn join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futs.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_threads_cpu_is_read_and_others_are_not() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::Builder::new()
            .name("bench-t (x) 0".into())
            .spawn(move || {
                // Spin until the kernel has counted some CPU time for this
                // thread (a tick), however busy the machine is.
                let mut x = 0u64;
                while stat_cpu(
                    &std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default(),
                )
                .is_zero()
                {
                    for _ in 0..100_000 {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                }
                let _ = ready_tx.send(());
                let _ = rx.recv();
            })
            .expect("spawn");
        ready_rx.recv().expect("ready");
        let found = threads_cpu_of(std::process::id(), "bench-t (x)");
        let _ = tx.send(());
        t.join().expect("join");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found.values().all(|d| !d.is_zero()), "{found:?}");
        assert!(threads_cpu_of(std::process::id(), "no-such-thread").is_empty());
    }
}
