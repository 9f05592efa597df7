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
    /// A builder of one generation in memory, for a rebuild with the server stopped; `None`
    /// (the default) where the read model has none, and the rebuild applies the log with its
    /// [`ModelWriter`].
    fn bulk(&self, prefix: &str) -> Option<Box<dyn BulkBuilder>> {
        let _ = prefix;
        None
    }
}

/// Applies events to one generation of a read model.
pub trait ModelWriter: Send {
    /// Applies a batch of events, in order, inside the runtime's transaction (which also
    /// advances the checkpoint): the changes and the checkpoint commit together.
    fn apply(&mut self, tx: &mut dyn SqlTx, events: &[ProjectedEvent]) -> Result<(), ProjectionError>;
}

/// Builds one generation of a read model in memory from the start of the log and writes its
/// tables once, at the end: the rebuild with the server stopped (`tousu projections rebuild`),
/// where nobody reads the generation before it is complete. Folding into maps shaped like the
/// tables costs a fraction of a statement per event, where the [`ModelWriter`] runs several.
///
/// After any sequence of events, [`BulkBuilder::write`] must leave exactly the rows the
/// model's writer leaves after the same events, applied in any batches: the testkit compares
/// the two after every step of every read model's scenarios.
pub trait BulkBuilder: Send {
    /// Folds a batch of events, in order; batches come in log order from the first event.
    fn fold(&mut self, events: &[ProjectedEvent]) -> Result<(), ProjectionError>;
    /// Writes the rows folded so far into the generation's empty tables, inside the runtime's
    /// transaction (which also sets the checkpoint). The builder can go on folding afterwards.
    fn write(&self, tx: &mut dyn SqlTx) -> Result<(), ProjectionError>;
}

/// The table prefix of a generation of a read model: `watchlist_g3_`.
pub fn table_prefix(name: &str, generation: u64) -> String {
    format!("{}_g{generation}_", name.replace('-', "_"))
}
