//! SQLite's single writer. SQLite lets one connection write at a time, so rather than have request tasks queue
//! for the write lock, one thread owns the write connection and takes the writes waiting for it in batches: one
//! transaction and one durable commit per batch (group commit), and a savepoint per write after the first, so
//! that a write that fails — refused for the client's reasons (404, 409), or failed in the database (500) — is
//! rolled back alone and leaves the rest of the batch to commit. A write is answered only after the commit that
//! holds it; should the commit itself fail, its waiters are answered 503 and nothing of it remains.
//!
//! The thread runs the batch's writes one after the other, synchronously: a request task hands its write
//! over once and is woken once, whatever the number of statements the write runs.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::error::AppError;
use rusqlite::{Connection, OpenFlags};

/// Sends the write's answer once the fate of its batch is known (`true`: committed).
type Reply = Box<dyn FnOnce(bool) + Send>;

/// Whether a write went through, and how to answer it.
struct Ran {
    outcome: Outcome,
    reply: Reply,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    /// Refused, or failed; nothing of it stays, and the rest of the batch goes on.
    Undone,
}

type Job = Box<dyn FnOnce(&mut Connection) -> Ran + Send>;

enum Message {
    Write(Job),
    Stop(oneshot::Sender<()>),
}

/// A write operation over the writer's connection.
pub type WriteFuture<'t, T> = Pin<Box<dyn Future<Output = Result<T, AppError>> + Send + 't>>;

/// How many batches' worth of writes may wait for the writer before new ones are turned away.
const QUEUED_BATCHES: usize = 16;

/// How the writer batches and waits.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    /// The most writes one transaction takes.
    pub batch_max: usize,
    /// How long a write may wait for room in the queue before it is answered 503.
    pub queue_timeout: Duration,
    /// How long the writer watches for the next write after a batch before it sleeps ([`next_message`]).
    pub watch: Duration,
}

/// The handle through which request tasks send writes to the writer thread.
#[derive(Clone)]
pub struct WriterHandle {
    sender: mpsc::Sender<Message>,
    /// How long a write may wait for room in the queue before it is answered 503.
    queue_timeout: Duration,
    health: Arc<Health>,
}

/// What the writer thread says of itself, for readiness to read without queueing a write behind the others.
struct Health {
    epoch: Instant,
    /// When the batch under way began, in milliseconds since `epoch` plus one; 0 while idle.
    batch_began: AtomicU64,
    /// Whether the last batch failed to commit (a full disk, a lost file).
    last_commit_failed: AtomicBool,
    stopped: AtomicBool,
}

/// A batch running longer than this means the writer is stuck.
const STALLED_AFTER: Duration = Duration::from_secs(10);

/// The writer's state, as readiness sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterState {
    Working,
    /// The last batch failed to commit: only a write can tell whether the next one will.
    LastCommitFailed,
    /// A batch has been running for this long.
    Stalled(Duration),
    Stopped,
}

impl Health {
    fn batch_begins(&self) {
        let since = self.epoch.elapsed().as_millis() as u64 + 1;
        self.batch_began.store(since, Ordering::Relaxed);
    }

    fn batch_ends(&self, committed: bool) {
        self.batch_began.store(0, Ordering::Relaxed);
        self.last_commit_failed.store(!committed, Ordering::Relaxed);
    }
}

/// Marks the writer stopped however its thread ends, panics included.
struct StopsOnDrop(Arc<Health>);

impl Drop for StopsOnDrop {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Relaxed);
    }
}

