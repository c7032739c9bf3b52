//! The JSON API: auth, bad input answered with a clear 4xx in our error
//! format and no change, and the OpenAPI document listing every route.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestInstance, backends, titles};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    for backend in backends() {
        let a = TestInstance::spawn(backend).await;
        a.create_group("epilepsy", "Epilepsy").await;
        let ann = a.create_user("ann").await;
        let bob = a.create_user("bob").await;

        // Malformed JSON: 400 in our error format.
        let res = a
            .http
            .post(format!("{}/api/v1/groups/epilepsy/threads", a.base))
            .bearer_auth(&ann)
            .header("content-type", "application/json")
            .body("{\"title\": ")
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let body: serde_json::Value = res.json().await.expect("json error body");
        assert_eq!(body["error"], "bad_request");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));

        // A malformed path parameter: 400, also in our format.
        let (s, v) = a.get("/api/v1/posts/not-a-number", None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(v["error"], "bad_request", "{v}");

        // No token, bad token.
        let (s, v) = a
            .call(Method::POST, "/api/v1/groups/epilepsy/join", None, None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
        let (s, _) = a.call(Method::GET, "/api/v1/me", Some("nope"), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        // Wrong password and unknown user: the same 401.
        for (u, p) in [("ann", "wrong password"), ("nobody", "correct horse")] {
            let (s, v) = a
                .call(
                    Method::POST,
                    "/api/v1/auth/login",
                    None,
                    Some(json!({"username": u, "password": p})),
                )
                .await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
        }

        // Posting to a group one hasn't joined: 403, nothing stored.
        let (s, v) = a
            .post(
                "/api/v1/groups/epilepsy/threads",
                &ann,
                json!({"title": "Hi", "content": "x"}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        let (_, list) = a.get("/api/v1/groups/epilepsy/threads", None).await;
        assert_eq!(list, json!([]));

        // Unknown group: 404; invalid handle: 400.
        let (s, _) = a.post("/api/v1/groups/nosuch/join", &ann, json!({})).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = a.post("/api/v1/groups/a%20b@x/join", &ann, json!({})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);

        // Empty title: 400.
        a.post("/api/v1/groups/epilepsy/join", &ann, json!({}))
            .await;
        let (s, _) = a
            .post(
                "/api/v1/groups/epilepsy/threads",
                &ann,
                json!({"title": " ", "content": "x"}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);

        // Editing or deleting someone else's post: 403, post intact.
        let (s, post) = a
            .post(
                "/api/v1/groups/epilepsy/threads",
                &ann,
                json!({"title": "Seizure diary", "content": "Mine."}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let id = post["id"].as_i64().expect("id");
        let (s, _) = a
            .call(
                Method::PATCH,
                &format!("/api/v1/posts/{id}"),
                Some(&bob),
                Some(json!({"content": "hacked"})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = a
            .call(
                Method::DELETE,
                &format!("/api/v1/posts/{id}"),
                Some(&bob),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (_, v) = a.get(&format!("/api/v1/posts/{id}"), None).await;
        assert_eq!(v["content_html"], "<p>Mine.</p>");

        // Duplicate names: 409.
        let err =
            kindred::service::users::create_user(&a.app().state, "ann", "another pass", false)
                .await
                .expect_err("duplicate");
        assert_eq!(err.status(), StatusCode::CONFLICT);
        let err = kindred::service::groups::create_group(&a.app().state, "ann", "Clash", "")
            .await
            .expect_err("name shared with a user");
        assert_eq!(err.status(), StatusCode::CONFLICT);
        let err = kindred::service::groups::create_group(&a.app().state, "Bad Name", "x", "")
            .await
            .expect_err("invalid name");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);

        // Logout revokes the token.
        let (s, _) = a
            .call(Method::POST, "/api/v1/auth/logout", Some(&bob), None)
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = a.get("/api/v1/me", Some(&bob)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
}

/// Anonymous readers of a public group share a page kept for up to a second
/// (`federation::docs`); every change made here still shows on the next read,
/// and a signed-in reader is never served the kept page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_threads_page_shows_each_change_at_once() {
    use kindred::service::{
        federation::Who,
        groups::find_group,
        moderation::{SettingsChange, update_settings},
    };
    for backend in backends() {
        let a = TestInstance::spawn(backend).await;
        a.create_group("mcas", "MCAS").await;
        let ann = a.create_user("ann").await;
        a.post("/api/v1/groups/mcas/join", &ann, json!({})).await;
        let path = "/api/v1/groups/mcas/threads";
        assert_eq!(a.get(path, None).await.1, json!([]));

        let (s, post) = a
            .post(path, &ann, json!({"title": "Flares", "content": "Mine."}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{post}");
        let id = post["id"].as_i64().expect("id");
        let (_, page) = a.get(path, None).await;
        assert_eq!(titles(&page), ["Flares"]);
        // The same bytes twice: the second from memory.
        assert_eq!(a.get(path, None).await.1, page);

        let (s, _) = a
            .call(
                Method::PATCH,
                &format!("/api/v1/posts/{id}"),
                Some(&ann),
                Some(json!({"content": "Edited."})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (_, page) = a.get(path, None).await;
        assert_eq!(page[0]["content_html"], "<p>Edited.</p>", "{page}");

        let (s, _) = a
            .call(
                Method::DELETE,
                &format!("/api/v1/posts/{id}"),
                Some(&ann),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_eq!(a.get(path, None).await.1, json!([]));

        // Members-only: anonymous readers get a 404 at once, members the page.
        a.post(path, &ann, json!({"title": "Triggers", "content": "Heat."}))
            .await;
        assert_eq!(titles(&a.get(path, None).await.1), ["Triggers"]);
        let data = a.data();
        let g = find_group(&data, "mcas").await.expect("group");
        update_settings(
            &data,
            Who::Cli,
            &g,
            SettingsChange {
                visibility: Some("members"),
                join_policy: None,
                member_count_hidden: None,
                premoderation: None,
                default_content_warning: None,
            },
        )
        .await
        .expect("settings");
        assert_eq!(a.get(path, None).await.0, StatusCode::NOT_FOUND);
        assert_eq!(titles(&a.get(path, Some(&ann)).await.1), ["Triggers"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_lists_every_api_route() {
    let a = TestInstance::spawn(crate::helpers::Backend::Sqlite).await;
    let (s, doc) = a.get("/api/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let paths = doc["paths"].as_object().expect("paths");
    let sources = [
        include_str!("../../src/api/auth.rs"),
        include_str!("../../src/api/directory.rs"),
        include_str!("../../src/api/federation.rs"),
        include_str!("../../src/api/groups.rs"),
        include_str!("../../src/api/moderation.rs"),
        include_str!("../../src/api/posts.rs"),
        include_str!("../../src/api/openapi.rs"),
    ];
    let mut routes = vec![];
    for src in sources {
        for chunk in src.split(".route(").skip(1) {
            if let Some(path) = chunk.trim_start().strip_prefix('"') {
                routes.push(path.split('"').next().unwrap_or_default().to_string());
            }
        }
    }
    assert!(routes.len() >= 10, "{routes:?}");
    for r in routes {
        assert!(paths.contains_key(&r), "{r} missing from openapi.json");
    }
}
