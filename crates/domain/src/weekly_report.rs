//! The weekly summary for the district discipline inspection commission, as issued (REG-3,
//! interpretation 26).
//!
//! The summary of a week is issued once, at a fixed time after the week ends (policy
//! `reporting.weekly_issue_hours_after_week_end`, default Monday 09:00): an event on the one
//! `weekly-summaries` stream records its figures (the `weekly-summary` read model's city-wide
//! summary of the week, as it stood then), the overdue and escalated matters at the week's end,
//! and its history anchor, and the issued summary never changes. Events recorded later about a
//! past week (a lead classified after the week it came in, a recomputed due) change what the
//! read model computes for that week; they are reported in the next issued summary as
//! corrections to the earlier weeks, each figure once, as the difference between what was
//! reported and what the week now shows.
//!
//! The figures are the read model's, kept as the JSON it serialises to: the domain compares
//! them, it does not compute them.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeDelta, Weekday};
use serde::{Deserialize, Serialize};

use crate::actor::Role;
use crate::context::Context;
use crate::deadline::{DeadlineKind, EscalationLevel};
use crate::error::DomainError;
use crate::ids::BodyCode;
use crate::reporting::reporting_week;
use crate::rule::RuleId;

/// The stream the issued summaries are recorded on.
pub const STREAM: &str = "weekly-summaries";

/// How many issued weeks before the one being issued are checked for corrections.
pub const CORRECTION_WEEKS: usize = 12;

/// An obligation overdue at the week's end, as the issued summary lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverdueMatter {
    /// The stream, `complaint-…` or `enterprise-…`.
    pub stream: String,
    /// The deadline's number in its stream.
    pub seq: u32,
    /// The lead, or empty for a company's deadline.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub lead: String,
    /// The company concerned; empty when unknown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub company: String,
    /// The body that owes it.
    pub body: BodyCode,
    /// Its kind.
    pub kind: DeadlineKind,
    /// Its due instant.
    #[serde(deserialize_with = "crate::calendar::deserialize_instant")]
    pub due: DateTime<FixedOffset>,
    /// Days late at the week's end (working days for the kinds that count them), where the
    /// calendar could count them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_late: Option<u32>,
    /// Whether `days_late` counts working days.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub working_days: bool,
    /// The highest rung of the ladder recorded for it by the week's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rung: Option<EscalationLevel>,
    /// Whether its due is provisional (interpretation 21).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provisional: bool,
}

/// A figure of an earlier week that changed after it was reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    /// The earlier week's Monday.
    pub week_start: NaiveDate,
    /// The figure, e.g. `figures.received` or `received_by_category.SJ-3-1`.
    pub figure: String,
    /// What was last reported for it (0 when it was not listed).
    pub reported: i64,
    /// What the week shows now (0 when it is no longer listed).
    pub now: i64,
}

/// A command on the issued summaries.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WeeklyCommand {
    /// REG-3, interpretation 26: issue the summary of the week that starts on `week_start`.
    Issue {
        /// The week's Monday.
        week_start: NaiveDate,
        /// The read model's city-wide summary of the week, evaluated at its end.
        summary: serde_json::Value,
        /// The obligations overdue at the week's end.
        matters: Vec<OverdueMatter>,
        /// The read model's city-wide summaries of the earlier issued weeks, as they stand now,
        /// by Monday: compared with what was reported for them.
        earlier: BTreeMap<NaiveDate, serde_json::Value>,
    },
}

impl WeeklyCommand {
    /// The command's name in errors, logs and the API.
    pub fn name(&self) -> &'static str {
        match self {
            WeeklyCommand::Issue { .. } => "issue_weekly_summary",
        }
    }

    /// Whether a role may issue the command: tousu's own reactor, or an operator.
    pub fn permitted(&self, role: Role) -> bool {
        matches!(role, Role::System | Role::Operator)
    }
}

/// What happened to the issued summaries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum WeeklyFact {
    /// REG-3, interpretation 26: a week's summary was issued.
    SummaryIssued {
        /// The week's Monday.
        week_start: NaiveDate,
        /// The read model's city-wide summary of the week, with its history anchor.
        summary: serde_json::Value,
        /// The obligations overdue at the week's end.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        matters: Vec<OverdueMatter>,
        /// Figures of earlier weeks that changed since they were reported.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        corrections: Vec<Correction>,
    },
}

/// One event of the `weekly-summaries` stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeeklyEvent {
    /// The business instant: when it was issued.
    #[serde(deserialize_with = "crate::calendar::deserialize_instant")]
    pub at: DateTime<FixedOffset>,
    /// What happened.
    #[serde(flatten)]
    pub fact: WeeklyFact,
}

impl WeeklyEvent {
    /// The event type stored in the envelope.
    pub fn event_type(&self) -> &'static str {
        match &self.fact {
            WeeklyFact::SummaryIssued { .. } => "weekly_summary.issued",
        }
    }
}

/// A week as issued, with the corrections reported about it since.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuedWeek {
    /// When it was issued.
    pub issued_at: DateTime<FixedOffset>,
    /// The summary as issued.
    pub summary: serde_json::Value,
    /// The obligations overdue at the week's end.
    pub matters: Vec<OverdueMatter>,
    /// The corrections to earlier weeks reported with it.
    pub corrections: Vec<Correction>,
    /// The corrections to this week reported with later summaries, oldest first.
    pub corrected_later: Vec<(NaiveDate, Correction)>,
    /// Its figures as last reported: as issued, then as corrected.
    pub reported: BTreeMap<String, i64>,
}

/// The weeks issued so far.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WeeklyState {
    /// Every issued week, by Monday.
    pub weeks: BTreeMap<NaiveDate, IssuedWeek>,
}

