//! The deadline reactor: as time passes it records missed deadlines and the rungs of the
//! escalation ladder (ACC-2, interpretation 9), recomputes provisional due instants once the
//! official schedule of a year they looked at is in force (interpretation 21), and has each
//! company's conditions re-evaluated once a day so that complaints aging out of a window end
//! key supervision, a grade review or the exit condition on the company's stream
//! (interpretation 16). It also warns operators, at its first pass and then once a day, when
//! the last year with an official schedule is ending.
//!
//! Its candidates come from the live overdue read model through [`EscalationSource`]; the
//! decision is the domain's, against the stream's own state, so a stale candidate (a deadline
//! met since) is refused there and nothing is written. Every command's correlation derives
//! from the deadline and what it records (the level and due, the calendar version it
//! recomputes, the company and the day), so whoever runs it and however often, each is
//! recorded once. It acts only on wall-clock time and the live read model: a rebuild or a
//! replay of a read model never triggers it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate};
use tousu_domain::complaint::ComplaintCommand;
use tousu_domain::deadline::EscalationLevel;
use tousu_domain::enterprise::EnterpriseCommand;
use tousu_domain::ids::{ComplaintId, Uscc};
use tousu_domain::weekly_report::{OverdueMatter, week_due, week_end};
use tousu_store::EventStore;

use crate::App;
use crate::engine::Written;
use crate::error::AppError;
use crate::ids::{daily_evaluation_correlation, escalation_correlation, recompute_correlation};

/// The daily evaluation of every company waits, after each company, this many times as long
/// as the evaluation took, less one: it keeps at most a quarter of one core busy (a city's
/// hundreds of companies, some with thousands of events each, take seconds to evaluate).
/// Escalations, which are due at an instant, are not paced.
const EVALUATION_DUTY: u32 = 4;

/// A rung of the ladder a deadline has reached and that is not recorded yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEscalation {
    /// The stream, `complaint-…` or `enterprise-…`.
    pub stream: String,
    /// The deadline's sequence number in the stream.
    pub seq: u32,
    /// Its due instant, as the read model has it.
    pub due: DateTime<FixedOffset>,
    /// The rung reached.
    pub level: EscalationLevel,
}

/// An open deadline whose provisional due instant looked at a year that now has an official
/// schedule (interpretation 21).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionalDue {
    /// The stream, `complaint-…` or `enterprise-…`.
    pub stream: String,
    /// The deadline's sequence number in the stream.
    pub seq: u32,
    /// The calendar version its due rests on, as the read model has it.
    pub calendar: String,
}

/// Where the reactor learns what is due.
pub trait EscalationSource: Send + Sync {
    /// Every rung reached at `at` and not yet recorded, from the live read model (none while
    /// the read model has no live generation).
    fn due(&self, at: DateTime<FixedOffset>) -> Result<Vec<DueEscalation>, String>;
    /// Every open provisional deadline that looked at one of `official_years`.
    fn provisional(&self, official_years: &[i32]) -> Result<Vec<ProvisionalDue>, String>;
    /// Every company with a stream.
    fn companies(&self) -> Result<Vec<Uscc>, String>;
    /// Interpretation 26: the city-wide summary of the week starting on `week_start`, evaluated
    /// at its end, as the `weekly-summary` read model computes it now (its JSON); none while
    /// the read model has no live generation.
    fn week_summary(&self, week_start: NaiveDate) -> Result<Option<serde_json::Value>, String>;
    /// Interpretation 26: the obligations overdue at `at` and still open, with their lateness
    /// then; none while the overdue read model has no live generation.
    fn overdue_at(&self, at: DateTime<FixedOffset>) -> Result<Option<Vec<OverdueMatter>>, String>;
}

/// What one pass of the reactor did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Provisional due instants recomputed (interpretation 21).
    pub recomputed: usize,
    /// Escalations recorded.
    pub escalated: usize,
    /// Candidates the domain refused (met, recorded or recomputed since the read model saw
    /// them).
    pub refused: usize,
    /// Companies re-evaluated.
    pub evaluated: usize,
    /// Weekly summaries issued (interpretation 26).
    pub issued: usize,
}

/// Whether a week's summary shows any activity: an event recorded before its end (its
/// history anchor), or any of its own figures not zero.
fn has_activity(summary: &serde_json::Value) -> bool {
    let anchored = summary.get("anchor").is_some_and(|anchor| !anchor.is_null());
    let counted = summary
        .get("figures")
        .and_then(serde_json::Value::as_object)
        .is_some_and(|figures| figures.values().any(|value| value.as_i64().is_some_and(|n| n != 0)));
    anchored || counted
}

