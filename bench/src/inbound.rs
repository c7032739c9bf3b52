//! Section 2, inbound: signed Create activities into a group from many simulated
//! member instances, for a fixed time, on as many connections as instances:
//! activities verified and stored per second, and their latency.
//!
//! Signing is the sender's costly half (an RSA private-key operation per
//! request), so the requests are signed ahead by two threads into a queue,
//! filled before the clock starts, and kept topped up during the run; time a
//! connection waits for a signed request is reported.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};

use crate::{
    Ctx, MemSample,
    error::{Result, fail},
    http::Conn,
    report::{Row, Section},
    server::{Db, Server, join_all},
    signing::{Signed, sign_post},
    sim::{Behavior, Sim},
    stats::Samples,
};

const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

/// A simulated instance as a sender: base URL, actor id, key, key id.
type Sender = (String, String, Arc<crate::signing::Key>, String);

struct Job {
    body: Bytes,
    signed: Signed,
}

/// A new thread by `actor` (on `base`) in `group`, number `n`.
pub fn create(base: &str, actor: &str, group: &str, n: u64) -> Value {
    json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "type": "Create",
        "id": format!("{base}/creates/{n}"),
        "actor": actor,
        "to": [PUBLIC],
        "cc": [group],
        "object": {
            "type": "Note",
            "id": format!("{base}/notes/{n}"),
            "attributedTo": actor,
            "to": [PUBLIC],
            "cc": [group],
            "name": format!("Benchmark thread {n}"),
            "content": format!("<p>Benchmark post number {n}, sent by a simulated instance to measure how fast a group takes new threads.</p>"),
        }
    })
}

pub async fn run(ctx: &Ctx, db: Db) -> Result<(Section, MemSample)> {
    let (n_inst, secs, prefill_secs) = if ctx.smoke {
        (10, 5.0, 2.0)
    } else {
        (50, 60.0, 20.0)
    };
    let server = Server::start(&ctx.launch, db, "inbound", &["inbound"]).await?;
    let res = measure(ctx, &server, n_inst, secs, prefill_secs).await;
    let (now, peak) = server.memory_kib();
    let tail = server.log_tail();
    server.stop().await;
    let (section, idle) =
        res.map_err(|e| crate::error::Error(format!("{} (server log: {tail})", e.0)))?;
    Ok((
        section,
        MemSample {
            idle_kib: idle,
            peak_kib: peak,
            after_kib: now,
        },
    ))
}

