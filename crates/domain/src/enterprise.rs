//! The property-management company: the complaints and findings counted against it, the
//! conditions they make true (REG-4, GRD-1, EXT-1), and what follows from them: survey,
//! downgrade, fee enforcement, refund and exit (GRD-1..4, EXT-1).
//!
//! Company-level conditions are facts in the log (interpretation 16): whenever a complaint,
//! a finding, a survey, a refusal or the passing of time changes whether a condition holds,
//! the decision records it on the company's stream with its evidence and starts any period
//! that follows. Nothing depends on when a projection ran.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use chrono::{DateTime, FixedOffset, Months, NaiveDate, TimeDelta};
use serde::{Deserialize, Serialize};

use crate::actor::Role;
use crate::complaint::Finding;
use crate::context::Context;
use crate::deadline::{ClosedHow, Deadline, DeadlineClosure, DeadlineKind, EscalationLevel};
use crate::error::{DomainError, Requirement};
use crate::identity::ComplainantKey;
use crate::ids::{BodyCode, ComplaintId, Uscc};
use crate::limits::{
    PERSON_NAME_MAX_CHARS, PLACE_MAX_CHARS, REFERENCE_MAX_CHARS, SURVEY_MAX_RESPONDENTS, TEXT_MAX_CHARS, amount,
    required_within, within,
};
use crate::obligations::{EscalationFact, Obligations};
use crate::policy::Policy;
use crate::rule::RuleId;

/// A lead to count against its company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeadRecord {
    /// The lead.
    pub lead: ComplaintId,
    /// The complainant's keyed identity; none for an anonymous lead.
    pub complainant_key: Option<ComplainantKey>,
    /// When the lead was registered.
    pub registered_at: DateTime<FixedOffset>,
    /// The residential community concerned.
    pub community: String,
    /// For a linked lead split off a complaint (interpretation 15), the lead it was split
    /// from: an anonymous complaint split into several leads still counts once.
    pub linked_to: Option<ComplaintId>,
}

/// A lead's finding to count against its company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FindingRecord {
    /// The lead.
    pub lead: ComplaintId,
    /// Substantiated or not.
    pub finding: Finding,
    /// Interpretation 22: whether the matter is the company's responsibility.
    pub attributable: bool,
    /// When it was found.
    pub found_at: DateTime<FixedOffset>,
}

/// A command on a company.
/// Serialisable so that a request's fingerprint can hash what it asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum EnterpriseCommand {
    /// REG-4, GRD-1, EXT-1: count registered leads and their findings against the company
    /// (issued by tousu's reactions to the leads' events, several at a time). Leads already
    /// counted and findings already recorded are skipped, so the command may be repeated.
    CountLeads {
        /// The company's code; the stream is the company's.
        uscc: Uscc,
        /// The company's name as the latest lead gives it.
        company_name: String,
        /// Leads registered against the company.
        complaints: Vec<LeadRecord>,
        /// Findings on leads counted against the company (interpretation 8).
        findings: Vec<FindingRecord>,
    },
    /// Interpretation 16: re-evaluate the conditions as time passes (issued by the deadline
    /// reactor).
    EvaluateConditions,
    /// Interpretation 12: the company's rating in the local credit evaluation.
    RecordCreditRating {
        /// The rating, e.g. `A` or `D`.
        rating: String,
    },
    /// Interpretation 12: the company was put on the black list.
    RecordBlacklisting {
        /// The day it was listed.
        listed_on: NaiveDate,
    },
    /// Interpretation 12: the company was taken off the black list.
    RecordBlacklistRemoval {
        /// The day it was removed.
        removed_on: NaiveDate,
    },
    /// GRD-1: the survey of a community is complete and published there.
    RecordSurvey {
        /// The community surveyed.
        community: String,
        /// People asked.
        respondents: u32,
        /// People satisfied.
        satisfied: u32,
        /// Where and how the result was published in the community.
        publication: String,
    },
    /// GRD-2: the company refused or failed to rectify in a community.
    RecordRectificationRefused {
        /// The community.
        community: String,
        /// What was refused or not done.
        detail: String,
    },
    /// GRD-2: the community's service grade is re-set, and pushed to 发改 and 市场监管.
    DowngradeGrade {
        /// The community.
        community: String,
        /// The new grade (1 is the highest).
        to_grade: u8,
    },
    /// GRD-3: 发改 has the company apply the lower grade's fee standard, copying 住建.
    EnforceFeeStandard {
        /// The community.
        community: String,
        /// What was done.
        detail: String,
    },
    /// GRD-4: the company refuses the lower fee standard; 发改 hands the case to 市场监管.
    RefuseFeeStandard {
        /// The community.
        community: String,
        /// The refusal.
        detail: String,
    },
    /// GRD-4: 市场监管 orders the refund and penalises, copying 发改 and 住建.
    OrderRefund {
        /// The community.
        community: String,
        /// The amount to refund, in fen.
        amount_fen: u64,
        /// The penalty imposed for over-charging.
        penalty: String,
    },
    /// EXT-1: 住建 and the street office start the exit procedure (a human decision).
    StartExitProcedure {
        /// The decision as recorded.
        decision: String,
        /// The street-office official taking part.
        street_office_official: String,
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
        decision: crate::obligations::ReferralDecision,
        /// Why.
        reason: String,
    },
}

impl EnterpriseCommand {
    /// The command's name in errors, logs and the API.
    pub fn name(&self) -> &'static str {
        match self {
            EnterpriseCommand::CountLeads { .. } => "count_leads",
            EnterpriseCommand::EvaluateConditions => "evaluate_conditions",
            EnterpriseCommand::RecordCreditRating { .. } => "record_credit_rating",
            EnterpriseCommand::RecordBlacklisting { .. } => "record_blacklisting",
            EnterpriseCommand::RecordBlacklistRemoval { .. } => "record_blacklist_removal",
            EnterpriseCommand::RecordSurvey { .. } => "record_survey",
            EnterpriseCommand::RecordRectificationRefused { .. } => "record_rectification_refused",
            EnterpriseCommand::DowngradeGrade { .. } => "downgrade_grade",
            EnterpriseCommand::EnforceFeeStandard { .. } => "enforce_fee_standard",
            EnterpriseCommand::RefuseFeeStandard { .. } => "refuse_fee_standard",
            EnterpriseCommand::OrderRefund { .. } => "order_refund",
            EnterpriseCommand::StartExitProcedure { .. } => "start_exit_procedure",
            EnterpriseCommand::Escalate { .. } => "escalate",
            EnterpriseCommand::RecomputeDeadline { .. } => "recompute_deadline",
            EnterpriseCommand::DecideReferral { .. } => "decide_referral",
        }
    }

    /// The rule the command belongs to. A refusal that is not about a rule of its own (the
    /// company does not exist) names it, and so does the API for a request it cannot turn
    /// into the command.
    pub fn rule(&self) -> RuleId {
        match self {
            // Interpretation 16: the conditions are REG-4's key supervision first, then GRD-1's
            // grade review and EXT-1's exit, all counted from the same leads.
            EnterpriseCommand::CountLeads { .. } | EnterpriseCommand::EvaluateConditions => RuleId::Reg4,
            EnterpriseCommand::RecordCreditRating { .. }
            | EnterpriseCommand::RecordBlacklisting { .. }
            | EnterpriseCommand::RecordBlacklistRemoval { .. }
            | EnterpriseCommand::RecordSurvey { .. } => RuleId::Grd1,
            EnterpriseCommand::RecordRectificationRefused { .. } | EnterpriseCommand::DowngradeGrade { .. } => {
                RuleId::Grd2
            }
            EnterpriseCommand::EnforceFeeStandard { .. } => RuleId::Grd3,
            EnterpriseCommand::RefuseFeeStandard { .. } | EnterpriseCommand::OrderRefund { .. } => RuleId::Grd4,
            EnterpriseCommand::StartExitProcedure { .. } => RuleId::Ext1,
            EnterpriseCommand::Escalate { .. }
            | EnterpriseCommand::RecomputeDeadline { .. }
            | EnterpriseCommand::DecideReferral { .. } => RuleId::Acc2,
        }
    }

    /// Whether a role may issue the command at all; which body may is decided by `decide`.
    pub fn permitted(&self, role: Role) -> bool {
        match self {
            EnterpriseCommand::CountLeads { .. }
            | EnterpriseCommand::EvaluateConditions
            | EnterpriseCommand::Escalate { .. }
            | EnterpriseCommand::RecomputeDeadline { .. } => matches!(role, Role::System | Role::Operator),
            EnterpriseCommand::RecordCreditRating { .. }
            | EnterpriseCommand::RecordBlacklisting { .. }
            | EnterpriseCommand::RecordBlacklistRemoval { .. } => role == Role::Registrar,
            EnterpriseCommand::RecordSurvey { .. } | EnterpriseCommand::RecordRectificationRefused { .. } => {
                matches!(role, Role::Handler | Role::StreetOffice)
            }
            EnterpriseCommand::DowngradeGrade { .. }
            | EnterpriseCommand::EnforceFeeStandard { .. }
            | EnterpriseCommand::RefuseFeeStandard { .. }
            | EnterpriseCommand::OrderRefund { .. }
            | EnterpriseCommand::StartExitProcedure { .. } => role == Role::Handler,
            EnterpriseCommand::DecideReferral { .. } => role == Role::Official,
        }
    }
}

