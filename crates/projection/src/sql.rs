//! The SQL read store: SQLite in the data directory by default, PostgreSQL when workers run as
//! their own processes or other systems query the read models — with the same statements.
//!
//! Statements are written once, in the dialect both understand: `$1`, `$2`, … placeholders
//! (SQLite binds them by name), `BIGINT`, `TEXT` and `DOUBLE PRECISION` columns, and
//! `INSERT … ON CONFLICT … DO UPDATE`. Every value is typed, NULLs included, because
//! PostgreSQL checks parameter types against the statement.
//!
//! A read store can be damaged from outside: a SQLite file truncated, overwritten or removed
//! while the server runs, a PostgreSQL page gone bad. SQLite reads its files with `read`, never
//! through a memory map, so a truncated file is an error SQLite reports (`SQLITE_CORRUPT`,
//! `SQLITE_IOERR_SHORT_READ`, …), not a signal that ends the process; [`SqlError::is_damage`]
//! tells such errors from the others, [`FileWatch`] notices a file changed under its connection
//! before SQLite reads the damage, and [`ReadStoreAddress::set_aside`] moves a damaged file out
//! of the way so that the read model is rebuilt in a new one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A parameter or a column value. NULLs carry their type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A `BIGINT` (SQLite `INTEGER`), or NULL.
    Int(Option<i64>),
    /// A `TEXT`, or NULL.
    Text(Option<String>),
    /// A `DOUBLE PRECISION` (SQLite `REAL`), or NULL.
    Real(Option<f64>),
}

impl Value {
    /// An integer.
    pub fn int(value: i64) -> Value {
        Value::Int(Some(value))
    }

    /// A text.
    pub fn text(value: impl Into<String>) -> Value {
        Value::Text(Some(value.into()))
    }

    /// The integer, if the value is a non-NULL integer.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(value) => *value,
            _ => None,
        }
    }

    /// The text, if the value is a non-NULL text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(value) => value.as_deref(),
            _ => None,
        }
    }

    /// The number, if the value is a non-NULL real or integer.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Real(value) => *value,
            Value::Int(value) => value.map(|v| v as f64),
            Value::Text(_) => None,
        }
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Value::Int(Some(value))
    }
}

impl From<Option<i64>> for Value {
    fn from(value: Option<i64>) -> Self {
        Value::Int(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Value::Text(Some(value.to_owned()))
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Value::Text(Some(value))
    }
}

impl From<Option<String>> for Value {
    fn from(value: Option<String>) -> Self {
        Value::Text(value)
    }
}

impl From<f64> for Value {
    fn from(value: f64) -> Self {
        Value::Real(Some(value))
    }
}

/// A result row.
pub type Row = Vec<Value>;

/// Why a statement or a connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// SQLite refused.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL refused.
    #[error("postgresql: {0}")]
    Postgres(#[from] postgres::Error),
    /// A column holds a type the read store does not use.
    #[error("column {column} of type {kind} is not supported")]
    UnsupportedColumn {
        /// The column.
        column: String,
        /// Its type.
        kind: String,
    },
    /// A row handed to [`SqlTx::insert_rows`] does not have one value per column.
    #[error("a row for {table} has {found} values for {expected} columns")]
    RowShape {
        /// The table.
        table: String,
        /// Its columns.
        expected: usize,
        /// The row's values.
        found: usize,
    },
    /// The read store address is not understood.
    #[error("read store {0:?} is neither a path nor a postgres:// URL")]
    BadAddress(String),
    /// A SQLite read store's file changed under its connection ([`FileWatch`]).
    #[error("read store file {} {reason}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What happened to it, e.g. `was truncated from 98304 to 4096 bytes`.
        reason: String,
    },
    /// A damaged SQLite read store could not be moved aside.
    #[error("cannot move {} aside: {source}", path.display())]
    SetAside {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl SqlError {
    /// Whether the error says that the read store itself is damaged — its file truncated,
    /// overwritten, replaced or gone, its pages corrupt — rather than that a statement failed
    /// or the database was busy, full or unreachable. Such a read model cannot be trusted
    /// again: the runtime sets it aside and builds it anew from the log.
    pub fn is_damage(&self) -> bool {
        match self {
            SqlError::Sqlite(rusqlite::Error::SqliteFailure(error, _)) => sqlite_damage(error),
            SqlError::Postgres(error) => error.code().is_some_and(postgres_damage),
            SqlError::Damaged { .. } => true,
            _ => false,
        }
    }
}

/// SQLite's result codes of a damaged database: the file is not a database
/// (`SQLITE_NOTADB`), its b-trees are malformed (`SQLITE_CORRUPT` and its extended codes), it
/// is shorter than its pages say (`SQLITE_IOERR_SHORT_READ`), a read failed or returned data
/// that does not check (`SQLITE_IOERR_READ`, `SQLITE_IOERR_DATA`, `SQLITE_IOERR_CORRUPTFS`), or
/// it was moved or deleted while open (`SQLITE_READONLY_DBMOVED`). Busy, full, locked,
/// constraint and write errors are not damage: the worker retries them as it retries any
/// failure.
fn sqlite_damage(error: &rusqlite::ffi::Error) -> bool {
    use rusqlite::ffi;
    match error.code {
        rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase => true,
        rusqlite::ErrorCode::SystemIoFailure => matches!(
            error.extended_code,
            ffi::SQLITE_IOERR_SHORT_READ
                | ffi::SQLITE_IOERR_READ
                | ffi::SQLITE_IOERR_DATA
                | ffi::SQLITE_IOERR_CORRUPTFS
        ),
        rusqlite::ErrorCode::ReadOnly => error.extended_code == ffi::SQLITE_READONLY_DBMOVED,
        _ => false,
    }
}

/// PostgreSQL's error codes of damaged data: a page that does not check (`XX001`
/// data_corrupted, e.g. "could not read block … read only 0 of 8192 bytes") or a damaged index
/// (`XX002` index_corrupted).
fn postgres_damage(code: &postgres::error::SqlState) -> bool {
    *code == postgres::error::SqlState::DATA_CORRUPTED || *code == postgres::error::SqlState::INDEX_CORRUPTED
}

/// Statements inside one transaction.
pub trait SqlTx {
    /// Runs a statement; returns the rows changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, SqlError>;
    /// Runs a query; returns every row.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, SqlError>;
    /// Runs statements without parameters, separated by `;` (schema creation).
    fn batch(&mut self, sql: &str) -> Result<(), SqlError>;
    /// Holds a lock on `key`, shared or exclusive, until the transaction ends. PostgreSQL
    /// needs it where its catalogue escapes the transaction's snapshot (a table another
    /// transaction drops vanishes from under a reader; two sessions creating one table
    /// collide); SQLite's snapshot holds the schema and its writers are serialised, so there
    /// it does nothing.
    fn lock(&mut self, key: i64, exclusive: bool) -> Result<(), SqlError>;
    /// Inserts rows into `table`, many to a statement: how a bulk build writes a generation's
    /// tables. Each row holds one value per column, in the order of `columns`. Returns the rows
    /// inserted.
    fn insert_rows(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &mut dyn Iterator<Item = Row>,
    ) -> Result<u64, SqlError>;
}

/// Rows per statement of [`SqlTx::insert_rows`]: enough to spread a statement's own cost over
/// many rows, within both engines' limits on parameters (SQLite 32,766, PostgreSQL 65,535).
fn rows_per_statement(columns: usize) -> usize {
    (32_000 / columns.max(1)).clamp(1, 64)
}

/// `INSERT INTO table (columns) VALUES (…), (…)` for `rows` rows, with the placeholder
/// `placeholder(n)` for the n-th parameter (from 1).
fn insert_sql(table: &str, columns: &[&str], rows: usize, placeholder: fn(usize) -> String) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    let mut parameter = 0;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns.len() {
            parameter += 1;
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&placeholder(parameter));
        }
        sql.push(')');
    }
    sql
}

