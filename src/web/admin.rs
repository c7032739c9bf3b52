//! Admin pages: the instance (name, description, registration mode), pending
//! sign-ups, invitation links, groups (create, edit, owner and moderators),
//! users (admin rights), the delivery queue (what failed or is retried).

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
    Layout, Notice, ok, render, see_other,
    session::{CSRF_MESSAGE, Submitted, Viewer},
    views::{When, group_path},
};
use crate::{
    app::AppState,
    db,
    domain::{ActorKind, DeliveryStatus, GroupRole, RegistrationMode, UserStatus},
    error::AppError,
    federation::{FedData, objects::actor::DbActor},
    service::{accounts, groups, instance, users::CurrentUser},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(instance_page).post(update_instance))
        .route("/admin/signups", get(signups_page))
        .route("/admin/signups/{id}/approve", post(approve))
        .route("/admin/signups/{id}/refuse", post(refuse))
        .route("/admin/invites", get(invites_page).post(create_invite))
        .route("/admin/invites/{id}/revoke", post(revoke_invite))
        .route("/admin/groups", get(groups_page).post(create_group))
        .route("/admin/groups/{name}", get(group_page).post(update_group))
        .route("/admin/groups/{name}/roles", post(add_role))
        .route(
            "/admin/groups/{name}/roles/{actor}/remove",
            post(remove_role),
        )
        .route("/admin/users", get(users_page))
        .route("/admin/deliveries", get(deliveries_page))
        .route("/admin/users/{id}/admin", post(set_admin))
}

pub(super) fn admin(viewer: &Viewer) -> Result<&CurrentUser, AppError> {
    let me = viewer.require()?;
    instance::require_admin(me)?;
    Ok(me)
}

