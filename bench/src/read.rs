//! Section 4, the read path: the group's actor JSON, a page of 20 threads as JSON and the
//! group's HTML page, each at 64 concurrent connections: requests/s and p99.
//! Also the paced probe the fan-out section uses to see reads during a
//! fan-out.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    Ctx, MemSample,
    error::{Result, fail},
    http::Conn,
    inbound::create,
    report::{Row, Section},
    server::{Db, Server, join_all},
    sim::{Behavior, Sim},
    stats::Samples,
};

/// One kind of read.
#[derive(Clone)]
pub struct Target {
    pub name: &'static str,
    pub path: String,
    pub accept: &'static str,
}

pub fn targets(group: &str) -> [Target; 3] {
    [
        Target {
            name: "group actor JSON",
            path: format!("/groups/{group}"),
            accept: "application/activity+json",
        },
        Target {
            name: "page of 20 threads JSON",
            path: format!("/api/v1/groups/{group}/threads?limit=20"),
            accept: "application/json",
        },
        Target {
            name: "group HTML page",
            path: format!("/g/{group}"),
            accept: "text/html",
        },
    ]
}

pub struct Load {
    pub ok: u64,
    pub errors: u64,
    pub lat: Samples,
    pub secs: f64,
}

/// `conns` connections, each asking for `t` in a closed loop for `secs`.
pub async fn closed_loop(port: u16, t: &Target, conns: usize, secs: f64) -> Load {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let t = t.clone();
        tasks.push(async move {
            let mut c = Conn::new(port);
            let mut lat = Samples::default();
            let (mut ok, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                let s = Instant::now();
                match c.get(&t.path, &[("accept", t.accept)]).await {
                    Ok(a) if a.status == 200 => {
                        ok += 1;
                        lat.push(s.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (ok, errors, lat)
        });
    }
    let mut load = Load {
        ok: 0,
        errors: 0,
        lat: Samples::default(),
        secs: 0.0,
    };
    for (ok, errors, lat) in join_all(tasks).await {
        load.ok += ok;
        load.errors += errors;
        load.lat.extend(lat);
    }
    load.secs = start.elapsed().as_secs_f64();
    load
}

/// A paced probe: `conns` connections, each asking for the targets in turn
/// every `every`, until `stop`. Latencies of successful answers.
pub async fn probe(
    port: u16,
    ts: Vec<Target>,
    conns: usize,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> Load {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..conns {
        let (ts, stop) = (ts.clone(), stop.clone());
        tasks.push(async move {
            let mut c = Conn::new(port);
            let mut lat = Samples::default();
            let (mut ok, mut errors) = (0u64, 0u64);
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut i = k;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let t = &ts[i % ts.len()];
                i += 1;
                let s = Instant::now();
                match c.get(&t.path, &[("accept", t.accept)]).await {
                    Ok(a) if a.status == 200 => {
                        ok += 1;
                        lat.push(s.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (ok, errors, lat)
        });
    }
    let mut load = Load {
        ok: 0,
        errors: 0,
        lat: Samples::default(),
        secs: 0.0,
    };
    for (ok, errors, lat) in join_all(tasks).await {
        load.ok += ok;
        load.errors += errors;
        load.lat.extend(lat);
    }
    load.secs = start.elapsed().as_secs_f64();
    load
}

pub async fn run(ctx: &Ctx, db: Db) -> Result<(Section, MemSample)> {
    let server = Server::start(&ctx.launch, db, "read", &["reads"]).await?;
    let res = measure(ctx, &server).await;
    let tail = server.log_tail();
    server.stop().await;
    res.map_err(|e| crate::error::Error(format!("{} (server log: {tail})", e.0)))
}

async fn measure(ctx: &Ctx, server: &Server) -> Result<(Section, MemSample)> {
    let idle = server.memory_kib().0;
    let secs = if ctx.smoke { 1.5 } else { 30.0 };
    let conns = 64;
    // One member instance posts 25 threads, so a page has 20.
    let sim = Sim::start(1, &ctx.keys, Behavior::After(Duration::ZERO), &server.base).await?;
    server.follow_all(&sim.instances, "reads", 1).await?;
    sim.wait_accepted(Duration::from_secs(30)).await?;
    let inst = &sim.instances[0];
    let group = server.group_id("reads");
    let mut c = Conn::new(server.port);
    for n in 0..25 {
        let code = server
            .signed_post(&mut c, inst, &create(&inst.base, &inst.actor_id, &group, n))
            .await?;
        if code != 202 {
            return fail(format!("seeding threads: a Create answered {code}"));
        }
    }
    sim.wait_quiet(Duration::from_secs(1), Duration::from_secs(10))
        .await;
    let ts = targets("reads");
    for t in &ts {
        let a = c.get(&t.path, &[("accept", t.accept)]).await?;
        if a.status != 200 {
            return fail(format!("{} ({}) answered {}", t.name, t.path, a.status));
        }
    }
    let page: Value =
        serde_json::from_slice(&c.get(&ts[1].path, &[]).await?.body).unwrap_or_default();
    let on_page = page.as_array().map_or(0, Vec::len);
    if on_page != 20 {
        return fail(format!("the threads page holds {on_page} threads, not 20"));
    }

    let mut rows = Vec::new();
    let mut notes = vec![format!("{conns} connections, {secs} s per target")];
    let goals = [(10_000.0, 10.0), (2_000.0, 25.0), (0.0, 0.0)];
    for (t, (rps_goal, p99_goal)) in ts.iter().zip(goals) {
        let cpu0 = server.cpu();
        let mut l = closed_loop(server.port, t, conns, secs).await;
        let cpu = server.cpu().saturating_sub(cpu0);
        if l.ok == 0 {
            return fail(format!(
                "{}: no request succeeded ({} errors)",
                t.name, l.errors
            ));
        }
        let rps = l.ok as f64 / l.secs;
        let p99 = l.lat.pct_ms(99.0);
        let mut r = Row::info(format!("{}: requests/s", t.name), rps, "/s")
            .ratio(rps / ctx.limit.verify_per_sec, "× verify/s");
        let mut q = Row::info(format!("{}: p99", t.name), p99, "ms");
        if rps_goal > 0.0 {
            r = r.target(format!("≥ {rps_goal:.0}/s"), rps >= rps_goal);
            q = q.target(format!("≤ {p99_goal:.0} ms"), p99 <= p99_goal);
        }
        rows.push(r);
        rows.push(q);
        // Steadier than requests/s on a shared machine: what each request
        // cost the server, whatever else the cores were doing.
        rows.push(Row::info(
            format!("{}: server CPU per request", t.name),
            cpu.as_secs_f64() * 1e6 / (l.ok + l.errors).max(1) as f64,
            "µs",
        ));
        if l.errors > 0 {
            notes.push(format!("{}: {} failed requests", t.name, l.errors));
        }
    }
    let peak = server.memory_kib().1;
    tokio::time::sleep(Duration::from_secs(if ctx.smoke { 1 } else { 3 })).await;
    let after = server.memory_kib().0;
    Ok((
        Section {
            title: "4. Read path".into(),
            db: String::new(),
            rows,
            notes,
        },
        MemSample {
            idle_kib: idle,
            peak_kib: peak,
            after_kib: after,
        },
    ))
}
