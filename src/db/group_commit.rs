//! Group commit: writes handed to [`Committer::write`] run on one task, and
//! those that arrive while a transaction commits share the next one.
//!
//! SQLite lets one transaction write at a time, and each commit writes every
//! page it changed to the WAL: a received post dirties the same tail pages of
//! `posts`, `received_activities`, `delivery_bodies` and `fanouts` and their
//! indexes as the post before it. Committing the posts that arrive together in
//! one transaction writes those pages once, and the writers no longer wait for
//! SQLite's lock in its busy handler (which sleeps).
//!
//! PostgreSQL writes concurrently, but there every statement is a round trip
//! to the server, `BEGIN` and `COMMIT` two of a received post's seven, and
//! each commit waits for its own WAL flush: a batch shares them. One writer
//! per process is enough for the rate one process receives (measured in
//! docs/PERFORMANCE.md, fourteenth round); replicas each have their own.
//!
//! A write that fails undoes its batch: the transaction is rolled back, the
//! failed write's caller gets its error, and the writes that ran before it
//! in the batch are run again, each in a transaction of its own (a write is
//! a function the committer may call more than once, on a fresh
//! transaction). Failures are rare (a lost race on a unique key, a full
//! disk), so the usual batch pays no savepoints: each savepoint was two more
//! statements, each a round trip to SQLite's thread. A caller is answered
//! only after the transaction holding its write committed, so "done" still
//! means "on disk" (on SQLite as durable as `synchronous = NORMAL` makes any
//! commit).

use std::{panic::AssertUnwindSafe, sync::OnceLock};

