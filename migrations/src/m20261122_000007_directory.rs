//! The directory: what a group is about (`group_topics`: conditions, tags,
//! codes, languages; `actors.region`), how big a remote group says it is, the
//! remote groups learned from other instances' directories
//! (`directory_groups`), where each instance publishes its directory
//! (`instances.directory_url`), and links between groups (`group_links`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Actors {
    Table,
    Id,
    Region,
    RemoteMemberCount,
}

#[derive(DeriveIden, Clone, Copy)]
enum Instances {
    Table,
    DirectoryUrl,
    DirectoryReadAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum GroupTopics {
    Table,
    Id,
    ActorId,
    Kind,
    System,
    Value,
    Needle,
}

#[derive(DeriveIden, Clone, Copy)]
enum DirectoryGroups {
    Table,
    Id,
    ActorId,
    Source,
    SeenAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum GroupLinks {
    Table,
    Id,
    GroupId,
    PeerId,
    State,
    ActivityApId,
    RequestedBy,
    CreatedAt,
    AcceptedAt,
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

fn actor_fk(
    table: impl IntoIden + Clone + 'static,
    col: impl IntoIden + Clone + 'static,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Actors::Table, Actors::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add(
            m,
            Actors::Table,
            ColumnDef::new(Actors::Region).string().null().to_owned(),
        )
        .await?;
        add(
            m,
            Actors::Table,
            ColumnDef::new(Actors::RemoteMemberCount)
                .big_integer()
                .null()
                .to_owned(),
        )
        .await?;
        add(
            m,
            Instances::Table,
            ColumnDef::new(Instances::DirectoryUrl)
                .string()
                .null()
                .to_owned(),
        )
        .await?;
        add(
            m,
            Instances::Table,
            ColumnDef::new(Instances::DirectoryReadAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(GroupTopics::Table)
                .col(big_pk_auto(GroupTopics::Id))
                .col(big_integer(GroupTopics::ActorId))
                .col(string(GroupTopics::Kind))
                .col(string_null(GroupTopics::System))
                .col(string(GroupTopics::Value))
                .col(string(GroupTopics::Needle))
                .foreign_key(&mut actor_fk(GroupTopics::Table, GroupTopics::ActorId))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("group_topics_actor")
                .table(GroupTopics::Table)
                .col(GroupTopics::ActorId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("group_topics_needle")
                .table(GroupTopics::Table)
                .col(GroupTopics::Needle)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(DirectoryGroups::Table)
                .col(big_pk_auto(DirectoryGroups::Id))
                .col(big_integer_uniq(DirectoryGroups::ActorId))
                .col(string(DirectoryGroups::Source))
                .col(timestamp_with_time_zone(DirectoryGroups::SeenAt))
                .foreign_key(&mut actor_fk(
                    DirectoryGroups::Table,
                    DirectoryGroups::ActorId,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("directory_groups_source")
                .table(DirectoryGroups::Table)
                .col(DirectoryGroups::Source)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(GroupLinks::Table)
                .col(big_pk_auto(GroupLinks::Id))
                .col(big_integer(GroupLinks::GroupId))
                .col(big_integer(GroupLinks::PeerId))
                .col(string(GroupLinks::State))
                .col(string_null(GroupLinks::ActivityApId))
                .col(string(GroupLinks::RequestedBy))
                .col(timestamp_with_time_zone(GroupLinks::CreatedAt))
                .col(timestamp_with_time_zone_null(GroupLinks::AcceptedAt))
                .foreign_key(&mut actor_fk(GroupLinks::Table, GroupLinks::GroupId))
                .foreign_key(&mut actor_fk(GroupLinks::Table, GroupLinks::PeerId))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("group_links_pair")
                .table(GroupLinks::Table)
                .col(GroupLinks::GroupId)
                .col(GroupLinks::PeerId)
                .unique()
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            GroupLinks::Table.into_iden(),
            DirectoryGroups::Table.into_iden(),
            GroupTopics::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        for (table, col) in [
            (Actors::Table.into_iden(), Actors::Region.into_iden()),
            (
                Actors::Table.into_iden(),
                Actors::RemoteMemberCount.into_iden(),
            ),
            (
                Instances::Table.into_iden(),
                Instances::DirectoryUrl.into_iden(),
            ),
            (
                Instances::Table.into_iden(),
                Instances::DirectoryReadAt.into_iden(),
            ),
        ] {
            m.alter_table(Table::alter().table(table).drop_column(col).to_owned())
                .await?;
        }
        Ok(())
    }
}
