//! Database schema for Kindred: one file per migration, run in order by `Migrator`.
//! Same migrations on SQLite and PostgreSQL; SQLite cannot ALTER much, so later
//! changes to a table are written as create-copy-drop-rename.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_core;
mod m20261122_000002_post_content;
mod m20261122_000003_web;
mod m20261122_000004_instances;
mod m20261122_000005_federation_policy;
mod m20261122_000006_group_privacy;
mod m20261122_000007_directory;
mod m20261203_000008_delivery_bodies;
mod m20261206_000009_fanouts;
mod m20261207_000010_fanout_halted;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_core::Migration),
            Box::new(m20261122_000002_post_content::Migration),
            Box::new(m20261122_000003_web::Migration),
            Box::new(m20261122_000004_instances::Migration),
            Box::new(m20261122_000005_federation_policy::Migration),
            Box::new(m20261122_000006_group_privacy::Migration),
            Box::new(m20261122_000007_directory::Migration),
            Box::new(m20261203_000008_delivery_bodies::Migration),
            Box::new(m20261206_000009_fanouts::Migration),
            Box::new(m20261207_000010_fanout_halted::Migration),
        ]
    }
}
