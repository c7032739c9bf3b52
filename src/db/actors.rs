//! Queries on `actors`.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, sea_query::OnConflict,
};

use super::entities::actor::{self, ActiveModel, Column, Entity, Model};
use crate::domain::ActorKind;

pub async fn by_id(db: &impl ConnectionTrait, id: i64) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

pub async fn by_ap_id(db: &impl ConnectionTrait, ap_id: &str) -> Result<Option<Model>, DbErr> {
    Entity::find().filter(Column::ApId.eq(ap_id)).one(db).await
}

/// A local actor by name, any kind (names are unique across kinds locally).
pub async fn local_by_name(db: &impl ConnectionTrait, name: &str) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::Local.eq(true))
        .filter(Column::Username.eq(name.to_lowercase()))
        .filter(Column::Kind.ne(ActorKind::Application.as_str()))
        .one(db)
        .await
}

pub async fn local_by_name_and_kind(
    db: &impl ConnectionTrait,
    name: &str,
    kind: ActorKind,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::Local.eq(true))
        .filter(Column::Username.eq(name.to_lowercase()))
        .filter(Column::Kind.eq(kind.as_str()))
        .one(db)
        .await
}

/// A known remote actor by handle.
pub async fn remote_by_handle(
    db: &impl ConnectionTrait,
    name: &str,
    domain: &str,
    kind: ActorKind,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::Local.eq(false))
        .filter(Column::Username.eq(name.to_lowercase()))
        .filter(Column::Domain.eq(domain.to_lowercase()))
        .filter(Column::Kind.eq(kind.as_str()))
        .one(db)
        .await
}

/// The instance's own Application actor.
pub async fn instance_actor(db: &impl ConnectionTrait) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::Local.eq(true))
        .filter(Column::Kind.eq(ActorKind::Application.as_str()))
        .one(db)
        .await
}

/// Groups, local first then remote, by name; at most `limit`.
pub async fn list_groups(
    db: &impl ConnectionTrait,
    local_only: bool,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut q = Entity::find().filter(Column::Kind.eq(ActorKind::Group.as_str()));
    if local_only {
        q = q.filter(Column::Local.eq(true));
    }
    q.order_by_desc(Column::Local)
        .order_by_asc(Column::Domain)
        .order_by_asc(Column::Username)
        .limit(limit)
        .all(db)
        .await
}

pub async fn insert(db: &impl ConnectionTrait, model: ActiveModel) -> Result<Model, DbErr> {
    model.insert(db).await
}

/// Fields that describe a remote actor, as read from its JSON.
#[derive(Debug, Clone)]
pub struct RemoteActorData {
    pub ap_id: String,
    pub kind: ActorKind,
    pub username: String,
    pub domain: String,
    pub display_name: Option<String>,
    pub summary: Option<String>,
    pub inbox: String,
    pub shared_inbox: Option<String>,
    pub outbox: Option<String>,
    pub followers: Option<String>,
    pub public_key: String,
    pub manually_approves_followers: bool,
    pub discoverable: bool,
    /// A remote group that says only its members see its posts.
    pub members_only: bool,
    /// A group's country or region, already checked.
    pub region: Option<String>,
}

/// Insert or refresh a remote actor, keyed by its id.
pub async fn upsert_remote(db: &impl ConnectionTrait, d: RemoteActorData) -> Result<Model, DbErr> {
    // Its inboxes may have moved.
    super::follows::changed();
    let now = Utc::now();
    let row = ActiveModel {
        ap_id: Set(d.ap_id.clone()),
        kind: Set(d.kind.as_str().to_string()),
        local: Set(false),
        username: Set(d.username.to_lowercase()),
        domain: Set(d.domain.to_lowercase()),
        display_name: Set(d.display_name),
        summary: Set(d.summary),
        inbox: Set(d.inbox),
        shared_inbox: Set(d.shared_inbox),
        outbox: Set(d.outbox),
        followers: Set(d.followers),
        public_key: Set(d.public_key),
        private_key: Set(None),
        manually_approves_followers: Set(d.manually_approves_followers),
        discoverable: Set(d.discoverable),
        visibility: Set(if d.members_only { "members" } else { "public" }.to_string()),
        region: Set(d.region),
        last_refreshed_at: Set(Some(now)),
        created_at: Set(now),
        ..Default::default()
    };
    Entity::insert(row)
        .on_conflict(
            OnConflict::column(Column::ApId)
                .update_columns([
                    Column::Username,
                    Column::DisplayName,
                    Column::Summary,
                    Column::Inbox,
                    Column::SharedInbox,
                    Column::Outbox,
                    Column::Followers,
                    Column::PublicKey,
                    Column::ManuallyApprovesFollowers,
                    Column::Discoverable,
                    Column::Visibility,
                    Column::Region,
                    Column::LastRefreshedAt,
                ])
                .to_owned(),
        )
        .exec(db)
        .await?;
    by_ap_id(db, &d.ap_id)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(d.ap_id))
}

pub async fn count_local(db: &impl ConnectionTrait, kind: ActorKind) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    Entity::find()
        .filter(Column::Local.eq(true))
        .filter(Column::Kind.eq(kind.as_str()))
        .count(db)
        .await
}