/// A command of the reactor on one deadline of a lead's or a company's stream.
#[derive(Debug, Clone, Copy)]
enum DeadlineCommand {
    Escalate { seq: u32, level: EscalationLevel },
    Recompute { seq: u32 },
}

/// The deadline reactor.
pub struct DeadlineReactor<S> {
    app: Arc<App<S>>,
    source: Arc<dyn EscalationSource>,
    interval: Duration,
    evaluated_on: std::sync::Mutex<HashMap<Uscc, NaiveDate>>,
    warned_on: std::sync::Mutex<Option<NaiveDate>>,
}

impl<S: EventStore + 'static> DeadlineReactor<S> {
    /// A reactor looking every `interval`.
    pub fn new(app: Arc<App<S>>, source: Arc<dyn EscalationSource>, interval: Duration) -> Self {
        DeadlineReactor {
            app,
            source,
            interval,
            evaluated_on: std::sync::Mutex::new(HashMap::new()),
            warned_on: std::sync::Mutex::new(None),
        }
    }

    /// Asks the source off the async threads (it reads a database).
    async fn ask<T: Send + 'static>(
        &self,
        question: impl FnOnce(&dyn EscalationSource) -> Result<T, String> + Send + 'static,
    ) -> Result<T, AppError> {
        let source = self.source.clone();
        tokio::task::spawn_blocking(move || question(source.as_ref()))
            .await
            .map_err(|error| AppError::Internal(error.to_string()))?
            .map_err(AppError::Internal)
    }

    /// Decides a command on the deadline `seq` of a lead's or a company's stream; `None` for
    /// a stream that is neither.
    async fn on_deadline(
        &self,
        stream: &str,
        correlation: tousu_store::EventId,
        command: DeadlineCommand,
    ) -> Option<Result<Written, AppError>> {
        if let Some(id) = stream.strip_prefix("complaint-") {
            let lead = id.parse::<ComplaintId>().ok()?;
            let command = match command {
                DeadlineCommand::Escalate { seq, level } => ComplaintCommand::Escalate { seq, level },
                DeadlineCommand::Recompute { seq } => ComplaintCommand::RecomputeDeadline { seq },
            };
            Some(self.app.system_complaint_command(&lead, correlation, command).await)
        } else if let Some(code) = stream.strip_prefix("enterprise-") {
            let uscc = code.parse::<Uscc>().ok()?;
            let command = match command {
                DeadlineCommand::Escalate { seq, level } => EnterpriseCommand::Escalate { seq, level },
                DeadlineCommand::Recompute { seq } => EnterpriseCommand::RecomputeDeadline { seq },
            };
            Some(self.app.system_enterprise_command(&uscc, correlation, command).await)
        } else {
            None
        }
    }

    /// Interpretation 21: warns, once a day, that the last year with an official schedule is
    /// ending or has ended.
    fn warn_of_schedule_end(&self, today: NaiveDate) {
        let mut warned_on = self.warned_on.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if *warned_on == Some(today) {
            return;
        }
        *warned_on = Some(today);
        if let Some(warning) = self.app.schedule_warning() {
            tracing::warn!(last_official_year = warning.last_official_year, days_left = warning.days_left, "{warning}");
        }
    }

    /// One pass: recomputes every provisional due whose year's schedule is now in force,
    /// records every due escalation, and re-evaluates every company once a day.
    pub async fn pass(&self) -> Result<Pass, AppError> {
        let now = self.app.now();
        self.warn_of_schedule_end(now.date_naive());
        let mut pass = Pass::default();

        // Recomputations first, so that escalations judge the new due instants.
        let official_years: Vec<i32> = self.app.calendar().years().collect();
        let provisional = self.ask(move |source| source.provisional(&official_years)).await?;
        for candidate in provisional {
            let correlation = recompute_correlation(&candidate.stream, candidate.seq, &candidate.calendar);
            let command = DeadlineCommand::Recompute { seq: candidate.seq };
            let Some(result) = self.on_deadline(&candidate.stream, correlation, command).await else { continue };
            match result {
                Ok(written) if !written.replayed => {
                    pass.recomputed += 1;
                    tracing::info!(stream = %candidate.stream, seq = candidate.seq, was = %candidate.calendar, "provisional deadline recomputed");
                }
                Ok(_) => {}
                Err(AppError::Domain(error)) => {
                    pass.refused += 1;
                    tracing::debug!(stream = %candidate.stream, seq = candidate.seq, %error, "recomputation no longer applies");
                }
                Err(error) => return Err(error),
            }
        }

        let due = self.ask(move |source| source.due(now)).await?;
        for candidate in due {
            let correlation =
                escalation_correlation(&candidate.stream, candidate.seq, candidate.level.as_str(), candidate.due);
            let command = DeadlineCommand::Escalate { seq: candidate.seq, level: candidate.level };
            let Some(result) = self.on_deadline(&candidate.stream, correlation, command).await else { continue };
            match result {
                Ok(written) if !written.replayed => {
                    pass.escalated += 1;
                    tracing::info!(stream = %candidate.stream, seq = candidate.seq, level = candidate.level.as_str(), "deadline escalated");
                }
                Ok(_) => {}
                Err(AppError::Domain(error)) => {
                    pass.refused += 1;
                    tracing::debug!(stream = %candidate.stream, seq = candidate.seq, %error, "escalation no longer applies");
                }
                Err(error) => return Err(error),
            }
        }

        pass.issued = self.issue_due_weeks(now).await?;

        let day = now.date_naive();
        let companies = self.ask(|source| source.companies()).await?;
        for uscc in companies {
            let already = {
                let evaluated_on = self.evaluated_on.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                evaluated_on.get(&uscc) == Some(&day)
            };
            if already {
                continue;
            }
            let correlation = daily_evaluation_correlation(uscc.as_str(), day);
            let started = std::time::Instant::now();
            match self.app.system_enterprise_command(&uscc, correlation, EnterpriseCommand::EvaluateConditions).await {
                Ok(written) if !written.replayed && !written.event_types.is_empty() => pass.evaluated += 1,
                Ok(_) | Err(AppError::Domain(_)) => {}
                Err(error) => return Err(error),
            }
            self.evaluated_on.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(uscc, day);
            // The daily evaluation is background work: paced so that it never takes more than
            // a share of the server, rather than a burst every API call waits behind.
            tokio::time::sleep(started.elapsed() * (EVALUATION_DUTY - 1)).await;
        }
        Ok(pass)
    }

    /// Interpretation 26: issues the summary of every week due and not yet issued, oldest
    /// first: after the last week issued, or, on a log that has issued none, the last week due.
    /// Until a first summary is issued, a week without any activity (nothing recorded, no
    /// figure) is not: the service was not in use yet. No week is issued while the read
    /// models are not live, nor by a node whose own log is empty.
    async fn issue_due_weeks(&self, now: DateTime<FixedOffset>) -> Result<usize, AppError> {
        // A node whose own log is empty has nothing to report, whatever a shared read store
        // holds.
        if self.app.store().head().await.map_err(AppError::from)?.is_none() {
            return Ok(0);
        }
        let hours = self.app.domain().policy.reporting.weekly_issue_hours_after_week_end;
        let due = week_due(now, hours);
        let state = self.app.issued_weeks().await?;
        let first = match state.last_issued() {
            Some(last) if last >= due => return Ok(0),
            Some(last) => last + chrono::TimeDelta::days(7),
            None => due,
        };
        let mut issued = 0;
        let mut week = first;
        while week <= due {
            let Some(summary) = self.ask(move |source| source.week_summary(week)).await? else { return Ok(issued) };
            if state.last_issued().is_none() && !has_activity(&summary) {
                week += chrono::TimeDelta::days(7);
                continue;
            }
            let Some(matters) = self.ask(move |source| source.overdue_at(week_end(week))).await? else {
                return Ok(issued);
            };
            let mut earlier = std::collections::BTreeMap::new();
            for earlier_week in self.app.issued_weeks().await?.correction_weeks(week) {
                let Some(figures) = self.ask(move |source| source.week_summary(earlier_week)).await? else {
                    return Ok(issued);
                };
                earlier.insert(earlier_week, figures);
            }
            let written = self.app.issue_week(week, summary, matters, earlier).await?;
            if !written.replayed {
                issued += 1;
                tracing::info!(week = %week, "weekly summary issued to the discipline commission");
            }
            week += chrono::TimeDelta::days(7);
        }
        Ok(issued)
    }

    /// Runs passes every interval until the store closes.
    pub async fn run(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match self.pass().await {
                Ok(pass) if pass.recomputed + pass.escalated + pass.evaluated + pass.issued > 0 => {
                    tracing::info!(
                        recomputed = pass.recomputed,
                        escalated = pass.escalated,
                        evaluated = pass.evaluated,
                        refused = pass.refused,
                        "deadline reactor pass"
                    );
                }
                Ok(_) => {}
                Err(AppError::Unavailable(reason)) => {
                    tracing::info!(%reason, "deadline reactor stopped: the store is unavailable");
                    return;
                }
                Err(error) => tracing::error!(%error, "deadline reactor pass failed; trying again next time"),
            }
        }
    }
}
