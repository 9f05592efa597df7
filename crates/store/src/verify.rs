//! Verification of the hash chains, written once over [`EventStore`] so an auditor checks
//! every backend the same way.
//!
//! [`ChainVerifier`] checks events one at a time in log order: each event's hash must be
//! the hash of its canonical encoding, its `prev_hash` the hash of the previous event of
//! its stream (zeros at revision 0), its revision the next of its stream, and positions
//! must increase. [`verify_stream`] and [`verify_all`] feed it from a store and stop at
//! the first broken link, which they report with stream, revision and position.

use std::collections::HashMap;

use thiserror::Error;

use crate::hash::{EncodeError, HashedFields, ZERO_HASH, event_hash};
use crate::store::{EventStore, ReadError};
use crate::types::{Direction, Position, ReadFrom, RecordedEvent, StreamFrom, StreamName};

/// How many events a verification reads at a time.
const VERIFY_BATCH: usize = 1024;

/// What is wrong with a link of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokenLinkKind {
    /// The stored hash is not the hash of the event's canonical encoding: the event was
    /// altered after it was recorded.
    HashMismatch {
        /// The hash stored with the event.
        stored: [u8; 32],
        /// The hash of the event as read.
        computed: [u8; 32],
    },
    /// The stored `prev_hash` is not the hash of the previous event of the stream.
    PrevHashMismatch {
        /// The `prev_hash` stored with the event.
        stored: [u8; 32],
        /// The hash of the previous event (zeros at revision 0).
        expected: [u8; 32],
    },
    /// The event's revision does not follow the previous event of its stream.
    RevisionOutOfOrder {
        /// The revision that should have come next.
        expected: u64,
    },
    /// The event's position does not increase on the previous event read.
    PositionNotIncreasing {
        /// The position of the previous event read.
        previous: Position,
    },
    /// The event's stream is not the stream being verified.
    WrongStream {
        /// The stream being verified.
        expected: StreamName,
    },
    /// The event cannot be encoded, so it cannot be hashed.
    Unencodable(EncodeError),
}

/// The first broken link found, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// The stream of the offending event.
    pub stream: StreamName,
    /// Its revision.
    pub revision: u64,
    /// Its position.
    pub position: Position,
    /// What is wrong with it.
    pub kind: BrokenLinkKind,
}

/// The outcome of a verification that could read everything it needed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyReport {
    /// Events whose links were checked, up to and including a broken one.
    pub events_checked: u64,
    /// Distinct streams seen.
    pub streams_checked: u64,
    /// The first broken link, `None` when every chain verifies.
    pub first_broken: Option<BrokenLink>,
}

impl VerifyReport {
    /// Whether every chain verified.
    pub fn is_intact(&self) -> bool {
        self.first_broken.is_none()
    }
}

/// Why a verification could not be completed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Reading the events failed, for instance on a record that fails its checksum.
    #[error("verification could not read the events: {0}")]
    Read(#[from] ReadError),
}

/// Checks events one at a time, in log order, remembering the last revision and hash of
/// every stream it has seen (its memory grows with the number of streams, not events).
#[derive(Debug, Default)]
pub struct ChainVerifier {
    streams: HashMap<StreamName, (u64, [u8; 32])>,
    last_position: Option<Position>,
    events_checked: u64,
}

impl ChainVerifier {
    /// A verifier that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next event of the log (or of one stream).
    pub fn check(&mut self, event: &RecordedEvent) -> Result<(), BrokenLink> {
        self.events_checked += 1;
        let broken = |kind| BrokenLink {
            stream: event.stream.clone(),
            revision: event.revision,
            position: event.position,
            kind,
        };
        if let Some(previous) = self.last_position
            && event.position <= previous
        {
            return Err(broken(BrokenLinkKind::PositionNotIncreasing { previous }));
        }
        let (expected_revision, expected_prev) = match self.streams.get(&event.stream) {
            Some(&(revision, hash)) => (revision + 1, hash),
            None => (0, ZERO_HASH),
        };
        if event.revision != expected_revision {
            return Err(broken(BrokenLinkKind::RevisionOutOfOrder { expected: expected_revision }));
        }
        if event.prev_hash != expected_prev {
            return Err(broken(BrokenLinkKind::PrevHashMismatch { stored: event.prev_hash, expected: expected_prev }));
        }
        let computed = event_hash(&HashedFields {
            stream: &event.stream,
            revision: event.revision,
            recorded_at: event.recorded_at,
            prev_hash: &event.prev_hash,
            event: &event.event,
        })
        .map_err(|error| broken(BrokenLinkKind::Unencodable(error)))?;
        if computed != event.hash {
            return Err(broken(BrokenLinkKind::HashMismatch { stored: event.hash, computed }));
        }
        self.last_position = Some(event.position);
        self.streams.insert(event.stream.clone(), (event.revision, event.hash));
        Ok(())
    }

    /// The report of what has been checked so far.
    pub fn report(&self, first_broken: Option<BrokenLink>) -> VerifyReport {
        VerifyReport {
            events_checked: self.events_checked,
            streams_checked: self.streams.len() as u64
                + u64::from(first_broken.as_ref().is_some_and(|b| !self.streams.contains_key(&b.stream))),
            first_broken,
        }
    }
}

