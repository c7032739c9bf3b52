//! The inbox under bad input: oversize bodies, unsigned or badly dated
//! requests, unknown types, Follows of nothing, repeats, and activities out
//! of order.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::{Backend, TestInstance, backends},
    remote::{Doc, Remote, Sign},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_refuses_bad_input_and_absorbs_repeats() {
    for backend in backends() {
        run(backend).await;
    }
}

async fn run(backend: Backend) {
    let a = TestInstance::spawn(backend).await;
    let b = TestInstance::spawn(backend).await;
    a.create_group("lupus", "Lupus").await;
    let inbox = format!("{}/inbox", a.base);
    let now = httpdate::fmt_http_date(std::time::SystemTime::now());

    // Over 1 MB: 413, not 500 (a 500 makes senders retry forever).
    let status = raw_post_status(&a.base, "/inbox", 2 * 1024 * 1024).await;
    assert_eq!(status, 413);

    // Unsigned: 401. No Date / a Date in the future: 401.
    let follow = |id: &str, object: &str| {
        json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "type": "Follow",
            "id": format!("{}/activities/follow/{id}", b.base),
            "actor": b.instance_actor_id(),
            "object": object,
        })
    };
    let body = follow("1", &format!("{}/groups/lupus", a.base));
    let res = a
        .http
        .post(&inbox)
        .header("content-type", "application/activity+json")
        .header("date", &now)
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let answer: serde_json::Value = res.json().await.unwrap_or_default();
    assert_eq!(answer["message"], "the request is not signed");
    let res = a.http.post(&inbox).json(&body).send().await.expect("send");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let answer: serde_json::Value = res.json().await.unwrap_or_default();
    assert_eq!(answer["message"], "the Date header is missing");
    let future = httpdate::fmt_http_date(
        std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
    );
    let res = a
        .http
        .post(&inbox)
        .header("date", future)
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Unknown activity types are set aside without error (202); malformed
    // ones and known types that do not parse are 400.
    let weird =
        json!({"type": "Dance", "id": format!("{}/x/1", b.base), "actor": b.instance_actor_id()});
    assert_eq!(b.signed_post(&inbox, &weird).await, StatusCode::ACCEPTED);
    let broken = json!({"type": "Create", "id": format!("{}/x/2", b.base), "actor": b.instance_actor_id(), "object": {"type": "Note"}});
    assert_eq!(
        b.signed_post(&inbox, &broken).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        b.signed_post(&inbox, &json!("not an activity")).await,
        StatusCode::BAD_REQUEST
    );

    // Follow of a group that doesn't exist: 404, nothing stored.
    let ghost = follow("2", &format!("{}/groups/ghost", a.base));
    assert_eq!(b.signed_post(&inbox, &ghost).await, StatusCode::NOT_FOUND);

    // A valid signed Follow is accepted; the same activity again changes
    // nothing (one membership, one Accept queued).
    assert_eq!(b.signed_post(&inbox, &body).await, StatusCode::ACCEPTED);
    assert_eq!(b.signed_post(&inbox, &body).await, StatusCode::ACCEPTED);
    let (_, g) = a.get("/api/v1/groups/lupus", None).await;
    assert_eq!(g["members"], 1);
    let accepts = crate::helpers::deliveries(a.db())
        .await
        .iter()
        .filter(|d| d.payload.contains("\"Accept\""))
        .count();
    assert_eq!(accepts, 1);

    // Create of a post attributed to someone else: 400, nothing stored.
    let forged = json!({
        "type": "Create",
        "id": format!("{}/activities/create/9", b.base),
        "actor": b.instance_actor_id(),
        "object": {
            "type": "Page",
            "id": format!("{}/posts/999", b.base),
            "attributedTo": format!("{}/users/someone-else", a.base),
            "name": "Forged",
            "content": "x",
            "audience": format!("{}/groups/lupus", a.base),
        }
    });
    assert_eq!(
        b.signed_post(&inbox, &forged).await,
        StatusCode::BAD_REQUEST
    );
    let (_, list) = a.get("/api/v1/groups/lupus/threads", None).await;
    assert_eq!(list, json!([]));
}

