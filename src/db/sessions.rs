//! Browser sessions and invitation links: both stored as SHA-256 hashes only.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};

use super::entities::{actor, invite, session, user};

pub async fn insert(
    db: &impl ConnectionTrait,
    user_id: i64,
    token_hash: String,
    expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    session::ActiveModel {
        token_hash: Set(token_hash),
        user_id: Set(user_id),
        created_at: Set(Utc::now()),
        expires_at: Set(expires_at),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The user and actor behind a live session.
pub async fn user_of(
    db: &impl ConnectionTrait,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<(user::Model, actor::Model)>, DbErr> {
    let Some(s) = session::Entity::find()
        .filter(session::Column::TokenHash.eq(token_hash))
        .filter(session::Column::ExpiresAt.gt(now))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let Some(u) = user::Entity::find_by_id(s.user_id).one(db).await? else {
        return Ok(None);
    };
    let a = super::actors::by_id(db, u.actor_id).await?;
    Ok(a.map(|a| (u, a)))
}

pub async fn delete(db: &impl ConnectionTrait, token_hash: &str) -> Result<(), DbErr> {
    session::Entity::delete_many()
        .filter(session::Column::TokenHash.eq(token_hash))
        .exec(db)
        .await?;
    Ok(())
}

/// Sign a user out everywhere except, optionally, one session.
pub async fn delete_all_of(
    db: &impl ConnectionTrait,
    user_id: i64,
    keep_hash: Option<&str>,
) -> Result<(), DbErr> {
    let mut q = session::Entity::delete_many().filter(session::Column::UserId.eq(user_id));
    if let Some(k) = keep_hash {
        q = q.filter(session::Column::TokenHash.ne(k));
    }
    q.exec(db).await?;
    Ok(())
}

pub async fn prune_expired(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(session::Entity::delete_many()
        .filter(session::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?
        .rows_affected)
}

pub async fn insert_invite(
    db: &impl ConnectionTrait,
    code_hash: String,
    created_by: i64,
    max_uses: i32,
    expires_at: DateTime<Utc>,
) -> Result<invite::Model, DbErr> {
    invite::ActiveModel {
        code_hash: Set(code_hash),
        created_by: Set(created_by),
        max_uses: Set(max_uses),
        uses: Set(0),
        created_at: Set(Utc::now()),
        expires_at: Set(expires_at),
        ..Default::default()
    }
    .insert(db)
    .await
}

/// A usable invite (not expired, uses left).
pub async fn live_invite(
    db: &impl ConnectionTrait,
    code_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<invite::Model>, DbErr> {
    Ok(invite::Entity::find()
        .filter(invite::Column::CodeHash.eq(code_hash))
        .filter(invite::Column::ExpiresAt.gt(now))
        .one(db)
        .await?
        .filter(|i| i.uses < i.max_uses))
}

/// Count one use, only if one is left: false when another sign-up took the
/// last use first.
pub async fn use_invite(db: &impl ConnectionTrait, id: i64) -> Result<bool, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    let res = invite::Entity::update_many()
        .col_expr(invite::Column::Uses, Expr::col(invite::Column::Uses).add(1))
        .filter(invite::Column::Id.eq(id))
        .filter(Expr::col(invite::Column::Uses).lt(Expr::col(invite::Column::MaxUses)))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

pub async fn list_invites(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<Vec<invite::Model>, DbErr> {
    invite::Entity::find()
        .filter(invite::Column::ExpiresAt.gt(now))
        .order_by_desc(invite::Column::Id)
        .all(db)
        .await
}

pub async fn delete_invite(db: &impl ConnectionTrait, id: i64) -> Result<u64, DbErr> {
    Ok(invite::Entity::delete_by_id(id)
        .exec(db)
        .await?
        .rows_affected)
}
