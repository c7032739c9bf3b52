//! Queries on `deliveries`: enqueue, claim due rows, record outcomes.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, Statement,
};

use super::entities::{
    delivery::{Column, Entity, Model},
    delivery_body,
};
use crate::domain::DeliveryStatus;

/// A claimed delivery and the body it sends: a row, or one inbox of a
/// fan-out (`row.id` 0, `row.fanout_id` set, `position` its place in the
/// fan-out's list).
pub struct Claimed {
    pub row: Model,
    /// Shared by every delivery of the same activity in the batch.
    pub payload: axum::body::Bytes,
    pub position: i32,
}

/// From this many inboxes on, an activity is queued as one fan-out row
/// (`db::fanouts`) instead of a row per inbox.
pub const FANOUT_FROM: usize = 2;

/// What the policy screen needs of a queued row.
pub struct Target {
    pub id: i64,
    pub actor_id: i64,
    pub inbox: String,
    pub payload: axum::body::Bytes,
}

/// Queue one activity for each inbox: its body once, and one fan-out row
/// for them all (two inboxes or more) or a row for the one. Call in the
/// transaction of the change.
pub async fn enqueue(
    db: &impl ConnectionTrait,
    activity_ap_id: &str,
    actor_id: i64,
    payload: &str,
    inboxes: &[String],
) -> Result<(), DbErr> {
    if inboxes.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let body_id = delivery_body::Entity::insert(delivery_body::ActiveModel {
        body: Set(payload.to_string()),
        created_at: Set(now),
        ..Default::default()
    })
    .exec(db)
    .await?
    .last_insert_id;
    if inboxes.len() >= FANOUT_FROM {
        return super::fanouts::insert(db, activity_ap_id, actor_id, body_id, inboxes, now).await;
    }
    // One statement whatever the number of inboxes, with six values bound
    // (the inboxes as one JSON array): building and binding a row of eleven
    // values per inbox was most of what queuing a group's Announce cost.
    let list = serde_json::to_string(inboxes).map_err(|e| DbErr::Custom(e.to_string()))?;
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO deliveries (activity_ap_id, actor_id, inbox, body_id, status, attempts, \
             next_attempt_at, created_at, updated_at) \
             SELECT $1, $2, i, $3, $4, 0, $5, $5, $5 FROM json_array_elements_text($6::json) AS t(i)"
        }
        _ => {
            "INSERT INTO deliveries (activity_ap_id, actor_id, inbox, body_id, status, attempts, \
             next_attempt_at, created_at, updated_at) \
             SELECT ?1, ?2, value, ?3, ?4, 0, ?5, ?5, ?5 FROM json_each(?6)"
        }
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [
            activity_ap_id.into(),
            actor_id.into(),
            body_id.into(),
            DeliveryStatus::Pending.as_str().into(),
            now.into(),
            list.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Claim up to `limit` due deliveries for `lease`: each row goes to exactly one
/// claimer (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: one writer at a time).
/// The attempt is counted at claim time, so a crash mid-send still counts.
pub async fn claim_due(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease: Duration,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let until = now + lease;
    let pending = DeliveryStatus::Pending.as_str();
    let backend = db.get_database_backend();
    let stmt = match backend {
        DbBackend::Postgres => Statement::from_sql_and_values(
            backend,
            "UPDATE deliveries SET locked_until = $1, attempts = attempts + 1, updated_at = $2 \
             WHERE id IN (SELECT id FROM deliveries WHERE status = $3 AND next_attempt_at <= $2 \
             AND (locked_until IS NULL OR locked_until < $2) ORDER BY next_attempt_at LIMIT $4 \
             FOR UPDATE SKIP LOCKED) RETURNING *",
            [
                until.into(),
                now.into(),
                pending.into(),
                (limit as i64).into(),
            ],
        ),
        _ => Statement::from_sql_and_values(
            backend,
            "UPDATE deliveries SET locked_until = ?, attempts = attempts + 1, updated_at = ? \
             WHERE id IN (SELECT id FROM deliveries WHERE status = ? AND next_attempt_at <= ? \
             AND (locked_until IS NULL OR locked_until < ?) ORDER BY next_attempt_at LIMIT ?) \
             RETURNING *",
            [
                until.into(),
                now.into(),
                pending.into(),
                now.into(),
                now.into(),
                (limit as i64).into(),
            ],
        ),
    };
    Entity::find().from_raw_sql(stmt).all(db).await
}

/// Mark these claimed rows delivered: one statement for a batch of answers.
pub async fn mark_delivered(db: &impl ConnectionTrait, ids: &[i64]) -> Result<(), DbErr> {
    let now = Utc::now();
    for chunk in ids.chunks(500) {
        Entity::update_many()
            .col_expr(Column::Status, DeliveryStatus::Delivered.as_str().into())
            .col_expr(Column::LockedUntil, Option::<DateTime<Utc>>::None.into())
            .col_expr(Column::LastError, Option::<String>::None.into())
            .col_expr(Column::UpdatedAt, now.into())
            .filter(Column::Id.is_in(chunk.to_vec()))
            .exec(db)
            .await?;
    }
    Ok(())
}

pub async fn mark_retry(
    db: &impl ConnectionTrait,
    id: i64,
    next: DateTime<Utc>,
    error: &str,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::NextAttemptAt, next.into())
        .col_expr(Column::LockedUntil, Option::<DateTime<Utc>>::None.into())
        .col_expr(Column::LastError, Some(error.to_string()).into())
        .col_expr(Column::UpdatedAt, Utc::now().into())
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn mark_failed(db: &impl ConnectionTrait, id: i64, error: &str) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Status, DeliveryStatus::Failed.as_str().into())
        .col_expr(Column::LockedUntil, Option::<DateTime<Utc>>::None.into())
        .col_expr(Column::LastError, Some(error.to_string()).into())
        .col_expr(Column::UpdatedAt, Utc::now().into())
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Cancel a queued delivery the federation policy refuses (kept, with why,
/// for the admin's view until pruned).
pub async fn mark_cancelled(
    db: &impl ConnectionTrait,
    ids: Vec<i64>,
    why: &str,
) -> Result<u64, DbErr> {
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(Entity::update_many()
        .col_expr(Column::Status, DeliveryStatus::Cancelled.as_str().into())
        .col_expr(Column::LockedUntil, Option::<DateTime<Utc>>::None.into())
        .col_expr(Column::LastError, Some(why.to_string()).into())
        .col_expr(Column::UpdatedAt, Utc::now().into())
        .filter(Column::Id.is_in(ids))
        .filter(Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .exec(db)
        .await?
        .rows_affected)
}

/// The bodies with these ids, each read once.
pub async fn bodies(
    db: &impl ConnectionTrait,
    mut ids: Vec<i64>,
) -> Result<HashMap<i64, String>, DbErr> {
    ids.sort_unstable();
    ids.dedup();
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let rows: Vec<(i64, String)> = delivery_body::Entity::find()
            .select_only()
            .column(delivery_body::Column::Id)
            .column(delivery_body::Column::Body)
            .filter(delivery_body::Column::Id.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        out.extend(rows);
    }
    Ok(out)
}

/// Claimed rows with their bodies. A row whose body is missing (never, as
/// both are written in one transaction) is failed with that reason.
pub async fn with_bodies(
    db: &impl ConnectionTrait,
    rows: Vec<Model>,
) -> Result<Vec<Claimed>, DbErr> {
    let found = bodies(db, rows.iter().map(|r| r.body_id).collect()).await?;
    let shared: HashMap<i64, axum::body::Bytes> = found
        .into_iter()
        .map(|(id, b)| (id, axum::body::Bytes::from(b)))
        .collect();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        match shared.get(&row.body_id) {
            Some(payload) => out.push(Claimed {
                payload: payload.clone(),
                row,
                position: 0,
            }),
            None => mark_failed(db, row.id, "the activity's body is missing").await?,
        }
    }
    Ok(out)
}

/// Queued rows (fan-outs spread into rows first), for re-checking them
/// against a changed policy.
pub async fn pending_targets(db: &impl ConnectionTrait) -> Result<Vec<Target>, DbErr> {
    super::fanouts::spread(db, super::fanouts::Scope::All).await?;
    let rows: Vec<(i64, i64, String, i64)> = Entity::find()
        .select_only()
        .column(Column::Id)
        .column(Column::ActorId)
        .column(Column::Inbox)
        .column(Column::BodyId)
        .filter(Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .into_tuple()
        .all(db)
        .await?;
    let found = bodies(db, rows.iter().map(|r| r.3).collect()).await?;
    let shared: HashMap<i64, axum::body::Bytes> = found
        .into_iter()
        .map(|(id, b)| (id, axum::body::Bytes::from(b)))
        .collect();
    Ok(rows
        .into_iter()
        .map(|(id, actor_id, inbox, body_id)| Target {
            id,
            actor_id,
            inbox,
            payload: shared.get(&body_id).cloned().unwrap_or_default(),
        })
        .collect())
}

/// Ids of the bodies (of rows in `statuses`) whose text contains `needle`
/// (a LIKE pattern, `\` escapes).
fn bodies_like(needle: String, statuses: &[&str]) -> sea_orm::sea_query::SelectStatement {
    use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, Query};
    Query::select()
        .column(delivery_body::Column::Id)
        .from(delivery_body::Entity)
        .and_where(Expr::col(delivery_body::Column::Body).like(LikeExpr::new(needle).escape('\\')))
        .and_where(
            Expr::col(delivery_body::Column::Id).in_subquery(
                Query::select()
                    .column(Column::BodyId)
                    .from(Entity)
                    .and_where(Expr::col(Column::Status).is_in(statuses.iter().copied()))
                    .to_owned(),
            ),
        )
        .to_owned()
}

/// Delivered and cancelled rows older than `age` are only history: drop
/// them, and the bodies no row names any more.
pub async fn prune_delivered(db: &impl ConnectionTrait, age: Duration) -> Result<u64, DbErr> {
    let n = Entity::delete_many()
        .filter(Column::Status.is_in([
            DeliveryStatus::Delivered.as_str(),
            DeliveryStatus::Cancelled.as_str(),
        ]))
        .filter(Column::UpdatedAt.lt(Utc::now() - age))
        .exec(db)
        .await?
        .rows_affected;
    let n = n + super::fanouts::prune(db, age).await?;
    prune_bodies(db).await?;
    Ok(n)
}

/// Drop the bodies no delivery or fan-out names (their rows pruned, or
/// deleted with their actor).
pub async fn prune_bodies(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    Ok(db
        .execute_unprepared(
            "DELETE FROM delivery_bodies WHERE NOT EXISTS \
             (SELECT 1 FROM deliveries d WHERE d.body_id = delivery_bodies.id) \
             AND NOT EXISTS (SELECT 1 FROM fanouts f WHERE f.body_id = delivery_bodies.id)",
        )
        .await?
        .rows_affected())
}

pub async fn count_by_status(
    db: &impl ConnectionTrait,
    status: DeliveryStatus,
) -> Result<u64, DbErr> {
    let rows = Entity::find()
        .filter(Column::Status.eq(status.as_str()))
        .count(db)
        .await?;
    Ok(rows + super::fanouts::count(db, status).await?)
}

/// Newest first, for admins: rows, and each inbox of a fan-out without one
/// (`fanouts::as_rows`, id 0).
pub async fn list(
    db: &impl ConnectionTrait,
    status: Option<DeliveryStatus>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut q = Entity::find();
    if let Some(s) = status {
        q = q.filter(Column::Status.eq(s.as_str()));
    }
    let mut rows = q.order_by_desc(Column::Id).limit(limit).all(db).await?;
    if status.is_none_or(|s| matches!(s, DeliveryStatus::Pending | DeliveryStatus::Delivered)) {
        let only_pending = status == Some(DeliveryStatus::Pending);
        rows.extend(
            // Each fan-out gives at least one row, as a rule: the newest
            // `limit` of them are enough.
            super::fanouts::as_rows(db, only_pending, Some(limit))
                .await?
                .into_iter()
                .filter(|r| status.is_none_or(|s| r.status == s.as_str())),
        );
        rows.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    Ok(rows)
}

/// Put a claimed row back without sending it (its instance's breaker is
/// open): due again at `until`, and the claim's attempt not counted.
pub async fn defer(db: &impl ConnectionTrait, id: i64, until: DateTime<Utc>) -> Result<(), DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    Entity::update_many()
        .col_expr(Column::NextAttemptAt, until.into())
        .col_expr(Column::LockedUntil, Option::<DateTime<Utc>>::None.into())
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).sub(1))
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Make every waiting delivery to `domain` (an inbox's `host[:port]`) due now:
/// the instance is back. Returns how many.
pub async fn pull_forward(
    db: &impl ConnectionTrait,
    domain: &str,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr};
    let escaped = super::escape_like(domain);
    let res = Entity::update_many()
        .col_expr(Column::NextAttemptAt, now.into())
        .filter(Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .filter(Column::NextAttemptAt.gt(now))
        .filter(
            Expr::col(Column::Inbox).like(LikeExpr::new(format!("%://{escaped}/%")).escape('\\')),
        )
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// (inbox, status) of every pending or failed delivery: admins' per-instance view.
pub async fn open_targets(db: &impl ConnectionTrait) -> Result<Vec<(String, String)>, DbErr> {
    let mut out: Vec<(String, String)> = super::fanouts::as_rows(db, true, None)
        .await?
        .into_iter()
        .filter(|r| r.status == DeliveryStatus::Pending.as_str())
        .map(|r| (r.inbox, r.status))
        .collect();
    let rows: Vec<(String, String)> = Entity::find()
        .select_only()
        .column(Column::Inbox)
        .column(Column::Status)
        .filter(Column::Status.is_in([
            DeliveryStatus::Pending.as_str(),
            DeliveryStatus::Failed.as_str(),
        ]))
        .into_tuple()
        .all(db)
        .await?;
    out.extend(rows);
    Ok(out)
}

/// Cancel queued deliveries whose activity carries `object_ap_id` as its
/// object (a deleted post's waiting Create, the group's Announce of it, an
/// Update); activities that only refer to it (someone's reply) still go.
pub async fn cancel_pending_carrying(
    db: &impl ConnectionTrait,
    object_ap_id: &str,
) -> Result<u64, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    let needle = format!("%{}%", super::escape_like(&format!("\"{object_ap_id}\"")));
    super::fanouts::spread(db, super::fanouts::Scope::Carrying(needle.clone())).await?;
    let pending = DeliveryStatus::Pending.as_str();
    let rows: Vec<(i64, String)> = delivery_body::Entity::find()
        .select_only()
        .column(delivery_body::Column::Id)
        .column(delivery_body::Column::Body)
        .filter(
            Expr::col(delivery_body::Column::Id)
                .in_subquery(bodies_like(needle.clone(), &[pending])),
        )
        .into_tuple()
        .all(db)
        .await?;
    let id_of = |v: &serde_json::Value| -> Option<String> {
        v.as_str()
            .map(str::to_string)
            .or_else(|| v.get("id")?.as_str().map(str::to_string))
    };
    let carries = |payload: &str| {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(payload) else {
            return false;
        };
        let Some(object) = v.get("object") else {
            return false;
        };
        id_of(object).as_deref() == Some(object_ap_id)
            || object.get("object").and_then(id_of).as_deref() == Some(object_ap_id)
    };
    let held: Vec<i64> = super::fanouts::held_like(db, needle)
        .await?
        .into_iter()
        .filter(|(_, p)| carries(p))
        .map(|(id, _)| id)
        .collect();
    super::fanouts::halt(db, super::fanouts::Held::Ids(held)).await?;
    let carrying: Vec<i64> = rows
        .into_iter()
        .filter(|(_, p)| carries(p))
        .map(|(id, _)| id)
        .collect();
    if carrying.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = Entity::find()
        .select_only()
        .column(Column::Id)
        .filter(Column::BodyId.is_in(carrying))
        .filter(Column::Status.eq(pending))
        .into_tuple()
        .all(db)
        .await?;
    mark_cancelled(
        db,
        ids,
        "cancelled: the post was deleted before it was sent",
    )
    .await
}

/// Every inbox that was sent (or is due) something by this actor, or
/// something naming it (a group passing on its posts): who must hear that
/// the account is gone.
pub async fn inboxes_reached(
    db: &impl ConnectionTrait,
    actor_id: i64,
    actor_ap_id: &str,
) -> Result<Vec<String>, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    let sent = [
        DeliveryStatus::Delivered.as_str(),
        DeliveryStatus::Pending.as_str(),
    ];
    let mut out: Vec<String> = Entity::find()
        .select_only()
        .column(Column::Inbox)
        .distinct()
        .filter(Column::ActorId.eq(actor_id))
        .filter(Column::Status.is_in(sent))
        .into_tuple()
        .all(db)
        .await?;
    let needle = format!("%{}%", super::escape_like(&format!("\"{actor_ap_id}\"")));
    let carried: Vec<String> = Entity::find()
        .select_only()
        .column(Column::Inbox)
        .distinct()
        .filter(Column::Status.is_in(sent))
        .filter(Expr::col(Column::BodyId).in_subquery(bodies_like(needle.clone(), &sent)))
        .into_tuple()
        .all(db)
        .await?;
    out.extend(carried);
    out.extend(super::fanouts::inboxes_reached(db, actor_id, needle).await?);
    out.sort();
    out.dedup();
    Ok(out)
}

