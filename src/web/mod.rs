//! The members' web app: server-rendered pages (askama templates in
//! `templates/`) and plain HTML forms. Works with JavaScript off; the pages
//! carry no script at all. Every form has a CSRF token (`session`), every
//! response a strict Content-Security-Policy, and every error becomes a page
//! that says what went wrong.

mod admin;
mod auth;
mod federation;
mod groups;
mod links;
mod me;
pub mod moderation;
pub mod reports;
pub mod session;
mod threads;
mod views;

use askama::Template;
use axum::{
    Router,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};

use crate::{app::AppState, error::AppError, federation::FedData, service};
use session::Viewer;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(me::home))
        .route("/setup", get(auth::setup_page).post(auth::setup))
        .route("/signup", get(auth::signup_page).post(auth::signup))
        .route("/invite/{code}", get(auth::invite_page))
        .route("/signin", get(auth::signin_page).post(auth::signin))
        .route("/signout", post(auth::signout))
        .route("/directory", get(groups::directory))
        .route("/directory/lookup", post(groups::lookup))
        .route("/g/{handle}", get(groups::group_page))
        .route("/g/{handle}/join", post(groups::join))
        .route("/g/{handle}/leave", post(groups::leave))
        .route(
            "/g/{handle}/new",
            get(groups::compose_page).post(groups::compose),
        )
        .route("/t/{id}", get(threads::thread_page))
        .route("/t/{id}/reply", post(threads::reply))
        .route("/t/{id}/share", post(threads::share))
        .route("/p/{id}/edit", get(threads::edit_page).post(threads::edit))
        .route(
            "/p/{id}/delete",
            get(threads::delete_page).post(threads::delete),
        )
        .route("/settings", get(me::settings_page).post(me::update_profile))
        .route("/settings/password", post(me::change_password))
        .merge(admin::router())
        .merge(federation::router())
        .merge(moderation::router())
        .merge(links::router())
        .merge(reports::router())
        .merge(me::data_router())
        .route("/static/kindred.css", get(stylesheet))
        .layer(middleware::from_fn(html_errors))
        .layer(middleware::from_fn_with_state(state, session::csrf_cookie))
        .layer(middleware::from_fn(security_headers))
}

/// What every page's frame shows: the instance's name, who is signed in,
/// the CSRF token for the forms in the frame (sign out), a notice.
pub struct Layout {
    pub instance_name: String,
    pub title: String,
    pub me: Option<views::MeView>,
    /// The viewer is an admin or staffs a group: the nav shows Reports.
    pub moderates: bool,
    pub csrf: String,
    pub notice: Option<&'static str>,
}

impl Layout {
    pub async fn new(
        data: &FedData,
        viewer: &Viewer,
        title: impl Into<String>,
    ) -> Result<Self, AppError> {
        let settings = service::instance::settings(data).await?;
        let moderates = match &viewer.user {
            Some(u) if u.user.is_admin => true,
            Some(u) => !crate::db::roles::groups_of(&data.db, u.actor.id)
                .await?
                .is_empty(),
            None => false,
        };
        Ok(Layout {
            instance_name: settings.name,
            title: title.into(),
            me: viewer.user.as_ref().map(views::MeView::new),
            moderates,
            csrf: viewer.csrf.clone(),
            notice: None,
        })
    }

    pub fn with_notice(mut self, notice: Option<&'static str>) -> Self {
        self.notice = notice;
        self
    }
}

/// The message shown after an action, from the `?done=` of the redirect:
/// fixed texts only, so a link cannot put words on our pages.
pub struct Notice;

