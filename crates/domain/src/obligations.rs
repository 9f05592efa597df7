//! The open deadlines of one stream and their escalation, shared by leads and companies.
//!
//! Events say which deadlines they open and close; this fold keeps the open ones, the
//! misses recorded against them and the escalation levels reached, and decides the deadline
//! reactor's commands: the ACC-2 escalations (interpretation 9) and the recomputation of a
//! provisional due instant once its year's official schedule is loaded (interpretation 21).
//! The ladder's third rung is a recommendation to refer the body to the discipline organ; a
//! named 住建 official refers or dismisses it, with a reason (interpretation 9, amended), and
//! the fold keeps every recommendation and its decision after the deadline closes.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::calendar::CalendarVersion;
use crate::context::Context;
use crate::deadline::{
    ClosedHow, Deadline, DeadlineClosure, DeadlineKind, DueBasis, EscalationLevel, EscalationReason, escalation_level,
    reached_levels,
};
use crate::error::DomainError;
use crate::ids::BodyCode;
use crate::limits::{TEXT_MAX_CHARS, required_within};
use crate::rule::RuleId;

/// What a 住建 official decided about a recommendation to refer a body to the discipline organ
/// (ACC-2, interpretation 9 as amended): whether conduct breaks law or discipline is a human
/// judgement, never a timer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralDecision {
    /// Referred to the district discipline inspection organ (移送纪检监察机关).
    Referred,
    /// Not referred (不予移送).
    Dismissed,
}

impl ReferralDecision {
    /// The decision's name in the API, the read models and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ReferralDecision::Referred => "referred",
            ReferralDecision::Dismissed => "dismissed",
        }
    }
}

/// A recommendation to refer, as the fold keeps it (interpretation 9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recommendation {
    /// The kind of the deadline whose miss it answers.
    pub kind: DeadlineKind,
    /// The body it concerns.
    pub body: BodyCode,
    /// The decision, once made.
    pub decision: Option<ReferralDecision>,
}

/// What the deadline reactor records about an open deadline: a miss, a rung of the
/// escalation ladder, or a recomputed due instant.
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
    /// Interpretation 21: a provisional due instant recomputed with the calendar as it now
    /// is, once the State Council's schedule of a year it looked at was loaded. Lateness and
    /// escalation follow the new due from here on; what the old due made wrong is withdrawn
    /// by this same event.
    DeadlineRecomputed {
        /// The deadline.
        seq: u32,
        /// Its kind.
        kind: DeadlineKind,
        /// The body that owes it.
        body: BodyCode,
        /// The due instant before.
        #[serde(deserialize_with = "crate::calendar::deserialize_instant")]
        previous_due: DateTime<FixedOffset>,
        /// The due instant now (it may equal the previous one: the change is then only that it
        /// is no longer provisional).
        #[serde(deserialize_with = "crate::calendar::deserialize_instant")]
        due: DateTime<FixedOffset>,
        /// Whether the new due is still provisional (it also looks at a later year still
        /// without a schedule).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        provisional: bool,
        /// The versions of the calendar years the new due looked at.
        calendar: CalendarVersion,
        /// Rungs recorded against the old due that the new due has not reached at the
        /// recomputation's instant: withdrawn.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        withdrawn_levels: Vec<EscalationLevel>,
        /// Whether the recorded miss is withdrawn: the new due has not passed yet.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        miss_withdrawn: bool,
    },
    /// ACC-2, interpretation 9 (amended): a named 住建 official referred the body to the
    /// discipline organ, or dismissed the recommendation, with a reason.
    ReferralDecided {
        /// The deadline whose miss the recommendation answers.
        seq: u32,
        /// Its kind.
        kind: DeadlineKind,
        /// The body the recommendation concerns.
        body: BodyCode,
        /// Referred or dismissed.
        decision: ReferralDecision,
        /// Why.
        reason: String,
        /// The official who decided (the principal's person).
        official: String,
    },
}

