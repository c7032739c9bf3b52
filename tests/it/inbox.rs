//! The inbox under bad input: oversize bodies, unsigned or badly dated
//! requests, unknown types, Follows of nothing, repeats.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, TestInstance, backends};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_refuses_bad_input_and_absorbs_repeats() {
    for backend in backends() {
        run(backend).await;
    }
}

async fn run(backend: Backend) {
    let a = TestInstance::spawn(backend).await;
    let b = TestInstance::spawn(backend).await;
    a.create_group("lupus", "Lupus").await;
    let inbox = format!("{}/inbox", a.base);
    let now = httpdate::fmt_http_date(std::time::SystemTime::now());

    // Over 1 MB: 413, not 500 (a 500 makes senders retry forever).
    let status = raw_post_status(&a.base, "/inbox", 2 * 1024 * 1024).await;
    assert_eq!(status, 413);

    // Unsigned: 401. No Date / a Date in the future: 401.
    let follow = |id: &str, object: &str| {
        json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "type": "Follow",
            "id": format!("{}/activities/follow/{id}", b.base),
            "actor": b.instance_actor_id(),
            "object": object,
        })
    };
    let body = follow("1", &format!("{}/groups/lupus", a.base));
    let res = a
        .http
        .post(&inbox)
        .header("content-type", "application/activity+json")
        .header("date", &now)
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = a.http.post(&inbox).json(&body).send().await.expect("send");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let future = httpdate::fmt_http_date(
        std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
    );
    let res = a
        .http
        .post(&inbox)
        .header("date", future)
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Unknown activity types are set aside without error (202); malformed
    // ones and known types that do not parse are 400.
    let weird =
        json!({"type": "Dance", "id": format!("{}/x/1", b.base), "actor": b.instance_actor_id()});
    assert_eq!(b.signed_post(&inbox, &weird).await, StatusCode::ACCEPTED);
    let broken = json!({"type": "Create", "id": format!("{}/x/2", b.base), "actor": b.instance_actor_id(), "object": {"type": "Note"}});
    assert_eq!(
        b.signed_post(&inbox, &broken).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        b.signed_post(&inbox, &json!("not an activity")).await,
        StatusCode::BAD_REQUEST
    );

    // Follow of a group that doesn't exist: 404, nothing stored.
    let ghost = follow("2", &format!("{}/groups/ghost", a.base));
    assert_eq!(b.signed_post(&inbox, &ghost).await, StatusCode::NOT_FOUND);

    // A valid signed Follow is accepted; the same activity again changes
    // nothing (one membership, one Accept queued).
    assert_eq!(b.signed_post(&inbox, &body).await, StatusCode::ACCEPTED);
    assert_eq!(b.signed_post(&inbox, &body).await, StatusCode::ACCEPTED);
    let (_, g) = a.get("/api/v1/groups/lupus", None).await;
    assert_eq!(g["members"], 1);
    use kindred::db::entities::delivery;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let accepts = delivery::Entity::find()
        .filter(delivery::Column::Payload.contains("\"Accept\""))
        .count(a.db())
        .await
        .expect("count");
    assert_eq!(accepts, 1);

    // Create of a post attributed to someone else: 400, nothing stored.
    let forged = json!({
        "type": "Create",
        "id": format!("{}/activities/create/9", b.base),
        "actor": b.instance_actor_id(),
        "object": {
            "type": "Page",
            "id": format!("{}/posts/999", b.base),
            "attributedTo": format!("{}/users/someone-else", a.base),
            "name": "Forged",
            "content": "x",
            "audience": format!("{}/groups/lupus", a.base),
        }
    });
    assert_eq!(
        b.signed_post(&inbox, &forged).await,
        StatusCode::BAD_REQUEST
    );
    let (_, list) = a.get("/api/v1/groups/lupus/threads", None).await;
    assert_eq!(list, json!([]));
}

/// POST a body of `len` bytes over a raw socket and read the status line,
/// even if the server answers (and closes) before the body is fully sent.
async fn raw_post_status(base: &str, path: &str, len: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base
        .trim_start_matches("http://")
        .replace("localhost", "127.0.0.1");
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/activity+json\r\nDate: {}\r\nContent-Length: {len}\r\n\r\n",
        base.trim_start_matches("http://"),
        httpdate::fmt_http_date(std::time::SystemTime::now())
    );
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(head.as_bytes()).await;
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0;
        while sent < len {
            let n = chunk.len().min(len - sent);
            if wr.write_all(&chunk[..n]).await.is_err() {
                break;
            }
            sent += n;
        }
    });
    let mut buf = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        match rd.read(&mut buf[got..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    writer.abort();
    let line = String::from_utf8_lossy(&buf[..got]).to_string();
    line.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
