//! The one interface every statement runs through: a statement with its parameters, answered with an optional
//! row, one row, all rows or a row count. It is implemented once over SQLite's rusqlite connections (the
//! writer thread's, and the key lookup's) and once over sqlx's connections (PostgreSQL's pool and
//! transactions, SQLite's read pool). Rows are decoded by column name, one [`Record`] decoder per record type,
//! whatever backend read them; every operation of the store is written once against [`Executor`].
//!
//! SQLite and PostgreSQL both accept `$N` placeholders. Where the dialects differ, the caller picks the
//! statement by [`Executor::dialect`], and the two versions stand side by side.

use std::future::{Future, ready};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::{ToSqlOutput, Type};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Postgres, Row as _, Sqlite};

use crate::domain::{
    Availability, DeliveryState, Schedule, Status, Strategy, TimeZoneName, UnavailablePolicy,
    WebhookUrl,
};
use crate::error::AppError;

type Result<T> = std::result::Result<T, AppError>;

/// The SQL dialect of a connection, for the few statements written differently on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A statement's parameter. Typed even when null, because PostgreSQL types every parameter.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Int(Option<i64>),
    Real(Option<f64>),
    Bool(Option<bool>),
    Text(Option<&'a str>),
    Time(Option<DateTime<Utc>>),
}

macro_rules! value_from {
    ($variant:ident: $($type:ty),+) => {$(
        impl<'a> From<$type> for Value<'a> {
            fn from(value: $type) -> Self {
                Value::$variant(Some(value.into()))
            }
        }
        impl<'a> From<Option<$type>> for Value<'a> {
            fn from(value: Option<$type>) -> Self {
                Value::$variant(value.map(Into::into))
            }
        }
    )+};
}

value_from!(Int: i64);
value_from!(Real: f64);
value_from!(Bool: bool);
value_from!(Text: &'a str);
value_from!(Time: DateTime<Utc>);

impl<'a> From<&'a String> for Value<'a> {
    fn from(value: &'a String) -> Self {
        Value::Text(Some(value))
    }
}

/// The parameters of a statement, `$1` first.
#[macro_export]
#[doc(hidden)]
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::store::executor::Value::from($value)),*]
    };
}
pub use params;

