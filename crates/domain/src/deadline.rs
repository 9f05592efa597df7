//! Deadlines: the twelve kinds of obligation the procedure sets, how each is computed, and
//! the escalation ladder for a missed one (ACC-2, interpretation 9).
//!
//! A deadline is computed once, when the event that starts it is decided, and stored in that
//! event with the rule that produced it; replay never recomputes it from today's calendar or
//! policy. Events also say which open deadlines they close and how, so a projection can
//! follow obligations without knowing the procedure.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::calendar::{Calendar, CalendarError, CalendarVersion, Period};
use crate::ids::BodyCode;
use crate::policy::Policy;
use crate::rule::RuleId;

/// The kind of an obligation with a due instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeadlineKind {
    /// TRF-1: notify the responsible body of an urgent lead and report to 区委、区政府.
    UrgentNotify,
    /// TRF-2: transfer a lead to its body.
    Transfer,
    /// HDL-1: close a general matter with feedback.
    GeneralClose,
    /// HDL-2: resolve a major matter (or meet the plan's own date).
    MajorResolve,
    /// HDL-2: submit a plan when a major matter cannot be resolved within the month.
    MajorPlan,
    /// HDL-2: report progress monthly while a plan is in force.
    ProgressReport,
    /// PEN-1: verify a penalty lead.
    PenaltyVerify,
    /// PEN-1: complete the penalty after the case is filed.
    PenaltyComplete,
    /// GRD-1: complete the service-quality and satisfaction survey.
    Survey,
    /// GRD-2: re-set the community's service grade.
    Downgrade,
    /// GRD-3: enforce the lower grade's fee standard.
    FeeEnforce,
    /// GRD-4: have over-collected fees refunded.
    Refund,
}

impl DeadlineKind {
    /// Every kind.
    pub const ALL: [DeadlineKind; 12] = [
        DeadlineKind::UrgentNotify,
        DeadlineKind::Transfer,
        DeadlineKind::GeneralClose,
        DeadlineKind::MajorResolve,
        DeadlineKind::MajorPlan,
        DeadlineKind::ProgressReport,
        DeadlineKind::PenaltyVerify,
        DeadlineKind::PenaltyComplete,
        DeadlineKind::Survey,
        DeadlineKind::Downgrade,
        DeadlineKind::FeeEnforce,
        DeadlineKind::Refund,
    ];

    /// The kind's name, as `tousu deadline` and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineKind::UrgentNotify => "urgent-notify",
            DeadlineKind::Transfer => "transfer",
            DeadlineKind::GeneralClose => "general-close",
            DeadlineKind::MajorResolve => "major-resolve",
            DeadlineKind::MajorPlan => "major-plan",
            DeadlineKind::ProgressReport => "progress-report",
            DeadlineKind::PenaltyVerify => "penalty-verify",
            DeadlineKind::PenaltyComplete => "penalty-complete",
            DeadlineKind::Survey => "survey",
            DeadlineKind::Downgrade => "downgrade",
            DeadlineKind::FeeEnforce => "fee-enforce",
            DeadlineKind::Refund => "refund",
        }
    }

    /// The rule that sets the deadline.
    pub fn rule(self) -> RuleId {
        match self {
            DeadlineKind::UrgentNotify => RuleId::Trf1,
            DeadlineKind::Transfer => RuleId::Trf2,
            DeadlineKind::GeneralClose => RuleId::Hdl1,
            DeadlineKind::MajorResolve | DeadlineKind::MajorPlan | DeadlineKind::ProgressReport => RuleId::Hdl2,
            DeadlineKind::PenaltyVerify | DeadlineKind::PenaltyComplete => RuleId::Pen1,
            DeadlineKind::Survey => RuleId::Grd1,
            DeadlineKind::Downgrade => RuleId::Grd2,
            DeadlineKind::FeeEnforce => RuleId::Grd3,
            DeadlineKind::Refund => RuleId::Grd4,
        }
    }

    /// The period the policy gives the kind, before any extension.
    pub fn period(self, policy: &Policy) -> Period {
        let p = &policy.periods;
        match self {
            DeadlineKind::UrgentNotify => Period::Hours(p.urgent_notify_hours),
            DeadlineKind::Transfer => Period::WorkingDays(p.transfer_working_days),
            DeadlineKind::GeneralClose => Period::Days(p.general_close_days),
            DeadlineKind::MajorResolve => Period::Months(p.major_resolve_months),
            DeadlineKind::MajorPlan => Period::Days(p.major_plan_days),
            DeadlineKind::ProgressReport => Period::Months(p.progress_report_months),
            DeadlineKind::PenaltyVerify => Period::WorkingDays(p.penalty_verify_working_days),
            DeadlineKind::PenaltyComplete => Period::Days(p.penalty_complete_days),
            DeadlineKind::Survey => Period::Days(p.survey_days),
            DeadlineKind::Downgrade => Period::Days(p.downgrade_days),
            DeadlineKind::FeeEnforce => Period::Days(p.fee_enforce_days),
            DeadlineKind::Refund => Period::Days(p.refund_days),
        }
    }

    /// What starts the period, in words, for `tousu deadline --list` and the documentation.
    pub fn starts_at(self) -> &'static str {
        match self {
            DeadlineKind::UrgentNotify | DeadlineKind::Transfer => "registration",
            DeadlineKind::GeneralClose | DeadlineKind::MajorResolve | DeadlineKind::MajorPlan => {
                "the transfer reaching the body"
            }
            DeadlineKind::ProgressReport => "the plan, then each report",
            DeadlineKind::PenaltyVerify => "discovery or receipt of the penalty lead",
            DeadlineKind::PenaltyComplete => "filing of the penalty case",
            DeadlineKind::Survey => "the grade-review condition",
            DeadlineKind::Downgrade => "the survey or the refusal to rectify",
            DeadlineKind::FeeEnforce => "the downgrade",
            DeadlineKind::Refund => "the refusal of the fee standard",
        }
    }

    /// Whether lateness against this kind is counted in working days (the rule counts its
    /// period in working days) rather than calendar days.
    pub fn counts_working_days(self) -> bool {
        matches!(self, DeadlineKind::Transfer | DeadlineKind::PenaltyVerify)
    }
}

