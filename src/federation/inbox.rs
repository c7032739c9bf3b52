//! The inbox (shared and per actor, one handler): body limit with 413, a sane
//! `Date`, then the crate's digest, signature and origin checks, then our own
//! verify and receive. Repeats are absorbed by the activity-id record.

use activitypub_federation::axum::inbox::{ActivityData, receive_activity};
use axum::{
    body::{Body, to_bytes},
    extract::{FromRequest, Request},
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
};
use chrono::{DateTime, Utc};

use activitypub_federation::fetch::object_id::ObjectId;

use super::{FedData, activities::InboxActivity, objects::actor::DbActor};
use crate::{app::AppState, error::AppError};

pub async fn post_inbox(data: FedData, req: Request) -> Result<StatusCode, AppError> {
    let res = super::memo::scope(receive_inbox(&data, req)).await;
    data.metrics.inbox(match &res {
        Ok(_) => "accepted",
        Err(e) => e.code(),
    });
    res
}

async fn receive_inbox(data: &FedData, req: Request) -> Result<StatusCode, AppError> {
    let (parts, body) = req.into_parts();
    check_date(
        &parts.headers,
        data.clock.now(),
        data.settings.federation.max_clock_skew_secs,
    )?;
    check_signed_headers(&parts.headers)?;
    if data.inbox_limits.len() > 100_000 {
        data.inbox_limits.retain_recent();
    }
    if let Some(host) = key_host(&parts.headers)
        && data.inbox_limits.check_key(&host).is_err()
    {
        tracing::info!(instance = %host, "inbox rate limit reached");
        return Err(AppError::TooManyRequests(
            "too many activities from your instance; retry later".into(),
        ));
    }
    // The signer's instance, before the body is read.
    if let Some(host) = key_host(&parts.headers) {
        super::policy::check(data, &host, None).await?;
    }
    let limit = data.settings.server.max_body_bytes;
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| AppError::PayloadTooLarge)?;
    // The actor's and the id's instance, and every local group concerned:
    // refused before anything is verified or stored.
    // Parsed once here for the screens below; the library parses it again
    // into the activity's own type.
    let value = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
    if let Some(value) = &value {
        super::policy::screen_inbound(data, parts.uri.path(), value).await?;
    }
    if let Some((id, actor)) = value.as_ref().and_then(self_delete)
        && let Some(known) = crate::db::actors::by_ap_id(&data.db, actor.as_str()).await?
        && !known.local
    {
        // An account deleted at its origin: its actor now answers 410, so
        // the signature is checked against the key we hold.
        verify_with_stored_key(&parts.headers, parts.uri.path(), &bytes, &known)?;
        let raw = value
            .as_ref()
            .ok_or_else(|| AppError::bad_request("unreadable JSON"))?;
        super::activities::delete::remove_actor(data, &id, &actor, raw).await?;
        return Ok(StatusCode::ACCEPTED);
    }
    let (method, uri, headers) = (
        parts.method.clone(),
        parts.uri.clone(),
        parts.headers.clone(),
    );
    match receive(data, Request::from_parts(parts, Body::from(bytes.clone()))).await {
        Err(AppError::Unauthorized) => {
            // The sender may have rotated its key since we stored it: read
            // its actor again (once per actor per interval), then retry once.
            if !refetch_signer(data, &bytes).await? {
                return Err(AppError::Unauthorized);
            }
            let mut again = Request::new(Body::from(bytes.clone()));
            *again.method_mut() = method;
            *again.uri_mut() = uri;
            *again.headers_mut() = headers;
            receive(data, again).await?;
        }
        other => other?,
    }
    // Verified: the sender's instance is up (closes its delivery breaker).
    if let Some(host) = value.as_ref().and_then(sender_host)
        && let Err(e) = super::delivery::instance_is_up(data, &host).await
    {
        tracing::warn!(error = %e, "cannot record the instance's contact");
    }
    Ok(StatusCode::ACCEPTED)
}

