//! `leadrouter check`: verifies that the values the store keeps alongside the contacts — each operator's load
//! counter, the contact counts the stats read, the history — still agree with the contacts, and that the
//! promises the database makes (one lead per identity) hold. Each invariant is one query, written once for
//! both backends (a few SQLite-only ones stand apart), run in one read-only transaction: one snapshot, and
//! nothing written.
//!
//! What is deliberately not an invariant: `queue_position` is not stored (it is counted from the contacts
//! whenever it is read), so it cannot drift; and an operator above max_load is allowed — reopening a contact,
//! a forced manual assignment and lowering max_load below the current load all leave one there, and only
//! automatic assignment is bounded by max_load, which the stored state does not let one tell apart. Such
//! operators, and contacts waiting while capacity is free (which the sweep assigns), are reported as notes.

use std::fmt;

use anyhow::Context;
use sqlx::{ConnectOptions, Connection};

use super::backend::{self, Target};
use super::executor::{Dialect, Executor, params};

/// How many violations of an invariant are shown.
const EXAMPLES: usize = 5;

/// Whether a violation breaks one of the database's promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The database is inconsistent: `check` fails.
    Mismatch,
    /// Allowed, but worth knowing.
    Note,
}

/// One invariant: how many rows it looks at, and its violations, one row each with a column `detail`.
struct Invariant {
    name: &'static str,
    /// What holds, in words.
    rule: &'static str,
    /// What `checked` counts, plural.
    subject: &'static str,
    /// `SELECT COUNT(*) AS value …`: the rows looked at.
    checked: &'static str,
    violations: &'static str,
    severity: Severity,
    /// `None`: both backends.
    only_on: Option<Dialect>,
}

