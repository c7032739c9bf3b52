//! sea-orm entities, one per table. Rows never derive `Serialize`: API and
//! federation code build their own views from them.

pub mod actor;
pub mod api_token;
pub mod audit_entry;
pub mod delivery;
pub mod delivery_body;
pub mod directory_group;
pub mod domain_rule;
pub mod fanout;
pub mod federation_policy;
pub mod follow;
pub mod group_ban;
pub mod group_domain;
pub mod group_invite;
pub mod group_link;
pub mod group_role;
pub mod group_topic;
pub mod instance;
pub mod instance_setting;
pub mod invite;
pub mod post;
pub mod received_activity;
pub mod report;
pub mod session;
pub mod user;
