//! The canonical encoding of a recorded event and the SHA-256 hash chain over it.
//!
//! Every envelope field except the global position is encoded, in a fixed order, with
//! fixed-width little-endian integers and a `u32` length before every variable field, so
//! the same event hashes the same on every backend: the position is left out because
//! KurrentDB assigns its own. The encoding starts with the 8-byte tag `tousuev1`, which
//! separates this hash from any other use of SHA-256 and names the encoding's version:
//!
//! ```text
//! tag            8 bytes  "tousuev1"
//! stream         u32 length, UTF-8 bytes
//! revision       u64
//! id             16 bytes (UUID, big-endian as in its text form)
//! event_type     u32 length, UTF-8 bytes
//! schema_version u16
//! occurred_at    i64 seconds since 1970-01-01T00:00:00Z, u32 nanoseconds
//! recorded_at    i64 seconds, u32 nanoseconds
//! actor.person   u32 length, UTF-8 bytes
//! actor.body     u32 length, UTF-8 bytes
//! actor.role     u32 length, UTF-8 bytes
//! correlation_id 16 bytes
//! causation_id   16 bytes
//! prev_hash      32 bytes (zeros for revision 0)
//! payload        u32 length, bytes
//! ```
//!
//! An event's hash is `SHA-256(encoding)`. Since the encoding contains `prev_hash`, each
//! event commits to its whole stream before it. The embedded backend stores exactly these
//! bytes as the body of its records, so it hashes what it writes without encoding twice.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::types::{Actor, EventId, ProposedEvent, StreamName};

/// The tag that opens every canonical encoding.
pub const CANONICAL_TAG: &[u8; 8] = b"tousuev1";

/// The hash that revision 0 of every stream points back to.
pub const ZERO_HASH: [u8; 32] = [0; 32];

/// The fields of an event that its hash covers, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct HashedFields<'a> {
    /// The event's stream.
    pub stream: &'a StreamName,
    /// The event's revision in its stream.
    pub revision: u64,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
    /// The hash of the previous event of the stream.
    pub prev_hash: &'a [u8; 32],
    /// The envelope as proposed.
    pub event: &'a ProposedEvent,
}

/// Why an event cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A variable field is longer than a `u32` length can say.
    #[error("field {field} is {len} bytes long, more than a u32 length allows")]
    FieldTooLong {
        /// The field's name.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
}

/// Why bytes are not a canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CanonicalDecodeError {
    /// The bytes do not start with [`CANONICAL_TAG`].
    #[error("encoding does not start with the tag tousuev1")]
    BadTag,
    /// The bytes end inside the named field.
    #[error("encoding ends inside field {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// Bytes remain after the last field.
    #[error("{extra} bytes follow the last field of the encoding")]
    TrailingBytes {
        /// How many bytes remain.
        extra: usize,
    },
    /// A text field is not UTF-8.
    #[error("field {field} is not valid UTF-8")]
    NotUtf8 {
        /// The field's name.
        field: &'static str,
    },
    /// The stream field is not a valid stream name.
    #[error("stream field is not a valid stream name: {0}")]
    BadStream(#[from] crate::types::StreamNameError),
    /// A time field is out of chrono's range.
    #[error("field {field} holds an out-of-range time ({seconds} s, {nanos} ns)")]
    BadTime {
        /// The field's name.
        field: &'static str,
        /// The seconds read.
        seconds: i64,
        /// The nanoseconds read.
        nanos: u32,
    },
}

/// An event decoded from its canonical encoding: everything but the global position and
/// the event's own hash, which are not part of the encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedCanonical {
    /// The event's stream.
    pub stream: StreamName,
    /// Its revision.
    pub revision: u64,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
    /// The hash of the previous event of the stream.
    pub prev_hash: [u8; 32],
    /// The envelope as proposed.
    pub event: ProposedEvent,
}

