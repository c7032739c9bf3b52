//! Section 6, a slow remote: a group followed from many instances, one answering in
//! 250 ms and one never answering; a local member posts at a steady rate.
//! The delivery lag to the healthy instances is compared with a baseline
//! phase in which every instance answers at once, and the dead instance's
//! open requests are counted (it should hold only its own slots).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    Ctx, MemSample,
    error::{Result, fail},
    http::Conn,
    report::{Row, Section},
    server::{Db, Server},
    sim::{Behavior, Sim},
    stats::Samples,
};

/// Copies each member instance gets of a new local thread: the simulated
/// instances say they are Mastodon (NodeInfo), so one boost of the post each
/// (`outbox::boost_form`), once Kindred has read their NodeInfo.
const COPIES: usize = 1;

pub async fn run(ctx: &Ctx, db: Db) -> Result<(Section, MemSample)> {
    let server = Server::start(&ctx.launch, db, "slow", &["slow"]).await?;
    let res = measure(ctx, &server).await;
    let tail = server.log_tail();
    server.stop().await;
    res.map_err(|e| crate::error::Error(format!("{} (server log: {tail})", e.0)))
}

struct Phase {
    sent: HashMap<u64, Instant>,
    rate: f64,
    /// Posts the API refused (status → count), e.g. 503 when the database
    /// is too busy.
    refused: std::collections::BTreeMap<u16, u64>,
}

/// Post threads at `rate`/s for `secs`; the send time of each.
async fn post_for(server: &Server, token: &str, rate: f64, secs: f64, tag: &str) -> Result<Phase> {
    let mut c = Conn::new(server.port);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let start = Instant::now();
    let mut sent = HashMap::new();
    let mut refused = std::collections::BTreeMap::new();
    let mut i = 0;
    while start.elapsed().as_secs_f64() < secs {
        tick.tick().await;
        i += 1;
        let t = Instant::now();
        let a = c
            .post_json(
                "/api/v1/groups/slow/threads",
                Some(token),
                &json!({"title": format!("{tag} {i}"), "content": "A post to measure delivery lag."}),
            )
            .await?;
        let v: Value = serde_json::from_slice(&a.body).unwrap_or_default();
        match v["id"].as_u64() {
            Some(id) => {
                sent.insert(id, t);
            }
            None => *refused.entry(a.status).or_default() += 1,
        }
    }
    if sent.is_empty() {
        return fail(format!("slow remote: every post was refused: {refused:?}"));
    }
    let rate = sent.len() as f64 / start.elapsed().as_secs_f64();
    Ok(Phase {
        sent,
        rate,
        refused,
    })
}

/// Lags of the copies that arrived at instances `healthy`, and how many
/// expected copies never came.
fn lags(
    sim: &Sim,
    phase: &Phase,
    healthy: impl Fn(u32) -> bool,
    n_healthy: usize,
) -> (Samples, usize) {
    let mut s = Samples::default();
    for a in sim.recorder.arrivals() {
        if !healthy(a.instance) {
            continue;
        }
        if let Some(sent) = a.post.and_then(|p| phase.sent.get(&p)) {
            s.push(a.at.saturating_duration_since(*sent));
        }
    }
    let expected = phase.sent.len() * n_healthy * COPIES;
    let missing = expected.saturating_sub(s.len());
    (s, missing)
}