impl WriterHandle {
    /// Opens the write connection on the database file (which must have its schema) and starts the thread.
    pub fn start(path: &Path, settings: WriterSettings) -> anyhow::Result<Self> {
        let WriterSettings {
            batch_max,
            queue_timeout,
            watch,
        } = settings;
        let connection = open(path)?;
        let batch_max = batch_max.max(1);
        let (sender, receiver) = mpsc::channel(batch_max * QUEUED_BATCHES);
        let health = Arc::new(Health {
            epoch: Instant::now(),
            batch_began: AtomicU64::new(0),
            last_commit_failed: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
        });
        let stops = StopsOnDrop(health.clone());
        std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || {
                let stops = stops;
                run(connection, receiver, batch_max, watch, &stops.0)
            })?;
        Ok(Self {
            sender,
            queue_timeout,
            health,
        })
    }

    /// How the writer is doing, read at once: never waits for the writes queued.
    pub fn state(&self) -> WriterState {
        let health = &self.health;
        if health.stopped.load(Ordering::Relaxed) || self.sender.is_closed() {
            return WriterState::Stopped;
        }
        let began = health.batch_began.load(Ordering::Relaxed);
        if began > 0 {
            let running = health
                .epoch
                .elapsed()
                .saturating_sub(Duration::from_millis(began - 1));
            if running > STALLED_AFTER {
                return WriterState::Stalled(running);
            }
        }
        if health.last_commit_failed.load(Ordering::Relaxed) {
            return WriterState::LastCommitFailed;
        }
        WriterState::Working
    }

    /// Runs `op` in the writer's next batch and answers once that batch is committed.
    pub async fn write<T, F>(&self, op: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Connection) -> WriteFuture<'t, T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |tx| {
            let result = super::executor::ready_now(op(tx)).unwrap_or_else(|| {
                Err(AppError::Internal(anyhow::anyhow!(
                    "a SQLite write waited for something"
                )))
            });
            let outcome = match &result {
                Ok(_) => Outcome::Done,
                Err(_) => Outcome::Undone,
            };
            let reply: Reply = Box::new(move |committed| {
                // A success is reported only once committed; a refusal or failure is true either way.
                if committed || result.is_err() {
                    let _ = answer.send(result);
                }
            });
            Ran { outcome, reply }
        });
        self.sender
            .send_timeout(Message::Write(job), self.queue_timeout)
            .await
            .map_err(|_| AppError::Unavailable("Too many writes waiting; retry".to_owned()))?;
        answered.await.map_err(|_| not_committed())?
    }

    /// Finishes the batch under way, then closes the connection; writes sent later are answered 503.
    pub async fn stop(&self) {
        let (done, stopped) = oneshot::channel();
        if self.sender.send(Message::Stop(done)).await.is_ok() {
            let _ = stopped.await;
        }
    }
}

/// Opens the database file (which must exist, with its schema) for writing: WAL, and every commit synced to
/// disk before it is acknowledged.
fn open(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // `temp_store = MEMORY` keeps each write's savepoint journal in memory. Otherwise SQLite spills it to a
    // new temporary file once it passes 64 KiB, that is once a write changes 16 pages, and a contact's write
    // changes about 16 since the decision records: a file created, written and deleted per contact (strace:
    // 1.7 writes of 13 KiB each per contact), the cause of the 0.71 throughput ratio at one client in issue
    // 13's A/B. The journal holds only the pages one write changes.
    connection.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = 5000; PRAGMA temp_store = MEMORY;",
    )?;
    connection.set_prepared_statement_cache_capacity(128);
    Ok(connection)
}

fn not_committed() -> AppError {
    AppError::Unavailable("The write was not committed; retry".to_owned())
}

fn run(
    mut tx: Connection,
    mut receiver: mpsc::Receiver<Message>,
    batch_max: usize,
    watch: Duration,
    health: &Health,
) {
    let mut jobs = Vec::with_capacity(batch_max);
    while let Some(first) = next_message(&mut receiver, watch) {
        let mut stop = None;
        let mut message = Some(first);
        while let Some(next) = message.take() {
            match next {
                Message::Write(job) => jobs.push(job),
                Message::Stop(done) => stop = Some(done),
            }
            if jobs.len() < batch_max && stop.is_none() {
                message = receiver.try_recv().ok();
            }
        }
        if !jobs.is_empty() {
            health.batch_begins();
            let committed = run_batch(&mut tx, jobs.drain(..));
            health.batch_ends(committed);
        }
        if let Some(done) = stop {
            receiver.close();
            drop(tx); // closes the connection, checkpointing the WAL
            let _ = done.send(());
            return;
        }
    }
}

