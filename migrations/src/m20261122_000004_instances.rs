//! Instances this one has dealt with, one row per host (`host[:port]`): the
//! per-instance circuit breaker of the delivery queue (consecutive failures,
//! open until), and when it last answered or wrote to us.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Instances {
    Table,
    Id,
    Domain,
    ConsecutiveFailures,
    OpenUntil,
    LastSuccessAt,
    LastFailureAt,
    LastContactAt,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Instances::Table)
                .col(big_pk_auto(Instances::Id))
                .col(string_uniq(Instances::Domain))
                .col(integer(Instances::ConsecutiveFailures))
                .col(timestamp_with_time_zone_null(Instances::OpenUntil))
                .col(timestamp_with_time_zone_null(Instances::LastSuccessAt))
                .col(timestamp_with_time_zone_null(Instances::LastFailureAt))
                .col(timestamp_with_time_zone_null(Instances::LastContactAt))
                .col(timestamp_with_time_zone(Instances::CreatedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Instances::Table).to_owned())
            .await
    }
}
