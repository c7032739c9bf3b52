//! Queries on `instances`: the per-instance circuit breaker.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set, sea_query::OnConflict,
};

use super::entities::instance::{self, Column, Entity, Model};

/// The rows for these hosts (missing hosts have never failed).
pub async fn by_domains(
    db: &impl ConnectionTrait,
    domains: Vec<String>,
) -> Result<HashMap<String, Model>, DbErr> {
    if domains.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(Entity::find()
        .filter(Column::Domain.is_in(domains))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.domain.clone(), m))
        .collect())
}

async fn ensure(db: &impl ConnectionTrait, domain: &str, now: DateTime<Utc>) -> Result<(), DbErr> {
    Entity::insert(instance::ActiveModel {
        domain: Set(domain.to_string()),
        consecutive_failures: Set(0),
        created_at: Set(now),
        ..Default::default()
    })
    .on_conflict(OnConflict::column(Column::Domain).do_nothing().to_owned())
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// One more failure in a row; `open_until` as the caller computed it from the
/// new count (None: stays closed). Returns the new count.
pub async fn record_failure(
    db: &impl ConnectionTrait,
    domain: &str,
    now: DateTime<Utc>,
    open_for: impl FnOnce(i32) -> Option<chrono::Duration>,
) -> Result<i32, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    ensure(db, domain, now).await?;
    // Counted in SQL: concurrent failures of one batch all count.
    Entity::update_many()
        .col_expr(
            Column::ConsecutiveFailures,
            Expr::col(Column::ConsecutiveFailures).add(1),
        )
        .col_expr(Column::LastFailureAt, Some(now).into())
        .filter(Column::Domain.eq(domain))
        .exec(db)
        .await?;
    let failures = Entity::find()
        .filter(Column::Domain.eq(domain))
        .one(db)
        .await?
        .map_or(1, |r| r.consecutive_failures);
    if let Some(d) = open_for(failures) {
        // Only ever lengthened: when failures of one batch finish together,
        // an earlier count's shorter wait must not land after a later one's.
        let until = now + d;
        Entity::update_many()
            .col_expr(Column::OpenUntil, Some(until).into())
            .filter(Column::Domain.eq(domain))
            .filter(
                sea_orm::Condition::any()
                    .add(Column::OpenUntil.is_null())
                    .add(Column::OpenUntil.lt(until)),
            )
            .exec(db)
            .await?;
    }
    Ok(failures)
}

/// Of these hosts, the ones whose breaker counts failures: those an
/// answer now closes. A read, so the usual case (none) takes no write lock.
pub async fn failing_among(
    db: &impl ConnectionTrait,
    domains: &[String],
) -> Result<Vec<String>, DbErr> {
    use sea_orm::QuerySelect;
    let mut out = vec![];
    for chunk in domains.chunks(500) {
        let found: Vec<String> = Entity::find()
            .select_only()
            .column(Column::Domain)
            .filter(Column::Domain.is_in(chunk.to_vec()))
            .filter(Column::ConsecutiveFailures.gt(0))
            .into_tuple()
            .all(db)
            .await?;
        out.extend(found);
    }
    Ok(out)
}

/// These hosts answered deliveries: close their breakers. Returns the ones
/// that were failing (what waited for them can go now).
pub async fn record_successes(
    db: &impl ConnectionTrait,
    domains: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<String>, DbErr> {
    let failing = failing_among(db, domains).await?;
    if failing.is_empty() {
        return Ok(failing);
    }
    Entity::update_many()
        .col_expr(Column::ConsecutiveFailures, 0.into())
        .col_expr(Column::OpenUntil, Option::<DateTime<Utc>>::None.into())
        .col_expr(Column::LastSuccessAt, Some(now).into())
        .filter(Column::Domain.is_in(failing.clone()))
        .filter(Column::ConsecutiveFailures.gt(0))
        .exec(db)
        .await?;
    Ok(failing)
}

/// The instance sent us a verified activity: it is up. Closes its breaker
/// if it was failing; true then.
pub async fn record_contact(
    db: &impl ConnectionTrait,
    domain: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = Entity::update_many()
        .col_expr(Column::ConsecutiveFailures, 0.into())
        .col_expr(Column::OpenUntil, Option::<DateTime<Utc>>::None.into())
        .col_expr(Column::LastContactAt, Some(now).into())
        .filter(Column::Domain.eq(domain))
        .filter(Column::ConsecutiveFailures.gt(0))
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}

pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<Model>, DbErr> {
    Entity::find().all(db).await
}

/// We heard from (or were answered by) `domain`: make its row if new, note the
/// time. True when its NodeInfo is due (never read, or over a day ago).
pub async fn touch(
    db: &impl ConnectionTrait,
    domain: &str,
    now: DateTime<Utc>,
    wrote_to_us: bool,
) -> Result<bool, DbErr> {
    ensure(db, domain, now).await?;
    let col = if wrote_to_us {
        Column::LastContactAt
    } else {
        Column::LastSuccessAt
    };
    Entity::update_many()
        .col_expr(col, Some(now).into())
        .filter(Column::Domain.eq(domain))
        .exec(db)
        .await?;
    let row = Entity::find()
        .filter(Column::Domain.eq(domain))
        .one(db)
        .await?;
    Ok(row.is_some_and(|r| {
        r.nodeinfo_at
            .is_none_or(|t| now - t > chrono::Duration::days(1))
    }))
}

pub async fn set_software(
    db: &impl ConnectionTrait,
    domain: &str,
    software: Option<String>,
    version: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut q = Entity::update_many().col_expr(Column::NodeinfoAt, Some(now).into());
    // A failed read keeps what we knew.
    if software.is_some() {
        q = q
            .col_expr(Column::Software, software.into())
            .col_expr(Column::Version, version.into());
    }
    q.filter(Column::Domain.eq(domain)).exec(db).await?;
    Ok(())
}