/// The next message, once there is one; `None` once every handle is gone. For `watch` after the last batch
/// the thread looks for it without sleeping: a thread asleep is woken through the kernel, which on a virtual
/// machine took longer than a write's own statements, and with few clients the next write arrives within a
/// round trip of the last answer. It yields its core meanwhile to any thread that wants it.
fn next_message(receiver: &mut mpsc::Receiver<Message>, watch: Duration) -> Option<Message> {
    let started = Instant::now();
    loop {
        match receiver.try_recv() {
            Ok(message) => return Some(message),
            Err(mpsc::error::TryRecvError::Disconnected) => return None,
            Err(mpsc::error::TryRecvError::Empty) if started.elapsed() < watch => {
                std::thread::yield_now();
            }
            Err(mpsc::error::TryRecvError::Empty) => return receiver.blocking_recv(),
        }
    }
}

/// Whether the batch committed (vacuously, when every write in it was undone).
///
/// A write runs in a savepoint only when the transaction already holds another write: the first one needs
/// none, since rolling back the whole transaction undoes it alone. At one client every batch is one write, and
/// its savepoint (two statements, and a copy of every page it changes into the savepoint journal) was pure
/// cost. The transaction begins with the first write, and again after a first write is undone.
fn run_batch(tx: &mut Connection, jobs: impl ExactSizeIterator<Item = Job>) -> bool {
    let batch_size = jobs.len();
    let mut replies = Vec::with_capacity(batch_size);
    let mut failed = false;
    // Whether a transaction is open, and whether it holds a write that went through.
    let mut open = false;
    let mut holds_writes = false;
    for job in jobs {
        if !open {
            if let Err(error) = run_cached(tx, "BEGIN IMMEDIATE") {
                tracing::error!(%error, batch_size, "could not begin a write transaction");
                failed = true;
                break; // dropping the jobs left answers their writers 503
            }
            open = true;
        }
        if holds_writes && let Err(error) = run_cached(tx, "SAVEPOINT write") {
            tracing::error!(%error, "could not open a savepoint");
            failed = true;
            break;
        }
        // A bug that panics in one write must not take the writer, and every later write, down with it: the
        // write is rolled back and its waiter, whose answer went with the panic, is told it was not committed.
        let outcome = match catch_unwind(AssertUnwindSafe(|| job(tx))) {
            Ok(ran) => {
                replies.push(ran.reply);
                ran.outcome
            }
            Err(_) => {
                tracing::error!("a write panicked; it is rolled back");
                Outcome::Undone
            }
        };
        let closed = match (outcome, holds_writes) {
            (Outcome::Done, true) => run_cached(tx, "RELEASE write"),
            (Outcome::Undone, true) => {
                run_cached(tx, "ROLLBACK TO write").and_then(|()| run_cached(tx, "RELEASE write"))
            }
            // A write that went through while SQLite rolled the transaction back itself (a full disk, an I/O
            // error it did not report) is not in it: the batch fails rather than commit the writes after it alone.
            (Outcome::Done, false) if tx.is_autocommit() => {
                tracing::error!("the transaction ended under a write that went through");
                failed = true;
                break;
            }
            (Outcome::Done, false) => {
                holds_writes = true;
                Ok(())
            }
            (Outcome::Undone, false) => {
                open = false;
                // SQLite may have rolled back the transaction itself (a full disk, an I/O error).
                if tx.is_autocommit() {
                    Ok(())
                } else {
                    tx.execute_batch("ROLLBACK")
                }
            }
        };
        if let Err(error) = closed {
            tracing::error!(%error, "could not close a write's savepoint or transaction");
            failed = true;
            break;
        }
    }
    let committed = !failed && (!open || commit(tx));
    if !committed
        && !tx.is_autocommit()
        && let Err(error) = tx.execute_batch("ROLLBACK")
    {
        tracing::warn!(%error, "rollback after a failed batch failed");
    }
    for reply in replies {
        reply(committed);
    }
    committed
}