/// Verifies the chain of one stream, from revision 0 to its end.
pub async fn verify_stream<S: EventStore>(store: &S, stream: &StreamName) -> Result<VerifyReport, VerifyError> {
    let mut verifier = ChainVerifier::new();
    let mut from = StreamFrom::Start;
    loop {
        let batch = store.read_stream(stream, Direction::Forwards, from, VERIFY_BATCH).await?;
        for event in &batch {
            if &event.stream != stream {
                let broken = BrokenLink {
                    stream: event.stream.clone(),
                    revision: event.revision,
                    position: event.position,
                    kind: BrokenLinkKind::WrongStream { expected: stream.clone() },
                };
                return Ok(verifier.report(Some(broken)));
            }
            if let Err(broken) = verifier.check(event) {
                return Ok(verifier.report(Some(broken)));
            }
        }
        match batch.last() {
            Some(last) if batch.len() == VERIFY_BATCH => {
                from = StreamFrom::Revision(last.revision + 1);
            }
            _ => return Ok(verifier.report(None)),
        }
    }
}

/// Verifies every chain by walking the whole global log once.
pub async fn verify_all<S: EventStore>(store: &S) -> Result<VerifyReport, VerifyError> {
    let mut verifier = ChainVerifier::new();
    let mut from = ReadFrom::Start;
    loop {
        let batch = store.read_all(from, VERIFY_BATCH).await?;
        for event in &batch {
            if let Err(broken) = verifier.check(event) {
                return Ok(verifier.report(Some(broken)));
            }
        }
        match batch.last() {
            Some(last) => from = ReadFrom::After(last.position),
            None => return Ok(verifier.report(None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Actor, EventId, ProposedEvent};
    use chrono::DateTime;

    fn chain(stream: &str, n: u64, first_position: u64) -> Vec<RecordedEvent> {
        let stream = StreamName::new(stream).unwrap();
        let mut prev = ZERO_HASH;
        (0..n)
            .map(|revision| {
                let event = ProposedEvent {
                    id: EventId::from_u128(u128::from(first_position + revision)),
                    event_type: "t".into(),
                    schema_version: 1,
                    occurred_at: DateTime::from_timestamp(1_000, 0).unwrap(),
                    actor: Actor::default(),
                    correlation_id: EventId::from_u128(0),
                    causation_id: EventId::from_u128(0),
                    payload: format!("{{\"n\":{revision}}}").into_bytes(),
                };
                let recorded_at = DateTime::from_timestamp(2_000, 0).unwrap();
                let hash = event_hash(&HashedFields {
                    stream: &stream,
                    revision,
                    recorded_at,
                    prev_hash: &prev,
                    event: &event,
                })
                .unwrap();
                let recorded = RecordedEvent {
                    stream: stream.clone(),
                    revision,
                    position: Position(first_position + revision),
                    recorded_at,
                    prev_hash: prev,
                    hash,
                    event,
                };
                prev = hash;
                recorded
            })
            .collect()
    }

    fn verify(events: &[RecordedEvent]) -> Option<BrokenLink> {
        let mut verifier = ChainVerifier::new();
        events.iter().find_map(|e| verifier.check(e).err())
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain("s-1", 5, 1)), None);
    }

    #[test]
    fn an_altered_payload_is_reported_at_its_event() {
        let mut events = chain("s-1", 5, 10);
        events[3].event.payload = b"{\"n\":99}".to_vec();
        let broken = verify(&events).unwrap();
        assert_eq!(broken.revision, 3);
        assert_eq!(broken.position, Position(13));
        assert_eq!(broken.stream.as_str(), "s-1");
        assert!(matches!(broken.kind, BrokenLinkKind::HashMismatch { .. }));
    }

    #[test]
    fn a_rehashed_forgery_breaks_the_next_link() {
        // A forger who also recomputes the altered event's own hash is caught by the
        // next event, whose prev_hash still names the original.
        let mut events = chain("s-1", 4, 1);
        events[1].event.actor.person = "someone else".into();
        events[1].hash = event_hash(&HashedFields {
            stream: &events[1].stream,
            revision: 1,
            recorded_at: events[1].recorded_at,
            prev_hash: &events[1].prev_hash,
            event: &events[1].event,
        })
        .unwrap();
        let broken = verify(&events).unwrap();
        assert_eq!((broken.revision, broken.position), (2, Position(3)));
        assert!(matches!(
            broken.kind,
            BrokenLinkKind::PrevHashMismatch { expected, .. } if expected == events[1].hash
        ));
    }

    #[test]
    fn a_removed_event_is_a_revision_gap() {
        let mut events = chain("s-1", 4, 1);
        events.remove(2);
        let broken = verify(&events).unwrap();
        assert_eq!(broken.revision, 3);
        assert_eq!(broken.kind, BrokenLinkKind::RevisionOutOfOrder { expected: 2 });
    }

    #[test]
    fn interleaved_streams_are_checked_separately_and_positions_must_increase() {
        let a = chain("a", 3, 1);
        let b = chain("b", 3, 4);
        let interleaved = vec![a[0].clone(), b[0].clone(), a[1].clone(), b[1].clone(), a[2].clone(), b[2].clone()];
        // Positions must increase in log order; this interleaving does not (4 then 2).
        let broken = verify(&interleaved).unwrap();
        assert_eq!(broken.position, Position(2));
        assert_eq!(broken.kind, BrokenLinkKind::PositionNotIncreasing { previous: Position(4) });
        let mut in_order = a.clone();
        in_order.extend(b);
        assert_eq!(verify(&in_order), None);
        let mut verifier = ChainVerifier::new();
        for event in &in_order {
            verifier.check(event).unwrap();
        }
        let report = verifier.report(None);
        assert_eq!((report.events_checked, report.streams_checked), (6, 2));
    }

    #[test]
    fn a_first_event_must_point_at_zeros() {
        let mut events = chain("s-1", 2, 1);
        events[0].prev_hash = [1; 32];
        let broken = verify(&events).unwrap();
        assert_eq!(broken.revision, 0);
        assert!(matches!(
            broken.kind,
            BrokenLinkKind::PrevHashMismatch { expected, .. } if expected == ZERO_HASH
        ));
    }
}
