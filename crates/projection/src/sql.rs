//! The SQL read store: SQLite in the data directory by default, PostgreSQL when workers run as
//! their own processes or other systems query the read models — with the same statements.
//!
//! Statements are written once, in the dialect both understand: `$1`, `$2`, … placeholders
//! (SQLite binds them by name), `BIGINT`, `TEXT` and `DOUBLE PRECISION` columns, and
//! `INSERT … ON CONFLICT … DO UPDATE`. Every value is typed, NULLs included, because
//! PostgreSQL checks parameter types against the statement.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// The largest part of a SQLite read store mapped into memory (address space, not memory).
const SQLITE_MMAP_BYTES: i64 = 1 << 30;

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
        let mut connection = match self {
            ReadStoreAddress::Sqlite(dir) => SqlConnection::sqlite(&dir.join(format!("{name}.sqlite")))?,
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
        // Pages are read through a memory map shared with every other connection to the file
        // (the operating system's page cache) instead of being copied into each connection's
        // own cache, which a worker's index lookups otherwise spend much of their time on.
        connection.pragma_update(None, "mmap_size", SQLITE_MMAP_BYTES)?;
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
}