/// The counting behind a company condition, recorded with it (interpretation 16).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountEvidence {
    /// Leads count when registered after this instant (interpretation 20).
    #[serde(deserialize_with = "crate::calendar::deserialize_instant")]
    pub window_start: DateTime<FixedOffset>,
    /// ... and at or before this one.
    #[serde(deserialize_with = "crate::calendar::deserialize_instant")]
    pub window_end: DateTime<FixedOffset>,
    /// Distinct complainants: distinct keys plus anonymous leads, each counted once.
    pub distinct: u32,
    /// The distinct complainant keys counted.
    pub keys: Vec<ComplainantKey>,
    /// The anonymous leads counted, shown apart (interpretation 2).
    pub anonymous_leads: Vec<ComplaintId>,
    /// Every lead counted.
    pub leads: Vec<ComplaintId>,
}

/// What triggered a grade review (GRD-1, interpretation 12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "trigger", rename_all = "snake_case")]
pub enum GradeReviewTrigger {
    /// Substantiated complaints from more than 10 distinct complainants in half a year.
    Complaints {
        /// The count.
        evidence: CountEvidence,
    },
    /// A low credit rating.
    LowCreditRating {
        /// The rating.
        rating: String,
    },
    /// On the black list for 6 months or more without a break.
    LongBlacklisted {
        /// Listed since.
        listed_on: NaiveDate,
    },
}

/// Why a community must be downgraded (GRD-2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DowngradeReason {
    /// The survey found satisfaction below the threshold.
    LowSatisfaction {
        /// Satisfaction in basis points.
        satisfaction_bp: u32,
    },
    /// The company refused or failed to rectify.
    RectificationRefused,
}

/// What made the exit procedure possible (EXT-1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitEvidence {
    /// Substantiated distinct complainants in the year.
    pub count: CountEvidence,
    /// Communities with a refusal to rectify in the year.
    pub refusals: Vec<String>,
    /// The most recent survey's satisfaction in the year, in basis points, if below the
    /// threshold (interpretation 13).
    pub low_satisfaction_bp: Option<u32>,
}

/// What happened to a company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EnterpriseFact {
    /// A lead was counted against the company.
    ComplaintRecorded {
        /// The company's code.
        uscc: Uscc,
        /// The company's name as the lead gives it.
        company_name: String,
        /// The lead.
        lead: ComplaintId,
        /// The complainant's keyed identity.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        complainant_key: Option<ComplainantKey>,
        /// When the lead was registered.
        #[serde(deserialize_with = "crate::calendar::deserialize_instant")]
        registered_at: DateTime<FixedOffset>,
        /// The community.
        community: String,
        /// The lead it was split from, for a linked lead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        linked_to: Option<ComplaintId>,
    },
    /// A lead's finding was counted.
    FindingRecorded {
        /// The lead.
        lead: ComplaintId,
        /// Substantiated or not.
        finding: Finding,
        /// Interpretation 22: whether the matter is the company's responsibility; a finding
        /// counted before that interpretation has none and is read as the company's, as it
        /// was counted then.
        #[serde(default = "attributable_before_interpretation_22", skip_serializing_if = "is_true")]
        attributable: bool,
        /// When it was found.
        #[serde(deserialize_with = "crate::calendar::deserialize_instant")]
        found_at: DateTime<FixedOffset>,
    },
    /// REG-4: the company goes into the key-supervision ledger.
    KeySupervisionStarted {
        /// The count that made it so.
        evidence: CountEvidence,
    },
    /// REG-4: the company leaves the key-supervision ledger as complaints age out.
    KeySupervisionEnded {
        /// The count that ended it.
        evidence: CountEvidence,
    },
    /// GRD-1: a grade review is required; the survey of each community is due.
    GradeReviewRequired {
        /// What triggered it.
        triggers: Vec<GradeReviewTrigger>,
        /// The communities to survey (interpretation 14).
        communities: Vec<String>,
    },
    /// GRD-1: no trigger of the grade review holds any more.
    GradeReviewConditionEnded,
    /// EXT-1: the exit procedure may be started.
    ExitConditionMet {
        /// What made it so.
        evidence: ExitEvidence,
    },
    /// EXT-1: the exit condition no longer holds.
    ExitConditionEnded,
    /// Interpretation 12: a credit rating.
    CreditRatingRecorded {
        /// The rating.
        rating: String,
    },
    /// Interpretation 12: put on the black list.
    Blacklisted {
        /// The day.
        listed_on: NaiveDate,
    },
    /// Interpretation 12: taken off the black list.
    RemovedFromBlacklist {
        /// The day.
        removed_on: NaiveDate,
    },
    /// GRD-1: a survey completed and published.
    SurveyCompleted {
        /// The community.
        community: String,
        /// People asked.
        respondents: u32,
        /// People satisfied.
        satisfied: u32,
        /// Satisfaction in basis points, rounded down.
        satisfaction_bp: u32,
        /// Where and how it was published.
        publication: String,
    },
    /// GRD-2: the company refused or failed to rectify.
    RectificationRefused {
        /// The community.
        community: String,
        /// What.
        detail: String,
    },
    /// GRD-2: a community must be downgraded within the period.
    DowngradeRequired {
        /// The community.
        community: String,
        /// Why.
        reason: DowngradeReason,
    },
    /// GRD-2: the community's grade was re-set and pushed to 发改 and 市场监管.
    GradeDowngraded {
        /// The community.
        community: String,
        /// The grade before, if known.
        from_grade: Option<u8>,
        /// The grade now.
        to_grade: u8,
        /// The bodies the downgrade was pushed to.
        pushed_to: Vec<BodyCode>,
    },
    /// GRD-3: the lower fee standard is applied; 住建 copied.
    FeeStandardEnforced {
        /// The community.
        community: String,
        /// What was done.
        detail: String,
        /// Bodies copied.
        copied_to: Vec<BodyCode>,
    },
    /// GRD-4: the company refused the fee standard; handed to 市场监管.
    FeeStandardRefused {
        /// The community.
        community: String,
        /// The refusal.
        detail: String,
        /// The body the case was handed to.
        handed_to: BodyCode,
    },
    /// GRD-4: refund ordered and penalty imposed; 发改 and 住建 copied.
    RefundOrdered {
        /// The community.
        community: String,
        /// Amount in fen.
        amount_fen: u64,
        /// The penalty.
        penalty: String,
        /// Bodies copied.
        copied_to: Vec<BodyCode>,
    },
    /// EXT-1: the exit procedure was started.
    ExitProcedureStarted {
        /// The decision.
        decision: String,
        /// The street-office official taking part.
        street_office_official: String,
    },
    /// ACC-2: a miss or a rung of the escalation ladder.
    #[serde(untagged)]
    Escalation(EscalationFact),
}

/// One event on a company's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnterpriseEvent {
    /// The business instant.
    #[serde(deserialize_with = "crate::calendar::deserialize_instant")]
    pub at: DateTime<FixedOffset>,
    /// What happened.
    #[serde(flatten)]
    pub fact: EnterpriseFact,
    /// Deadlines this event starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opens: Vec<Deadline>,
    /// Open deadlines this event closes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closes: Vec<DeadlineClosure>,
}

impl EnterpriseEvent {
    /// The event type stored in the envelope, e.g. `enterprise.survey_completed`.
    pub fn event_type(&self) -> &'static str {
        match &self.fact {
            EnterpriseFact::ComplaintRecorded { .. } => "enterprise.complaint_recorded",
            EnterpriseFact::FindingRecorded { .. } => "enterprise.finding_recorded",
            EnterpriseFact::KeySupervisionStarted { .. } => "enterprise.key_supervision_started",
            EnterpriseFact::KeySupervisionEnded { .. } => "enterprise.key_supervision_ended",
            EnterpriseFact::GradeReviewRequired { .. } => "enterprise.grade_review_required",
            EnterpriseFact::GradeReviewConditionEnded => "enterprise.grade_review_condition_ended",
            EnterpriseFact::ExitConditionMet { .. } => "enterprise.exit_condition_met",
            EnterpriseFact::ExitConditionEnded => "enterprise.exit_condition_ended",
            EnterpriseFact::CreditRatingRecorded { .. } => "enterprise.credit_rating_recorded",
            EnterpriseFact::Blacklisted { .. } => "enterprise.blacklisted",
            EnterpriseFact::RemovedFromBlacklist { .. } => "enterprise.removed_from_blacklist",
            EnterpriseFact::SurveyCompleted { .. } => "enterprise.survey_completed",
            EnterpriseFact::RectificationRefused { .. } => "enterprise.rectification_refused",
            EnterpriseFact::DowngradeRequired { .. } => "enterprise.downgrade_required",
            EnterpriseFact::GradeDowngraded { .. } => "enterprise.grade_downgraded",
            EnterpriseFact::FeeStandardEnforced { .. } => "enterprise.fee_standard_enforced",
            EnterpriseFact::FeeStandardRefused { .. } => "enterprise.fee_standard_refused",
            EnterpriseFact::RefundOrdered { .. } => "enterprise.refund_ordered",
            EnterpriseFact::ExitProcedureStarted { .. } => "enterprise.exit_procedure_started",
            EnterpriseFact::Escalation(EscalationFact::DeadlineMissed { .. }) => "enterprise.deadline_missed",
            EnterpriseFact::Escalation(EscalationFact::Escalated { .. }) => "enterprise.escalated",
            EnterpriseFact::Escalation(EscalationFact::DeadlineRecomputed { .. }) => "enterprise.deadline_recomputed",
            EnterpriseFact::Escalation(EscalationFact::ReferralDecided { .. }) => "enterprise.referral_decided",
        }
    }
}

