//! The queue's fan-outs (`db::fanouts`): an activity for many inboxes is one
//! row and a cursor; an inbox gets a row of its own only when it must wait
//! or failed; a fan-out claimed again starts at its cursor; replicas send
//! each inbox its activity once; the rare writes that must see every queued
//! inbox (a deleted post's deliveries) see a fan-out's too.

use std::collections::HashMap;

use kindred::{
    db,
    db::entities::fanout,
    domain::{DeliveryStatus, policy::List},
    service::federation::{self as fed, Who},
};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, EntityTrait, Statement};
use serde_json::json;

use crate::helpers::{Backend, Sink, TestInstance, backends, eventually};

fn announce(a: &TestInstance, name: &str) -> (String, String) {
    let id = format!("{}/activities/fanout/{name}", a.base);
    let body = json!({"type": "Announce", "id": id, "object": format!("{}/posts/{name}", a.base)});
    (id, body.to_string())
}

/// The instance actor signs the test activities.
async fn instance_actor(a: &TestInstance) -> db::entities::actor::Model {
    db::actors::instance_actor(a.db())
        .await
        .expect("db")
        .expect("actor")
}

async fn fanouts(a: &TestInstance) -> Vec<fanout::Model> {
    fanout::Entity::find().all(a.db()).await.expect("fan-outs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fanout_is_one_row_and_only_the_inboxes_that_did_not_take_it_get_rows() {
    for backend in backends() {
        let a = TestInstance::spawn(backend).await;
        let ok = [
            Sink::start(StatusCode::ACCEPTED).await,
            Sink::start(StatusCode::ACCEPTED).await,
            Sink::start(StatusCode::ACCEPTED).await,
        ];
        let busy = Sink::start(StatusCode::SERVICE_UNAVAILABLE).await;
        let refusing = Sink::start(StatusCode::BAD_REQUEST).await;
        let mut inboxes: Vec<String> = ok.iter().map(Sink::inbox).collect();
        inboxes.push(busy.inbox());
        inboxes.push(refusing.inbox());
        let actor = instance_actor(&a).await;
        let (id, body) = announce(&a, "one");
        // Queued in a transaction, looked at before any worker can see it.
        let txn = db::write_txn(a.db()).await.expect("txn");
        db::deliveries::enqueue(&txn, &id, actor.id, &body, &inboxes)
            .await
            .expect("enqueue");
        let queued = db::deliveries::list(&txn, None, 100).await.expect("list");
        assert_eq!(queued.len(), 5, "{backend:?}: every inbox shows as queued");
        assert!(queued.iter().all(|d| d.status == "pending" && d.id == 0));
        txn.commit().await.expect("commit");
        let f = fanouts(&a).await;
        assert_eq!(f.len(), 1, "{backend:?}: one row for five inboxes");
        assert_eq!((f[0].targets, f[0].next), (5, 0));
        a.app().state.wake_delivery();

        for s in ok.iter().chain([&busy, &refusing]) {
            eventually("each inbox is sent the activity", || async {
                s.ids().contains(&id).then_some(())
            })
            .await;
        }
        eventually("the cursor is past every inbox", || async {
            let f = fanouts(&a).await;
            (f[0].next == 5).then_some(())
        })
        .await;
        assert_eq!(fanouts(&a).await[0].delivered, 3, "{backend:?}");
        // Only the two that did not take it have rows: one to retry, one failed.
        let own = db::deliveries::list(a.db(), None, 100)
            .await
            .expect("list")
            .into_iter()
            .filter(|d| d.id != 0)
            .collect::<Vec<_>>();
        assert_eq!(own.len(), 2, "{backend:?}");
        let by_inbox: HashMap<&str, &db::entities::delivery::Model> =
            own.iter().map(|d| (d.inbox.as_str(), d)).collect();
        let retry = by_inbox[busy.inbox().as_str()];
        assert_eq!(retry.status, "pending");
        assert_eq!(retry.attempts, 1);
        assert!(retry.next_attempt_at > chrono::Utc::now());
        assert_eq!(retry.last_error.as_deref(), Some("inbox answered 503"));
        assert_eq!(retry.fanout_id, Some(f[0].id));
        assert_eq!(retry.activity_ap_id, id);
        let failed = by_inbox[refusing.inbox().as_str()];
        assert_eq!(failed.status, "failed");
        // The admin's counts and views still see each inbox.
        let count = |s| db::deliveries::count_by_status(a.db(), s);
        assert_eq!(count(DeliveryStatus::Delivered).await.expect("n"), 3);
        assert_eq!(count(DeliveryStatus::Pending).await.expect("n"), 1);
        assert_eq!(count(DeliveryStatus::Failed).await.expect("n"), 1);
        let all = crate::helpers::deliveries(a.db()).await;
        let delivered: Vec<&str> = all
            .iter()
            .filter(|d| d.status == "delivered")
            .map(|d| d.inbox.as_str())
            .collect();
        assert_eq!(delivered.len(), 3, "{backend:?}");
        assert!(ok.iter().all(|s| delivered.contains(&s.inbox().as_str())));
        assert!(all.iter().all(|d| d.payload == body));
    }
}

/// A worker that stopped mid-way left the cursor at the first inbox not
/// settled and some inboxes past it with rows of their own: the next claim
/// sends only the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fanout_claimed_again_sends_only_what_its_cursor_and_rows_left() {
    for backend in backends() {
        let a = TestInstance::spawn(backend).await;
        let sinks = [
            Sink::start(StatusCode::ACCEPTED).await,
            Sink::start(StatusCode::ACCEPTED).await,
            Sink::start(StatusCode::ACCEPTED).await,
            Sink::start(StatusCode::ACCEPTED).await,
        ];
        let inboxes: Vec<String> = sinks.iter().map(Sink::inbox).collect();
        let actor = instance_actor(&a).await;
        let (id, body) = announce(&a, "resumed");
        let txn = db::write_txn(a.db()).await.expect("txn");
        db::deliveries::enqueue(&txn, &id, actor.id, &body, &inboxes)
            .await
            .expect("enqueue");
        let f = fanout::Entity::find()
            .one(&txn)
            .await
            .expect("q")
            .expect("fan-out");
        // Claimed once before: two settled, and the third's later retry
        // already written.
        txn.execute_raw(Statement::from_string(
            txn.get_database_backend(),
            "UPDATE fanouts SET claims = 1",
        ))
        .await
        .expect("claimed");
        db::fanouts::advance(&txn, f.id, 2, 2)
            .await
            .expect("advance");
        db::fanouts::own(
            &txn,
            &db::entities::delivery::Model {
                inbox: inboxes[2].clone(),
                ..db::fanouts::template(&f)
            },
            &[inboxes[2].clone()],
            db::fanouts::OwnRow {
                status: DeliveryStatus::Pending,
                attempts: 1,
                next_attempt_at: chrono::Utc::now() + chrono::Duration::hours(1),
                last_error: Some("inbox answered 503"),
            },
        )
        .await
        .expect("own row");
        txn.commit().await.expect("commit");
        a.app().state.wake_delivery();
        eventually("the fourth inbox is sent it", || async {
            sinks[3].ids().contains(&id).then_some(())
        })
        .await;
        eventually("the fan-out is finished", || async {
            let f = fanouts(&a).await;
            (f[0].next == 4).then_some(())
        })
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        for s in &sinks[..3] {
            assert!(
                s.ids().is_empty(),
                "{backend:?}: sent again before its cursor"
            );
        }
        assert_eq!(sinks[3].ids().len(), 1);
        assert_eq!(fanouts(&a).await[0].delivered, 3, "{backend:?}");
    }
}

