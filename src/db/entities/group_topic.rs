//! One thing a group is about: a condition name, a tag, a code (with its
//! system) or a language. Local and remote groups alike; `needle` is the
//! lowercase form searches match.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "group_topics")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub actor_id: i64,
    /// "condition", "tag", "code" or "language".
    pub kind: String,
    /// For a code: its system (`domain::topics::CodeSystem::as_str`).
    pub system: Option<String>,
    pub value: String,
    pub needle: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