fn put_bytes(out: &mut Vec<u8>, field: &'static str, bytes: &[u8]) -> Result<(), EncodeError> {
    let len = u32::try_from(bytes.len()).map_err(|_| EncodeError::FieldTooLong { field, len: bytes.len() })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

fn put_time(out: &mut Vec<u8>, time: DateTime<Utc>) {
    out.extend_from_slice(&time.timestamp().to_le_bytes());
    out.extend_from_slice(&time.timestamp_subsec_nanos().to_le_bytes());
}

/// The number of bytes [`encode_canonical`] appends for these fields.
pub fn canonical_len(fields: &HashedFields<'_>) -> usize {
    let event = fields.event;
    8 + 4
        + fields.stream.as_str().len()
        + 8
        + 16
        + 4
        + event.event_type.len()
        + 2
        + 12
        + 12
        + 4
        + event.actor.person.len()
        + 4
        + event.actor.body.len()
        + 4
        + event.actor.role.len()
        + 16
        + 16
        + 32
        + 4
        + event.payload.len()
}

/// Appends the canonical encoding of `fields` to `out`.
pub fn encode_canonical(out: &mut Vec<u8>, fields: &HashedFields<'_>) -> Result<(), EncodeError> {
    let event = fields.event;
    out.reserve(canonical_len(fields));
    out.extend_from_slice(CANONICAL_TAG);
    put_bytes(out, "stream", fields.stream.as_str().as_bytes())?;
    out.extend_from_slice(&fields.revision.to_le_bytes());
    out.extend_from_slice(event.id.as_bytes());
    put_bytes(out, "event_type", event.event_type.as_bytes())?;
    out.extend_from_slice(&event.schema_version.to_le_bytes());
    put_time(out, event.occurred_at);
    put_time(out, fields.recorded_at);
    put_bytes(out, "actor.person", event.actor.person.as_bytes())?;
    put_bytes(out, "actor.body", event.actor.body.as_bytes())?;
    put_bytes(out, "actor.role", event.actor.role.as_bytes())?;
    out.extend_from_slice(event.correlation_id.as_bytes());
    out.extend_from_slice(event.causation_id.as_bytes());
    out.extend_from_slice(fields.prev_hash);
    put_bytes(out, "payload", &event.payload)?;
    Ok(())
}

/// Lower-case hex of bytes, as hashes are written wherever they are shown or stored as text
/// (audit exports, history anchors, token hashes, KurrentDB metadata).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// The SHA-256 of a canonical encoding.
pub fn hash_canonical(encoding: &[u8]) -> [u8; 32] {
    Sha256::digest(encoding).into()
}

/// The hash of an event: SHA-256 of its canonical encoding.
pub fn event_hash(fields: &HashedFields<'_>) -> Result<[u8; 32], EncodeError> {
    let mut encoding = Vec::with_capacity(canonical_len(fields));
    encode_canonical(&mut encoding, fields)?;
    Ok(hash_canonical(&encoding))
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], CanonicalDecodeError> {
        if self.bytes.len() < n {
            return Err(CanonicalDecodeError::Truncated { field });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], CanonicalDecodeError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N, field)?);
        Ok(array)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, CanonicalDecodeError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, CanonicalDecodeError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, CanonicalDecodeError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], CanonicalDecodeError> {
        let len = self.u32(field)?;
        let len = usize::try_from(len).map_err(|_| CanonicalDecodeError::Truncated { field })?;
        self.take(len, field)
    }

    fn string(&mut self, field: &'static str) -> Result<String, CanonicalDecodeError> {
        let bytes = self.bytes(field)?;
        std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| CanonicalDecodeError::NotUtf8 { field })
    }

    fn time(&mut self, field: &'static str) -> Result<DateTime<Utc>, CanonicalDecodeError> {
        let seconds = i64::from_le_bytes(self.array(field)?);
        let nanos = self.u32(field)?;
        DateTime::from_timestamp(seconds, nanos).ok_or(CanonicalDecodeError::BadTime { field, seconds, nanos })
    }
}

