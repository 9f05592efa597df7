//! Events as projections see them: decoded once from the stored envelope into the domain's
//! event types, with the envelope fields a read model needs. Projections see events, never
//! commands.

use chrono::{DateTime, Utc};
use tousu_domain::complaint::ComplaintEvent;
use tousu_domain::enterprise::EnterpriseEvent;
use tousu_domain::ids::{ComplaintId, Uscc};
use tousu_domain::weekly_report::{STREAM as WEEKLY_STREAM, WeeklyEvent};
use tousu_store::RecordedEvent;

/// The decoded payload.
#[derive(Debug, Clone)]
pub enum Payload {
    /// An event of a lead's stream.
    Complaint {
        /// The lead.
        lead: ComplaintId,
        /// The event.
        event: Box<ComplaintEvent>,
    },
    /// An event of a company's stream.
    Enterprise {
        /// The company.
        uscc: Uscc,
        /// The event.
        event: Box<EnterpriseEvent>,
    },
    /// A weekly summary issued to the discipline commission (interpretation 26).
    Weekly {
        /// The event.
        event: Box<WeeklyEvent>,
    },
    /// An event no read model knows (or cannot decode); it still counts for the checkpoint
    /// and the history anchor.
    Other,
}

/// One event of the log for the read models.
#[derive(Debug, Clone)]
pub struct ProjectedEvent {
    /// Its global position.
    pub position: u64,
    /// Its stream.
    pub stream: String,
    /// Its revision in the stream.
    pub revision: u64,
    /// Its type.
    pub event_type: String,
    /// When the server recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Its hash in the stream's chain.
    pub hash: [u8; 32],
    /// The actor's body, as stored.
    pub actor_body: String,
    /// The decoded payload.
    pub payload: Payload,
}

/// Decodes a JSON payload, checking its UTF-8 once, whole, before parsing it as text: the
/// payloads carry long Chinese strings, which the parser of bytes checks piece by piece.
fn decode_json<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, serde_json::Error> {
    match std::str::from_utf8(payload) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(payload),
    }
}

impl ProjectedEvent {
    /// Decodes a stored event.
    pub fn decode(recorded: &RecordedEvent) -> ProjectedEvent {
        let stream = recorded.stream.as_str();
        let payload = if let Some(id) = stream.strip_prefix("complaint-") {
            match (id.parse(), decode_json::<ComplaintEvent>(&recorded.event.payload)) {
                (Ok(lead), Ok(event)) => Payload::Complaint { lead, event: Box::new(event) },
                (_, Err(error)) => {
                    tracing::error!(position = recorded.position.0, %error, "lead event does not decode");
                    Payload::Other
                }
                (Err(_), _) => Payload::Other,
            }
        } else if let Some(code) = stream.strip_prefix("enterprise-") {
            match (code.parse(), decode_json::<EnterpriseEvent>(&recorded.event.payload)) {
                (Ok(uscc), Ok(event)) => Payload::Enterprise { uscc, event: Box::new(event) },
                (_, Err(error)) => {
                    tracing::error!(position = recorded.position.0, %error, "company event does not decode");
                    Payload::Other
                }
                (Err(_), _) => Payload::Other,
            }
        } else if stream == WEEKLY_STREAM {
            match decode_json::<WeeklyEvent>(&recorded.event.payload) {
                Ok(event) => Payload::Weekly { event: Box::new(event) },
                Err(error) => {
                    tracing::error!(position = recorded.position.0, %error, "weekly summary event does not decode");
                    Payload::Other
                }
            }
        } else {
            Payload::Other
        };
        ProjectedEvent {
            position: recorded.position.0,
            stream: stream.to_owned(),
            revision: recorded.revision,
            event_type: recorded.event.event_type.clone(),
            recorded_at: recorded.recorded_at,
            hash: recorded.hash,
            actor_body: recorded.event.actor.body.clone(),
            payload,
        }
    }
}