/// A Delete whose object is its own actor: (activity id, actor id).
fn self_delete(v: &serde_json::Value) -> Option<(url::Url, url::Url)> {
    if v.get("type")?.as_str()? != "Delete" {
        return None;
    }
    let actor = super::objects::id_of(v.get("actor")?)?;
    let object = super::objects::id_of(v.get("object")?)?;
    let id = super::objects::id_of(v.get("id")?)?;
    (object == actor && super::objects::same_origin(&id, &actor)).then_some((id, actor))
}

/// An inbox POST's signature checked against `actor`'s stored key: the key
/// must be the actor's, and the signature must cover the body's digest,
/// which must match.
fn verify_with_stored_key(
    headers: &HeaderMap,
    path: &str,
    body: &[u8],
    actor: &crate::db::entities::actor::Model,
) -> Result<(), AppError> {
    use base64::Engine;
    use sha2::Digest;
    let sig = headers
        .get("signature")
        .and_then(|v| v.to_str().ok())
        .and_then(super::signing::SignatureHeader::parse)
        .ok_or(AppError::Unauthorized)?;
    let mut key_owner = url::Url::parse(&sig.key_id).map_err(|_| AppError::Unauthorized)?;
    key_owner.set_fragment(None);
    if key_owner.as_str() != actor.ap_id || !sig.headers.iter().any(|h| h == "digest") {
        return Err(AppError::Unauthorized);
    }
    let want = format!(
        "SHA-256={}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body))
    );
    let digest_ok = headers
        .get("digest")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|d| d.split(',').any(|p| p.trim() == want));
    if !digest_ok {
        return Err(AppError::bad_request(
            "the Digest header does not match the body",
        ));
    }
    super::signing::verify_get(&sig, headers, "post", path, &actor.public_key)
        .map_err(|_| AppError::Unauthorized)
}

/// `host[:port]` of the activity's actor.
fn sender_host(v: &serde_json::Value) -> Option<String> {
    let actor = v.get("actor")?;
    let id = actor.as_str().or_else(|| actor.get("id")?.as_str())?;
    url::Url::parse(id)
        .ok()
        .map(|u| super::objects::authority(&u))
}

async fn receive(data: &FedData, req: Request) -> Result<(), AppError> {
    let activity = ActivityData::from_request(req, &()).await.map_err(|r| {
        AppError::BadRequest(format!(
            "unreadable request ({})",
            r.into_response().status()
        ))
    })?;
    receive_activity::<InboxActivity, DbActor, AppState>(activity, data).await
}

/// After a failed signature check: refetch the sender's actor (its key) when
/// we know it and have not refetched it within the interval. True if the key
/// changed and a retry is worth it.
async fn refetch_signer(data: &FedData, body: &[u8]) -> Result<bool, AppError> {
    let Some(actor) = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("actor").and_then(super::objects::id_of))
    else {
        return Ok(false);
    };
    let Some(known) = crate::db::actors::by_ap_id(&data.db, actor.as_str()).await? else {
        return Ok(false);
    };
    if known.local || !data.key_refetch_allowed(actor.as_str()) {
        return Ok(false);
    }
    let id: ObjectId<DbActor> = actor.into();
    match id.dereference_forced(data).await {
        Ok(fresh) => Ok(fresh.row.public_key != known.public_key),
        Err(e) => {
            tracing::info!(error = %e, "key refetch failed");
            Ok(false)
        }
    }
}

