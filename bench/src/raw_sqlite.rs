//! `--raw-sqlite`: raw SQLite's best rate for the write leadrouter makes for a new lead, measured in the same run
//! on the same disk (a fresh database file beside the server's), so that leadrouter's throughput can be quoted
//! as a ratio to it rather than as a figure that moves with the machine (issue 15 item 3).
//!
//! What is kept of the server: its schema (every migration), its writer's pragmas, the statements of a new
//! lead's write on a `weighted_random` source without webhooks as the server words them (src/store/contacts.rs
//! `route_new` and the functions it calls), each run from the statement cache, the server's group commit at
//! its best (every waiting client's write in one transaction). Checkpoints are SQLite's own automatic ones
//! (every 1,000 WAL pages, in the commit that passes them), as the server's writer's. What is left out, since this is SQLite's best
//! and not another leadrouter: HTTP, JSON and the hand-over to the writer thread; the decoding of every column
//! the server reads (the loop reads what the draw needs); and the savepoint the server's writer opens around
//! each write so that one that fails rolls back alone (nothing in this loop fails).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{SecondsFormat, SubsecRound, Utc};
use hdrhistogram::Histogram;
use rand::Rng;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::cli::Stop;
use crate::report::Latency;
use crate::run::new_histogram;

/// The server's SQLite migrations in order, as compiled into it; a test checks that none is missing.
const MIGRATIONS: [(&str, &str); 11] = [
    (
        "0001_schema.sql",
        include_str!("../../migrations/sqlite/0001_schema.sql"),
    ),
    (
        "0002_idempotency.sql",
        include_str!("../../migrations/sqlite/0002_idempotency.sql"),
    ),
    (
        "0003_api_keys.sql",
        include_str!("../../migrations/sqlite/0003_api_keys.sql"),
    ),
    (
        "0004_queue_history_webhooks.sql",
        include_str!("../../migrations/sqlite/0004_queue_history_webhooks.sql"),
    ),
    (
        "0005_audit_log.sql",
        include_str!("../../migrations/sqlite/0005_audit_log.sql"),
    ),
    (
        "0006_availability.sql",
        include_str!("../../migrations/sqlite/0006_availability.sql"),
    ),
    (
        "0007_work_rules.sql",
        include_str!("../../migrations/sqlite/0007_work_rules.sql"),
    ),
    (
        "0008_operator_keys.sql",
        include_str!("../../migrations/sqlite/0008_operator_keys.sql"),
    ),
    (
        "0009_strategies.sql",
        include_str!("../../migrations/sqlite/0009_strategies.sql"),
    ),
    (
        "0010_dashboard.sql",
        include_str!("../../migrations/sqlite/0010_dashboard.sql"),
    ),
    (
        "0011_partial_lead_identities.sql",
        include_str!("../../migrations/sqlite/0011_partial_lead_identities.sql"),
    ),
];

/// The pragmas of the server's writer connection (src/store/writer.rs `open`), but for its checkpoints: here
/// SQLite's automatic ones.
const WRITER_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA temp_store = MEMORY;";

/// The most writes the server's writer takes into one transaction by default (LEADROUTER_WRITE_BATCH_MAX).
const SERVER_BATCH_MAX: usize = 256;

/// Bounds on a loop asked for a number of contacts (--requests), which may be far more than a second's worth.
const MOST_CONTACTS: u64 = 1_000_000;
const LONGEST: Duration = Duration::from_secs(60);

