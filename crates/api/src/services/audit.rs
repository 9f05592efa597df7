//! `tousu.v1.Audit`: the stored log for the discipline commission (ACC-1) and for workers in
//! their own processes. A refusal, and a failure that ends a stream, names ACC-1 where it names
//! no rule of its own (`crate::rules`).

use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tousu_app::{App, AppError};
use tousu_domain::limits::Echo;
use tousu_store::{
    BrokenLinkKind, Direction, EventStore, Position, ReadFrom, StreamFrom, StreamName, Subscription, SubscriptionError,
    VerifyReport, verify_all, verify_stream,
};

use crate::auth::principal;
use crate::pb;
use crate::pb::audit_server::Audit;
use crate::status::{invalid, missing, naming_rule_of, to_status, unavailable, with_rule_of};
use crate::views::recorded_event;

/// Events read per batch of a stream read or a catch-up.
const BATCH: usize = 512;
/// Events a slow streaming client may have in flight before the sender waits for it. The
/// sender waits on its own task only, and the subscription reads from the log as the client
/// takes events, so a slow client costs this much memory and never stalls the server.
const STREAM_BUFFER: usize = 256;

/// The audit service.
pub struct AuditService<S> {
    app: Arc<App<S>>,
    shutting_down: watch::Receiver<bool>,
}

impl<S> AuditService<S> {
    /// A service over the application. When `shutting_down` turns true, following streams end
    /// with `Unavailable`: a graceful shutdown waits for every open call, and a follower's call
    /// would otherwise never end, since its subscription closes only with the store, after the
    /// server has stopped.
    pub fn new(app: Arc<App<S>>, shutting_down: watch::Receiver<bool>) -> Self {
        AuditService { app, shutting_down }
    }
}

fn stream_name(text: &str) -> Result<StreamName, Status> {
    if text.is_empty() {
        return Err(missing("stream"));
    }
    // The store's own message repeats the whole name; this one only its first characters.
    StreamName::new(text).map_err(|_| {
        invalid("stream", format!("{} is not a stream name: 1 to 256 bytes of A-Z a-z 0-9 . _ : @ -", Echo(text)))
    })
}

