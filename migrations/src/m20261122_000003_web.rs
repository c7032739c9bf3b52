//! The web app: the instance's own settings (one row: name, description,
//! registration mode, whether the first admin exists), browser sessions,
//! invitation links, group roles (owner, moderator), and on existing tables a
//! sign-up status and note for users and rules for groups.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum InstanceSettings {
    Table,
    Id,
    Name,
    Description,
    RegistrationMode,
    SetupDone,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    TokenHash,
    UserId,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Invites {
    Table,
    Id,
    CodeHash,
    CreatedBy,
    MaxUses,
    Uses,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum GroupRoles {
    Table,
    Id,
    GroupId,
    ActorId,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Status,
    Application,
    Email,
}

#[derive(DeriveIden)]
enum Posts {
    Table,
    PublishedAt,
    LastActivityAt,
}

#[derive(DeriveIden)]
enum Actors {
    Table,
    Id,
    Rules,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(InstanceSettings::Table)
                .col(big_integer(InstanceSettings::Id).primary_key())
                .col(string(InstanceSettings::Name))
                .col(text(InstanceSettings::Description))
                .col(string(InstanceSettings::RegistrationMode))
                .col(boolean(InstanceSettings::SetupDone))
                .col(timestamp_with_time_zone(InstanceSettings::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(big_pk_auto(Sessions::Id))
                .col(string_uniq(Sessions::TokenHash))
                .col(big_integer(Sessions::UserId))
                .col(timestamp_with_time_zone(Sessions::CreatedAt))
                .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Sessions::Table, Sessions::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Invites::Table)
                .col(big_pk_auto(Invites::Id))
                .col(string_uniq(Invites::CodeHash))
                .col(big_integer(Invites::CreatedBy))
                .col(integer(Invites::MaxUses))
                .col(integer(Invites::Uses))
                .col(timestamp_with_time_zone(Invites::CreatedAt))
                .col(timestamp_with_time_zone(Invites::ExpiresAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Invites::Table, Invites::CreatedBy)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(GroupRoles::Table)
                .col(big_pk_auto(GroupRoles::Id))
                .col(big_integer(GroupRoles::GroupId))
                .col(big_integer(GroupRoles::ActorId))
                .col(string(GroupRoles::Role))
                .col(timestamp_with_time_zone(GroupRoles::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(GroupRoles::Table, GroupRoles::GroupId)
                        .to(Actors::Table, Actors::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(GroupRoles::Table, GroupRoles::ActorId)
                        .to(Actors::Table, Actors::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_group_roles_pair")
                .table(GroupRoles::Table)
                .col(GroupRoles::GroupId)
                .col(GroupRoles::ActorId)
                .unique()
                .to_owned(),
        )
        .await?;

        // SQLite takes one column per ALTER TABLE.
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .add_column(
                    ColumnDef::new(Users::Status)
                        .string()
                        .not_null()
                        .default("active"),
                )
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .add_column(ColumnDef::new(Users::Application).text().null())
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .add_column(ColumnDef::new(Users::Email).string().null())
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Actors::Table)
                .add_column(ColumnDef::new(Actors::Rules).text().null())
                .to_owned(),
        )
        .await?;
        // A thread's newest activity (its own time or its newest reply's), for
        // "newest activity first" lists.
        m.alter_table(
            Table::alter()
                .table(Posts::Table)
                .add_column(
                    ColumnDef::new(Posts::LastActivityAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        m.exec_stmt(
            Query::update()
                .table(Posts::Table)
                .value(Posts::LastActivityAt, Expr::col(Posts::PublishedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Posts::Table)
                .drop_column(Posts::LastActivityAt)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Actors::Table)
                .drop_column(Actors::Rules)
                .to_owned(),
        )
        .await?;
        for col in [Users::Email, Users::Application, Users::Status] {
            m.alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        m.drop_table(Table::drop().table(GroupRoles::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Invites::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Sessions::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(InstanceSettings::Table).to_owned())
            .await?;
        Ok(())
    }
}
