//! The lead (线索): one complaint or report about a property-management company, from
//! registration through classification, transfer, handling, closure and city review
//! (REG, TRF, HDL, PEN, ACC-2).
//!
//! `decide` checks a command against the lead's state and the procedure and returns the
//! events that record it; `evolve` folds an event into the state. Both are pure.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta};
use serde::{Deserialize, Serialize};

use crate::actor::Role;
use crate::calendar::Period;
use crate::context::Context;
use crate::deadline::{ClosedHow, Deadline, DeadlineClosure, DeadlineKind, DueBasis, EscalationLevel};
use crate::error::{DomainError, Requirement};
use crate::identity::ComplainantKey;
use crate::ids::{BodyCode, ComplaintId, Uscc};
use crate::limits::{
    COMPANY_NAME_MAX_CHARS, CONTACT_MAX_CHARS, CONTENT_MAX_CHARS, ID_NUMBER_MAX_CHARS, PERSON_NAME_MAX_CHARS,
    PLACE_MAX_CHARS, REFERENCE_MAX_CHARS, TEXT_MAX_CHARS, amount, required_within, within,
};
use crate::obligations::{EscalationFact, Obligations, ReferralDecision};
use crate::rule::RuleId;
use crate::taxonomy::CategoryCode;

/// The channel a lead came in by (REG-2: every channel enters one system).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The published complaint telephone line.
    Hotline,
    /// The published complaint mailbox.
    Mailbox,
    /// Transferred by the 12345 government service hotline (HDL-4).
    #[serde(rename = "hotline_12345")]
    Hotline12345,
    /// In person.
    WalkIn,
    /// Imported from another system.
    Import,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 5] =
        [Channel::Hotline, Channel::Mailbox, Channel::Hotline12345, Channel::WalkIn, Channel::Import];

    /// The channel's name in the API and read models.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Hotline => "hotline",
            Channel::Mailbox => "mailbox",
            Channel::Hotline12345 => "hotline_12345",
            Channel::WalkIn => "walk_in",
            Channel::Import => "import",
        }
    }
}

/// Who complained (REG-1, interpretation 19).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Complainant {
    /// A complainant who gave their name and contact.
    Named {
        /// 投诉人姓名.
        name: String,
        /// 联系方式: a telephone number, address or e-mail.
        contact: String,
        /// The ID number, where given; the strongest identity key (interpretation 2).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id_number: Option<String>,
    },
    /// A lead registered as anonymous (举报): no name or contact is required.
    Anonymous,
}

/// The company complained about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyRef {
    /// 统一社会信用代码.
    pub uscc: Uscc,
    /// The company's name.
    pub name: String,
}

/// Where the matter is: the residential community (小区) and its district and street.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    /// The residential community.
    pub community: String,
    /// The district (区).
    pub district: String,
    /// The street (街道) or township.
    pub street: String,
}

/// What the ledger records of a lead (REG-1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// How the lead came in.
    pub channel: Channel,
    /// 投诉时间: when the complaint was received.
    #[serde(deserialize_with = "crate::calendar::deserialize_instant")]
    pub received_at: DateTime<FixedOffset>,
    /// Who complained.
    pub complainant: Complainant,
    /// 投诉内容.
    pub content: String,
    /// The company complained about; none for a lead in an unmanaged community (失管小区) or
    /// about a matter that concerns no company, which then counts against none
    /// (interpretation 22). Every lead registered before that interpretation names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<CompanyRef>,
    /// Where.
    pub place: Place,
    /// The 12345 work-order number, required for leads from the 12345 hotline (HDL-4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotline_ticket: Option<String>,
}

/// Whether a lead endangers the use of a building or personal safety (TRF-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// Urgent: acted on at once (TRF-1).
    Urgent,
    /// Not urgent: transferred within the TRF-2 period.
    Normal,
}

/// General or major (including complex) matter (HDL-1, HDL-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Complexity {
    /// A general matter: closed within 7 days of receipt.
    General,
    /// A major or complex matter: resolved within a month, or planned.
    Major,
}

/// How a transfer was made (TRF-2: in writing or through the system).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferMethod {
    /// A written transfer.
    Written,
    /// Through the transfer system.
    System,
}

/// The handling body's finding (interpretation 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// 属实.
    Substantiated,
    /// 不属实.
    Unsubstantiated,
}

/// Interpretation 22: the handling body's decision, against its category's default, on whether
/// a substantiated lead is the company's responsibility (属企业责任), with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    /// Whether the matter is the company's responsibility.
    pub attributable: bool,
    /// Why the category's default does not hold for this lead.
    pub reason: String,
}

/// What made a major matter owe a plan (HDL-2, interpretation 25).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanCause {
    /// The body declared that the matter cannot be resolved within the month.
    Declared,
    /// The body submitted its plan after the first 7 days without having declared: the plan
    /// deadline is opened and met late by the same command.
    SubmittedLate,
    /// The month ended with the matter open and no plan: the plan deadline is missed, and the
    /// miss is recorded with it.
    MonthEnded,
}

/// Who receives feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackRecipient {
    /// The complainant (HDL-1, HDL-2, PEN-1).
    Complainant,
    /// The 12345 hotline (HDL-4).
    #[serde(rename = "hotline_12345")]
    Hotline12345,
    /// The body that transferred the lead, 住建 (PEN-1).
    TransferringBody,
}

/// The outcome of verifying a penalty lead (PEN-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PenaltyVerification {
    /// The facts warrant a penalty case.
    CaseWarranted,
    /// No case: the facts do not warrant a penalty.
    NoCase,
}

/// The penalty decision (PEN-1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PenaltyDecision {
    /// A penalty was imposed.
    Imposed {
        /// The decision as written.
        description: String,
        /// The fine in fen (0.01 yuan), if any.
        fine_fen: u64,
    },
    /// No penalty after investigation.
    NotImposed {
        /// Why not.
        reason: String,
    },
}

/// The city-level review of a closure (HDL-3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReviewOutcome {
    /// 审核销号: the case is cancelled (closed for good).
    Cancelled,
    /// Sent back to the handling body.
    SentBack {
        /// Why.
        reason: String,
    },
}

/// The complainant's answer to the 12345 follow-up call (HDL-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Satisfaction {
    /// 满意.
    Satisfied,
    /// 不满意: the lead is reopened with the same body (interpretation 18).
    Dissatisfied,
}

/// A linked lead to split off at classification (interpretation 15).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitRequest {
    /// The new lead's identifier.
    pub lead: ComplaintId,
    /// Its category, which must route to a body no other part of the complaint goes to.
    pub category: String,
}

/// A linked lead as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitLead {
    /// The linked lead.
    pub lead: ComplaintId,
    /// Its category.
    pub category: CategoryCode,
    /// Its body (TRF-3).
    pub body: BodyCode,
}

/// A command on a lead.
/// Serialisable so that a request's fingerprint can hash what it asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum ComplaintCommand {
    /// REG-1: register a lead in the ledger.
    Register {
        /// The new lead's identifier.
        id: ComplaintId,
        /// What the ledger records.
        registration: Registration,
    },
    /// TRF-1, TRF-3, interpretation 15: classify, optionally splitting off linked leads.
    Classify {
        /// The category code, e.g. `ZJ-1-3`.
        category: String,
        /// Urgent or not.
        urgency: Urgency,
        /// General or major.
        complexity: Complexity,
        /// Linked leads for matters of other bodies.
        split: Vec<SplitRequest>,
    },
    /// Interpretation 15: open a linked lead split off another at its classification.
    OpenSplitLead {
        /// The new lead's identifier.
        id: ComplaintId,
        /// The lead it was split from.
        parent: ComplaintId,
        /// The parent's registration.
        registration: Registration,
        /// When the parent was registered: the TRF-2 clock runs from there.
        registered_at: DateTime<FixedOffset>,
        /// The linked lead's category.
        category: String,
        /// Urgent or not.
        urgency: Urgency,
        /// General or major.
        complexity: Complexity,
    },
    /// TRF-1: notify the responsible body of an urgent lead and report to 区委、区政府.
    NotifyUrgent {
        /// The body notified: the street office for 住建 matters, else the category's body.
        notified_body: BodyCode,
        /// The emergency measures started.
        emergency_measures: String,
        /// The report made to 区委、区政府 at the same time.
        district_report: String,
    },
    /// TRF-2: transfer the lead to its body.
    Transfer {
        /// The receiving body; must be the category's body (TRF-3).
        to: BodyCode,
        /// In writing or through the system.
        method: TransferMethod,
        /// A covering note.
        note: String,
    },
    /// The body acknowledges the transfer (签收).
    Accept,
    /// The body returns a misrouted transfer, with a reason (退回).
    ReturnTransfer {
        /// Why the lead is not this body's.
        reason: String,
    },
    /// Interpretation 27: 住建 reviews a returned transfer: accepted (misrouted: 住建 re-routes
    /// it, the TRF-2 lateness is 住建's), or rejected (the body must handle it; the return counts
    /// against it as buck-passing, 推诿).
    ReviewReturn {
        /// Whether the return is accepted.
        accept: bool,
        /// Why.
        reason: String,
    },
    /// Interpretation 17: the body re-grades a general matter as major.
    Regrade {
        /// Why.
        reason: String,
    },
    /// HDL-2, interpretation 25: the body declares that a major matter cannot be resolved
    /// within the month, and so owes a plan within the first 7 days.
    DeclarePlanNeeded {
        /// Why the matter cannot be resolved within the month.
        reason: String,
    },
    /// HDL-2: a timeline and plan for a major matter.
    SubmitPlan {
        /// The plan.
        plan: String,
        /// The date the plan commits to resolving the matter by.
        resolve_by: NaiveDate,
    },
    /// HDL-2: the monthly progress report to the complainant and 住建.
    ReportProgress {
        /// What has been done.
        summary: String,
    },
    /// Interpretation 8: the body's finding.
    RecordFinding {
        /// Substantiated or not.
        finding: Finding,
        /// The facts found.
        summary: String,
        /// Interpretation 22: the body's decision on the company's responsibility where it
        /// departs from the category's default; none to take the default.
        attribution: Option<Attribution>,
    },
    /// Feedback to the complainant, the 12345 hotline or the transferring body.
    GiveFeedback {
        /// Who receives it.
        recipient: FeedbackRecipient,
        /// What was said.
        content: String,
    },
    /// PEN-1: a penalty lead discovered or received.
    OpenPenaltyMatter {
        /// When it was discovered or received: the 15 working days run from here.
        received_at: DateTime<FixedOffset>,
    },
    /// PEN-1: the penalty lead is verified.
    VerifyPenaltyMatter {
        /// Case warranted or not.
        outcome: PenaltyVerification,
        /// The verification's findings.
        summary: String,
    },
    /// PEN-1, interpretation 11: the penalty case is filed (立案).
    FilePenaltyCase {
        /// The case number.
        case_number: String,
    },
    /// PEN-1: one extension, approved by the body's head.
    ExtendPenaltyPeriod {
        /// Days of extension; at most 30 by default.
        days: u32,
        /// The head who approved it.
        approved_by: String,
    },
    /// PEN-1: the penalty decision.
    DecidePenalty {
        /// The decision.
        decision: PenaltyDecision,
    },
    /// HDL-3: the handling body signs the closure opinion.
    SignClosure {
        /// 办结意见.
        opinion: String,
    },
    /// HDL-3: the street office or the community it entrusts countersigns the closure of a
    /// matter 住建 handles directly.
    CountersignClosure {
        /// Its opinion.
        opinion: String,
    },
    /// HDL-3: the city level reviews the closure.
    ReviewClosure {
        /// Cancelled or sent back.
        outcome: ReviewOutcome,
    },
    /// HDL-4: the 12345 satisfaction follow-up.
    RecordSatisfaction {
        /// The complainant's answer.
        satisfaction: Satisfaction,
        /// Notes of the call.
        comment: String,
    },
    /// ACC-2: the deadline reactor records that an open deadline reached a rung of the ladder.
    Escalate {
        /// The deadline.
        seq: u32,
        /// The rung.
        level: EscalationLevel,
    },
    /// Interpretation 21: the deadline reactor recomputes a provisional due instant once the
    /// official schedule of a year it looked at is loaded.
    RecomputeDeadline {
        /// The deadline.
        seq: u32,
    },
    /// ACC-2, interpretation 9 (amended): a 住建 official refers the body recommended for
    /// referral to the discipline organ, or dismisses the recommendation.
    DecideReferral {
        /// The deadline whose recommendation is decided.
        seq: u32,
        /// Referred or dismissed.
        decision: ReferralDecision,
        /// Why.
        reason: String,
    },
}

