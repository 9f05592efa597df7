//! The State Council's holiday schedules loaded while the service runs (interpretation 21).
//!
//! A year without the State Council's annual notice is computed provisionally; once the notice
//! is published, an operator loads it. The load is an event on the one `calendar` stream, with
//! the year file's whole text, so that every node following the log puts the same data in
//! force, a restart finds it again, and anyone replaying the history can see which schedule
//! recomputed the provisional deadlines and who loaded it when.
//!
//! Loading the schedule a year already has (shipped, configured or loaded before) records
//! nothing; a different schedule for a year that already has one is refused.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::actor::Role;
use crate::calendar::{CalendarError, OfficialYear, YearKind};
use crate::context::Context;
use crate::error::DomainError;

/// The stream the loads are recorded on.
pub const STREAM: &str = "calendar";

/// A command on the schedules.
/// Serialisable so that a request's fingerprint can hash what it asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum ScheduleCommand {
    /// Load a year's official schedule: the text of a national year file.
    LoadOfficialYear {
        /// The year file, in the format of `calendar`'s module documentation.
        text: String,
    },
}

impl ScheduleCommand {
    /// The command's name in errors, logs and the API.
    pub fn name(&self) -> &'static str {
        match self {
            ScheduleCommand::LoadOfficialYear { .. } => "load_official_year",
        }
    }

    /// Whether a role may issue the command: operators, who run the service.
    pub fn permitted(&self, role: Role) -> bool {
        role == Role::Operator
    }
}

/// What happened to the schedules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ScheduleFact {
    /// A year's official schedule was loaded.
    OfficialYearLoaded {
        /// The year.
        year: i32,
        /// The version of its data, e.g. `2027.official.1c4e09aa`.
        version: String,
        /// The notice it comes from, as the file names it.
        source: String,
        /// The year file as loaded.
        text: String,
    },
}

/// One event of the `calendar` stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleEvent {
    /// The business instant.
    #[serde(deserialize_with = "crate::calendar::deserialize_instant")]
    pub at: DateTime<FixedOffset>,
    /// What happened.
    #[serde(flatten)]
    pub fact: ScheduleFact,
}

impl ScheduleEvent {
    /// The event type stored in the envelope.
    pub fn event_type(&self) -> &'static str {
        match &self.fact {
            ScheduleFact::OfficialYearLoaded { .. } => "calendar.official_year_loaded",
        }
    }
}

/// A year loaded, as the stream records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedYear {
    /// The version of its data.
    pub version: String,
    /// The notice it comes from.
    pub source: String,
    /// The year file as loaded.
    pub text: String,
    /// When it was loaded.
    pub loaded_at: DateTime<FixedOffset>,
}

/// The schedules loaded so far, by year.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScheduleState {
    /// Every year loaded, by year.
    pub years: BTreeMap<i32, LoadedYear>,
}

/// Decides a command on the schedules.
pub fn decide(
    state: &ScheduleState,
    command: ScheduleCommand,
    ctx: &Context<'_>,
) -> Result<Vec<ScheduleEvent>, DomainError> {
    let ScheduleCommand::LoadOfficialYear { text } = command;
    let year = OfficialYear::read(&text).map_err(|source| DomainError::Schedule { source })?;
    let already = |loaded: &str| {
        if loaded == year.version() {
            Ok(Vec::new())
        } else {
            Err(DomainError::Schedule {
                source: CalendarError::YearAlreadyOfficial {
                    year: year.year(),
                    loaded: loaded.to_owned(),
                    offered: year.version().to_owned(),
                },
            })
        }
    };
    if let Some(loaded) = state.years.get(&year.year()) {
        return already(&loaded.version);
    }
    if ctx.calendar.year_kind(year.year()) == Some(YearKind::Official)
        && let Some(version) = ctx.calendar.year_version(year.year())
    {
        return already(version);
    }
    Ok(vec![ScheduleEvent {
        at: ctx.now,
        fact: ScheduleFact::OfficialYearLoaded {
            year: year.year(),
            version: year.version().to_owned(),
            source: year.source().to_owned(),
            text,
        },
    }])
}

/// Folds an event into the schedules.
pub fn evolve(mut state: ScheduleState, event: &ScheduleEvent) -> ScheduleState {
    match &event.fact {
        ScheduleFact::OfficialYearLoaded { year, version, source, text } => {
            // The first load of a year stands; the decision never records a second one.
            state.years.entry(*year).or_insert_with(|| LoadedYear {
                version: version.clone(),
                source: source.clone(),
                text: text.clone(),
                loaded_at: event.at,
            });
        }
    }
    state
}
