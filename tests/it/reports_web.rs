//! Reports and a member's data rights over real HTTP: a member reports a
//! post through the form, the group's moderator handles it on `/reports`
//! (and nobody else sees that page); a member downloads their archive and
//! deletes their account from their settings.

use kindred::db;
use reqwest::{StatusCode, header};

use crate::{
    helpers::{TestInstance, backends},
    visitor::Visitor,
    web::{PW, admin_of, local_group, local_person, sign_up},
};

/// The id in a `/t/{id}?…` redirect.
fn thread_id(location: &str) -> i64 {
    location
        .strip_prefix("/t/")
        .and_then(|r| r.split(['?', '#']).next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not a thread address: {location}"))
}

/// The first `/reports/{id}/close` form on a page.
fn first_report_id(body: &str) -> i64 {
    let at = body
        .find("action=\"/reports/")
        .unwrap_or_else(|| panic!("no report form on the page:\n{body}"));
    let rest = &body[at + "action=\"/reports/".len()..];
    rest[..rest.find('/').expect("id end")]
        .parse()
        .expect("report id")
}

/// An admin with open sign-ups; a group `rare` with `mo` as its moderator;
/// `cy`, a member who posted a thread there (its id is returned).
async fn group_with_a_thread(k: &TestInstance) -> (Visitor, Visitor, Visitor, i64) {
    let mut admin = admin_of(k).await;
    let opened = admin
        .post(
            "/admin",
            &[
                ("name", "Rare Together"),
                ("description", "Groups for rare conditions."),
                ("registration_mode", "open"),
            ],
        )
        .await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.body);
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
    let mut cy = sign_up(k, "cy").await;
    assert_eq!(
        cy.post("/g/rare/join", &[]).await.location(),
        "/g/rare?done=joined"
    );
    let posted = cy
        .post(
            "/g/rare/new",
            &[
                ("title", "Night shifts"),
                ("body", "I **rarely** sleep before dawn"),
                ("action", "post"),
            ],
        )
        .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.body);
    let t = thread_id(posted.location());
    (admin, mo, cy, t)
}

