//! Why a command is refused. Every refusal names the rule that forbids it and, where one is
//! at fault, the field; nothing is written when a command is refused.

use std::fmt;

use chrono::{DateTime, FixedOffset};

use crate::calendar::{CalendarError, CalendarVersion};
use crate::deadline::{DeadlineKind, EscalationLevel};
use crate::ids::BodyCode;
use crate::rule::RuleId;
use crate::taxonomy::CategoryCode;

/// Something the procedure requires before a command may be carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Requirement {
    /// A classification (category, urgency, complexity).
    Classification,
    /// The body's acceptance of the transfer.
    Acceptance,
    /// A recorded finding, substantiated or not (interpretation 8).
    Finding,
    /// Feedback to the complainant in the current round of handling (HDL-1).
    FeedbackToComplainant,
    /// Feedback to the 12345 hotline (HDL-4).
    FeedbackToHotline,
    /// Feedback of the penalty outcome to the transferring body (PEN-1).
    FeedbackToTransferringBody,
    /// A verified penalty lead (PEN-1).
    PenaltyVerification,
    /// A penalty lead verified as warranting a case (PEN-1).
    WarrantedPenaltyCase,
    /// A filed penalty case (PEN-1).
    PenaltyCase,
    /// The penalty decision (PEN-1).
    PenaltyDecision,
    /// A plan for a major matter (HDL-2).
    Plan,
    /// The signature of the handling body on the closure (HDL-3).
    ClosureSignature,
    /// The street office's or community's countersignature on the closure (HDL-3).
    Countersignature,
    /// A complete closure (HDL-3, HDL-4).
    Closure,
    /// A condition recorded on the company's stream (interpretation 16).
    CompanyCondition,
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Requirement::Classification => "a classification",
            Requirement::Acceptance => "the body's acceptance",
            Requirement::Finding => "a recorded finding",
            Requirement::FeedbackToComplainant => "feedback to the complainant",
            Requirement::FeedbackToHotline => "feedback to the 12345 hotline",
            Requirement::FeedbackToTransferringBody => "feedback to the transferring body",
            Requirement::PenaltyVerification => "a verified penalty lead",
            Requirement::WarrantedPenaltyCase => "a penalty lead verified as warranting a case",
            Requirement::PenaltyCase => "a filed penalty case",
            Requirement::PenaltyDecision => "the penalty decision",
            Requirement::Plan => "a plan",
            Requirement::ClosureSignature => "the handling body's signature",
            Requirement::Countersignature => "the street office's countersignature",
            Requirement::Closure => "a complete closure",
            Requirement::CompanyCondition => "the condition recorded on the company",
        })
    }
}

