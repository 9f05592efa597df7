//! The envelope of a tousu event as a KurrentDB event, both ways.
//!
//! KurrentDB holds natively the event id (tousu's deterministic id, which KurrentDB's own
//! idempotency also keys on), the stream (the prefix and the tousu name), the revision
//! (KurrentDB's stream revision, 0-based as in tousu), the event type, the payload (the
//! event's data, byte for byte, marked `application/json` when it is JSON and
//! `application/octet-stream` otherwise) and the position. The rest of the envelope, and
//! the hash chain, go in the event's custom metadata as one flat JSON object whose values
//! are all strings (the form newer KurrentDB versions require of metadata):
//!
//! ```text
//! tousu.format        "1"
//! $correlationId      UUID, hyphenated (KurrentDB's own key: $by_correlation_id uses it)
//! $causationId        UUID, hyphenated (KurrentDB's own key)
//! tousu.schemaVersion decimal u16
//! tousu.occurredAt    RFC 3339, UTC, nine fractional digits
//! tousu.recordedAt    RFC 3339, UTC, nine fractional digits
//! tousu.actor.person  text
//! tousu.actor.body    text
//! tousu.actor.role    text
//! tousu.prevHash      64 lower-case hex digits
//! tousu.hash          64 lower-case hex digits
//! ```
//!
//! `recorded_at` is the store's clock when it prepared the append, not KurrentDB's
//! `created` stamp: the hash covers it, so it must be known before the event is written.
//! Decoding restores exactly what was encoded, so [`tousu_store::verify`] recomputes
//! every hash of a KurrentDB log as it would for the embedded one.

use chrono::{DateTime, SecondsFormat, Utc};
use kurrentdb::EventData;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use thiserror::Error;
use tousu_store::hash::{EncodeError, HashedFields, event_hash, hex};
use tousu_store::{Actor, EventId, ProposedEvent, RecordedEvent, StreamName};
use uuid::Uuid;

use crate::namespace::{ForeignStream, Namespace};
use crate::position::{UnmappablePosition, from_kurrent};

/// The version of the metadata layout above.
pub const FORMAT: &str = "1";

/// The custom metadata of a tousu event, in the order it is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Metadata {
    #[serde(rename = "tousu.format")]
    format: String,
    #[serde(rename = "$correlationId")]
    correlation_id: String,
    #[serde(rename = "$causationId")]
    causation_id: String,
    #[serde(rename = "tousu.schemaVersion")]
    schema_version: String,
    #[serde(rename = "tousu.occurredAt")]
    occurred_at: String,
    #[serde(rename = "tousu.recordedAt")]
    recorded_at: String,
    #[serde(rename = "tousu.actor.person")]
    person: String,
    #[serde(rename = "tousu.actor.body")]
    body: String,
    #[serde(rename = "tousu.actor.role")]
    role: String,
    #[serde(rename = "tousu.prevHash")]
    prev_hash: String,
    #[serde(rename = "tousu.hash")]
    hash: String,
}

/// The payload as KurrentDB receives it.
#[derive(Debug, Clone)]
enum Data {
    /// JSON, handed over as a raw value so that its bytes are exactly the payload's.
    Json(Box<RawValue>),
    /// Anything else.
    Binary(Vec<u8>),
}

/// One event ready to append: KurrentDB's fields, and the hash the store computed.
#[derive(Debug, Clone)]
pub struct EncodedEvent {
    id: EventId,
    event_type: String,
    data: Data,
    metadata: Vec<u8>,
    /// The event's hash, the next event's `prev_hash`.
    pub hash: [u8; 32],
}

impl EncodedEvent {
    /// The bytes KurrentDB counts against its size limits: type, data and metadata.
    pub fn encoded_len(&self) -> u64 {
        let data = match &self.data {
            Data::Json(raw) => raw.get().len(),
            Data::Binary(bytes) => bytes.len(),
        };
        (self.event_type.len() + data + self.metadata.len()) as u64
    }

    /// The client's form of the event.
    pub fn into_event_data(self) -> EventData {
        let event = match self.data {
            // Serialising a raw value writes its text unchanged, so this cannot fail.
            Data::Json(raw) => EventData::json(&self.event_type, &raw)
                .unwrap_or_else(|_| EventData::binary(&self.event_type, raw.get().as_bytes().to_vec().into())),
            Data::Binary(bytes) => EventData::binary(&self.event_type, bytes.into()),
        };
        event.id(self.id.0).metadata(self.metadata.into())
    }
}

