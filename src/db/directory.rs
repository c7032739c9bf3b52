//! What groups are about (`group_topics`, `actors.region`), the remote groups
//! learned from other instances' directories, and the candidates of a search.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Func, LikeExpr, OnConflict, Query},
};

use super::entities::{
    actor, directory_group,
    group_topic::{self, Column as T},
    instance,
};
use crate::domain::{
    ActorKind,
    group::Visibility,
    topics::{Code, CodeSystem, Topics},
};

fn rows(actor_id: i64, t: &Topics) -> Vec<group_topic::ActiveModel> {
    let row = |kind: &str, system: Option<&str>, value: &str| group_topic::ActiveModel {
        actor_id: Set(actor_id),
        kind: Set(kind.to_string()),
        system: Set(system.map(str::to_string)),
        value: Set(value.to_string()),
        needle: Set(value.to_lowercase()),
        ..Default::default()
    };
    let mut out = Vec::new();
    out.extend(t.conditions.iter().map(|c| row("condition", None, c)));
    out.extend(t.tags.iter().map(|c| row("tag", None, c)));
    out.extend(
        t.codes
            .iter()
            .map(|c| row("code", Some(c.system.as_str()), &c.code)),
    );
    out.extend(t.languages.iter().map(|c| row("language", None, c)));
    out
}

/// Replace what a group is about (local edit or remote refresh).
pub async fn set_topics(db: &impl ConnectionTrait, actor_id: i64, t: &Topics) -> Result<(), DbErr> {
    group_topic::Entity::delete_many()
        .filter(T::ActorId.eq(actor_id))
        .exec(db)
        .await?;
    let rows = rows(actor_id, t);
    if !rows.is_empty() {
        group_topic::Entity::insert_many(rows).exec(db).await?;
    }
    actor::Entity::update_many()
        .col_expr(actor::Column::Region, t.region.clone().into())
        .filter(actor::Column::Id.eq(actor_id))
        .exec(db)
        .await?;
    Ok(())
}

fn push(t: &mut Topics, r: group_topic::Model) {
    match r.kind.as_str() {
        "condition" => t.conditions.push(r.value),
        "tag" => t.tags.push(r.value),
        "language" => t.languages.push(r.value),
        "code" => {
            if let Some(system) = r.system.as_deref().and_then(CodeSystem::parse) {
                t.codes.push(Code {
                    system,
                    code: r.value,
                });
            }
        }
        _ => {}
    }
}

/// What each of these groups is about (region from their rows).
pub async fn topics_of_many(
    db: &impl ConnectionTrait,
    groups: &[&actor::Model],
) -> Result<HashMap<i64, Topics>, DbErr> {
    let mut out: HashMap<i64, Topics> = groups
        .iter()
        .map(|g| {
            (
                g.id,
                Topics {
                    region: g.region.clone(),
                    ..Default::default()
                },
            )
        })
        .collect();
    if groups.is_empty() {
        return Ok(out);
    }
    let found = group_topic::Entity::find()
        .filter(T::ActorId.is_in(groups.iter().map(|g| g.id)))
        .order_by_asc(T::Id)
        .all(db)
        .await?;
    for r in found {
        if let Some(t) = out.get_mut(&r.actor_id) {
            push(t, r);
        }
    }
    Ok(out)
}

pub async fn topics_of(db: &impl ConnectionTrait, g: &actor::Model) -> Result<Topics, DbErr> {
    Ok(topics_of_many(db, &[g])
        .await?
        .remove(&g.id)
        .unwrap_or_default())
}

/// A group that may be listed in a directory: public, discoverable, not
/// deleted (the filter every listing starts from).
fn listable() -> Condition {
    Condition::all()
        .add(actor::Column::Kind.eq(ActorKind::Group.as_str()))
        .add(actor::Column::Visibility.eq(Visibility::Public.as_str()))
        .add(actor::Column::Discoverable.eq(true))
        .add(actor::Column::DeletedAt.is_null())
}

/// Our own listed groups, by name: a page of the published directory.
pub async fn local_listed(
    db: &impl ConnectionTrait,
    offset: u64,
    limit: u64,
) -> Result<Vec<actor::Model>, DbErr> {
    actor::Entity::find()
        .filter(listable())
        .filter(actor::Column::Local.eq(true))
        .order_by_asc(actor::Column::Username)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await
}

pub async fn count_local_listed(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    actor::Entity::find()
        .filter(listable())
        .filter(actor::Column::Local.eq(true))
        .count(db)
        .await
}

