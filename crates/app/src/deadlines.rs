//! The deadline reactor: as time passes it records missed deadlines and the rungs of the
//! escalation ladder (ACC-2, interpretation 9), and has each company's conditions re-evaluated
//! once a day so that complaints aging out of a window end key supervision, a grade review or
//! the exit condition on the company's stream (interpretation 16).
//!
//! Its candidates come from the live overdue read model through [`EscalationSource`]; the
//! decision is the domain's, against the stream's own state, so a stale candidate (a deadline
//! met since) is refused there and nothing is written. Every command's correlation derives
//! from the lead, the deadline and the level (or the company and the day), so whoever runs it
//! and however often, each escalation is recorded once. It acts only on wall-clock time and
//! the live read model: a rebuild or a replay of a read model never triggers it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate};
use tousu_domain::complaint::ComplaintCommand;
use tousu_domain::deadline::EscalationLevel;
use tousu_domain::enterprise::EnterpriseCommand;
use tousu_domain::ids::{ComplaintId, Uscc};
use tousu_store::EventStore;

use crate::App;
use crate::error::AppError;
use crate::ids::{daily_evaluation_correlation, escalation_correlation};

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
    /// The rung reached.
    pub level: EscalationLevel,
}

/// Where the reactor learns what is due.
pub trait EscalationSource: Send + Sync {
    /// Every rung reached at `at` and not yet recorded, from the live read model (none while
    /// the read model has no live generation).
    fn due(&self, at: DateTime<FixedOffset>) -> Result<Vec<DueEscalation>, String>;
    /// Every company with a stream.
    fn companies(&self) -> Result<Vec<Uscc>, String>;
}

/// What one pass of the reactor did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Escalations recorded.
    pub escalated: usize,
    /// Candidates the domain refused (met or recorded since the read model saw them).
    pub refused: usize,
    /// Companies re-evaluated.
    pub evaluated: usize,
}

/// The deadline reactor.
pub struct DeadlineReactor<S> {
    app: Arc<App<S>>,
    source: Arc<dyn EscalationSource>,
    interval: Duration,
    evaluated_on: std::sync::Mutex<HashMap<Uscc, NaiveDate>>,
}

impl<S: EventStore + 'static> DeadlineReactor<S> {
    /// A reactor looking every `interval`.
    pub fn new(app: Arc<App<S>>, source: Arc<dyn EscalationSource>, interval: Duration) -> Self {
        DeadlineReactor { app, source, interval, evaluated_on: std::sync::Mutex::new(HashMap::new()) }
    }

    /// One pass: records every due escalation, and re-evaluates every company once a day.
    pub async fn pass(&self) -> Result<Pass, AppError> {
        let now = self.app.now();
        let mut pass = Pass::default();
        // The source reads a database: off the async threads.
        let source = self.source.clone();
        let due = tokio::task::spawn_blocking(move || source.due(now))
            .await
            .map_err(|error| AppError::Internal(error.to_string()))?
            .map_err(AppError::Internal)?;
        for candidate in due {
            let correlation = escalation_correlation(&candidate.stream, candidate.seq, candidate.level.as_str());
            let command_seq = candidate.seq;
            let result = if let Some(id) = candidate.stream.strip_prefix("complaint-") {
                let Ok(lead) = id.parse::<ComplaintId>() else { continue };
                self.app
                    .system_complaint_command(
                        &lead,
                        correlation,
                        ComplaintCommand::Escalate { seq: command_seq, level: candidate.level },
                    )
                    .await
            } else if let Some(code) = candidate.stream.strip_prefix("enterprise-") {
                let Ok(uscc) = code.parse::<Uscc>() else { continue };
                self.app
                    .system_enterprise_command(
                        &uscc,
                        correlation,
                        EnterpriseCommand::Escalate { seq: command_seq, level: candidate.level },
                    )
                    .await
            } else {
                continue;
            };
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
        let day = now.date_naive();
        let source = self.source.clone();
        let companies = tokio::task::spawn_blocking(move || source.companies())
            .await
            .map_err(|error| AppError::Internal(error.to_string()))?
            .map_err(AppError::Internal)?;
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

    /// Runs passes every interval until the store closes.
    pub async fn run(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match self.pass().await {
                Ok(pass) if pass.escalated + pass.evaluated > 0 => {
                    tracing::info!(
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