/// A row as read by either backend.
pub enum Row<'r> {
    /// With its statement's column names, looked up once per statement rather than once per value.
    Rusqlite(&'r rusqlite::Row<'r>, &'r ColumnNames),
    Sqlite(&'r SqliteRow),
    Postgres(&'r PgRow),
}

impl Row<'_> {
    /// The value of the named column.
    pub fn get<T: Column>(&self, column: &str) -> Result<T> {
        T::read(self, column)
    }

    /// Hands the named column's text (`None` for NULL) to `parse`, borrowed from the row.
    pub fn with_text<T>(
        &self,
        column: &str,
        parse: impl FnOnce(Option<&str>) -> Result<T>,
    ) -> Result<T> {
        with_text(self, column, parse)
    }
}

/// The columns of a rusqlite statement, by name. rusqlite finds a column by name by asking SQLite for every
/// column's name and comparing without regard to case, for each value read: on the wide rows of the write
/// path that was a measurable share of the writer thread's time. The names are copied once per statement into
/// one buffer, which each thread keeps and reuses.
#[derive(Default)]
pub struct ColumnNames {
    text: String,
    /// Where each column's name lies in `text`.
    spans: Vec<(usize, usize)>,
    /// Where the next lookup starts: just after the last column found, since records are mostly decoded in
    /// the order their columns are selected.
    next: std::cell::Cell<usize>,
}

thread_local! {
    static COLUMN_NAMES: std::cell::RefCell<ColumnNames> = std::cell::RefCell::default();
}

impl ColumnNames {
    fn fill(&mut self, statement: &rusqlite::Statement<'_>) {
        self.text.clear();
        self.spans.clear();
        self.next.set(0);
        for index in 0..statement.column_count() {
            let start = self.text.len();
            if let Ok(name) = statement.column_name(index) {
                self.text.push_str(name);
            }
            self.spans.push((start, self.text.len()));
        }
    }

    fn index(&self, column: &str) -> rusqlite::Result<usize> {
        let count = self.spans.len();
        let first = self.next.get();
        for index in (first..count).chain(0..first.min(count)) {
            let (start, end) = self.spans[index];
            if self.text.as_bytes()[start..end] == *column.as_bytes() {
                self.next.set(index + 1);
                return Ok(index);
            }
        }
        Err(rusqlite::Error::InvalidColumnName(column.to_owned()))
    }
}

/// A value that can be read out of a column of either backend.
pub trait Column: Sized {
    fn read(row: &Row<'_>, column: &str) -> Result<Self>;
}

macro_rules! plain_column {
    ($($type:ty),+) => {$(
        impl Column for $type {
            fn read(row: &Row<'_>, column: &str) -> Result<Self> {
                Ok(match row {
                    Row::Rusqlite(row, names) => row.get(names.index(column)?)?,
                    Row::Sqlite(row) => row.try_get(column)?,
                    Row::Postgres(row) => row.try_get(column)?,
                })
            }
        }
    )+};
}

plain_column!(
    i64,
    Option<i64>,
    f64,
    bool,
    Option<bool>,
    String,
    Option<String>
);

/// Values stored as text and read back through their constructor: a stored value it refuses is an internal
/// error.
macro_rules! parsed_column {
    ($($type:ty),+) => {$(
        impl Column for Option<$type> {
            fn read(row: &Row<'_>, column: &str) -> Result<Self> {
                with_text(row, column, |text| {
                    let Some(text) = text else {
                        return Ok(None);
                    };
                    <$type>::parse(text).map(Some).map_err(|error| {
                        AppError::Internal(anyhow::anyhow!(
                            "column {column} holds {text:?}, which is not valid: {error}"
                        ))
                    })
                })
            }
        }
        impl Column for $type {
            fn read(row: &Row<'_>, column: &str) -> Result<Self> {
                Option::<$type>::read(row, column)?.ok_or_else(|| null_column(column))
            }
        }
    )+};
}

parsed_column!(
    Status,
    DeliveryState,
    WebhookUrl,
    Availability,
    TimeZoneName,
    Schedule,
    UnavailablePolicy,
    Strategy
);

/// Hands the column's text (`None` for NULL) to `parse`, borrowed from the row rather than copied.
fn with_text<T>(
    row: &Row<'_>,
    column: &str,
    parse: impl FnOnce(Option<&str>) -> Result<T>,
) -> Result<T> {
    match row {
        Row::Rusqlite(row, names) => {
            let value = row.get_ref(names.index(column)?)?;
            let text = value.as_str_or_null().map_err(|error| {
                rusqlite::Error::FromSqlConversionFailure(0, value.data_type(), Box::new(error))
            })?;
            parse(text)
        }
        Row::Sqlite(row) => parse(row.try_get::<Option<&str>, _>(column)?),
        Row::Postgres(row) => parse(row.try_get::<Option<&str>, _>(column)?),
    }
}

fn null_column(column: &str) -> AppError {
    AppError::Internal(anyhow::anyhow!("column {column} is unexpectedly NULL"))
}

impl Column for Option<DateTime<Utc>> {
    fn read(row: &Row<'_>, column: &str) -> Result<Self> {
        Ok(match row {
            // Written by [`timestamp_text`], as sqlx writes timestamps to SQLite.
            Row::Rusqlite(..) => with_text(row, column, |text| {
                Ok(text
                    .map(|text| {
                        DateTime::parse_from_rfc3339(text)
                            .map(|time| time.with_timezone(&Utc))
                            .map_err(|error| {
                                rusqlite::Error::FromSqlConversionFailure(
                                    0,
                                    Type::Text,
                                    Box::new(error),
                                )
                            })
                    })
                    .transpose()?)
            })?,
            Row::Sqlite(row) => row.try_get(column)?,
            Row::Postgres(row) => row.try_get(column)?,
        })
    }
}

impl Column for DateTime<Utc> {
    fn read(row: &Row<'_>, column: &str) -> Result<Self> {
        Option::<DateTime<Utc>>::read(row, column)?.ok_or_else(|| null_column(column))
    }
}

/// A record type and how to decode it from a row, by column name.
pub trait Record: Sized + Send + Unpin {
    fn decode(row: &Row<'_>) -> Result<Self>;
}

/// A one-column answer (an id, a count, an EXISTS): the column is named `value`.
impl Record for i64 {
    fn decode(row: &Row<'_>) -> Result<Self> {
        row.get("value")
    }
}

impl Record for bool {
    fn decode(row: &Row<'_>) -> Result<Self> {
        row.get("value")
    }
}

/// A write of one row that answers with columns of the row it wrote, made by [`returning!`] from one write,
/// one column list and the way to find the row again. PostgreSQL runs it as one statement, `… RETURNING …`.
/// SQLite runs the write alone, then reads the row back: SQLite carries out a RETURNING clause by collecting
/// the rows in a temporary table of their own, and (being a trigger to SQLite) it makes the write open a
/// statement journal inside the writer's transaction, into which each page the write changes is copied first.
/// With six such writes per contact that was about a fifth of the writer thread's instructions (callgrind,
/// BENCHMARKS.md), where reading the row back from pages the write just left in the cache costs little.
pub struct Returning {
    /// The write with its RETURNING clause.
    pub postgres: &'static str,
    /// The write alone.
    pub sqlite_write: &'static str,
    /// Reads the row the write wrote, by the write's own parameters (any of them, by number) or by
    /// `last_insert_rowid()`. It runs on the writer's connection, right after the write.
    pub sqlite_read_back: &'static str,
}

/// `returning!(write: "INSERT …", columns: "id, name", read_back: "FROM t WHERE id = last_insert_rowid()")`:
/// a [`Returning`] write. Every part is a string literal, or a macro that expands to one.
#[macro_export]
#[doc(hidden)]
macro_rules! returning {
    (write: $write:expr, columns: $columns:expr, read_back: $from:expr $(,)?) => {
        $crate::store::executor::Returning {
            postgres: concat!($write, " RETURNING ", $columns),
            sqlite_write: $write,
            sqlite_read_back: concat!("SELECT ", $columns, " ", $from),
        }
    };
}
pub use returning;

/// Runs statements on one connection or transaction. The futures of the rusqlite implementation are ready at
/// once: the writer thread polls them once and never waits.
pub trait Executor: Send {
    fn dialect(&self) -> Dialect;

    /// The first row the statement returns, if any.
    fn optional<T: Record>(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
    ) -> impl Future<Output = Result<Option<T>>> + Send;

    /// Every row the statement returns.
    fn all<T: Record>(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
    ) -> impl Future<Output = Result<Vec<T>>> + Send;

    /// Runs the statement and returns how many rows it changed.
    fn execute(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
    ) -> impl Future<Output = Result<u64>> + Send;

    /// The row a [`Returning`] write wrote, if it wrote one (an UPDATE may match none).
    fn written<T: Record>(
        &mut self,
        statement: &Returning,
        params: &[Value<'_>],
    ) -> impl Future<Output = Result<Option<T>>> + Send {
        async move {
            match self.dialect() {
                Dialect::Postgres => self.optional(statement.postgres, params).await,
                Dialect::Sqlite => {
                    if self.execute(statement.sqlite_write, params).await? == 0 {
                        return Ok(None);
                    }
                    // A write that went through and a row not found again would pass for a write refused (a
                    // claim's unit taken and never given back): a broken read back is an error.
                    self.optional(statement.sqlite_read_back, params)
                        .await?
                        .map(Some)
                        .ok_or_else(|| {
                            AppError::Internal(anyhow::anyhow!(
                                "the row written by {} is not found by {}",
                                statement.sqlite_write,
                                statement.sqlite_read_back
                            ))
                        })
                }
            }
        }
    }

    /// The row a [`Returning`] write must have written.
    fn written_one<T: Record>(
        &mut self,
        statement: &Returning,
        params: &[Value<'_>],
    ) -> impl Future<Output = Result<T>> + Send {
        async move {
            let dialect = self.dialect();
            self.written(statement, params).await?.ok_or_else(|| {
                let sql = match dialect {
                    Dialect::Postgres => statement.postgres,
                    Dialect::Sqlite => statement.sqlite_write,
                };
                AppError::Internal(anyhow::anyhow!("no row written by {sql}"))
            })
        }
    }

    /// The row the statement must return.
    fn one<T: Record>(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
    ) -> impl Future<Output = Result<T>> + Send {
        async move {
            self.optional(sql, params)
                .await?
                .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no row returned by {sql}")))
        }
    }
}

/// The output of a future that completes without waiting, as the statements on a rusqlite connection do
/// (every one is a synchronous call); `None` should one ever wait.
pub fn ready_now<F: Future>(future: F) -> Option<F::Output> {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

// ---- SQLite through rusqlite ----

/// A timestamp as sqlx writes it to SQLite, so that both of SQLite's drivers read each other's.
fn timestamp_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        use rusqlite::types::Value as Owned;
        Ok(match *self {
            Value::Int(value) => value.map_or(ToSqlOutput::Owned(Owned::Null), ToSqlOutput::from),
            Value::Real(value) => value.map_or(ToSqlOutput::Owned(Owned::Null), ToSqlOutput::from),
            Value::Bool(value) => value.map_or(ToSqlOutput::Owned(Owned::Null), ToSqlOutput::from),
            Value::Text(value) => value.map_or(ToSqlOutput::Owned(Owned::Null), ToSqlOutput::from),
            Value::Time(value) => value.map_or(ToSqlOutput::Owned(Owned::Null), |time| {
                ToSqlOutput::Owned(Owned::Text(timestamp_text(time)))
            }),
        })
    }
}

fn prepare<'c>(
    connection: &'c rusqlite::Connection,
    sql: &str,
    params: &[Value<'_>],
) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
    let mut statement = connection.prepare_cached(sql)?;
    // Each of the statement's placeholders is bound to the parameter its name numbers: SQLite numbers named
    // parameters (`$N` is one) by their first appearance in the statement, not by the number in the name.
    // Reading the number out of the name costs a fraction of looking each name up in rusqlite's index.
    // A statement may leave some parameters unused (a read back after a write uses the write's), but a
    // placeholder without its parameter is a bug, refused rather than left NULL.
    for index in 1..=statement.parameter_count() {
        let value = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|number| number.parse::<usize>().ok())
            .and_then(|number| params.get(number.checked_sub(1)?));
        let Some(value) = value else {
            let name = statement.parameter_name(index).unwrap_or("?");
            return Err(rusqlite::Error::InvalidParameterName(format!(
                "{name}: no such parameter among the {} given to {sql}",
                params.len()
            )));
        };
        statement.raw_bind_parameter(index, value)?;
    }
    Ok(statement)
}

fn rusqlite_rows<T: Record>(
    connection: &rusqlite::Connection,
    sql: &str,
    params: &[Value<'_>],
    at_most: usize,
) -> Result<Vec<T>> {
    let mut statement = prepare(connection, sql, params)?;
    // Decoding runs no statement of its own, so the thread's buffer is never borrowed twice.
    COLUMN_NAMES.with_borrow_mut(|names| {
        names.fill(&statement);
        let mut rows = statement.raw_query();
        let mut found = Vec::new();
        while found.len() < at_most
            && let Some(row) = rows.next()?
        {
            found.push(T::decode(&Row::Rusqlite(row, names))?);
        }
        Ok(found)
    })
}

impl Executor for rusqlite::Connection {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn optional<T: Record>(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
    ) -> impl Future<Output = Result<Option<T>>> + Send {
        ready(rusqlite_rows(self, sql, params, 1).map(|rows| rows.into_iter().next()))
    }

    fn all<T: Record>(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
    ) -> impl Future<Output = Result<Vec<T>>> + Send {
        ready(rusqlite_rows(self, sql, params, usize::MAX))
    }

    fn execute(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
    ) -> impl Future<Output = Result<u64>> + Send {
        ready(
            prepare(self, sql, params)
                .and_then(|mut statement| statement.raw_execute())
                .map(|changed| changed as u64)
                .map_err(AppError::from),
        )
    }
}

// ---- sqlx: PostgreSQL, and SQLite's read pool ----

macro_rules! sqlx_executor {
    ($connection:ty, $database:ty, $row:ident, $dialect:expr) => {
        impl Executor for $connection {
            fn dialect(&self) -> Dialect {
                $dialect
            }

            async fn optional<T: Record>(
                &mut self,
                sql: &str,
                params: &[Value<'_>],
            ) -> Result<Option<T>> {
                let row = bind::<$database>(sqlx::query(sql), params)
                    .fetch_optional(&mut *self)
                    .await?;
                row.map(|row| T::decode(&Row::$row(&row))).transpose()
            }

            async fn all<T: Record>(&mut self, sql: &str, params: &[Value<'_>]) -> Result<Vec<T>> {
                let rows = bind::<$database>(sqlx::query(sql), params)
                    .fetch_all(&mut *self)
                    .await?;
                rows.iter().map(|row| T::decode(&Row::$row(row))).collect()
            }

            async fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64> {
                let done = bind::<$database>(sqlx::query(sql), params)
                    .execute(&mut *self)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

sqlx_executor!(sqlx::PgConnection, Postgres, Postgres, Dialect::Postgres);
sqlx_executor!(sqlx::SqliteConnection, Sqlite, Sqlite, Dialect::Sqlite);

/// Binds the parameters in order onto a sqlx query.
fn bind<'q, DB>(
    mut query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    params: &[Value<'q>],
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<f64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<bool>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<DateTime<Utc>>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for value in params {
        query = match *value {
            Value::Int(value) => query.bind(value),
            Value::Real(value) => query.bind(value),
            Value::Bool(value) => query.bind(value),
            Value::Text(value) => query.bind(value),
            Value::Time(value) => query.bind(value),
        };
    }
    query
}

/// Builds the WHERE clause of a list query from the filters given: absent ones do not filter.
#[derive(Default)]
pub struct Filters<'a> {
    clauses: Vec<String>,
    params: Vec<Value<'a>>,
}

impl<'a> Filters<'a> {
    /// ` AND <column> = $N` when `value` is given.
    pub fn equals(&mut self, column: &str, value: Option<impl Into<Value<'a>>>) {
        self.compare(column, "=", value);
    }

    /// ` AND <column> <operator> $N` (`>=`, `<`, …) when `value` is given.
    pub fn compare(&mut self, column: &str, operator: &str, value: Option<impl Into<Value<'a>>>) {
        if let Some(value) = value {
            self.params.push(value.into());
            self.clauses
                .push(format!("{column} {operator} ${}", self.params.len()));
        }
    }

    pub fn raw(&mut self, clause: &str) {
        self.clauses.push(clause.to_owned());
    }

    /// The WHERE clause (empty when nothing filters), then ORDER BY and the page; and the parameters.
    pub fn finish(mut self, order_by: &str, page: super::Page) -> (String, Vec<Value<'a>>) {
        let mut sql = String::new();
        if !self.clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&self.clauses.join(" AND "));
        }
        self.params.push(Value::from(page.limit));
        self.params.push(Value::from(page.skip));
        let n = self.params.len();
        sql.push_str(&format!(
            " ORDER BY {order_by} LIMIT ${} OFFSET ${n}",
            n - 1
        ));
        (sql, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Pair {
        a: i64,
        b: Option<String>,
    }

    impl Record for Pair {
        fn decode(row: &Row<'_>) -> Result<Self> {
            Ok(Pair {
                a: row.get("a")?,
                b: row.get("b")?,
            })
        }
    }

    fn connection() -> rusqlite::Connection {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        connection
            .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER NOT NULL, b TEXT)")
            .unwrap();
        connection
    }

    #[test]
    fn parameters_bind_by_the_number_in_their_name_not_their_place() {
        let mut db = connection();
        let pair: Pair = ready_now(db.one("SELECT $2 AS a, $1 AS b", params![Some("one"), 2]))
            .unwrap()
            .unwrap();
        assert_eq!((pair.a, pair.b.as_deref()), (2, Some("one")));
    }

    #[test]
    fn a_placeholder_without_its_parameter_is_refused_not_left_null() {
        let mut db = connection();
        let answer: Result<Option<Pair>> =
            ready_now(db.optional("SELECT $1 AS a, $2 AS b", params![1])).unwrap();
        assert!(answer.is_err(), "$2 with one parameter must be an error");
    }

    const INSERT: Returning = returning!(
        write: "INSERT INTO t (a, b) VALUES ($1, $2)",
        columns: "a, b",
        read_back: "FROM t WHERE id = last_insert_rowid()",
    );

    const BUMP: Returning = returning!(
        write: "UPDATE t SET a = a + 1 WHERE b = $1 AND a < $2",
        columns: "a, b",
        read_back: "FROM t WHERE b = $1",
    );

    #[test]
    fn a_returning_write_is_one_statement_on_postgres_and_a_write_then_a_read_on_sqlite() {
        assert_eq!(
            INSERT.postgres,
            "INSERT INTO t (a, b) VALUES ($1, $2) RETURNING a, b"
        );
        assert_eq!(INSERT.sqlite_write, "INSERT INTO t (a, b) VALUES ($1, $2)");
        assert_eq!(
            INSERT.sqlite_read_back,
            "SELECT a, b FROM t WHERE id = last_insert_rowid()"
        );
    }

    #[test]
    fn a_returning_write_on_sqlite_answers_the_row_it_wrote_or_none() {
        let mut db = connection();
        for (a, b) in [(1, "x"), (5, "y")] {
            let written: Pair = ready_now(db.written_one(&INSERT, params![a, b]))
                .unwrap()
                .unwrap();
            assert_eq!((written.a, written.b.as_deref()), (a, Some(b)));
        }
        // The read back may use only some of the write's parameters, and sees the row as written.
        let bumped: Option<Pair> = ready_now(db.written(&BUMP, params!["x", 2]))
            .unwrap()
            .unwrap();
        assert_eq!(bumped.map(|pair| pair.a), Some(2));
        // A write that changes nothing answers none, even though the row is there to read.
        let refused: Option<Pair> = ready_now(db.written(&BUMP, params!["x", 2]))
            .unwrap()
            .unwrap();
        assert!(refused.is_none());
    }

    #[test]
    fn a_write_that_went_through_but_whose_row_is_not_read_back_is_an_error_not_none() {
        const LOST: Returning = returning!(
            write: "INSERT INTO t (a, b) VALUES ($1, $2)",
            columns: "a, b",
            read_back: "FROM t WHERE id = -1",
        );
        let mut db = connection();
        let lost: Result<Option<Pair>> = ready_now(db.written(&LOST, params![1, "x"])).unwrap();
        assert!(
            lost.is_err(),
            "a write counted as refused would lose what it changed"
        );
    }
}
