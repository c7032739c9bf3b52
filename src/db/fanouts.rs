//! Queries on `fanouts`: an activity queued for many inboxes as one row and a
//! cursor (see `entities::fanout`). A worker claims the oldest unfinished one,
//! sends from its cursor on, and moves the cursor over what is settled, a
//! batch at a time. An inbox that cannot be settled by one quick answer gets
//! a `deliveries` row of its own (`fanout_id`), and from then on is an
//! ordinary queued delivery: retries, deferrals, cancellations and the
//! admin's views work on rows as before.
//!
//! The rare writes that must see every queued inbox (cancelling a deleted
//! post's deliveries, a changed federation policy) first `spread` the
//! unclaimed fan-outs into rows.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, Statement,
};

use super::entities::{
    delivery,
    fanout::{self, Column, Entity, Model},
};
use crate::domain::DeliveryStatus;

/// A claimed fan-out: its row, its body, and the inboxes still to send, each
/// with its place in the list.
pub struct Claimed {
    pub fanout: Model,
    pub payload: axum::body::Bytes,
    pub items: Vec<(i32, String)>,
    /// Places from the cursor on already settled by a row of their own (a
    /// worker that stopped after writing them, before moving the cursor).
    pub settled: Vec<i32>,
}

/// Queue one body for `inboxes` as one row. Call in the change's transaction.
pub async fn insert(
    db: &impl ConnectionTrait,
    activity_ap_id: &str,
    actor_id: i64,
    body_id: i64,
    inboxes: &[String],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let list = serde_json::to_string(inboxes).map_err(|e| DbErr::Custom(e.to_string()))?;
    Entity::insert(fanout::ActiveModel {
        activity_ap_id: Set(activity_ap_id.to_string()),
        actor_id: Set(actor_id),
        body_id: Set(body_id),
        inboxes: Set(list),
        targets: Set(i32::try_from(inboxes.len()).unwrap_or(i32::MAX)),
        next: Set(0),
        delivered: Set(0),
        claims: Set(0),
        halted: Set(false),
        locked_until: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Claim the oldest unfinished fan-out nobody holds, for `lease` (PostgreSQL:
/// FOR UPDATE SKIP LOCKED; SQLite: one writer at a time).
pub async fn claim(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<Option<Claimed>, DbErr> {
    let until = now + lease;
    let backend = db.get_database_backend();
    let stmt = match backend {
        DbBackend::Postgres => Statement::from_sql_and_values(
            backend,
            "UPDATE fanouts SET locked_until = $1, updated_at = $2, claims = claims + 1 \
             WHERE id = (SELECT id \
             FROM fanouts WHERE next < targets AND (locked_until IS NULL OR locked_until < $2) \
             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *",
            [until.into(), now.into()],
        ),
        _ => Statement::from_sql_and_values(
            backend,
            "UPDATE fanouts SET locked_until = ?, updated_at = ?, claims = claims + 1 \
             WHERE id = (SELECT id \
             FROM fanouts WHERE next < targets AND (locked_until IS NULL OR locked_until < ?) \
             ORDER BY id LIMIT 1) RETURNING *",
            [until.into(), now.into(), now.into()],
        ),
    };
    let Some(f) = Entity::find().from_raw_sql(stmt).one(db).await? else {
        return Ok(None);
    };
    let body: Option<String> = super::entities::delivery_body::Entity::find_by_id(f.body_id)
        .select_only()
        .column(super::entities::delivery_body::Column::Body)
        .into_tuple()
        .one(db)
        .await?;
    let Some(body) = body else {
        // Never (both are written in one transaction): nothing to send.
        advance(db, f.id, f.targets, 0).await?;
        return Ok(None);
    };
    // Only a fan-out claimed before can have rows of its own past its
    // cursor (its worker stopped before moving the cursor over them).
    let with_rows: HashSet<String> = if f.claims > 1 {
        own_rows(db, f.id).await?.into_iter().collect()
    } else {
        HashSet::new()
    };
    let list = inbox_list(&f);
    let mut items = Vec::with_capacity(list.len());
    let mut settled = vec![];
    for (i, inbox) in list.into_iter().enumerate().skip(cursor(&f)) {
        let at = i32::try_from(i).unwrap_or(i32::MAX);
        if with_rows.contains(&inbox) {
            settled.push(at);
        } else {
            items.push((at, inbox));
        }
    }
    if f.halted {
        // Its post or author was deleted while another worker held it.
        let inboxes: Vec<String> = items.into_iter().map(|(_, i)| i).collect();
        own(
            db,
            &template(&f),
            &inboxes,
            OwnRow {
                status: DeliveryStatus::Cancelled,
                attempts: 0,
                next_attempt_at: now,
                last_error: None,
            },
        )
        .await?;
        advance(db, f.id, f.targets, 0).await?;
        return Ok(None);
    }
    Ok(Some(Claimed {
        fanout: f,
        payload: axum::body::Bytes::from(body),
        items,
        settled,
    }))
}

fn cursor(f: &Model) -> usize {
    usize::try_from(f.next.max(0)).unwrap_or(0)
}

fn inbox_list(f: &Model) -> Vec<String> {
    serde_json::from_str(&f.inboxes).unwrap_or_default()
}

/// The inboxes of this fan-out that have rows of their own.
async fn own_rows(db: &impl ConnectionTrait, id: i64) -> Result<Vec<String>, DbErr> {
    delivery::Entity::find()
        .select_only()
        .column(delivery::Column::Inbox)
        .filter(delivery::Column::FanoutId.eq(id))
        .into_tuple()
        .all(db)
        .await
}

/// Move a fan-out's cursor to `next`, counting `delivered` more delivered;
/// a finished one is let go. True when it was halted meanwhile (its post
/// or author deleted): its worker cancels what it has not sent.
pub async fn advance(
    db: &impl ConnectionTrait,
    id: i64,
    next: i32,
    delivered: i32,
) -> Result<bool, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let update = Query::update()
        .table(Entity)
        .value(Column::Next, next)
        .value(
            Column::Delivered,
            Expr::col(Column::Delivered).add(delivered),
        )
        .value(Column::UpdatedAt, Utc::now())
        .value(
            Column::LockedUntil,
            Expr::case(
                Expr::col(Column::Targets).lte(next),
                Option::<DateTime<Utc>>::None,
            )
            .finally(Expr::col(Column::LockedUntil)),
        )
        .and_where(Expr::col(Column::Id).eq(id))
        .returning_col(Column::Halted)
        .to_owned();
    let row = db.query_one(&update).await?;
    Ok(match row {
        Some(r) => r.try_get::<bool>("", "halted")?,
        None => false,
    })
}

/// Hold these fan-outs until `until` (their worker is still sending).
pub async fn renew(
    db: &impl ConnectionTrait,
    ids: Vec<i64>,
    until: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::LockedUntil, Some(until).into())
        .filter(Column::Id.is_in(ids))
        .exec(db)
        .await?;
    Ok(())
}

/// Let go of a fan-out a stopping worker still held: another takes it at
/// once instead of after its lease.
pub async fn release(db: &impl ConnectionTrait, id: i64) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::LockedUntil, Option::<DateTime<Utc>>::None.into())
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// What a row of its own for one of a fan-out's inboxes says.
pub struct OwnRow<'a> {
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<&'a str>,
}

/// Give these inboxes of a fan-out (`from`: a row taken from it) rows of
/// their own.
pub async fn own(
    db: &impl ConnectionTrait,
    from: &delivery::Model,
    inboxes: &[String],
    row: OwnRow<'_>,
) -> Result<(), DbErr> {
    if inboxes.is_empty() {
        return Ok(());
    }
    let list = serde_json::to_string(inboxes).map_err(|e| DbErr::Custom(e.to_string()))?;
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO deliveries (activity_ap_id, actor_id, inbox, body_id, status, attempts, \
             next_attempt_at, last_error, created_at, updated_at, fanout_id) \
             SELECT $1, $2, i, $3, $4, $5, $6, $7, $8, $9, $10 \
             FROM json_array_elements_text($11::json) AS t(i)"
        }
        _ => {
            "INSERT INTO deliveries (activity_ap_id, actor_id, inbox, body_id, status, attempts, \
             next_attempt_at, last_error, created_at, updated_at, fanout_id) \
             SELECT ?1, ?2, value, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 FROM json_each(?11)"
        }
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [
            from.activity_ap_id.clone().into(),
            from.actor_id.into(),
            from.body_id.into(),
            row.status.as_str().into(),
            row.attempts.into(),
            row.next_attempt_at.into(),
            row.last_error.map(str::to_string).into(),
            from.created_at.into(),
            Utc::now().into(),
            from.fanout_id.into(),
            list.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Which fan-outs `spread` turns into rows.
pub enum Scope {
    All,
    /// Those this actor sends.
    Actor(i64),
    /// Those whose body matches this LIKE pattern (a backslash escapes).
    Carrying(String),
}

/// Turn every fan-out no worker holds (in `scope`) into rows, one per inbox not yet
/// settled, due now: for the writes that must see each queued inbox.
pub async fn spread(db: &impl ConnectionTrait, scope: Scope) -> Result<u64, DbErr> {
    let now = Utc::now();
    // Held for this, so no worker claims them meanwhile (outside a
    // transaction, a crash here leaves them to be claimed after that).
    let held: Vec<Model> = {
        let backend = db.get_database_backend();
        let until = now + Duration::minutes(10);
        let pg = backend == DbBackend::Postgres;
        let (only, value): (&str, Option<sea_orm::Value>) = match scope {
            Scope::All => ("", None),
            Scope::Actor(id) => (
                if pg {
                    " AND actor_id = $3"
                } else {
                    " AND actor_id = ?"
                },
                Some(id.into()),
            ),
            Scope::Carrying(needle) => (
                if pg {
                    " AND body_id IN (SELECT id FROM delivery_bodies WHERE body LIKE $3 ESCAPE '\\')"
                } else {
                    " AND body_id IN (SELECT id FROM delivery_bodies WHERE body LIKE ? ESCAPE '\\')"
                },
                Some(needle.into()),
            ),
        };
        let sql = if pg {
            format!(
                "UPDATE fanouts SET locked_until = $1 WHERE id IN (SELECT id FROM fanouts \
                 WHERE next < targets AND (locked_until IS NULL OR locked_until < $2){only} \
                 FOR UPDATE SKIP LOCKED) RETURNING *"
            )
        } else {
            format!(
                "UPDATE fanouts SET locked_until = ? WHERE next < targets \
                 AND (locked_until IS NULL OR locked_until < ?){only} RETURNING *"
            )
        };
        let mut values: Vec<sea_orm::Value> = vec![until.into(), now.into()];
        values.extend(value);
        let stmt = Statement::from_sql_and_values(backend, sql, values);
        Entity::find().from_raw_sql(stmt).all(db).await?
    };
    let mut n = 0;
    for f in held {
        let own_rows: HashSet<String> = own_rows(db, f.id).await?.into_iter().collect();
        let rest: Vec<String> = inbox_list(&f)
            .into_iter()
            .skip(cursor(&f))
            .filter(|i| !own_rows.contains(i))
            .collect();
        own(
            db,
            &template(&f),
            &rest,
            OwnRow {
                status: DeliveryStatus::Pending,
                attempts: 0,
                next_attempt_at: now,
                last_error: None,
            },
        )
        .await?;
        n += rest.len() as u64;
        advance(db, f.id, f.targets, 0).await?;
    }
    Ok(n)
}

/// Which held fan-outs `halt` marks.
pub enum Held {
    Ids(Vec<i64>),
    /// Those this actor sends.
    Actor(i64),
}

/// Mark fan-outs a worker holds now as halted (their post or author was
/// deleted): they cannot be turned into rows under a worker that may be
/// sending them, so the worker cancels what it has not sent when it sees
/// the mark (with its next batch of answers), and so does a worker that
/// claims one after its lease ran out. Call after `spread`, which finished
/// the fan-outs nobody held.
pub async fn halt(db: &impl ConnectionTrait, which: Held) -> Result<u64, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    let only = match which {
        Held::Ids(ids) if ids.is_empty() => return Ok(0),
        Held::Ids(ids) => Column::Id.is_in(ids),
        Held::Actor(id) => Column::ActorId.eq(id),
    };
    Ok(Entity::update_many()
        .col_expr(Column::Halted, true.into())
        .filter(Expr::col(Column::Next).lt(Expr::col(Column::Targets)))
        .filter(Column::LockedUntil.gte(Utc::now()))
        .filter(only)
        .exec(db)
        .await?
        .rows_affected)
}

/// The fan-outs a worker holds now whose body matches `needle` (LIKE, a
/// backslash escapes): their ids and bodies.
pub async fn held_like(
    db: &impl ConnectionTrait,
    needle: String,
) -> Result<Vec<(i64, String)>, DbErr> {
    let backend = db.get_database_backend();
    let sql = if backend == DbBackend::Postgres {
        "SELECT f.id, b.body FROM fanouts f JOIN delivery_bodies b ON b.id = f.body_id \
         WHERE f.next < f.targets AND f.locked_until >= $1 AND b.body LIKE $2 ESCAPE '\\'"
    } else {
        "SELECT f.id, b.body FROM fanouts f JOIN delivery_bodies b ON b.id = f.body_id \
         WHERE f.next < f.targets AND f.locked_until >= ? AND b.body LIKE ? ESCAPE '\\'"
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [Utc::now().into(), needle.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("", "id")?, r.try_get("", "body")?)))
        .collect()
}

