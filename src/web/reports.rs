//! Reports on the web: a member reports a post they can read
//! (`/posts/{id}/report`), and the people who handle reports — a group's
//! owner and moderators for their groups, admins for everything — see them
//! on `/reports`, resolve or dismiss them, and forward one about a remote
//! person to that person's instance. The rules live in `service::reports`.
//!
//! The member's own data pages (`/me/export`, `/me/delete`) are in `me.rs`;
//! their routes are merged here.

use askama::Template;
use axum::{
    Router,
    extract::{Path, Query},
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
    views::{GroupCard, PersonView, PostItem, When},
};
use crate::{
    app::AppState,
    db::entities::post,
    domain::group::ReportStatus,
    error::AppError,
    federation::FedData,
    service::{
        access,
        federation::Who,
        reports::{self, ReportView, Subject},
        users::CurrentUser,
    },
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/posts/{id}/report", get(report_page).post(file_report))
        .route("/reports", get(reports_page))
        .route("/reports/{id}/close", post(close))
        .route("/reports/{id}/forward", post(forward))
}

/// The most a report's comment may hold (the service says the same).
const MAX_COMMENT: usize = 2000;

#[derive(Template)]
#[template(path = "report_form.html")]
struct ReportForm {
    l: Layout,
    /// The reported post, as the thread shows it.
    p: PostItem,
    thread_id: i64,
    group: GroupCard,
    error: Option<String>,
    comment: String,
    max: usize,
}

/// The post the signed-in viewer reports: one they can read (404 otherwise,
/// the same as a post that does not exist).
async fn form_view<'v>(
    data: &FedData,
    viewer: &'v Viewer,
    id: i64,
) -> Result<(&'v CurrentUser, post::Model, ReportForm), AppError> {
    let me = viewer.require()?;
    let (p, a, g) = access::readable_post(&data.db, Some(me), id).await?;
    let page = ReportForm {
        l: Layout::new(data, viewer, "Report a post").await?,
        p: PostItem::new(&p, &a, Some(me.actor.id)),
        thread_id: p.thread_id.unwrap_or(p.id),
        group: GroupCard::new(&g.row, None),
        error: None,
        comment: String::new(),
        max: MAX_COMMENT,
    };
    Ok((me, p, page))
}

