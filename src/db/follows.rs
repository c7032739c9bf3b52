//! Queries on `follows`: who is a member of which group.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect, Set, Statement,
};

use super::entities::{actor, follow};
use crate::domain::FollowState;

/// Counts the writes made by this process that change who a group's
/// members are or where they receive (`follows`, bans, remote actors'
/// inboxes): a group's member inboxes kept in memory (`federation::docs`)
/// are used only while this has not moved.
static CHANGES: AtomicU64 = AtomicU64::new(0);

/// How many such writes this process has made.
pub fn changes() -> u64 {
    CHANGES.load(Ordering::Acquire)
}

/// Called before every write that may change a group's member inboxes.
pub(crate) fn changed() {
    CHANGES.fetch_add(1, Ordering::AcqRel);
}

pub async fn get(
    db: &impl ConnectionTrait,
    follower_id: i64,
    group_id: i64,
) -> Result<Option<follow::Model>, DbErr> {
    follow::Entity::find()
        .filter(follow::Column::FollowerId.eq(follower_id))
        .filter(follow::Column::GroupId.eq(group_id))
        .one(db)
        .await
}

/// Where an actor stands with a group: its follow's state, and whether it
/// is banned from the group. One statement (the inbox asks both of every
/// received post).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub membership: Option<FollowState>,
    pub banned: bool,
}

pub async fn standing(
    db: &impl ConnectionTrait,
    actor_id: i64,
    group_id: i64,
) -> Result<Standing, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT (SELECT state FROM follows WHERE follower_id = $1 AND group_id = $2 LIMIT 1) \
             AS state, EXISTS (SELECT 1 FROM group_bans WHERE actor_id = $1 AND group_id = $2) \
             AS banned"
        }
        _ => {
            "SELECT (SELECT state FROM follows WHERE follower_id = ?1 AND group_id = ?2 LIMIT 1) \
             AS state, EXISTS (SELECT 1 FROM group_bans WHERE actor_id = ?1 AND group_id = ?2) \
             AS banned"
        }
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [actor_id.into(), group_id.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("standing".into()))?;
    let state: Option<String> = row.try_get("", "state")?;
    Ok(Standing {
        membership: state.as_deref().and_then(FollowState::parse),
        banned: row.try_get("", "banned")?,
    })
}

pub async fn state(
    db: &impl ConnectionTrait,
    follower_id: i64,
    group_id: i64,
) -> Result<Option<FollowState>, DbErr> {
    Ok(get(db, follower_id, group_id)
        .await?
        .and_then(|f| FollowState::parse(&f.state)))
}