/// A finding counted before interpretation 22 held the company responsible.
fn attributable_before_interpretation_22() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// A lead's latest finding as the counts read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Substantiated or not.
    pub finding: Finding,
    /// Interpretation 22: whether the matter is the company's responsibility.
    pub attributable: bool,
    /// When it was found.
    pub at: DateTime<FixedOffset>,
}

impl Found {
    /// GRD-1, EXT-1, interpretation 22: whether the finding counts against the company,
    /// whenever it was made: substantiated and the company's responsibility.
    pub fn counts(&self) -> bool {
        self.finding == Finding::Substantiated && self.attributable
    }

    /// Whether the finding counts against the company at `at`: it counts, and was made by then.
    pub fn counts_by(&self, at: DateTime<FixedOffset>) -> bool {
        self.counts() && self.at <= at
    }
}

/// A lead counted against the company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedLead {
    /// The complainant's keyed identity; none for an anonymous lead.
    pub complainant_key: Option<ComplainantKey>,
    /// When it was registered.
    pub registered_at: DateTime<FixedOffset>,
    /// The community.
    pub community: String,
    /// The lead it was split from, for a linked lead.
    pub linked_to: Option<ComplaintId>,
    /// The latest finding.
    pub finding: Option<Found>,
}

/// The leads counted against a company, held in the order the window counts of REG-4, GRD-1
/// and EXT-1 read them: by registration instant, with each lead's instant kept by identifier,
/// and apart the keys of those whose latest finding is substantiated. A count then walks the
/// leads of its window only, and a substantiated count only the substantiated ones, so that
/// judging a company with thousands of leads on record reads neither all of them nor, for a
/// count of every lead, looks any of them up.
#[derive(Debug, Clone, Default)]
pub struct CountedLeads {
    registered: HashMap<ComplaintId, DateTime<FixedOffset>>,
    by_registration: BTreeMap<RegistrationKey, CountedLead>,
    substantiated_by_registration: BTreeSet<RegistrationKey>,
}

/// A lead's place in [`CountedLeads`]: its registration instant, then its identifier.
type RegistrationKey = (DateTime<FixedOffset>, ComplaintId);

/// Two collections are equal when they hold the same leads; the instants by identifier and
/// the substantiated keys follow from them.
impl PartialEq for CountedLeads {
    fn eq(&self, other: &Self) -> bool {
        self.by_registration == other.by_registration
    }
}

impl Eq for CountedLeads {}

impl CountedLeads {
    /// Number of leads.
    pub fn len(&self) -> usize {
        self.registered.len()
    }

    /// Whether no lead is counted.
    pub fn is_empty(&self) -> bool {
        self.registered.is_empty()
    }

    /// One lead.
    pub fn get(&self, lead: &ComplaintId) -> Option<&CountedLead> {
        let registered_at = self.registered.get(lead)?;
        self.by_registration.get(&(*registered_at, lead.clone()))
    }

    /// Whether a lead is counted.
    pub fn contains_key(&self, lead: &ComplaintId) -> bool {
        self.registered.contains_key(lead)
    }

    /// Every lead, by registration instant.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&ComplaintId, &CountedLead)> + '_ {
        self.by_registration.iter().map(|((_, id), lead)| (id, lead))
    }

    /// Counts a lead, replacing what was counted under its identifier before.
    pub fn insert(&mut self, id: ComplaintId, lead: CountedLead) {
        if let Some(earlier) = self.registered.insert(id.clone(), lead.registered_at) {
            let key = (earlier, id.clone());
            self.by_registration.remove(&key);
            self.substantiated_by_registration.remove(&key);
        }
        let key = (lead.registered_at, id);
        if lead.finding.is_some_and(|found| found.counts()) {
            self.substantiated_by_registration.insert(key.clone());
        }
        self.by_registration.insert(key, lead);
    }

    /// Records a lead's latest finding; a lead not counted is left alone.
    pub fn record_finding(&mut self, id: &ComplaintId, found: Found) {
        let Some(registered_at) = self.registered.get(id) else { return };
        let key = (*registered_at, id.clone());
        let Some(lead) = self.by_registration.get_mut(&key) else { return };
        lead.finding = Some(found);
        if found.counts() {
            self.substantiated_by_registration.insert(key);
        } else {
            self.substantiated_by_registration.remove(&key);
        }
    }

    /// The leads registered after `start` and at or before `end`, latest first.
    fn registered_within(
        &self,
        start: DateTime<FixedOffset>,
        end: DateTime<FixedOffset>,
    ) -> impl Iterator<Item = (&ComplaintId, &CountedLead)> + '_ {
        window(start, end)
            .map(|bounds| self.by_registration.range(bounds))
            .into_iter()
            .flatten()
            .rev()
            .map(|((_, id), lead)| (id, lead))
    }

    /// The leads registered after `start` and at or before `end` whose latest finding is
    /// substantiated, whenever it was found; latest registered first.
    fn substantiated_within(
        &self,
        start: DateTime<FixedOffset>,
        end: DateTime<FixedOffset>,
    ) -> impl Iterator<Item = (&ComplaintId, &CountedLead)> + '_ {
        window(start, end)
            .map(|bounds| self.substantiated_by_registration.range(bounds))
            .into_iter()
            .flatten()
            .rev()
            .filter_map(|key| self.by_registration.get_key_value(key).map(|((_, id), lead)| (id, lead)))
    }
}

/// The range of registration keys after `start` and at or before `end`; none when the window's
/// end is not after its start (which no range could express). Instants are exact to the
/// nanosecond, so "after start" is "at or after the next nanosecond", and every key of that
/// instant orders after the empty identifier.
fn window(
    start: DateTime<FixedOffset>,
    end: DateTime<FixedOffset>,
) -> Option<(Bound<RegistrationKey>, Bound<RegistrationKey>)> {
    let after = |instant: DateTime<FixedOffset>| {
        instant.checked_add_signed(TimeDelta::nanoseconds(1)).map(|next| (next, ComplaintId::least()))
    };
    if start >= end {
        return None;
    }
    let lower = after(start)?;
    let upper = after(end).map_or(Bound::Unbounded, Bound::Excluded);
    Some((Bound::Included(lower), upper))
}

/// A completed survey (interpretation 13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survey {
    /// The community.
    pub community: String,
    /// When it was recorded.
    pub at: DateTime<FixedOffset>,
    /// People asked.
    pub respondents: u32,
    /// People satisfied.
    pub satisfied: u32,
}

/// Everything known about one company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Company {
    /// The code.
    pub uscc: Uscc,
    /// The latest name a lead gave.
    pub name: String,
    /// Leads counted, by lead.
    pub leads: CountedLeads,
    /// Under key supervision (REG-4) since.
    pub key_supervision_since: Option<DateTime<FixedOffset>>,
    /// A grade review in force (GRD-1) since.
    pub grade_review_since: Option<DateTime<FixedOffset>>,
    /// The exit condition holding (EXT-1) since.
    pub exit_condition_since: Option<DateTime<FixedOffset>>,
    /// The exit procedure started at.
    pub exit_started_at: Option<DateTime<FixedOffset>>,
    /// The latest credit rating.
    pub credit_rating: Option<String>,
    /// On the black list since.
    pub blacklisted_on: Option<NaiveDate>,
    /// Completed surveys, oldest first.
    pub surveys: Vec<Survey>,
    /// Refusals to rectify: community and instant.
    pub refusals: Vec<(String, DateTime<FixedOffset>)>,
    /// Current grade of each community, where one was set.
    pub grades: BTreeMap<String, u8>,
    /// Open deadlines, misses and escalations.
    pub obligations: Obligations,
    /// The latest business instant recorded on the stream.
    pub last_at: Option<DateTime<FixedOffset>>,
}