async fn measure(
    ctx: &Ctx,
    server: &Server,
    n_inst: usize,
    secs: f64,
    prefill_secs: f64,
) -> Result<(Section, u64)> {
    let idle = server.memory_kib().0;
    let sim = Sim::start(
        n_inst,
        &ctx.keys,
        Behavior::After(Duration::ZERO),
        &server.base,
    )
    .await?;
    server.follow_all(&sim.instances, "inbound", 16).await?;
    sim.wait_accepted(Duration::from_secs(60)).await?;
    sim.wait_quiet(Duration::from_secs(1), Duration::from_secs(10))
        .await;
    sim.recorder.clear();

    // Signers: two threads filling a queue of signed Creates.
    let cap = if ctx.smoke { 4_000 } else { 40_000 };
    let (tx, rx) = mpsc::channel::<Job>(cap);
    let group = server.group_id("inbound");
    let host = format!("localhost:{}", server.port);
    let seq = Arc::new(AtomicU64::new(0));
    let targets: Arc<Vec<Sender>> = Arc::new(
        sim.instances
            .iter()
            .map(|i| {
                (
                    i.base.clone(),
                    i.actor_id.clone(),
                    i.key.clone(),
                    i.key_id(),
                )
            })
            .collect(),
    );
    let mut signers = Vec::new();
    for _ in 0..2 {
        let (tx, seq, targets, group, host) = (
            tx.clone(),
            seq.clone(),
            targets.clone(),
            group.clone(),
            host.clone(),
        );
        signers.push(tokio::task::spawn_blocking(move || {
            loop {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let (base, actor, key, key_id) = &targets[(n as usize) % targets.len()];
                let body = Bytes::from(create(base, actor, &group, n).to_string());
                let signed = sign_post(key, key_id, &host, "/inbox", &body);
                if tx.blocking_send(Job { body, signed }).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let fill_until = Instant::now() + Duration::from_secs_f64(prefill_secs);
    while Instant::now() < fill_until && seq.load(Ordering::Relaxed) < cap as u64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let prefilled = seq.load(Ordering::Relaxed).min(cap as u64);

    let rx = Arc::new(Mutex::new(rx));
    let stop = Arc::new(AtomicBool::new(false));
    let cpu0 = server.cpu();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..n_inst {
        let (rx, stop) = (rx.clone(), stop.clone());
        let port = server.port;
        tasks.push(async move {
            let mut c = Conn::new(port);
            let mut lat = Samples::default();
            let mut codes: BTreeMap<String, u64> = BTreeMap::new();
            let mut waited = Duration::ZERO;
            while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                let w = Instant::now();
                let job = {
                    let mut rx = rx.lock().await;
                    tokio::time::timeout_at(deadline.into(), rx.recv()).await
                };
                waited += w.elapsed();
                let Ok(Some(job)) = job else { break };
                let t = Instant::now();
                let r = c
                    .send(
                        "POST",
                        "/inbox",
                        &[
                            ("content-type", "application/activity+json"),
                            ("date", &job.signed.date),
                            ("digest", &job.signed.digest),
                            ("signature", &job.signed.signature),
                        ],
                        job.body,
                    )
                    .await;
                let key = match r {
                    Ok(a) if a.status == 202 => {
                        lat.push(t.elapsed());
                        "202".to_string()
                    }
                    Ok(a) => a.status.to_string(),
                    Err(_) => "no answer".to_string(),
                };
                *codes.entry(key).or_default() += 1;
            }
            (lat, codes, waited)
        });
    }
    let results = join_all(tasks).await;
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = server.cpu().saturating_sub(cpu0).as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    drop(rx);
    for s in signers {
        let _ = s.await;
    }
    let mut lat = Samples::default();
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    let mut waited = Duration::ZERO;
    for (l, c, w) in results {
        lat.extend(l);
        for (k, v) in c {
            *codes.entry(k).or_default() += v;
        }
        waited += w;
    }
    let stored = codes.get("202").copied().unwrap_or(0);
    let announces = sim.recorder.count();

    // The benchmark itself works only if what we sent got stored.
    let mut c = Conn::new(server.port);
    let a = c.get("/api/v1/groups/inbound/threads?limit=5", &[]).await?;
    let threads: Value = serde_json::from_slice(&a.body).unwrap_or_default();
    let visible = threads.as_array().map_or(0, Vec::len);
    if stored == 0 || visible == 0 {
        return fail(format!(
            "inbound: nothing was stored (answers {codes:?}, {visible} threads visible)"
        ));
    }

    let rate = stored as f64 / elapsed;
    // What a Create costs apart from signing the Announces it causes (one
    // private-key operation each, at the measured single-core rate).
    let rest = ((cpu - announces as f64 / ctx.limit.sign_per_sec) / stored as f64).max(0.0);
    let verify = ctx.limit.verify_per_sec;
    let target = 0.5 * verify;
    let mut rows = vec![
        Row::info("Creates verified and stored /s", rate, "/s")
            .target(format!("≥ {target:.0}/s (0.5 × verify/s)"), rate >= target)
            .ratio(rate / verify, "× verify/s"),
        Row::info("latency p50", lat.pct_ms(50.0), "ms"),
        Row::info("latency p99", lat.pct_ms(99.0), "ms"),
        Row::info(
            "server CPU per stored Create",
            cpu * 1000.0 / stored as f64,
            "ms",
        )
        .ratio(cpu / stored as f64 * verify, "× one verify"),
        Row::info("group Announces received by members", announces as f64, ""),
        Row::info(
            "CPU per Create less its Announces' signing (est.)",
            rest * 1000.0,
            "ms",
        )
        .ratio(rest * verify, "× one verify"),
    ];
    let other: u64 = codes
        .iter()
        .filter(|(k, _)| k.as_str() != "202")
        .map(|(_, v)| v)
        .sum();
    rows.push(Row::info("answers other than 202", other as f64, ""));
    let mut notes = vec![format!(
        "{n_inst} instances, one connection each, {elapsed:.1} s; answers: {codes:?}"
    )];
    notes.push(format!(
        "{prefilled} requests signed before the start; connections waited {:.1} s in all for signed requests (generator-bound if large)",
        waited.as_secs_f64()
    ));
    Ok((
        Section {
            title: "2. Inbound".into(),
            db: String::new(),
            rows,
            notes,
        },
        idle,
    ))
}
