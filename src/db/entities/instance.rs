//! Remote instances by host: the delivery circuit breaker and contact times.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "instances")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `host` or `host:port`, lowercase (see `federation::objects::authority`).
    #[sea_orm(unique)]
    pub domain: String,
    /// Deliveries that failed in a row (network error, 5xx, 401/408/429).
    pub consecutive_failures: i32,
    /// While in the future, deliveries to this instance wait instead of being sent.
    pub open_until: Option<DateTimeUtc>,
    pub last_success_at: Option<DateTimeUtc>,
    pub last_failure_at: Option<DateTimeUtc>,
    /// When it last sent us a verified activity.
    pub last_contact_at: Option<DateTimeUtc>,
    /// First contact.
    pub created_at: DateTimeUtc,
    /// From its NodeInfo, when it has one.
    pub software: Option<String>,
    pub version: Option<String>,
    /// When its NodeInfo was last read (or tried).
    pub nodeinfo_at: Option<DateTimeUtc>,
    /// Where it publishes its directory of groups (NodeInfo `metadata.directory`).
    pub directory_url: Option<String>,
    /// When we last read that directory.
    pub directory_read_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
