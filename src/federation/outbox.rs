//! Outgoing activities: build them and queue them for delivery in the caller's
//! transaction. Inboxes on our own domain are skipped: local members are served
//! in-process, never over HTTP.

use activitypub_federation::{kinds::activity::AnnounceType, protocol::context::WithContext};
use sea_orm::ConnectionTrait;
use serde::Serialize;
use url::Url;

use super::{PUBLIC_AUDIENCE, activities::announce::Announce, objects::actor::DbActor, urls::Urls};
use crate::{db, domain::group::Visibility, error::AppError};

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

/// The group boosts a new thread: what Mastodon (and other microblogs) show
/// in their followers' timelines. A public group's boost names the post by
/// id (receivers fetch it); a members-only group's carries the post itself,
/// since only members may fetch it. FEP-1b12 servers get it too and find the
/// post they already have.
pub async fn announce_object_to_members(
    db: &impl ConnectionTrait,
    urls: &Urls,
    group: &DbActor,
    object: &Url,
    embedded: serde_json::Value,
) -> Result<(), AppError> {
    let object = if crate::service::access::visibility(&group.row) == Visibility::Public {
        serde_json::Value::String(object.to_string())
    } else {
        embedded
    };
    announce(db, urls, group, object).await
}

async fn announce(
    db: &impl ConnectionTrait,
    urls: &Urls,
    group: &DbActor,
    object: serde_json::Value,
) -> Result<(), AppError> {
    let visibility = crate::service::access::visibility(&group.row);
    if !visibility.federates() {
        return Ok(());
    }
    let id = urls.new_activity("announce");
    let mut cc = vec![];
    if let Some(f) = &group.row.followers {
        cc.push(f.clone());
    }
    // A members-only group speaks to its members, each at their own inbox:
    // a shared inbox would hand the post to a server to pass around.
    let (to, inboxes) = if visibility == Visibility::Public {
        (
            vec![PUBLIC_AUDIENCE.to_string()],
            db::follows::remote_member_inboxes(db, group.row.id).await?,
        )
    } else {
        (
            std::mem::take(&mut cc),
            db::follows::remote_member_personal_inboxes(db, group.row.id).await?,
        )
    };
    let announce = Announce {
        kind: AnnounceType::Announce,
        id: id.clone(),
        actor: group.object_id(),
        object,
        to,
        cc,
        audience: Some(group.object_id()),
    };
    queue(db, urls, &id, &announce, group, inboxes).await
}
