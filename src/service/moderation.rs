//! A group's moderation, by its owner and moderators (and admins): group
//! settings, decisions on requests to join, invitations, bans, removing
//! posts, locking threads, reviewing held posts, and the moderation log.
//! Every action checks the actor's role on that group, writes its effect,
//! its federation and its log line in one transaction, and refuses a repeat
//! (approving twice, removing twice) with a clear error.

use chrono::Utc;
use sea_orm::ConnectionTrait;
use url::Url;

use super::federation::{Who, require_group_staff};
use crate::{
    db::{
        self,
        entities::{actor, post},
        moderation::GroupSettings,
    },
    domain::{
        ActorKind, FollowState,
        group::{JoinPolicy, Visibility},
    },
    error::AppError,
    federation::{
        FedData, activities::delete::Delete, membership, objects::actor::DbActor, outbox,
    },
};

fn require_local(group: &DbActor) -> Result<(), AppError> {
    if group.row.local {
        Ok(())
    } else {
        Err(AppError::bad_request(
            "only this instance's groups are moderated here",
        ))
    }
}

/// The settings a moderator (or `kindred group update`) may change.
pub struct SettingsChange<'a> {
    pub visibility: Option<&'a str>,
    pub join_policy: Option<&'a str>,
    pub member_count_hidden: Option<bool>,
    pub premoderation: Option<bool>,
    /// `Some("")` clears it.
    pub default_content_warning: Option<&'a str>,
}

/// The names in a change, checked without writing anything.
pub fn check_settings(change: &SettingsChange<'_>) -> Result<(), AppError> {
    if let Some(v) = change.visibility
        && Visibility::parse(v.trim()).is_none()
    {
        return Err(AppError::bad_request(format!(
            "unknown visibility '{v}': use public, members or local"
        )));
    }
    if let Some(v) = change.join_policy
        && JoinPolicy::parse(v.trim()).is_none()
    {
        return Err(AppError::bad_request(format!(
            "unknown join policy '{v}': use open, approval or invite"
        )));
    }
    Ok(())
}

pub async fn update_settings(
    data: &FedData,
    who: Who<'_>,
    group: &DbActor,
    change: SettingsChange<'_>,
) -> Result<GroupSettings, AppError> {
    require_local(group)?;
    require_group_staff(data, who, group).await?;
    check_settings(&change)?;
    let g = &group.row;
    let visibility = match change.visibility {
        Some(v) => Visibility::parse(v.trim()).ok_or_else(|| {
            AppError::bad_request(format!(
                "unknown visibility '{v}': use public, members or local"
            ))
        })?,
        None => Visibility::of(&g.visibility),
    };
    let join_policy = match change.join_policy {
        Some(v) => JoinPolicy::parse(v.trim()).ok_or_else(|| {
            AppError::bad_request(format!(
                "unknown join policy '{v}': use open, approval or invite"
            ))
        })?,
        None => JoinPolicy::of(&g.join_policy),
    };
    let default_content_warning = match change.default_content_warning {
        Some(cw) => {
            let cw = cw.trim();
            if cw.chars().count() > 200 {
                return Err(AppError::bad_request(
                    "a content warning has at most 200 characters",
                ));
            }
            (!cw.is_empty()).then(|| crate::domain::content::sanitize_plain(cw, 200))
        }
        None => g.default_content_warning.clone(),
    };
    let s = GroupSettings {
        visibility,
        join_policy,
        member_count_hidden: change.member_count_hidden.unwrap_or(g.member_count_hidden),
        premoderation: change.premoderation.unwrap_or(g.premoderation),
        default_content_warning,
    };
    let txn = db::write_txn(&data.db).await?;
    db::moderation::set_settings(&txn, g.id, &s).await?;
    db::moderation::log(
        &txn,
        g.id,
        &who.name(),
        "group.settings",
        &format!(
            "visibility={} join={} count_hidden={} premoderation={}",
            s.visibility.as_str(),
            s.join_policy.as_str(),
            s.member_count_hidden,
            s.premoderation
        ),
        None,
    )
    .await?;
    txn.commit().await?;
    data.group_docs.forget();
    tracing::info!(group = %group.handle(), visibility = s.visibility.as_str(), join = s.join_policy.as_str(), "group settings changed");
    Ok(s)
}

async fn actor_of(data: &FedData, id: i64) -> Result<DbActor, AppError> {
    let row = db::actors::by_id(&data.db, id)
        .await?
        .ok_or_else(|| AppError::not_found("person"))?;
    DbActor::new(row)
}

