//! The core scenario across three real instances: a group on A, members on B
//! and C (and on A itself) join, post, reply, edit, delete and leave.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestInstance, backends, eventually, titles};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_join_post_reply_edit_delete_leave() {
    for backend in backends() {
        scenario(backend).await;
    }
}

async fn threads(i: &TestInstance, group: &str) -> Value {
    let (s, v) = i
        .get(&format!("/api/v1/groups/{group}/threads"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn replies(i: &TestInstance, post: i64) -> Value {
    let (s, v) = i.get(&format!("/api/v1/posts/{post}/replies"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

fn find_by_title(list: &Value, title: &str) -> Option<Value> {
    list.as_array()?
        .iter()
        .find(|p| p["title"] == title)
        .cloned()
}

async fn join_remote(i: &TestInstance, token: &str, group: &str) {
    let (s, v) = i.get(&format!("/api/v1/groups/{group}"), Some(token)).await;
    assert_eq!(s, StatusCode::OK, "lookup {group}: {v}");
    assert_eq!(v["local"], false);
    assert_eq!(v["title"], "Multiple sclerosis support");
    let (s, v) = i
        .post(&format!("/api/v1/groups/{group}/join"), token, json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["membership"], "pending");
    eventually("the group's Accept", || async {
        let (_, v) = i.get(&format!("/api/v1/groups/{group}"), Some(token)).await;
        (v["membership"] == "accepted").then_some(())
    })
    .await;
}

async fn scenario(backend: Backend) {
    let a = TestInstance::spawn(backend).await;
    let b = TestInstance::spawn(backend).await;
    let c = TestInstance::spawn(backend).await;
    a.create_group("ms-support", "Multiple sclerosis support")
        .await;
    let dave = a.create_user("dave").await;
    let alice = b.create_user("alice").await;
    let carol = c.create_user("carol").await;
    let group = format!("ms-support@{}", a.domain);

    // Join: Follow → Accept, stored on both sides.
    join_remote(&b, &alice, &group).await;
    join_remote(&c, &carol, &group).await;
    let (s, v) = a
        .post("/api/v1/groups/ms-support/join", &dave, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["membership"], "accepted");
    let (_, v) = a.get("/api/v1/groups/ms-support", None).await;
    assert_eq!(v["members"], 3, "{v}");
    let (_, followers) = a.get("/groups/ms-support/followers", None).await;
    assert_eq!(followers["totalItems"], 3);
    assert_eq!(
        followers["orderedItems"],
        json!([]),
        "member list must not be exposed"
    );

    // A thread from B reaches A (the group) and, re-shared, C.
    let (s, thread) = b
        .post(
            &format!("/api/v1/groups/{group}/threads"),
            &alice,
            json!({"title": "Brain fog after relapses", "content": "Does anyone else <b>struggle</b>?"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{thread}");
    assert!(
        thread["content_html"]
            .as_str()
            .unwrap_or_default()
            .contains("&lt;b&gt;")
    );
    let on_a = eventually("thread on A", || async {
        find_by_title(&threads(&a, "ms-support").await, "Brain fog after relapses")
    })
    .await;
    assert_eq!(on_a["author"]["handle"], format!("alice@{}", b.domain));
    let on_c = eventually("thread on C", || async {
        find_by_title(&threads(&c, &group).await, "Brain fog after relapses")
    })
    .await;
    assert_eq!(on_c["url"], thread["url"], "same ActivityPub id everywhere");

    // A reply from C threads under it on A and on B.
    let c_thread_id = on_c["id"].as_i64().expect("id");
    let (s, reply) = c
        .post(
            &format!("/api/v1/posts/{c_thread_id}/replies"),
            &carol,
            json!({"content": "Yes, every time. Rest helps me."}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{reply}");
    let b_thread_id = thread["id"].as_i64().expect("id");
    let a_thread_id = on_a["id"].as_i64().expect("id");
    for (inst, tid) in [(&a, a_thread_id), (&b, b_thread_id)] {
        let r = eventually("reply arrives", || async {
            let r = replies(inst, tid).await;
            (r.as_array().map(Vec::len) == Some(1)).then_some(r)
        })
        .await;
        assert!(
            r[0]["content_html"]
                .as_str()
                .unwrap_or_default()
                .contains("Rest helps me")
        );
        assert_eq!(r[0]["author"]["handle"], format!("carol@{}", c.domain));
        assert_eq!(r[0]["url"], reply["url"]);
    }

    // A local member of A posts in the group: B and C get it.
    let (s, _) = a
        .post(
            "/api/v1/groups/ms-support/threads",
            &dave,
            json!({"title": "Welcome, everyone", "content": "Introduce yourselves here."}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    for inst in [&b, &c] {
        eventually("A's local thread reaches members", || async {
            find_by_title(&threads(inst, &group).await, "Welcome, everyone")
        })
        .await;
    }

    // The author edits: everyone sees the new text.
    let (s, v) = b
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/posts/{b_thread_id}"),
            Some(&alice),
            Some(json!({"title": "Brain fog after relapses (edited)", "content": "Edited: any tips?"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for (inst, g) in [(&a, "ms-support".to_string()), (&c, group.clone())] {
        eventually("edit propagates", || async {
            let t = find_by_title(
                &threads(inst, &g).await,
                "Brain fog after relapses (edited)",
            )?;
            t["content_html"]
                .as_str()?
                .contains("any tips")
                .then_some(())
        })
        .await;
    }

    // The reply's author deletes it: gone on A and B.
    let c_reply_id = reply["id"].as_i64().expect("id");
    let (s, _) = c
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/posts/{c_reply_id}"),
            Some(&carol),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    for (inst, tid) in [(&a, a_thread_id), (&b, b_thread_id)] {
        eventually("delete propagates", || async {
            (replies(inst, tid).await == json!([])).then_some(())
        })
        .await;
    }
    let (s, _) = c.get(&format!("/api/v1/posts/{c_reply_id}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Its ActivityPub URL answers 410 Gone.
    let res = reqwest::get(reply["url"].as_str().expect("url"))
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::GONE);

    // C leaves: A forgets the membership and sends C nothing more.
    let (s, _) = c
        .post(&format!("/api/v1/groups/{group}/leave"), &carol, json!({}))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    eventually("A sees C leave", || async {
        let (_, v) = a.get("/api/v1/groups/ms-support", None).await;
        (v["members"] == 2).then_some(())
    })
    .await;
    let (s, _) = b
        .post(
            &format!("/api/v1/groups/{group}/threads"),
            &alice,
            json!({"title": "After carol left", "content": "Only for current members."}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    eventually("A gets the new thread", || async {
        find_by_title(&threads(&a, "ms-support").await, "After carol left")
    })
    .await;
    // Every delivery A queued after the leave is for B only.
    let rows: Vec<_> = crate::helpers::deliveries(a.db())
        .await
        .into_iter()
        .filter(|d| d.payload.contains("After carol left"))
        .collect();
    assert!(!rows.is_empty(), "A announced the new thread");
    assert!(
        rows.iter().all(|d| !d.inbox.contains(&c.domain)),
        "nothing goes to C after it left: {:?}",
        rows.iter().map(|d| &d.inbox).collect::<Vec<_>>()
    );
    assert!(rows.iter().any(|d| d.inbox.contains(&b.domain)));
    assert!(!titles(&threads(&c, &group).await).contains(&"After carol left".to_string()));

    // One signed request per member server: A's Announce of each thread went
    // once to each instance's shared inbox.
    let rows: Vec<_> = crate::helpers::deliveries(a.db())
        .await
        .into_iter()
        .filter(|d| d.payload.contains("Welcome, everyone") && d.payload.contains("\"Announce\""))
        .collect();
    let mut inboxes: Vec<&str> = rows.iter().map(|d| d.inbox.as_str()).collect();
    inboxes.sort();
    let b_inbox = format!("{}/inbox", b.base);
    let c_inbox = format!("{}/inbox", c.base);
    let mut expected = vec![b_inbox.as_str(), c_inbox.as_str()];
    expected.sort();
    assert_eq!(inboxes, expected);
}

/// A join left pending (its Follow lost or refused) is retried by joining
/// again: a fresh Follow goes out, and the group's Accept completes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_again_while_pending_sends_a_fresh_follow() {
    let a = TestInstance::spawn(Backend::Sqlite).await;
    let b = TestInstance::spawn(Backend::Sqlite).await;
    a.create_group("ms-support", "Multiple sclerosis support")
        .await;
    let alice = b.create_user("alice").await;
    let group = format!("ms-support@{}", a.domain);
    join_remote(&b, &alice, &group).await;

    // Pretend the Accept never came.
    use kindred::{db, domain::FollowState};
    let me = db::users::by_username(b.db(), "alice")
        .await
        .expect("db")
        .expect("alice");
    let g = db::actors::remote_by_handle(
        b.db(),
        "ms-support",
        &a.domain,
        kindred::domain::ActorKind::Group,
    )
    .await
    .expect("db")
    .expect("group");
    let f = db::follows::get(b.db(), me.1.id, g.id)
        .await
        .expect("db")
        .expect("follow");
    db::follows::set_state(b.db(), f.id, FollowState::Pending)
        .await
        .expect("db");

    let (s, v) = b
        .post(&format!("/api/v1/groups/{group}/join"), &alice, json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let follows: Vec<_> = crate::helpers::deliveries(b.db())
        .await
        .into_iter()
        .filter(|d| d.payload.contains("\"Follow\"") && !d.payload.contains("Accept"))
        .collect();
    assert_eq!(follows.len(), 2, "a second Follow was queued");
    assert_ne!(follows[0].activity_ap_id, follows[1].activity_ap_id);
    eventually("accepted again", || async {
        let (_, v) = b
            .get(&format!("/api/v1/groups/{group}"), Some(&alice))
            .await;
        (v["membership"] == "accepted").then_some(())
    })
    .await;
}

/// A new thread is boosted once per member server, in the form that server
/// reads (by its NodeInfo): Lemmy gets `Announce(Create(Page))`, Mastodon the
/// `Announce` of the post, a server we know nothing about both. Every boost
/// is a signed request; a fan-out pays one per server, not two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_member_server_gets_the_boost_form_it_reads() {
    use crate::remote::{Doc, Remote, Sign};
    let a = TestInstance::spawn(Backend::Sqlite).await;
    a.create_group("mg", "MG").await;
    let dave = a.create_user("dave").await;
    let (s, _) = a.post("/api/v1/groups/mg/join", &dave, json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let group = format!("{}/groups/mg", a.base);
    let servers = [
        (Remote::start().await, Some("lemmy")),
        (Remote::start().await, Some("mastodon")),
        (Remote::start().await, None),
    ];
    for (i, (r, software)) in servers.iter().enumerate() {
        r.put("/inbox", Doc::Raw(202, "text/plain", String::new()));
        if let Some(name) = software {
            r.put(
                "/.well-known/nodeinfo",
                Doc::ap(&json!({"links": [{
                    "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                    "href": r.id("/nodeinfo/2.1"),
                }]})),
            );
            r.put(
                "/nodeinfo/2.1",
                Doc::ap(&json!({"version": "2.1", "software": {"name": name, "version": "1"}})),
            );
        }
        let who = r.actor("Person", "m", |_| {});
        let follow = json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": r.id(&format!("/follows/{i}")),
            "type": "Follow",
            "actor": who,
            "object": group,
        });
        let status = r
            .post(&format!("{group}/inbox"), &who, &follow, Sign::default())
            .await;
        assert_eq!(status, 202);
    }
    // NodeInfo is read in the background after first contact.
    eventually("NodeInfo read", || async {
        let domains = servers.iter().map(|(r, _)| r.domain.clone()).collect();
        let known = kindred::db::instances::by_domains(a.db(), domains)
            .await
            .ok()?;
        (known.len() == 3 && known.values().all(|i| i.nodeinfo_at.is_some())).then_some(())
    })
    .await;

    let (s, post) = a
        .post(
            "/api/v1/groups/mg/threads",
            &dave,
            json!({"title": "Hello all", "content": "A first thread."}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{post}");
    let announces = |r: &Remote| -> Vec<Value> {
        r.posted()
            .into_iter()
            .filter(|v| v["type"] == "Announce")
            .collect()
    };
    for (r, _) in &servers {
        eventually("the boosts arrive", || async {
            let got = announces(r);
            (!got.is_empty()).then_some(())
        })
        .await;
    }
    // Everything queued is out.
    eventually("queue drained", || async {
        let rows = kindred::db::deliveries::list(a.db(), None, 100)
            .await
            .ok()?;
        rows.iter().all(|d| d.status == "delivered").then_some(())
    })
    .await;
    let form = |v: &Value| -> String {
        if v["object"].is_string() {
            "object".into()
        } else {
            v["object"]["type"].as_str().unwrap_or("?").into()
        }
    };
    let forms = |r: &Remote| {
        let mut f: Vec<String> = announces(r).iter().map(form).collect();
        f.sort_unstable();
        f
    };
    assert_eq!(forms(&servers[0].0), vec!["Create"], "Lemmy");
    assert_eq!(forms(&servers[1].0), vec!["object"], "Mastodon");
    assert_eq!(forms(&servers[2].0), vec!["Create", "object"], "unknown");
    for (r, _) in &servers {
        for b in announces(r).iter().filter(|v| v["object"].is_string()) {
            let object = b["object"].as_str().unwrap_or_default();
            assert!(
                object.starts_with(&format!("{}/posts/", a.base)),
                "the boost names the post by id: {b}"
            );
        }
    }
}
