//! Queries on `group_roles`: who owns and moderates a local group.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};

use super::entities::{actor, group_role};
use crate::domain::GroupRole;

/// Give `actor_id` a role in the group (replacing any role it had).
pub async fn set(
    db: &impl ConnectionTrait,
    group_id: i64,
    actor_id: i64,
    role: GroupRole,
) -> Result<(), DbErr> {
    remove(db, group_id, actor_id).await?;
    group_role::ActiveModel {
        group_id: Set(group_id),
        actor_id: Set(actor_id),
        role: Set(role.as_str().to_string()),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

pub async fn remove(db: &impl ConnectionTrait, group_id: i64, actor_id: i64) -> Result<u64, DbErr> {
    Ok(group_role::Entity::delete_many()
        .filter(group_role::Column::GroupId.eq(group_id))
        .filter(group_role::Column::ActorId.eq(actor_id))
        .exec(db)
        .await?
        .rows_affected)
}

pub async fn role_of(
    db: &impl ConnectionTrait,
    group_id: i64,
    actor_id: i64,
) -> Result<Option<GroupRole>, DbErr> {
    Ok(group_role::Entity::find()
        .filter(group_role::Column::GroupId.eq(group_id))
        .filter(group_role::Column::ActorId.eq(actor_id))
        .one(db)
        .await?
        .and_then(|r| GroupRole::parse(&r.role)))
}

/// The group's owner and moderators with their actors, owner first.
pub async fn staff(
    db: &impl ConnectionTrait,
    group_id: i64,
) -> Result<Vec<(GroupRole, actor::Model)>, DbErr> {
    let roles = group_role::Entity::find()
        .filter(group_role::Column::GroupId.eq(group_id))
        .order_by_asc(group_role::Column::Id)
        .all(db)
        .await?;
    let ids: Vec<i64> = roles.iter().map(|r| r.actor_id).collect();
    let actors = actor::Entity::find()
        .filter(actor::Column::Id.is_in(ids))
        .all(db)
        .await?;
    let mut out: Vec<(GroupRole, actor::Model)> = roles
        .iter()
        .filter_map(|r| {
            let a = actors.iter().find(|a| a.id == r.actor_id)?.clone();
            Some((GroupRole::parse(&r.role)?, a))
        })
        .collect();
    out.sort_by_key(|(r, _)| *r != GroupRole::Owner);
    Ok(out)
}

/// The groups in which this actor has a role.
pub async fn groups_of(db: &impl ConnectionTrait, actor_id: i64) -> Result<Vec<i64>, DbErr> {
    Ok(group_role::Entity::find()
        .filter(group_role::Column::ActorId.eq(actor_id))
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.group_id)
        .collect())
}

pub async fn remove_all_of(db: &impl ConnectionTrait, actor_id: i64) -> Result<u64, DbErr> {
    Ok(group_role::Entity::delete_many()
        .filter(group_role::Column::ActorId.eq(actor_id))
        .exec(db)
        .await?
        .rows_affected)
}
