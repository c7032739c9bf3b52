//! The instance's own settings: one row (id 1), made on first read.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, Set, sea_query::OnConflict,
};

use super::entities::{instance_setting, user};

const ROW: i64 = 1;

/// The settings row; on first use it is made with `name` and the default
/// registration mode, and counts as set up if an admin already exists (one
/// made with the CLI, or an instance older than the web app).
pub async fn get(
    db: &impl ConnectionTrait,
    default_name: &str,
    default_mode: &str,
) -> Result<instance_setting::Model, DbErr> {
    if let Some(row) = instance_setting::Entity::find_by_id(ROW).one(db).await? {
        return Ok(row);
    }
    let has_admin = user::Entity::find()
        .filter(user::Column::IsAdmin.eq(true))
        .count(db)
        .await?
        > 0;
    let row = instance_setting::ActiveModel {
        id: Set(ROW),
        name: Set(default_name.to_string()),
        description: Set(String::new()),
        registration_mode: Set(default_mode.to_string()),
        setup_done: Set(has_admin),
        updated_at: Set(Utc::now()),
    };
    // Two first requests at once: one insert wins, both read the same row.
    instance_setting::Entity::insert(row)
        .on_conflict(
            OnConflict::column(instance_setting::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    instance_setting::Entity::find_by_id(ROW)
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("instance settings".into()))
}

pub async fn update(
    db: &impl ConnectionTrait,
    name: &str,
    description: &str,
    mode: &str,
) -> Result<(), DbErr> {
    instance_setting::ActiveModel {
        id: Set(ROW),
        name: Set(name.to_string()),
        description: Set(description.to_string()),
        registration_mode: Set(mode.to_string()),
        updated_at: Set(Utc::now()),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(())
}

/// Take the one-time "create the first admin" step: true for exactly one
/// caller, however many race (a conditional update, not a read-then-write).
pub async fn claim_setup(db: &impl ConnectionTrait) -> Result<bool, DbErr> {
    let res = instance_setting::Entity::update_many()
        .col_expr(instance_setting::Column::SetupDone, true.into())
        .filter(instance_setting::Column::Id.eq(ROW))
        .filter(instance_setting::Column::SetupDone.eq(false))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Give the step back (the admin account could not be made after all).
pub async fn release_setup(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    instance_setting::Entity::update_many()
        .col_expr(instance_setting::Column::SetupDone, false.into())
        .filter(instance_setting::Column::Id.eq(ROW))
        .exec(db)
        .await?;
    Ok(())
}

/// Mark set up (an admin was made another way, e.g. the CLI).
pub async fn mark_setup_done(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    instance_setting::Entity::update_many()
        .col_expr(instance_setting::Column::SetupDone, true.into())
        .filter(instance_setting::Column::Id.eq(ROW))
        .exec(db)
        .await?;
    Ok(())
}
