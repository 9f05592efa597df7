//! The open deadlines of one stream and their escalation, shared by leads and companies.
//!
//! Events say which deadlines they open and close; this fold keeps the open ones, the
//! misses recorded against them and the escalation levels reached, and decides the ACC-2
//! escalation commands of the deadline reactor (interpretation 9).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::deadline::{
    ClosedHow, Deadline, DeadlineClosure, DeadlineKind, EscalationLevel, EscalationReason, escalation_level,
};
use crate::error::DomainError;
use crate::ids::BodyCode;
use crate::rule::RuleId;

/// A missed deadline or a rung of the escalation ladder, as recorded on the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EscalationFact {
    /// ACC-2: the deadline passed without being met.
    DeadlineMissed {
        /// The deadline.
        seq: u32,
        /// Its kind.
        kind: DeadlineKind,
        /// The rule that set it.
        rule: RuleId,
        /// The body that missed it.
        body: BodyCode,
        /// Its due instant.
        #[serde(deserialize_with = "crate::calendar::deserialize_instant")]
        due: DateTime<FixedOffset>,
    },
    /// ACC-2, interpretation 9: the missed deadline reached a rung of the ladder.
    Escalated {
        /// The deadline.
        seq: u32,
        /// Its kind.
        kind: DeadlineKind,
        /// The body that missed it.
        body: BodyCode,
        /// The rung reached.
        level: EscalationLevel,
        /// Why it was reached.
        reason: EscalationReason,
        /// Working days late at the decision.
        working_days_late: u32,
    },
}

/// The open deadlines of a stream, with misses and escalations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Obligations {
    open: BTreeMap<u32, Deadline>,
    next_seq: u32,
    missed: BTreeMap<u32, BodyCode>,
    escalated: BTreeMap<u32, BTreeSet<EscalationLevel>>,
}

impl Obligations {
    /// The sequence number the next deadline opened on this stream will carry.
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// The open deadlines, in the order they were opened.
    pub fn open(&self) -> impl Iterator<Item = &Deadline> {
        self.open.values()
    }

    /// The open deadline of a kind, if any (and for company deadlines, of a community).
    pub fn open_of_kind(&self, kind: DeadlineKind, community: Option<&str>) -> Option<&Deadline> {
        self.open.values().find(|deadline| deadline.kind == kind && deadline.community.as_deref() == community)
    }

    /// One open deadline.
    pub fn get(&self, seq: u32) -> Option<&Deadline> {
        self.open.get(&seq)
    }

    /// The escalation levels recorded for a deadline.
    pub fn levels(&self, seq: u32) -> impl Iterator<Item = EscalationLevel> + '_ {
        self.escalated.get(&seq).into_iter().flatten().copied()
    }

    /// Closures for every open deadline of the given kinds.
    pub fn close_kinds(&self, kinds: &[DeadlineKind], how: ClosedHow) -> Vec<DeadlineClosure> {
        self.open
            .values()
            .filter(|deadline| kinds.contains(&deadline.kind))
            .map(|deadline| DeadlineClosure { seq: deadline.seq, kind: deadline.kind, how })
            .collect()
    }

    /// Applies an event's openings and closings.
    pub fn apply(&mut self, opens: &[Deadline], closes: &[DeadlineClosure]) {
        for closure in closes {
            self.open.remove(&closure.seq);
        }
        for deadline in opens {
            self.next_seq = self.next_seq.max(deadline.seq + 1);
            self.open.insert(deadline.seq, deadline.clone());
        }
    }

    /// Applies a recorded miss or escalation.
    pub fn apply_escalation(&mut self, fact: &EscalationFact) {
        match fact {
            EscalationFact::DeadlineMissed { seq, body, .. } => {
                self.missed.insert(*seq, *body);
            }
            EscalationFact::Escalated { seq, level, .. } => {
                self.escalated.entry(*seq).or_default().insert(*level);
            }
        }
    }

    /// How many deadlines of this stream other than `seq` the body has missed.
    pub fn earlier_misses(&self, body: BodyCode, seq: u32) -> u32 {
        let count =
            self.missed.iter().filter(|(missed_seq, missed_body)| **missed_seq != seq && **missed_body == body).count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// The highest level an open deadline has reached at `at`, and why (ACC-2).
    pub fn reached_level(
        &self,
        seq: u32,
        ctx: &Context<'_>,
    ) -> Result<Option<(EscalationLevel, EscalationReason)>, DomainError> {
        let deadline = self.open.get(&seq).ok_or(DomainError::DeadlineNotOpen { seq })?;
        escalation_level(ctx.calendar, ctx.policy, deadline.due, ctx.now, self.earlier_misses(deadline.body, seq))
            .map_err(|source| DomainError::Calendar { rule: RuleId::Acc2, source })
    }

    /// Decides the deadline reactor's command: record that deadline `seq` reached `level`
    /// (ACC-2, interpretation 9). The first escalation of a deadline also records the miss.
    pub fn decide_escalation(
        &self,
        seq: u32,
        level: EscalationLevel,
        ctx: &Context<'_>,
    ) -> Result<Vec<EscalationFact>, DomainError> {
        let deadline = self.open.get(&seq).ok_or(DomainError::DeadlineNotOpen { seq })?;
        if self.levels(seq).any(|recorded| recorded == level) {
            return Err(DomainError::AlreadyEscalated { seq, level });
        }
        let not_escalable =
            DomainError::NotEscalable { seq, kind: deadline.kind, due: deadline.due, level, at: ctx.now };
        let Some((reached, _)) = self.reached_level(seq, ctx)? else {
            return Err(not_escalable);
        };
        if level > reached {
            return Err(not_escalable);
        }
        let working_days_late = ctx
            .calendar
            .working_days_late(deadline.due, ctx.now)
            .map_err(|source| DomainError::Calendar { rule: RuleId::Acc2, source })?;
        let reason = if level == EscalationLevel::DisciplineOrgan
            && working_days_late < ctx.policy.escalation.discipline_referral_working_days
        {
            EscalationReason::RepeatMiss
        } else {
            EscalationReason::Lateness
        };
        let mut facts = Vec::with_capacity(2);
        if !self.missed.contains_key(&seq) {
            facts.push(EscalationFact::DeadlineMissed {
                seq,
                kind: deadline.kind,
                rule: deadline.rule,
                body: deadline.body,
                due: deadline.due,
            });
        }
        facts.push(EscalationFact::Escalated {
            seq,
            kind: deadline.kind,
            body: deadline.body,
            level,
            reason,
            working_days_late,
        });
        Ok(facts)
    }
}
