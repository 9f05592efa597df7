//! The client's errors: which are worth retrying, and how each maps onto the trait's
//! typed errors.
//!
//! The trait has no variant for "the server could not be reached" or "the database
//! refused"; such failures become `ReadError::Io` and `AppendError::Io` holding an
//! `io::Error` whose kind says what happened and whose source is the client's error.
//! Unlike the embedded store, an `AppendError::Io` does not stop the store from writing:
//! the outcome of that append is unknown, and repeating it is safe because the planner
//! recognises it (see `plan`).

use std::io;
use std::sync::Arc;

use chrono::Utc;
use kurrentdb::CurrentRevision;
use tousu_store::hash::ZERO_HASH;
use tousu_store::{AppendError, ProposedEvent, ReadError, StreamName};

use crate::envelope;

/// The gRPC status codes the client reports as `Error::Grpc`, by their fixed numbers.
mod code {
    pub const CANCELLED: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const ABORTED: i32 = 10;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
}

/// A failure of one operation on the server.
#[derive(Debug)]
pub enum Failure {
    /// The client or the server failed.
    Backend(kurrentdb::Error),
    /// What the server holds is not a tousu event.
    Corrupt {
        /// Where.
        location: String,
        /// What is wrong.
        detail: String,
    },
}

/// Whether an operation that failed with `error` may succeed if simply tried again: the
/// node went away or is not the leader any more (the client then reconnects, to the new
/// leader when the server named it), the server was busy, or a timeout expired. An append
/// that timed out may have been written; the retry finds out (see `plan`).
pub fn is_transient(error: &kurrentdb::Error) -> bool {
    match error {
        kurrentdb::Error::ServerError(_)
        | kurrentdb::Error::NotLeaderException(_)
        | kurrentdb::Error::ConnectionClosed
        | kurrentdb::Error::GrpcConnectionError(_)
        | kurrentdb::Error::DeadlineExceeded => true,
        kurrentdb::Error::Grpc { code, .. } => matches!(
            i32::from(*code),
            code::CANCELLED
                | code::UNKNOWN
                | code::DEADLINE_EXCEEDED
                | code::RESOURCE_EXHAUSTED
                | code::ABORTED
                | code::INTERNAL
                | code::UNAVAILABLE
        ),
        _ => false,
    }
}

/// Whether `error` says the client stopped for good: it failed to (re)connect and its
/// connection task ended, so every later call fails with `ConnectionClosed` until a new
/// client is made.
pub fn client_gave_up(error: &kurrentdb::Error) -> bool {
    matches!(error, kurrentdb::Error::ConnectionClosed | kurrentdb::Error::GrpcConnectionError(_))
}

/// The client's error as an `io::Error` of the kind that fits, with the client's error as
/// its source.
pub fn io_error(error: kurrentdb::Error) -> io::Error {
    let kind = match &error {
        kurrentdb::Error::AccessDenied => io::ErrorKind::PermissionDenied,
        kurrentdb::Error::DeadlineExceeded => io::ErrorKind::TimedOut,
        kurrentdb::Error::ConnectionClosed => io::ErrorKind::ConnectionAborted,
        kurrentdb::Error::NotLeaderException(_) | kurrentdb::Error::GrpcConnectionError(_) => {
            io::ErrorKind::NotConnected
        }
        kurrentdb::Error::ResourceNotFound => io::ErrorKind::NotFound,
        kurrentdb::Error::UnsupportedFeature => io::ErrorKind::Unsupported,
        kurrentdb::Error::Grpc { code, .. } => match i32::from(*code) {
            code::INVALID_ARGUMENT => io::ErrorKind::InvalidInput,
            code::DEADLINE_EXCEEDED | code::ABORTED => io::ErrorKind::TimedOut,
            code::UNAVAILABLE => io::ErrorKind::NotConnected,
            _ => io::ErrorKind::Other,
        },
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, error)
}

impl From<Failure> for ReadError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Backend(error) => ReadError::Io(io_error(error)),
            Failure::Corrupt { location, detail } => ReadError::Corrupt { location, detail },
        }
    }
}

/// The stream's revision that a wrong-expected-version answer reports.
pub fn current_revision(current: CurrentRevision) -> Option<u64> {
    match current {
        CurrentRevision::Current(revision) => Some(revision),
        CurrentRevision::NoStream => None,
    }
}

/// A size limit of the server that an append exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeLimit {
    /// One event is larger than `MaxAppendEventSize`.
    Event {
        /// Its size as the server counts it.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The append is larger than `MaxAppendSize`.
    Append {
        /// The limit.
        max: u64,
    },
}

fn number_after(text: &str, marker: &str) -> Option<u64> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let digits = rest.find(|c: char| !c.is_ascii_digit()).map_or(rest, |end| &rest[..end]);
    digits.parse().ok()
}

