//! Read models as they stood at a past instant: the log is replayed into an in-memory SQLite
//! database up to the last event recorded at or before the instant, and queried there with
//! the same queries as the live read model. Slower than a live query (it reads the log from
//! the start), and touches nothing live; the deadline reactor never sees it.

use chrono::{DateTime, Utc};
use tousu_store::RecordedEvent;

use crate::meta::Checkpoint;
use crate::projection::{ProjectionError, ReadModel};
use crate::runtime::{EventSource, RuntimeError, SourceError};
use crate::sql::SqlConnection;

/// The table prefix of a replayed read model.
pub const REPLAY_PREFIX: &str = "replay_";

/// A read model replayed to an instant, ready to query with [`REPLAY_PREFIX`].
pub struct Replayed {
    /// The in-memory database.
    pub connection: SqlConnection,
    /// The last event applied.
    pub checkpoint: Checkpoint,
}

/// Replays the log from `source` into a fresh in-memory copy of `model`, up to the last event
/// recorded at or before `until`.
pub fn replay(
    model: &dyn ReadModel,
    source: &mut dyn EventSource,
    until: DateTime<Utc>,
) -> Result<Replayed, RuntimeError> {
    let mut connection = SqlConnection::sqlite_in_memory()?;
    connection.transaction(|tx| tx.batch(&model.schema(REPLAY_PREFIX)))?;
    let mut writer = model.writer(REPLAY_PREFIX);
    let mut checkpoint = Checkpoint::default();
    let head = source.head()?;
    let mut read_up_to = 0;
    let mut empty_reads = 0;
    while read_up_to < head {
        let batch = source.next_batch(crate::runtime::BUILD_BATCH)?;
        let Some(last_read) = batch.last() else {
            // Below the head the log always has events to give; a source that keeps giving
            // none is broken, and must not hold a replay (and its slot) for ever.
            empty_reads += 1;
            if empty_reads > 60 {
                return Err(SourceError::Failed(format!(
                    "the log gave no events after position {read_up_to} below its head {head}"
                ))
                .into());
            }
            continue;
        };
        empty_reads = 0;
        read_up_to = last_read.position.0;
        // The log is in recording order: the first event recorded after the instant ends
        // the replay.
        let cut = batch.iter().position(|event| event.recorded_at > until);
        let wanted: &[RecordedEvent] = &batch[..cut.unwrap_or(batch.len())];
        if let Some(last) = wanted.last() {
            let events: Vec<crate::event::ProjectedEvent> =
                wanted.iter().map(crate::event::ProjectedEvent::decode).collect();
            connection.transaction(|tx| -> Result<(), ProjectionError> { writer.apply(tx, &events) })?;
            checkpoint = Checkpoint {
                position: last.position.0,
                events: checkpoint.events + wanted.len() as u64,
                recorded_at: Some(last.recorded_at),
            };
        }
        if cut.is_some() {
            break;
        }
    }
    connection.transaction(|tx| tx.batch(&model.deferred_indexes(REPLAY_PREFIX)))?;
    Ok(Replayed { connection, checkpoint })
}