impl ComplaintCommand {
    /// The command's name in errors, logs and the API.
    pub fn name(&self) -> &'static str {
        match self {
            ComplaintCommand::Register { .. } => "register",
            ComplaintCommand::Classify { .. } => "classify",
            ComplaintCommand::OpenSplitLead { .. } => "open_split_lead",
            ComplaintCommand::NotifyUrgent { .. } => "notify_urgent",
            ComplaintCommand::Transfer { .. } => "transfer",
            ComplaintCommand::Accept => "accept",
            ComplaintCommand::ReturnTransfer { .. } => "return_transfer",
            ComplaintCommand::ReviewReturn { .. } => "review_return",
            ComplaintCommand::Regrade { .. } => "regrade",
            ComplaintCommand::DeclarePlanNeeded { .. } => "declare_plan_needed",
            ComplaintCommand::SubmitPlan { .. } => "submit_plan",
            ComplaintCommand::ReportProgress { .. } => "report_progress",
            ComplaintCommand::RecordFinding { .. } => "record_finding",
            ComplaintCommand::GiveFeedback { .. } => "give_feedback",
            ComplaintCommand::OpenPenaltyMatter { .. } => "open_penalty_matter",
            ComplaintCommand::VerifyPenaltyMatter { .. } => "verify_penalty_matter",
            ComplaintCommand::FilePenaltyCase { .. } => "file_penalty_case",
            ComplaintCommand::ExtendPenaltyPeriod { .. } => "extend_penalty_period",
            ComplaintCommand::DecidePenalty { .. } => "decide_penalty",
            ComplaintCommand::SignClosure { .. } => "sign_closure",
            ComplaintCommand::CountersignClosure { .. } => "countersign_closure",
            ComplaintCommand::ReviewClosure { .. } => "review_closure",
            ComplaintCommand::RecordSatisfaction { .. } => "record_satisfaction",
            ComplaintCommand::Escalate { .. } => "escalate",
            ComplaintCommand::RecomputeDeadline { .. } => "recompute_deadline",
            ComplaintCommand::DecideReferral { .. } => "decide_referral",
        }
    }

    /// The rule the command belongs to. A refusal that is not about a rule of its own (the
    /// lead does not exist) names it, and so does the API for a request it cannot turn into
    /// the command.
    pub fn rule(&self) -> RuleId {
        match self {
            ComplaintCommand::Register { .. } => RuleId::Reg1,
            ComplaintCommand::Classify { .. }
            | ComplaintCommand::OpenSplitLead { .. }
            | ComplaintCommand::ReturnTransfer { .. }
            | ComplaintCommand::ReviewReturn { .. } => RuleId::Trf3,
            ComplaintCommand::NotifyUrgent { .. } => RuleId::Trf1,
            ComplaintCommand::Transfer { .. } | ComplaintCommand::Accept => RuleId::Trf2,
            ComplaintCommand::Regrade { .. }
            | ComplaintCommand::DeclarePlanNeeded { .. }
            | ComplaintCommand::SubmitPlan { .. }
            | ComplaintCommand::ReportProgress { .. } => RuleId::Hdl2,
            ComplaintCommand::GiveFeedback { .. } => RuleId::Hdl1,
            ComplaintCommand::RecordFinding { .. }
            | ComplaintCommand::SignClosure { .. }
            | ComplaintCommand::CountersignClosure { .. }
            | ComplaintCommand::ReviewClosure { .. } => RuleId::Hdl3,
            ComplaintCommand::OpenPenaltyMatter { .. }
            | ComplaintCommand::VerifyPenaltyMatter { .. }
            | ComplaintCommand::FilePenaltyCase { .. }
            | ComplaintCommand::ExtendPenaltyPeriod { .. }
            | ComplaintCommand::DecidePenalty { .. } => RuleId::Pen1,
            ComplaintCommand::RecordSatisfaction { .. } => RuleId::Hdl4,
            ComplaintCommand::Escalate { .. }
            | ComplaintCommand::RecomputeDeadline { .. }
            | ComplaintCommand::DecideReferral { .. } => RuleId::Acc2,
        }
    }

    /// Whether a role may issue the command at all. Which lead a body may act on is
    /// decided by `decide`.
    pub fn permitted(&self, role: Role) -> bool {
        match self {
            ComplaintCommand::Register { .. }
            | ComplaintCommand::Classify { .. }
            | ComplaintCommand::OpenSplitLead { .. }
            | ComplaintCommand::NotifyUrgent { .. }
            | ComplaintCommand::Transfer { .. } => role == Role::Registrar,
            ComplaintCommand::Accept
            | ComplaintCommand::ReturnTransfer { .. }
            | ComplaintCommand::Regrade { .. }
            | ComplaintCommand::DeclarePlanNeeded { .. }
            | ComplaintCommand::SubmitPlan { .. }
            | ComplaintCommand::ReportProgress { .. }
            | ComplaintCommand::RecordFinding { .. }
            | ComplaintCommand::GiveFeedback { .. }
            | ComplaintCommand::OpenPenaltyMatter { .. }
            | ComplaintCommand::VerifyPenaltyMatter { .. }
            | ComplaintCommand::FilePenaltyCase { .. }
            | ComplaintCommand::ExtendPenaltyPeriod { .. }
            | ComplaintCommand::DecidePenalty { .. }
            | ComplaintCommand::SignClosure { .. } => matches!(role, Role::Handler | Role::StreetOffice),
            ComplaintCommand::CountersignClosure { .. } => role == Role::StreetOffice,
            ComplaintCommand::ReviewClosure { .. } => role == Role::CityReviewer,
            ComplaintCommand::RecordSatisfaction { .. } => matches!(role, Role::Registrar | Role::Handler),
            ComplaintCommand::Escalate { .. } | ComplaintCommand::RecomputeDeadline { .. } => {
                matches!(role, Role::System | Role::Operator)
            }
            ComplaintCommand::DecideReferral { .. } => role == Role::Official,
            ComplaintCommand::ReviewReturn { .. } => matches!(role, Role::Registrar | Role::Official),
        }
    }
}

/// What happened to a lead. Wrapped in a [`ComplaintEvent`] with its instant and deadlines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ComplaintFact {
    /// REG-1: registered in the ledger.
    Registered {
        /// The lead.
        id: ComplaintId,
        /// What the ledger records.
        registration: Registration,
        /// The complainant's keyed identity (interpretation 2); none for anonymous leads.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        complainant_key: Option<ComplainantKey>,
    },
    /// TRF-1, TRF-3: classified.
    Classified {
        /// The category.
        category: CategoryCode,
        /// Its body (TRF-3).
        body: BodyCode,
        /// Urgent or not.
        urgency: Urgency,
        /// General or major.
        complexity: Complexity,
        /// Linked leads split off (interpretation 15).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        split_into: Vec<SplitLead>,
    },
    /// Interpretation 15: opened as a linked lead of another, already classified.
    SplitFrom {
        /// The lead.
        id: ComplaintId,
        /// The lead it was split from.
        parent: ComplaintId,
        /// The parent's registration.
        registration: Registration,
        /// The complainant's keyed identity.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        complainant_key: Option<ComplainantKey>,
        /// When the parent was registered.
        #[serde(deserialize_with = "crate::calendar::deserialize_instant")]
        registered_at: DateTime<FixedOffset>,
        /// The category.
        category: CategoryCode,
        /// Its body.
        body: BodyCode,
        /// Urgent or not.
        urgency: Urgency,
        /// General or major.
        complexity: Complexity,
    },
    /// TRF-1: the body was notified and 区委、区政府 informed.
    UrgentNotified {
        /// The body notified.
        notified_body: BodyCode,
        /// The body responsible for handling.
        handling_body: BodyCode,
        /// Emergency measures started.
        emergency_measures: String,
        /// The report to 区委、区政府.
        district_report: String,
    },
    /// TRF-2: transferred.
    Transferred {
        /// The receiving body.
        to: BodyCode,
        /// In writing or through the system.
        method: TransferMethod,
        /// The covering note.
        note: String,
        /// Interpretation 15: the community's street office was informed of the transfer.
        street_office_informed: bool,
    },
    /// The body acknowledged the transfer.
    Accepted {
        /// The body.
        body: BodyCode,
    },
    /// The body returned a misrouted transfer.
    TransferReturned {
        /// The body that returned it.
        by: BodyCode,
        /// Why.
        reason: String,
        /// Interpretation 27: the return awaits 住建's review. Absent (false) in events written
        /// before returns were reviewed, which 住建 re-routed without one.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        under_review: bool,
    },
    /// Interpretation 27: 住建 reviewed a returned transfer.
    ReturnReviewed {
        /// The body that returned it.
        body: BodyCode,
        /// Accepted (re-routed by 住建) or rejected (the body must handle it).
        accepted: bool,
        /// Why.
        reason: String,
        /// For a rejected return, whether the body had accepted the lead before returning it:
        /// it is back in handling (else back to acknowledge).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        handling: bool,
    },
    /// Interpretation 17: re-graded from general to major.
    Regraded {
        /// Why.
        reason: String,
    },
    /// HDL-2, interpretation 25: the matter owes a plan; the event opens the plan deadline,
    /// due 7 days after the handling period started.
    PlanRequired {
        /// What made the plan owed.
        cause: PlanCause,
        /// The body's reason, when it declared the plan needed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// HDL-2: a plan was submitted.
    PlanSubmitted {
        /// The plan.
        plan: String,
        /// The plan's resolution date.
        resolve_by: NaiveDate,
    },
    /// HDL-2: progress was reported to the complainant and 住建.
    ProgressReported {
        /// What has been done.
        summary: String,
        /// The report's number, from 1.
        number: u32,
    },
    /// Interpretation 8: the finding.
    FindingRecorded {
        /// Substantiated or not.
        finding: Finding,
        /// The facts found.
        summary: String,
        /// Interpretation 22: whether the matter is the company's responsibility: the
        /// category's default, or the body's decision. A finding recorded before that
        /// interpretation has none and is read as attributable, as it was counted then.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attributable: Option<bool>,
        /// Why the body departed from the category's default, when it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attribution_reason: Option<String>,
    },
    /// Feedback was given.
    FeedbackGiven {
        /// To whom.
        recipient: FeedbackRecipient,
        /// What was said.
        content: String,
    },
    /// PEN-1: a penalty lead was discovered or received.
    PenaltyMatterOpened {
        /// When.
        #[serde(deserialize_with = "crate::calendar::deserialize_instant")]
        received_at: DateTime<FixedOffset>,
    },
    /// PEN-1: the penalty lead was verified.
    PenaltyMatterVerified {
        /// Case warranted or not.
        outcome: PenaltyVerification,
        /// The findings.
        summary: String,
    },
    /// PEN-1: the penalty case was filed.
    PenaltyCaseFiled {
        /// The case number.
        case_number: String,
    },
    /// PEN-1: the one extension.
    PenaltyPeriodExtended {
        /// Days.
        days: u32,
        /// The approving head.
        approved_by: String,
    },
    /// PEN-1: the decision.
    PenaltyDecided {
        /// The decision.
        decision: PenaltyDecision,
    },
    /// HDL-3: the handling body signed the closure.
    ClosureSigned {
        /// The body.
        body: BodyCode,
        /// 办结意见.
        opinion: String,
    },
    /// HDL-3: the street office or community countersigned.
    ClosureCountersigned {
        /// The countersigning body.
        body: BodyCode,
        /// Its opinion.
        opinion: String,
    },
    /// HDL-3: the city level reviewed the closure.
    ClosureReviewed {
        /// The reviewing body.
        body: BodyCode,
        /// Cancelled or sent back.
        outcome: ReviewOutcome,
    },
    /// HDL-4: the follow-up call's answer.
    SatisfactionRecorded {
        /// The answer.
        satisfaction: Satisfaction,
        /// Notes.
        comment: String,
    },
    /// Interpretation 18: reopened with the same body after a dissatisfied follow-up.
    Reopened {
        /// How many times the lead has been reopened, including this one.
        count: u32,
    },
    /// ACC-2: a miss or a rung of the escalation ladder.
    #[serde(untagged)]
    Escalation(EscalationFact),
}