/// POST a body of `len` bytes over a raw socket and read the status line,
/// even if the server answers (and closes) before the body is fully sent.
async fn raw_post_status(base: &str, path: &str, len: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base
        .trim_start_matches("http://")
        .replace("localhost", "127.0.0.1");
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/activity+json\r\nDate: {}\r\nContent-Length: {len}\r\n\r\n",
        base.trim_start_matches("http://"),
        httpdate::fmt_http_date(std::time::SystemTime::now())
    );
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(head.as_bytes()).await;
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0;
        while sent < len {
            let n = chunk.len().min(len - sent);
            if wr.write_all(&chunk[..n]).await.is_err() {
                break;
            }
            sent += n;
        }
    });
    let mut buf = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        match rd.read(&mut buf[got..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    writer.abort();
    let line = String::from_utf8_lossy(&buf[..got]).to_string();
    line.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Out of order: an Undo that overtakes its Follow leaves no membership, and
/// a Delete that overtakes its Create leaves the post deleted (also when the
/// post is fetched later). On both databases.
#[tokio::test]
async fn disorder_undo_before_follow_and_delete_before_create() {
    for backend in backends() {
        let k = TestInstance::spawn(backend).await;
        k.create_group("mg", "MG").await;
        let group = format!("{}/groups/mg", k.base);
        let inbox = format!("{}/inbox", k.base);
        let r = Remote::start().await;
        let bob = r.actor("Person", "bob", |_| {});
        let members = || async {
            let (_, g) = k.get("/api/v1/groups/mg", None).await;
            g["members"].as_i64().unwrap_or(-1)
        };
        let follow = |n: u32| {
            json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Follow",
                "id": r.id(&format!("/follows/{n}")), "actor": bob, "object": group})
        };
        // Undo(Follow 1) first, then Follow 1: no membership.
        let undo = json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Undo",
            "id": r.id("/undos/1"), "actor": bob, "object": follow(1)});
        assert_eq!(r.post(&inbox, &bob, &undo, Sign::default()).await, 202);
        assert_eq!(r.post(&inbox, &bob, &follow(1), Sign::default()).await, 202);
        assert_eq!(members().await, 0, "the undone follow was not applied");
        // A new Follow works.
        assert_eq!(r.post(&inbox, &bob, &follow(2), Sign::default()).await, 202);
        assert_eq!(members().await, 1);

        // Delete(P) first, then Create(P): P is never stored; Q, not deleted, is.
        let note = |id: &str| {
            json!({"type": "Note", "id": id, "attributedTo": bob,
                "to": ["https://www.w3.org/ns/activitystreams#Public"], "cc": [group],
                "content": "<p>hello</p>"})
        };
        let create = |n: &str, id: &str| {
            json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Create",
                "id": r.id(&format!("/creates/{n}")), "actor": bob,
                "to": ["https://www.w3.org/ns/activitystreams#Public"], "cc": [group],
                "object": note(id)})
        };
        let p = r.id("/notes/p");
        let q = r.id("/notes/q");
        let delete = json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Delete",
            "id": r.id("/deletes/p"), "actor": bob,
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "object": {"type": "Tombstone", "id": p}});
        assert_eq!(r.post(&inbox, &bob, &delete, Sign::default()).await, 202);
        assert_eq!(
            r.post(&inbox, &bob, &create("p", &p), Sign::default())
                .await,
            202
        );
        assert_eq!(
            r.post(&inbox, &bob, &create("q", &q), Sign::default())
                .await,
            202
        );
        let db = k.db().clone();
        let stored = |id: String| {
            let db = db.clone();
            async move {
                kindred::db::posts::by_ap_id(&db, &id)
                    .await
                    .expect("query")
                    .is_some()
            }
        };
        assert!(
            !stored(p.clone()).await,
            "a post deleted before it arrived stays deleted"
        );
        assert!(stored(q.clone()).await);
        // Fetching it later (a reply to it, a link) does not bring it back.
        r.put("/notes/p", Doc::ap(&note(&p)));
        let reply = r.id("/notes/r");
        let mut answer = note(&reply);
        answer["inReplyTo"] = json!(p);
        let create_reply = json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Create",
            "id": r.id("/creates/r"), "actor": bob,
            "to": ["https://www.w3.org/ns/activitystreams#Public"], "cc": [group],
            "object": answer});
        r.post(&inbox, &bob, &create_reply, Sign::default()).await;
        assert!(!stored(p.clone()).await, "refetched, still deleted");

        // The same Create of Q again: accepted, nothing stored or sent twice.
        let announced = || async {
            crate::helpers::deliveries(k.db())
                .await
                .iter()
                .filter(|d| d.payload.contains("/creates/q\""))
                .count()
        };
        let before = announced().await;
        assert_eq!(before, 1, "the group announced Q to its member");
        assert_eq!(
            r.post(&inbox, &bob, &create("q", &q), Sign::default())
                .await,
            202
        );
        assert_eq!(announced().await, before, "a repeat is not announced again");

        // Q again under another activity id: accepted, still one post.
        assert_eq!(
            r.post(&inbox, &bob, &create("q-again", &q), Sign::default())
                .await,
            202
        );
        let (_, threads) = k.get("/api/v1/groups/mg/threads", None).await;
        assert_eq!(threads.as_array().map(Vec::len), Some(1), "{threads}");

        // A ban recorded while the follow still stands (another process
        // between the two writes): the member's next post is refused.
        let row = |id: String| {
            let db = db.clone();
            async move {
                kindred::db::actors::by_ap_id(&db, &id)
                    .await
                    .expect("query")
                    .expect("known actor")
            }
        };
        let (g, b) = (row(group.clone()).await, row(bob.clone()).await);
        kindred::db::moderation::ban(&db, g.id, b.id, None, "test")
            .await
            .expect("ban");
        let s = r.id("/notes/s");
        assert_eq!(
            r.post(&inbox, &bob, &create("s", &s), Sign::default())
                .await,
            403
        );
        assert!(!stored(s).await, "a banned member's post is not stored");
    }
}

