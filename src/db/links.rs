//! Links between our groups and related groups elsewhere.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};

use super::entities::{
    actor,
    group_link::{self, Column as L, Model},
};

pub const REQUESTED: &str = "requested";
pub const PENDING: &str = "pending";
pub const ACCEPTED: &str = "accepted";

pub async fn get(
    db: &impl ConnectionTrait,
    group_id: i64,
    peer_id: i64,
) -> Result<Option<Model>, DbErr> {
    group_link::Entity::find()
        .filter(L::GroupId.eq(group_id))
        .filter(L::PeerId.eq(peer_id))
        .one(db)
        .await
}

pub async fn by_id(db: &impl ConnectionTrait, id: i64) -> Result<Option<Model>, DbErr> {
    group_link::Entity::find_by_id(id).one(db).await
}

pub async fn insert(
    db: &impl ConnectionTrait,
    group_id: i64,
    peer_id: i64,
    state: &str,
    activity_ap_id: Option<String>,
    requested_by: &str,
    now: DateTime<Utc>,
) -> Result<Model, DbErr> {
    use sea_orm::ActiveModelTrait;
    group_link::ActiveModel {
        group_id: Set(group_id),
        peer_id: Set(peer_id),
        state: Set(state.to_string()),
        activity_ap_id: Set(activity_ap_id),
        requested_by: Set(requested_by.to_string()),
        created_at: Set(now),
        accepted_at: Set((state == ACCEPTED).then_some(now)),
        ..Default::default()
    }
    .insert(db)
    .await
}

pub async fn accept(db: &impl ConnectionTrait, id: i64, now: DateTime<Utc>) -> Result<(), DbErr> {
    group_link::Entity::update_many()
        .col_expr(L::State, ACCEPTED.into())
        .col_expr(L::AcceptedAt, Some(now).into())
        .filter(L::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn delete(db: &impl ConnectionTrait, id: i64) -> Result<(), DbErr> {
    group_link::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}

/// A group's links in every state, with the other group, oldest first.
pub async fn of_group(
    db: &impl ConnectionTrait,
    group_id: i64,
) -> Result<Vec<(Model, actor::Model)>, DbErr> {
    let links = group_link::Entity::find()
        .filter(L::GroupId.eq(group_id))
        .order_by_asc(L::Id)
        .all(db)
        .await?;
    let mut out = Vec::with_capacity(links.len());
    for l in links {
        if let Some(peer) = actor::Entity::find_by_id(l.peer_id).one(db).await? {
            out.push((l, peer));
        }
    }
    Ok(out)
}

/// Accepted links only.
pub async fn accepted_of(
    db: &impl ConnectionTrait,
    group_id: i64,
) -> Result<Vec<actor::Model>, DbErr> {
    Ok(of_group(db, group_id)
        .await?
        .into_iter()
        .filter(|(l, _)| l.state == ACCEPTED)
        .map(|(_, a)| a)
        .collect())
}
