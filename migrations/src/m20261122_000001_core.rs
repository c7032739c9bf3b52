//! The core tables: actors (local and remote, people, groups and the instance
//! actor), local accounts and their API tokens, follows (group membership),
//! posts, received activity ids (inbox idempotency) and the delivery queue.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Actors {
    Table,
    Id,
    ApId,
    Kind,
    Local,
    Username,
    Domain,
    DisplayName,
    Summary,
    Inbox,
    SharedInbox,
    Outbox,
    Followers,
    PublicKey,
    PrivateKey,
    ManuallyApprovesFollowers,
    Discoverable,
    LastRefreshedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    ActorId,
    PasswordHash,
    IsAdmin,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    TokenHash,
    UserId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Follows {
    Table,
    Id,
    FollowerId,
    GroupId,
    State,
    FollowApId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Posts {
    Table,
    Id,
    ApId,
    AuthorId,
    GroupId,
    ThreadId,
    InReplyToId,
    Title,
    ContentHtml,
    Source,
    Local,
    PublishedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum ReceivedActivities {
    Table,
    Id,
    ApId,
    Kind,
    ActorApId,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    ActivityApId,
    ActorId,
    Inbox,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LockedUntil,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Actors::Table)
                .col(big_pk_auto(Actors::Id))
                .col(string_uniq(Actors::ApId))
                .col(string(Actors::Kind))
                .col(boolean(Actors::Local))
                .col(string(Actors::Username))
                .col(string(Actors::Domain))
                .col(string_null(Actors::DisplayName))
                .col(text_null(Actors::Summary))
                .col(string(Actors::Inbox))
                .col(string_null(Actors::SharedInbox))
                .col(string_null(Actors::Outbox))
                .col(string_null(Actors::Followers))
                .col(text(Actors::PublicKey))
                .col(text_null(Actors::PrivateKey))
                .col(boolean(Actors::ManuallyApprovesFollowers))
                .col(boolean(Actors::Discoverable))
                .col(timestamp_with_time_zone_null(Actors::LastRefreshedAt))
                .col(timestamp_with_time_zone(Actors::CreatedAt))
                .to_owned(),
        )
        .await?;
        // Handles are looked up by (username, domain, kind); stored lowercase.
        m.create_index(
            Index::create()
                .name("idx_actors_handle")
                .table(Actors::Table)
                .col(Actors::Username)
                .col(Actors::Domain)
                .col(Actors::Kind)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(big_pk_auto(Users::Id))
                .col(big_integer_uniq(Users::ActorId))
                .col(string(Users::PasswordHash))
                .col(boolean(Users::IsAdmin))
                .col(timestamp_with_time_zone(Users::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Users::Table, Users::ActorId)
                        .to(Actors::Table, Actors::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ApiTokens::Table)
                .col(big_pk_auto(ApiTokens::Id))
                .col(string_uniq(ApiTokens::TokenHash))
                .col(big_integer(ApiTokens::UserId))
                .col(timestamp_with_time_zone(ApiTokens::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ApiTokens::Table, ApiTokens::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Follows::Table)
                .col(big_pk_auto(Follows::Id))
                .col(big_integer(Follows::FollowerId))
                .col(big_integer(Follows::GroupId))
                .col(string(Follows::State))
                .col(string_null(Follows::FollowApId))
                .col(timestamp_with_time_zone(Follows::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Follows::Table, Follows::FollowerId)
                        .to(Actors::Table, Actors::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Follows::Table, Follows::GroupId)
                        .to(Actors::Table, Actors::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_follows_pair")
                .table(Follows::Table)
                .col(Follows::FollowerId)
                .col(Follows::GroupId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_follows_group")
                .table(Follows::Table)
                .col(Follows::GroupId)
                .col(Follows::State)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Posts::Table)
                .col(big_pk_auto(Posts::Id))
                .col(string_uniq(Posts::ApId))
                .col(big_integer(Posts::AuthorId))
                .col(big_integer(Posts::GroupId))
                .col(big_integer_null(Posts::ThreadId))
                .col(big_integer_null(Posts::InReplyToId))
                .col(string_null(Posts::Title))
                .col(text(Posts::ContentHtml))
                .col(text_null(Posts::Source))
                .col(boolean(Posts::Local))
                .col(timestamp_with_time_zone(Posts::PublishedAt))
                .col(timestamp_with_time_zone_null(Posts::UpdatedAt))
                .col(timestamp_with_time_zone_null(Posts::DeletedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Posts::Table, Posts::AuthorId)
                        .to(Actors::Table, Actors::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Posts::Table, Posts::GroupId)
                        .to(Actors::Table, Actors::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // A group's thread list: newest first, one index scan, no N+1.
        m.create_index(
            Index::create()
                .name("idx_posts_group_threads")
                .table(Posts::Table)
                .col(Posts::GroupId)
                .col(Posts::ThreadId)
                .col(Posts::PublishedAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_posts_thread")
                .table(Posts::Table)
                .col(Posts::ThreadId)
                .col(Posts::PublishedAt)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ReceivedActivities::Table)
                .col(big_pk_auto(ReceivedActivities::Id))
                .col(string_uniq(ReceivedActivities::ApId))
                .col(string(ReceivedActivities::Kind))
                .col(string(ReceivedActivities::ActorApId))
                .col(timestamp_with_time_zone(ReceivedActivities::ReceivedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Deliveries::Table)
                .col(big_pk_auto(Deliveries::Id))
                .col(string(Deliveries::ActivityApId))
                .col(big_integer(Deliveries::ActorId))
                .col(string(Deliveries::Inbox))
                .col(text(Deliveries::Payload))
                .col(string(Deliveries::Status))
                .col(integer(Deliveries::Attempts))
                .col(timestamp_with_time_zone(Deliveries::NextAttemptAt))
                .col(timestamp_with_time_zone_null(Deliveries::LockedUntil))
                .col(text_null(Deliveries::LastError))
                .col(timestamp_with_time_zone(Deliveries::CreatedAt))
                .col(timestamp_with_time_zone(Deliveries::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Deliveries::Table, Deliveries::ActorId)
                        .to(Actors::Table, Actors::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // Workers claim due rows: status + next attempt.
        m.create_index(
            Index::create()
                .name("idx_deliveries_due")
                .table(Deliveries::Table)
                .col(Deliveries::Status)
                .col(Deliveries::NextAttemptAt)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            Deliveries::Table.into_iden(),
            ReceivedActivities::Table.into_iden(),
            Posts::Table.into_iden(),
            Follows::Table.into_iden(),
            ApiTokens::Table.into_iden(),
            Users::Table.into_iden(),
            Actors::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