/// The source, its linked operators and whether its queue has contacts waiting, in one query: the server's
/// routing read (src/store/candidates.rs `routing_view`).
const ROUTING_READ: &str = "SELECT s.id, s.name, s.description, s.created_at, s.on_operator_unavailable, \
     s.sticky_hours, s.accept_timeout_secs, s.strategy, \
     CASE WHEN s.strategy = 'smooth_weighted' THEN s.strategy_round END AS strategy_round, \
     EXISTS (SELECT 1 FROM contacts c WHERE c.source_id = s.id AND c.operator_id IS NULL AND status = 'active') \
     AS has_waiting, \
     NULL AS operator_id, NULL AS weight, NULL AS is_active, NULL AS max_load, NULL AS active_load, \
     NULL AS availability, NULL AS away_until, NULL AS timezone, NULL AS schedule, \
     NULL AS has_time_off, NULL AS last_assigned_at \
     FROM sources s WHERE s.id = ?1 AND s.deleted_at IS NULL \
     UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
     w.operator_id, w.weight, o.is_active, o.max_load, o.active_load, \
     o.availability, o.away_until, o.timezone, o.schedule, \
     EXISTS (SELECT 1 FROM operator_time_off t WHERE t.operator_id = o.id) AS has_time_off, \
     CASE WHEN s.strategy = 'least_loaded' THEN o.last_assigned_at END \
     FROM sources s JOIN source_operator_weights w ON w.source_id = s.id \
     JOIN operators o ON o.id = w.operator_id \
     WHERE s.id = ?1 AND s.deleted_at IS NULL";

/// The leads holding any of the identifiers (src/store/leads.rs `resolve`).
const LEAD_HOLDERS: &str = "SELECT id, external_id, phone, email, name, created_at FROM leads \
     WHERE external_id = ?1 OR phone = ?2 OR email = ?3 ORDER BY id";

const INSERT_LEAD: &str = "INSERT INTO leads (external_id, phone, email, name, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id, external_id, phone, email, name, created_at";

/// One unit of the operator's capacity, if they are below max_load (src/store/operators.rs `claim_capacity`).
const CLAIM: &str = "UPDATE operators SET active_load = active_load + 1, last_assigned_at = ?2 \
     WHERE id = ?1 AND is_active AND active_load < max_load RETURNING id, name, is_active, max_load, \
     active_load, created_at, availability, away_until, timezone, schedule";

const INSERT_CONTACT: &str = "INSERT INTO contacts (lead_id, source_id, operator_id, status, message, \
     created_at, created_by_key_id, assigned_at, accept_deadline) \
     VALUES (?1, ?2, ?3, 'active', ?4, ?5, NULL, ?6, NULL) RETURNING id AS value";

/// src/store/decisions.rs `record`.
const INSERT_DECISION: &str = "INSERT INTO routing_decisions (contact_id, source_id, at, reason, strategy, \
     chosen_operator_id, record) VALUES (?1, ?2, ?3, 'creation', 'weighted_random', ?4, ?5) \
     RETURNING id AS value";

/// src/store/tallies.rs `count`.
const COUNT: &str = "INSERT INTO contact_counts (source_id, operator_id, status, contacts) \
     VALUES (?1, ?2, 'active', 1) ON CONFLICT (source_id, operator_id, status) \
     DO UPDATE SET contacts = contact_counts.contacts + excluded.contacts RETURNING contacts AS value";

/// src/store/history.rs `record`.
const INSERT_HISTORY: &str = "INSERT INTO contact_history (contact_id, at, event, from_operator_id, \
     to_operator_id, from_status, to_status, reason, api_key_id, decision_id) \
     VALUES (?1, ?2, 'created', NULL, ?3, NULL, 'active', 'creation', NULL, ?4) \
     RETURNING id, contact_id, at, event, from_operator_id, to_operator_id, from_status, to_status, reason, \
     api_key_id, decision_id";

/// src/store/webhooks.rs `enqueue`: who receives the change's events (nobody, here).
const SUBSCRIPTIONS: &str = "SELECT id, events FROM webhooks ORDER BY id";

/// What the loop measured.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RawSqlite {
    pub contacts_per_sec: f64,
    /// Contacts per transaction (per durable commit).
    pub batch_size: usize,
    pub contacts: u64,
    pub elapsed_secs: f64,
    /// Each transaction timed from its BEGIN to its durable COMMIT: at one contact a commit, the floor under
    /// the server's per-request latency, and the tail the disk gives any durable commit (issue 15 item 4).
    pub commit_ms: Latency,
    /// `commit_ms`'s p99.9 over its p50.
    pub commit_p999_over_p50: Option<f64>,
}

/// The scenario of the HTTP run, set up again in the raw database.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub sources: usize,
    pub weights: Vec<f64>,
    pub max_load: u64,
    /// Contacts written before the measured loop, not measured, as the HTTP run's --preload.
    pub preload: u64,
}

