//! The read models' answers as protocol messages: watchlist entries and evidence, weekly
//! summaries, overdue obligations, the dashboard and the bulletin. The read models name some
//! values as text (a weekly summary's channel and body keys, a company deadline's kind); they
//! become the protocol's enums here, and a name the protocol does not know becomes the enum's
//! unspecified value rather than an error, so a newer read model never breaks an answer.

use chrono::{DateTime, FixedOffset, NaiveDate};
use tousu_domain::complaint::Channel;
use tousu_domain::deadline::{DeadlineKind, EscalationLevel, EscalationReason};
use tousu_domain::enterprise::{CountEvidence, ExitEvidence, GradeReviewTrigger};
use tousu_domain::ids::BodyCode;
use tousu_domain::policy::Bulletin as BulletinCriteria;
use tousu_domain::reporting::{BulletinReason, BulletinVerdict};
use tousu_domain::weekly_report::Correction;
use tousu_projection::meta::Checkpoint;
use tousu_read_overdue::{LatenessUnit, OverdueRow, ReferralRow, ReferralStatus, Subject};
use tousu_read_watchlist::{CompanyDetail, Flag, WatchlistEntry, WindowCount};
use tousu_read_weekly_summary::signing::{AnchorSigner, WeekAnchor, unhex};
use tousu_read_weekly_summary::{Count, HistoryAnchor, WeekFigures, WeeklySummary};

use crate::convert::{body_to_pb, deadline_kind_to_pb, escalation_to_pb, timestamp, timestamp_utc};
use crate::pb;

/// Which state of a read model answered.
pub fn snapshot(read_model: &str, checkpoint: &Checkpoint, replayed: bool) -> pb::ReadModelSnapshot {
    pb::ReadModelSnapshot {
        read_model: read_model.to_owned(),
        position: checkpoint.position,
        events: checkpoint.events,
        recorded_at: checkpoint.recorded_at.map(timestamp_utc),
        replayed,
        cached: false,
    }
}

