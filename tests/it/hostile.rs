//! HOSTILE-INPUTS.md, "Signatures and origin" and "Content and names": each
//! input is sent by a fake server (`Remote`) and the reaction checked, with
//! nothing stored. Also: Mastodon-form signatures (rsa-sha256, POST and GET)
//! are accepted, and ours carry what Mastodon requires.

use kindred::db::entities::{actor, post};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestInstance, eventually},
    remote::{Doc, Remote, Sign, new_key, public_pem},
};

async fn actor_rows(k: &TestInstance, ap_id: &str) -> u64 {
    actor::Entity::find()
        .filter(actor::Column::ApId.eq(ap_id))
        .count(k.db())
        .await
        .expect("count")
}

async fn post_rows(k: &TestInstance, ap_id: &str) -> u64 {
    post::Entity::find()
        .filter(post::Column::ApId.eq(ap_id))
        .count(k.db())
        .await
        .expect("count")
}

async fn members(k: &TestInstance) -> i64 {
    let (_, g) = k.get("/api/v1/groups/lupus", None).await;
    g["members"].as_i64().unwrap_or(-1)
}

fn follow(r: &Remote, actor: &str, n: u32, group: &str) -> Value {
    json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "type": "Follow",
        "id": r.id(&format!("/follows/{n}")),
        "actor": actor,
        "object": group,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_and_origin() {
    let k = TestInstance::spawn(Backend::Sqlite).await;
    k.create_group("lupus", "Lupus").await;
    let group = format!("{}/groups/lupus", k.base);
    let inbox = format!("{}/inbox", k.base);
    let r = Remote::start().await;
    let mallory = r.actor("Person", "mallory", |_| {});
    let other_key = tokio::task::spawn_blocking(new_key).await.expect("key");
    let bob = r.actor_with_key("Person", "bob", &public_pem(&other_key), |_| {});

    // Each refusal is a 401 that says why, so the sender's admin can tell.
    let refused = |answer: (u16, String), why: &str| {
        assert_eq!(answer.0, 401, "{}", answer.1);
        assert!(
            answer.1.contains(why),
            "{:?} does not say {why:?}",
            answer.1
        );
    };
    // Body changed after signing: the Digest no longer matches.
    let changed = serde_json::to_vec(&follow(&r, &mallory, 99, &group)).expect("json");
    let how = Sign {
        send_body: Some(changed),
        ..Sign::default()
    };
    refused(
        r.post_answer(&inbox, &mallory, &follow(&r, &mallory, 1, &group), how)
            .await,
        "the Digest header does not match the body",
    );
    // Digest sent but not signed.
    let how = Sign {
        headers: &["(request-target)", "host", "date"],
        ..Sign::default()
    };
    refused(
        r.post_answer(&inbox, &mallory, &follow(&r, &mallory, 2, &group), how)
            .await,
        "the signature must cover (request-target), host, date and digest",
    );
    // Only the digest signed.
    let how = Sign {
        headers: &["digest"],
        ..Sign::default()
    };
    refused(
        r.post_answer(&inbox, &mallory, &follow(&r, &mallory, 3, &group), how)
            .await,
        "the signature must cover",
    );
    // Date two hours old (signed, so not a tampered header).
    let old = httpdate::fmt_http_date(
        std::time::SystemTime::now() - std::time::Duration::from_secs(7200),
    );
    let how = Sign {
        date: Some(old),
        ..Sign::default()
    };
    refused(
        r.post_answer(&inbox, &mallory, &follow(&r, &mallory, 4, &group), how)
            .await,
        "the Date header is too far from our clock",
    );
    // Body says bob, signed with mallory's key under mallory's key id.
    refused(
        r.post_answer(
            &inbox,
            &mallory,
            &follow(&r, &bob, 5, &group),
            Sign::default(),
        )
        .await,
        "the signature does not verify",
    );
    // Activity id on another host than its actor, or on our own domain.
    let mut elsewhere = follow(&r, &mallory, 6, &group);
    elsewhere["id"] = json!("http://localhost:1/follows/6");
    assert_eq!(
        r.post(&inbox, &mallory, &elsewhere, Sign::default()).await,
        400
    );
    let mut ours = follow(&r, &mallory, 7, &group);
    ours["id"] = json!(format!("{}/activities/follow/7", k.base));
    assert_eq!(r.post(&inbox, &mallory, &ours, Sign::default()).await, 400);
    assert_eq!(members(&k).await, 0, "no refused Follow may count");

    // Mastodon's form (rsa-sha256, `(request-target) host date digest`) is
    // accepted; the same signed request replayed changes nothing.
    let good = follow(&r, &mallory, 10, &group);
    assert_eq!(r.post(&inbox, &mallory, &good, Sign::default()).await, 202);
    assert_eq!(r.post(&inbox, &mallory, &good, Sign::default()).await, 202);
    assert_eq!(members(&k).await, 1);

    // Our fetch of mallory was a GET signed by our instance actor, with
    // `(request-target) host date`.
    let get = r
        .seen()
        .into_iter()
        .find(|s| s.method == "GET" && s.path == "/users/mallory")
        .expect("mallory fetched");
    let sig = get
        .headers
        .get("signature")
        .and_then(|s| s.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        sig.contains(&format!(r#"keyId="{}/actor#main-key""#, k.base)),
        "{sig}"
    );
    for h in ["(request-target)", "host", "date"] {
        assert!(sig.contains(h), "GET signature lacks {h}: {sig}");
    }
    // The Accept we send: signed over `(request-target) host date digest`, with a Digest.
    let accept = eventually("the Accept delivered", || async {
        r.seen()
            .into_iter()
            .find(|s| s.method == "POST" && s.headers.contains_key("signature"))
    })
    .await;
    let sig = accept
        .headers
        .get("signature")
        .and_then(|s| s.to_str().ok())
        .unwrap_or_default()
        .to_string();
    for h in ["(request-target)", "host", "date", "digest"] {
        assert!(sig.contains(h), "POST signature lacks {h}: {sig}");
    }
    assert!(accept.headers.contains_key("digest"));
    // A Mastodon-style signed GET (no Digest) of our group is served.
    assert_eq!(r.get_signed(&group, &mallory).await, 200);

    // Create(Note) whose note lives on another host, or is attributed to
    // another actor: 400, nothing stored.
    let create = |n: u32, note_id: &str, author: &str| {
        json!({
            "type": "Create",
            "id": r.id(&format!("/creates/{n}")),
            "actor": mallory,
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "cc": [group],
            "object": {"type": "Note", "id": note_id, "attributedTo": author,
                       "to": ["https://www.w3.org/ns/activitystreams#Public"], "cc": [group],
                       "content": "<p>forged</p>"}
        })
    };
    let foreign = "http://localhost:1/notes/1";
    assert_eq!(
        r.post(
            &inbox,
            &mallory,
            &create(1, foreign, &mallory),
            Sign::default()
        )
        .await,
        400
    );
    assert_eq!(post_rows(&k, foreign).await, 0);
    let as_bob = r.id("/notes/2");
    assert_eq!(
        r.post(&inbox, &mallory, &create(2, &as_bob, &bob), Sign::default())
            .await,
        400
    );
    assert_eq!(post_rows(&k, &as_bob).await, 0);

    // Key rotation: one refetch of the actor, then the new key is accepted;
    // a wrong key right after is refused without another fetch.
    let new = tokio::task::spawn_blocking(new_key).await.expect("key");
    r.actor_with_key("Person", "mallory", &public_pem(&new), |_| {});
    let fetched = r.gets_of("/users/mallory");
    let note = r.id("/notes/3");
    let how = Sign {
        key: Some(&new),
        ..Sign::default()
    };
    assert_eq!(
        r.post(&inbox, &mallory, &create(3, &note, &mallory), how)
            .await,
        202
    );
    assert_eq!(r.gets_of("/users/mallory"), fetched + 1, "one refetch");
    assert_eq!(post_rows(&k, &note).await, 1);
    let how = Sign {
        key: Some(&other_key),
        ..Sign::default()
    };
    let note4 = r.id("/notes/4");
    assert_eq!(
        r.post(&inbox, &mallory, &create(4, &note4, &mallory), how)
            .await,
        401
    );
    assert_eq!(r.gets_of("/users/mallory"), fetched + 1, "rate-limited");
    assert_eq!(post_rows(&k, &note4).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_documents_must_be_what_they_claim() {
    let k = TestInstance::spawn(Backend::Sqlite).await;
    let token = k.create_user("ana").await;
    let r = Remote::start().await;
    let r2 = Remote::start().await;
    let lookup = |name: &str| format!("/api/v1/groups/{name}@{}", r.domain);

    // The WebFinger ↔ actor round trip works, with either link type.
    let ok = r.actor("Group", "fine", |_| {});
    assert_eq!(k.get(&lookup("fine"), Some(&token)).await.0, 200);
    r.actor("Group", "ld", |_| {});
    r.webfinger(
        "ld",
        &r.id("/users/ld"),
        r#"application/ld+json; profile="https://www.w3.org/ns/activitystreams""#,
    );
    assert_eq!(k.get(&lookup("ld"), Some(&token)).await.0, 200);
    assert_eq!(actor_rows(&k, &ok).await, 1);

    // A document whose id is elsewhere.
    let mut doc = Value::Null;
    r.actor("Group", "liar", |d| {
        d["id"] = json!(r2.id("/users/liar"));
        doc = d.clone();
    });
    let (s, v) = k.get(&lookup("liar"), Some(&token)).await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(actor_rows(&k, &r2.id("/users/liar")).await, 0);

    // An HTML page (or an uploaded file) instead of ActivityStreams.
    r.put(
        "/users/html",
        Doc::Raw(200, "text/html", "<html>hi</html>".into()),
    );
    r.webfinger("html", &r.id("/users/html"), "application/activity+json");
    assert_eq!(k.get(&lookup("html"), Some(&token)).await.0, 404);
    r.put(
        "/users/file",
        Doc::Raw(200, "application/octet-stream", doc.to_string()),
    );
    r.webfinger("file", &r.id("/users/file"), "application/activity+json");
    assert_eq!(k.get(&lookup("file"), Some(&token)).await.0, 404);

    // A redirect to another host whose document names a third URL.
    r2.actor("Group", "target", |d| {
        d["id"] = json!("http://localhost:1/users/target")
    });
    r.put("/users/jump", Doc::Redirect(r2.id("/users/target")));
    r.webfinger("jump", &r.id("/users/jump"), "application/activity+json");
    assert_eq!(k.get(&lookup("jump"), Some(&token)).await.0, 404);
    assert_eq!(actor_rows(&k, "http://localhost:1/users/target").await, 0);

    // Endpoints or key on another host.
    for (name, field) in [
        ("e1", "inbox"),
        ("e2", "outbox"),
        ("e3", "followers"),
        ("e4", "shared"),
        ("e5", "key"),
    ] {
        let id = r.actor("Group", name, |d| {
            let there = r2.id(&format!("/x/{name}"));
            match field {
                "shared" => d["endpoints"]["sharedInbox"] = json!(there),
                "key" => d["publicKey"]["id"] = json!(format!("{there}#main-key")),
                f => d[f] = json!(there),
            }
        });
        let (s, v) = k.get(&lookup(name), Some(&token)).await;
        assert_eq!(s, 404, "{field} elsewhere: {v}");
        assert_eq!(actor_rows(&k, &id).await, 0, "{field} elsewhere stored");
    }

    // A handle whose WebFinger points at an actor on another host that does
    // not point back: not accepted.
    let victim = r2.actor("Group", "victim", |_| {});
    r2.webfinger(
        "victim",
        &r2.id("/users/someone-else"),
        "application/activity+json",
    );
    r.webfinger("claim", &victim, "application/activity+json");
    let (s, v) = k.get(&lookup("claim"), Some(&token)).await;
    assert_eq!(s, 404, "{v}");
    // When it does point back, the group is known by its own handle only.
    let real = r2.actor("Group", "real", |_| {});
    r.webfinger("alias", &real, "application/activity+json");
    let (s, v) = k.get(&lookup("alias"), Some(&token)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["handle"], format!("real@{}", r2.domain), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_content_and_names_are_made_harmless() {
    let k = TestInstance::spawn(Backend::Sqlite).await;
    k.create_group("lupus", "Lupus").await;
    let group = format!("{}/groups/lupus", k.base);
    let inbox = format!("{}/inbox", k.base);
    let r = Remote::start().await;
    // A Cyrillic "а" in the name, markup in the display name and bio.
    let mallory = r.actor("Person", "mаllory", |d| {
        d["name"] = json!("<script>alert(1)</script><b onclick=x()>Mal\u{202e}lory</b>");
        d["summary"] = json!(r#"<p style="x">bio<img src=x onerror=alert(1)></p>"#);
    });
    assert_eq!(
        r.post(
            &inbox,
            &mallory,
            &follow(&r, &mallory, 1, &group),
            Sign::default()
        )
        .await,
        202
    );
    let note = r.id("/notes/x");
    let create = json!({
        "type": "Create",
        "id": r.id("/creates/x"),
        "actor": mallory,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": [group],
        "object": {"type": "Note", "id": note, "attributedTo": mallory,
            "to": ["https://www.w3.org/ns/activitystreams#Public"], "cc": [group],
            "summary": "<i>cw</i><script>x</script>",
            "content": r#"<p onmouseover="x()">hi<script>alert(1)</script><iframe src="https://e.example"></iframe><a href="javascript:alert(1)">link</a><span style="color:red">s</span></p>"#}
    });
    assert_eq!(
        r.post(&inbox, &mallory, &create, Sign::default()).await,
        202
    );
    let (_, list) = k.get("/api/v1/groups/lupus/threads", None).await;
    let t = list
        .as_array()
        .and_then(|l| l.iter().find(|t| t["url"] == note.as_str()).cloned())
        .expect("thread stored");
    let html = t["content_html"].as_str().unwrap_or_default();
    for bad in ["<script", "onmouseover", "iframe", "javascript:", "style="] {
        assert!(!html.contains(bad), "{bad} in {html}");
    }
    assert!(html.contains("hi"));
    let cw = t["content_warning"].as_str().unwrap_or_default();
    assert!(!cw.contains('<'), "{cw}");
    // Remote names are always shown with their domain, markup-free.
    assert_eq!(
        t["author"]["handle"],
        format!("mаllory@{}", r.domain),
        "{t}"
    );
    let name = t["author"]["name"].as_str().unwrap_or_default();
    assert!(!name.contains('<') && !name.contains("onclick"), "{name}");
    assert!(
        !name.contains('\u{202e}'),
        "direction override kept: {name:?}"
    );
    let row = actor::Entity::find()
        .filter(actor::Column::ApId.eq(mallory.as_str()))
        .one(k.db())
        .await
        .expect("query")
        .expect("actor stored");
    let bio = row.summary.unwrap_or_default();
    assert!(
        !bio.contains("onerror") && !bio.contains("style") && !bio.contains("<img"),
        "{bio}"
    );
    // Local names: [a-z0-9_-] only, so a look-alike cannot be registered.
    let err = kindred::service::users::create_user(
        &k.app().state,
        "lupus\u{0430}",
        "a long password",
        false,
    )
    .await;
    assert!(err.is_err());
}