/// A company's state: nothing before its first lead.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnterpriseState {
    /// The company, once a lead names it.
    pub company: Option<Company>,
}

/// The start of a window of `months` calendar months ending at `end`: the same wall-clock
/// instant in Shanghai that many months before, or the month's last day where that day does
/// not exist (interpretation 20).
pub fn window_start(end: DateTime<FixedOffset>, months: u32) -> DateTime<FixedOffset> {
    end.checked_sub_months(Months::new(months)).unwrap_or(end)
}

/// Satisfaction in basis points, rounded down.
pub fn satisfaction_bp(respondents: u32, satisfied: u32) -> u32 {
    if respondents == 0 {
        return 0;
    }
    u32::try_from(u64::from(satisfied) * 10_000 / u64::from(respondents)).unwrap_or(10_000)
}

/// Whether satisfied/respondents is strictly below a threshold in basis points, exactly.
fn below(respondents: u32, satisfied: u32, threshold_bp: u32) -> bool {
    u64::from(satisfied) * 10_000 < u64::from(threshold_bp) * u64::from(respondents)
}

/// Leads and findings a decision is about to record, seen together with the company's
/// recorded ones when its conditions are evaluated, so that the decision need not fold its
/// events into a copy of the whole company.
#[derive(Debug, Default)]
struct Overlay {
    added: Vec<(ComplaintId, CountedLead)>,
    findings: BTreeMap<ComplaintId, Found>,
}

impl Overlay {
    const EMPTY: &'static Overlay = &Overlay { added: Vec::new(), findings: BTreeMap::new() };
}

impl Company {
    /// A company with nothing recorded yet.
    pub fn new(uscc: Uscc, name: String) -> Company {
        Company {
            uscc,
            name,
            leads: CountedLeads::default(),
            key_supervision_since: None,
            grade_review_since: None,
            exit_condition_since: None,
            exit_started_at: None,
            credit_rating: None,
            blacklisted_on: None,
            surveys: Vec::new(),
            refusals: Vec::new(),
            grades: BTreeMap::new(),
            obligations: Obligations::default(),
            last_at: None,
        }
    }

    /// Every counted lead with its latest finding, the overlay's included; the overlay's first,
    /// then the recorded ones by descending id. The window counts read the indexes instead
    /// (see [`Company::counted`]).
    fn leads_with<'a>(
        &'a self,
        overlay: &'a Overlay,
    ) -> impl Iterator<Item = (&'a ComplaintId, &'a CountedLead, Option<Found>)> + 'a {
        overlay
            .added
            .iter()
            .map(|(id, lead)| (id, lead))
            .chain(self.leads.iter().rev())
            .map(move |(id, lead)| (id, lead, overlay.findings.get(id).copied().or(lead.finding)))
    }

    /// The leads of the window of `months` ending at `at` that count (interpretations 2 and
    /// 20): registered after the window's start and at or before its end, and for
    /// substantiated counts found substantiated at or before `at`. The overlay's leads come
    /// first, then the recorded ones of the window, latest registered first; a substantiated
    /// count reads only the recorded leads found substantiated, and those the overlay is about
    /// to find substantiated.
    fn counted<'a>(
        &'a self,
        overlay: &'a Overlay,
        at: DateTime<FixedOffset>,
        months: u32,
        basis: CountBasis,
    ) -> impl Iterator<Item = (&'a ComplaintId, &'a CountedLead)> + 'a {
        let start = window_start(at, months);
        let in_window = move |lead: &CountedLead| lead.registered_at > start && lead.registered_at <= at;
        let added = overlay.added.iter().map(|(id, lead)| (id, lead)).filter(move |(_, lead)| in_window(lead));
        let (every, substantiated) = match basis {
            CountBasis::All => (Some(self.leads.registered_within(start, at)), None),
            CountBasis::Substantiated => {
                // Recorded leads the overlay finds substantiated that the index does not hold yet.
                let newly_found = overlay
                    .findings
                    .keys()
                    .filter_map(|id| self.leads.get(id).map(|lead| (id, lead)))
                    .filter(move |(_, lead)| in_window(lead) && !lead.finding.is_some_and(|found| found.counts()));
                (None, Some(self.leads.substantiated_within(start, at).chain(newly_found)))
            }
        };
        let recorded = every.into_iter().flatten().chain(substantiated.into_iter().flatten());
        added.chain(recorded).filter(move |(id, lead)| match basis {
            CountBasis::All => true,
            CountBasis::Substantiated => {
                let finding = overlay.findings.get(*id).copied().or(lead.finding);
                finding.is_some_and(|found| found.counts_by(at))
            }
        })
    }

    /// Whether the distinct complainants in a window are more than `threshold`: distinct keys,
    /// plus each anonymous complaint once, even when it was split into linked leads
    /// (interpretations 2 and 15). It stops counting as soon as they are, so that a company
    /// with thousands of leads is judged after a few dozen of them.
    fn distinct_more_than(
        &self,
        overlay: &Overlay,
        at: DateTime<FixedOffset>,
        months: u32,
        basis: CountBasis,
        threshold: u32,
    ) -> bool {
        let threshold = usize::try_from(threshold).unwrap_or(usize::MAX);
        // Ordered sets: the keys are uniformly random hex, so comparing two of them usually
        // stops at their first byte, which is cheaper than hashing each whole key.
        let mut keys = BTreeSet::new();
        let mut anonymous = BTreeSet::new();
        for (id, lead) in self.counted(overlay, at, months, basis) {
            match &lead.complainant_key {
                Some(key) => keys.insert(key.as_str()),
                None => anonymous.insert(lead.linked_to.as_ref().unwrap_or(id)),
            };
            if keys.len() + anonymous.len() > threshold {
                return true;
            }
        }
        false
    }

    /// The evidence of a count: what [`Company::distinct`] counted, listed.
    fn evidence(&self, overlay: &Overlay, at: DateTime<FixedOffset>, months: u32, basis: CountBasis) -> CountEvidence {
        let mut keys = BTreeSet::new();
        let mut anonymous_complaints = BTreeSet::new();
        let mut anonymous_leads = Vec::new();
        let mut leads = Vec::new();
        for (id, lead) in self.counted(overlay, at, months, basis) {
            leads.push(id.clone());
            match &lead.complainant_key {
                Some(key) => {
                    keys.insert(key.clone());
                }
                None => {
                    anonymous_complaints.insert(lead.linked_to.as_ref().unwrap_or(id));
                    anonymous_leads.push(id.clone());
                }
            }
        }
        leads.sort();
        anonymous_leads.sort();
        CountEvidence {
            window_start: window_start(at, months),
            window_end: at,
            distinct: u32::try_from(keys.len() + anonymous_complaints.len()).unwrap_or(u32::MAX),
            keys: keys.into_iter().collect(),
            anonymous_leads,
            leads,
        }
    }

    /// Distinct complainants among the leads registered in the window of `months` ending at
    /// `at` (interpretations 2 and 20).
    pub fn complainants_in_window(&self, at: DateTime<FixedOffset>, months: u32) -> CountEvidence {
        self.evidence(Overlay::EMPTY, at, months, CountBasis::All)
    }

    /// Distinct complainants among the leads registered in the window of `months` ending at
    /// `at` and found substantiated at or before `at` (interpretations 8 and 20).
    pub fn substantiated_in_window(&self, at: DateTime<FixedOffset>, months: u32) -> CountEvidence {
        self.evidence(Overlay::EMPTY, at, months, CountBasis::Substantiated)
    }

    /// REG-4: whether distinct complainants in the key-supervision window are more than the
    /// threshold, with the evidence.
    pub fn key_supervision(&self, at: DateTime<FixedOffset>, policy: &Policy) -> (bool, CountEvidence) {
        let rules = &policy.companies;
        let evidence = self.evidence(Overlay::EMPTY, at, rules.key_supervision_window_months, CountBasis::All);
        (evidence.distinct > rules.key_supervision_more_than, evidence)
    }

    fn key_supervision_holds(&self, overlay: &Overlay, at: DateTime<FixedOffset>, policy: &Policy) -> bool {
        let rules = &policy.companies;
        self.distinct_more_than(
            overlay,
            at,
            rules.key_supervision_window_months,
            CountBasis::All,
            rules.key_supervision_more_than,
        )
    }

    /// GRD-1: the triggers of a grade review that hold at `at`.
    pub fn grade_review_triggers(&self, at: DateTime<FixedOffset>, policy: &Policy) -> Vec<GradeReviewTrigger> {
        self.grade_review_triggers_with(Overlay::EMPTY, at, policy)
    }

    fn grade_review_triggers_with(
        &self,
        overlay: &Overlay,
        at: DateTime<FixedOffset>,
        policy: &Policy,
    ) -> Vec<GradeReviewTrigger> {
        let rules = &policy.companies;
        let mut triggers = Vec::new();
        if self.grade_review_complaints(overlay, at, policy) {
            let months = rules.grade_review_window_months;
            let evidence = self.evidence(overlay, at, months, CountBasis::Substantiated);
            triggers.push(GradeReviewTrigger::Complaints { evidence });
        }
        if let Some(rating) = self.low_credit_rating(policy) {
            triggers.push(GradeReviewTrigger::LowCreditRating { rating: rating.clone() });
        }
        if let Some(listed_on) = self.long_blacklisted_on(at, policy) {
            triggers.push(GradeReviewTrigger::LongBlacklisted { listed_on });
        }
        triggers
    }

    /// Whether some trigger of a grade review holds at `at`: [`Self::grade_review_triggers`]
    /// is not empty, without gathering the evidence.
    fn grade_review_holds(&self, overlay: &Overlay, at: DateTime<FixedOffset>, policy: &Policy) -> bool {
        self.grade_review_complaints(overlay, at, policy)
            || self.low_credit_rating(policy).is_some()
            || self.long_blacklisted_on(at, policy).is_some()
    }

    fn grade_review_complaints(&self, overlay: &Overlay, at: DateTime<FixedOffset>, policy: &Policy) -> bool {
        let rules = &policy.companies;
        let months = rules.grade_review_window_months;
        self.distinct_more_than(overlay, at, months, CountBasis::Substantiated, rules.grade_review_more_than)
    }

    fn low_credit_rating(&self, policy: &Policy) -> Option<&String> {
        self.credit_rating
            .as_ref()
            .filter(|rating| policy.companies.low_credit_ratings.iter().any(|low| low == *rating))
    }

    fn long_blacklisted_on(&self, at: DateTime<FixedOffset>, policy: &Policy) -> Option<NaiveDate> {
        let listed_on = self.blacklisted_on?;
        let long_since = listed_on.checked_add_months(Months::new(policy.companies.long_blacklist_months))?;
        (long_since <= at.date_naive()).then_some(listed_on)
    }

    /// EXT-1: whether the exit procedure may start at `at`, with the evidence.
    pub fn exit_condition(&self, at: DateTime<FixedOffset>, policy: &Policy) -> (bool, ExitEvidence) {
        let holds = self.exit_condition_holds(Overlay::EMPTY, at, policy);
        (holds, self.exit_evidence(Overlay::EMPTY, at, policy))
    }

    /// The refusals in the exit window and the latest survey's satisfaction there if below
    /// the threshold (interpretation 13).
    fn exit_aggravations(&self, at: DateTime<FixedOffset>, policy: &Policy) -> (Vec<String>, Option<u32>) {
        let rules = &policy.companies;
        let start = window_start(at, rules.exit_window_months);
        let in_window = |instant: DateTime<FixedOffset>| instant > start && instant <= at;
        let refusals: Vec<String> = self
            .refusals
            .iter()
            .filter(|(_, refused_at)| in_window(*refused_at))
            .map(|(community, _)| community.clone())
            .collect();
        let latest_survey = self.surveys.iter().rfind(|survey| in_window(survey.at));
        let low_satisfaction_bp = latest_survey
            .filter(|survey| below(survey.respondents, survey.satisfied, rules.exit_satisfaction_below_bp))
            .map(|survey| satisfaction_bp(survey.respondents, survey.satisfied));
        (refusals, low_satisfaction_bp)
    }

    fn exit_condition_holds(&self, overlay: &Overlay, at: DateTime<FixedOffset>, policy: &Policy) -> bool {
        let rules = &policy.companies;
        let (refusals, low_satisfaction) = self.exit_aggravations(at, policy);
        (!refusals.is_empty() || low_satisfaction.is_some())
            && self.distinct_more_than(
                overlay,
                at,
                rules.exit_window_months,
                CountBasis::Substantiated,
                rules.exit_more_than,
            )
    }

    fn exit_evidence(&self, overlay: &Overlay, at: DateTime<FixedOffset>, policy: &Policy) -> ExitEvidence {
        let (refusals, low_satisfaction_bp) = self.exit_aggravations(at, policy);
        let count = self.evidence(overlay, at, policy.companies.exit_window_months, CountBasis::Substantiated);
        ExitEvidence { count, refusals, low_satisfaction_bp }
    }

    /// Communities a grade review covers (interpretation 14): those with a substantiated
    /// complaint in the window, else every community with a lead on record.
    fn communities_to_survey(&self, overlay: &Overlay, triggers: &[GradeReviewTrigger]) -> Vec<String> {
        let counted: BTreeSet<&ComplaintId> = triggers
            .iter()
            .filter_map(|trigger| match trigger {
                GradeReviewTrigger::Complaints { evidence } => Some(evidence.leads.iter()),
                _ => None,
            })
            .flatten()
            .collect();
        let mut communities: BTreeSet<String> = self
            .leads_with(overlay)
            .filter(|(id, _, _)| counted.contains(id))
            .map(|(_, lead, _)| lead.community.clone())
            .collect();
        if communities.is_empty() {
            communities.extend(self.leads_with(overlay).map(|(_, lead, _)| lead.community.clone()));
        }
        communities.into_iter().collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CountBasis {
    All,
    Substantiated,
}

fn required(rule: RuleId, field: &'static str, value: &str) -> Result<(), DomainError> {
    if value.trim().is_empty() { Err(DomainError::MissingField { rule, field }) } else { Ok(()) }
}

fn require_body(
    allowed: &[BodyCode],
    rule: RuleId,
    command: &'static str,
    ctx: &Context<'_>,
) -> Result<(), DomainError> {
    if allowed.contains(&ctx.actor.body) {
        Ok(())
    } else {
        Err(DomainError::WrongBody { rule, command, acting: ctx.actor.body, responsible: allowed.first().copied() })
    }
}

fn event(ctx: &Context<'_>, fact: EnterpriseFact) -> EnterpriseEvent {
    EnterpriseEvent { at: ctx.now, fact, opens: Vec::new(), closes: Vec::new() }
}

fn open_deadline<'a>(
    company: &'a Company,
    kind: DeadlineKind,
    community: &str,
    command: &'static str,
) -> Result<&'a Deadline, DomainError> {
    company.obligations.open_of_kind(kind, Some(community)).ok_or(DomainError::Unmet {
        rule: kind.rule(),
        command,
        requirement: Requirement::CompanyCondition,
    })
}

