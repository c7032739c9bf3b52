//! One line of the admin audit log: who changed what, when, and why.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: DateTimeUtc,
    /// A local username, or `cli`.
    pub who: String,
    /// e.g. `federation.block`, `federation.mode`, `group.allow`.
    pub action: String,
    pub target: String,
    pub reason: Option<String>,
    /// Set for a group's moderation log.
    pub group_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
