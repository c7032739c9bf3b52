//! The directory (search, look up `@name@host`), a group's page, joining and
//! leaving, and starting a thread.

use askama::Template;
use axum::{
    extract::{Path, Query},
    http::StatusCode,
    response::Response,
};
use serde::Deserialize;

use super::{
    Layout, Notice, ok, render, see_other,
    session::{CSRF_MESSAGE, Submitted, Viewer},
    views::{DirectoryEntry, GroupCard, GroupLinkView, ThreadItem, TopicsView, group_path},
};
use crate::{
    db,
    domain::{
        ActorKind, FollowState, content,
        group::{JoinPolicy, Visibility},
        handle::Handle,
        markup,
    },
    error::AppError,
    federation::{FedData, objects::actor::DbActor},
    service::{access, directory, groups, links, posts, users::CurrentUser},
};

#[derive(Template)]
#[template(path = "directory.html")]
struct DirectoryPage {
    l: Layout,
    q: String,
    groups: Vec<DirectoryEntry>,
    /// Where "Sign in to join" comes back to, URL-encoded.
    signin_next: String,
    lookup: String,
    lookup_error: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DirectoryQuery {
    q: String,
    done: Option<String>,
}

async fn directory_page(
    data: &FedData,
    viewer: &Viewer,
    q: &str,
) -> Result<DirectoryPage, AppError> {
    let q: String = q.trim().chars().take(200).collect();
    let found = directory::search(data, viewer.user.as_ref(), &q).await?;
    let memberships = match &viewer.user {
        Some(u) => db::follows::groups_of(&data.db, u.actor.id).await?,
        None => vec![],
    };
    let groups = found
        .iter()
        .map(|e| {
            let m = memberships
                .iter()
                .find(|f| f.group_id == e.group.id)
                .and_then(|f| FollowState::parse(&f.state));
            DirectoryEntry::new(e, m)
        })
        .collect();
    let back = if q.is_empty() {
        "/directory".to_string()
    } else {
        format!("/directory?q={}", super::urlencode(&q))
    };
    Ok(DirectoryPage {
        l: Layout::new(data, viewer, "Groups").await?,
        signin_next: super::urlencode(&back),
        q,
        groups,
        lookup: String::new(),
        lookup_error: None,
    })
}

pub async fn directory(
    data: FedData,
    viewer: Viewer,
    Query(q): Query<DirectoryQuery>,
) -> Result<Response, AppError> {
    let mut page = directory_page(&data, &viewer, &q.q).await?;
    page.l = page.l.with_notice(Notice::from(q.done.as_deref()));
    Ok(ok(&page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LookupForm {
    handle: String,
}

/// Find a group anywhere by `@name@host` (fetching it when new) and go to its
/// page. Members only: a lookup makes this server fetch from others.
pub async fn lookup(
    data: FedData,
    viewer: Viewer,
    sub: Submitted<LookupForm>,
) -> Result<Response, AppError> {
    viewer.require()?;
    let input = sub.form.handle.trim().to_string();
    let mut page = directory_page(&data, &viewer, "").await?;
    page.lookup = input.clone();
    if !sub.csrf_ok {
        page.lookup_error = Some(CSRF_MESSAGE.into());
        return Ok(render(StatusCode::FORBIDDEN, &page));
    }
    if input.is_empty() {
        page.lookup_error = Some("Type a group's address, like @name@example.org.".into());
        return Ok(render(StatusCode::BAD_REQUEST, &page));
    }
    match groups::find_group(&data, &input).await {
        Ok(g) => Ok(see_other(&format!("/g/{}", group_path(&g.row)))),
        Err(e) if e.status().is_client_error() || e.status() == StatusCode::BAD_GATEWAY => {
            page.lookup_error = Some(format!(
                "No group found at '{input}': {}",
                e.to_string().trim_end_matches('.')
            ));
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e),
    }
}

/// A group we already know, by `/g/…` path: never fetches (so a page view
/// cannot make us contact another server).
async fn known_group(data: &FedData, handle: &str) -> Result<DbActor, AppError> {
    let h = Handle::parse(handle).map_err(AppError::BadRequest)?;
    let row = if h.is_local(data.domain()) {
        db::actors::local_by_name_and_kind(&data.db, &h.name, ActorKind::Group).await?
    } else {
        let host = h.host.unwrap_or_default();
        db::actors::remote_by_handle(&data.db, &h.name, &host, ActorKind::Group).await?
    };
    DbActor::new(row.ok_or_else(|| AppError::not_found("group"))?)
}

struct StaffView {
    role: &'static str,
    name: String,
    handle: String,
}

#[derive(Template)]
#[template(path = "group.html")]
struct GroupPage {
    l: Layout,
    g: GroupCard,
    url: String,
    rules_html: String,
    members: Option<u64>,
    staff: Vec<StaffView>,
    threads: Vec<ThreadItem>,
    older: Option<i64>,
    /// The viewer may change the group's settings (admin, owner, moderator).
    manages: bool,
    /// The viewer may read its threads (members-only groups: members).
    readable: bool,
    /// "open", "approval" or "invite".
    join_policy: &'static str,
    /// Shown under the title: who reads it.
    visibility_note: Option<&'static str>,
    /// An invitation link's token, carried into the join form.
    invite: String,
    /// What it is about: conditions, codes, tags, languages, region.
    topics: TopicsView,
    /// Groups it is linked with (both sides agreed).
    linked: Vec<GroupLinkView>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PageQuery {
    before: Option<i64>,
    done: Option<String>,
    invite: Option<String>,
}

const THREADS_PER_PAGE: u64 = 30;

pub async fn group_page(
    data: FedData,
    viewer: Viewer,
    Path(handle): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, AppError> {
    let g = known_group(&data, &handle).await?;
    let me = viewer.user.as_ref();
    if !access::may_see_profile(me, &g.row) {
        return Err(AppError::not_found("group"));
    }
    let readable = access::may_read(&data.db, me, &g.row).await?;
    let membership = match &viewer.user {
        Some(u) => db::follows::state(&data.db, u.actor.id, g.row.id).await?,
        None => None,
    };
    let rows = if readable {
        db::posts::threads_of_group(&data.db, g.row.id, q.before, THREADS_PER_PAGE + 1).await?
    } else {
        vec![]
    };
    let more = rows.len() as u64 > THREADS_PER_PAGE;
    let rows = &rows[..rows.len().min(THREADS_PER_PAGE as usize)];
    let counts =
        db::posts::reply_counts(&data.db, rows.iter().map(|(p, _)| p.id).collect()).await?;
    let threads: Vec<ThreadItem> = rows
        .iter()
        .map(|(p, a)| ThreadItem::new(p, a, None, &counts))
        .collect();
    let older = if more {
        threads.last().map(|t| t.id)
    } else {
        None
    };
    let members = access::shown_member_count(&data.db, me, &g.row).await?;
    // Who runs a members-only group is shown to its members only.
    let staff_rows = if readable {
        db::roles::staff(&data.db, g.row.id).await?
    } else {
        vec![]
    };
    let manages = g.row.local
        && viewer
            .user
            .as_ref()
            .is_some_and(|u| u.user.is_admin || staff_rows.iter().any(|(_, a)| a.id == u.actor.id));
    let staff = staff_rows
        .into_iter()
        .map(|(r, a)| StaffView {
            role: r.as_str(),
            name: a.display_name.clone().unwrap_or_else(|| a.username.clone()),
            handle: format!("@{}@{}", a.username, a.domain),
        })
        .collect();
    let topics = TopicsView::new(&db::directory::topics_of(&data.db, &g.row).await?);
    let linked = links::linked(&data, &g)
        .await?
        .iter()
        .filter(|other| access::may_see_profile(me, &other.row))
        .map(GroupLinkView::new)
        .collect();
    let card = GroupCard::new(&g.row, membership);
    let title = card.title.clone();
    Ok(ok(&GroupPage {
        l: Layout::new(&data, &viewer, title)
            .await?
            .with_notice(Notice::from(q.done.as_deref())),
        url: g.row.ap_id.clone(),
        rules_html: g.row.rules.clone().unwrap_or_default(),
        g: card,
        members,
        staff,
        threads,
        older,
        manages,
        readable,
        join_policy: JoinPolicy::of(&g.row.join_policy).as_str(),
        visibility_note: match access::visibility(&g.row) {
            Visibility::Public => None,
            Visibility::Members => {
                Some("Members only: only approved members see its threads and who belongs to it.")
            }
            Visibility::Local => Some("This instance only: never shared with other servers."),
        },
        invite: q.invite.unwrap_or_default(),
        topics,
        linked,
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct JoinForm {
    /// To the moderators, when the group approves its members.
    note: String,
    /// An invitation link's token.
    invite: String,
}

pub async fn join(
    data: FedData,
    viewer: Viewer,
    Path(handle): Path<String>,
    sub: Submitted<JoinForm>,
) -> Result<Response, AppError> {
    let me = viewer.require()?;
    if !sub.csrf_ok {
        return Err(AppError::forbidden(CSRF_MESSAGE));
    }
    let g = known_group(&data, &handle).await?;
    if !access::may_see_profile(Some(me), &g.row) {
        return Err(AppError::not_found("group"));
    }
    let f = &sub.form;
    let req = groups::JoinRequest {
        note: Some(f.note.as_str()).filter(|n| !n.trim().is_empty()),
        invite: Some(f.invite.trim()).filter(|t| !t.is_empty()),
    };
    let state = groups::join(&data, me, &g, req).await?;
    let done = match state {
        FollowState::Accepted => "joined",
        FollowState::Pending => "requested",
    };
    Ok(see_other(&format!("/g/{}?done={done}", group_path(&g.row))))
}

pub async fn leave(
    data: FedData,
    viewer: Viewer,
    Path(handle): Path<String>,
    sub: Submitted<super::auth::EmptyForm>,
) -> Result<Response, AppError> {
    let me = viewer.require()?;
    if !sub.csrf_ok {
        return Err(AppError::forbidden(CSRF_MESSAGE));
    }
    let g = known_group(&data, &handle).await?;
    groups::leave(&data, me, &g).await?;
    Ok(see_other(&format!("/g/{}?done=left", group_path(&g.row))))
}

#[derive(Template)]
#[template(path = "compose.html")]
pub struct ComposePage {
    pub l: Layout,
    pub g: GroupCard,
    pub error: Option<String>,
    pub title: String,
    pub body: String,
    pub content_warning: String,
    pub preview_html: Option<String>,
}

async fn compose_form(
    data: &FedData,
    viewer: &Viewer,
    me: &CurrentUser,
    handle: &str,
) -> Result<(DbActor, ComposePage), AppError> {
    let g = known_group(data, handle).await?;
    let membership = db::follows::state(&data.db, me.actor.id, g.row.id).await?;
    let card = GroupCard::new(&g.row, membership);
    let page = ComposePage {
        l: Layout::new(data, viewer, format!("New thread in {}", card.title)).await?,
        g: card,
        error: None,
        title: String::new(),
        body: String::new(),
        content_warning: String::new(),
        preview_html: None,
    };
    Ok((g, page))
}

pub async fn compose_page(
    data: FedData,
    viewer: Viewer,
    Path(handle): Path<String>,
) -> Result<Response, AppError> {
    let me = viewer.require()?;
    let (_, page) = compose_form(&data, &viewer, me, &handle).await?;
    Ok(ok(&page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ComposeForm {
    title: String,
    body: String,
    content_warning: String,
    /// "preview" or "post".
    action: String,
}

/// What the Markdown will look like (mentions are resolved only on
/// posting), sanitised like every post; too long a body says so instead.
pub fn preview(body: &str) -> Result<String, String> {
    let body = content::validate_body(body)?;
    Ok(content::sanitize_html(&markup::markdown_to_html(&body)))
}

pub async fn compose(
    data: FedData,
    viewer: Viewer,
    Path(handle): Path<String>,
    sub: Submitted<ComposeForm>,
) -> Result<Response, AppError> {
    let me = viewer.require()?;
    let f = sub.form;
    let (g, mut page) = compose_form(&data, &viewer, me, &handle).await?;
    page.title = f.title.clone();
    page.body = f.body.clone();
    page.content_warning = f.content_warning.clone();
    if !sub.csrf_ok {
        page.error = Some(CSRF_MESSAGE.into());
        return Ok(render(StatusCode::FORBIDDEN, &page));
    }
    if f.action == "preview" {
        match preview(&f.body) {
            Ok(html) => page.preview_html = Some(html),
            Err(e) => page.error = Some(super::capitalise(&e)),
        }
        return Ok(ok(&page));
    }
    let draft = posts::Draft {
        title: Some(&f.title),
        body: &f.body,
        content_warning: Some(f.content_warning.as_str()).filter(|c| !c.trim().is_empty()),
    };
    match posts::create_thread(&data, me, &g, draft).await {
        Ok(row) => Ok(see_other(&format!("/t/{}?done=posted", row.id))),
        Err(e) if e.status().is_client_error() => {
            page.error = Some(super::capitalise(&e.to_string()));
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e),
    }
}
