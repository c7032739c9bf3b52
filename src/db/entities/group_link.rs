//! A link between a local group and a related group elsewhere: asked by us
//! (`requested`), asked by them and waiting for our moderators (`pending`),
//! or agreed by both (`accepted`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "group_links")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The local group.
    pub group_id: i64,
    /// The other group.
    pub peer_id: i64,
    pub state: String,
    /// The `Add` that asked for the link (ours or theirs).
    pub activity_ap_id: Option<String>,
    /// Who asked: a local moderator's username, or the remote group's handle.
    pub requested_by: String,
    pub created_at: DateTimeUtc,
    pub accepted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
