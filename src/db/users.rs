//! Queries on `users` and `api_tokens`.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

use super::entities::{actor, api_token, user};

pub async fn insert(
    db: &impl ConnectionTrait,
    actor_id: i64,
    password_hash: String,
    is_admin: bool,
) -> Result<user::Model, DbErr> {
    user::ActiveModel {
        actor_id: Set(actor_id),
        password_hash: Set(password_hash),
        is_admin: Set(is_admin),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await
}

/// A local user and their actor, by username.
pub async fn by_username(
    db: &impl ConnectionTrait,
    username: &str,
) -> Result<Option<(user::Model, actor::Model)>, DbErr> {
    let Some(actor) =
        super::actors::local_by_name_and_kind(db, username, crate::domain::ActorKind::Person)
            .await?
    else {
        return Ok(None);
    };
    let user = user::Entity::find()
        .filter(user::Column::ActorId.eq(actor.id))
        .one(db)
        .await?;
    Ok(user.map(|u| (u, actor)))
}

pub async fn insert_token(
    db: &impl ConnectionTrait,
    user_id: i64,
    token_hash: String,
) -> Result<(), DbErr> {
    api_token::ActiveModel {
        token_hash: Set(token_hash),
        user_id: Set(user_id),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

pub async fn delete_token(db: &impl ConnectionTrait, token_hash: &str) -> Result<(), DbErr> {
    api_token::Entity::delete_many()
        .filter(api_token::Column::TokenHash.eq(token_hash))
        .exec(db)
        .await?;
    Ok(())
}

/// The user and actor behind a token hash.
pub async fn by_token(
    db: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<(user::Model, actor::Model)>, DbErr> {
    let Some(token) = api_token::Entity::find()
        .filter(api_token::Column::TokenHash.eq(token_hash))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let Some(user) = user::Entity::find_by_id(token.user_id).one(db).await? else {
        return Ok(None);
    };
    let actor = super::actors::by_id(db, user.actor_id).await?;
    Ok(actor.map(|a| (user, a)))
}