/// The commit rule: one contact per commit at one client, where each request waits for its own; with more,
/// the most the server's group commit can take in one batch, every waiting client's write, up to its cap.
pub fn batch_size(concurrency: usize) -> usize {
    concurrency.clamp(1, SERVER_BATCH_MAX)
}

/// Runs the loop on a blocking thread, in a fresh database `raw-sqlite.db` in `dir`, for as long as `stop`
/// says (a number of contacts is capped at a million, and at a minute). Should the bench be interrupted,
/// dropping the future stops the loop after its current transaction.
pub async fn measure(
    dir: &Path,
    scenario: Scenario,
    batch_size: usize,
    stop: Stop,
) -> anyhow::Result<RawSqlite> {
    let database = dir.join("raw-sqlite.db");
    let cancelled = CancelOnDrop(Arc::new(AtomicBool::new(false)));
    let flag = cancelled.0.clone();
    tokio::task::spawn_blocking(move || run(&database, &scenario, batch_size, stop, &flag))
        .await
        .context("the raw SQLite loop panicked")?
}

/// Sets its flag when dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn run(
    database: &Path,
    scenario: &Scenario,
    batch_size: usize,
    stop: Stop,
    cancelled: &AtomicBool,
) -> anyhow::Result<RawSqlite> {
    let mut db = open(database)?;
    migrate(&mut db)?;
    let source_ids = set_up(&mut db, scenario).context("setting up the raw scenario")?;
    let mut writer = ContactWriter {
        db: &db,
        source_ids: &source_ids,
        batch_size,
        rng: rand::rng(),
    };
    writer.preload_then_measure(scenario.preload, stop, cancelled)
}

/// A fresh database file, opened as the server's writer opens its own.
fn open(path: &Path) -> anyhow::Result<Connection> {
    let db = Connection::open(path).with_context(|| format!("creating {}", path.display()))?;
    db.execute_batch(WRITER_PRAGMAS)?;
    db.set_prepared_statement_cache_capacity(128);
    Ok(db)
}

/// Each migration in a transaction of its own, as the server applies them.
fn migrate(db: &mut Connection) -> anyhow::Result<()> {
    for (name, sql) in MIGRATIONS {
        let transaction = db.transaction()?;
        transaction
            .execute_batch(sql)
            .with_context(|| format!("migration {name}"))?;
        transaction.commit()?;
    }
    Ok(())
}

/// The operators with their max_load, the sources, every operator linked to every source with its weight;
/// returns the sources' ids.
fn set_up(db: &mut Connection, scenario: &Scenario) -> rusqlite::Result<Vec<i64>> {
    let transaction = db.transaction()?;
    let now = timestamp();
    let mut operator_ids: Vec<i64> = Vec::with_capacity(scenario.weights.len());
    for number in 1..=scenario.weights.len() {
        let sql =
            "INSERT INTO operators (name, max_load, created_at) VALUES (?1, ?2, ?3) RETURNING id";
        let name = format!("raw operator {number}");
        let params = params![name, scenario.max_load as i64, now];
        operator_ids.push(transaction.query_row(sql, params, |row| row.get(0))?);
    }
    let mut source_ids = Vec::with_capacity(scenario.sources);
    for number in 1..=scenario.sources {
        let sql = "INSERT INTO sources (name, created_at) VALUES (?1, ?2) RETURNING id";
        let name = format!("raw source {number}");
        let source_id: i64 = transaction.query_row(sql, params![name, now], |row| row.get(0))?;
        for (&operator_id, &weight) in operator_ids.iter().zip(&scenario.weights) {
            let sql = "INSERT INTO source_operator_weights (source_id, operator_id, weight) \
                 VALUES (?1, ?2, ?3)";
            transaction.execute(sql, params![source_id, operator_id, weight])?;
        }
        source_ids.push(source_id);
    }
    transaction.commit()?;
    Ok(source_ids)
}

/// Writes new leads' contacts into the raw database, as the server's writer thread would.
struct ContactWriter<'a, R> {
    db: &'a Connection,
    source_ids: &'a [i64],
    batch_size: usize,
    rng: R,
}

