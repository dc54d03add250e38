//! The queue's safety net: every so often (and at once when a drain stopped at its budget), drains the queue
//! of every source with contacts waiting. Once an hour it also forgets idempotency keys past their window,
//! webhook deliveries done with for a week, and audit entries past their retention. The changes that free
//! capacity drain the queues themselves; this catches what they could not (a drain cut short by its budget,
//! capacity changed behind the API's back, contacts skipped because another instance held them).

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// How long a sweep asked for waits before it starts.
const NOTIFIED_DELAY: Duration = Duration::from_millis(50);

/// How often expired records are forgotten.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Sweeps until cancelled: every `interval` (never, when `None`), and whenever a drain asks for more; purges
/// expired records at start and hourly.
pub async fn run(store: Store, interval: Option<Duration>, cancel: CancellationToken) {
    let mut purged_at: Option<Instant> = None;
    loop {
        if purged_at.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
            if let Err(error) = store.purge_expired().await {
                tracing::warn!(%error, "could not forget expired idempotency keys, deliveries and audit entries");
            }
            purged_at = Some(Instant::now());
        }
        // With the sweep off, the loop still wakes for the hourly purge, and for drains that ask for more.
        let tick = tokio::time::sleep(interval.unwrap_or(PURGE_EVERY));
        let asked = tokio::select! {
            () = cancel.cancelled() => return,
            () = store.signals().queue.notified() => {
                // Asked by a drain that skipped a contact another transaction held: give that one a moment
                // to finish (and let several such wake-ups make one sweep).
                tokio::time::sleep(NOTIFIED_DELAY).await;
                true
            }
            () = tick => interval.is_some(),
        };
        if asked {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = sweep(&store) => {}
            }
        }
    }
}

/// Drains every source's queue as far as capacity goes.
pub async fn sweep(store: &Store) {
    let sources = match store.sources_with_waiting().await {
        Ok(sources) => sources,
        Err(error) => {
            tracing::warn!(%error, "queue sweep: could not list the sources with contacts waiting");
            return;
        }
    };
    for source_id in sources {
        loop {
            match store.drain_source(source_id).await {
                Ok(drained) => {
                    if drained.assigned > 0 {
                        tracing::info!(
                            source_id,
                            assigned = drained.assigned,
                            "queue sweep assigned waiting contacts"
                        );
                    }
                    // Again only while whole budgets are assigned; a skipped contact wakes the sweep later.
                    if drained.assigned < crate::store::queue::DRAIN_BUDGET {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, source_id, "queue sweep: draining failed");
                    break;
                }
            }
        }
    }
}