impl fmt::Display for DeadlineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text does not name a deadline kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown deadline kind {0:?}: see `tousu deadline --list`")]
pub struct UnknownDeadlineKind(pub String);

impl FromStr for DeadlineKind {
    type Err = UnknownDeadlineKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeadlineKind::ALL.into_iter().find(|kind| kind.as_str() == s).ok_or_else(|| UnknownDeadlineKind(s.to_owned()))
    }
}

/// How a due instant was arrived at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum DueBasis {
    /// A period of the policy from a starting instant.
    Period {
        /// The instant the period starts from.
        start: DateTime<FixedOffset>,
        /// The period as applied (including any extension).
        period: Period,
    },
    /// The date a major matter's plan set for itself (HDL-2: "works to the plan's own dates").
    PlanDate {
        /// The plan's resolution date; due at 24:00 of it.
        date: NaiveDate,
    },
    /// An earlier deadline brought back unchanged, as when a misrouted transfer is returned
    /// and the TRF-2 clock does not restart (interpretation 15).
    Reinstated {
        /// The sequence number of the deadline brought back.
        original: u32,
    },
}

/// One obligation with its due instant, as stored in the event that starts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    /// Unique within its stream, in the order deadlines were opened.
    pub seq: u32,
    /// The kind.
    pub kind: DeadlineKind,
    /// The rule that produced it.
    pub rule: RuleId,
    /// The body that must meet it.
    pub body: BodyCode,
    /// For company deadlines, the residential community it concerns (interpretation 14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<String>,
    /// How the due instant was computed.
    pub basis: DueBasis,
    /// The due instant (24:00 of the last day for day-based periods).
    #[serde(deserialize_with = "crate::calendar::deserialize_instant")]
    pub due: DateTime<FixedOffset>,
    /// Interpretation 21: the due instant looked at a year without the State Council's
    /// schedule and was computed from the provisional calendar; it is recomputed when the
    /// year's schedule is loaded. Absent (false) in events written before provisional
    /// deadlines existed, which were all computed from official data.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provisional: bool,
    /// For a provisional due instant, the versions of the calendar years it looked at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<CalendarVersion>,
}

/// How an open deadline came to be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedHow {
    /// The obligation was fulfilled (on time or late: compare the event's instant with the due).
    Met,
    /// The obligation no longer applies because another took its place (a re-graded matter, an
    /// extended penalty period, a plan's own date, a returned transfer).
    Superseded,
}

/// The closing of an open deadline by an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineClosure {
    /// The deadline closed.
    pub seq: u32,
    /// Its kind, repeated so a reader of the log needs no lookup.
    pub kind: DeadlineKind,
    /// How it was closed.
    pub how: ClosedHow,
}

/// A rung of the escalation ladder (ACC-2, interpretation 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationLevel {
    /// On the day the deadline is missed: a reminder to the body.
    Reminder,
    /// Late by the district-report threshold: 住建 reports the body to 区委、区政府.
    DistrictLeadership,
    /// Late by the referral threshold, or a repeated miss by the same body on the same lead:
    /// referral to the district discipline inspection organ, reported to the city 住建.
    DisciplineOrgan,
}