/// [`SqlTx::insert_rows`] in statements of up to [`rows_per_statement`] rows: checks that each
/// row has one value per column and has `run` execute each statement with its rows.
fn insert_in_chunks(
    table: &str,
    columns: &[&str],
    rows: &mut dyn Iterator<Item = Row>,
    placeholder: fn(usize) -> String,
    mut run: impl FnMut(&str, &[Row]) -> Result<u64, SqlError>,
) -> Result<u64, SqlError> {
    let size = rows_per_statement(columns.len());
    let full = insert_sql(table, columns, size, placeholder);
    let (mut chunk, mut inserted) = (Vec::with_capacity(size), 0);
    loop {
        chunk.clear();
        for row in (&mut *rows).take(size) {
            if row.len() != columns.len() {
                return Err(SqlError::RowShape { table: table.to_owned(), expected: columns.len(), found: row.len() });
            }
            chunk.push(row);
        }
        if chunk.len() == size {
            inserted += run(&full, &chunk)?;
        } else {
            if !chunk.is_empty() {
                inserted += run(&insert_sql(table, columns, chunk.len(), placeholder), &chunk)?;
            }
            return Ok(inserted);
        }
    }
}

/// No part of a SQLite read store is mapped into memory. Through a map, a page of a file that
/// was truncated under the server is a `SIGBUS` that ends the process (the issue 15 attack:
/// truncating `watchlist.sqlite` under queries); read with `read`, it is an error of the one
/// query or worker that met it. SQLite's default is 0 too; it is set so that no build or
/// pragma elsewhere turns it on.
const SQLITE_MMAP_BYTES: i64 = 0;

/// Each SQLite connection's own page cache, in KiB (as a negative `cache_size`): written
/// pages live here until the transaction commits.
const SQLITE_CACHE_KIB: i64 = -16 * 1024;

/// How many pages SQLite's write-ahead log of a read store holds before it is copied back
/// into the database (64 MiB of 4 KiB pages; SQLite's default is 1,000). A worker's batch
/// rewrites pages all over its tables' indexes; copied back after every batch or two, as at
/// the default, the same hot pages were written to the database again and again (about
/// 100 KB written per registration across the five read models), and the copying took a
/// quarter of the workers' time. A longer log copies each page back once for many batches.
const SQLITE_WAL_PAGES: i64 = 16_000;

/// The PostgreSQL advisory lock key that serialises the runtime's schema creation.
const SCHEMA_LOCK: i64 = 0x746f_7573_7500;

/// Held (shared) while this process opens a SQLite read store, and (exclusive) while it moves a
/// damaged one aside: no connection of this process opens a file that is half moved, the
/// database gone and its write-ahead log still in place.
static OPENING: RwLock<()> = RwLock::new(());

