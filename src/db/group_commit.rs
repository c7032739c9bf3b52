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
//! A write that fails undoes its batch: the transaction is rolled back, the
//! failed write's caller gets its error, and the writes that ran before it
//! in the batch are run again, each in a transaction of its own (a write is
//! a function the committer may call more than once, on a fresh
//! transaction). Failures are rare (a lost race on a unique key, a full
//! disk), so the usual batch pays no savepoints: each savepoint was two more
//! statements, each a round trip to SQLite's thread. A caller is answered
//! only after the transaction holding its write committed, so "done" still
//! means "on disk" (as durable as `synchronous = NORMAL` makes any commit).
//!
//! PostgreSQL writes concurrently and groups commits itself: there each write
//! is its own transaction, run by the caller.

use std::{panic::AssertUnwindSafe, sync::OnceLock};

use futures::{FutureExt, future::BoxFuture};
use prometheus_client::metrics::counter::Counter;
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbBackend, DbErr};
use tokio::sync::{mpsc, oneshot};

/// Writes committed together at most (a bound on how long the first of them
/// waits for the others' statements).
const MAX_BATCH: usize = 64;

/// Writes waiting for the writer task before callers wait to hand theirs.
const QUEUE: usize = 1_024;

/// A write waiting for its transaction's fate.
trait Write: Send {
    /// Run in `txn` (again, when its first batch was undone). False when it
    /// failed: its error is kept for its caller, and `txn` must not commit.
    fn run<'a>(&'a mut self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, bool>;
    /// Tell the caller its result once the transaction committed, or why
    /// not.
    fn answer(self: Box<Self>, committed: Result<(), String>);
}

struct Job<F, T, E> {
    f: F,
    out: Option<Result<T, E>>,
    tx: oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> Write for Job<F, T, E>
where
    F: for<'a> Fn(&'a DatabaseTransaction) -> BoxFuture<'a, Result<T, E>> + Send,
    T: Send,
    E: From<DbErr> + Send,
{
    fn run<'a>(&'a mut self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let out = (self.f)(txn).await;
            let ok = out.is_ok();
            self.out = Some(out);
            ok
        })
    }

    fn answer(self: Box<Self>, committed: Result<(), String>) {
        let res = match (self.out, committed) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (_, Err(why)) => Err(E::from(DbErr::Custom(why))),
            (None, Ok(())) => Err(E::from(DbErr::Custom("the write did not run".into()))),
        };
        let _ = self.tx.send(res);
    }
}

pub struct Committer {
    db: DatabaseConnection,
    queue: OnceLock<mpsc::Sender<Box<dyn Write>>>,
    counts: Counts,
}

/// Transactions committed and the writes in them (exported as metrics).
#[derive(Clone)]
struct Counts {
    commits: Counter,
    writes: Counter,
}

impl Counts {
    fn committed(&self, writes: usize) {
        self.commits.inc();
        self.writes.inc_by(writes as u64);
    }
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
    /// An error from `f` undoes what `f` wrote, and only that. `f` may be
    /// called more than once, each time on a fresh transaction (when
    /// another write of its batch failed): what it does besides writing
    /// must bear repeating.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbErr> + Send + 'static,
        F: for<'a> Fn(&'a DatabaseTransaction) -> BoxFuture<'a, Result<T, E>> + Send + 'static,
    {
        if self.db.get_database_backend() != DbBackend::Sqlite {
            let txn = super::write_txn(&self.db).await?;
            let out = f(&txn).await?;
            txn.commit().await?;
            return Ok(out);
        }
        let (tx, rx) = oneshot::channel::<Result<T, E>>();
        let job: Box<dyn Write> = Box::new(Job { f, out: None, tx });
        let lost = || E::from(DbErr::Custom("the write was not committed".into()));
        self.sender().send(job).await.map_err(|_| lost())?;
        rx.await.map_err(|_| lost())?
    }

    fn sender(&self) -> &mpsc::Sender<Box<dyn Write>> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(writer(self.db.clone(), rx, self.counts.clone()));
            tx
        })
    }

    /// Writes handed over and not yet taken by the writer task.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.queue
            .get()
            .map_or(0, |q| q.max_capacity() - q.capacity())
    }
}