impl<R: Rng> ContactWriter<'_, R> {
    /// The preload, not measured, then the measured loop for as long as `stop` says.
    fn preload_then_measure(
        &mut self,
        preload: u64,
        stop: Stop,
        cancelled: &AtomicBool,
    ) -> anyhow::Result<RawSqlite> {
        self.write("raw-preload", preload, None, cancelled, None)
            .context("the raw SQLite preload")?;
        let (contacts, deadline) = match stop {
            Stop::AfterRequests(contacts) => {
                (contacts.min(MOST_CONTACTS), Instant::now() + LONGEST)
            }
            Stop::After(duration) => (u64::MAX, Instant::now() + duration),
        };
        let started = Instant::now();
        let mut commits = new_histogram();
        let written = self
            .write(
                "raw",
                contacts,
                Some(deadline),
                cancelled,
                Some(&mut commits),
            )
            .context("the raw SQLite loop")?;
        let elapsed_secs = started.elapsed().as_secs_f64();
        let commit_ms = Latency::of(&commits);
        Ok(RawSqlite {
            contacts_per_sec: written as f64 / elapsed_secs.max(1e-9),
            batch_size: self.batch_size,
            contacts: written,
            elapsed_secs,
            commit_ms,
            commit_p999_over_p50: commit_ms.tail_over_median(),
        })
    }

    /// Writes up to `contacts` new leads' contacts, round robin over the sources, `batch_size` to a
    /// transaction, until `deadline` if any (checked between transactions); returns how many it wrote, and
    /// records each transaction's time in microseconds in `commits` if given. `prefix` keeps the leads'
    /// external ids apart from another call's.
    fn write(
        &mut self,
        prefix: &str,
        contacts: u64,
        deadline: Option<Instant>,
        cancelled: &AtomicBool,
        mut commits: Option<&mut Histogram<u64>>,
    ) -> rusqlite::Result<u64> {
        let mut written = 0;
        while written < contacts
            && deadline.is_none_or(|deadline| Instant::now() < deadline)
            && !cancelled.load(Ordering::Relaxed)
        {
            let batch = (contacts - written).min(self.batch_size as u64);
            let began = Instant::now();
            self.db.execute_batch("BEGIN IMMEDIATE")?;
            for number in written..written + batch {
                let source_id = self.source_ids[(number % self.source_ids.len() as u64) as usize];
                self.write_contact(source_id, &format!("{prefix}-{number}"), number)?;
            }
            self.db.execute_batch("COMMIT")?;
            if let Some(commits) = commits.as_deref_mut() {
                commits.saturating_record(began.elapsed().as_micros() as u64);
            }
            written += batch;
        }
        Ok(written)
    }

    /// One new lead's contact, statement by statement as the server writes it.
    fn write_contact(
        &mut self,
        source_id: i64,
        external_id: &str,
        number: u64,
    ) -> rusqlite::Result<()> {
        let db = self.db;
        let now = timestamp();
        let (mut candidates, mut excluded) = routing_read(db, source_id)?;

        // A new lead's identifiers: nobody holds them.
        {
            let mut holders = db.prepare_cached(LEAD_HOLDERS)?;
            let mut found = holders.query(params![external_id, None::<&str>, None::<&str>])?;
            while found.next()?.is_some() {}
        }
        let lead_id: i64 = db.prepare_cached(INSERT_LEAD)?.query_row(
            params![
                external_id,
                None::<&str>,
                None::<&str>,
                format!("Lead {number}"),
                now
            ],
            |row| row.get(0),
        )?;

        // The draw and the claim, again without whoever turns out full (src/domain/routing.rs
        // `choose_and_claim`); the record keeps the candidates of the draw that won.
        let mut chosen = None;
        while !candidates.is_empty() {
            let draw = Draw::among(&candidates, &mut self.rng);
            let operator_id = candidates[draw.index].operator_id;
            let claimed = db
                .prepare_cached(CLAIM)?
                .query_row(params![operator_id, now], |row| row.get::<_, i64>(0))
                .optional()?;
            if claimed.is_some() {
                chosen = Some((operator_id, draw.record(&candidates, &excluded)));
                break;
            }
            candidates.remove(draw.index);
            excluded.push(operator_id);
        }
        let operator_id = chosen.as_ref().map(|(id, _)| *id);
        let record = match chosen {
            Some((_, record)) => record,
            None => nobody_record(&excluded),
        };
        let assigned_at = operator_id.map(|_| now.as_str());
        // (A contact left waiting costs the server one more read, of its source's pace for the ETA: not here,
        // where that happens only when --max-load runs out.)

        let message = "Hello from leadrouter-bench";
        let contact_id: i64 = db.prepare_cached(INSERT_CONTACT)?.query_row(
            params![lead_id, source_id, operator_id, message, now, assigned_at],
            |row| row.get(0),
        )?;
        let decision_id: i64 = db.prepare_cached(INSERT_DECISION)?.query_row(
            params![contact_id, source_id, now, operator_id, record],
            |row| row.get(0),
        )?;
        db.prepare_cached(COUNT)?
            .query_row(params![source_id, operator_id.unwrap_or(0)], |row| {
                row.get::<_, i64>(0)
            })?;
        db.prepare_cached(INSERT_HISTORY)?
            .query_row(params![contact_id, now, operator_id, decision_id], |row| {
                row.get::<_, i64>(0)
            })?;
        let mut subscriptions = db.prepare_cached(SUBSCRIPTIONS)?;
        let mut receivers = subscriptions.query([])?;
        while receivers.next()?.is_some() {}
        Ok(())
    }
}