const INVARIANTS: &[Invariant] = &[
    Invariant {
        name: "operator load",
        rule: "each operator's active_load is the number of their contacts in status active",
        subject: "operators",
        checked: "SELECT COUNT(*) AS value FROM operators",
        violations: "SELECT 'operator ' || CAST(o.id AS TEXT) \
             || ': active_load ' || CAST(o.active_load AS TEXT) \
             || ', active contacts ' || CAST(COUNT(c.id) AS TEXT) AS detail \
             FROM operators o LEFT JOIN contacts c ON c.operator_id = o.id AND c.status = 'active' \
             GROUP BY o.id, o.active_load HAVING o.active_load <> COUNT(c.id) ORDER BY o.id",
        severity: Severity::Mismatch,
        only_on: None,
    },
    Invariant {
        name: "contact counts",
        rule: "contact_counts holds the number of contacts of each source, operator (0: none) and status",
        subject: "(source, operator, status) counts",
        checked: "SELECT COUNT(*) AS value FROM (\
             SELECT source_id, COALESCE(operator_id, 0) AS operator_id, status FROM contacts \
             UNION SELECT source_id, operator_id, status FROM contact_counts) AS k",
        violations: "SELECT 'source ' || CAST(source_id AS TEXT) || ', ' \
             || CASE WHEN operator_id = 0 THEN 'unassigned' \
                     ELSE 'operator ' || CAST(operator_id AS TEXT) END \
             || ', status ' || status || ': contact_counts says ' || CAST(SUM(tallied) AS TEXT) \
             || ', contacts ' || CAST(SUM(counted) AS TEXT) AS detail \
             FROM (SELECT source_id, COALESCE(operator_id, 0) AS operator_id, status, COUNT(*) AS counted, \
                   0 AS tallied FROM contacts GROUP BY source_id, COALESCE(operator_id, 0), status \
                   UNION ALL SELECT source_id, operator_id, status, 0 AS counted, contacts AS tallied \
                   FROM contact_counts) AS t \
             GROUP BY source_id, operator_id, status HAVING SUM(counted) <> SUM(tallied) \
             ORDER BY source_id, operator_id, status",
        severity: Severity::Mismatch,
        only_on: None,
    },
    Invariant {
        name: "lead identity",
        rule: "no two leads share an external_id, a phone or an email (as stored, normalised)",
        subject: "leads",
        checked: "SELECT COUNT(*) AS value FROM leads",
        violations: "SELECT 'external_id ' || external_id || ': ' || CAST(COUNT(*) AS TEXT) \
             || ' leads, ids ' || CAST(MIN(id) AS TEXT) || ' to ' || CAST(MAX(id) AS TEXT) AS detail \
             FROM leads WHERE external_id IS NOT NULL GROUP BY external_id HAVING COUNT(*) > 1 \
             UNION ALL SELECT 'phone ' || phone || ': ' || CAST(COUNT(*) AS TEXT) || ' leads, ids ' \
             || CAST(MIN(id) AS TEXT) || ' to ' || CAST(MAX(id) AS TEXT) \
             FROM leads WHERE phone IS NOT NULL GROUP BY phone HAVING COUNT(*) > 1 \
             UNION ALL SELECT 'email ' || email || ': ' || CAST(COUNT(*) AS TEXT) || ' leads, ids ' \
             || CAST(MIN(id) AS TEXT) || ' to ' || CAST(MAX(id) AS TEXT) \
             FROM leads WHERE email IS NOT NULL GROUP BY email HAVING COUNT(*) > 1",
        severity: Severity::Mismatch,
        only_on: None,
    },
    Invariant {
        name: "history chain",
        rule: "each contact's history, oldest first, starts with its one created entry, and every later \
               entry starts from the operator and status the entry before left",
        subject: "history entries",
        checked: "SELECT COUNT(*) AS value FROM contact_history",
        violations: "SELECT 'entry ' || CAST(id AS TEXT) || ' of contact ' || CAST(contact_id AS TEXT) \
             || ': ' || CASE \
                 WHEN n = 1 AND event <> 'created' THEN 'the first entry is ' || event || ', not created' \
                 WHEN n > 1 AND event = 'created' THEN 'a second created entry' \
                 ELSE 'starts from ' \
                   || COALESCE('operator ' || CAST(from_operator_id AS TEXT), 'no operator') \
                   || ', ' || COALESCE(from_status, 'no status') || ' where the entry before left ' \
                   || COALESCE('operator ' || CAST(previous_operator_id AS TEXT), 'no operator') \
                   || ', ' || previous_status END AS detail \
             FROM (SELECT id, contact_id, event, from_operator_id, from_status, \
                   LAG(to_operator_id) OVER w AS previous_operator_id, \
                   LAG(to_status) OVER w AS previous_status, ROW_NUMBER() OVER w AS n \
                   FROM contact_history WINDOW w AS (PARTITION BY contact_id ORDER BY id)) AS e \
             WHERE (n = 1 AND event <> 'created') OR (n > 1 AND (event = 'created' \
                   OR from_operator_id IS DISTINCT FROM previous_operator_id \
                   OR from_status IS DISTINCT FROM previous_status)) \
             ORDER BY contact_id, id",
        severity: Severity::Mismatch,
        only_on: None,
    },
    Invariant {
        name: "history current",
        rule: "each contact has a history, and its latest entry left it with the operator and status it has",
        subject: "contacts",
        checked: "SELECT COUNT(*) AS value FROM contacts",
        violations: "SELECT 'contact ' || CAST(c.id AS TEXT) || ': ' \
             || CASE WHEN h.id IS NULL THEN 'no history' \
             ELSE 'has ' || COALESCE('operator ' || CAST(c.operator_id AS TEXT), 'no operator') || ', ' \
               || c.status || ', but its latest history entry (' || CAST(h.id AS TEXT) || ') left ' \
               || COALESCE('operator ' || CAST(h.to_operator_id AS TEXT), 'no operator') || ', ' \
               || h.to_status END AS detail \
             FROM contacts c LEFT JOIN contact_history h \
             ON h.id = (SELECT MAX(l.id) FROM contact_history l WHERE l.contact_id = c.id) \
             WHERE h.id IS NULL OR h.to_operator_id IS DISTINCT FROM c.operator_id \
                   OR h.to_status <> c.status \
             ORDER BY c.id",
        severity: Severity::Mismatch,
        only_on: None,
    },
    Invariant {
        name: "retired sources",
        rule: "a retired (deleted) source has no weights left",
        subject: "retired sources",
        checked: "SELECT COUNT(*) AS value FROM sources WHERE deleted_at IS NOT NULL",
        violations: "SELECT 'source ' || CAST(s.id AS TEXT) || ' is retired but still weighs operator ' \
             || CAST(w.operator_id AS TEXT) AS detail \
             FROM source_operator_weights w JOIN sources s ON s.id = w.source_id \
             WHERE s.deleted_at IS NOT NULL ORDER BY s.id, w.operator_id",
        severity: Severity::Mismatch,
        only_on: None,
    },
    // PostgreSQL enforces every foreign key and keeps its indexes itself; a SQLite file can have been written
    // by a tool that does not (the sqlite3 shell leaves foreign keys off), or damaged.
    Invariant {
        name: "sqlite integrity",
        rule: "PRAGMA integrity_check finds the file, its tables and their indexes sound",
        subject: "pages",
        checked: "SELECT page_count AS value FROM pragma_page_count",
        violations: "SELECT integrity_check AS detail FROM pragma_integrity_check \
             WHERE integrity_check <> 'ok'",
        severity: Severity::Mismatch,
        only_on: Some(Dialect::Sqlite),
    },
    Invariant {
        name: "references",
        rule: "every foreign key refers to a row that exists (PRAGMA foreign_key_check)",
        subject: "tables",
        checked: "SELECT COUNT(*) AS value FROM sqlite_schema WHERE type = 'table'",
        violations: "SELECT \"table\" || ' row ' || COALESCE(CAST(rowid AS TEXT), '?') \
             || ' refers to a missing row of ' || parent AS detail FROM pragma_foreign_key_check",
        severity: Severity::Mismatch,
        only_on: Some(Dialect::Sqlite),
    },
    Invariant {
        name: "accept deadlines",
        rule: "a contact due to be accepted is active, has an operator, and is not accepted yet",
        subject: "contacts with an accept deadline",
        checked: "SELECT COUNT(*) AS value FROM contacts WHERE accept_deadline IS NOT NULL",
        violations: "SELECT 'contact ' || CAST(id AS TEXT) || ': accept deadline with status ' || status \
             || CASE WHEN operator_id IS NULL THEN ', no operator' ELSE '' END \
             || CASE WHEN accepted_at IS NOT NULL THEN ', accepted' ELSE '' END AS detail \
             FROM contacts WHERE accept_deadline IS NOT NULL \
             AND (status <> 'active' OR operator_id IS NULL OR accepted_at IS NOT NULL) ORDER BY id",
        severity: Severity::Mismatch,
        only_on: None,
    },
    Invariant {
        name: "assignment times",
        rule: "a contact has assigned_at exactly when it has an operator (contacts from before 0007 aside: \
               they were given their created_at), and is accepted only while it has one",
        subject: "contacts",
        checked: "SELECT COUNT(*) AS value FROM contacts",
        violations: "SELECT 'contact ' || CAST(id AS TEXT) || CASE WHEN operator_id IS NULL \
             THEN ': no operator, but assigned_at or accepted_at' ELSE ': an operator, no assigned_at' END \
             AS detail FROM contacts WHERE (operator_id IS NULL AND (assigned_at IS NOT NULL \
             OR accepted_at IS NOT NULL)) OR (operator_id IS NOT NULL AND assigned_at IS NULL) ORDER BY id",
        severity: Severity::Mismatch,
        only_on: None,
    },
    Invariant {
        name: "max_load",
        rule: "allowed: reopening a contact, a forced assignment or a lowered max_load leaves an operator \
               above it; automatic assignment never adds to such an operator",
        subject: "operators",
        checked: "SELECT COUNT(*) AS value FROM operators",
        violations: "SELECT 'operator ' || CAST(id AS TEXT) || ': ' || CAST(active_load AS TEXT) \
             || ' active contacts, max_load ' || CAST(max_load AS TEXT) AS detail \
             FROM operators WHERE active_load > max_load ORDER BY id",
        severity: Severity::Note,
        only_on: None,
    },
    Invariant {
        name: "queue",
        rule: "contacts waiting while an active operator of their source has capacity: the sweep \
               assigns them",
        subject: "waiting contacts",
        checked: "SELECT COUNT(*) AS value FROM contacts WHERE operator_id IS NULL AND status = 'active'",
        violations: "SELECT 'contact ' || CAST(c.id AS TEXT) || ' of source ' || CAST(c.source_id AS TEXT) \
             || ' waits' AS detail FROM contacts c \
             WHERE c.operator_id IS NULL AND c.status = 'active' AND EXISTS (SELECT 1 \
                   FROM source_operator_weights w JOIN operators o ON o.id = w.operator_id \
                   WHERE w.source_id = c.source_id AND o.is_active AND o.active_load < o.max_load) \
             ORDER BY c.id",
        severity: Severity::Note,
        only_on: None,
    },
];

