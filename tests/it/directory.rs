//! The federated directory (issue 9), across real instances: a group on C is
//! found from A once A and C have met, with its conditions, codes and tags;
//! B finds it through A (a trusted instance, one hop); a blocked C drops out;
//! private and unlisted groups never appear anywhere. Links between groups:
//! request, accept, shown on both sides, a thread shared across, unlinked.
//! Hostile directories: foreign entries, malformed items, loops, oversize.

use kindred::{
    federation::directory,
    service::{
        directory::{AboutChange, set_about},
        federation::Who,
        groups::find_group,
        moderation::{SettingsChange, update_settings},
    },
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestInstance, backends, eventually},
    peer::Peer,
    remote::{Doc, Remote},
};

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Create `name` on `k`, about myasthenia gravis, with these settings.
async fn mg_group(k: &TestInstance, name: &str, visibility: &str, listed: bool) {
    k.create_group(name, &format!("MG {name}")).await;
    let data = k.data();
    let g = find_group(&data, name).await.expect("group");
    update_settings(
        &data,
        Who::Cli,
        &g,
        SettingsChange {
            visibility: Some(visibility),
            join_policy: None,
            member_count_hidden: None,
            premoderation: None,
            default_content_warning: None,
        },
    )
    .await
    .expect("settings");
    set_about(
        &data,
        Who::Cli,
        &g,
        &AboutChange {
            conditions: s(&["Myasthenia gravis"]),
            tags: s(&["mg", "rare_disease"]),
            codes: s(&["orpha:589", "icd10:g70.0"]),
            languages: s(&["en", "de"]),
            region: Some("de".into()),
            discoverable: listed,
        },
    )
    .await
    .expect("about");
}

async fn search(k: &TestInstance, token: Option<&str>, q: &str) -> Vec<Value> {
    let path = format!(
        "/api/v1/directory?q={}",
        url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
    );
    let (st, v) = k.get(&path, token).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v.as_array().cloned().unwrap_or_default()
}

fn handles(found: &[Value]) -> Vec<String> {
    found
        .iter()
        .filter_map(|e| e["handle"].as_str().map(String::from))
        .collect()
}