/// The payload as a raw JSON value, when it is JSON that serialises back to the same bytes.
fn json_payload(payload: &[u8]) -> Option<Box<RawValue>> {
    let text = std::str::from_utf8(payload).ok()?;
    let raw = RawValue::from_string(text.to_owned()).ok()?;
    let written = serde_json::to_vec(&raw).ok()?;
    (written == payload).then_some(raw)
}

fn time_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let value = |digit: u8| match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    };
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (value(pair[0])? << 4) | value(pair[1])?;
    }
    Some(bytes)
}

/// Encodes `event` as it is appended to `stream` at `revision`, after an event whose hash
/// is `prev_hash`, and computes its hash.
pub fn encode(
    stream: &StreamName,
    revision: u64,
    recorded_at: DateTime<Utc>,
    prev_hash: &[u8; 32],
    event: &ProposedEvent,
) -> Result<EncodedEvent, EncodeError> {
    let hash = event_hash(&HashedFields { stream, revision, recorded_at, prev_hash, event })?;
    let metadata = Metadata {
        format: FORMAT.to_owned(),
        correlation_id: event.correlation_id.to_string(),
        causation_id: event.causation_id.to_string(),
        schema_version: event.schema_version.to_string(),
        occurred_at: time_text(event.occurred_at),
        recorded_at: time_text(recorded_at),
        person: event.actor.person.clone(),
        body: event.actor.body.clone(),
        role: event.actor.role.clone(),
        prev_hash: hex(prev_hash),
        hash: hex(&hash),
    };
    let metadata = serde_json::to_vec(&metadata).expect("a struct of strings serialises");
    let data = match json_payload(&event.payload) {
        Some(raw) => Data::Json(raw),
        None => Data::Binary(event.payload.clone()),
    };
    Ok(EncodedEvent { id: event.id, event_type: event.event_type.clone(), data, metadata, hash })
}

/// An event as KurrentDB returned it, borrowed: the fields decoding needs.
#[derive(Debug, Clone, Copy)]
pub struct RawEvent<'a> {
    /// The KurrentDB stream name.
    pub stream: &'a str,
    /// The event id.
    pub id: Uuid,
    /// The stream revision.
    pub revision: u64,
    /// The event type.
    pub event_type: &'a str,
    /// The payload.
    pub data: &'a [u8],
    /// The custom metadata.
    pub custom_metadata: &'a [u8],
    /// The position in `$all`.
    pub position: kurrentdb::Position,
}

impl<'a> RawEvent<'a> {
    /// The fields of a recorded KurrentDB event.
    pub fn of(event: &'a kurrentdb::RecordedEvent) -> Self {
        Self {
            stream: event.stream_id(),
            id: event.id,
            revision: event.revision,
            event_type: &event.event_type,
            data: &event.data,
            custom_metadata: &event.custom_metadata,
            position: event.position,
        }
    }

    /// Where the event is, for error messages.
    pub fn location(&self) -> String {
        format!(
            "kurrentdb stream {} revision {} position C:{}/P:{}",
            self.stream, self.revision, self.position.commit, self.position.prepare
        )
    }
}