/// What one invariant found.
#[derive(Debug, Clone)]
pub struct Finding {
    pub invariant: &'static str,
    pub rule: &'static str,
    pub subject: &'static str,
    /// How many rows were looked at.
    pub checked: i64,
    /// How many break it.
    pub violations: i64,
    /// The first few of them, described.
    pub examples: Vec<String>,
    pub severity: Severity,
}

impl Finding {
    /// Whether this finding makes the database inconsistent.
    pub fn is_mismatch(&self) -> bool {
        self.severity == Severity::Mismatch && self.violations > 0
    }
}

/// `ok operator load: 12 operators`, or `MISMATCH …`/`note …` with the rule and the examples below it.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (invariant, checked, subject) = (self.invariant, self.checked, self.subject);
        if self.violations == 0 {
            return write!(f, "ok {invariant}: {checked} {subject}");
        }
        let label = match self.severity {
            Severity::Mismatch => "MISMATCH",
            Severity::Note => "note",
        };
        write!(
            f,
            "{label} {invariant}: {} of {checked} {subject} ({})",
            self.violations, self.rule
        )?;
        for example in &self.examples {
            write!(f, "\n    {example}")?;
        }
        let more = self.violations - self.examples.len() as i64;
        if more > 0 {
            write!(f, "\n    … and {more} more")?;
        }
        Ok(())
    }
}