/// One event on a lead's stream: the fact, its instant, and the deadlines it opens and closes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplaintEvent {
    /// The business instant.
    #[serde(deserialize_with = "crate::calendar::deserialize_instant")]
    pub at: DateTime<FixedOffset>,
    /// What happened.
    #[serde(flatten)]
    pub fact: ComplaintFact,
    /// Deadlines this event starts, computed when it was decided.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opens: Vec<Deadline>,
    /// Open deadlines this event closes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closes: Vec<DeadlineClosure>,
}

impl ComplaintEvent {
    /// The event type stored in the envelope, e.g. `complaint.registered`.
    pub fn event_type(&self) -> &'static str {
        match &self.fact {
            ComplaintFact::Registered { .. } => "complaint.registered",
            ComplaintFact::Classified { .. } => "complaint.classified",
            ComplaintFact::SplitFrom { .. } => "complaint.split_from",
            ComplaintFact::UrgentNotified { .. } => "complaint.urgent_notified",
            ComplaintFact::Transferred { .. } => "complaint.transferred",
            ComplaintFact::Accepted { .. } => "complaint.accepted",
            ComplaintFact::TransferReturned { .. } => "complaint.transfer_returned",
            ComplaintFact::ReturnReviewed { .. } => "complaint.return_reviewed",
            ComplaintFact::Regraded { .. } => "complaint.regraded",
            ComplaintFact::PlanRequired { .. } => "complaint.plan_required",
            ComplaintFact::PlanSubmitted { .. } => "complaint.plan_submitted",
            ComplaintFact::ProgressReported { .. } => "complaint.progress_reported",
            ComplaintFact::FindingRecorded { .. } => "complaint.finding_recorded",
            ComplaintFact::FeedbackGiven { .. } => "complaint.feedback_given",
            ComplaintFact::PenaltyMatterOpened { .. } => "complaint.penalty_matter_opened",
            ComplaintFact::PenaltyMatterVerified { .. } => "complaint.penalty_matter_verified",
            ComplaintFact::PenaltyCaseFiled { .. } => "complaint.penalty_case_filed",
            ComplaintFact::PenaltyPeriodExtended { .. } => "complaint.penalty_period_extended",
            ComplaintFact::PenaltyDecided { .. } => "complaint.penalty_decided",
            ComplaintFact::ClosureSigned { .. } => "complaint.closure_signed",
            ComplaintFact::ClosureCountersigned { .. } => "complaint.closure_countersigned",
            ComplaintFact::ClosureReviewed { .. } => "complaint.closure_reviewed",
            ComplaintFact::SatisfactionRecorded { .. } => "complaint.satisfaction_recorded",
            ComplaintFact::Reopened { .. } => "complaint.reopened",
            ComplaintFact::Escalation(EscalationFact::DeadlineMissed { .. }) => "complaint.deadline_missed",
            ComplaintFact::Escalation(EscalationFact::Escalated { .. }) => "complaint.escalated",
            ComplaintFact::Escalation(EscalationFact::DeadlineRecomputed { .. }) => "complaint.deadline_recomputed",
            ComplaintFact::Escalation(EscalationFact::ReferralDecided { .. }) => "complaint.referral_decided",
        }
    }
}

/// Where a lead stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    /// Registered, awaiting classification.
    Registered,
    /// Classified, awaiting transfer or urgent notification.
    Classified,
    /// Returned by a body as misrouted, awaiting reclassification.
    Returned,
    /// Transferred (or notified), awaiting the body's acceptance.
    Transferred,
    /// Being handled by the body.
    Handling,
    /// Closure complete, awaiting the city review.
    Closed,
    /// Reviewed and cancelled (销号).
    Cancelled,
}

impl LeadStatus {
    /// The status's name in errors and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            LeadStatus::Registered => "registered",
            LeadStatus::Classified => "classified",
            LeadStatus::Returned => "returned",
            LeadStatus::Transferred => "transferred",
            LeadStatus::Handling => "handling",
            LeadStatus::Closed => "closed",
            LeadStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the lead still needs handling (DSP-1 counts it as open).
    pub fn is_open(self) -> bool {
        !matches!(self, LeadStatus::Closed | LeadStatus::Cancelled)
    }
}

/// The lead's classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// The category.
    pub category: CategoryCode,
    /// Its body (TRF-3).
    pub body: BodyCode,
    /// Urgent or not.
    pub urgency: Urgency,
    /// General or major (after any re-grading).
    pub complexity: Complexity,
}

/// One round of handling: from the transfer (or a reopening, or a send-back) to closure.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Round {
    /// When this round's handling period started.
    pub started_at: Option<DateTime<FixedOffset>>,
    /// Feedback given to the complainant in this round.
    pub feedback_to_complainant: bool,
    /// Feedback given to the 12345 hotline in this round.
    pub feedback_to_hotline: bool,
    /// The body that signed the closure, once it has.
    pub signed_by: Option<BodyCode>,
    /// The street office or community that countersigned, once it has.
    pub countersigned_by: Option<BodyCode>,
    /// The follow-up answer of this round.
    pub satisfaction: Option<Satisfaction>,
}

/// A penalty matter (PEN-1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Penalty {
    /// When the lead was discovered or received.
    pub received_at: Option<DateTime<FixedOffset>>,
    /// The verification outcome.
    pub verification: Option<PenaltyVerification>,
    /// When the case was filed.
    pub filed_at: Option<DateTime<FixedOffset>>,
    /// The head who approved the one extension, and its days.
    pub extension: Option<(String, u32)>,
    /// The decision.
    pub decision: Option<PenaltyDecision>,
    /// The outcome fed back to the complainant after the decision.
    pub fed_back_to_complainant: bool,
    /// The outcome fed back to the transferring body after the decision.
    pub fed_back_to_transferring_body: bool,
}

/// Everything known about one lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    /// The lead.
    pub id: ComplaintId,
    /// The lead it was split from, if any.
    pub parent: Option<ComplaintId>,
    /// Linked leads split off it.
    pub children: Vec<SplitLead>,
    /// What the ledger records.
    pub registration: Registration,
    /// The complainant's keyed identity.
    pub complainant_key: Option<ComplainantKey>,
    /// When it was registered (of the parent, for a linked lead).
    pub registered_at: DateTime<FixedOffset>,
    /// Where it stands.
    pub status: LeadStatus,
    /// The classification, once made.
    pub classification: Option<Classification>,
    /// The body responsible for handling, once transferred or notified.
    pub handling_body: Option<BodyCode>,
    /// The latest finding.
    pub finding: Option<Finding>,
    /// Interpretation 22: whether the latest finding holds the company responsible; none for
    /// a finding recorded before that interpretation (read as attributable).
    pub attributable: Option<bool>,
    /// The current round of handling.
    pub round: Round,
    /// The plan's date and the instant it was first submitted (HDL-2).
    pub plan: Option<(NaiveDate, DateTime<FixedOffset>)>,
    /// Progress reports made.
    pub progress_reports: u32,
    /// The penalty matter, if any.
    pub penalty: Option<Penalty>,
    /// Times reopened after a dissatisfied follow-up (interpretation 18).
    pub reopen_count: u32,
    /// Times a transfer was returned as misrouted.
    pub return_count: u32,
    /// Interpretation 27: the returned transfer awaiting 住建's review, with what a rejection
    /// restores.
    pub pending_return: Option<PendingReturn>,
    /// The TRF-2 deadline set at registration, kept to reinstate it after a return.
    pub original_transfer_deadline: Option<Deadline>,
    /// The TRF-1 deadline set at classification, kept to reinstate it after a return.
    pub original_urgent_deadline: Option<Deadline>,
    /// Open deadlines, misses and escalations.
    pub obligations: Obligations,
}

impl Lead {
    /// Interpretation 22: whether the lead's latest finding counts against its company for
    /// GRD-1 and EXT-1: substantiated and the company's responsibility (a finding recorded
    /// before that interpretation is read as the company's).
    pub fn substantiated_against_company(&self) -> bool {
        self.registration.company.is_some()
            && self.finding == Some(Finding::Substantiated)
            && self.attributable.unwrap_or(true)
    }

    /// Whether the lead is anonymous (interpretation 19).
    pub fn is_anonymous(&self) -> bool {
        matches!(self.registration.complainant, Complainant::Anonymous)
    }

    /// Whether the lead came from the 12345 hotline (HDL-4).
    pub fn is_from_12345(&self) -> bool {
        self.registration.channel == Channel::Hotline12345
    }

    /// The body accountable for the lead right now (DSP-1): the handling body once there is
    /// one, else 住建, which registers, classifies and transfers.
    pub fn accountable_body(&self) -> BodyCode {
        self.handling_body.unwrap_or(BodyCode::ZJ)
    }

    /// Whether an open deadline of the lead is past due at `at` (DSP-1).
    pub fn is_overdue_at(&self, at: DateTime<FixedOffset>) -> bool {
        self.obligations.open().any(|deadline| deadline.due < at)
    }
}

