//! `fanouts.halted`: a fan-out whose post (or author) was deleted while a
//! worker held it. The deletion cannot turn inboxes a worker may be sending
//! at that moment into rows and cancel them, so it marks the fan-out; the
//! worker sees the mark with its next batch of answers and cancels what it
//! has not sent, and a worker claiming a marked fan-out cancels the rest.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared(
                "ALTER TABLE fanouts ADD COLUMN halted BOOLEAN NOT NULL DEFAULT FALSE",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        // What a halted fan-out has not sent is cancelled, as its worker
        // would have done: without the mark it would be sent.
        db.execute_unprepared(
            if m.get_database_backend() == sea_orm::DbBackend::Postgres {
                "INSERT INTO deliveries (activity_ap_id, actor_id, inbox, body_id, status, \
                 attempts, next_attempt_at, created_at, updated_at, fanout_id) \
                 SELECT f.activity_ap_id, f.actor_id, j.value, f.body_id, 'cancelled', 0, \
                 f.updated_at, f.created_at, f.updated_at, f.id \
                 FROM fanouts f, json_array_elements_text(f.inboxes::json) WITH ORDINALITY AS j(value, n) \
                 WHERE f.halted AND j.n > f.next AND NOT EXISTS (SELECT 1 FROM deliveries d \
                 WHERE d.fanout_id = f.id AND d.inbox = j.value)"
            } else {
                "INSERT INTO deliveries (activity_ap_id, actor_id, inbox, body_id, status, \
                 attempts, next_attempt_at, created_at, updated_at, fanout_id) \
                 SELECT f.activity_ap_id, f.actor_id, j.value, f.body_id, 'cancelled', 0, \
                 f.updated_at, f.created_at, f.updated_at, f.id \
                 FROM fanouts f, json_each(f.inboxes) j \
                 WHERE f.halted AND j.key >= f.next AND NOT EXISTS (SELECT 1 FROM deliveries d \
                 WHERE d.fanout_id = f.id AND d.inbox = j.value)"
            },
        )
        .await?;
        db.execute_unprepared("UPDATE fanouts SET next = targets WHERE halted")
            .await?;
        db.execute_unprepared("ALTER TABLE fanouts DROP COLUMN halted")
            .await?;
        Ok(())
    }
}
