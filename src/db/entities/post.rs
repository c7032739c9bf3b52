//! Threads and replies, local and remote. A thread has no `thread_id`; a reply
//! points at its thread and at the post it answers.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "posts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub ap_id: String,
    pub author_id: i64,
    pub group_id: i64,
    pub thread_id: Option<i64>,
    pub in_reply_to_id: Option<i64>,
    pub title: Option<String>,
    /// Sanitised HTML, safe to render.
    pub content_html: String,
    /// What a local author typed; None for remote posts.
    pub source: Option<String>,
    pub local: bool,
    /// Content warning shown before the post (`summary` on the wire).
    pub content_warning: Option<String>,
    /// Hidden until clicked (`sensitive` on the wire).
    pub sensitive: bool,
    /// Mentions and hashtags, JSON (see `db::posts::tags_of`).
    pub tags: Option<String>,
    pub published_at: DateTimeUtc,
    pub updated_at: Option<DateTimeUtc>,
    pub deleted_at: Option<DateTimeUtc>,
    /// A thread's newest activity: its own time or its newest reply's.
    pub last_activity_at: Option<DateTimeUtc>,
    /// Hidden by an admin (content from a domain they stopped federating with).
    pub hidden_at: Option<DateTimeUtc>,
    /// A thread its moderators locked: no new replies.
    pub locked_at: Option<DateTimeUtc>,
    /// Held for review (a new member's first posts in a pre-moderated group):
    /// shown to its author and the moderators only, federated once approved.
    pub held_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
