//! Queries on `users` and `api_tokens`.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::entities::{actor, api_token, user};

pub struct NewUser {
    pub actor_id: i64,
    pub password_hash: String,
    pub is_admin: bool,
    pub status: crate::domain::UserStatus,
    pub application: Option<String>,
    pub email: Option<String>,
}

pub async fn insert(db: &impl ConnectionTrait, u: NewUser) -> Result<user::Model, DbErr> {
    user::ActiveModel {
        actor_id: Set(u.actor_id),
        password_hash: Set(u.password_hash),
        is_admin: Set(u.is_admin),
        status: Set(u.status.as_str().to_string()),
        application: Set(u.application),
        email: Set(u.email),
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

pub async fn by_actor_id(
    db: &impl ConnectionTrait,
    actor_id: i64,
) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find()
        .filter(user::Column::ActorId.eq(actor_id))
        .one(db)
        .await
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

/// Local users with their actors, newest first; only `status` if given.
pub async fn list(
    db: &impl ConnectionTrait,
    status: Option<crate::domain::UserStatus>,
    limit: u64,
) -> Result<Vec<(user::Model, actor::Model)>, DbErr> {
    let mut q = user::Entity::find();
    if let Some(s) = status {
        q = q.filter(user::Column::Status.eq(s.as_str()));
    }
    let users = q
        .order_by_desc(user::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    let ids: Vec<i64> = users.iter().map(|u| u.actor_id).collect();
    let actors = actor::Entity::find()
        .filter(actor::Column::Id.is_in(ids))
        .all(db)
        .await?;
    Ok(users
        .into_iter()
        .filter_map(|u| {
            let a = actors.iter().find(|a| a.id == u.actor_id)?.clone();
            Some((u, a))
        })
        .collect())
}

pub async fn by_id(db: &impl ConnectionTrait, id: i64) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find_by_id(id).one(db).await
}

/// Move a user from one status to another; false if it was not in `from`.
pub async fn set_status(
    db: &impl ConnectionTrait,
    id: i64,
    from: crate::domain::UserStatus,
    to: crate::domain::UserStatus,
) -> Result<bool, DbErr> {
    let res = user::Entity::update_many()
        .col_expr(user::Column::Status, to.as_str().into())
        .filter(user::Column::Id.eq(id))
        .filter(user::Column::Status.eq(from.as_str()))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

pub async fn set_admin(db: &impl ConnectionTrait, id: i64, admin: bool) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::IsAdmin, admin.into())
        .filter(user::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn set_password_hash(
    db: &impl ConnectionTrait,
    id: i64,
    hash: String,
) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, hash.into())
        .filter(user::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn count_admins(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    user::Entity::find()
        .filter(user::Column::IsAdmin.eq(true))
        .filter(user::Column::Status.eq(crate::domain::UserStatus::Active.as_str()))
        .count(db)
        .await
}

/// Remove an account (its tokens and sessions go with it).
pub async fn delete(db: &impl ConnectionTrait, id: i64) -> Result<(), DbErr> {
    api_token::Entity::delete_many()
        .filter(api_token::Column::UserId.eq(id))
        .exec(db)
        .await?;
    user::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}
