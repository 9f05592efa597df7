//! A refused call as a client sees it: the status code and the machine-readable details
//! tousu attaches (`google.rpc.ErrorInfo` with metadata `rule` and `field`,
//! `google.rpc.BadRequest` field violations), with assertions that print the whole status
//! when they fail.

use std::fmt::Debug;

use tonic::{Code, Response, Status};
use tonic_types::StatusExt as _;

/// What a refusal carries.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The status code.
    pub code: Code,
    /// The message.
    pub message: String,
    /// `ErrorInfo.reason`, if any.
    pub reason: Option<String>,
    /// `ErrorInfo.domain`, if any.
    pub domain: Option<String>,
    /// `ErrorInfo.metadata["rule"]`, if any.
    pub rule: Option<String>,
    /// `ErrorInfo.metadata["field"]`, if any.
    pub field: Option<String>,
    /// The fields of `BadRequest` violations.
    pub bad_request_fields: Vec<String>,
    /// The types of `PreconditionFailure` violations (tousu puts the rule there).
    pub precondition_types: Vec<String>,
}

impl Refusal {
    /// Reads a status and its details.
    pub fn of(status: &Status) -> Refusal {
        let details = status.get_error_details();
        let info = details.error_info();
        Refusal {
            code: status.code(),
            message: status.message().to_owned(),
            reason: info.map(|info| info.reason.clone()),
            domain: info.map(|info| info.domain.clone()),
            rule: info.and_then(|info| info.metadata.get("rule").cloned()),
            field: info.and_then(|info| info.metadata.get("field").cloned()),
            bad_request_fields: details
                .bad_request()
                .map(|bad| bad.field_violations.iter().map(|v| v.field.clone()).collect())
                .unwrap_or_default(),
            precondition_types: details
                .precondition_failure()
                .map(|failure| failure.violations.iter().map(|v| v.r#type.clone()).collect())
                .unwrap_or_default(),
        }
    }

    /// Asserts the code.
    #[track_caller]
    pub fn code(&self, code: Code) -> &Self {
        assert_eq!(self.code, code, "status code of {self:#?}");
        self
    }

    /// Asserts that `ErrorInfo` names the rule, and that a `FailedPrecondition` names it in
    /// its `PreconditionFailure` too.
    #[track_caller]
    pub fn rule(&self, rule: &str) -> &Self {
        assert_eq!(self.rule.as_deref(), Some(rule), "ErrorInfo rule of {self:#?}");
        if self.code == Code::FailedPrecondition {
            assert!(self.precondition_types.iter().any(|t| t == rule), "PreconditionFailure of {self:#?}");
        }
        self
    }

    /// Asserts `ErrorInfo`'s reason.
    #[track_caller]
    pub fn reason(&self, reason: &str) -> &Self {
        assert_eq!(self.reason.as_deref(), Some(reason), "ErrorInfo reason of {self:#?}");
        self
    }

    /// Asserts that `ErrorInfo` is tousu's and names a rule, whichever.
    #[track_caller]
    pub fn names_a_rule(&self) -> &Self {
        assert_eq!(self.domain.as_deref(), Some("tousu"), "ErrorInfo domain of {self:#?}");
        let rule = self.rule.as_deref().unwrap_or_else(|| panic!("ErrorInfo names no rule: {self:#?}"));
        self.rule(rule)
    }

    /// Asserts that `ErrorInfo` and a `BadRequest` violation both name the field.
    #[track_caller]
    pub fn field(&self, field: &str) -> &Self {
        assert_eq!(self.field.as_deref(), Some(field), "ErrorInfo field of {self:#?}");
        assert!(self.bad_request_fields.iter().any(|f| f == field), "BadRequest of {self:#?}");
        self
    }

    /// Asserts the message mentions `text`.
    #[track_caller]
    pub fn mentions(&self, text: &str) -> &Self {
        assert!(self.message.contains(text), "message should mention {text:?}: {self:#?}");
        self
    }
}

/// The refusal of a call that must have been refused.
#[track_caller]
pub fn refused<T: Debug>(result: Result<Response<T>, Status>) -> Refusal {
    match result {
        Ok(response) => panic!("expected a refusal, the call succeeded: {:?}", response.get_ref()),
        Err(status) => Refusal::of(&status),
    }
}

/// The answer of a call that must have succeeded.
#[track_caller]
pub fn ok<T>(result: Result<Response<T>, Status>, what: &str) -> T {
    match result {
        Ok(response) => response.into_inner(),
        Err(status) => panic!("{what} failed: {:#?}", Refusal::of(&status)),
    }
}