/// A returned transfer awaiting 住建's review (interpretation 27): the body that returned it,
/// and what a rejection gives back to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingReturn {
    /// The body that returned it.
    pub by: BodyCode,
    /// Whether it had accepted the lead before returning it.
    pub handling: bool,
    /// Its handling deadlines the return closed.
    pub deadlines: Vec<Deadline>,
    /// Its round of handling as it stood.
    pub round: Round,
}

/// A lead's state: nothing before registration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComplaintState {
    /// The lead, once registered.
    pub lead: Option<Lead>,
}

/// Deadlines of the handling period, closed together when the closure is complete.
const HANDLING_DEADLINES: [DeadlineKind; 4] =
    [DeadlineKind::GeneralClose, DeadlineKind::MajorResolve, DeadlineKind::MajorPlan, DeadlineKind::ProgressReport];

/// Interpretation 22: whether a finding is the company's responsibility, and the reason when
/// the body departs from the category's default. An override needs a reason and a
/// substantiated finding (an unsubstantiated lead counts against nobody).
fn attribution_of(
    lead: &Lead,
    finding: Finding,
    attribution: Option<Attribution>,
    ctx: &Context<'_>,
) -> Result<(bool, Option<String>), DomainError> {
    let default = lead
        .classification
        .as_ref()
        .and_then(|classification| ctx.taxonomy.category(&classification.category))
        .is_none_or(|category| category.attributable);
    let Some(Attribution { attributable, reason }) = attribution else { return Ok((default, None)) };
    if finding != Finding::Substantiated {
        return Err(DomainError::InvalidField {
            rule: RuleId::Hdl3,
            field: "attribution",
            reason: "only a substantiated finding says whose responsibility the matter is".to_owned(),
        });
    }
    required_within(RuleId::Hdl3, "attribution.reason", &reason, TEXT_MAX_CHARS)?;
    Ok((attributable, Some(reason)))
}

fn required(rule: RuleId, field: &'static str, value: &str) -> Result<(), DomainError> {
    if value.trim().is_empty() { Err(DomainError::MissingField { rule, field }) } else { Ok(()) }
}

fn validate_registration(registration: &Registration, ctx: &Context<'_>) -> Result<(), DomainError> {
    let rule = RuleId::Reg1;
    if let Complainant::Named { name, contact, id_number } = &registration.complainant {
        required_within(rule, "complainant.name", name, PERSON_NAME_MAX_CHARS)?;
        required_within(rule, "complainant.contact", contact, CONTACT_MAX_CHARS)?;
        within(rule, "complainant.id_number", id_number.as_deref().unwrap_or(""), ID_NUMBER_MAX_CHARS)?;
    }
    required_within(rule, "content", &registration.content, CONTENT_MAX_CHARS)?;
    if let Some(company) = &registration.company {
        required_within(rule, "company.name", &company.name, COMPANY_NAME_MAX_CHARS)?;
    }
    required_within(rule, "place.community", &registration.place.community, PLACE_MAX_CHARS)?;
    required_within(rule, "place.district", &registration.place.district, PLACE_MAX_CHARS)?;
    required_within(rule, "place.street", &registration.place.street, PLACE_MAX_CHARS)?;
    within(rule, "hotline_ticket", registration.hotline_ticket.as_deref().unwrap_or(""), REFERENCE_MAX_CHARS)?;
    if registration.received_at > ctx.now {
        return Err(DomainError::InvalidField {
            rule,
            field: "received_at",
            reason: format!("{} is after the registration instant {}", registration.received_at, ctx.now),
        });
    }
    if registration.channel == Channel::Hotline12345 {
        required(RuleId::Hdl4, "hotline_ticket", registration.hotline_ticket.as_deref().unwrap_or(""))?;
    }
    Ok(())
}

fn complainant_key(registration: &Registration, ctx: &Context<'_>) -> Option<ComplainantKey> {
    match &registration.complainant {
        Complainant::Named { name, contact, id_number } => {
            Some(ComplainantKey::derive(ctx.identity_secret, name, contact, id_number.as_deref()))
        }
        Complainant::Anonymous => None,
    }
}

fn category(ctx: &Context<'_>, field: &'static str, code: &str) -> Result<(CategoryCode, BodyCode), DomainError> {
    if code.trim().is_empty() {
        return Err(DomainError::MissingField { rule: RuleId::Trf3, field });
    }
    let code = ctx.taxonomy.category_code(code).map_err(|error| DomainError::InvalidField {
        rule: RuleId::Trf3,
        field,
        reason: error.to_string(),
    })?;
    let body = ctx.taxonomy.route(&code).map_err(|error| DomainError::InvalidField {
        rule: RuleId::Trf3,
        field,
        reason: error.to_string(),
    })?;
    Ok((code, body))
}

/// The body TRF-1 requires notifying: the street office for matters within 住建's duty,
/// otherwise the category's own department.
fn urgent_notified_body(category_body: BodyCode) -> BodyCode {
    if category_body == BodyCode::ZJ { BodyCode::JB } else { category_body }
}

/// Builds events at the decision's instant with no deadlines attached; deadlines are added
/// by the decision that needs them.
fn event(ctx: &Context<'_>, fact: ComplaintFact) -> ComplaintEvent {
    ComplaintEvent { at: ctx.now, fact, opens: Vec::new(), closes: Vec::new() }
}

fn require_body(lead: &Lead, command: &'static str, rule: RuleId, ctx: &Context<'_>) -> Result<(), DomainError> {
    if lead.handling_body == Some(ctx.actor.body) {
        Ok(())
    } else {
        Err(DomainError::WrongBody { rule, command, acting: ctx.actor.body, responsible: lead.handling_body })
    }
}

fn require_registrar_body(
    lead: &Lead,
    command: &'static str,
    rule: RuleId,
    ctx: &Context<'_>,
) -> Result<(), DomainError> {
    let _ = lead;
    if ctx.actor.body == BodyCode::ZJ {
        Ok(())
    } else {
        Err(DomainError::WrongBody { rule, command, acting: ctx.actor.body, responsible: Some(BodyCode::ZJ) })
    }
}

fn require_status(lead: &Lead, command: &'static str, rule: RuleId, allowed: &[LeadStatus]) -> Result<(), DomainError> {
    if allowed.contains(&lead.status) {
        Ok(())
    } else {
        Err(DomainError::WrongState { rule, command, subject: "lead", state: lead.status.as_str() })
    }
}

fn classification<'a>(lead: &'a Lead, command: &'static str, rule: RuleId) -> Result<&'a Classification, DomainError> {
    lead.classification.as_ref().ok_or(DomainError::Unmet { rule, command, requirement: Requirement::Classification })
}

/// The deadline of a fresh handling period of the lead's grade starting at `start` (HDL-1 for
/// general matters, HDL-2 for major ones; interpretations 17 and 18). A major matter's plan
/// is owed only when it cannot be resolved within the month (interpretation 25): its deadline
/// is opened by a [`ComplaintFact::PlanRequired`], never with the period.
fn handling_period(
    ctx: &Context<'_>,
    seq: u32,
    complexity: Complexity,
    body: BodyCode,
    start: DateTime<FixedOffset>,
) -> Result<Vec<Deadline>, DomainError> {
    let kind = match complexity {
        Complexity::General => DeadlineKind::GeneralClose,
        Complexity::Major => DeadlineKind::MajorResolve,
    };
    Ok(vec![ctx.deadline(seq, kind, body, start)?])
}

/// The month a major matter has to be resolved in (HDL-2): its open resolution deadline that
/// runs for the policy's period (not to a plan's own date), with the instant it started.
fn open_month(lead: &Lead) -> Option<(&Deadline, DateTime<FixedOffset>)> {
    lead.obligations.open().find_map(|deadline| match (&deadline.kind, &deadline.basis) {
        (DeadlineKind::MajorResolve, DueBasis::Period { start, .. }) => Some((deadline, *start)),
        _ => None,
    })
}

/// Interpretation 25: the plan deadline a major matter owes once it is required, due 7 days
/// (the policy's HDL-2 plan period) after its month started.
fn plan_deadline(
    ctx: &Context<'_>,
    seq: u32,
    month: &Deadline,
    start: DateTime<FixedOffset>,
) -> Result<Deadline, DomainError> {
    ctx.deadline(seq, DeadlineKind::MajorPlan, month.body, start)
}

