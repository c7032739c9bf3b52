//! `/api/v1/groups*`: list, look up (`name` or `name@host`, resolving remote
//! groups), join, leave, read threads, start a thread.

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};

use super::{ApiJson, Auth, MaybeAuth, posts::PostView};
use crate::{
    app::AppState,
    db,
    domain::{FollowState, group::Visibility},
    error::AppError,
    federation::{FedData, objects::actor::DbActor},
    service::{access, groups, posts, users::CurrentUser},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/groups", get(list))
        .route("/api/v1/groups/{handle}", get(show))
        .route("/api/v1/groups/{handle}/join", post(join))
        .route("/api/v1/groups/{handle}/leave", post(leave))
        .route(
            "/api/v1/groups/{handle}/threads",
            get(threads).post(create_thread),
        )
}

#[derive(Serialize)]
pub struct GroupView {
    /// `name@domain`, usable in every group URL of this API.
    handle: String,
    name: String,
    title: Option<String>,
    summary: Option<String>,
    local: bool,
    url: String,
    /// Accepted members this instance knows of (local groups: all of them).
    members: Option<u64>,
    /// The caller's membership: "accepted", "pending" or null.
    membership: Option<&'static str>,
    /// "public", "members" or "local".
    visibility: &'static str,
    /// "open", "approval" or "invite" (local groups; remote ones: "open").
    join_policy: String,
}

async fn view(
    data: &FedData,
    g: &DbActor,
    viewer: Option<&CurrentUser>,
) -> Result<GroupView, AppError> {
    let members = access::shown_member_count(&data.db, viewer, &g.row).await?;
    let me = viewer.map(|u| u.actor.id);
    let membership = match me {
        Some(id) => db::follows::state(&data.db, id, g.row.id)
            .await?
            .map(FollowState::as_str),
        None => None,
    };
    Ok(GroupView {
        handle: g.handle(),
        name: g.row.username.clone(),
        title: g.row.display_name.clone(),
        summary: g.row.summary.clone(),
        local: g.row.local,
        url: g.row.ap_id.clone(),
        members,
        membership,
        visibility: access::visibility(&g.row).as_str(),
        join_policy: g.row.join_policy.clone(),
    })
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    local: bool,
}

async fn list(
    data: FedData,
    MaybeAuth(me): MaybeAuth,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<GroupView>>, AppError> {
    let rows = db::actors::list_groups(&data.db, q.local, 200).await?;
    let me_user = me;
    let me = me_user.as_ref().map(|u| u.actor.id);
    let memberships = match me {
        Some(id) => db::follows::groups_of(&data.db, id).await?,
        None => vec![],
    };
    let staff_of = match me {
        Some(id) => db::roles::groups_of(&data.db, id).await?,
        None => vec![],
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        // A group nobody asked to have listed (private, or unlisted) is
        // shown only to its members and staff.
        let mine = memberships.iter().any(|f| f.group_id == row.id) || staff_of.contains(&row.id);
        if !access::may_see_profile(me_user.as_ref(), &row)
            || !(mine || crate::service::directory::is_listed(&row))
        {
            continue;
        }
        let g = DbActor::new(row)?;
        let membership = memberships
            .iter()
            .find(|f| f.group_id == g.row.id)
            .and_then(|f| FollowState::parse(&f.state))
            .map(FollowState::as_str);
        out.push(GroupView {
            handle: g.handle(),
            name: g.row.username.clone(),
            title: g.row.display_name.clone(),
            summary: g.row.summary.clone(),
            local: g.row.local,
            url: g.row.ap_id.clone(),
            members: None,
            membership,
            visibility: access::visibility(&g.row).as_str(),
            join_policy: g.row.join_policy.clone(),
        });
    }
    Ok(Json(out))
}

/// Looking up a group we don't know yet fetches it: members only (also
/// used by `api::directory`).
pub(super) async fn find(
    data: &FedData,
    handle: &str,
    me: Option<&crate::service::users::CurrentUser>,
) -> Result<DbActor, AppError> {
    let h = crate::domain::handle::Handle::parse(handle).map_err(AppError::BadRequest)?;
    if !h.is_local(data.domain()) && me.is_none() {
        let host = h.host.clone().unwrap_or_default();
        let known =
            db::actors::remote_by_handle(&data.db, &h.name, &host, crate::domain::ActorKind::Group)
                .await?;
        return known
            .map(DbActor::new)
            .transpose()?
            .ok_or(AppError::Unauthorized);
    }
    groups::find_group(data, handle).await
}

async fn show(
    data: FedData,
    MaybeAuth(me): MaybeAuth,
    Path(handle): Path<String>,
) -> Result<Json<GroupView>, AppError> {
    let g = find(&data, &handle, me.as_ref()).await?;
    if !access::may_see_profile(me.as_ref(), &g.row) {
        return Err(AppError::not_found("group"));
    }
    Ok(Json(view(&data, &g, me.as_ref()).await?))
}

#[derive(Serialize)]
struct MembershipView {
    membership: &'static str,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JoinBody {
    /// To the moderators of a group that approves its members.
    note: Option<String>,
    /// An invitation link's token.
    invite: Option<String>,
}

async fn join(
    data: FedData,
    Auth(me, _): Auth,
    Path(handle): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<MembershipView>), AppError> {
    // The body is optional: none, or {"note": …, "invite": …}.
    let body: JoinBody = if body.iter().all(u8::is_ascii_whitespace) {
        JoinBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::bad_request(format!("request body is not valid JSON: {e}")))?
    };
    let g = groups::find_group(&data, &handle).await?;
    let req = groups::JoinRequest {
        note: body.note.as_deref(),
        invite: body.invite.as_deref(),
    };
    let state = groups::join(&data, &me, &g, req).await?;
    let status = if state == FollowState::Accepted {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Json(MembershipView {
            membership: state.as_str(),
        }),
    ))
}

