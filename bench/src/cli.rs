//! The command line: what to run, against what, and how to report it.

use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Load generator for leadrouter: sets up a scenario over HTTP, drives contacts (and reads) at a given
/// concurrency, reports throughput and latency, then checks the service's invariants through its API.
///
/// Without --url it starts the `leadrouter` binary found next to its own executable on a temporary SQLite
/// database, and stops it at the end. With several --url (instances on one database) the clients are spread
/// over them. The exit status is non-zero when an invariant is broken.
#[derive(Debug, Parser)]
#[command(name = "leadrouter-bench", version)]
pub struct Args {
    /// A running server to load (e.g. http://127.0.0.1:8000); by default a fresh local one is started. Given
    /// more than once (or comma separated), instances that share one database: client i sends to URL i mod N,
    /// and the set-up and the checks go through the first.
    #[arg(long, value_delimiter = ',')]
    pub url: Vec<String>,

    /// Sources (bots) the contacts are spread over, round robin.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub sources: u64,

    /// Operators, each linked to every source. Their weights are 1, 2, …, N unless --weights is given.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub operators: Option<u64>,

    /// Operator weights, comma separated (e.g. 10,30); their number is the number of operators.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub weights: Option<Vec<f64>>,

    /// Each operator's max_load. The default is the largest the API accepts, so capacity never runs out.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub max_load: u64,

    /// Contacts posted before the measured run (concurrently, not measured), as history in the database.
    #[arg(long, default_value_t = 0)]
    pub preload: u64,

    /// Run for this long (e.g. 10s, 500ms, 2m). The default, when --requests is not given either, is 10s.
    #[arg(long, value_parser = parse_duration, conflicts_with = "requests")]
    pub duration: Option<Duration>,

    /// Send exactly this many requests.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,

    /// Send at this many requests a second in all, each at its time (an open loop, like bots that do not wait
    /// for one another), as far as the clients can keep up; by default each client sends as fast as it is
    /// answered.
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Clients sending at the same time, each waiting for its answer before the next request.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub concurrency: u64,

    /// What the clients send.
    #[arg(long, value_enum, default_value_t = Workload::NewLeads)]
    pub workload: Workload,

    /// returning-leads: how many distinct leads keep coming back.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub lead_pool: u64,

    /// After the measured run, measure raw SQLite's best rate for the same write (a new lead's contact, every
    /// statement the server runs for it) in a fresh database on the same disk, with the server's schema and
    /// pragmas and as many contacts a commit as clients (at most 256, the server's batch), and report
    /// leadrouter's contacts/s as a ratio to it. Only with the server the bench starts, and new-leads.
    #[arg(long, conflicts_with = "url")]
    pub raw_sqlite: bool,

    /// Print one JSON object on stdout instead of the summary table.
    #[arg(long)]
    pub json: bool,

    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Every contact is a new lead (a unique external_id).
    NewLeads,
    /// Contacts from a fixed pool of --lead-pool leads, each always sending the same external_id or phone.
    ReturningLeads,
    /// 80 % new leads, 20 % reads: source stats, operator stats, the latest contacts.
    Mixed,
    /// Only the two stats endpoints, in turn: what a dashboard polls. Use with --preload for history.
    Stats,
    /// Only GET /healthz, which touches no database: the floor of an HTTP round trip between the bench and
    /// the server on this machine, to set a write's latency against.
    Health,
}

/// When the measured run ends.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    AfterRequests(u64),
    After(Duration),
}

impl Args {
    pub fn stop(&self) -> Stop {
        match (self.requests, self.duration) {
            (Some(requests), _) => Stop::AfterRequests(requests),
            (None, Some(duration)) => Stop::After(duration),
            (None, None) => Stop::After(Duration::from_secs(10)),
        }
    }

    /// One weight per operator: --weights as given, or 1..=N.
    pub fn operator_weights(&self) -> anyhow::Result<Vec<f64>> {
        match (&self.weights, self.operators) {
            (Some(weights), Some(n)) if weights.len() as u64 != n => {
                anyhow::bail!("--operators {n} but {} --weights given", weights.len())
            }
            (Some(weights), _) => {
                if let Some(bad) = weights.iter().find(|w| !(**w > 0.0 && **w <= 1_000_000.0)) {
                    anyhow::bail!("weight {bad} is outside (0, 1000000]");
                }
                Ok(weights.clone())
            }
            (None, n) => Ok((1..=n.unwrap_or(4)).map(|w| w as f64).collect()),
        }
    }
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::NewLeads => "new-leads",
            Workload::ReturningLeads => "returning-leads",
            Workload::Mixed => "mixed",
            Workload::Stats => "stats",
            Workload::Health => "health",
        }
    }
}

/// `10s`, `500ms`, `2m`, `1.5s`; a bare number is seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 10s, 500ms or 2m"))?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ms" => number / 1_000.0,
        "m" | "min" => number * 60.0,
        "h" => number * 3_600.0,
        other => return Err(format!("unknown unit `{other}`; use ms, s, m or h")),
    };
    if seconds <= 0.0 {
        return Err("the duration must be positive".into());
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!("{text:?}: a positive number of requests a second")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1_500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("3 days").is_err());
    }
}