/// A fan-out's inbox as a delivery row (not stored: id 0).
pub fn template(f: &Model) -> delivery::Model {
    delivery::Model {
        id: 0,
        activity_ap_id: f.activity_ap_id.clone(),
        actor_id: f.actor_id,
        inbox: String::new(),
        body_id: f.body_id,
        status: DeliveryStatus::Pending.as_str().to_string(),
        attempts: 0,
        next_attempt_at: f.created_at,
        locked_until: f.locked_until,
        last_error: None,
        created_at: f.created_at,
        updated_at: f.updated_at,
        fanout_id: Some(f.id),
    }
}

/// Each inbox of the fan-outs (the unfinished ones only, or all; the
/// newest `newest` of them, or all) without a row of its own, as a delivery
/// row (id 0): delivered before the cursor, pending from it on. For views:
/// the admin's list, tests.
pub async fn as_rows(
    db: &impl ConnectionTrait,
    unfinished_only: bool,
    newest: Option<u64>,
) -> Result<Vec<delivery::Model>, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    let mut q = Entity::find().order_by_desc(Column::Id);
    if unfinished_only {
        q = q.filter(Expr::col(Column::Next).lt(Expr::col(Column::Targets)));
    }
    if let Some(n) = newest {
        q = q.limit(n);
    }
    let fanouts = q.all(db).await?;
    if fanouts.is_empty() {
        return Ok(vec![]);
    }
    let ids: Vec<i64> = fanouts.iter().map(|f| f.id).collect();
    let mut own_rows: HashMap<i64, HashSet<String>> = HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(Option<i64>, String)> = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::FanoutId)
            .column(delivery::Column::Inbox)
            .filter(delivery::Column::FanoutId.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        for (f, inbox) in rows {
            if let Some(f) = f {
                own_rows.entry(f).or_default().insert(inbox);
            }
        }
    }
    let mut out = vec![];
    for f in &fanouts {
        let own_rows = own_rows.get(&f.id);
        for (i, inbox) in inbox_list(f).into_iter().enumerate() {
            if own_rows.is_some_and(|o| o.contains(&inbox)) {
                continue;
            }
            let (status, attempts) = if i < cursor(f) {
                (DeliveryStatus::Delivered, 1)
            } else {
                (DeliveryStatus::Pending, 0)
            };
            out.push(delivery::Model {
                inbox,
                status: status.as_str().to_string(),
                attempts,
                ..template(f)
            });
        }
    }
    Ok(out)
}

