//! Federation policy (allow/block lists, mode, groups' own lists), enforced
//! on every path against signed fake servers (`Remote`) and real instances:
//! inbound activities, deliveries (queued ones cancelled), fetches, signed
//! and unsigned GETs of our content, a change made by another process.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestInstance, backends, eventually},
    remote::{Remote, Sign},
};
use kindred::{
    domain::policy::List,
    service::federation::{self as fed, Who},
};

const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

async fn admin_token(k: &TestInstance) -> String {
    kindred::service::users::create_user(&k.app().state, "root", "correct horse", true)
        .await
        .expect("admin");
    let (s, v) = k
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "root", "password": "correct horse"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["token"].as_str().expect("token").to_string()
}

fn follow(r: &Remote, actor: &str, n: &str, group: &str) -> Value {
    json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Follow",
        "id": r.id(&format!("/follows/{n}")), "actor": actor, "object": group})
}

fn create(r: &Remote, actor: &str, n: &str, group: &str) -> Value {
    let id = r.id(&format!("/notes/{n}"));
    json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Create",
        "id": r.id(&format!("/creates/{n}")), "actor": actor, "to": [PUBLIC], "cc": [group],
        "object": {"type": "Note", "id": id, "attributedTo": actor, "to": [PUBLIC],
            "cc": [group], "content": format!("<p>note {n}</p>")}})
}

async fn stored(k: &TestInstance, r: &Remote, n: &str) -> bool {
    kindred::db::posts::by_ap_id(k.db(), &r.id(&format!("/notes/{n}")))
        .await
        .expect("query")
        .is_some()
}

async fn members(k: &TestInstance, group: &str) -> i64 {
    let (_, g) = k.get(&format!("/api/v1/groups/{group}"), None).await;
    g["members"].as_i64().unwrap_or(-1)
}

async fn thread_count(k: &TestInstance, group: &str) -> usize {
    let (_, v) = k
        .get(&format!("/api/v1/groups/{group}/threads"), None)
        .await;
    v.as_array().map_or(0, Vec::len)
}

/// Announces the group sent to this remote so far.
fn announces(r: &Remote) -> usize {
    r.posted()
        .iter()
        .filter(|v| v["type"] == "Announce")
        .count()
}

async fn unsigned_ap_get(k: &TestInstance, path: &str) -> StatusCode {
    k.http
        .get(format!("{}{path}", k.base))
        .header("accept", "application/activity+json")
        .send()
        .await
        .expect("get")
        .status()
}

