//! Identifiers derived from what the client sent, so that a repeated command maps to the
//! same lead and the same event ids: the basis of idempotency.
//!
//! Every derivation is SHA-256 over length-prefixed parts with a purpose label, so two
//! derivations never collide by concatenation and no id depends on the clock or on chance.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tousu_domain::ids::ComplaintId;
use tousu_store::EventId;

use crate::access::Principal;
use crate::error::AppError;

/// A client's request id: 1 to 128 printable ASCII characters, unique per principal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// Validates a request id.
    pub fn new(text: &str) -> Result<RequestId, AppError> {
        let valid = (1..=128).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic());
        if valid {
            Ok(RequestId(text.to_owned()))
        } else {
            Err(AppError::InvalidArgument {
                field: "request_id",
                reason: "expected 1 to 128 printable ASCII characters without spaces".to_owned(),
            })
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn digest(purpose: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in std::iter::once(purpose.as_bytes()).chain(parts.iter().copied()) {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn uuid_from(digest: [u8; 32]) -> EventId {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // Mark the id as an RFC 9562 version 8 (custom) UUID with the standard variant.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    EventId::from_bytes(bytes)
}

/// The correlation id of a client command: every event it writes carries it, and a repeated
/// request is recognised by it. Scoped by principal, so two clients' request ids never
/// collide.
pub fn command_correlation(principal: &Principal, request_id: &RequestId) -> EventId {
    let body = principal.body.map(|body| body.as_str()).unwrap_or("");
    uuid_from(digest(
        "command",
        &[principal.person.as_bytes(), body.as_bytes(), principal.role.as_str().as_bytes(), request_id.0.as_bytes()],
    ))
}

/// The fingerprint of what a client's request asked for: its correlation (the principal and
/// the request id) and the request's content as the client gave it (`asked`, hashed in its
/// JSON serialisation, which leaves Chinese text as it is). Stored as the causation id of the
/// events the request writes, so that the request id repeated with the same content is
/// answered with the first result, and repeated with other content is refused
/// (`REQUEST_ID_REUSED`) instead of silently answered.
///
/// This is the fingerprint's second version; the first hashed the request's `Debug`
/// rendering, which escaped every Chinese character and cost a registration several
/// microseconds. Events written by the first version keep its fingerprint:
/// [`Fingerprint::legacy`] recomputes it for a repeat that does not match the second.
pub fn request_fingerprint<'a, T: Serialize + fmt::Debug + Sync>(
    correlation: EventId,
    asked: &'a T,
) -> Result<Fingerprint<'a>, AppError> {
    let mut hasher = Sha256::new();
    for part in ["request-fingerprint-v2".as_bytes(), correlation.as_bytes()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    // The serialisation is the last part: nothing follows it that a length must delimit.
    serde_json::to_writer(HashWriter(&mut hasher), asked)
        .map_err(|error| AppError::Internal(format!("a request does not serialise: {error}")))?;
    Ok(Fingerprint { id: uuid_from(hasher.finalize().into()), correlation, asked })
}

/// Feeds what is written to a hasher.
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A client request's fingerprint ([`request_fingerprint`]), and what it was computed from, so
/// that the first version's fingerprint can be recomputed when a repeat needs it.
pub struct Fingerprint<'a> {
    /// The fingerprint the request's events carry as their causation id.
    pub id: EventId,
    correlation: EventId,
    asked: &'a (dyn fmt::Debug + Sync),
}

impl Fingerprint<'_> {
    /// The fingerprint's first version, which events written before the second carry: SHA-256
    /// over the request's `Debug` rendering.
    pub fn legacy(&self) -> EventId {
        let what = format!("{:?}", self.asked);
        uuid_from(digest("request-fingerprint", &[self.correlation.as_bytes(), what.as_bytes()]))
    }
}

impl fmt::Debug for Fingerprint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fingerprint").field("id", &self.id).finish_non_exhaustive()
    }
}

/// The correlation id of tousu's own reaction to a stored event (a company count, a linked
/// lead), derived from the causing event so the reaction happens once whoever runs it.
pub fn reaction_correlation(cause: EventId, purpose: &str, index: u32) -> EventId {
    uuid_from(digest("reaction", &[cause.as_bytes(), purpose.as_bytes(), &index.to_be_bytes()]))
}

/// The correlation id of the company count of one batch of the log: the company and the
/// first and last causing events identify it.
pub fn batch_correlation(uscc: &str, first: EventId, last: EventId) -> EventId {
    uuid_from(digest("count-batch", &[uscc.as_bytes(), first.as_bytes(), last.as_bytes()]))
}