impl EscalationLevel {
    /// Every level, lowest first.
    pub const ALL: [EscalationLevel; 3] =
        [EscalationLevel::Reminder, EscalationLevel::DistrictLeadership, EscalationLevel::DisciplineOrgan];

    /// The level's number, 1 to 3.
    pub fn number(self) -> u8 {
        match self {
            EscalationLevel::Reminder => 1,
            EscalationLevel::DistrictLeadership => 2,
            EscalationLevel::DisciplineOrgan => 3,
        }
    }

    /// The level's name in the API and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationLevel::Reminder => "reminder",
            EscalationLevel::DistrictLeadership => "district_leadership",
            EscalationLevel::DisciplineOrgan => "discipline_organ",
        }
    }
}

/// Why a deadline has reached an escalation level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationReason {
    /// The deadline has been missed by this many working days.
    Lateness,
    /// The same body has missed another deadline on the same lead before.
    RepeatMiss,
}

impl EscalationReason {
    /// The reason's name in the API and the read models.
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationReason::Lateness => "lateness",
            EscalationReason::RepeatMiss => "repeat_miss",
        }
    }

    /// The reason named `text`, as [`EscalationReason::as_str`] spells it.
    pub fn from_name(text: &str) -> Option<EscalationReason> {
        [EscalationReason::Lateness, EscalationReason::RepeatMiss].into_iter().find(|reason| reason.as_str() == text)
    }
}

/// The highest escalation level an open deadline has reached at `at`, with its reason, or
/// `None` while it is not yet missed (ACC-2, interpretation 9). `earlier_misses` is the
/// number of other deadlines of this lead that the same body has already missed.
pub fn escalation_level(
    calendar: &Calendar,
    policy: &Policy,
    due: DateTime<FixedOffset>,
    at: DateTime<FixedOffset>,
    earlier_misses: u32,
) -> Result<Option<(EscalationLevel, EscalationReason)>, CalendarError> {
    if at <= due {
        return Ok(None);
    }
    let ladder = &policy.escalation;
    let late = calendar.working_days_late(due, at)?;
    let level = if late >= ladder.discipline_referral_working_days {
        (EscalationLevel::DisciplineOrgan, EscalationReason::Lateness)
    } else if earlier_misses + 1 >= ladder.discipline_referral_repeat_misses {
        (EscalationLevel::DisciplineOrgan, EscalationReason::RepeatMiss)
    } else if late >= ladder.district_report_working_days {
        (EscalationLevel::DistrictLeadership, EscalationReason::Lateness)
    } else {
        (EscalationLevel::Reminder, EscalationReason::Lateness)
    };
    Ok(Some(level))
}

/// Every rung an open deadline due at `due` has reached at `at`, lowest first (ACC-2,
/// interpretation 9): the reminder once it has passed, the report to 区委、区政府 once it is late
/// by the district-report threshold, the referral once [`escalation_level`] gives it (by
/// lateness, or by a repeated miss, which may come before the district report). Empty while it
/// is not yet missed.
pub fn reached_levels(
    calendar: &Calendar,
    policy: &Policy,
    due: DateTime<FixedOffset>,
    at: DateTime<FixedOffset>,
    earlier_misses: u32,
) -> Result<Vec<EscalationLevel>, CalendarError> {
    let Some((highest, _)) = escalation_level(calendar, policy, due, at, earlier_misses)? else {
        return Ok(Vec::new());
    };
    let late = calendar.working_days_late(due, at)?;
    Ok(EscalationLevel::ALL
        .into_iter()
        .filter(|level| match level {
            EscalationLevel::Reminder => true,
            EscalationLevel::DistrictLeadership => late >= policy.escalation.district_report_working_days,
            EscalationLevel::DisciplineOrgan => highest == EscalationLevel::DisciplineOrgan,
        })
        .collect())
}

/// The instant at which a deadline due at `due` reaches `level` by lateness alone; the
/// reminder is due the moment the deadline passes.
pub fn escalation_instant(
    calendar: &Calendar,
    policy: &Policy,
    due: DateTime<FixedOffset>,
    level: EscalationLevel,
) -> Result<DateTime<FixedOffset>, CalendarError> {
    match level {
        EscalationLevel::Reminder => Ok(due),
        EscalationLevel::DistrictLeadership => {
            calendar.instant_working_days_late(due, policy.escalation.district_report_working_days)
        }
        EscalationLevel::DisciplineOrgan => {
            calendar.instant_working_days_late(due, policy.escalation.discipline_referral_working_days)
        }
    }
}
