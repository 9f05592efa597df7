//! The vocabulary of the event store: stream names, event ids, positions, revisions,
//! expectations, and the event envelope as proposed by a writer and as recorded by a store.
//!
//! The store knows nothing of the domain: event types, actors and payloads are plain
//! strings and bytes here. Times are `DateTime<Utc>`: the envelope records instants, and
//! a fixed offset would only add a field that the hash would then have to cover.

use std::fmt;

use chrono::{DateTime, Utc};
use thiserror::Error;
use uuid::Uuid;

/// The longest stream name, in bytes.
pub const MAX_STREAM_NAME_LEN: usize = 256;

/// A validated stream name: 1 to 256 bytes of `[A-Za-z0-9._:@-]`,
/// e.g. `complaint-C20260001` or `enterprise-91350100M000100Y43`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamName(String);

/// Why a string is not a stream name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StreamNameError {
    /// The name is empty.
    #[error("stream name is empty")]
    Empty,
    /// The name is longer than [`MAX_STREAM_NAME_LEN`] bytes.
    #[error("stream name is {len} bytes long, more than the 256 allowed")]
    TooLong {
        /// The length of the rejected name in bytes.
        len: usize,
    },
    /// The name contains a character outside `[A-Za-z0-9._:@-]`.
    #[error("stream name {name:?} contains {character:?}, outside [A-Za-z0-9._:@-]")]
    BadCharacter {
        /// The rejected name.
        name: String,
        /// The first offending character.
        character: char,
    },
}

impl StreamName {
    /// Validates `name` as a stream name.
    pub fn new(name: impl Into<String>) -> Result<Self, StreamNameError> {
        let name = name.into();
        if name.is_empty() {
            return Err(StreamNameError::Empty);
        }
        if name.len() > MAX_STREAM_NAME_LEN {
            return Err(StreamNameError::TooLong { len: name.len() });
        }
        if let Some(character) =
            name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-')))
        {
            return Err(StreamNameError::BadCharacter { name, character });
        }
        Ok(Self(name))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::borrow::Borrow<str> for StreamName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for StreamName {
    type Err = StreamNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// The identity of an event: a UUID chosen by the writer. The domain derives it from the
/// client request id, which is what makes a repeated command idempotent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub Uuid);

impl EventId {
    /// An event id from its 128-bit value.
    pub const fn from_u128(value: u128) -> Self {
        Self(Uuid::from_u128(value))
    }

    /// An event id from its 16 bytes, big-endian as in the UUID's text form.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(Uuid::from_bytes(bytes))
    }

    /// The 16 bytes of the id.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// The 128-bit value of the id.
    pub const fn as_u128(&self) -> u128 {
        self.0.as_u128()
    }
}

impl std::str::FromStr for EventId {
    type Err = uuid::Error;

    /// Parses the UUID text form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(EventId)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A position in the global log: strictly increasing in log order. The embedded backend's
/// positions are gap-free from 1; other backends (KurrentDB) may leave gaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position(pub u64);

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What the writer believes about a stream before appending to it. Revisions are 0-based
/// per stream, as in KurrentDB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpectedRevision {
    /// Append whatever the stream holds.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must hold at least one event.
    StreamExists,
    /// The stream's last event must have exactly this revision.
    Exact(u64),
}

impl fmt::Display for ExpectedRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::NoStream => f.write_str("no stream"),
            Self::StreamExists => f.write_str("stream exists"),
            Self::Exact(revision) => write!(f, "revision {revision}"),
        }
    }
}

impl ExpectedRevision {
    /// Whether a stream whose last revision is `current` (`None`: no stream) meets the
    /// expectation.
    pub fn is_met_by(self, current: Option<u64>) -> bool {
        match (self, current) {
            (Self::Any, _) => true,
            (Self::NoStream, None) => true,
            (Self::StreamExists, Some(_)) => true,
            (Self::Exact(expected), Some(current)) => expected == current,
            _ => false,
        }
    }

    /// Whether an append whose first event landed at `first_revision` could have been made
    /// under this expectation; used to recognise an idempotent retry.
    pub fn admits_first_revision(self, first_revision: u64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => first_revision == 0,
            Self::StreamExists => first_revision > 0,
            Self::Exact(expected) => expected.checked_add(1) == Some(first_revision),
        }
    }
}

