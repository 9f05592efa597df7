//! The event store of tousu, independent of any backend: the envelope every event
//! carries, the [`EventStore`] trait, the SHA-256 hash chain that links the events of a
//! stream, verification of that chain written once over the trait, and (feature
//! `contract`) the contract suite every backend runs.
//!
//! The domain crate never depends on this crate; the API and the projection runtime do.

pub mod hash;
pub mod store;
pub mod types;
pub mod verify;

#[cfg(feature = "contract")]
pub mod contract;

pub use store::{AppendError, CloseError, EventStore, ReadError, Subscription, SubscriptionError};
pub use types::{
    Actor, AppendResult, Direction, EventId, ExpectedRevision, MAX_STREAM_NAME_LEN, Position, ProposedEvent, ReadFrom,
    RecordedEvent, StreamFrom, StreamName, StreamNameError,
};
pub use verify::{BrokenLink, BrokenLinkKind, ChainVerifier, VerifyError, VerifyReport, verify_all, verify_stream};