use futures::{FutureExt, future::BoxFuture};
use prometheus_client::metrics::counter::Counter;
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};
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
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    /// A table of integers to write to, in a fresh SQLite file, or in the
    /// PostgreSQL database of `KINDRED_TEST_DATABASE_URL` (a table of its
    /// own, dropped by `done`).
    struct Table {
        db: DatabaseConnection,
        name: String,
        _dir: Option<tempfile::TempDir>,
    }

    /// SQLite always; PostgreSQL too when `KINDRED_TEST_DATABASE_URL` is set.
    async fn tables() -> Vec<Table> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut urls = vec![(
            format!("sqlite://{}/t.db?mode=rwc", dir.path().display()),
            Some(dir),
        )];
        if let Ok(url) = std::env::var("KINDRED_TEST_DATABASE_URL")
            && !url.is_empty()
        {
            urls.push((url, None));
        }
        let mut out = Vec::new();
        for (url, dir) in urls {
            let settings = crate::config::DatabaseSettings {
                url,
                max_connections: 4,
                acquire_timeout_secs: 5,
            };
            let db = super::super::connect(&settings).await.expect("connect");
            let name = format!("gc_{}", uuid::Uuid::new_v4().simple());
            db.execute_unprepared(&format!("CREATE TABLE {name} (v BIGINT PRIMARY KEY)"))
                .await
                .expect("table");
            out.push(Table {
                db,
                name,
                _dir: dir,
            });
        }
        out
    }

    impl Table {
        fn backend(&self) -> DbBackend {
            self.db.get_database_backend()
        }

        fn insert(
            &self,
            v: i64,
        ) -> impl for<'a> Fn(&'a DatabaseTransaction) -> BoxFuture<'a, Result<i64, DbErr>> + Clone + use<>
        {
            let sql = match self.backend() {
                DbBackend::Sqlite => format!("INSERT INTO {} (v) VALUES (?)", self.name),
                _ => format!("INSERT INTO {} (v) VALUES ($1)", self.name),
            };
            let backend = self.backend();
            move |txn| {
                let sql = sql.clone();
                Box::pin(async move {
                    txn.execute_raw(Statement::from_sql_and_values(backend, sql, [v.into()]))
                        .await?;
                    Ok(v)
                })
            }
        }

        async fn values(&self) -> Vec<i64> {
            let rows = self
                .db
                .query_all_raw(Statement::from_string(
                    self.backend(),
                    format!("SELECT v FROM {} ORDER BY v", self.name),
                ))
                .await
                .expect("select");
            rows.iter()
                .map(|r| r.try_get::<i64>("", "v").expect("v"))
                .collect()
        }

        async fn done(self) {
            if self.backend() != DbBackend::Sqlite {
                self.db
                    .execute_unprepared(&format!("DROP TABLE {}", self.name))
                    .await
                    .expect("drop");
            }
        }
    }

    /// A write that waits for `gate` before it inserts `v`: it holds the
    /// writer task while the next writes queue up behind it.
    fn gated(
        table: &Table,
        v: i64,
        gate: std::sync::Arc<tokio::sync::Semaphore>,
        started: std::sync::Arc<tokio::sync::Semaphore>,
    ) -> impl for<'a> Fn(&'a DatabaseTransaction) -> BoxFuture<'a, Result<i64, DbErr>> + use<> {
        let insert = table.insert(v);
        move |txn| {
            let (gate, started, insert) = (gate.clone(), started.clone(), insert.clone());
            Box::pin(async move {
                started.add_permits(1);
                let _ = gate
                    .acquire()
                    .await
                    .map_err(|e| DbErr::Custom(e.to_string()))?;
                insert(txn).await
            })
        }
    }

    /// Hand `values` over one after another (in this order) while the writer
    /// task is held by a gated write; then open the gate. The results, in
    /// the order given.
    async fn queued_behind_a_gate(
        table: &Table,
        committer: &std::sync::Arc<Committer>,
        values: &[i64],
    ) -> Vec<Result<i64, DbErr>> {
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let started = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let mut tasks = Vec::new();
        let c = committer.clone();
        let first = gated(table, values[0], gate.clone(), started.clone());
        tasks.push(tokio::spawn(async move { c.write(first).await }));
        started.acquire().await.expect("started").forget();
        for (i, v) in values.iter().copied().enumerate().skip(1) {
            let c = committer.clone();
            let insert = table.insert(v);
            tasks.push(tokio::spawn(async move { c.write(insert).await }));
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

    fn committer(table: &Table) -> (std::sync::Arc<Committer>, Counter, Counter) {
        let (commits, writes) = (Counter::default(), Counter::default());
        let c = Committer::new(table.db.clone(), commits.clone(), writes.clone());
        (std::sync::Arc::new(c), commits, writes)
    }

    /// Writes handed over while a transaction runs share the next commit,
    /// on either database.
    #[tokio::test]
    async fn writes_that_queue_up_share_one_commit() {
        for table in tables().await {
            let (committer, commits, writes) = committer(&table);
            let out = queued_behind_a_gate(&table, &committer, &[1, 2, 3, 4]).await;
            let ok: Vec<i64> = out.into_iter().map(|r| r.expect("committed")).collect();
            assert_eq!(ok, vec![1, 2, 3, 4], "{:?}", table.backend());
            assert_eq!(table.values().await, vec![1, 2, 3, 4]);
            assert_eq!(
                (commits.get(), writes.get()),
                (1, 4),
                "{:?}",
                table.backend()
            );
            table.done().await;
        }
    }

    /// A write that fails (a duplicate key) undoes its batch: its caller gets
    /// its error, the writes before it are run again alone and committed,
    /// and the writes after it get a batch of their own. On PostgreSQL the
    /// failed statement has aborted the whole transaction.
    #[tokio::test]
    async fn a_failing_write_is_undone_and_the_rest_of_its_batch_committed() {
        for table in tables().await {
            let (committer, commits, writes) = committer(&table);
            let out = queued_behind_a_gate(&table, &committer, &[1, 2, 3, 2, 4, 5]).await;
            let ok: Vec<i64> = out
                .iter()
                .filter_map(|r| r.as_ref().ok().copied())
                .collect();
            assert_eq!(ok, vec![1, 2, 3, 4, 5], "{:?}", table.backend());
            let failed = out[3].as_ref().expect_err("the duplicate fails");
            assert!(super::super::is_unique_violation(failed), "{failed}");
            assert_eq!(table.values().await, vec![1, 2, 3, 4, 5]);
            // 1, 2 and 3 alone after the undone batch, then 4 and 5 together.
            assert_eq!(
                (commits.get(), writes.get()),
                (4, 5),
                "{:?}",
                table.backend()
            );
            table.done().await;
        }
    }

    /// A panicking write: its caller is told it was not committed, the
    /// others are.
    #[tokio::test]
    async fn a_panicking_write_does_not_take_its_batch_with_it() {
        for table in tables().await {
            let (committer, _, _) = committer(&table);
            let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
            let started = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
            let c = committer.clone();
            let write = gated(&table, 1, gate.clone(), started.clone());
            let first = tokio::spawn(async move { c.write(write).await });
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
            assert_eq!(table.values().await, vec![1]);
            table.done().await;
        }
    }

    /// A write that fails after writing leaves nothing behind, and a write's
    /// result is seen by the next one's transaction and by readers.
    #[tokio::test]
    async fn a_failed_write_leaves_nothing() {
        for table in tables().await {
            let committer =
                Committer::new(table.db.clone(), Counter::default(), Counter::default());
            let insert = table.insert(7);
            let res: Result<(), DbErr> = committer
                .write(move |txn| {
                    let insert = insert.clone();
                    Box::pin(async move {
                        insert(txn).await?;
                        Err(DbErr::Custom("refused after writing".into()))
                    })
                })
                .await;
            assert!(res.is_err());
            assert_eq!(committer.write(table.insert(8)).await.expect("write"), 8);
            assert_eq!(table.values().await, vec![8]);
            table.done().await;
        }
    }
}
