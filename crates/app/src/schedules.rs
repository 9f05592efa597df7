//! The State Council's holiday schedules on a running node (interpretation 21): loading a
//! year's official schedule records it on the `calendar` stream and puts it in force; a node
//! starting, or following the log, puts in force every schedule the stream records.
//!
//! What a load changes in force is the calendar of decisions made after it. The deadlines
//! computed provisionally before it are recomputed by the deadline reactor, one event each
//! (`deadlines`).

use std::sync::Arc;

use tousu_domain::calendar::{Calendar, OfficialYear, ScheduleWarning};
use tousu_domain::holiday_schedule::{STREAM, ScheduleCommand, ScheduleEvent, ScheduleFact, ScheduleState};
use tousu_store::{EventStore, RecordedEvent};

use crate::engine::Written;
use crate::error::AppError;
use crate::ids::RequestId;
use crate::{App, ClientOutcome, Principal};

/// What loading a year's schedule did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleLoad {
    /// The year.
    pub year: i32,
    /// The version of its data.
    pub version: String,
    /// What was recorded: nothing when the year already had this schedule.
    pub written: Written,
}

impl<S: EventStore + 'static> App<S> {
    /// The calendar in force now.
    pub fn calendar(&self) -> Arc<Calendar> {
        self.domain().calendar.current()
    }

    /// Interpretation 21: the warning that the last year with an official schedule is ending
    /// (from the policy's number of days before its 31 December) or has ended, today.
    pub fn schedule_warning(&self) -> Option<ScheduleWarning> {
        let days = self.domain().policy.calendar.warn_days_before_last_official_day;
        self.calendar().schedule_warning(self.now().date_naive(), days)
    }

    /// Loads a year's official schedule (the text of a national year file): validates it,
    /// records it on the `calendar` stream and puts it in force. The same schedule again
    /// records nothing; a different one for a year that already has one is refused.
    pub async fn load_calendar_year(
        &self,
        principal: &Principal,
        request_id: &RequestId,
        text: String,
    ) -> Result<ScheduleLoad, AppError> {
        let command = ScheduleCommand::LoadOfficialYear { text: text.clone() };
        let allowed = (command.name(), command.permitted(principal.role));
        let asked = command.clone();
        let stream = crate::stream_name(STREAM)?;
        let ClientOutcome { outcome, actor, .. } =
            self.client_command(&self.schedules, &stream, principal, request_id, allowed, command, &asked).await?;
        // The decision read the file already; reading it again cannot fail.
        let year = OfficialYear::read(&text).map_err(|source| tousu_domain::DomainError::Schedule { source })?;
        let load = ScheduleLoad { year: year.year(), version: year.version().to_owned(), written: outcome.written };
        if self.domain().calendar.add_official_year(year).map_err(|error| AppError::Internal(error.to_string()))? {
            tracing::info!(year = load.year, version = %load.version, person = %actor.person, "official holiday schedule loaded");
        }
        Ok(load)
    }

    /// Puts in force every schedule the `calendar` stream records, at a node's start; answers
    /// the years it added. A recorded schedule that contradicts the configured calendar (a
    /// year file given for the same year with other days) is refused with both versions named:
    /// the log's is what deadlines were recomputed with, so the configuration must change.
    pub async fn restore_calendar_years(&self) -> Result<Vec<i32>, AppError> {
        let (state, _) = self.engine.state::<ScheduleState>(&self.schedules, &crate::stream_name(STREAM)?).await?;
        let mut added = Vec::new();
        for (year, loaded) in &state.years {
            let official = OfficialYear::read(&loaded.text)
                .map_err(|error| AppError::Internal(format!("the schedule of {year} recorded in the log: {error}")))?;
            let changed = self.domain().calendar.add_official_year(official).map_err(|error| {
                AppError::Internal(format!(
                    "{error}: the schedule of {year} was loaded into the log on {} ({}); remove or correct the \
                     configured calendar year file for {year}",
                    loaded.loaded_at, loaded.source
                ))
            })?;
            if changed {
                added.push(*year);
            }
        }
        Ok(added)
    }

    /// Puts in force a schedule another node loaded, seen in the log; answers the year when
    /// the calendar changed. A schedule that contradicts this node's calendar is left out with
    /// an error in the log (the node's configuration disagrees with the cluster's record).
    pub fn apply_recorded_schedule(&self, recorded: &RecordedEvent) -> Option<i32> {
        let event: ScheduleEvent = match serde_json::from_slice(&recorded.event.payload) {
            Ok(event) => event,
            Err(error) => {
                tracing::error!(position = recorded.position.0, %error, "a holiday schedule event does not decode");
                return None;
            }
        };
        let ScheduleFact::OfficialYearLoaded { year, text, .. } = &event.fact else { return None };
        let added = OfficialYear::read(text).and_then(|official| self.domain().calendar.add_official_year(official));
        match added {
            Ok(true) => {
                tracing::info!(year, "official holiday schedule recorded by another node put in force");
                Some(*year)
            }
            Ok(false) => None,
            Err(error) => {
                tracing::error!(year, %error, "a holiday schedule in the log contradicts this node's calendar");
                None
            }
        }
    }
}