/// Cancel what this actor still has queued (its account is being deleted).
pub async fn cancel_pending_of(db: &impl ConnectionTrait, actor_id: i64) -> Result<u64, DbErr> {
    super::fanouts::spread(db, super::fanouts::Scope::Actor(actor_id)).await?;
    super::fanouts::halt(db, super::fanouts::Held::Actor(actor_id)).await?;
    Ok(Entity::update_many()
        .col_expr(Column::Status, DeliveryStatus::Cancelled.as_str().into())
        .col_expr(Column::LockedUntil, Option::<DateTime<Utc>>::None.into())
        .col_expr(
            Column::LastError,
            Some("cancelled: the account was deleted".to_string()).into(),
        )
        .col_expr(Column::UpdatedAt, Utc::now().into())
        .filter(Column::ActorId.eq(actor_id))
        .filter(Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .exec(db)
        .await?
        .rows_affected)
}

/// How a claimed delivery that was not delivered is settled.
pub enum Settle<'a> {
    /// Try again at `next` (the claim's attempt counted).
    Retry { next: DateTime<Utc>, error: &'a str },
    /// Not to be tried again.
    Failed(&'a str),
    /// Refused by the federation policy, never sent.
    Cancelled(&'a str),
    /// Put back until then, unsent (the attempt not counted).
    Defer(DateTime<Utc>),
}

/// Settle a claimed delivery: a row is updated; a fan-out's inbox gets a
/// row of its own that says the same (see `fanouts`).
pub async fn settle(db: &impl ConnectionTrait, row: &Model, how: Settle<'_>) -> Result<(), DbErr> {
    if row.id != 0 || row.fanout_id.is_none() {
        return match how {
            Settle::Retry { next, error } => mark_retry(db, row.id, next, error).await,
            Settle::Failed(error) => mark_failed(db, row.id, error).await,
            Settle::Cancelled(why) => mark_cancelled(db, vec![row.id], why).await.map(|_| ()),
            Settle::Defer(until) => defer(db, row.id, until).await,
        };
    }
    use super::fanouts::OwnRow;
    let now = Utc::now();
    let own = match how {
        Settle::Retry { next, error } => OwnRow {
            status: DeliveryStatus::Pending,
            attempts: row.attempts,
            next_attempt_at: next,
            last_error: Some(error),
        },
        Settle::Failed(error) => OwnRow {
            status: DeliveryStatus::Failed,
            attempts: row.attempts,
            next_attempt_at: now,
            last_error: Some(error),
        },
        Settle::Cancelled(why) => OwnRow {
            status: DeliveryStatus::Cancelled,
            attempts: 0,
            next_attempt_at: now,
            last_error: Some(why),
        },
        Settle::Defer(until) => OwnRow {
            status: DeliveryStatus::Pending,
            attempts: row.attempts.saturating_sub(1),
            next_attempt_at: until,
            last_error: None,
        },
    };
    super::fanouts::own(db, row, std::slice::from_ref(&row.inbox), own).await
}