/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Where read models live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadStoreAddress {
    /// SQLite: one database file per projection in this directory.
    Sqlite(PathBuf),
    /// PostgreSQL: one database, every projection's tables in it.
    Postgres(String),
}

impl ReadStoreAddress {
    /// A `postgres://` or `postgresql://` URL, or a directory for SQLite files.
    pub fn parse(text: &str) -> Result<ReadStoreAddress, SqlError> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Ok(ReadStoreAddress::Postgres(text.to_owned()))
        } else if text.is_empty() {
            Err(SqlError::BadAddress(text.to_owned()))
        } else {
            Ok(ReadStoreAddress::Sqlite(PathBuf::from(text.strip_prefix("sqlite:").unwrap_or(text))))
        }
    }

    /// Opens a connection for the projection `name`, creating the runtime's own tables
    /// (idempotently) so that every reader finds "not built yet" rather than a missing table.
    pub fn connect(&self, name: &str) -> Result<SqlConnection, SqlError> {
        let _opening = match self {
            ReadStoreAddress::Sqlite(_) => Some(OPENING.read().unwrap_or_else(|poisoned| poisoned.into_inner())),
            ReadStoreAddress::Postgres(_) => None,
        };
        let mut connection = match self {
            ReadStoreAddress::Sqlite(dir) => SqlConnection::sqlite(&sqlite_file(dir, name))?,
            ReadStoreAddress::Postgres(url) => SqlConnection::postgres(url)?,
        };
        connection.transaction(|tx| {
            // Two sessions creating the same table at once can collide in PostgreSQL's
            // catalogue even with IF NOT EXISTS: serialise the creation.
            tx.lock(SCHEMA_LOCK, true)?;
            crate::meta::ensure_schema(tx)
        })?;
        Ok(connection)
    }

    /// The SQLite file of read model `name`; `None` for PostgreSQL.
    pub fn sqlite_file(&self, name: &str) -> Option<PathBuf> {
        match self {
            ReadStoreAddress::Sqlite(dir) => Some(sqlite_file(dir, name)),
            ReadStoreAddress::Postgres(_) => None,
        }
    }

    /// Moves read model `name`'s damaged SQLite file aside, with its write-ahead log and
    /// shared-memory index, as `NAME.damaged-<UTC time>.sqlite` (`-wal`, `-shm`) in the same
    /// directory, so that the next connection creates a new, empty file and nothing of the
    /// damaged one is read again; the moved files stay for inspection until an operator
    /// deletes them. Returns the new name of the database file (`None` for PostgreSQL, whose
    /// damaged tables the runtime drops instead, or when the file was already gone).
    ///
    /// The write-ahead log is moved first: should the process stop in between, the damaged
    /// database is left without its log, never a new database beside the old log (which
    /// SQLite would replay into it). Connections still open on the old file keep reading it
    /// through their descriptors; closing them neither checkpoints nor deletes anything by
    /// name (see [`SqlConnection::sqlite`]), so they cannot touch the new file.
    pub fn set_aside(&self, name: &str, at: DateTime<Utc>) -> Result<Option<PathBuf>, SqlError> {
        let ReadStoreAddress::Sqlite(dir) = self else { return Ok(None) };
        let _opening = OPENING.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let file = sqlite_file(dir, name);
        let aside = dir.join(format!("{name}.damaged-{}.sqlite", at.format("%Y%m%dT%H%M%S%.3fZ")));
        for suffix in ["-wal", "-shm"] {
            let from = PathBuf::from(format!("{}{suffix}", file.display()));
            let to = PathBuf::from(format!("{}{suffix}", aside.display()));
            match std::fs::rename(&from, &to) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(SqlError::SetAside { path: from, source }),
            }
        }
        match std::fs::rename(&file, &aside) {
            Ok(()) => Ok(Some(aside)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SqlError::SetAside { path: file, source }),
        }
    }
}

/// The SQLite file of read model `name` in `dir`.
fn sqlite_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.sqlite"))
}

/// What a worker knows of its SQLite file, to notice damage done from outside SQLite before
/// SQLite reads it (much of a read store is served from the write-ahead log and the page
/// caches, so a truncated file can go unread for a long time, until a checkpoint writes the
/// log back around the hole). The file must stay the one the connection opened, must never
/// shrink (SQLite only shrinks a database by `VACUUM`, which the runtime never runs; dropped
/// tables go to its free list) and must begin with SQLite's header.
#[derive(Debug)]
pub struct FileWatch {
    path: PathBuf,
    identity: Option<(u64, u64)>,
    largest: u64,
    header: Option<std::sync::Arc<std::fs::File>>,
}

/// One descriptor per database file whose header a [`FileWatch`] reads, kept open for the
/// life of the process: closing any descriptor of a file releases every POSIX lock the process
/// holds on it, SQLite's included, so a descriptor opened beside SQLite's is never closed. A
/// file set aside keeps its entry (its disk space is freed when the process ends).
static HEADER_READERS: std::sync::Mutex<std::collections::BTreeMap<(u64, u64), std::sync::Arc<std::fs::File>>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

