//! The weekly summaries issued to the district discipline inspection commission (REG-3,
//! interpretation 26): issued by the deadline reactor once each week's summary is due, on the
//! `weekly-summaries` stream, and read back as issued. See `tousu_domain::weekly_report`.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use tousu_domain::weekly_report::{OverdueMatter, STREAM, WeeklyCommand, WeeklyState};
use tousu_store::EventStore;

use crate::App;
use crate::access::Principal;
use crate::engine::Written;
use crate::error::AppError;
use crate::ids::weekly_issue_correlation;

impl<S: EventStore + 'static> App<S> {
    /// The weeks issued so far.
    pub async fn issued_weeks(&self) -> Result<WeeklyState, AppError> {
        let (state, _) = self.engine.state::<WeeklyState>(&self.weekly, &crate::stream_name(STREAM)?).await?;
        Ok(state)
    }

    /// Issues the summary of the week starting on `week_start`, as tousu's reactor: once per
    /// week (the correlation derives from the week), refused before it is due.
    pub async fn issue_week(
        &self,
        week_start: NaiveDate,
        summary: serde_json::Value,
        matters: Vec<OverdueMatter>,
        earlier: BTreeMap<NaiveDate, serde_json::Value>,
    ) -> Result<Written, AppError> {
        let command = WeeklyCommand::Issue { week_start, summary, matters, earlier };
        let actor = Principal::system().actor(command.name())?;
        let correlation = weekly_issue_correlation(week_start);
        let outcome = self
            .engine
            .execute(
                &self.weekly,
                &crate::stream_name(STREAM)?,
                &actor,
                correlation,
                correlation.into(),
                self.now(),
                command,
            )
            .await?;
        Ok(outcome.written)
    }
}
