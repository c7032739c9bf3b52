//! The instance's own settings, edited by admins: one row, id 1.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "instance_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    pub name: String,
    /// Plain text as the admin typed it.
    pub description: String,
    /// "open", "approval", "invite" or "closed" (see `domain::RegistrationMode`).
    pub registration_mode: String,
    /// The first admin account exists.
    pub setup_done: bool,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
