//! Why the application layer refused or failed a request. The API maps each variant to one
//! gRPC code in one place.

use tousu_domain::DomainError;
use tousu_domain::actor::Role;
use tousu_store::{AppendError, ReadError, SubscriptionError};

/// A refused or failed request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The procedure refuses the command; nothing was written.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The principal's role may not do this.
    #[error("role {role} may not {action}")]
    PermissionDenied {
        /// The principal's role.
        role: Role,
        /// What was attempted.
        action: String,
    },
    /// A request field is malformed.
    #[error("field {field} is invalid: {reason}")]
    InvalidArgument {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The lead, company or stream does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// What was looked for.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// Concurrent writers kept changing the stream; gave up after the bounded retries.
    #[error("stream {stream} kept changing under {attempts} attempts; retry the request")]
    Aborted {
        /// The stream.
        stream: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The request id was already used by this principal for a different command, or for the
    /// same command with other content.
    #[error("request id {request_id:?} was already used for another request")]
    RequestIdReused {
        /// The request id as the client sent it.
        request_id: String,
    },
    /// The store cannot take writes or reads now (closed, or refusing writes after an I/O
    /// failure until reopened).
    #[error("the event store is unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back; an operator must look.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// The error with a reused request id named as the client sent it (the engine knows only
    /// the correlation derived from it).
    pub(crate) fn naming_request(self, request_id: &crate::ids::RequestId) -> AppError {
        match self {
            AppError::RequestIdReused { .. } => AppError::RequestIdReused { request_id: request_id.to_string() },
            other => other,
        }
    }
}

impl From<ReadError> for AppError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Closed => AppError::Unavailable(error.to_string()),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<SubscriptionError> for AppError {
    fn from(error: SubscriptionError) -> Self {
        match error {
            SubscriptionError::Closed => AppError::Unavailable(error.to_string()),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<AppendError> for AppError {
    fn from(error: AppendError) -> Self {
        match error {
            AppendError::PreviousIo | AppendError::Closed | AppendError::Io { .. } => {
                AppError::Unavailable(error.to_string())
            }
            other => AppError::Internal(other.to_string()),
        }
    }
}
