//! The web app over real HTTP: every page and form, the registration modes,
//! and bad input (missing and oversized fields, bad names, duplicates, wrong
//! passwords, expired sessions, forged CSRF tokens, too many sign-ins), each
//! answered with a message on the page and no change.

use kindred::db::entities::{post, session, user};
use reqwest::StatusCode;
use sea_orm::{EntityTrait, PaginatorTrait};

use crate::{
    helpers::{Backend, TestInstance, backends},
    visitor::Visitor,
};

pub const PW: &str = "a long enough password";

async fn users(k: &TestInstance) -> u64 {
    user::Entity::find().count(k.db()).await.expect("count")
}

/// Set up `k` through the web: returns the signed-in admin.
pub async fn admin_of(k: &TestInstance) -> Visitor {
    let mut admin = Visitor::new(&k.base);
    let page = admin
        .post(
            "/setup",
            &[
                ("instance_name", "Rare Together"),
                ("username", "root"),
                ("password", PW),
                ("confirm", PW),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(admin.signed_in());
    admin
}

async fn set_mode(admin: &mut Visitor, mode: &str) {
    let page = admin
        .post(
            "/admin",
            &[
                ("name", "Rare Together"),
                ("description", "Groups for rare conditions."),
                ("registration_mode", mode),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
}

#[tokio::test]
async fn the_first_visitor_creates_the_admin_account() {
    for backend in backends() {
        let k = TestInstance::spawn(backend).await;
        let mut v = Visitor::new(&k.base);
        // A fresh install sends everyone to the setup page.
        assert_eq!(v.get("/").await.location(), "/setup");
        assert_eq!(v.get("/signin").await.location(), "/setup");
        let form = v.get("/setup").await;
        assert_eq!(form.status, StatusCode::OK);
        form.shows("<label for=\"username\">")
            .shows("name=\"csrf\"");

        // A forged CSRF token: a message, the typed name kept, nothing made.
        let forged = v
            .post_raw(
                "/setup",
                &[
                    ("csrf", "forged-token-forged-token-forged-token"),
                    ("instance_name", "Rare Together"),
                    ("username", "root"),
                    ("password", PW),
                    ("confirm", PW),
                ],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        assert!(forged.error().is_some_and(|e| e.contains("expired")));
        assert_eq!(forged.input_value("username").as_deref(), Some("root"));
        assert_eq!(users(&k).await, 0);

        // Passwords that differ, a bad name, an empty instance name.
        let cases: [(&[(&str, &str)], &str); 3] = [
            (
                &[
                    ("instance_name", "X"),
                    ("username", "root"),
                    ("password", PW),
                    ("confirm", "other password"),
                ],
                "not the same",
            ),
            (
                &[
                    ("instance_name", "X"),
                    ("username", "Root Admin"),
                    ("password", PW),
                    ("confirm", PW),
                ],
                "may contain only",
            ),
            (
                &[
                    ("instance_name", " "),
                    ("username", "root"),
                    ("password", PW),
                    ("confirm", PW),
                ],
                "instance name",
            ),
        ];
        for (fields, why) in cases {
            let page = v.post("/setup", fields).await;
            assert_eq!(page.status, StatusCode::BAD_REQUEST, "{why}: {}", page.body);
            let err = page.error().unwrap_or_default();
            assert!(err.contains(why), "{why}: {err}");
            page.lacks(PW);
        }
        assert_eq!(users(&k).await, 0);

        let admin = admin_of(&k).await;
        assert_eq!(users(&k).await, 1);
        let mut admin = admin;
        let page = admin.get("/admin?done=setup").await;
        assert_eq!(page.status, StatusCode::OK);
        page.shows("Rare Together").shows("you are its admin");

        // Nobody gets a second go.
        let mut late = Visitor::new(&k.base);
        assert_eq!(late.get("/setup").await.location(), "/");
        let again = late
            .post(
                "/setup",
                &[
                    ("instance_name", "Mine"),
                    ("username", "evil"),
                    ("password", PW),
                    ("confirm", PW),
                ],
            )
            .await;
        assert_eq!(again.status, StatusCode::FORBIDDEN);
        assert!(
            again
                .error()
                .unwrap_or_default()
                .contains("already has an admin")
        );
        assert_eq!(users(&k).await, 1);
    }
}

#[tokio::test]
async fn each_registration_mode_does_what_it_says() {
    let k = TestInstance::spawn(Backend::Sqlite).await;
    let mut admin = admin_of(&k).await;

    // Open: the account works at once.
    set_mode(&mut admin, "open").await;
    let mut ana = Visitor::new(&k.base);
    let page = ana
        .post(
            "/signup",
            &[
                ("username", "ana"),
                ("password", PW),
                ("confirm", PW),
                ("email", ""),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(ana.signed_in());
    // The same name again, in another case.
    let mut copy = Visitor::new(&k.base);
    let dup = copy
        .post(
            "/signup",
            &[("username", "ANA"), ("password", PW), ("confirm", PW)],
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert!(dup.error().unwrap_or_default().contains("taken"));
    assert_eq!(dup.input_value("username").as_deref(), Some("ANA"));
    let bad_email = copy
        .post(
            "/signup",
            &[
                ("username", "bo"),
                ("password", PW),
                ("confirm", PW),
                ("email", "not an email"),
            ],
        )
        .await;
    assert_eq!(bad_email.status, StatusCode::BAD_REQUEST);
    assert!(bad_email.error().unwrap_or_default().contains("email"));

    // Approval: a note is needed; the account waits; the admin decides.
    set_mode(&mut admin, "approval").await;
    let mut ben = Visitor::new(&k.base);
    ben.get("/signup")
        .await
        .shows("Why would you like to join?");
    let no_note = ben
        .post(
            "/signup",
            &[("username", "ben"), ("password", PW), ("confirm", PW)],
        )
        .await;
    assert_eq!(no_note.status, StatusCode::BAD_REQUEST);
    assert!(
        no_note
            .error()
            .unwrap_or_default()
            .contains("why you want to join")
    );
    let long_note = "x".repeat(1001);
    let too_long = ben
        .post(
            "/signup",
            &[
                ("username", "ben"),
                ("password", PW),
                ("confirm", PW),
                ("application", &long_note),
            ],
        )
        .await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
    let sent = ben
        .post(
            "/signup",
            &[
                ("username", "ben"),
                ("password", PW),
                ("confirm", PW),
                ("application", "My daughter has <b>MG</b>."),
            ],
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK);
    sent.shows("Request sent");
    assert!(!ben.signed_in());
    let refused = ben
        .post("/signin", &[("username", "ben"), ("password", PW)])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused
            .error()
            .unwrap_or_default()
            .contains("waiting for an admin")
    );
    // The admin sees the note, escaped.
    let list = admin.get("/admin/signups").await;
    list.shows("My daughter has &#60;b&#62;MG&#60;/b&#62;.");
    let pending = user::Entity::find()
        .all(k.db())
        .await
        .expect("users")
        .into_iter()
        .find(|u| u.status == "pending")
        .expect("a pending user");
    let page = admin
        .post(&format!("/admin/signups/{}/approve", pending.id), &[])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    ben.sign_in("ben", PW).await;

    // A refused applicant disappears and the name is free again.
    let mut cid = Visitor::new(&k.base);
    cid.post(
        "/signup",
        &[
            ("username", "cid"),
            ("password", PW),
            ("confirm", PW),
            ("application", "hi"),
        ],
    )
    .await;
    let cid_row = user::Entity::find()
        .all(k.db())
        .await
        .expect("users")
        .into_iter()
        .find(|u| u.status == "pending")
        .expect("cid pending");
    // Not without the admin's CSRF token.
    let forged = admin
        .post_raw(&format!("/admin/signups/{}/refuse", cid_row.id), &[])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(
        user::Entity::find_by_id(cid_row.id)
            .one(k.db())
            .await
            .expect("q")
            .is_some()
    );
    admin
        .post(&format!("/admin/signups/{}/refuse", cid_row.id), &[])
        .await;
    assert!(
        user::Entity::find_by_id(cid_row.id)
            .one(k.db())
            .await
            .expect("q")
            .is_none()
    );

    // Invitation: no link, no account; a link works as many times as it says.
    set_mode(&mut admin, "invite").await;
    let mut dee = Visitor::new(&k.base);
    dee.get("/signup").await.shows("invitation link");
    let no_link = dee
        .post(
            "/signup",
            &[("username", "dee"), ("password", PW), ("confirm", PW)],
        )
        .await;
    assert_eq!(no_link.status, StatusCode::FORBIDDEN);
    let made = admin.post("/admin/invites", &[("max_uses", "1")]).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let link = made.input_value("new-link").expect("link shown");
    let path = link
        .split_once("/invite/")
        .map(|(_, c)| format!("/invite/{c}"))
        .expect("path");
    let code = path.trim_start_matches("/invite/").to_string();
    assert_eq!(dee.get(&path).await.status, StatusCode::OK);
    let ok = dee
        .post(
            "/signup",
            &[
                ("username", "dee"),
                ("password", PW),
                ("confirm", PW),
                ("invite", &code),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    let mut eve = Visitor::new(&k.base);
    assert_eq!(eve.get(&path).await.status, StatusCode::NOT_FOUND);
    let used_up = eve
        .post(
            "/signup",
            &[
                ("username", "eve"),
                ("password", PW),
                ("confirm", PW),
                ("invite", &code),
            ],
        )
        .await;
    assert_eq!(used_up.status, StatusCode::FORBIDDEN);
    assert!(used_up.error().unwrap_or_default().contains("used up"));
    // A revoked link stops working at once.
    let made = admin.post("/admin/invites", &[("max_uses", "5")]).await;
    let link = made.input_value("new-link").expect("link shown");
    let code = link.rsplit('/').next().expect("code").to_string();
    let bad_count = admin.post("/admin/invites", &[("max_uses", "lots")]).await;
    assert_eq!(bad_count.status, StatusCode::BAD_REQUEST);
    let invite = kindred::db::entities::invite::Entity::find()
        .all(k.db())
        .await
        .expect("invites")
        .into_iter()
        .find(|i| i.max_uses == 5)
        .expect("the new invite");
    let revoked = admin
        .post(&format!("/admin/invites/{}/revoke", invite.id), &[])
        .await;
    assert_eq!(revoked.location(), "/admin/invites?done=revoked");
    assert_eq!(
        eve.get(&format!("/invite/{code}")).await.status,
        StatusCode::NOT_FOUND
    );

    // Closed.
    set_mode(&mut admin, "closed").await;
    eve.get("/signup").await.shows("Sign-ups are closed");
    let closed = eve
        .post(
            "/signup",
            &[("username", "eve"), ("password", PW), ("confirm", PW)],
        )
        .await;
    assert_eq!(closed.status, StatusCode::FORBIDDEN);
    // ana, ben, dee and the admin.
    assert_eq!(users(&k).await, 4);
}

#[tokio::test]
async fn signing_in_and_out_and_bad_credentials() {
    let k = TestInstance::spawn_with(Backend::Sqlite, |s| {
        s.web.signin_burst = 3;
        s.web.signin_refill_secs = 3600;
    })
    .await;
    let _admin = admin_of(&k).await;
    let mut v = Visitor::new(&k.base);
    let wrong = v
        .post(
            "/signin",
            &[("username", "root"), ("password", "wrong password")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.error().unwrap_or_default().contains("do not match"));
    assert_eq!(wrong.input_value("username").as_deref(), Some("root"));
    wrong.lacks("wrong password");
    let empty = v.post("/signin", &[("username", "root")]).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    // A redirect target elsewhere is ignored.
    let page = v
        .post(
            "/signin",
            &[
                ("username", "root"),
                ("password", PW),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(page.location(), "/");

    // The signed-in pages work; signing out ends the session on the server.
    assert_eq!(v.get("/settings").await.status, StatusCode::OK);
    let stolen = v.cookies.clone();
    assert_eq!(v.post("/signout", &[]).await.status, StatusCode::SEE_OTHER);
    assert!(!v.signed_in());
    v.cookies = stolen;
    let after = v.get("/settings").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.location(), "/signin?next=%2Fsettings");

    // An expired session is no session.
    v.cookies.clear();
    v.sign_in("root", PW).await;
    session::Entity::update_many()
        .col_expr(
            session::Column::ExpiresAt,
            sea_orm::sea_query::Expr::value(chrono::Utc::now() - chrono::Duration::minutes(1)),
        )
        .exec(k.db())
        .await
        .expect("expire");
    assert!(v.get("/settings").await.location().starts_with("/signin"));
    let compose = v.post("/settings", &[("display_name", "R")]).await;
    assert!(compose.location().starts_with("/signin"));

    // Three tries allowed (one left after the two above), then 429.
    let mut guesser = Visitor::new(&k.base);
    let mut statuses = vec![];
    for _ in 0..3 {
        let p = guesser
            .post(
                "/signin",
                &[("username", "root"), ("password", "guess guess")],
            )
            .await;
        statuses.push(p.status);
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let limited = guesser
        .post("/signin", &[("username", "root"), ("password", PW)])
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.error().unwrap_or_default().contains("Too many"));
    assert!(limited.headers.contains_key("retry-after"));
    // The API's login shares the limit: no way around it.
    let api = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", k.base))
        .json(&serde_json::json!({"username": "root", "password": PW}))
        .send()
        .await
        .expect("api login");
    assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn members_join_post_reply_edit_and_delete() {
    for backend in backends() {
        let k = TestInstance::spawn(backend).await;
        let mut admin = admin_of(&k).await;
        set_mode(&mut admin, "open").await;
        let made = admin
            .post(
                "/admin/groups",
                &[
                    ("name", "mg"),
                    ("title", "Myasthenia gravis"),
                    ("summary", "Peer support."),
                ],
            )
            .await;
        assert_eq!(
            made.location(),
            "/admin/groups/mg?done=group_created",
            "{}",
            made.body
        );
        admin
            .post(
                "/admin/groups",
                &[("name", "ms"), ("title", "Multiple sclerosis")],
            )
            .await;

        let mut ana = Visitor::new(&k.base);
        ana.post(
            "/signup",
            &[("username", "ana"), ("password", PW), ("confirm", PW)],
        )
        .await;
        // The directory finds groups by title, any case.
        let found = ana.get("/directory?q=GRAVIS").await;
        found.shows("Myasthenia gravis").lacks("Multiple sclerosis");
        ana.get("/directory?q=%25").await.shows("No group found");
        // Not a member yet: no posting.
        let early = ana
            .post(
                "/g/mg/new",
                &[("title", "Hi"), ("body", "Hello"), ("action", "post")],
            )
            .await;
        assert_eq!(early.status, StatusCode::FORBIDDEN);
        assert!(early.error().unwrap_or_default().contains("oin this group"));
        assert_eq!(early.input_value("title").as_deref(), Some("Hi"));

        assert_eq!(
            ana.post("/g/mg/join", &[]).await.location(),
            "/g/mg?done=joined"
        );
        let group = ana.get("/g/mg").await;
        group.shows("You are a member").shows("1 member");

        // Preview shows the Markdown rendered, changes nothing.
        let preview = ana
            .post(
                "/g/mg/new",
                &[
                    ("title", "Fatigue"),
                    ("body", "**Tired** all day"),
                    ("action", "preview"),
                ],
            )
            .await;
        assert_eq!(preview.status, StatusCode::OK);
        preview.shows("<strong>Tired</strong>");
        assert_eq!(post::Entity::find().count(k.db()).await.expect("n"), 0);

        // Oversized and missing fields.
        let long_title = "t".repeat(301);
        let too_long = ana
            .post(
                "/g/mg/new",
                &[("title", &long_title), ("body", "x"), ("action", "post")],
            )
            .await;
        assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
        assert!(too_long.error().is_some());
        let no_body = ana
            .post(
                "/g/mg/new",
                &[("title", "Only a title"), ("action", "post")],
            )
            .await;
        assert_eq!(no_body.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            no_body.input_value("title").as_deref(),
            Some("Only a title")
        );
        // Forged token: nothing posted, the text kept.
        let forged = ana
            .post_raw(
                "/g/mg/new",
                &[
                    ("csrf", "nope"),
                    ("title", "Kept"),
                    ("body", "kept body"),
                    ("action", "post"),
                ],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        forged.shows("kept body");
        assert_eq!(post::Entity::find().count(k.db()).await.expect("n"), 0);

        let posted = ana
            .post(
                "/g/mg/new",
                &[
                    ("title", "Fatigue <script>alert(1)</script>"),
                    ("body", "**Tired** all day"),
                    ("content_warning", "medication side effects"),
                    ("action", "post"),
                ],
            )
            .await;
        assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.body);
        let thread_path = posted
            .location()
            .split('?')
            .next()
            .expect("path")
            .to_string();
        let thread = ana.get(&thread_path).await;
        thread
            .shows("Fatigue &#60;script&#62;")
            .lacks("<script>alert")
            .shows("<details class=\"cw\">")
            .shows("Content warning: medication side effects")
            .lacks("<details class=\"cw\" open");
        let thread_id: i64 = thread_path.trim_start_matches("/t/").parse().expect("id");

        // Another member replies; ana answers the reply (nested one level).
        let mut bob = Visitor::new(&k.base);
        bob.post(
            "/signup",
            &[("username", "bob"), ("password", PW), ("confirm", PW)],
        )
        .await;
        let not_member = bob.get(&thread_path).await;
        not_member.shows("to reply").lacks("name=\"body\"");
        bob.post("/g/mg/join", &[]).await;
        let r1 = bob
            .post(
                &format!("{thread_path}/reply"),
                &[("body", "Same here."), ("action", "post")],
            )
            .await;
        assert_eq!(r1.status, StatusCode::SEE_OTHER, "{}", r1.body);
        let bob_reply: i64 = r1
            .location()
            .rsplit("#p")
            .next()
            .and_then(|s| s.parse().ok())
            .expect("reply id");
        let r2 = ana
            .post(
                &format!("{thread_path}/reply"),
                &[
                    ("body", "Hang in there."),
                    ("parent", &bob_reply.to_string()),
                    ("action", "post"),
                ],
            )
            .await;
        assert_eq!(r2.status, StatusCode::SEE_OTHER);
        let thread = bob.get(&thread_path).await;
        thread
            .shows("2 replies")
            .shows("class=\"replies nested\"")
            .shows("Hang in there.");
        // Only the author may edit or delete.
        let ana_reply: i64 = r2
            .location()
            .rsplit("#p")
            .next()
            .and_then(|s| s.parse().ok())
            .expect("id");
        assert_eq!(
            bob.get(&format!("/p/{ana_reply}/edit")).await.status,
            StatusCode::FORBIDDEN
        );
        let edit = ana.get(&format!("/p/{ana_reply}/edit")).await;
        assert_eq!(edit.status, StatusCode::OK);
        edit.shows("Hang in there.");
        let saved = ana
            .post(
                &format!("/p/{ana_reply}/edit"),
                &[
                    ("body", "Hang in there, Bob."),
                    ("content_warning", ""),
                    ("action", "save"),
                ],
            )
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        ana.get(&thread_path)
            .await
            .shows("Hang in there, Bob.")
            .shows("edited");

        // Home: the thread with the newest activity comes first.
        let second = ana
            .post(
                "/g/mg/new",
                &[("title", "Newer thread"), ("body", "x"), ("action", "post")],
            )
            .await;
        assert_eq!(second.status, StatusCode::SEE_OTHER);
        bob.post(
            &format!("{thread_path}/reply"),
            &[("body", "Bump."), ("action", "post")],
        )
        .await;
        let home = ana.get("/").await;
        let first = home.body.find("Fatigue").expect("old thread listed");
        let newer = home.body.find("Newer thread").expect("new thread listed");
        assert!(
            first < newer,
            "the thread with the latest reply comes first"
        );

        // Delete: confirm page, then gone, with a message.
        ana.get(&format!("/p/{thread_id}/delete"))
            .await
            .shows("cannot be undone");
        let gone = ana.post(&format!("/p/{thread_id}/delete"), &[]).await;
        assert_eq!(gone.location(), "/g/mg?done=deleted");
        assert_eq!(ana.get(&thread_path).await.status, StatusCode::NOT_FOUND);
        ana.get("/g/mg?done=deleted")
            .await
            .shows("The post is deleted")
            .lacks("Fatigue");

        // Leave.
        assert_eq!(
            ana.post("/g/mg/leave", &[]).await.location(),
            "/g/mg?done=left"
        );
        ana.get("/g/mg").await.shows("Join this group");
    }
}

#[tokio::test]
async fn settings_admin_pages_and_their_bad_input() {
    let k = TestInstance::spawn(Backend::Sqlite).await;
    let mut admin = admin_of(&k).await;
    set_mode(&mut admin, "open").await;
    let mut ana = Visitor::new(&k.base);
    ana.post(
        "/signup",
        &[("username", "ana"), ("password", PW), ("confirm", PW)],
    )
    .await;

    // Profile.
    let long_name = "n".repeat(101);
    let bad = ana
        .post("/settings", &[("display_name", &long_name), ("bio", "")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.error().unwrap_or_default().contains("display name"));
    let ok = ana
        .post(
            "/settings",
            &[("display_name", "Ana M."), ("bio", "Carer.\nTwo kids.")],
        )
        .await;
    assert_eq!(ok.location(), "/settings?done=profile");
    let page = ana.get("/settings").await;
    assert_eq!(page.input_value("display_name").as_deref(), Some("Ana M."));
    page.shows("Carer.\nTwo kids.");

    // Password: the current one is checked; other sessions end.
    let mut other_device = Visitor::new(&k.base);
    other_device.sign_in("ana", PW).await;
    let wrong = ana
        .post(
            "/settings/password",
            &[
                ("current", "not it at all"),
                ("new", "a new password"),
                ("confirm", "a new password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong
            .error()
            .unwrap_or_default()
            .contains("current password")
    );
    let short = ana
        .post(
            "/settings/password",
            &[("current", PW), ("new", "short"), ("confirm", "short")],
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    let changed = ana
        .post(
            "/settings/password",
            &[
                ("current", PW),
                ("new", "a new password"),
                ("confirm", "a new password"),
            ],
        )
        .await;
    assert_eq!(changed.location(), "/settings?done=password");
    assert_eq!(ana.get("/settings").await.status, StatusCode::OK);
    assert!(
        other_device
            .get("/settings")
            .await
            .location()
            .starts_with("/signin")
    );

    // Members are not admins.
    for path in [
        "/admin",
        "/admin/signups",
        "/admin/invites",
        "/admin/groups",
        "/admin/users",
    ] {
        let p = ana.get(path).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{path}");
        p.shows("Only admins");
        assert_eq!(admin.get(path).await.status, StatusCode::OK, "{path}");
    }
    let sneaky = ana
        .post("/admin", &[("name", "Mine"), ("registration_mode", "open")])
        .await;
    assert_eq!(sneaky.status, StatusCode::FORBIDDEN);

    // Instance settings: bad input is refused and shown.
    let bad = admin
        .post(
            "/admin",
            &[
                ("name", ""),
                ("description", "d"),
                ("registration_mode", "open"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = admin
        .post(
            "/admin",
            &[("name", "N"), ("registration_mode", "everyone")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.error()
            .unwrap_or_default()
            .contains("registration mode")
    );

    // Groups: bad names, duplicates, edit, roles.
    let bad = admin
        .post("/admin/groups", &[("name", "No Spaces"), ("title", "T")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.input_value("name").as_deref(), Some("No Spaces"));
    admin
        .post("/admin/groups", &[("name", "eds"), ("title", "EDS")])
        .await;
    let dup = admin
        .post("/admin/groups", &[("name", "eds"), ("title", "Again")])
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let saved = admin
        .post(
            "/admin/groups/eds",
            &[
                ("title", "Ehlers-Danlos"),
                ("summary", "All types."),
                ("rules", "Be kind.\nNo advertising."),
            ],
        )
        .await;
    assert_eq!(saved.location(), "/admin/groups/eds?done=saved");
    let nobody = admin
        .post(
            "/admin/groups/eds/roles",
            &[("username", "nobody"), ("role", "moderator")],
        )
        .await;
    assert_eq!(nobody.status, StatusCode::BAD_REQUEST);
    assert!(
        nobody
            .error()
            .unwrap_or_default()
            .contains("No local member")
    );
    let given = admin
        .post(
            "/admin/groups/eds/roles",
            &[("username", "@ana"), ("role", "moderator")],
        )
        .await;
    assert_eq!(given.location(), "/admin/groups/eds?done=role_given");
    let page = ana.get("/g/eds").await;
    page.shows("Ehlers-Danlos")
        .shows("Be kind.<br>No advertising.")
        .shows("(moderator)")
        .shows("(owner)");

    // Users: the last admin keeps their rights; another can be made admin.
    let me = user::Entity::find().all(k.db()).await.expect("users");
    let root = me.iter().find(|u| u.is_admin).expect("admin");
    let last = admin
        .post(
            &format!("/admin/users/{}/admin", root.id),
            &[("admin", "false")],
        )
        .await;
    assert_eq!(last.status, StatusCode::BAD_REQUEST);
    last.shows("at least one admin");
    let ana_row = me.iter().find(|u| !u.is_admin).expect("ana");
    admin
        .post(
            &format!("/admin/users/{}/admin", ana_row.id),
            &[("admin", "true")],
        )
        .await;
    assert_eq!(ana.get("/admin").await.status, StatusCode::OK);
}

#[tokio::test]
async fn pages_are_locked_down() {
    let k = TestInstance::spawn(Backend::Sqlite).await;
    let mut v = Visitor::new(&k.base);
    let page = v.get("/setup").await;
    let csp = page.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "no scripts at all: {csp}");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert!(
        page.headers["cache-control"]
            .to_str()
            .expect("cc")
            .contains("no-store")
    );
    let csrf_cookie = page.headers["set-cookie"].to_str().expect("cookie");
    assert!(
        csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Strict"),
        "{csrf_cookie}"
    );
    page.shows("<html lang=\"en\">");
    let admin = admin_of(&k).await;
    let _ = admin;
    // A browser following a group's ActivityPub id gets its page; servers
    // still get JSON.
    k.create_group("mg", "MG").await;
    let r = v.get("/groups/mg").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/g/mg");
    let json = reqwest::Client::new()
        .get(format!("{}/groups/mg", k.base))
        .header("accept", "application/activity+json")
        .send()
        .await
        .expect("get");
    assert_eq!(json.status(), StatusCode::OK);
    // Unknown pages: a page for browsers, JSON for programs.
    let missing = v.get("/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    missing.shows("There is no page at this address");

    // Outside dev mode the cookies are Secure with the __Host- prefix.
    let prod = TestInstance::spawn_with(Backend::Sqlite, |s| s.server.dev_mode = Some(false)).await;
    let mut w = Visitor::new(&prod.base);
    let page = w.get("/setup").await;
    let cookie = page.headers["set-cookie"].to_str().expect("cookie");
    assert!(
        cookie.starts_with("__Host-kindred_csrf=") && cookie.contains("Secure"),
        "{cookie}"
    );
    let made = w
        .post(
            "/setup",
            &[
                ("instance_name", "P"),
                ("username", "root"),
                ("password", PW),
                ("confirm", PW),
            ],
        )
        .await;
    let session = made
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains("kindred_session"))
        .expect("session cookie")
        .to_string();
    assert!(
        session.starts_with("__Host-kindred_session=")
            && session.contains("Secure")
            && session.contains("HttpOnly")
            && session.contains("SameSite=Lax"),
        "{session}"
    );
}

/// A newcomer signs up through the form (open registration) and is signed in.
pub async fn sign_up(k: &TestInstance, name: &str) -> Visitor {
    let mut v = Visitor::new(&k.base);
    let page = v
        .post(
            "/signup",
            &[("username", name), ("password", PW), ("confirm", PW)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(v.signed_in());
    v
}

pub async fn local_person(k: &TestInstance, name: &str) -> kindred::db::entities::actor::Model {
    kindred::db::actors::local_by_name_and_kind(k.db(), name, kindred::domain::ActorKind::Person)
        .await
        .expect("query")
        .expect("person")
}

pub async fn local_group(k: &TestInstance, name: &str) -> kindred::db::entities::actor::Model {
    kindred::db::actors::local_by_name_and_kind(k.db(), name, kindred::domain::ActorKind::Group)
        .await
        .expect("query")
        .expect("group")
}
