//! The server's connections: how many may be open, how long a new one has for its HTTP/2
//! handshake and an open one may stay without a stream, and an accept loop that outlives
//! running out of file descriptors. tonic's `Server` offers HTTP/2 keepalive and a limit on a
//! connection's streams, but none of these: without them a client that connects and says
//! nothing holds its socket forever, and an accept that fails for want of file descriptors
//! (EMFILE) is tried again at once, in a loop that spins on a core.
//!
//! [`Incoming`] accepts from the listener and gives every connection a permit from a
//! semaphore of `max_connections`; the [`Connection`] holds its permit until its socket
//! closes. A connection still in its handshake (the client's preface and first SETTINGS
//! frame not yet read) is the cheapest to give up, and the likeliest to be an attacker's, so
//! a connection that finds every permit taken takes the permit of the oldest such
//! connection, which is closed; if every open connection is past its handshake, the new one
//! is closed at once. The same happens when the process runs out of file descriptors: the
//! oldest connection in its handshake is closed to free one, and accepting pauses briefly.
//!
//! Deadlines are checked where the connection is read: HTTP/2 always has a read pending, so
//! a deadline that passes wakes the connection's task, its read fails, and the connection is
//! closed. Whether a connection has a stream is counted by [`CountStreamsLayer`], from a
//! call's arrival to the end of its response body.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::{Instant, Sleep};
use tokio_stream::Stream;
use tonic::body::Body;
use tonic::codegen::Bytes;
use tonic::codegen::http::{Request, Response};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The client connection preface every HTTP/2 connection starts with (RFC 9113, 3.4); the
/// first frame after it is the client's SETTINGS.
const CLIENT_PREFACE_LEN: usize = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".len();
/// The length of an HTTP/2 frame header: a 24-bit length, a type, flags and a stream id.
const FRAME_HEADER_LEN: usize = 9;

/// How long accepting pauses after the oldest connection in its handshake was closed to free
/// a file descriptor: long enough for that connection's task to close its socket.
const PAUSE_AFTER_FREEING: Duration = Duration::from_millis(1);
/// How long accepting pauses after a failure nothing here can remedy (no file descriptor to
/// free, no memory for a socket), rather than trying again at once.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_millis(100);

/// How often at most a warning about accepting is logged: an attack can make the same failure
/// happen thousands of times a second.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// `EMFILE` and `ENFILE`: the process or the system has no file descriptor left. The numbers
/// are the same on Linux, the BSDs and macOS.
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A warning logged at most once every [`WARN_EVERY`], counting the times it was not.
#[derive(Debug, Default)]
struct Throttled {
    last: Option<Instant>,
    unlogged: u64,
}