/// Two processes on one database: each inbox of each fan-out gets its
/// activity once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_send_each_fanout_inbox_once() {
    for backend in backends() {
        let a = TestInstance::spawn(backend).await;
        let replica = a.replica().await;
        let sinks = [
            Sink::start(StatusCode::ACCEPTED).await,
            Sink::start(StatusCode::ACCEPTED).await,
            Sink::start(StatusCode::ACCEPTED).await,
        ];
        let inboxes: Vec<String> = sinks.iter().map(Sink::inbox).collect();
        let actor = instance_actor(&a).await;
        let mut ids = vec![];
        for i in 0..40 {
            let (id, body) = announce(&a, &format!("r{i}"));
            db::deliveries::enqueue(a.db(), &id, actor.id, &body, &inboxes)
                .await
                .expect("enqueue");
            ids.push(id);
        }
        a.app().state.wake_delivery();
        replica.state.wake_delivery();
        for s in &sinks {
            eventually("every fan-out reaches every inbox", || async {
                (s.ids().len() >= ids.len()).then_some(())
            })
            .await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        for s in &sinks {
            let mut seen: HashMap<String, usize> = HashMap::new();
            for id in s.ids() {
                *seen.entry(id).or_default() += 1;
            }
            assert_eq!(seen.len(), ids.len(), "{backend:?}");
            assert!(seen.values().all(|n| *n == 1), "{backend:?}: {seen:?}");
        }
        let delivered = db::deliveries::count_by_status(a.db(), DeliveryStatus::Delivered)
            .await
            .expect("count");
        assert_eq!(delivered, 3 * ids.len() as u64, "{backend:?}");
        replica.stop().await;
    }
}

