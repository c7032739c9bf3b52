//! A group's moderation pages, for its owner and moderators (and admins):
//! settings, what the group is about (for directories), requests to join,
//! posts held for review, bans, invitations (`/g/{name}/moderation`) and the
//! moderation log; and what a moderator does from a thread page: removing a
//! post, locking a thread. Links between groups, on the same page, are in
//! `web::links`. The rules and the federation live in `service::moderation`
//! and `service::directory`; these handlers check the form, call it, and
//! show what happened or what went wrong.

use askama::Template;
use axum::{
    Router,
    extract::{Path, Query},
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use serde::Deserialize;

use super::{
    Layout, Notice,
    admin::{DoneQuery, client_error},
    auth::EmptyForm,
    ok, render, see_other,
    session::{CSRF_MESSAGE, Submitted, Viewer},
    views::{PersonView, When, group_path},
};
use crate::{
    app::AppState,
    db::{self, entities::post},
    domain::{
        ActorKind,
        group::{JoinPolicy, Visibility},
        topics::{Topics, split_list},
    },
    error::AppError,
    federation::{FedData, objects::actor::DbActor},
    service::{
        access,
        directory::{self, AboutChange},
        federation::{Who, require_group_staff},
        moderation::{self as moder, SettingsChange},
        users::CurrentUser,
    },
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/g/{name}/moderation", get(moderation_page))
        .route("/g/{name}/moderation/log", get(log_page))
        .route("/g/{name}/moderation/settings", post(save_settings))
        .route("/g/{name}/moderation/about", post(save_about))
        .route(
            "/g/{name}/moderation/requests/{actor}/approve",
            post(approve_request),
        )
        .route(
            "/g/{name}/moderation/requests/{actor}/refuse",
            post(refuse_request),
        )
        .route("/g/{name}/moderation/bans", post(ban))
        .route("/g/{name}/moderation/bans/{actor}/unban", post(unban))
        .route("/g/{name}/moderation/invite", post(invite))
        .route("/g/{name}/moderation/invite-link", post(invite_link))
        .route("/posts/{id}/approve", post(approve_post))
        .route("/posts/{id}/remove", post(remove_post))
        .route("/t/{id}/lock", post(lock))
        .route("/t/{id}/unlock", post(unlock))
}

struct Choice {
    value: &'static str,
    label: &'static str,
    checked: bool,
}

struct RequestRow {
    actor_id: i64,
    person: PersonView,
    /// The applicant's note, plain text (escaped by the template).
    note: String,
    since: When,
}

struct HeldRow {
    id: i64,
    /// Where to read it: the thread it belongs to.
    thread_id: i64,
    is_thread: bool,
    title: String,
    author: PersonView,
    /// Sanitised HTML, cut short.
    excerpt_html: String,
    since: When,
}

struct BanRow {
    actor_id: i64,
    handle: String,
    reason: String,
    by: String,
    since: When,
}

/// The "About this group" form: what the group is about, as typed.
struct AboutValues {
    /// One per line.
    conditions: String,
    tags: String,
    /// One per line, `system:code`.
    codes: String,
    languages: String,
    region: String,
    discoverable: bool,
}

impl AboutValues {
    fn of(t: &Topics, discoverable: bool) -> Self {
        AboutValues {
            conditions: t.conditions.join("\n"),
            tags: t.tags.join(", "),
            codes: t
                .codes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            languages: t.languages.join(", "),
            region: t.region.clone().unwrap_or_default(),
            discoverable,
        }
    }
}

#[derive(Template)]
#[template(path = "moderation/index.html")]
pub(super) struct ModerationPage {
    l: Layout,
    /// The `/g/…` path segment.
    name: String,
    title: String,
    visibilities: Vec<Choice>,
    join_policies: Vec<Choice>,
    member_count_hidden: bool,
    premoderation: bool,
    default_content_warning: String,
    requests: Vec<RequestRow>,
    held: Vec<HeldRow>,
    bans: Vec<BanRow>,
    pub(super) error: Option<String>,
    /// A new invitation link, shown once.
    invite_link: Option<String>,
    /// The forms' values, kept after an error.
    ban_handle: String,
    ban_reason: String,
    invite_handle: String,
    about: AboutValues,
    /// Only public groups are listed and link with others.
    public: bool,
    pub(super) links: super::links::LinkSections,
}

struct LogRow {
    at: When,
    who: String,
    action: String,
    target: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "moderation/log.html")]