pub(super) fn client_error(e: AppError) -> Result<String, AppError> {
    if e.status().is_client_error() {
        Ok(super::capitalise(&e.to_string()))
    } else {
        Err(e)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DoneQuery {
    pub(super) done: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EmptyForm {}

struct ModeOption {
    value: &'static str,
    label: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "admin/instance.html")]
struct InstancePage {
    l: Layout,
    name: String,
    description: String,
    modes: Vec<ModeOption>,
    pending: usize,
    error: Option<String>,
}

fn modes(current: &str) -> Vec<ModeOption> {
    RegistrationMode::ALL
        .into_iter()
        .map(|m| ModeOption {
            value: m.as_str(),
            label: m.label(),
            checked: m.as_str() == current,
        })
        .collect()
}

async fn instance_view(data: &FedData, viewer: &Viewer) -> Result<InstancePage, AppError> {
    let s = instance::settings(data).await?;
    let pending = db::users::list(&data.db, Some(UserStatus::Pending), 1000)
        .await?
        .len();
    Ok(InstancePage {
        l: Layout::new(data, viewer, "Admin: this instance").await?,
        name: s.name,
        description: s.description,
        modes: modes(&s.registration_mode),
        pending,
        error: None,
    })
}

pub async fn instance_page(
    data: FedData,
    viewer: Viewer,
    Query(q): Query<DoneQuery>,
) -> Result<Response, AppError> {
    admin(&viewer)?;
    let mut page = instance_view(&data, &viewer).await?;
    page.l = page.l.with_notice(Notice::from(q.done.as_deref()));
    Ok(ok(&page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct InstanceForm {
    name: String,
    description: String,
    registration_mode: String,
}

pub async fn update_instance(
    data: FedData,
    viewer: Viewer,
    sub: Submitted<InstanceForm>,
) -> Result<Response, AppError> {
    let me = admin(&viewer)?;
    let f = sub.form;
    let mut page = instance_view(&data, &viewer).await?;
    page.name = f.name.clone();
    page.description = f.description.clone();
    page.modes = modes(&f.registration_mode);
    if !sub.csrf_ok {
        page.error = Some(CSRF_MESSAGE.into());
        return Ok(render(StatusCode::FORBIDDEN, &page));
    }
    match instance::update_settings(&data, me, &f.name, &f.description, &f.registration_mode).await
    {
        Ok(()) => Ok(see_other("/admin?done=saved")),
        Err(e) => {
            let status = e.status();
            page.error = Some(client_error(e)?);
            Ok(render(status, &page))
        }
    }
}

struct SignupView {
    id: i64,
    username: String,
    email: String,
    application: String,
    created: When,
}

#[derive(Template)]
#[template(path = "admin/signups.html")]
struct SignupsPage {
    l: Layout,
    signups: Vec<SignupView>,
}

pub async fn signups_page(
    data: FedData,
    viewer: Viewer,
    Query(q): Query<DoneQuery>,
) -> Result<Response, AppError> {
    admin(&viewer)?;
    let signups = db::users::list(&data.db, Some(UserStatus::Pending), 500)
        .await?
        .into_iter()
        .map(|(u, a)| SignupView {
            id: u.id,
            username: a.username,
            email: u.email.unwrap_or_default(),
            application: u.application.unwrap_or_default(),
            created: When::new(u.created_at),
        })
        .collect();
    Ok(ok(&SignupsPage {
        l: Layout::new(&data, &viewer, "Admin: sign-ups")
            .await?
            .with_notice(Notice::from(q.done.as_deref())),
        signups,
    }))
}

pub async fn approve(
    data: FedData,
    viewer: Viewer,
    Path(id): Path<i64>,
    sub: Submitted<EmptyForm>,
) -> Result<Response, AppError> {
    let me = admin(&viewer)?;
    if !sub.csrf_ok {
        return Err(AppError::forbidden(CSRF_MESSAGE));
    }
    accounts::approve(&data, me, id).await?;
    Ok(see_other("/admin/signups?done=approved"))
}

pub async fn refuse(
    data: FedData,
    viewer: Viewer,
    Path(id): Path<i64>,
    sub: Submitted<EmptyForm>,
) -> Result<Response, AppError> {
    let me = admin(&viewer)?;
    if !sub.csrf_ok {
        return Err(AppError::forbidden(CSRF_MESSAGE));
    }
    accounts::refuse(&data, me, id).await?;
    Ok(see_other("/admin/signups?done=refused"))
}

struct InviteView {
    id: i64,
    uses: i32,
    max_uses: i32,
    expires: When,
}

#[derive(Template)]
#[template(path = "admin/invites.html")]
struct InvitesPage {
    l: Layout,
    invites: Vec<InviteView>,
    new_link: Option<String>,
    mode_is_invite: bool,
    error: Option<String>,
}

async fn invites_view(data: &FedData, viewer: &Viewer) -> Result<InvitesPage, AppError> {
    let invites = db::sessions::list_invites(&data.db, chrono::Utc::now())
        .await?
        .into_iter()
        .map(|i| InviteView {
            id: i.id,
            uses: i.uses,
            max_uses: i.max_uses,
            expires: When::new(i.expires_at),
        })
        .collect();
    let s = instance::settings(data).await?;
    Ok(InvitesPage {
        l: Layout::new(data, viewer, "Admin: invitations").await?,
        invites,
        new_link: None,
        mode_is_invite: instance::registration_mode(&s) == RegistrationMode::Invite,
        error: None,
    })
}

pub async fn invites_page(
    data: FedData,
    viewer: Viewer,
    Query(q): Query<DoneQuery>,
) -> Result<Response, AppError> {
    admin(&viewer)?;
    let mut page = invites_view(&data, &viewer).await?;
    page.l = page.l.with_notice(Notice::from(q.done.as_deref()));
    Ok(ok(&page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct InviteForm {
    max_uses: String,
}

/// The new link is shown once, on this response: only its hash is kept.
pub async fn create_invite(
    data: FedData,
    viewer: Viewer,
    sub: Submitted<InviteForm>,
) -> Result<Response, AppError> {
    let me = admin(&viewer)?;
    let mut page = invites_view(&data, &viewer).await?;
    if !sub.csrf_ok {
        page.error = Some(CSRF_MESSAGE.into());
        return Ok(render(StatusCode::FORBIDDEN, &page));
    }
    let Ok(max_uses) = sub.form.max_uses.trim().parse::<i32>() else {
        page.error = Some("Say for how many people the link is (a number from 1 to 1000).".into());
        return Ok(render(StatusCode::BAD_REQUEST, &page));
    };
    match accounts::create_invite(&data, me, max_uses).await {
        Ok(code) => {
            let mut page = invites_view(&data, &viewer).await?;
            page.new_link = Some(format!(
                "{}://{}/invite/{code}",
                data.settings.scheme(),
                data.settings.server.domain
            ));
            Ok(render(StatusCode::CREATED, &page))
        }
        Err(e) => {
            let status = e.status();
            page.error = Some(client_error(e)?);
            Ok(render(status, &page))
        }
    }
}

pub async fn revoke_invite(
    data: FedData,
    viewer: Viewer,
    Path(id): Path<i64>,
    sub: Submitted<EmptyForm>,
) -> Result<Response, AppError> {
    let me = admin(&viewer)?;
    if !sub.csrf_ok {
        return Err(AppError::forbidden(CSRF_MESSAGE));
    }
    accounts::revoke_invite(&data, me, id).await?;
    Ok(see_other("/admin/invites?done=revoked"))
}

struct GroupRow {
    name: String,
    path: String,
    title: String,
    members: u64,
}

#[derive(Template)]
#[template(path = "admin/groups.html")]
struct GroupsPage {
    l: Layout,
    groups: Vec<GroupRow>,
    error: Option<String>,
    name: String,
    title: String,
    summary: String,
}

async fn groups_view(data: &FedData, viewer: &Viewer) -> Result<GroupsPage, AppError> {
    let mut groups = vec![];
    for g in db::actors::list_groups(&data.db, true, 1000).await? {
        groups.push(GroupRow {
            members: db::follows::count_members(&data.db, g.id).await?,
            path: group_path(&g),
            name: g.username.clone(),
            title: g.display_name.clone().unwrap_or_else(|| g.username.clone()),
        });
    }
    Ok(GroupsPage {
        l: Layout::new(data, viewer, "Admin: groups").await?,
        groups,
        error: None,
        name: String::new(),
        title: String::new(),
        summary: String::new(),
    })
}

pub async fn groups_page(
    data: FedData,
    viewer: Viewer,
    Query(q): Query<DoneQuery>,
) -> Result<Response, AppError> {
    admin(&viewer)?;
    let mut page = groups_view(&data, &viewer).await?;
    page.l = page.l.with_notice(Notice::from(q.done.as_deref()));
    Ok(ok(&page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NewGroupForm {
    name: String,
    title: String,
    summary: String,
}

pub async fn create_group(
    data: FedData,
    viewer: Viewer,
    sub: Submitted<NewGroupForm>,
) -> Result<Response, AppError> {
    let me = admin(&viewer)?;
    let f = sub.form;
    let mut page = groups_view(&data, &viewer).await?;
    page.name = f.name.clone();
    page.title = f.title.clone();
    page.summary = f.summary.clone();
    if !sub.csrf_ok {
        page.error = Some(CSRF_MESSAGE.into());
        return Ok(render(StatusCode::FORBIDDEN, &page));
    }
    let name = f.name.trim().to_lowercase();
    match groups::create_group(&data, &name, &f.title, &f.summary).await {
        Ok(g) => {
            // Whoever creates it owns it until they hand it on.
            groups::set_role(&data, me, &g, &me.actor.username, GroupRole::Owner).await?;
            Ok(see_other(&format!(
                "/admin/groups/{}?done=group_created",
                g.row.username
            )))
        }
        Err(e) => {
            let status = e.status();
            page.error = Some(client_error(e)?);
            Ok(render(status, &page))
        }
    }
}

struct StaffRow {
    actor_id: i64,
    role: &'static str,
    handle: String,
}

#[derive(Template)]
#[template(path = "admin/group.html")]
struct GroupEditPage {
    l: Layout,
    name: String,
    title: String,
    summary: String,
    rules: String,
    staff: Vec<StaffRow>,
    error: Option<String>,
    role_error: Option<String>,
    role_username: String,
}

async fn local_group(data: &FedData, name: &str) -> Result<DbActor, AppError> {
    let row = db::actors::local_by_name_and_kind(&data.db, &name.to_lowercase(), ActorKind::Group)
        .await?
        .ok_or_else(|| AppError::not_found("group"))?;
    DbActor::new(row)
}

async fn group_view(
    data: &FedData,
    viewer: &Viewer,
    g: &DbActor,
) -> Result<GroupEditPage, AppError> {
    let staff = db::roles::staff(&data.db, g.row.id)
        .await?
        .into_iter()
        .map(|(r, a)| StaffRow {
            actor_id: a.id,
            role: r.as_str(),
            handle: format!("@{}@{}", a.username, a.domain),
        })
        .collect();
    let plain = |s: &Option<String>| {
        s.as_deref()
            .map(super::views::html_to_plain)
            .unwrap_or_default()
    };
    Ok(GroupEditPage {
        l: Layout::new(data, viewer, format!("Admin: group {}", g.row.username)).await?,
        name: g.row.username.clone(),
        title: g.row.display_name.clone().unwrap_or_default(),
        summary: plain(&g.row.summary),
        rules: plain(&g.row.rules),
        staff,
        error: None,
        role_error: None,
        role_username: String::new(),
    })
}

pub async fn group_page(
    data: FedData,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, AppError> {
    admin(&viewer)?;
    let g = local_group(&data, &name).await?;
    let mut page = group_view(&data, &viewer, &g).await?;
    page.l = page.l.with_notice(Notice::from(q.done.as_deref()));
    Ok(ok(&page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct GroupForm {
    title: String,
    summary: String,
    rules: String,
}

pub async fn update_group(
    data: FedData,
    viewer: Viewer,
    Path(name): Path<String>,
    sub: Submitted<GroupForm>,
) -> Result<Response, AppError> {
    let me = admin(&viewer)?;
    let g = local_group(&data, &name).await?;
    let f = sub.form;
    let mut page = group_view(&data, &viewer, &g).await?;
    page.title = f.title.clone();
    page.summary = f.summary.clone();
    page.rules = f.rules.clone();
    if !sub.csrf_ok {
        page.error = Some(CSRF_MESSAGE.into());
        return Ok(render(StatusCode::FORBIDDEN, &page));
    }
    match groups::update_group(&data, me, &g, &f.title, &f.summary, &f.rules).await {
        Ok(()) => Ok(see_other(&format!(
            "/admin/groups/{}?done=saved",
            g.row.username
        ))),
        Err(e) => {
            let status = e.status();
            page.error = Some(client_error(e)?);
            Ok(render(status, &page))
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RoleForm {
    username: String,
    role: String,
}

pub async fn add_role(
    data: FedData,
    viewer: Viewer,
    Path(name): Path<String>,
    sub: Submitted<RoleForm>,
) -> Result<Response, AppError> {
    let me = admin(&viewer)?;
    let g = local_group(&data, &name).await?;
    let f = sub.form;
    let mut page = group_view(&data, &viewer, &g).await?;
    page.role_username = f.username.clone();
    if !sub.csrf_ok {
        page.role_error = Some(CSRF_MESSAGE.into());
        return Ok(render(StatusCode::FORBIDDEN, &page));
    }
    let Some(role) = GroupRole::parse(&f.role) else {
        page.role_error = Some("Choose owner or moderator.".into());
        return Ok(render(StatusCode::BAD_REQUEST, &page));
    };
    if f.username.trim().is_empty() {
        page.role_error = Some("Type the username of a member of this instance.".into());
        return Ok(render(StatusCode::BAD_REQUEST, &page));
    }
    match groups::set_role(&data, me, &g, &f.username, role).await {
        Ok(()) => Ok(see_other(&format!(
            "/admin/groups/{}?done=role_given",
            g.row.username
        ))),
        Err(e) => {
            let status = e.status();
            page.role_error = Some(client_error(e)?);
            Ok(render(status, &page))
        }
    }
}

pub async fn remove_role(
    data: FedData,
    viewer: Viewer,
    Path((name, actor)): Path<(String, i64)>,
    sub: Submitted<EmptyForm>,
) -> Result<Response, AppError> {
    let me = admin(&viewer)?;
    if !sub.csrf_ok {
        return Err(AppError::forbidden(CSRF_MESSAGE));
    }
    let g = local_group(&data, &name).await?;
    groups::remove_role(&data, me, &g, actor).await?;
    Ok(see_other(&format!(
        "/admin/groups/{}?done=role_removed",
        g.row.username
    )))
}

struct UserRow {
    id: i64,
    username: String,
    status: String,
    is_admin: bool,
    is_me: bool,
    created: When,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    l: Layout,
    users: Vec<UserRow>,
}

pub async fn users_page(
    data: FedData,
    viewer: Viewer,
    Query(q): Query<DoneQuery>,
) -> Result<Response, AppError> {
    let me = admin(&viewer)?;
    let users = db::users::list(&data.db, None, 1000)
        .await?
        .into_iter()
        .map(|(u, a)| UserRow {
            id: u.id,
            username: a.username,
            status: u.status,
            is_admin: u.is_admin,
            is_me: u.id == me.user.id,
            created: When::new(u.created_at),
        })
        .collect();
    Ok(ok(&UsersPage {
        l: Layout::new(&data, &viewer, "Admin: users")
            .await?
            .with_notice(Notice::from(q.done.as_deref())),
        users,
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AdminForm {
    /// "true" to make admin, anything else to remove.
    admin: String,
}

pub async fn set_admin(
    data: FedData,
    viewer: Viewer,
    Path(id): Path<i64>,
    sub: Submitted<AdminForm>,
) -> Result<Response, AppError> {
    let me = admin(&viewer)?;
    if !sub.csrf_ok {
        return Err(AppError::forbidden(CSRF_MESSAGE));
    }
    accounts::set_admin(&data, me, id, sub.form.admin == "true").await?;
    Ok(see_other("/admin/users?done=saved"))
}

struct DeliveryRow {
    host: String,
    status: String,
    attempts: i32,
    last_error: String,
    next_attempt: When,
    queued: When,
}

#[derive(Template)]
#[template(path = "admin/deliveries.html")]
struct DeliveriesPage {
    l: Layout,
    pending: u64,
    failed: u64,
    delivered: u64,
    failing: Vec<DeliveryRow>,
}

/// The delivery queue for admins: counts, and the deliveries that failed or
/// are being retried (where to, how often, why). Never the payloads: they
/// carry members' posts.
pub async fn deliveries_page(data: FedData, viewer: Viewer) -> Result<Response, AppError> {
    admin(&viewer)?;
    let count = |s| db::deliveries::count_by_status(&data.db, s);
    let (pending, failed, delivered) = (
        count(DeliveryStatus::Pending).await?,
        count(DeliveryStatus::Failed).await?,
        count(DeliveryStatus::Delivered).await?,
    );
    let mut rows = db::deliveries::list(&data.db, Some(DeliveryStatus::Failed), 100).await?;
    rows.extend(
        db::deliveries::list(&data.db, Some(DeliveryStatus::Pending), 500)
            .await?
            .into_iter()
            .filter(|r| r.last_error.is_some())
            .take(100),
    );
    let failing = rows
        .into_iter()
        .map(|r| DeliveryRow {
            host: url::Url::parse(&r.inbox)
                .map(|u| crate::federation::objects::authority(&u))
                .unwrap_or_default(),
            status: r.status,
            attempts: r.attempts,
            last_error: r.last_error.unwrap_or_default(),
            next_attempt: When::new(r.next_attempt_at),
            queued: When::new(r.created_at),
        })
        .collect();
    Ok(ok(&DeliveriesPage {
        l: Layout::new(&data, &viewer, "Admin: deliveries").await?,
        pending,
        failed,
        delivered,
        failing,
    }))
}