/// The open deadlines of a stream, with misses and escalations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Obligations {
    open: BTreeMap<u32, Deadline>,
    next_seq: u32,
    missed: BTreeMap<u32, BodyCode>,
    escalated: BTreeMap<u32, BTreeSet<EscalationLevel>>,
    recommendations: BTreeMap<u32, Recommendation>,
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
            EscalationFact::Escalated { seq, level, kind, body, .. } => {
                self.escalated.entry(*seq).or_default().insert(*level);
                if *level == EscalationLevel::DisciplineOrgan {
                    self.recommendations.entry(*seq).or_insert(Recommendation {
                        kind: *kind,
                        body: *body,
                        decision: None,
                    });
                }
            }
            EscalationFact::ReferralDecided { seq, decision, .. } => {
                if let Some(recommendation) = self.recommendations.get_mut(seq) {
                    recommendation.decision = Some(*decision);
                }
            }
            EscalationFact::DeadlineRecomputed {
                seq,
                due,
                provisional,
                calendar,
                withdrawn_levels,
                miss_withdrawn,
                ..
            } => {
                if let Some(deadline) = self.open.get_mut(seq) {
                    deadline.due = *due;
                    deadline.provisional = *provisional;
                    deadline.calendar = provisional.then(|| calendar.clone());
                }
                if let Some(levels) = self.escalated.get_mut(seq) {
                    for level in withdrawn_levels {
                        levels.remove(level);
                    }
                }
                // A recommendation the new due has not reached is withdrawn, unless an official
                // has already decided it: a decision stays recorded.
                if withdrawn_levels.contains(&EscalationLevel::DisciplineOrgan)
                    && self.recommendations.get(seq).is_some_and(|recommendation| recommendation.decision.is_none())
                {
                    self.recommendations.remove(seq);
                }
                if *miss_withdrawn {
                    self.missed.remove(seq);
                }
            }
        }
    }

    /// The recommendation to refer recorded for deadline `seq`, open or closed (interpretation 9).
    pub fn recommendation(&self, seq: u32) -> Option<&Recommendation> {
        self.recommendations.get(&seq)
    }

    /// Every recommendation to refer recorded on this stream, with its deadline's number.
    pub fn recommendations(&self) -> impl Iterator<Item = (u32, &Recommendation)> {
        self.recommendations.iter().map(|(seq, recommendation)| (*seq, recommendation))
    }

    /// Decides a 住建 official's decision on the recommendation to refer recorded for deadline
    /// `seq` (ACC-2, interpretation 9 as amended): refused where there is none, where it is
    /// decided already, without a reason, and for anyone but 住建.
    pub fn decide_referral(
        &self,
        seq: u32,
        decision: ReferralDecision,
        reason: &str,
        command: &'static str,
        ctx: &Context<'_>,
    ) -> Result<EscalationFact, DomainError> {
        if ctx.actor.body != BodyCode::ZJ {
            return Err(DomainError::WrongBody {
                rule: RuleId::Acc2,
                command,
                acting: ctx.actor.body,
                responsible: Some(BodyCode::ZJ),
            });
        }
        let recommendation = self.recommendations.get(&seq).ok_or(DomainError::NoReferralRecommendation { seq })?;
        if let Some(decided) = recommendation.decision {
            return Err(DomainError::ReferralAlreadyDecided { seq, decision: decided });
        }
        required_within(RuleId::Acc2, "reason", reason, TEXT_MAX_CHARS)?;
        Ok(EscalationFact::ReferralDecided {
            seq,
            kind: recommendation.kind,
            body: recommendation.body,
            decision,
            reason: reason.to_owned(),
            official: ctx.actor.person.clone(),
        })
    }

    /// Whether the miss of deadline `seq` is recorded.
    pub fn miss_recorded(&self, seq: u32) -> bool {
        self.missed.contains_key(&seq)
    }

    /// Decides the deadline reactor's recomputation of a provisional due instant with the
    /// calendar of the decision (interpretation 21). `original` is the deadline a reinstated
    /// one was brought back from (interpretation 15), whose period it recomputes. The levels
    /// and miss recorded are checked against the new due at the decision's instant: what it
    /// has not reached is withdrawn. Refused when the deadline is not provisional, and when
    /// the calendar gives the same due with the same data as before.
    pub fn decide_recompute(
        &self,
        seq: u32,
        original: Option<&Deadline>,
        ctx: &Context<'_>,
    ) -> Result<EscalationFact, DomainError> {
        let deadline = self.open.get(&seq).ok_or(DomainError::DeadlineNotOpen { seq })?;
        let not_provisional = DomainError::NotProvisional { seq, rule: deadline.rule };
        if !deadline.provisional {
            return Err(not_provisional);
        }
        let basis = match &deadline.basis {
            DueBasis::Reinstated { original: original_seq } => {
                original.filter(|original| original.seq == *original_seq).map(|original| &original.basis)
            }
            basis => Some(basis),
        };
        let Some(DueBasis::Period { start, period }) = basis else {
            return Err(not_provisional);
        };
        let computed = ctx
            .calendar
            .compute_due(*start, *period)
            .map_err(|source| DomainError::Calendar { rule: deadline.rule, source })?;
        let unchanged = computed.due == deadline.due
            && computed.provisional
            && deadline.calendar.as_ref() == Some(&computed.version);
        if unchanged {
            return Err(DomainError::RecomputationUnchanged { seq, rule: deadline.rule, calendar: computed.version });
        }
        let earlier_misses = self.earlier_misses(deadline.body, seq);
        let reached = reached_levels(ctx.calendar, ctx.policy, computed.due, ctx.now, earlier_misses)
            .map_err(|source| DomainError::Calendar { rule: RuleId::Acc2, source })?;
        let withdrawn_levels = self.levels(seq).filter(|level| !reached.contains(level)).collect();
        Ok(EscalationFact::DeadlineRecomputed {
            seq,
            kind: deadline.kind,
            body: deadline.body,
            previous_due: deadline.due,
            due: computed.due,
            provisional: computed.provisional,
            calendar: computed.version,
            withdrawn_levels,
            miss_withdrawn: self.miss_recorded(seq) && ctx.now <= computed.due,
        })
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