/// A linked operator who may take the contact.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    operator_id: i64,
    weight: f64,
    load: i64,
    max_load: i64,
}

/// The source's candidates, and the ids of the linked operators who may not take the contact: inactive, not
/// available, on time off, or full (the server looks at time off more closely, and says why each is left out;
/// the bench's scenario has only full operators, which the record says).
fn routing_read(db: &Connection, source_id: i64) -> rusqlite::Result<(Vec<Candidate>, Vec<i64>)> {
    let mut read = db.prepare_cached(ROUTING_READ)?;
    let mut rows = read.query([source_id])?;
    let (mut candidates, mut excluded) = (Vec::new(), Vec::new());
    while let Some(row) = rows.next()? {
        let Some(operator_id) = row.get::<_, Option<i64>>("operator_id")? else {
            continue;
        };
        let candidate = Candidate {
            operator_id,
            weight: row.get("weight")?,
            load: row.get("active_load")?,
            max_load: row.get("max_load")?,
        };
        let accepting = row.get::<_, bool>("is_active")?
            && row.get_ref("availability")?.as_str()? == "available"
            && !row.get::<_, bool>("has_time_off")?;
        if accepting && candidate.load < candidate.max_load {
            candidates.push(candidate);
        } else {
            excluded.push(operator_id);
        }
    }
    Ok((candidates, excluded))
}

/// One weighted random draw among the candidates (src/domain/strategy.rs `weighted_random`).
struct Draw {
    index: usize,
    random: f64,
    total_weight: f64,
}

impl Draw {
    fn among(candidates: &[Candidate], rng: &mut impl Rng) -> Self {
        let total_weight: f64 = candidates.iter().map(|c| c.weight).sum();
        let random = rng.random::<f64>() * total_weight;
        let mut reached = 0.0;
        let index = candidates
            .iter()
            .position(|c| {
                reached += c.weight;
                random < reached
            })
            .unwrap_or(candidates.len() - 1);
        Self {
            index,
            random,
            total_weight,
        }
    }

    /// The decision's `record` column as the server writes it for a weighted random draw: `k` the candidates
    /// as `[operator_id, weight, load, max_load]`, without their probabilities, which the weights imply; `x`
    /// the excluded as `[operator_id, why]`; `d` what the draw used (src/store/decisions.rs `Compact`).
    fn record(&self, candidates: &[Candidate], excluded: &[i64]) -> String {
        let k: Vec<_> = candidates
            .iter()
            .map(|c| (c.operator_id, c.weight, c.load, c.max_load))
            .collect();
        let d = serde_json::json!({ "random": self.random, "total_weight": self.total_weight });
        compact_record(&k, excluded, &d)
    }
}

/// The record of a contact nobody could take.
fn nobody_record(excluded: &[i64]) -> String {
    compact_record(&[], excluded, &serde_json::json!({}))
}