/// Where a read of the global log starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadFrom {
    /// From the first event of the log.
    Start,
    /// From the first event after this position (exclusive, like KurrentDB's `$all`).
    After(Position),
}

/// Where a read of one stream starts (inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamFrom {
    /// The stream's first event (revision 0).
    Start,
    /// The stream's last event: the usual start of a backwards read.
    End,
    /// The event at this revision.
    Revision(u64),
}

/// Which way a stream is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Oldest first.
    Forwards,
    /// Newest first.
    Backwards,
}

/// Who did what an event records: plain strings, because the store does not know the
/// domain's types.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Actor {
    /// The person who acted.
    pub person: String,
    /// The body (department, office, company) the person acted for.
    pub body: String,
    /// The role the person acted in.
    pub role: String,
}

/// An event as the writer proposes it. The store adds the stream, revision, position,
/// recorded-at time and the hash chain when it records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposedEvent {
    /// The event's id; a repeated id makes an append idempotent (see [`crate::EventStore`]).
    pub id: EventId,
    /// The event's type, e.g. `complaint-received`.
    pub event_type: String,
    /// The version of the payload's schema for this type.
    pub schema_version: u16,
    /// When it happened in the business sense, decided by the domain.
    pub occurred_at: DateTime<Utc>,
    /// Who did it.
    pub actor: Actor,
    /// The id shared by every event caused by one request.
    pub correlation_id: EventId,
    /// The event or command that caused this one.
    pub causation_id: EventId,
    /// The payload, JSON bytes, opaque to the store.
    pub payload: Vec<u8>,
}

/// An event as a store recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The stream the event belongs to.
    pub stream: StreamName,
    /// Its 0-based revision within the stream.
    pub revision: u64,
    /// Its position in the global log. Not covered by the hash, because it differs
    /// between backends.
    pub position: Position,
    /// Server time assigned when the event was appended.
    pub recorded_at: DateTime<Utc>,
    /// The hash of the previous event of the stream, all zeros for revision 0.
    pub prev_hash: [u8; 32],
    /// This event's hash: see [`crate::hash`].
    pub hash: [u8; 32],
    /// The event as it was proposed.
    pub event: ProposedEvent,
}

/// The outcome of a successful append.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AppendResult {
    /// The revision of the last event appended.
    pub revision: u64,
    /// The global position of the last event appended.
    pub position: Position,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_are_validated() {
        assert!(StreamName::new("complaint-C20260001").is_ok());
        assert!(StreamName::new("enterprise-91350100M000100Y43").is_ok());
        assert!(StreamName::new("a.b_c:d@e-f").is_ok());
        assert_eq!(StreamName::new(""), Err(StreamNameError::Empty));
        assert_eq!(StreamName::new("x".repeat(257)), Err(StreamNameError::TooLong { len: 257 }));
        assert!(StreamName::new("x".repeat(256)).is_ok());
        assert_eq!(StreamName::new("a b"), Err(StreamNameError::BadCharacter { name: "a b".into(), character: ' ' }));
        assert!(matches!(StreamName::new("投诉-1"), Err(StreamNameError::BadCharacter { character: '投', .. })));
    }

    #[test]
    fn expectations_match_current_revisions() {
        use ExpectedRevision::*;
        assert!(Any.is_met_by(None) && Any.is_met_by(Some(3)));
        assert!(NoStream.is_met_by(None) && !NoStream.is_met_by(Some(0)));
        assert!(StreamExists.is_met_by(Some(0)) && !StreamExists.is_met_by(None));
        assert!(Exact(2).is_met_by(Some(2)) && !Exact(2).is_met_by(Some(3)));
        assert!(!Exact(0).is_met_by(None));
        assert!(Exact(4).admits_first_revision(5) && !Exact(4).admits_first_revision(4));
        assert!(!Exact(u64::MAX).admits_first_revision(0));
        assert!(NoStream.admits_first_revision(0) && !NoStream.admits_first_revision(1));
        assert!(StreamExists.admits_first_revision(1) && !StreamExists.admits_first_revision(0));
    }
}
