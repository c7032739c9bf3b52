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
