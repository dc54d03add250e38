//! The availability timer: when an operator starts taking contacts by the clock — `away_until` reached, a
//! shift starting, time off ending — their sources' queues drain. It reads every operator, notes who takes
//! contacts, and sleeps until the earliest `next_change_at` among them, for at most [`RECHECK`] (so that
//! changes made on other instances are seen), or until this instance changes an operator's availability,
//! schedule or time off, or a manual clock is moved (tests). Each operator whose `accepting` flipped to true
//! since the last look gets the drain a capacity change gets. Every instance runs one; their drains are as safe
//! together as any concurrent drains.

use std::collections::HashMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// The longest the timer sleeps without looking again.
pub const RECHECK: Duration = Duration::from_secs(1);

/// Who takes contacts now, by operator id: the timer's first look, taken before the server serves (what
/// changed while no instance ran, the sweep catches).
pub async fn first_look(store: &Store) -> anyhow::Result<HashMap<i64, bool>> {
    Ok(store
        .operators_now()
        .await?
        .into_iter()
        .map(|operator| (operator.operator.id, operator.accepting.accepting))
        .collect())
}

/// Runs the timer until cancelled, from the [`first_look`]. An operator it has not seen yet (created since)
/// counts as not accepting before: a drain too many is harmless, one too few leaves contacts waiting.
pub async fn run(store: Store, first_look: HashMap<i64, bool>, cancel: CancellationToken) {
    let mut accepting = first_look;
    loop {
        let mut next_change = None;
        match store.operators_now().await {
            Ok(operators) => {
                let mut now_accepting = HashMap::with_capacity(operators.len());
                for operator in operators {
                    let id = operator.operator.id;
                    let is_accepting = operator.accepting.accepting;
                    now_accepting.insert(id, is_accepting);
                    if let Some(at) = operator.accepting.next_change_at {
                        next_change =
                            Some(next_change.map_or(at, |next: chrono::DateTime<_>| next.min(at)));
                    }
                    let started = is_accepting && accepting.get(&id) != Some(&true);
                    if started {
                        match store.drain_for_operator(id).await {
                            Ok(drained) if drained.assigned > 0 => tracing::info!(
                                operator_id = id,
                                assigned = drained.assigned,
                                "operator started accepting; waiting contacts assigned"
                            ),
                            Ok(_) => {}
                            Err(error) => {
                                tracing::warn!(%error, operator_id = id, "draining for an operator who started accepting failed");
                            }
                        }
                    }
                }
                accepting = now_accepting;
            }
            Err(error) => {
                tracing::warn!(%error, "availability timer: could not read the operators")
            }
        }
        let wait = next_change
            .and_then(|at| store.clock().real_wait_until(at))
            .map_or(RECHECK, |until| until.min(RECHECK));
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
            () = store.clock().changed() => {}
            () = store.signals().presence.notified() => {}
        }
    }
}