/// Cancelling what carries a deleted post sees the fan-outs no worker holds
/// yet: their inboxes become rows, cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_posts_queued_fanout_is_cancelled_inbox_by_inbox() {
    for backend in backends() {
        let a = TestInstance::spawn(backend).await;
        let actor = instance_actor(&a).await;
        let (id, body) = announce(&a, "deleted");
        let object = format!("{}/posts/deleted", a.base);
        let inboxes: Vec<String> = (0..3)
            .map(|i| format!("http://127.0.0.1:9/inbox?n={i}"))
            .collect();
        let (other_id, other_body) = announce(&a, "kept");
        let txn = db::write_txn(a.db()).await.expect("txn");
        db::deliveries::enqueue(&txn, &id, actor.id, &body, &inboxes)
            .await
            .expect("enqueue");
        db::deliveries::enqueue(&txn, &other_id, actor.id, &other_body, &inboxes)
            .await
            .expect("enqueue");
        let n = db::deliveries::cancel_pending_carrying(&txn, &object)
            .await
            .expect("cancel");
        // Only the fan-out carrying the post was turned into rows; the other
        // is still one row, untouched.
        let f = fanout::Entity::find().all(&txn).await.expect("fan-outs");
        txn.commit().await.expect("commit");
        assert_eq!(n, 3, "{backend:?}");
        let rows = crate::helpers::deliveries(a.db()).await;
        let ours: Vec<_> = rows.iter().filter(|d| d.activity_ap_id == id).collect();
        assert_eq!(ours.len(), 3, "{backend:?}");
        assert!(ours.iter().all(|d| d.status == "cancelled" && d.id != 0));
        let carrying = f.iter().find(|f| f.activity_ap_id == id).expect("ours");
        assert_eq!((carrying.next, carrying.delivered), (3, 0), "{backend:?}");
        let kept = f
            .iter()
            .find(|f| f.activity_ap_id == other_id)
            .expect("kept");
        assert_eq!((kept.next, kept.locked_until), (0, None), "{backend:?}");
    }
}

/// Rolled back, a fan-out's unsent inboxes become rows: nothing queued is
/// lost on the way down, and a halted fan-out's are cancelled, not sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanouts_survive_the_migration_down() {
    use migrations::MigratorTrait;
    for backend in backends() {
        let a = TestInstance::spawn(backend).await;
        let actor = instance_actor(&a).await;
        let (id, body) = announce(&a, "down");
        let inboxes: Vec<String> = (0..3)
            .map(|i| format!("http://127.0.0.1:9/inbox?n={i}"))
            .collect();
        let txn = db::write_txn(a.db()).await.expect("txn");
        db::deliveries::enqueue(&txn, &id, actor.id, &body, &inboxes)
            .await
            .expect("enqueue");
        // The first settled; held by a worker that is gone.
        txn.execute_raw(Statement::from_string(
            txn.get_database_backend(),
            "UPDATE fanouts SET next = 1, delivered = 1, locked_until = '2999-01-01T00:00:00Z'",
        ))
        .await
        .expect("hold");
        // Another, halted under its worker (its post deleted).
        let (halted_id, halted_body) = announce(&a, "down-halted");
        let halted: Vec<String> = (0..3)
            .map(|i| format!("http://127.0.0.1:9/halted?n={i}"))
            .collect();
        db::deliveries::enqueue(&txn, &halted_id, actor.id, &halted_body, &halted)
            .await
            .expect("enqueue");
        txn.execute_raw(Statement::from_string(
            txn.get_database_backend(),
            "UPDATE fanouts SET next = 1, delivered = 1, halted = TRUE, \
             locked_until = '2999-01-01T00:00:00Z' WHERE next = 0",
        ))
        .await
        .expect("halt");
        txn.commit().await.expect("commit");
        migrations::Migrator::down(a.db(), Some(2))
            .await
            .expect("down");
        let rows = a
            .db()
            .query_all_raw(Statement::from_string(
                a.db().get_database_backend(),
                "SELECT d.inbox, d.status, b.body FROM deliveries d \
                 JOIN delivery_bodies b ON b.id = d.body_id ORDER BY d.inbox",
            ))
            .await
            .expect("rows");
        let rows: Vec<(String, String, String)> = rows
            .iter()
            .map(|r| {
                (
                    r.try_get("", "inbox").expect("inbox"),
                    r.try_get("", "status").expect("status"),
                    r.try_get("", "body").expect("body"),
                )
            })
            .collect();
        let mut want: Vec<(String, String, String)> = inboxes[1..]
            .iter()
            .map(|i| (i.clone(), "pending".to_string(), body.clone()))
            .collect();
        want.extend(
            halted[1..]
                .iter()
                .map(|i| (i.clone(), "cancelled".to_string(), halted_body.clone())),
        );
        want.sort();
        assert_eq!(rows, want, "{backend:?}");
        migrations::Migrator::up(a.db(), None).await.expect("up");
    }
}