/// Wait until every healthy instance has every copy of `phase`'s posts,
/// or `max` passed.
async fn drain(sim: &Sim, phase: &Phase, n_healthy: usize, max: Duration) {
    let deadline = Instant::now() + max;
    while Instant::now() < deadline && lags(sim, phase, |i| i >= 2, n_healthy).1 > 0 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn measure(ctx: &Ctx, server: &Server) -> Result<(Section, MemSample)> {
    let idle = server.memory_kib().0;
    let n = if ctx.smoke { 10 } else { 100 };
    let (base_secs, secs) = if ctx.smoke { (2.0, 4.0) } else { (30.0, 120.0) };
    let sim = Sim::start(n, &ctx.keys, Behavior::After(Duration::ZERO), &server.base).await?;
    server.follow_all(&sim.instances, "slow", 16).await?;
    sim.wait_accepted(Duration::from_secs(60)).await?;
    let nodeinfo_read = sim.wait_nodeinfo(Duration::from_secs(60)).await;
    if nodeinfo_read < n {
        return fail(format!(
            "slow remote: Kindred read the NodeInfo of {nodeinfo_read} of {n} instances in 60 s (the copies each gets depend on it)"
        ));
    }
    sim.wait_quiet(Duration::from_secs(1), Duration::from_secs(20))
        .await;
    let token = server.local_member("poster", "slow").await?;

    // 20 posts/s asks for 20 × COPIES × n signed deliveries a second; more
    // than the server's core can send only makes a queue that grows without
    // end, and the lag then measures that queue, not what a slow or dead
    // instance costs the others. A delivery costs the server about two
    // signatures' worth of CPU (the signature, then the claim, outcome and
    // HTTP): the rate is capped at a quarter of the single-core sign rate in
    // deliveries, which keeps the server's core about half busy.
    let asked = ctx.slow_rate;
    let sustainable = 0.25 * ctx.limit.sign_per_sec / (COPIES * n) as f64;
    let rate = if ctx.force_slow_rate {
        asked
    } else {
        asked.min(sustainable).max(0.2)
    };

    sim.recorder.clear();
    let base = post_for(server, &token, rate, base_secs, "baseline").await?;
    drain(&sim, &base, n - 2, Duration::from_secs(30)).await;
    let (mut base_lag, base_missing) = lags(&sim, &base, |i| i >= 2, n - 2);
    if base_lag.len() == 0 {
        return fail("slow remote: no delivery arrived in the baseline phase");
    }
    sim.recorder.clear();

    sim.instances[0].set_behavior(Behavior::After(Duration::from_millis(250)));
    sim.instances[1].set_behavior(Behavior::Never);
    sim.instances[1].reset_max_open();
    let cpu0 = server.cpu();
    let run = post_for(server, &token, rate, secs, "slow").await?;
    let cpu = server.cpu().saturating_sub(cpu0).as_secs_f64();
    drain(&sim, &run, n - 2, Duration::from_secs(60)).await;
    let (mut lag, missing) = lags(&sim, &run, |i| i >= 2, n - 2);
    if lag.len() == 0 {
        return fail("slow remote: no delivery reached a healthy instance");
    }
    let (mut slow_lag, _) = lags(&sim, &run, |i| i == 0, 1);
    let dead_open = sim.instances[1].max_open();
    let per_host = ctx.per_host;

    let b99 = base_lag.pct_ms(99.0);
    let p99 = lag.pct_ms(99.0);
    let deliveries_per_sec = rate * (COPIES * n) as f64;
    let rows = vec![
        Row::info("posts per second (sent)", run.rate, "/s"),
        Row::info("deliveries asked per second", deliveries_per_sec, "/s")
            .ratio(deliveries_per_sec / ctx.limit.sign_per_sec, "× sign/s"),
        Row::info("healthy lag p50, baseline", base_lag.pct_ms(50.0), "ms"),
        Row::info("healthy lag p99, baseline", b99, "ms"),
        Row::info("healthy lag p50, with slow + dead", lag.pct_ms(50.0), "ms"),
        Row::info("healthy lag p99, with slow + dead", p99, "ms").target(
            format!("≤ {:.0} ms (baseline + 100)", b99 + 100.0),
            p99 <= b99 + 100.0,
        ),
        Row::info("slow instance lag p99", slow_lag.pct_ms(99.0), "ms"),
        Row::info(
            "dead instance: most requests held open",
            dead_open as f64,
            "",
        )
        .target(
            format!("≤ {per_host} (delivery.per_host)"),
            dead_open <= per_host,
        ),
        Row::info(
            "healthy copies missing after drain",
            (base_missing + missing) as f64,
            "",
        )
        .target("0 (nothing lost)".to_string(), base_missing + missing == 0),
        Row::info(
            "server CPU per delivery",
            cpu * 1000.0 / (run.sent.len() * COPIES * n).max(1) as f64,
            "ms",
        )
        .ratio(
            cpu / (run.sent.len() * COPIES * n).max(1) as f64 * ctx.limit.sign_per_sec,
            "× one sign",
        ),
    ];
    let mut notes = vec![format!(
        "{n} instances ({} healthy), baseline {base_secs} s, then {secs} s with instance 0 at 250 ms and instance 1 never answering",
        n - 2
    )];
    if rate < asked {
        notes.push(format!(
            "asked for {asked}/s, which needs {:.0} signatures/s; one core signs {:.0}/s, so the rate was capped at {rate:.2}/s (--force-slow-rate to override)",
            asked * (COPIES * n) as f64,
            ctx.limit.sign_per_sec
        ));
    }
    for (name, p) in [("baseline", &base), ("slow", &run)] {
        if !p.refused.is_empty() {
            notes.push(format!(
                "{name} phase: posts refused by the API: {:?}",
                p.refused
            ));
        }
    }
    let (now, peak) = server.memory_kib();
    Ok((
        Section {
            title: "6. Slow remote".into(),
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