impl FileWatch {
    /// Watches read model `name`'s file as it is now, just after a connection opened it;
    /// `None` for PostgreSQL.
    pub fn new(address: &ReadStoreAddress, name: &str) -> Option<FileWatch> {
        let path = address.sqlite_file(name)?;
        let metadata = std::fs::metadata(&path).ok();
        let identity = metadata.as_ref().and_then(file_identity);
        Some(FileWatch {
            header: identity.and_then(|identity| header_reader(&path, identity)),
            identity,
            largest: metadata.map_or(0, |metadata| metadata.len()),
            path,
        })
    }

    /// Looks at the file again: an error naming what happened if it vanished, was replaced by
    /// another file, shrank, or no longer begins with SQLite's header.
    pub fn check(&mut self) -> Result<(), SqlError> {
        let damaged = |reason: String| Err(SqlError::Damaged { path: self.path.clone(), reason });
        let metadata = match std::fs::metadata(&self.path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return damaged("vanished".to_owned()),
            // Not damage: a file that cannot be looked at for the moment is looked at again
            // next time.
            Err(_) => return Ok(()),
        };
        if self.identity.is_some() && self.identity != file_identity(&metadata) {
            return damaged("was replaced by another file".to_owned());
        }
        if metadata.len() < self.largest {
            return damaged(format!("was truncated from {} to {} bytes", self.largest, metadata.len()));
        }
        self.largest = metadata.len();
        let mut header = [0_u8; 16];
        if let Some(file) = &self.header
            && metadata.len() >= header.len() as u64
            && read_at(file, &mut header).is_ok()
            && &header != SQLITE_HEADER
        {
            return damaged("no longer begins with SQLite's header".to_owned());
        }
        Ok(())
    }
}

/// The descriptor [`FileWatch`] reads the header of the file `identity` through, opened once.
fn header_reader(path: &Path, identity: (u64, u64)) -> Option<std::sync::Arc<std::fs::File>> {
    let mut readers = HEADER_READERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(file) = readers.get(&identity) {
        return Some(file.clone());
    }
    let file = std::fs::File::open(path).ok()?;
    // The path may name another file by now; this descriptor is kept all the same (see
    // `HEADER_READERS`), under the file it opened.
    let opened = file.metadata().ok().as_ref().and_then(file_identity)?;
    let file = std::sync::Arc::new(file);
    readers.insert(opened, file.clone());
    (opened == identity).then_some(file)
}

/// The device and inode of a file: another file put in its place has others.
#[cfg(unix)]
fn file_identity(metadata: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    Some((metadata.dev(), metadata.ino()))
}

/// Without inodes a replaced file is not told apart, and no header is read; truncation still
/// is noticed.
#[cfg(not(unix))]
fn file_identity(_metadata: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// Reads the start of a file without moving a shared position.
#[cfg(unix)]
fn read_at(file: &std::fs::File, buffer: &mut [u8]) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buffer, 0)
}

#[cfg(not(unix))]
fn read_at(_file: &std::fs::File, _buffer: &mut [u8]) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// One connection to the read store.
pub enum SqlConnection {
    /// A SQLite database.
    Sqlite(rusqlite::Connection),
    /// A PostgreSQL client with its prepared statements.
    Postgres(Box<PgConnection>),
}

impl std::fmt::Debug for SqlConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SqlConnection::Sqlite(_) => f.write_str("SqlConnection::Sqlite"),
            SqlConnection::Postgres(_) => f.write_str("SqlConnection::Postgres"),
        }
    }
}

/// A PostgreSQL client and the statements it has prepared.
pub struct PgConnection {
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
}

