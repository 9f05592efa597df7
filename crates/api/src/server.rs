//! The gRPC server: the five tousu services (and the admin service where the projection
//! workers run) behind bearer-token authentication, standard health (answering without a
//! token) and reflection, message-size limits and per-call deadlines, and a graceful shutdown
//! that turns health to NOT_SERVING, lets in-flight calls finish, then returns so the caller
//! can close the store.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tousu_app::App;
use tousu_app::tokens::TokenRegistry;
use tousu_projection::Supervisor;
use tousu_store::EventStore;

use crate::auth::Authenticator;
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
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions { max_message_bytes: 4 * 1024 * 1024, request_timeout: Duration::from_secs(30) }
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
}

/// Serves on `listener` until `shutdown` completes; with a projection supervisor, the admin
/// service too (for operators).
pub async fn serve<S: EventStore + 'static>(
    services: Services<S>,
    listener: TcpListener,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let Services { app, tokens, supervisor, read_models } = services;
    let (reporter, health) = tonic_health::server::health_reporter();
    for service in SERVICES {
        reporter.set_service_status(service, ServingStatus::Serving).await;
    }
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
    let read = pb::read_models_server::ReadModelsServer::new(ReadModelService::new(app.clone(), read_models))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let (shutting_down, shutdown_seen) = tokio::sync::watch::channel(false);
    let audit = pb::audit_server::AuditServer::new(AuditService::new(app.clone(), shutdown_seen))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let shutdown_reporter = reporter.clone();
    let graceful = async move {
        shutdown.await;
        tracing::info!("shutting down: health NOT_SERVING, finishing in-flight calls");
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
    Server::builder()
        .timeout(options.request_timeout)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_optional_service(admin)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(InterceptedService::new(complaints, auth.clone()))
        .add_service(InterceptedService::new(enterprises, auth.clone()))
        .add_service(InterceptedService::new(queries, auth.clone()))
        .add_service(InterceptedService::new(read, auth.clone()))
        .add_service(InterceptedService::new(audit, auth))
        // TCP_NODELAY: without it a response written in more than one piece (headers and data,
        // then trailers) waits for the client's delayed ACK, about 40 ms on Linux.
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), graceful)
        .await?;
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