pub async fn report_page(
    data: FedData,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let (_, _, page) = form_view(&data, &viewer, id).await?;
    Ok(ok(&page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ReportFields {
    comment: String,
}

pub async fn file_report(
    data: FedData,
    viewer: Viewer,
    Path(id): Path<i64>,
    sub: Submitted<ReportFields>,
) -> Result<Response, AppError> {
    let (me, p, mut page) = form_view(&data, &viewer, id).await?;
    page.comment = sub.form.comment.clone();
    let result = if sub.csrf_ok {
        reports::report(&data, me, Subject::Post(id), &sub.form.comment).await
    } else {
        Err(AppError::forbidden(CSRF_MESSAGE))
    };
    match result {
        Ok(r) => {
            // A post in one of our groups goes to its moderators; any
            // other (a remote group's) to this instance's admins.
            let done = if r.group_id.is_some() {
                "reported"
            } else {
                "reported_admins"
            };
            Ok(see_other(&format!(
                "/t/{}?done={done}#p{}",
                p.thread_id.unwrap_or(p.id),
                p.id
            )))
        }
        Err(e) => {
            let status = e.status();
            page.error = Some(client_error(e)?);
            Ok(render(status, &page))
        }
    }
}

/// The reported post, as a moderator sees it.
struct ReportedPost {
    id: i64,
    thread_id: i64,
    author: Option<PersonView>,
    /// Sanitised when stored; empty when the post is deleted.
    content_html: String,
    deleted: bool,
}

struct ReportRow {
    id: i64,
    open: bool,
    status: &'static str,
    /// Who reported: a person here, or "a moderator of <instance>".
    reporter: String,
    reporter_handle: Option<String>,
    post: Option<ReportedPost>,
    /// The reported person (the post's author, for a post).
    target: Option<PersonView>,
    group: Option<GroupCard>,
    /// Plain text, escaped by the template.
    comment: String,
    resolved_by: String,
    resolution: String,
    forwarded: bool,
    can_forward: bool,
    since: When,
    /// The resolution note as typed, kept after an error.
    note: String,
}

fn status_label(s: &str) -> &'static str {
    match ReportStatus::parse(s) {
        Some(ReportStatus::Open) => "Open",
        Some(ReportStatus::Resolved) => "Resolved",
        Some(ReportStatus::Dismissed) => "Dismissed",
        None => "Unknown",
    }
}

fn row(v: ReportView) -> ReportRow {
    let r = v.report;
    let open = r.status == ReportStatus::Open.as_str();
    // A remote server's Flag: the sender is (for us) its moderators.
    let remote = r.flag_ap_id.is_some() || v.reporter.as_ref().is_some_and(|a| !a.local);
    let (reporter, reporter_handle) = match &v.reporter {
        Some(a) if remote => (format!("a moderator of {}", a.domain), None),
        Some(a) => {
            let p = PersonView::new(a);
            (p.name, Some(p.handle))
        }
        None => ("someone no longer known here".to_string(), None),
    };
    let target_remote = v.target.as_ref().is_some_and(|t| !t.local);
    let post = v.post.as_ref().map(|p| {
        let deleted = p.deleted_at.is_some();
        ReportedPost {
            id: p.id,
            thread_id: p.thread_id.unwrap_or(p.id),
            author: v
                .target
                .as_ref()
                .filter(|t| t.id == p.author_id)
                .map(PersonView::new),
            content_html: if deleted {
                String::new()
            } else {
                p.content_html.clone()
            },
            deleted,
        }
    });
    ReportRow {
        id: r.id,
        open,
        status: status_label(&r.status),
        reporter,
        reporter_handle,
        post,
        target: v.target.as_ref().map(PersonView::new),
        group: v.group.as_ref().map(|g| GroupCard::new(g, None)),
        comment: r.comment.clone().unwrap_or_default(),
        resolved_by: r.resolved_by.clone().unwrap_or_default(),
        resolution: r.resolution.clone().unwrap_or_default(),
        forwarded: r.forwarded_at.is_some(),
        can_forward: target_remote && r.forwarded_at.is_none(),
        since: When::new(r.created_at),
        note: String::new(),
    }
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage {
    l: Layout,
    open: Vec<ReportRow>,
    closed: Vec<ReportRow>,
    error: Option<String>,
}

/// The reports the viewer handles, open ones first (401 → sign in; someone
/// who moderates nothing and is not an admin: the service's 403).
async fn page_view(data: &FedData, viewer: &Viewer) -> Result<ReportsPage, AppError> {
    let me = viewer.require()?;
    let (open, closed) = reports::list(data, Who::User(me))
        .await?
        .into_iter()
        .map(row)
        .partition(|r| r.open);
    Ok(ReportsPage {
        l: Layout::new(data, viewer, "Reports").await?,
        open,
        closed,
        error: None,
    })
}

pub async fn reports_page(
    data: FedData,
    viewer: Viewer,
    Query(q): Query<DoneQuery>,
) -> Result<Response, AppError> {
    let mut page = page_view(&data, &viewer).await?;
    page.l = page.l.with_notice(Notice::from(q.done.as_deref()));
    Ok(ok(&page))
}

/// Re-render the reports page with what went wrong (and the note as typed);
/// a server error stays an error.
async fn fail(
    data: &FedData,
    viewer: &Viewer,
    e: AppError,
    keep: Option<(i64, &str)>,
) -> Result<Response, AppError> {
    let status = e.status();
    let message = client_error(e)?;
    let mut page = page_view(data, viewer).await?;
    page.error = Some(message);
    if let Some((id, note)) = keep
        && let Some(r) = page.open.iter_mut().find(|r| r.id == id)
    {
        r.note = note.to_string();
    }
    Ok(render(status, &page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CloseForm {
    /// "resolved" or "dismissed" (the button pressed).
    outcome: String,
    resolution: String,
}

pub async fn close(
    data: FedData,
    viewer: Viewer,
    Path(id): Path<i64>,
    sub: Submitted<CloseForm>,
) -> Result<Response, AppError> {
    let me = viewer.require()?;
    let f = sub.form;
    let result = if sub.csrf_ok {
        let note = Some(f.resolution.as_str());
        reports::close(&data, Who::User(me), id, &f.outcome, note).await
    } else {
        Err(AppError::forbidden(CSRF_MESSAGE))
    };
    match result {
        Ok(()) if f.outcome.trim() == ReportStatus::Dismissed.as_str() => {
            Ok(see_other("/reports?done=report_dismissed"))
        }
        Ok(()) => Ok(see_other("/reports?done=report_resolved")),
        Err(e) => fail(&data, &viewer, e, Some((id, &f.resolution))).await,
    }
}

pub async fn forward(
    data: FedData,
    viewer: Viewer,
    Path(id): Path<i64>,
    sub: Submitted<EmptyForm>,
) -> Result<Response, AppError> {
    let me = viewer.require()?;
    let result = if sub.csrf_ok {
        reports::forward(&data, Who::User(me), id).await
    } else {
        Err(AppError::forbidden(CSRF_MESSAGE))
    };
    match result {
        Ok(()) => Ok(see_other("/reports?done=report_forwarded")),
        Err(e) => fail(&data, &viewer, e, None).await,
    }
}
