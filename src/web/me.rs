//! Home (my groups' threads, newest activity first, or the instance's front
//! page for visitors) and my settings: profile and password; and my data
//! rights: download everything I wrote, delete my account.

use std::collections::HashMap;

use askama::Template;
use axum::{
    Router,
    extract::Query,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;

use super::{
    Layout, Notice, ok, render, see_other,
    session::{self, CSRF_MESSAGE, Submitted, Viewer},
    views::{self, GroupCard, ThreadItem},
};
use crate::{
    app::AppState,
    db,
    domain::{FollowState, RegistrationMode},
    error::AppError,
    federation::FedData,
    service::{accounts, data as my_data, instance},
};

/// The data-rights pages (merged by `reports::router`).
pub fn data_router() -> Router<AppState> {
    Router::new()
        .route("/me/export", get(export))
        .route("/me/delete", get(delete_page).post(delete_account))
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    l: Layout,
    groups: Vec<GroupCard>,
    threads: Vec<ThreadItem>,
    page: u64,
    more: bool,
}

#[derive(Template)]
#[template(path = "landing.html")]
struct LandingPage {
    l: Layout,
    description: String,
    can_sign_up: bool,
    groups: Vec<GroupCard>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct HomeQuery {
    page: u64,
    done: Option<String>,
}

const PER_PAGE: u64 = 30;

pub async fn home(
    data: FedData,
    viewer: Viewer,
    Query(q): Query<HomeQuery>,
) -> Result<Response, AppError> {
    let settings = instance::settings(&data).await?;
    if !settings.setup_done {
        return Ok(see_other("/setup"));
    }
    let notice = Notice::from(q.done.as_deref());
    let Some(me) = &viewer.user else {
        let groups = db::actors::list_groups(&data.db, true, 50)
            .await?
            .iter()
            .map(|g| GroupCard::new(g, None))
            .collect();
        return Ok(ok(&LandingPage {
            l: Layout::new(&data, &viewer, "Welcome")
                .await?
                .with_notice(notice),
            description: settings.description.clone(),
            can_sign_up: instance::registration_mode(&settings) != RegistrationMode::Closed,
            groups,
        }));
    };
    let follows = db::follows::groups_of(&data.db, me.actor.id).await?;
    let mut group_rows = HashMap::new();
    let mut groups = vec![];
    for f in &follows {
        if let Some(g) = db::actors::by_id(&data.db, f.group_id).await? {
            groups.push(GroupCard::new(&g, FollowState::parse(&f.state)));
            group_rows.insert(g.id, g);
        }
    }
    let joined: Vec<i64> = follows
        .iter()
        .filter(|f| f.state == FollowState::Accepted.as_str())
        .map(|f| f.group_id)
        .collect();
    let page = q.page.min(1000);
    let rows =
        db::posts::threads_of_groups(&data.db, joined, page * PER_PAGE, PER_PAGE + 1).await?;
    let more = rows.len() as u64 > PER_PAGE;
    let rows = &rows[..rows.len().min(PER_PAGE as usize)];
    let counts =
        db::posts::reply_counts(&data.db, rows.iter().map(|(p, _)| p.id).collect()).await?;
    let threads = rows
        .iter()
        .map(|(p, a)| ThreadItem::new(p, a, group_rows.get(&p.group_id), &counts))
        .collect();
    Ok(ok(&HomePage {
        l: Layout::new(&data, &viewer, "Home")
            .await?
            .with_notice(notice),
        groups,
        threads,
        page,
        more,
    }))
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    l: Layout,
    handle: String,
    display_name: String,
    bio: String,
    profile_error: Option<String>,
    password_error: Option<String>,
}

async fn settings_view(data: &FedData, viewer: &Viewer) -> Result<SettingsPage, AppError> {
    let me = viewer.require()?;
    Ok(SettingsPage {
        l: Layout::new(data, viewer, "Settings").await?,
        handle: format!("@{}@{}", me.actor.username, me.actor.domain),
        display_name: me.actor.display_name.clone().unwrap_or_default(),
        bio: me
            .actor
            .summary
            .as_deref()
            .map(views::html_to_plain)
            .unwrap_or_default(),
        profile_error: None,
        password_error: None,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DoneQuery {
    done: Option<String>,
}

pub async fn settings_page(
    data: FedData,
    viewer: Viewer,
    Query(q): Query<DoneQuery>,
) -> Result<Response, AppError> {
    let mut page = settings_view(&data, &viewer).await?;
    page.l = page.l.with_notice(Notice::from(q.done.as_deref()));
    Ok(ok(&page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ProfileForm {
    display_name: String,
    bio: String,
}

pub async fn update_profile(
    data: FedData,
    viewer: Viewer,
    sub: Submitted<ProfileForm>,
) -> Result<Response, AppError> {
    let mut page = settings_view(&data, &viewer).await?;
    let me = viewer.require()?;
    page.display_name = sub.form.display_name.clone();
    page.bio = sub.form.bio.clone();
    if !sub.csrf_ok {
        page.profile_error = Some(CSRF_MESSAGE.into());
        return Ok(render(StatusCode::FORBIDDEN, &page));
    }
    match accounts::update_profile(&data, me, &sub.form.display_name, &sub.form.bio).await {
        Ok(()) => Ok(see_other("/settings?done=profile")),
        Err(e) if e.status().is_client_error() => {
            page.profile_error = Some(super::capitalise(&e.to_string()));
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PasswordForm {
    current: String,
    new: String,
    confirm: String,
}

pub async fn change_password(
    data: FedData,
    viewer: Viewer,
    sub: Submitted<PasswordForm>,
) -> Result<Response, AppError> {
    let mut page = settings_view(&data, &viewer).await?;
    let me = viewer.require()?;
    let f = sub.form;
    if !sub.csrf_ok {
        page.password_error = Some(CSRF_MESSAGE.into());
        return Ok(render(StatusCode::FORBIDDEN, &page));
    }
    if f.new != f.confirm {
        page.password_error = Some("The two new passwords are not the same.".into());
        return Ok(render(StatusCode::BAD_REQUEST, &page));
    }
    match accounts::change_password(&data, me, &f.current, &f.new, viewer.session.as_deref()).await
    {
        Ok(()) => Ok(see_other("/settings?done=password")),
        Err(e) if e.status().is_client_error() => {
            page.password_error = Some(super::capitalise(&e.to_string()));
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e),
    }
}

/// Everything I wrote and my memberships, as one JSON file to keep.
pub async fn export(data: FedData, viewer: Viewer) -> Result<Response, AppError> {
    let me = viewer.require()?;
    let archive = my_data::export(&data, me).await?;
    let body = serde_json::to_vec_pretty(&archive)?;
    // Usernames are plain already; keep the header safe whatever they hold.
    let name: String = me
        .actor
        .username
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    let disposition = format!("attachment; filename=\"kindred-{name}.json\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        body,
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "delete_account.html")]
struct DeleteAccountPage {
    l: Layout,
    handle: String,
    error: Option<String>,
}

async fn delete_view(data: &FedData, viewer: &Viewer) -> Result<DeleteAccountPage, AppError> {
    let me = viewer.require()?;
    Ok(DeleteAccountPage {
        l: Layout::new(data, viewer, "Delete your account").await?,
        handle: format!("@{}@{}", me.actor.username, me.actor.domain),
        error: None,
    })
}

pub async fn delete_page(data: FedData, viewer: Viewer) -> Result<Response, AppError> {
    Ok(ok(&delete_view(&data, &viewer).await?))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DeleteAccountForm {
    password: String,
}

/// Delete my account (the password again), then sign out the way the
/// sign-out handler does: the service already ended every session.
pub async fn delete_account(
    data: FedData,
    viewer: Viewer,
    sub: Submitted<DeleteAccountForm>,
) -> Result<Response, AppError> {
    let mut page = delete_view(&data, &viewer).await?;
    let me = viewer.require()?;
    if !sub.csrf_ok {
        page.error = Some(CSRF_MESSAGE.into());
        return Ok(render(StatusCode::FORBIDDEN, &page));
    }
    match my_data::delete_account(&data, me, &sub.form.password).await {
        Ok(()) => {
            let mut res = see_other("/?done=account_deleted");
            if let Some(c) = session::clear_session_cookie(&data.settings) {
                res.headers_mut().append(header::SET_COOKIE, c);
            }
            Ok(res)
        }
        Err(e) if e.status().is_client_error() => {
            page.error = Some(super::capitalise(&e.to_string()));
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e),
    }
}
