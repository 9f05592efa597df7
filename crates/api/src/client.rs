//! A client of the server's audit service for tools and workers in their own processes: the
//! whole log streamed from a position (catching up, then following), converted back to the
//! store's event type so the same code verifies, exports and projects it whatever the source.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tousu_projection::{EventSource, SourceError};
use tousu_store::{Actor, EventId, Position, ProposedEvent, RecordedEvent, StreamName};

use crate::pb;
use crate::pb::audit_client::AuditClient;

/// Adds the bearer token to every request.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    /// A bearer token.
    pub fn new(token: &str) -> Result<Bearer, ClientError> {
        format!("Bearer {token}").parse().map(Bearer).map_err(|_| ClientError::Token)
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// Why the client failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The token is not valid header text.
    #[error("the token is not valid header text")]
    Token,
    /// The address is not a URL.
    #[error("server address {0:?} is not valid: {1}")]
    Address(String, String),
    /// The server could not be reached.
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    /// The server answered with an error.
    #[error("the server refused: {0}")]
    Status(#[from] tonic::Status),
    /// An event from the server does not convert back.
    #[error("event at position {position} is malformed: {reason}")]
    Malformed {
        /// Its position.
        position: u64,
        /// What is wrong.
        reason: String,
    },
}

/// The audit client with the token attached.
pub type Audit = AuditClient<InterceptedService<Channel, Bearer>>;

/// Connects to a server (`http://host:port`, or `host:port`).
pub async fn connect(address: &str, token: &str) -> Result<Audit, ClientError> {
    let url = if address.contains("://") { address.to_owned() } else { format!("http://{address}") };
    let endpoint =
        Endpoint::from_shared(url.clone()).map_err(|error| ClientError::Address(url.clone(), error.to_string()))?;
    let channel = endpoint.connect().await.map_err(|error| ClientError::Connect(url, error.to_string()))?;
    Ok(AuditClient::with_interceptor(channel, Bearer::new(token)?).max_decoding_message_size(64 * 1024 * 1024))
}

/// The admin client with the token attached.
pub type Admin = crate::pb::admin_client::AdminClient<InterceptedService<Channel, Bearer>>;

/// Connects an admin client to a server (`http://host:port`, or `host:port`), with an
/// operator's token.
pub async fn connect_admin(address: &str, token: &str) -> Result<Admin, ClientError> {
    let url = if address.contains("://") { address.to_owned() } else { format!("http://{address}") };
    let endpoint =
        Endpoint::from_shared(url.clone()).map_err(|error| ClientError::Address(url.clone(), error.to_string()))?;
    let channel = endpoint.connect().await.map_err(|error| ClientError::Connect(url, error.to_string()))?;
    Ok(crate::pb::admin_client::AdminClient::with_interceptor(channel, Bearer::new(token)?))
}

/// An admin client over an already connected channel (the local admin socket, which needs no
/// token: its server gives every call the local operator's principal).
pub fn admin_over(channel: Channel) -> Admin {
    crate::pb::admin_client::AdminClient::with_interceptor(channel, Bearer(MetadataValue::from_static("Bearer local")))
}

fn instant(value: Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    let value = value?;
    DateTime::from_timestamp(value.seconds, u32::try_from(value.nanos).ok()?)
}

/// A stored event as the audit service returned it, back in the store's type.
pub fn recorded(event: pb::RecordedEvent) -> Result<RecordedEvent, ClientError> {
    let position = event.position;
    let malformed = |reason: &str| ClientError::Malformed { position, reason: reason.to_owned() };
    let id = |text: &str| tousu_store::EventId::from_str(text).map_err(|_| malformed("an id is not a UUID"));
    let hash = |bytes: Vec<u8>| <[u8; 32]>::try_from(bytes).map_err(|_| malformed("a hash is not 32 bytes"));
    let actor = event.actor.unwrap_or_default();
    Ok(RecordedEvent {
        stream: StreamName::new(event.stream).map_err(|error| malformed(&error.to_string()))?,
        revision: event.revision,
        position: Position(position),
        recorded_at: instant(event.recorded_at).ok_or_else(|| malformed("recorded_at missing"))?,
        prev_hash: hash(event.prev_hash)?,
        hash: hash(event.hash)?,
        event: ProposedEvent {
            id: id(&event.id)?,
            event_type: event.event_type,
            schema_version: u16::try_from(event.schema_version).map_err(|_| malformed("schema version too large"))?,
            occurred_at: instant(event.occurred_at).ok_or_else(|| malformed("occurred_at missing"))?,
            actor: Actor {
                person: actor.person,
                body: pb::Body::try_from(actor.body)
                    .ok()
                    .filter(|body| *body != pb::Body::Unspecified)
                    .map(|body| body.as_str_name().trim_start_matches("BODY_").to_owned())
                    .unwrap_or_default(),
                role: pb::Role::try_from(actor.role)
                    .ok()
                    .filter(|role| *role != pb::Role::Unspecified)
                    .map(|role| role.as_str_name().trim_start_matches("ROLE_").to_lowercase())
                    .unwrap_or_default(),
            },
            correlation_id: id(&event.correlation_id)?,
            causation_id: id(&event.causation_id)?,
            payload: event.payload,
        },
    })
}

/// The log of a remote server as a projection's event source, driven from a worker thread.
pub struct RemoteSource {
    runtime: tokio::runtime::Handle,
    client: Audit,
    stream: tonic::Streaming<pb::RecordedEvent>,
}

impl RemoteSource {
    /// Follows the server's log after `after` (0: from the start).
    pub fn open(runtime: tokio::runtime::Handle, client: Audit, after: u64) -> Result<RemoteSource, SourceError> {
        let mut subscriber = client.clone();
        let request = pb::StreamAllRequest { after_position: (after > 0).then_some(after), follow: true };
        let stream = runtime
            .block_on(subscriber.stream_all(request))
            .map_err(|status| SourceError::Failed(status.to_string()))?
            .into_inner();
        Ok(RemoteSource { runtime, client, stream })
    }

    /// Adds to `batch` the events that arrive with no more than `gap` between them, up to
    /// `max` in all. A zero gap takes what has already arrived: a zero timeout still polls
    /// the stream once.
    async fn take_arrived(
        stream: &mut tonic::Streaming<pb::RecordedEvent>,
        batch: &mut Vec<pb::RecordedEvent>,
        max: usize,
        gap: std::time::Duration,
    ) -> Result<(), SourceError> {
        while batch.len() < max {
            match tokio::time::timeout(gap, stream.message()).await {
                Ok(Ok(Some(event))) => batch.push(event),
                Ok(Ok(None)) | Err(_) => break,
                Ok(Err(status)) => return Err(SourceError::Failed(status.to_string())),
            }
        }
        Ok(())
    }

    fn decode(batch: Vec<pb::RecordedEvent>) -> Result<Vec<RecordedEvent>, SourceError> {
        batch.into_iter().map(|event| recorded(event).map_err(|error| SourceError::Failed(error.to_string()))).collect()
    }
}

impl EventSource for RemoteSource {
    fn next_batch(&mut self, max: usize) -> Result<Vec<RecordedEvent>, SourceError> {
        let stream = &mut self.stream;
        let batch = self.runtime.block_on(async {
            let mut batch = Vec::new();
            // Wait for the first event a while, then take what is already there.
            let first = tokio::time::timeout(std::time::Duration::from_millis(500), stream.message()).await;
            match first {
                Err(_elapsed) => return Ok(batch),
                Ok(Ok(Some(event))) => batch.push(event),
                Ok(Ok(None)) => return Err(SourceError::Closed("the server ended the stream".into())),
                Ok(Err(status)) => return Err(SourceError::Failed(status.to_string())),
            }
            // A log read from the start streams without pause: a millisecond's gap ends a batch.
            Self::take_arrived(stream, &mut batch, max, std::time::Duration::from_millis(1)).await?;
            Ok(batch)
        })?;
        Self::decode(batch)
    }

    /// What has arrived since, so that a worker following the log gathers a steady stream of
    /// events into large batches, as it does on the server's own log.
    fn more(&mut self, max: usize) -> Result<Vec<RecordedEvent>, SourceError> {
        let stream = &mut self.stream;
        let batch = self.runtime.block_on(async {
            let mut batch = Vec::new();
            Self::take_arrived(stream, &mut batch, max, std::time::Duration::ZERO).await?;
            Ok::<_, SourceError>(batch)
        })?;
        Self::decode(batch)
    }

    fn head(&mut self) -> Result<u64, SourceError> {
        let mut client = self.client.clone();
        self.runtime
            .block_on(client.get_head(pb::GetHeadRequest {}))
            .map(|response| response.into_inner().position)
            .map_err(|status| SourceError::Failed(status.to_string()))
    }
}

/// A factory of remote sources for the projection runtime.
pub fn remote_source_factory(runtime: tokio::runtime::Handle, client: Audit) -> tousu_projection::SourceFactory {
    std::sync::Arc::new(move |after| {
        RemoteSource::open(runtime.clone(), client.clone(), after)
            .map(|source| Box::new(source) as Box<dyn EventSource>)
    })
}

/// An event id's text, checked (for tools that take ids on the command line).
pub fn event_id(text: &str) -> Option<EventId> {
    EventId::from_str(text).ok()
}
