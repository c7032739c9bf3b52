//! Outgoing activities: build them and queue them for delivery in the caller's
//! transaction. Inboxes on our own domain are skipped: local members are served
//! in-process, never over HTTP.

use activitypub_federation::{kinds::activity::AnnounceType, protocol::context::WithContext};
use sea_orm::ConnectionTrait;
use serde::Serialize;
use url::Url;

use super::{PUBLIC_AUDIENCE, activities::announce::Announce, objects::actor::DbActor, urls::Urls};
use crate::{db, error::AppError};

/// Queue `activity`, signed later by `signer`, for each inbox not on our domain.
pub async fn queue<A: Serialize>(
    db: &impl ConnectionTrait,
    urls: &Urls,
    activity_id: &Url,
    activity: &A,
    signer: &DbActor,
    inboxes: Vec<String>,
) -> Result<(), AppError> {
    let ours = urls.base();
    let remote: Vec<String> = inboxes
        .into_iter()
        .filter(|i| Url::parse(i).is_ok_and(|u| !super::objects::same_origin(&u, ours)))
        .collect();
    if remote.is_empty() {
        return Ok(());
    }
    let payload = serde_json::to_string(&WithContext::new(
        activity,
        super::objects::object_context(),
    ))?;
    db::deliveries::enqueue(db, activity_id.as_str(), signer.row.id, &payload, &remote).await?;
    Ok(())
}

/// FEP-1b12: a group re-shares `inner` (an activity) with every remote member
/// server.
pub async fn announce_to_members<A: Serialize>(
    db: &impl ConnectionTrait,
    urls: &Urls,
    group: &DbActor,
    inner: &A,
) -> Result<(), AppError> {
    announce(db, urls, group, serde_json::to_value(inner)?).await
}

/// The group boosts a new thread by its id: what Mastodon (and other
/// microblogs) show in their followers' timelines; it fetches the post by id.
/// FEP-1b12 servers get it too and find the post they already have.
pub async fn announce_object_to_members(
    db: &impl ConnectionTrait,
    urls: &Urls,
    group: &DbActor,
    object: &Url,
) -> Result<(), AppError> {
    announce(
        db,
        urls,
        group,
        serde_json::Value::String(object.to_string()),
    )
    .await
}

async fn announce(
    db: &impl ConnectionTrait,
    urls: &Urls,
    group: &DbActor,
    object: serde_json::Value,
) -> Result<(), AppError> {
    let id = urls.new_activity("announce");
    let mut cc = vec![];
    if let Some(f) = &group.row.followers {
        cc.push(f.clone());
    }
    let announce = Announce {
        kind: AnnounceType::Announce,
        id: id.clone(),
        actor: group.object_id(),
        object,
        to: vec![PUBLIC_AUDIENCE.to_string()],
        cc,
        audience: Some(group.object_id()),
    };
    let inboxes = db::follows::remote_member_inboxes(db, group.row.id).await?;
    queue(db, urls, &id, &announce, group, inboxes).await
}