/// Create or replace the follow of (follower, group).
pub async fn upsert(
    db: &impl ConnectionTrait,
    follower_id: i64,
    group_id: i64,
    state: FollowState,
    follow_ap_id: Option<String>,
) -> Result<follow::Model, DbErr> {
    changed();
    if let Some(existing) = get(db, follower_id, group_id).await? {
        let mut m: follow::ActiveModel = existing.into();
        m.state = Set(state.as_str().to_string());
        if follow_ap_id.is_some() {
            m.follow_ap_id = Set(follow_ap_id);
        }
        return m.update(db).await;
    }
    follow::ActiveModel {
        follower_id: Set(follower_id),
        group_id: Set(group_id),
        state: Set(state.as_str().to_string()),
        follow_ap_id: Set(follow_ap_id),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await
}

pub async fn set_state(
    db: &impl ConnectionTrait,
    id: i64,
    state: FollowState,
) -> Result<(), DbErr> {
    changed();
    follow::Entity::update_many()
        .col_expr(follow::Column::State, state.as_str().into())
        .filter(follow::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn delete(
    db: &impl ConnectionTrait,
    follower_id: i64,
    group_id: i64,
) -> Result<u64, DbErr> {
    changed();
    Ok(follow::Entity::delete_many()
        .filter(follow::Column::FollowerId.eq(follower_id))
        .filter(follow::Column::GroupId.eq(group_id))
        .exec(db)
        .await?
        .rows_affected)
}

pub async fn count_members(db: &impl ConnectionTrait, group_id: i64) -> Result<u64, DbErr> {
    follow::Entity::find()
        .filter(follow::Column::GroupId.eq(group_id))
        .filter(follow::Column::State.eq(FollowState::Accepted.as_str()))
        .count(db)
        .await
}

/// Distinct inboxes (shared where there is one) of a group's accepted remote
/// members: one delivery per server, not per member.
pub async fn remote_member_inboxes(
    db: &impl ConnectionTrait,
    group_id: i64,
) -> Result<Vec<String>, DbErr> {
    let rows: Vec<(String, Option<String>)> = follow::Entity::find()
        .select_only()
        .column(actor::Column::Inbox)
        .column(actor::Column::SharedInbox)
        .join(
            sea_orm::JoinType::InnerJoin,
            follow::Entity::belongs_to(actor::Entity)
                .from(follow::Column::FollowerId)
                .to(actor::Column::Id)
                .into(),
        )
        .filter(follow::Column::GroupId.eq(group_id))
        .filter(follow::Column::State.eq(FollowState::Accepted.as_str()))
        .filter(actor::Column::Local.eq(false))
        .into_tuple()
        .all(db)
        .await?;
    let mut inboxes: Vec<String> = rows
        .into_iter()
        .map(|(inbox, shared)| shared.unwrap_or(inbox))
        .collect();
    inboxes.sort();
    inboxes.dedup();
    Ok(inboxes)
}

/// Distinct personal inboxes of a group's accepted remote members (never a
/// shared inbox): what a members-only group delivers to.
pub async fn remote_member_personal_inboxes(
    db: &impl ConnectionTrait,
    group_id: i64,
) -> Result<Vec<String>, DbErr> {
    let mut inboxes: Vec<String> = follow::Entity::find()
        .select_only()
        .column(actor::Column::Inbox)
        .join(
            sea_orm::JoinType::InnerJoin,
            follow::Entity::belongs_to(actor::Entity)
                .from(follow::Column::FollowerId)
                .to(actor::Column::Id)
                .into(),
        )
        .filter(follow::Column::GroupId.eq(group_id))
        .filter(follow::Column::State.eq(FollowState::Accepted.as_str()))
        .filter(actor::Column::Local.eq(false))
        .into_tuple()
        .all(db)
        .await?;
    inboxes.sort();
    inboxes.dedup();
    Ok(inboxes)
}

/// Does any local actor have an accepted follow of this (remote) group?
pub async fn group_has_local_member(
    db: &impl ConnectionTrait,
    group_id: i64,
) -> Result<bool, DbErr> {
    let n = follow::Entity::find()
        .join(
            sea_orm::JoinType::InnerJoin,
            follow::Entity::belongs_to(actor::Entity)
                .from(follow::Column::FollowerId)
                .to(actor::Column::Id)
                .into(),
        )
        .filter(follow::Column::GroupId.eq(group_id))
        .filter(follow::Column::State.eq(FollowState::Accepted.as_str()))
        .filter(actor::Column::Local.eq(true))
        .count(db)
        .await?;
    Ok(n > 0)
}

/// Every membership of an actor, pending or accepted.
pub async fn groups_of(
    db: &impl ConnectionTrait,
    follower_id: i64,
) -> Result<Vec<follow::Model>, DbErr> {
    follow::Entity::find()
        .filter(follow::Column::FollowerId.eq(follower_id))
        .all(db)
        .await
}

pub async fn by_follow_ap_id(
    db: &impl ConnectionTrait,
    follow_ap_id: &str,
) -> Result<Option<follow::Model>, DbErr> {
    follow::Entity::find()
        .filter(follow::Column::FollowApId.eq(follow_ap_id))
        .one(db)
        .await
}

/// End every membership of these people (an admin purged their domain).
pub async fn remove_followers(
    db: &impl ConnectionTrait,
    follower_ids: &[i64],
) -> Result<u64, DbErr> {
    if follower_ids.is_empty() {
        return Ok(0);
    }
    changed();
    Ok(follow::Entity::delete_many()
        .filter(follow::Column::FollowerId.is_in(follower_ids.to_vec()))
        .exec(db)
        .await?
        .rows_affected)
}

/// Accepted memberships of remote people, counted by their host.
pub async fn members_by_domain(db: &impl ConnectionTrait) -> Result<Vec<(String, u64)>, DbErr> {
    let followers: Vec<i64> = follow::Entity::find()
        .select_only()
        .column(follow::Column::FollowerId)
        .filter(follow::Column::State.eq(FollowState::Accepted.as_str()))
        .into_tuple()
        .all(db)
        .await?;
    let mut ids = followers.clone();
    ids.sort_unstable();
    ids.dedup();
    let mut domain_of = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(i64, String)> = actor::Entity::find()
            .select_only()
            .column(actor::Column::Id)
            .column(actor::Column::Domain)
            .filter(actor::Column::Id.is_in(chunk.to_vec()))
            .filter(actor::Column::Local.eq(false))
            .into_tuple()
            .all(db)
            .await?;
        domain_of.extend(rows);
    }
    let mut counts: std::collections::HashMap<String, u64> = Default::default();
    for f in followers {
        if let Some(d) = domain_of.get(&f) {
            *counts.entry(d.clone()).or_default() += 1;
        }
    }
    Ok(counts.into_iter().collect())
}
