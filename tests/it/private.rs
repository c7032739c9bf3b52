//! Members-only and local-only groups across real instances: who gets in
//! (approval, refusal, invitation, ban), who reads (per actor, not per
//! instance), what is sent (to members' own inboxes, never Public), and the
//! answers to everyone else (a private 404, with nothing leaked or stored).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestInstance, backends, eventually},
    remote::{Remote, Sign},
};
use kindred::{
    db,
    federation::objects::actor::DbActor,
    service::{federation::Who, moderation},
};

async fn group(i: &TestInstance, name: &str) -> DbActor {
    let row = db::actors::local_by_name_and_kind(i.db(), name, kindred::domain::ActorKind::Group)
        .await
        .expect("db")
        .expect("group");
    DbActor::new(row).expect("actor")
}

async fn actor_id(i: &TestInstance, ap_id: &str) -> i64 {
    db::actors::by_ap_id(i.db(), ap_id)
        .await
        .expect("db")
        .expect("known actor")
        .id
}

async fn membership(i: &TestInstance, token: &str, handle: &str) -> Value {
    let (_, v) = i
        .get(&format!("/api/v1/groups/{handle}"), Some(token))
        .await;
    v["membership"].clone()
}

/// GET as a fetcher with no signature: status and Cache-Control.
async fn unsigned_get(url: &str) -> (u16, String) {
    let res = reqwest::Client::new()
        .get(url)
        .header("accept", "application/activity+json")
        .send()
        .await
        .expect("get");
    let cc = res
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (res.status().as_u16(), cc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_only_group_across_three_instances() {
    for backend in backends() {
        members_only(backend).await;
    }
}

async fn members_only(backend: Backend) {
    let a = TestInstance::spawn(backend).await;
    let b = TestInstance::spawn(backend).await;
    let c = TestInstance::spawn(backend).await;
    let data = a.data();
    a.create_group("rare", "Rare condition circle").await;
    let g = group(&a, "rare").await;
    moderation::update_settings(
        &data,
        Who::Cli,
        &g,
        moderation::SettingsChange {
            visibility: Some("members"),
            join_policy: Some("approval"),
            member_count_hidden: None,
            premoderation: None,
            default_content_warning: None,
        },
    )
    .await
    .expect("settings");
    let g = group(&a, "rare").await;
    let handle = format!("rare@{}", a.domain);
    let dave = a.create_user("dave").await;
    let alice = b.create_user("alice").await;
    let bob = b.create_user("bob").await;
    let carol = c.create_user("carol").await;

    // The actor document is public (people must find it to ask); it says
    // it is members-only.
    let (_, doc) = b
        .get(&format!("/api/v1/groups/{handle}"), Some(&alice))
        .await;
    assert_eq!(doc["visibility"], "members", "{doc}");

    // Requests: local (with a note) and remote go to the same queue.
    let (s, v) = a
        .post(
            "/api/v1/groups/rare/join",
            &dave,
            json!({"note": "diagnosed in May"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["membership"], "pending");
    for (i, t) in [(&b, &alice), (&c, &carol)] {
        let (s, v) = i
            .post(&format!("/api/v1/groups/{handle}/join"), t, json!({}))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    }
    let pending = eventually("three requests at A", || async {
        let p = db::moderation::pending_requests(a.db(), g.row.id)
            .await
            .expect("db");
        (p.len() == 3).then_some(p)
    })
    .await;
    assert!(
        pending
            .iter()
            .any(|(f, p)| p.username == "dave" && f.note.as_deref() == Some("diagnosed in May")),
        "the note reaches the moderators"
    );
    let id_of = |name: &str| {
        pending
            .iter()
            .find(|(_, p)| p.username == name)
            .map(|(_, p)| p.id)
            .expect("request")
    };
    // Nobody is a member yet: the group's content is closed to all of them.
    assert_eq!(membership(&b, &alice, &handle).await, "pending");

    moderation::approve(&data, Who::Cli, &g, id_of("dave"))
        .await
        .expect("approve dave");
    moderation::approve(&data, Who::Cli, &g, id_of("alice"))
        .await
        .expect("approve alice");
    moderation::refuse(
        &data,
        Who::Cli,
        &g,
        id_of("carol"),
        Some("not a patient group member"),
    )
    .await
    .expect("refuse carol");
    // Approving again, refusing what is decided: clear errors, nothing changes.
    let again = moderation::approve(&data, Who::Cli, &g, id_of("alice")).await;
    assert_eq!(again.expect_err("twice").status(), StatusCode::CONFLICT);
    let again = moderation::refuse(&data, Who::Cli, &g, id_of("carol"), None).await;
    assert_eq!(again.expect_err("gone").status(), StatusCode::NOT_FOUND);

    eventually("alice accepted on B", || async {
        (membership(&b, &alice, &handle).await == "accepted").then_some(())
    })
    .await;
    eventually("carol refused on C", || async {
        membership(&c, &carol, &handle)
            .await
            .is_null()
            .then_some(())
    })
    .await;

    // dave posts; alice on B receives it; bob on B (same instance, not a
    // member), anonymous readers and carol do not.
    let (s, post) = a
        .post(
            "/api/v1/groups/rare/threads",
            &dave,
            json!({"title": "New treatment trial", "content": "Enrolment opens in March."}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{post}");
    let post_url = post["url"].as_str().expect("url").to_string();
    let on_b = eventually("the thread reaches B", || async {
        let (s, v) = b
            .get(&format!("/api/v1/groups/{handle}/threads"), Some(&alice))
            .await;
        (s == StatusCode::OK && v.as_array().is_some_and(|a| !a.is_empty())).then_some(v)
    })
    .await;
    assert_eq!(on_b[0]["title"], "New treatment trial");
    let b_post = on_b[0]["id"].as_i64().expect("id");
    for (who, token) in [("bob", Some(bob.as_str())), ("anonymous", None)] {
        let (s, _) = b
            .get(&format!("/api/v1/groups/{handle}/threads"), token)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{who} reads the threads on B");
        let (s, _) = b.get(&format!("/api/v1/posts/{b_post}"), token).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{who} reads the post on B");
        let (s, _) = a
            .get("/api/v1/groups/rare/threads", token.filter(|_| false))
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "anonymous reads the threads on A");
    }
    let (_, v) = b.get(&format!("/api/v1/groups/{handle}"), Some(&bob)).await;
    assert!(v["members"].is_null(), "no count for non-members: {v}");

    // A member on a third instance writes: the group passes it on whole
    // (it cannot be fetched from C by anyone but C's members), and alice on
    // B reads it.
    let cy = c.create_user("cy").await;
    let (s, v) = c
        .post(
            &format!("/api/v1/groups/{handle}/join"),
            &cy,
            json!({"note": "hi"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let cy_id = eventually("cy's request at A", || async {
        let p = db::moderation::pending_requests(a.db(), g.row.id)
            .await
            .ok()?;
        p.into_iter()
            .find(|(_, p)| p.username == "cy")
            .map(|(_, p)| p.id)
    })
    .await;
    moderation::approve(&data, Who::Cli, &g, cy_id)
        .await
        .expect("approve cy");
    eventually("cy accepted on C", || async {
        (membership(&c, &cy, &handle).await == "accepted").then_some(())
    })
    .await;
    let (s, v) = c
        .post(
            &format!("/api/v1/groups/{handle}/threads"),
            &cy,
            json!({"title": "From C", "content": "Hello from C"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    eventually("cy's thread reaches alice on B", || async {
        let (_, v) = b
            .get(&format!("/api/v1/groups/{handle}/threads"), Some(&alice))
            .await;
        v.as_array()?
            .iter()
            .any(|p| p["title"] == "From C")
            .then_some(())
    })
    .await;
    let (s, _) = c
        .get(&format!("/api/v1/groups/{handle}/threads"), Some(&carol))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "carol (refused) reads on C");

    // What left A: to members' own inboxes, never to Public or a shared inbox.
    let rows = crate::helpers::deliveries(a.db()).await;
    let carrying: Vec<_> = rows
        .iter()
        .filter(|d| d.payload.contains("New treatment trial"))
        .collect();
    assert!(!carrying.is_empty());
    for d in &carrying {
        assert!(
            !d.payload.contains("#Public"),
            "members-only post addressed to Public: {}",
            d.payload
        );
        assert!(
            d.inbox.contains("/users/alice/inbox"),
            "sent to {}",
            d.inbox
        );
        assert!(!d.inbox.contains(&c.domain), "sent to C");
    }

    // ActivityPub fetches: unsigned → private 404; a signed fetch by an
    // actor who is not a member (on an instance that has members, too) →
    // the same 404; by a member → the post.
    let followers = format!("{}/groups/rare/followers", a.base);
    for url in [
        &post_url,
        &followers,
        &format!("{}/groups/rare/outbox", a.base),
    ] {
        let (s, cc) = unsigned_get(url).await;
        assert_eq!((s, cc.as_str()), (404, "private"), "unsigned GET {url}");
    }
    let r = Remote::start().await;
    let rita = r.actor("Person", "rita", |_| {});
    let mallory = r.actor("Person", "mallory", |_| {});
    let inbox = format!("{}/groups/rare/inbox", a.base);
    let follow = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "type": "Follow", "id": r.id("/follows/1"), "actor": rita, "object": g.row.ap_id,
    });
    assert_eq!(r.post(&inbox, &rita, &follow, Sign::default()).await, 202);
    // An instance claiming a membership we never accepted cannot write.
    let sneaky = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "type": "Create", "id": r.id("/creates/1"), "actor": rita,
        "to": [g.row.followers], "cc": [g.row.ap_id],
        "object": {"type": "Note", "id": r.id("/notes/1"), "attributedTo": rita,
            "to": [g.row.followers], "cc": [g.row.ap_id], "audience": g.row.ap_id,
            "inReplyTo": post_url, "content": "I am a member, honest"},
    });
    assert_eq!(r.post(&inbox, &rita, &sneaky, Sign::default()).await, 403);
    assert_eq!(
        r.get_signed(&post_url, &rita).await,
        404,
        "pending is not a member"
    );
    moderation::approve(&data, Who::Cli, &g, actor_id(&a, &rita).await)
        .await
        .expect("approve rita");
    assert_eq!(
        r.get_signed(&post_url, &rita).await,
        200,
        "a member fetches"
    );
    assert_eq!(r.get_signed(&followers, &rita).await, 200);
    assert_eq!(
        r.get_signed(&post_url, &mallory).await,
        404,
        "same instance, not a member"
    );
    assert_eq!(r.get_signed(&followers, &mallory).await, 404);
    let before = db::posts::count_local(a.db()).await.expect("count");

    // A ban ends the membership: the former member's fetches and posts are
    // refused, and her server hears Reject.
    let rita_actor = DbActor::new(
        db::actors::by_ap_id(a.db(), &rita)
            .await
            .expect("db")
            .expect("rita"),
    )
    .expect("a");
    moderation::ban(&data, Who::Cli, &g, &rita_actor, Some("spam"))
        .await
        .expect("ban");
    let again = moderation::ban(&data, Who::Cli, &g, &rita_actor, None).await;
    assert_eq!(again.expect_err("twice").status(), StatusCode::CONFLICT);
    assert_eq!(r.get_signed(&post_url, &rita).await, 404, "a former member");
    let follow2 = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "type": "Follow", "id": r.id("/follows/2"), "actor": rita, "object": g.row.ap_id,
    });
    assert_eq!(r.post(&inbox, &rita, &follow2, Sign::default()).await, 202);
    eventually("Reject to rita", || async {
        r.posted()
            .iter()
            .filter(|p| p["type"] == "Reject")
            .count()
            .ge(&1)
            .then_some(())
    })
    .await;
    assert!(
        !r.posted()
            .iter()
            .any(|p| p["type"] == "Accept" && p["object"]["id"] == r.id("/follows/2"))
    );
    assert_eq!(
        db::posts::count_local(a.db()).await.expect("count"),
        before,
        "nothing stored"
    );

    // Banning an admin is refused, and nothing is written.
    let admin = kindred::service::users::create_user(&a.app().state, "root", "correct horse", true)
        .await
        .expect("admin");
    let admin = DbActor::new(admin.actor).expect("a");
    let err = moderation::ban(&data, Who::Cli, &g, &admin, None)
        .await
        .expect_err("admin");
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    assert!(
        !db::moderation::is_banned(a.db(), g.row.id, admin.row.id)
            .await
            .expect("db")
    );

    // Web pages: the thread is a 404 to anonymous readers and non-members
    // (signed in), the group page shows no threads to them.
    let web = reqwest::Client::new();
    let post_id = post["id"].as_i64().expect("id");
    let res = web
        .get(format!("{}/t/{post_id}", a.base))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let page = web
        .get(format!("{}/g/rare", a.base))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert!(
        !page.contains("New treatment trial"),
        "thread title on the public page"
    );
    assert!(
        page.contains("Only this group&#39;s members can read its threads")
            || page.contains("Only this group's members can read its threads"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_only_group_never_federates() {
    let a = TestInstance::spawn(Backend::Sqlite).await;
    let data = a.data();
    a.create_group("here", "Only here").await;
    let g = group(&a, "here").await;
    moderation::update_settings(
        &data,
        Who::Cli,
        &g,
        moderation::SettingsChange {
            visibility: Some("local"),
            join_policy: None,
            member_count_hidden: Some(true),
            premoderation: None,
            default_content_warning: None,
        },
    )
    .await
    .expect("settings");
    let g = group(&a, "here").await;
    let r = Remote::start().await;
    // Not fetchable, not even its actor; a remote Follow gets Reject.
    assert_eq!(
        r.get_signed(&g.row.ap_id, &r.actor("Person", "x", |_| {}))
            .await,
        404
    );
    let rob = r.actor("Person", "rob", |_| {});
    let follow = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "type": "Follow", "id": r.id("/follows/9"), "actor": rob, "object": g.row.ap_id,
    });
    assert_eq!(
        r.post(&g.row.inbox, &rob, &follow, Sign::default()).await,
        202
    );
    eventually("Reject to rob", || async {
        r.posted()
            .iter()
            .any(|p| p["type"] == "Reject")
            .then_some(())
    })
    .await;
    assert_eq!(
        db::follows::count_members(a.db(), g.row.id)
            .await
            .expect("db"),
        0
    );
    // A local member posts: nothing is queued for anyone.
    let eve = a.create_user("eve").await;
    let (s, v) = a.post("/api/v1/groups/here/join", &eve, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = a
        .post(
            "/api/v1/groups/here/threads",
            &eve,
            json!({"title": "Hi", "content": "local only"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let rows = crate::helpers::deliveries(a.db()).await;
    assert!(
        !rows.iter().any(|d| d.payload.contains("local only")),
        "a local-only post was queued"
    );
    // Signed-in people here read it; anonymous readers do not even see it.
    let (s, _) = a.get("/api/v1/groups/here/threads", Some(&eve)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = a.get("/api/v1/groups/here", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, list) = a.get("/api/v1/groups", None).await;
    assert!(
        !list.to_string().contains("Only here"),
        "listed to anonymous: {list}"
    );
    let page = reqwest::get(format!("{}/directory", a.base))
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert!(
        !page.contains("Only here"),
        "listed on the public directory page"
    );
    let res = reqwest::get(format!("{}/g/here", a.base))
        .await
        .expect("get");
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "the page of a local-only group to anonymous"
    );
    let (_, v) = a.get("/api/v1/groups/here", Some(&eve)).await;
    assert!(v["members"].is_null(), "the count is hidden: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_and_the_cli() {
    let a = TestInstance::spawn(Backend::Sqlite).await;
    let data = a.data();
    a.create_group("inv", "By invitation").await;
    let g = group(&a, "inv").await;
    let change = |v: Option<&'static str>, j: Option<&'static str>| moderation::SettingsChange {
        visibility: v,
        join_policy: j,
        member_count_hidden: None,
        premoderation: None,
        default_content_warning: None,
    };
    let bad = moderation::update_settings(&data, Who::Cli, &g, change(Some("secret"), None)).await;
    let bad = bad.expect_err("bad name");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(
        bad.to_string().contains("public, members or local"),
        "{bad}"
    );
    moderation::update_settings(&data, Who::Cli, &g, change(None, Some("invite")))
        .await
        .expect("ok");
    let g = group(&a, "inv").await;
    let fay = a.create_user("fay").await;
    let (s, v) = a.post("/api/v1/groups/inv/join", &fay, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v.to_string().contains("invitation"), "{v}");
    let token = moderation::invite(&data, Who::Cli, &g, None)
        .await
        .expect("link")
        .expect("token");
    let (s, v) = a
        .post("/api/v1/groups/inv/join", &fay, json!({"invite": token}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let gus = a.create_user("gus").await;
    let (s, v) = a
        .post("/api/v1/groups/inv/join", &gus, json!({"invite": token}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a used link: {v}");
    // A moderator acting on a group they do not moderate: 403.
    let fay_user = kindred::service::users::authenticate(&a.app().state, &fay)
        .await
        .expect("fay");
    let err = moderation::ban(
        &data,
        Who::User(&fay_user),
        &g,
        &DbActor::new(fay_user.actor.clone()).expect("a"),
        None,
    )
    .await;
    assert_eq!(err.expect_err("not staff").status(), StatusCode::FORBIDDEN);
}

#[test]
fn the_cli_creates_and_updates_private_groups() {
    let dir = tempfile::tempdir().expect("dir");
    let db = format!("sqlite://{}/k.db?mode=rwc", dir.path().display());
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kindred"))
            .args(args)
            .env("KINDRED_DATABASE_URL", &db)
            .env("KINDRED_DOMAIN", "localhost:9")
            .env("KINDRED_DEV_MODE", "true")
            .env("RUST_LOG", "error")
            .output()
            .expect("runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, out, err) = run(&[
        "group",
        "create",
        "pots",
        "--title",
        "POTS",
        "--visibility",
        "members",
        "--join",
        "approval",
    ]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("Members only") && out.contains("By approval"),
        "{out}"
    );
    // A bad name fails before anything is written: the name stays free.
    let (ok, _, err) = run(&[
        "group",
        "create",
        "eds",
        "--title",
        "EDS",
        "--visibility",
        "secret",
    ]);
    assert!(!ok && err.contains("public, members or local"), "{err}");
    let (ok, out, err) = run(&["group", "create", "eds", "--title", "EDS"]);
    assert!(ok, "the name was taken by a failed create: {out}{err}");
    let (ok, out, err) = run(&[
        "group",
        "update",
        "pots",
        "--visibility",
        "local",
        "--join",
        "invite",
        "--hide-member-count",
        "true",
        "--premoderation",
        "true",
    ]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("This instance only")
            && out.contains("invitation")
            && out.contains("hidden")
            && out.contains("pre-moderation on"),
        "{out}"
    );
    let (ok, _, err) = run(&["group", "update", "pots", "--join", "lottery"]);
    assert!(!ok && err.contains("open, approval or invite"), "{err}");
    let (ok, _, err) = run(&["group", "update", "nope", "--join", "open"]);
    assert!(!ok && err.contains("nope"), "{err}");
}
