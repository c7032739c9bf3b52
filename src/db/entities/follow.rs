//! Group membership: an actor following a group, local or remote on either side.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "follows")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub follower_id: i64,
    pub group_id: i64,
    /// "pending" or "accepted" (see `domain::FollowState`).
    pub state: String,
    /// The id of the Follow activity, to answer it (Accept) or match its Accept.
    pub follow_ap_id: Option<String>,
    pub created_at: DateTimeUtc,
    /// What an applicant wrote to a group that approves its members.
    pub note: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
