//! The one place where a refusal or failure becomes a gRPC status. Every status carries
//! machine-readable details: `google.rpc.ErrorInfo` (reason, domain `tousu`, metadata `rule`
//! and `field` where known), `google.rpc.BadRequest` for a field at fault, and
//! `google.rpc.PreconditionFailure` naming the rule for a command out of order.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tousu_app::AppError;
use tousu_domain::DomainError;

/// The `ErrorInfo.domain` of every tousu error.
pub const ERROR_DOMAIN: &str = "tousu";

fn with_details(code: Code, message: String, reason: &str, rule: Option<String>, field: Option<&str>) -> Status {
    let mut metadata = HashMap::new();
    if let Some(rule) = &rule {
        metadata.insert("rule".to_owned(), rule.clone());
    }
    if let Some(field) = field {
        metadata.insert("field".to_owned(), field.to_owned());
    }
    let mut details = ErrorDetails::with_error_info(reason.to_uppercase(), ERROR_DOMAIN, metadata);
    if let Some(field) = field {
        details.add_bad_request_violation(field, message.clone());
    }
    if code == Code::FailedPrecondition {
        details.add_precondition_failure_violation(rule.unwrap_or_default(), "", message.clone());
    }
    Status::with_error_details(code, message, details)
}

fn domain_status(error: DomainError) -> Status {
    let code = match &error {
        // An extension beyond the policy's maximum is wrong whatever the case's state, like an
        // extension of 0 days (an `InvalidField`): both name the field `days`.
        DomainError::MissingField { .. }
        | DomainError::InvalidField { .. }
        | DomainError::PenaltyExtensionTooLong { .. } => Code::InvalidArgument,
        // Interpretation 21: a year file that is not valid is the request's fault; a second,
        // different schedule for a year is a conflict with what is in force.
        DomainError::Schedule { source: tousu_domain::calendar::CalendarError::YearAlreadyOfficial { .. } } => {
            Code::FailedPrecondition
        }
        DomainError::Schedule { .. } => Code::InvalidArgument,
        DomainError::WrongBody { .. } => Code::PermissionDenied,
        DomainError::NotFound { .. } => Code::NotFound,
        DomainError::AlreadyExists { .. } => Code::AlreadyExists,
        _ => Code::FailedPrecondition,
    };
    let rule = error.rule().map(|rule| rule.as_str().to_owned());
    with_details(code, error.to_string(), error.reason(), rule, error.field())
}

/// The status for an application error.
pub fn to_status(error: AppError) -> Status {
    match error {
        AppError::Domain(error) => domain_status(error),
        AppError::PermissionDenied { .. } => {
            with_details(Code::PermissionDenied, error.to_string(), "permission_denied", None, None)
        }
        AppError::InvalidArgument { field, .. } => {
            with_details(Code::InvalidArgument, error.to_string(), "invalid_argument", None, Some(field))
        }
        AppError::NotFound { .. } => with_details(Code::NotFound, error.to_string(), "not_found", None, None),
        AppError::Aborted { .. } => with_details(Code::Aborted, error.to_string(), "conflict", None, None),
        AppError::RequestIdReused { .. } => {
            with_details(Code::InvalidArgument, error.to_string(), "request_id_reused", None, Some("request_id"))
        }
        AppError::Unavailable(_) => with_details(Code::Unavailable, error.to_string(), "unavailable", None, None),
        other => {
            tracing::error!(error = %other, "internal error");
            with_details(Code::Internal, other.to_string(), "internal", None, None)
        }
    }
}

/// An invalid request field, as a status.
pub fn invalid(field: &'static str, reason: impl Into<String>) -> Status {
    to_status(AppError::InvalidArgument { field, reason: reason.into() })
}