fn label(a: &actor::Model) -> String {
    format!("@{}@{}", a.username, a.domain)
}

/// Approve a pending request: the member is in; a remote one gets Accept.
pub async fn approve(
    data: &FedData,
    who: Who<'_>,
    group: &DbActor,
    person_id: i64,
) -> Result<(), AppError> {
    require_local(group)?;
    require_group_staff(data, who, group).await?;
    let person = actor_of(data, person_id).await?;
    let Some(f) = db::follows::get(&data.db, person_id, group.row.id).await? else {
        return Err(AppError::not_found("request to join"));
    };
    if f.state == FollowState::Accepted.as_str() {
        return Err(AppError::Conflict(format!(
            "{} is already a member",
            label(&person.row)
        )));
    }
    let txn = db::write_txn(&data.db).await?;
    if !db::moderation::accept_pending(&txn, f.id).await? {
        return Err(AppError::Conflict(
            "this request was already decided".into(),
        ));
    }
    if !person.row.local {
        membership::accept(&txn, &data.urls, group, &person, f.follow_ap_id.as_deref()).await?;
    }
    db::moderation::log(
        &txn,
        group.row.id,
        &who.name(),
        "member.approve",
        &label(&person.row),
        None,
    )
    .await?;
    txn.commit().await?;
    data.wake_delivery();
    Ok(())
}

/// Refuse a pending request: it is dropped; a remote applicant gets Reject.
pub async fn refuse(
    data: &FedData,
    who: Who<'_>,
    group: &DbActor,
    person_id: i64,
    reason: Option<&str>,
) -> Result<(), AppError> {
    require_local(group)?;
    require_group_staff(data, who, group).await?;
    let person = actor_of(data, person_id).await?;
    let f = db::follows::get(&data.db, person_id, group.row.id)
        .await?
        .filter(|f| f.state == FollowState::Pending.as_str())
        .ok_or_else(|| AppError::not_found("pending request to join"))?;
    let txn = db::write_txn(&data.db).await?;
    db::follows::delete(&txn, person_id, group.row.id).await?;
    if !person.row.local {
        membership::reject(&txn, &data.urls, group, &person, f.follow_ap_id.as_deref()).await?;
    }
    db::moderation::log(
        &txn,
        group.row.id,
        &who.name(),
        "member.refuse",
        &label(&person.row),
        reason,
    )
    .await?;
    txn.commit().await?;
    data.wake_delivery();
    Ok(())
}

/// Find a person by handle: local name, `name@host`, or one we know.
pub async fn person_by_handle(data: &FedData, input: &str) -> Result<DbActor, AppError> {
    let h = crate::domain::handle::Handle::parse(input).map_err(AppError::BadRequest)?;
    let row = if h.is_local(data.domain()) {
        db::actors::local_by_name_and_kind(&data.db, &h.name, ActorKind::Person).await?
    } else {
        let host = h.host.clone().unwrap_or_default();
        match db::actors::remote_by_handle(&data.db, &h.name, &host, ActorKind::Person).await? {
            Some(r) => Some(r),
            None => Some(
                crate::federation::resolve::actor_by_handle(data, &h.name, &host)
                    .await
                    .map_err(|_| AppError::not_found(format!("person {input}")))?
                    .row,
            ),
        }
    };
    let row = row
        .filter(|r| r.kind == ActorKind::Person.as_str())
        .ok_or_else(|| AppError::not_found(format!("person {input}")))?;
    DbActor::new(row)
}

/// Ban a person from the group: their membership ends (a remote member's
/// server is told with Reject) and whatever they send the group is refused.
/// Admins and the group's own staff cannot be banned.
pub async fn ban(
    data: &FedData,
    who: Who<'_>,
    group: &DbActor,
    person: &DbActor,
    reason: Option<&str>,
) -> Result<(), AppError> {
    require_local(group)?;
    require_group_staff(data, who, group).await?;
    if person.row.local {
        if let Some(u) = db::users::by_actor_id(&data.db, person.row.id).await?
            && u.is_admin
        {
            return Err(AppError::bad_request(
                "an admin of this instance cannot be banned from a group",
            ));
        }
        if db::roles::role_of(&data.db, group.row.id, person.row.id)
            .await?
            .is_some()
        {
            return Err(AppError::bad_request(
                "the group's owner and moderators cannot be banned: remove their role first",
            ));
        }
    }
    if db::moderation::is_banned(&data.db, group.row.id, person.row.id).await? {
        return Err(AppError::Conflict(format!(
            "{} is already banned",
            label(&person.row)
        )));
    }
    let existing = db::follows::get(&data.db, person.row.id, group.row.id).await?;
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let txn = db::write_txn(&data.db).await?;
    db::moderation::ban(&txn, group.row.id, person.row.id, reason, &who.name()).await?;
    if let Some(f) = existing {
        db::follows::delete(&txn, person.row.id, group.row.id).await?;
        if !person.row.local {
            membership::reject(&txn, &data.urls, group, person, f.follow_ap_id.as_deref()).await?;
        }
    }
    db::moderation::log(
        &txn,
        group.row.id,
        &who.name(),
        "member.ban",
        &label(&person.row),
        reason,
    )
    .await?;
    txn.commit().await?;
    data.wake_delivery();
    Ok(())
}

