//! The one place where a refusal or failure becomes a gRPC status. Every status carries
//! machine-readable details: `google.rpc.ErrorInfo` (reason, domain `tousu`, metadata `rule`
//! and `field` where one is at fault), `google.rpc.BadRequest` for a field at fault, and
//! `google.rpc.PreconditionFailure` naming the rule for a command the procedure refuses now.
//!
//! Every refusal names a rule: the procedure's own refusals carry the rule that forbids the
//! command, and [`naming_rule_of`] gives every other refusal of an RPC the rule that RPC
//! serves (`crate::rules`). The reasons are one vocabulary, listed in `docs/api.md`: a field at
//! fault is `MISSING_FIELD`, `INVALID_FIELD` or `FIELD_TOO_LONG` (or a reason of its own where
//! the procedure has one, such as `PENALTY_EXTENSION_TOO_LONG`), a request that does not decode
//! is `UNDECODABLE_MESSAGE`, and a refusal with no reason of its own is named after its code.
//!
//! A message never repeats more than a short prefix of what the client sent: the values it
//! quotes are cut where they are formatted (`tousu_domain::limits::Echo`), and a message that
//! is still longer than [`MESSAGE_MAX_CHARS`], such as a parser's account of a large input,
//! is cut here.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tousu_app::AppError;
use tousu_domain::DomainError;
use tousu_domain::rule::RuleId;

/// The `ErrorInfo.domain` of every tousu error.
pub const ERROR_DOMAIN: &str = "tousu";

/// The longest message a status carries, in characters.
pub const MESSAGE_MAX_CHARS: usize = 1_000;

/// The rule of refusals made before any RPC is chosen: a call without a valid token. ACC-1 is
/// the rule of who may use the system and see what.
pub const AUTHENTICATION_RULE: RuleId = RuleId::Acc1;

/// A message cut to [`MESSAGE_MAX_CHARS`] characters.
fn bounded(message: String) -> String {
    match message.char_indices().nth(MESSAGE_MAX_CHARS) {
        None => message,
        Some((cut, _)) => format!("{}… (a message of {} characters, cut)", &message[..cut], message.chars().count()),
    }
}

