//! What a decision may know besides the state and the command: the instant, the acting
//! principal, the calendar, the policy, the taxonomy and the identity secret. Nothing in the
//! domain reads the clock or a file; this is how those facts come in.

use chrono::{DateTime, FixedOffset};

use crate::actor::Actor;
use crate::calendar::{Calendar, Period};
use crate::deadline::{Deadline, DeadlineKind, DueBasis};
use crate::error::DomainError;
use crate::identity::IdentitySecret;
use crate::ids::BodyCode;
use crate::policy::Policy;
use crate::taxonomy::Taxonomy;

/// Everything a decision may consult.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The business instant of the decision; it becomes the events' `at`.
    pub now: DateTime<FixedOffset>,
    /// Who is acting.
    pub actor: &'a Actor,
    /// The working-day calendar.
    pub calendar: &'a Calendar,
    /// Thresholds, windows and periods.
    pub policy: &'a Policy,
    /// Categories and routing.
    pub taxonomy: &'a Taxonomy,
    /// The key of complainant identity hashes.
    pub identity_secret: &'a IdentitySecret,
}

impl Context<'_> {
    /// A deadline of `kind` running the policy's period from `start`, owed by `body`.
    pub fn deadline(
        &self,
        seq: u32,
        kind: DeadlineKind,
        body: BodyCode,
        start: DateTime<FixedOffset>,
    ) -> Result<Deadline, DomainError> {
        self.deadline_with_period(seq, kind, body, start, kind.period(self.policy))
    }

    /// A deadline of `kind` running `period` from `start`, owed by `body`.
    pub fn deadline_with_period(
        &self,
        seq: u32,
        kind: DeadlineKind,
        body: BodyCode,
        start: DateTime<FixedOffset>,
        period: Period,
    ) -> Result<Deadline, DomainError> {
        // Interpretation 21: a period reaching a year without the State Council's schedule is
        // computed provisionally, never refused; the deadline says so and keeps the version.
        let computed = self
            .calendar
            .compute_due(start, period)
            .map_err(|source| DomainError::Calendar { rule: kind.rule(), source })?;
        Ok(Deadline {
            seq,
            kind,
            rule: kind.rule(),
            body,
            community: None,
            basis: DueBasis::Period { start, period },
            due: computed.due,
            provisional: computed.provisional,
            calendar: computed.provisional.then_some(computed.version),
        })
    }
}