/// Decides a command on a lead.
pub fn decide(
    state: &ComplaintState,
    command: ComplaintCommand,
    ctx: &Context<'_>,
) -> Result<Vec<ComplaintEvent>, DomainError> {
    let name = command.name();
    let lead = match (&state.lead, &command) {
        (Some(_), ComplaintCommand::Register { .. }) => return Err(DomainError::AlreadyExists { rule: RuleId::Reg1 }),
        (Some(_), ComplaintCommand::OpenSplitLead { .. }) => {
            return Err(DomainError::AlreadyExists { rule: RuleId::Trf3 });
        }
        (None, ComplaintCommand::Register { id, registration }) => return decide_register(id, registration, ctx),
        (None, ComplaintCommand::OpenSplitLead { .. }) => return decide_open_split(command, ctx),
        (None, _) => return Err(DomainError::NotFound { rule: command.rule(), subject: "lead" }),
        (Some(lead), _) => lead,
    };
    let seq = lead.obligations.next_seq();
    match command {
        ComplaintCommand::Register { .. } | ComplaintCommand::OpenSplitLead { .. } => {
            unreachable!("handled above")
        }
        ComplaintCommand::Classify { category: code, urgency, complexity, split } => {
            require_registrar_body(lead, name, RuleId::Trf2, ctx)?;
            require_status(
                lead,
                name,
                RuleId::Trf2,
                &[LeadStatus::Registered, LeadStatus::Classified, LeadStatus::Returned],
            )?;
            if lead.pending_return.is_some() {
                return Err(DomainError::WrongState {
                    rule: RuleId::Trf3,
                    command: name,
                    subject: "lead",
                    state: "returned, awaiting 住建's review of the return (interpretation 27)",
                });
            }
            let (category, body) = category(ctx, "category", &code)?;
            let split_into = decide_split(lead, body, split, ctx)?;
            let mut event = event(ctx, ComplaintFact::Classified { category, body, urgency, complexity, split_into });
            let transfer_open = lead.obligations.open_of_kind(DeadlineKind::Transfer, None);
            let urgent_open = lead.obligations.open_of_kind(DeadlineKind::UrgentNotify, None);
            match urgency {
                // TRF-1: an urgent lead is notified within hours of its registration; the
                // TRF-2 transfer period no longer applies to it.
                Urgency::Urgent => {
                    event.closes = lead.obligations.close_kinds(&[DeadlineKind::Transfer], ClosedHow::Superseded);
                    if urgent_open.is_none() {
                        event.opens.push(match &lead.original_urgent_deadline {
                            Some(original) => reinstated(original, seq),
                            None => ctx.deadline(seq, DeadlineKind::UrgentNotify, BodyCode::ZJ, lead.registered_at)?,
                        });
                    }
                }
                Urgency::Normal => {
                    event.closes = lead.obligations.close_kinds(&[DeadlineKind::UrgentNotify], ClosedHow::Superseded);
                    if transfer_open.is_none() {
                        event.opens.push(match &lead.original_transfer_deadline {
                            Some(original) => reinstated(original, seq),
                            None => ctx.deadline(seq, DeadlineKind::Transfer, BodyCode::ZJ, lead.registered_at)?,
                        });
                    }
                }
            }
            Ok(vec![event])
        }
        ComplaintCommand::NotifyUrgent { notified_body, emergency_measures, district_report } => {
            require_registrar_body(lead, name, RuleId::Trf1, ctx)?;
            require_status(lead, name, RuleId::Trf1, &[LeadStatus::Classified])?;
            let classification = classification(lead, name, RuleId::Trf1)?;
            if classification.urgency != Urgency::Urgent {
                return Err(DomainError::WrongState {
                    rule: RuleId::Trf1,
                    command: name,
                    subject: "lead",
                    state: "classified as not urgent",
                });
            }
            let expected = urgent_notified_body(classification.body);
            if notified_body != expected {
                return Err(DomainError::Misrouted {
                    rule: RuleId::Trf1,
                    field: "notified_body",
                    category: classification.category.clone(),
                    expected,
                    given: notified_body,
                });
            }
            required_within(RuleId::Trf1, "emergency_measures", &emergency_measures, TEXT_MAX_CHARS)?;
            required_within(RuleId::Trf1, "district_report", &district_report, TEXT_MAX_CHARS)?;
            let mut event = event(
                ctx,
                ComplaintFact::UrgentNotified {
                    notified_body,
                    handling_body: classification.body,
                    emergency_measures,
                    district_report,
                },
            );
            event.closes = lead.obligations.close_kinds(&[DeadlineKind::UrgentNotify], ClosedHow::Met);
            Ok(vec![event])
        }
        ComplaintCommand::Transfer { to, method, note } => {
            require_registrar_body(lead, name, RuleId::Trf2, ctx)?;
            require_status(lead, name, RuleId::Trf2, &[LeadStatus::Classified])?;
            let classification = classification(lead, name, RuleId::Trf2)?;
            if classification.urgency == Urgency::Urgent {
                return Err(DomainError::WrongState {
                    rule: RuleId::Trf1,
                    command: name,
                    subject: "lead",
                    state: "urgent: it is notified at once, not transferred",
                });
            }
            if to != classification.body {
                return Err(DomainError::Misrouted {
                    rule: RuleId::Trf3,
                    field: "to",
                    category: classification.category.clone(),
                    expected: classification.body,
                    given: to,
                });
            }
            within(RuleId::Trf2, "note", &note, TEXT_MAX_CHARS)?;
            let mut event =
                event(ctx, ComplaintFact::Transferred { to, method, note, street_office_informed: to != BodyCode::JB });
            event.closes = lead.obligations.close_kinds(&[DeadlineKind::Transfer], ClosedHow::Met);
            event.opens = handling_period(ctx, seq, classification.complexity, to, ctx.now)?;
            Ok(vec![event])
        }
        ComplaintCommand::Accept => {
            require_status(lead, name, RuleId::Trf2, &[LeadStatus::Transferred])?;
            require_body(lead, name, RuleId::Trf2, ctx)?;
            Ok(vec![event(ctx, ComplaintFact::Accepted { body: ctx.actor.body })])
        }
        ComplaintCommand::ReturnTransfer { reason } => {
            require_status(lead, name, RuleId::Trf3, &[LeadStatus::Transferred, LeadStatus::Handling])?;
            require_body(lead, name, RuleId::Trf3, ctx)?;
            required_within(RuleId::Trf3, "reason", &reason, TEXT_MAX_CHARS)?;
            if lead.finding.is_some() || lead.penalty.is_some() || lead.round.signed_by.is_some() {
                return Err(DomainError::WrongState {
                    rule: RuleId::Trf3,
                    command: name,
                    subject: "lead",
                    state: "already being handled on its merits",
                });
            }
            // Interpretation 27: the return awaits 住建's review; the handling deadlines stop
            // meanwhile, and come back with their due instants if the return is rejected.
            let mut event =
                event(ctx, ComplaintFact::TransferReturned { by: ctx.actor.body, reason, under_review: true });
            event.closes = lead.obligations.close_kinds(&HANDLING_DEADLINES, ClosedHow::Superseded);
            Ok(vec![event])
        }
        ComplaintCommand::ReviewReturn { accept, reason } => {
            require_registrar_body(lead, name, RuleId::Trf3, ctx)?;
            let pending = lead.pending_return.as_ref().ok_or(DomainError::WrongState {
                rule: RuleId::Trf3,
                command: name,
                subject: "lead",
                state: "without a returned transfer awaiting review",
            })?;
            required_within(RuleId::Trf3, "reason", &reason, TEXT_MAX_CHARS)?;
            let body = pending.by;
            if accept {
                // Accepted: 住建 re-routes the lead. Interpretation 15: the TRF-2 (or TRF-1) clock
                // does not restart; misrouting shows as 住建's lateness against the original due.
                let mut event =
                    event(ctx, ComplaintFact::ReturnReviewed { body, accepted: true, reason, handling: false });
                let original = match classification(lead, name, RuleId::Trf3)?.urgency {
                    Urgency::Urgent => &lead.original_urgent_deadline,
                    Urgency::Normal => &lead.original_transfer_deadline,
                };
                if let Some(original) = original {
                    event.opens.push(reinstated(original, seq));
                }
                return Ok(vec![event]);
            }
            // Rejected: the body must handle the lead; its handling deadlines come back with
            // their due instants, as if the return had never stopped them.
            let mut event =
                event(ctx, ComplaintFact::ReturnReviewed { body, accepted: false, reason, handling: pending.handling });
            event.opens = pending
                .deadlines
                .iter()
                .zip(seq..)
                .map(|(deadline, seq)| Deadline { seq, ..deadline.clone() })
                .collect();
            Ok(vec![event])
        }
        ComplaintCommand::Regrade { reason } => {
            require_status(lead, name, RuleId::Hdl2, &[LeadStatus::Transferred, LeadStatus::Handling])?;
            require_body(lead, name, RuleId::Hdl2, ctx)?;
            required_within(RuleId::Hdl2, "reason", &reason, TEXT_MAX_CHARS)?;
            let general =
                lead.obligations.open_of_kind(DeadlineKind::GeneralClose, None).ok_or(DomainError::WrongState {
                    rule: RuleId::Hdl2,
                    command: name,
                    subject: "lead",
                    state: "not a general matter within its period",
                })?;
            if ctx.now > general.due {
                return Err(DomainError::WrongState {
                    rule: RuleId::Hdl2,
                    command: name,
                    subject: "lead",
                    state: "past its general deadline",
                });
            }
            let start = lead.round.started_at.unwrap_or(ctx.now);
            let body = lead.accountable_body();
            let mut event = event(ctx, ComplaintFact::Regraded { reason });
            event.closes = lead.obligations.close_kinds(&[DeadlineKind::GeneralClose], ClosedHow::Superseded);
            event.opens = handling_period(ctx, seq, Complexity::Major, body, start)?;
            Ok(vec![event])
        }
        ComplaintCommand::DeclarePlanNeeded { reason } => {
            require_status(lead, name, RuleId::Hdl2, &[LeadStatus::Handling])?;
            require_body(lead, name, RuleId::Hdl2, ctx)?;
            refuse_under_penalty_case(lead, name)?;
            if lead.plan.is_some() || lead.obligations.open_of_kind(DeadlineKind::MajorPlan, None).is_some() {
                return Err(DomainError::WrongState {
                    rule: RuleId::Hdl2,
                    command: name,
                    subject: "lead",
                    state: "already owing or having a plan",
                });
            }
            let (month, start) = open_month(lead).ok_or(DomainError::WrongState {
                rule: RuleId::Hdl2,
                command: name,
                subject: "lead",
                state: "not a major matter within its month",
            })?;
            required_within(RuleId::Hdl2, "reason", &reason, TEXT_MAX_CHARS)?;
            // Interpretation 25: declared, the plan is owed within the first 7 days of the
            // month; a declaration after them opens a deadline already passed.
            let mut event =
                event(ctx, ComplaintFact::PlanRequired { cause: PlanCause::Declared, reason: Some(reason) });
            event.opens.push(plan_deadline(ctx, seq, month, start)?);
            Ok(vec![event])
        }
        ComplaintCommand::SubmitPlan { plan, resolve_by } => {
            require_status(lead, name, RuleId::Hdl2, &[LeadStatus::Handling])?;
            require_body(lead, name, RuleId::Hdl2, ctx)?;
            refuse_under_penalty_case(lead, name)?;
            if classification(lead, name, RuleId::Hdl2)?.complexity != Complexity::Major {
                return Err(DomainError::WrongState {
                    rule: RuleId::Hdl2,
                    command: name,
                    subject: "lead",
                    state: "a general matter",
                });
            }
            required_within(RuleId::Hdl2, "plan", &plan, TEXT_MAX_CHARS)?;
            if resolve_by <= ctx.now.date_naive() {
                return Err(DomainError::InvalidField {
                    rule: RuleId::Hdl2,
                    field: "resolve_by",
                    reason: format!("{resolve_by} is not after the plan's date {}", ctx.now.date_naive()),
                });
            }
            let body = lead.accountable_body();
            let mut events = Vec::with_capacity(2);
            let mut seq = seq;
            // Interpretation 25: a first plan submitted after the first 7 days, undeclared, is
            // a plan owed and met late: its deadline is opened to be closed at once.
            if lead.plan.is_none()
                && lead.obligations.open_of_kind(DeadlineKind::MajorPlan, None).is_none()
                && let Some((month, start)) = open_month(lead)
            {
                let owed = plan_deadline(ctx, seq, month, start)?;
                if ctx.now > owed.due {
                    let mut required =
                        event(ctx, ComplaintFact::PlanRequired { cause: PlanCause::SubmittedLate, reason: None });
                    required.opens.push(owed);
                    events.push(required);
                    seq += 1;
                }
            }
            let mut event = event(ctx, ComplaintFact::PlanSubmitted { plan, resolve_by });
            event.closes = match events.first() {
                Some(required) => required
                    .opens
                    .iter()
                    .map(|d| DeadlineClosure { seq: d.seq, kind: d.kind, how: ClosedHow::Met })
                    .collect(),
                None => lead.obligations.close_kinds(&[DeadlineKind::MajorPlan], ClosedHow::Met),
            };
            event.closes.extend(lead.obligations.close_kinds(&[DeadlineKind::MajorResolve], ClosedHow::Superseded));
            event.opens.push(Deadline {
                seq,
                kind: DeadlineKind::MajorResolve,
                rule: RuleId::Hdl2,
                body,
                community: None,
                basis: DueBasis::PlanDate { date: resolve_by },
                due: end_of_day(resolve_by, ctx),
                // A plan's own date is a date, not a period: no calendar is looked at.
                provisional: false,
                calendar: None,
            });
            if lead.plan.is_none() {
                event.opens.push(ctx.deadline(seq + 1, DeadlineKind::ProgressReport, body, ctx.now)?);
            }
            events.push(event);
            Ok(events)
        }
        ComplaintCommand::ReportProgress { summary } => {
            require_status(lead, name, RuleId::Hdl2, &[LeadStatus::Handling])?;
            require_body(lead, name, RuleId::Hdl2, ctx)?;
            refuse_under_penalty_case(lead, name)?;
            let (_, plan_at) = lead.plan.ok_or(DomainError::Unmet {
                rule: RuleId::Hdl2,
                command: name,
                requirement: Requirement::Plan,
            })?;
            required_within(RuleId::Hdl2, "summary", &summary, TEXT_MAX_CHARS)?;
            let number = lead.progress_reports + 1;
            let months = ctx.policy.periods.progress_report_months * (number + 1);
            let mut event = event(ctx, ComplaintFact::ProgressReported { summary, number });
            event.closes = lead.obligations.close_kinds(&[DeadlineKind::ProgressReport], ClosedHow::Met);
            event.opens.push(ctx.deadline_with_period(
                seq,
                DeadlineKind::ProgressReport,
                lead.accountable_body(),
                plan_at,
                Period::Months(months),
            )?);
            Ok(vec![event])
        }
        ComplaintCommand::RecordFinding { finding, summary, attribution } => {
            require_status(lead, name, RuleId::Hdl3, &[LeadStatus::Handling])?;
            require_body(lead, name, RuleId::Hdl3, ctx)?;
            if lead.round.signed_by.is_some() {
                return Err(DomainError::WrongState {
                    rule: RuleId::Hdl3,
                    command: name,
                    subject: "lead",
                    state: "signed for closure",
                });
            }
            required_within(RuleId::Hdl3, "summary", &summary, TEXT_MAX_CHARS)?;
            let (attributable, attribution_reason) = attribution_of(lead, finding, attribution, ctx)?;
            Ok(vec![event(
                ctx,
                ComplaintFact::FindingRecorded {
                    finding,
                    summary,
                    attributable: Some(attributable),
                    attribution_reason,
                },
            )])
        }
        ComplaintCommand::GiveFeedback { recipient, content } => {
            require_status(lead, name, RuleId::Hdl1, &[LeadStatus::Handling])?;
            require_body(lead, name, RuleId::Hdl1, ctx)?;
            match recipient {
                FeedbackRecipient::Complainant if lead.is_anonymous() => {
                    return Err(DomainError::InvalidField {
                        rule: RuleId::Hdl1,
                        field: "recipient",
                        reason: "the lead is anonymous: there is no complainant to reach".to_owned(),
                    });
                }
                FeedbackRecipient::Hotline12345 if !lead.is_from_12345() => {
                    return Err(DomainError::InvalidField {
                        rule: RuleId::Hdl4,
                        field: "recipient",
                        reason: "the lead did not come from the 12345 hotline".to_owned(),
                    });
                }
                _ => {}
            }
            required_within(RuleId::Hdl1, "content", &content, TEXT_MAX_CHARS)?;
            Ok(vec![event(ctx, ComplaintFact::FeedbackGiven { recipient, content })])
        }
        ComplaintCommand::OpenPenaltyMatter { received_at } => {
            require_status(lead, name, RuleId::Pen1, &[LeadStatus::Handling])?;
            require_body(lead, name, RuleId::Pen1, ctx)?;
            if lead.penalty.is_some() {
                return Err(DomainError::WrongState {
                    rule: RuleId::Pen1,
                    command: name,
                    subject: "lead",
                    state: "already carrying a penalty matter",
                });
            }
            if received_at > ctx.now || received_at < lead.registered_at {
                return Err(DomainError::InvalidField {
                    rule: RuleId::Pen1,
                    field: "received_at",
                    reason: format!(
                        "{received_at} must lie between the lead's registration {} and now {}",
                        lead.registered_at, ctx.now
                    ),
                });
            }
            let mut event = event(ctx, ComplaintFact::PenaltyMatterOpened { received_at });
            event.opens.push(ctx.deadline(seq, DeadlineKind::PenaltyVerify, ctx.actor.body, received_at)?);
            Ok(vec![event])
        }
        ComplaintCommand::VerifyPenaltyMatter { outcome, summary } => {
            require_body(lead, name, RuleId::Pen1, ctx)?;
            let penalty = open_penalty(lead, name)?;
            if penalty.verification.is_some() {
                return Err(DomainError::WrongState {
                    rule: RuleId::Pen1,
                    command: name,
                    subject: "lead",
                    state: "already verified",
                });
            }
            required_within(RuleId::Pen1, "summary", &summary, TEXT_MAX_CHARS)?;
            let mut event = event(ctx, ComplaintFact::PenaltyMatterVerified { outcome, summary });
            event.closes = lead.obligations.close_kinds(&[DeadlineKind::PenaltyVerify], ClosedHow::Met);
            Ok(vec![event])
        }
        ComplaintCommand::FilePenaltyCase { case_number } => {
            require_body(lead, name, RuleId::Pen1, ctx)?;
            let penalty = open_penalty(lead, name)?;
            if penalty.verification != Some(PenaltyVerification::CaseWarranted) {
                return Err(DomainError::Unmet {
                    rule: RuleId::Pen1,
                    command: name,
                    requirement: Requirement::WarrantedPenaltyCase,
                });
            }
            if penalty.filed_at.is_some() {
                return Err(DomainError::WrongState {
                    rule: RuleId::Pen1,
                    command: name,
                    subject: "lead",
                    state: "already carrying a filed case",
                });
            }
            required_within(RuleId::Pen1, "case_number", &case_number, REFERENCE_MAX_CHARS)?;
            let mut event = event(ctx, ComplaintFact::PenaltyCaseFiled { case_number });
            // Interpretation 24: the penalty case supersedes the HDL-1 or HDL-2 handling
            // deadline; PEN-1's periods govern from here, and its outcome feedback meets the
            // duty of feedback to the complainant.
            event.closes = lead.obligations.close_kinds(&HANDLING_DEADLINES, ClosedHow::Superseded);
            event.opens.push(ctx.deadline(seq, DeadlineKind::PenaltyComplete, ctx.actor.body, ctx.now)?);
            Ok(vec![event])
        }
        ComplaintCommand::ExtendPenaltyPeriod { days, approved_by } => {
            require_body(lead, name, RuleId::Pen1, ctx)?;
            let penalty = open_penalty(lead, name)?;
            let filed_at = penalty.filed_at.ok_or(DomainError::Unmet {
                rule: RuleId::Pen1,
                command: name,
                requirement: Requirement::PenaltyCase,
            })?;
            if penalty.decision.is_some() {
                return Err(DomainError::WrongState {
                    rule: RuleId::Pen1,
                    command: name,
                    subject: "lead",
                    state: "already decided",
                });
            }
            if let Some((approved_by, _)) = &penalty.extension {
                return Err(DomainError::PenaltyAlreadyExtended { approved_by: approved_by.clone() });
            }
            let max = ctx.policy.periods.penalty_extension_max_days;
            if days == 0 {
                return Err(DomainError::InvalidField {
                    rule: RuleId::Pen1,
                    field: "days",
                    reason: "an extension must be at least one day".to_owned(),
                });
            }
            if days > max {
                return Err(DomainError::PenaltyExtensionTooLong { asked: days, max });
            }
            required_within(RuleId::Pen1, "approved_by", &approved_by, PERSON_NAME_MAX_CHARS)?;
            let current =
                lead.obligations.open_of_kind(DeadlineKind::PenaltyComplete, None).ok_or(DomainError::Unmet {
                    rule: RuleId::Pen1,
                    command: name,
                    requirement: Requirement::PenaltyCase,
                })?;
            if ctx.now > current.due {
                return Err(DomainError::WrongState {
                    rule: RuleId::Pen1,
                    command: name,
                    subject: "lead",
                    state: "past its penalty period: an extension must be approved within it",
                });
            }
            let period = Period::Days(ctx.policy.periods.penalty_complete_days + days);
            let mut event = event(ctx, ComplaintFact::PenaltyPeriodExtended { days, approved_by });
            event.closes = lead.obligations.close_kinds(&[DeadlineKind::PenaltyComplete], ClosedHow::Superseded);
            event.opens.push(ctx.deadline_with_period(
                seq,
                DeadlineKind::PenaltyComplete,
                current.body,
                filed_at,
                period,
            )?);
            Ok(vec![event])
        }
        ComplaintCommand::DecidePenalty { decision } => {
            require_body(lead, name, RuleId::Pen1, ctx)?;
            let penalty = open_penalty(lead, name)?;
            if penalty.filed_at.is_none() {
                return Err(DomainError::Unmet {
                    rule: RuleId::Pen1,
                    command: name,
                    requirement: Requirement::PenaltyCase,
                });
            }
            if penalty.decision.is_some() {
                return Err(DomainError::WrongState {
                    rule: RuleId::Pen1,
                    command: name,
                    subject: "lead",
                    state: "already decided",
                });
            }
            // The fields are named as `DecidePenaltyRequest` spells them.
            match &decision {
                PenaltyDecision::Imposed { description, fine_fen } => {
                    required_within(RuleId::Pen1, "description", description, TEXT_MAX_CHARS)?;
                    amount(RuleId::Pen1, "fine_fen", *fine_fen)?;
                }
                PenaltyDecision::NotImposed { reason } => {
                    required_within(RuleId::Pen1, "reason", reason, TEXT_MAX_CHARS)?;
                }
            }
            let mut event = event(ctx, ComplaintFact::PenaltyDecided { decision });
            event.closes = lead.obligations.close_kinds(&[DeadlineKind::PenaltyComplete], ClosedHow::Met);
            Ok(vec![event])
        }
        ComplaintCommand::SignClosure { opinion } => {
            require_status(lead, name, RuleId::Hdl3, &[LeadStatus::Handling])?;
            require_body(lead, name, RuleId::Hdl3, ctx)?;
            if lead.round.signed_by.is_some() {
                return Err(DomainError::WrongState {
                    rule: RuleId::Hdl3,
                    command: name,
                    subject: "lead",
                    state: "already signed",
                });
            }
            required_within(RuleId::Hdl3, "opinion", &opinion, TEXT_MAX_CHARS)?;
            check_ready_to_close(lead, name)?;
            let mut event = event(ctx, ComplaintFact::ClosureSigned { body: ctx.actor.body, opinion });
            // HDL-3: a matter 住建 handles directly is closed only once the street office (or
            // the community it entrusts) has countersigned.
            if lead.handling_body != Some(BodyCode::ZJ) {
                event.closes = closing_handling(lead);
            }
            Ok(vec![event])
        }
        ComplaintCommand::CountersignClosure { opinion } => {
            require_status(lead, name, RuleId::Hdl3, &[LeadStatus::Handling])?;
            if lead.handling_body != Some(BodyCode::ZJ) {
                return Err(DomainError::WrongState {
                    rule: RuleId::Hdl3,
                    command: name,
                    subject: "lead",
                    state: "handled by a department other than 住建: no countersignature is needed",
                });
            }
            if lead.round.signed_by.is_none() {
                return Err(DomainError::Unmet {
                    rule: RuleId::Hdl3,
                    command: name,
                    requirement: Requirement::ClosureSignature,
                });
            }
            if !matches!(ctx.actor.body, BodyCode::JB | BodyCode::SQ) {
                return Err(DomainError::WrongBody {
                    rule: RuleId::Hdl3,
                    command: name,
                    acting: ctx.actor.body,
                    responsible: Some(BodyCode::JB),
                });
            }
            required_within(RuleId::Hdl3, "opinion", &opinion, TEXT_MAX_CHARS)?;
            let mut event = event(ctx, ComplaintFact::ClosureCountersigned { body: ctx.actor.body, opinion });
            event.closes = closing_handling(lead);
            Ok(vec![event])
        }
        ComplaintCommand::ReviewClosure { outcome } => {
            require_status(lead, name, RuleId::Hdl3, &[LeadStatus::Closed])?;
            // HDL-3: the city-level counterpart of the handling body reviews; for matters 住建
            // handles directly that is the city 住建.
            if Some(ctx.actor.body) != lead.handling_body {
                return Err(DomainError::WrongBody {
                    rule: RuleId::Hdl3,
                    command: name,
                    acting: ctx.actor.body,
                    responsible: lead.handling_body,
                });
            }
            let mut event =
                event(ctx, ComplaintFact::ClosureReviewed { body: ctx.actor.body, outcome: outcome.clone() });
            if let ReviewOutcome::SentBack { reason } = &outcome {
                // Named as `ReviewClosureRequest` spells it: the outcome is its `cancel` flag.
                required_within(RuleId::Hdl3, "reason", reason, TEXT_MAX_CHARS)?;
                // A closure sent back is handled again under a fresh period of its grade, as
                // a reopening is under interpretation 18.
                let complexity = classification(lead, name, RuleId::Hdl3)?.complexity;
                event.opens = handling_period(ctx, seq, complexity, lead.accountable_body(), ctx.now)?;
            }
            Ok(vec![event])
        }
        ComplaintCommand::RecordSatisfaction { satisfaction, comment } => {
            if !lead.is_from_12345() {
                return Err(DomainError::WrongState {
                    rule: RuleId::Hdl4,
                    command: name,
                    subject: "lead",
                    state: "not from the 12345 hotline",
                });
            }
            if ctx.actor.body != BodyCode::XZ {
                return Err(DomainError::WrongBody {
                    rule: RuleId::Hdl4,
                    command: name,
                    acting: ctx.actor.body,
                    responsible: Some(BodyCode::XZ),
                });
            }
            if lead.status.is_open() {
                return Err(DomainError::Unmet {
                    rule: RuleId::Hdl4,
                    command: name,
                    requirement: Requirement::Closure,
                });
            }
            if lead.round.satisfaction.is_some() {
                return Err(DomainError::WrongState {
                    rule: RuleId::Hdl4,
                    command: name,
                    subject: "lead",
                    state: "already followed up for this closure",
                });
            }
            within(RuleId::Hdl4, "comment", &comment, TEXT_MAX_CHARS)?;
            let mut events = vec![event(ctx, ComplaintFact::SatisfactionRecorded { satisfaction, comment })];
            if satisfaction == Satisfaction::Dissatisfied {
                // Interpretation 18: reopened with the same body; the handling period starts
                // again from the reopening.
                let complexity = classification(lead, name, RuleId::Hdl4)?.complexity;
                let mut reopened = event(ctx, ComplaintFact::Reopened { count: lead.reopen_count + 1 });
                reopened.opens = handling_period(ctx, seq, complexity, lead.accountable_body(), ctx.now)?;
                events.push(reopened);
            }
            Ok(events)
        }
        ComplaintCommand::Escalate { seq: escalated, level } => {
            let facts = lead.obligations.decide_escalation(escalated, level, ctx)?;
            let mut events: Vec<ComplaintEvent> =
                facts.into_iter().map(|fact| event(ctx, ComplaintFact::Escalation(fact))).collect();
            events.extend(month_ended_without_plan(lead, escalated, seq, ctx)?);
            Ok(events)
        }
        ComplaintCommand::DecideReferral { seq, decision, reason } => {
            let fact = lead.obligations.decide_referral(seq, decision, &reason, name, ctx)?;
            Ok(vec![event(ctx, ComplaintFact::Escalation(fact))])
        }
        ComplaintCommand::RecomputeDeadline { seq } => {
            // A reinstated TRF-1 or TRF-2 deadline (interpretation 15) recomputes the period
            // of the deadline it brings back.
            let original = [&lead.original_transfer_deadline, &lead.original_urgent_deadline]
                .into_iter()
                .flatten()
                .find(|original| lead.obligations.get(seq).is_some_and(|open| reinstates(open, original)));
            let fact = lead.obligations.decide_recompute(seq, original, ctx)?;
            Ok(vec![event(ctx, ComplaintFact::Escalation(fact))])
        }
    }
}