/// The signature must cover what makes it unreplayable and bound to this
/// request: `(request-target)`, `host`, `date` (or a signed `(created)`) and,
/// on a POST, `digest`. The library verifies whatever list it is given.
/// Activities per sending instance: `inbox_burst`, then `inbox_per_sec`.
pub fn limiter(s: &crate::config::FederationSettings) -> governor::DefaultKeyedRateLimiter<String> {
    use std::num::NonZeroU32;
    let per_sec = NonZeroU32::new(s.inbox_per_sec.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(s.inbox_burst.max(1)).unwrap_or(NonZeroU32::MIN);
    governor::RateLimiter::keyed(governor::Quota::per_second(per_sec).allow_burst(burst))
}

/// The sending instance, from the signature's keyId: known before the body is
/// read, so an instance over its limit costs us almost nothing.
fn key_host(headers: &HeaderMap) -> Option<String> {
    let sig = headers.get("signature")?.to_str().ok()?;
    let key_id = sig
        .split(',')
        .find_map(|p| p.trim().strip_prefix("keyId="))?
        .trim_matches('"');
    url::Url::parse(key_id)
        .ok()
        .map(|u| super::objects::authority(&u))
}

pub fn check_signed_headers(headers: &HeaderMap) -> Result<(), AppError> {
    let sig = headers
        .get("signature")
        .and_then(|s| s.to_str().ok())
        .ok_or(AppError::Unauthorized)?;
    let list = sig
        .split(',')
        .find_map(|p| p.trim().strip_prefix("headers="))
        .map(|l| l.trim_matches('"').to_ascii_lowercase())
        // Without a list the draft's default is `date` alone: too little.
        .unwrap_or_else(|| "date".into());
    let signed: Vec<&str> = list.split_whitespace().collect();
    let has = |h: &str| signed.contains(&h);
    if has("(request-target)") && has("host") && (has("date") || has("(created)")) && has("digest")
    {
        Ok(())
    } else {
        Err(AppError::Unauthorized)
    }
}

/// The signature library accepts a missing, unparseable or future `Date`: we
/// don't; nor one more than an hour (plus skew) old.
pub fn check_date(
    headers: &HeaderMap,
    now: DateTime<Utc>,
    max_skew_secs: i64,
) -> Result<(), AppError> {
    let raw = headers
        .get("date")
        .and_then(|d| d.to_str().ok())
        .ok_or(AppError::Unauthorized)?;
    let date = DateTime::parse_from_rfc2822(raw)
        .map_err(|_| AppError::Unauthorized)?
        .with_timezone(&Utc);
    let ahead = (date - now).num_seconds();
    // Past: the signature's one-hour validity, plus the allowed skew (the
    // library checks this too, but answers it as a server error).
    if ahead > max_skew_secs || -ahead > 3600 + max_skew_secs {
        return Err(AppError::Unauthorized);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_date(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert("date", v);
        }
        h
    }

    #[test]
    fn signed_headers_must_bind_the_request() {
        let sig = |list: &str| {
            let mut h = HeaderMap::new();
            let v = format!(
                r#"keyId="https://a.example/u#k",algorithm="rsa-sha256",{list}signature="x""#
            );
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert("signature", v);
            }
            h
        };
        assert!(
            check_signed_headers(&sig(r#"headers="(request-target) host date digest","#)).is_ok()
        );
        assert!(
            check_signed_headers(&sig(
                r#"headers="(request-target) (created) (expires) content-type date digest host","#
            ))
            .is_ok()
        );
        assert!(check_signed_headers(&sig(r#"headers="digest","#)).is_err());
        assert!(check_signed_headers(&sig(r#"headers="(request-target) host date","#)).is_err());
        assert!(check_signed_headers(&sig("")).is_err());
        assert!(check_signed_headers(&HeaderMap::new()).is_err());
    }

    #[test]
    fn dates() {
        let now = DateTime::parse_from_rfc2822("Sun, 22 Nov 2026 10:00:00 GMT")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        assert!(check_date(&with_date("Sun, 22 Nov 2026 10:00:00 GMT"), now, 300).is_ok());
        assert!(check_date(&with_date("Sun, 22 Nov 2026 09:30:00 GMT"), now, 300).is_ok());
        assert!(check_date(&with_date("Sun, 22 Nov 2026 10:04:00 GMT"), now, 300).is_ok());
        assert!(check_date(&with_date("Sun, 22 Nov 2026 11:00:00 GMT"), now, 300).is_err());
        assert!(check_date(&with_date("Sun, 22 Nov 2026 08:00:00 GMT"), now, 300).is_err());
        assert!(check_date(&with_date("yesterday"), now, 300).is_err());
        assert!(check_date(&HeaderMap::new(), now, 300).is_err());
    }
}