/// One instance sending too much gets 429 (others are not affected), and a
/// body nested thousands of levels deep is refused with 400, not a crash.
#[tokio::test]
async fn per_instance_rate_limit_and_nesting_depth() {
    let k = TestInstance::spawn_with(Backend::Sqlite, |s| {
        s.federation.inbox_burst = 5;
        s.federation.inbox_per_sec = 1;
    })
    .await;
    k.create_group("mg", "MG").await;
    let group = format!("{}/groups/mg", k.base);
    let inbox = format!("{}/inbox", k.base);
    let noisy = Remote::start().await;
    let calm = Remote::start().await;
    let bob = noisy.actor("Person", "bob", |_| {});
    let ann = calm.actor("Person", "ann", |_| {});
    let follow = |r: &Remote, actor: &str, n: u32| {
        json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Follow",
            "id": r.id(&format!("/follows/{n}")), "actor": actor, "object": group})
    };
    let mut statuses = vec![];
    for n in 0..8 {
        statuses.push(
            noisy
                .post(&inbox, &bob, &follow(&noisy, &bob, n), Sign::default())
                .await,
        );
    }
    assert_eq!(&statuses[..5], &[202; 5], "{statuses:?}");
    assert_eq!(statuses[7], 429, "{statuses:?}");
    assert_eq!(
        calm.post(&inbox, &ann, &follow(&calm, &ann, 1), Sign::default())
            .await,
        202
    );
    let raw = reqwest::Client::new()
        .post(&inbox)
        .header("signature", format!("keyId=\"{bob}#main-key\",headers=\"(request-target) host date digest\",signature=\"x\""))
        .header("date", httpdate::fmt_http_date(std::time::SystemTime::now()))
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(raw.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(raw.headers().contains_key("retry-after"));

    // 50,000 levels of nesting, correctly signed.
    let depth = 50_000;
    let mut deep = String::from("{\"type\":\"Create\",\"object\":");
    deep.push_str(&"[".repeat(depth));
    deep.push_str(&"]".repeat(depth));
    deep.push('}');
    let status = calm
        .post_bytes(&inbox, &ann, deep.into_bytes(), Sign::default())
        .await;
    assert_eq!(status, 400);
    // Still serving.
    assert_eq!(
        calm.post(&inbox, &ann, &follow(&calm, &ann, 2), Sign::default())
            .await,
        202
    );
}