impl Throttled {
    /// Whether to log now; if so, how many times it was not logged since it last was.
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|last| now < last + WARN_EVERY) {
            self.unlogged += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

/// A connection still in its handshake, in the table of such connections: its permit, and
/// the sender whose drop tells it to close.
struct Handshaking {
    permit: OwnedSemaphorePermit,
    _close: oneshot::Sender<()>,
}

/// What the accept loop and the connections share: the permits, and the connections still
/// in their handshake, oldest first.
struct Gate {
    permits: Arc<Semaphore>,
    handshaking: Mutex<BTreeMap<u64, Handshaking>>,
}

impl Gate {
    /// Closes the oldest connection still in its handshake and returns its permit, if there is
    /// such a connection.
    fn close_oldest_handshaking(&self) -> Option<OwnedSemaphorePermit> {
        let (_, oldest) = lock(&self.handshaking).pop_first()?;
        Some(oldest.permit)
    }
}

/// Closes, when the server shuts down, the connections still in their handshake: they have
/// no call to finish, and would otherwise hold the graceful shutdown until their deadline.
#[derive(Clone)]
pub struct HandshakingConnections(Arc<Gate>);

impl HandshakingConnections {
    /// Closes every connection still in its handshake.
    pub fn close_all(&self) {
        let closed = std::mem::take(&mut *lock(&self.0.handshaking));
        if !closed.is_empty() {
            tracing::debug!(connections = closed.len(), "closed the connections still in their handshake");
        }
    }
}

/// The listener's connections as tonic takes them: each admitted within the limits, with its
/// deadlines. It never yields an error: failures to accept are logged and waited out here.
pub struct Incoming {
    listener: TcpListener,
    gate: Arc<Gate>,
    max_connections: usize,
    handshake_timeout: Duration,
    idle_timeout: Duration,
    next_id: u64,
    pause: Option<Pin<Box<Sleep>>>,
    /// Accepting failed.
    failing: Throttled,
    /// A connection was closed at the limit.
    at_limit: Throttled,
}

impl Incoming {
    /// Accepts from `listener`: at most `max_connections` open at once (at least one), each
    /// closed if it has not sent the HTTP/2 preface and its first SETTINGS within
    /// `handshake_timeout`, or once it has gone `idle_timeout` without a stream.
    pub fn new(
        listener: TcpListener,
        max_connections: usize,
        handshake_timeout: Duration,
        idle_timeout: Duration,
    ) -> Self {
        let max_connections = max_connections.clamp(1, Semaphore::MAX_PERMITS);
        let gate = Arc::new(Gate {
            permits: Arc::new(Semaphore::new(max_connections)),
            handshaking: Mutex::new(BTreeMap::new()),
        });
        Incoming {
            listener,
            gate,
            max_connections,
            handshake_timeout,
            idle_timeout,
            next_id: 0,
            pause: None,
            failing: Throttled::default(),
            at_limit: Throttled::default(),
        }
    }

    /// A handle that closes the connections still in their handshake.
    pub fn handshaking(&self) -> HandshakingConnections {
        HandshakingConnections(self.gate.clone())
    }

    /// Gives an accepted socket a permit (its own, or the oldest handshaking connection's),
    /// or closes it when there is none.
    fn admit(&mut self, stream: TcpStream, remote: SocketAddr) -> Option<Connection> {
        let permit = match self.gate.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => match self.gate.close_oldest_handshaking() {
                Some(permit) => {
                    tracing::debug!(%remote, "connection limit reached: closed the oldest connection in its handshake");
                    permit
                }
                None => {
                    if let Some(unlogged) = self.at_limit.due() {
                        tracing::warn!(
                            max_connections = self.max_connections,
                            closed_since_last_logged = unlogged,
                            "connection limit reached, every connection past its handshake: a new connection is closed at once (logged at most once a minute)"
                        );
                    }
                    return None;
                }
            },
        };
        // TCP_NODELAY: without it a response written in more than one piece (headers and
        // data, then trailers) waits for the client's delayed ACK, about 40 ms on Linux.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, %remote, "cannot set TCP_NODELAY");
        }
        let id = self.next_id;
        self.next_id += 1;
        let (close, closed) = oneshot::channel();
        lock(&self.gate.handshaking).insert(id, Handshaking { permit, _close: close });
        let info = ConnectionInfo {
            tcp: TcpConnectInfo { local_addr: stream.local_addr().ok(), remote_addr: Some(remote) },
            streams: Arc::new(Streams::default()),
        };
        Some(Connection {
            stream,
            info,
            gate: self.gate.clone(),
            id,
            phase: Phase::Handshake { closed, preface: Preface::default() },
            deadline: Box::pin(tokio::time::sleep(self.handshake_timeout)),
            handshake_timeout: self.handshake_timeout,
            idle_timeout: self.idle_timeout,
        })
    }

    /// What to do after a failed accept: `None` to accept again at once (the failure was the
    /// peer's, such as a connection reset before it was accepted), or how long to pause.
    fn after_failure(&mut self, error: &io::Error) -> Option<Duration> {
        if matches!(
            error.kind(),
            io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
        ) {
            return None;
        }
        if let Some(unlogged) = self.failing.due() {
            tracing::warn!(
                %error,
                failed_since_last_logged = unlogged,
                "accepting connections failed; pausing briefly and trying again (logged at most once a minute)"
            );
        }
        let out_of_descriptors = matches!(error.raw_os_error(), Some(EMFILE | ENFILE));
        if out_of_descriptors && self.gate.close_oldest_handshaking().is_some() {
            Some(PAUSE_AFTER_FREEING)
        } else {
            Some(PAUSE_AFTER_FAILURE)
        }
    }
}

impl Stream for Incoming {
    type Item = Result<Connection, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(pause) = &mut this.pause {
                ready!(pause.as_mut().poll(cx));
                this.pause = None;
            }
            // tokio's cooperative budget makes `poll_accept` return `Pending` now and then, so
            // a flood of connections closed at the limit does not hold the task forever.
            match this.listener.poll_accept(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok((stream, remote))) => {
                    if let Some(connection) = this.admit(stream, remote) {
                        return Poll::Ready(Some(Ok(connection)));
                    }
                }
                Poll::Ready(Err(error)) => {
                    if let Some(pause) = this.after_failure(&error) {
                        this.pause = Some(Box::pin(tokio::time::sleep(pause)));
                    }
                }
            }
        }
    }
}

