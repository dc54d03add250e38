//! The queue's safety net: every so often (and at once when a drain stopped at its budget), drains the queue
//! of every source with contacts waiting, and forgets idempotency keys past their window. The changes that free
//! capacity drain the queues themselves; this catches what they could not (a drain cut short by its budget,
//! capacity changed behind the API's back, contacts skipped because another instance held them).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// Sweeps until cancelled: every `interval` (never, when `None`), and whenever a drain asks for more.
pub async fn run(store: Store, interval: Option<Duration>, cancel: CancellationToken) {
    loop {
        let tick = async {
            match interval {
                Some(interval) => tokio::time::sleep(interval).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = store.signals().queue.notified() => {}
            () = tick => {}
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = sweep(&store) => {}
        }
    }
}

/// Drains every source's queue as far as capacity goes, then forgets expired idempotency keys.
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
                    if !drained.more {
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
    if let Err(error) = store.purge_idempotency_keys().await {
        tracing::warn!(%error, "could not forget expired idempotency keys");
    }
}