/// Whether `deadline` is `original` brought back (interpretation 15).
fn reinstates(deadline: &Deadline, original: &Deadline) -> bool {
    matches!(deadline.basis, DueBasis::Reinstated { original: seq } if seq == original.seq)
}

fn decide_register(
    id: &ComplaintId,
    registration: &Registration,
    ctx: &Context<'_>,
) -> Result<Vec<ComplaintEvent>, DomainError> {
    validate_registration(registration, ctx)?;
    let mut event = event(
        ctx,
        ComplaintFact::Registered {
            id: id.clone(),
            registration: registration.clone(),
            complainant_key: complainant_key(registration, ctx),
        },
    );
    // TRF-2: the transfer period runs from registration.
    event.opens.push(ctx.deadline(0, DeadlineKind::Transfer, BodyCode::ZJ, ctx.now)?);
    Ok(vec![event])
}

fn decide_open_split(command: ComplaintCommand, ctx: &Context<'_>) -> Result<Vec<ComplaintEvent>, DomainError> {
    let ComplaintCommand::OpenSplitLead {
        id,
        parent,
        registration,
        registered_at,
        category: code,
        urgency,
        complexity,
    } = command
    else {
        unreachable!("called for OpenSplitLead only")
    };
    if ctx.actor.body != BodyCode::ZJ {
        return Err(DomainError::WrongBody {
            rule: RuleId::Trf3,
            command: "open_split_lead",
            acting: ctx.actor.body,
            responsible: Some(BodyCode::ZJ),
        });
    }
    if id == parent {
        return Err(DomainError::InvalidField {
            rule: RuleId::Trf3,
            field: "parent",
            reason: "a lead cannot be split from itself".to_owned(),
        });
    }
    validate_registration(&registration, ctx)?;
    let (category, body) = category(ctx, "category", &code)?;
    let complainant_key = complainant_key(&registration, ctx);
    let mut event = event(
        ctx,
        ComplaintFact::SplitFrom {
            id,
            parent,
            registration,
            complainant_key,
            registered_at,
            category,
            body,
            urgency,
            complexity,
        },
    );
    // The linked lead's clock is the complaint's: it runs from the parent's registration.
    let kind = match urgency {
        Urgency::Urgent => DeadlineKind::UrgentNotify,
        Urgency::Normal => DeadlineKind::Transfer,
    };
    event.opens.push(ctx.deadline(0, kind, BodyCode::ZJ, registered_at)?);
    Ok(vec![event])
}