/// The correlation id of the deadline reactor's escalation of one deadline, due at `due`, to
/// one level. The due instant is part of it: a recomputed due (interpretation 21) that
/// withdrew a level makes reaching that level again a new escalation, not a repeat.
pub fn escalation_correlation(
    stream: &str,
    seq: u32,
    level: &str,
    due: chrono::DateTime<chrono::FixedOffset>,
) -> EventId {
    let due = due.timestamp_millis().to_be_bytes();
    uuid_from(digest("escalation", &[stream.as_bytes(), &seq.to_be_bytes(), level.as_bytes(), &due]))
}

/// The correlation id of the deadline reactor's recomputation of a provisional due instant
/// (interpretation 21): the deadline and the calendar version it rested on identify it, so
/// each recomputation happens once whoever runs it.
pub fn recompute_correlation(stream: &str, seq: u32, calendar: &str) -> EventId {
    uuid_from(digest("recompute-deadline", &[stream.as_bytes(), &seq.to_be_bytes(), calendar.as_bytes()]))
}

/// The correlation id of the deadline reactor's daily re-evaluation of a company.
pub fn daily_evaluation_correlation(uscc: &str, day: chrono::NaiveDate) -> EventId {
    uuid_from(digest("daily-evaluation", &[uscc.as_bytes(), day.to_string().as_bytes()]))
}

/// The correlation of the issue of a week's summary (interpretation 26): one per week,
/// whoever issues it.
pub fn weekly_issue_correlation(week_start: chrono::NaiveDate) -> EventId {
    uuid_from(digest("weekly-issue", &[week_start.to_string().as_bytes()]))
}

/// The id of the `index`-th event written under a correlation id.
pub fn event_id(correlation: EventId, index: u32) -> EventId {
    uuid_from(digest("event", &[correlation.as_bytes(), &index.to_be_bytes()]))
}

/// The id of a new lead registered by a command: `C` and 16 hex digits.
pub fn new_complaint_id(correlation: EventId) -> ComplaintId {
    let digest = digest("complaint-id", &[correlation.as_bytes()]);
    let hex: String = digest[..8].iter().map(|byte| format!("{byte:02x}")).collect();
    format!("C{hex}").parse().expect("C and 16 hex digits is a valid lead id")
}

/// The id of the `index`-th linked lead split off a lead (interpretation 15): the parent's
/// id with `-2`, `-3`, … so a linked lead reads as part of its complaint.
pub fn split_lead_id(parent: &ComplaintId, index: usize) -> Result<ComplaintId, AppError> {
    format!("{parent}-{}", index + 2).parse().map_err(|_| AppError::InvalidArgument {
        field: "split",
        reason: format!("lead {parent} cannot take more linked leads"),
    })
}

#[cfg(test)]
mod tests {
    use tousu_domain::actor::Role;
    use tousu_domain::ids::BodyCode;

    use super::*;

    fn principal(person: &str) -> Principal {
        Principal { person: person.to_owned(), body: Some(BodyCode::ZJ), role: Role::Registrar }
    }

    #[test]
    fn the_same_request_from_the_same_principal_derives_the_same_ids() {
        let request = RequestId::new("req-1").unwrap();
        let a = command_correlation(&principal("王"), &request);
        assert_eq!(a, command_correlation(&principal("王"), &request));
        assert_ne!(a, command_correlation(&principal("李"), &request), "request ids are scoped by principal");
        assert_ne!(event_id(a, 0), event_id(a, 1));
        let id = new_complaint_id(a);
        assert_eq!(id.as_str().len(), 17);
        assert_eq!(split_lead_id(&id, 0).unwrap().as_str(), format!("{id}-2"));
    }

    #[test]
    fn request_fingerprints_keep_both_versions_of_their_derivation() {
        // Worked out independently of this code: SHA-256 over the 8-byte big-endian length
        // and the bytes of each part, the first 16 bytes made a version 8 UUID.
        let correlation = EventId::from_bytes([7; 16]);
        let asked = "电梯故障 \"三天\"".to_owned();
        let fingerprint = request_fingerprint(correlation, &asked).unwrap();
        assert_eq!(fingerprint.id.to_string(), "45c3d75a-d03e-8a77-b590-7626a9a54464", "second version: JSON");
        assert_eq!(fingerprint.legacy().to_string(), "00edcfbd-b5f8-80cc-97f1-f6ce84db5b5f", "first version: Debug");
        let other = "电梯故障".to_owned();
        let other = request_fingerprint(correlation, &other).unwrap();
        assert_ne!(other.id, fingerprint.id);
        assert_ne!(other.legacy(), fingerprint.legacy());
    }

    #[test]
    fn request_ids_must_be_printable_and_short() {
        assert!(RequestId::new("").is_err());
        assert!(RequestId::new("has space").is_err());
        assert!(RequestId::new(&"x".repeat(129)).is_err());
        assert!(RequestId::new("6f1c2a9e-8d4b-4c1e-9f3a-2b7d5e0c1a44").is_ok());
    }
}
