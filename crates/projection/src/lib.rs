//! The projection runtime of tousu: read models in SQL (SQLite in the data directory by
//! default, PostgreSQL with the same statements), each built by its own worker from the
//! global log with a checkpoint committed in the same transaction as the changes, rebuilt
//! beside the live version and switched atomically, and replayable to any past instant.
//!
//! The read models themselves live in the crates under `projections/`; this crate knows only
//! what a read model is ([`ReadModel`]) and how to run one.

#![forbid(unsafe_code)]

pub mod event;
pub mod meta;
pub mod projection;
pub mod replay;
pub mod runtime;
pub mod sql;

pub use event::{Payload, ProjectedEvent};
pub use projection::{BulkBuilder, ModelWriter, ProjectionError, ReadModel, table_prefix};
pub use runtime::{
    EventSource, Fault, LogEntry, ProjectionStatus, Readiness, RebuildError, SourceError, SourceFactory, StoreSource,
    Supervisor, WorkerState,
};
pub use sql::{FileWatch, ReadStoreAddress, Row, SqlConnection, SqlError, SqlTx, Value};
