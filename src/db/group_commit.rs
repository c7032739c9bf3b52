//! Group commit: on SQLite, writes handed to [`Committer::write`] run on one
//! task, and those that arrive while a transaction commits share the next one.
//!
//! SQLite lets one transaction write at a time, and each commit writes every
//! page it changed to the WAL: a received post dirties the same tail pages of
//! `posts`, `received_activities`, `delivery_bodies` and `fanouts` and their
//! indexes as the post before it. Committing the posts that arrive together in
//! one transaction writes those pages once, and the writers no longer wait for
//! SQLite's lock in its busy handler (which sleeps).
//!
//! Each write runs in its own savepoint: one that fails is rolled back alone
//! and its caller gets its error; the others commit. A caller is answered only
//! after the transaction holding its write committed, so "done" still means
//! "on disk" (as durable as `synchronous = NORMAL` makes any commit).
//!
//! PostgreSQL writes concurrently and groups commits itself: there each write
//! is its own transaction, run by the caller.

use std::{panic::AssertUnwindSafe, sync::OnceLock};

use futures::{FutureExt, future::BoxFuture};
use prometheus_client::metrics::counter::Counter;
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, TransactionTrait};
use tokio::sync::{mpsc, oneshot};

/// Writes committed together at most (a bound on how long the first of them
/// waits for the others' statements).
const MAX_BATCH: usize = 64;

/// Writes waiting for the writer task before callers wait to hand theirs.
const QUEUE: usize = 1_024;

/// Told whether the transaction holding a write committed.
type Answer = Box<dyn FnOnce(Result<(), String>) + Send>;

/// A write: run in a savepoint of the batch's transaction. The flag is false
/// when its savepoint could not be undone after it failed, and the batch
/// must not commit.
type Job = Box<dyn for<'a> FnOnce(&'a DatabaseTransaction) -> BoxFuture<'a, (Answer, bool)> + Send>;

pub struct Committer {
    db: DatabaseConnection,
    queue: OnceLock<mpsc::Sender<Job>>,
    counts: Counts,
}

/// Transactions run and writes in them (exported as metrics).
#[derive(Clone)]
struct Counts {
    commits: Counter,
    writes: Counter,
}

impl Committer {
    pub fn new(db: DatabaseConnection, commits: Counter, writes: Counter) -> Self {
        Committer {
            db,
            queue: OnceLock::new(),
            counts: Counts { commits, writes },
        }
    }

    /// Run `f` in a transaction and commit it; its result once committed.
    /// An error from `f` undoes what `f` wrote, and only that.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbErr> + Send + 'static,
        F: for<'a> FnOnce(&'a DatabaseTransaction) -> BoxFuture<'a, Result<T, E>> + Send + 'static,
    {
        if self.db.get_database_backend() != DbBackend::Sqlite {
            let txn = super::write_txn(&self.db).await?;
            let out = f(&txn).await?;
            txn.commit().await?;
            return Ok(out);
        }
        let (tx, rx) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |batch| {
            Box::pin(async move {
                let (res, healthy) = match batch.begin().await {
                    Err(e) => (Err(E::from(e)), true),
                    Ok(savepoint) => match f(&savepoint).await {
                        Ok(v) => match savepoint.commit().await {
                            Ok(()) => (Ok(v), true),
                            Err(e) => (Err(E::from(e)), false),
                        },
                        Err(e) => {
                            let undone = savepoint.rollback().await.is_ok();
                            (Err(e), undone)
                        }
                    },
                };
                let answer: Answer = Box::new(move |committed| {
                    let _ = tx.send(match (res, committed) {
                        (Ok(v), Ok(())) => Ok(v),
                        (Ok(_), Err(why)) => Err(E::from(DbErr::Custom(why))),
                        (Err(e), _) => Err(e),
                    });
                });
                (answer, healthy)
            })
        });
        let lost = || E::from(DbErr::Custom("the write was not committed".into()));
        self.sender().send(job).await.map_err(|_| lost())?;
        rx.await.map_err(|_| lost())?
    }

    fn sender(&self) -> &mpsc::Sender<Job> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(writer(self.db.clone(), rx, self.counts.clone()));
            tx
        })
    }
}