#[tokio::test]
async fn a_member_reports_a_post_and_its_moderator_resolves_it() {
    for backend in backends() {
        let k = TestInstance::spawn(backend).await;
        let (_admin, mut mo, mut cy, t) = group_with_a_thread(&k).await;
        let mut ann = sign_up(&k, "ann").await;
        let report_path = format!("/posts/{t}/report");

        // A signed-in reader sees a Report link on someone else's post; the
        // author does not, on their own; nor does a visitor.
        ann.get(&format!("/t/{t}"))
            .await
            .shows(&format!("href=\"{report_path}\""));
        cy.get(&format!("/t/{t}"))
            .await
            .lacks(&format!("href=\"{report_path}\""));
        let mut visitor = Visitor::new(&k.base);
        visitor
            .get(&format!("/t/{t}"))
            .await
            .lacks(&format!("href=\"{report_path}\""));
        // The form is for signed-in people: a visitor is sent to sign in.
        let to_signin = visitor.get(&report_path).await;
        assert_eq!(to_signin.status, StatusCode::SEE_OTHER);
        assert_eq!(
            to_signin.location(),
            format!("/signin?next=%2Fposts%2F{t}%2Freport")
        );
        // A post that does not exist has no form.
        assert_eq!(
            ann.get("/posts/999999/report").await.status,
            StatusCode::NOT_FOUND
        );

        // The form, with the post it is about.
        let form = ann.get(&report_path).await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        form.shows("<label for=\"comment\">What is wrong?</label>")
            .shows("maxlength=\"2000\"")
            .shows("<strong>rarely</strong>")
            .shows(&format!("action=\"{report_path}\""));

        // A forged token files nothing; the page says why, with what was typed.
        let forged = ann
            .post_raw(
                &report_path,
                &[
                    ("csrf", "forged-token-forged-token-forged-token"),
                    ("comment", "Forged"),
                ],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        assert!(forged.error().is_some_and(|e| e.contains("expired")));
        forged.shows(">Forged</textarea>");
        // Too long: 400, the message, nothing filed.
        let long = "x".repeat(2001);
        let too_long = ann.post(&report_path, &[("comment", &long)]).await;
        assert_eq!(
            too_long.status,
            StatusCode::BAD_REQUEST,
            "{}",
            too_long.body
        );
        assert_eq!(
            too_long.error().as_deref(),
            Some("A report has at most 2000 characters")
        );
        // Nobody reports themselves.
        let own = cy.post(&report_path, &[("comment", "Me")]).await;
        assert_eq!(own.status, StatusCode::BAD_REQUEST, "{}", own.body);
        assert_eq!(own.error().as_deref(), Some("You cannot report yourself"));
        let g = local_group(&k, "rare").await;
        assert!(
            db::moderation::reports(k.db(), vec![g.id], true, 10)
                .await
                .expect("reports")
                .is_empty(),
            "nothing was filed yet"
        );

        // Filed: back to the thread, with thanks.
        let filed = ann
            .post(
                &report_path,
                &[("comment", "<b>Rude</b> & off-topic, 1 < 2 \"quoted\"")],
            )
            .await;
        assert_eq!(filed.status, StatusCode::SEE_OTHER, "{}", filed.body);
        assert_eq!(filed.location(), format!("/t/{t}?done=reported#p{t}"));
        ann.get(&format!("/t/{t}?done=reported"))
            .await
            .shows("Thank you: the group&#39;s moderators will look at it.");
        let rows = db::moderation::reports(k.db(), vec![g.id], true, 10)
            .await
            .expect("reports");
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.reporter_id, local_person(&k, "ann").await.id);
        assert_eq!(r.target_actor_id, Some(local_person(&k, "cy").await.id));
        assert_eq!(r.post_id, Some(t));
        assert_eq!(r.group_id, Some(g.id));
        assert_eq!(r.status, "open");

        // The moderator: a Reports link, and the report with what was said
        // (as text: the service keeps no tags, the page escapes), the post (rendered), its author and group, who reported.
        mo.get("/").await.shows("<a href=\"/reports\">Reports</a>");
        ann.get("/").await.lacks("<a href=\"/reports\">Reports</a>");
        let list = mo.get("/reports").await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.body);
        list.shows("Rude &#38; off-topic, 1 &#60; 2 &#34;quoted&#34;")
            .lacks("<b>Rude</b>")
            .lacks("1 < 2")
            .shows("<strong>rarely</strong>")
            .shows(&format!("@cy@{}", k.domain))
            .shows("Rare things")
            .shows(&format!(
                "Reported by ann <span class=\"handle\">@ann@{}",
                k.domain
            ))
            .shows("Status: <strong>Open</strong>")
            .shows("name=\"outcome\" value=\"resolved\"")
            .shows("name=\"outcome\" value=\"dismissed\"")
            .lacks("Forward to their instance");
        let id = first_report_id(&list.body);
        assert_eq!(id, r.id);

        // A plain member may not see or handle reports.
        let denied = ann.get("/reports").await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        denied.shows("Only moderators and admins see reports");
        let denied = ann
            .post(&format!("/reports/{id}/close"), &[("outcome", "dismissed")])
            .await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        let still = db::moderation::report_by_id(k.db(), id)
            .await
            .expect("q")
            .expect("report");
        assert_eq!(still.status, "open");

        // A report about someone here cannot be forwarded anywhere.
        let local = mo.post(&format!("/reports/{id}/forward"), &[]).await;
        assert_eq!(local.status, StatusCode::BAD_REQUEST, "{}", local.body);
        assert!(
            local
                .error()
                .is_some_and(|e| e.contains("on this instance")),
            "{:?}",
            local.error()
        );
        let unchanged = db::moderation::report_by_id(k.db(), id)
            .await
            .expect("q")
            .expect("report");
        assert!(unchanged.forwarded_at.is_none());

        // Resolved, with a note.
        let closed = mo
            .post(
                &format!("/reports/{id}/close"),
                &[("outcome", "resolved"), ("resolution", "Talked to cy")],
            )
            .await;
        assert_eq!(closed.status, StatusCode::SEE_OTHER, "{}", closed.body);
        assert_eq!(closed.location(), "/reports?done=report_resolved");
        let after = mo.get("/reports?done=report_resolved").await;
        after
            .shows("The report is marked resolved.")
            .shows("Status: <strong>Resolved</strong>")
            .shows("Resolved by mo: Talked to cy")
            .lacks(&format!("action=\"/reports/{id}/close\""));
        let row = db::moderation::report_by_id(k.db(), id)
            .await
            .expect("q")
            .expect("report");
        assert_eq!(row.status, "resolved");
        assert_eq!(row.resolution.as_deref(), Some("Talked to cy"));

        // Closing it again: 409, said on the page, nothing changed.
        let again = mo
            .post(
                &format!("/reports/{id}/close"),
                &[("outcome", "dismissed"), ("resolution", "oops")],
            )
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
        assert_eq!(
            again.error().as_deref(),
            Some("This report was already closed")
        );
        again.shows("<h1>Reports</h1>");
        let row = db::moderation::report_by_id(k.db(), id)
            .await
            .expect("q")
            .expect("report");
        assert_eq!(row.status, "resolved");
        assert_eq!(row.resolution.as_deref(), Some("Talked to cy"));
    }
}