struct LogPage {
    l: Layout,
    name: String,
    title: String,
    entries: Vec<LogRow>,
}

fn title_of(g: &DbActor) -> String {
    g.row
        .display_name
        .clone()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| g.row.username.clone())
}

/// One of this instance's groups, and the signed-in viewer as its staff
/// (401 → sign in; unknown group 404; not staff 403).
pub(super) async fn staff_group<'v>(
    data: &FedData,
    viewer: &'v Viewer,
    name: &str,
) -> Result<(&'v CurrentUser, DbActor), AppError> {
    let me = viewer.require()?;
    let row = db::actors::local_by_name_and_kind(&data.db, name, ActorKind::Group)
        .await?
        .ok_or_else(|| AppError::not_found("group"))?;
    let g = DbActor::new(row)?;
    require_group_staff(data, Who::User(me), &g).await?;
    Ok((me, g))
}

/// Up to about 600 characters of sanitised HTML, still well-formed.
fn excerpt_html(html: &str) -> String {
    const MAX: usize = 600;
    if html.chars().count() <= MAX {
        return html.to_string();
    }
    let cut: String = html.chars().take(MAX).collect();
    // Re-sanitising closes the tags the cut left open and drops a cut tag.
    format!("{}…", crate::domain::content::sanitize_html(&cut))
}

pub(super) async fn page_view(
    data: &FedData,
    viewer: &Viewer,
    g: &DbActor,
) -> Result<ModerationPage, AppError> {
    let row = &g.row;
    let title = title_of(g);
    let visibility = Visibility::of(&row.visibility);
    let join_policy = JoinPolicy::of(&row.join_policy);
    let requests = db::moderation::pending_requests(&data.db, row.id)
        .await?
        .into_iter()
        .map(|(f, a)| RequestRow {
            actor_id: a.id,
            person: PersonView::new(&a),
            note: f.note.unwrap_or_default(),
            since: When::new(f.created_at),
        })
        .collect();
    let held = db::moderation::held_posts(&data.db, row.id)
        .await?
        .into_iter()
        .map(|(p, a)| HeldRow {
            id: p.id,
            thread_id: p.thread_id.unwrap_or(p.id),
            is_thread: p.thread_id.is_none(),
            title: p.title.clone().unwrap_or_default(),
            author: PersonView::new(&a),
            excerpt_html: excerpt_html(&p.content_html),
            since: When::new(p.held_at.unwrap_or(p.published_at)),
        })
        .collect();
    let bans = db::moderation::bans(&data.db, row.id)
        .await?
        .into_iter()
        .map(|(b, a)| BanRow {
            actor_id: a.id,
            handle: format!("@{}@{}", a.username, a.domain),
            reason: b.reason.unwrap_or_default(),
            by: b.created_by,
            since: When::new(b.created_at),
        })
        .collect();
    let topics = db::directory::topics_of(&data.db, row).await?;
    let links = super::links::LinkSections::of(data, g).await?;
    Ok(ModerationPage {
        l: Layout::new(data, viewer, format!("{title}: moderation")).await?,
        name: group_path(row),
        title,
        visibilities: Visibility::ALL
            .into_iter()
            .map(|v| Choice {
                value: v.as_str(),
                label: v.label(),
                checked: v == visibility,
            })
            .collect(),
        join_policies: JoinPolicy::ALL
            .into_iter()
            .map(|p| Choice {
                value: p.as_str(),
                label: p.label(),
                checked: p == join_policy,
            })
            .collect(),
        member_count_hidden: row.member_count_hidden,
        premoderation: row.premoderation,
        default_content_warning: row.default_content_warning.clone().unwrap_or_default(),
        requests,
        held,
        bans,
        error: None,
        invite_link: None,
        ban_handle: String::new(),
        ban_reason: String::new(),
        invite_handle: String::new(),
        about: AboutValues::of(&topics, row.discoverable),
        public: visibility == Visibility::Public,
        links,
    })
}

