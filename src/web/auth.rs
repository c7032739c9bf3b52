//! First admin, sign up (in each registration mode), sign in, sign out.

use askama::Template;
use axum::{
    extract::{Path, Query},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{
    Layout, ok, render, see_other,
    session::{self, CSRF_MESSAGE, ClientIp, Submitted, Viewer},
};
use crate::{
    domain::RegistrationMode,
    error::AppError,
    federation::FedData,
    service::{
        accounts::{self, SignUp, SignedUp},
        instance,
        users::{self, CurrentUser},
    },
};

/// Where to go after signing in: a local path only.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

/// Start a session for `user` and go to `to`.
async fn signed_in(data: &FedData, user: &CurrentUser, to: &str) -> Result<Response, AppError> {
    let token = accounts::start_session(data, user).await?;
    let mut res = see_other(to);
    if let Some(c) = session::session_cookie(&data.settings, token) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(res)
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    l: Layout,
    error: Option<String>,
    instance_name: String,
    username: String,
}

pub async fn setup_page(data: FedData, viewer: Viewer) -> Result<Response, AppError> {
    let settings = instance::settings(&data).await?;
    if settings.setup_done {
        return Ok(see_other("/"));
    }
    Ok(ok(&SetupPage {
        l: Layout::new(&data, &viewer, "Set up this instance").await?,
        error: None,
        instance_name: String::new(),
        username: String::new(),
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SetupForm {
    instance_name: String,
    username: String,
    password: String,
    confirm: String,
}

pub async fn setup(
    data: FedData,
    viewer: Viewer,
    sub: Submitted<SetupForm>,
) -> Result<Response, AppError> {
    let f = sub.form;
    let again = |status: StatusCode, error: String, l: Layout| {
        render(
            status,
            &SetupPage {
                l,
                error: Some(error),
                instance_name: f.instance_name.clone(),
                username: f.username.clone(),
            },
        )
    };
    let l = Layout::new(&data, &viewer, "Set up this instance").await?;
    if !sub.csrf_ok {
        return Ok(again(StatusCode::FORBIDDEN, CSRF_MESSAGE.into(), l));
    }
    if f.password != f.confirm {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            "The two passwords are not the same.".into(),
            l,
        ));
    }
    let username = f.username.trim().to_lowercase();
    match accounts::setup_first_admin(&data, &f.instance_name, &username, &f.password).await {
        Ok(user) => signed_in(&data, &user, "/admin?done=setup").await,
        Err(e) if e.status().is_client_error() => {
            Ok(again(e.status(), super::capitalise(&e.to_string()), l))
        }
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    l: Layout,
    mode: RegistrationMode,
    error: Option<String>,
    username: String,
    email: String,
    application: String,
    invite: String,
    invite_ok: bool,
}

impl SignupPage {
    fn is(&self, m: &str) -> bool {
        self.mode.as_str() == m
    }
}

async fn signup_form(
    data: &FedData,
    viewer: &Viewer,
    invite: String,
) -> Result<SignupPage, AppError> {
    let settings = instance::settings(data).await?;
    let invite_ok = !invite.is_empty() && accounts::invite_is_live(data, &invite).await?;
    Ok(SignupPage {
        l: Layout::new(data, viewer, "Create an account").await?,
        mode: instance::registration_mode(&settings),
        error: None,
        username: String::new(),
        email: String::new(),
        application: String::new(),
        invite,
        invite_ok,
    })
}

pub async fn signup_page(data: FedData, viewer: Viewer) -> Result<Response, AppError> {
    if !instance::settings(&data).await?.setup_done {
        return Ok(see_other("/setup"));
    }
    Ok(ok(&signup_form(&data, &viewer, String::new()).await?))
}

pub async fn invite_page(
    data: FedData,
    viewer: Viewer,
    Path(code): Path<String>,
) -> Result<Response, AppError> {
    let page = signup_form(&data, &viewer, code.chars().take(128).collect()).await?;
    let status = if page.invite_ok {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    Ok(render(status, &page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignupForm {
    username: String,
    password: String,
    confirm: String,
    email: String,
    application: String,
    invite: String,
}

#[derive(Template)]
#[template(path = "signup_pending.html")]
struct PendingPage {
    l: Layout,
}

pub async fn signup(
    data: FedData,
    viewer: Viewer,
    sub: Submitted<SignupForm>,
) -> Result<Response, AppError> {
    let f = sub.form;
    let mut page = signup_form(&data, &viewer, f.invite.clone()).await?;
    page.username = f.username.clone();
    page.email = f.email.clone();
    page.application = f.application.clone();
    if !sub.csrf_ok {
        page.error = Some(CSRF_MESSAGE.into());
        return Ok(render(StatusCode::FORBIDDEN, &page));
    }
    if f.password != f.confirm {
        page.error = Some("The two passwords are not the same.".into());
        return Ok(render(StatusCode::BAD_REQUEST, &page));
    }
    let username = f.username.trim().to_lowercase();
    let result = accounts::sign_up(
        &data,
        SignUp {
            username: &username,
            password: &f.password,
            email: &f.email,
            application: &f.application,
            invite: &f.invite,
        },
    )
    .await;
    match result {
        Ok(SignedUp::Active(user)) => signed_in(&data, &user, "/directory?done=welcome").await,
        Ok(SignedUp::Pending) => Ok(ok(&PendingPage {
            l: Layout::new(&data, &viewer, "Request sent").await?,
        })),
        Err(e) if e.status().is_client_error() => {
            page.error = Some(super::capitalise(&e.to_string()));
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SigninPage {
    l: Layout,
    error: Option<String>,
    username: String,
    next: String,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn signin_page(
    data: FedData,
    viewer: Viewer,
    Query(q): Query<NextQuery>,
) -> Result<Response, AppError> {
    if !instance::settings(&data).await?.setup_done {
        return Ok(see_other("/setup"));
    }
    let next = safe_next(q.next.as_deref());
    if viewer.user.is_some() {
        return Ok(see_other(&next));
    }
    Ok(ok(&SigninPage {
        l: Layout::new(&data, &viewer, "Sign in").await?,
        error: None,
        username: String::new(),
        next,
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SigninForm {
    username: String,
    password: String,
    next: String,
}

pub async fn signin(
    data: FedData,
    viewer: Viewer,
    ClientIp(ip): ClientIp,
    sub: Submitted<SigninForm>,
) -> Result<Response, AppError> {
    let f = sub.form;
    let username = f.username.trim().to_lowercase();
    let mut page = SigninPage {
        l: Layout::new(&data, &viewer, "Sign in").await?,
        error: None,
        username: f.username.trim().to_string(),
        next: safe_next(Some(&f.next)),
    };
    if !sub.csrf_ok {
        page.error = Some(CSRF_MESSAGE.into());
        return Ok(render(StatusCode::FORBIDDEN, &page));
    }
    if username.is_empty() || f.password.is_empty() {
        page.error = Some("Please enter your username and password.".into());
        return Ok(render(StatusCode::BAD_REQUEST, &page));
    }
    if !data.signin_limits.check(ip, &username) {
        tracing::warn!("sign-in rate limit reached");
        page.error =
            Some("Too many sign-in attempts. Please wait a minute before trying again.".into());
        let mut res = render(StatusCode::TOO_MANY_REQUESTS, &page);
        res.headers_mut().insert(
            header::RETRY_AFTER,
            axum::http::HeaderValue::from(data.settings.web.signin_refill_secs),
        );
        return Ok(res);
    }
    match users::check_credentials(&data, &username, &f.password).await {
        Ok(user) => {
            if let Some(old) = &viewer.session {
                accounts::end_session(&data, old).await?;
            }
            signed_in(&data, &user, &page.next).await
        }
        Err(AppError::Unauthorized) => {
            page.error = Some("That username and password do not match an account here.".into());
            Ok(render(StatusCode::UNAUTHORIZED, &page))
        }
        Err(e) if e.status().is_client_error() => {
            page.error = Some(super::capitalise(&e.to_string()));
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EmptyForm {}

pub async fn signout(
    data: FedData,
    viewer: Viewer,
    sub: Submitted<EmptyForm>,
) -> Result<Response, AppError> {
    if !sub.csrf_ok {
        return Err(AppError::forbidden(CSRF_MESSAGE));
    }
    if let Some(t) = &viewer.session {
        accounts::end_session(&data, t).await?;
    }
    let mut res = see_other("/?done=signedout");
    if let Some(c) = session::clear_session_cookie(&data.settings) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(res.into_response())
}
