//! A subscription to the store's events of `$all`, on a KurrentDB catch-up subscription.
//!
//! The subscription remembers the position of the last event the server sent it. When the
//! server subscription fails (the node went away, a leader election, the server dropped a
//! slow subscriber), it opens a new one after that position, so nothing is missed, and it
//! skips anything at or before it, so nothing is delivered twice; after a number of
//! consecutive failures the retry policy allows, it reports the error.
//!
//! It is pull-based: the server subscription's next message is awaited only while the
//! consumer pulls, and that pending await is kept across calls (never dropped half-way,
//! which would lose the message or cost a resubscription), so `next` and `next_batch` are
//! cancel-safe as the trait requires: events are moved into the buffer before anything
//! else is awaited, and a dropped pull leaves them there. What the server sends ahead is
//! bounded by gRPC's flow control; the subscription itself buffers only the events of one
//! pull. Once the store is closed it reads the log up to the head at closing, delivers
//! that, and ends.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use kurrentdb::SubscriptionEvent;
use tokio::sync::watch;
use tousu_store::{ReadError, RecordedEvent, Subscription, SubscriptionError};

use crate::backend::{DrainLimit, Inner, original};
use crate::error::{Failure, io_error, is_transient};
use crate::position::{StartAfter, to_kurrent};

/// How many events a closed store's subscription reads at a time.
const DRAIN_PAGE: usize = 256;

/// The server subscription, handed back with the message it was awaiting.
type Pending =
    Pin<Box<dyn Future<Output = (kurrentdb::Subscription, kurrentdb::Result<SubscriptionEvent>)> + Send + 'static>>;

/// What one message of the server subscription amounted to.
enum Received {
    /// An event (delivered or left out) or a control message.
    Message,
    /// The server subscription failed; it is dropped.
    Failed(kurrentdb::Error),
    /// The event sent is not a tousu event; the server subscription is dropped, so the
    /// next pull meets the event again.
    Corrupt(Failure),
}

/// A subscription to a [`crate::KurrentStore`]'s log.
pub struct KurrentSubscription {
    inner: Arc<Inner>,
    /// The last event the server sent (delivered or left out); everything at or before it
    /// has been dealt with.
    after: StartAfter,
    /// Events received and not yet delivered, in order.
    buffer: VecDeque<RecordedEvent>,
    /// The server subscription between two messages.
    idle: Option<kurrentdb::Subscription>,
    /// The server subscription while a message is awaited.
    pending: Option<Pending>,
    /// The generation of the client the server subscription runs on.
    generation: u64,
    closed: watch::Receiver<Option<DrainLimit>>,
    /// Consecutive failures of the server subscription.
    failures: u32,
}

impl KurrentSubscription {
    pub(crate) fn new(inner: Arc<Inner>, after: StartAfter) -> Self {
        let closed = inner.drain_limit.subscribe();
        Self { inner, after, buffer: VecDeque::new(), idle: None, pending: None, generation: 0, closed, failures: 0 }
    }

    /// Awaits the next message of the idle server subscription, or of a new one after
    /// `after` on the current client (whose generation goes to `generation`).
    fn open(inner: &Inner, idle: Option<kurrentdb::Subscription>, after: StartAfter, generation: &mut u64) -> Pending {
        let subscription = match idle {
            Some(subscription) => Ok(subscription),
            None => {
                let (current, client) = inner.connection.client();
                *generation = current;
                Err((client, inner.subscribe_options(after)))
            }
        };
        Box::pin(async move {
            let mut subscription = match subscription {
                Ok(subscription) => subscription,
                Err((client, options)) => client.subscribe_to_all(&options).await,
            };
            let message = subscription.next_subscription_event().await;
            (subscription, message)
        })
    }

    fn take(
        &mut self,
        subscription: kurrentdb::Subscription,
        message: kurrentdb::Result<SubscriptionEvent>,
    ) -> Received {
        let resolved = match message {
            Ok(SubscriptionEvent::EventAppeared(resolved)) => resolved,
            Ok(_) => {
                self.idle = Some(subscription);
                return Received::Message;
            }
            Err(error) => return Received::Failed(error),
        };
        self.failures = 0;
        if let Some(event) = original(&resolved)
            && self.after.admits(event.position)
        {
            if self.inner.namespace.admits(event.stream_id(), &event.event_type) {
                match self.inner.decode(event) {
                    Ok(recorded) => self.buffer.push_back(recorded),
                    Err(failure) => return Received::Corrupt(failure),
                }
            }
            self.after = StartAfter(Some(event.position));
        }
        self.idle = Some(subscription);
        Received::Message
    }

