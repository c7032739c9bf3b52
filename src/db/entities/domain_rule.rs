//! An entry of the instance's allow-list or block-list.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "domain_rules")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `allow` or `block`.
    pub list: String,
    /// Canonical form of a `domain::policy::DomainEntry`.
    pub domain: String,
    pub reason: Option<String>,
    /// Who added it (a username, or `cli`/`import`).
    pub created_by: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
