//! A Kindred member in a Lemmy community (played by `Remote` in Lemmy's
//! shapes, see tests/fixtures/wire/lemmy): join (Follow → Lemmy's Accept
//! echoing it), post a thread the way Lemmy reads one, and receive the
//! community's posts and comments — Announce(Create(Page|Note)) and the
//! Announce(Page) copy Lemmy also sends — once each, titled and threaded.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestInstance, eventually},
    remote::{Remote, Sign},
};

const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_joins_and_writes_in_a_lemmy_community() {
    let k = TestInstance::spawn(Backend::Sqlite).await;
    let ana = k.create_user("ana").await;
    let lemmy = Remote::start().await;
    let community = lemmy.actor("Group", "ms", |d| {
        d["attributedTo"] = json!(lemmy.id("/users/ms/moderators"));
        d["featured"] = json!(lemmy.id("/users/ms/featured"));
        d["postingRestrictedToMods"] = json!(false);
        d["sensitive"] = json!(false);
        d["name"] = json!("Multiple sclerosis");
    });
    let jordan = lemmy.actor("Person", "jordan", |_| {});
    let handle = format!("ms@{}", lemmy.domain);

    // Join: our Follow reaches the community; Lemmy's Accept echoes it.
    let (s, v) = k
        .post(&format!("/api/v1/groups/{handle}/join"), &ana, json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let follow = eventually("our Follow at Lemmy", || async {
        lemmy.posted().into_iter().find(|a| a["type"] == "Follow")
    })
    .await;
    assert_eq!(follow["object"], community);
    let accept = json!({
        "actor": community, "to": [follow["actor"]], "object": follow,
        "type": "Accept", "id": lemmy.id("/activities/accept/1"),
    });
    let inbox = format!("{}/inbox", k.base);
    assert_eq!(
        lemmy
            .post(&inbox, &community, &accept, Sign::default())
            .await,
        202
    );
    let (_, g) = k.get(&format!("/api/v1/groups/{handle}"), Some(&ana)).await;
    assert_eq!(g["membership"], "accepted", "{g}");

    // A thread from ana: Create(Page) with what Lemmy requires.
    let (s, thread) = k
        .post(
            &format!("/api/v1/groups/{handle}/threads"),
            &ana,
            json!({"title": "Cooling vests", "content": "Which **brand**?"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{thread}");
    let create = eventually("ana's Create at Lemmy", || async {
        lemmy.posted().into_iter().find(|a| a["type"] == "Create")
    })
    .await;
    let page = &create["object"];
    assert_eq!(page["type"], "Page");
    assert_eq!(page["name"], "Cooling vests");
    assert_eq!(page["audience"], community);
    assert_eq!(create["audience"], community);
    assert!(
        page["to"]
            .as_array()
            .is_some_and(|t| t.contains(&json!(community)))
    );
    assert_eq!(page["source"]["mediaType"], "text/markdown");
    assert_eq!(page["source"]["content"], "Which **brand**?");
    assert_eq!(page["mediaType"], "text/html");
    assert!(
        page["tag"].as_array().is_some_and(|t| t
            .iter()
            .any(|t| t["type"] == "Mention" && t["href"] == json!(community))),
        "{page}"
    );

    // The community shares a Lemmy user's post, both ways Lemmy sends it.
    let post_id = lemmy.id("/post/1");
    let lemmy_page = json!({
        "type": "Page", "id": post_id, "attributedTo": jordan,
        "to": [community, PUBLIC], "cc": [], "audience": community,
        "name": "Weekly check-in", "content": "<p>How was your week?</p>",
        "mediaType": "text/html",
        "source": {"content": "How was your week?", "mediaType": "text/markdown"},
        "published": "2026-11-20T10:00:00Z",
    });
    let announce_create = json!({
        "actor": community, "to": [PUBLIC], "cc": [format!("{community}/followers")],
        "type": "Announce", "id": lemmy.id("/activities/announce/create/1"),
        "object": {"actor": jordan, "to": [community, PUBLIC], "cc": [],
                   "type": "Create", "id": lemmy.id("/activities/create/1"),
                   "object": lemmy_page, "audience": community},
        "audience": community,
    });
    assert_eq!(
        lemmy
            .post(&inbox, &community, &announce_create, Sign::default())
            .await,
        202
    );
    let mut page_copy = lemmy_page.clone();
    page_copy["actor"] = json!(jordan);
    let announce_page = json!({
        "actor": community, "to": [PUBLIC], "cc": [format!("{community}/followers")],
        "type": "Announce", "id": lemmy.id("/activities/announce/page/1"),
        "object": page_copy,
    });
    assert_eq!(
        lemmy
            .post(&inbox, &community, &announce_page, Sign::default())
            .await,
        202
    );
    let (_, list) = k
        .get(&format!("/api/v1/groups/{handle}/threads"), Some(&ana))
        .await;
    let copies: Vec<&Value> = list
        .as_array()
        .map(|l| l.iter().filter(|t| t["url"] == post_id.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(copies.len(), 1, "one post, whichever way it came: {list}");
    assert_eq!(copies[0]["title"], "Weekly check-in");
    assert_eq!(
        copies[0]["author"]["handle"],
        format!("jordan@{}", lemmy.domain)
    );

    // A post announced by id that turns out not to be public is not stored.
    let private_id = lemmy.id("/post/2");
    let mut private = lemmy_page.clone();
    private["id"] = json!(private_id);
    private["to"] = json!([format!("{community}/followers")]);
    lemmy.put("/post/2", crate::remote::Doc::ap(&private));
    let announce_private = json!({
        "actor": community, "to": [PUBLIC], "type": "Announce",
        "id": lemmy.id("/activities/announce/page/2"), "object": private_id,
    });
    assert_eq!(
        lemmy
            .post(&inbox, &community, &announce_private, Sign::default())
            .await,
        403
    );
    let (_, list2) = k
        .get(&format!("/api/v1/groups/{handle}/threads"), Some(&ana))
        .await;
    assert!(
        !list2.to_string().contains(&private_id),
        "a non-public post was stored: {list2}"
    );

    // A comment under it arrives as a reply in that thread.
    let comment_id = lemmy.id("/comment/1");
    let announce_comment = json!({
        "actor": community, "to": [PUBLIC], "cc": [format!("{community}/followers")],
        "type": "Announce", "id": lemmy.id("/activities/announce/create/2"),
        "object": {"actor": jordan, "to": [community, PUBLIC], "cc": [],
                   "type": "Create", "id": lemmy.id("/activities/create/2"),
                   "object": {"type": "Note", "id": comment_id, "attributedTo": jordan,
                              "to": [community, PUBLIC], "cc": [], "audience": community,
                              "inReplyTo": post_id, "content": "<p>Tiring but ok.</p>",
                              "mediaType": "text/html", "published": "2026-11-20T11:00:00Z"},
                   "audience": community},
        "audience": community,
    });
    assert_eq!(
        lemmy
            .post(&inbox, &community, &announce_comment, Sign::default())
            .await,
        202
    );
    let thread_no = copies[0]["id"].as_i64().unwrap_or_default();
    let (_, replies) = k
        .get(&format!("/api/v1/posts/{thread_no}/replies"), Some(&ana))
        .await;
    assert!(
        replies
            .as_array()
            .is_some_and(|r| r.iter().any(|c| c["url"] == comment_id.as_str())),
        "{replies}"
    );
}