fn close(deadline: &Deadline, how: ClosedHow) -> DeadlineClosure {
    DeadlineClosure { seq: deadline.seq, kind: deadline.kind, how }
}

fn community_deadline(
    ctx: &Context<'_>,
    seq: u32,
    kind: DeadlineKind,
    body: BodyCode,
    community: &str,
) -> Result<Deadline, DomainError> {
    let mut deadline = ctx.deadline(seq, kind, body, ctx.now)?;
    deadline.community = Some(community.to_owned());
    Ok(deadline)
}

/// Decides a command on a company, then records every condition the result makes true or
/// false at the decision's instant (interpretation 16).
pub fn decide(
    state: &EnterpriseState,
    command: EnterpriseCommand,
    ctx: &Context<'_>,
) -> Result<Vec<EnterpriseEvent>, DomainError> {
    match command {
        // The frequent commands evaluate the conditions on the company as recorded plus what
        // they are about to record, without copying the company.
        EnterpriseCommand::CountLeads { uscc, company_name, complaints, findings } => {
            decide_count(state, uscc, company_name, complaints, findings, ctx)
        }
        EnterpriseCommand::EvaluateConditions => {
            let company =
                state.company.as_ref().ok_or(DomainError::NotFound { rule: RuleId::Reg4, subject: "company" })?;
            let mut events = Vec::new();
            record_condition_changes(company, Overlay::EMPTY, ctx, &mut events)?;
            Ok(events)
        }
        // The rare, human commands fold their events into a copy and evaluate that.
        command => {
            let mut events = decide_command(state, command, ctx)?;
            let after = events.iter().fold(state.clone(), evolve);
            if let Some(company) = &after.company {
                record_condition_changes(company, Overlay::EMPTY, ctx, &mut events)?;
            }
            Ok(events)
        }
    }
}

/// Appends an event for every condition whose truth differs from what the stream records
/// (interpretation 16). Each round records one condition, so this ends after at most one
/// round per condition.
fn record_condition_changes(
    company: &Company,
    overlay: &Overlay,
    ctx: &Context<'_>,
    events: &mut Vec<EnterpriseEvent>,
) -> Result<(), DomainError> {
    let mut recorded = RecordedConditions::of(company);
    let mut next_seq = company.obligations.next_seq();
    while let Some(event) = condition_change(company, overlay, &recorded, next_seq, ctx)? {
        recorded.apply(&event.fact);
        next_seq += u32::try_from(event.opens.len()).unwrap_or(u32::MAX);
        events.push(event);
    }
    Ok(())
}