/// Re-render the moderation page with an error (and the forms as typed);
/// a server error stays an error.
pub(super) async fn fail(
    data: &FedData,
    viewer: &Viewer,
    g: &DbActor,
    e: AppError,
    keep: impl FnOnce(&mut ModerationPage),
) -> Result<Response, AppError> {
    let status = e.status();
    let message = client_error(e)?;
    let mut page = page_view(data, viewer, g).await?;
    page.error = Some(message);
    keep(&mut page);
    Ok(render(status, &page))
}

pub(super) fn done(g: &DbActor, key: &str) -> Response {
    see_other(&format!("/g/{}/moderation?done={key}", group_path(&g.row)))
}

pub async fn moderation_page(
    data: FedData,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, AppError> {
    let (_, g) = staff_group(&data, &viewer, &name).await?;
    let mut page = page_view(&data, &viewer, &g).await?;
    let done = q.done.as_deref();
    page.l = page
        .l
        .with_notice(Notice::from(done).or_else(|| notice(done)));
    Ok(ok(&page))
}

/// This page's own notices (fixed texts, like `Notice`).
fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "about" => "What the group is about is saved. It is in force now.",
        "link_requested" => "The request to link is sent: the other group's moderators decide.",
        "link_accepted" => "The groups are linked: each group's page lists the other.",
        "link_refused" => "The request to link is refused.",
        "link_withdrawn" => "The request to link is withdrawn.",
        "unlinked" => "The groups are no longer linked.",
        _ => return None,
    })
}