fn decide_split(
    lead: &Lead,
    body: BodyCode,
    split: Vec<SplitRequest>,
    ctx: &Context<'_>,
) -> Result<Vec<SplitLead>, DomainError> {
    if split.is_empty() {
        return Ok(Vec::new());
    }
    if lead.parent.is_some() || !lead.children.is_empty() {
        return Err(DomainError::InvalidField {
            rule: RuleId::Trf3,
            field: "split",
            reason: "the lead is already part of a split complaint".to_owned(),
        });
    }
    let mut bodies = vec![body];
    let mut leads = Vec::with_capacity(split.len());
    for request in split {
        let (category, split_body) = category(ctx, "split.category", &request.category)?;
        if bodies.contains(&split_body) {
            return Err(DomainError::InvalidField {
                rule: RuleId::Trf3,
                field: "split.category",
                reason: format!(
                    "category {category} routes to {split_body}, which already has a lead of this complaint"
                ),
            });
        }
        if request.lead == lead.id || leads.iter().any(|l: &SplitLead| l.lead == request.lead) {
            return Err(DomainError::InvalidField {
                rule: RuleId::Trf3,
                field: "split.lead",
                reason: format!("lead id {} is used twice", request.lead),
            });
        }
        bodies.push(split_body);
        leads.push(SplitLead { lead: request.lead, category, body: split_body });
    }
    Ok(leads)
}

/// HDL-3: the closings of a complete closure. The handling deadlines are met; a plan the
/// body declared needed but never submitted is no longer owed once the matter is resolved
/// within its month (interpretation 25).
fn closing_handling(lead: &Lead) -> Vec<DeadlineClosure> {
    let mut closes = lead.obligations.close_kinds(
        &[DeadlineKind::GeneralClose, DeadlineKind::MajorResolve, DeadlineKind::ProgressReport],
        ClosedHow::Met,
    );
    closes.extend(lead.obligations.close_kinds(&[DeadlineKind::MajorPlan], ClosedHow::Superseded));
    closes.sort_by_key(|closure| closure.seq);
    closes
}

/// Interpretation 25: when the reactor records the miss of a major matter's month and the
/// body neither declared nor submitted a plan, the plan deadline is opened, due 7 days into
/// the month, and its miss recorded, at the month's end.
fn month_ended_without_plan(
    lead: &Lead,
    escalated: u32,
    next_seq: u32,
    ctx: &Context<'_>,
) -> Result<Vec<ComplaintEvent>, DomainError> {
    let Some((month, start)) = open_month(lead).filter(|(month, _)| month.seq == escalated) else {
        return Ok(Vec::new());
    };
    let owes_nothing_yet = lead.plan.is_none()
        && !lead.obligations.miss_recorded(escalated)
        && lead.obligations.open_of_kind(DeadlineKind::MajorPlan, None).is_none()
        && lead.penalty.as_ref().is_none_or(|penalty| penalty.filed_at.is_none());
    if !owes_nothing_yet {
        return Ok(Vec::new());
    }
    let owed = plan_deadline(ctx, next_seq, month, start)?;
    let missed = EscalationFact::DeadlineMissed {
        seq: owed.seq,
        kind: owed.kind,
        rule: owed.rule,
        body: owed.body,
        due: owed.due,
    };
    let mut required = event(ctx, ComplaintFact::PlanRequired { cause: PlanCause::MonthEnded, reason: None });
    required.opens.push(owed);
    Ok(vec![required, event(ctx, ComplaintFact::Escalation(missed))])
}

/// Interpretation 24: once a penalty case is filed, PEN-1's periods govern the lead; HDL-2's
/// plan and progress reports, whose deadlines the filing closed, are no longer owed.
fn refuse_under_penalty_case(lead: &Lead, command: &'static str) -> Result<(), DomainError> {
    if lead.penalty.as_ref().is_some_and(|penalty| penalty.filed_at.is_some()) {
        return Err(DomainError::WrongState {
            rule: RuleId::Hdl2,
            command,
            subject: "lead",
            state: "under a filed penalty case, whose periods govern it (interpretation 24)",
        });
    }
    Ok(())
}

fn open_penalty<'a>(lead: &'a Lead, command: &'static str) -> Result<&'a Penalty, DomainError> {
    if lead.status != LeadStatus::Handling {
        return Err(DomainError::WrongState {
            rule: RuleId::Pen1,
            command,
            subject: "lead",
            state: lead.status.as_str(),
        });
    }
    lead.penalty.as_ref().ok_or(DomainError::Unmet {
        rule: RuleId::Pen1,
        command,
        requirement: Requirement::PenaltyVerification,
    })
}

