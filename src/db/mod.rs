//! Storage: connect, migrate, and the query functions for each table. Only this
//! module writes sea-orm queries; callers get rows and plain values back.

pub mod activities;
pub mod actors;
pub mod deliveries;
pub mod directory;
pub mod entities;
pub mod fanouts;
pub mod follows;
pub mod group_commit;
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

/// WAL frames between SQLite's automatic checkpoints (its default is 1,000,
/// 4 MB). A busy group commits a dozen pages per received post, most of them
/// the same tail pages of each table and index again: at the default a
/// checkpoint (a copy of every page in the WAL, and an fsync) ran several
/// times a second and was a twentieth of the server's CPU under load. Ten
/// times fewer checkpoints copy each hot page ten times less often; the WAL
/// grows to about 40 MB between them, and reads look frames up in its index.
const WAL_CHECKPOINT_PAGES: u32 = 10_000;

/// Opens the pool. SQLite gets WAL, a busy timeout and foreign keys, so readers
/// never wait for the writer and writers queue instead of failing.
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    Database::connect(options(settings, settings.max_connections, 1)).await
}

/// The connection the group committer writes on (see `group_commit`): on
/// SQLite one of its own, outside the pool. A connection's page cache is
/// dropped whenever another connection has written since its last
/// transaction; a pooled one handed to the committer in turn had almost
/// always been passed over by someone else's commit, and read each page it
/// touched again from the WAL. Kept for the committer alone, it keeps its
/// cache while it is the only writer. Opened at the first such write, so
/// an idle server holds no more connections than before. On PostgreSQL,
/// the pool itself.
pub async fn connect_writer(
    settings: &DatabaseSettings,
    pool: &DatabaseConnection,
) -> Result<DatabaseConnection, DbErr> {
    if pool.get_database_backend() != DbBackend::Sqlite {
        return Ok(pool.clone());
    }
    Database::connect(options(settings, 1, 0).connect_lazy(true).to_owned()).await
}

fn options(
    settings: &DatabaseSettings,
    max_connections: u32,
    min_connections: u32,
) -> ConnectOptions {
    let mut opts = ConnectOptions::new(settings.url.clone());
    let wait = Duration::from_secs(settings.acquire_timeout_secs);
    opts.max_connections(max_connections)
        .min_connections(min_connections)
        .acquire_timeout(wait)
        .connect_timeout(wait)
        .sqlx_logging(false)
        // sqlx pings a pooled connection before every checkout by default:
        // one more round trip per statement (to SQLite's thread, or to the
        // PostgreSQL server). Only a connection idle long enough to have
        // been dropped by a server or a firewall is tested now.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .map_sqlx_sqlite_opts(move |o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(wait)
                .pragma("wal_autocheckpoint", WAL_CHECKPOINT_PAGES.to_string())
                // Statement journals in memory, not in temporary files.
                .pragma("temp_store", "memory")
                .foreign_keys(true)
                .create_if_missing(true)
        })
        .map_sqlx_sqlite_pool_opts(|p| {
            p.after_connect(|conn, _| Box::pin(async move { stable_plans(conn).await }))
        });
    opts
}

/// Turn on SQLite's query-planner stability guarantee for this connection.
///
/// Without it SQLite plans a `LIMIT ?` (every sea-orm `.one()` and
/// `.limit(n)`) for the value bound, so each run of a cached statement
/// with new bindings was parsed and planned again: a sixth of the CPU of a
/// page of threads. With it, plans no longer depend on bound values; the
/// only plan that did here was a LIKE prefix, and ours match `%…%`, which
/// no index serves anyway.
async fn stable_plans(
    conn: &mut sea_orm::sqlx::SqliteConnection,
) -> Result<(), sea_orm::sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle();
    const ON: std::ffi::c_int = 1;
    let mut now_on: std::ffi::c_int = 0;
    // SAFETY: `db` is this connection's open handle, held locked (no other
    // thread uses it) for the call; the option takes an int and an int*.
    let rc = unsafe {
        libsqlite3_sys::sqlite3_db_config(
            db.as_ptr(),
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
            ON,
            &mut now_on as *mut std::ffi::c_int,
        )
    };
    if rc != libsqlite3_sys::SQLITE_OK || now_on != 1 {
        return Err(sea_orm::sqlx::Error::Configuration(
            format!("SQLite refused the query-planner stability option (code {rc})").into(),
        ));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pooled SQLite connection plans without looking at bound values
    /// (see `stable_plans`): asked with -1, the option reports its state.
    #[tokio::test]
    async fn every_sqlite_connection_has_stable_plans() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = DatabaseSettings {
            url: format!("sqlite://{}/k.db", dir.path().display()),
            max_connections: 2,
            acquire_timeout_secs: 5,
        };
        let db = connect(&settings).await.expect("connect");
        let pool = db.get_sqlite_connection_pool();
        let (mut a, mut b) = (
            pool.acquire().await.expect("first"),
            pool.acquire().await.expect("second"),
        );
        for conn in [&mut a, &mut b] {
            let mut handle = conn.lock_handle().await.expect("handle");
            const ASK: std::ffi::c_int = -1;
            let mut on: std::ffi::c_int = -1;
            // SAFETY: as in `stable_plans`; -1 only reads the option.
            let rc = unsafe {
                libsqlite3_sys::sqlite3_db_config(
                    handle.as_raw_handle().as_ptr(),
                    libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
                    ASK,
                    &mut on as *mut std::ffi::c_int,
                )
            };
            assert_eq!((rc, on), (libsqlite3_sys::SQLITE_OK, 1));
        }
    }
}