fn date(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

fn optional_timestamp(instant: Option<DateTime<FixedOffset>>) -> Option<prost_types::Timestamp> {
    instant.map(timestamp)
}

/// The protocol value of a watchlist flag.
pub fn flag_to_pb(flag: Flag) -> pb::WatchlistFlag {
    match flag {
        Flag::ExitEligible => pb::WatchlistFlag::ExitEligible,
        Flag::DowngradeDue => pb::WatchlistFlag::DowngradeDue,
        Flag::GradeReviewDue => pb::WatchlistFlag::GradeReviewDue,
        Flag::KeySupervision => pb::WatchlistFlag::KeySupervision,
    }
}

fn window(count: &WindowCount) -> pb::WatchlistWindow {
    pb::WatchlistWindow {
        months: count.months,
        window_start: Some(timestamp(count.window_start)),
        distinct: count.distinct,
    }
}

/// A watchlist entry.
pub fn watchlist_entry(entry: &WatchlistEntry) -> pb::WatchlistEntry {
    pb::WatchlistEntry {
        uscc: entry.uscc.clone(),
        name: entry.name.clone(),
        districts: entry.districts.clone(),
        complainants: Some(window(&entry.complainants)),
        anonymous: Some(pb::WatchlistAnonymous {
            complaints: entry.anonymous.complaints,
            leads: entry.anonymous.leads,
        }),
        leads_in_window: entry.leads_in_window,
        substantiated_half_year: Some(window(&entry.substantiated_half_year)),
        substantiated_year: Some(window(&entry.substantiated_year)),
        open_leads: entry.open_leads,
        overdue_leads: entry.overdue_leads,
        overdue_leads_provisional: entry.overdue_leads_provisional,
        latest_survey: entry.latest_survey.as_ref().map(|survey| pb::WatchlistSurvey {
            community: survey.community.clone(),
            at: Some(timestamp(survey.at)),
            respondents: survey.respondents,
            satisfied: survey.satisfied,
            satisfaction_bp: survey.satisfaction_bp,
        }),
        grades: entry
            .grades
            .iter()
            .map(|grade| pb::WatchlistGrade {
                community: grade.community.clone(),
                grade: u32::from(grade.grade),
                at: Some(timestamp(grade.at)),
            })
            .collect(),
        refusals: entry
            .refusals
            .iter()
            .map(|refusal| pb::WatchlistRefusal {
                community: refusal.community.clone(),
                at: Some(timestamp(refusal.at)),
                detail: refusal.detail.clone(),
            })
            .collect(),
        credit_rating: entry.credit_rating.clone().unwrap_or_default(),
        blacklisted_on: entry.blacklisted_on.map(date).unwrap_or_default(),
        open_deadlines: entry
            .open_deadlines
            .iter()
            .map(|deadline| pb::WatchlistCompanyDeadline {
                kind: deadline
                    .kind
                    .parse::<DeadlineKind>()
                    .map_or(pb::DeadlineKind::Unspecified, deadline_kind_to_pb)
                    .into(),
                rule: deadline.rule.clone(),
                community: deadline.community.clone().unwrap_or_default(),
                due: Some(timestamp(deadline.due)),
                reason: deadline.reason.clone().unwrap_or_default(),
                provisional: deadline.provisional,
            })
            .collect(),
        recorded: Some(pb::WatchlistConditions {
            key_supervision_since: optional_timestamp(entry.recorded.key_supervision_since),
            grade_review_since: optional_timestamp(entry.recorded.grade_review_since),
            exit_condition_since: optional_timestamp(entry.recorded.exit_condition_since),
            exit_started_at: optional_timestamp(entry.recorded.exit_started_at),
        }),
        flags: entry
            .flags
            .iter()
            .map(|flag| pb::WatchlistFlagReason {
                flag: flag_to_pb(flag.flag).into(),
                rule: flag.rule.as_str().to_owned(),
                reason: flag.reason.clone(),
            })
            .collect(),
        risk: entry.risk(),
    }
}

fn count_evidence(evidence: &CountEvidence) -> pb::CountEvidence {
    pb::CountEvidence {
        window_start: Some(timestamp(evidence.window_start)),
        window_end: Some(timestamp(evidence.window_end)),
        distinct: evidence.distinct,
        complainant_keys: evidence.keys.iter().map(|key| key.as_str().to_owned()).collect(),
        anonymous_complaint_ids: evidence.anonymous_leads.iter().map(ToString::to_string).collect(),
        complaint_ids: evidence.leads.iter().map(ToString::to_string).collect(),
    }
}

fn exit_evidence(evidence: &ExitEvidence) -> pb::ExitEvidence {
    pb::ExitEvidence {
        count: Some(count_evidence(&evidence.count)),
        refusal_communities: evidence.refusals.clone(),
        low_satisfaction_bp: evidence.low_satisfaction_bp,
    }
}

fn grade_review_trigger(trigger: &GradeReviewTrigger) -> pb::GradeReviewTrigger {
    use pb::grade_review_trigger::Trigger;
    pb::GradeReviewTrigger {
        trigger: Some(match trigger {
            GradeReviewTrigger::Complaints { evidence } => Trigger::Complaints(count_evidence(evidence)),
            GradeReviewTrigger::LowCreditRating { rating } => Trigger::LowCreditRating(rating.clone()),
            GradeReviewTrigger::LongBlacklisted { listed_on } => Trigger::LongBlacklistedSince(date(*listed_on)),
        }),
    }
}

/// One company of the watchlist with its evidence, evaluated at `at`.
pub fn watchlist_company(
    detail: &CompanyDetail,
    at: DateTime<FixedOffset>,
    snapshot: pb::ReadModelSnapshot,
) -> pb::WatchlistCompany {
    let evidence = &detail.evidence;
    pb::WatchlistCompany {
        at: Some(timestamp(at)),
        entry: Some(watchlist_entry(&detail.entry)),
        evidence: Some(pb::WatchlistEvidence {
            key_supervision: Some(count_evidence(&evidence.key_supervision)),
            grade_review: Some(count_evidence(&evidence.grade_review)),
            exit: Some(exit_evidence(&evidence.exit)),
            grade_review_triggers: evidence.grade_review_triggers.iter().map(grade_review_trigger).collect(),
            not_attributable_complaint_ids: evidence.not_attributable.iter().map(ToString::to_string).collect(),
        }),
        snapshot: Some(snapshot),
    }
}

fn figures(figures: &WeekFigures) -> pb::WeekFigures {
    pb::WeekFigures {
        received: figures.received,
        received_linked: figures.received_linked,
        transferred_on_time: figures.transferred_on_time,
        transferred_late: figures.transferred_late,
        urgent_notified_on_time: figures.urgent_notified_on_time,
        urgent_notified_late: figures.urgent_notified_late,
        closed: figures.closed,
        closed_late: figures.closed_late,
        reopened: figures.reopened,
        open_at_start: figures.open_at_start,
        closure_rate_bp: figures.closure_rate_bp,
        open_overdue: figures.open_overdue,
        escalations: figures.escalations,
        returns: figures.returns,
        open_overdue_provisional: figures.open_overdue_provisional,
        escalations_withdrawn: figures.escalations_withdrawn,
        referrals_recommended: figures.referrals_recommended,
        referrals_referred: figures.referrals_referred,
        referrals_dismissed: figures.referrals_dismissed,
    }
}

/// A body named by its code in a read model; unspecified for anything else (`unclassified`).
fn body_named(code: &str) -> pb::Body {
    code.parse::<BodyCode>().map_or(pb::Body::Unspecified, body_to_pb)
}

fn channel_named(name: &str) -> pb::Channel {
    match Channel::ALL.into_iter().find(|channel| channel.as_str() == name) {
        Some(Channel::Hotline) => pb::Channel::Hotline,
        Some(Channel::Mailbox) => pb::Channel::Mailbox,
        Some(Channel::Hotline12345) => pb::Channel::Hotline12345,
        Some(Channel::WalkIn) => pb::Channel::WalkIn,
        Some(Channel::Import) => pb::Channel::Import,
        None => pb::Channel::Unspecified,
    }
}

fn level_named(name: &str) -> pb::EscalationLevel {
    EscalationLevel::ALL
        .into_iter()
        .find(|level| level.as_str() == name)
        .map_or(pb::EscalationLevel::Unspecified, escalation_to_pb)
}

fn category_counts(counts: &[Count]) -> Vec<pb::CategoryCount> {
    counts.iter().map(|count| pb::CategoryCount { category: count.key.clone(), count: count.n }).collect()
}

/// A week's history anchor, signed with `signer` when the week is settled: the signature
/// covers the week, the position, the event count and the anchor (`WeekAnchor::signed_bytes`).
fn history_anchor(week: NaiveDate, anchor: &HistoryAnchor, signer: Option<&AnchorSigner>) -> pb::HistoryAnchor {
    let signed = signer.filter(|_| anchor.settled).and_then(|signer| {
        // An anchor the read model holds in any other form than 32 bytes of hex is served as
        // it is, unsigned: the signature vouches for bytes, never for a guess at them.
        let bytes = unhex::<32>(&anchor.sha256)?;
        let statement = WeekAnchor { week, position: anchor.position, events: anchor.events, anchor: bytes };
        Some((signer.sign(&statement).to_vec(), signer.public_key().fingerprint()))
    });
    let (signature, key_fingerprint) = signed.unwrap_or_default();
    pb::HistoryAnchor {
        position: anchor.position,
        events: anchor.events,
        sha256: anchor.sha256.clone(),
        settled: anchor.settled,
        signature,
        key_fingerprint,
    }
}

/// A weekly summary; the anchor of a settled week is signed with `signer`, when there is one.
pub fn weekly_summary(
    summary: &WeeklySummary,
    snapshot: pb::ReadModelSnapshot,
    signer: Option<&AnchorSigner>,
) -> pb::WeeklySummary {
    let change = &summary.change;
    pb::WeeklySummary {
        week_start: date(summary.week_start),
        week_end: Some(timestamp(summary.week_end)),
        district: summary.district.clone().unwrap_or_default(),
        evaluated_at: Some(timestamp(summary.evaluated_at)),
        complete: summary.complete,
        figures: Some(figures(&summary.figures)),
        previous: Some(figures(&summary.previous)),
        change: Some(pb::WeekChange {
            received: change.received,
            transferred: change.transferred,
            transferred_late: change.transferred_late,
            closed: change.closed,
            closure_rate_bp: change.closure_rate_bp,
            open_overdue: change.open_overdue,
            escalations: change.escalations,
            returns: change.returns,
            open_overdue_provisional: change.open_overdue_provisional,
            escalations_withdrawn: change.escalations_withdrawn,
        }),
        received_by_channel: summary
            .received_by_channel
            .iter()
            .map(|count| pb::ChannelCount { channel: channel_named(&count.key).into(), count: count.n })
            .collect(),
        received_by_category: category_counts(&summary.received_by_category),
        received_by_body: summary
            .received_by_body
            .iter()
            .map(|count| pb::BodyCount { body: body_named(&count.key).into(), count: count.n })
            .collect(),
        escalations_by_level: summary
            .escalations_by_level
            .iter()
            .map(|count| pb::EscalationCount { level: level_named(&count.key).into(), count: count.n })
            .collect(),
        top_companies: summary
            .top_companies
            .iter()
            .map(|company| pb::CompanyReceived {
                uscc: company.uscc.clone(),
                name: company.name.clone(),
                received: company.received,
            })
            .collect(),
        difficulties: category_counts(&summary.difficulties),
        blockages: summary
            .blockages
            .iter()
            .map(|blockage| pb::Blockage {
                body: body_named(&blockage.body).into(),
                overdue: blockage.overdue,
                returns: blockage.returns,
                overdue_provisional: blockage.overdue_provisional,
                buck_passing: blockage.buck_passing,
            })
            .collect(),
        anchor: summary.anchor.as_ref().map(|anchor| history_anchor(summary.week_start, anchor, signer)),
        snapshot: Some(snapshot),
        escalations_withdrawn_by_level: summary
            .escalations_withdrawn_by_level
            .iter()
            .map(|count| pb::EscalationCount { level: level_named(&count.key).into(), count: count.n })
            .collect(),
        issued: false,
        issued_at: None,
        matters: Vec::new(),
        corrections: Vec::new(),
        corrected_later: Vec::new(),
    }
}

/// Interpretation 26: a week's summary as issued, with the matters and corrections issued
/// with it and the corrections reported about it since. Its anchor is signed: an issued week
/// is over.
pub fn issued_weekly_summary(
    summary: &WeeklySummary,
    issued: &tousu_read_weekly_summary::IssuedSummary,
    snapshot: pb::ReadModelSnapshot,
    signer: Option<&AnchorSigner>,
) -> pb::WeeklySummary {
    let correction = |correction: &Correction, reported_with: NaiveDate| pb::WeekCorrection {
        week_start: date(correction.week_start),
        figure: correction.figure.clone(),
        reported: correction.reported,
        now: correction.now,
        reported_with: date(reported_with),
    };
    pb::WeeklySummary {
        issued: true,
        issued_at: Some(timestamp(issued.issued_at)),
        matters: issued
            .matters
            .iter()
            .map(|matter| pb::WeeklyMatter {
                stream: matter.stream.clone(),
                seq: matter.seq,
                complaint_id: matter.lead.clone(),
                company_uscc: matter.company.clone(),
                body: body_to_pb(matter.body).into(),
                kind: deadline_kind_to_pb(matter.kind).into(),
                due: Some(timestamp(matter.due)),
                late_days: matter.days_late.unwrap_or(0),
                lateness_unit: match matter.days_late {
                    None => pb::LatenessUnit::Unspecified,
                    Some(_) if matter.working_days => pb::LatenessUnit::WorkingDays,
                    Some(_) => pb::LatenessUnit::CalendarDays,
                }
                .into(),
                rung: matter.rung.map_or(pb::EscalationLevel::Unspecified, escalation_to_pb).into(),
                provisional: matter.provisional,
            })
            .collect(),
        corrections: issued.corrections.iter().map(|c| correction(c, summary.week_start)).collect(),
        corrected_later: issued.corrected_later.iter().map(|(with, c)| correction(c, *with)).collect(),
        ..weekly_summary(summary, snapshot, signer)
    }
}

/// A week's Monday as the protocol writes it.
pub fn week_start(week: NaiveDate) -> String {
    date(week)
}

/// A recommendation to refer and its decision (interpretation 9).
pub fn referral(row: &ReferralRow) -> pb::Referral {
    pb::Referral {
        stream: row.stream.clone(),
        seq: row.seq,
        complaint_id: match &row.subject {
            Subject::Lead(lead) => lead.to_string(),
            Subject::Company(_) => String::new(),
        },
        company_uscc: row.company.clone(),
        kind: deadline_kind_to_pb(row.kind).into(),
        body: body_to_pb(row.body).into(),
        recommended_at: Some(timestamp(row.recommended_at)),
        reason: match row.reason {
            EscalationReason::Lateness => pb::EscalationReason::Lateness,
            EscalationReason::RepeatMiss => pb::EscalationReason::RepeatMiss,
        }
        .into(),
        working_days_late: row.working_days_late,
        status: match row.status {
            ReferralStatus::Pending => pb::ReferralStatus::Pending,
            ReferralStatus::Referred => pb::ReferralStatus::Referred,
            ReferralStatus::Dismissed => pb::ReferralStatus::Dismissed,
        }
        .into(),
        decided_at: row.decided_at.map(timestamp),
        decided_by: row.decided_by.clone(),
        decision_reason: row.decision_reason.clone(),
    }
}

/// An overdue obligation.
pub fn overdue_obligation(row: &OverdueRow) -> pb::OverdueObligation {
    let (late_days, lateness_unit) = match row.lateness {
        Some(lateness) => (
            lateness.days,
            match lateness.unit {
                LatenessUnit::WorkingDays => pb::LatenessUnit::WorkingDays,
                LatenessUnit::CalendarDays => pb::LatenessUnit::CalendarDays,
            },
        ),
        None => (0, pb::LatenessUnit::Unspecified),
    };
    let (level, level_reason) = match row.level {
        Some((level, reason)) => (
            escalation_to_pb(level),
            match reason {
                EscalationReason::Lateness => pb::EscalationReason::Lateness,
                EscalationReason::RepeatMiss => pb::EscalationReason::RepeatMiss,
            },
        ),
        None => (pb::EscalationLevel::Unspecified, pb::EscalationReason::Unspecified),
    };
    pb::OverdueObligation {
        stream: row.stream.clone(),
        seq: row.seq,
        complaint_id: match &row.subject {
            Subject::Lead(lead) => lead.to_string(),
            Subject::Company(_) => String::new(),
        },
        company_uscc: row.company.clone(),
        kind: deadline_kind_to_pb(row.kind).into(),
        rule: row.rule.as_str().to_owned(),
        body: body_to_pb(row.body).into(),
        community: row.community.clone(),
        district: row.district.clone(),
        start: Some(timestamp(row.start)),
        due: Some(timestamp(row.due)),
        late_days,
        lateness_unit: lateness_unit.into(),
        level: level.into(),
        level_reason: level_reason.into(),
        recorded_levels: row.recorded_levels.iter().map(|level| escalation_to_pb(*level).into()).collect(),
        miss_recorded: row.missed_recorded,
        earlier_misses: row.earlier_misses,
        provisional: row.provisional,
        calendar_version: row.calendar.clone(),
    }
}

fn dashboard_line(line: &tousu_read_leads::DashboardLine) -> pb::DashboardLine {
    pb::DashboardLine {
        body: body_to_pb(line.body).into(),
        district: line.district.clone().unwrap_or_default(),
        received: line.counts.received,
        open: line.counts.open,
        closed: line.counts.closed,
        overdue: line.counts.overdue,
        overdue_provisional: line.counts.overdue_provisional,
        buck_passing: line.counts.buck_passing,
    }
}

/// The DSP-1 dashboard.
pub fn dashboard(dashboard: &tousu_read_leads::Dashboard, snapshot: pb::ReadModelSnapshot) -> pb::Dashboard {
    pb::Dashboard {
        at: Some(timestamp(dashboard.at)),
        bodies: dashboard.bodies.iter().map(dashboard_line).collect(),
        districts: dashboard.districts.iter().map(dashboard_line).collect(),
        snapshot: Some(snapshot),
    }
}

/// The protocol value of a bulletin verdict, without its reasons.
pub fn verdict_to_pb(verdict: &BulletinVerdict) -> pb::BulletinVerdict {
    match verdict {
        BulletinVerdict::Praise(_) => pb::BulletinVerdict::Praise,
        BulletinVerdict::Criticise(_) => pb::BulletinVerdict::Criticise,
        BulletinVerdict::Neither => pb::BulletinVerdict::Neither,
    }
}

fn reason_to_pb(reason: BulletinReason) -> pb::BulletinReason {
    match reason {
        BulletinReason::HandledPromptly => pb::BulletinReason::HandledPromptly,
        BulletinReason::FewComplaints => pb::BulletinReason::FewComplaints,
        BulletinReason::RefusedRectification => pb::BulletinReason::RefusedRectification,
        BulletinReason::IneffectiveMeasures => pb::BulletinReason::IneffectiveMeasures,
        BulletinReason::DraggedOn => pb::BulletinReason::DraggedOn,
        BulletinReason::RefusedFeeStandard => pb::BulletinReason::RefusedFeeStandard,
    }
}

/// A company's line in the bulletin.
pub fn bulletin_entry(entry: &tousu_read_bulletin::BulletinEntry) -> pb::BulletinEntry {
    let record = &entry.record;
    let reasons = match &entry.verdict {
        BulletinVerdict::Praise(reasons) | BulletinVerdict::Criticise(reasons) => reasons.as_slice(),
        BulletinVerdict::Neither => &[],
    };
    pb::BulletinEntry {
        uscc: entry.company.clone(),
        name: entry.company_name.clone(),
        closed: record.closed,
        closed_on_time: record.closed_on_time,
        complainants: record.complainants,
        refusals: record.refusals,
        dissatisfied: record.dissatisfied,
        longest_overdue_days: record.longest_overdue_days,
        fee_refusals: record.fee_refusals,
        verdict: verdict_to_pb(&entry.verdict).into(),
        reasons: reasons.iter().map(|reason| reason_to_pb(*reason).into()).collect(),
        longest_overdue_provisional: entry.longest_overdue_provisional,
        dragged_on_provisional: entry.dragged_on_provisional,
    }
}

/// The bulletin's written criteria.
pub fn bulletin_criteria(criteria: &BulletinCriteria) -> pb::BulletinCriteria {
    pb::BulletinCriteria {
        praise_min_closed: criteria.praise_min_closed,
        praise_min_on_time_bp: criteria.praise_min_on_time_bp,
        praise_max_complainants: criteria.praise_max_complainants,
        criticise_overdue_days: criteria.criticise_overdue_days,
        criticise_dissatisfied: criteria.criticise_dissatisfied,
    }
}
