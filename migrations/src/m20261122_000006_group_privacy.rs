//! Private groups, moderation and members' rights: a group's visibility, join
//! policy and moderation defaults; the applicant's note on a membership
//! request; bans, invitations and reports; locked threads and held posts; the
//! moderation log (the audit log, scoped to a group); deleted accounts, whose
//! actor row stays as a tombstone so the handle is never reused.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Actors {
    Table,
    Visibility,
    JoinPolicy,
    MemberCountHidden,
    Premoderation,
    DefaultContentWarning,
    DeletedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Follows {
    Table,
    Note,
}

#[derive(DeriveIden, Clone, Copy)]
enum Posts {
    Table,
    LockedAt,
    HeldAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditLog {
    Table,
    GroupId,
}

#[derive(DeriveIden, Clone, Copy)]
enum GroupBans {
    Table,
    Id,
    GroupId,
    ActorId,
    Reason,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum GroupInvites {
    Table,
    Id,
    GroupId,
    TokenHash,
    ActorId,
    CreatedBy,
    CreatedAt,
    UsedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Reports {
    Table,
    Id,
    GroupId,
    ReporterId,
    TargetActorId,
    PostId,
    Comment,
    FlagApId,
    Status,
    ResolvedBy,
    ResolvedAt,
    Resolution,
    ForwardedAt,
    CreatedAt,
}

async fn add(
    m: &SchemaManager<'_>,
    table: impl IntoIden + Clone + 'static,
    col: ColumnDef,
) -> Result<(), DbErr> {
    let mut col = col;
    m.alter_table(Table::alter().table(table).add_column(&mut col).to_owned())
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add(
            m,
            Actors::Table,
            ColumnDef::new(Actors::Visibility)
                .string()
                .not_null()
                .default("public")
                .to_owned(),
        )
        .await?;
        add(
            m,
            Actors::Table,
            ColumnDef::new(Actors::JoinPolicy)
                .string()
                .not_null()
                .default("open")
                .to_owned(),
        )
        .await?;
        add(
            m,
            Actors::Table,
            ColumnDef::new(Actors::MemberCountHidden)
                .boolean()
                .not_null()
                .default(false)
                .to_owned(),
        )
        .await?;
        add(
            m,
            Actors::Table,
            ColumnDef::new(Actors::Premoderation)
                .boolean()
                .not_null()
                .default(false)
                .to_owned(),
        )
        .await?;
        add(
            m,
            Actors::Table,
            ColumnDef::new(Actors::DefaultContentWarning)
                .string()
                .null()
                .to_owned(),
        )
        .await?;
        add(
            m,
            Actors::Table,
            ColumnDef::new(Actors::DeletedAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        )
        .await?;
        add(
            m,
            Follows::Table,
            ColumnDef::new(Follows::Note).text().null().to_owned(),
        )
        .await?;
        add(
            m,
            Posts::Table,
            ColumnDef::new(Posts::LockedAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        )
        .await?;
        add(
            m,
            Posts::Table,
            ColumnDef::new(Posts::HeldAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        )
        .await?;
        add(
            m,
            AuditLog::Table,
            ColumnDef::new(AuditLog::GroupId)
                .big_integer()
                .null()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("audit_log_group")
                .table(AuditLog::Table)
                .col(AuditLog::GroupId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(GroupBans::Table)
                .col(big_pk_auto(GroupBans::Id))
                .col(big_integer(GroupBans::GroupId))
                .col(big_integer(GroupBans::ActorId))
                .col(text_null(GroupBans::Reason))
                .col(string(GroupBans::CreatedBy))
                .col(timestamp_with_time_zone(GroupBans::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("group_bans_group_actor")
                .table(GroupBans::Table)
                .col(GroupBans::GroupId)
                .col(GroupBans::ActorId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(GroupInvites::Table)
                .col(big_pk_auto(GroupInvites::Id))
                .col(big_integer(GroupInvites::GroupId))
                .col(string_null(GroupInvites::TokenHash))
                .col(big_integer_null(GroupInvites::ActorId))
                .col(string(GroupInvites::CreatedBy))
                .col(timestamp_with_time_zone(GroupInvites::CreatedAt))
                .col(timestamp_with_time_zone_null(GroupInvites::UsedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("group_invites_token")
                .table(GroupInvites::Table)
                .col(GroupInvites::TokenHash)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Reports::Table)
                .col(big_pk_auto(Reports::Id))
                .col(big_integer_null(Reports::GroupId))
                .col(big_integer(Reports::ReporterId))
                .col(big_integer_null(Reports::TargetActorId))
                .col(big_integer_null(Reports::PostId))
                .col(text_null(Reports::Comment))
                .col(string_null(Reports::FlagApId))
                .col(string(Reports::Status))
                .col(string_null(Reports::ResolvedBy))
                .col(timestamp_with_time_zone_null(Reports::ResolvedAt))
                .col(text_null(Reports::Resolution))
                .col(timestamp_with_time_zone_null(Reports::ForwardedAt))
                .col(timestamp_with_time_zone(Reports::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("reports_status")
                .table(Reports::Table)
                .col(Reports::Status)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Reports::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(GroupInvites::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(GroupBans::Table).to_owned())
            .await?;
        m.drop_index(
            Index::drop()
                .name("audit_log_group")
                .table(AuditLog::Table)
                .to_owned(),
        )
        .await?;
        // SQLite drops one column per statement.
        let drop = |t: DynIden, c: DynIden| Table::alter().table(t).drop_column(c).to_owned();
        m.alter_table(drop(
            AuditLog::Table.into_iden(),
            AuditLog::GroupId.into_iden(),
        ))
        .await?;
        for c in [Posts::HeldAt, Posts::LockedAt] {
            m.alter_table(drop(Posts::Table.into_iden(), c.into_iden()))
                .await?;
        }
        m.alter_table(drop(Follows::Table.into_iden(), Follows::Note.into_iden()))
            .await?;
        for c in [
            Actors::DeletedAt,
            Actors::DefaultContentWarning,
            Actors::Premoderation,
            Actors::MemberCountHidden,
            Actors::JoinPolicy,
            Actors::Visibility,
        ] {
            m.alter_table(drop(Actors::Table.into_iden(), c.into_iden()))
                .await?;
        }
        Ok(())
    }
}
