//! Who is looking: the session cookie, the CSRF token every form carries, the
//! client's address, and the sign-in rate limits.
//!
//! CSRF: a random token lives in its own cookie (HttpOnly, SameSite=Strict)
//! and in a hidden field of every form; a POST whose field does not match its
//! cookie, or that the browser marks as cross-site, changes nothing. Session
//! cookies are HttpOnly and SameSite=Lax, `Secure` with the `__Host-` prefix
//! outside dev mode.

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    time::Duration,
};

use axum::{
    extract::{ConnectInfo, FromRequest, FromRequestParts, Request},
    http::{HeaderMap, HeaderValue, header, request::Parts},
    middleware::Next,
    response::Response,
};
use cookie::{Cookie, SameSite};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, de::DeserializeOwned};

use crate::{
    app::AppState,
    config::Settings,
    error::AppError,
    federation::FedData,
    service::{accounts, users::CurrentUser},
};

const SESSION: &str = "kindred_session";
const CSRF: &str = "kindred_csrf";

/// Cookie names: `__Host-` (Secure, whole host, no Domain) outside dev mode.
fn cookie_name(settings: &Settings, base: &str) -> String {
    if settings.dev_mode() {
        base.to_string()
    } else {
        format!("__Host-{base}")
    }
}

fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| Cookie::parse(c.trim().to_string()).ok())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

fn build_cookie(
    settings: &Settings,
    name: &str,
    value: String,
    same_site: SameSite,
) -> Cookie<'static> {
    let mut c = Cookie::new(cookie_name(settings, name), value);
    c.set_http_only(true);
    c.set_same_site(same_site);
    c.set_path("/");
    c.set_secure(!settings.dev_mode());
    c
}

fn header_value(c: &Cookie<'_>) -> Option<HeaderValue> {
    HeaderValue::from_str(&c.encoded().to_string()).ok()
}

/// `Set-Cookie` for a new session.
pub fn session_cookie(settings: &Settings, token: String) -> Option<HeaderValue> {
    let mut c = build_cookie(settings, SESSION, token, SameSite::Lax);
    c.set_max_age(Some(cookie::time::Duration::days(
        settings.web.session_days,
    )));
    header_value(&c)
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_session_cookie(settings: &Settings) -> Option<HeaderValue> {
    let mut c = build_cookie(settings, SESSION, String::new(), SameSite::Lax);
    c.set_max_age(Some(cookie::time::Duration::ZERO));
    header_value(&c)
}

/// The session token from the request, if any.
pub fn session_token(settings: &Settings, headers: &HeaderMap) -> Option<String> {
    read_cookie(headers, &cookie_name(settings, SESSION))
}

/// This request's CSRF token (from its cookie, or new).
#[derive(Clone)]
pub struct CsrfToken(pub String);

/// Middleware: make sure every visitor has a CSRF token; set the cookie when
/// it is new.
pub async fn csrf_cookie(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let name = cookie_name(&state.settings, CSRF);
    let existing = read_cookie(req.headers(), &name).filter(|v| v.len() >= 32);
    let (token, is_new) = match existing {
        Some(t) => (t, false),
        None => (crate::service::users::random_token(), true),
    };
    req.extensions_mut().insert(CsrfToken(token.clone()));
    let mut res = next.run(req).await;
    if is_new {
        let c = build_cookie(&state.settings, CSRF, token, SameSite::Strict);
        if let Some(v) = header_value(&c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

/// The visitor: signed in or not, with this request's CSRF token and the
/// session token (to sign out or keep this session on password change).
pub struct Viewer {
    pub user: Option<CurrentUser>,
    pub csrf: String,
    pub session: Option<String>,
}

impl Viewer {
    /// The signed-in member, or 401 (which pages turn into "please sign in").
    pub fn require(&self) -> Result<&CurrentUser, AppError> {
        self.user.as_ref().ok_or(AppError::Unauthorized)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let data = FedData::from_request_parts(parts, state)
            .await
            .map_err(|(_, m)| AppError::internal(m))?;
        let csrf = parts
            .extensions
            .get::<CsrfToken>()
            .map(|t| t.0.clone())
            .unwrap_or_default();
        let session = session_token(&data.settings, &parts.headers);
        let user = match &session {
            Some(t) => accounts::session_user(&data, t).await?,
            None => None,
        };
        Ok(Viewer {
            user,
            csrf,
            session,
        })
    }
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// A submitted form, and whether its CSRF token was right. Handlers that get
/// `csrf_ok == false` change nothing and show the form again with a message.
/// Missing fields are empty (form structs use `#[serde(default)]`), so the
/// handler can say which one is missing.
pub struct Submitted<T> {
    pub form: T,
    pub csrf_ok: bool,
}

pub const CSRF_MESSAGE: &str = "This form had expired or did not come from this site, so nothing was changed. Please check it and send it again.";

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Submitted<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let expected = req
            .extensions()
            .get::<CsrfToken>()
            .map(|t| t.0.clone())
            .unwrap_or_default();
        let cross_site = req
            .headers()
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"));
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| match e.status().as_u16() {
                413 => AppError::PayloadTooLarge,
                _ => AppError::bad_request("the form could not be read"),
            })?;
        let form: T = serde_urlencoded::from_bytes(&body)
            .map_err(|e| AppError::bad_request(format!("the form could not be read: {e}")))?;
        let sent = serde_urlencoded::from_bytes::<CsrfField>(&body)
            .map(|f| f.csrf)
            .unwrap_or_default();
        let csrf_ok = !cross_site && !expected.is_empty() && constant_time_eq(&sent, &expected);
        Ok(Submitted { form, csrf_ok })
    }
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The client's address: the peer, or the last `X-Forwarded-For` entry when
/// the config says a proxy sets it.
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let data = FedData::from_request_parts(parts, state)
            .await
            .map_err(|(_, m)| AppError::internal(m))?;
        if data.settings.web.trust_forwarded_for
            && let Some(ip) = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse().ok())
        {
            return Ok(ClientIp(Some(ip)));
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(ClientIp(peer))
    }
}

/// Sign-in attempts allowed per client address and per username.
pub struct SigninLimits {
    by_ip: DefaultKeyedRateLimiter<IpAddr>,
    by_name: DefaultKeyedRateLimiter<String>,
}

impl SigninLimits {
    pub fn new(settings: &Settings) -> Self {
        let burst = NonZeroU32::new(settings.web.signin_burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let period = Duration::from_secs(settings.web.signin_refill_secs.max(1));
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
            .allow_burst(burst);
        SigninLimits {
            by_ip: RateLimiter::keyed(quota),
            by_name: RateLimiter::keyed(quota),
        }
    }

    /// May this attempt go ahead? Counts it either way.
    pub fn check(&self, ip: Option<IpAddr>, username: &str) -> bool {
        let ip_ok = ip.is_none_or(|ip| self.by_ip.check_key(&ip).is_ok());
        let name_ok = self.by_name.check_key(&username.to_lowercase()).is_ok();
        if self.by_ip.len() > 100_000 {
            self.by_ip.retain_recent();
        }
        if self.by_name.len() > 100_000 {
            self.by_name.retain_recent();
        }
        ip_ok && name_ok
    }
}