impl Notice {
    pub fn from(done: Option<&str>) -> Option<&'static str> {
        Some(match done? {
            "setup" => {
                "Your instance is ready and you are its admin. Describe it and choose who may sign up."
            }
            "welcome" => "Welcome! Find a group to join below.",
            "signedout" => "You are signed out.",
            "joined" => "You joined this group.",
            "requested" => {
                "Your request to join was sent to the group's server. You can post once it accepts."
            }
            "left" => "You left this group.",
            "posted" => "Your thread is posted.",
            "replied" => "Your reply is posted.",
            "edited" => "Your post is updated.",
            "deleted" => "The post is deleted.",
            "profile" => "Your profile is saved.",
            "password" => "Your password is changed. Your other sessions were signed out.",
            "saved" => "Saved.",
            "approved" => "The sign-up is approved: the person can sign in now.",
            "refused" => "The sign-up is refused and removed.",
            "revoked" => "The invitation link no longer works.",
            "group_created" => "The group is created. You are its owner.",
            "role_given" => "The role is given.",
            "role_removed" => "The role is removed.",
            "mode" => "The federation mode is changed. It is in force now.",
            "listed" => "The domain is added. It is in force now.",
            "unlisted" => "The domain is taken off the list. It is in force now.",
            "content" => "Done: the domain's posts here are changed.",
            "group_federation" => "The group's instances are saved. They are in force now.",
            "mod_settings" => "The group's settings are saved. They are in force now.",
            "member_approved" => "The request is approved: they are a member now.",
            "member_refused" => "The request to join is refused.",
            "banned" => "The person is banned from this group.",
            "unbanned" => "The ban is lifted.",
            "invited" => "The person is invited: their request to join will be accepted.",
            "post_approved" => "The post is approved: the group sees it now.",
            "post_removed" => "The post is removed.",
            "locked" => "The thread is locked: no new replies.",
            "unlocked" => "The thread is unlocked: members can reply again.",
            "reported" => "Thank you: the group's moderators will look at it.",
            "reported_admins" => "Thank you: this instance's admins will look at it.",
            "report_resolved" => "The report is marked resolved.",
            "report_dismissed" => "The report is dismissed.",
            "report_forwarded" => "The report is forwarded to the person's instance.",
            "account_deleted" => "Your account was deleted.",
            _ => return None,
        })
    }
}

/// Render a page with a status.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => AppError::internal(format!("template: {e}")).into_response(),
    }
}

pub fn ok<T: Template>(page: &T) -> Response {
    render(StatusCode::OK, page)
}

/// After a successful POST: see the result with a GET (no resubmission).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    l: Layout,
    status: u16,
    heading: &'static str,
    message: String,
}

fn error_heading(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "Something in the request was not right",
        403 => "Not allowed",
        404 => "Not found",
        405 => "Not possible here",
        409 => "Already there",
        413 => "Too large",
        429 => "Please slow down",
        502 => "The other server did not answer properly",
        503 => "Temporarily unavailable",
        _ => "Something went wrong",
    }
}

/// Our errors come out of handlers as JSON (the one error type); on pages
/// they become an HTML page with the same message and status, and "please
/// sign in" becomes a redirect to the sign-in page.
async fn html_errors(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let is_get = req.method() == axum::http::Method::GET;
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        return res;
    }
    if status == StatusCode::UNAUTHORIZED {
        let next = if is_get && path.starts_with('/') && !path.starts_with("//") {
            format!("/signin?next={}", urlencode(&path))
        } else {
            "/signin".to_string()
        };
        return see_other(&next);
    }
    let retry_after = res.headers().get(header::RETRY_AFTER).cloned();
    let (_, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
    let message = if message.is_empty() || status.is_server_error() && message.len() > 200 {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        message
    };
    let page = ErrorPage {
        l: Layout {
            instance_name: "Kindred".into(),
            title: error_heading(status).into(),
            me: None,
            moderates: false,
            csrf: String::new(),
            notice: None,
        },
        status: status.as_u16(),
        heading: error_heading(status),
        message: capitalise(&message),
    };
    let mut out = render(status, &page);
    if let Some(v) = retry_after {
        out.headers_mut().insert(header::RETRY_AFTER, v);
    }
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// One path segment: unreserved characters, `@` and `:` stay as they are
/// (`/g/name@host` reads well), everything else is percent-encoded.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@' | b':') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// No scripts, no frames, no third-party hosts; pages are never stored by
/// shared caches (they can show health details).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
    }
    res
}

const STYLESHEET: &str = include_str!("../../static/kindred.css");

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Does this request want a page rather than JSON (a browser following a
/// link to an ActivityPub id)?
pub fn wants_html(headers: &axum::http::HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    accept.contains("text/html") && !accept.contains("activity+json") && !accept.contains("ld+json")
}

/// Unknown paths: a page for browsers, JSON for everyone else.
pub async fn fallback(headers: axum::http::HeaderMap) -> Response {
    if wants_html(&headers) {
        let page = ErrorPage {
            l: Layout {
                instance_name: "Kindred".into(),
                title: "Not found".into(),
                me: None,
                moderates: false,
                csrf: String::new(),
                notice: None,
            },
            status: 404,
            heading: "Not found",
            message: "There is no page at this address.".into(),
        };
        return render(StatusCode::NOT_FOUND, &page);
    }
    AppError::not_found("page").into_response()
}
