//! One activity queued for many inboxes (`db::deliveries::enqueue` with two
//! or more): its inbox list and a cursor over it. Every inbox before `next`
//! has been delivered or has a `deliveries` row of its own (`fanout_id`:
//! retried, deferred, refused); the ones from `next` on are still to send.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "fanouts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub activity_ap_id: String,
    /// The local actor whose key signs the requests.
    pub actor_id: i64,
    /// The activity JSON, exactly as it will be sent (`delivery_bodies`).
    pub body_id: i64,
    /// The inboxes, a JSON array, in the order they are sent.
    pub inboxes: String,
    /// How many inboxes the list holds.
    pub targets: i32,
    /// The cursor: inboxes before it are settled.
    pub next: i32,
    /// How many of those were delivered (the others have rows of their own).
    pub delivered: i32,
    /// How many times a worker claimed it (more than once: a worker stopped
    /// or died while sending it).
    pub claims: i32,
    /// Its post or author was deleted while a worker held it: what is not
    /// sent yet is cancelled, not sent.
    pub halted: bool,
    /// Claimed by a worker until then.
    pub locked_until: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