pub fn new_local(
    ap_id: String,
    kind: ActorKind,
    username: &str,
    domain: &str,
    keys: (String, String),
) -> ActiveModel {
    let now = Utc::now();
    actor::ActiveModel {
        ap_id: Set(ap_id.clone()),
        kind: Set(kind.as_str().to_string()),
        local: Set(true),
        username: Set(username.to_lowercase()),
        domain: Set(domain.to_lowercase()),
        display_name: Set(None),
        summary: Set(None),
        inbox: Set(format!("{ap_id}/inbox")),
        shared_inbox: Set(None),
        outbox: Set(Some(format!("{ap_id}/outbox"))),
        followers: Set(Some(format!("{ap_id}/followers"))),
        public_key: Set(keys.0),
        private_key: Set(Some(keys.1)),
        manually_approves_followers: Set(false),
        discoverable: Set(true),
        last_refreshed_at: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
}

/// Groups whose name, title or description contains `q` (any case), local
/// first; all groups when `q` is empty.
pub async fn search_groups(
    db: &impl ConnectionTrait,
    q: &str,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
    let q = q.trim().to_lowercase();
    if q.is_empty() {
        return list_groups(db, false, limit).await;
    }
    let pattern = format!("%{}%", super::escape_like(&q));
    let like = |col: Column| {
        Expr::expr(Func::lower(Expr::col(col))).like(LikeExpr::new(pattern.clone()).escape('\\'))
    };
    Entity::find()
        .filter(Column::Kind.eq(ActorKind::Group.as_str()))
        .filter(
            Condition::any()
                .add(like(Column::Username))
                .add(like(Column::DisplayName))
                .add(like(Column::Summary)),
        )
        .order_by_desc(Column::Local)
        .order_by_asc(Column::Domain)
        .order_by_asc(Column::Username)
        .limit(limit)
        .all(db)
        .await
}

/// A local actor's public profile: display name and summary (HTML).
pub async fn update_profile(
    db: &impl ConnectionTrait,
    id: i64,
    display_name: Option<String>,
    summary: Option<String>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::DisplayName, display_name.into())
        .col_expr(Column::Summary, summary.into())
        .filter(Column::Id.eq(id))
        .filter(Column::Local.eq(true))
        .exec(db)
        .await?;
    Ok(())
}

/// A local group's rules (HTML).
pub async fn update_rules(
    db: &impl ConnectionTrait,
    id: i64,
    rules: Option<String>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Rules, rules.into())
        .filter(Column::Id.eq(id))
        .filter(Column::Local.eq(true))
        .exec(db)
        .await?;
    Ok(())
}

/// Remove a local actor that never federated (a refused applicant).
pub async fn delete_local(db: &impl ConnectionTrait, id: i64) -> Result<(), DbErr> {
    super::follows::changed();
    Entity::delete_many()
        .filter(Column::Id.eq(id))
        .filter(Column::Local.eq(true))
        .exec(db)
        .await?;
    Ok(())
}

/// Local groups that take members only from their own list of instances.
pub async fn restricted_groups(db: &impl ConnectionTrait) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::Local.eq(true))
        .filter(Column::DomainsRestricted.eq(true))
        .all(db)
        .await
}

pub async fn set_domains_restricted(
    db: &impl ConnectionTrait,
    id: i64,
    on: bool,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::DomainsRestricted, on.into())
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Remote actors whose host is `domain` or under it (any port when the
/// entry has none): the people an admin's block concerns.
pub async fn remote_ids_matching(
    db: &impl ConnectionTrait,
    entry: &crate::domain::policy::DomainEntry,
) -> Result<Vec<i64>, DbErr> {
    let rows: Vec<(i64, String)> = Entity::find()
        .select_only()
        .column(Column::Id)
        .column(Column::Domain)
        .filter(Column::Local.eq(false))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, d)| entry.matches(d))
        .map(|(id, _)| id)
        .collect())
}

/// Each remote host we hold actors of: when we first stored one, and when
/// one was last refreshed.
pub async fn remote_domains(
    db: &impl ConnectionTrait,
) -> Result<Vec<(String, chrono::DateTime<Utc>, Option<chrono::DateTime<Utc>>)>, DbErr> {
    let rows: Vec<(String, chrono::DateTime<Utc>, Option<chrono::DateTime<Utc>>)> = Entity::find()
        .select_only()
        .column(Column::Domain)
        .column(Column::CreatedAt)
        .column(Column::LastRefreshedAt)
        .filter(Column::Local.eq(false))
        .into_tuple()
        .all(db)
        .await?;
    let mut by: std::collections::HashMap<
        String,
        (chrono::DateTime<Utc>, Option<chrono::DateTime<Utc>>),
    > = Default::default();
    for (d, created, refreshed) in rows {
        let e = by.entry(d).or_insert((created, refreshed));
        e.0 = e.0.min(created);
        e.1 = e.1.max(refreshed);
    }
    Ok(by.into_iter().map(|(d, (c, r))| (d, c, r)).collect())
}

/// A deleted account's actor: its profile wiped, the row kept so the handle
/// is never reused and the key can still sign the Delete.
pub async fn mark_deleted(db: &impl ConnectionTrait, id: i64) -> Result<(), DbErr> {
    super::follows::changed();
    Entity::update_many()
        .col_expr(Column::DeletedAt, Some(Utc::now()).into())
        .col_expr(Column::DisplayName, Option::<String>::None.into())
        .col_expr(Column::Summary, Option::<String>::None.into())
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Whether a local group is listed in directories.
pub async fn set_discoverable(
    db: &impl ConnectionTrait,
    id: i64,
    discoverable: bool,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Discoverable, discoverable.into())
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