/// A received post goes to the members the group has when it arrives: a
/// member banned a moment after one post (while the group's member inboxes
/// are kept in memory, `federation::docs`) is not sent the next. On both
/// databases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_banned_between_two_posts_is_sent_only_the_first() {
    for backend in backends() {
        let k = TestInstance::spawn(backend).await;
        k.create_group("mg", "MG").await;
        let group = format!("{}/groups/mg", k.base);
        let inbox = format!("{}/inbox", k.base);
        let (r1, r2) = (Remote::start().await, Remote::start().await);
        let bob = r1.actor("Person", "bob", |_| {});
        let carol = r2.actor("Person", "carol", |_| {});
        for (r, who) in [(&r1, &bob), (&r2, &carol)] {
            let follow = json!({"@context": "https://www.w3.org/ns/activitystreams",
                "type": "Follow", "id": r.id("/follows/1"), "actor": who, "object": group});
            assert_eq!(r.post(&inbox, who, &follow, Sign::default()).await, 202);
        }
        let (_, g) = k.get("/api/v1/groups/mg", None).await;
        assert_eq!(g["members"], 2, "{g}");
        let create = |n: &str| {
            json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Create",
                "id": r1.id(&format!("/creates/{n}")), "actor": bob,
                "to": ["https://www.w3.org/ns/activitystreams#Public"], "cc": [group],
                "object": {"type": "Note", "id": r1.id(&format!("/notes/{n}")),
                    "attributedTo": bob, "to": ["https://www.w3.org/ns/activitystreams#Public"],
                    "cc": [group], "content": "<p>hello</p>"}})
        };
        // The inboxes the group's Announce of `n` was queued for.
        let announced_to = |n: &'static str| {
            let db = k.db().clone();
            async move {
                crate::helpers::deliveries(&db)
                    .await
                    .iter()
                    .filter(|d| {
                        d.payload.contains("\"Announce\"")
                            && d.payload.contains(&format!("/creates/{n}\""))
                    })
                    .map(|d| d.inbox.clone())
                    .collect::<Vec<_>>()
            }
        };
        let carol_gets = |inboxes: &[String]| inboxes.iter().any(|i| i.starts_with(&r2.base));
        assert_eq!(
            r1.post(&inbox, &bob, &create("1"), Sign::default()).await,
            202
        );
        let first = announced_to("1").await;
        assert!(carol_gets(&first), "both members get the first: {first:?}");
        assert!(first.iter().any(|i| i.starts_with(&r1.base)), "{first:?}");

        let row = |id: String| {
            let db = k.db().clone();
            async move {
                kindred::db::actors::by_ap_id(&db, &id)
                    .await
                    .expect("query")
                    .expect("known actor")
            }
        };
        let as_actor = |m| kindred::federation::objects::actor::DbActor::new(m).expect("actor");
        let (g, c) = (
            as_actor(row(group.clone()).await),
            as_actor(row(carol.clone()).await),
        );
        kindred::service::moderation::ban(
            &k.data(),
            kindred::service::federation::Who::Cli,
            &g,
            &c,
            None,
        )
        .await
        .expect("ban");

        assert_eq!(
            r1.post(&inbox, &bob, &create("2"), Sign::default()).await,
            202
        );
        let second = announced_to("2").await;
        assert!(second.iter().any(|i| i.starts_with(&r1.base)), "{second:?}");
        assert!(
            !carol_gets(&second),
            "the banned member is not sent the next post: {second:?}"
        );
    }
}
