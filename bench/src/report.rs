//! The summary of a run: built once, printed as a table for people or as one JSON object for machines.

use std::collections::BTreeMap;
use std::fmt::Write;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::invariants::{Check, Verdict};
use crate::raw_sqlite::RawSqlite;
use crate::run::{Outcome, ServerTally, new_histogram};
use crate::server::Memory;

#[derive(Debug, Serialize)]
pub struct Summary {
    pub workload: &'static str,
    /// The server's base URL (the first of several, which the set-up and the checks went through);
    /// `local_server` when the bench started it.
    pub server: String,
    pub local_server: bool,
    /// What each server was sent, in the order of --url; one entry for one server.
    pub by_server: Vec<ServerSummary>,
    pub scenario: ScenarioSummary,
    pub concurrency: u64,
    pub elapsed_secs: f64,
    /// Requests sent in the measured run, answered or not.
    pub requests: u64,
    pub errors: u64,
    pub throughput_per_sec: f64,
    /// 201s to POST /contacts/ in the measured run.
    pub contacts_created: u64,
    pub contacts_per_sec: f64,
    /// Over every answered request.
    pub latency_ms: Latency,
    /// The slowest answered requests, slowest first, each as timed (not rounded by the histogram).
    pub slowest_ms: Vec<f64>,
    /// The tail against the median over every answered request (issue 15 asks for at most 5 at one client);
    /// `None` when nothing was answered.
    pub p999_over_p50: Option<f64>,
    pub by_kind: BTreeMap<&'static str, KindSummary>,
    /// Status code (or "connection", "timeout") → count, for answers other than the expected 201/200.
    pub errors_by_status: BTreeMap<String, u64>,
    /// Only when the bench started the server: /proc can be read for a local process only.
    pub server_memory: Option<Memory>,
    /// --raw-sqlite: raw SQLite's best rate for the same write, on the same disk, measured after the run.
    pub raw_sqlite: Option<RawSqlite>,
    /// --raw-sqlite: `contacts_per_sec` over raw SQLite's.
    pub ratio_to_raw_sqlite: Option<f64>,
    pub invariants: Invariants,
}

#[derive(Debug, Serialize)]
pub struct ScenarioSummary {
    pub sources: usize,
    pub operators: usize,
    pub weights: Vec<f64>,
    pub max_load: u64,
    pub preload: u64,
    pub lead_pool: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct ServerSummary {
    pub url: String,
    /// Requests sent to it in the measured run, answered or not.
    pub requests: u64,
    /// Its 201s to POST /contacts/ in the measured run.
    pub contacts_created: u64,
}

#[derive(Debug, Serialize)]
pub struct KindSummary {
    pub requests: u64,
    pub latency_ms: Latency,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    /// p99.9.
    pub p999: f64,
    pub max: f64,
}

#[derive(Debug, Serialize)]
pub struct Invariants {
    pub passed: bool,
    pub checks: Vec<Check>,
}

/// The parts of a summary that come from the measured run.
pub struct Measured {
    pub elapsed_secs: f64,
    pub requests: u64,
    pub errors: u64,
    pub contacts_created: u64,
    pub latency_ms: Latency,
    pub slowest_ms: Vec<f64>,
    pub by_kind: BTreeMap<&'static str, KindSummary>,
    pub errors_by_status: BTreeMap<String, u64>,
    /// Per server, in the order of the URLs.
    pub per_server: Vec<ServerTally>,
}

impl Measured {
    pub fn of(outcome: &Outcome) -> Self {
        let tally = &outcome.tally;
        let mut all = new_histogram();
        let mut by_kind = BTreeMap::new();
        for (kind, histogram) in &tally.latency {
            let _ = all.add(histogram);
            by_kind.insert(
                kind.label(),
                KindSummary {
                    requests: histogram.len(),
                    latency_ms: Latency::of(histogram),
                },
            );
        }
        Self {
            elapsed_secs: outcome.elapsed.as_secs_f64(),
            requests: tally.requests(),
            errors: tally.error_count(),
            contacts_created: tally.created_per_source.iter().sum(),
            latency_ms: Latency::of(&all),
            slowest_ms: tally.slowest.iter().map(|&micros| ms(micros)).collect(),
            by_kind,
            errors_by_status: tally.errors.clone(),
            per_server: tally.per_server.clone(),
        }
    }
}

impl Latency {
    /// The histogram holds microseconds.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        Self {
            mean: histogram.mean() / 1_000.0,
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
        }
    }

    /// p99.9 over p50, or `None` without a median to divide by.
    pub fn tail_over_median(&self) -> Option<f64> {
        (self.p50 > 0.0).then(|| self.p999 / self.p50)
    }
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1_000.0
}

