//! Who may see a group's content here: the one rule the web pages, the JSON
//! API and the ActivityPub routes share. Members-only groups show their
//! threads, replies and staff to approved members and their moderators only;
//! local-only groups to people signed in here; public groups to anyone.
//! A remote group that declares itself members-only is held to the same rule
//! for the copies we keep of its posts.

use sea_orm::ConnectionTrait;

use super::users::CurrentUser;
use crate::{
    db::{self, entities::actor},
    domain::{FollowState, group::Visibility},
    error::AppError,
};

pub fn visibility(group: &actor::Model) -> Visibility {
    Visibility::of(&group.visibility)
}

/// Is `actor_id` an accepted member of the group, or one of its staff?
pub async fn is_member_or_staff(
    db: &impl ConnectionTrait,
    group: &actor::Model,
    actor_id: i64,
) -> Result<bool, AppError> {
    if db::follows::state(db, actor_id, group.id).await? == Some(FollowState::Accepted) {
        return Ok(true);
    }
    Ok(group.local && db::roles::role_of(db, group.id, actor_id).await?.is_some())
}

/// May this viewer (signed in here, or not) read the group's threads?
pub async fn may_read(
    db: &impl ConnectionTrait,
    viewer: Option<&CurrentUser>,
    group: &actor::Model,
) -> Result<bool, AppError> {
    match (visibility(group), viewer) {
        (Visibility::Public, _) => Ok(true),
        (Visibility::Local, v) => Ok(v.is_some() && group.local),
        (Visibility::Members, None) => Ok(false),
        (Visibility::Members, Some(me)) => is_member_or_staff(db, group, me.actor.id).await,
    }
}

/// May the viewer see that the group exists at all (its page, its name)?
/// Local-only groups are hidden from people not signed in here; members-only
/// groups show their profile so people can ask to join.
pub fn may_see_profile(viewer: Option<&CurrentUser>, group: &actor::Model) -> bool {
    visibility(group) != Visibility::Local || viewer.is_some()
}

/// `may_read`, as the 404 every reader without access gets: the same answer
/// as for a group or post that does not exist.
pub async fn require_read(
    db: &impl ConnectionTrait,
    viewer: Option<&CurrentUser>,
    group: &actor::Model,
    what: &str,
) -> Result<(), AppError> {
    if may_read(db, viewer, group).await? {
        Ok(())
    } else {
        Err(AppError::not_found(what))
    }
}

/// The member count to show: none when the group hides it, or when the
/// viewer may not read a members-only group.
pub async fn shown_member_count(
    db: &impl ConnectionTrait,
    viewer: Option<&CurrentUser>,
    group: &actor::Model,
) -> Result<Option<u64>, AppError> {
    if !group.local || group.member_count_hidden || !may_read(db, viewer, group).await? {
        return Ok(None);
    }
    Ok(Some(db::follows::count_members(db, group.id).await?))
}

/// A live post the viewer may read, with its author and group: a post that
/// is deleted, hidden by an admin, held for review (except for its author
/// and the group's staff) or in a group the viewer may not read is the same
/// 404 as one that never existed.
pub async fn readable_post(
    db: &impl ConnectionTrait,
    viewer: Option<&CurrentUser>,
    id: i64,
) -> Result<
    (
        db::entities::post::Model,
        actor::Model,
        crate::federation::objects::actor::DbActor,
    ),
    AppError,
> {
    let not_found = || AppError::not_found("post");
    let p = db::posts::by_id(db, id)
        .await?
        .filter(|p| p.deleted_at.is_none() && p.hidden_at.is_none())
        .ok_or_else(not_found)?;
    let g = db::actors::by_id(db, p.group_id)
        .await?
        .ok_or_else(not_found)?;
    if !may_read(db, viewer, &g).await? {
        return Err(not_found());
    }
    if p.held_at.is_some() {
        let me = viewer.map(|v| v.actor.id);
        let staff = match viewer {
            Some(v) => v.user.is_admin || db::roles::role_of(db, g.id, v.actor.id).await?.is_some(),
            None => false,
        };
        if me != Some(p.author_id) && !staff {
            return Err(not_found());
        }
    }
    let a = db::actors::by_id(db, p.author_id)
        .await?
        .ok_or_else(not_found)?;
    Ok((p, a, crate::federation::objects::actor::DbActor::new(g)?))
}
