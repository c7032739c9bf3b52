//! The directory and group links over real HTTP: the moderators' "About this
//! group" form and what it puts on the group page and in directory searches
//! (by condition, by code), unlisted groups, and two groups linking up
//! through their moderation pages, a member sharing a thread across, and
//! unlinking — with everyone else kept out.

use kindred::db;
use reqwest::StatusCode;

use crate::{
    browser::Browser,
    helpers::{Backend, TestInstance, backends},
    visitor::Visitor,
    web::{PW, admin_of, local_group, sign_up},
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

/// The admin makes group `name`, and `moderator` (signed up now) runs it.
async fn group_run_by(
    admin: &mut Visitor,
    k: &TestInstance,
    name: &str,
    title: &str,
    moderator: &str,
) -> Visitor {
    let made = admin
        .post(
            "/admin/groups",
            &[("name", name), ("title", title), ("summary", "Peers.")],
        )
        .await;
    assert_eq!(
        made.location(),
        format!("/admin/groups/{name}?done=group_created"),
        "{}",
        made.body
    );
    let mo = sign_up(k, moderator).await;
    let given = admin
        .post(
            &format!("/admin/groups/{name}/roles"),
            &[("username", moderator), ("role", "moderator")],
        )
        .await;
    assert_eq!(
        given.location(),
        format!("/admin/groups/{name}?done=role_given"),
        "{}",
        given.body
    );
    mo
}

async fn join(v: &mut Visitor, group: &str) {
    assert_eq!(
        v.post(&format!("/g/{group}/join"), &[]).await.location(),
        format!("/g/{group}?done=joined")
    );
}

/// The id in a `/t/{id}?…` redirect.
fn thread_id(location: &str) -> i64 {
    location
        .strip_prefix("/t/")
        .and_then(|r| r.split(['?', '#']).next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not a thread address: {location}"))
}

/// The path of the first `…/moderation/links/{id}/{action}` form on a page.
fn link_button(body: &str, action: &str) -> String {
    body.split("action=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .find(|path| path.contains("/moderation/links/") && path.ends_with(&format!("/{action}")))
        .unwrap_or_else(|| panic!("no {action} button:\n{body}"))
        .to_string()
}

const ABOUT: [(&str, &str); 6] = [
    (
        "conditions",
        "Myasthenia gravis\nLambert-Eaton syndrome, LEMS",
    ),
    ("codes", "icd10:g70.0\norpha:0589"),
    ("tags", "neuromuscular, #Rare_Disease"),
    ("languages", "en, DE"),
    ("region", "de"),
    ("discoverable", "on"),
];

#[tokio::test]
async fn the_about_form_describes_a_group_on_its_page_and_in_the_directory() {
    for backend in backends() {
        let k = TestInstance::spawn(backend).await;
        let mut admin = admin_of(&k).await;
        open_signups(&mut admin).await;
        // The title says nothing of the condition: only the topics can match.
        let mut mo = group_run_by(&mut admin, &k, "mg", "Tired eyelids club", "mo").await;
        admin
            .post(
                "/admin/groups",
                &[("name", "ms"), ("title", "Multiple sclerosis")],
            )
            .await;

        // The form, with its help; listed by default.
        let form = mo.get("/g/mg/moderation").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        form.shows("<h2 id=\"about-h\">About this group</h2>")
            .shows("<label for=\"about-conditions\">")
            .shows("<label for=\"about-codes\">")
            .shows("<code>icd10</code>, <code>icd11</code>, <code>orpha</code> or <code>snomed</code>")
            .shows("<label for=\"about-discoverable\">List this group in directories</label>")
            .shows("name=\"discoverable\" value=\"on\" aria-describedby=\"about-discoverable-hint\" checked");

        let saved = mo.post("/g/mg/moderation/about", &ABOUT).await;
        assert_eq!(
            saved.location(),
            "/g/mg/moderation?done=about",
            "{}",
            saved.body
        );
        let topics = db::directory::topics_of(k.db(), &local_group(&k, "mg").await)
            .await
            .expect("topics");
        assert_eq!(
            topics.conditions,
            ["Myasthenia gravis", "Lambert-Eaton syndrome, LEMS"]
        );
        assert_eq!(topics.tags, ["neuromuscular", "rare_disease"]);
        assert_eq!(topics.languages, ["en", "de"]);
        assert_eq!(topics.region.as_deref(), Some("DE"));
        // Back on the form: the notice, and the values in their canonical
        // spelling.
        mo.get("/g/mg/moderation?done=about")
            .await
            .shows("What the group is about is saved")
            .shows(">icd10:G70.0\nORPHA:589</textarea>")
            .shows("value=\"neuromuscular, rare_disease\"");

        // The group page, to anyone.
        let mut visitor = Visitor::new(&k.base);
        let page = visitor.get("/g/mg").await;
        assert_eq!(page.status, StatusCode::OK);
        page.shows("<dl class=\"topics\">")
            .shows(">Myasthenia gravis</a>")
            .shows("Lambert-Eaton syndrome, LEMS")
            .shows("<code>ICD-10 G70.0</code>")
            .shows("<code>ORPHA:589</code>")
            .shows("#rare_disease")
            .shows("<dd>en, de</dd>")
            .shows("<dd>DE</dd>")
            .lacks("Linked groups");

        // The directory finds it by condition and by code, any spelling.
        let handle = format!("mg@{}", k.domain);
        let search = visitor.get("/directory?q=myasthenia+gravis").await;
        assert_eq!(search.status, StatusCode::OK);
        search
            .shows("<label for=\"q\">Search by condition, code or name</label>")
            .shows("myasthenia gravis</kbd> or <kbd>ORPHA:589")
            .shows("Tired eyelids club")
            .shows(&handle)
            .shows("on this instance")
            .shows("<code>ORPHA:589</code>")
            .shows("Sign in to join")
            .lacks("Multiple sclerosis")
            .lacks("action=\"/g/mg/join\"");
        for q in [
            "orpha:589",
            "ORPHA:589",
            "icd10:G70.0",
            "G70.0",
            "rare_disease",
        ] {
            visitor
                .get(&format!("/directory?q={}", q.replace(':', "%3A")))
                .await
                .shows("Tired eyelids club")
                .lacks("Multiple sclerosis");
        }
        visitor
            .get("/directory?q=orpha%3A590")
            .await
            .shows("No group found")
            .lacks("Tired eyelids club");

        // Signed in: one click joins; then it says so.
        let mut cy = sign_up(&k, "cy").await;
        let listed = cy.get("/directory?q=orpha%3A589").await;
        listed
            .shows("action=\"/g/mg/join\"")
            .shows("Join<span class=\"visually-hidden\"> Tired eyelids club</span>")
            .lacks("Sign in to join");
        assert_eq!(
            cy.post("/g/mg/join", &[]).await.location(),
            "/g/mg?done=joined"
        );
        cy.get("/directory?q=orpha%3A589")
            .await
            .shows("<p class=\"state\">Member</p>")
            .lacks("action=\"/g/mg/join\"")
            .shows("1 member");
    }
}

#[tokio::test]
async fn a_bad_code_is_refused_with_a_message_and_nothing_is_saved() {
    for backend in backends() {
        let k = TestInstance::spawn(backend).await;
        let mut admin = admin_of(&k).await;
        open_signups(&mut admin).await;
        let mut mo = group_run_by(&mut admin, &k, "mg", "Tired eyelids club", "mo").await;

        let cases: [(&str, &str, &str); 3] = [
            (
                "codes",
                "mesh:D009157",
                "Unknown code system &#39;mesh&#39;",
            ),
            ("codes", "icd10:G7", "not a valid ICD-10 code"),
            ("region", "Germany", "is not a region"),
        ];
        for (field, value, why) in cases {
            let mut fields: Vec<(&str, &str)> =
                ABOUT.iter().copied().filter(|(f, _)| *f != field).collect();
            fields.push((field, value));
            let bad = mo.post("/g/mg/moderation/about", &fields).await;
            assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{why}: {}", bad.body);
            let err = bad.error().unwrap_or_default();
            assert!(err.contains(why), "{why}: {err}");
            // What was typed is still there, to correct.
            bad.shows("Myasthenia gravis\nLambert-Eaton syndrome, LEMS</textarea>");
            if field == "codes" {
                bad.shows(&format!(">{value}</textarea>"));
            } else {
                assert_eq!(bad.input_value("about-region").as_deref(), Some(value));
            }
            let topics = db::directory::topics_of(k.db(), &local_group(&k, "mg").await)
                .await
                .expect("topics");
            assert!(topics.is_empty(), "{why}: {topics:?}");
        }
        // A forged token: 403, nothing saved either.
        let mut forged_fields = vec![("csrf", "forged-token-forged-token-forged-token")];
        forged_fields.extend_from_slice(&ABOUT);
        let forged = mo.post_raw("/g/mg/moderation/about", &forged_fields).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        assert!(forged.error().is_some_and(|e| e.contains("expired")));
        let g = local_group(&k, "mg").await;
        assert!(
            db::directory::topics_of(k.db(), &g)
                .await
                .expect("topics")
                .is_empty()
        );
        Visitor::new(&k.base)
            .get("/g/mg")
            .await
            .lacks("<dl class=\"topics\">");
    }
}

#[tokio::test]
async fn an_unlisted_group_is_not_in_the_directory() {
    for backend in backends() {
        let k = TestInstance::spawn(backend).await;
        let mut admin = admin_of(&k).await;
        open_signups(&mut admin).await;
        let mut mo = group_run_by(&mut admin, &k, "mg", "Tired eyelids club", "mo").await;
        admin
            .post(
                "/admin/groups",
                &[("name", "ms"), ("title", "Multiple sclerosis")],
            )
            .await;
        let mut visitor = Visitor::new(&k.base);
        visitor.get("/directory").await.shows("Tired eyelids club");

        let unlisted: Vec<(&str, &str)> = ABOUT
            .iter()
            .copied()
            .filter(|(f, _)| *f != "discoverable")
            .collect();
        let saved = mo.post("/g/mg/moderation/about", &unlisted).await;
        assert_eq!(
            saved.location(),
            "/g/mg/moderation?done=about",
            "{}",
            saved.body
        );
        assert!(!local_group(&k, "mg").await.discoverable);
        mo.get("/g/mg/moderation")
            .await
            .lacks("name=\"discoverable\" value=\"on\" aria-describedby=\"about-discoverable-hint\" checked");

        let mut cy = sign_up(&k, "cy").await;
        for v in [&mut visitor, &mut cy] {
            v.get("/directory")
                .await
                .lacks("Tired eyelids club")
                .shows("Multiple sclerosis");
            for q in ["myasthenia", "orpha%3A589", "Tired"] {
                v.get(&format!("/directory?q={q}"))
                    .await
                    .lacks("Tired eyelids club")
                    .shows("No group found");
            }
        }
        // Its page is still there, topics and all.
        visitor
            .get("/g/mg")
            .await
            .shows("Tired eyelids club")
            .shows("<code>ORPHA:589</code>");
    }
}

#[tokio::test]
async fn two_groups_link_share_a_thread_and_unlink() {
    for backend in backends() {
        let k = TestInstance::spawn(backend).await;
        let mut admin = admin_of(&k).await;
        open_signups(&mut admin).await;
        let mut mo = group_run_by(&mut admin, &k, "mg", "Myasthenia gravis", "mo").await;
        let mut lu = group_run_by(&mut admin, &k, "lems", "Lambert-Eaton", "lu").await;
        let mut cy = sign_up(&k, "cy").await;
        join(&mut cy, "mg").await;
        join(&mut cy, "lems").await;
        let mut ann = sign_up(&k, "ann").await;
        join(&mut ann, "mg").await;
        let (mg, lems) = (local_group(&k, "mg").await, local_group(&k, "lems").await);
        let mg_handle = format!("mg@{}", k.domain);
        let lems_handle = format!("lems@{}", k.domain);

        // The section, empty.
        mo.get("/g/mg/moderation")
            .await
            .shows("<h2 id=\"links-h\">Linked groups</h2>")
            .shows("not linked with another yet")
            .shows("<label for=\"link-handle\">");

        // mg asks lems.
        let asked = mo
            .post("/g/mg/moderation/links", &[("handle", &lems_handle)])
            .await;
        assert_eq!(
            asked.location(),
            "/g/mg/moderation?done=link_requested",
            "{}",
            asked.body
        );
        let waiting = mo.get("/g/mg/moderation?done=link_requested").await;
        waiting
            .shows("The request to link is sent")
            .shows("Waiting for an answer")
            .shows(&lems_handle)
            .shows("Withdraw");
        // Asking twice: 409 and a message.
        let again = mo
            .post("/g/mg/moderation/links", &[("handle", &lems_handle)])
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
        assert!(
            again.error().is_some_and(|e| e.contains("already asked")),
            "{:?}",
            again.error()
        );
        assert_eq!(
            again.input_value("link-handle").as_deref(),
            Some(lems_handle.as_str())
        );
        // Not linked until lems says yes.
        Visitor::new(&k.base)
            .get("/g/mg")
            .await
            .lacks("Linked groups");

        // lems's moderator sees the request and accepts.
        let inbox = lu.get("/g/lems/moderation").await;
        inbox
            .shows("Asking to link with this group")
            .shows(&mg_handle)
            .shows("Refuse");
        let accept = link_button(&inbox.body, "accept");
        assert!(accept.starts_with("/g/lems/moderation/links/"), "{accept}");
        // Not for mg's moderator to answer through lems.
        assert_eq!(mo.post(&accept, &[]).await.status, StatusCode::FORBIDDEN);
        let accepted = lu.post(&accept, &[]).await;
        assert_eq!(
            accepted.location(),
            "/g/lems/moderation?done=link_accepted",
            "{}",
            accepted.body
        );
        lu.get("/g/lems/moderation?done=link_accepted")
            .await
            .shows("The groups are linked")
            .lacks("Asking to link with this group")
            .shows("Unlink");
        // Already linked: asking again from either side is a 409.
        let dup = lu
            .post("/g/lems/moderation/links", &[("handle", &mg_handle)])
            .await;
        assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.body);
        assert!(dup.error().is_some_and(|e| e.contains("already linked")));

        // Both pages list the other, to anyone.
        let mut visitor = Visitor::new(&k.base);
        visitor
            .get("/g/mg")
            .await
            .shows("<h2 id=\"linked-h\">Linked groups</h2>")
            .shows("<a href=\"/g/lems\">Lambert-Eaton</a>")
            .shows(&lems_handle);
        visitor
            .get("/g/lems")
            .await
            .shows("<h2 id=\"linked-h\">Linked groups</h2>")
            .shows("<a href=\"/g/mg\">Myasthenia gravis</a>")
            .shows(&mg_handle);

        // cy, a member of both, shares a thread of mg into lems.
        let posted = cy
            .post(
                "/g/mg/new",
                &[
                    ("title", "Eye drops that help"),
                    ("body", "What works for you?"),
                    ("action", "post"),
                ],
            )
            .await;
        let op = thread_id(posted.location());
        let thread = cy.get(&format!("/t/{op}")).await;
        thread
            .shows("<h2 id=\"share-h\">Share into a linked group</h2>")
            .shows("<label for=\"share-target\">")
            .shows(&format!(
                "<option value=\"{}\">Lambert-Eaton ({lems_handle})</option>",
                lems.id
            ));
        // ann is not in lems: nothing to share into; visitors see no form.
        ann.get(&format!("/t/{op}")).await.lacks("share-h");
        visitor.get(&format!("/t/{op}")).await.lacks("share-h");
        // A group that is not linked: a message, no thread.
        let not_linked = cy
            .post(
                &format!("/t/{op}/share"),
                &[("target", &mg.id.to_string()), ("comment", "Look")],
            )
            .await;
        assert_eq!(
            not_linked.status,
            StatusCode::BAD_REQUEST,
            "{}",
            not_linked.body
        );
        assert!(
            not_linked.error().is_some_and(|e| e.contains("not linked")),
            "{:?}",
            not_linked.error()
        );
        not_linked.shows(">Look</textarea>");
        let shared = cy
            .post(
                &format!("/t/{op}/share"),
                &[
                    ("target", &lems.id.to_string()),
                    ("comment", "Seen in the MG group"),
                ],
            )
            .await;
        assert_eq!(shared.status, StatusCode::SEE_OTHER, "{}", shared.body);
        let new = thread_id(shared.location());
        assert_ne!(new, op);
        let row = db::posts::by_id(k.db(), new)
            .await
            .expect("query")
            .expect("the shared thread");
        assert_eq!(row.group_id, lems.id);
        assert_eq!(row.thread_id, None);
        assert_eq!(row.title.as_deref(), Some("Eye drops that help"));
        let original = db::posts::by_id(k.db(), op)
            .await
            .expect("query")
            .expect("the thread");
        let there = cy.get(&format!("/t/{new}")).await;
        there
            .shows("Seen in the MG group")
            .shows(&format!("Shared from {mg_handle}"))
            .shows(&format!("href=\"{}\"", original.ap_id))
            .shows("<a href=\"/g/lems\">Lambert-Eaton</a>");

        // mg unlinks: gone from both pages and both moderation pages.
        let page = mo.get("/g/mg/moderation").await;
        let remove = link_button(&page.body, "remove");
        let removed = mo.post(&remove, &[]).await;
        assert_eq!(
            removed.location(),
            "/g/mg/moderation?done=unlinked",
            "{}",
            removed.body
        );
        for g in ["/g/mg", "/g/lems"] {
            visitor.get(g).await.lacks("Linked groups");
        }
        lu.get("/g/lems/moderation")
            .await
            .shows("not linked with another yet")
            .lacks(&mg_handle);
        cy.get(&format!("/t/{op}")).await.lacks("share-h");
        assert!(
            db::links::of_group(k.db(), mg.id)
                .await
                .expect("links")
                .is_empty()
        );
        assert!(
            db::links::of_group(k.db(), lems.id)
                .await
                .expect("links")
                .is_empty()
        );
    }
}

#[tokio::test]
async fn link_requests_that_cannot_be_are_refused_on_the_page() {
    for backend in backends() {
        let k = TestInstance::spawn(backend).await;
        let mut admin = admin_of(&k).await;
        open_signups(&mut admin).await;
        let mut mo = group_run_by(&mut admin, &k, "mg", "Myasthenia gravis", "mo").await;
        let mut lu = group_run_by(&mut admin, &k, "closed", "Closed circle", "lu").await;
        let mut cy = sign_up(&k, "cy").await;
        join(&mut cy, "mg").await;
        let mg = local_group(&k, "mg").await;

        // A member who is not staff: 403, nothing asked.
        let denied = cy
            .post("/g/mg/moderation/links", &[("handle", "closed")])
            .await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.body);
        denied.shows("owner and moderators");
        assert!(
            db::links::of_group(k.db(), mg.id)
                .await
                .expect("links")
                .is_empty()
        );
        let mut stranger = Visitor::new(&k.base);
        let anon = stranger
            .post("/g/mg/moderation/links", &[("handle", "closed")])
            .await;
        assert_eq!(anon.status, StatusCode::SEE_OTHER);
        assert!(
            anon.location().starts_with("/signin"),
            "{}",
            anon.location()
        );

        // A group that does not exist: 404, the address kept.
        let unknown = mo
            .post("/g/mg/moderation/links", &[("handle", "nobody")])
            .await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
        assert!(
            unknown
                .error()
                .is_some_and(|e| e.contains("No group found at &#39;nobody&#39;")),
            "{:?}",
            unknown.error()
        );
        assert_eq!(
            unknown.input_value("link-handle").as_deref(),
            Some("nobody")
        );
        // Itself: 400.
        let itself = mo.post("/g/mg/moderation/links", &[("handle", "mg")]).await;
        assert_eq!(itself.status, StatusCode::BAD_REQUEST, "{}", itself.body);

        // A members-only group does not link: 400, and it says why.
        let made_private = lu
            .post(
                "/g/closed/moderation/settings",
                &[("visibility", "members"), ("join_policy", "approval")],
            )
            .await;
        assert_eq!(
            made_private.location(),
            "/g/closed/moderation?done=mod_settings",
            "{}",
            made_private.body
        );
        let private = mo
            .post(
                "/g/mg/moderation/links",
                &[("handle", &format!("closed@{}", k.domain))],
            )
            .await;
        assert_eq!(private.status, StatusCode::BAD_REQUEST, "{}", private.body);
        assert!(
            private
                .error()
                .is_some_and(|e| e.contains("only public groups link")),
            "{:?}",
            private.error()
        );
        // Its own moderation page says so too.
        lu.get("/g/closed/moderation")
            .await
            .shows("Only public groups link: make this one public first.");
        assert!(
            db::links::of_group(k.db(), mg.id)
                .await
                .expect("links")
                .is_empty()
        );
        // A member cannot answer for the moderators either.
        assert_eq!(
            cy.post("/g/mg/moderation/links/1/accept", &[]).await.status,
            StatusCode::FORBIDDEN
        );
    }
}

/// The new pages and sections pass axe-core in Chromium: the directory's
/// results (to a visitor and to a member), a group's About and Linked groups,
/// the moderation page with every kind of link and with an error, and the
/// share form on a thread.
#[tokio::test]
async fn the_directory_and_link_pages_pass_axe() {
    let k = TestInstance::spawn(Backend::Sqlite).await;
    let mut admin = admin_of(&k).await;
    open_signups(&mut admin).await;
    let mut mo = group_run_by(&mut admin, &k, "mg", "Myasthenia gravis", "mo").await;
    let mut lu = group_run_by(&mut admin, &k, "lems", "Lambert-Eaton", "lu").await;
    let mut ci = group_run_by(&mut admin, &k, "cidp", "CIDP", "ci").await;
    admin
        .post(
            "/admin/groups",
            &[("name", "eds"), ("title", "Ehlers-Danlos")],
        )
        .await;
    let about = mo.post("/g/mg/moderation/about", &ABOUT).await;
    assert_eq!(about.status, StatusCode::SEE_OTHER, "{}", about.body);
    // mg is linked with lems, asked by cidp, and waits for eds.
    mo.post("/g/mg/moderation/links", &[("handle", "lems")])
        .await;
    let inbox = lu.get("/g/lems/moderation").await;
    lu.post(&link_button(&inbox.body, "accept"), &[]).await;
    ci.post("/g/cidp/moderation/links", &[("handle", "mg")])
        .await;
    mo.post("/g/mg/moderation/links", &[("handle", "eds")])
        .await;
    let mut cy = sign_up(&k, "cy").await;
    join(&mut cy, "mg").await;
    join(&mut cy, "lems").await;
    let posted = cy
        .post(
            "/g/mg/new",
            &[
                ("title", "Eye drops"),
                ("body", "What helps?"),
                ("action", "post"),
            ],
        )
        .await;
    let op = thread_id(posted.location());

    let br = Browser::start().await;
    br.goto(&format!("{}/directory?q=orpha%3A589", k.base))
        .await;
    br.sees("Sign in to join").await;
    br.check("directory-visitor").await;
    br.goto(&format!("{}/g/mg", k.base)).await;
    br.sees("Linked groups").await;
    br.check("group-about-linked").await;

    for (who, then) in [("mo", "moderation"), ("cy", "share")] {
        br.goto(&format!("{}/signin", k.base)).await;
        br.fill("#username", who).await;
        br.fill("#password", PW).await;
        br.press("Sign in").await;
        if then == "moderation" {
            br.goto(&format!("{}/g/mg/moderation", k.base)).await;
            br.sees("Asking to link with this group").await;
            br.sees("Waiting for an answer").await;
            br.check("moderation-about-links").await;
            br.fill("#about-codes", "mesh:D009157").await;
            br.press("Save what the group is about").await;
            br.sees("Unknown code system").await;
            br.check("moderation-about-error").await;
            br.fill("#link-handle", "nobody").await;
            br.press("Ask to link").await;
            br.sees("No group found").await;
            br.check("moderation-link-error").await;
            br.press(&format!("Sign out {who}")).await;
        } else {
            br.goto(&format!("{}/directory", k.base)).await;
            br.sees("Member").await;
            br.check("directory-member").await;
            br.goto(&format!("{}/t/{op}", k.base)).await;
            br.sees("Share into a linked group").await;
            br.check("thread-share").await;
            br.press("Share").await;
            br.sees("Shared from").await;
        }
    }
    br.close().await;
}