/// The writer task: one transaction per batch of waiting writes, until every
/// sender is gone.
async fn writer(db: DatabaseConnection, mut queue: mpsc::Receiver<Job>, counts: Counts) {
    while let Some(first) = queue.recv().await {
        let txn = match super::write_txn(&db).await {
            Ok(t) => t,
            Err(e) => {
                // Dropping the write tells its caller it was not committed.
                tracing::warn!(error = %e, "cannot begin a write transaction");
                drop(first);
                continue;
            }
        };
        let mut answers = Vec::new();
        let mut healthy = true;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match AssertUnwindSafe(job(&txn)).catch_unwind().await {
                Ok((answer, ok)) => {
                    answers.push(answer);
                    healthy &= ok;
                }
                Err(_) => {
                    // Its caller is told (its answer is gone); the batch's
                    // state after a panic mid-write is unknown.
                    tracing::error!("a write panicked; its batch is rolled back");
                    healthy = false;
                }
            }
            if healthy && answers.len() < MAX_BATCH {
                next = queue.try_recv().ok();
            }
        }
        let committed = if healthy {
            txn.commit().await.map_err(|e| e.to_string())
        } else {
            let _ = txn.rollback().await;
            Err("a write in the same transaction failed; nothing was committed".into())
        };
        counts.commits.inc();
        counts.writes.inc_by(answers.len() as u64);
        if let Err(why) = &committed {
            tracing::warn!(error = %why, writes = answers.len(), "a batch of writes was not committed");
        }
        for answer in answers {
            answer(committed.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ConnectionTrait, Statement};

    async fn sqlite() -> (tempfile::TempDir, DatabaseConnection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/t.db?mode=rwc", dir.path().display());
        let settings = crate::config::DatabaseSettings {
            url,
            max_connections: 4,
            acquire_timeout_secs: 5,
        };
        let db = super::super::connect(&settings).await.expect("connect");
        db.execute_unprepared("CREATE TABLE t (v INTEGER PRIMARY KEY)")
            .await
            .expect("table");
        (dir, db)
    }

    fn insert(
        v: i64,
    ) -> impl for<'a> FnOnce(&'a DatabaseTransaction) -> BoxFuture<'a, Result<i64, DbErr>> {
        move |txn| {
            Box::pin(async move {
                txn.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Sqlite,
                    "INSERT INTO t (v) VALUES (?)",
                    [v.into()],
                ))
                .await?;
                Ok(v)
            })
        }
    }

    async fn values(db: &DatabaseConnection) -> Vec<i64> {
        let rows = db
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT v FROM t ORDER BY v",
            ))
            .await
            .expect("select");
        rows.iter()
            .map(|r| r.try_get::<i64>("", "v").expect("v"))
            .collect()
    }

    /// Writes handed over together commit together; one that fails (a
    /// duplicate key) is undone alone and its caller gets the error.
    #[tokio::test]
    async fn concurrent_writes_commit_and_a_failing_one_is_undone_alone() {
        let (_dir, db) = sqlite().await;
        let (commits, writes) = (Counter::default(), Counter::default());
        let committer =
            std::sync::Arc::new(Committer::new(db.clone(), commits.clone(), writes.clone()));
        let mut tasks = Vec::new();
        for v in [1, 2, 3, 2, 4, 5] {
            let c = committer.clone();
            tasks.push(tokio::spawn(async move { c.write(insert(v)).await }));
        }
        let mut ok = Vec::new();
        let mut failed = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(v) => ok.push(v),
                Err(e) => {
                    assert!(super::super::is_unique_violation(&e), "{e}");
                    failed += 1;
                }
            }
        }
        ok.sort_unstable();
        assert_eq!(ok, vec![1, 2, 3, 4, 5]);
        assert_eq!(failed, 1);
        assert_eq!(values(&db).await, vec![1, 2, 3, 4, 5]);
        // Handed over while the first was running: they shared transactions.
        assert_eq!(writes.get(), 6);
        assert!(commits.get() < 6, "{} commits for 6 writes", commits.get());
    }

    /// A write that fails after writing leaves nothing behind, and a write's
    /// result is seen by the next one's transaction and by readers.
    #[tokio::test]
    async fn a_failed_write_leaves_nothing() {
        let (_dir, db) = sqlite().await;
        let committer = Committer::new(db.clone(), Counter::default(), Counter::default());
        let res: Result<(), DbErr> = committer
            .write(|txn| {
                Box::pin(async move {
                    insert(7)(txn).await?;
                    Err(DbErr::Custom("refused after writing".into()))
                })
            })
            .await;
        assert!(res.is_err());
        assert_eq!(committer.write(insert(8)).await.expect("write"), 8);
        assert_eq!(values(&db).await, vec![8]);
    }
}
