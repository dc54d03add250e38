//! `leadrouter backup PATH`: a consistent copy of the SQLite database, taken while a server runs on it and
//! keeps writing. PostgreSQL databases are backed up with `pg_dump` (see [`PG_DUMP_ADVICE`]).
//!
//! The copy is made with `VACUUM INTO` rather than SQLite's online backup API. `VACUUM INTO` copies the whole
//! database in one statement, inside one read transaction: the copy is the database exactly as committed at
//! one instant, and in WAL mode the server's writer neither waits for that reader nor disturbs it. The backup
//! API copies pages in steps, and a write made between two steps by another connection (the server's, in
//! another process) makes it start over, so that under steady writes a stepped backup may never finish; done
//! in one step it holds one read transaction as `VACUUM INTO` does, but needs rusqlite's `backup` feature and
//! copies the free pages too, where `VACUUM INTO` writes the copy compacted. What `VACUUM INTO` costs: it
//! rebuilds every index (CPU in proportion to the database), and while it runs the WAL cannot be
//! checkpointed past its snapshot, so the WAL grows by the writes made meanwhile (and shrinks at the next
//! checkpoint after). It does not sync the copy to disk, so this does, before the copy takes its name.

use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags};

use super::backend::{self, Target};

/// What `leadrouter backup` says on a PostgreSQL database.
pub const PG_DUMP_ADVICE: &str = "leadrouter backup copies SQLite databases only. Back up PostgreSQL with \
    pg_dump, which takes a consistent snapshot while the servers keep writing:\n    \
    pg_dump --format=custom --file=leadrouter.dump \"$DATABASE_URL\"\n\
    and restore it, servers stopped, with:\n    \
    pg_restore --clean --if-exists --no-owner --single-transaction --dbname=\"$DATABASE_URL\" \
    leadrouter.dump";

/// The copy written, as read back from it.
#[derive(Debug, Clone)]
pub struct Backup {
    pub path: PathBuf,
    pub bytes: u64,
    pub operators: i64,
    pub sources: i64,
    pub contacts: i64,
}

/// Writes a consistent copy of the SQLite database of `database_url` to `to`, which must not exist. The copy
/// is written beside `to` under a temporary name and takes its name only once complete and on disk, so that
/// an interrupted backup never leaves a partial copy at `to`.
pub fn backup(database_url: &str, to: &Path) -> anyhow::Result<Backup> {
    let Target::Sqlite(options) = backend::target(database_url)? else {
        bail!("{PG_DUMP_ADVICE}");
    };
    let source = options.get_filename();
    if std::fs::symlink_metadata(to).is_ok() {
        bail!(
            "{} already exists; a backup never overwrites anything: name a new file, or remove that \
             one first",
            to.display()
        );
    }
    if !source.exists() {
        bail!("there is no database at {}", source.display());
    }
    let name = to
        .file_name()
        .with_context(|| format!("{} does not name a file", to.display()))?;
    let partial = to.with_file_name(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = copy_into(source, &partial).and_then(|()| give_name(&partial, to));
    // Whatever happened, the temporary file goes: once named, it is a second name of the copy.
    let _ = std::fs::remove_file(&partial);
    written?;
    read_back(to)
}

/// `VACUUM INTO` the (new) file `partial` from a read-only connection of our own, then syncs it to disk.
fn copy_into(source: &Path, partial: &Path) -> anyhow::Result<()> {
    let connection = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {} read-only", source.display()))?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    let target = partial
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", partial.display()))?;
    connection
        .execute("VACUUM INTO $1", [target])
        .with_context(|| format!("copying {} to {}", source.display(), partial.display()))?;
    drop(connection);
    File::open(partial)?.sync_all()?;
    Ok(())
}

/// Gives the complete copy its name, unless something took that name meanwhile: a hard link fails rather
/// than replace an existing file (where the file system has no hard links, a rename after a last look).
fn give_name(partial: &Path, to: &Path) -> anyhow::Result<()> {
    match std::fs::hard_link(partial, to) {
        Ok(()) => {}
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {
            bail!(
                "{} was created while the backup ran; it is left as it is",
                to.display()
            )
        }
        Err(_) if std::fs::symlink_metadata(to).is_err() => std::fs::rename(partial, to)
            .with_context(|| format!("naming the copy {}", to.display()))?,
        Err(error) => {
            return Err(error).with_context(|| format!("naming the copy {}", to.display()));
        }
    }
    #[cfg(unix)]
    {
        // The new name itself is durable once its directory is synced.
        let directory = match to.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        File::open(directory)?.sync_all()?;
    }
    Ok(())
}

/// Opens the copy (read-only) and counts what it holds: proof that it is a database, and what it is worth.
fn read_back(path: &Path) -> anyhow::Result<Backup> {
    let copy = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening the copy {}", path.display()))?;
    let count = |table: &str| -> anyhow::Result<i64> {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        copy.query_row(&sql, [], |row| row.get(0))
            .with_context(|| format!("counting the {table} of the copy"))
    };
    Ok(Backup {
        path: path.to_owned(),
        bytes: std::fs::metadata(path)?.len(),
        operators: count("operators")?,
        sources: count("sources")?,
        contacts: count("contacts")?,
    })
}
