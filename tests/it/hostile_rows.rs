//! The remaining rows of HOSTILE-INPUTS.md: oversized lists, answers to
//! Follows we never sent, Linked-Data-only signatures, a drip-fed response,
//! and a post deleted while its Create is still queued.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestInstance, eventually},
    remote::{Remote, Sign},
};

const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

async fn member(k: &TestInstance, r: &Remote, actor: &str, group: &str) {
    let f = json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Follow",
        "id": r.id("/follows/m"), "actor": actor, "object": group});
    assert_eq!(
        r.post(&format!("{}/inbox", k.base), actor, &f, Sign::default())
            .await,
        202
    );
}

fn create(r: &Remote, actor: &str, n: &str, group: &str, extra: impl FnOnce(&mut Value)) -> Value {
    let mut note = json!({"type": "Note", "id": r.id(&format!("/notes/{n}")), "attributedTo": actor,
        "to": [PUBLIC], "cc": [group], "content": "<p>hello</p>"});
    extra(&mut note);
    json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Create",
        "id": r.id(&format!("/creates/{n}")), "actor": actor, "to": [PUBLIC], "cc": [group],
        "object": note})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_tags_recipients_and_attachments_are_capped() {
    let k = TestInstance::spawn(Backend::Sqlite).await;
    k.create_group("lupus", "Lupus").await;
    let group = format!("{}/groups/lupus", k.base);
    let inbox = format!("{}/inbox", k.base);
    let r = Remote::start().await;
    let bob = r.actor("Person", "bob", |_| {});
    member(&k, &r, &bob, &group).await;

    let tags: Vec<Value> = (0..10_000)
        .map(|i| json!({"type": "Hashtag", "name": format!("#t{i}"), "href": format!("{}/t/{i}", r.base)}))
        .collect();
    let a = create(&r, &bob, "tags", &group, |n| n["tag"] = json!(tags));
    assert_eq!(r.post(&inbox, &bob, &a, Sign::default()).await, 202);
    let mut cc: Vec<Value> = (0..10_000)
        .map(|i| json!(format!("{}/u/{i}", r.base)))
        .collect();
    cc.push(json!(group));
    let c = create(&r, &bob, "cc", &group, |n| n["cc"] = json!(cc));
    assert_eq!(r.post(&inbox, &bob, &c, Sign::default()).await, 202);
    assert!(
        kindred::db::posts::by_ap_id(k.db(), &r.id("/notes/cc"))
            .await
            .expect("q")
            .is_some()
    );
    let files: Vec<Value> = (0..10_000)
        .map(|i| json!({"type": "Document", "url": format!("{}/f/{i}", r.base)}))
        .collect();
    let b = create(&r, &bob, "files", &group, |n| {
        n["attachment"] = json!(files)
    });
    assert_eq!(r.post(&inbox, &bob, &b, Sign::default()).await, 202);

    let p = kindred::db::posts::by_ap_id(k.db(), &r.id("/notes/tags"))
        .await
        .expect("q")
        .expect("stored");
    let stored_tags: Vec<Value> =
        serde_json::from_str(p.tags.as_deref().unwrap_or("[]")).unwrap_or_default();
    assert!(
        !stored_tags.is_empty() && stored_tags.len() <= 50,
        "{}",
        stored_tags.len()
    );
    let p = kindred::db::posts::by_ap_id(k.db(), &r.id("/notes/files"))
        .await
        .expect("q")
        .expect("stored");
    let links = p.content_html.matches("<li><a").count();
    assert!(links > 0 && links <= 20, "{links} attachment links");
    // Nothing was fetched for any of the 10,000 recipients.
    assert!(r.seen().iter().all(|s| !s.path.starts_with("/u/")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_to_follows_we_never_sent_or_from_the_wrong_group_are_ignored() {
    let k = TestInstance::spawn(Backend::Sqlite).await;
    let alice = k.create_user("alice").await;
    let host = Remote::start().await;
    let other = Remote::start().await;
    let club = host.actor("Group", "club", |_| {});
    let fake = other.actor("Group", "fake", |_| {});
    let handle = format!("club@{}", host.domain);
    let inbox = format!("{}/inbox", k.base);
    k.get(&format!("/api/v1/groups/{handle}"), Some(&alice))
        .await;
    k.post(&format!("/api/v1/groups/{handle}/join"), &alice, json!({}))
        .await;
    let follow = eventually("alice's Follow", || async {
        host.posted().into_iter().find(|v| v["type"] == "Follow")
    })
    .await;
    let membership = || async {
        let (_, v) = k
            .get(&format!("/api/v1/groups/{handle}"), Some(&alice))
            .await;
        v["membership"].as_str().unwrap_or_default().to_string()
    };
    // Another group accepts alice's Follow of the club: ignored.
    let wrong = json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Accept",
        "id": other.id("/accepts/1"), "actor": fake, "object": follow});
    assert_eq!(
        other.post(&inbox, &fake, &wrong, Sign::default()).await,
        202
    );
    // The club accepts a Follow nobody sent: ignored.
    let never = json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Accept",
        "id": host.id("/accepts/0"), "actor": club, "object": host.id("/follows/never")});
    assert_eq!(host.post(&inbox, &club, &never, Sign::default()).await, 202);
    assert_eq!(membership().await, "pending");
    // The real answer works; then a Reject from the wrong group changes nothing.
    let right = json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Accept",
        "id": host.id("/accepts/1"), "actor": club, "object": follow});
    assert_eq!(host.post(&inbox, &club, &right, Sign::default()).await, 202);
    assert_eq!(membership().await, "accepted");
    let reject = json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Reject",
        "id": other.id("/rejects/1"), "actor": fake, "object": follow});
    assert_eq!(
        other.post(&inbox, &fake, &reject, Sign::default()).await,
        202
    );
    assert_eq!(membership().await, "accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_with_only_a_linked_data_signature_is_refused() {
    let k = TestInstance::spawn(Backend::Sqlite).await;
    k.create_group("lupus", "Lupus").await;
    let group = format!("{}/groups/lupus", k.base);
    let r = Remote::start().await;
    let bob = r.actor("Person", "bob", |_| {});
    member(&k, &r, &bob, &group).await;
    let mut relayed = create(&r, &bob, "ld", &group, |_| {});
    relayed["signature"] = json!({"type": "RsaSignature2017", "creator": format!("{bob}#main-key"),
        "created": "2026-11-22T10:00:00Z", "signatureValue": "bm90IGNoZWNrZWQ="});
    let res = k
        .http
        .post(format!("{}/inbox", k.base))
        .header("content-type", "application/activity+json")
        .body(relayed.to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(
        kindred::db::posts::by_ap_id(k.db(), &r.id("/notes/ld"))
            .await
            .expect("q")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drip_fed_response_is_aborted() {
    let k = TestInstance::spawn_with(Backend::Sqlite, |s| {
        s.federation.request_timeout_secs = 2;
    })
    .await;
    let alice = k.create_user("alice").await;
    // A server that answers one byte a second, forever.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let drip = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/jrd+json\r\ncontent-length: 100000\r\n\r\n{";
                if sock.write_all(head).await.is_err() {
                    return;
                }
                loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if sock.write_all(b" ").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    // The look-up gives up on its own (the request timeout), with an error.
    let path = format!("/api/v1/groups/club@localhost:{port}");
    let call = k.get(&path, Some(&alice));
    let (s, v) = tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .expect("the look-up ends instead of hanging");
    assert!(s.is_client_error() || s.is_server_error(), "{s} {v}");
    drip.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_deleted_while_its_create_is_queued_is_not_sent_after() {
    let k = TestInstance::spawn(Backend::Sqlite).await;
    k.create_group("lupus", "Lupus").await;
    let group = format!("{}/groups/lupus", k.base);
    let r = Remote::start().await;
    // bob's server is down: what is queued for him waits (503, retried).
    r.put(
        "/inbox",
        crate::remote::Doc::Raw(503, "text/plain", String::new()),
    );
    r.put(
        "/users/bob/inbox",
        crate::remote::Doc::Raw(503, "text/plain", String::new()),
    );
    let bob = r.actor("Person", "bob", |_| {});
    member(&k, &r, &bob, &group).await;
    let dave = k.create_user("dave").await;
    k.post("/api/v1/groups/lupus/join", &dave, json!({})).await;
    let (s, post) = k
        .post(
            "/api/v1/groups/lupus/threads",
            &dave,
            json!({"title": "Oops", "content": "wrong group"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{post}");
    let post_url = post["url"].as_str().expect("url").to_string();
    let rows = || async {
        crate::helpers::deliveries(k.db())
            .await
            .into_iter()
            .filter(|d| d.inbox.starts_with(&r.base))
            .collect::<Vec<_>>()
    };
    eventually("the Announce waits for bob's server", || async {
        rows()
            .await
            .iter()
            .any(|d| d.status == "pending" && d.payload.contains(&post_url) && d.attempts > 0)
            .then_some(())
    })
    .await;
    let id = post["id"].as_i64().expect("id");
    let (s, _) = k
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/posts/{id}"),
            Some(&dave),
            None,
        )
        .await;
    assert!(s.is_success(), "{s}");
    let after = rows().await;
    let carrying: Vec<_> = after
        .iter()
        .filter(|d| d.payload.contains(&post_url) && !d.payload.contains("\"Delete\""))
        .collect();
    assert!(!carrying.is_empty());
    assert!(
        carrying.iter().all(|d| d.status == "cancelled"),
        "{:?}",
        carrying.iter().map(|d| &d.status).collect::<Vec<_>>()
    );
    assert!(
        after
            .iter()
            .any(|d| d.status == "pending" && d.payload.contains("\"Delete\"")),
        "the Delete still goes"
    );
}
