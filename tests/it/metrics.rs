//! `/metrics`: Prometheus text with deliveries by instance and outcome, inbox
//! activities by outcome, request latency by route and the queue's size; only
//! for the configured token, or a local request that came through no proxy.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::{Backend, TestInstance, eventually},
    remote::{Remote, Sign},
};

async fn scrape(k: &TestInstance, headers: &[(&str, &str)]) -> (StatusCode, String) {
    let mut req = k.http.get(format!("{}/metrics", k.base));
    for (h, v) in headers {
        req = req.header(*h, *v);
    }
    let res = req.send().await.expect("scrape");
    (res.status(), res.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_deliveries_inbox_outcomes_and_latency() {
    let k = TestInstance::spawn(Backend::Sqlite).await;
    k.create_group("lupus", "Lupus").await;
    let r = Remote::start().await;
    let bob = r.actor("Person", "bob", |_| {});
    let group = format!("{}/groups/lupus", k.base);
    let inbox = format!("{}/inbox", k.base);
    let follow = json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Follow",
        "id": r.id("/follows/1"), "actor": bob, "object": group});
    assert_eq!(r.post(&inbox, &bob, &follow, Sign::default()).await, 202);
    // Unsigned: refused (401).
    let res = k
        .http
        .post(&inbox)
        .header("content-type", "application/activity+json")
        .body(follow.to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.get_signed(&group, &bob).await, 200);
    eventually("the Accept is delivered", || async {
        r.posted()
            .iter()
            .any(|v| v["type"] == "Accept")
            .then_some(())
    })
    .await;

    let text = eventually("the delivery is counted", || async {
        let (s, text) = scrape(&k, &[]).await;
        assert_eq!(s, StatusCode::OK, "{text}");
        text.contains(&format!(
            "kindred_deliveries_total{{instance=\"{}\",outcome=\"delivered\"}} 1",
            r.domain
        ))
        .then_some(text)
    })
    .await;
    for needle in [
        "kindred_inbox_activities_total{outcome=\"accepted\"} 1",
        "kindred_inbox_activities_total{outcome=\"unauthorized\"} 1",
        "kindred_http_request_duration_seconds_count{method=\"GET\",route=\"/groups/{name}\",status=\"200\"} 1",
        "kindred_http_request_duration_seconds_bucket{le=\"+Inf\",method=\"POST\",route=\"/inbox\",status=\"202\"} 1",
        "kindred_delivery_queue{status=\"failed\"} 0",
        "# EOF",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    assert!(
        !text.contains("/groups/lupus"),
        "paths never appear, only routes"
    );
    assert!(
        text.contains("kindred_db_group_writes_total 0"),
        "no post received yet:\n{text}"
    );

    // A received post is written by the SQLite group committer: counted.
    let note = json!({"type": "Note", "id": r.id("/notes/1"), "attributedTo": bob,
        "to": ["https://www.w3.org/ns/activitystreams#Public"], "cc": [group],
        "content": "<p>hello</p>"});
    let create = json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Create",
        "id": r.id("/creates/1"), "actor": bob,
        "to": ["https://www.w3.org/ns/activitystreams#Public"], "cc": [group], "object": note});
    assert_eq!(r.post(&inbox, &bob, &create, Sign::default()).await, 202);
    let (_, text) = scrape(&k, &[]).await;
    for needle in [
        "kindred_db_group_commits_total 1",
        "kindred_db_group_writes_total 1",
        "kindred_inbox_activities_total{outcome=\"accepted\"} 2",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }

    // Through a proxy (or from elsewhere) without the token: refused.
    let (s, _) = scrape(&k, &[("x-forwarded-for", "203.0.113.9")]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // With a token configured, only the token opens it.
    let t = TestInstance::spawn_with(Backend::Sqlite, |s| {
        s.metrics.token = "s3cret-scrape".into();
    })
    .await;
    assert_eq!(scrape(&t, &[]).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        scrape(&t, &[("authorization", "Bearer wrong")]).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, text) = scrape(&t, &[("authorization", "Bearer s3cret-scrape")]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(text.contains("kindred_delivery_queue"), "{text}");

    // Every answer carries a request id (made here, or the proxy's kept), as
    // the log lines of that request do.
    let res = t
        .http
        .get(format!("{}/healthz", t.base))
        .send()
        .await
        .expect("get");
    let id = res.headers()["x-request-id"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let res = t
        .http
        .get(format!("{}/healthz", t.base))
        .header("x-request-id", "proxy-42")
        .send()
        .await
        .expect("get");
    assert_eq!(res.headers()["x-request-id"], "proxy-42");
}
