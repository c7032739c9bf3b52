//! Storage: connect, migrate, and the query functions for each table. Only this
//! module writes sea-orm queries; callers get rows and plain values back.

pub mod activities;
pub mod actors;
pub mod deliveries;
pub mod directory;
pub mod entities;
pub mod follows;
pub mod instance;
pub mod instances;
pub mod links;
pub mod moderation;
pub mod policy;
pub mod posts;
pub mod roles;
pub mod sessions;
pub mod users;

use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    TransactionOptions, TransactionTrait,
};

use crate::config::DatabaseSettings;

/// Opens the pool. SQLite gets WAL, a busy timeout and foreign keys, so readers
/// never wait for the writer and writers queue instead of failing.
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(settings.url.clone());
    let wait = Duration::from_secs(settings.acquire_timeout_secs);
    opts.max_connections(settings.max_connections)
        .min_connections(1)
        .acquire_timeout(wait)
        .connect_timeout(wait)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(wait)
                .foreign_keys(true)
                .create_if_missing(true)
        });
    Database::connect(opts).await
}

pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Ready to serve: the database answers and no migration is pending.
pub async fn readiness(db: &DatabaseConnection) -> Result<(), String> {
    use sea_orm::ConnectionTrait;
    db.execute_unprepared("SELECT 1")
        .await
        .map_err(|e| format!("database unreachable: {e}"))?;
    let pending = Migrator::get_pending_migrations_read_only(db)
        .await
        .map_err(|e| format!("cannot read migrations: {e}"))?;
    if pending.is_empty() {
        Ok(())
    } else {
        Err(format!("{} migration(s) pending", pending.len()))
    }
}

/// A transaction that will write. On SQLite it takes the write lock up front
/// (BEGIN IMMEDIATE), so it waits its turn instead of failing half-way.
pub async fn write_txn(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    if db.get_database_backend() == DbBackend::Sqlite {
        db.begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
    } else {
        db.begin().await
    }
}

/// `s` with LIKE's wildcards escaped (use with `LikeExpr::escape('\\')`).
pub fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Is this the "already exists" error of a unique index?
pub fn is_unique_violation(e: &DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