pub async fn unban(
    data: &FedData,
    who: Who<'_>,
    group: &DbActor,
    person: &DbActor,
) -> Result<(), AppError> {
    require_local(group)?;
    require_group_staff(data, who, group).await?;
    let txn = db::write_txn(&data.db).await?;
    if db::moderation::unban(&txn, group.row.id, person.row.id).await? == 0 {
        return Err(AppError::not_found("ban"));
    }
    db::moderation::log(
        &txn,
        group.row.id,
        &who.name(),
        "member.unban",
        &label(&person.row),
        None,
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Invite a person by handle (their request is accepted when it arrives),
/// or make an invitation link (returns its token, shown once).
pub async fn invite(
    data: &FedData,
    who: Who<'_>,
    group: &DbActor,
    person: Option<&DbActor>,
) -> Result<Option<String>, AppError> {
    require_local(group)?;
    require_group_staff(data, who, group).await?;
    let txn = db::write_txn(&data.db).await?;
    let token = match person {
        Some(p) => {
            if db::moderation::is_banned(&txn, group.row.id, p.row.id).await? {
                return Err(AppError::Conflict(format!(
                    "{} is banned from this group",
                    label(&p.row)
                )));
            }
            db::moderation::insert_invite(&txn, group.row.id, None, Some(p.row.id), &who.name())
                .await?;
            db::moderation::log(
                &txn,
                group.row.id,
                &who.name(),
                "member.invite",
                &label(&p.row),
                None,
            )
            .await?;
            None
        }
        None => {
            let token = super::users::random_token();
            db::moderation::insert_invite(
                &txn,
                group.row.id,
                Some(super::users::token_hash(&token)),
                None,
                &who.name(),
            )
            .await?;
            db::moderation::log(
                &txn,
                group.row.id,
                &who.name(),
                "member.invite_link",
                "link",
                None,
            )
            .await?;
            Some(token)
        }
    };
    txn.commit().await?;
    Ok(token)
}

async fn post_in_local_group(
    data: &FedData,
    post_id: i64,
) -> Result<(post::Model, DbActor), AppError> {
    let post = db::posts::by_id(&data.db, post_id)
        .await?
        .ok_or_else(|| AppError::not_found("post"))?;
    let group = actor_of(data, post.group_id).await?;
    require_local(&group)?;
    Ok((post, group))
}

/// Remove a post or reply from the group: it is gone here, and the group
/// tells its members' servers (Announce of the group's Delete, FEP-1b12).
pub async fn remove_post(
    data: &FedData,
    who: Who<'_>,
    post_id: i64,
    reason: Option<&str>,
) -> Result<(), AppError> {
    let (post, group) = post_in_local_group(data, post_id).await?;
    require_group_staff(data, who, &group).await?;
    if post.deleted_at.is_some() {
        return Err(AppError::Conflict("this post was already removed".into()));
    }
    let object = Url::parse(&post.ap_id)?;
    let id = data.urls.new_activity("delete");
    let mut to = vec![group.row.ap_id.clone()];
    if crate::service::access::visibility(&group.row) == Visibility::Public {
        to.push(crate::federation::PUBLIC_AUDIENCE.into());
    }
    let cc = group.row.followers.iter().cloned().collect();
    let delete = Delete::new(id.clone(), &group, &object, to, cc);
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let author = db::actors::by_id(&data.db, post.author_id).await?;
    let txn = db::write_txn(&data.db).await?;
    db::posts::mark_deleted(&txn, post.id).await?;
    db::deliveries::cancel_pending_carrying(&txn, &post.ap_id).await?;
    if post.held_at.is_none() {
        outbox::announce_to_members(&txn, &data.urls, &group, &delete).await?;
        // The author's own server hears it directly too.
        if let Some(a) = author.filter(|a| !a.local) {
            outbox::queue(
                &txn,
                &data.urls,
                &id,
                &delete,
                &group,
                vec![a.inbox.clone()],
            )
            .await?;
        }
    }
    let target = format!("post {}", post.id);
    db::moderation::log(
        &txn,
        group.row.id,
        &who.name(),
        "post.remove",
        &target,
        reason,
    )
    .await?;
    txn.commit().await?;
    data.wake_delivery();
    Ok(())
}

/// Lock (no new replies) or unlock a thread.
pub async fn set_locked(
    data: &FedData,
    who: Who<'_>,
    thread_id: i64,
    locked: bool,
) -> Result<(), AppError> {
    let (post, group) = post_in_local_group(data, thread_id).await?;
    require_group_staff(data, who, &group).await?;
    if post.thread_id.is_some() {
        return Err(AppError::bad_request(
            "only a thread can be locked, not a reply",
        ));
    }
    if post.deleted_at.is_some() {
        return Err(AppError::not_found("thread"));
    }
    if post.locked_at.is_some() == locked {
        return Err(AppError::Conflict(format!(
            "this thread is already {}",
            if locked { "locked" } else { "unlocked" }
        )));
    }
    let txn = db::write_txn(&data.db).await?;
    db::moderation::set_locked(&txn, post.id, locked.then(Utc::now)).await?;
    let action = if locked {
        "thread.lock"
    } else {
        "thread.unlock"
    };
    db::moderation::log(
        &txn,
        group.row.id,
        &who.name(),
        action,
        &format!("post {}", post.id),
        None,
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Before a post is stored (local or remote): the thread must be open, the
/// author not banned; returns whether the post is held for review (a
/// pre-moderated group, an author with no approved post there yet).
pub async fn screen_new_post(
    db: &impl ConnectionTrait,
    group: &actor::Model,
    author_id: i64,
    thread: Option<&post::Model>,
) -> Result<bool, AppError> {
    if db::moderation::is_banned(db, group.id, author_id).await? {
        return Err(banned());
    }
    screen_unbanned_post(db, group, author_id, thread).await
}

/// What a banned author is told.
pub fn banned() -> AppError {
    AppError::forbidden("you are banned from this group")
}

/// `screen_new_post` for a caller that has already found the author not
/// banned (the inbox asks with the membership, in one statement).
pub async fn screen_unbanned_post(
    db: &impl ConnectionTrait,
    group: &actor::Model,
    author_id: i64,
    thread: Option<&post::Model>,
) -> Result<bool, AppError> {
    if thread.is_some_and(|t| t.locked_at.is_some()) {
        return Err(AppError::forbidden("this thread is locked: no new replies"));
    }
    if !group.local || !group.premoderation {
        return Ok(false);
    }
    if db::roles::role_of(db, group.id, author_id).await?.is_some() {
        return Ok(false);
    }
    Ok(db::moderation::approved_posts_by(db, group.id, author_id).await? == 0)
}

/// Approve a held post: it is shown and federated as if just posted.
pub async fn approve_post(data: &FedData, who: Who<'_>, post_id: i64) -> Result<(), AppError> {
    let (post, group) = post_in_local_group(data, post_id).await?;
    require_group_staff(data, who, &group).await?;
    if post.held_at.is_none() || post.deleted_at.is_some() {
        return Err(AppError::Conflict(
            "this post is not waiting for review".into(),
        ));
    }
    let txn = db::write_txn(&data.db).await?;
    db::moderation::set_held(&txn, post.id, None).await?;
    let mut row = post.clone();
    row.held_at = None;
    super::posts::federate_released(&txn, data, &group, &row).await?;
    db::moderation::log(
        &txn,
        group.row.id,
        &who.name(),
        "post.approve",
        &format!("post {}", post.id),
        None,
    )
    .await?;
    txn.commit().await?;
    data.wake_delivery();
    Ok(())
}

/// Moderation log lines as shown (newest first).
pub async fn log(
    data: &FedData,
    who: Who<'_>,
    group: &DbActor,
) -> Result<Vec<db::entities::audit_entry::Model>, AppError> {
    require_local(group)?;
    require_group_staff(data, who, group).await?;
    Ok(db::moderation::log_of(&data.db, group.row.id, 500).await?)
}