/// The size limit a refused append exceeded, read from the server's message (the client
/// passes on the message but not the status's metadata that names the limit):
/// "Event with Id: …, Size: N, exceeds Maximum Append Event Size of M." and
/// "Maximum Append Size of M Exceeded."
pub fn size_limit(error: &kurrentdb::Error) -> Option<SizeLimit> {
    let kurrentdb::Error::Grpc { code, message } = error else {
        return None;
    };
    if i32::from(*code) != code::INVALID_ARGUMENT {
        return None;
    }
    if let Some(max) = number_after(message, "Maximum Append Event Size of ") {
        return Some(SizeLimit::Event { len: number_after(message, "Size: ")?, max });
    }
    number_after(message, "Maximum Append Size of ").map(|max| SizeLimit::Append { max })
}

/// The sizes of `events` as this store encodes them (what KurrentDB counts, less its own
/// overhead per record), measured the same way as the append that failed.
fn encoded_lens<'a>(stream: &'a StreamName, events: &'a [ProposedEvent]) -> impl Iterator<Item = u64> + 'a {
    let recorded_at = Utc::now();
    events.iter().map(move |event| {
        envelope::encode(stream, 0, recorded_at, &ZERO_HASH, event).map_or(u64::MAX, |e| e.encoded_len())
    })
}