/// Every statement of a SQLite connection is prepared once and then only rebound: a cache of
/// prepared statements, and the query planner's stability guarantee. Without it, SQLite marks
/// a statement for re-preparation at every new binding of a parameter it compared with a
/// constant while planning (a parameter beside a partial index's `open = 1`, a `LIMIT` or
/// `OFFSET`), and re-prepared a third of the read models' statements at every execution. The
/// plans do not need the values: no statement matches `LIKE` on a parameter, and no read store
/// is analysed.
fn reuse_statements(connection: &rusqlite::Connection) -> Result<(), SqlError> {
    connection.set_prepared_statement_cache_capacity(256);
    connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

impl SqlConnection {
    /// Opens (creating) a SQLite database in WAL mode: readers never block the writer.
    pub fn sqlite(path: &Path) -> Result<SqlConnection, SqlError> {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let connection = rusqlite::Connection::open(path)?;
        connection.busy_timeout(Duration::from_secs(10))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL in WAL mode: a commit survives a process crash; a power loss may lose the
        // last commits, which the projection redoes from its checkpoint.
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "mmap_size", SQLITE_MMAP_BYTES)?;
        // Closing a connection neither copies the write-ahead log back nor deletes the log and
        // the shared-memory index. SQLite deletes them by name when the last connection to a
        // database closes; a connection still open on a damaged file that was moved aside
        // (`ReadStoreAddress::set_aside`) would then delete the new file's log. A worker
        // empties the log itself when it stops ([`SqlConnection::empty_wal`]).
        connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        connection.pragma_update(None, "cache_size", SQLITE_CACHE_KIB)?;
        connection.pragma_update(None, "wal_autocheckpoint", SQLITE_WAL_PAGES)?;
        reuse_statements(&connection)?;
        Ok(SqlConnection::Sqlite(connection))
    }

    /// An in-memory SQLite database, for replays to a past instant.
    pub fn sqlite_in_memory() -> Result<SqlConnection, SqlError> {
        let connection = rusqlite::Connection::open_in_memory()?;
        reuse_statements(&connection)?;
        Ok(SqlConnection::Sqlite(connection))
    }

    /// Connects to PostgreSQL (no TLS: the read store is on the deployment's own network).
    pub fn postgres(url: &str) -> Result<SqlConnection, SqlError> {
        let client = postgres::Client::connect(url, postgres::NoTls)?;
        Ok(SqlConnection::Postgres(Box::new(PgConnection { client, statements: HashMap::new() })))
    }

    /// Copies a SQLite read store's write-ahead log back into the database and empties it, for
    /// a worker or a rebuild that is done with the file; PostgreSQL has nothing to do.
    /// Connections close without doing it (see [`SqlConnection::sqlite`]). It waits a second
    /// at most for readers in the middle of a transaction, and is meant for the last use of the
    /// connection.
    pub fn empty_wal(&mut self) -> Result<(), SqlError> {
        match self {
            SqlConnection::Sqlite(connection) => {
                connection.busy_timeout(Duration::from_secs(1))?;
                connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
                Ok(())
            }
            SqlConnection::Postgres(_) => Ok(()),
        }
    }

    /// Runs `work` in one transaction, committed when it returns `Ok`.
    pub fn transaction<T, E: From<SqlError>>(
        &mut self,
        work: impl FnOnce(&mut dyn SqlTx) -> Result<T, E>,
    ) -> Result<T, E> {
        match self {
            SqlConnection::Sqlite(connection) => {
                let transaction = connection
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(SqlError::from)?;
                let mut tx = SqliteTx(&transaction);
                let value = work(&mut tx)?;
                transaction.commit().map_err(SqlError::from)?;
                Ok(value)
            }
            SqlConnection::Postgres(pg) => {
                let PgConnection { client, statements } = pg.as_mut();
                let mut transaction = client.transaction().map_err(SqlError::from)?;
                let mut tx = PgTx { transaction: &mut transaction, statements };
                let value = work(&mut tx)?;
                transaction.commit().map_err(SqlError::from)?;
                Ok(value)
            }
        }
    }

    /// Runs read-only `work` on one consistent snapshot.
    pub fn read<T, E: From<SqlError>>(&mut self, work: impl FnOnce(&mut dyn SqlTx) -> Result<T, E>) -> Result<T, E> {
        match self {
            SqlConnection::Sqlite(connection) => {
                let transaction = connection
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)
                    .map_err(SqlError::from)?;
                let mut tx = SqliteTx(&transaction);
                let value = work(&mut tx)?;
                transaction.commit().map_err(SqlError::from)?;
                Ok(value)
            }
            SqlConnection::Postgres(pg) => {
                let PgConnection { client, statements } = pg.as_mut();
                let mut transaction = client
                    .build_transaction()
                    .isolation_level(postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .map_err(SqlError::from)?;
                let mut tx = PgTx { transaction: &mut transaction, statements };
                let value = work(&mut tx)?;
                transaction.commit().map_err(SqlError::from)?;
                Ok(value)
            }
        }
    }
}

struct SqliteTx<'a>(&'a rusqlite::Transaction<'a>);

/// Parameter names `$1` to `$32`, so binding allocates nothing for the usual statements.
const PARAMETER_NAMES: [&str; 32] = [
    "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15", "$16", "$17",
    "$18", "$19", "$20", "$21", "$22", "$23", "$24", "$25", "$26", "$27", "$28", "$29", "$30", "$31", "$32",
];

fn bind_sqlite(statement: &mut rusqlite::CachedStatement<'_>, params: &[Value]) -> Result<(), SqlError> {
    for (index, value) in params.iter().enumerate() {
        let longer;
        let name = match PARAMETER_NAMES.get(index) {
            Some(name) => *name,
            None => {
                longer = format!("${}", index + 1);
                &longer
            }
        };
        // A statement need not use every parameter; one it does not use is skipped.
        let Some(position) = statement.parameter_index(name)? else { continue };
        match value {
            Value::Int(value) => statement.raw_bind_parameter(position, value)?,
            Value::Text(value) => statement.raw_bind_parameter(position, value)?,
            Value::Real(value) => statement.raw_bind_parameter(position, value)?,
        }
    }
    Ok(())
}

