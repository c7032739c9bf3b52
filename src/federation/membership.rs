//! A local group's answers to someone who asked to join: Accept or Reject of
//! their Follow, queued in the caller's transaction. Sent when the request
//! arrives (open groups, invitations, refusals) or when a moderator decides.

use activitypub_federation::kinds::activity::{AcceptType, RejectType};
use sea_orm::ConnectionTrait;
use url::Url;

use super::{
    activities::{accept::Accept, follow::Follow, reject::Reject},
    objects::actor::DbActor,
    outbox,
    urls::Urls,
};
use crate::error::AppError;

/// The Follow being answered: as received when we have it, else rebuilt
/// from its id (a decision taken later).
fn follow_object(
    follow_ap_id: Option<&str>,
    follower: &DbActor,
    group: &DbActor,
    urls: &Urls,
) -> Result<serde_json::Value, AppError> {
    let id = follow_ap_id
        .and_then(|s| Url::parse(s).ok())
        .unwrap_or_else(|| urls.new_activity("follow"));
    Ok(serde_json::to_value(Follow::new(id, follower, group))?)
}

pub async fn accept(
    db: &impl ConnectionTrait,
    urls: &Urls,
    group: &DbActor,
    follower: &DbActor,
    follow_ap_id: Option<&str>,
) -> Result<(), AppError> {
    let id = urls.new_activity("accept");
    let accept = Accept {
        kind: AcceptType::Accept,
        id: id.clone(),
        actor: group.object_id(),
        object: follow_object(follow_ap_id, follower, group, urls)?,
        to: vec![follower.row.ap_id.clone()],
    };
    outbox::queue(
        db,
        urls,
        &id,
        &accept,
        group,
        vec![follower.row.inbox.clone()],
    )
    .await
}

/// Refuse a request, or end a membership (a ban): Mastodon and Lemmy both
/// drop the follow on a Reject.
pub async fn reject(
    db: &impl ConnectionTrait,
    urls: &Urls,
    group: &DbActor,
    follower: &DbActor,
    follow_ap_id: Option<&str>,
) -> Result<(), AppError> {
    let id = urls.new_activity("reject");
    let reject = Reject {
        kind: RejectType::Reject,
        id: id.clone(),
        actor: group.object_id(),
        object: follow_object(follow_ap_id, follower, group, urls)?,
        to: vec![follower.row.ap_id.clone()],
    };
    outbox::queue(
        db,
        urls,
        &id,
        &reject,
        group,
        vec![follower.row.inbox.clone()],
    )
    .await
}