/// The append error for an append of `events` to `stream` that failed with `failure`.
pub fn append_error(stream: &StreamName, events: &[ProposedEvent], failure: Failure) -> AppendError {
    let error = match failure {
        Failure::Backend(error) => error,
        Failure::Corrupt { location, detail } => {
            let detail = format!("stored data is corrupt at {location}: {detail}");
            return AppendError::Io {
                stream: stream.clone(),
                source: Arc::new(io::Error::new(io::ErrorKind::InvalidData, detail)),
            };
        }
    };
    match size_limit(&error) {
        Some(SizeLimit::Event { len, max }) => {
            // The server's message names the event by a form of its id this client cannot
            // read back; the largest event of the append is the one it refused.
            let largest = events.iter().zip(encoded_lens(stream, events)).max_by_key(|(_, len)| *len);
            match largest {
                Some((event, _)) => AppendError::EventTooLarge { id: event.id, len, max },
                None => AppendError::Io { stream: stream.clone(), source: Arc::new(io_error(error)) },
            }
        }
        Some(SizeLimit::Append { max }) => AppendError::AppendTooLarge {
            stream: stream.clone(),
            len: encoded_lens(stream, events).fold(0u64, u64::saturating_add),
            max,
        },
        None => AppendError::Io { stream: stream.clone(), source: Arc::new(io_error(error)) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use kurrentdb::{Endpoint, StreamState};
    use tousu_store::{Actor, EventId};

    fn grpc(code: i32, message: &str) -> kurrentdb::Error {
        kurrentdb::Error::Grpc { code: code.into(), message: message.to_owned() }
    }

    fn event(id: u128, payload_len: usize) -> ProposedEvent {
        ProposedEvent {
            id: EventId::from_u128(id),
            event_type: "complaint-received".into(),
            schema_version: 1,
            occurred_at: DateTime::from_timestamp(1_780_000_000, 0).unwrap(),
            actor: Actor::default(),
            correlation_id: EventId::from_u128(0),
            causation_id: EventId::from_u128(0),
            payload: vec![b'x'; payload_len],
        }
    }

    #[test]
    fn transient_failures_are_told_from_permanent_ones() {
        let leader = Endpoint { host: "node2".into(), port: 2113 };
        let transient = [
            kurrentdb::Error::ServerError("status: Unavailable".into()),
            kurrentdb::Error::NotLeaderException(leader),
            kurrentdb::Error::ConnectionClosed,
            kurrentdb::Error::DeadlineExceeded,
            kurrentdb::Error::GrpcConnectionError(kurrentdb::GrpcConnectionError::MaxDiscoveryAttemptReached(3)),
            grpc(code::ABORTED, "Operation timed out: Commit phase timeout."),
            grpc(code::UNAVAILABLE, "Server Is Too Busy"),
        ];
        for error in &transient {
            assert!(is_transient(error), "{error}");
        }
        let permanent = [
            kurrentdb::Error::AccessDenied,
            kurrentdb::Error::ResourceDeleted,
            kurrentdb::Error::UnsupportedFeature,
            kurrentdb::Error::WrongExpectedVersion {
                expected: StreamState::NoStream,
                current: CurrentRevision::Current(1),
            },
            grpc(code::INVALID_ARGUMENT, "Maximum Append Size of 1048576 Exceeded."),
            grpc(code::INVALID_ARGUMENT, "Trying to read from an invalid position."),
        ];
        for error in &permanent {
            assert!(!is_transient(error), "{error}");
        }
        let gave_up: Vec<bool> = transient.iter().map(client_gave_up).collect();
        assert_eq!(gave_up, vec![false, false, true, false, true, false, false]);
        assert!(!permanent.iter().any(client_gave_up));
    }

    #[test]
    fn client_errors_become_io_errors_of_the_kind_that_fits() {
        let kinds = [
            (kurrentdb::Error::AccessDenied, io::ErrorKind::PermissionDenied),
            (kurrentdb::Error::DeadlineExceeded, io::ErrorKind::TimedOut),
            (kurrentdb::Error::ConnectionClosed, io::ErrorKind::ConnectionAborted),
            (grpc(code::UNAVAILABLE, "down"), io::ErrorKind::NotConnected),
            (grpc(code::ABORTED, "Operation timed out"), io::ErrorKind::TimedOut),
            (grpc(code::INVALID_ARGUMENT, "bad"), io::ErrorKind::InvalidInput),
            (kurrentdb::Error::ServerError("internal".into()), io::ErrorKind::Other),
        ];
        for (error, kind) in kinds {
            let text = error.to_string();
            let io = io_error(error);
            assert_eq!(io.kind(), kind, "{text}");
            assert!(io.get_ref().and_then(|e| e.downcast_ref::<kurrentdb::Error>()).is_some());
            assert_eq!(io.to_string(), text);
        }
        let read: ReadError = Failure::Backend(kurrentdb::Error::AccessDenied).into();
        assert!(matches!(read, ReadError::Io(ref e) if e.kind() == io::ErrorKind::PermissionDenied));
        let read: ReadError = Failure::Corrupt { location: "here".into(), detail: "bad".into() }.into();
        assert_eq!(read.to_string(), "stored data is corrupt at here: bad");
    }

    #[test]
    fn a_wrong_expected_version_reports_the_current_revision() {
        assert_eq!(current_revision(CurrentRevision::Current(7)), Some(7));
        assert_eq!(current_revision(CurrentRevision::NoStream), None);
    }

    #[test]
    fn size_limits_are_read_from_the_servers_messages() {
        let event = grpc(
            code::INVALID_ARGUMENT,
            "Event with Id: { \"structured\": { } }, Size: 2097312, exceeds Maximum Append Event Size of 1048576.",
        );
        assert_eq!(size_limit(&event), Some(SizeLimit::Event { len: 2_097_312, max: 1_048_576 }));
        let append = grpc(code::INVALID_ARGUMENT, "Maximum Append Size of 1048576 Exceeded.");
        assert_eq!(size_limit(&append), Some(SizeLimit::Append { max: 1_048_576 }));
        assert_eq!(size_limit(&grpc(code::INVALID_ARGUMENT, "Required Metadata Property 'type' is missing")), None);
        assert_eq!(size_limit(&grpc(code::INTERNAL, "Maximum Append Size of 10 Exceeded.")), None);
        assert_eq!(size_limit(&kurrentdb::Error::AccessDenied), None);
    }

    #[test]
    fn append_failures_map_onto_the_traits_errors() {
        let stream = StreamName::new("complaint-A1").unwrap();
        let events = vec![event(1, 10), event(2, 5_000), event(3, 20)];
        let too_big =
            grpc(code::INVALID_ARGUMENT, "Event with Id: x, Size: 5600, exceeds Maximum Append Event Size of 4096.");
        assert!(matches!(
            append_error(&stream, &events, Failure::Backend(too_big)),
            AppendError::EventTooLarge { id, len: 5600, max: 4096 } if id == EventId::from_u128(2)
        ));
        let append = grpc(code::INVALID_ARGUMENT, "Maximum Append Size of 4096 Exceeded.");
        match append_error(&stream, &events, Failure::Backend(append)) {
            AppendError::AppendTooLarge { stream: s, len, max: 4096 } => {
                assert_eq!(s, stream);
                assert!(len > 5_030, "{len}");
            }
            other => panic!("unexpected {other}"),
        }
        let unavailable = append_error(&stream, &events, Failure::Backend(kurrentdb::Error::DeadlineExceeded));
        assert!(matches!(unavailable, AppendError::Io { ref source, .. } if source.kind() == io::ErrorKind::TimedOut));
        let corrupt =
            append_error(&stream, &events, Failure::Corrupt { location: "s r 3".into(), detail: "bad".into() });
        assert!(matches!(corrupt, AppendError::Io { ref source, .. } if source.kind() == io::ErrorKind::InvalidData));
        assert_eq!(
            corrupt.to_string(),
            "i/o error while appending to stream complaint-A1: stored data is corrupt at s r 3: bad"
        );
    }
}