/// An instance whose breaker is open: its inbox in a fan-out is not sent,
/// but waits in a row of its own until the breaker's wait is over (the
/// attempt not counted); the others are sent at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fanouts_inbox_behind_an_open_breaker_waits_in_a_row() {
    for backend in backends() {
        let a = TestInstance::spawn(backend).await;
        let down = Sink::start(StatusCode::SERVICE_UNAVAILABLE).await;
        let healthy = Sink::start(StatusCode::ACCEPTED).await;
        let host = down.base.trim_start_matches("http://").to_string();
        let now = chrono::Utc::now();
        for _ in 0..10 {
            db::instances::record_failure(a.db(), &host, now, |_| Some(chrono::Duration::hours(1)))
                .await
                .expect("failure");
        }
        let actor = instance_actor(&a).await;
        let (id, body) = announce(&a, "breaker");
        db::deliveries::enqueue(
            a.db(),
            &id,
            actor.id,
            &body,
            &[down.inbox(), healthy.inbox()],
        )
        .await
        .expect("enqueue");
        a.app().state.wake_delivery();
        eventually("the healthy inbox is sent it", || async {
            healthy.ids().contains(&id).then_some(())
        })
        .await;
        eventually("the fan-out is finished", || async {
            (fanouts(&a).await[0].next == 2).then_some(())
        })
        .await;
        let rows = db::deliveries::list(a.db(), None, 10).await.expect("list");
        let waiting: Vec<_> = rows.iter().filter(|d| d.inbox == down.inbox()).collect();
        assert_eq!(waiting.len(), 1, "{backend:?}");
        assert_eq!(waiting[0].status, "pending");
        assert_eq!(
            waiting[0].attempts, 0,
            "{backend:?}: waiting is not an attempt"
        );
        assert!(waiting[0].next_attempt_at >= now + chrono::Duration::minutes(59));
        assert!(
            down.ids().is_empty(),
            "{backend:?}: sent through an open breaker"
        );
    }
}

/// One worker with batches of two, and an activity for twelve inboxes on one
/// gated sink: two requests in flight (the batch) and waiting at the sink,
/// eight inboxes held by the worker, two handed out as rows.
async fn held_fanout(
    backend: Backend,
    name: &str,
) -> (TestInstance, Sink, std::sync::Arc<tokio::sync::Semaphore>) {
    let a = TestInstance::spawn_with(backend, |s| {
        s.delivery.workers = 1;
        s.delivery.batch_size = 2;
        s.delivery.per_host = 2;
    })
    .await;
    let (sink, gate) = Sink::start_gated().await;
    let actor = instance_actor(&a).await;
    let (id, body) = announce(&a, name);
    let inboxes: Vec<String> = (0..12).map(|i| format!("{}?n={i}", sink.inbox())).collect();
    let txn = db::write_txn(a.db()).await.expect("txn");
    db::deliveries::enqueue(&txn, &id, actor.id, &body, &inboxes)
        .await
        .expect("enqueue");
    txn.commit().await.expect("commit");
    a.app().state.wake_delivery();
    eventually("two requests reach the sink and wait", || async {
        (sink.ids().len() == 2).then_some(())
    })
    .await;
    (a, sink, gate)
}

