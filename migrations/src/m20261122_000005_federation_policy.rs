//! Federation policy: the instance's mode (one row, with a version every
//! change bumps so every process reloads at once), its allow and block lists,
//! each group's own allow-list, the admin audit log, what we know of each
//! instance (NodeInfo software and version), and posts an admin has hidden.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum FederationPolicy {
    Table,
    Id,
    Mode,
    Version,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DomainRules {
    Table,
    Id,
    List,
    Domain,
    Reason,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum GroupDomains {
    Table,
    Id,
    GroupId,
    Domain,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    Who,
    Action,
    Target,
    Reason,
}

#[derive(DeriveIden)]
enum Actors {
    Table,
    DomainsRestricted,
}

#[derive(DeriveIden)]
enum Instances {
    Table,
    Software,
    Version,
    NodeinfoAt,
}

#[derive(DeriveIden)]
enum Posts {
    Table,
    HiddenAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(FederationPolicy::Table)
                .col(big_integer(FederationPolicy::Id).primary_key())
                .col(string(FederationPolicy::Mode))
                .col(big_integer(FederationPolicy::Version))
                .col(timestamp_with_time_zone(FederationPolicy::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.exec_stmt(
            Query::insert()
                .into_table(FederationPolicy::Table)
                .columns([
                    FederationPolicy::Id,
                    FederationPolicy::Mode,
                    FederationPolicy::Version,
                    FederationPolicy::UpdatedAt,
                ])
                .values_panic([1.into(), "open".into(), 1.into(), Expr::current_timestamp()])
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(DomainRules::Table)
                .col(big_pk_auto(DomainRules::Id))
                .col(string(DomainRules::List))
                .col(string(DomainRules::Domain))
                .col(text_null(DomainRules::Reason))
                .col(string(DomainRules::CreatedBy))
                .col(timestamp_with_time_zone(DomainRules::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("domain_rules_list_domain")
                .table(DomainRules::Table)
                .col(DomainRules::List)
                .col(DomainRules::Domain)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(GroupDomains::Table)
                .col(big_pk_auto(GroupDomains::Id))
                .col(big_integer(GroupDomains::GroupId))
                .col(string(GroupDomains::Domain))
                .col(timestamp_with_time_zone(GroupDomains::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("group_domains_group_domain")
                .table(GroupDomains::Table)
                .col(GroupDomains::GroupId)
                .col(GroupDomains::Domain)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(big_pk_auto(AuditLog::Id))
                .col(timestamp_with_time_zone(AuditLog::At))
                .col(string(AuditLog::Who))
                .col(string(AuditLog::Action))
                .col(string(AuditLog::Target))
                .col(text_null(AuditLog::Reason))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("audit_log_at")
                .table(AuditLog::Table)
                .col(AuditLog::At)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Actors::Table)
                .add_column(
                    ColumnDef::new(Actors::DomainsRestricted)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .to_owned(),
        )
        .await?;
        for col in [Instances::Software, Instances::Version] {
            m.alter_table(
                Table::alter()
                    .table(Instances::Table)
                    .add_column(ColumnDef::new(col).string().null())
                    .to_owned(),
            )
            .await?;
        }
        m.alter_table(
            Table::alter()
                .table(Instances::Table)
                .add_column(
                    ColumnDef::new(Instances::NodeinfoAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Posts::Table)
                .add_column(
                    ColumnDef::new(Posts::HiddenAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite drops one column per statement.
        m.alter_table(
            Table::alter()
                .table(Posts::Table)
                .drop_column(Posts::HiddenAt)
                .to_owned(),
        )
        .await?;
        for col in [
            Instances::NodeinfoAt,
            Instances::Version,
            Instances::Software,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Instances::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        m.alter_table(
            Table::alter()
                .table(Actors::Table)
                .drop_column(Actors::DomainsRestricted)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(AuditLog::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(GroupDomains::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(DomainRules::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(FederationPolicy::Table).to_owned())
            .await?;
        Ok(())
    }
}
