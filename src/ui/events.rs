//! What tells open pages that something changed: a server-sent event stream. One watcher per instance reads
//! a marker of the database — the newest contact history entry and the newest audit entry — twice a second
//! while any page listens; every change to a contact writes the one, every change to operators, sources,
//! weights, time off, webhooks and keys the other. Reading the database, not this instance's memory, is what
//! lets a change made through another instance (on PostgreSQL) reach the page too. Bursts coalesce: however
//! many contacts arrive, a page hears at most one event per reading.
//!
//! Each event's id is the marker, so a page that reconnects with `Last-Event-ID` hears at once whether it
//! missed anything. The pages reload their data on connect anyway.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use super::Viewer;
use crate::AppState;
use crate::store::Store;

/// How often the watcher reads the marker while pages listen, and how often it looks for listeners when none
/// does.
const READ_EVERY: Duration = Duration::from_millis(500);
const IDLE_LOOK_EVERY: Duration = Duration::from_secs(1);

/// The newest history and audit entries, as `"{history}.{audit}"`: the event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Marker {
    pub history: i64,
    pub audit: i64,
}

impl Marker {
    fn id(self) -> String {
        format!("{}.{}", self.history, self.audit)
    }
}

/// The latest marker, shared by the watcher and every stream of this instance.
#[derive(Clone)]
pub struct Changes {
    marker: Arc<watch::Sender<Marker>>,
}

impl Default for Changes {
    fn default() -> Self {
        Self {
            marker: Arc::new(watch::Sender::new(Marker::default())),
        }
    }
}

impl Changes {
    /// Takes a reading of the marker; the streams hear of it only when it moved.
    fn read(&self, read: Marker) {
        self.marker.send_if_modified(|marker| {
            let moved = *marker != read;
            *marker = read;
            moved
        });
    }
}

/// Reads the marker while any stream listens, until stopped.
pub async fn watch(store: Store, changes: Changes, stop: CancellationToken) {
    loop {
        let pause = if changes.marker.receiver_count() == 0 {
            IDLE_LOOK_EVERY
        } else {
            match store.change_marker().await {
                Ok((history, audit)) => changes.read(Marker { history, audit }),
                Err(error) => {
                    tracing::warn!(%error, "could not read the dashboard's change marker")
                }
            }
            READ_EVERY
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// `GET /ui/events`: an event `change` whenever the marker moves, and at once on connecting when the page's
/// `Last-Event-ID` is not the current marker. Operators' pages get the event without the marker's figures.
pub async fn stream(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let current = match state.store.change_marker().await {
        Ok((history, audit)) => {
            let read = Marker { history, audit };
            // Up to date before this stream listens, so that the watcher's next reading is no news to it.
            state.changes.read(read);
            read
        }
        Err(_) => *state.changes.marker.borrow(),
    };
    let last_seen = headers
        .get("last-event-id")
        .and_then(|id| id.to_str().ok())
        .map(str::to_owned);
    let missed = last_seen.is_some_and(|id| id != current.id());
    let detailed = viewer.sees_the_desk();
    let event = move |marker: Marker| {
        let event = Event::default().event("change").id(marker.id());
        Ok(match detailed {
            true => event.data(format!(
                "{{\"history\":{},\"audit\":{}}}",
                marker.history, marker.audit
            )),
            false => event.data("{}"),
        })
    };
    let first = tokio_stream::iter(missed.then_some(current)).map(event);
    let later = WatchStream::from_changes(state.changes.marker.subscribe()).map(event);
    Sse::new(first.chain(later)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
