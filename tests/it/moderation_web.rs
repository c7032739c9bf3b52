//! A group's moderation pages over real HTTP: the owner/moderator settings
//! form, deciding requests to join, removing posts, locking threads, held
//! posts, bans, invitations and the log — and everyone else kept out.

use kindred::{db, domain::FollowState};
use reqwest::StatusCode;

use crate::{
    helpers::{Backend, TestInstance, backends},
    visitor::Visitor,
    web::{admin_of, local_group, local_person, sign_up},
};

async fn open_signups(admin: &mut Visitor) {
    let page = admin
        .post(
            "/admin",
            &[
                ("name", "Rare Together"),
                ("description", "Groups for rare conditions."),
                ("registration_mode", "open"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
}

async fn membership(k: &TestInstance, who: &str, g: &str) -> Option<FollowState> {
    let p = local_person(k, who).await;
    let g = local_group(k, g).await;
    db::follows::state(k.db(), p.id, g.id).await.expect("state")
}

/// The id in a `/t/{id}?…` redirect.
fn thread_id(location: &str) -> i64 {
    location
        .strip_prefix("/t/")
        .and_then(|r| r.split(['?', '#']).next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not a thread address: {location}"))
}

/// An admin, a group `rare` with `mo` as its moderator, and `cy`, a plain
/// member who joined while it was open.
async fn group_with_moderator(k: &TestInstance) -> (Visitor, Visitor, Visitor) {
    let mut admin = admin_of(k).await;
    open_signups(&mut admin).await;
    let made = admin
        .post(
            "/admin/groups",
            &[
                ("name", "rare"),
                ("title", "Rare things"),
                ("summary", "Peers."),
            ],
        )
        .await;
    assert_eq!(
        made.location(),
        "/admin/groups/rare?done=group_created",
        "{}",
        made.body
    );
    let mo = sign_up(k, "mo").await;
    let mut cy = sign_up(k, "cy").await;
    let given = admin
        .post(
            "/admin/groups/rare/roles",
            &[("username", "mo"), ("role", "moderator")],
        )
        .await;
    assert_eq!(
        given.location(),
        "/admin/groups/rare?done=role_given",
        "{}",
        given.body
    );
    assert_eq!(
        cy.post("/g/rare/join", &[]).await.location(),
        "/g/rare?done=joined"
    );
    (admin, mo, cy)
}

#[tokio::test]
async fn a_moderator_decides_requests_removes_posts_and_locks_threads() {
    for backend in backends() {
        let k = TestInstance::spawn(backend).await;
        let (_admin, mut mo, mut cy) = group_with_moderator(&k).await;

        // The settings form, as the group is now.
        let page = mo.get("/g/rare/moderation").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.shows("<legend>Who can read the group</legend>")
            .shows("makes all its past posts public")
            .shows("id=\"join-open\" name=\"join_policy\" value=\"open\" checked")
            .shows("<label for=\"premoderation\">")
            .shows("/g/rare/moderation/log");

        // A forged token changes nothing.
        let forged = mo
            .post_raw(
                "/g/rare/moderation/settings",
                &[
                    ("csrf", "forged-token-forged-token-forged-token"),
                    ("visibility", "public"),
                    ("join_policy", "approval"),
                ],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        assert!(forged.error().is_some_and(|e| e.contains("expired")));
        assert_eq!(local_group(&k, "rare").await.join_policy, "open");
        // Nor does a policy that does not exist; the page says which.
        let bad = mo
            .post(
                "/g/rare/moderation/settings",
                &[("visibility", "public"), ("join_policy", "lottery")],
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
        assert!(
            bad.error()
                .is_some_and(|e| e.contains("Unknown join policy &#39;lottery&#39;")),
            "{:?}",
            bad.error()
        );
        assert_eq!(local_group(&k, "rare").await.join_policy, "open");

        // Join by approval, through the form.
        let saved = mo
            .post(
                "/g/rare/moderation/settings",
                &[
                    ("visibility", "public"),
                    ("join_policy", "approval"),
                    ("default_content_warning", ""),
                ],
            )
            .await;
        assert_eq!(
            saved.location(),
            "/g/rare/moderation?done=mod_settings",
            "{}",
            saved.body
        );
        let g = local_group(&k, "rare").await;
        assert_eq!(g.join_policy, "approval");
        assert_eq!(g.visibility, "public");
        assert!(!g.premoderation && !g.member_count_hidden);
        mo.get("/g/rare/moderation?done=mod_settings")
            .await
            .shows("The group&#39;s settings are saved")
            .shows("id=\"join-approval\" name=\"join_policy\" value=\"approval\" checked");

        // ann asks to join and waits.
        let mut ann = sign_up(&k, "ann").await;
        assert_eq!(
            ann.post("/g/rare/join", &[]).await.location(),
            "/g/rare?done=requested"
        );
        assert_eq!(
            membership(&k, "ann", "rare").await,
            Some(FollowState::Pending)
        );
        let ann_row = local_person(&k, "ann").await;
        // Her note, written with markup (the join form's note field is not
        // ours to test here): shown as text.
        let f = db::follows::get(k.db(), ann_row.id, g.id)
            .await
            .expect("query")
            .expect("request");
        db::moderation::set_note(k.db(), f.id, Some("My son has <b>it</b> & more".into()))
            .await
            .expect("note");

        // Nobody else sees the moderation pages or decides.
        let denied = cy.get("/g/rare/moderation").await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        denied.shows("owner and moderators").lacks("@ann@");
        assert_eq!(
            cy.get("/g/rare/moderation/log").await.status,
            StatusCode::FORBIDDEN
        );
        let approve_path = format!("/g/rare/moderation/requests/{}/approve", ann_row.id);
        assert_eq!(
            cy.post(&approve_path, &[]).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            membership(&k, "ann", "rare").await,
            Some(FollowState::Pending)
        );
        let mut stranger = Visitor::new(&k.base);
        let anon = stranger.get("/g/rare/moderation").await;
        assert_eq!(anon.status, StatusCode::SEE_OTHER);
        assert!(
            anon.location().starts_with("/signin"),
            "{}",
            anon.location()
        );
        assert_eq!(
            mo.get("/g/nothing-here/moderation").await.status,
            StatusCode::NOT_FOUND
        );

        // mo sees ann's request, her note escaped, and approves her.
        let page = mo.get("/g/rare/moderation").await;
        page.shows(&format!("@ann@{}", k.domain))
            .shows("My son has &#60;b&#62;it&#60;/b&#62; &#38; more")
            .lacks("<b>it</b>")
            .shows(&format!("action=\"{approve_path}\""));
        let approved = mo.post(&approve_path, &[]).await;
        assert_eq!(
            approved.location(),
            "/g/rare/moderation?done=member_approved",
            "{}",
            approved.body
        );
        assert_eq!(
            membership(&k, "ann", "rare").await,
            Some(FollowState::Accepted)
        );
        ann.get("/g/rare").await.shows("You are a member");
        mo.get("/g/rare/moderation")
            .await
            .shows("No one is waiting.")
            .lacks("My son has");

        // Approving twice: said plainly, on the page, with 409.
        let again = mo.post(&approve_path, &[]).await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
        let err = again.error().unwrap_or_default();
        assert!(err.contains("is already a member"), "{err}");
        again.shows("<legend>Who can read the group</legend>");

        // ann posts a thread; cy replies.
        let posted = ann
            .post(
                "/g/rare/new",
                &[
                    ("title", "Buy cheap pills"),
                    ("body", "Advert here"),
                    ("action", "post"),
                ],
            )
            .await;
        let t = thread_id(posted.location());
        let replied = cy
            .post(
                &format!("/t/{t}/reply"),
                &[("body", "Off-topic reply"), ("action", "post")],
            )
            .await;
        assert_eq!(replied.status, StatusCode::SEE_OTHER, "{}", replied.body);
        let reply_id: i64 = replied
            .location()
            .rsplit_once("#p")
            .and_then(|(_, id)| id.parse().ok())
            .expect("reply anchor");

        // The moderator's buttons, for the moderator only.
        let as_mo = mo.get(&format!("/t/{t}")).await;
        as_mo
            .shows(&format!("action=\"/posts/{t}/remove\""))
            .shows(&format!("action=\"/posts/{reply_id}/remove\""))
            .shows(&format!("<label for=\"remove-reason-{reply_id}\">"))
            .shows("Lock thread");
        cy.get(&format!("/t/{t}"))
            .await
            .lacks("/remove\"")
            .lacks("Lock thread");
        // A member cannot remove someone else's post.
        let nope = cy
            .post(&format!("/posts/{t}/remove"), &[("reason", "mine now")])
            .await;
        assert_eq!(nope.status, StatusCode::FORBIDDEN);
        assert_eq!(ann.get(&format!("/t/{t}")).await.status, StatusCode::OK);

        // A reply removed: back to the thread; the reply is gone.
        let removed = mo
            .post(
                &format!("/posts/{reply_id}/remove"),
                &[("reason", "off topic")],
            )
            .await;
        assert_eq!(
            removed.location(),
            format!("/t/{t}?done=post_removed"),
            "{}",
            removed.body
        );
        assert_eq!(
            cy.get(&format!("/t/{reply_id}")).await.status,
            StatusCode::NOT_FOUND
        );
        mo.get(&format!("/t/{t}?done=post_removed"))
            .await
            .shows("The post is removed.")
            .lacks("Off-topic reply");
        // Twice: the thread says so, with 409.
        let twice = mo.post(&format!("/posts/{reply_id}/remove"), &[]).await;
        assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.body);
        assert!(twice.error().is_some_and(|e| e.contains("already removed")));
        twice.shows("Buy cheap pills");

        // Locked: everyone sees it, nobody replies; locking twice is a 409.
        let locked = mo.post(&format!("/t/{t}/lock"), &[]).await;
        assert_eq!(
            locked.location(),
            format!("/t/{t}?done=locked"),
            "{}",
            locked.body
        );
        let seen = ann.get(&format!("/t/{t}")).await;
        seen.shows("This thread is locked")
            .lacks(&format!("action=\"/t/{t}/reply\""));
        let late = ann
            .post(
                &format!("/t/{t}/reply"),
                &[("body", "Too late"), ("action", "post")],
            )
            .await;
        assert_eq!(late.status, StatusCode::FORBIDDEN, "{}", late.body);
        let relock = mo.post(&format!("/t/{t}/lock"), &[]).await;
        assert_eq!(relock.status, StatusCode::CONFLICT);
        assert!(relock.error().is_some_and(|e| e.contains("already locked")));
        mo.get(&format!("/t/{t}")).await.shows("Unlock thread");
        let unlocked = mo.post(&format!("/t/{t}/unlock"), &[]).await;
        assert_eq!(unlocked.location(), format!("/t/{t}?done=unlocked"));
        ann.get(&format!("/t/{t}"))
            .await
            .lacks("This thread is locked")
            .shows(&format!("action=\"/t/{t}/reply\""));

        // The thread itself removed: back to the group; the thread 404s.
        let gone = mo
            .post(&format!("/posts/{t}/remove"), &[("reason", "spam advert")])
            .await;
        assert_eq!(
            gone.location(),
            "/g/rare?done=post_removed",
            "{}",
            gone.body
        );
        assert_eq!(
            ann.get(&format!("/t/{t}")).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            mo.get(&format!("/t/{t}")).await.status,
            StatusCode::NOT_FOUND
        );
        let twice = mo.post(&format!("/posts/{t}/remove"), &[]).await;
        assert_eq!(twice.status, StatusCode::CONFLICT);
        twice.shows("already removed");

        // The log, newest first.
        let log = mo.get("/g/rare/moderation/log").await;
        assert_eq!(log.status, StatusCode::OK);
        log.shows("<table>")
            .shows("post.remove")
            .shows("spam advert")
            .shows("thread.lock")
            .shows("member.approve")
            .shows(&format!("@ann@{}", k.domain))
            .shows("group.settings");
        let at = |s: &str| log.body.find(s).unwrap_or_else(|| panic!("{s}"));
        assert!(at("spam advert") < at("off topic"));
        assert!(at("post.remove") < at("thread.unlock"));
        assert!(at("thread.unlock") < at("thread.lock"));
        assert!(at("thread.lock") < at("member.approve"));
        assert!(at("member.approve") < at("group.settings"));
    }
}

#[tokio::test]
async fn held_posts_bans_and_invitations_from_the_moderation_page() {
    let k = TestInstance::spawn(Backend::Sqlite).await;
    let (_admin, mut mo, mut cy) = group_with_moderator(&k).await;

    // Hold new members' first posts, with a default content warning.
    let saved = mo
        .post(
            "/g/rare/moderation/settings",
            &[
                ("visibility", "public"),
                ("join_policy", "open"),
                ("premoderation", "on"),
                ("member_count_hidden", "on"),
                ("default_content_warning", "Medical details"),
            ],
        )
        .await;
    assert_eq!(saved.location(), "/g/rare/moderation?done=mod_settings");
    let g = local_group(&k, "rare").await;
    assert!(g.premoderation && g.member_count_hidden);
    assert_eq!(
        g.default_content_warning.as_deref(),
        Some("Medical details")
    );
    mo.get("/g/rare/moderation")
        .await
        .shows(
            "name=\"premoderation\" value=\"on\" aria-describedby=\"premoderation-hint\" checked",
        )
        .shows("value=\"Medical details\"");

    // cy's first post waits for review; mo sees it and approves it.
    let posted = cy
        .post(
            "/g/rare/new",
            &[
                ("title", "First steps"),
                ("body", "**Hello** everyone"),
                ("action", "post"),
            ],
        )
        .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.body);
    let t = thread_id(posted.location());
    let row = db::posts::by_id(k.db(), t).await.expect("q").expect("post");
    assert!(row.held_at.is_some(), "the first post is held");
    let mut ann = sign_up(&k, "ann").await;
    assert_eq!(
        ann.get(&format!("/t/{t}")).await.status,
        StatusCode::NOT_FOUND
    );
    let page = mo.get("/g/rare/moderation").await;
    page.shows("First steps")
        .shows("<strong>Hello</strong> everyone")
        .shows(&format!("action=\"/posts/{t}/approve\""))
        .shows("name=\"from\" value=\"moderation\"");
    let approved = mo.post(&format!("/posts/{t}/approve"), &[]).await;
    assert_eq!(
        approved.location(),
        "/g/rare/moderation?done=post_approved",
        "{}",
        approved.body
    );
    assert_eq!(ann.get(&format!("/t/{t}")).await.status, StatusCode::OK);
    let again = mo.post(&format!("/posts/{t}/approve"), &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(
        again
            .error()
            .is_some_and(|e| e.contains("not waiting for review"))
    );

    // ann joins (open) and her first post is held; removed from the page.
    assert_eq!(
        ann.post("/g/rare/join", &[]).await.location(),
        "/g/rare?done=joined"
    );
    let held = ann
        .post(
            "/g/rare/new",
            &[("title", "Spam"), ("body", "Buy now"), ("action", "post")],
        )
        .await;
    let h = thread_id(held.location());
    let removed = mo
        .post(
            &format!("/posts/{h}/remove"),
            &[("reason", "advert"), ("from", "moderation")],
        )
        .await;
    assert_eq!(
        removed.location(),
        "/g/rare/moderation?done=post_removed",
        "{}",
        removed.body
    );
    let row = db::posts::by_id(k.db(), h).await.expect("q").expect("post");
    assert!(row.deleted_at.is_some());
    mo.get("/g/rare/moderation")
        .await
        .lacks(&format!("/posts/{h}/approve"));

    // Ban ann: her membership ends; the list shows why and who.
    let banned = mo
        .post(
            "/g/rare/moderation/bans",
            &[("handle", "ann"), ("reason", "adverts again")],
        )
        .await;
    assert_eq!(
        banned.location(),
        "/g/rare/moderation?done=banned",
        "{}",
        banned.body
    );
    assert_eq!(membership(&k, "ann", "rare").await, None);
    let page = mo.get("/g/rare/moderation?done=banned").await;
    page.shows("The person is banned from this group.")
        .shows(&format!("@ann@{}", k.domain))
        .shows("adverts again");
    // Twice: 409, the typed handle kept.
    let twice = mo
        .post(
            "/g/rare/moderation/bans",
            &[("handle", "ann"), ("reason", "")],
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert!(twice.error().is_some_and(|e| e.contains("already banned")));
    assert_eq!(twice.input_value("ban-handle").as_deref(), Some("ann"));
    // Nobody by that name: 404 on the page.
    let nobody = mo
        .post(
            "/g/rare/moderation/bans",
            &[("handle", "nobody"), ("reason", "")],
        )
        .await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
    assert!(nobody.error().is_some_and(|e| e.contains("nobody")));
    // A banned person cannot join again, nor be invited.
    let back = ann.post("/g/rare/join", &[]).await;
    assert_eq!(back.status, StatusCode::FORBIDDEN, "{}", back.body);
    let invited = mo
        .post("/g/rare/moderation/invite", &[("handle", "ann")])
        .await;
    assert_eq!(invited.status, StatusCode::CONFLICT);
    assert_eq!(invited.input_value("invite-handle").as_deref(), Some("ann"));
    // Unban: she can join.
    let ann_id = local_person(&k, "ann").await.id;
    let unbanned = mo
        .post(&format!("/g/rare/moderation/bans/{ann_id}/unban"), &[])
        .await;
    assert_eq!(unbanned.location(), "/g/rare/moderation?done=unbanned");
    mo.get("/g/rare/moderation")
        .await
        .shows("No one is banned.");
    assert_eq!(
        ann.post("/g/rare/join", &[]).await.location(),
        "/g/rare?done=joined"
    );

    // Invitations: a person by handle, and a link shown once.
    let _bo = sign_up(&k, "bo").await;
    let invited = mo
        .post("/g/rare/moderation/invite", &[("handle", "@bo")])
        .await;
    assert_eq!(
        invited.location(),
        "/g/rare/moderation?done=invited",
        "{}",
        invited.body
    );
    let link = mo.post("/g/rare/moderation/invite-link", &[]).await;
    assert_eq!(link.status, StatusCode::CREATED, "{}", link.body);
    let value = link.input_value("invite-link").expect("the link");
    assert!(
        value.starts_with(&format!("http://{}/g/rare?invite=", k.domain)),
        "{value}"
    );
    assert!(value.len() > format!("http://{}/g/rare?invite=", k.domain).len() + 16);
    mo.get("/g/rare/moderation").await.lacks(&value);
    let log = mo.get("/g/rare/moderation/log").await;
    log.shows("member.invite_link")
        .shows("member.invite")
        .shows("member.unban")
        .shows("member.ban")
        .shows("adverts again")
        .shows("post.approve");
}
