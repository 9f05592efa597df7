//! The monthly public bulletin as approved (PUB-1, interpretation 23).
//!
//! The `bulletin` read model computes a month's bulletin whenever it is asked: that is the
//! draft, and it follows every event recorded later (a recomputed due instant, a company's new
//! name). A named 住建 official approves a month's bulletin once the month is over: an event on
//! the one `bulletins` stream records the bulletin as the draft stood then, with the history
//! anchor of the log it was computed from, and the approved bulletin never changes. A month is
//! approved once; a correction is the next month's business, never an edit.
//!
//! The bulletin is the read model's, kept as the JSON it serialises to: the domain records it,
//! it does not compute it.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, FixedOffset, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::actor::Role;
use crate::context::Context;
use crate::error::DomainError;
use crate::ids::BodyCode;
use crate::limits::TEXT_MAX_CHARS;
use crate::rule::RuleId;

/// The stream the approved bulletins are recorded on.
pub const STREAM: &str = "bulletins";

/// The history anchor a draft was computed at: the log's anchor after the last event the
/// read models had applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftAnchor {
    /// The position of that last event.
    pub position: u64,
    /// The events the anchor covers, from the start of the log.
    pub events: u64,
    /// The anchor, lower-case hex.
    pub sha256: String,
}

/// A command on the approved bulletins.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub enum BulletinCommand {
    /// PUB-1, interpretation 23: approve the bulletin of the month starting on `month`.
    Approve {
        /// The month's first day.
        month: NaiveDate,
        /// The draft as the read model computes it now: its JSON.
        bulletin: serde_json::Value,
        /// The history anchor the draft was computed at; none on a log with no event.
        anchor: Option<DraftAnchor>,
        /// The official's note, e.g. the meeting that approved it; may be empty.
        note: String,
    },
}

impl BulletinCommand {
    /// The command's name in errors, logs and the API.
    pub fn name(&self) -> &'static str {
        match self {
            BulletinCommand::Approve { .. } => "approve_bulletin",
        }
    }

    /// Whether a role may issue the command: a 住建 official (the body is checked on deciding).
    pub fn permitted(&self, role: Role) -> bool {
        role == Role::Official
    }
}

/// What happened to the approved bulletins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BulletinFact {
    /// PUB-1, interpretation 23: a month's bulletin was approved, and is frozen.
    Approved {
        /// The month's first day.
        month: NaiveDate,
        /// The bulletin as approved: the read model's JSON.
        bulletin: serde_json::Value,
        /// The history anchor it was computed at.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        anchor: Option<DraftAnchor>,
        /// The official who approved it.
        approved_by: String,
        /// The official's note.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        note: String,
    },
}

/// One event of the `bulletins` stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulletinEvent {
    /// The business instant: when it was approved.
    #[serde(deserialize_with = "crate::calendar::deserialize_instant")]
    pub at: DateTime<FixedOffset>,
    /// What happened.
    #[serde(flatten)]
    pub fact: BulletinFact,
}

impl BulletinEvent {
    /// The event type stored in the envelope.
    pub fn event_type(&self) -> &'static str {
        match &self.fact {
            BulletinFact::Approved { .. } => "bulletin.approved",
        }
    }
}

/// A month's bulletin as approved.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovedBulletin {
    /// When it was approved.
    pub approved_at: DateTime<FixedOffset>,
    /// The official who approved it.
    pub approved_by: String,
    /// The bulletin as approved.
    pub bulletin: serde_json::Value,
    /// The history anchor it was computed at.
    pub anchor: Option<DraftAnchor>,
    /// The official's note.
    pub note: String,
}

/// The months approved so far.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BulletinState {
    /// Every approved month, by its first day.
    pub months: BTreeMap<NaiveDate, ApprovedBulletin>,
}

/// The first instant after the month starting on `month` (Shanghai): when it is over.
pub fn month_end(month: NaiveDate) -> DateTime<FixedOffset> {
    let first = month.with_day(1).unwrap_or(month);
    first
        .checked_add_months(Months::new(1))
        .unwrap_or(first)
        .and_hms_opt(0, 0, 0)
        .and_then(|midnight| midnight.and_local_timezone(crate::calendar::shanghai()).single())
        .expect("a fixed offset is unambiguous")
}

/// Decides a command on the approved bulletins: a month is approved by a 住建 official once it
/// is over, and never twice.
pub fn decide(
    state: &BulletinState,
    command: BulletinCommand,
    ctx: &Context<'_>,
) -> Result<Vec<BulletinEvent>, DomainError> {
    let name = command.name();
    let BulletinCommand::Approve { month, bulletin, anchor, note } = command;
    let rule = RuleId::Pub1;
    if ctx.actor.body != BodyCode::ZJ {
        return Err(DomainError::WrongBody {
            rule,
            command: name,
            acting: ctx.actor.body,
            responsible: Some(BodyCode::ZJ),
        });
    }
    if month.day() != 1 {
        return Err(DomainError::InvalidField {
            rule,
            field: "month",
            reason: format!("{month} is not a month's first day"),
        });
    }
    crate::limits::within(rule, "note", &note, TEXT_MAX_CHARS)?;
    if ctx.now < month_end(month) {
        return Err(DomainError::WrongState { rule, command: name, subject: "month", state: "not over yet" });
    }
    if state.months.contains_key(&month) {
        return Err(DomainError::WrongState {
            rule,
            command: name,
            subject: "month's bulletin",
            state: "approved already",
        });
    }
    let approved_by = ctx.actor.person.clone();
    Ok(vec![BulletinEvent { at: ctx.now, fact: BulletinFact::Approved { month, bulletin, anchor, approved_by, note } }])
}

/// Folds an event into the approved bulletins.
pub fn evolve(mut state: BulletinState, event: &BulletinEvent) -> BulletinState {
    match &event.fact {
        BulletinFact::Approved { month, bulletin, anchor, approved_by, note } => {
            state.months.insert(
                *month,
                ApprovedBulletin {
                    approved_at: event.at,
                    approved_by: approved_by.clone(),
                    bulletin: bulletin.clone(),
                    anchor: anchor.clone(),
                    note: note.clone(),
                },
            );
        }
    }
    state
}