/// HDL-1, HDL-3, HDL-4, PEN-1 and interpretation 8: what must be done before a closure may be
/// signed.
fn check_ready_to_close(lead: &Lead, command: &'static str) -> Result<(), DomainError> {
    let unmet = |rule, requirement| Err(DomainError::Unmet { rule, command, requirement });
    if lead.finding.is_none() {
        return unmet(RuleId::Hdl3, Requirement::Finding);
    }
    if let Some(penalty) = &lead.penalty {
        match penalty.verification {
            None => return unmet(RuleId::Pen1, Requirement::PenaltyVerification),
            Some(PenaltyVerification::CaseWarranted) => {
                if penalty.decision.is_none() {
                    return unmet(RuleId::Pen1, Requirement::PenaltyDecision);
                }
                if !lead.is_anonymous() && !penalty.fed_back_to_complainant {
                    return unmet(RuleId::Pen1, Requirement::FeedbackToComplainant);
                }
                if !penalty.fed_back_to_transferring_body {
                    return unmet(RuleId::Pen1, Requirement::FeedbackToTransferringBody);
                }
            }
            Some(PenaltyVerification::NoCase) => {}
        }
    }
    if !lead.is_anonymous() && !lead.round.feedback_to_complainant {
        return unmet(RuleId::Hdl1, Requirement::FeedbackToComplainant);
    }
    if lead.is_from_12345() && !lead.round.feedback_to_hotline {
        return unmet(RuleId::Hdl4, Requirement::FeedbackToHotline);
    }
    Ok(())
}

/// An earlier deadline brought back with its original due instant (interpretation 15).
fn reinstated(original: &Deadline, seq: u32) -> Deadline {
    Deadline { seq, basis: DueBasis::Reinstated { original: original.seq }, ..original.clone() }
}

/// 24:00 Shanghai of a date, as an instant.
fn end_of_day(date: NaiveDate, ctx: &Context<'_>) -> DateTime<FixedOffset> {
    let next = date + TimeDelta::days(1);
    next.and_hms_opt(0, 0, 0)
        .and_then(|midnight| midnight.and_local_timezone(crate::calendar::shanghai()).single())
        .unwrap_or(ctx.now)
}

/// Folds an event into a lead's state.
pub fn evolve(mut state: ComplaintState, event: &ComplaintEvent) -> ComplaintState {
    match (&mut state.lead, &event.fact) {
        (None, ComplaintFact::Registered { id, registration, complainant_key }) => {
            let mut lead = new_lead(id.clone(), registration.clone(), complainant_key.clone(), event.at);
            lead.original_transfer_deadline = event.opens.first().cloned();
            state.lead = Some(lead);
        }
        (
            None,
            ComplaintFact::SplitFrom {
                id,
                parent,
                registration,
                complainant_key,
                registered_at,
                category,
                body,
                urgency,
                complexity,
            },
        ) => {
            let mut lead = new_lead(id.clone(), registration.clone(), complainant_key.clone(), *registered_at);
            lead.parent = Some(parent.clone());
            lead.status = LeadStatus::Classified;
            lead.classification = Some(Classification {
                category: category.clone(),
                body: *body,
                urgency: *urgency,
                complexity: *complexity,
            });
            match urgency {
                Urgency::Urgent => lead.original_urgent_deadline = event.opens.first().cloned(),
                Urgency::Normal => lead.original_transfer_deadline = event.opens.first().cloned(),
            }
            state.lead = Some(lead);
        }
        (None, _) => {}
        (Some(lead), fact) => apply(lead, fact, event),
    }
    if let Some(lead) = &mut state.lead {
        lead.obligations.apply(&event.opens, &event.closes);
    }
    state
}

fn new_lead(
    id: ComplaintId,
    registration: Registration,
    complainant_key: Option<ComplainantKey>,
    registered_at: DateTime<FixedOffset>,
) -> Lead {
    Lead {
        id,
        parent: None,
        children: Vec::new(),
        registration,
        complainant_key,
        registered_at,
        status: LeadStatus::Registered,
        classification: None,
        handling_body: None,
        finding: None,
        attributable: None,
        round: Round::default(),
        plan: None,
        progress_reports: 0,
        penalty: None,
        reopen_count: 0,
        return_count: 0,
        pending_return: None,
        original_transfer_deadline: None,
        original_urgent_deadline: None,
        obligations: Obligations::default(),
    }
}

fn apply(lead: &mut Lead, fact: &ComplaintFact, event: &ComplaintEvent) {
    match fact {
        ComplaintFact::Registered { .. } | ComplaintFact::SplitFrom { .. } => {}
        ComplaintFact::Classified { category, body, urgency, complexity, split_into } => {
            lead.status = LeadStatus::Classified;
            lead.classification = Some(Classification {
                category: category.clone(),
                body: *body,
                urgency: *urgency,
                complexity: *complexity,
            });
            lead.children.extend(split_into.iter().cloned());
            if *urgency == Urgency::Urgent && lead.original_urgent_deadline.is_none() {
                lead.original_urgent_deadline =
                    event.opens.iter().find(|deadline| deadline.kind == DeadlineKind::UrgentNotify).cloned();
            }
        }
        ComplaintFact::UrgentNotified { handling_body, .. } => {
            lead.status = LeadStatus::Transferred;
            lead.handling_body = Some(*handling_body);
            lead.round = Round { started_at: Some(event.at), ..Round::default() };
        }
        ComplaintFact::Transferred { to, .. } => {
            lead.status = LeadStatus::Transferred;
            lead.handling_body = Some(*to);
            lead.round = Round { started_at: Some(event.at), ..Round::default() };
        }
        ComplaintFact::Accepted { .. } => lead.status = LeadStatus::Handling,
        ComplaintFact::TransferReturned { by, under_review, .. } => {
            if *under_review {
                // Interpretation 27: what a rejection of the return gives back (the event's
                // closings are applied after this fold, so the deadlines are still open here).
                lead.pending_return = Some(PendingReturn {
                    by: *by,
                    handling: lead.status == LeadStatus::Handling,
                    deadlines: lead
                        .obligations
                        .open()
                        .filter(|deadline| HANDLING_DEADLINES.contains(&deadline.kind))
                        .cloned()
                        .collect(),
                    round: lead.round.clone(),
                });
            }
            lead.status = LeadStatus::Returned;
            lead.handling_body = None;
            lead.return_count += 1;
            lead.round = Round::default();
        }
        ComplaintFact::ReturnReviewed { body, accepted, handling, .. } => {
            let pending = lead.pending_return.take();
            if !*accepted {
                lead.status = if *handling { LeadStatus::Handling } else { LeadStatus::Transferred };
                lead.handling_body = Some(*body);
                lead.round = pending.map(|pending| pending.round).unwrap_or_default();
            }
        }
        ComplaintFact::Regraded { .. } => {
            if let Some(classification) = &mut lead.classification {
                classification.complexity = Complexity::Major;
            }
        }
        ComplaintFact::PlanRequired { .. } => {}
        ComplaintFact::PlanSubmitted { resolve_by, .. } => {
            let first_submitted = lead.plan.map_or(event.at, |(_, at)| at);
            lead.plan = Some((*resolve_by, first_submitted));
        }
        ComplaintFact::ProgressReported { number, .. } => lead.progress_reports = *number,
        ComplaintFact::FindingRecorded { finding, attributable, .. } => {
            lead.finding = Some(*finding);
            lead.attributable = *attributable;
        }
        ComplaintFact::FeedbackGiven { recipient, .. } => {
            let decided = lead.penalty.as_ref().is_some_and(|penalty| penalty.decision.is_some());
            match recipient {
                FeedbackRecipient::Complainant => lead.round.feedback_to_complainant = true,
                FeedbackRecipient::Hotline12345 => lead.round.feedback_to_hotline = true,
                FeedbackRecipient::TransferringBody => {}
            }
            if decided && let Some(penalty) = &mut lead.penalty {
                match recipient {
                    FeedbackRecipient::Complainant => penalty.fed_back_to_complainant = true,
                    FeedbackRecipient::TransferringBody => penalty.fed_back_to_transferring_body = true,
                    FeedbackRecipient::Hotline12345 => {}
                }
            }
        }
        ComplaintFact::PenaltyMatterOpened { received_at } => {
            lead.penalty = Some(Penalty { received_at: Some(*received_at), ..Penalty::default() });
        }
        ComplaintFact::PenaltyMatterVerified { outcome, .. } => {
            if let Some(penalty) = &mut lead.penalty {
                penalty.verification = Some(*outcome);
            }
        }
        ComplaintFact::PenaltyCaseFiled { .. } => {
            if let Some(penalty) = &mut lead.penalty {
                penalty.filed_at = Some(event.at);
            }
        }
        ComplaintFact::PenaltyPeriodExtended { days, approved_by } => {
            if let Some(penalty) = &mut lead.penalty {
                penalty.extension = Some((approved_by.clone(), *days));
            }
        }
        ComplaintFact::PenaltyDecided { decision } => {
            if let Some(penalty) = &mut lead.penalty {
                penalty.decision = Some(decision.clone());
            }
        }
        ComplaintFact::ClosureSigned { body, .. } => {
            lead.round.signed_by = Some(*body);
            if lead.handling_body != Some(BodyCode::ZJ) {
                lead.status = LeadStatus::Closed;
            }
        }
        ComplaintFact::ClosureCountersigned { body, .. } => {
            lead.round.countersigned_by = Some(*body);
            lead.status = LeadStatus::Closed;
        }
        ComplaintFact::ClosureReviewed { outcome, .. } => match outcome {
            ReviewOutcome::Cancelled => lead.status = LeadStatus::Cancelled,
            ReviewOutcome::SentBack { .. } => {
                lead.status = LeadStatus::Handling;
                lead.round = Round { started_at: Some(event.at), ..Round::default() };
            }
        },
        ComplaintFact::SatisfactionRecorded { satisfaction, .. } => lead.round.satisfaction = Some(*satisfaction),
        ComplaintFact::Reopened { count } => {
            lead.reopen_count = *count;
            lead.status = LeadStatus::Handling;
            lead.round = Round { started_at: Some(event.at), ..Round::default() };
        }
        ComplaintFact::Escalation(fact) => {
            lead.obligations.apply_escalation(fact);
            // Interpretation 21: the kept TRF-1/TRF-2 deadline follows its recomputation, so
            // that a later reinstatement (interpretation 15) brings back the new due.
            if let EscalationFact::DeadlineRecomputed { seq, due, provisional, calendar, .. } = fact {
                let open = lead.obligations.get(*seq).cloned();
                for original in
                    [&mut lead.original_transfer_deadline, &mut lead.original_urgent_deadline].into_iter().flatten()
                {
                    let recomputed =
                        original.seq == *seq || open.as_ref().is_some_and(|open| reinstates(open, original));
                    if recomputed {
                        original.due = *due;
                        original.provisional = *provisional;
                        original.calendar = provisional.then(|| calendar.clone());
                    }
                }
            }
        }
    }
}