/// Why a KurrentDB event is not a tousu event.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Its stream is not one of the store's.
    #[error(transparent)]
    Stream(#[from] ForeignStream),
    /// Its position has no tousu position.
    #[error(transparent)]
    Position(#[from] UnmappablePosition),
    /// Its custom metadata is not tousu's envelope.
    #[error("custom metadata is not a tousu envelope: {0}")]
    NotEnvelope(String),
    /// Its envelope is of a format this version does not read.
    #[error("envelope format {0:?} is not one this version reads")]
    UnknownFormat(String),
    /// A metadata field does not hold what it should.
    #[error("metadata field {field} holds {value:?}, not {expected}")]
    BadField {
        /// The metadata key.
        field: &'static str,
        /// What it holds.
        value: String,
        /// What it should hold.
        expected: &'static str,
    },
}

fn bad(field: &'static str, value: &str, expected: &'static str) -> DecodeError {
    DecodeError::BadField { field, value: value.to_owned(), expected }
}

fn parse_id(field: &'static str, value: &str) -> Result<EventId, DecodeError> {
    Uuid::parse_str(value).map(EventId).map_err(|_| bad(field, value, "a UUID"))
}

fn parse_time(field: &'static str, value: &str) -> Result<DateTime<Utc>, DecodeError> {
    value.parse::<DateTime<Utc>>().map_err(|_| bad(field, value, "an RFC 3339 time"))
}

fn parse_hash(field: &'static str, value: &str) -> Result<[u8; 32], DecodeError> {
    unhex(value).ok_or_else(|| bad(field, value, "64 lower-case hex digits"))
}

/// The tousu event a KurrentDB event of `namespace` records.
pub fn decode(raw: &RawEvent<'_>, namespace: &Namespace) -> Result<RecordedEvent, DecodeError> {
    let stream = namespace.tousu_stream(raw.stream)?;
    let position = from_kurrent(raw.position)?;
    let metadata: Metadata =
        serde_json::from_slice(raw.custom_metadata).map_err(|error| DecodeError::NotEnvelope(error.to_string()))?;
    if metadata.format != FORMAT {
        return Err(DecodeError::UnknownFormat(metadata.format));
    }
    let schema_version = metadata
        .schema_version
        .parse::<u16>()
        .map_err(|_| bad("tousu.schemaVersion", &metadata.schema_version, "a decimal u16"))?;
    Ok(RecordedEvent {
        stream,
        revision: raw.revision,
        position,
        recorded_at: parse_time("tousu.recordedAt", &metadata.recorded_at)?,
        prev_hash: parse_hash("tousu.prevHash", &metadata.prev_hash)?,
        hash: parse_hash("tousu.hash", &metadata.hash)?,
        event: ProposedEvent {
            id: EventId(raw.id),
            event_type: raw.event_type.to_owned(),
            schema_version,
            occurred_at: parse_time("tousu.occurredAt", &metadata.occurred_at)?,
            actor: Actor { person: metadata.person, body: metadata.body, role: metadata.role },
            correlation_id: parse_id("$correlationId", &metadata.correlation_id)?,
            causation_id: parse_id("$causationId", &metadata.causation_id)?,
            payload: raw.data.to_vec(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tousu_store::hash::ZERO_HASH;
    use tousu_store::{ChainVerifier, Position};

    fn event(payload: &[u8]) -> ProposedEvent {
        ProposedEvent {
            id: EventId::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            event_type: "complaint-received".into(),
            schema_version: 3,
            occurred_at: DateTime::from_timestamp(1_780_000_000, 250_000_000).unwrap(),
            actor: Actor { person: "王五".into(), body: "街道办-7".into(), role: "registrar".into() },
            correlation_id: EventId::from_u128(0xC0),
            causation_id: EventId::from_u128(0xCA),
            payload: payload.to_vec(),
        }
    }

    fn metadata_of(encoded: &EncodedEvent) -> serde_json::Value {
        serde_json::from_slice(&encoded.metadata).unwrap()
    }

    /// What KurrentDB would hand back for an encoded event at `revision` and `position`.
    fn stored<'a>(
        encoded: &'a EncodedEvent,
        data: &'a [u8],
        kurrent_stream: &'a str,
        revision: u64,
        position: u64,
    ) -> RawEvent<'a> {
        RawEvent {
            stream: kurrent_stream,
            id: encoded.id.0,
            revision,
            event_type: &encoded.event_type,
            data,
            custom_metadata: &encoded.metadata,
            position: kurrentdb::Position { commit: position, prepare: position },
        }
    }

    #[test]
    fn metadata_is_a_flat_object_of_strings_in_a_fixed_layout() {
        let stream = StreamName::new("complaint-C1").unwrap();
        let recorded_at = DateTime::from_timestamp(1_780_000_001, 5).unwrap();
        let encoded = encode(&stream, 0, recorded_at, &ZERO_HASH, &event(b"{\"a\":1}")).unwrap();
        let text = String::from_utf8(encoded.metadata.clone()).unwrap();
        assert!(
            text.starts_with("{\"tousu.format\":\"1\",\"$correlationId\":\"00000000-0000-0000-0000-0000000000c0\"")
        );
        let value = metadata_of(&encoded);
        let object = value.as_object().unwrap();
        assert_eq!(object.len(), 11);
        assert!(object.values().all(serde_json::Value::is_string));
        assert_eq!(object["tousu.occurredAt"], "2026-05-28T20:26:40.250000000Z");
        assert_eq!(object["tousu.recordedAt"], "2026-05-28T20:26:41.000000005Z");
        assert_eq!(object["tousu.schemaVersion"], "3");
        assert_eq!(object["tousu.prevHash"], "0".repeat(64));
        assert_eq!(object["tousu.hash"], hex(&encoded.hash));
        assert_eq!(object["$causationId"], "00000000-0000-0000-0000-0000000000ca");
        assert!(matches!(encoded.data, Data::Json(_)));
        assert_eq!(encoded.encoded_len(), (18 + 7 + encoded.metadata.len()) as u64);
    }

    #[test]
    fn json_payloads_are_marked_json_and_kept_byte_for_byte() {
        for payload in [&b"{\"a\":1}"[..], b"[1, 2,\n 3]", b"{\"\xe5\x9c\xb0\xe5\x9d\x80\": \"3 \\u680b\"}", b"7"] {
            let raw = json_payload(payload).expect("JSON");
            assert_eq!(serde_json::to_vec(&raw).unwrap(), payload);
        }
        for payload in [&b""[..], b"{", &[0u8; 16], b"\xff\xfe", b" {} "] {
            if let Some(raw) = json_payload(payload) {
                // Kept only when serialising gives back the very same bytes.
                assert_eq!(serde_json::to_vec(&raw).unwrap(), payload);
            }
        }
        assert!(json_payload(b"").is_none());
        assert!(json_payload(&[0u8; 16]).is_none());
    }

    #[test]
    fn an_encoded_chain_decodes_to_what_verifies() {
        let namespace = Namespace::new("t1.").unwrap();
        let stream = StreamName::new("complaint-C1").unwrap();
        let kurrent_stream = namespace.kurrent_stream(&stream);
        let recorded_at = DateTime::from_timestamp(1_780_000_001, 999_999_999).unwrap();
        let payloads: [&[u8]; 3] = [b"{\"n\":0}", b"", &[0u8; 100]];
        let mut prev = ZERO_HASH;
        let mut verifier = ChainVerifier::new();
        for (revision, payload) in payloads.iter().enumerate() {
            let mut proposed = event(payload);
            proposed.id = EventId::from_u128(revision as u128 + 1);
            let encoded = encode(&stream, revision as u64, recorded_at, &prev, &proposed).unwrap();
            assert_eq!(matches!(encoded.data, Data::Json(_)), revision == 0);
            let position = 1_000 + 200 * revision as u64;
            let decoded =
                decode(&stored(&encoded, payload, &kurrent_stream, revision as u64, position), &namespace).unwrap();
            assert_eq!(decoded.event, proposed);
            assert_eq!(decoded.stream, stream);
            assert_eq!(decoded.revision, revision as u64);
            assert_eq!(decoded.position, Position(position));
            assert_eq!(decoded.recorded_at, recorded_at);
            assert_eq!((decoded.prev_hash, decoded.hash), (prev, encoded.hash));
            verifier.check(&decoded).unwrap();
            prev = encoded.hash;
        }
    }

    #[test]
    fn foreign_or_damaged_events_are_refused() {
        let namespace = Namespace::new("").unwrap();
        let stream = StreamName::new("complaint-C1").unwrap();
        let recorded_at = DateTime::from_timestamp(1_780_000_001, 0).unwrap();
        let encoded = encode(&stream, 0, recorded_at, &ZERO_HASH, &event(b"{}")).unwrap();
        let good = stored(&encoded, b"{}", "complaint-C1", 0, 64);
        assert!(decode(&good, &namespace).is_ok());

        let transaction = RawEvent { position: kurrentdb::Position { commit: 90, prepare: 64 }, ..good };
        assert!(matches!(decode(&transaction, &namespace), Err(DecodeError::Position(_))));
        let foreign = RawEvent { custom_metadata: b"{\"$correlationId\":\"x\"}", ..good };
        assert!(matches!(decode(&foreign, &namespace), Err(DecodeError::NotEnvelope(_))));
        let empty = RawEvent { custom_metadata: b"", ..good };
        assert!(matches!(decode(&empty, &namespace), Err(DecodeError::NotEnvelope(_))));
        let badly_named = RawEvent { stream: "complaint C1", ..good };
        assert!(matches!(decode(&badly_named, &namespace), Err(DecodeError::Stream(_))));

        let mut metadata = metadata_of(&encoded);
        let tamper = |metadata: &serde_json::Value, key: &str, value: &str| {
            let mut changed = metadata.clone();
            changed[key] = serde_json::Value::String(value.to_owned());
            serde_json::to_vec(&changed).unwrap()
        };
        let cases = [
            ("tousu.format", "2", "envelope format \"2\" is not one this version reads"),
            ("tousu.schemaVersion", "70000", "metadata field tousu.schemaVersion holds \"70000\", not a decimal u16"),
            ("tousu.hash", "ABCD", "metadata field tousu.hash holds \"ABCD\", not 64 lower-case hex digits"),
            ("tousu.prevHash", &"A".repeat(64), "not 64 lower-case hex digits"),
            (
                "tousu.occurredAt",
                "yesterday",
                "metadata field tousu.occurredAt holds \"yesterday\", not an RFC 3339 time",
            ),
            ("$causationId", "not-a-uuid", "metadata field $causationId holds \"not-a-uuid\", not a UUID"),
        ];
        for (key, value, message) in cases {
            let bytes = tamper(&metadata, key, value);
            let error = decode(&RawEvent { custom_metadata: &bytes, ..good }, &namespace).unwrap_err();
            assert!(error.to_string().contains(message), "{key}: {error}");
        }
        // A field of the envelope that is missing is damage, not a default.
        metadata.as_object_mut().unwrap().remove("tousu.recordedAt");
        let bytes = serde_json::to_vec(&metadata).unwrap();
        let error = decode(&RawEvent { custom_metadata: &bytes, ..good }, &namespace).unwrap_err();
        assert!(
            matches!(error, DecodeError::NotEnvelope(ref detail) if detail.contains("tousu.recordedAt")),
            "{error}"
        );
    }

    #[test]
    fn hashes_print_as_lower_case_hex_and_back() {
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = (i as u8).wrapping_mul(37);
        }
        let text = hex(&bytes);
        assert_eq!(&text[..8], "00254a6f");
        assert_eq!(unhex(&text), Some(bytes));
        assert_eq!(unhex(&text[1..]), None);
        assert_eq!(unhex(&text.to_uppercase()), None);
    }

    proptest! {
        #[test]
        fn every_envelope_round_trips(
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            person in "\\PC{0,16}",
            body in "\\PC{0,16}",
            role in "[a-z-]{0,12}",
            event_type in "[a-z-]{1,24}",
            schema_version in any::<u16>(),
            occurred_seconds in -8_000_000_000_000i64..8_000_000_000_000,
            recorded_seconds in 0i64..4_000_000_000,
            nanos in 0u32..1_000_000_000,
            revision in any::<u64>(),
            position in any::<u64>(),
            prev_hash in any::<[u8; 32]>(),
            ids in any::<(u128, u128, u128)>(),
        ) {
            let namespace = Namespace::new("p.").unwrap();
            let stream = StreamName::new("enterprise-91350100M000100Y43").unwrap();
            let proposed = ProposedEvent {
                id: EventId::from_u128(ids.0),
                event_type,
                schema_version,
                occurred_at: DateTime::from_timestamp(occurred_seconds, nanos).unwrap(),
                actor: Actor { person, body, role },
                correlation_id: EventId::from_u128(ids.1),
                causation_id: EventId::from_u128(ids.2),
                payload: payload.clone(),
            };
            let recorded_at = DateTime::from_timestamp(recorded_seconds, nanos / 3).unwrap();
            let encoded = encode(&stream, revision, recorded_at, &prev_hash, &proposed).unwrap();
            let kurrent_stream = namespace.kurrent_stream(&stream);
            let decoded = decode(&stored(&encoded, &payload, &kurrent_stream, revision, position), &namespace).unwrap();
            prop_assert_eq!(&decoded.event, &proposed);
            prop_assert_eq!(decoded.recorded_at, recorded_at);
            prop_assert_eq!(decoded.prev_hash, prev_hash);
            prop_assert_eq!(decoded.hash, encoded.hash);
            let recomputed = event_hash(&HashedFields {
                stream: &decoded.stream,
                revision: decoded.revision,
                recorded_at: decoded.recorded_at,
                prev_hash: &decoded.prev_hash,
                event: &decoded.event,
            }).unwrap();
            prop_assert_eq!(recomputed, decoded.hash);
        }
    }
}
