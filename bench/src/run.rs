//! The measured run: N workers, each sending its next request as soon as the previous one is answered, and
//! each keeping its own tally (no locks on the hot path), merged at the end. With several servers, worker i
//! sends to server i mod N.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::StatusCode;
use serde::Deserialize;

use crate::api::Api;
use crate::cli::Stop;
use crate::workload::{Kind, Plan, Request};

/// How many of the slowest requests a run names one by one.
pub const SLOWEST_KEPT: usize = 5;

/// Everything the workers saw.
pub struct Tally {
    /// Latency in microseconds of every answered request (errors included), per kind: each request's own wall
    /// time, from just before it is sent to its whole answer read. Never corrected for coordinated omission:
    /// under --rate, a request sent late is timed from when it went, not from when it was due.
    pub latency: BTreeMap<Kind, Histogram<u64>>,
    /// The slowest answered requests' latencies in microseconds, slowest first, exact (the histogram rounds
    /// to three significant digits): at most [`SLOWEST_KEPT`].
    pub slowest: Vec<u64>,
    /// Answers other than the expected 201/200 by status code, plus "connection" and "timeout".
    pub errors: BTreeMap<String, u64>,
    /// 201s per scenario source (by index).
    pub created_per_source: Vec<u64>,
    /// Per server, in the order they were given.
    pub per_server: Vec<ServerTally>,
    /// Returning leads: the lead ids each pool identity was answered with. One each, if all is well.
    pub leads_per_identity: HashMap<u64, BTreeSet<i64>>,
}

/// What one server was sent, and acknowledged.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerTally {
    /// Answered or not.
    pub requests: u64,
    /// 201s to POST /contacts/.
    pub contacts_created: u64,
}

pub struct Outcome {
    pub tally: Tally,
    pub elapsed: Duration,
}

impl Tally {
    fn new(sources: usize, servers: usize) -> Self {
        Self {
            latency: BTreeMap::new(),
            slowest: Vec::with_capacity(SLOWEST_KEPT + 1),
            errors: BTreeMap::new(),
            created_per_source: vec![0; sources],
            per_server: vec![ServerTally::default(); servers],
            leads_per_identity: HashMap::new(),
        }
    }

    pub fn requests(&self) -> u64 {
        let answered: u64 = self.latency.values().map(|h| h.len()).sum();
        answered + self.unanswered()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Requests that got no HTTP answer, so no latency.
    fn unanswered(&self) -> u64 {
        ["connection", "timeout"]
            .iter()
            .filter_map(|key| self.errors.get(*key))
            .sum()
    }

    fn record_latency(&mut self, kind: Kind, elapsed: Duration) {
        let micros = (elapsed.as_micros() as u64).max(1);
        let histogram = self.latency.entry(kind).or_insert_with(new_histogram);
        histogram.saturating_record(micros);
        self.keep_if_slowest(micros);
    }

    fn keep_if_slowest(&mut self, micros: u64) {
        if self.slowest.len() == SLOWEST_KEPT && self.slowest.last() >= Some(&micros) {
            return;
        }
        let place = self.slowest.partition_point(|&kept| kept >= micros);
        self.slowest.insert(place, micros);
        self.slowest.truncate(SLOWEST_KEPT);
    }

    fn merge(&mut self, other: Tally) {
        for (kind, histogram) in other.latency {
            let mine = self.latency.entry(kind).or_insert_with(new_histogram);
            // Same bounds on both sides, so adding cannot fail.
            let _ = mine.add(histogram);
        }
        for micros in other.slowest {
            self.keep_if_slowest(micros);
        }
        for (key, count) in other.errors {
            *self.errors.entry(key).or_default() += count;
        }
        for (mine, theirs) in self
            .created_per_source
            .iter_mut()
            .zip(other.created_per_source)
        {
            *mine += theirs;
        }
        for (mine, theirs) in self.per_server.iter_mut().zip(other.per_server) {
            mine.requests += theirs.requests;
            mine.contacts_created += theirs.contacts_created;
        }
        for (identity, leads) in other.leads_per_identity {
            self.leads_per_identity
                .entry(identity)
                .or_default()
                .extend(leads);
        }
    }
}

/// 1 µs to 10 minutes at 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Runs `plan` until `stop`, `concurrency` requests at a time, worker i sending to `servers[i % N]`; with a
/// `rate`, request number n is not sent before n / rate seconds from the start. `label` heads the progress bar.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    servers: &[Api],
    plan: Arc<Plan>,
    sources: usize,
    concurrency: usize,
    stop: Stop,
    rate: Option<f64>,
    label: &str,
    show_progress: bool,
) -> Outcome {
    let next_number = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = match stop {
        Stop::After(duration) => Some(started + duration),
        Stop::AfterRequests(_) => None,
    };
    let limit = match stop {
        Stop::AfterRequests(requests) => requests,
        Stop::After(_) => u64::MAX,
    };

    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let server = worker % servers.len();
            let (api, plan) = (servers[server].clone(), plan.clone());
            let (next_number, answered) = (next_number.clone(), answered.clone());
            let server_count = servers.len();
            tokio::spawn(async move {
                let mut tally = Tally::new(sources, server_count);
                loop {
                    let number = next_number.fetch_add(1, Ordering::Relaxed);
                    if number >= limit || deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                    if let Some(rate) = rate {
                        let due = started + Duration::from_secs_f64(number as f64 / rate);
                        tokio::time::sleep_until(due.into()).await;
                    }
                    send(&api, server, plan.request(number), &mut tally).await;
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                tally
            })
        })
        .collect();

    let progress = progress_bar(stop, label, show_progress);
    let ticker = {
        let (progress, answered) = (progress.clone(), answered.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                update_progress(&progress, stop, started, answered.load(Ordering::Relaxed));
            }
        })
    };

    let mut tally = Tally::new(sources, servers.len());
    for worker in workers {
        tally.merge(worker.await.expect("a bench worker panicked"));
    }
    let elapsed = started.elapsed();
    ticker.abort();
    progress.finish_and_clear();
    Outcome { tally, elapsed }
}