/// REG-4, GRD-1, EXT-1: counts leads and findings, skipping what is already counted.
fn decide_count(
    state: &EnterpriseState,
    uscc: Uscc,
    company_name: String,
    complaints: Vec<LeadRecord>,
    findings: Vec<FindingRecord>,
    ctx: &Context<'_>,
) -> Result<Vec<EnterpriseEvent>, DomainError> {
    required(RuleId::Reg4, "company_name", &company_name)?;
    // Counts arrive from tousu's reactions a moment after the leads' events; a company's facts
    // never go back in time, so the count is recorded (and its conditions evaluated) no earlier
    // than the latest fact already on the company's stream, such as a survey recorded since.
    let recorded_until = state.company.as_ref().and_then(|company| company.last_at);
    let later = Context { now: recorded_until.map_or(ctx.now, |last| last.max(ctx.now)), ..*ctx };
    let ctx = &later;
    let company = match &state.company {
        Some(company) if company.uscc != uscc => {
            return Err(DomainError::InvalidField {
                rule: RuleId::Reg4,
                field: "uscc",
                reason: format!("this stream is company {}, not {uscc}", company.uscc),
            });
        }
        Some(company) => Cow::Borrowed(company),
        None => Cow::Owned(Company::new(uscc.clone(), company_name.clone())),
    };
    let mut overlay = Overlay::default();
    let mut events = Vec::new();
    for record in complaints {
        required(RuleId::Reg4, "complaints.community", &record.community)?;
        let counted =
            company.leads.contains_key(&record.lead) || overlay.added.iter().any(|(id, _)| *id == record.lead);
        if counted {
            continue;
        }
        events.push(event(
            ctx,
            EnterpriseFact::ComplaintRecorded {
                uscc: uscc.clone(),
                company_name: company_name.clone(),
                lead: record.lead.clone(),
                complainant_key: record.complainant_key.clone(),
                registered_at: record.registered_at,
                community: record.community.clone(),
                linked_to: record.linked_to.clone(),
            },
        ));
        overlay.added.push((
            record.lead,
            CountedLead {
                complainant_key: record.complainant_key,
                registered_at: record.registered_at,
                community: record.community,
                linked_to: record.linked_to,
                finding: None,
            },
        ));
    }
    for record in findings {
        let current = match company.leads.get(&record.lead) {
            Some(lead) => Some(lead.finding),
            None => overlay.added.iter().find(|(id, _)| *id == record.lead).map(|(_, lead)| lead.finding),
        };
        let Some(current) = current else {
            return Err(DomainError::InvalidField {
                rule: RuleId::Grd1,
                field: "findings.lead",
                reason: format!("lead {} is not counted against this company", record.lead),
            });
        };
        let latest = overlay.findings.get(&record.lead).copied().or(current);
        let found = Found { finding: record.finding, attributable: record.attributable, at: record.found_at };
        if latest == Some(found) {
            continue;
        }
        overlay.findings.insert(record.lead.clone(), found);
        events.push(event(
            ctx,
            EnterpriseFact::FindingRecorded {
                lead: record.lead,
                finding: record.finding,
                attributable: record.attributable,
                found_at: record.found_at,
            },
        ));
    }
    if !events.is_empty() {
        record_condition_changes(&company, &overlay, ctx, &mut events)?;
    }
    Ok(events)
}

fn decide_command(
    state: &EnterpriseState,
    command: EnterpriseCommand,
    ctx: &Context<'_>,
) -> Result<Vec<EnterpriseEvent>, DomainError> {
    let name = command.name();
    let company = state.company.as_ref().ok_or(DomainError::NotFound { rule: command.rule(), subject: "company" })?;
    let seq = company.obligations.next_seq();
    match command {
        EnterpriseCommand::CountLeads { .. } | EnterpriseCommand::EvaluateConditions => {
            unreachable!("decided without copying the company")
        }
        EnterpriseCommand::RecordCreditRating { rating } => {
            require_body(&[BodyCode::ZJ], RuleId::Grd1, name, ctx)?;
            required_within(RuleId::Grd1, "rating", &rating, REFERENCE_MAX_CHARS)?;
            Ok(vec![event(ctx, EnterpriseFact::CreditRatingRecorded { rating })])
        }
        EnterpriseCommand::RecordBlacklisting { listed_on } => {
            require_body(&[BodyCode::ZJ], RuleId::Grd1, name, ctx)?;
            if company.blacklisted_on.is_some() {
                return Err(DomainError::WrongState {
                    rule: RuleId::Grd1,
                    command: name,
                    subject: "company",
                    state: "already on the black list",
                });
            }
            if listed_on > ctx.now.date_naive() {
                return Err(DomainError::InvalidField {
                    rule: RuleId::Grd1,
                    field: "listed_on",
                    reason: format!("{listed_on} is in the future"),
                });
            }
            Ok(vec![event(ctx, EnterpriseFact::Blacklisted { listed_on })])
        }
        EnterpriseCommand::RecordBlacklistRemoval { removed_on } => {
            require_body(&[BodyCode::ZJ], RuleId::Grd1, name, ctx)?;
            let Some(listed_on) = company.blacklisted_on else {
                return Err(DomainError::WrongState {
                    rule: RuleId::Grd1,
                    command: name,
                    subject: "company",
                    state: "not on the black list",
                });
            };
            if removed_on < listed_on || removed_on > ctx.now.date_naive() {
                return Err(DomainError::InvalidField {
                    rule: RuleId::Grd1,
                    field: "removed_on",
                    reason: format!("{removed_on} must lie between the listing {listed_on} and today"),
                });
            }
            Ok(vec![event(ctx, EnterpriseFact::RemovedFromBlacklist { removed_on })])
        }
        EnterpriseCommand::RecordSurvey { community, respondents, satisfied, publication } => {
            // GRD-1: 住建 with the street office and the community carries out the survey.
            require_body(&[BodyCode::ZJ, BodyCode::JB, BodyCode::SQ], RuleId::Grd1, name, ctx)?;
            required_within(RuleId::Grd1, "community", &community, PLACE_MAX_CHARS)?;
            let survey = open_deadline(company, DeadlineKind::Survey, &community, name)?;
            if respondents == 0 {
                return Err(DomainError::InvalidField {
                    rule: RuleId::Grd1,
                    field: "respondents",
                    reason: "a survey needs at least one respondent".to_owned(),
                });
            }
            if respondents > SURVEY_MAX_RESPONDENTS {
                return Err(DomainError::InvalidField {
                    rule: RuleId::Grd1,
                    field: "respondents",
                    reason: format!(
                        "{respondents} respondents are more than the {SURVEY_MAX_RESPONDENTS} one community's survey may have"
                    ),
                });
            }
            if satisfied > respondents {
                return Err(DomainError::InvalidField {
                    rule: RuleId::Grd1,
                    field: "satisfied",
                    reason: format!("{satisfied} satisfied is more than the {respondents} respondents"),
                });
            }
            required_within(RuleId::Grd1, "publication", &publication, TEXT_MAX_CHARS)?;
            let mut completed = event(
                ctx,
                EnterpriseFact::SurveyCompleted {
                    community: community.clone(),
                    respondents,
                    satisfied,
                    satisfaction_bp: satisfaction_bp(respondents, satisfied),
                    publication,
                },
            );
            completed.closes.push(close(survey, ClosedHow::Met));
            let mut events = vec![completed];
            // GRD-2: satisfaction below the threshold requires the downgrade.
            if below(respondents, satisfied, ctx.policy.companies.downgrade_satisfaction_below_bp) {
                events.push(downgrade_required(
                    company,
                    ctx,
                    seq,
                    &community,
                    DowngradeReason::LowSatisfaction { satisfaction_bp: satisfaction_bp(respondents, satisfied) },
                )?);
            }
            Ok(events)
        }
        EnterpriseCommand::RecordRectificationRefused { community, detail } => {
            require_body(&[BodyCode::ZJ, BodyCode::JB, BodyCode::SQ], RuleId::Grd2, name, ctx)?;
            required_within(RuleId::Grd2, "community", &community, PLACE_MAX_CHARS)?;
            required_within(RuleId::Grd2, "detail", &detail, TEXT_MAX_CHARS)?;
            let refused = event(ctx, EnterpriseFact::RectificationRefused { community: community.clone(), detail });
            let mut events = vec![refused];
            events.push(downgrade_required(company, ctx, seq, &community, DowngradeReason::RectificationRefused)?);
            Ok(events)
        }
        EnterpriseCommand::DowngradeGrade { community, to_grade } => {
            require_body(&[BodyCode::ZJ], RuleId::Grd2, name, ctx)?;
            within(RuleId::Grd2, "community", &community, PLACE_MAX_CHARS)?;
            let downgrade = open_deadline(company, DeadlineKind::Downgrade, &community, name)?;
            let from_grade = company.grades.get(&community).copied();
            if to_grade == 0 || from_grade.is_some_and(|from| to_grade <= from) {
                return Err(DomainError::InvalidField {
                    rule: RuleId::Grd2,
                    field: "to_grade",
                    reason: format!(
                        "grade {to_grade} is not below the community's current grade{}",
                        from_grade.map(|from| format!(" {from}")).unwrap_or_default()
                    ),
                });
            }
            let mut downgraded = event(
                ctx,
                EnterpriseFact::GradeDowngraded {
                    community: community.clone(),
                    from_grade,
                    to_grade,
                    pushed_to: vec![BodyCode::FG, BodyCode::SJ],
                },
            );
            downgraded.closes.push(close(downgrade, ClosedHow::Met));
            // GRD-3: 发改 enforces the lower grade's fee standard within its period.
            downgraded.opens.push(community_deadline(ctx, seq, DeadlineKind::FeeEnforce, BodyCode::FG, &community)?);
            Ok(vec![downgraded])
        }
        EnterpriseCommand::EnforceFeeStandard { community, detail } => {
            require_body(&[BodyCode::FG], RuleId::Grd3, name, ctx)?;
            within(RuleId::Grd3, "community", &community, PLACE_MAX_CHARS)?;
            let fee = open_deadline(company, DeadlineKind::FeeEnforce, &community, name)?;
            required_within(RuleId::Grd3, "detail", &detail, TEXT_MAX_CHARS)?;
            let mut enforced =
                event(ctx, EnterpriseFact::FeeStandardEnforced { community, detail, copied_to: vec![BodyCode::ZJ] });
            enforced.closes.push(close(fee, ClosedHow::Met));
            Ok(vec![enforced])
        }
        EnterpriseCommand::RefuseFeeStandard { community, detail } => {
            require_body(&[BodyCode::FG], RuleId::Grd4, name, ctx)?;
            within(RuleId::Grd4, "community", &community, PLACE_MAX_CHARS)?;
            let fee = open_deadline(company, DeadlineKind::FeeEnforce, &community, name)?;
            required_within(RuleId::Grd4, "detail", &detail, TEXT_MAX_CHARS)?;
            let mut refused = event(
                ctx,
                EnterpriseFact::FeeStandardRefused { community: community.clone(), detail, handed_to: BodyCode::SJ },
            );
            refused.closes.push(close(fee, ClosedHow::Met));
            // GRD-4: 市场监管 has the over-collected fees refunded within its period.
            refused.opens.push(community_deadline(ctx, seq, DeadlineKind::Refund, BodyCode::SJ, &community)?);
            Ok(vec![refused])
        }
        EnterpriseCommand::OrderRefund { community, amount_fen, penalty } => {
            require_body(&[BodyCode::SJ], RuleId::Grd4, name, ctx)?;
            within(RuleId::Grd4, "community", &community, PLACE_MAX_CHARS)?;
            let refund = open_deadline(company, DeadlineKind::Refund, &community, name)?;
            amount(RuleId::Grd4, "amount_fen", amount_fen)?;
            required_within(RuleId::Grd4, "penalty", &penalty, TEXT_MAX_CHARS)?;
            let mut ordered = event(
                ctx,
                EnterpriseFact::RefundOrdered {
                    community,
                    amount_fen,
                    penalty,
                    copied_to: vec![BodyCode::FG, BodyCode::ZJ],
                },
            );
            ordered.closes.push(close(refund, ClosedHow::Met));
            Ok(vec![ordered])
        }
        EnterpriseCommand::StartExitProcedure { decision, street_office_official } => {
            require_body(&[BodyCode::ZJ], RuleId::Ext1, name, ctx)?;
            if company.exit_started_at.is_some() {
                return Err(DomainError::WrongState {
                    rule: RuleId::Ext1,
                    command: name,
                    subject: "company",
                    state: "already in the exit procedure",
                });
            }
            if company.exit_condition_since.is_none() {
                return Err(DomainError::Unmet {
                    rule: RuleId::Ext1,
                    command: name,
                    requirement: Requirement::CompanyCondition,
                });
            }
            required_within(RuleId::Ext1, "decision", &decision, TEXT_MAX_CHARS)?;
            required_within(RuleId::Ext1, "street_office_official", &street_office_official, PERSON_NAME_MAX_CHARS)?;
            Ok(vec![event(ctx, EnterpriseFact::ExitProcedureStarted { decision, street_office_official })])
        }
        EnterpriseCommand::Escalate { seq, level } => {
            let facts = company.obligations.decide_escalation(seq, level, ctx)?;
            Ok(facts.into_iter().map(|fact| event(ctx, EnterpriseFact::Escalation(fact))).collect())
        }
        EnterpriseCommand::RecomputeDeadline { seq } => {
            let fact = company.obligations.decide_recompute(seq, None, ctx)?;
            Ok(vec![event(ctx, EnterpriseFact::Escalation(fact))])
        }
        EnterpriseCommand::DecideReferral { seq, decision, reason } => {
            let fact = company.obligations.decide_referral(seq, decision, &reason, name, ctx)?;
            Ok(vec![event(ctx, EnterpriseFact::Escalation(fact))])
        }
    }
}