/// The name of a code as a reason, for a refusal with no reason of its own: `NOT_FOUND`.
fn code_reason(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

fn with_details(code: Code, message: String, reason: &str, rule: Option<RuleId>, field: Option<&str>) -> Status {
    let message = bounded(message);
    let mut metadata = HashMap::new();
    if let Some(rule) = rule {
        metadata.insert("rule".to_owned(), rule.as_str().to_owned());
    }
    if let Some(field) = field {
        metadata.insert("field".to_owned(), field.to_owned());
    }
    let mut details = ErrorDetails::with_error_info(reason.to_uppercase(), ERROR_DOMAIN, metadata);
    if let Some(field) = field {
        details.add_bad_request_violation(field, message.clone());
    }
    if code == Code::FailedPrecondition
        && let Some(rule) = rule
    {
        details.add_precondition_failure_violation(rule.as_str(), "", message.clone());
    }
    Status::with_error_details(code, message, details)
}

fn domain_status(error: DomainError) -> Status {
    let code = match &error {
        // An extension beyond the policy's maximum is wrong whatever the case's state, like an
        // extension of 0 days (an `InvalidField`): both name the field `days`.
        DomainError::MissingField { .. }
        | DomainError::FieldTooLong { .. }
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
        // A transfer or notification to a body the lead's category does not route to
        // (`Misrouted`) is forbidden by the classification the lead already has, like every
        // other refusal of the procedure's order.
        _ => Code::FailedPrecondition,
    };
    with_details(code, error.to_string(), error.reason(), error.rule(), error.field())
}

/// The status for an application error. Refusals that are not the procedure's name no rule
/// here; [`naming_rule_of`] names the RPC's.
pub fn to_status(error: AppError) -> Status {
    match error {
        AppError::Domain(error) => domain_status(error),
        AppError::PermissionDenied { .. } => {
            with_details(Code::PermissionDenied, error.to_string(), "permission_denied", None, None)
        }
        AppError::InvalidArgument { field, .. } => {
            with_details(Code::InvalidArgument, error.to_string(), "invalid_field", None, Some(field))
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

/// A required request field that is empty, absent or an enum left unspecified.
pub fn missing(field: &'static str) -> Status {
    with_details(
        Code::InvalidArgument,
        format!("required field {field} is missing"),
        "missing_field",
        None,
        Some(field),
    )
}

/// A request field whose value is malformed, unknown or out of range.
pub fn invalid(field: &'static str, reason: impl Into<String>) -> Status {
    to_status(AppError::InvalidArgument { field, reason: reason.into() })
}

/// A request field longer than its bound.
pub fn too_long(field: &'static str, chars: usize, max: usize) -> Status {
    with_details(
        Code::InvalidArgument,
        format!("field {field} is too long: {chars} characters, at most {max}"),
        "field_too_long",
        None,
        Some(field),
    )
}

/// A request whose bytes are not the message the RPC takes: the client's fault, so
/// `INVALID_ARGUMENT` (prost's codec answers `INTERNAL`), naming the RPC's rule.
pub fn undecodable(message: &str, error: &prost::DecodeError, rule: Option<RuleId>) -> Status {
    with_details(
        Code::InvalidArgument,
        format!("the request could not be decoded as tousu.v1.{message}: {error}"),
        "undecodable_message",
        rule,
        None,
    )
}

/// A request message over the server's size limit, refused by tonic's decoder before tousu's
/// service saw it (`transport_refusals`), with tonic's message and the RPC's rule.
pub fn message_too_large(message: &str, rule: RuleId) -> Status {
    with_details(Code::OutOfRange, message.to_owned(), "message_too_large", Some(rule), None)
}

/// A call without a valid token.
pub fn unauthenticated(message: impl Into<String>) -> Status {
    with_details(Code::Unauthenticated, message.into(), "unauthenticated", Some(AUTHENTICATION_RULE), None)
}

/// A service that cannot answer now; the client may retry.
pub fn unavailable(message: impl Into<String>) -> Status {
    with_details(Code::Unavailable, message.into(), "unavailable", None, None)
}

/// A read model that cannot answer now, naming it (metadata `read_model`); `reason` says why:
/// `read_model_damaged`, `read_model_ahead_of_log` (either being rebuilt from the log), or
/// `unavailable`. The client may retry.
pub fn read_model_unavailable(read_model: &str, reason: &str, message: impl Into<String>) -> Status {
    let metadata = HashMap::from([("read_model".to_owned(), read_model.to_owned())]);
    let details = ErrorDetails::with_error_info(reason.to_uppercase(), ERROR_DOMAIN, metadata);
    Status::with_error_details(Code::Unavailable, bounded(message.into()), details)
}

/// A failure of the server's own, with no fault of the client's.
pub fn internal(message: impl Into<String>) -> Status {
    let message = message.into();
    tracing::error!(error = %message, "internal error");
    with_details(Code::Internal, message, "internal", None, None)
}

/// A request the state of the service refuses now, for a reason of its own (`reason`, e.g.
/// `rebuild_running`).
pub fn failed_precondition(reason: &str, message: impl Into<String>) -> Status {
    with_details(Code::FailedPrecondition, message.into(), reason, None, None)
}

/// `status` with `rule` named where it names none: in `ErrorInfo`'s metadata (adding an
/// `ErrorInfo`, reason named after the code, to a status that has none) and, for
/// `FAILED_PRECONDITION`, as the type of a `PreconditionFailure` violation.
pub fn naming_rule(status: Status, rule: RuleId) -> Status {
    let mut details = status.get_error_details();
    let info = details.error_info().cloned();
    if info.as_ref().is_some_and(|info| info.metadata.contains_key("rule")) {
        return status;
    }
    let (reason, mut metadata) = match info {
        Some(info) => (info.reason, info.metadata),
        None => (code_reason(status.code()).to_owned(), HashMap::new()),
    };
    metadata.insert("rule".to_owned(), rule.as_str().to_owned());
    details.set_error_info(reason, ERROR_DOMAIN, metadata);
    let message = bounded(status.message().to_owned());
    if status.code() == Code::FailedPrecondition && !details.has_precondition_failure_violations() {
        details.add_precondition_failure_violation(rule.as_str(), "", message.clone());
    }
    Status::with_error_details(status.code(), message, details)
}

/// `status`, a refusal or failure of the RPC whose request message is `T`, naming the RPC's
/// rule (`crate::rules`) where it names none.
pub fn with_rule_of<T: prost::Name>(status: Status) -> Status {
    match crate::rules::rule_of::<T>() {
        Some(rule) => naming_rule(status, rule),
        None => status,
    }
}

/// Answers an RPC whose request message is `T` with `handler`'s answer, naming the RPC's rule
/// (`crate::rules`) in a refusal that names none.
pub async fn naming_rule_of<T: prost::Name, R>(handler: impl Future<Output = Result<R, Status>>) -> Result<R, Status> {
    handler.await.map_err(with_rule_of::<T>)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_without_a_rule_is_given_the_rules_of_its_rpc() {
        let named = naming_rule(missing("channel"), RuleId::Reg1);
        let details = named.get_error_details();
        let info = details.error_info().expect("an ErrorInfo");
        assert_eq!(info.reason, "MISSING_FIELD");
        assert_eq!(info.metadata.get("rule").map(String::as_str), Some("REG-1"));
        assert_eq!(info.metadata.get("field").map(String::as_str), Some("channel"));
        assert_eq!(details.bad_request().expect("a BadRequest").field_violations[0].field, "channel");
        assert_eq!(named.message(), "required field channel is missing");
    }

    #[test]
    fn a_refusal_of_the_procedure_keeps_its_own_rule() {
        let refusal =
            to_status(AppError::Domain(DomainError::MissingField { rule: RuleId::Hdl4, field: "hotline_ticket" }));
        let named = naming_rule(refusal, RuleId::Reg1);
        let info = named.get_error_details().error_info().cloned().expect("an ErrorInfo");
        assert_eq!(info.metadata.get("rule").map(String::as_str), Some("HDL-4"));
    }

    #[test]
    fn a_status_without_details_gets_an_error_info_named_after_its_code() {
        let named = naming_rule(Status::failed_precondition("a rebuild is running"), RuleId::Acc1);
        let details = named.get_error_details();
        let info = details.error_info().expect("an ErrorInfo");
        assert_eq!((info.reason.as_str(), info.domain.as_str()), ("FAILED_PRECONDITION", ERROR_DOMAIN));
        assert_eq!(info.metadata.get("rule").map(String::as_str), Some("ACC-1"));
        let violation = &details.precondition_failure().expect("a PreconditionFailure").violations[0];
        assert_eq!(violation.r#type, "ACC-1");
    }

    #[test]
    fn a_long_message_is_cut() {
        let status = invalid("text", "x".repeat(1 << 20));
        assert!(status.message().chars().count() < MESSAGE_MAX_CHARS + 60, "{}", status.message().len());
        assert!(status.message().ends_with("characters, cut)"), "{}", &status.message()[MESSAGE_MAX_CHARS..]);
    }
}
