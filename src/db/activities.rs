//! Queries on `received_activities`: inbox idempotency.

use chrono::Utc;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set, sea_query::OnConflict};

use super::entities::received_activity;

/// Record an activity id. Returns false when it was already recorded: the
/// caller then changes nothing. Call inside the transaction of the effects.
pub async fn record(
    db: &impl ConnectionTrait,
    ap_id: &str,
    kind: &str,
    actor_ap_id: &str,
) -> Result<bool, DbErr> {
    let res = received_activity::Entity::insert(received_activity::ActiveModel {
        ap_id: Set(ap_id.to_string()),
        kind: Set(kind.to_string()),
        actor_ap_id: Set(actor_ap_id.to_string()),
        received_at: Set(Utc::now()),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(received_activity::Column::ApId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(res == 1)
}

/// Record a received activity that brings the post `post_ap_id`. True when
/// the post is new to us; false when the activity was recorded before, or
/// the post is here already, or its author deleted it before it reached us
/// (a tombstone). One statement (`record` and both checks): call inside the
/// transaction that stores the post.
pub async fn record_new_post(
    db: &impl ConnectionTrait,
    ap_id: &str,
    kind: &str,
    actor_ap_id: &str,
    post_ap_id: &str,
) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => {
            "INSERT INTO received_activities (ap_id, kind, actor_ap_id, received_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (ap_id) DO NOTHING \
             RETURNING (EXISTS (SELECT 1 FROM posts WHERE ap_id = $5) \
             OR EXISTS (SELECT 1 FROM received_activities WHERE ap_id = $5 AND kind = $6)) AS known"
        }
        _ => {
            "INSERT INTO received_activities (ap_id, kind, actor_ap_id, received_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (ap_id) DO NOTHING \
             RETURNING (EXISTS (SELECT 1 FROM posts WHERE ap_id = ?5) \
             OR EXISTS (SELECT 1 FROM received_activities WHERE ap_id = ?5 AND kind = ?6)) AS known"
        }
    };
    let row = db
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            sql,
            [
                ap_id.into(),
                kind.into(),
                actor_ap_id.into(),
                Utc::now().into(),
                post_ap_id.into(),
                TOMBSTONE.into(),
            ],
        ))
        .await?;
    match row {
        // Recorded before: a repeat.
        None => Ok(false),
        Some(r) => Ok(!r.try_get::<bool>("", "known")?),
    }
}

pub async fn exists(db: &impl ConnectionTrait, ap_id: &str) -> Result<bool, DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};
    // One row's id, not a COUNT over a subquery (sea-orm's `count`).
    Ok(received_activity::Entity::find()
        .select_only()
        .column(received_activity::Column::Id)
        .filter(received_activity::Column::ApId.eq(ap_id))
        .into_tuple::<i64>()
        .one(db)
        .await?
        .is_some())
}

/// Kind of the row that marks an object id as deleted before we ever stored it
/// (a Delete that overtook its Create).
pub const TOMBSTONE: &str = "Tombstone";

/// Was this object deleted by its author before we had it?
pub async fn is_tombstoned(db: &impl ConnectionTrait, object_id: &str) -> Result<bool, DbErr> {
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
    Ok(received_activity::Entity::find()
        .filter(received_activity::Column::ApId.eq(object_id))
        .filter(received_activity::Column::Kind.eq(TOMBSTONE))
        .count(db)
        .await?
        > 0)
}
