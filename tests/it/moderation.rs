//! Moderation and members' rights across three real instances: a group on A
//! with a moderator, members on B and C. Removing a post (federated),
//! locking a thread, holding first posts, content-warning defaults, reports
//! (local, remote Flag, forwarded), the moderation log; a member's archive
//! and account deletion (Delete reaches every instance; the handle stays
//! taken). Each bad request gets a clear error and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestInstance, backends, eventually},
    remote::{Remote, Sign},
};
use kindred::{db, domain::GroupRole};

async fn threads(i: &TestInstance, group: &str, token: Option<&str>) -> Value {
    let (s, v) = i
        .get(&format!("/api/v1/groups/{group}/threads"), token)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

fn titled(list: &Value, title: &str) -> Option<Value> {
    list.as_array()?
        .iter()
        .find(|p| p["title"] == title)
        .cloned()
}

async fn join(i: &TestInstance, token: &str, group: &str) {
    let (s, v) = i
        .post(&format!("/api/v1/groups/{group}/join"), token, json!({}))
        .await;
    assert!(s.is_success(), "{v}");
    eventually("membership accepted", || async {
        let (_, v) = i.get(&format!("/api/v1/groups/{group}"), Some(token)).await;
        (v["membership"] == "accepted").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderators_remove_lock_hold_and_handle_reports_across_instances() {
    for backend in backends() {
        moderation(backend).await;
    }
}

async fn moderation(backend: Backend) {
    let a = TestInstance::spawn(backend).await;
    let b = TestInstance::spawn(backend).await;
    let c = TestInstance::spawn(backend).await;
    a.create_group("lupus", "Lupus").await;
    a.create_group("other", "Another group").await;
    let mo = a.create_user("mo").await;
    let dave = a.create_user("dave").await;
    let alice = b.create_user("alice").await;
    let carol = c.create_user("carol").await;
    let group = db::actors::local_by_name(a.db(), "lupus")
        .await
        .expect("db")
        .expect("g");
    let other = db::actors::local_by_name(a.db(), "other")
        .await
        .expect("db")
        .expect("g");
    let mo_id = db::actors::local_by_name(a.db(), "mo")
        .await
        .expect("db")
        .expect("mo")
        .id;
    db::roles::set(a.db(), group.id, mo_id, GroupRole::Moderator)
        .await
        .expect("role");
    let handle = format!("lupus@{}", a.domain);
    join(&a, &mo, "lupus").await;
    join(&a, &dave, "lupus").await;
    join(&b, &alice, &handle).await;
    join(&c, &carol, &handle).await;

    // The group names its moderators (FEP-1b12 / Lemmy: attributedTo).
    let (s, actor) = a.get("/groups/lupus", None).await;
    assert_eq!(s, StatusCode::OK);
    let mods_url = format!("{}/groups/lupus/moderators", a.base);
    assert_eq!(actor["attributedTo"], mods_url.as_str(), "{actor}");
    let (s, mods) = a.get("/groups/lupus/moderators", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        mods["orderedItems"],
        json!([format!("{}/users/mo", a.base)]),
        "{mods}"
    );

    // Group settings through the API: only its moderators; bad names refused.
    let (s, v) = a
        .call(
            Method::PATCH,
            "/api/v1/groups/lupus/settings",
            Some(&dave),
            Some(json!({"premoderation": true})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = a
        .call(
            Method::PATCH,
            "/api/v1/groups/lupus/settings",
            Some(&mo),
            Some(json!({"join_policy": "sometimes"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = a
        .call(
            Method::PATCH,
            "/api/v1/groups/lupus/settings",
            Some(&mo),
            Some(json!({"default_content_warning": "Medication details"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["default_content_warning"], "Medication details");

    // Alice (B) posts; everyone has it; the group's default CW applies to a
    // local thread written without one.
    let (s, t) = b
        .post(
            &format!("/api/v1/groups/{handle}/threads"),
            &alice,
            json!({"title": "Buy my miracle cure", "content": "cheap pills"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let on_a = eventually("thread on A", || async {
        titled(&threads(&a, "lupus", None).await, "Buy my miracle cure")
    })
    .await;
    eventually("thread on C", || async {
        titled(&threads(&c, &handle, None).await, "Buy my miracle cure")
    })
    .await;
    let (s, d) = a
        .post(
            "/api/v1/groups/lupus/threads",
            &dave,
            json!({"title": "Dose changes", "content": "My rheumatologist..."}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    assert_eq!(d["content_warning"], "Medication details", "{d}");

    // Removing: not by members, not by a moderator of another group; by mo
    // once (then 409); the removal reaches B (the author's server) and C.
    let a_id = on_a["id"].as_i64().expect("id");
    let remove = |token: String| {
        let a = &a;
        async move {
            a.post(
                &format!("/api/v1/posts/{a_id}/remove"),
                &token,
                json!({"reason": "spam"}),
            )
            .await
        }
    };
    assert_eq!(remove(dave.clone()).await.0, StatusCode::FORBIDDEN);
    let other_mod = a.create_user("om").await;
    let om_id = db::actors::local_by_name(a.db(), "om")
        .await
        .expect("db")
        .expect("om")
        .id;
    db::roles::set(a.db(), other.id, om_id, GroupRole::Moderator)
        .await
        .expect("role");
    assert_eq!(
        remove(other_mod.clone()).await.0,
        StatusCode::FORBIDDEN,
        "moderator of another group"
    );
    assert_eq!(remove(mo.clone()).await.0, StatusCode::NO_CONTENT);
    let (s, v) = remove(mo.clone()).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v.to_string().contains("already removed"), "{v}");
    for (inst, g) in [
        (&b, handle.clone()),
        (&c, handle.clone()),
        (&a, "lupus".to_string()),
    ] {
        eventually("removal propagates", || async {
            titled(&threads(inst, &g, None).await, "Buy my miracle cure")
                .is_none()
                .then_some(())
        })
        .await;
    }

    // Locking: replies refused locally and from C; unlocking twice is 409.
    let dave_thread = d["id"].as_i64().expect("id");
    let (s, _) = a
        .post(&format!("/api/v1/posts/{dave_thread}/lock"), &mo, json!({}))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = a
        .post(
            &format!("/api/v1/posts/{dave_thread}/replies"),
            &dave,
            json!({"content": "me too"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v.to_string().contains("locked"), "{v}");
    let on_c = eventually("dave's thread on C", || async {
        titled(&threads(&c, &handle, None).await, "Dose changes")
    })
    .await;
    let (s, _) = c
        .post(
            &format!("/api/v1/posts/{}/replies", on_c["id"]),
            &carol,
            json!({"content": "locked out?"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "C stores its own copy");
    eventually("A refuses the reply (403, final)", || async {
        let rows = crate::helpers::deliveries(c.db()).await;
        rows.iter()
            .find(|r| r.payload.contains("locked out?") && r.inbox.contains(&a.domain))
            .filter(|r| r.status == "failed")
            .map(|_| ())
    })
    .await;
    let (_, replies) = a
        .get(&format!("/api/v1/posts/{dave_thread}/replies"), None)
        .await;
    assert_eq!(replies, json!([]), "nothing stored in a locked thread");
    let (s, _) = a
        .post(
            &format!("/api/v1/posts/{dave_thread}/unlock"),
            &mo,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = a
        .post(
            &format!("/api/v1/posts/{dave_thread}/unlock"),
            &mo,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // Pre-moderation: a new member's first thread is held (not listed, not
    // sent) until approved; then it is shown and reaches C.
    let (s, _) = a
        .call(
            Method::PATCH,
            "/api/v1/groups/lupus/settings",
            Some(&mo),
            Some(json!({"premoderation": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let newbie = a.create_user("newbie").await;
    join(&a, &newbie, "lupus").await;
    let (s, held) = a
        .post(
            "/api/v1/groups/lupus/threads",
            &newbie,
            json!({"title": "Hello from a newbie", "content": "first post", "content_warning": ""}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{held}");
    assert!(
        titled(&threads(&a, "lupus", None).await, "Hello from a newbie").is_none(),
        "held post listed"
    );
    let rows = crate::helpers::deliveries(a.db()).await;
    assert!(
        !rows.iter().any(|r| r.payload.contains("first post")),
        "held post sent"
    );
    let held_id = held["id"].as_i64().expect("id");
    let (s, _) = a
        .get(&format!("/api/v1/posts/{held_id}"), Some(&newbie))
        .await;
    assert_eq!(s, StatusCode::OK, "the author sees their held post");
    let (s, _) = a
        .get(&format!("/api/v1/posts/{held_id}"), Some(&dave))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "others do not");
    let (s, _) = a
        .post(&format!("/api/v1/posts/{held_id}/approve"), &mo, json!({}))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = a
        .post(&format!("/api/v1/posts/{held_id}/approve"), &mo, json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    eventually("approved post reaches C", || async {
        titled(&threads(&c, &handle, None).await, "Hello from a newbie")
    })
    .await;

    // Reports: dave reports a post; mo sees it and resolves it once. A
    // remote Flag lands in the same queue. Members cannot list reports.
    let (s, r) = a
        .post(
            "/api/v1/reports",
            &dave,
            json!({"post_id": held_id, "comment": "looks like an ad"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let (s, _) = a.get("/api/v1/reports", Some(&dave)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let remote = Remote::start().await;
    let reporter = remote.actor("Application", "instance", |_| {});
    let post_url = format!("{}/posts/{held_id}", a.base);
    let flag = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "type": "Flag", "id": remote.id("/flags/1"), "actor": reporter,
        "object": [format!("{}/users/newbie", a.base), post_url, "https://elsewhere.example/x"],
        "content": "Spam from your instance",
    });
    assert_eq!(
        remote
            .post(&a.shared_inbox(), &reporter, &flag, Sign::default())
            .await,
        202
    );
    assert_eq!(
        remote
            .post(&a.shared_inbox(), &reporter, &flag, Sign::default())
            .await,
        202,
        "a repeat is absorbed"
    );
    let (s, list) = a.get("/api/v1/reports", Some(&mo)).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let list = list.as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(
        list.iter()
            .any(|r| r["remote"] == true && r["comment"] == "Spam from your instance")
    );
    let local = list
        .iter()
        .find(|r| r["remote"] == false)
        .expect("local report");
    assert_eq!(local["comment"], "looks like an ad");
    let rid = local["id"].as_i64().expect("id");
    let close = json!({"outcome": "resolved", "resolution": "warned the member"});
    let (s, _) = a
        .post(&format!("/api/v1/reports/{rid}/close"), &mo, close.clone())
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = a
        .post(&format!("/api/v1/reports/{rid}/close"), &mo, close)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = a
        .post(&format!("/api/v1/reports/{rid}/forward"), &mo, json!({}))
        .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "a local member's report is not forwarded"
    );

    // A report about a remote member, forwarded to their instance as Flag.
    let (s, r) = c
        .post(
            "/api/v1/reports",
            &carol,
            json!({"account": format!("alice@{}", b.domain), "comment": "harassing me"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let c_admin_token = c.create_admin("cadmin").await;
    let rid = r["id"].as_i64().expect("id");
    let (s, v) = c
        .post(
            &format!("/api/v1/reports/{rid}/forward"),
            &c_admin_token,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let b_admin_token = b.create_admin("badmin").await;
    let on_b = eventually("the forwarded report reaches B", || async {
        let (_, v) = b.get("/api/v1/reports", Some(&b_admin_token)).await;
        v.as_array().and_then(|a| a.first().cloned())
    })
    .await;
    assert_eq!(on_b["comment"], "harassing me");
    assert_eq!(on_b["target"]["handle"], format!("alice@{}", b.domain));
    assert_eq!(on_b["remote"], true);
    assert!(
        on_b["reporter"]["handle"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&c.domain),
        "reported by C's instance, not by carol: {on_b}"
    );

    // A remote actor moderating our group (Lemmy's Remove, Lock, Block from
    // a community): 403, nothing changes.
    let intruder = remote.actor("Person", "intruder", |_| {});
    let group_url = format!("{}/groups/lupus", a.base);
    let dave_post = format!("{}/posts/{dave_thread}", a.base);
    for (i, (kind, object, target)) in [
        ("Remove", dave_post.clone(), format!("{group_url}/outbox")),
        ("Lock", dave_post.clone(), String::new()),
        ("Block", format!("{}/users/dave", a.base), group_url.clone()),
        (
            "Add",
            format!("{}/users/intruder", remote.base),
            format!("{group_url}/moderators"),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut act = json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "type": kind, "id": remote.id(&format!("/mod/{i}")), "actor": intruder, "object": object,
        });
        if !target.is_empty() {
            act["target"] = json!(target);
        }
        assert_eq!(
            remote
                .post(&a.shared_inbox(), &intruder, &act, Sign::default())
                .await,
            403,
            "{kind}"
        );
    }
    let (s, _) = a.get(&format!("/api/v1/posts/{dave_thread}"), None).await;
    assert_eq!(s, StatusCode::OK, "the post is intact");

    // The moderation log lists what was done, for moderators only.
    let (s, log) = a
        .get("/api/v1/groups/lupus/moderation-log", Some(&mo))
        .await;
    assert_eq!(s, StatusCode::OK);
    let actions: Vec<&str> = log
        .as_array()
        .expect("log")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for want in [
        "post.remove",
        "thread.lock",
        "thread.unlock",
        "post.approve",
        "report.resolved",
        "group.settings",
    ] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
    let (s, _) = a
        .get("/api/v1/groups/lupus/moderation-log", Some(&dave))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_downloads_their_data_and_deletes_their_account() {
    let backend = Backend::Sqlite;
    let a = TestInstance::spawn(backend).await;
    let b = TestInstance::spawn(backend).await;
    let c = TestInstance::spawn(backend).await;
    a.create_group("ibd", "Crohn's and colitis").await;
    let handle = format!("ibd@{}", a.domain);
    let alice = b.create_user("alice").await;
    let carol = c.create_user("carol").await;
    join(&b, &alice, &handle).await;
    join(&c, &carol, &handle).await;
    let (s, t) = b
        .post(
            &format!("/api/v1/groups/{handle}/threads"),
            &alice,
            json!({"title": "Flare diary", "content": "Day 3: better"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    for (inst, g) in [(&a, "ibd".to_string()), (&c, handle.clone())] {
        eventually("thread everywhere", || async {
            titled(&threads(inst, &g, None).await, "Flare diary")
        })
        .await;
    }

    // The archive: her actor, her post as a Create, her membership.
    let (s, archive) = b.get("/api/v1/me/export", Some(&alice)).await;
    assert_eq!(s, StatusCode::OK, "{archive}");
    assert_eq!(archive["actor"]["preferredUsername"], "alice");
    let items = archive["outbox"]["orderedItems"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["type"], "Create");
    assert!(
        items[0]["object"]["content"]
            .as_str()
            .unwrap_or_default()
            .contains("Day 3")
    );
    assert_eq!(
        archive["following"]["orderedItems"][0]["object"],
        format!("{}/groups/ibd", a.base)
    );
    assert_eq!(archive["following"]["orderedItems"][0]["state"], "accepted");
    let (s, _) = b.get("/api/v1/me/export", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Deleting needs the password; then a Delete reaches A (and through the
    // group, C): her posts and membership disappear there.
    let (s, v) = b
        .call(
            Method::DELETE,
            "/api/v1/me",
            Some(&alice),
            Some(json!({"password": "wrong"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = b
        .call(
            Method::DELETE,
            "/api/v1/me",
            Some(&alice),
            Some(json!({"password": "correct horse"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    for (inst, g) in [
        (&a, "ibd".to_string()),
        (&c, handle.clone()),
        (&b, handle.clone()),
    ] {
        eventually(
            &format!("her posts are gone at {}", inst.domain),
            || async {
                titled(&threads(inst, &g, None).await, "Flare diary")
                    .is_none()
                    .then_some(())
            },
        )
        .await;
    }
    let g = db::actors::local_by_name(a.db(), "ibd")
        .await
        .expect("db")
        .expect("g");
    eventually("her membership ends at A", || async {
        (db::follows::count_members(a.db(), g.id).await.ok()? == 1).then_some(())
    })
    .await;
    // She cannot sign in; her actor is a Tombstone; the name stays taken.
    let (s, _) = b
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "alice", "password": "correct horse"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let res = reqwest::Client::new()
        .get(format!("{}/users/alice", b.base))
        .header("accept", "application/activity+json")
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::GONE);
    let again =
        kindred::service::users::create_user(&b.app().state, "alice", "another password", false)
            .await;
    assert_eq!(
        again.err().map(|e| e.status()),
        Some(StatusCode::CONFLICT),
        "the handle was taken over"
    );
    let (s, _) = b
        .get(
            &format!("/.well-known/webfinger?resource=acct:alice@{}", b.domain),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
