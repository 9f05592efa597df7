//! The runtime's own tables, beside the read models: which generation of each read model is
//! live, which is being built, and each generation's checkpoint.
//!
//! A read model's tables are created per generation (`watchlist_g3_companies`). A rebuild
//! builds the next generation beside the live one; promoting it is one update of
//! `tousu_projection`, so a reader sees the old generation or the new, never a half-built one.

use chrono::{DateTime, Utc};

use crate::projection::{ReadModel, table_prefix};
use crate::sql::{SqlError, SqlTx, Value};

/// The runtime's tables.
pub const META_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tousu_projection (
    name TEXT PRIMARY KEY,
    live_generation BIGINT,
    live_version BIGINT,
    building_generation BIGINT,
    building_version BIGINT,
    next_generation BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS tousu_checkpoint (
    name TEXT NOT NULL,
    generation BIGINT NOT NULL,
    position BIGINT NOT NULL,
    events BIGINT NOT NULL,
    recorded_at TEXT,
    PRIMARY KEY (name, generation)
);
";

/// A generation of a read model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation {
    /// Its number.
    pub number: u64,
    /// The read model version it was built with.
    pub version: u32,
}

/// What the runtime records of a read model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meta {
    /// The generation queries read.
    pub live: Option<Generation>,
    /// The generation being built, if a rebuild runs.
    pub building: Option<Generation>,
}

/// A generation's checkpoint: the last position applied.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checkpoint {
    /// The last position applied (0: none yet).
    pub position: u64,
    /// Events applied in all.
    pub events: u64,
    /// When the last event applied was recorded.
    pub recorded_at: Option<DateTime<Utc>>,
}

fn generation(number: &Value, version: &Value) -> Option<Generation> {
    Some(Generation { number: u64::try_from(number.as_i64()?).ok()?, version: u32::try_from(version.as_i64()?).ok()? })
}

/// Creates the runtime's tables if need be and reads the read model's record.
pub fn read(tx: &mut dyn SqlTx, name: &str) -> Result<Meta, SqlError> {
    let rows = tx.query(
        "SELECT live_generation, live_version, building_generation, building_version FROM tousu_projection WHERE name = $1",
        &[Value::text(name)],
    )?;
    Ok(match rows.first() {
        Some(row) => Meta { live: generation(&row[0], &row[1]), building: generation(&row[2], &row[3]) },
        None => Meta::default(),
    })
}

/// Creates the runtime's tables if they are missing.
pub fn ensure_schema(tx: &mut dyn SqlTx) -> Result<(), SqlError> {
    tx.batch(META_SCHEMA)
}

/// Starts a new generation of a read model: allocates its number, creates its tables and a
/// zero checkpoint, and records it as being built.
pub fn begin_generation(tx: &mut dyn SqlTx, model: &dyn ReadModel) -> Result<Generation, SqlError> {
    let name = model.name();
    tx.execute(
        "INSERT INTO tousu_projection (name, next_generation) VALUES ($1, 1) ON CONFLICT (name) DO NOTHING",
        &[Value::text(name)],
    )?;
    let rows = tx.query("SELECT next_generation FROM tousu_projection WHERE name = $1", &[Value::text(name)])?;
    let number = rows.first().and_then(|row| row[0].as_i64()).unwrap_or(1);
    let generation = Generation { number: u64::try_from(number).unwrap_or(1), version: model.version() };
    let prefix = table_prefix(name, generation.number);
    for table in model.tables() {
        tx.batch(&format!("DROP TABLE IF EXISTS {prefix}{table}"))?;
    }
    tx.batch(&model.schema(&prefix))?;
    tx.execute(
        "UPDATE tousu_projection SET next_generation = $2, building_generation = $3, building_version = $4 WHERE name = $1",
        &[Value::text(name), Value::int(number + 1), Value::int(number), Value::int(i64::from(model.version()))],
    )?;
    tx.execute(
        "INSERT INTO tousu_checkpoint (name, generation, position, events, recorded_at) VALUES ($1, $2, 0, 0, NULL)
         ON CONFLICT (name, generation) DO UPDATE SET position = 0, events = 0, recorded_at = NULL",
        &[Value::text(name), Value::int(number)],
    )?;
    Ok(generation)
}

/// A generation's checkpoint.
pub fn checkpoint(tx: &mut dyn SqlTx, name: &str, generation: u64) -> Result<Checkpoint, SqlError> {
    let rows = tx.query(
        "SELECT position, events, recorded_at FROM tousu_checkpoint WHERE name = $1 AND generation = $2",
        &[Value::text(name), Value::int(generation as i64)],
    )?;
    Ok(rows.first().map(|row| checkpoint_of(row)).unwrap_or_default())
}

/// A checkpoint from its columns `position, events, recorded_at` (all NULL: none yet).
fn checkpoint_of(columns: &[Value]) -> Checkpoint {
    Checkpoint {
        position: columns[0].as_i64().unwrap_or(0) as u64,
        events: columns[1].as_i64().unwrap_or(0) as u64,
        recorded_at: columns[2].as_str().and_then(|text| DateTime::parse_from_rfc3339(text).ok()).map(|at| at.to_utc()),
    }
}