/// Runs a statement of the batch's own from the statement cache: `execute_batch` would parse it anew for every
/// write.
fn run_cached(tx: &Connection, sql: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(sql)?.raw_execute().map(drop)
}

fn commit(tx: &Connection) -> bool {
    match run_cached(tx, "COMMIT") {
        Ok(()) => true,
        Err(error) => {
            tracing::error!(%error, "committing a write batch failed");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// What each write of a batch was told: `Some(committed)` once its batch's fate was known.
    type Told = Arc<Mutex<Vec<(usize, bool)>>>;

    /// A write that inserts `n` into `t` and then says `outcome`, having run `then` (which may break the
    /// transaction) in between.
    fn write(n: usize, outcome: Outcome, then: &'static str, told: &Told) -> Job {
        let told = told.clone();
        Box::new(move |tx: &mut Connection| {
            tx.execute("INSERT INTO t (n) VALUES (?1)", [n as i64])
                .unwrap();
            if !then.is_empty() {
                let _ = tx.execute_batch(then);
            }
            let reply: Reply = Box::new(move |committed| told.lock().unwrap().push((n, committed)));
            Ran { outcome, reply }
        })
    }

    /// What a batch did: whether it committed, the rows it left, what each write was told, and whether a
    /// transaction was left open.
    struct BatchRun {
        committed: bool,
        stored: Vec<i64>,
        told: Vec<(usize, bool)>,
        left_open: bool,
    }

    /// Runs one batch of writes, each `(n, outcome, then)` as [`write`] makes it, on a fresh database.
    fn run_writes(writes: &[(usize, Outcome, &'static str)]) -> BatchRun {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("writer.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")
            .unwrap();
        let mut tx = open(&path).unwrap();
        let told = Told::default();
        let jobs: Vec<Job> = writes
            .iter()
            .map(|&(n, outcome, then)| write(n, outcome, then, &told))
            .collect();
        let committed = run_batch(&mut tx, jobs.into_iter());
        let stored = tx
            .prepare("SELECT n FROM t ORDER BY n")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let told = told.lock().unwrap().clone();
        BatchRun {
            committed,
            stored,
            told,
            left_open: !tx.is_autocommit(),
        }
    }

    #[test]
    fn undone_writes_take_nothing_else_with_them_first_or_not() {
        let run = run_writes(&[
            (1, Outcome::Undone, ""),
            (2, Outcome::Done, ""),
            (3, Outcome::Undone, ""),
            (4, Outcome::Done, ""),
        ]);
        assert!(run.committed);
        assert_eq!(run.stored, [2, 4]);
        assert!(!run.left_open, "no transaction left open");
        assert_eq!(run.told, [(1, true), (2, true), (3, true), (4, true)]);
    }

    #[test]
    fn a_batch_of_undone_writes_commits_nothing_and_leaves_no_transaction() {
        let run = run_writes(&[(1, Outcome::Undone, ""), (2, Outcome::Undone, "")]);
        assert!(run.committed);
        assert_eq!(run.stored, Vec::<i64>::new());
        assert!(!run.left_open);
    }

    #[test]
    fn a_first_write_whose_transaction_sqlite_ended_fails_the_batch() {
        // The write "went through", but the transaction under it is gone: the writes after it must not be
        // committed on their own and acknowledged.
        let run = run_writes(&[(1, Outcome::Done, "ROLLBACK"), (2, Outcome::Done, "")]);
        assert!(!run.committed);
        assert_eq!(run.stored, Vec::<i64>::new());
        assert!(!run.left_open);
        assert_eq!(run.told, [(1, false)]);
    }

    #[test]
    fn a_first_write_undone_after_sqlite_ended_its_transaction_leaves_the_rest_to_commit() {
        let run = run_writes(&[(1, Outcome::Undone, "ROLLBACK"), (2, Outcome::Done, "")]);
        assert!(run.committed);
        assert_eq!(run.stored, [2]);
        assert!(!run.left_open);
    }
}
