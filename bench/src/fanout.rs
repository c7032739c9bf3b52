//! Section 3, fan-out: one post by a local member to a group whose followers sit on
//! many instances (each inbox answers 202 after 100 ms): time until the last
//! instance has it, the sender's CPU per delivery, and the read path's p99
//! during the fan-out against the same probe at idle.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    Ctx, MemSample,
    error::{Result, fail},
    http::Conn,
    read::{probe, targets},
    report::{Row, Section},
    server::{Db, Server},
    sim::{Behavior, Sim},
};

const SINK_DELAY: Duration = Duration::from_millis(100);

pub async fn run(ctx: &Ctx, db: Db) -> Result<(Section, MemSample)> {
    let server = Server::start(&ctx.launch, db, "fanout", &["fanout"]).await?;
    let res = measure(ctx, &server).await;
    let tail = server.log_tail();
    server.stop().await;
    res.map_err(|e| crate::error::Error(format!("{} (server log: {tail})", e.0)))
}

async fn measure(ctx: &Ctx, server: &Server) -> Result<(Section, MemSample)> {
    let idle = server.memory_kib().0;
    let n = ctx.fanout_instances;
    let sim = Sim::start(n, &ctx.keys, Behavior::After(SINK_DELAY), &server.base).await?;
    let setup = Instant::now();
    server.follow_all(&sim.instances, "fanout", 32).await?;
    sim.wait_accepted(Duration::from_secs(180)).await?;
    let nodeinfo_read = sim.wait_nodeinfo(Duration::from_secs(60)).await;
    sim.wait_quiet(Duration::from_millis(1500), Duration::from_secs(60))
        .await;
    let setup_secs = setup.elapsed().as_secs_f64();
    let token = server.local_member("poster", "fanout").await?;

    // The read probe at idle: 4 connections, one request each per 10 ms.
    let ts: Vec<_> = targets("fanout")[..2].to_vec();
    let every = Duration::from_millis(10);
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_idle0 = server.cpu();
    let idle_probe = {
        let stop2 = stop.clone();
        let t = tokio::spawn(probe(server.port, ts.clone(), 4, every, stop2));
        tokio::time::sleep(Duration::from_secs(if ctx.smoke { 1 } else { 4 })).await;
        stop.store(true, Ordering::Relaxed);
        t.await?
    };
    let probe_cpu_per_req =
        server.cpu().saturating_sub(cpu_idle0).as_secs_f64() / (idle_probe.ok.max(1) as f64);
    sim.recorder.clear();

    // The post, with the probe running.
    let stop = Arc::new(AtomicBool::new(false));
    let busy = tokio::spawn(probe(server.port, ts.clone(), 4, every, stop.clone()));
    let cpu0 = server.cpu();
    let t0 = Instant::now();
    let mut c = Conn::new(server.port);
    let a = c
        .post_json(
            "/api/v1/groups/fanout/threads",
            Some(&token),
            &json!({"title": "Fan-out", "content": "One post to every member instance."}),
        )
        .await?;
    let post: Value = serde_json::from_slice(&a.body).unwrap_or_default();
    let Some(post_id) = post["id"].as_u64() else {
        stop.store(true, Ordering::Relaxed);
        return fail(format!("posting failed ({}): {post}", a.status));
    };

    // Wait until every instance has a copy, then until the copies stop.
    let timeout = Duration::from_secs(if ctx.smoke { 60 } else { 180 });
    let mut all_at: Option<Instant> = None;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let arrivals = sim.recorder.arrivals();
        let mut per: HashMap<u32, usize> = HashMap::new();
        for a in arrivals.iter().filter(|a| a.post == Some(post_id)) {
            *per.entry(a.instance).or_default() += 1;
        }
        if all_at.is_none() && per.len() == n {
            all_at = Some(Instant::now());
        }
        if all_at.is_some() && sim.recorder.quiet_for() > Duration::from_millis(1500) {
            break;
        }
        if t0.elapsed() > timeout {
            stop.store(true, Ordering::Relaxed);
            return fail(format!(
                "fan-out: after {} s only {} of {n} instances got the post",
                timeout.as_secs(),
                per.len()
            ));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut busy = busy.await?;
    let cpu = server.cpu().saturating_sub(cpu0).as_secs_f64();
    let mut idle_probe = idle_probe;

    let arrivals: Vec<_> = sim
        .recorder
        .arrivals()
        .into_iter()
        .filter(|a| a.post == Some(post_id))
        .collect();
    let deliveries = arrivals.len();
    let mut first: HashMap<u32, Instant> = HashMap::new();
    for a in &arrivals {
        first.entry(a.instance).or_insert(a.at);
    }
    let answered = |at: &Instant| (at.duration_since(t0) + SINK_DELAY).as_secs_f64();
    let last_all = arrivals.iter().map(|a| answered(&a.at)).fold(0.0, f64::max);
    let first_everywhere = first.values().map(answered).fold(0.0, f64::max);
    let probe_cpu = probe_cpu_per_req * busy.ok as f64;
    let send_cpu = (cpu - probe_cpu).max(0.0);
    let per_delivery = send_cpu / deliveries.max(1) as f64;
    let sign = ctx.limit.sign_per_sec;
    let p99_idle = idle_probe.lat.pct_ms(99.0);
    let p99_busy = busy.lat.pct_ms(99.0);
    let scaled = n == 1000;
    let mut last = Row::info(
        format!("time until all {deliveries} deliveries answered"),
        last_all,
        "s",
    )
    .ratio(last_all * sign / deliveries.max(1) as f64, "× signing time");
    let mut first_row = Row::info(
        format!("time until each of {n} instances has a copy"),
        first_everywhere,
        "s",
    )
    .ratio(first_everywhere * sign / n as f64, "× signing time");
    if scaled {
        last = last.target("≤ 3 s", last_all <= 3.0);
        first_row = first_row.target("≤ 3 s", first_everywhere <= 3.0);
    }
    let rows = vec![
        first_row,
        last,
        Row::info("deliveries per instance", deliveries as f64 / n as f64, ""),
        Row::info("sender CPU per delivery", per_delivery * 1000.0, "ms")
            .ratio(per_delivery * sign, "× one sign"),
        Row::info("read p99 at idle (probe)", p99_idle, "ms"),
        Row::info("read p99 during fan-out (probe)", p99_busy, "ms")
            .target("≤ 2 × idle", p99_busy <= 2.0 * p99_idle)
            .ratio(p99_busy / p99_idle.max(0.001), "× idle p99"),
    ];
    let notes = vec![
        format!(
            "{n} instances, each inbox answers 202 after 100 ms; following took {setup_secs:.1} s"
        ),
        format!(
            "the instances say (NodeInfo) they run Mastodon, so each gets the Announce of the post, not also the Announce(Create); Kindred had read {nodeinfo_read} of {n} NodeInfo documents before the post"
        ),
        format!(
            "probe: actor JSON and threads page, 4 connections at one request per 10 ms each ({} idle, {} during); its CPU ({:.3} s) subtracted",
            idle_probe.ok, busy.ok, probe_cpu
        ),
        "\"× signing time\": the time divided by what one core needs to sign that many requests"
            .into(),
    ];
    let (now, peak) = server.memory_kib();
    Ok((
        Section {
            title: "3. Fan-out".into(),
            db: String::new(),
            rows,
            notes,
        },
        MemSample {
            idle_kib: idle,
            peak_kib: peak,
            after_kib: now,
        },
    ))
}