#[derive(Deserialize)]
struct CreatedContact {
    lead_id: i64,
}

/// Sends the request to `api`, server number `server`, and tallies its answer.
async fn send(api: &Api, server: usize, request: Request, tally: &mut Tally) {
    tally.per_server[server].requests += 1;
    let kind = request.kind();
    let started = Instant::now();
    let (sent, expected) = match &request {
        Request::CreateContact { body, .. } => (
            api.client.post(api.url("/contacts/")).json(body).send(),
            StatusCode::CREATED,
        ),
        Request::Get { path, .. } => (api.client.get(api.url(path)).send(), StatusCode::OK),
    };
    // The body is read in full even when unused, so that the connection goes back to the pool.
    let answer = match sent.await {
        Ok(response) => {
            let status = response.status();
            response.bytes().await.map(|body| (status, body))
        }
        Err(error) => Err(error),
    };
    let (status, body) = match answer {
        Ok(answer) => answer,
        Err(error) => {
            let key = if error.is_timeout() {
                "timeout"
            } else {
                "connection"
            };
            *tally.errors.entry(key.to_owned()).or_default() += 1;
            return;
        }
    };
    tally.record_latency(kind, started.elapsed());
    if status != expected {
        *tally.errors.entry(status.as_u16().to_string()).or_default() += 1;
        return;
    }
    if let Request::CreateContact {
        source,
        pool_identity,
        ..
    } = request
    {
        tally.created_per_source[source] += 1;
        tally.per_server[server].contacts_created += 1;
        if let Some(identity) = pool_identity {
            // Only returning leads pay for decoding the answer.
            let lead = serde_json::from_slice::<CreatedContact>(&body).map_or(-1, |c| c.lead_id);
            tally
                .leads_per_identity
                .entry(identity)
                .or_default()
                .insert(lead);
        }
    }
}

fn progress_bar(stop: Stop, label: &str, visible: bool) -> ProgressBar {
    if !visible || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (length, template) = match stop {
        Stop::AfterRequests(requests) => (
            requests,
            "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} requests {msg}",
        ),
        Stop::After(duration) => (
            duration.as_millis() as u64,
            "{prefix} [{elapsed_precise}] {wide_bar} {msg}",
        ),
    };
    let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_prefix(label.to_owned());
    bar
}

fn update_progress(bar: &ProgressBar, stop: Stop, started: Instant, answered: u64) {
    let elapsed = started.elapsed();
    let rate = answered as f64 / elapsed.as_secs_f64().max(1e-9);
    match stop {
        Stop::AfterRequests(_) => {
            bar.set_position(answered);
            bar.set_message(format!("{rate:.0}/s"));
        }
        Stop::After(_) => {
            bar.set_position(elapsed.as_millis() as u64);
            bar.set_message(format!("{answered} requests, {rate:.0}/s"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_are_kept_slowest_first_across_workers() {
        let mut first = Tally::new(1, 1);
        for micros in [30, 10, 70, 50, 20, 90, 40] {
            first.record_latency(Kind::CreateContact, Duration::from_micros(micros));
        }
        assert_eq!(first.slowest, [90, 70, 50, 40, 30]);
        let mut second = Tally::new(1, 1);
        for micros in [80, 35, 5] {
            second.record_latency(Kind::SourceStats, Duration::from_micros(micros));
        }
        first.merge(second);
        assert_eq!(first.slowest, [90, 80, 70, 50, 40]);
    }
}