pub async fn log_page(
    data: FedData,
    viewer: Viewer,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let (me, g) = staff_group(&data, &viewer, &name).await?;
    let entries = moder::log(&data, Who::User(me), &g)
        .await?
        .into_iter()
        .map(|e| LogRow {
            at: When::new(e.at),
            who: e.who,
            action: e.action,
            target: e.target,
            reason: e.reason.unwrap_or_default(),
        })
        .collect();
    let title = title_of(&g);
    Ok(ok(&LogPage {
        l: Layout::new(&data, &viewer, format!("{title}: moderation log")).await?,
        name: group_path(&g.row),
        title,
        entries,
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SettingsForm {
    visibility: String,
    join_policy: String,
    /// Checkboxes: present when ticked.
    member_count_hidden: Option<String>,
    premoderation: Option<String>,
    default_content_warning: String,
}

pub async fn save_settings(
    data: FedData,
    viewer: Viewer,
    Path(name): Path<String>,
    sub: Submitted<SettingsForm>,
) -> Result<Response, AppError> {
    let (me, g) = staff_group(&data, &viewer, &name).await?;
    let f = sub.form;
    let keep = |p: &mut ModerationPage| {
        for c in &mut p.visibilities {
            c.checked = c.value == f.visibility;
        }
        for c in &mut p.join_policies {
            c.checked = c.value == f.join_policy;
        }
        p.member_count_hidden = f.member_count_hidden.is_some();
        p.premoderation = f.premoderation.is_some();
        p.default_content_warning = f.default_content_warning.clone();
    };
    if !sub.csrf_ok {
        return fail(&data, &viewer, &g, AppError::forbidden(CSRF_MESSAGE), keep).await;
    }
    let change = SettingsChange {
        visibility: Some(f.visibility.as_str()).filter(|v| !v.is_empty()),
        join_policy: Some(f.join_policy.as_str()).filter(|v| !v.is_empty()),
        member_count_hidden: Some(f.member_count_hidden.is_some()),
        premoderation: Some(f.premoderation.is_some()),
        default_content_warning: Some(f.default_content_warning.as_str()),
    };
    match moder::update_settings(&data, Who::User(me), &g, change).await {
        Ok(_) => Ok(done(&g, "mod_settings")),
        Err(e) => fail(&data, &viewer, &g, e, keep).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AboutForm {
    conditions: String,
    tags: String,
    codes: String,
    languages: String,
    region: String,
    /// Checkbox: present when ticked.
    discoverable: Option<String>,
}

/// Lines of a textarea, trimmed, the empty ones dropped (a condition's
/// name may hold a comma).
fn lines(input: &str) -> Vec<String> {
    input
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

pub async fn save_about(
    data: FedData,
    viewer: Viewer,
    Path(name): Path<String>,
    sub: Submitted<AboutForm>,
) -> Result<Response, AppError> {
    let (me, g) = staff_group(&data, &viewer, &name).await?;
    let f = sub.form;
    let keep = |p: &mut ModerationPage| {
        p.about = AboutValues {
            conditions: f.conditions.clone(),
            tags: f.tags.clone(),
            codes: f.codes.clone(),
            languages: f.languages.clone(),
            region: f.region.clone(),
            discoverable: f.discoverable.is_some(),
        };
    };
    if !sub.csrf_ok {
        return fail(&data, &viewer, &g, AppError::forbidden(CSRF_MESSAGE), keep).await;
    }
    let change = AboutChange {
        conditions: lines(&f.conditions),
        tags: split_list(&f.tags),
        codes: split_list(&f.codes),
        languages: split_list(&f.languages),
        region: Some(f.region.trim().to_string()).filter(|r| !r.is_empty()),
        discoverable: f.discoverable.is_some(),
    };
    match directory::set_about(&data, Who::User(me), &g, &change).await {
        Ok(_) => Ok(done(&g, "about")),
        Err(e) => fail(&data, &viewer, &g, e, keep).await,
    }
}

pub async fn approve_request(
    data: FedData,
    viewer: Viewer,
    Path((name, actor)): Path<(String, i64)>,
    sub: Submitted<EmptyForm>,
) -> Result<Response, AppError> {
    let (me, g) = staff_group(&data, &viewer, &name).await?;
    if !sub.csrf_ok {
        return fail(
            &data,
            &viewer,
            &g,
            AppError::forbidden(CSRF_MESSAGE),
            |_| {},
        )
        .await;
    }
    match moder::approve(&data, Who::User(me), &g, actor).await {
        Ok(()) => Ok(done(&g, "member_approved")),
        Err(e) => fail(&data, &viewer, &g, e, |_| {}).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ReasonForm {
    reason: String,
}

pub async fn refuse_request(
    data: FedData,
    viewer: Viewer,
    Path((name, actor)): Path<(String, i64)>,
    sub: Submitted<ReasonForm>,
) -> Result<Response, AppError> {
    let (me, g) = staff_group(&data, &viewer, &name).await?;
    if !sub.csrf_ok {
        return fail(
            &data,
            &viewer,
            &g,
            AppError::forbidden(CSRF_MESSAGE),
            |_| {},
        )
        .await;
    }
    let reason = Some(sub.form.reason.trim()).filter(|r| !r.is_empty());
    match moder::refuse(&data, Who::User(me), &g, actor, reason).await {
        Ok(()) => Ok(done(&g, "member_refused")),
        Err(e) => fail(&data, &viewer, &g, e, |_| {}).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct BanForm {
    handle: String,
    reason: String,
}

pub async fn ban(
    data: FedData,
    viewer: Viewer,
    Path(name): Path<String>,
    sub: Submitted<BanForm>,
) -> Result<Response, AppError> {
    let (me, g) = staff_group(&data, &viewer, &name).await?;
    let f = sub.form;
    let keep = |p: &mut ModerationPage| {
        p.ban_handle = f.handle.clone();
        p.ban_reason = f.reason.clone();
    };
    if !sub.csrf_ok {
        return fail(&data, &viewer, &g, AppError::forbidden(CSRF_MESSAGE), keep).await;
    }
    let result = async {
        let person = moder::person_by_handle(&data, f.handle.trim()).await?;
        moder::ban(&data, Who::User(me), &g, &person, Some(&f.reason)).await
    }
    .await;
    match result {
        Ok(()) => Ok(done(&g, "banned")),
        Err(e) => fail(&data, &viewer, &g, e, keep).await,
    }
}

pub async fn unban(
    data: FedData,
    viewer: Viewer,
    Path((name, actor)): Path<(String, i64)>,
    sub: Submitted<EmptyForm>,
) -> Result<Response, AppError> {
    let (me, g) = staff_group(&data, &viewer, &name).await?;
    if !sub.csrf_ok {
        return fail(
            &data,
            &viewer,
            &g,
            AppError::forbidden(CSRF_MESSAGE),
            |_| {},
        )
        .await;
    }
    let result = async {
        let row = db::actors::by_id(&data.db, actor)
            .await?
            .ok_or_else(|| AppError::not_found("ban"))?;
        let person = DbActor::new(row)?;
        moder::unban(&data, Who::User(me), &g, &person).await
    }
    .await;
    match result {
        Ok(()) => Ok(done(&g, "unbanned")),
        Err(e) => fail(&data, &viewer, &g, e, |_| {}).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct InviteForm {
    handle: String,
}

pub async fn invite(
    data: FedData,
    viewer: Viewer,
    Path(name): Path<String>,
    sub: Submitted<InviteForm>,
) -> Result<Response, AppError> {
    let (me, g) = staff_group(&data, &viewer, &name).await?;
    let f = sub.form;
    let keep = |p: &mut ModerationPage| p.invite_handle = f.handle.clone();
    if !sub.csrf_ok {
        return fail(&data, &viewer, &g, AppError::forbidden(CSRF_MESSAGE), keep).await;
    }
    let result = async {
        let person = moder::person_by_handle(&data, f.handle.trim()).await?;
        moder::invite(&data, Who::User(me), &g, Some(&person)).await
    }
    .await;
    match result {
        Ok(_) => Ok(done(&g, "invited")),
        Err(e) => fail(&data, &viewer, &g, e, keep).await,
    }
}

/// A new invitation link: shown on the page this once (only its hash is kept).
pub async fn invite_link(
    data: FedData,
    viewer: Viewer,
    Path(name): Path<String>,
    sub: Submitted<EmptyForm>,
) -> Result<Response, AppError> {
    let (me, g) = staff_group(&data, &viewer, &name).await?;
    if !sub.csrf_ok {
        return fail(
            &data,
            &viewer,
            &g,
            AppError::forbidden(CSRF_MESSAGE),
            |_| {},
        )
        .await;
    }
    match moder::invite(&data, Who::User(me), &g, None).await {
        Ok(Some(token)) => {
            let mut page = page_view(&data, &viewer, &g).await?;
            page.invite_link = Some(format!(
                "{}://{}/g/{}?invite={}",
                data.settings.scheme(),
                data.settings.server.domain,
                group_path(&g.row),
                super::urlencode(&token)
            ));
            Ok(render(StatusCode::CREATED, &page))
        }
        Ok(None) => Err(AppError::internal("no invitation token was made")),
        Err(e) => fail(&data, &viewer, &g, e, |_| {}).await,
    }
}

/// A post, its group, and the signed-in viewer as that group's staff. To
/// anyone else, a post they may not read is the same 404 as a missing one;
/// one they may read is a 403.
async fn staff_post<'v>(
    data: &FedData,
    viewer: &'v Viewer,
    id: i64,
) -> Result<(&'v CurrentUser, post::Model, DbActor), AppError> {
    let me = viewer.require()?;
    let p = db::posts::by_id(&data.db, id)
        .await?
        .ok_or_else(|| AppError::not_found("post"))?;
    let g = db::actors::by_id(&data.db, p.group_id)
        .await?
        .ok_or_else(|| AppError::not_found("post"))?;
    let g = DbActor::new(g)?;
    if let Err(e) = require_group_staff(data, Who::User(me), &g).await {
        access::readable_post(&data.db, Some(me), id).await?;
        return Err(e);
    }
    Ok((me, p, g))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RemoveForm {
    reason: String,
    /// "moderation" when sent from the moderation page (back there after).
    from: String,
}

pub async fn remove_post(
    data: FedData,
    viewer: Viewer,
    Path(id): Path<i64>,
    sub: Submitted<RemoveForm>,
) -> Result<Response, AppError> {
    let (me, p, g) = staff_post(&data, &viewer, id).await?;
    let f = sub.form;
    let from_moderation = f.from == "moderation" && g.row.local;
    let result = if sub.csrf_ok {
        moder::remove_post(&data, Who::User(me), id, Some(&f.reason)).await
    } else {
        Err(AppError::forbidden(CSRF_MESSAGE))
    };
    match result {
        Ok(()) if from_moderation => Ok(done(&g, "post_removed")),
        Ok(()) => Ok(see_other(&match p.thread_id {
            Some(t) => format!("/t/{t}?done=post_removed"),
            None => format!("/g/{}?done=post_removed", group_path(&g.row)),
        })),
        Err(e) if from_moderation => fail(&data, &viewer, &g, e, |_| {}).await,
        Err(e) => super::threads::thread_with_error(&data, &viewer, id, e).await,
    }
}

pub async fn approve_post(
    data: FedData,
    viewer: Viewer,
    Path(id): Path<i64>,
    sub: Submitted<EmptyForm>,
) -> Result<Response, AppError> {
    let (me, _, g) = staff_post(&data, &viewer, id).await?;
    let result = if sub.csrf_ok {
        moder::approve_post(&data, Who::User(me), id).await
    } else {
        Err(AppError::forbidden(CSRF_MESSAGE))
    };
    match result {
        Ok(()) => Ok(done(&g, "post_approved")),
        // Only local groups hold posts: elsewhere, the plain error page.
        Err(e) if g.row.local => fail(&data, &viewer, &g, e, |_| {}).await,
        Err(e) => Err(e),
    }
}

async fn set_locked(
    data: FedData,
    viewer: Viewer,
    id: i64,
    csrf_ok: bool,
    locked: bool,
) -> Result<Response, AppError> {
    let (me, _, _) = staff_post(&data, &viewer, id).await?;
    let result = if csrf_ok {
        moder::set_locked(&data, Who::User(me), id, locked).await
    } else {
        Err(AppError::forbidden(CSRF_MESSAGE))
    };
    match result {
        Ok(()) => Ok(see_other(&format!(
            "/t/{id}?done={}",
            if locked { "locked" } else { "unlocked" }
        ))),
        Err(e) => super::threads::thread_with_error(&data, &viewer, id, e).await,
    }
}

pub async fn lock(
    data: FedData,
    viewer: Viewer,
    Path(id): Path<i64>,
    sub: Submitted<EmptyForm>,
) -> Result<Response, AppError> {
    set_locked(data, viewer, id, sub.csrf_ok, true).await
}

pub async fn unlock(
    data: FedData,
    viewer: Viewer,
    Path(id): Path<i64>,
    sub: Submitted<EmptyForm>,
) -> Result<Response, AppError> {
    set_locked(data, viewer, id, sub.csrf_ok, false).await
}