async fn statuses_to(k: &TestInstance, r: &Remote) -> Vec<String> {
    crate::helpers::deliveries(k.db())
        .await
        .into_iter()
        .filter(|d| d.inbox.starts_with(&r.base))
        .map(|d| d.row.status)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_instance_is_refused_on_every_path() {
    for backend in backends() {
        blocked(backend).await;
    }
}

async fn blocked(backend: Backend) {
    let k = TestInstance::spawn(backend).await;
    k.create_group("lupus", "Lupus").await;
    let root = admin_token(&k).await;
    let group = format!("{}/groups/lupus", k.base);
    let inbox = format!("{}/inbox", k.base);
    let bad = Remote::start().await;
    let good = Remote::start().await;
    let mallory = bad.actor("Person", "mallory", |_| {});
    let gina = good.actor("Person", "gina", |_| {});

    // Before the block: both join, mallory writes a thread.
    assert_eq!(
        bad.post(
            &inbox,
            &mallory,
            &follow(&bad, &mallory, "1", &group),
            Sign::default()
        )
        .await,
        202
    );
    assert_eq!(
        good.post(
            &inbox,
            &gina,
            &follow(&good, &gina, "1", &group),
            Sign::default()
        )
        .await,
        202
    );
    assert_eq!(members(&k, "lupus").await, 2);
    assert_eq!(
        bad.post(
            &inbox,
            &mallory,
            &create(&bad, &mallory, "1", &group),
            Sign::default()
        )
        .await,
        202
    );
    assert!(stored(&k, &bad, "1").await);
    // A delivery to mallory already queued, waiting for its next attempt
    // (queued and deferred in one transaction, so no worker sends it first).
    let state = &k.app().state;
    let group_id = kindred::db::actors::local_by_name(&state.db, "lupus")
        .await
        .expect("q")
        .expect("group")
        .id;
    let activity = format!("{}/activities/x/1", k.base);
    let txn = kindred::db::write_txn(&state.db).await.expect("txn");
    kindred::db::deliveries::enqueue(
        &txn,
        &activity,
        group_id,
        "{}",
        &[format!("{mallory}/inbox")],
    )
    .await
    .expect("enqueue");
    {
        use kindred::db::entities::delivery;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let row = delivery::Entity::find()
            .filter(delivery::Column::ActivityApId.eq(&activity))
            .one(&txn)
            .await
            .expect("q")
            .expect("row");
        kindred::db::deliveries::defer(
            &txn,
            row.id,
            chrono::Utc::now() + chrono::Duration::hours(1),
        )
        .await
        .expect("defer");
    }
    txn.commit().await.expect("commit");
    let queued = statuses_to(&k, &bad).await;
    assert!(queued.contains(&"pending".to_string()), "{queued:?}");

    // Everything else to it (the Accept, the boosts of its thread) sent
    // first: a delivery a worker already holds when the block lands is sent
    // and would be counted below as a request made after it.
    eventually("every other delivery to mallory's server sent", || async {
        let s = statuses_to(&k, &bad).await;
        let delivered = s.iter().filter(|s| *s == "delivered").count();
        (delivered + 1 == s.len() && bad.posted().iter().any(|v| v["type"] == "Accept"))
            .then_some(())
    })
    .await;
    // The admin blocks it, spelt in capitals with a trailing dot.
    let spelt = format!(
        "LOCALHOST.:{}",
        bad.domain.rsplit(':').next().unwrap_or_default()
    );
    let (s, v) = k
        .post(
            "/api/v1/admin/federation/block",
            &root,
            json!({"domain": spelt, "reason": "harassment"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["block"][0]["domain"], bad.domain);
    assert_eq!(v["block"][0]["reason"], "harassment");

    // Queued deliveries to it are cancelled at once, none is pending.
    let after = statuses_to(&k, &bad).await;
    assert!(
        !after.is_empty() && after.iter().all(|s| s != "pending"),
        "{after:?}"
    );
    assert!(after.contains(&"cancelled".to_string()), "{after:?}");

    // Inbound: 403, nothing stored — known actor, or a new one we'd have to fetch.
    let gets_before = bad.seen().len();
    assert_eq!(
        bad.post(
            &inbox,
            &mallory,
            &create(&bad, &mallory, "2", &group),
            Sign::default()
        )
        .await,
        403
    );
    assert!(!stored(&k, &bad, "2").await);
    let newcomer = bad.actor("Person", "newcomer", |_| {});
    assert_eq!(
        bad.post(
            &inbox,
            &newcomer,
            &follow(&bad, &newcomer, "2", &group),
            Sign::default()
        )
        .await,
        403
    );
    assert_eq!(members(&k, "lupus").await, 2);
    // Sent to the group's own inbox: the same.
    assert_eq!(
        bad.post(
            &format!("{group}/inbox"),
            &mallory,
            &create(&bad, &mallory, "3", &group),
            Sign::default()
        )
        .await,
        403
    );

    // Fetches: a member looking up something there gets 403, and the
    // blocked server never hears of it (no WebFinger, no actor fetch).
    let alice = k.create_user("alice").await;
    let (s, _) = k
        .get(
            &format!("/api/v1/groups/mallory@{}", bad.domain),
            Some(&alice),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // An allowed server's post replying to an object there: the object is not fetched.
    let reply = json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Create",
        "id": good.id("/creates/r"), "actor": gina, "to": [PUBLIC], "cc": [group],
        "object": {"type": "Note", "id": good.id("/notes/r"), "attributedTo": gina,
            "inReplyTo": bad.id("/notes/elsewhere"), "to": [PUBLIC], "cc": [group],
            "content": "<p>reply</p>"}});
    let code = good.post(&inbox, &gina, &reply, Sign::default()).await;
    assert_ne!(code, 500);
    assert_eq!(
        bad.seen().len(),
        gets_before,
        "nothing was requested from the blocked server"
    );

    // Signed GETs by its actors: 403. The allowed server reads as before.
    assert_eq!(bad.get_signed(&group, &mallory).await, 403);
    assert_eq!(
        bad.get_signed(&format!("{group}/outbox"), &mallory).await,
        403
    );
    assert_eq!(good.get_signed(&group, &gina).await, 200);
    assert_eq!(
        unsigned_ap_get(&k, "/groups/lupus").await,
        StatusCode::OK,
        "open mode serves the public"
    );

    // Its members stop receiving: a new thread goes to gina only.
    let a_before = announces(&bad);
    let g_before = announces(&good);
    let dave = k.create_user("dave").await;
    k.post("/api/v1/groups/lupus/join", &dave, json!({})).await;
    let (s, v) = k
        .post(
            "/api/v1/groups/lupus/threads",
            &dave,
            json!({"title": "Fatigue", "content": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    eventually("gina gets the thread", || async {
        (announces(&good) > g_before).then_some(())
    })
    .await;
    eventually("mallory's delivery cancelled", || async {
        let st = statuses_to(&k, &bad).await;
        (st.iter().filter(|s| *s == "cancelled").count() >= 2).then_some(())
    })
    .await;
    assert_eq!(announces(&bad), a_before);

    // Its content here: hidden, shown again, purged (memberships end too).
    let threads = thread_count(&k, "lupus").await;
    let (s, v) = k
        .post(
            "/api/v1/admin/federation/content",
            &root,
            json!({"domain": bad.domain, "action": "hide"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["posts"], 1);
    assert_eq!(thread_count(&k, "lupus").await, threads - 1);
    k.post(
        "/api/v1/admin/federation/content",
        &root,
        json!({"domain": bad.domain, "action": "show"}),
    )
    .await;
    assert_eq!(thread_count(&k, "lupus").await, threads);
    let (s, _) = k
        .post(
            "/api/v1/admin/federation/content",
            &root,
            json!({"domain": bad.domain, "action": "purge"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(thread_count(&k, "lupus").await, threads - 1);
    assert_eq!(members(&k, "lupus").await, 2, "gina and dave remain");

    // Unblocked: it may write again.
    let (s, _) = k
        .call(
            Method::DELETE,
            &format!("/api/v1/admin/federation/block/{}", bad.domain),
            Some(&root),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        bad.post(
            &inbox,
            &mallory,
            &follow(&bad, &mallory, "3", &group),
            Sign::default()
        )
        .await,
        202
    );

    // Every change is in the audit log, with who and why.
    let (s, log) = k.get("/api/v1/admin/audit", Some(&root)).await;
    assert_eq!(s, StatusCode::OK);
    let actions: Vec<&str> = log
        .as_array()
        .expect("log")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "federation.unblock",
            "federation.purge",
            "federation.show",
            "federation.hide",
            "federation.block"
        ]
    );
    assert_eq!(log[4]["who"], "root");
    assert_eq!(log[4]["reason"], "harassment");
    assert_eq!(log[4]["target"], bad.domain);
    // Not for members.
    let (s, _) = k.get("/api/v1/admin/audit", Some(&alice)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlist_mode_refuses_the_unlisted_and_the_unsigned_in_every_process() {
    for backend in backends() {
        allowlist(backend).await;
    }
}

async fn allowlist(backend: Backend) {
    let k = TestInstance::spawn(backend).await;
    k.create_group("lupus", "Lupus").await;
    let root = admin_token(&k).await;
    let group = format!("{}/groups/lupus", k.base);
    let inbox = format!("{}/inbox", k.base);
    let listed = Remote::start().await;
    let unlisted = Remote::start().await;
    let lena = listed.actor("Person", "lena", |_| {});
    let ulf = unlisted.actor("Person", "ulf", |_| {});

    let (s, v) = k
        .post(
            "/api/v1/admin/federation/allow",
            &root,
            json!({"domain": listed.domain}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = k
        .call(
            Method::PUT,
            "/api/v1/admin/federation/mode",
            Some(&root),
            Some(json!({"mode": "allowlist", "reason": "closed network"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["mode"], "allowlist");

    // Unsigned: only the public basics.
    for path in [
        "/groups/lupus",
        "/groups/lupus/outbox",
        "/groups/lupus/followers",
        "/users/root",
    ] {
        assert_eq!(
            unsigned_ap_get(&k, path).await,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let wf = format!("/.well-known/webfinger?resource=acct:lupus@{}", k.domain);
    for path in [
        wf.as_str(),
        "/.well-known/nodeinfo",
        "/nodeinfo/2.1",
        "/actor",
    ] {
        assert_eq!(unsigned_ap_get(&k, path).await, StatusCode::OK, "{path}");
    }
    // Asking for HTML does not open the JSON: only groups and posts send
    // browsers to their page.
    for path in [
        "/users/root",
        "/groups/lupus/outbox",
        "/groups/lupus/followers",
    ] {
        let res = k
            .http
            .get(format!("{}{path}", k.base))
            .header("accept", "text/html")
            .send()
            .await
            .expect("get");
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
    }
    // Browsers still get the pages.
    let page = k
        .http
        .get(format!("{}/g/lupus", k.base))
        .header("accept", "text/html")
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);

    // Signed: the listed instance reads and joins; the unlisted one can't.
    assert_eq!(listed.get_signed(&group, &lena).await, 200);
    assert_eq!(unlisted.get_signed(&group, &ulf).await, 403);
    // A listed keyId whose signature does not verify (key of another server): refused.
    let forged = listed.id("/users/lena");
    assert_eq!(unlisted.get_signed(&group, &forged).await, 403);
    assert_eq!(
        unlisted
            .post(
                &inbox,
                &ulf,
                &follow(&unlisted, &ulf, "1", &group),
                Sign::default()
            )
            .await,
        403
    );
    assert_eq!(
        listed
            .post(
                &inbox,
                &lena,
                &follow(&listed, &lena, "1", &group),
                Sign::default()
            )
            .await,
        202
    );
    assert_eq!(members(&k, "lupus").await, 1);

    // A second process on the same database takes the listed instance off:
    // this process refuses it within `policy::RECHECK` (it checks the stored
    // version at most once a second), and on the next request after it.
    let replica = k.replica().await;
    fed::remove(
        &replica.state,
        Who::Cli,
        List::Allow,
        &listed.domain,
        Some("contract ended"),
    )
    .await
    .expect("unallow");
    tokio::time::sleep(kindred::federation::policy::RECHECK).await;
    assert_eq!(listed.get_signed(&group, &lena).await, 403);
    assert_eq!(
        listed
            .post(
                &inbox,
                &lena,
                &create(&listed, &lena, "1", &group),
                Sign::default()
            )
            .await,
        403
    );
    assert!(!stored(&k, &listed, "1").await);
    // And open mode again from this process: the replica serves the public.
    fed::set_mode(&k.app().state, Who::Cli, "open", None)
        .await
        .expect("mode");
    assert_eq!(unsigned_ap_get(&k, "/groups/lupus").await, StatusCode::OK);
    replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_takes_members_only_from_its_own_list() {
    let k = TestInstance::spawn(Backend::Sqlite).await;
    k.create_group("lupus", "Lupus").await;
    k.create_group("coffee", "Coffee").await;
    let lupus = format!("{}/groups/lupus", k.base);
    let coffee = format!("{}/groups/coffee", k.base);
    let inbox = format!("{}/inbox", k.base);
    let near = Remote::start().await;
    let far = Remote::start().await;
    let nora = near.actor("Person", "nora", |_| {});
    let fred = far.actor("Person", "fred", |_| {});
    for g in [&lupus, &coffee] {
        let n = g.rsplit('/').next().unwrap_or_default();
        assert_eq!(
            near.post(&inbox, &nora, &follow(&near, &nora, n, g), Sign::default())
                .await,
            202
        );
        assert_eq!(
            far.post(&inbox, &fred, &follow(&far, &fred, n, g), Sign::default())
                .await,
            202
        );
    }
    // A moderator of lupus sets its list; a plain member may not.
    let state = &k.app().state;
    let moderator = k.create_user("mona").await;
    let member = k.create_user("max").await;
    let g_row = kindred::db::actors::local_by_name(&state.db, "lupus")
        .await
        .expect("q")
        .expect("g");
    let mona = kindred::db::actors::local_by_name(&state.db, "mona")
        .await
        .expect("q")
        .expect("m");
    kindred::db::roles::set(
        &state.db,
        g_row.id,
        mona.id,
        kindred::domain::GroupRole::Moderator,
    )
    .await
    .expect("role");
    let path = "/api/v1/groups/lupus/federation";
    let body = json!({"restricted": true, "domains": [near.domain]});
    let (s, _) = k
        .call(Method::PUT, path, Some(&member), Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = k
        .call(
            Method::PUT,
            path,
            Some(&moderator),
            Some(json!({"restricted": true, "domains": [near.domain, "ex*ample.com"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("entry 2"),
        "{v}"
    );
    let (_, v) = k.get(path, Some(&moderator)).await;
    assert_eq!(v["restricted"], false, "nothing half-applied: {v}");
    let (s, v) = k
        .call(Method::PUT, path, Some(&moderator), Some(body))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["domains"], json!([near.domain]));

    // Reading the group: listed instance yes, others and anonymous 404.
    assert_eq!(
        near.get_signed(&format!("{lupus}/outbox"), &nora).await,
        200
    );
    assert_eq!(far.get_signed(&format!("{lupus}/outbox"), &fred).await, 404);
    assert_eq!(far.get_signed(&lupus, &fred).await, 404);
    assert_eq!(
        unsigned_ap_get(&k, "/groups/lupus/outbox").await,
        StatusCode::NOT_FOUND
    );
    // The other group is unaffected.
    assert_eq!(
        far.get_signed(&format!("{coffee}/outbox"), &fred).await,
        200
    );

    // Writing: refused in lupus only.
    assert_eq!(
        far.post(
            &inbox,
            &fred,
            &create(&far, &fred, "1", &lupus),
            Sign::default()
        )
        .await,
        403
    );
    assert!(!stored(&k, &far, "1").await);
    assert_eq!(
        far.post(
            &inbox,
            &fred,
            &create(&far, &fred, "2", &coffee),
            Sign::default()
        )
        .await,
        202
    );
    assert_eq!(
        near.post(
            &inbox,
            &nora,
            &create(&near, &nora, "1", &lupus),
            Sign::default()
        )
        .await,
        202
    );

    // Its existing member elsewhere stops receiving lupus, not coffee.
    k.post("/api/v1/groups/lupus/join", &member, json!({}))
        .await;
    k.post("/api/v1/groups/coffee/join", &member, json!({}))
        .await;
    let (far0, near0) = (announces(&far), announces(&near));
    k.post(
        "/api/v1/groups/lupus/threads",
        &member,
        json!({"title": "Flare", "content": "x"}),
    )
    .await;
    eventually("nora gets the lupus thread", || async {
        (announces(&near) > near0).then_some(())
    })
    .await;
    k.post(
        "/api/v1/groups/coffee/threads",
        &member,
        json!({"title": "Beans", "content": "x"}),
    )
    .await;
    eventually("fred gets the coffee thread", || async {
        (announces(&far) > far0).then_some(())
    })
    .await;
    let to_fred: Vec<String> = far
        .posted()
        .iter()
        .filter(|v| v["type"] == "Announce")
        .map(|v| v["actor"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(to_fred.iter().all(|a| a == &coffee), "{to_fred:?}");

    // A member on an unlisted instance may still leave.
    let before = members(&k, "lupus").await;
    let undo = json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Undo",
        "id": far.id("/undos/1"), "actor": fred, "object": follow(&far, &fred, "lupus", &lupus)});
    assert_eq!(far.post(&inbox, &fred, &undo, Sign::default()).await, 202);
    assert_eq!(members(&k, "lupus").await, before - 1);

    // Another process on the same database widens the list: this process
    // (which keeps the lists with the policy) follows within
    // `policy::RECHECK`.
    let replica = k.replica().await;
    let g = kindred::federation::objects::actor::DbActor::new(g_row.clone()).expect("actor");
    let both = format!("{}\n{}", near.domain, far.domain);
    fed::set_group_domains(&replica.state, Who::Cli, &g, true, &both)
        .await
        .expect("widen");
    tokio::time::sleep(kindred::federation::policy::RECHECK).await;
    assert_eq!(far.get_signed(&format!("{lupus}/outbox"), &fred).await, 200);
    replica.stop().await;

    // The change is audited under the moderator's name.
    let log = fed::audit_log(state, Who::Cli, 10).await.expect("log");
    assert!(
        log.iter()
            .any(|e| e.action == "group.restrict" && e.who == "mona" && e.target == "lupus")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_entries_and_csv_rows_are_refused_whole() {
    let k = TestInstance::spawn(Backend::Sqlite).await;
    let root = admin_token(&k).await;
    let member = k.create_user("max").await;
    let block = |d: &str| json!({"domain": d});
    for (d, want, says) in [
        ("", 400, "empty"),
        ("ex*ample.com", 400, "wildcard"),
        ("example.*", 400, "wildcard"),
        ("https://example.com/", 400, "not a domain"),
        ("exa mple.com", 400, "valid"),
        (k.domain.as_str(), 400, "own domain"),
        ("*.spam.example", 201, ""),
        ("Spam.Example", 201, ""),
        ("spam.example.", 409, "already"),
    ] {
        let (s, v) = k
            .post("/api/v1/admin/federation/block", &root, block(d))
            .await;
        assert_eq!(s.as_u16(), want, "{d}: {v}");
        assert!(
            v["message"].as_str().unwrap_or_default().contains(says),
            "{d}: {v}"
        );
    }
    let (s, _) = k
        .post(
            "/api/v1/admin/federation/block",
            &member,
            block("x.example"),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = k
        .call(
            Method::DELETE,
            "/api/v1/admin/federation/allow/never.example",
            Some(&root),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = k
        .call(
            Method::PUT,
            "/api/v1/admin/federation/mode",
            Some(&root),
            Some(json!({"mode": "closed"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // CSV: a bad row names its line and nothing is taken.
    let import = |csv: &'static str| {
        let k = &k;
        let root = root.clone();
        async move {
            let res = k
                .http
                .post(format!("{}/api/v1/admin/federation/import", k.base))
                .bearer_auth(root)
                .header("content-type", "text/csv")
                .body(csv)
                .send()
                .await
                .expect("import");
            let s = res.status();
            (s, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, v) = import("#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\nbad1.example,suspend,false,false,spam,false\nnot a domain,suspend,false,false,,false\n").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"].as_str().unwrap_or_default().contains("line 3"),
        "{v}"
    );
    let (s, v) = import("#domain,#severity\ndup.example,suspend\nDUP.example.,silence\n").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"].as_str().unwrap_or_default().contains("line 3"),
        "{v}"
    );
    let (_, list) = k.get("/api/v1/admin/federation", Some(&root)).await;
    assert_eq!(
        list["block"].as_array().map(Vec::len),
        Some(2),
        "nothing half-applied: {list}"
    );

    let (s, v) = import("#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\nbad1.example,suspend,false,false,\"spam, lots\",false\nloud.example,silence,false,false,,false\nmeh.example,noop,false,false,,false\nsp*m.example,suspend,false,false,,true\nspam.example,suspend,false,false,,false\n").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["added"], json!(["bad1.example", "loud.example"]));
    assert_eq!(v["already_blocked"], json!(["spam.example"]));
    assert_eq!(v["skipped"].as_array().map(Vec::len), Some(2));

    // Export: Mastodon's format, read back by the same importer.
    let res = k
        .http
        .get(format!("{}/api/v1/admin/federation/export", k.base))
        .bearer_auth(&root)
        .send()
        .await
        .expect("export");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/csv")
    );
    let csv = res.text().await.unwrap_or_default();
    assert!(csv.starts_with(
        "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n"
    ));
    assert!(
        csv.contains("bad1.example,suspend,false,false,\"spam, lots\",false"),
        "{csv}"
    );
    let again = kindred::domain::policy::parse_mastodon_csv(&csv).expect("parses");
    assert_eq!(again.blocks.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_the_lists_and_names_bad_input() {
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
    let (ok, out, err) = run(&["federation", "block", "Spam.Example.", "--reason", "spam"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("blocked spam.example"), "{out}");
    let (ok, _, err) = run(&["federation", "block", "ex*ample.com"]);
    assert!(!ok);
    assert!(err.contains("wildcard"), "{err}");
    let (ok, _, err) = run(&["federation", "block", "spam.example"]);
    assert!(!ok);
    assert!(err.contains("already"), "{err}");
    let (ok, _, err) = run(&["federation", "mode", "sometimes"]);
    assert!(!ok && err.contains("open or allowlist"), "{err}");
    assert!(run(&["federation", "allow", "friend.example"]).0);
    assert!(run(&["federation", "mode", "allowlist", "--reason", "pilot"]).0);
    let csv = dir.path().join("list.csv");
    std::fs::write(
        &csv,
        "#domain,#severity\nok.example,suspend\nbad row,suspend\n",
    )
    .expect("write");
    let (ok, _, err) = run(&["federation", "import", csv.to_str().unwrap_or_default()]);
    assert!(!ok && err.contains("line 3"), "{err}");
    std::fs::write(&csv, "#domain,#severity\nok.example,suspend\n").expect("write");
    assert!(run(&["federation", "import", csv.to_str().unwrap_or_default()]).0);
    let (ok, out, _) = run(&["federation", "list"]);
    assert!(ok);
    assert!(out.contains("mode: allowlist"), "{out}");
    assert!(
        out.contains("friend.example")
            && out.contains("ok.example")
            && out.contains("spam.example"),
        "{out}"
    );
    assert!(run(&["federation", "unallow", "friend.example"]).0);
    let (ok, _, err) = run(&["federation", "unblock", "never.example"]);
    assert!(!ok && err.contains("never.example"), "{err}");
    let (ok, out, _) = run(&["federation", "export"]);
    assert!(ok && out.contains("spam.example,suspend"), "{out}");
    let (ok, out, _) = run(&["federation", "audit"]);
    assert!(ok);
    for a in [
        "federation.block",
        "federation.allow",
        "federation.mode",
        "federation.import",
        "federation.unallow",
    ] {
        assert!(out.contains(a), "{a} missing: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_see_the_instances_met_and_manage_federation_in_the_browser() {
    let a = TestInstance::spawn(Backend::Sqlite).await;
    let b = TestInstance::spawn(Backend::Sqlite).await;
    a.create_group("lupus", "Lupus").await;
    let mut admin = crate::web::admin_of(&a).await;
    let alice = b.create_user("alice").await;
    let group = format!("lupus@{}", a.domain);
    b.get(&format!("/api/v1/groups/{group}"), Some(&alice))
        .await;
    b.post(&format!("/api/v1/groups/{group}/join"), &alice, json!({}))
        .await;
    eventually("b joined", || async {
        let (_, v) = b
            .get(&format!("/api/v1/groups/{group}"), Some(&alice))
            .await;
        (v["membership"] == "accepted").then_some(())
    })
    .await;
    // NodeInfo is read in the background: software and version appear.
    let seen = eventually("B's NodeInfo", || async {
        let rows = fed::instances(&a.app().state, Who::Cli).await.ok()?;
        rows.into_iter()
            .find(|i| i.domain == b.domain && i.software.is_some())
    })
    .await;
    assert_eq!(seen.software.as_deref(), Some("kindred"));
    assert_eq!(seen.version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(seen.members_here, 1);
    assert!(seen.first_seen.is_some() && seen.last_contact.is_some());
    let page = admin.get("/admin/instances").await;
    page.shows(&b.domain).shows("kindred");

    // The federation page: a bad entry is explained and what was typed kept.
    let page = admin
        .post(
            "/admin/federation/add",
            &[
                ("list", "block"),
                ("domain", "ex*ample.com"),
                ("reason", "spam"),
                ("content", ""),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.error().unwrap_or_default().contains("wildcard"));
    assert_eq!(page.input_value("domain").as_deref(), Some("ex*ample.com"));
    let page = admin
        .post(
            "/admin/federation/add",
            &[
                ("list", "block"),
                ("domain", &b.domain),
                ("reason", "test"),
                ("content", "hide"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let to = page.location().to_string();
    let page = admin.get(&to).await;
    page.shows(&b.domain).shows("in force now");
    let page = admin.get("/admin/instances").await;
    page.shows("blocked");
    let page = admin.get("/admin/audit").await;
    page.shows("federation.block")
        .shows("federation.hide")
        .shows("root");
    // Imported lists from the page; a bad one explained.
    let page = admin
        .post(
            "/admin/federation/import",
            &[("csv", "a.example\nb..example\n")],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.error()
            .unwrap_or_default()
            .to_lowercase()
            .contains("line 2")
    );
    let page = admin
        .post(
            "/admin/federation/import",
            &[("csv", "a.example\nc.example\n")],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    page.shows("Imported 2 block(s)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_instances_post_boosted_by_an_allowed_group_is_dropped_unfetched() {
    let k = TestInstance::spawn(Backend::Sqlite).await;
    let alice = k.create_user("alice").await;
    let good = Remote::start().await;
    let bad = Remote::start().await;
    let club = good.actor("Group", "club", |_| {});
    let mallory = bad.actor("Person", "mallory", |_| {});
    // alice joins the club on the allowed server (its Accept comes back).
    let handle = format!("club@{}", good.domain);
    let (s, v) = k
        .get(&format!("/api/v1/groups/{handle}"), Some(&alice))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    k.post(&format!("/api/v1/groups/{handle}/join"), &alice, json!({}))
        .await;
    let follow = eventually("alice's Follow reaches the club", || async {
        good.posted().into_iter().find(|v| v["type"] == "Follow")
    })
    .await;
    let accept = json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Accept",
        "id": good.id("/accepts/1"), "actor": club, "object": follow});
    assert_eq!(
        good.post(
            &format!("{}/inbox", k.base),
            &club,
            &accept,
            Sign::default()
        )
        .await,
        202
    );
    eventually("membership accepted", || async {
        let (_, v) = k
            .get(&format!("/api/v1/groups/{handle}"), Some(&alice))
            .await;
        (v["membership"] == "accepted").then_some(())
    })
    .await;

    fed::add(&k.app().state, Who::Cli, List::Block, &bad.domain, None)
        .await
        .expect("block");
    // The club boosts mallory's post, embedded, then by id alone.
    let note = json!({"type": "Note", "id": bad.id("/notes/1"), "attributedTo": mallory,
        "to": [PUBLIC], "cc": [club], "audience": club, "content": "<p>spam</p>"});
    let embedded = json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Announce",
        "id": good.id("/announces/1"), "actor": club, "to": [PUBLIC],
        "object": {"type": "Create", "id": bad.id("/creates/1"), "actor": mallory,
            "to": [PUBLIC], "cc": [club], "object": note}});
    let by_id = json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Announce",
        "id": good.id("/announces/2"), "actor": club, "to": [PUBLIC],
        "object": bad.id("/notes/2")});
    let inbox = format!("{}/inbox", k.base);
    for a in [&embedded, &by_id] {
        assert_eq!(good.post(&inbox, &club, a, Sign::default()).await, 202);
    }
    for n in ["1", "2"] {
        assert!(
            kindred::db::posts::by_ap_id(k.db(), &bad.id(&format!("/notes/{n}")))
                .await
                .expect("q")
                .is_none()
        );
    }
    assert!(
        bad.seen().is_empty(),
        "nothing was fetched from the blocked server"
    );
}