impl SqlTx for SqliteTx<'_> {
    fn lock(&mut self, _key: i64, _exclusive: bool) -> Result<(), SqlError> {
        Ok(())
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, SqlError> {
        let mut statement = self.0.prepare_cached(sql)?;
        bind_sqlite(&mut statement, params)?;
        Ok(statement.raw_execute()? as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, SqlError> {
        let mut statement = self.0.prepare_cached(sql)?;
        bind_sqlite(&mut statement, params)?;
        let columns = statement.column_count();
        let mut rows = statement.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns);
            for index in 0..columns {
                values.push(match row.get_ref(index)? {
                    rusqlite::types::ValueRef::Null => Value::Int(None),
                    rusqlite::types::ValueRef::Integer(value) => Value::Int(Some(value)),
                    rusqlite::types::ValueRef::Real(value) => Value::Real(Some(value)),
                    rusqlite::types::ValueRef::Text(text) => {
                        Value::Text(Some(String::from_utf8_lossy(text).into_owned()))
                    }
                    rusqlite::types::ValueRef::Blob(_) => {
                        return Err(SqlError::UnsupportedColumn { column: index.to_string(), kind: "blob".into() });
                    }
                });
            }
            out.push(values);
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<(), SqlError> {
        Ok(self.0.execute_batch(sql)?)
    }

    fn insert_rows(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &mut dyn Iterator<Item = Row>,
    ) -> Result<u64, SqlError> {
        // Anonymous `?` placeholders bind by position: SQLite finds a named parameter's index
        // by a linear search, which over a thousand parameters would cost more than the rows.
        insert_in_chunks(
            table,
            columns,
            rows,
            |_| "?".to_owned(),
            |sql, chunk| {
                let mut statement = self.0.prepare_cached(sql)?;
                for (index, value) in chunk.iter().flatten().enumerate() {
                    match value {
                        Value::Int(value) => statement.raw_bind_parameter(index + 1, value)?,
                        Value::Text(value) => statement.raw_bind_parameter(index + 1, value)?,
                        Value::Real(value) => statement.raw_bind_parameter(index + 1, value)?,
                    }
                }
                Ok(statement.raw_execute()? as u64)
            },
        )
    }
}

struct PgTx<'a, 'b> {
    transaction: &'a mut postgres::Transaction<'b>,
    statements: &'a mut HashMap<String, postgres::Statement>,
}

impl PgTx<'_, '_> {
    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, SqlError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.transaction.prepare(sql)?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

fn pg_params(params: &[Value]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|value| match value {
            Value::Int(value) => value as &(dyn postgres::types::ToSql + Sync),
            Value::Text(value) => value as &(dyn postgres::types::ToSql + Sync),
            Value::Real(value) => value as &(dyn postgres::types::ToSql + Sync),
        })
        .collect()
}

impl SqlTx for PgTx<'_, '_> {
    fn lock(&mut self, key: i64, exclusive: bool) -> Result<(), SqlError> {
        let function = if exclusive { "pg_advisory_xact_lock" } else { "pg_advisory_xact_lock_shared" };
        self.batch(&format!("SELECT {function}({key})"))
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, SqlError> {
        let statement = self.statement(sql)?;
        Ok(self.transaction.execute(&statement, &pg_params(params))?)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, SqlError> {
        use postgres::types::Type;
        let statement = self.statement(sql)?;
        let rows = self.transaction.query(&statement, &pg_params(params))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut values = Vec::with_capacity(row.len());
            for (index, column) in row.columns().iter().enumerate() {
                let kind = column.type_();
                values.push(if *kind == Type::INT8 {
                    Value::Int(row.try_get(index)?)
                } else if *kind == Type::INT4 {
                    Value::Int(row.try_get::<_, Option<i32>>(index)?.map(i64::from))
                } else if *kind == Type::TEXT || *kind == Type::VARCHAR {
                    Value::Text(row.try_get(index)?)
                } else if *kind == Type::FLOAT8 {
                    Value::Real(row.try_get(index)?)
                } else if *kind == Type::NUMERIC {
                    // SUM over BIGINT yields NUMERIC; cast such sums to BIGINT in the query.
                    return Err(SqlError::UnsupportedColumn {
                        column: column.name().to_owned(),
                        kind: kind.to_string(),
                    });
                } else {
                    return Err(SqlError::UnsupportedColumn {
                        column: column.name().to_owned(),
                        kind: kind.to_string(),
                    });
                });
            }
            out.push(values);
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<(), SqlError> {
        Ok(self.transaction.batch_execute(sql)?)
    }

    fn insert_rows(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &mut dyn Iterator<Item = Row>,
    ) -> Result<u64, SqlError> {
        insert_in_chunks(
            table,
            columns,
            rows,
            |n| format!("${n}"),
            |sql, chunk| {
                let values: Vec<Value> = chunk.iter().flatten().cloned().collect();
                self.execute(sql, &values)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a query beside a partial index three times with other values; answers the rows of
    /// each run and how often SQLite re-prepared the statement.
    fn rebind(connection: &rusqlite::Connection) -> (Vec<Vec<String>>, i32) {
        connection
            .execute_batch(
                "CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT NOT NULL, open BIGINT NOT NULL, due BIGINT);
                 CREATE INDEX t_due ON t (due, body) WHERE open = 1;
                 INSERT INTO t VALUES ('a', 'ZJ', 1, 10), ('b', 'SJ', 1, 20), ('c', 'SJ', 0, 5), ('d', 'SJ', 1, 21);",
            )
            .expect("the table");
        let mut statement = connection
            .prepare("SELECT id FROM t WHERE open = 1 AND body = ?1 AND due < ?2 ORDER BY due LIMIT ?3 OFFSET ?4")
            .expect("the statement");
        let mut answers = Vec::new();
        for (body, due, offset) in [("ZJ", 15, 0), ("SJ", 25, 0), ("SJ", 25, 1)] {
            let rows = statement
                .query_map(rusqlite::params![body, due, 10, offset], |row| row.get::<_, String>(0))
                .expect("the query");
            answers.push(rows.collect::<Result<Vec<_>, _>>().expect("the rows"));
        }
        (answers, statement.get_status(rusqlite::StatementStatus::RePrepare))
    }

    #[test]
    fn a_statement_beside_a_partial_index_is_rebound_and_not_prepared_again() {
        let expected = vec![vec!["a".to_owned()], vec!["b".to_owned(), "d".to_owned()], vec!["d".to_owned()]];
        // SQLite on its own plans such a statement again for every new value.
        let plain = rusqlite::Connection::open_in_memory().expect("a database");
        let (answers, reprepared) = rebind(&plain);
        assert_eq!(answers, expected);
        assert!(reprepared > 0, "SQLite's own behaviour changed: {reprepared} re-preparations");
        // A read-store connection does not.
        let SqlConnection::Sqlite(connection) = SqlConnection::sqlite_in_memory().expect("a database") else {
            panic!("not SQLite")
        };
        assert_eq!(rebind(&connection), (expected, 0));
    }

    fn failure(code: i32) -> SqlError {
        SqlError::Sqlite(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None))
    }

    #[test]
    fn sqlite_codes_of_a_damaged_database_are_damage_and_other_failures_are_not() {
        use rusqlite::ffi;
        for code in [
            ffi::SQLITE_CORRUPT,
            ffi::SQLITE_CORRUPT_INDEX,
            ffi::SQLITE_CORRUPT_SEQUENCE,
            ffi::SQLITE_NOTADB,
            ffi::SQLITE_IOERR_SHORT_READ,
            ffi::SQLITE_IOERR_READ,
            ffi::SQLITE_IOERR_DATA,
            ffi::SQLITE_IOERR_CORRUPTFS,
            ffi::SQLITE_READONLY_DBMOVED,
        ] {
            assert!(failure(code).is_damage(), "code {code} is damage");
        }
        for code in [
            ffi::SQLITE_BUSY,
            ffi::SQLITE_LOCKED,
            ffi::SQLITE_FULL,
            ffi::SQLITE_CANTOPEN,
            ffi::SQLITE_CONSTRAINT_PRIMARYKEY,
            ffi::SQLITE_ERROR,
            ffi::SQLITE_IOERR,
            ffi::SQLITE_IOERR_WRITE,
            ffi::SQLITE_IOERR_FSYNC,
            ffi::SQLITE_READONLY,
            ffi::SQLITE_NOMEM,
        ] {
            assert!(!failure(code).is_damage(), "code {code} is not damage");
        }
        let path = PathBuf::from("read/watchlist.sqlite");
        assert!(SqlError::Damaged { path: path.clone(), reason: "vanished".into() }.is_damage());
        let moved = SqlError::SetAside { path, source: std::io::ErrorKind::PermissionDenied.into() };
        assert!(!moved.is_damage(), "a file that cannot be moved is not itself damaged");
        assert!(!SqlError::BadAddress(String::new()).is_damage());
    }

    #[test]
    fn postgresql_codes_of_corrupted_data_are_damage_and_other_failures_are_not() {
        use postgres::error::SqlState;
        assert!(postgres_damage(&SqlState::DATA_CORRUPTED));
        assert!(postgres_damage(&SqlState::INDEX_CORRUPTED));
        for code in [
            SqlState::UNDEFINED_TABLE,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::DISK_FULL,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::IO_ERROR,
            SqlState::UNIQUE_VIOLATION,
        ] {
            assert!(!postgres_damage(&code), "{code:?} is not damage");
        }
    }

    /// A directory of its own under the system's temporary directory.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tousu-sql-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        dir
    }

    /// A read store in `dir` whose model `name` holds a few megabytes of rows, all in its file
    /// (the write-ahead log emptied); answers the file.
    fn filled(dir: &Path, name: &str) -> PathBuf {
        let address = ReadStoreAddress::Sqlite(dir.to_path_buf());
        let mut connection = address.connect(name).expect("a read store");
        connection
            .transaction(|tx| -> Result<(), SqlError> {
                tx.batch("CREATE TABLE rows (id BIGINT PRIMARY KEY, text TEXT NOT NULL)")?;
                let mut rows = (0..20_000).map(|id| vec![Value::int(id), Value::text("x".repeat(100))]);
                tx.insert_rows("rows", &["id", "text"], &mut rows)?;
                Ok(())
            })
            .expect("the rows");
        connection.empty_wal().expect("the log copied back");
        address.sqlite_file(name).expect("a file")
    }

    fn count(connection: &mut SqlConnection) -> Result<Option<i64>, SqlError> {
        connection.read(|tx| Ok(tx.query("SELECT COUNT(*), SUM(LENGTH(text)) FROM rows", &[])?[0][0].as_i64()))
    }

    #[test]
    fn a_query_of_a_truncated_file_fails_as_damage_instead_of_ending_the_process() {
        let dir = temp_dir("truncated");
        let file = filled(&dir, "damaged");
        let address = ReadStoreAddress::Sqlite(dir.clone());
        // Truncated in the middle of a query's read transaction, as under a stream of queries.
        // Through a memory map (SQLite maps the file as it is when a transaction starts), the
        // pages past the new end would be a SIGBUS that ends the process; read with `read`, they
        // are an error.
        let mut open = address.connect("damaged").expect("a connection");
        let error = open
            .read(|tx| {
                tx.query("SELECT text FROM rows WHERE id = 1", &[])?;
                let length = std::fs::metadata(&file).expect("the file").len();
                let truncated = std::fs::OpenOptions::new().write(true).open(&file).expect("the file");
                truncated.set_len(length / 2).expect("truncated");
                tx.query("SELECT COUNT(*), SUM(LENGTH(text)) FROM rows", &[])
            })
            .expect_err("a truncated file cannot be read whole");
        assert!(error.is_damage(), "{error}");
        let error = SqlConnection::sqlite(&file)
            .and_then(|mut connection| count(&mut connection))
            .expect_err("a truncated file cannot be read whole");
        assert!(error.is_damage(), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_whose_header_is_overwritten_fails_as_damage() {
        let dir = temp_dir("header");
        let file = filled(&dir, "damaged");
        let mut header = std::fs::OpenOptions::new().write(true).open(&file).expect("the file");
        std::io::Write::write_all(&mut header, &[0xA5; 100]).expect("garbage written");
        let error = SqlConnection::sqlite(&file)
            .and_then(|mut connection| count(&mut connection))
            .expect_err("a database without its header");
        assert!(error.is_damage(), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_watch_notices_a_file_truncated_overwritten_replaced_or_gone() {
        let dir = temp_dir("watch");
        let address = ReadStoreAddress::Sqlite(dir.clone());
        let reason = |watch: &mut FileWatch| match watch.check() {
            Err(SqlError::Damaged { reason, .. }) => reason,
            other => panic!("not noticed: {other:?}"),
        };

        let file = filled(&dir, "truncated");
        let mut watch = FileWatch::new(&address, "truncated").expect("a SQLite file");
        watch.check().expect("the file as it was");
        let length = std::fs::metadata(&file).expect("the file").len();
        std::fs::OpenOptions::new().write(true).open(&file).expect("the file").set_len(4096).expect("truncated");
        assert_eq!(reason(&mut watch), format!("was truncated from {length} to 4096 bytes"));

        let file = filled(&dir, "overwritten");
        let mut watch = FileWatch::new(&address, "overwritten").expect("a SQLite file");
        let mut header = std::fs::OpenOptions::new().write(true).open(&file).expect("the file");
        std::io::Write::write_all(&mut header, b"garbage garbage garbage").expect("garbage written");
        assert_eq!(reason(&mut watch), "no longer begins with SQLite's header");

        let file = filled(&dir, "replaced");
        let mut watch = FileWatch::new(&address, "replaced").expect("a SQLite file");
        std::fs::copy(&file, dir.join("copy")).expect("a copy");
        std::fs::rename(dir.join("copy"), &file).expect("the copy put in its place");
        assert_eq!(reason(&mut watch), "was replaced by another file");

        let file = filled(&dir, "gone");
        let mut watch = FileWatch::new(&address, "gone").expect("a SQLite file");
        std::fs::remove_file(&file).expect("removed");
        assert_eq!(reason(&mut watch), "vanished");

        // A file that grows is not damaged.
        filled(&dir, "growing");
        let mut watch = FileWatch::new(&address, "growing").expect("a SQLite file");
        let mut connection = address.connect("growing").expect("a connection");
        connection
            .transaction(|tx| tx.execute("INSERT INTO rows VALUES (-1, $1)", &[Value::text("y".repeat(100_000))]))
            .expect("a row");
        connection.empty_wal().expect("the log copied back");
        watch.check().expect("a grown file");
        assert!(FileWatch::new(&ReadStoreAddress::Postgres("postgres://x".into()), "any").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_set_aside_takes_its_log_along_and_an_old_connection_closing_leaves_the_new_file_alone() {
        let dir = temp_dir("aside");
        let address = ReadStoreAddress::Sqlite(dir.clone());
        filled(&dir, "model");
        // An old connection with a transaction in the write-ahead log, as a query's or the
        // worker's would have when the file is found damaged.
        let mut old = address.connect("model").expect("a connection");
        old.transaction(|tx| tx.execute("INSERT INTO rows VALUES (-1, 'old')", &[])).expect("a row");
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:15:00.250Z").expect("an instant").to_utc();
        let aside = address.set_aside("model", at).expect("moved").expect("a file to move");
        assert_eq!(aside, dir.join("model.damaged-20261201T101500.250Z.sqlite"));
        assert!(dir.join("model.damaged-20261201T101500.250Z.sqlite-wal").exists(), "the log went with it");
        assert!(!dir.join("model.sqlite").exists() && !dir.join("model.sqlite-wal").exists());

        // The next connection creates a new, empty read store, and writes its own log.
        let mut new = address.connect("model").expect("a new file");
        assert_eq!(new.read(|tx| crate::meta::live_prefix(tx, "model")).expect("no generation"), None);
        new.transaction(|tx| {
            tx.batch(
                "CREATE TABLE rows (id BIGINT PRIMARY KEY, text TEXT NOT NULL); INSERT INTO rows VALUES (1, 'new')",
            )
        })
        .expect("a row in the new file");
        // The old connection closing must not delete the new file's log by its name.
        drop(old);
        assert!(dir.join("model.sqlite-wal").exists(), "the new file's log is where it was");
        let mut reader = address.connect("model").expect("a connection");
        assert_eq!(count(&mut reader).expect("the new file's rows"), Some(1));
        // And the old file still holds what it held, for inspection.
        let mut inspected = SqlConnection::sqlite(&aside).expect("the file set aside");
        assert_eq!(count(&mut inspected).expect("its rows"), Some(20_001));
        assert_eq!(address.set_aside("absent", at).expect("nothing to move"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