#[tokio::test]
async fn a_member_downloads_their_data_and_deletes_their_account() {
    for backend in backends() {
        let k = TestInstance::spawn(backend).await;
        let (_admin, _mo, mut cy, t) = group_with_a_thread(&k).await;
        let mut ann = sign_up(&k, "ann").await;
        let g = local_group(&k, "rare").await;
        let cy_row = local_person(&k, "cy").await;

        // The settings page offers both.
        cy.get("/settings")
            .await
            .shows("<h2 id=\"data-h\">Your data</h2>")
            .shows("href=\"/me/export\"")
            .shows("href=\"/me/delete\"");

        // The archive: an attachment, never cached, with the post and the
        // membership.
        let file = cy.get("/me/export").await;
        assert_eq!(file.status, StatusCode::OK, "{}", file.body);
        assert_eq!(
            file.headers
                .get(header::CONTENT_DISPOSITION)
                .and_then(|v| v.to_str().ok()),
            Some("attachment; filename=\"kindred-cy.json\"")
        );
        assert_eq!(
            file.headers
                .get(header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
            Some("private, no-store")
        );
        let archive: serde_json::Value = serde_json::from_str(&file.body).expect("JSON");
        let items = archive["outbox"]["orderedItems"]
            .as_array()
            .expect("outbox items");
        assert_eq!(items.len(), 1, "{archive:#}");
        assert_eq!(items[0]["type"], "Create");
        assert!(
            items[0]["object"]["content"]
                .as_str()
                .is_some_and(|c| c.contains("<strong>rarely</strong> sleep before dawn")),
            "{archive:#}"
        );
        assert_eq!(items[0]["audience"], g.ap_id.as_str());
        let follows = archive["following"]["orderedItems"]
            .as_array()
            .expect("memberships");
        assert!(
            follows
                .iter()
                .any(|f| f["object"] == g.ap_id.as_str() && f["state"] == "accepted"),
            "{archive:#}"
        );
        assert_eq!(archive["actor"]["id"], cy_row.ap_id.as_str());
        // Only for the signed-in member.
        let mut visitor = Visitor::new(&k.base);
        let to_signin = visitor.get("/me/export").await;
        assert_eq!(to_signin.status, StatusCode::SEE_OTHER);
        assert_eq!(to_signin.location(), "/signin?next=%2Fme%2Fexport");

        // The deletion page says what happens.
        let page = cy.get("/me/delete").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.shows("a deletion notice goes to every server that received them")
            .shows("Your memberships end")
            .shows("Your name cannot be taken by anyone else")
            .shows("This cannot be undone")
            .shows("<label for=\"password\">Your password</label>")
            .shows("class=\"danger\"");

        // A wrong password: 403, the message, and the account still works.
        let wrong = cy
            .post("/me/delete", &[("password", "not my password")])
            .await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.body);
        assert_eq!(wrong.error().as_deref(), Some("The password is not right"));
        assert!(cy.signed_in());
        assert_eq!(cy.get("/settings").await.status, StatusCode::OK);
        assert!(
            db::users::by_actor_id(k.db(), cy_row.id)
                .await
                .expect("q")
                .is_some()
        );
        // A forged token deletes nothing either.
        let forged = cy
            .post_raw(
                "/me/delete",
                &[
                    ("csrf", "forged-token-forged-token-forged-token"),
                    ("password", PW),
                ],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        assert!(forged.error().is_some_and(|e| e.contains("expired")));
        assert_eq!(
            ann.get(&format!("/t/{t}")).await.status,
            StatusCode::OK,
            "the post is still there"
        );

        // The right password: gone, signed out, told so.
        let old_cookies = cy.cookies.clone();
        let deleted = cy.post("/me/delete", &[("password", PW)]).await;
        assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.body);
        assert_eq!(deleted.location(), "/?done=account_deleted");
        assert!(!cy.signed_in(), "the session cookie is cleared");
        cy.get("/?done=account_deleted")
            .await
            .shows("Your account was deleted.");
        // The old session is no session on the server either.
        let mut replay = Visitor::new(&k.base);
        replay.cookies = old_cookies;
        assert!(
            replay
                .get("/settings")
                .await
                .location()
                .starts_with("/signin")
        );
        // Signing in fails.
        let mut again = Visitor::new(&k.base);
        let signin = again
            .post("/signin", &[("username", "cy"), ("password", PW)])
            .await;
        assert_eq!(signin.status, StatusCode::UNAUTHORIZED, "{}", signin.body);
        assert!(!again.signed_in());
        // The post is gone for readers.
        assert_eq!(
            ann.get(&format!("/t/{t}")).await.status,
            StatusCode::NOT_FOUND
        );
        // The name stays taken.
        let mut thief = Visitor::new(&k.base);
        let taken = thief
            .post(
                "/signup",
                &[("username", "cy"), ("password", PW), ("confirm", PW)],
            )
            .await;
        assert_ne!(taken.status, StatusCode::SEE_OTHER, "{}", taken.body);
        assert!(!thief.signed_in());
        assert!(
            db::users::by_actor_id(k.db(), cy_row.id)
                .await
                .expect("q")
                .is_none()
        );
        let tomb = db::actors::by_id(k.db(), cy_row.id)
            .await
            .expect("q")
            .expect("tombstone");
        assert!(tomb.deleted_at.is_some());
    }
}