/// Moves a generation's checkpoint from `from` to `to`, if it is still at `from`; returns
/// whether it was. Run first in a batch's transaction, it claims the batch: a second writer of
/// the same generation (a worker started twice, an old process not quite dead) finds the
/// checkpoint moved, or waits on the row and then finds it moved, and writes nothing, so no
/// event is applied twice.
pub fn advance_checkpoint(
    tx: &mut dyn SqlTx,
    name: &str,
    generation: u64,
    from: u64,
    to: &Checkpoint,
) -> Result<bool, SqlError> {
    let changed = tx.execute(
        "UPDATE tousu_checkpoint SET position = $3, events = $4, recorded_at = $5
         WHERE name = $1 AND generation = $2 AND position = $6",
        &[
            Value::text(name),
            Value::int(generation as i64),
            Value::int(to.position as i64),
            Value::int(to.events as i64),
            Value::Text(to.recorded_at.map(|at| at.to_rfc3339())),
            Value::int(from as i64),
        ],
    )?;
    Ok(changed == 1)
}

/// Makes a built generation live, atomically; returns the generation it replaces.
pub fn promote(tx: &mut dyn SqlTx, name: &str, generation: Generation) -> Result<Option<Generation>, SqlError> {
    let before = read(tx, name)?;
    tx.execute(
        "UPDATE tousu_projection SET live_generation = $2, live_version = $3, building_generation = NULL,
         building_version = NULL WHERE name = $1",
        &[Value::text(name), Value::int(generation.number as i64), Value::int(i64::from(generation.version))],
    )?;
    Ok(before.live.filter(|live| live.number != generation.number))
}

/// Drops a generation's tables and checkpoint.
pub fn drop_generation(tx: &mut dyn SqlTx, model: &dyn ReadModel, generation: u64) -> Result<(), SqlError> {
    // Waits for the queries that may still read the generation (see `live_prefix`).
    tx.lock(generations_lock(model.name()), true)?;
    let prefix = table_prefix(model.name(), generation);
    for table in model.tables() {
        tx.batch(&format!("DROP TABLE IF EXISTS {prefix}{table}"))?;
    }
    tx.execute(
        "DELETE FROM tousu_checkpoint WHERE name = $1 AND generation = $2",
        &[Value::text(model.name()), Value::int(generation as i64)],
    )?;
    Ok(())
}

/// Takes the live generation out of service and drops it: its tables and checkpoint are
/// dropped and no generation is live until a new one is built and promoted. What the runtime
/// does with a live generation it can no longer trust: ahead of the log, or with damaged tables
/// in PostgreSQL (a damaged SQLite file is moved aside whole instead). Returns the generation
/// dropped, if there was one.
pub fn discard_live(tx: &mut dyn SqlTx, model: &dyn ReadModel) -> Result<Option<Generation>, SqlError> {
    let Some(live) = read(tx, model.name())?.live else { return Ok(None) };
    tx.execute(
        "UPDATE tousu_projection SET live_generation = NULL, live_version = NULL WHERE name = $1",
        &[Value::text(model.name())],
    )?;
    drop_generation(tx, model, live.number)?;
    Ok(Some(live))
}

/// Makes the next generation of read model `name` at least `next`: a read store created anew
/// for a damaged one goes on from the generations the damaged one had, so that a generation
/// number names one build only.
pub fn continue_numbering(tx: &mut dyn SqlTx, name: &str, next: u64) -> Result<(), SqlError> {
    tx.execute(
        "INSERT INTO tousu_projection (name, next_generation) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET next_generation = CASE
             WHEN tousu_projection.next_generation < $2 THEN $2 ELSE tousu_projection.next_generation END",
        &[Value::text(name), Value::int(next as i64)],
    )?;
    Ok(())
}

/// The table prefix of the live generation, for queries; `None` before the first build
/// completes. Call it first in the read transaction: it holds the read model's generations
/// lock (shared) until the transaction ends, so the generation it names is not dropped while
/// the query reads it, and a query that had to wait for a drop sees the promotion before it.
pub fn live_prefix(tx: &mut dyn SqlTx, name: &str) -> Result<Option<String>, SqlError> {
    Ok(live(tx, name)?.map(|live| live.prefix))
}

/// What a query reads of the live generation: its table prefix and its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// The table prefix of the live generation.
    pub prefix: String,
    /// The live generation's checkpoint: the state the query sees.
    pub checkpoint: Checkpoint,
}

/// The live generation's prefix and checkpoint, in one statement; `None` before the first
/// build completes. Takes the generations lock as [`live_prefix`] does.
pub fn live(tx: &mut dyn SqlTx, name: &str) -> Result<Option<Live>, SqlError> {
    tx.lock(generations_lock(name), false)?;
    let rows = tx.query(
        "SELECT p.live_generation, c.position, c.events, c.recorded_at FROM tousu_projection p
         LEFT JOIN tousu_checkpoint c ON c.name = p.name AND c.generation = p.live_generation
         WHERE p.name = $1 AND p.live_generation IS NOT NULL",
        &[Value::text(name)],
    )?;
    Ok(rows.first().and_then(|row| {
        let number = u64::try_from(row[0].as_i64()?).ok()?;
        Some(Live { prefix: table_prefix(name, number), checkpoint: checkpoint_of(&row[1..]) })
    }))
}

/// The key of the lock between a read model's queries and the dropping of its replaced
/// generations: FNV-1a of the name, so every process derives the same key.
fn generations_lock(name: &str) -> i64 {
    let hash = format!("tousu-generations:{name}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
    hash as i64
}