impl Summary {
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let target = match self.local_server {
            true => format!("local server {} on a fresh SQLite database", self.server),
            false => {
                let urls: Vec<_> = self.by_server.iter().map(|s| s.url.as_str()).collect();
                urls.join(", ")
            }
        };
        let s = &self.scenario;
        let _ = writeln!(
            out,
            "leadrouter-bench: {}, {} client{}, {}",
            self.workload,
            self.concurrency,
            if self.concurrency == 1 { "" } else { "s" },
            target
        );
        let _ = writeln!(
            out,
            "scenario: {} sources, {} operators (weights {}), max_load {}, {} preloaded contacts{}",
            s.sources,
            s.operators,
            s.weights
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join(","),
            s.max_load,
            s.preload,
            s.lead_pool
                .map_or(String::new(), |pool| format!(", a pool of {pool} leads")),
        );
        let _ = writeln!(
            out,
            "\n  {:<27} {:>8} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "request", "count", "req/s", "p50", "p90", "p99", "p99.9", "max"
        );
        let per_sec = |count: u64| count as f64 / self.elapsed_secs.max(1e-9);
        let mut row = |name: &str, count: u64, latency: &Latency| {
            let _ = writeln!(
                out,
                "  {name:<27} {count:>8} {:>10.0} {:>9} {:>9} {:>9} {:>9} {:>9}",
                per_sec(count),
                millis(latency.p50),
                millis(latency.p90),
                millis(latency.p99),
                millis(latency.p999),
                millis(latency.max),
            );
        };
        // The writes first, then the reads.
        let mut kinds: Vec<_> = self.by_kind.iter().collect();
        kinds.sort_by_key(|(label, _)| (!label.starts_with("POST"), **label));
        for (label, summary) in kinds {
            row(label, summary.requests, &summary.latency_ms);
        }
        if self.by_kind.len() > 1 {
            row("all", self.requests, &self.latency_ms);
        }
        let _ = writeln!(
            out,
            "\n  {} requests in {:.2} s: {:.0} requests/s, {} contacts created ({:.0}/s)",
            self.requests,
            self.elapsed_secs,
            self.throughput_per_sec,
            self.contacts_created,
            self.contacts_per_sec
        );
        let errors = if self.errors_by_status.is_empty() {
            "none".to_owned()
        } else {
            let each: Vec<_> = self
                .errors_by_status
                .iter()
                .map(|(k, n)| format!("{k} × {n}"))
                .collect();
            format!("{} ({})", self.errors, each.join(", "))
        };
        let _ = writeln!(out, "  errors: {errors}");
        if self.by_server.len() > 1 {
            for server in &self.by_server {
                let _ = writeln!(
                    out,
                    "  {}: {} requests, {} contacts created ({:.0}/s)",
                    server.url,
                    server.requests,
                    server.contacts_created,
                    per_sec(server.contacts_created)
                );
            }
        }
        if !self.slowest_ms.is_empty() {
            let slowest: Vec<_> = self.slowest_ms.iter().map(|&ms| millis(ms)).collect();
            let ratio = self
                .p999_over_p50
                .map_or(String::new(), |ratio| format!("; p99.9 is {ratio:.1}× p50"));
            let _ = writeln!(out, "  slowest: {}{ratio}", slowest.join(", "));
        }
        if let Some(memory) = self.server_memory {
            let _ = writeln!(
                out,
                "  server memory: {:.1} MiB resident at the end, {:.1} MiB at most",
                memory.rss_kib as f64 / 1024.0,
                memory.peak_rss_kib as f64 / 1024.0
            );
        }
        if let (Some(raw), Some(ratio)) = (self.raw_sqlite, self.ratio_to_raw_sqlite) {
            let _ = writeln!(
                out,
                "  raw SQLite, same write, schema and disk, {} contact{} a commit: {:.0} contacts/s \
                 ({} in {:.2} s); leadrouter at {ratio:.2} of it",
                raw.batch_size,
                if raw.batch_size == 1 { "" } else { "s" },
                raw.contacts_per_sec,
                raw.contacts,
                raw.elapsed_secs,
            );
            let commit = raw.commit_ms;
            let ratio = raw
                .commit_p999_over_p50
                .map_or(String::new(), |ratio| format!("; p99.9 is {ratio:.1}× p50"));
            let _ = writeln!(
                out,
                "  raw SQLite's transactions, BEGIN to durable COMMIT: p50 {}, p99 {}, p99.9 {}, max {}{ratio}",
                millis(commit.p50),
                millis(commit.p99),
                millis(commit.p999),
                millis(commit.max),
            );
        }
        let _ = writeln!(out, "\ninvariants:");
        for check in &self.invariants.checks {
            let mark = match check.verdict {
                Verdict::Passed => "ok     ",
                Verdict::Skipped => "skipped",
                Verdict::Failed => "BROKEN ",
            };
            let _ = writeln!(out, "  {mark} {}: {}", check.name, check.detail);
        }
        out
    }
}

/// Three significant digits are all an HDR histogram at this precision holds.
fn millis(ms: f64) -> String {
    match ms {
        ms if ms < 10.0 => format!("{ms:.3} ms"),
        ms if ms < 100.0 => format!("{ms:.2} ms"),
        ms => format!("{ms:.0} ms"),
    }
}
