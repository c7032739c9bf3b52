//! One queue row per activity sent to many inboxes (`fanouts`), with a
//! cursor over its inbox list, instead of one `deliveries` row per inbox. A
//! group's Announce to 50 member servers was 50 rows written in the inbox's
//! transaction, 50 rewritten when claimed and 50 again when delivered; now it
//! is one row written, claimed and moved forward a batch at a time. An inbox
//! that has to wait (a retry, a full instance, a refusal) gets a row of its
//! own in `deliveries`, naming the fan-out it came from (`fanout_id`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Fanouts {
    Table,
    Id,
    ActivityApId,
    ActorId,
    BodyId,
    Inboxes,
    Targets,
    Next,
    Delivered,
    Claims,
    LockedUntil,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Actors {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Fanouts::Table)
                .col(big_pk_auto(Fanouts::Id))
                .col(string(Fanouts::ActivityApId))
                .col(big_integer(Fanouts::ActorId))
                .col(big_integer(Fanouts::BodyId))
                .col(text(Fanouts::Inboxes))
                .col(integer(Fanouts::Targets))
                .col(integer(Fanouts::Next))
                .col(integer(Fanouts::Delivered))
                .col(integer(Fanouts::Claims).default(0))
                .col(timestamp_with_time_zone_null(Fanouts::LockedUntil))
                .col(timestamp_with_time_zone(Fanouts::CreatedAt))
                .col(timestamp_with_time_zone(Fanouts::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Fanouts::Table, Fanouts::ActorId)
                        .to(Actors::Table, Actors::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        // Workers claim the oldest unfinished fan-out.
        db.execute_unprepared("CREATE INDEX idx_fanouts_open ON fanouts (id) WHERE next < targets")
            .await?;
        db.execute_unprepared("CREATE INDEX idx_fanouts_body ON fanouts (body_id)")
            .await?;
        db.execute_unprepared(
            if m.get_database_backend() == sea_orm::DbBackend::Postgres {
                "ALTER TABLE deliveries ADD COLUMN fanout_id BIGINT"
            } else {
                "ALTER TABLE deliveries ADD COLUMN fanout_id INTEGER"
            },
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX idx_deliveries_fanout ON deliveries (fanout_id) WHERE fanout_id IS NOT NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        // What a fan-out has not sent yet becomes a row per inbox: nothing
        // queued is lost on the way down.
        db.execute_unprepared(
            if m.get_database_backend() == sea_orm::DbBackend::Postgres {
                "INSERT INTO deliveries (activity_ap_id, actor_id, inbox, body_id, status, \
                 attempts, next_attempt_at, created_at, updated_at) \
                 SELECT f.activity_ap_id, f.actor_id, j.value, f.body_id, 'pending', 0, \
                 f.updated_at, f.created_at, f.updated_at \
                 FROM fanouts f, json_array_elements_text(f.inboxes::json) WITH ORDINALITY AS j(value, n) \
                 WHERE j.n > f.next AND NOT EXISTS (SELECT 1 FROM deliveries d \
                 WHERE d.fanout_id = f.id AND d.inbox = j.value)"
            } else {
                "INSERT INTO deliveries (activity_ap_id, actor_id, inbox, body_id, status, \
                 attempts, next_attempt_at, created_at, updated_at) \
                 SELECT f.activity_ap_id, f.actor_id, j.value, f.body_id, 'pending', 0, \
                 f.updated_at, f.created_at, f.updated_at \
                 FROM fanouts f, json_each(f.inboxes) j \
                 WHERE j.key >= f.next AND NOT EXISTS (SELECT 1 FROM deliveries d \
                 WHERE d.fanout_id = f.id AND d.inbox = j.value)"
            },
        )
        .await?;
        db.execute_unprepared("DROP INDEX idx_deliveries_fanout")
            .await?;
        db.execute_unprepared("ALTER TABLE deliveries DROP COLUMN fanout_id")
            .await?;
        m.drop_table(Table::drop().table(Fanouts::Table).to_owned())
            .await
    }
}