/// A refused command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// A required field is empty or absent.
    #[error("{rule}: required field {field} is missing")]
    MissingField {
        /// The rule that requires the field.
        rule: RuleId,
        /// The field, as the API names it.
        field: &'static str,
    },
    /// A text field is longer than its bound in [`crate::limits`].
    #[error("{rule}: field {field} is too long: {chars} characters, at most {max}")]
    FieldTooLong {
        /// The rule of the command that carries the field.
        rule: RuleId,
        /// The field, as the API names it.
        field: &'static str,
        /// Its length in characters (Unicode scalar values).
        chars: usize,
        /// The most characters it may have.
        max: usize,
    },
    /// A field has a value the procedure does not allow.
    #[error("{rule}: field {field} is invalid: {reason}")]
    InvalidField {
        /// The rule that constrains the field.
        rule: RuleId,
        /// The field, as the API names it.
        field: &'static str,
        /// What is wrong with the value.
        reason: String,
    },
    /// The command is not possible in the current state of the stream.
    #[error("{rule}: {command} is not possible while the {subject} is {state}")]
    WrongState {
        /// The rule that orders the steps.
        rule: RuleId,
        /// The refused command.
        command: &'static str,
        /// `lead` or `company`.
        subject: &'static str,
        /// The state that forbids it.
        state: &'static str,
    },
    /// The procedure requires something first.
    #[error("{rule}: {command} needs {requirement} first")]
    Unmet {
        /// The rule that requires it.
        rule: RuleId,
        /// The refused command.
        command: &'static str,
        /// What is missing.
        requirement: Requirement,
    },
    /// The acting body is not the one the procedure makes responsible.
    #[error("{rule}: body {acting} may not {command} here: {}", responsible_text(*.responsible))]
    WrongBody {
        /// The rule that makes another body responsible.
        rule: RuleId,
        /// The refused command.
        command: &'static str,
        /// The body that tried.
        acting: BodyCode,
        /// The body that is responsible, if any is yet.
        responsible: Option<BodyCode>,
    },
    /// The body a transfer or an urgent notification names is not the one the lead's
    /// classification calls for (TRF-1, TRF-3): the category, recorded before, decides the
    /// body, so the lead's state forbids any other.
    #[error("{rule}: the lead's category {category} calls for {expected} in {field}, not {given}")]
    Misrouted {
        /// The rule that decides the body.
        rule: RuleId,
        /// The field naming the body, as the API names it.
        field: &'static str,
        /// The lead's category.
        category: CategoryCode,
        /// The body the category calls for.
        expected: BodyCode,
        /// The body the command named.
        given: BodyCode,
    },
    /// PEN-1 allows one extension only.
    #[error("PEN-1: the penalty period was already extended once (approved by {approved_by})")]
    PenaltyAlreadyExtended {
        /// Who approved the first extension.
        approved_by: String,
    },
    /// PEN-1 allows at most 30 days (by default) of extension.
    #[error("PEN-1: an extension of {asked} days exceeds the {max} days allowed")]
    PenaltyExtensionTooLong {
        /// Days asked for.
        asked: u32,
        /// Days allowed by the policy.
        max: u32,
    },
    /// A deadline referred to is not open on this stream.
    #[error("ACC-2: deadline #{seq} is not open on this stream")]
    DeadlineNotOpen {
        /// The sequence number given.
        seq: u32,
    },
    /// The deadline has not reached the level asked for.
    #[error("ACC-2: deadline #{seq} ({kind}, due {due}) has not reached level {} at {at}", level.as_str())]
    NotEscalable {
        /// The deadline.
        seq: u32,
        /// Its kind.
        kind: DeadlineKind,
        /// Its due instant.
        due: DateTime<FixedOffset>,
        /// The level asked for.
        level: EscalationLevel,
        /// The instant of the decision.
        at: DateTime<FixedOffset>,
    },
    /// The level was already recorded for this deadline.
    #[error("ACC-2: deadline #{seq} was already escalated to {}", level.as_str())]
    AlreadyEscalated {
        /// The deadline.
        seq: u32,
        /// The level already recorded.
        level: EscalationLevel,
    },
    /// Interpretation 9: no recommendation to refer is recorded for the deadline.
    #[error("ACC-2: deadline #{seq} carries no recommendation to refer to the discipline organ")]
    NoReferralRecommendation {
        /// The deadline given.
        seq: u32,
    },
    /// Interpretation 9: the recommendation was already referred or dismissed.
    #[error("ACC-2: the recommendation to refer for deadline #{seq} was already decided: {}", decision.as_str())]
    ReferralAlreadyDecided {
        /// The deadline.
        seq: u32,
        /// The decision recorded.
        decision: crate::obligations::ReferralDecision,
    },
    /// Interpretation 21: only a provisional due instant is recomputed.
    #[error("{rule}: deadline #{seq} is not provisional: its due instant rests on official calendar data")]
    NotProvisional {
        /// The deadline.
        seq: u32,
        /// The rule that set it.
        rule: RuleId,
    },
    /// Interpretation 21: the calendar gives the same provisional due instant as before.
    #[error("{rule}: deadline #{seq} is still provisional with the same data ({calendar}); nothing to recompute")]
    RecomputationUnchanged {
        /// The deadline.
        seq: u32,
        /// The rule that set it.
        rule: RuleId,
        /// The calendar versions it still rests on.
        calendar: CalendarVersion,
    },
    /// Interpretation 21: a year's official holiday schedule cannot be loaded (the file is not
    /// valid, or the year already has another schedule).
    #[error("the holiday schedule cannot be loaded: {source}")]
    Schedule {
        /// What is wrong with it.
        source: CalendarError,
    },
    /// The stream already holds a lead or company; registration cannot repeat.
    #[error("{rule}: the stream already exists")]
    AlreadyExists {
        /// The rule of the creating command.
        rule: RuleId,
    },
    /// The command needs an existing lead or company.
    #[error("{rule}: the {subject} does not exist")]
    NotFound {
        /// The rule of the refused command.
        rule: RuleId,
        /// `lead` or `company`.
        subject: &'static str,
    },
    /// A deadline could not be computed, e.g. for a year with no calendar data.
    #[error("{rule}: deadline cannot be computed: {source}")]
    Calendar {
        /// The rule whose deadline it is.
        rule: RuleId,
        /// The calendar's refusal.
        source: CalendarError,
    },
}

