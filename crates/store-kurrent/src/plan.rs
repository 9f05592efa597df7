//! The decision of an append, as a pure function of what the store read of the stream's
//! tail: repeat the original result, refuse, or write after a given revision.
//!
//! The rules are the trait's, in the embedded store's order: an append whose first id is
//! stored at a place the expectation admits, followed by the rest of its ids in order, is
//! a repeat and returns the original result; any other stored id is refused as stored
//! elsewhere; then the expectation is checked against the stream's last revision.
//!
//! What differs is what "stored" can mean. KurrentDB has no index of event ids, so the
//! store only knows the ids it read: the stream's last events (the idempotency window)
//! and, under `Exact` or `NoStream`, the events at the one place a repeat could be. Ids
//! stored further back in the stream, or in another stream, are not seen; `docs/kurrentdb.md`
//! spells out the consequences.

use std::collections::{HashMap, HashSet};

use kurrentdb::StreamState;
use tousu_store::hash::ZERO_HASH;
use tousu_store::{AppendError, AppendResult, EventId, ExpectedRevision, Position, ProposedEvent, StreamName};

/// Where an id read from the stream is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Its revision.
    pub revision: u64,
    /// Its position.
    pub position: Position,
}

/// What the store read of a stream before appending to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tail {
    /// The stream's last revision and that event's hash; `None` when there is no stream.
    pub last: Option<(u64, [u8; 32])>,
    /// The ids read (the window and the place of a repeat), and where they are.
    pub known: HashMap<EventId, Stored>,
    /// The lowest revision the window covers; everything from it to the end was read.
    pub window_start: Option<u64>,
}

impl Tail {
    /// The revision at which a repeat of an append under `expected` would start, when that
    /// place is fixed (`Exact`, `NoStream`), holds events, and lies before the window: the
    /// store must read it too.
    pub fn unread_repeat_place(&self, expected: ExpectedRevision) -> Option<u64> {
        let place = match expected {
            ExpectedRevision::Exact(revision) => revision.checked_add(1)?,
            ExpectedRevision::NoStream => 0,
            ExpectedRevision::Any | ExpectedRevision::StreamExists => return None,
        };
        let (current, _) = self.last?;
        (place <= current && self.window_start.is_none_or(|start| place < start)).then_some(place)
    }
}

/// What to do with an append.
#[derive(Clone, Debug)]
pub enum Plan {
    /// The append is stored already: return its original result, write nothing.
    Repeat(AppendResult),
    /// Refuse it.
    Refuse(AppendError),
    /// Write it as the revisions from `first_revision` on, chained to `prev_hash`, under
    /// the exact stream state `state` (so a concurrent writer makes it fail, and the
    /// chain stays linear).
    Write {
        /// The revision of its first event.
        first_revision: u64,
        /// The hash of the stream's last event, zeros for a new stream.
        prev_hash: [u8; 32],
        /// The state KurrentDB must find the stream in.
        state: StreamState,
    },
}

/// The checks that need nothing from the server: an append holds events, each id once.
pub fn validate(stream: &StreamName, events: &[ProposedEvent]) -> Result<(), AppendError> {
    if events.is_empty() {
        return Err(AppendError::EmptyAppend { stream: stream.clone() });
    }
    let mut seen = HashSet::with_capacity(events.len());
    match events.iter().find(|e| !seen.insert(e.id)) {
        Some(event) => Err(AppendError::DuplicateEventIdInAppend { id: event.id, stream: stream.clone() }),
        None => Ok(()),
    }
}

