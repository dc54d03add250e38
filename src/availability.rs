//! The availability timer: when an operator starts taking contacts by the clock — `away_until` reached, a
//! shift starting, time off ending — their sources' queues drain; when one stops, their contacts go back to
//! the queues of the sources that requeue them; and contacts past their accept deadline go to another operator. It reads every operator, notes who takes
//! contacts, and sleeps until the earliest `next_change_at` among them, for at most [`RECHECK`] (so that
//! changes made on other instances are seen), or until this instance changes an operator's availability,
//! schedule or time off, or a manual clock is moved (tests). Each operator accepting now who was not at the
//! last look, or whose `next_change_at` has passed since, gets the drain a capacity change gets. Every instance runs one; their drains are as safe
//! together as any concurrent drains.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// The longest the timer sleeps without looking again.
pub const RECHECK: Duration = Duration::from_secs(1);

/// What the timer saw of an operator: whether they took contacts, and when that was due to change next.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    accepting: bool,
    next_change_at: Option<DateTime<Utc>>,
}

/// Every operator as seen now, by id: the timer's first look, taken before the server serves (what changed
/// while no instance ran, the sweep catches).
pub async fn first_look(store: &Store) -> anyhow::Result<HashMap<i64, Seen>> {
    Ok(store
        .operators_now()
        .await?
        .into_iter()
        .map(|operator| {
            let seen = Seen {
                accepting: operator.accepting.accepting,
                next_change_at: operator.accepting.next_change_at,
            };
            (operator.operator.id, seen)
        })
        .collect())
}

/// Whether an operator accepting at `now` may have started since they were last `seen`: they were not
/// accepting then, or a change was due in between (the clock may have moved past a stretch off shift faster
/// than the timer looked), or the timer had not seen them yet (created since). A drain too many is harmless;
/// one too few leaves contacts waiting.
fn may_have_started(seen: Option<&Seen>, now: DateTime<Utc>) -> bool {
    seen.is_none_or(|seen| !seen.accepting || seen.next_change_at.is_some_and(|at| at <= now))
}

/// Whether an operator not accepting at `now` may have stopped since they were last `seen`: the mirror of
/// [`may_have_started`]. A requeue too many finds nothing to requeue.
fn may_have_stopped(seen: Option<&Seen>, now: DateTime<Utc>) -> bool {
    seen.is_none_or(|seen| seen.accepting || seen.next_change_at.is_some_and(|at| at <= now))
}

/// Runs the timer until cancelled, from the [`first_look`].
pub async fn run(store: Store, first_look: HashMap<i64, Seen>, cancel: CancellationToken) {
    let mut seen = first_look;
    loop {
        let mut next_change = None;
        match store.operators_now().await {
            Ok(operators) => {
                // Read after the operators were: no earlier than the instant they were judged at.
                let now = store.now();
                let mut seen_now = HashMap::with_capacity(operators.len());
                for operator in operators {
                    let id = operator.operator.id;
                    let is_accepting = operator.accepting.accepting;
                    let next_change_at = operator.accepting.next_change_at;
                    seen_now.insert(
                        id,
                        Seen {
                            accepting: is_accepting,
                            next_change_at,
                        },
                    );
                    if let Some(at) = next_change_at {
                        next_change =
                            Some(next_change.map_or(at, |next: DateTime<Utc>| next.min(at)));
                    }
                    if !is_accepting
                        && may_have_stopped(seen.get(&id), now)
                        && let Err(error) = store.requeue_if_unavailable(id).await
                    {
                        tracing::warn!(%error, operator_id = id, "requeuing the contacts of an operator who stopped accepting failed");
                        // Seen as still accepting, so that the next look tries again.
                        seen_now.insert(
                            id,
                            Seen {
                                accepting: true,
                                next_change_at,
                            },
                        );
                    }
                    let started = is_accepting && may_have_started(seen.get(&id), now);
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
                seen = seen_now;
            }
            Err(error) => {
                tracing::warn!(%error, "availability timer: could not read the operators")
            }
        }
        match store.expire_accept_timeouts().await {
            Ok(Some(deadline)) => {
                next_change =
                    Some(next_change.map_or(deadline, |next: DateTime<Utc>| next.min(deadline)));
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "handing on contacts past their accept timeout failed")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_is_noticed_even_when_the_clock_skipped_the_stretch_off() {
        let at = |text| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
        let now = at("2026-03-08T13:00:00Z");
        let was = |accepting, next_change_at| Seen {
            accepting,
            next_change_at,
        };
        assert!(may_have_started(None, now), "not seen yet");
        assert!(may_have_started(Some(&was(false, None)), now));
        // Seen accepting, due to stop at 22:00 the day before: it went off shift and came back meanwhile.
        assert!(may_have_started(
            Some(&was(true, Some(at("2026-03-07T22:00:00Z")))),
            now
        ));
        assert!(!may_have_started(
            Some(&was(true, Some(at("2026-03-08T21:00:00Z")))),
            now
        ));
        assert!(!may_have_started(Some(&was(true, None)), now));
    }
}
