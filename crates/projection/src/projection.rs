//! What a read model is to the runtime: a named, versioned schema and a writer that applies
//! batches of events inside the runtime's transaction.

use crate::event::ProjectedEvent;
use crate::sql::{SqlError, SqlTx};

/// Why a projection could not apply a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// A statement failed.
    #[error(transparent)]
    Sql(#[from] SqlError),
    /// An event does not fit the read model (a bug, or data written by a newer version).
    #[error("event at position {position} cannot be projected: {reason}")]
    Event {
        /// The event's position.
        position: u64,
        /// Why.
        reason: String,
    },
}

/// A kind of read model: registered once, instantiated per table generation.
pub trait ReadModel: Send + Sync + 'static {
    /// The stable name, e.g. `watchlist`.
    fn name(&self) -> &'static str;
    /// The version of the schema and of the projection logic. Raising it makes the runtime
    /// rebuild the read model beside the live one.
    fn version(&self) -> u32;
    /// The table names without prefix, for creating and dropping a generation.
    fn tables(&self) -> &'static [&'static str];
    /// The DDL of one generation; every table name is the prefix followed by its name.
    fn schema(&self, prefix: &str) -> String;
    /// A writer for one generation's tables.
    fn writer(&self, prefix: &str) -> Box<dyn ModelWriter>;
    /// Indexes only queries need, created once a generation has been built from the log and
    /// before it is switched in: building without them is faster (the usual bulk-load order),
    /// and queries never read a generation before its switch.
    fn deferred_indexes(&self, prefix: &str) -> String {
        let _ = prefix;
        String::new()
    }
}

/// Applies events to one generation of a read model.
pub trait ModelWriter: Send {
    /// Applies a batch of events, in order, inside the runtime's transaction (which also
    /// advances the checkpoint): the changes and the checkpoint commit together.
    fn apply(&mut self, tx: &mut dyn SqlTx, events: &[ProjectedEvent]) -> Result<(), ProjectionError>;
}

/// The table prefix of a generation of a read model: `watchlist_g3_`.
pub fn table_prefix(name: &str, generation: u64) -> String {
    format!("{}_g{generation}_", name.replace('-', "_"))
}