/// Decides an append of `events` (validated) to `stream` under `expected`, given `tail`.
pub fn plan(stream: &StreamName, expected: ExpectedRevision, events: &[ProposedEvent], tail: &Tail) -> Plan {
    let first_stored =
        events.iter().enumerate().find_map(|(i, e)| tail.known.get(&e.id).map(|place| (i, e.id, *place)));
    if let Some((index, id, place)) = first_stored {
        if index == 0 && expected.admits_first_revision(place.revision) {
            let mut last_position = place.position;
            let at_place = events.iter().enumerate().skip(1).all(|(i, event)| match tail.known.get(&event.id) {
                Some(found) if Some(found.revision) == place.revision.checked_add(i as u64) => {
                    last_position = found.position;
                    true
                }
                _ => false,
            });
            if at_place {
                return Plan::Repeat(AppendResult {
                    revision: place.revision + events.len() as u64 - 1,
                    position: last_position,
                });
            }
        }
        return Plan::Refuse(AppendError::DuplicateEventIdElsewhere {
            id,
            stream: stream.clone(),
            revision: place.revision,
        });
    }
    let current = tail.last.map(|(revision, _)| revision);
    if !expected.is_met_by(current) {
        return Plan::Refuse(AppendError::WrongExpectedRevision { stream: stream.clone(), expected, current });
    }
    match tail.last {
        Some((revision, hash)) => {
            Plan::Write { first_revision: revision + 1, prev_hash: hash, state: StreamState::StreamRevision(revision) }
        }
        None => Plan::Write { first_revision: 0, prev_hash: ZERO_HASH, state: StreamState::NoStream },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use tousu_store::Actor;

    fn event(id: u128) -> ProposedEvent {
        ProposedEvent {
            id: EventId::from_u128(id),
            event_type: "t".into(),
            schema_version: 1,
            occurred_at: DateTime::from_timestamp(1_000, 0).unwrap(),
            actor: Actor::default(),
            correlation_id: EventId::from_u128(0),
            causation_id: EventId::from_u128(0),
            payload: b"{}".to_vec(),
        }
    }

    fn stream() -> StreamName {
        StreamName::new("complaint-I1").unwrap()
    }

    /// A stream whose revision r holds id `100 + r` at position `1000 + 10 r`, read from
    /// `window_start` to its end.
    fn tail(len: u64, window_start: u64) -> Tail {
        Tail {
            last: len.checked_sub(1).map(|last| (last, [last as u8; 32])),
            known: (window_start..len)
                .map(|r| {
                    (EventId::from_u128(100 + u128::from(r)), Stored { revision: r, position: Position(1000 + 10 * r) })
                })
                .collect(),
            window_start: (len > 0).then_some(window_start),
        }
    }

    /// Plans compare by their debug form: an append error holds no comparable I/O error.
    fn same(actual: Plan, expected: Plan) {
        assert_eq!(format!("{actual:?}"), format!("{expected:?}"));
    }

    fn same_under(expected_revision: ExpectedRevision, actual: Plan, expected: Plan) {
        assert_eq!(format!("{actual:?}"), format!("{expected:?}"), "under {expected_revision}");
    }

    fn ids(ids: &[u128]) -> Vec<ProposedEvent> {
        ids.iter().map(|&id| event(id)).collect()
    }

    use ExpectedRevision::{Any, Exact, NoStream, StreamExists};

    #[test]
    fn empty_appends_and_repeated_ids_are_refused_before_any_read() {
        assert!(matches!(validate(&stream(), &[]), Err(AppendError::EmptyAppend { .. })));
        let twice = ids(&[1, 2, 1]);
        assert!(matches!(
            validate(&stream(), &twice),
            Err(AppendError::DuplicateEventIdInAppend { id, .. }) if id == EventId::from_u128(1)
        ));
        assert!(validate(&stream(), &ids(&[1, 2, 3])).is_ok());
    }

    #[test]
    fn new_events_are_written_after_the_last_revision_under_its_exact_state() {
        let empty = tail(0, 0);
        same(
            plan(&stream(), NoStream, &ids(&[1]), &empty),
            Plan::Write { first_revision: 0, prev_hash: ZERO_HASH, state: StreamState::NoStream },
        );
        same(
            plan(&stream(), Any, &ids(&[1]), &empty),
            Plan::Write { first_revision: 0, prev_hash: ZERO_HASH, state: StreamState::NoStream },
        );
        let five = tail(5, 0);
        for expected in [Exact(4), Any, StreamExists] {
            same_under(
                expected,
                plan(&stream(), expected, &ids(&[1, 2]), &five),
                Plan::Write { first_revision: 5, prev_hash: [4; 32], state: StreamState::StreamRevision(4) },
            );
        }
    }

    #[test]
    fn expectations_that_are_not_met_are_conflicts_with_the_current_revision() {
        let five = tail(5, 0);
        for (expected, current) in [(NoStream, Some(4)), (Exact(3), Some(4)), (Exact(9), Some(4))] {
            same(
                plan(&stream(), expected, &ids(&[1]), &five),
                Plan::Refuse(AppendError::WrongExpectedRevision { stream: stream(), expected, current }),
            );
        }
        for expected in [StreamExists, Exact(0)] {
            assert!(matches!(
                plan(&stream(), expected, &ids(&[1]), &tail(0, 0)),
                Plan::Refuse(AppendError::WrongExpectedRevision { current: None, .. })
            ));
        }
    }

    #[test]
    fn a_repeat_at_its_place_returns_the_original_result_under_every_admitting_expectation() {
        // Revisions 0..=2 were one append (ids 100..=102), 3..=4 the next.
        let five = tail(5, 0);
        let first = AppendResult { revision: 2, position: Position(1020) };
        for expected in [NoStream, Any] {
            same_under(expected, plan(&stream(), expected, &ids(&[100, 101, 102]), &five), Plan::Repeat(first));
        }
        let second = AppendResult { revision: 4, position: Position(1040) };
        for expected in [Exact(2), Any, StreamExists] {
            same_under(expected, plan(&stream(), expected, &ids(&[103, 104]), &five), Plan::Repeat(second));
        }
        // One event of a larger stored append, at its own place.
        same(
            plan(&stream(), Exact(0), &ids(&[101]), &five),
            Plan::Repeat(AppendResult { revision: 1, position: Position(1010) }),
        );
    }

    #[test]
    fn ids_stored_anywhere_else_are_refused_naming_where_they_are() {
        let two = tail(2, 0);
        let elsewhere = |id: u128, revision: u64| {
            Plan::Refuse(AppendError::DuplicateEventIdElsewhere {
                id: EventId::from_u128(id),
                stream: stream(),
                revision,
            })
        };
        // At a place the expectation does not admit.
        same(plan(&stream(), Exact(1), &ids(&[100, 101]), &two), elsewhere(100, 0));
        same(plan(&stream(), StreamExists, &ids(&[100, 101]), &two), elsewhere(100, 0));
        // In another order.
        same(plan(&stream(), Any, &ids(&[101, 100]), &two), elsewhere(101, 1));
        // Mixed with new ids, before or after them.
        same(plan(&stream(), NoStream, &ids(&[100, 101, 9]), &two), elsewhere(100, 0));
        same(plan(&stream(), Any, &ids(&[10, 100]), &two), elsewhere(100, 0));
    }

    #[test]
    fn only_what_was_read_is_known() {
        // A stream of 300 events read back 100: ids before revision 200 are not seen, so
        // an old append repeated under Any would be written again (the documented
        // difference from the embedded store).
        let long = tail(300, 200);
        assert!(matches!(plan(&stream(), Any, &ids(&[100 + 150]), &long), Plan::Write { first_revision: 300, .. }));
        same(
            plan(&stream(), Any, &ids(&[100 + 250]), &long),
            Plan::Repeat(AppendResult { revision: 250, position: Position(3500) }),
        );
        // Under Exact the place of a repeat is fixed, so it is read even outside the window.
        assert_eq!(long.unread_repeat_place(Exact(149)), Some(150));
        assert_eq!(long.unread_repeat_place(Exact(250)), None, "inside the window");
        assert_eq!(long.unread_repeat_place(Exact(299)), None, "nothing stored there yet");
        assert_eq!(long.unread_repeat_place(NoStream), Some(0));
        assert_eq!(long.unread_repeat_place(Any), None);
        assert_eq!(tail(0, 0).unread_repeat_place(NoStream), None);
        assert_eq!(tail(5, 0).unread_repeat_place(Exact(u64::MAX)), None);
    }
}
