//! A report about a post or a person: by a member here, or a remote server's
//! `Flag`. Moderators of the group (or admins, without a group) resolve it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reports")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub group_id: Option<i64>,
    /// Who reported: a local person, or the remote actor that sent the Flag.
    pub reporter_id: i64,
    pub target_actor_id: Option<i64>,
    pub post_id: Option<i64>,
    pub comment: Option<String>,
    /// The Flag's id, for a remote report (received once).
    pub flag_ap_id: Option<String>,
    /// "open", "resolved" or "dismissed".
    pub status: String,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTimeUtc>,
    pub resolution: Option<String>,
    /// When it was forwarded to the reported person's instance.
    pub forwarded_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