/// Listed groups that may answer `terms` (any term in a name, title,
/// description or topic), ours and those learned from directories; all of
/// them when there are no terms. Ranking is the caller's.
pub async fn candidates(
    db: &impl ConnectionTrait,
    terms: &[String],
    limit: u64,
) -> Result<Vec<actor::Model>, DbErr> {
    let learned = Query::select()
        .column(directory_group::Column::ActorId)
        .from(directory_group::Entity)
        .to_owned();
    let mut q = actor::Entity::find().filter(listable()).filter(
        Condition::any()
            .add(actor::Column::Local.eq(true))
            .add(actor::Column::Id.in_subquery(learned)),
    );
    if !terms.is_empty() {
        let mut any = Condition::any();
        for term in terms {
            let pattern = format!("%{}%", super::escape_like(&term.to_lowercase()));
            let like = |e: Expr| e.like(LikeExpr::new(pattern.clone()).escape('\\'));
            for col in [
                actor::Column::Username,
                actor::Column::DisplayName,
                actor::Column::Summary,
            ] {
                any = any.add(like(Expr::expr(Func::lower(Expr::col(col)))));
            }
            let topical = Query::select()
                .column(T::ActorId)
                .from(group_topic::Entity)
                .and_where(like(Expr::col(T::Needle)))
                .to_owned();
            any = any.add(actor::Column::Id.in_subquery(topical));
        }
        q = q.filter(any);
    }
    q.order_by_desc(actor::Column::Local)
        .order_by_asc(actor::Column::Username)
        .limit(limit)
        .all(db)
        .await
}

/// `actor_id` is listed in `source`'s directory, seen now.
pub async fn listed(
    db: &impl ConnectionTrait,
    actor_id: i64,
    source: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    directory_group::Entity::insert(directory_group::ActiveModel {
        actor_id: Set(actor_id),
        source: Set(source.to_string()),
        seen_at: Set(now),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(directory_group::Column::ActorId)
            .update_columns([
                directory_group::Column::Source,
                directory_group::Column::SeenAt,
            ])
            .to_owned(),
    )
    .exec(db)
    .await?;
    Ok(())
}

/// Forget the groups `source` listed before `since` and no longer does.
pub async fn prune(
    db: &impl ConnectionTrait,
    source: &str,
    since: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Ok(directory_group::Entity::delete_many()
        .filter(directory_group::Column::Source.eq(source))
        .filter(directory_group::Column::SeenAt.lt(since))
        .exec(db)
        .await?
        .rows_affected)
}

/// Forget one group (it is no longer public or discoverable, or gone).
pub async fn unlist(db: &impl ConnectionTrait, actor_id: i64) -> Result<(), DbErr> {
    directory_group::Entity::delete_many()
        .filter(directory_group::Column::ActorId.eq(actor_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The hosts whose directories gave us groups (what we tell others we know).
pub async fn sources(db: &impl ConnectionTrait, limit: u64) -> Result<Vec<String>, DbErr> {
    directory_group::Entity::find()
        .select_only()
        .column(directory_group::Column::Source)
        .distinct()
        .order_by_asc(directory_group::Column::Source)
        .limit(limit)
        .into_tuple::<String>()
        .all(db)
        .await
}

pub async fn set_remote_member_count(
    db: &impl ConnectionTrait,
    actor_id: i64,
    n: Option<i64>,
) -> Result<(), DbErr> {
    actor::Entity::update_many()
        .col_expr(actor::Column::RemoteMemberCount, n.into())
        .filter(actor::Column::Id.eq(actor_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Where `host` publishes its directory (None: it does not).
pub async fn set_directory_url(
    db: &impl ConnectionTrait,
    host: &str,
    url: Option<String>,
) -> Result<(), DbErr> {
    instance::Entity::update_many()
        .col_expr(instance::Column::DirectoryUrl, url.into())
        .filter(instance::Column::Domain.eq(host))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn set_directory_read(
    db: &impl ConnectionTrait,
    host: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    instance::Entity::update_many()
        .col_expr(instance::Column::DirectoryReadAt, Some(now).into())
        .filter(instance::Column::Domain.eq(host))
        .exec(db)
        .await?;
    Ok(())
}

/// The instances we have met, least recently read first, at most `limit`.
pub async fn instances_to_read(
    db: &impl ConnectionTrait,
    limit: u64,
) -> Result<Vec<instance::Model>, DbErr> {
    instance::Entity::find()
        // Never read first (PostgreSQL would put NULLs last).
        .order_by_with_nulls(
            instance::Column::DirectoryReadAt,
            sea_orm::Order::Asc,
            sea_orm::sea_query::NullOrdering::First,
        )
        .order_by_asc(instance::Column::Domain)
        .limit(limit)
        .all(db)
        .await
}
