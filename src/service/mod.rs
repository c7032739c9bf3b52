//! Use cases started by local people (CLI, API, later the web app): accounts,
//! groups and membership, posts. Each checks the rules in `domain`, writes in
//! one transaction, and queues what must go out in that same transaction.

pub mod access;
pub mod accounts;
pub mod compose;
pub mod data;
pub mod directory;
pub mod federation;
pub mod groups;
pub mod instance;
pub mod links;
pub mod moderation;
pub mod posts;
pub mod reports;
pub mod users;

pub use crate::federation::resolve::new_keypair;