/// How a batch's run ended.
enum Ran {
    /// Every write ran: commit.
    Clean,
    /// The last write taken failed (or panicked: `None`): undo the batch.
    Failed(Option<Box<dyn Write>>),
}

/// Run `job`, catching a panic (its caller is then told "not committed").
async fn run(job: &mut Box<dyn Write>, txn: &DatabaseTransaction) -> Option<bool> {
    match AssertUnwindSafe(job.run(txn)).catch_unwind().await {
        Ok(ok) => Some(ok),
        Err(_) => {
            tracing::error!("a write panicked; its batch is rolled back");
            None
        }
    }
}

/// The writer task: one transaction per batch of waiting writes, until every
/// sender is gone.
async fn writer(db: DatabaseConnection, mut queue: mpsc::Receiver<Box<dyn Write>>, counts: Counts) {
    while let Some(first) = queue.recv().await {
        let txn = match super::write_txn(&db).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot begin a write transaction");
                first.answer(Err(format!("cannot begin a transaction: {e}")));
                continue;
            }
        };
        let mut batch: Vec<Box<dyn Write>> = Vec::new();
        let mut next = Some(first);
        let mut ran = Ran::Clean;
        let mut yielded = false;
        while let Some(mut job) = next.take() {
            match run(&mut job, &txn).await {
                Some(true) => batch.push(job),
                Some(false) => {
                    ran = Ran::Failed(Some(job));
                    break;
                }
                None => {
                    ran = Ran::Failed(None);
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = queue.try_recv().ok();
                if next.is_none() && !yielded {
                    // Let the tasks ready to run hand their writes over
                    // before this transaction commits.
                    yielded = true;
                    tokio::task::yield_now().await;
                    next = queue.try_recv().ok();
                }
            }
        }
        match ran {
            Ran::Clean => {
                let committed = txn.commit().await.map_err(|e| e.to_string());
                match &committed {
                    Ok(()) => counts.committed(batch.len()),
                    Err(why) => {
                        tracing::warn!(error = %why, writes = batch.len(), "a batch of writes was not committed");
                    }
                }
                for job in batch {
                    job.answer(committed.clone());
                }
            }
            Ran::Failed(failed) => {
                let _ = txn.rollback().await;
                if let Some(job) = failed {
                    // Its own error, whatever the transaction's fate.
                    job.answer(Ok(()));
                }
                for job in batch {
                    alone(&db, job, &counts).await;
                }
            }
        }
    }
}