    /// Waits for the server subscription's next message, or for the store to close.
    async fn receive(&mut self) -> Result<(), SubscriptionError> {
        let inner = &self.inner;
        let idle = &mut self.idle;
        let generation = &mut self.generation;
        let after = self.after;
        let pending = self.pending.get_or_insert_with(|| Self::open(inner, idle.take(), after, generation));
        let (subscription, message) = tokio::select! {
            biased;
            _ = self.closed.changed() => return Ok(()),
            done = pending => done,
        };
        self.pending = None;
        match self.take(subscription, message) {
            Received::Message => Ok(()),
            Received::Corrupt(failure) => Err(SubscriptionError::Read(failure.into())),
            Received::Failed(error) if is_transient(&error) && self.inner.retry.allows_retry_after(self.failures) => {
                self.inner.connection.renew_after(self.generation, &error);
                let pause = self.inner.retry.backoff(self.failures);
                self.failures += 1;
                tracing::warn!(%error, ?pause, "kurrentdb: subscription dropped; resubscribing after the last event received");
                tokio::time::sleep(pause).await;
                Ok(())
            }
            Received::Failed(error) => {
                self.failures = 0;
                Err(SubscriptionError::Read(ReadError::Io(io_error(error))))
            }
        }
    }

    /// Takes the server subscription's next message if it has already arrived; whether
    /// one did and the subscription goes on.
    async fn receive_ready(&mut self) -> bool {
        if self.closed.borrow().is_some() {
            return false;
        }
        let inner = &self.inner;
        let idle = &mut self.idle;
        let generation = &mut self.generation;
        let after = self.after;
        let pending = self.pending.get_or_insert_with(|| Self::open(inner, idle.take(), after, generation));
        let ready = std::future::poll_fn(|cx| {
            Poll::Ready(match pending.as_mut().poll(cx) {
                Poll::Ready(done) => Some(done),
                Poll::Pending => None,
            })
        })
        .await;
        let Some((subscription, message)) = ready else { return false };
        self.pending = None;
        // A failure is left to the next pull, after the events already received.
        matches!(self.take(subscription, message), Received::Message)
    }

    /// Reads the events up to the head at closing into the buffer; `Closed` once there
    /// are none left.
    async fn drain(&mut self, limit: DrainLimit) -> Result<(), SubscriptionError> {
        self.pending = None;
        self.idle = None;
        let head = match limit {
            DrainLimit::Head(None) => return Err(SubscriptionError::Closed),
            DrainLimit::Head(Some(head)) => Some(head),
            DrainLimit::WholeLog => None,
        };
        let events =
            self.inner.read_log(self.after, DRAIN_PAGE).await.map_err(|f| SubscriptionError::Read(f.into()))?;
        for event in events {
            if head.is_some_and(|head| event.position > head) {
                break;
            }
            self.after = StartAfter(Some(to_kurrent(event.position)));
            self.buffer.push_back(event);
        }
        if self.buffer.is_empty() { Err(SubscriptionError::Closed) } else { Ok(()) }
    }

    /// Waits until the buffer holds an event.
    async fn fill(&mut self) -> Result<(), SubscriptionError> {
        while self.buffer.is_empty() {
            let limit = *self.closed.borrow_and_update();
            match limit {
                Some(limit) => self.drain(limit).await?,
                None => self.receive().await?,
            }
        }
        Ok(())
    }
}

impl Subscription for KurrentSubscription {
    async fn next(&mut self) -> Result<RecordedEvent, SubscriptionError> {
        self.fill().await?;
        Ok(self.buffer.pop_front().expect("fill leaves an event in the buffer"))
    }

    async fn next_batch(&mut self, max: usize) -> Result<Vec<RecordedEvent>, SubscriptionError> {
        let max = max.max(1);
        self.fill().await?;
        while self.buffer.len() < max && self.receive_ready().await {}
        let take = max.min(self.buffer.len());
        Ok(self.buffer.drain(..take).collect())
    }
}
