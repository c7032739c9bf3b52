//! The persistent outgoing queue: one row per (activity, inbox), written in the
//! same transaction as the change that caused it. The body sent is stored
//! once per activity, in `delivery_bodies`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub activity_ap_id: String,
    /// The local actor whose key signs the request.
    pub actor_id: i64,
    pub inbox: String,
    /// The activity JSON, exactly as it will be sent (`delivery_bodies`).
    pub body_id: i64,
    /// "pending", "delivered" or "failed" (see `domain::DeliveryStatus`).
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub locked_until: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The fan-out this inbox was taken from (`fanouts`), when it was.
    pub fanout_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