fn verify_response(report: VerifyReport, last_position: u64) -> pb::VerifyResponse {
    pb::VerifyResponse {
        intact: report.is_intact(),
        events_checked: report.events_checked,
        streams_checked: report.streams_checked,
        first_broken: report.first_broken.map(|broken| pb::BrokenLink {
            stream: broken.stream.as_str().to_owned(),
            revision: broken.revision,
            position: broken.position.0,
            problem: match broken.kind {
                BrokenLinkKind::HashMismatch { .. } => {
                    "hash mismatch: the event was altered after it was recorded".to_owned()
                }
                BrokenLinkKind::PrevHashMismatch { .. } => {
                    "previous-hash mismatch: the chain is broken here".to_owned()
                }
                BrokenLinkKind::RevisionOutOfOrder { expected } => {
                    format!("revision out of order: expected {expected}")
                }
                BrokenLinkKind::PositionNotIncreasing { previous } => {
                    format!("position does not increase on {}", previous.0)
                }
                other => format!("{other:?}"),
            },
        }),
        last_position,
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::RecordedEvent, Status>> + Send>>;

#[tonic::async_trait]
impl<S: EventStore + 'static> Audit for AuditService<S> {
    type StreamAllStream = EventStream;

    async fn read_stream(
        &self,
        request: Request<pb::ReadStreamRequest>,
    ) -> Result<Response<pb::ReadStreamResponse>, Status> {
        naming_rule_of::<pb::ReadStreamRequest, _>(self.read(request)).await
    }

    async fn stream_all(&self, request: Request<pb::StreamAllRequest>) -> Result<Response<EventStream>, Status> {
        naming_rule_of::<pb::StreamAllRequest, _>(self.stream(request)).await
    }

    async fn get_head(&self, request: Request<pb::GetHeadRequest>) -> Result<Response<pb::GetHeadResponse>, Status> {
        naming_rule_of::<pb::GetHeadRequest, _>(async {
            let principal = principal(&request)?;
            principal.check_read_log().map_err(to_status)?;
            let head = self.app.store().head().await.map_err(|error| to_status(AppError::from(error)))?;
            Ok(Response::new(pb::GetHeadResponse { position: head.map_or(0, |position| position.0) }))
        })
        .await
    }

    async fn verify(&self, request: Request<pb::VerifyRequest>) -> Result<Response<pb::VerifyResponse>, Status> {
        naming_rule_of::<pb::VerifyRequest, _>(self.verify_chains(request)).await
    }
}

impl<S: EventStore + 'static> AuditService<S> {
    async fn read(&self, request: Request<pb::ReadStreamRequest>) -> Result<Response<pb::ReadStreamResponse>, Status> {
        let principal = principal(&request)?;
        principal.check_read_log().map_err(to_status)?;
        let m = request.into_inner();
        let stream = stream_name(&m.stream)?;
        let limit = match m.limit {
            0 => 100,
            limit if limit > 1000 => return Err(invalid("limit", "at most 1000")),
            limit => limit as usize,
        };
        let (direction, from) = match (m.backwards, m.from_revision) {
            (false, None) => (Direction::Forwards, StreamFrom::Start),
            (true, None) => (Direction::Backwards, StreamFrom::End),
            (false, Some(revision)) => (Direction::Forwards, StreamFrom::Revision(revision)),
            (true, Some(revision)) => (Direction::Backwards, StreamFrom::Revision(revision)),
        };
        let events = self
            .app
            .store()
            .read_stream(&stream, direction, from, limit)
            .await
            .map_err(|error| to_status(AppError::from(error)))?;
        Ok(Response::new(pb::ReadStreamResponse { events: events.iter().map(recorded_event).collect() }))
    }

    async fn stream(&self, request: Request<pb::StreamAllRequest>) -> Result<Response<EventStream>, Status> {
        let principal = principal(&request)?;
        principal.check_read_log().map_err(to_status)?;
        let m = request.into_inner();
        let from = match m.after_position {
            Some(position) => ReadFrom::After(Position(position)),
            None => ReadFrom::Start,
        };
        let store = self.app.store().clone();
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
        if m.follow {
            let mut subscription = store.subscribe_all(from).await.map_err(|error| to_status(AppError::from(error)))?;
            let mut shutting_down = self.shutting_down.clone();
            tokio::spawn(async move {
                loop {
                    let next = tokio::select! {
                        next = subscription.next_batch(BATCH) => next,
                        _ = shutting_down.wait_for(|stopping| *stopping) => Err(SubscriptionError::Closed),
                    };
                    let batch = match next {
                        Ok(batch) => batch,
                        Err(SubscriptionError::Closed) => {
                            let closing = unavailable("the server is shutting down");
                            let _ = sender.send(Err(with_rule_of::<pb::StreamAllRequest>(closing))).await;
                            return;
                        }
                        Err(error) => {
                            let failure = to_status(AppError::from(error));
                            let _ = sender.send(Err(with_rule_of::<pb::StreamAllRequest>(failure))).await;
                            return;
                        }
                    };
                    for event in &batch {
                        if sender.send(Ok(recorded_event(event))).await.is_err() {
                            return;
                        }
                    }
                }
            });
        } else {
            tokio::spawn(async move {
                let mut from = from;
                loop {
                    let batch = match store.read_all(from, BATCH).await {
                        Ok(batch) => batch,
                        Err(error) => {
                            let failure = to_status(AppError::from(error));
                            let _ = sender.send(Err(with_rule_of::<pb::StreamAllRequest>(failure))).await;
                            return;
                        }
                    };
                    let done = batch.len() < BATCH;
                    for event in &batch {
                        if sender.send(Ok(recorded_event(event))).await.is_err() {
                            return;
                        }
                    }
                    match batch.last() {
                        Some(last) if !done => from = ReadFrom::After(last.position),
                        _ => return,
                    }
                }
            });
        }
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn verify_chains(&self, request: Request<pb::VerifyRequest>) -> Result<Response<pb::VerifyResponse>, Status> {
        let principal = principal(&request)?;
        principal.check_verify().map_err(to_status)?;
        let m = request.into_inner();
        let store = self.app.store();
        let head = store.head().await.map_err(|error| to_status(AppError::from(error)))?;
        let report = if m.stream.is_empty() {
            verify_all(store.as_ref()).await
        } else {
            verify_stream(store.as_ref(), &stream_name(&m.stream)?).await
        }
        .map_err(|error| to_status(AppError::Internal(error.to_string())))?;
        Ok(Response::new(verify_response(report, head.map_or(0, |position| position.0))))
    }
}
