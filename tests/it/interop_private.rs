//! A members-only group with an independent implementation (the Fedify
//! peer) as the remote applicant: its Follow waits in the moderators' queue,
//! the Accept it gets after approval verifies, the group's posts reach it
//! embedded (it may not fetch them: only members may), addressed to the
//! group's followers and never to Public; a refused or banned applicant gets
//! a Reject it can verify.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestInstance, eventually},
    peer::Peer,
};
use kindred::{
    db,
    federation::objects::actor::DbActor,
    service::{federation::Who, moderation},
};

fn find(list: &[Value], pred: impl Fn(&Value) -> bool) -> Option<Value> {
    list.iter().find(|v| pred(v)).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fedify_peer_asks_to_join_a_members_only_group() {
    let peer = Peer::spawn().await;
    let k = TestInstance::spawn(Backend::Sqlite).await;
    let data = k.data();
    k.create_group("rare", "Rare condition circle").await;
    let row = db::actors::local_by_name(k.db(), "rare")
        .await
        .expect("db")
        .expect("group");
    let g = DbActor::new(row).expect("actor");
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
    let ana = k.create_user("ana").await;
    let (s, _) = k.post("/api/v1/groups/rare/join", &ana, json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let ana_id = db::actors::local_by_name(k.db(), "ana")
        .await
        .expect("db")
        .expect("ana")
        .id;
    moderation::approve(&data, Who::Cli, &g, ana_id)
        .await
        .expect("approve ana");
    let group_id = g.row.ap_id.clone();

    // The peer reads the actor: it says members-only and approval.
    let (s, found) = peer
        .get(&format!("/control/lookup?handle=rare@{}", k.domain))
        .await;
    assert_eq!(s, 200, "{found}");
    assert_eq!(found["type"], "Group");

    // Follow → queued, no answer yet.
    peer.control("follow", json!({"actor": group_id})).await;
    let pending = eventually("the peer's request in the queue", || async {
        let p = db::moderation::pending_requests(k.db(), g.row.id)
            .await
            .ok()?;
        p.into_iter().find(|(_, a)| a.ap_id == peer.actor_id())
    })
    .await;
    assert!(
        find(&peer.received().await, |a| a["type"] == "Accept").is_none(),
        "accepted before a moderator decided"
    );

    // Approved: the Accept arrives, signed by the group, verified by Fedify.
    moderation::approve(&data, Who::Cli, &g, pending.1.id)
        .await
        .expect("approve");
    eventually("the group's Accept at the peer", || async {
        find(&peer.received().await, |a| {
            a["type"] == "Accept" && a["actor"] == group_id && a["objectType"] == "Follow"
        })
    })
    .await;

    // A member's thread reaches the peer, embedded, to followers only.
    let (s, thread) = k
        .post(
            "/api/v1/groups/rare/threads",
            &ana,
            json!({"title": "Trial results", "content": "Phase 2 is out."}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{thread}");
    let url = thread["url"].as_str().unwrap_or_default().to_string();
    let got = eventually("Announce(Create(Page)) at the peer", || async {
        find(&peer.received().await, |a| {
            a["type"] == "Announce" && a["objectType"] == "Create"
        })
    })
    .await;
    let raw = &got["raw"];
    let page = &raw["object"]["object"];
    assert_eq!(page["id"], url);
    let everyone =
        |v: &Value| v.to_string().contains("#Public") || v.to_string().contains("as:Public");
    assert!(
        !everyone(&raw["to"]) && !everyone(&raw["cc"]),
        "Announce addressed publicly: {raw}"
    );
    assert!(
        !everyone(&page["to"]) && !everyone(&page["cc"]),
        "post addressed publicly: {page}"
    );
    assert_eq!(
        page["to"],
        json!([format!("{group_id}/followers")]),
        "{page}"
    );
    let boost = eventually("the embedded boost at the peer", || async {
        find(&peer.received().await, |a| {
            a["type"] == "Announce" && a["objectType"] == "Page"
        })
    })
    .await;
    assert_eq!(
        boost["raw"]["object"]["id"], url,
        "the boost carries the post itself"
    );
    // And an unsigned fetch of the post is the private 404.
    let res = k
        .http
        .get(&url)
        .header("accept", "application/activity+json")
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Banned: the peer hears Reject (Fedify verifies it), its membership ends.
    let peer_actor = DbActor::new(pending.1).expect("actor");
    moderation::ban(&data, Who::Cli, &g, &peer_actor, Some("test"))
        .await
        .expect("ban");
    eventually("the group's Reject at the peer", || async {
        find(&peer.received().await, |a| {
            a["type"] == "Reject" && a["actor"] == group_id
        })
    })
    .await;
    assert_eq!(
        db::follows::count_members(k.db(), g.row.id)
            .await
            .expect("db"),
        1
    );
}