/// How far a client's connection preface has come: the fixed preface, then the header and
/// payload of its first frame, which must be SETTINGS. The bytes are only counted: hyper
/// checks them and refuses a connection that starts otherwise.
#[derive(Debug, Default)]
struct Preface {
    read: usize,
    header: [u8; FRAME_HEADER_LEN],
}

impl Preface {
    /// Counts the next bytes the client sent; true once the preface and the whole first frame
    /// have arrived.
    fn advance(&mut self, bytes: &[u8]) -> bool {
        let header_start = CLIENT_PREFACE_LEN;
        let header_end = header_start + FRAME_HEADER_LEN;
        let (from, to) = (self.read.max(header_start), (self.read + bytes.len()).min(header_end));
        if from < to {
            self.header[from - header_start..to - header_start]
                .copy_from_slice(&bytes[from - self.read..to - self.read]);
        }
        self.read += bytes.len();
        let payload = u32::from_be_bytes([0, self.header[0], self.header[1], self.header[2]]) as usize;
        self.read >= header_end && self.read >= header_end + payload
    }
}

/// Where a connection is: in its handshake (closed when the accept loop gives its permit to
/// a newer connection, which drops `closed`'s sender), or open, holding its permit.
enum Phase {
    Handshake { closed: oneshot::Receiver<()>, preface: Preface },
    Open { _permit: OwnedSemaphorePermit },
}

/// An accepted connection: the socket, its permit, and its deadline (the handshake's, then
/// the idle one's).
pub struct Connection {
    stream: TcpStream,
    info: ConnectionInfo,
    gate: Arc<Gate>,
    id: u64,
    phase: Phase,
    deadline: Pin<Box<Sleep>>,
    handshake_timeout: Duration,
    idle_timeout: Duration,
}

/// Why a connection closed in its handshake for a newer one.
const CLOSED_FOR_NEWER: &str = "closed in its handshake for a newer connection at the connection limit";

impl Connection {
    /// Fails the read once a deadline has passed or the connection was closed for a newer
    /// one; otherwise leaves the deadline's timer armed, so that it wakes the reading task.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if let Phase::Handshake { closed, .. } = &mut self.phase
            && Pin::new(closed).poll(cx).is_ready()
        {
            return Err(io::Error::new(io::ErrorKind::ConnectionAborted, CLOSED_FOR_NEWER));
        }
        while self.deadline.as_mut().poll(cx).is_ready() {
            match &self.phase {
                Phase::Handshake { .. } => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no HTTP/2 preface and SETTINGS within {:?}", self.handshake_timeout),
                    ));
                }
                Phase::Open { .. } => match self.info.streams.idle_since() {
                    // A stream is open: look again one idle timeout from now.
                    None => self.deadline.as_mut().reset(Instant::now() + self.idle_timeout),
                    Some(since) if since + self.idle_timeout <= Instant::now() => {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("no stream for {:?}", self.idle_timeout),
                        ));
                    }
                    Some(since) => self.deadline.as_mut().reset(since + self.idle_timeout),
                },
            }
        }
        Ok(())
    }

    /// Counts bytes read during the handshake; once the preface and first SETTINGS are in,
    /// takes the connection's permit from the handshaking table and starts the idle deadline.
    fn observe(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Phase::Handshake { preface, .. } = &mut self.phase else {
            return Ok(());
        };
        if !preface.advance(bytes) {
            return Ok(());
        }
        let Some(handshaking) = lock(&self.gate.handshaking).remove(&self.id) else {
            return Err(io::Error::new(io::ErrorKind::ConnectionAborted, CLOSED_FOR_NEWER));
        };
        self.phase = Phase::Open { _permit: handshaking.permit };
        self.deadline.as_mut().reset(Instant::now() + self.idle_timeout);
        Ok(())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Phase::Handshake { .. } = self.phase {
            lock(&self.gate.handshaking).remove(&self.id);
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(cx)?;
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
        this.observe(&buf.filled()[before..])?;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Connection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// What tonic puts in every request's extensions: the addresses, and the connection's count
/// of open streams.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    tcp: TcpConnectInfo,
    streams: Arc<Streams>,
}

impl Connected for Connection {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        self.info.clone()
    }
}

/// A connection's open streams, and since when it has had none.
#[derive(Debug)]
struct Streams(Mutex<StreamCount>);

#[derive(Debug)]
struct StreamCount {
    open: usize,
    idle_since: Instant,
}

