//! Each queued activity's body stored once (`delivery_bodies`), not copied
//! into every delivery row: a group's Announce to 50 member servers was 50
//! copies of the same ~1 KB, written, claimed and rewritten per row. A
//! delivery names its body by `body_id`; bodies no delivery names any more
//! are pruned with the delivered rows. Existing rows get one body each.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum DeliveryBodies {
    Table,
    Id,
    Body,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(DeliveryBodies::Table)
                .col(big_pk_auto(DeliveryBodies::Id))
                .col(text(DeliveryBodies::Body))
                .col(timestamp_with_time_zone(DeliveryBodies::CreatedAt))
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        let postgres = m.get_database_backend() == sea_orm::DbBackend::Postgres;
        // No foreign key: SQLite could not drop the column again on the way
        // down. Bodies are written with their rows in one transaction, and
        // the worker fails a row whose body is missing with a reason.
        db.execute_unprepared(if postgres {
            "ALTER TABLE deliveries ADD COLUMN body_id BIGINT"
        } else {
            "ALTER TABLE deliveries ADD COLUMN body_id INTEGER"
        })
        .await?;
        db.execute_unprepared(
            "INSERT INTO delivery_bodies (id, body, created_at) \
             SELECT id, payload, created_at FROM deliveries",
        )
        .await?;
        db.execute_unprepared("UPDATE deliveries SET body_id = id")
            .await?;
        if postgres {
            db.execute_unprepared(
                "SELECT setval(pg_get_serial_sequence('delivery_bodies', 'id'), \
                 (SELECT COALESCE(MAX(id), 0) + 1 FROM delivery_bodies), false)",
            )
            .await?;
            db.execute_unprepared("ALTER TABLE deliveries ALTER COLUMN body_id SET NOT NULL")
                .await?;
        }
        db.execute_unprepared("ALTER TABLE deliveries DROP COLUMN payload")
            .await?;
        db.execute_unprepared("CREATE INDEX idx_deliveries_body ON deliveries (body_id)")
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared("ALTER TABLE deliveries ADD COLUMN payload TEXT NOT NULL DEFAULT ''")
            .await?;
        db.execute_unprepared(
            "UPDATE deliveries SET payload = COALESCE((SELECT b.body FROM delivery_bodies b \
             WHERE b.id = deliveries.body_id), '')",
        )
        .await?;
        db.execute_unprepared("DROP INDEX idx_deliveries_body")
            .await?;
        db.execute_unprepared("ALTER TABLE deliveries DROP COLUMN body_id")
            .await?;
        m.drop_table(Table::drop().table(DeliveryBodies::Table).to_owned())
            .await
    }
}