/// A write from an undone batch, run again in a transaction of its own.
async fn alone(db: &DatabaseConnection, mut job: Box<dyn Write>, counts: &Counts) {
    let txn = match super::write_txn(db).await {
        Ok(t) => t,
        Err(e) => return job.answer(Err(format!("cannot begin a transaction: {e}"))),
    };
    match run(&mut job, &txn).await {
        Some(true) => {
            let committed = txn.commit().await.map_err(|e| e.to_string());
            if committed.is_ok() {
                counts.committed(1);
            }
            job.answer(committed);
        }
        Some(false) => {
            let _ = txn.rollback().await;
            job.answer(Ok(()));
        }
        None => {
            let _ = txn.rollback().await;
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
    ) -> impl for<'a> Fn(&'a DatabaseTransaction) -> BoxFuture<'a, Result<i64, DbErr>> + Clone {
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

    /// A write that waits for `gate` before it inserts `v`: it holds the
    /// writer task while the next writes queue up behind it.
    fn gated(
        v: i64,
        gate: std::sync::Arc<tokio::sync::Semaphore>,
        started: std::sync::Arc<tokio::sync::Semaphore>,
    ) -> impl for<'a> Fn(&'a DatabaseTransaction) -> BoxFuture<'a, Result<i64, DbErr>> {
        move |txn| {
            let (gate, started) = (gate.clone(), started.clone());
            Box::pin(async move {
                started.add_permits(1);
                let _ = gate
                    .acquire()
                    .await
                    .map_err(|e| DbErr::Custom(e.to_string()))?;
                insert(v)(txn).await
            })
        }
    }

    /// Hand `values` over one after another (in this order) while the writer
    /// task is held by a gated write; then open the gate. The results, in
    /// the order given.
    async fn queued_behind_a_gate(
        committer: &std::sync::Arc<Committer>,
        values: &[i64],
    ) -> Vec<Result<i64, DbErr>> {
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let started = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let mut tasks = Vec::new();
        let c = committer.clone();
        let (g, s) = (gate.clone(), started.clone());
        let v0 = values[0];
        tasks.push(tokio::spawn(async move { c.write(gated(v0, g, s)).await }));
        started.acquire().await.expect("started").forget();
        for (i, v) in values.iter().copied().enumerate().skip(1) {
            let c = committer.clone();
            tasks.push(tokio::spawn(async move { c.write(insert(v)).await }));
            // The first is with the writer task; the others wait in order.
            while committer.waiting() < i {
                tokio::task::yield_now().await;
            }
        }
        gate.add_permits(values.len());
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("task"));
        }
        out
    }

    fn committer(db: &DatabaseConnection) -> (std::sync::Arc<Committer>, Counter, Counter) {
        let (commits, writes) = (Counter::default(), Counter::default());
        let c = Committer::new(db.clone(), commits.clone(), writes.clone());
        (std::sync::Arc::new(c), commits, writes)
    }

    /// Writes handed over while a transaction runs share the next commit.
    #[tokio::test]
    async fn writes_that_queue_up_share_one_commit() {
        let (_dir, db) = sqlite().await;
        let (committer, commits, writes) = committer(&db);
        let out = queued_behind_a_gate(&committer, &[1, 2, 3, 4]).await;
        let ok: Vec<i64> = out.into_iter().map(|r| r.expect("committed")).collect();
        assert_eq!(ok, vec![1, 2, 3, 4]);
        assert_eq!(values(&db).await, vec![1, 2, 3, 4]);
        assert_eq!((commits.get(), writes.get()), (1, 4));
    }

    /// A write that fails (a duplicate key) undoes its batch: its caller gets
    /// its error, the writes before it are run again alone and committed,
    /// and the writes after it get a batch of their own.
    #[tokio::test]
    async fn a_failing_write_is_undone_and_the_rest_of_its_batch_committed() {
        let (_dir, db) = sqlite().await;
        let (committer, commits, writes) = committer(&db);
        let out = queued_behind_a_gate(&committer, &[1, 2, 3, 2, 4, 5]).await;
        let ok: Vec<i64> = out
            .iter()
            .filter_map(|r| r.as_ref().ok().copied())
            .collect();
        assert_eq!(ok, vec![1, 2, 3, 4, 5]);
        let failed = out[3].as_ref().expect_err("the duplicate fails");
        assert!(super::super::is_unique_violation(failed), "{failed}");
        assert_eq!(values(&db).await, vec![1, 2, 3, 4, 5]);
        // 1, 2 and 3 alone after the undone batch, then 4 and 5 together.
        assert_eq!((commits.get(), writes.get()), (4, 5));
    }

    /// A panicking write: its caller is told it was not committed, the
    /// others are.
    #[tokio::test]
    async fn a_panicking_write_does_not_take_its_batch_with_it() {
        let (_dir, db) = sqlite().await;
        let (committer, _, _) = committer(&db);
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let started = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let c = committer.clone();
        let (g, s) = (gate.clone(), started.clone());
        let first = tokio::spawn(async move { c.write(gated(1, g, s)).await });
        started.acquire().await.expect("started").forget();
        let c = committer.clone();
        let boom = tokio::spawn(async move {
            c.write(
                |_txn: &DatabaseTransaction| -> BoxFuture<'_, Result<i64, DbErr>> {
                    Box::pin(async { panic!("a bug in a write") })
                },
            )
            .await
        });
        while committer.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        gate.add_permits(2);
        assert_eq!(first.await.expect("task").expect("committed"), 1);
        let err = boom.await.expect("task").expect_err("not committed");
        assert!(err.to_string().contains("not committed"), "{err}");
        assert_eq!(values(&db).await, vec![1]);
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