async fn leave(
    data: FedData,
    Auth(me, _): Auth,
    Path(handle): Path<String>,
) -> Result<StatusCode, AppError> {
    let g = groups::find_group(&data, &handle).await?;
    groups::leave(&data, &me, &g).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Page {
    before: Option<i64>,
    limit: Option<u64>,
}

async fn threads(
    data: FedData,
    MaybeAuth(me): MaybeAuth,
    Path(handle): Path<String>,
    Query(p): Query<Page>,
) -> Result<Response, AppError> {
    let limit = p.limit.unwrap_or(20).clamp(1, 100);
    // Anonymous readers of a public group here share one rendered page for up
    // to a second (`federation::docs`): the same bytes they would each get.
    let key = me.is_none().then(|| {
        let before = p.before.map_or("-".to_string(), |b| b.to_string());
        format!("{}|{before}|{limit}", handle.to_lowercase())
    });
    if let Some(body) = key.as_deref().and_then(|k| data.group_docs.page(k)) {
        return Ok(json_body(body));
    }
    let stamp = data.group_docs.stamp();
    let g = find(&data, &handle, me.as_ref()).await?;
    access::require_read(&data.db, me.as_ref(), &g.row, "group").await?;
    let rows = db::posts::threads_of_group(&data.db, g.row.id, p.before, limit).await?;
    let views: Vec<PostView> = rows.iter().map(|(p, a)| PostView::new(p, a, &g)).collect();
    let body: Bytes = serde_json::to_vec(&views)
        .map_err(|e| AppError::internal(format!("threads page: {e}")))?
        .into();
    if let Some(key) = key
        && g.row.local
        && access::visibility(&g.row) == Visibility::Public
    {
        data.group_docs.put_page(key, body.clone(), stamp);
    }
    Ok(json_body(body))
}

fn json_body(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[derive(Deserialize)]
struct NewThread {
    title: String,
    /// Markdown.
    content: String,
    content_warning: Option<String>,
}

async fn create_thread(
    data: FedData,
    Auth(me, _): Auth,
    Path(handle): Path<String>,
    ApiJson(req): ApiJson<NewThread>,
) -> Result<(StatusCode, Json<PostView>), AppError> {
    let g = groups::find_group(&data, &handle).await?;
    let draft = posts::Draft {
        title: Some(&req.title),
        body: &req.content,
        content_warning: req.content_warning.as_deref(),
    };
    let row = posts::create_thread(&data, &me, &g, draft).await?;
    Ok((
        StatusCode::CREATED,
        Json(PostView::new(&row, &me.actor, &g)),
    ))
}