/// Every invariant's finding.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn is_consistent(&self) -> bool {
        !self.findings.iter().any(Finding::is_mismatch)
    }
}

/// A violation, described.
struct Violation {
    detail: Option<String>,
}

record!(Violation { detail });

/// Checks the database of `database_url` without changing it: on SQLite through a read-only connection (a
/// missing file is an error, not created), on PostgreSQL in a read-only transaction; on both, in one
/// snapshot, so that a check of a database under writes sees one committed state.
pub async fn check(database_url: &str) -> anyhow::Result<Report> {
    match backend::target(database_url)? {
        Target::Sqlite(options) => {
            let path = options.get_filename().to_owned();
            anyhow::ensure!(path.exists(), "there is no database at {}", path.display());
            let mut connection = options
                .read_only(true)
                .connect()
                .await
                .with_context(|| format!("opening {} read-only", path.display()))?;
            let expected = backend::migration_versions(Dialect::Sqlite);
            let report = {
                let mut transaction = connection.begin().await?;
                let report = run(&mut *transaction, &expected).await;
                transaction.rollback().await?;
                report
            };
            connection.close().await?;
            report
        }
        Target::Postgres(options) => {
            let mut connection = options
                .connect()
                .await
                .context("connecting to PostgreSQL")?;
            let expected = backend::migration_versions(Dialect::Postgres);
            let report = {
                let mut transaction = connection.begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *transaction)
                    .await?;
                let report = run(&mut *transaction, &expected).await;
                transaction.rollback().await?;
                report
            };
            connection.close().await?;
            report
        }
    }
}

/// Runs every invariant of the connection's dialect, after checking that the schema is the one this build
/// expects (without it, the invariants' queries would mean nothing).
async fn run(db: &mut impl Executor, expected_migrations: &[i64]) -> anyhow::Result<Report> {
    let schema = migrations(db, expected_migrations)
        .await
        .context("reading the applied migrations (is this a leadrouter database?)")?;
    let mut report = Report {
        findings: vec![schema],
    };
    if report.findings[0].is_mismatch() {
        return Ok(report);
    }
    let dialect = db.dialect();
    for invariant in INVARIANTS
        .iter()
        .filter(|i| i.only_on.is_none_or(|only| only == dialect))
    {
        let finding = find(db, invariant)
            .await
            .with_context(|| format!("checking {}", invariant.name))?;
        report.findings.push(finding);
    }
    Ok(report)
}

async fn find(db: &mut impl Executor, invariant: &Invariant) -> anyhow::Result<Finding> {
    let checked: i64 = db.one(invariant.checked, params![]).await?;
    let sql = format!(
        "SELECT detail FROM ({}) AS v LIMIT {}",
        invariant.violations,
        EXAMPLES + 1
    );
    let mut examples: Vec<String> = db
        .all::<Violation>(&sql, params![])
        .await?
        .into_iter()
        .map(|v| v.detail.unwrap_or_else(|| "(not described)".to_owned()))
        .collect();
    let violations = if examples.len() > EXAMPLES {
        examples.truncate(EXAMPLES);
        let sql = format!(
            "SELECT COUNT(*) AS value FROM ({}) AS v",
            invariant.violations
        );
        db.one(&sql, params![]).await?
    } else {
        examples.len() as i64
    };
    Ok(Finding {
        invariant: invariant.name,
        rule: invariant.rule,
        subject: invariant.subject,
        checked,
        violations,
        examples,
        severity: invariant.severity,
    })
}

/// The migrations applied (successfully) against those this build has.
async fn migrations(db: &mut impl Executor, expected: &[i64]) -> anyhow::Result<Finding> {
    let sql = "SELECT version AS value FROM _sqlx_migrations WHERE success ORDER BY version";
    let applied: Vec<i64> = db.all(sql, params![]).await?;
    let mut examples: Vec<String> = expected
        .iter()
        .filter(|version| !applied.contains(version))
        .map(|version| format!("migration {version} is not applied"))
        .collect();
    examples.extend(
        applied
            .iter()
            .filter(|version| !expected.contains(version))
            .map(|version| {
                format!(
                    "migration {version} is unknown to this leadrouter (written by a newer one?)"
                )
            }),
    );
    Ok(Finding {
        invariant: "schema",
        rule: "the migrations applied are exactly this leadrouter's; the other checks need its schema",
        subject: "migrations",
        checked: expected.len() as i64,
        violations: examples.len() as i64,
        examples,
        severity: Severity::Mismatch,
    })
}
