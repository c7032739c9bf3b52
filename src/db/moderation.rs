//! Queries for a group's moderation: its settings, membership requests,
//! bans, invitations, reports, held posts and locked threads, and its log.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, sea_query::Expr,
};

use super::entities::{actor, audit_entry, follow, group_ban, group_invite, post, report};
use crate::domain::{
    FollowState,
    group::{JoinPolicy, ReportStatus, Visibility},
};

/// A group's settings, all at once.
#[derive(Debug, Clone)]
pub struct GroupSettings {
    pub visibility: Visibility,
    pub join_policy: JoinPolicy,
    pub member_count_hidden: bool,
    pub premoderation: bool,
    pub default_content_warning: Option<String>,
}

pub async fn set_settings(
    db: &impl ConnectionTrait,
    group_id: i64,
    s: &GroupSettings,
) -> Result<(), DbErr> {
    actor::Entity::update_many()
        .col_expr(actor::Column::Visibility, s.visibility.as_str().into())
        .col_expr(actor::Column::JoinPolicy, s.join_policy.as_str().into())
        .col_expr(
            actor::Column::MemberCountHidden,
            s.member_count_hidden.into(),
        )
        .col_expr(actor::Column::Premoderation, s.premoderation.into())
        .col_expr(
            actor::Column::DefaultContentWarning,
            s.default_content_warning.clone().into(),
        )
        .col_expr(
            actor::Column::ManuallyApprovesFollowers,
            (s.join_policy != JoinPolicy::Open).into(),
        )
        .filter(actor::Column::Id.eq(group_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Requests waiting for a decision, oldest first, with who asked.
pub async fn pending_requests(
    db: &impl ConnectionTrait,
    group_id: i64,
) -> Result<Vec<(follow::Model, actor::Model)>, DbErr> {
    let rows = follow::Entity::find()
        .filter(follow::Column::GroupId.eq(group_id))
        .filter(follow::Column::State.eq(FollowState::Pending.as_str()))
        .order_by_asc(follow::Column::Id)
        .limit(500)
        .all(db)
        .await?;
    with_actors(db, rows, |f| f.follower_id).await
}

/// Accepted members with their actors, newest first (moderators' view).
pub async fn members(
    db: &impl ConnectionTrait,
    group_id: i64,
    limit: u64,
) -> Result<Vec<(follow::Model, actor::Model)>, DbErr> {
    let rows = follow::Entity::find()
        .filter(follow::Column::GroupId.eq(group_id))
        .filter(follow::Column::State.eq(FollowState::Accepted.as_str()))
        .order_by_desc(follow::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    with_actors(db, rows, |f| f.follower_id).await
}

async fn with_actors<T>(
    db: &impl ConnectionTrait,
    rows: Vec<T>,
    actor_of: impl Fn(&T) -> i64,
) -> Result<Vec<(T, actor::Model)>, DbErr> {
    let ids: Vec<i64> = rows.iter().map(&actor_of).collect();
    let actors = actor::Entity::find()
        .filter(actor::Column::Id.is_in(ids))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let a = actors.iter().find(|a| a.id == actor_of(&r))?.clone();
            Some((r, a))
        })
        .collect())
}

pub async fn set_note(
    db: &impl ConnectionTrait,
    follow_id: i64,
    note: Option<String>,
) -> Result<(), DbErr> {
    follow::Entity::update_many()
        .col_expr(follow::Column::Note, note.into())
        .filter(follow::Column::Id.eq(follow_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Accept a pending request; false when it was not pending (already decided).
pub async fn accept_pending(db: &impl ConnectionTrait, follow_id: i64) -> Result<bool, DbErr> {
    super::follows::changed();
    let n = follow::Entity::update_many()
        .col_expr(follow::Column::State, FollowState::Accepted.as_str().into())
        .filter(follow::Column::Id.eq(follow_id))
        .filter(follow::Column::State.eq(FollowState::Pending.as_str()))
        .exec(db)
        .await?
        .rows_affected;
    Ok(n == 1)
}

pub async fn is_banned(
    db: &impl ConnectionTrait,
    group_id: i64,
    actor_id: i64,
) -> Result<bool, DbErr> {
    Ok(group_ban::Entity::find()
        .filter(group_ban::Column::GroupId.eq(group_id))
        .filter(group_ban::Column::ActorId.eq(actor_id))
        .count(db)
        .await?
        > 0)
}

pub async fn ban(
    db: &impl ConnectionTrait,
    group_id: i64,
    actor_id: i64,
    reason: Option<&str>,
    by: &str,
) -> Result<(), DbErr> {
    super::follows::changed();
    group_ban::ActiveModel {
        group_id: Set(group_id),
        actor_id: Set(actor_id),
        reason: Set(reason.map(str::to_string)),
        created_by: Set(by.to_string()),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

pub async fn unban(db: &impl ConnectionTrait, group_id: i64, actor_id: i64) -> Result<u64, DbErr> {
    super::follows::changed();
    Ok(group_ban::Entity::delete_many()
        .filter(group_ban::Column::GroupId.eq(group_id))
        .filter(group_ban::Column::ActorId.eq(actor_id))
        .exec(db)
        .await?
        .rows_affected)
}

pub async fn bans(
    db: &impl ConnectionTrait,
    group_id: i64,
) -> Result<Vec<(group_ban::Model, actor::Model)>, DbErr> {
    let rows = group_ban::Entity::find()
        .filter(group_ban::Column::GroupId.eq(group_id))
        .order_by_desc(group_ban::Column::Id)
        .all(db)
        .await?;
    with_actors(db, rows, |b| b.actor_id).await
}

pub async fn insert_invite(
    db: &impl ConnectionTrait,
    group_id: i64,
    token_hash: Option<String>,
    actor_id: Option<i64>,
    by: &str,
) -> Result<group_invite::Model, DbErr> {
    group_invite::ActiveModel {
        group_id: Set(group_id),
        token_hash: Set(token_hash),
        actor_id: Set(actor_id),
        created_by: Set(by.to_string()),
        created_at: Set(Utc::now()),
        used_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
}

/// An unused invitation for this person, or with this link token.
pub async fn live_invite(
    db: &impl ConnectionTrait,
    group_id: i64,
    actor_id: i64,
    token_hash: Option<&str>,
) -> Result<Option<group_invite::Model>, DbErr> {
    let mut q = group_invite::Entity::find()
        .filter(group_invite::Column::GroupId.eq(group_id))
        .filter(group_invite::Column::UsedAt.is_null());
    q = match token_hash {
        Some(h) => q.filter(group_invite::Column::TokenHash.eq(h)),
        None => q.filter(group_invite::Column::ActorId.eq(actor_id)),
    };
    q.one(db).await
}

/// Mark an invitation used; false when someone used it first.
pub async fn use_invite(db: &impl ConnectionTrait, id: i64) -> Result<bool, DbErr> {
    Ok(group_invite::Entity::update_many()
        .col_expr(group_invite::Column::UsedAt, Expr::value(Utc::now()))
        .filter(group_invite::Column::Id.eq(id))
        .filter(group_invite::Column::UsedAt.is_null())
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

pub async fn set_locked(
    db: &impl ConnectionTrait,
    post_id: i64,
    at: Option<DateTime<Utc>>,
) -> Result<(), DbErr> {
    super::posts::changed();
    post::Entity::update_many()
        .col_expr(post::Column::LockedAt, at.into())
        .filter(post::Column::Id.eq(post_id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn set_held(
    db: &impl ConnectionTrait,
    post_id: i64,
    at: Option<DateTime<Utc>>,
) -> Result<(), DbErr> {
    super::posts::changed();
    post::Entity::update_many()
        .col_expr(post::Column::HeldAt, at.into())
        .filter(post::Column::Id.eq(post_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Posts held for review in a group, oldest first.
pub async fn held_posts(
    db: &impl ConnectionTrait,
    group_id: i64,
) -> Result<Vec<(post::Model, actor::Model)>, DbErr> {
    let rows = post::Entity::find()
        .filter(post::Column::GroupId.eq(group_id))
        .filter(post::Column::HeldAt.is_not_null())
        .filter(post::Column::DeletedAt.is_null())
        .order_by_asc(post::Column::Id)
        .limit(200)
        .all(db)
        .await?;
    with_actors(db, rows, |p| p.author_id).await
}

/// How many of the author's posts in the group are live and not held: a
/// pre-moderated group holds posts until one has been approved.
pub async fn approved_posts_by(
    db: &impl ConnectionTrait,
    group_id: i64,
    author_id: i64,
) -> Result<u64, DbErr> {
    post::Entity::find()
        .filter(post::Column::GroupId.eq(group_id))
        .filter(post::Column::AuthorId.eq(author_id))
        .filter(post::Column::HeldAt.is_null())
        .filter(post::Column::DeletedAt.is_null())
        .count(db)
        .await
}

pub async fn log(
    db: &impl ConnectionTrait,
    group_id: i64,
    who: &str,
    action: &str,
    target: &str,
    reason: Option<&str>,
) -> Result<(), DbErr> {
    audit_entry::ActiveModel {
        at: Set(Utc::now()),
        who: Set(who.to_string()),
        action: Set(action.to_string()),
        target: Set(target.to_string()),
        reason: Set(reason.map(str::to_string)),
        group_id: Set(Some(group_id)),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// A group's moderation log, newest first.
pub async fn log_of(
    db: &impl ConnectionTrait,
    group_id: i64,
    limit: u64,
) -> Result<Vec<audit_entry::Model>, DbErr> {
    audit_entry::Entity::find()
        .filter(audit_entry::Column::GroupId.eq(group_id))
        .order_by_desc(audit_entry::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

pub struct NewReport {
    pub group_id: Option<i64>,
    pub reporter_id: i64,
    pub target_actor_id: Option<i64>,
    pub post_id: Option<i64>,
    pub comment: Option<String>,
    pub flag_ap_id: Option<String>,
}

pub async fn insert_report(
    db: &impl ConnectionTrait,
    r: NewReport,
) -> Result<report::Model, DbErr> {
    report::ActiveModel {
        group_id: Set(r.group_id),
        reporter_id: Set(r.reporter_id),
        target_actor_id: Set(r.target_actor_id),
        post_id: Set(r.post_id),
        comment: Set(r.comment),
        flag_ap_id: Set(r.flag_ap_id),
        status: Set(ReportStatus::Open.as_str().to_string()),
        resolved_by: Set(None),
        resolved_at: Set(None),
        resolution: Set(None),
        forwarded_at: Set(None),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await
}

pub async fn report_by_id(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<report::Model>, DbErr> {
    report::Entity::find_by_id(id).one(db).await
}

/// Reports for these groups (and, with `instance`, those about no group),
/// open first, newest first.
pub async fn reports(
    db: &impl ConnectionTrait,
    group_ids: Vec<i64>,
    instance: bool,
    limit: u64,
) -> Result<Vec<report::Model>, DbErr> {
    let mut cond = sea_orm::Condition::any().add(report::Column::GroupId.is_in(group_ids));
    if instance {
        cond = cond.add(report::Column::GroupId.is_null());
    }
    report::Entity::find()
        .filter(cond)
        .order_by_asc(report::Column::Status.ne(ReportStatus::Open.as_str()))
        .order_by_desc(report::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Close an open report; false when it was already closed.
pub async fn close_report(
    db: &impl ConnectionTrait,
    id: i64,
    status: ReportStatus,
    by: &str,
    resolution: Option<&str>,
) -> Result<bool, DbErr> {
    Ok(report::Entity::update_many()
        .col_expr(report::Column::Status, status.as_str().into())
        .col_expr(report::Column::ResolvedBy, Expr::value(by.to_string()))
        .col_expr(report::Column::ResolvedAt, Expr::value(Utc::now()))
        .col_expr(
            report::Column::Resolution,
            resolution.map(str::to_string).into(),
        )
        .filter(report::Column::Id.eq(id))
        .filter(report::Column::Status.eq(ReportStatus::Open.as_str()))
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

pub async fn mark_forwarded(db: &impl ConnectionTrait, id: i64) -> Result<(), DbErr> {
    report::Entity::update_many()
        .col_expr(report::Column::ForwardedAt, Expr::value(Utc::now()))
        .filter(report::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
