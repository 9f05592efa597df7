//! The gRPC server: the five tousu services (and the admin service where the projection
//! workers run) behind bearer-token authentication, standard health (answering without a
//! token) and reflection, message-size limits and per-call deadlines, limits on connections
//! (`connections`), health that turns NOT_SERVING while the event store refuses writes, and a
//! graceful shutdown that turns health to NOT_SERVING, lets in-flight calls finish, then
//! returns so the caller can close the store.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tousu_app::App;
use tousu_app::tokens::TokenRegistry;
use tousu_projection::Supervisor;
use tousu_store::EventStore;

use crate::auth::Authenticator;
use crate::connections::{CountStreamsLayer, Incoming};
use crate::pb;
use crate::read::ReadModels;
use crate::services::{
    AdminService, AuditService, ComplaintService, EnterpriseService, QueryService, ReadModelService,
};

/// Limits of the server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The largest request or response message, in bytes.
    pub max_message_bytes: usize,
    /// The longest a unary call may take before it is cancelled with `Cancelled`/`DeadlineExceeded`.
    pub request_timeout: Duration,
    /// The most TCP connections open at once. A connection beyond it takes the place of the
    /// oldest connection still in its handshake, or is closed at once when there is none.
    pub max_connections: usize,
    /// How long a new connection has to send the HTTP/2 preface and its first SETTINGS.
    pub handshake_timeout: Duration,
    /// How long a connection may stay open without a call (a stream).
    pub idle_timeout: Duration,
    /// How long a connection may be silent before the server pings it (HTTP/2 PING).
    pub keepalive_interval: Duration,
    /// How long the server waits for a ping's answer before it closes the connection.
    pub keepalive_timeout: Duration,
    /// The most calls (streams) one connection may have open at once, announced to the client
    /// as SETTINGS_MAX_CONCURRENT_STREAMS.
    pub max_concurrent_streams: u32,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_message_bytes: 4 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            max_connections: 1000,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5 * 60),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(20),
            max_concurrent_streams: 200,
        }
    }
}

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The reflection service could not be built from the descriptor set.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The local admin socket could not be created.
    #[error("admin socket {0}: {1}")]
    Socket(std::path::PathBuf, std::io::Error),
}

/// The names of the services health reports on, besides the whole server ("").
const SERVICES: [&str; 5] = [
    pb::complaint_commands_server::SERVICE_NAME,
    pb::enterprise_commands_server::SERVICE_NAME,
    pb::queries_server::SERVICE_NAME,
    pb::audit_server::SERVICE_NAME,
    pb::read_models_server::SERVICE_NAME,
];

/// What the server serves.
pub struct Services<S> {
    /// Commands and stream queries.
    pub app: Arc<App<S>>,
    /// Bearer tokens.
    pub tokens: Arc<TokenRegistry>,
    /// The read models' workers, when they run in this process: the admin service serves them.
    pub supervisor: Option<Arc<Supervisor>>,
    /// The read models, for list and read-model queries.
    pub read_models: Arc<ReadModels>,
    /// The key that signs settled weeks' history anchors served with the weekly summary.
    pub anchor_signer: Option<Arc<tousu_read_weekly_summary::signing::AnchorSigner>>,
}