async fn refresh(k: &TestInstance, admin: &str) -> Value {
    let (st, v) = k
        .post("/api/v1/admin/directory/refresh", admin, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_found_across_instances_without_a_central_index() {
    for b in backends() {
        found_across_instances(b).await;
    }
}

async fn found_across_instances(backend: Backend) {
    let a = TestInstance::spawn(backend).await;
    let c = TestInstance::spawn(backend).await;
    // B trusts A: it asks A which instances publish groups (one hop).
    let a_domain = a.domain.clone();
    let b = TestInstance::spawn_with(backend, move |s| {
        s.directory.trusted_instances = vec![a_domain];
    })
    .await;
    let a_admin = a.create_admin("root").await;
    let b_admin = b.create_admin("root").await;
    let alice = a.create_user("alice").await;

    c.create_group("hello", "Hello from C").await;
    mg_group(&c, "mg_c", "public", true).await;
    mg_group(&c, "mg_secret", "members", true).await;
    mg_group(&c, "mg_local", "local", true).await;
    mg_group(&c, "mg_hidden", "public", false).await;
    let never = |hs: &[String]| {
        for h in hs {
            assert!(
                !h.starts_with("mg_secret@")
                    && !h.starts_with("mg_local@")
                    && !h.starts_with("mg_hidden@"),
                "a private or unlisted group was listed: {h}"
            );
        }
    };

    // C publishes only its public, listed groups; NodeInfo and the instance
    // actor say where.
    let (_, info) = c.get("/nodeinfo/2.1", None).await;
    let dir_url = info["metadata"]["directory"]
        .as_str()
        .expect("directory link")
        .to_string();
    assert_eq!(dir_url, format!("{}/directory/groups", c.base));
    let (_, actor) = c.get("/actor", None).await;
    assert_eq!(actor["directory"], dir_url);
    let (st, page) = c.get("/directory/groups?page=1", None).await;
    assert_eq!(st, StatusCode::OK);
    let listed: Vec<&str> = page["orderedItems"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i.as_str())
        .collect();
    assert_eq!(
        listed,
        [
            format!("{}/groups/hello", c.base),
            format!("{}/groups/mg_c", c.base)
        ]
    );
    // C's own search, signed in or not, has the same rule.
    let c_user = c.create_user("carol").await;
    never(&handles(&search(&c, Some(&c_user), "myasthenia").await));
    assert_eq!(
        handles(&search(&c, None, "myasthenia").await),
        ["mg_c@".to_string() + &c.domain]
    );

    for token in [None, Some(c_user.as_str())] {
        let (_, list) = c.get("/api/v1/groups", token).await;
        let hs: Vec<String> = list
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|g| g["handle"].as_str().map(String::from))
            .collect();
        never(&hs);
        assert!(hs.contains(&format!("mg_c@{}", c.domain)), "{hs:?}");
    }

    // The group's actor document carries what it is about.
    let (_, g) = c.get("/groups/mg_c", None).await;
    assert_eq!(g["conditions"], json!(["Myasthenia gravis"]));
    assert!(
        g["conditionCodes"]
            .as_array()
            .expect("codes")
            .contains(&json!({"system": "http://www.orpha.net", "code": "ORPHA:589"}))
    );
    assert_eq!(g["tag"][0]["type"], "Hashtag");
    assert_eq!(g["tag"][0]["name"], "#mg");
    assert_eq!(g["region"], "DE");

    // Before A and C meet, A knows nothing of C.
    let r = refresh(&a, &a_admin).await;
    assert_eq!(r["instances_read"], 0, "{r}");
    assert!(
        search(&a, Some(&alice), "myasthenia gravis")
            .await
            .is_empty()
    );

    // They meet: alice on A joins C's hello group.
    let hello = format!("hello@{}", c.domain);
    let (st, v) = a
        .post(&format!("/api/v1/groups/{hello}/join"), &alice, json!({}))
        .await;
    assert!(st.is_success(), "{v}");
    eventually("alice's membership accepted", || async {
        let (_, g) = a
            .get(&format!("/api/v1/groups/{hello}"), Some(&alice))
            .await;
        (g["membership"] == "accepted").then_some(())
    })
    .await;

    let r = refresh(&a, &a_admin).await;
    assert_eq!(r["instances_read"], 1, "{r}");
    assert_eq!(r["groups_listed"], 2, "{r}");

    // A search on A by condition finds C's group, with where it lives, how
    // big it is, and its codes and tags as C says them.
    let found = search(&a, Some(&alice), "myasthenia gravis").await;
    let hs = handles(&found);
    never(&hs);
    assert_eq!(hs, [format!("mg_c@{}", c.domain)], "{found:?}");
    let e = &found[0];
    assert_eq!(e["host"], c.domain);
    assert_eq!(e["local"], false);
    assert_eq!(e["members"], 0);
    assert_eq!(e["about"]["conditions"], json!(["Myasthenia gravis"]));
    assert_eq!(e["about"]["tags"], json!(["mg", "rare_disease"]));
    assert_eq!(e["about"]["languages"], json!(["en", "de"]));
    assert_eq!(e["about"]["region"], "DE");
    let codes = e["about"]["codes"].as_array().expect("codes").clone();
    assert!(
        codes.contains(&json!({"system": "orpha", "code": "ORPHA:589"})),
        "{codes:?}"
    );
    assert!(
        codes.contains(&json!({"system": "icd10", "code": "G70.0"})),
        "{codes:?}"
    );
    // …and by code, as people type it.
    for q in ["ORPHA:589", "orpha:589", "G70.0", "icd10:G70.0"] {
        assert_eq!(
            handles(&search(&a, Some(&alice), q).await)[..1],
            [format!("mg_c@{}", c.domain)],
            "{q}"
        );
    }
    // Sizes travel too: alice is hello's one member.
    let found = search(&a, None, "hello").await;
    assert_eq!(found[0]["handle"], hello);
    assert_eq!(found[0]["members"], 1);
    // Joining from the directory is the usual join, in one request.
    let (st, v) = a
        .post(
            &format!("/api/v1/groups/mg_c@{}/join", c.domain),
            &alice,
            json!({}),
        )
        .await;
    assert!(st.is_success(), "{v}");

    // B has never met C, but trusts A: one hop finds C's groups.
    assert!(search(&b, None, "myasthenia").await.is_empty());
    let r = refresh(&b, &b_admin).await;
    assert!(r["instances_read"].as_u64() >= Some(2), "A and C read: {r}");
    let hs = handles(&search(&b, None, "myasthenia gravis").await);
    assert_eq!(hs, [format!("mg_c@{}", c.domain)]);

    // A blocks C: C's groups are gone from A's search at once, and from
    // what A remembers at the next round.
    let (st, v) = a
        .post(
            "/api/v1/admin/federation/block",
            &a_admin,
            json!({"domain": c.domain, "reason": "test"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert!(
        search(&a, Some(&alice), "myasthenia gravis")
            .await
            .is_empty()
    );
    let r = refresh(&a, &a_admin).await;
    assert_eq!(r["groups_listed"], 0, "{r}");
    let (_, known) = a.get("/directory/instances", None).await;
    assert_eq!(known["items"], json!([]), "A no longer vouches for C");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_link_up_across_instances() {
    for b in backends() {
        link_up(b).await;
    }
}

async fn link_up(backend: Backend) {
    let a = TestInstance::spawn(backend).await;
    let c = TestInstance::spawn(backend).await;
    let ann = a.create_admin("ann").await;
    let cat = c.create_admin("cat").await;
    let carl = c.create_user("carl").await;
    let alice = a.create_user("alice").await;
    mg_group(&a, "mg_a", "public", true).await;
    mg_group(&c, "mg_c", "public", true).await;
    mg_group(&c, "mg_secret", "members", true).await;
    let mg_c = format!("mg_c@{}", c.domain);
    let mg_a = format!("mg_a@{}", a.domain);

    // Only public groups link.
    let (st, v) = a
        .post(
            "/api/v1/groups/mg_a/links",
            &ann,
            json!({"group": format!("mg_secret@{}", c.domain)}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    // Members cannot link their group; moderators and admins can.
    let (st, _) = a
        .post("/api/v1/groups/mg_a/links", &alice, json!({"group": mg_c}))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v) = a
        .post("/api/v1/groups/mg_a/links", &ann, json!({"group": mg_c}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["state"], "requested");
    let (st, _) = a
        .post("/api/v1/groups/mg_a/links", &ann, json!({"group": mg_c}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "asked twice");

    // C's moderators see the request; nobody else does, and only they decide.
    let pending = eventually("the request reaches C", || async {
        let (_, v) = c.get("/api/v1/groups/mg_c/links", Some(&cat)).await;
        v.as_array()
            .and_then(|l| l.first().cloned())
            .filter(|l| l["state"] == "pending")
    })
    .await;
    assert_eq!(pending["group"], mg_a);
    let (_, public) = c.get("/api/v1/groups/mg_c/links", None).await;
    assert_eq!(
        public,
        json!([]),
        "pending links are the moderators' business"
    );
    let id = pending["id"].as_i64().expect("id");
    let (st, _) = c
        .post(
            &format!("/api/v1/groups/mg_c/links/{id}/accept"),
            &carl,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v) = c
        .post(
            &format!("/api/v1/groups/mg_c/links/{id}/accept"),
            &cat,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");

    // Both sides show the link, to everyone, and in ActivityPub.
    eventually("A sees the link accepted", || async {
        let (_, v) = a.get("/api/v1/groups/mg_a/links", None).await;
        (v[0]["state"] == "accepted" && v[0]["group"] == mg_c).then_some(())
    })
    .await;
    let (_, v) = c.get("/api/v1/groups/mg_c/links", None).await;
    assert_eq!(v[0]["group"], mg_a);
    let (_, col) = c.get("/groups/mg_c/links", None).await;
    assert_eq!(
        col["orderedItems"],
        json!([format!("{}/groups/mg_a", a.base)])
    );
    let (_, g) = a.get("/groups/mg_a", None).await;
    assert_eq!(g["links"], format!("{}/groups/mg_a/links", a.base));

    // A member of both shares a thread of mg_a into mg_c.
    let (st, _) = a.post("/api/v1/groups/mg_a/join", &alice, json!({})).await;
    assert!(st.is_success());
    let (st, _) = a
        .post(&format!("/api/v1/groups/{mg_c}/join"), &alice, json!({}))
        .await;
    assert!(st.is_success());
    eventually("alice is in mg_c", || async {
        let (_, g) = a.get(&format!("/api/v1/groups/{mg_c}"), Some(&alice)).await;
        (g["membership"] == "accepted").then_some(())
    })
    .await;
    let (st, thread) = a
        .post(
            "/api/v1/groups/mg_a/threads",
            &alice,
            json!({"title": "Eye drops that helped", "content": "Pyridostigmine timing and ptosis."}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{thread}");
    let tid = thread["id"].as_i64().expect("id");
    let (st, shared) = a
        .post(
            &format!("/api/v1/posts/{tid}/share"),
            &alice,
            json!({"group": mg_c, "comment": "From our sister group"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{shared}");
    let copy = eventually("the shared thread reaches mg_c", || async {
        let (_, v) = c.get("/api/v1/groups/mg_c/threads", None).await;
        v.as_array().and_then(|a| {
            a.iter()
                .find(|p| p["title"] == "Eye drops that helped")
                .cloned()
        })
    })
    .await;
    let html = copy["content_html"].as_str().unwrap_or_default();
    assert!(html.contains("From our sister group"), "{html}");
    assert!(
        html.contains(thread["url"].as_str().unwrap_or("?")),
        "links back: {html}"
    );
    // Not into a group that is not linked.
    let (st, _) = a
        .post(
            &format!("/api/v1/posts/{tid}/share"),
            &alice,
            json!({"group": "mg_a"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Either side ends it; the other side forgets it too.
    let (st, _) = c
        .post(
            &format!("/api/v1/groups/mg_c/links/{id}/remove"),
            &cat,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    eventually("A forgets the link", || async {
        let (_, v) = a.get("/api/v1/groups/mg_a/links", Some(&ann)).await;
        (v == json!([])).then_some(())
    })
    .await;
    let (_, col) = c.get("/groups/mg_c/links", None).await;
    assert_eq!(col["orderedItems"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_directories_are_bounded_and_believed_no_further_than_the_groups_say() {
    let a = TestInstance::spawn(Backend::Sqlite).await;
    let r = Remote::start().await;
    let other = Remote::start().await;
    let nodeinfo = |remote: &Remote| {
        remote.put(
            "/.well-known/nodeinfo",
            Doc::ap(&json!({"links": [{
                "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                "href": remote.id("/nodeinfo/2.1"),
            }]})),
        );
        remote.put(
            "/nodeinfo/2.1",
            Doc::ap(
                &json!({"version": "2.1", "software": {"name": "x", "version": "1"},
                "metadata": {"directory": remote.id("/dir")}}),
            ),
        );
    };
    nodeinfo(&r);
    let good = r.actor("Group", "lupus", |d| {
        d["discoverable"] = json!(true);
        d["name"] = json!("Lupus friends");
        d["conditions"] = json!(["Lupus", "", "x".repeat(500)]);
        d["conditionCodes"] = json!([
            {"system": "http://www.orpha.net", "code": "ORPHA:536"},
            {"system": "http://example.com/made-up", "code": "1"},
            {"system": "http://hl7.org/fhir/sid/icd-10", "code": "<b>M32</b>"}
        ]);
    });
    let shy = r.actor("Group", "shy", |d| {
        d["discoverable"] = json!(false);
        d["conditions"] = json!(["Lupus"]);
    });
    let person = r.actor("Person", "bob", |d| d["discoverable"] = json!(true));
    let private = r.actor("Group", "inner", |d| {
        d["discoverable"] = json!(true);
        d["membersOnly"] = json!(true);
        d["conditions"] = json!(["Lupus"]);
    });
    let elsewhere = other.actor("Group", "lupus", |d| {
        d["discoverable"] = json!(true);
        d["conditions"] = json!(["Lupus"]);
    });
    r.put(
        "/dir",
        Doc::ap(&json!({"type": "OrderedCollection", "first": r.id("/dir/1")})),
    );
    r.put(
        "/dir/1",
        Doc::ap(
            &json!({"type": "OrderedCollectionPage", "next": r.id("/dir/2"),
            "orderedItems": [good, 42, "not a url", {"no": "id"}, elsewhere, shy]}),
        ),
    );
    // Page 2 loops back to page 1.
    r.put(
        "/dir/2",
        Doc::ap(
            &json!({"type": "OrderedCollectionPage", "next": r.id("/dir/1"),
            "orderedItems": [person, private, good]}),
        ),
    );
    let n = directory::read_instance(&a.data(), &r.domain)
        .await
        .expect("read");
    assert_eq!(
        n, 1,
        "only the public, listed group on the directory's own host"
    );
    let found = search(&a, None, "lupus").await;
    assert_eq!(handles(&found), [format!("lupus@{}", r.domain)]);
    let about = &found[0]["about"];
    assert_eq!(
        about["conditions"],
        json!(["Lupus"]),
        "invalid entries dropped"
    );
    assert_eq!(
        about["codes"],
        json!([{"system": "orpha", "code": "ORPHA:536"}])
    );
    assert_eq!(
        r.gets_of("/users/shy"),
        1,
        "read from its own document, then dropped"
    );
    assert_eq!(
        other.gets_of("/users/lupus"),
        0,
        "never fetched: listed by another host"
    );

    // The group stops being listed: it is forgotten at the next read.
    r.put(
        "/dir/1",
        Doc::ap(&json!({"type": "OrderedCollectionPage", "orderedItems": []})),
    );
    assert_eq!(
        directory::read_instance(&a.data(), &r.domain)
            .await
            .expect("read"),
        0
    );
    assert!(search(&a, None, "lupus").await.is_empty());

    // An oversized page is not read at all.
    nodeinfo(&other);
    other.put(
        "/dir",
        Doc::ap(&json!({"type": "OrderedCollection",
        "orderedItems": vec![other.id("/users/lupus"); 20_000]})),
    );
    let err = directory::read_instance(&a.data(), &other.domain)
        .await
        .expect_err("too large");
    assert!(err.to_string().contains("too large"), "{err}");
    assert!(search(&a, None, "lupus").await.is_empty());
}

/// An independent implementation (Fedify) reads a described group: our
/// extended JSON-LD context expands, and the tags come through as Hashtags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fedify_peer_reads_a_described_group() {
    let peer = Peer::spawn().await;
    let k = TestInstance::spawn(Backend::Sqlite).await;
    mg_group(&k, "mg", "public", true).await;
    let (st, found) = peer
        .get(&format!("/control/lookup?handle=mg@{}", k.domain))
        .await;
    assert_eq!(st, 200, "{found}");
    assert_eq!(found["type"], "Group");
    let tags = found["json"]["tag"].clone();
    let tags = match tags {
        Value::Array(t) => t,
        one => vec![one],
    };
    let names: Vec<&str> = tags.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["#mg", "#rare_disease"], "{found}");
    // Expanded to ActivityStreams' Hashtag (compacted by Fedify as `as:`).
    assert!(
        tags.iter()
            .all(|t| t["type"] == "as:Hashtag" || t["type"] == "Hashtag"),
        "{tags:?}"
    );
}

/// The actor document is served from memory (`federation::docs`): each
/// change made to the group in this process shows on the very next fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_groups_actor_document_shows_each_change_at_once() {
    for backend in backends() {
        let k = TestInstance::spawn(backend).await;
        k.create_group("pots", "POTS").await;
        let data = k.data();
        let (st, doc) = k.get("/groups/pots", None).await;
        assert_eq!(st, StatusCode::OK, "{doc}");
        assert_eq!(doc["conditions"], Value::Null, "{doc}");

        let g = find_group(&data, "pots").await.expect("group");
        set_about(
            &data,
            Who::Cli,
            &g,
            &AboutChange {
                conditions: s(&["Postural tachycardia"]),
                tags: s(&["pots"]),
                codes: vec![],
                languages: s(&["en"]),
                region: None,
                discoverable: true,
            },
        )
        .await
        .expect("about");
        let (_, doc) = k.get("/groups/pots", None).await;
        assert_eq!(doc["conditions"], json!(["Postural tachycardia"]), "{doc}");

        // Members-only: still an actor, now saying so.
        let g = find_group(&data, "pots").await.expect("group");
        let settings = |visibility| SettingsChange {
            visibility: Some(visibility),
            join_policy: None,
            member_count_hidden: None,
            premoderation: None,
            default_content_warning: None,
        };
        update_settings(&data, Who::Cli, &g, settings("members"))
            .await
            .expect("settings");
        let (_, doc) = k.get("/groups/pots", None).await;
        assert_eq!(doc["membersOnly"], json!(true), "{doc}");

        // Never federated: gone from the fediverse at once.
        let g = find_group(&data, "pots").await.expect("group");
        update_settings(&data, Who::Cli, &g, settings("local"))
            .await
            .expect("settings");
        let (st, _) = k.get("/groups/pots", None).await;
        assert_eq!(st, StatusCode::NOT_FOUND);

        // Public again, then restricted to one instance: an unsigned fetch
        // is no longer one it may answer.
        let g = find_group(&data, "pots").await.expect("group");
        update_settings(&data, Who::Cli, &g, settings("public"))
            .await
            .expect("settings");
        assert_eq!(k.get("/groups/pots", None).await.0, StatusCode::OK);
        let g = find_group(&data, "pots").await.expect("group");
        kindred::service::federation::set_group_domains(
            &k.app().state,
            Who::Cli,
            &g,
            true,
            "friends.example",
        )
        .await
        .expect("domains");
        assert_eq!(k.get("/groups/pots", None).await.0, StatusCode::NOT_FOUND);
    }
}
