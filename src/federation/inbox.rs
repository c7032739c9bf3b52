//! The inbox (shared and per actor, one handler), our own receive path:
//! a sane `Date`, a signature that binds the request, the sender's rate
//! limit and the federation policy before the body is read, then the body
//! (413), its `Digest`, the policy screens, the activity read by its type,
//! its origin, the actor's key and the signature (ring), and finally the
//! activity's own verify and receive. Repeats are absorbed by the
//! activity-id record.

use activitypub_federation::{fetch::object_id::ObjectId, traits::Activity};
use axum::{
    body::to_bytes,
    extract::Request,
    http::{HeaderMap, HeaderValue, StatusCode},
};
use chrono::{DateTime, Utc};

use super::{
    FedData, activities::InboxActivity, objects::actor::DbActor, signing::SignatureHeader,
};
use crate::error::AppError;

pub async fn post_inbox(data: FedData, req: Request) -> Result<StatusCode, AppError> {
    let res = super::memo::scope(receive_inbox(&data, req)).await;
    data.metrics.inbox(match &res {
        Ok(_) => "accepted",
        Err(e) => e.code(),
    });
    res
}

async fn receive_inbox(data: &FedData, req: Request) -> Result<StatusCode, AppError> {
    let (mut parts, body) = req.into_parts();
    let now = data.clock.now();
    check_date(
        &parts.headers,
        now,
        data.settings.federation.max_clock_skew_secs,
    )?;
    let sig = signature_header(&parts.headers)?;
    check_signed_headers(&sig)?;
    // The sending instance, from the keyId: known before the body is read,
    // so an instance over its limit or refused costs us almost nothing.
    let key_host = url::Url::parse(&sig.key_id)
        .map(|u| super::objects::authority(&u))
        .map_err(|_| AppError::Unverified("the signature's keyId is not a URL".into()))?;
    if data.inbox_limits.len() > 100_000 {
        data.inbox_limits.retain_recent();
    }
    if data.inbox_limits.check_key(&key_host).is_err() {
        tracing::info!(instance = %key_host, "inbox rate limit reached");
        return Err(AppError::TooManyRequests(
            "too many activities from your instance; retry later".into(),
        ));
    }
    super::policy::check(data, &key_host, None).await?;
    let limit = data.settings.server.max_body_bytes;
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| AppError::PayloadTooLarge)?;
    check_digest(&parts.headers, &bytes)?;
    let value = serde_json::from_slice::<serde_json::Value>(&bytes)
        .map_err(|e| AppError::BadRequest(format!("unreadable JSON: {e}")))?;
    // The actor's and the id's instance, and every local group concerned:
    // refused before anything is verified or stored.
    super::policy::screen_inbound(data, parts.uri.path(), &value).await?;
    // HTTP/2 and some proxies carry no Host: it is ours.
    if !parts.headers.contains_key("host")
        && let Ok(v) = HeaderValue::from_str(data.domain())
    {
        parts.headers.insert("host", v);
    }
    let target = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |p| p.as_str());
    let method = parts.method.as_str();
    if let Some((id, actor)) = self_delete(&value)
        && let Some(known) = crate::db::actors::by_ap_id(&data.db, actor.as_str()).await?
        && !known.local
    {
        // An account deleted at its origin: its actor now answers 410, so
        // the signature is checked against the key we hold.
        check_key_owner(&sig, &known.ap_id)?;
        super::signing::verify(&sig, &parts.headers, method, target, &known.public_key, now)
            .map_err(|why| AppError::Unverified(why.into()))?;
        super::activities::delete::remove_actor(data, &id, &actor, &value).await?;
        return Ok(StatusCode::ACCEPTED);
    }
    let activity = InboxActivity::from_value(&value).map_err(AppError::BadRequest)?;
    activity.check_origin(data)?;
    let actor = ObjectId::<DbActor>::from(activity.actor().clone())
        .dereference(data)
        .await?;
    // Verified against the activity's actor's key, whatever the keyId says:
    // a body naming B signed with A's key does not verify.
    let verified = super::signing::verify(
        &sig,
        &parts.headers,
        method,
        target,
        &actor.row.public_key,
        now,
    );
    if let Err(why) = verified {
        // The sender may have rotated its key since we stored it: read its
        // actor again (once per actor per interval), then retry once.
        let fresh = refetch_signer(data, &actor)
            .await
            .ok_or_else(|| AppError::Unverified(why.into()))?;
        super::signing::verify(&sig, &parts.headers, method, target, &fresh, now)
            .map_err(|why| AppError::Unverified(why.into()))?;
    }
    tracing::debug!(id = %activity.id(), "receiving activity");
    let sender = super::objects::authority(activity.actor());
    activity.verify(data).await?;
    activity.receive(data).await?;
    // Verified: the sender's instance is up (closes its delivery breaker).
    if let Err(e) = super::delivery::instance_is_up(data, &sender).await {
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

/// The request's `Signature`, parsed; 401 without one.
fn signature_header(headers: &HeaderMap) -> Result<SignatureHeader, AppError> {
    let raw = headers
        .get("signature")
        .ok_or_else(|| AppError::Unverified("the request is not signed".into()))?;
    raw.to_str()
        .ok()
        .and_then(SignatureHeader::parse)
        .ok_or_else(|| AppError::Unverified("the Signature header cannot be read".into()))
}

/// The signature's key must be `actor`'s own (`actor#fragment`).
fn check_key_owner(sig: &SignatureHeader, actor: &str) -> Result<(), AppError> {
    let mut owner = url::Url::parse(&sig.key_id)
        .map_err(|_| AppError::Unverified("the signature's keyId is not a URL".into()))?;
    owner.set_fragment(None);
    if owner.as_str() == actor {
        Ok(())
    } else {
        Err(AppError::Unverified(
            "the signature's key is not the actor's".into(),
        ))
    }
}

/// After a failed signature check: refetch the sender's actor (its key) when
/// it is remote and we have not refetched it within the interval. The new key,
/// if it changed.
async fn refetch_signer(data: &FedData, actor: &DbActor) -> Option<String> {
    if actor.row.local || !data.key_refetch_allowed(&actor.row.ap_id) {
        return None;
    }
    let id: ObjectId<DbActor> = url::Url::parse(&actor.row.ap_id).ok()?.into();
    match id.dereference_forced(data).await {
        Ok(fresh) => (fresh.row.public_key != actor.row.public_key).then_some(fresh.row.public_key),
        Err(e) => {
            tracing::info!(error = %e, "key refetch failed");
            None
        }
    }
}

/// The body's `Digest` (RFC 3230): a SHA-256 value that matches the body.
/// Other algorithms listed beside it are ignored; the name is read in any case.
pub fn check_digest(headers: &HeaderMap, body: &[u8]) -> Result<(), AppError> {
    let raw = headers
        .get("digest")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| AppError::Unverified("the Digest header is missing".into()))?;
    let mut sha256 = raw.split(',').filter_map(|part| {
        let (alg, value) = part.trim().split_once('=')?;
        alg.trim()
            .eq_ignore_ascii_case("sha-256")
            .then_some(value.trim())
    });
    let ours = super::signing::digest(body);
    let want = ours.strip_prefix("SHA-256=").unwrap_or(&ours);
    let first = sha256
        .next()
        .ok_or_else(|| AppError::Unverified("the Digest header has no SHA-256 value".into()))?;
    if first == want && sha256.all(|v| v == want) {
        Ok(())
    } else {
        Err(AppError::Unverified(
            "the Digest header does not match the body".into(),
        ))
    }
}