fn responsible_text(responsible: Option<BodyCode>) -> String {
    match responsible {
        Some(body) => format!("the responsible body is {body}"),
        None => "no body is responsible yet".to_owned(),
    }
}

impl DomainError {
    /// The rule the refusal names.
    pub fn rule(&self) -> Option<RuleId> {
        match self {
            DomainError::MissingField { rule, .. }
            | DomainError::FieldTooLong { rule, .. }
            | DomainError::InvalidField { rule, .. }
            | DomainError::Misrouted { rule, .. }
            | DomainError::NotFound { rule, .. }
            | DomainError::WrongState { rule, .. }
            | DomainError::Unmet { rule, .. }
            | DomainError::WrongBody { rule, .. }
            | DomainError::AlreadyExists { rule }
            | DomainError::NotProvisional { rule, .. }
            | DomainError::RecomputationUnchanged { rule, .. }
            | DomainError::Calendar { rule, .. } => Some(*rule),
            DomainError::PenaltyAlreadyExtended { .. } | DomainError::PenaltyExtensionTooLong { .. } => {
                Some(RuleId::Pen1)
            }
            DomainError::DeadlineNotOpen { .. }
            | DomainError::NotEscalable { .. }
            | DomainError::AlreadyEscalated { .. }
            | DomainError::NoReferralRecommendation { .. }
            | DomainError::ReferralAlreadyDecided { .. } => Some(RuleId::Acc2),
            // Interpretation 21's schedules belong to no rule of the catalogue: the API names the
            // rule of the request that carried the file.
            DomainError::Schedule { .. } => None,
        }
    }

    /// The field at fault, where one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            DomainError::MissingField { field, .. }
            | DomainError::FieldTooLong { field, .. }
            | DomainError::InvalidField { field, .. }
            | DomainError::Misrouted { field, .. } => Some(field),
            DomainError::PenaltyExtensionTooLong { .. } => Some("days"),
            DomainError::Schedule { .. } => Some("text"),
            _ => None,
        }
    }

    /// A stable, machine-readable name for the kind of refusal.
    pub fn reason(&self) -> &'static str {
        match self {
            DomainError::MissingField { .. } => "missing_field",
            DomainError::FieldTooLong { .. } => "field_too_long",
            DomainError::InvalidField { .. } => "invalid_field",
            DomainError::Misrouted { .. } => "misrouted",
            DomainError::WrongState { .. } => "wrong_state",
            DomainError::Unmet { .. } => "unmet_requirement",
            DomainError::WrongBody { .. } => "wrong_body",
            DomainError::PenaltyAlreadyExtended { .. } => "penalty_already_extended",
            DomainError::PenaltyExtensionTooLong { .. } => "penalty_extension_too_long",
            DomainError::DeadlineNotOpen { .. } => "deadline_not_open",
            DomainError::NotEscalable { .. } => "not_escalable",
            DomainError::AlreadyEscalated { .. } => "already_escalated",
            DomainError::NoReferralRecommendation { .. } => "no_referral_recommendation",
            DomainError::ReferralAlreadyDecided { .. } => "referral_already_decided",
            DomainError::NotProvisional { .. } => "not_provisional",
            DomainError::RecomputationUnchanged { .. } => "recomputation_unchanged",
            DomainError::AlreadyExists { .. } => "already_exists",
            DomainError::NotFound { .. } => "not_found",
            DomainError::Calendar { .. } => "calendar",
            DomainError::Schedule { source: CalendarError::YearAlreadyOfficial { .. } } => "year_already_official",
            DomainError::Schedule { .. } => "invalid_schedule",
        }
    }
}