/// Inboxes the fan-outs hold for `status` (pending: from the cursor on;
/// delivered: counted as the cursor moved). Only these two.
pub async fn count(db: &impl ConnectionTrait, status: DeliveryStatus) -> Result<u64, DbErr> {
    let sql = match status {
        DeliveryStatus::Pending => {
            "SELECT CAST(COALESCE(SUM(targets - next), 0) AS BIGINT) AS n FROM fanouts WHERE next < targets"
        }
        DeliveryStatus::Delivered => {
            "SELECT CAST(COALESCE(SUM(delivered), 0) AS BIGINT) AS n FROM fanouts"
        }
        _ => return Ok(0),
    };
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?;
    Ok(row
        .and_then(|r| r.try_get::<i64>("", "n").ok())
        .map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

/// Finished fan-outs older than `age` are only history: drop them.
pub async fn prune(db: &impl ConnectionTrait, age: Duration) -> Result<u64, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    Ok(Entity::delete_many()
        .filter(Expr::col(Column::Next).gte(Expr::col(Column::Targets)))
        .filter(Column::UpdatedAt.lt(Utc::now() - age))
        .exec(db)
        .await?
        .rows_affected)
}

/// Every inbox of a fan-out by this actor, or of one whose body names it
/// (`needle`, a LIKE pattern): see `deliveries::inboxes_reached`.
pub async fn inboxes_reached(
    db: &impl ConnectionTrait,
    actor_id: i64,
    needle: String,
) -> Result<Vec<String>, DbErr> {
    use super::entities::delivery_body;
    use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, Query};
    let carrying = Query::select()
        .column(delivery_body::Column::Id)
        .from(delivery_body::Entity)
        .and_where(Expr::col(delivery_body::Column::Body).like(LikeExpr::new(needle).escape('\\')))
        .to_owned();
    let lists: Vec<String> = Entity::find()
        .select_only()
        .column(Column::Inboxes)
        .filter(
            sea_orm::Condition::any()
                .add(Column::ActorId.eq(actor_id))
                .add(Expr::col(Column::BodyId).in_subquery(carrying)),
        )
        .into_tuple()
        .all(db)
        .await?;
    Ok(lists
        .iter()
        .flat_map(|l| serde_json::from_str::<Vec<String>>(l).unwrap_or_default())
        .collect())
}
