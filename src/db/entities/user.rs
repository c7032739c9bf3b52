//! Local accounts: the credentials behind a local `person` actor.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub actor_id: i64,
    pub password_hash: String,
    pub is_admin: bool,
    /// "active", "pending" (awaiting an admin) or "rejected".
    pub status: String,
    /// What an applicant wrote when asking to join (approval mode).
    pub application: Option<String>,
    pub email: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