impl Default for Streams {
    fn default() -> Self {
        Streams(Mutex::new(StreamCount { open: 0, idle_since: Instant::now() }))
    }
}

impl Streams {
    /// Counts a stream as open until the returned guard drops.
    fn open(self: &Arc<Self>) -> OpenStream {
        lock(&self.0).open += 1;
        OpenStream(self.clone())
    }

    /// Since when the connection has had no stream; `None` while one is open.
    fn idle_since(&self) -> Option<Instant> {
        let count = lock(&self.0);
        (count.open == 0).then_some(count.idle_since)
    }
}

/// A stream counted as open.
#[derive(Debug)]
struct OpenStream(Arc<Streams>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        let mut count = lock(&(self.0).0);
        count.open -= 1;
        if count.open == 0 {
            count.idle_since = Instant::now();
        }
    }
}

/// Counts every call as an open stream of its connection, from its arrival until its response
/// body ends or is dropped, for the idle deadline; and puts the connection's addresses in the
/// request as tonic's own TCP incoming does, so that `Request::remote_addr` answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountStreamsLayer;

impl<S> tower::Layer<S> for CountStreamsLayer {
    type Service = CountStreams<S>;

    fn layer(&self, inner: S) -> CountStreams<S> {
        CountStreams { inner }
    }
}

/// The service of [`CountStreamsLayer`].
#[derive(Debug, Clone)]
pub struct CountStreams<S> {
    inner: S,
}

impl<S> tower::Service<Request<Body>> for CountStreams<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let info = request.extensions().get::<ConnectionInfo>().cloned();
        let open = info.map(|info| {
            request.extensions_mut().insert(info.tcp);
            info.streams.open()
        });
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(match open {
                Some(open) => response.map(|body| Body::new(CountedBody { body, _open: open })),
                None => response,
            })
        })
    }
}

/// A response body that keeps its stream counted as open until it ends or is dropped.
struct CountedBody {
    body: Body,
    _open: OpenStream,
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's preface and an empty SETTINGS frame, as every HTTP/2 client starts.
    fn preface_with_settings(payload: usize) -> Vec<u8> {
        let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        let length = (payload as u32).to_be_bytes();
        bytes.extend_from_slice(&[length[1], length[2], length[3], 0x4, 0, 0, 0, 0, 0]);
        bytes.extend(std::iter::repeat_n(0u8, payload));
        bytes
    }

    #[test]
    fn the_handshake_is_complete_with_the_preface_and_the_whole_first_settings_frame() {
        for payload in [0, 6, 18] {
            let bytes = preface_with_settings(payload);
            // In one read, and byte by byte: complete exactly at the last byte.
            assert!(Preface::default().advance(&bytes), "payload {payload} in one read");
            let mut preface = Preface::default();
            for (i, byte) in bytes.iter().enumerate() {
                let complete = preface.advance(std::slice::from_ref(byte));
                assert_eq!(complete, i + 1 == bytes.len(), "payload {payload}, byte {i}");
            }
        }
    }

    #[test]
    fn the_preface_alone_does_not_complete_the_handshake() {
        let bytes = preface_with_settings(0);
        assert!(!Preface::default().advance(&bytes[..CLIENT_PREFACE_LEN]));
        assert!(!Preface::default().advance(&bytes[..bytes.len() - 1]));
    }

    #[tokio::test]
    async fn a_connection_beyond_the_limit_takes_the_permit_of_the_oldest_in_its_handshake() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut incoming = Incoming::new(listener, 2, Duration::from_secs(60), Duration::from_secs(60));
        let mut next = async || {
            let client = TcpStream::connect(address).await.unwrap();
            let connection = std::future::poll_fn(|cx| Pin::new(&mut incoming).poll_next(cx)).await;
            (client, connection.unwrap().unwrap())
        };
        let (_first_client, mut first) = next().await;
        let (_second_client, mut second) = next().await;
        // The third is admitted, and the first, the oldest in its handshake, is closed.
        let (_third_client, _third) = next().await;
        let mut buffer = [0u8; 16];
        let read = std::future::poll_fn(|cx| {
            Pin::new(&mut first)
                .poll_read(cx, &mut ReadBuf::new(&mut buffer))
                .map(|result| result.map_err(|e| e.kind()))
        });
        assert_eq!(read.await, Err(io::ErrorKind::ConnectionAborted));
        // The second is still waiting for its handshake.
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(Pin::new(&mut second).poll_read(&mut cx, &mut ReadBuf::new(&mut buffer)).is_pending());
    }
}