/// GRD-2: the downgrade of a community is required within its period, unless one is
/// already pending there.
fn downgrade_required(
    company: &Company,
    ctx: &Context<'_>,
    seq: u32,
    community: &str,
    reason: DowngradeReason,
) -> Result<EnterpriseEvent, DomainError> {
    let mut required = event(ctx, EnterpriseFact::DowngradeRequired { community: community.to_owned(), reason });
    if company.obligations.open_of_kind(DeadlineKind::Downgrade, Some(community)).is_none() {
        required.opens.push(community_deadline(ctx, seq, DeadlineKind::Downgrade, BodyCode::ZJ, community)?);
    }
    Ok(required)
}

/// Which conditions the stream records as holding, as a decision goes along.
#[derive(Debug, Clone, Copy)]
struct RecordedConditions {
    key_supervision: bool,
    grade_review: bool,
    exit: bool,
}

impl RecordedConditions {
    fn of(company: &Company) -> Self {
        RecordedConditions {
            key_supervision: company.key_supervision_since.is_some(),
            grade_review: company.grade_review_since.is_some(),
            exit: company.exit_condition_since.is_some(),
        }
    }

    fn apply(&mut self, fact: &EnterpriseFact) {
        match fact {
            EnterpriseFact::KeySupervisionStarted { .. } => self.key_supervision = true,
            EnterpriseFact::KeySupervisionEnded { .. } => self.key_supervision = false,
            EnterpriseFact::GradeReviewRequired { .. } => self.grade_review = true,
            EnterpriseFact::GradeReviewConditionEnded => self.grade_review = false,
            EnterpriseFact::ExitConditionMet { .. } => self.exit = true,
            EnterpriseFact::ExitConditionEnded => self.exit = false,
            _ => {}
        }
    }
}

/// The next condition whose truth differs from what the stream records, as an event, or
/// `None` when the record is up to date (interpretation 16).
fn condition_change(
    company: &Company,
    overlay: &Overlay,
    recorded: &RecordedConditions,
    next_seq: u32,
    ctx: &Context<'_>,
) -> Result<Option<EnterpriseEvent>, DomainError> {
    let at = ctx.now;
    let policy = ctx.policy;
    let key_months = policy.companies.key_supervision_window_months;
    match (company.key_supervision_holds(overlay, at, policy), recorded.key_supervision) {
        (true, false) => {
            let evidence = company.evidence(overlay, at, key_months, CountBasis::All);
            return Ok(Some(event(ctx, EnterpriseFact::KeySupervisionStarted { evidence })));
        }
        (false, true) => {
            let evidence = company.evidence(overlay, at, key_months, CountBasis::All);
            return Ok(Some(event(ctx, EnterpriseFact::KeySupervisionEnded { evidence })));
        }
        _ => {}
    }
    match (company.grade_review_holds(overlay, at, policy), recorded.grade_review) {
        (true, false) => {
            // Only now, when the review starts, is the evidence gathered.
            let triggers = company.grade_review_triggers_with(overlay, at, policy);
            let communities = company.communities_to_survey(overlay, &triggers);
            let mut required =
                event(ctx, EnterpriseFact::GradeReviewRequired { triggers, communities: communities.clone() });
            let mut seq = next_seq;
            for community in &communities {
                if company.obligations.open_of_kind(DeadlineKind::Survey, Some(community)).is_none() {
                    required.opens.push(community_deadline(ctx, seq, DeadlineKind::Survey, BodyCode::ZJ, community)?);
                    seq += 1;
                }
            }
            return Ok(Some(required));
        }
        (false, true) => return Ok(Some(event(ctx, EnterpriseFact::GradeReviewConditionEnded))),
        _ => {}
    }
    match (company.exit_condition_holds(overlay, at, policy), recorded.exit) {
        (true, false) => {
            let evidence = company.exit_evidence(overlay, at, policy);
            Ok(Some(event(ctx, EnterpriseFact::ExitConditionMet { evidence })))
        }
        (false, true) => Ok(Some(event(ctx, EnterpriseFact::ExitConditionEnded))),
        _ => Ok(None),
    }
}