/// Let the two held requests through and wait until the fan-out's cursor
/// is at its end; the worker keeps polling a while longer: only those two
/// ever reached the sink.
async fn finish_held_fanout(
    a: &TestInstance,
    sink: &Sink,
    gate: &tokio::sync::Semaphore,
    backend: Backend,
) {
    gate.add_permits(100);
    eventually("the fan-out is finished", || async {
        let f = fanouts(a).await;
        (f[0].next == f[0].targets).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sink.ids().len(), 2, "{backend:?}: only what was in flight");
}

/// A post deleted while a worker holds its fan-out: what is in flight
/// arrives, what the worker held but had not sent is cancelled (the
/// fan-out was halted under it), and so are the inboxes it had handed out as
/// rows. Without the mark the worker sent its whole backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_deleted_while_its_fanout_is_held_is_not_sent_on() {
    for backend in backends() {
        let (a, sink, gate) = held_fanout(backend, "held").await;
        let object = format!("{}/posts/held", a.base);

        let txn = db::write_txn(a.db()).await.expect("txn");
        db::deliveries::cancel_pending_carrying(&txn, &object)
            .await
            .expect("cancel");
        txn.commit().await.expect("commit");
        let f = fanouts(&a).await;
        assert!(f[0].halted, "{backend:?}: a held fan-out is marked");
        assert!(
            f[0].next < f[0].targets,
            "{backend:?}: and left to its worker"
        );

        finish_held_fanout(&a, &sink, &gate, backend).await;
        let rows = crate::helpers::deliveries(a.db()).await;
        let count = |status: &str| rows.iter().filter(|d| d.status == status).count();
        assert_eq!(count("delivered"), 2, "{backend:?}");
        assert_eq!(count("cancelled"), 10, "{backend:?}");
        assert_eq!(rows.len(), 12, "{backend:?}");
    }
}

/// A fan-out's inboxes are screened by the federation policy when a worker
/// claims it; an instance blocked while the worker holds them gets nothing
/// more: the worker asks the policy again, from memory, before each send.
/// Without that second look all ten held inboxes were sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_blocked_while_its_fanout_is_held_gets_nothing_more() {
    for backend in backends() {
        let (a, sink, gate) = held_fanout(backend, "blocked").await;

        let host = sink.base.trim_start_matches("http://").to_string();
        fed::add(&a.app().state, Who::Cli, List::Block, &host, None)
            .await
            .expect("block");
        finish_held_fanout(&a, &sink, &gate, backend).await;
        let rows = crate::helpers::deliveries(a.db()).await;
        let states: Vec<(&str, Option<&str>)> = rows
            .iter()
            .map(|d| (d.status.as_str(), d.last_error.as_deref()))
            .collect();
        let cancelled = states.iter().filter(|(s, _)| *s == "cancelled");
        assert_eq!(cancelled.clone().count(), 10, "{backend:?}: {states:?}");
        assert!(
            cancelled
                .into_iter()
                .all(|(_, e)| e.is_some_and(|e| e.contains("is blocked"))),
            "{backend:?}: each says why: {states:?}"
        );
    }
}

/// A halted fan-out whose worker is gone: the next claim cancels what it
/// did not send, sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_halted_fanout_claimed_after_its_lease_is_cancelled() {
    for backend in backends() {
        let a = TestInstance::spawn(backend).await;
        let sink = Sink::start(StatusCode::ACCEPTED).await;
        let actor = instance_actor(&a).await;
        let (id, body) = announce(&a, "orphan");
        let inboxes: Vec<String> = (0..3).map(|i| format!("{}?n={i}", sink.inbox())).collect();
        let txn = db::write_txn(a.db()).await.expect("txn");
        db::deliveries::enqueue(&txn, &id, actor.id, &body, &inboxes)
            .await
            .expect("enqueue");
        // The first delivered; halted while held by a worker whose lease
        // has run out.
        txn.execute_raw(Statement::from_string(
            txn.get_database_backend(),
            "UPDATE fanouts SET next = 1, delivered = 1, halted = TRUE, \
             locked_until = '2000-01-01T00:00:00Z'",
        ))
        .await
        .expect("halt");
        txn.commit().await.expect("commit");
        a.app().state.wake_delivery();
        eventually("the fan-out is finished", || async {
            let f = fanouts(&a).await;
            (f[0].next == 3).then_some(())
        })
        .await;
        assert!(sink.ids().is_empty(), "{backend:?}: nothing sent");
        let rows = crate::helpers::deliveries(a.db()).await;
        let cancelled: Vec<&str> = rows
            .iter()
            .filter(|d| d.status == "cancelled")
            .map(|d| d.inbox.as_str())
            .collect();
        assert_eq!(cancelled.len(), 2, "{backend:?}");
        assert!(!cancelled.contains(&inboxes[0].as_str()));
    }
}