/// Decodes a canonical encoding; every byte must belong to a field.
pub fn decode_canonical(bytes: &[u8]) -> Result<DecodedCanonical, CanonicalDecodeError> {
    let mut reader = Reader { bytes };
    if reader.take(8, "tag")? != CANONICAL_TAG {
        return Err(CanonicalDecodeError::BadTag);
    }
    let stream = StreamName::new(reader.string("stream")?)?;
    let revision = reader.u64("revision")?;
    let id = EventId::from_bytes(reader.array("id")?);
    let event_type = reader.string("event_type")?;
    let schema_version = reader.u16("schema_version")?;
    let occurred_at = reader.time("occurred_at")?;
    let recorded_at = reader.time("recorded_at")?;
    let person = reader.string("actor.person")?;
    let body = reader.string("actor.body")?;
    let role = reader.string("actor.role")?;
    let correlation_id = EventId::from_bytes(reader.array("correlation_id")?);
    let causation_id = EventId::from_bytes(reader.array("causation_id")?);
    let prev_hash = reader.array("prev_hash")?;
    let payload = reader.bytes("payload")?.to_vec();
    if !reader.bytes.is_empty() {
        return Err(CanonicalDecodeError::TrailingBytes { extra: reader.bytes.len() });
    }
    Ok(DecodedCanonical {
        stream,
        revision,
        recorded_at,
        prev_hash,
        event: ProposedEvent {
            id,
            event_type,
            schema_version,
            occurred_at,
            actor: Actor { person, body, role },
            correlation_id,
            causation_id,
            payload,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(payload: Vec<u8>) -> (StreamName, ProposedEvent) {
        let stream = StreamName::new("complaint-C1").unwrap();
        let event = ProposedEvent {
            id: EventId::from_u128(1),
            event_type: "complaint-received".into(),
            schema_version: 3,
            occurred_at: DateTime::from_timestamp(1_780_000_000, 123_456_789).unwrap(),
            actor: Actor { person: "张三".into(), body: "street-office-7".into(), role: "registrar".into() },
            correlation_id: EventId::from_u128(2),
            causation_id: EventId::from_u128(3),
            payload,
        };
        (stream, event)
    }

    #[test]
    fn encoding_is_fixed_and_documented() {
        let (stream, event) = sample(b"{}".to_vec());
        let recorded_at = DateTime::from_timestamp(1_780_000_001, 5).unwrap();
        let fields = HashedFields { stream: &stream, revision: 7, recorded_at, prev_hash: &[9; 32], event: &event };
        let mut out = Vec::new();
        encode_canonical(&mut out, &fields).unwrap();
        assert_eq!(out.len(), canonical_len(&fields));
        assert_eq!(&out[..8], b"tousuev1");
        assert_eq!(&out[8..12], &12u32.to_le_bytes());
        assert_eq!(&out[12..24], b"complaint-C1");
        assert_eq!(&out[24..32], &7u64.to_le_bytes());
        assert_eq!(&out[out.len() - 6..], &[2, 0, 0, 0, b'{', b'}']);
        // A pinned hash: changing the encoding changes every stored chain, so it must be
        // a deliberate, versioned change and not an accident.
        let hash = hash_canonical(&out);
        assert_eq!(hash, event_hash(&fields).unwrap());
        let text: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(text, "50231ae1ea74c02dfdd0b8dc436bee4854db6f1244fa57b07a86d1e05e65472a");
        assert_eq!(hex(&hash), text, "hex writes what the formatter writes");
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        let decoded = decode_canonical(&out).unwrap();
        assert_eq!(decoded.event, event);
        assert_eq!(decoded.stream, stream);
        assert_eq!(decoded.revision, 7);
        assert_eq!(decoded.recorded_at, recorded_at);
        assert_eq!(decoded.prev_hash, [9; 32]);
    }

    #[test]
    fn every_field_changes_the_hash() {
        let (stream, event) = sample(b"{\"a\":1}".to_vec());
        let recorded_at = DateTime::from_timestamp(1_780_000_001, 0).unwrap();
        let base = HashedFields { stream: &stream, revision: 1, recorded_at, prev_hash: &[1; 32], event: &event };
        let h = |f: &HashedFields<'_>| event_hash(f).unwrap();
        let original = h(&base);
        let other_stream = StreamName::new("complaint-C2").unwrap();
        assert_ne!(original, h(&HashedFields { stream: &other_stream, ..base }));
        assert_ne!(original, h(&HashedFields { revision: 2, ..base }));
        assert_ne!(original, h(&HashedFields { prev_hash: &[2; 32], ..base }));
        let later = recorded_at + chrono::Duration::nanoseconds(1);
        assert_ne!(original, h(&HashedFields { recorded_at: later, ..base }));
        let variants: [fn(&mut ProposedEvent); 10] = [
            |e| e.id = EventId::from_u128(99),
            |e| e.event_type.push('x'),
            |e| e.schema_version += 1,
            |e| e.occurred_at += chrono::Duration::nanoseconds(1),
            |e| e.actor.person.push('x'),
            |e| e.actor.body.push('x'),
            |e| e.actor.role.push('x'),
            |e| e.correlation_id = EventId::from_u128(99),
            |e| e.causation_id = EventId::from_u128(99),
            |e| e.payload[0] ^= 1,
        ];
        for change in variants.iter() {
            let mut changed = event.clone();
            change(&mut changed);
            assert_ne!(original, h(&HashedFields { event: &changed, ..base }));
        }
        // Length prefixes keep field boundaries: moving a byte from one field to the next
        // changes the hash.
        let mut shifted = event.clone();
        shifted.actor.person = "ab".into();
        shifted.actor.body = "c".into();
        let mut other = event.clone();
        other.actor.person = "a".into();
        other.actor.body = "bc".into();
        assert_ne!(h(&HashedFields { event: &shifted, ..base }), h(&HashedFields { event: &other, ..base }));
    }

    #[test]
    fn decoding_rejects_damaged_encodings() {
        let (stream, event) = sample(b"{}".to_vec());
        let fields = HashedFields {
            stream: &stream,
            revision: 0,
            recorded_at: DateTime::from_timestamp(0, 0).unwrap(),
            prev_hash: &ZERO_HASH,
            event: &event,
        };
        let mut out = Vec::new();
        encode_canonical(&mut out, &fields).unwrap();
        assert_eq!(decode_canonical(&out[..out.len() - 1]), Err(CanonicalDecodeError::Truncated { field: "payload" }));
        let mut longer = out.clone();
        longer.push(0);
        assert_eq!(decode_canonical(&longer), Err(CanonicalDecodeError::TrailingBytes { extra: 1 }));
        let mut bad_tag = out.clone();
        bad_tag[0] ^= 1;
        assert_eq!(decode_canonical(&bad_tag), Err(CanonicalDecodeError::BadTag));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut tagged = CANONICAL_TAG.to_vec();
            tagged.extend_from_slice(&bytes);
            let _ = decode_canonical(&bytes);
            let _ = decode_canonical(&tagged);
        }

        #[test]
        fn encoding_round_trips(
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            person in "\\PC{0,20}",
            revision in any::<u64>(),
            seconds in -50_000_000_000i64..50_000_000_000,
            nanos in 0u32..1_000_000_000,
        ) {
            let (stream, mut event) = sample(payload);
            event.actor.person = person;
            event.occurred_at = DateTime::from_timestamp(seconds, nanos).unwrap();
            let fields = HashedFields {
                stream: &stream,
                revision,
                recorded_at: DateTime::from_timestamp(seconds / 2, nanos / 2).unwrap(),
                prev_hash: &[7; 32],
                event: &event,
            };
            let mut out = Vec::new();
            encode_canonical(&mut out, &fields).unwrap();
            let decoded = decode_canonical(&out).unwrap();
            prop_assert_eq!(decoded.event, event.clone());
            prop_assert_eq!(decoded.revision, revision);
        }
    }
}
