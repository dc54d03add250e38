//! SQLite's single writer. SQLite lets one connection write at a time, so rather than have request tasks queue
//! for the write lock, one task owns the write connection and takes the writes waiting for it in batches: one
//! transaction and one durable commit per batch (group commit), a savepoint per write so that a write refused
//! for the client's reasons (404, 409) leaves the rest of the batch alone. A write is answered only after the
//! commit that holds it; should the commit fail, its waiters are answered 503 and nothing of it remains.

use std::future::Future;
use std::pin::Pin;

use sqlx::{Connection, Executor, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::conn::Conn;
use crate::error::AppError;

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
    /// Refused for the client's reasons; nothing of it stays.
    Refused,
    /// The database failed; the batch cannot be trusted and is rolled back whole.
    Failed,
}

type Job =
    Box<dyn for<'c> FnOnce(Conn<'c>) -> Pin<Box<dyn Future<Output = Ran> + Send + 'c>> + Send>;

enum Message {
    Write(Job),
    Stop(oneshot::Sender<()>),
}

/// The handle through which request tasks send writes to the writer task.
#[derive(Clone)]
pub struct WriterHandle {
    sender: mpsc::UnboundedSender<Message>,
}

pub type WriteFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T, AppError>> + Send + 'c>>;

impl WriterHandle {
    /// Starts the writer task on the connection, which must have the schema already.
    pub fn start(connection: SqliteConnection, batch_max: usize) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(connection, receiver, batch_max.max(1)));
        Self { sender }
    }

    /// Runs `op` in the writer's next batch and answers once that batch is committed.
    pub async fn write<T, F>(&self, op: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(Conn<'c>) -> WriteFuture<'c, T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = op(conn).await;
                let outcome = match &result {
                    Ok(_) => Outcome::Done,
                    Err(error) if error.is_client_error() => Outcome::Refused,
                    Err(_) => Outcome::Failed,
                };
                let reply: Reply = Box::new(move |committed| {
                    // A success is reported only once committed; a refusal or failure is true either way.
                    if committed || result.is_err() {
                        let _ = answer.send(result);
                    }
                });
                Ran { outcome, reply }
            })
        });
        self.sender
            .send(Message::Write(job))
            .map_err(|_| not_committed())?;
        answered.await.map_err(|_| not_committed())?
    }

    /// Finishes the batch under way, then closes the connection; writes sent later are answered 503.
    pub async fn stop(&self) {
        let (done, stopped) = oneshot::channel();
        if self.sender.send(Message::Stop(done)).is_ok() {
            let _ = stopped.await;
        }
    }
}

fn not_committed() -> AppError {
    AppError::Unavailable("the write was not committed".to_owned())
}

async fn run(
    mut connection: SqliteConnection,
    mut receiver: mpsc::UnboundedReceiver<Message>,
    batch_max: usize,
) {
    let mut messages = Vec::with_capacity(batch_max);
    while receiver.recv_many(&mut messages, batch_max).await > 0 {
        let mut jobs = Vec::with_capacity(messages.len());
        let mut stop = None;
        for message in messages.drain(..) {
            match message {
                Message::Write(job) => jobs.push(job),
                Message::Stop(done) => stop = Some(done),
            }
        }
        if !jobs.is_empty() {
            run_batch(&mut connection, jobs).await;
        }
        if let Some(done) = stop {
            receiver.close();
            if let Err(error) = connection.close().await {
                tracing::warn!(%error, "closing the SQLite write connection failed");
            }
            let _ = done.send(());
            return;
        }
    }
}

async fn run_batch(connection: &mut SqliteConnection, jobs: Vec<Job>) {
    let batch_size = jobs.len();
    if let Err(error) = connection.execute("BEGIN IMMEDIATE").await {
        tracing::error!(%error, batch_size, "could not begin a write transaction");
        return; // dropping the jobs answers their writers 503
    }
    let mut replies = Vec::with_capacity(batch_size);
    let mut failed = false;
    for job in jobs {
        if let Err(error) = connection.execute("SAVEPOINT write").await {
            tracing::error!(%error, "could not open a savepoint");
            failed = true;
            break;
        }
        let ran = job(Conn::Sqlite(&mut *connection)).await;
        replies.push(ran.reply);
        let closing = match ran.outcome {
            Outcome::Done => "RELEASE write",
            Outcome::Refused => "ROLLBACK TO write; RELEASE write",
            Outcome::Failed => {
                failed = true;
                break;
            }
        };
        if let Err(error) = connection.execute(closing).await {
            tracing::error!(%error, "could not close a savepoint");
            failed = true;
            break;
        }
    }
    let committed = !failed && commit(connection).await;
    if !committed && let Err(error) = connection.execute("ROLLBACK").await {
        tracing::warn!(%error, "rollback after a failed batch failed");
    }
    for reply in replies {
        reply(committed);
    }
}

async fn commit(connection: &mut SqliteConnection) -> bool {
    match connection.execute("COMMIT").await {
        Ok(_) => true,
        Err(error) => {
            tracing::error!(%error, "committing a write batch failed");
            false
        }
    }
}
