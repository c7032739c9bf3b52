//! Interop with an implementation we did not write: a Fedify peer (tests/
//! interop/peer) looks the group up by WebFinger, follows it, receives and
//! verifies the group's signed Announces, starts a thread Mastodon-style (a
//! mention, a content warning, `as:Public`), replies to a member's thread
//! addressing only its author, gets a member's mention delivered straight to
//! its inbox, and leaves.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestInstance, eventually},
    peer::Peer,
};

fn find(list: &[Value], pred: impl Fn(&Value) -> bool) -> Option<&Value> {
    list.iter().find(|v| pred(v))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fedify_peer_follows_reads_and_writes_in_a_group() {
    let peer = Peer::spawn().await;
    let k = TestInstance::spawn(Backend::Sqlite).await;
    k.create_group("ms-support", "Multiple sclerosis support")
        .await;
    let ana = k.create_user("ana").await;
    let (s, _) = k
        .post("/api/v1/groups/ms-support/join", &ana, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let group_id = format!("{}/groups/ms-support", k.base);

    // WebFinger round trip, as Fedify does it.
    let (s, found) = peer
        .get(&format!("/control/lookup?handle=ms-support@{}", k.domain))
        .await;
    assert_eq!(s, 200, "{found}");
    assert_eq!(found["type"], "Group");
    assert_eq!(found["id"], group_id);
    assert_eq!(found["name"], "Multiple sclerosis support");
    assert_eq!(
        found["webfinger"]["subject"],
        format!("acct:ms-support@{}", k.domain)
    );
    let links = found["webfinger"]["links"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        links
            .iter()
            .any(|l| l["rel"] == "self" && l["href"] == group_id.as_str()),
        "self link must be the actor id: {links:?}"
    );

    // Follow → Accept, signed by the group and verified by Fedify.
    peer.control("follow", json!({"actor": group_id})).await;
    eventually("the group's Accept at the peer", || async {
        find(&peer.received().await, |a| {
            a["type"] == "Accept" && a["actor"] == group_id && a["objectType"] == "Follow"
        })
        .map(|_| ())
    })
    .await;
    let (_, g) = k.get("/api/v1/groups/ms-support", None).await;
    assert_eq!(g["members"], 2, "{g}");

    // A member's thread (Markdown, content warning) reaches the peer twice:
    // Announce(Create(Page)) for FEP-1b12 servers, Announce(<post id>) for
    // microblogs — both signed by the group and verified by Fedify.
    let (s, thread) = k
        .post(
            "/api/v1/groups/ms-support/threads",
            &ana,
            json!({"title": "Heat and fatigue", "content": "Does **heat** make it worse? #summer",
                   "content_warning": "symptoms"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{thread}");
    let thread_url = thread["url"].as_str().unwrap_or_default().to_string();
    let create = eventually("Announce(Create(Page)) at the peer", || async {
        find(&peer.received().await, |a| {
            a["type"] == "Announce" && a["objectType"] == "Create"
        })
        .cloned()
    })
    .await;
    let page = &create["raw"]["object"]["object"];
    assert_eq!(page["type"], "Page");
    assert_eq!(page["id"], thread_url);
    assert_eq!(page["name"], "Heat and fatigue");
    assert_eq!(page["summary"], "symptoms");
    assert_eq!(page["sensitive"], true);
    assert!(
        page["content"]
            .as_str()
            .unwrap_or_default()
            .contains("<strong>heat</strong>"),
        "{page}"
    );
    assert!(
        page["tag"].as_array().is_some_and(|t| t
            .iter()
            .any(|t| t["type"] == "Hashtag" && t["name"] == "#summer")),
        "{page}"
    );
    eventually("Announce(<post id>) at the peer", || async {
        find(&peer.received().await, |a| {
            a["type"] == "Announce"
                && a["objectId"] == thread_url.as_str()
                && a["objectType"].is_null()
        })
        .map(|_| ())
    })
    .await;

    // What Mastodon does with that boost: fetch the post by its id, asking
    // for either ActivityStreams media type; it must be public and typed.
    for accept in [
        "application/activity+json",
        r#"application/ld+json; profile="https://www.w3.org/ns/activitystreams""#,
    ] {
        for url in [thread_url.as_str(), group_id.as_str()] {
            let res = k
                .http
                .get(url)
                .header("accept", accept)
                .send()
                .await
                .expect("fetch");
            assert_eq!(res.status(), StatusCode::OK, "{url} as {accept}");
            let ct = res
                .headers()
                .get("content-type")
                .and_then(|c| c.to_str().ok())
                .unwrap_or_default()
                .to_string();
            assert!(ct.starts_with("application/activity+json"), "{ct}");
            let doc: Value = res.json().await.unwrap_or_default();
            assert_eq!(doc["id"], url);
            if url == thread_url {
                assert_eq!(doc["type"], "Page");
                assert!(doc["to"].as_array().is_some_and(|t| {
                    t.contains(&json!("https://www.w3.org/ns/activitystreams#Public"))
                }));
            }
        }
    }

    // The peer starts a thread the Mastodon way: a Note mentioning the group,
    // no title, a content warning, `to: "as:Public"`.
    let sent = peer
        .control(
            "post",
            json!({"group": group_id, "content": "<p>New here. Is cooling vest worth it?</p>",
                   "summary": "heat", "mentionName": format!("@ms-support@{}", k.domain)}),
        )
        .await;
    let note_id = sent["note"].as_str().unwrap_or_default().to_string();
    let stored = eventually("the peer's thread on Kindred", || async {
        let (_, list) = k.get("/api/v1/groups/ms-support/threads", None).await;
        list.as_array()
            .and_then(|l| l.iter().find(|t| t["url"] == note_id.as_str()).cloned())
    })
    .await;
    assert_eq!(stored["content_warning"], "heat");
    assert_eq!(stored["sensitive"], true);
    assert_eq!(stored["author"]["url"], peer.actor_id());
    assert!(
        stored["content_html"]
            .as_str()
            .unwrap_or_default()
            .contains("cooling vest")
    );
    // Re-shared to the members (the peer itself among them), public spelt out.
    let reshared = eventually("the peer's post re-shared", || async {
        find(&peer.received().await, |a| {
            a["type"] == "Announce" && a["raw"]["object"]["object"]["id"] == note_id.as_str()
        })
        .cloned()
    })
    .await;
    assert_eq!(
        reshared["raw"]["object"]["object"]["to"],
        json!(["https://www.w3.org/ns/activitystreams#Public"])
    );

    // A reply to ana's thread addressed to ana only (not the group) joins it.
    let ana_id = format!("{}/users/ana", k.base);
    let reply = peer
        .control(
            "reply",
            json!({"inReplyTo": thread_url, "to": [ana_id], "content": "<p>Heat is the worst for me too.</p>"}),
        )
        .await;
    let reply_id = reply["note"].as_str().unwrap_or_default().to_string();
    let thread_no = thread["id"].as_i64().unwrap_or_default();
    eventually("the peer's reply in ana's thread", || async {
        let (_, list) = k
            .get(&format!("/api/v1/posts/{thread_no}/replies"), None)
            .await;
        list.as_array()
            .and_then(|l| l.iter().find(|r| r["url"] == reply_id.as_str()).cloned())
    })
    .await;

    // Ana answers the peer's thread and mentions alice: the Create goes
    // straight to alice (Mastodon notifies on it), with the Mention tag.
    let stored_id = stored["id"].as_i64().unwrap_or_default();
    let (s, answer) = k
        .post(
            &format!("/api/v1/posts/{stored_id}/replies"),
            &ana,
            json!({"content": format!("@alice@{} yes, it helps me.", peer.domain)}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{answer}");
    assert!(
        answer["content_html"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!(r#"href="{}""#, peer.actor_id())),
        "{answer}"
    );
    let direct = eventually("ana's Create at alice", || async {
        find(&peer.received().await, |a| {
            a["type"] == "Create" && a["objectId"] == answer["url"]
        })
        .cloned()
    })
    .await;
    let note = &direct["raw"]["object"];
    assert_eq!(note["inReplyTo"], note_id);
    assert!(
        note["tag"].as_array().is_some_and(|t| t
            .iter()
            .any(|t| t["type"] == "Mention" && t["href"] == peer.actor_id().as_str())),
        "{note}"
    );

    // Fedify refused nothing we sent.
    assert_eq!(peer.rejected().await, Vec::<Value>::new());

    // Leaving: Undo(Follow) ends the membership.
    peer.control("unfollow", json!({"actor": group_id})).await;
    eventually("membership ended", || async {
        let (_, g) = k.get("/api/v1/groups/ms-support", None).await;
        (g["members"] == 1).then_some(())
    })
    .await;
}