/// Activities per sending instance: `inbox_burst`, then `inbox_per_sec`.
pub fn limiter(s: &crate::config::FederationSettings) -> governor::DefaultKeyedRateLimiter<String> {
    use std::num::NonZeroU32;
    let per_sec = NonZeroU32::new(s.inbox_per_sec.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(s.inbox_burst.max(1)).unwrap_or(NonZeroU32::MIN);
    governor::RateLimiter::keyed(governor::Quota::per_second(per_sec).allow_burst(burst))
}

/// The signature must cover what makes it unreplayable and bound to this
/// request: `(request-target)`, `host`, `date` (or a signed `(created)`) and,
/// on a POST, `digest`.
pub fn check_signed_headers(sig: &SignatureHeader) -> Result<(), AppError> {
    let has = |h: &str| sig.headers.iter().any(|x| x == h);
    if has("(request-target)") && has("host") && (has("date") || has("(created)")) && has("digest")
    {
        Ok(())
    } else {
        Err(AppError::Unverified(
            "the signature must cover (request-target), host, date and digest".into(),
        ))
    }
}

/// A `Date` must be there, readable, not ahead of us by more than the allowed
/// skew, nor older than a signature's hour (plus skew).
pub fn check_date(
    headers: &HeaderMap,
    now: DateTime<Utc>,
    max_skew_secs: i64,
) -> Result<(), AppError> {
    let raw = headers
        .get("date")
        .and_then(|d| d.to_str().ok())
        .ok_or_else(|| AppError::Unverified("the Date header is missing".into()))?;
    let date = DateTime::parse_from_rfc2822(raw)
        .map_err(|_| AppError::Unverified("the Date header cannot be read".into()))?
        .with_timezone(&Utc);
    let ahead = (date - now).num_seconds();
    if ahead > max_skew_secs || -ahead > 3600 + max_skew_secs {
        return Err(AppError::Unverified(
            "the Date header is too far from our clock".into(),
        ));
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
            SignatureHeader::parse(&format!(
                r#"keyId="https://a.example/u#k",algorithm="rsa-sha256",{list}signature="x""#
            ))
            .unwrap_or_else(|| panic!("unparsed: {list}"))
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
        // Without a list the draft's default is `date` alone: too little.
        assert!(check_signed_headers(&sig("")).is_err());
        assert!(signature_header(&HeaderMap::new()).is_err());
    }

    /// RFC 3230: the algorithm's name in any case, other algorithms beside
    /// it ignored, every SHA-256 value must match; each refusal is a 401
    /// that says why.
    #[test]
    fn digests() {
        use base64::Engine;
        use sha2::Digest;
        let body = br#"{"type":"Create"}"#;
        let good = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body));
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(v) {
                h.insert("digest", v);
            }
            h
        };
        let reason = |h: &HeaderMap| match check_digest(h, body) {
            Err(AppError::Unverified(why)) => why,
            other => panic!("expected a 401, got {other:?}"),
        };
        assert!(check_digest(&with(&format!("SHA-256={good}")), body).is_ok());
        assert!(check_digest(&with(&format!("sha-256={good}")), body).is_ok());
        assert!(check_digest(&with(&format!("MD5=abc, SHA-256={good}")), body).is_ok());
        assert_eq!(
            reason(&with("SHA-256=AAAA")),
            "the Digest header does not match the body"
        );
        assert_eq!(
            reason(&with(&format!("SHA-256={good}, SHA-256=AAAA"))),
            "the Digest header does not match the body"
        );
        assert_eq!(
            reason(&with("MD5=abc")),
            "the Digest header has no SHA-256 value"
        );
        assert_eq!(reason(&HeaderMap::new()), "the Digest header is missing");
        assert_eq!(
            AppError::Unverified("x".into()).status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(AppError::Unverified("x".into()).code(), "unauthorized");
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
