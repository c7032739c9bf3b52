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
    /// A group's visibility: "public", "members" or "local" (see
    /// `domain::Visibility`).
    pub visibility: String,
    /// A group's join policy: "open", "approval" or "invite".
    pub join_policy: String,
    /// A group that does not even show how many members it has.
    pub member_count_hidden: bool,
    /// A group that holds a new member's first posts for review.
    pub premoderation: bool,
    /// The content warning a group's new posts start with.
    pub default_content_warning: Option<String>,
    /// A deleted account: the row stays, as a tombstone, so the handle is
    /// never given to someone else.
    pub deleted_at: Option<DateTimeUtc>,
    /// A group's country or region (ISO 3166), if it names one.
    pub region: Option<String>,
    /// A remote group's member count, as its followers collection says.
    pub remote_member_count: Option<i64>,
}

#[cfg(test)]
impl Model {
    /// A local actor row for unit tests: `kind` "person" or "group", named
    /// `name` on `k.example`, public, open, nothing else set.
    pub fn sample(id: i64, kind: &str, name: &str) -> Self {
        let path = if kind == "group" { "groups" } else { "users" };
        Model {
            id,
            ap_id: format!("https://k.example/{path}/{name}"),
            kind: kind.into(),
            local: true,
            username: name.into(),
            domain: "k.example".into(),
            display_name: None,
            summary: None,
            inbox: format!("https://k.example/{path}/{name}/inbox"),
            shared_inbox: None,
            outbox: None,
            followers: None,
            public_key: String::new(),
            private_key: None,
            manually_approves_followers: false,
            discoverable: true,
            last_refreshed_at: None,
            rules: None,
            created_at: chrono::Utc::now(),
            domains_restricted: false,
            visibility: "public".into(),
            join_policy: "open".into(),
            member_count_hidden: false,
            premoderation: false,
            default_content_warning: None,
            deleted_at: None,
            region: None,
            remote_member_count: None,
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
