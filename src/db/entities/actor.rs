//! Every actor this instance knows: local and remote people, groups, and the
//! instance actor. Handles (`username`, `domain`) are stored lowercase.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "actors")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub ap_id: String,
    /// "person", "group" or "application" (see `domain::ActorKind`).
    pub kind: String,
    pub local: bool,
    pub username: String,
    pub domain: String,
    pub display_name: Option<String>,
    pub summary: Option<String>,
    pub inbox: String,
    pub shared_inbox: Option<String>,
    pub outbox: Option<String>,
    pub followers: Option<String>,
    pub public_key: String,
    pub private_key: Option<String>,
    pub manually_approves_followers: bool,
    pub discoverable: bool,
    pub last_refreshed_at: Option<DateTimeUtc>,
    /// A local group's rules, sanitised HTML.
    pub rules: Option<String>,
    pub created_at: DateTimeUtc,
    /// A local group that takes members only from the instances on its own
    /// allow-list (`group_domains`).
    pub domains_restricted: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
