//! Queries on the federation policy: the mode row and its version, both
//! lists, groups' own allow-lists, and the audit log.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
    sea_query::{Expr, ExprTrait},
};

use super::entities::{audit_entry, domain_rule, federation_policy, group_domain};

const ROW: i64 = 1;

/// The mode row (the migration makes it).
pub async fn mode_row(db: &impl ConnectionTrait) -> Result<federation_policy::Model, DbErr> {
    federation_policy::Entity::find_by_id(ROW)
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("federation policy".into()))
}

/// The version alone: what every check reads to know its cache is current.
pub async fn version(db: &impl ConnectionTrait) -> Result<i64, DbErr> {
    let v: Option<i64> = federation_policy::Entity::find_by_id(ROW)
        .select_only()
        .column(federation_policy::Column::Version)
        .into_tuple()
        .one(db)
        .await?;
    v.ok_or_else(|| DbErr::RecordNotFound("federation policy".into()))
}

/// Say that the policy changed (inside the change's transaction).
pub async fn bump(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    federation_policy::Entity::update_many()
        .col_expr(
            federation_policy::Column::Version,
            Expr::col(federation_policy::Column::Version).add(1),
        )
        .col_expr(federation_policy::Column::UpdatedAt, Utc::now().into())
        .filter(federation_policy::Column::Id.eq(ROW))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn set_mode(db: &impl ConnectionTrait, mode: &str) -> Result<(), DbErr> {
    federation_policy::Entity::update_many()
        .col_expr(federation_policy::Column::Mode, mode.into())
        .filter(federation_policy::Column::Id.eq(ROW))
        .exec(db)
        .await?;
    bump(db).await
}

pub async fn rules(db: &impl ConnectionTrait) -> Result<Vec<domain_rule::Model>, DbErr> {
    domain_rule::Entity::find()
        .order_by_asc(domain_rule::Column::List)
        .order_by_asc(domain_rule::Column::Domain)
        .all(db)
        .await
}

pub async fn rule(
    db: &impl ConnectionTrait,
    list: &str,
    domain: &str,
) -> Result<Option<domain_rule::Model>, DbErr> {
    domain_rule::Entity::find()
        .filter(domain_rule::Column::List.eq(list))
        .filter(domain_rule::Column::Domain.eq(domain))
        .one(db)
        .await
}

pub async fn add_rule(
    db: &impl ConnectionTrait,
    list: &str,
    domain: &str,
    reason: Option<&str>,
    who: &str,
) -> Result<(), DbErr> {
    domain_rule::ActiveModel {
        list: Set(list.to_string()),
        domain: Set(domain.to_string()),
        reason: Set(reason.map(str::to_string)),
        created_by: Set(who.to_string()),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    bump(db).await
}

/// True if there was such an entry.
pub async fn remove_rule(
    db: &impl ConnectionTrait,
    list: &str,
    domain: &str,
) -> Result<bool, DbErr> {
    let res = domain_rule::Entity::delete_many()
        .filter(domain_rule::Column::List.eq(list))
        .filter(domain_rule::Column::Domain.eq(domain))
        .exec(db)
        .await?;
    if res.rows_affected > 0 {
        bump(db).await?;
    }
    Ok(res.rows_affected > 0)
}

pub async fn group_domains(db: &impl ConnectionTrait, group_id: i64) -> Result<Vec<String>, DbErr> {
    group_domain::Entity::find()
        .filter(group_domain::Column::GroupId.eq(group_id))
        .order_by_asc(group_domain::Column::Domain)
        .select_only()
        .column(group_domain::Column::Domain)
        .into_tuple()
        .all(db)
        .await
}

/// Replace a group's allow-list.
pub async fn set_group_domains(
    db: &impl ConnectionTrait,
    group_id: i64,
    domains: &[String],
) -> Result<(), DbErr> {
    group_domain::Entity::delete_many()
        .filter(group_domain::Column::GroupId.eq(group_id))
        .exec(db)
        .await?;
    if domains.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    group_domain::Entity::insert_many(domains.iter().map(|d| group_domain::ActiveModel {
        group_id: Set(group_id),
        domain: Set(d.clone()),
        created_at: Set(now),
        ..Default::default()
    }))
    .exec_without_returning(db)
    .await?;
    Ok(())
}

pub async fn audit(
    db: &impl ConnectionTrait,
    who: &str,
    action: &str,
    target: &str,
    reason: Option<&str>,
) -> Result<(), DbErr> {
    audit_entry::ActiveModel {
        at: Set(Utc::now()),
        who: Set(who.to_string()),
        action: Set(action.to_string()),
        target: Set(target.to_string()),
        reason: Set(reason.map(str::to_string)),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Newest first.
pub async fn audit_log(
    db: &impl ConnectionTrait,
    limit: u64,
) -> Result<Vec<audit_entry::Model>, DbErr> {
    audit_entry::Entity::find()
        .order_by_desc(audit_entry::Column::Id)
        .limit(limit)
        .all(db)
        .await
}
