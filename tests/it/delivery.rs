//! The persistent delivery queue: replicas never send a delivery twice, a
//! restart loses nothing, an unreachable inbox is retried, and a database that
//! is down gives 503 instead of a lost write.

use std::collections::HashMap;

use kindred::{db, domain::DeliveryStatus};
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::{Backend, Sink, TestInstance, backends, eventually},
    remote::{Doc, Remote, Sign},
};

async fn enqueue(a: &TestInstance, n: usize, inboxes: &[String]) -> Vec<String> {
    let actor = db::actors::instance_actor(a.db())
        .await
        .expect("db")
        .expect("actor");
    let mut ids = vec![];
    for i in 0..n {
        let id = format!("{}/activities/test/{i}", a.base);
        let payload = json!({"type": "Announce", "id": id, "actor": actor.ap_id, "object": format!("{}/posts/{i}", a.base)});
        db::deliveries::enqueue(a.db(), &id, actor.id, &payload.to_string(), inboxes)
            .await
            .expect("enqueue");
        ids.push(id);
    }
    a.app().state.wake_delivery();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_database_send_each_delivery_once() {
    for backend in backends() {
        let a = TestInstance::spawn(backend).await;
        let replica = a.replica().await;
        let sink = Sink::start(StatusCode::ACCEPTED).await;
        let ids = enqueue(&a, 60, &[sink.inbox()]).await;
        replica.state.wake_delivery();
        eventually("all delivered", || async {
            (sink.ids().len() >= ids.len()).then_some(())
        })
        .await;
        // Give a duplicate, if any, time to show up.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let mut seen: HashMap<String, usize> = HashMap::new();
        for id in sink.ids() {
            *seen.entry(id).or_default() += 1;
        }
        assert_eq!(seen.len(), ids.len(), "{backend:?}");
        assert!(
            seen.values().all(|n| *n == 1),
            "{backend:?}: duplicates {seen:?}"
        );
        let delivered = db::deliveries::count_by_status(a.db(), DeliveryStatus::Delivered)
            .await
            .expect("count");
        assert_eq!(delivered, ids.len() as u64);
        replica.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_deliveries_survive_a_restart_and_a_down_remote() {
    for backend in backends() {
        let a = TestInstance::spawn(backend).await;
        // A remote that is down: nothing listens on this port yet.
        let reserved = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = reserved.local_addr().expect("addr").port();
        drop(reserved);
        let inbox = format!("http://localhost:{port}/inbox");
        let ids = enqueue(&a, 3, std::slice::from_ref(&inbox)).await;
        // The first attempt fails and is rescheduled, not dropped.
        let rows = eventually("first attempt recorded", || async {
            let rows = db::deliveries::list(a.db(), Some(DeliveryStatus::Pending), 10)
                .await
                .ok()?;
            rows.iter()
                .all(|r| r.attempts >= 1 && r.last_error.is_some())
                .then_some(rows)
        })
        .await;
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r.next_attempt_at > r.created_at));

        // The server stops; the remote comes back; a new process picks up.
        let replica_settings = (*a.app().state.settings).clone();
        let mut a = a;
        let app = a.app.take().expect("app");
        app.stop().await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("rebind");
        let sink = Sink::start_on(listener, StatusCode::ACCEPTED).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        a.app = Some(
            kindred::app::App::build(replica_settings, listener)
                .await
                .expect("restart"),
        );
        eventually("delivered after restart", || async {
            (sink.ids().len() == ids.len()).then_some(())
        })
        .await;
        let mut got = sink.ids();
        got.sort();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(got, want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_refusals_are_not_retried_but_server_errors_are() {
    let a = TestInstance::spawn(Backend::Sqlite).await;
    let gone = Sink::start(StatusCode::GONE).await;
    let forbidden = Sink::start(StatusCode::FORBIDDEN).await;
    let broken = Sink::start(StatusCode::INTERNAL_SERVER_ERROR).await;
    let unauthorized = Sink::start(StatusCode::UNAUTHORIZED).await;
    let busy = Sink::start_retry_after(StatusCode::TOO_MANY_REQUESTS, 3600).await;
    let unavailable = Sink::start_retry_after(StatusCode::SERVICE_UNAVAILABLE, 900).await;
    let sinks = [
        &gone,
        &forbidden,
        &broken,
        &unauthorized,
        &busy,
        &unavailable,
    ];
    let inboxes: Vec<String> = sinks.iter().map(|s| s.inbox()).collect();
    let before = chrono::Utc::now();
    enqueue(&a, 1, &inboxes).await;
    eventually("all answered", || async {
        sinks.iter().all(|s| !s.ids().is_empty()).then_some(())
    })
    .await;
    let rows = eventually("outcomes recorded", || async {
        let rows = db::deliveries::list(a.db(), None, 10).await.ok()?;
        // Every inbox's row written (answers are recorded in batches) and
        // none of them held any more.
        (inboxes.iter().all(|i| rows.iter().any(|r| &r.inbox == i))
            && rows
                .iter()
                .all(|r| r.locked_until.is_none() && r.attempts > 0))
        .then_some(rows)
    })
    .await;
    let by_inbox = |i: &str| rows.iter().find(|r| r.inbox == i).cloned().expect("row");
    // Final refusals: failed at once (not "delivered": the admin must see
    // them), with the status as the reason, and never retried.
    for (sink, code) in [(&gone, "410"), (&forbidden, "403")] {
        let r = by_inbox(&sink.inbox());
        assert_eq!(r.status, "failed", "a {code} is final");
        assert!(r.last_error.unwrap_or_default().contains(code));
        assert_eq!(r.attempts, 1);
    }
    // Retried: 5xx, 401 (the remote may be refreshing our key), 429.
    for (sink, code) in [(&broken, "500"), (&unauthorized, "401"), (&busy, "429")] {
        let r = by_inbox(&sink.inbox());
        assert_eq!(r.status, "pending", "a {code} is retried");
        assert!(r.last_error.unwrap_or_default().contains(code));
    }
    // Retry-After is honoured: no retry before the time the remote asked for
    // (our own backoff here is about a second).
    for (sink, secs) in [(&busy, 3600), (&unavailable, 900)] {
        let r = by_inbox(&sink.inbox());
        assert!(
            r.next_attempt_at >= before + chrono::Duration::seconds(secs - 5),
            "Retry-After {secs} ignored: next attempt {}",
            r.next_attempt_at
        );
    }
    assert!(by_inbox(&broken.inbox()).next_attempt_at < before + chrono::Duration::seconds(60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_gives_503_not_a_lost_write() {
    let a = TestInstance::spawn(Backend::Sqlite).await;
    a.create_group("copd", "COPD").await;
    let token = a.create_user("erin").await;
    let probe = |path: &'static str| {
        let url = format!("{}{path}", a.base);
        async move { reqwest::get(url).await.expect("get").status() }
    };
    assert_eq!(probe("/healthz").await, StatusCode::OK);
    assert_eq!(probe("/readyz").await, StatusCode::OK);
    a.db().clone().close().await.expect("close pool");
    // Up, but not ready: a load balancer sends traffic elsewhere.
    assert_eq!(probe("/healthz").await, StatusCode::OK);
    assert_eq!(probe("/readyz").await, StatusCode::SERVICE_UNAVAILABLE);
    let (s, v) = a.post("/api/v1/groups/copd/join", &token, json!({})).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"], "unavailable");
    let b = TestInstance::spawn(Backend::Sqlite).await;
    let follow = json!({
        "type": "Follow",
        "id": format!("{}/activities/follow/x", b.base),
        "actor": b.instance_actor_id(),
        "object": format!("{}/groups/copd", a.base),
    });
    let s = b.signed_post(&format!("{}/inbox", a.base), &follow).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "the sender must retry");
}

/// `/readyz` also says no while a migration is pending (an older binary's
/// schema, or a newer binary before `kindred migrate`).
#[tokio::test]
async fn not_ready_while_a_migration_is_pending() {
    use migrations::MigratorTrait;
    let a = TestInstance::spawn(Backend::Sqlite).await;
    let ready = || async {
        reqwest::get(format!("{}/readyz", a.base))
            .await
            .expect("get")
            .status()
    };
    assert_eq!(ready().await, StatusCode::OK);
    migrations::Migrator::down(a.db(), Some(1))
        .await
        .expect("roll back the newest migration");
    assert_eq!(ready().await, StatusCode::SERVICE_UNAVAILABLE);
}

/// A remote that stays down: the instance's clock is moved forward hours at a
/// time (no sleeping). Retries come with growing, capped gaps (its circuit
/// breaker opens too, and only lengthens them up to the same cap); after the
/// retry window the delivery is failed, kept, and shown to admins on the CLI
/// list and the admin page.
#[tokio::test]
async fn a_remote_down_for_days_is_retried_with_capped_backoff_then_failed() {
    let a = TestInstance::spawn_with(Backend::Sqlite, |s| {
        s.delivery.retry_base_secs = 60;
        s.delivery.retry_max_secs = 6 * 3600;
        s.delivery.retry_window_hours = 72;
    })
    .await;
    let down = Sink::start(StatusCode::SERVICE_UNAVAILABLE).await;
    enqueue(&a, 1, &[down.inbox()]).await;
    let clock = a.app().state.clock.clone();
    let row = || async {
        db::deliveries::list(a.db(), None, 1)
            .await
            .ok()
            .and_then(|r| r.into_iter().next())
    };
    let settled = |attempts: i32| async move {
        let r = row().await?;
        (r.attempts >= attempts && r.locked_until.is_none()).then_some(r)
    };
    let first = eventually("first attempt", || settled(1)).await;
    assert_eq!(first.status, "pending");

    // Walk the clock forward to each next attempt and record the gaps.
    let mut gaps = vec![];
    let mut last = first;
    let start = clock.now();
    while last.status == "pending" {
        let wait = last.next_attempt_at - clock.now();
        gaps.push(wait.num_seconds());
        clock.advance(wait + chrono::Duration::seconds(1));
        a.app().state.wake_delivery();
        // Either a new attempt, or (its circuit breaker being open) the row
        // put back to wait without one.
        let (n, due) = (last.attempts, last.next_attempt_at);
        last = eventually("the next attempt", || async {
            let r = row().await?;
            let moved = r.attempts > n || r.status != "pending" || r.next_attempt_at > due;
            (r.locked_until.is_none() && moved).then_some(r)
        })
        .await;
        assert!(gaps.len() < 60, "too many attempts: {gaps:?}");
    }
    let elapsed = clock.now() - start;
    assert_eq!(last.status, "failed");
    assert!(last.last_error.clone().unwrap_or_default().contains("503"));
    assert!(
        elapsed >= chrono::Duration::hours(72),
        "failed after {elapsed}"
    );
    // Exponential: each gap at least ~1.5× the one before until the cap, with
    // ±25 % jitter; never above the cap (6 h + jitter).
    let cap = 6 * 3600 * 5 / 4 + 1;
    assert!(gaps.iter().all(|g| *g <= cap), "{gaps:?}");
    assert!(gaps[0] <= 60 * 5 / 4 + 1, "{gaps:?}");
    assert!(
        gaps.iter().any(|g| *g >= 6 * 3600 * 3 / 4),
        "reaches the cap: {gaps:?}"
    );
    // The dead remote got one request per attempt, not more.
    assert_eq!(down.ids().len(), last.attempts as usize);

    // Admins see it: the CLI's list and the admin page.
    let failed = db::deliveries::list(a.db(), Some(DeliveryStatus::Failed), 10)
        .await
        .expect("list");
    assert_eq!(failed.len(), 1);
    let mut admin = crate::web::admin_of(&a).await;
    let page = admin.get("/admin/deliveries").await;
    assert_eq!(page.status, StatusCode::OK);
    page.shows("1 failed")
        .shows("inbox answered 503")
        .shows(down.base.trim_start_matches("http://"));
}

async fn rows_to(a: &TestInstance, r: &Remote) -> Vec<kindred::db::entities::delivery::Model> {
    let inbox = r.id("/inbox");
    db::deliveries::list(a.db(), None, 100)
        .await
        .expect("list")
        .into_iter()
        .filter(|d| d.inbox == inbox)
        .collect()
}

/// The per-instance circuit breaker: a dead instance's deliveries wait
/// instead of being sent on every retry; once the wait is over one probe
/// goes out; the instance is back when a probe succeeds or when it sends us a
/// verified activity, and then everything that waited goes at once. Healthy
/// instances are never held up. The clock is moved, not slept.
#[tokio::test]
async fn a_dead_instance_trips_its_breaker_and_is_reopened_by_an_answer_or_a_message() {
    let a = TestInstance::spawn_with(Backend::Sqlite, |s| {
        s.delivery.workers = 1;
        s.delivery.breaker_threshold = 3;
        s.delivery.breaker_base_secs = 600;
        s.delivery.retry_base_secs = 60;
    })
    .await;
    a.create_group("mg", "MG").await;
    let clock = a.app().state.clock.clone();
    let healthy = Sink::start(StatusCode::ACCEPTED).await;
    let probed = Remote::start().await;
    let writer = Remote::start().await;
    for r in [&probed, &writer] {
        r.put("/inbox", Doc::Raw(503, "text/plain", "down".into()));
    }
    let posts = |r: &Remote| {
        r.seen()
            .iter()
            .filter(|s| s.method == "POST" && s.path == "/inbox")
            .count()
    };
    let settled = |rows: &[kindred::db::entities::delivery::Model]| {
        rows.iter().all(|d| d.locked_until.is_none())
    };
    // A row per inbox, all claimed in one batch: each dead instance is sent
    // all four before its breaker opens. (A fan-out is claimed one activity
    // at a time, and its later inboxes to an instance already failing wait:
    // see `fanout::a_fanouts_inbox_behind_an_open_breaker_waits_in_a_row`.)
    let actor = db::actors::instance_actor(a.db())
        .await
        .expect("db")
        .expect("actor");
    let txn = db::write_txn(a.db()).await.expect("txn");
    for i in 0..4 {
        let id = format!("{}/activities/test/{i}", a.base);
        let payload = json!({"type": "Announce", "id": id, "actor": actor.ap_id});
        for inbox in [probed.id("/inbox"), writer.id("/inbox"), healthy.inbox()] {
            db::deliveries::enqueue(&txn, &id, actor.id, &payload.to_string(), &[inbox])
                .await
                .expect("enqueue");
        }
    }
    txn.commit().await.expect("commit");
    a.app().state.wake_delivery();
    eventually("first round answered", || async {
        let done = posts(&probed) == 4 && posts(&writer) == 4 && healthy.ids().len() == 4;
        let rows = db::deliveries::list(a.db(), None, 100).await.ok()?;
        (done && settled(&rows)).then_some(())
    })
    .await;
    let breakers =
        db::instances::by_domains(a.db(), vec![probed.domain.clone(), writer.domain.clone()])
            .await
            .expect("breakers");
    let open_until = breakers
        .values()
        .map(|b| b.open_until.expect("breaker open"))
        .max()
        .expect("two breakers");
    assert!(breakers.values().all(|b| b.consecutive_failures == 4));

    // Their retries fall due while the breakers are open: they wait, unsent,
    // with the attempt not counted.
    clock.advance(chrono::Duration::minutes(10));
    a.app().state.wake_delivery();
    for r in [&probed, &writer] {
        eventually("deferred past the breaker", || async {
            let rows = rows_to(&a, r).await;
            (settled(&rows)
                && rows
                    .iter()
                    .all(|d| d.next_attempt_at >= open_until - chrono::Duration::seconds(1)))
            .then_some(())
        })
        .await;
    }
    assert_eq!((posts(&probed), posts(&writer)), (4, 4), "no hammering");
    assert!(rows_to(&a, &probed).await.iter().all(|d| d.attempts == 1));

    // One comes back; the wait ends: one probe each.
    probed.put("/inbox", Doc::Raw(202, "text/plain", String::new()));
    clock.advance(open_until - clock.now() + chrono::Duration::seconds(10));
    a.app().state.wake_delivery();
    eventually("the recovered instance gets everything", || async {
        let rows = rows_to(&a, &probed).await;
        rows.iter().all(|d| d.status == "delivered").then_some(())
    })
    .await;
    assert_eq!(posts(&probed), 8, "4 failed + 4 delivered, each once");
    eventually("the dead one got its probe", || async {
        let rows = rows_to(&a, &writer).await;
        (posts(&writer) >= 5 && settled(&rows)).then_some(())
    })
    .await;
    assert_eq!(posts(&writer), 5, "one probe, not four");
    assert!(
        rows_to(&a, &writer)
            .await
            .iter()
            .all(|d| d.status == "pending")
    );

    // The other one writes to us (a signed Follow): it is up, and what waited
    // goes at once, without moving the clock.
    writer.put("/inbox", Doc::Raw(202, "text/plain", String::new()));
    let bob = writer.actor("Person", "bob", |_| {});
    let group = format!("{}/groups/mg", a.base);
    let follow = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": writer.id("/follows/1"),
        "type": "Follow",
        "actor": bob,
        "object": group,
    });
    let date = httpdate::fmt_http_date(std::time::SystemTime::from(clock.now()));
    let status = writer
        .post(
            &format!("{group}/inbox"),
            &bob,
            &follow,
            Sign {
                date: Some(date),
                ..Sign::default()
            },
        )
        .await;
    assert_eq!(status, 202);
    eventually("what waited is delivered", || async {
        let rows = rows_to(&a, &writer).await;
        rows.iter().all(|d| d.status == "delivered").then_some(())
    })
    .await;
    assert_eq!(posts(&writer), 9, "5 failed + 4 delivered, each once");
    assert_eq!(healthy.ids().len(), 4, "the healthy instance got each once");
}

/// An inbox that takes `delay` to answer 202, counting what it received.
async fn slow_inbox(
    delay: std::time::Duration,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    let got = Arc::new(AtomicUsize::new(0));
    let counter = got.clone();
    let app = axum::Router::new().route(
        "/inbox",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                tokio::time::sleep(delay).await;
                counter.fetch_add(1, Ordering::SeqCst);
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://localhost:{port}/inbox"), got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_instance_holds_only_its_own_slots() {
    use std::sync::atomic::Ordering;
    let a = TestInstance::spawn_with(Backend::Sqlite, |s| {
        s.delivery.workers = 1;
        s.delivery.batch_size = 8;
        s.delivery.per_host = 2;
    })
    .await;
    let (slow, slow_got) = slow_inbox(std::time::Duration::from_secs(2)).await;
    let fast = Sink::start(StatusCode::ACCEPTED).await;
    // The slow instance's deliveries are queued first: a worker that took
    // them all would leave the healthy instance waiting behind them.
    enqueue(&a, 12, &[slow]).await;
    let later: Vec<String> = {
        let actor = db::actors::instance_actor(a.db())
            .await
            .expect("db")
            .expect("actor");
        let mut ids = vec![];
        for i in 0..30 {
            let id = format!("{}/activities/fast/{i}", a.base);
            let payload = json!({"type": "Announce", "id": id, "actor": actor.ap_id, "object": format!("{}/posts/f{i}", a.base)});
            db::deliveries::enqueue(a.db(), &id, actor.id, &payload.to_string(), &[fast.inbox()])
                .await
                .expect("enqueue");
            ids.push(id);
        }
        a.app().state.wake_delivery();
        ids
    };
    eventually("the healthy instance gets all 30", || async {
        (fast.ids().len() >= later.len()).then_some(())
    })
    .await;
    let slow_done = slow_got.load(Ordering::SeqCst);
    assert!(
        slow_done <= 4,
        "the healthy instance waited for the slow one ({slow_done} of 12 slow deliveries were done first)"
    );
    eventually("the slow instance gets its 12 in the end", || async {
        (slow_got.load(Ordering::SeqCst) >= 12).then_some(())
    })
    .await;
    // Waiting for a slot is not an attempt.
    let rows = db::deliveries::list(a.db(), Some(DeliveryStatus::Delivered), 100)
        .await
        .expect("rows");
    assert!(
        rows.iter().all(|r| r.attempts == 1),
        "{:?}",
        rows.iter().map(|r| r.attempts).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activitys_body_is_stored_once_sent_whole_and_pruned_with_its_rows() {
    use kindred::db::entities::delivery_body;
    use sea_orm::{EntityTrait, PaginatorTrait};
    for backend in backends() {
        let a = TestInstance::spawn(backend).await;
        let sinks = [
            Sink::start(StatusCode::ACCEPTED).await,
            Sink::start(StatusCode::ACCEPTED).await,
            Sink::start(StatusCode::ACCEPTED).await,
        ];
        let bodies = || async {
            delivery_body::Entity::find()
                .count(a.db())
                .await
                .expect("count")
        };
        let before = bodies().await;
        let inboxes: Vec<String> = sinks.iter().map(Sink::inbox).collect();
        let ids = enqueue(&a, 1, &inboxes).await;
        let rows = crate::helpers::deliveries(a.db()).await;
        let ours: Vec<_> = rows.iter().filter(|d| d.activity_ap_id == ids[0]).collect();
        assert_eq!(ours.len(), 3, "{backend:?}: a row per inbox");
        assert!(ours.iter().all(|d| d.body_id == ours[0].body_id));
        assert_eq!(
            bodies().await,
            before + 1,
            "{backend:?}: one body for three rows"
        );
        let sent: serde_json::Value = serde_json::from_str(&ours[0].payload).expect("json");
        for s in &sinks {
            eventually("each inbox gets the whole activity", || async {
                s.received
                    .lock()
                    .expect("lock")
                    .contains(&sent)
                    .then_some(())
            })
            .await;
        }
        eventually("all three recorded as delivered", || async {
            crate::helpers::deliveries(a.db())
                .await
                .iter()
                .filter(|d| d.activity_ap_id == ids[0])
                .all(|d| d.status == "delivered")
                .then_some(())
        })
        .await;
        // A row still queued keeps its body through the prune (queued and
        // deferred in one transaction, so no worker touches it).
        let waiting = format!("{}/activities/test/waiting", a.base);
        let txn = db::write_txn(a.db()).await.expect("txn");
        db::deliveries::enqueue(
            &txn,
            &waiting,
            ours[0].actor_id,
            "{\"type\":\"Announce\"}",
            &[sinks[0].inbox()],
        )
        .await
        .expect("enqueue");
        for row in db::deliveries::list(&txn, Some(DeliveryStatus::Pending), 10)
            .await
            .expect("list")
        {
            db::deliveries::defer(
                &txn,
                row.id,
                chrono::Utc::now() + chrono::Duration::hours(1),
            )
            .await
            .expect("defer");
        }
        txn.commit().await.expect("commit");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        db::deliveries::prune_delivered(a.db(), chrono::Duration::zero())
            .await
            .expect("prune");
        let left = crate::helpers::deliveries(a.db()).await;
        assert!(
            left.iter().all(|d| d.activity_ap_id != ids[0]),
            "{backend:?}"
        );
        assert!(
            left.iter()
                .any(|d| d.activity_ap_id == waiting && d.payload.contains("Announce")),
            "{backend:?}: the waiting row keeps its body"
        );
        assert_eq!(
            bodies().await,
            left.iter()
                .map(|d| d.body_id)
                .collect::<std::collections::HashSet<_>>()
                .len() as u64,
            "{backend:?}: no body outlives its rows"
        );
    }
}

/// The migration that stores bodies once keeps every queued row's body,
/// both ways: rolled back, each row has its payload again; migrated, each row
/// names a body with that text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_bodies_survive_the_migration_both_ways() {
    use migrations::MigratorTrait;
    use sea_orm::{ConnectionTrait, Statement};
    for backend in backends() {
        let a = TestInstance::spawn(backend).await;
        let sink = Sink::start(StatusCode::ACCEPTED).await;
        let actor = db::actors::instance_actor(a.db())
            .await
            .expect("db")
            .expect("actor");
        let txn = db::write_txn(a.db()).await.expect("txn");
        for (n, inboxes) in [(1, 2), (2, 1)] {
            let id = format!("{}/activities/migrated/{n}", a.base);
            let payload =
                json!({"type": "Announce", "id": id, "content": format!("body {n} \u{e9}")});
            let inboxes: Vec<String> = (0..inboxes)
                .map(|i| format!("{}?m={i}", sink.inbox()))
                .collect();
            // One inbox at a time: rows, not a fan-out (that migration
            // comes after this one; see `fanouts_survive_the_migration_down`).
            for inbox in inboxes {
                db::deliveries::enqueue(&txn, &id, actor.id, &payload.to_string(), &[inbox])
                    .await
                    .expect("enqueue");
            }
        }
        for row in db::deliveries::list(&txn, Some(DeliveryStatus::Pending), 10)
            .await
            .expect("list")
        {
            db::deliveries::defer(
                &txn,
                row.id,
                chrono::Utc::now() + chrono::Duration::hours(1),
            )
            .await
            .expect("defer");
        }
        txn.commit().await.expect("commit");
        let before: Vec<(i64, String)> = crate::helpers::deliveries(a.db())
            .await
            .into_iter()
            .map(|d| (d.id, d.payload.clone()))
            .collect();
        assert_eq!(before.len(), 3);

        // This migration and the fan-outs' two after it.
        migrations::Migrator::down(a.db(), Some(3))
            .await
            .expect("down");
        let rows = a
            .db()
            .query_all_raw(Statement::from_string(
                a.db().get_database_backend(),
                "SELECT id, payload FROM deliveries ORDER BY id DESC",
            ))
            .await
            .expect("rows");
        let rolled: Vec<(i64, String)> = rows
            .iter()
            .map(|r| {
                (
                    r.try_get::<i64>("", "id").expect("id"),
                    r.try_get::<String>("", "payload").expect("payload"),
                )
            })
            .collect();
        assert_eq!(
            rolled, before,
            "{backend:?}: rolled back, each row has its payload"
        );

        migrations::Migrator::up(a.db(), None).await.expect("up");
        let after: Vec<(i64, String)> = crate::helpers::deliveries(a.db())
            .await
            .into_iter()
            .map(|d| (d.id, d.payload.clone()))
            .collect();
        assert_eq!(
            after, before,
            "{backend:?}: migrated again, each row names its body"
        );
        // New rows after it get fresh body ids (the sequence moved past the copied ones).
        enqueue(&a, 1, &[sink.inbox()]).await;
        assert_eq!(crate::helpers::deliveries(a.db()).await.len(), 4);
    }
}

/// A worker records a batch of answers together (`federation::outcomes`):
/// the rows delivered in one statement, and of the instances that answered
/// only the failing ones written (breaker closed, what waited for them due
/// at once); the others are only read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_answers_closes_only_the_failing_instances_breakers() {
    for backend in backends() {
        let a = TestInstance::spawn(backend).await;
        let db = a.db();
        let now = chrono::Utc::now();
        let open_for = |_| Some(chrono::Duration::hours(1));
        for _ in 0..3 {
            db::instances::record_failure(db, "down.invalid", now, open_for)
                .await
                .expect("failure");
        }
        db::instances::record_failure(db, "flaky.invalid", now, |_| None)
            .await
            .expect("failure");
        // One that failed once and answered since: closed.
        db::instances::record_failure(db, "fine.invalid", now, |_| None)
            .await
            .expect("failure");
        let closed = db::instances::record_successes(db, &["fine.invalid".to_string()], now)
            .await
            .expect("close");
        assert_eq!(closed, ["fine.invalid"], "{backend:?}");
        let answered: Vec<String> = [
            "down.invalid",
            "fine.invalid",
            "flaky.invalid",
            "new.invalid",
        ]
        .map(String::from)
        .to_vec();
        let later = now + chrono::Duration::seconds(5);
        let mut back = db::instances::record_successes(db, &answered, later)
            .await
            .expect("record");
        back.sort();
        assert_eq!(back, ["down.invalid", "flaky.invalid"], "{backend:?}");
        let rows = db::instances::by_domains(db, answered.clone())
            .await
            .expect("rows");
        for host in ["down.invalid", "flaky.invalid"] {
            let r = &rows[host];
            assert_eq!(r.consecutive_failures, 0, "{backend:?} {host}");
            assert!(r.open_until.is_none(), "{backend:?} {host}");
            assert!(r.last_success_at.is_some(), "{backend:?} {host}");
        }
        // An instance not failing is not written: its last success stays.
        let fine = &rows["fine.invalid"];
        assert!(
            fine.last_success_at.is_some_and(|t| t < later),
            "{backend:?}: {:?}",
            fine.last_success_at
        );
        // Nor is a row made for one never met.
        assert!(!rows.contains_key("new.invalid"), "{backend:?}");
        // Answering again: nothing is failing any more.
        let again = db::instances::record_successes(db, &answered, later)
            .await
            .expect("record");
        assert!(again.is_empty(), "{backend:?}: {again:?}");
    }
}

/// The threads of this process named `name`: (thread id, nice value). Other
/// tests run beside this one, so more than one App's may be listed.
#[cfg(target_os = "linux")]
fn threads_named(name: &str) -> Vec<(String, i64)> {
    let mut found = vec![];
    for task in std::fs::read_dir("/proc/self/task")
        .expect("tasks")
        .flatten()
    {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // `tid (comm) state …`: the name is inside the parentheses, the
        // fields after the last ')'; nice is the 19th field of the line.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        let nice = rest
            .split_whitespace()
            .nth(16)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if comm == name {
            found.push((task.file_name().to_string_lossy().into_owned(), nice));
        }
    }
    found
}

/// Deliveries run on their own low-priority thread, so a fan-out's requests
/// never queue in front of page and API requests, and the OS runs those
/// first; they still go out from there.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_run_on_a_low_priority_thread_of_their_own() {
    let before = threads_named("kindred-send");
    let mut a = TestInstance::spawn(Backend::Sqlite).await;
    let ours = eventually("the delivery thread started", || async {
        let now = threads_named("kindred-send");
        let new: Vec<_> = now.into_iter().filter(|t| !before.contains(t)).collect();
        (!new.is_empty()).then_some(new)
    })
    .await;
    assert!(
        ours.iter().all(|(_, nice)| *nice == 10),
        "the delivery thread runs at nice 10: {ours:?}"
    );
    let sink = Sink::start(StatusCode::ACCEPTED).await;
    let ids = enqueue(&a, 2, &[sink.inbox()]).await;
    a.app().state.wake_delivery();
    eventually("delivered from the delivery thread", || async {
        (sink.ids().len() >= ids.len()).then_some(())
    })
    .await;
    // Stopping waits for the delivery thread's workers to finish.
    a.app.take().expect("app").stop().await;
}