fn compact_record(
    candidates: &[(i64, f64, i64, i64)],
    excluded: &[i64],
    detail: &serde_json::Value,
) -> String {
    #[derive(Serialize)]
    struct Compact<'a> {
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        k: &'a [(i64, f64, i64, i64)],
        x: Vec<(i64, &'static str)>,
        d: &'a serde_json::Value,
    }
    let x = excluded.iter().map(|&id| (id, "full")).collect();
    let compact = Compact {
        k: candidates,
        x,
        d: detail,
    };
    serde_json::to_string(&compact).unwrap_or_default()
}

/// Now, as the server stores it: RFC 3339 in UTC at microseconds.
fn timestamp() -> String {
    Utc::now()
        .trunc_subsecs(6)
        .to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_migration_is_applied() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations/sqlite");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("the server's migrations")
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        on_disk.sort();
        let compiled: Vec<&str> = MIGRATIONS.iter().map(|(name, _)| *name).collect();
        assert_eq!(on_disk, compiled);
    }

    /// What a loop wrote: its database, open, and kept until dropped.
    struct Written {
        db: Connection,
        _dir: tempfile::TempDir,
    }

    impl Written {
        fn count(&self, sql: &str) -> i64 {
            self.db.query_row(sql, [], |row| row.get(0)).expect(sql)
        }
    }

    fn scenario(sources: usize, weights: &[f64], max_load: u64) -> Scenario {
        Scenario {
            sources,
            weights: weights.to_vec(),
            max_load,
            preload: 0,
        }
    }

    /// Runs the loop for `contacts` on a fresh database, and opens the database it wrote.
    fn run_loop(scenario: Scenario, batch_size: usize, contacts: u64) -> (RawSqlite, Written) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("raw.db");
        let stop = Stop::AfterRequests(contacts);
        let measured =
            run(&path, &scenario, batch_size, stop, &AtomicBool::new(false)).expect("the raw loop");
        let db = Connection::open(&path).expect("the raw database");
        (measured, Written { db, _dir: dir })
    }

    #[test]
    fn the_loop_writes_what_the_server_would() {
        let scenario = Scenario {
            preload: 10,
            ..scenario(2, &[1.0, 3.0], 1_000)
        };
        let (measured, written) = run_loop(scenario, 8, 100);
        assert_eq!(measured.contacts, 100);
        assert_eq!(measured.batch_size, 8);
        assert!(measured.contacts_per_sec > 0.0);
        // The preload and the measured contacts, each with its lead, decision, history entry and count.
        for table in ["leads", "contacts", "routing_decisions", "contact_history"] {
            let rows = written.count(&format!("SELECT COUNT(*) FROM {table}"));
            assert_eq!(rows, 110, "{table}");
        }
        assert_eq!(
            written.count("SELECT SUM(contacts) FROM contact_counts"),
            110
        );
        assert_eq!(written.count("SELECT SUM(active_load) FROM operators"), 110);
        let waiting = "SELECT COUNT(*) FROM contacts WHERE operator_id IS NULL";
        assert_eq!(written.count(waiting), 0);
        let sql = "SELECT record FROM routing_decisions LIMIT 1";
        let record: String = written
            .db
            .query_row(sql, [], |row| row.get(0))
            .expect("a decision");
        let record: serde_json::Value = serde_json::from_str(&record).expect("JSON");
        assert_eq!(record["k"].as_array().map(Vec::len), Some(2), "{record}");
        assert_eq!(record["d"]["total_weight"], 4.0, "{record}");
    }

    #[test]
    fn full_operators_are_left_out_and_then_nobody_takes_the_contact() {
        let (_, written) = run_loop(scenario(1, &[1.0, 1.0], 3), 1, 10);
        assert_eq!(written.count("SELECT MAX(active_load) FROM operators"), 3);
        let waiting = "SELECT COUNT(*) FROM contacts WHERE operator_id IS NULL";
        assert_eq!(written.count(waiting), 4);
        let unassigned = "SELECT contacts FROM contact_counts WHERE operator_id = 0";
        assert_eq!(written.count(unassigned), 4);
    }
}