/// Serves on `listener` until `shutdown` completes; with a projection supervisor, the admin
/// service too (for operators).
pub async fn serve<S: EventStore + 'static>(
    services: Services<S>,
    listener: TcpListener,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let Services { app, tokens, supervisor, read_models, anchor_signer } = services;
    let (reporter, health) = tonic_health::server::health_reporter();
    for service in SERVICES {
        reporter.set_service_status(service, ServingStatus::Serving).await;
    }
    // Health tells the truth: a store that refuses writes until it is reopened takes no
    // command, so the server and every service are NOT_SERVING from that moment (the node
    // then stops, so that a supervisor restarts it and the store reopens).
    let mut refusal = app.store().write_refusal();
    let refusal_reporter = reporter.clone();
    let refusal_watch = tokio::spawn(async move {
        let Ok(Some(reason)) = refusal.wait_for(Option::is_some).await.map(|reason| reason.clone()) else {
            return;
        };
        tracing::error!(%reason, "the event store refuses writes: health NOT_SERVING");
        refusal_reporter.set_service_status("", ServingStatus::NotServing).await;
        for service in SERVICES {
            refusal_reporter.set_service_status(service, ServingStatus::NotServing).await;
        }
    });
    // Both reflection versions: grpcurl and most tools ask for v1, older clients for v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let auth = Authenticator::new(tokens);
    let limit = options.max_message_bytes;
    let complaints = pb::complaint_commands_server::ComplaintCommandsServer::new(ComplaintService::new(app.clone()))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let enterprises =
        pb::enterprise_commands_server::EnterpriseCommandsServer::new(EnterpriseService::new(app.clone()))
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit);
    let queries = pb::queries_server::QueriesServer::new(QueryService::new(app.clone(), read_models.clone()))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let read = pb::read_models_server::ReadModelsServer::new(
        ReadModelService::new(app.clone(), read_models).with_anchor_signer(anchor_signer),
    )
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);
    let (shutting_down, shutdown_seen) = tokio::sync::watch::channel(false);
    let audit = pb::audit_server::AuditServer::new(AuditService::new(app.clone(), shutdown_seen))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let incoming = Incoming::new(listener, options.max_connections, options.handshake_timeout, options.idle_timeout);
    let handshaking = incoming.handshaking();
    let shutdown_reporter = reporter.clone();
    let graceful = async move {
        shutdown.await;
        tracing::info!("shutting down: health NOT_SERVING, finishing in-flight calls");
        // A connection still in its handshake has no call to finish.
        handshaking.close_all();
        shutdown_reporter.set_service_status("", ServingStatus::NotServing).await;
        for service in SERVICES {
            shutdown_reporter.set_service_status(service, ServingStatus::NotServing).await;
        }
        // Following audit streams end now; otherwise the graceful shutdown would wait for them
        // forever.
        let _ = shutting_down.send(true);
    };
    let node: Arc<dyn crate::services::NodeOperations> = app.clone();
    let admin = supervisor.map(|supervisor| {
        InterceptedService::new(pb::admin_server::AdminServer::new(AdminService::new(supervisor, node)), auth.clone())
    });
    let served = Server::builder()
        .timeout(options.request_timeout)
        .http2_keepalive_interval(Some(options.keepalive_interval))
        .http2_keepalive_timeout(Some(options.keepalive_timeout))
        .max_concurrent_streams(options.max_concurrent_streams)
        .layer(CountStreamsLayer)
        .layer(crate::transport_refusals::NameTransportRefusalsLayer::new())
        .add_optional_service(admin)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(InterceptedService::new(complaints, auth.clone()))
        .add_service(InterceptedService::new(enterprises, auth.clone()))
        .add_service(InterceptedService::new(queries, auth.clone()))
        .add_service(InterceptedService::new(read, auth.clone()))
        .add_service(InterceptedService::new(audit, auth))
        // The incoming connections set TCP_NODELAY, and hold the connection limit and the
        // handshake and idle deadlines (`connections`).
        .serve_with_incoming_shutdown(incoming, graceful)
        .await;
    refusal_watch.abort();
    served?;
    Ok(())
}

/// Gives every request of the local admin socket the local operator's principal.
#[derive(Clone)]
struct LocalOperator;

impl tonic::service::Interceptor for LocalOperator {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.extensions_mut().insert(tousu_app::Principal::local_operator());
        Ok(request)
    }
}

/// Serves the admin service without a token on a Unix socket at `path` (created readable and
/// writable by the owner only), until `shutdown` completes: operators on the machine manage
/// projections through it while the server holds the data directory.
pub async fn serve_local_admin(
    path: &std::path::Path,
    supervisor: Arc<Supervisor>,
    node: Arc<dyn crate::services::NodeOperations>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path).map_err(|error| ServeError::Socket(path.to_owned(), error))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|error| ServeError::Socket(path.to_owned(), error))?;
    }
    let admin =
        InterceptedService::new(pb::admin_server::AdminServer::new(AdminService::new(supervisor, node)), LocalOperator);
    Server::builder()
        .add_service(admin)
        .serve_with_incoming_shutdown(tokio_stream::wrappers::UnixListenerStream::new(listener), shutdown)
        .await?;
    let _ = std::fs::remove_file(path);
    Ok(())
}