impl WeeklyState {
    /// The Monday of the last week issued.
    pub fn last_issued(&self) -> Option<NaiveDate> {
        self.weeks.keys().next_back().copied()
    }

    /// The issued weeks before `week_start` checked for corrections, latest first.
    pub fn correction_weeks(&self, week_start: NaiveDate) -> Vec<NaiveDate> {
        self.weeks.range(..week_start).rev().take(CORRECTION_WEEKS).map(|(week, _)| *week).collect()
    }
}

/// The end of the week starting on `week_start`: the next Monday 00:00 +08:00.
pub fn week_end(week_start: NaiveDate) -> DateTime<FixedOffset> {
    (week_start + TimeDelta::days(7))
        .and_hms_opt(0, 0, 0)
        .and_then(|midnight| midnight.and_local_timezone(crate::calendar::shanghai()).single())
        .expect("a fixed offset is unambiguous")
}

/// When the summary of the week starting on `week_start` is due to be issued.
pub fn issue_instant(week_start: NaiveDate, hours_after_week_end: u32) -> DateTime<FixedOffset> {
    week_end(week_start) + TimeDelta::hours(i64::from(hours_after_week_end))
}

/// The Monday of the last week whose summary is due at `now`.
pub fn week_due(now: DateTime<FixedOffset>, hours_after_week_end: u32) -> NaiveDate {
    let this_week = reporting_week(now);
    let last_week = this_week - TimeDelta::days(7);
    if now >= issue_instant(last_week, hours_after_week_end) { last_week } else { last_week - TimeDelta::days(7) }
}

/// The figures of a summary as the corrections compare them, by name: the week's own figures
/// (`figures.received`, …) and every count it lists (`received_by_category.SJ-3-1`,
/// `blockages.SJ.overdue`, …). The previous week's figures, the change from it, the dates and
/// the anchor are not the week's own figures and are left out.
pub fn figures(summary: &serde_json::Value) -> BTreeMap<String, i64> {
    let mut flat = BTreeMap::new();
    let Some(object) = summary.as_object() else { return flat };
    for (name, value) in object {
        match (name.as_str(), value) {
            ("previous" | "change" | "anchor", _) => {}
            (_, serde_json::Value::Object(fields)) => {
                for (field, value) in fields {
                    if let Some(n) = value.as_i64() {
                        flat.insert(format!("{name}.{field}"), n);
                    }
                }
            }
            (_, serde_json::Value::Array(items)) => {
                for item in items.iter().filter_map(serde_json::Value::as_object) {
                    let Some(key) = ["key", "body", "uscc"].iter().find_map(|key| item.get(*key)?.as_str()) else {
                        continue;
                    };
                    for (field, value) in item {
                        let Some(n) = value.as_i64() else { continue };
                        let figure =
                            if field == "n" { format!("{name}.{key}") } else { format!("{name}.{key}.{field}") };
                        flat.insert(figure, n);
                    }
                }
            }
            _ => {}
        }
    }
    flat
}

/// The corrections between what was reported for a week and what it shows now, in figure order.
fn corrections_of(
    week_start: NaiveDate,
    reported: &BTreeMap<String, i64>,
    now: &BTreeMap<String, i64>,
) -> Vec<Correction> {
    let mut names: Vec<&String> = reported.keys().chain(now.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|figure| {
            let (was, is) = (reported.get(figure).copied().unwrap_or(0), now.get(figure).copied().unwrap_or(0));
            (was != is).then(|| Correction { week_start, figure: figure.clone(), reported: was, now: is })
        })
        .collect()
}

/// Decides a command on the issued summaries: a week is issued once its summary is due, never
/// twice, and never before a week already issued.
pub fn decide(state: &WeeklyState, command: WeeklyCommand, ctx: &Context<'_>) -> Result<Vec<WeeklyEvent>, DomainError> {
    let name = command.name();
    let WeeklyCommand::Issue { week_start, summary, matters, earlier } = command;
    let rule = RuleId::Reg3;
    if week_start.weekday() != Weekday::Mon {
        return Err(DomainError::InvalidField {
            rule,
            field: "week_start",
            reason: format!("{week_start} is not a Monday"),
        });
    }
    let hours = ctx.policy.reporting.weekly_issue_hours_after_week_end;
    if ctx.now < issue_instant(week_start, hours) {
        return Err(DomainError::WrongState {
            rule,
            command: name,
            subject: "week",
            state: "not yet due to be issued",
        });
    }
    if state.last_issued().is_some_and(|last| last >= week_start) {
        return Err(DomainError::WrongState { rule, command: name, subject: "week", state: "issued already" });
    }
    let mut corrections = Vec::new();
    for (week, now) in &earlier {
        if let Some(issued) = state.weeks.get(week) {
            corrections.extend(corrections_of(*week, &issued.reported, &figures(now)));
        }
    }
    Ok(vec![WeeklyEvent { at: ctx.now, fact: WeeklyFact::SummaryIssued { week_start, summary, matters, corrections } }])
}

/// Folds an event into the issued summaries.
pub fn evolve(mut state: WeeklyState, event: &WeeklyEvent) -> WeeklyState {
    match &event.fact {
        WeeklyFact::SummaryIssued { week_start, summary, matters, corrections } => {
            for correction in corrections {
                if let Some(earlier) = state.weeks.get_mut(&correction.week_start) {
                    earlier.reported.insert(correction.figure.clone(), correction.now);
                    earlier.corrected_later.push((*week_start, correction.clone()));
                }
            }
            state.weeks.insert(
                *week_start,
                IssuedWeek {
                    issued_at: event.at,
                    reported: figures(summary),
                    summary: summary.clone(),
                    matters: matters.clone(),
                    corrections: corrections.clone(),
                    corrected_later: Vec::new(),
                },
            );
        }
    }
    state
}