/// Folds an event into a company's state.
pub fn evolve(mut state: EnterpriseState, event: &EnterpriseEvent) -> EnterpriseState {
    if let EnterpriseFact::ComplaintRecorded {
        uscc,
        company_name,
        lead,
        complainant_key,
        registered_at,
        community,
        linked_to,
    } = &event.fact
    {
        let company = state.company.get_or_insert_with(|| Company::new(uscc.clone(), company_name.clone()));
        company.name = company_name.clone();
        company.leads.insert(
            lead.clone(),
            CountedLead {
                complainant_key: complainant_key.clone(),
                registered_at: *registered_at,
                community: community.clone(),
                linked_to: linked_to.clone(),
                finding: None,
            },
        );
    }
    let Some(company) = &mut state.company else {
        return state;
    };
    match &event.fact {
        EnterpriseFact::ComplaintRecorded { .. } => {}
        EnterpriseFact::FindingRecorded { lead, finding, attributable, found_at } => {
            company.leads.record_finding(lead, Found { finding: *finding, attributable: *attributable, at: *found_at });
        }
        EnterpriseFact::KeySupervisionStarted { .. } => company.key_supervision_since = Some(event.at),
        EnterpriseFact::KeySupervisionEnded { .. } => company.key_supervision_since = None,
        EnterpriseFact::GradeReviewRequired { .. } => company.grade_review_since = Some(event.at),
        EnterpriseFact::GradeReviewConditionEnded => company.grade_review_since = None,
        EnterpriseFact::ExitConditionMet { .. } => company.exit_condition_since = Some(event.at),
        EnterpriseFact::ExitConditionEnded => company.exit_condition_since = None,
        EnterpriseFact::CreditRatingRecorded { rating } => company.credit_rating = Some(rating.clone()),
        EnterpriseFact::Blacklisted { listed_on } => company.blacklisted_on = Some(*listed_on),
        EnterpriseFact::RemovedFromBlacklist { .. } => company.blacklisted_on = None,
        EnterpriseFact::SurveyCompleted { community, respondents, satisfied, .. } => company.surveys.push(Survey {
            community: community.clone(),
            at: event.at,
            respondents: *respondents,
            satisfied: *satisfied,
        }),
        EnterpriseFact::RectificationRefused { community, .. } => company.refusals.push((community.clone(), event.at)),
        EnterpriseFact::DowngradeRequired { .. } => {}
        EnterpriseFact::GradeDowngraded { community, to_grade, .. } => {
            company.grades.insert(community.clone(), *to_grade);
        }
        EnterpriseFact::FeeStandardEnforced { .. }
        | EnterpriseFact::FeeStandardRefused { .. }
        | EnterpriseFact::RefundOrdered { .. } => {}
        EnterpriseFact::ExitProcedureStarted { .. } => company.exit_started_at = Some(event.at),
        EnterpriseFact::Escalation(fact) => company.obligations.apply_escalation(fact),
    }
    company.obligations.apply(&event.opens, &event.closes);
    company.last_at = Some(company.last_at.map_or(event.at, |last| last.max(event.at)));
    state
}

#[cfg(test)]
mod tests {
    //! The window counts read the indexes of [`CountedLeads`]; these properties compare them
    //! with the plain reading of every lead (REG-4, GRD-1, EXT-1), overlay included.

    use proptest::prelude::*;

    use super::*;
    use crate::identity::IdentitySecret;

    /// A generated lead: its number, its complainant (none for an anonymous lead), the lead an
    /// anonymous one was split from, its registration hour, and maybe a finding (substantiated
    /// or not) with its hour.
    type GeneratedLead = (u32, Option<u8>, Option<u8>, i64, Option<(bool, bool, i64)>);

    /// Leads registered over about two years, every hour or so, among a few complainants.
    fn lead_strategy() -> impl Strategy<Value = GeneratedLead> {
        (
            0u32..60,
            proptest::option::of(0u8..12),
            proptest::option::of(0u8..60),
            0i64..(2 * 366 * 24),
            proptest::option::of((any::<bool>(), any::<bool>(), 0i64..(2 * 366 * 24))),
        )
    }

    fn instant(hours: i64) -> DateTime<FixedOffset> {
        let base = DateTime::parse_from_rfc3339("2025-01-01T00:00:00+08:00").expect("valid");
        base + TimeDelta::hours(hours)
    }

    fn lead(id: u32, complainant: Option<u8>, linked_to: Option<u8>, hours: i64) -> (ComplaintId, CountedLead) {
        let secret = IdentitySecret::new(b"counting".to_vec());
        let key = complainant.map(|c| ComplainantKey::derive(&secret, &format!("业主{c}"), "13800000000", None));
        let linked_to = linked_to.filter(|_| key.is_none()).map(|l| format!("L{l}").parse().expect("well formed"));
        let lead = CountedLead {
            complainant_key: key,
            registered_at: instant(hours),
            community: format!("小区{}", id % 3),
            linked_to,
            finding: None,
        };
        (format!("L{id}").parse().expect("well formed"), lead)
    }

    /// A finding: substantiated or not, and whether it is the company's responsibility, at an
    /// hour.
    fn found_at(substantiated: bool, attributable: bool, hours: i64) -> Found {
        let finding = if substantiated { Finding::Substantiated } else { Finding::Unsubstantiated };
        Found { finding, attributable, at: instant(hours) }
    }

    /// The counted leads as every lead read one by one gives them.
    fn plain(
        company: &Company,
        overlay: &Overlay,
        at: DateTime<FixedOffset>,
        months: u32,
        basis: CountBasis,
    ) -> Vec<ComplaintId> {
        let start = window_start(at, months);
        let mut leads: Vec<ComplaintId> = company
            .leads_with(overlay)
            .filter(|(_, lead, finding)| {
                let in_window = lead.registered_at > start && lead.registered_at <= at;
                let counts = basis == CountBasis::All || finding.is_some_and(|found| found.counts_by(at));
                in_window && counts
            })
            .map(|(id, _, _)| id.clone())
            .collect();
        leads.sort();
        leads
    }

    proptest! {
        #[test]
        fn reg_4_grd_1_window_counts_read_from_the_indexes_match_every_lead_read(
            recorded in proptest::collection::vec(lead_strategy(), 0..80),
            added in proptest::collection::vec(lead_strategy(), 0..4),
            overlay_findings in proptest::collection::vec((0u32..60, any::<bool>(), any::<bool>(), 0i64..(2 * 366 * 24)), 0..6),
            at_hours in 0i64..(2 * 366 * 24),
            months in prop_oneof![Just(6u32), Just(12u32), Just(1u32)],
        ) {
            let mut company = Company::new("91350100M000100Y43".parse().expect("valid"), "物业".to_owned());
            // What the leads are, kept apart by identifier: a lead counted again replaces
            // itself, wherever its new registration instant puts it.
            let mut expected = BTreeMap::new();
            for (id, complainant, linked_to, hours, found) in &recorded {
                let (id, mut lead) = lead(*id, *complainant, *linked_to, *hours);
                company.leads.insert(id.clone(), lead.clone());
                if let Some((substantiated, attributable, found_hours)) = found {
                    let finding = found_at(*substantiated, *attributable, *found_hours);
                    company.leads.record_finding(&id, finding);
                    lead.finding = Some(finding);
                }
                expected.insert(id, lead);
            }
            let held: BTreeMap<ComplaintId, CountedLead> =
                company.leads.iter().map(|(id, lead)| (id.clone(), lead.clone())).collect();
            prop_assert_eq!(&held, &expected);
            prop_assert_eq!(company.leads.len(), expected.len());
            for (id, lead) in &expected {
                prop_assert_eq!(company.leads.get(id), Some(lead));
            }
            let mut overlay = Overlay::default();
            for (offset, (id, complainant, linked_to, hours, _)) in added.iter().enumerate() {
                let id = 100 + id + u32::try_from(offset).expect("small");
                if overlay.added.iter().all(|(added, _)| added.as_str() != format!("L{id}")) {
                    overlay.added.push(lead(id, *complainant, *linked_to, *hours));
                }
            }
            for (id, substantiated, attributable, hours) in &overlay_findings {
                overlay.findings.insert(format!("L{id}").parse().expect("well formed"), found_at(*substantiated, *attributable, *hours));
            }
            let at = instant(at_hours);
            for basis in [CountBasis::All, CountBasis::Substantiated] {
                let mut indexed: Vec<ComplaintId> =
                    company.counted(&overlay, at, months, basis).map(|(id, _)| id.clone()).collect();
                indexed.sort();
                prop_assert_eq!(&indexed, &plain(&company, &overlay, at, months, basis), "{:?}", basis);
                let distinct = company.evidence(&overlay, at, months, basis).distinct;
                for threshold in [0, 1, 2, 5, 10] {
                    prop_assert_eq!(company.distinct_more_than(&overlay, at, months, basis, threshold), distinct > threshold);
                }
            }
        }
    }
}
