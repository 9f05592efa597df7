//! Queries of `overdue-escalation`: the obligations past due at an instant with their
//! lateness and escalation level (ACC-2, interpretation 9), filtered and paged; the
//! escalations the deadline reactor has to record; the open obligations of one stream; the
//! closure counts per body.
//!
//! The escalation level of a row is `deadline::escalation_level` at the instant, with the
//! misses the same body has recorded on the same stream. To filter by level inside SQL, the
//! lateness thresholds are turned into cut-off instants once per query: a deadline is at
//! least `n` working days late at `at` exactly when its due instant lies before
//! [`late_cutoff`]`(at, n)`, so a level filter is a range on the indexed due instant.

use chrono::{DateTime, Days, FixedOffset, NaiveDate};
use tousu_domain::calendar::{Calendar, shanghai};
use tousu_domain::deadline::{DeadlineKind, EscalationLevel, EscalationReason, escalation_level};
use tousu_domain::ids::{BodyCode, ComplaintId, Uscc};
use tousu_domain::policy::Policy;
use tousu_domain::rule::RuleId;
use tousu_projection::{Row, SqlError, SqlTx, Value};

use crate::{bad_value, instant, millis};

/// Whose obligation it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Subject {
    /// A deadline of a lead's stream.
    Lead(ComplaintId),
    /// A deadline of a company's stream (GRD-1..4).
    Company(Uscc),
}

/// How lateness is counted for a kind of deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum LatenessUnit {
    /// Working days (the rule counts its period in working days: TRF-2, PEN-1 verification).
    WorkingDays,
    /// Calendar days (every other rule).
    CalendarDays,
}

/// How late an obligation is: from the first late day (the date of the due instant,
/// Shanghai) through the date of the evaluation instant, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Lateness {
    /// The number of days.
    pub days: u32,
    /// What kind of days.
    pub unit: LatenessUnit,
}

/// Filters of [`overdue`]; `None` does not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OverdueFilter {
    /// Only obligations of this body.
    pub body: Option<BodyCode>,
    /// Only obligations whose escalation level at the instant is this one. Rows whose level
    /// cannot be computed (the calendar lacks a year the computation needs) match only the
    /// discipline level, and only through the repeat-miss rule, which needs no calendar.
    pub level: Option<EscalationLevel>,
    /// Only obligations in this district.
    pub district: Option<String>,
}

/// An open obligation, as [`overdue`] and [`open_obligations`] return it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OverdueRow {
    /// The stream, e.g. `complaint-C-1`.
    pub stream: String,
    /// The deadline's sequence number in its stream.
    pub seq: u32,
    /// The lead or company.
    pub subject: Subject,
    /// The company concerned (the lead's company for a lead's deadline).
    pub company: String,
    /// The kind of deadline.
    pub kind: DeadlineKind,
    /// The rule that set it.
    pub rule: RuleId,
    /// The body that owes it.
    pub body: BodyCode,
    /// The community: the company deadline's, or the lead's.
    pub community: String,
    /// The district, from the lead's registration (empty when unknown).
    pub district: String,
    /// When the period started (for a plan's own date, when the plan was submitted).
    pub start: DateTime<FixedOffset>,
    /// The due instant.
    pub due: DateTime<FixedOffset>,
    /// Interpretation 21: whether the due instant was computed from the provisional calendar
    /// (a year without the State Council's schedule); it is recomputed when the schedule is
    /// loaded.
    pub provisional: bool,
    /// For a provisional due instant, the calendar version it rests on; empty otherwise.
    pub calendar: String,
    /// How late at the query's instant; `None` when the calendar lacks a year it needs.
    pub lateness: Option<Lateness>,
    /// The escalation level reached at the query's instant (interpretation 9), and why;
    /// `None` when not yet due, or when it cannot be computed for lack of calendar data.
    pub level: Option<(EscalationLevel, EscalationReason)>,
    /// The levels the deadline reactor has recorded, lowest first.
    pub recorded_levels: Vec<EscalationLevel>,
    /// Whether the miss of this deadline has been recorded.
    pub missed_recorded: bool,
    /// Other deadlines of the same stream the same body has missed (recorded misses).
    pub earlier_misses: u32,
}

/// An escalation the deadline reactor has to record: `level` has been reached by the
/// deadline `seq` of `stream` and is not recorded yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEscalation {
    /// The stream to append to.
    pub stream: String,
    /// The lead or company whose stream it is.
    pub subject: Subject,
    /// The deadline.
    pub seq: u32,
    /// Its kind.
    pub kind: DeadlineKind,
    /// The body that missed it.
    pub body: BodyCode,
    /// Its due instant: an escalation is of the deadline with this due (a recomputed due,
    /// interpretation 21, makes a new one).
    pub due: DateTime<FixedOffset>,
    /// The level reached.
    pub level: EscalationLevel,
}

/// An open deadline whose provisional due instant looked at a year that now has the State
/// Council's schedule: the deadline reactor recomputes it (interpretation 21).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionalCandidate {
    /// The stream to append to.
    pub stream: String,
    /// The deadline.
    pub seq: u32,
    /// The calendar version its due rests on now.
    pub calendar: String,
}

/// Deadlines closed, per body and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosureCount {
    /// The body.
    pub body: BodyCode,
    /// The kind of deadline.
    pub kind: DeadlineKind,
    /// Met at or before the due instant.
    pub met_on_time: u64,
    /// Met after the due instant.
    pub met_late: u64,
    /// Superseded by another deadline.
    pub superseded: u64,
}

/// The bit of a level in the `levels` column.
pub(crate) fn level_bit(level: EscalationLevel) -> i64 {
    1 << (level.number() - 1)
}

/// Every level's bit.
pub(crate) const ALL_LEVELS: i64 = 7;

/// The instant before which a deadline's due instant must lie for the deadline to be at
/// least `n` working days late at `at` (and past due): `due < cutoff` exactly when
/// `calendar.working_days_late(due, at) >= n && due < at`. `None` when the calendar lacks a
/// year the walk back from `at` needs.
///
/// Lateness counts the working days from the date of `due` through the date of `at`, so it
/// reaches `n` when the date of `due` is at or before the `n`-th working day counted back from
/// the date of `at` (that date included): before 00:00 of the day after that working day.
pub fn late_cutoff(calendar: &Calendar, at: DateTime<FixedOffset>, n: u32) -> Option<DateTime<FixedOffset>> {
    if n == 0 {
        return Some(at);
    }
    let mut date = at.with_timezone(&shanghai()).date_naive();
    let mut remaining = n;
    loop {
        if calendar.is_working_day(date).ok()? {
            remaining -= 1;
            if remaining == 0 {
                break;
            }
        }
        date = date.pred_opt()?;
    }
    let next = start_of_day(date.checked_add_days(Days::new(1))?)?;
    Some(next.min(at))
}

fn start_of_day(date: NaiveDate) -> Option<DateTime<FixedOffset>> {
    date.and_hms_opt(0, 0, 0)?.and_local_timezone(shanghai()).single()
}

/// The cut-offs of the two lateness rungs at an instant.
#[derive(Debug, Clone, Copy)]
struct Cutoffs {
    district: i64,
    discipline: i64,
}

impl Cutoffs {
    fn at(calendar: &Calendar, policy: &Policy, at: DateTime<FixedOffset>) -> Option<Cutoffs> {
        let ladder = &policy.escalation;
        Some(Cutoffs {
            district: millis(late_cutoff(calendar, at, ladder.district_report_working_days)?),
            discipline: millis(late_cutoff(calendar, at, ladder.discipline_referral_working_days)?),
        })
    }
}

/// Earlier misses at which the repeat-miss rule refers a deadline to the discipline organ.
fn repeat_threshold(policy: &Policy) -> i64 {
    i64::from(policy.escalation.discipline_referral_repeat_misses.saturating_sub(1))
}

/// A statement built with its parameters numbered in order, as PostgreSQL needs them.
struct Statement {
    text: String,
    params: Vec<Value>,
}

impl Statement {
    fn new() -> Statement {
        Statement { text: String::new(), params: Vec::new() }
    }

    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// Binds a parameter, returning its placeholder.
    fn bind(&mut self, value: Value) -> String {
        self.params.push(value);
        format!("${}", self.params.len())
    }
}

const ROW_COLUMNS: &str = "o.stream, o.seq, o.subject_kind, o.subject, o.company, o.kind, o.rule, o.body, \
                           o.community, o.district, o.start_at, o.due, o.levels, o.missed, o.calendar";

fn earlier_misses_sql(prefix: &str) -> String {
    format!(
        "(SELECT CAST(COUNT(*) AS BIGINT) FROM {prefix}misses m \
         WHERE m.stream = o.stream AND m.body = o.body AND m.seq <> o.seq)"
    )
}

/// The obligations past due at `at` (due strictly before it), most overdue first, with their
/// lateness and escalation level at `at`; `offset` and `limit` page through them. Returns the
/// page and the number of rows matching the filter.
///
/// The filters on body and district use the `(body, due)` and `(district, due)` indexes; a
/// level filter is a range on `due` (see [`late_cutoff`]) plus the repeat-miss count. A row
/// whose lateness cannot be computed (a year without calendar data) is returned with
/// `lateness: None`, and with `level: None` unless its level is known without the calendar.
#[allow(clippy::too_many_arguments)]
pub fn overdue(
    tx: &mut dyn SqlTx,
    prefix: &str,
    at: DateTime<FixedOffset>,
    filter: &OverdueFilter,
    calendar: &Calendar,
    policy: &Policy,
    offset: u64,
    limit: u64,
) -> Result<(Vec<OverdueRow>, u64), SqlError> {
    let cutoffs = Cutoffs::at(calendar, policy, at);
    let earlier = earlier_misses_sql(prefix);
    let build = |select: &str| {
        let mut statement = Statement::new();
        statement.push(&format!("SELECT {select} FROM {prefix}obligations o WHERE o.due < "));
        let at_param = statement.bind(Value::int(millis(at)));
        statement.push(&at_param);
        if let Some(body) = filter.body {
            let param = statement.bind(Value::text(body.as_str()));
            statement.push(&format!(" AND o.body = {param}"));
        }
        if let Some(district) = &filter.district {
            let param = statement.bind(Value::text(district.as_str()));
            statement.push(&format!(" AND o.district = {param}"));
        }
        if let Some(level) = filter.level {
            // PostgreSQL refuses parameters a statement does not use: bind only what is used.
            let predicate = match (cutoffs, level) {
                (None, EscalationLevel::DistrictLeadership | EscalationLevel::Reminder) => "1 = 0".to_owned(),
                (None, EscalationLevel::DisciplineOrgan) => {
                    let repeat = statement.bind(Value::int(repeat_threshold(policy)));
                    format!("{earlier} >= {repeat}")
                }
                (Some(cutoffs), level) => {
                    let repeat = statement.bind(Value::int(repeat_threshold(policy)));
                    let discipline = statement.bind(Value::int(cutoffs.discipline));
                    let referred = format!("(o.due < {discipline} OR {earlier} >= {repeat})");
                    match level {
                        EscalationLevel::DisciplineOrgan => referred,
                        EscalationLevel::DistrictLeadership => {
                            let district = statement.bind(Value::int(cutoffs.district));
                            format!("NOT {referred} AND o.due < {district}")
                        }
                        EscalationLevel::Reminder => {
                            let district = statement.bind(Value::int(cutoffs.district));
                            format!("NOT {referred} AND NOT (o.due < {district})")
                        }
                    }
                }
            };
            statement.push(&format!(" AND {predicate}"));
        }
        statement
    };

    let mut count = build("CAST(COUNT(*) AS BIGINT)");
    let total = tx.query(&count.text, &std::mem::take(&mut count.params))?;
    let total = total.first().and_then(|row| row[0].as_i64()).unwrap_or(0);

    let mut page = build(&format!("{ROW_COLUMNS}, {earlier}"));
    let limit_param = page.bind(Value::int(i64::try_from(limit).unwrap_or(i64::MAX)));
    let offset_param = page.bind(Value::int(i64::try_from(offset).unwrap_or(i64::MAX)));
    page.push(&format!(" ORDER BY o.due, o.stream, o.seq LIMIT {limit_param} OFFSET {offset_param}"));
    let rows = tx.query(&page.text, &page.params)?;
    let rows = rows
        .iter()
        .map(|row| {
            let mut overdue = read_row(row)?;
            overdue.earlier_misses = read_u32(&row[15], "earlier_misses")?;
            evaluate(&mut overdue, at, calendar, policy, cutoffs);
            Ok(overdue)
        })
        .collect::<Result<Vec<_>, SqlError>>()?;
    Ok((rows, u64::try_from(total).unwrap_or(0)))
}

/// Every open obligation of one stream, in sequence order, evaluated at `at`.
pub fn open_obligations(
    tx: &mut dyn SqlTx,
    prefix: &str,
    stream: &str,
    at: DateTime<FixedOffset>,
    calendar: &Calendar,
    policy: &Policy,
) -> Result<Vec<OverdueRow>, SqlError> {
    let earlier = earlier_misses_sql(prefix);
    let rows = tx.query(
        &format!("SELECT {ROW_COLUMNS}, {earlier} FROM {prefix}obligations o WHERE o.stream = $1 ORDER BY o.seq"),
        &[Value::text(stream)],
    )?;
    let cutoffs = Cutoffs::at(calendar, policy, at);
    rows.iter()
        .map(|row| {
            let mut overdue = read_row(row)?;
            overdue.earlier_misses = read_u32(&row[15], "earlier_misses")?;
            evaluate(&mut overdue, at, calendar, policy, cutoffs);
            Ok(overdue)
        })
        .collect()
}

/// Fills in lateness and level at `at`: the domain's computation where the calendar allows
/// it, else what the cut-offs and the repeat-miss rule alone establish.
fn evaluate(
    row: &mut OverdueRow,
    at: DateTime<FixedOffset>,
    calendar: &Calendar,
    policy: &Policy,
    cutoffs: Option<Cutoffs>,
) {
    let (late, unit) = if row.kind.counts_working_days() {
        (calendar.working_days_late(row.due, at), LatenessUnit::WorkingDays)
    } else {
        (calendar.calendar_days_late(row.due, at), LatenessUnit::CalendarDays)
    };
    row.lateness = late.ok().map(|days| Lateness { days, unit });
    row.level = match escalation_level(calendar, policy, row.due, at, row.earlier_misses) {
        Ok(level) => level,
        Err(_) => {
            let due = millis(row.due);
            let repeat = i64::from(row.earlier_misses) >= repeat_threshold(policy);
            match cutoffs {
                _ if at <= row.due => None,
                Some(cutoffs) if due < cutoffs.discipline => {
                    Some((EscalationLevel::DisciplineOrgan, EscalationReason::Lateness))
                }
                _ if repeat => Some((EscalationLevel::DisciplineOrgan, EscalationReason::RepeatMiss)),
                Some(cutoffs) if due < cutoffs.district => {
                    Some((EscalationLevel::DistrictLeadership, EscalationReason::Lateness))
                }
                Some(_) => Some((EscalationLevel::Reminder, EscalationReason::Lateness)),
                None => None,
            }
        }
    };
}

/// The escalations due at `at` and not yet recorded, most overdue first: for each open
/// deadline past due, every rung it has reached by then (ACC-2, interpretation 9):
///
/// - the reminder, as soon as the deadline has passed;
/// - the report to 区委、区政府, once it is `district_report_working_days` working days late;
/// - the referral to the discipline organ, once `deadline::escalation_level` gives it: late by
///   `discipline_referral_working_days`, or missed by a body that has already missed another
///   deadline of the same stream.
///
/// It reads only the rows not yet escalated to every level and due before `at` (a partial
/// index on `due`), so its cost follows the obligations recently missed, not the table.
/// A deadline whose lateness the calendar cannot compute (a year without data) is left out:
/// the domain would refuse to escalate it too.
pub fn due_escalations(
    tx: &mut dyn SqlTx,
    prefix: &str,
    at: DateTime<FixedOffset>,
    calendar: &Calendar,
    policy: &Policy,
) -> Result<Vec<DueEscalation>, SqlError> {
    let earlier = earlier_misses_sql(prefix);
    let rows = tx.query(
        &format!(
            "SELECT o.stream, o.seq, o.subject_kind, o.subject, o.kind, o.body, o.due, o.levels, {earlier}
             FROM {prefix}obligations o WHERE o.levels <> {ALL_LEVELS} AND o.due < $1
             ORDER BY o.due, o.stream, o.seq"
        ),
        &[Value::int(millis(at))],
    )?;
    let mut due = Vec::new();
    for row in &rows {
        let stream = read_text(&row[0], "stream")?;
        let seq = read_u32(&row[1], "seq")?;
        let subject = read_subject(&row[2], &row[3])?;
        let kind = read_parsed::<DeadlineKind>(&row[4], "kind")?;
        let body = read_parsed::<BodyCode>(&row[5], "body")?;
        let due_at = instant(read_i64(&row[6], "due")?)?;
        let recorded = read_i64(&row[7], "levels")?;
        let earlier_misses = read_u32(&row[8], "earlier_misses")?;
        let Ok(Some((reached, _))) = escalation_level(calendar, policy, due_at, at, earlier_misses) else {
            continue;
        };
        let Ok(working_days_late) = calendar.working_days_late(due_at, at) else { continue };
        for level in EscalationLevel::ALL {
            let is_reached = match level {
                EscalationLevel::Reminder => true,
                EscalationLevel::DistrictLeadership => {
                    working_days_late >= policy.escalation.district_report_working_days
                }
                EscalationLevel::DisciplineOrgan => reached == EscalationLevel::DisciplineOrgan,
            };
            if is_reached && recorded & level_bit(level) == 0 {
                due.push(DueEscalation {
                    stream: stream.clone(),
                    subject: subject.clone(),
                    seq,
                    kind,
                    body,
                    due: due_at,
                    level,
                });
            }
        }
    }
    Ok(due)
}

/// The open deadlines whose provisional due instant looked at one of `official_years` (years
/// that have the State Council's schedule now), soonest due first: what the deadline reactor
/// recomputes (interpretation 21). It reads only the provisional rows (a partial index).
pub fn provisional_candidates(
    tx: &mut dyn SqlTx,
    prefix: &str,
    official_years: &[i32],
) -> Result<Vec<ProvisionalCandidate>, SqlError> {
    let (Some(first), Some(last)) = (official_years.iter().min(), official_years.iter().max()) else {
        return Ok(Vec::new());
    };
    let rows = tx.query(
        &format!(
            "SELECT stream, seq, calendar FROM {prefix}obligations
             WHERE provisional_first > 0 AND provisional_first <= $1 AND provisional_last >= $2
             ORDER BY due, stream, seq"
        ),
        &[Value::int(i64::from(*last)), Value::int(i64::from(*first))],
    )?;
    let mut candidates = Vec::new();
    for row in &rows {
        let calendar = read_text(&row[2], "calendar")?;
        // The range test above is exact only for consecutive official years.
        let version = tousu_domain::calendar::CalendarVersion::from_text(calendar.as_str());
        if !version.provisional_years().any(|year| official_years.contains(&year)) {
            continue;
        }
        candidates.push(ProvisionalCandidate {
            stream: read_text(&row[0], "stream")?,
            seq: read_u32(&row[1], "seq")?,
            calendar,
        });
    }
    Ok(candidates)
}

/// Where a recommendation to refer stands (interpretation 9, amended).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum ReferralStatus {
    /// Awaiting a 住建 official's decision.
    Pending,
    /// Referred to the discipline organ.
    Referred,
    /// Not referred.
    Dismissed,
}

impl ReferralStatus {
    /// The status as stored and as the API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReferralStatus::Pending => "pending",
            ReferralStatus::Referred => "referred",
            ReferralStatus::Dismissed => "dismissed",
        }
    }

    fn from_name(text: &str) -> Option<ReferralStatus> {
        [ReferralStatus::Pending, ReferralStatus::Referred, ReferralStatus::Dismissed]
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// Filters of [`referrals`]; `None` does not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferralFilter {
    /// Only recommendations in this status.
    pub status: Option<ReferralStatus>,
    /// Only recommendations concerning this body.
    pub body: Option<BodyCode>,
}

/// A recommendation to refer a body to the discipline organ and its decision, as
/// [`referrals`] returns it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReferralRow {
    /// The stream of the missed deadline.
    pub stream: String,
    /// The deadline's sequence number in its stream: what a decision names.
    pub seq: u32,
    /// The lead or company.
    pub subject: Subject,
    /// The company concerned (the lead's company for a lead's deadline; empty when unknown).
    pub company: String,
    /// The kind of the missed deadline.
    pub kind: DeadlineKind,
    /// The body recommended for referral.
    pub body: BodyCode,
    /// When the deadline reactor recorded the recommendation.
    pub recommended_at: DateTime<FixedOffset>,
    /// Why: lateness, or a repeated miss.
    pub reason: EscalationReason,
    /// Working days late when recommended.
    pub working_days_late: u32,
    /// Pending, referred or dismissed.
    pub status: ReferralStatus,
    /// When an official decided; `None` while pending.
    pub decided_at: Option<DateTime<FixedOffset>>,
    /// The official who decided; empty while pending.
    pub decided_by: String,
    /// The official's reason; empty while pending.
    pub decision_reason: String,
}

/// The recommendations to refer, oldest first, filtered (interpretation 9, amended): what the
/// discipline organ and 住建's officials see pending, referred and dismissed, in real time.
pub fn referrals(tx: &mut dyn SqlTx, prefix: &str, filter: &ReferralFilter) -> Result<Vec<ReferralRow>, SqlError> {
    let rows = tx.query(
        &format!(
            "SELECT stream, seq, subject_kind, subject, company, kind, body, recommended_at, reason,
             working_days_late, status, decided_at, decided_by, decision_reason
             FROM {prefix}referrals
             WHERE ($1 = '' OR status = $1) AND ($2 = '' OR body = $2)
             ORDER BY recommended_at, stream, seq"
        ),
        &[
            Value::text(filter.status.map_or("", ReferralStatus::as_str)),
            Value::text(filter.body.map_or("", BodyCode::as_str)),
        ],
    )?;
    rows.iter()
        .map(|row| {
            let reason = read_text(&row[8], "reason")?;
            let status = read_text(&row[10], "status")?;
            let decided_at = read_i64(&row[11], "decided_at")?;
            Ok(ReferralRow {
                stream: read_text(&row[0], "stream")?,
                seq: read_u32(&row[1], "seq")?,
                subject: read_subject(&row[2], &row[3])?,
                company: read_text(&row[4], "company")?,
                kind: read_parsed(&row[5], "kind")?,
                body: read_parsed(&row[6], "body")?,
                recommended_at: instant(read_i64(&row[7], "recommended_at")?)?,
                reason: EscalationReason::from_name(&reason).ok_or_else(|| bad_value("reason", &reason))?,
                working_days_late: read_u32(&row[9], "working_days_late")?,
                status: ReferralStatus::from_name(&status).ok_or_else(|| bad_value("status", &status))?,
                decided_at: if decided_at == 0 { None } else { Some(instant(decided_at)?) },
                decided_by: read_text(&row[12], "decided_by")?,
                decision_reason: read_text(&row[13], "decision_reason")?,
            })
        })
        .collect()
}

/// Deadlines closed so far, per body and kind, in body and kind order.
pub fn closure_counts(tx: &mut dyn SqlTx, prefix: &str) -> Result<Vec<ClosureCount>, SqlError> {
    let rows = tx.query(
        &format!("SELECT body, kind, met_on_time, met_late, superseded FROM {prefix}closures ORDER BY body, kind"),
        &[],
    )?;
    rows.iter()
        .map(|row| {
            Ok(ClosureCount {
                body: read_parsed(&row[0], "body")?,
                kind: read_parsed(&row[1], "kind")?,
                met_on_time: read_u64(&row[2], "met_on_time")?,
                met_late: read_u64(&row[3], "met_late")?,
                superseded: read_u64(&row[4], "superseded")?,
            })
        })
        .collect()
}

/// Reads the columns of [`ROW_COLUMNS`]; lateness, level and earlier misses are filled in by
/// the caller.
fn read_row(row: &Row) -> Result<OverdueRow, SqlError> {
    let levels = read_i64(&row[12], "levels")?;
    Ok(OverdueRow {
        stream: read_text(&row[0], "stream")?,
        seq: read_u32(&row[1], "seq")?,
        subject: read_subject(&row[2], &row[3])?,
        company: read_text(&row[4], "company")?,
        kind: read_parsed(&row[5], "kind")?,
        rule: read_parsed(&row[6], "rule")?,
        body: read_parsed(&row[7], "body")?,
        community: read_text(&row[8], "community")?,
        district: read_text(&row[9], "district")?,
        start: instant(read_i64(&row[10], "start_at")?)?,
        due: instant(read_i64(&row[11], "due")?)?,
        provisional: !read_text(&row[14], "calendar")?.is_empty(),
        calendar: read_text(&row[14], "calendar")?,
        lateness: None,
        level: None,
        recorded_levels: EscalationLevel::ALL.into_iter().filter(|level| levels & level_bit(*level) != 0).collect(),
        missed_recorded: read_i64(&row[13], "missed")? != 0,
        earlier_misses: 0,
    })
}

fn read_subject(kind: &Value, subject: &Value) -> Result<Subject, SqlError> {
    let text = read_text(subject, "subject")?;
    match kind.as_str() {
        Some("lead") => text.parse().map(Subject::Lead).map_err(|_| bad_value("subject", &text)),
        Some("company") => text.parse().map(Subject::Company).map_err(|_| bad_value("subject", &text)),
        other => Err(bad_value("subject_kind", other.unwrap_or("NULL"))),
    }
}

fn read_text(value: &Value, column: &str) -> Result<String, SqlError> {
    value.as_str().map(str::to_owned).ok_or_else(|| bad_value(column, &format!("{value:?}")))
}

fn read_i64(value: &Value, column: &str) -> Result<i64, SqlError> {
    value.as_i64().ok_or_else(|| bad_value(column, &format!("{value:?}")))
}

fn read_u32(value: &Value, column: &str) -> Result<u32, SqlError> {
    u32::try_from(read_i64(value, column)?).map_err(|_| bad_value(column, &format!("{value:?}")))
}

fn read_u64(value: &Value, column: &str) -> Result<u64, SqlError> {
    u64::try_from(read_i64(value, column)?).map_err(|_| bad_value(column, &format!("{value:?}")))
}

fn read_parsed<T: std::str::FromStr>(value: &Value, column: &str) -> Result<T, SqlError> {
    let text = read_text(value, column)?;
    text.parse().map_err(|_| bad_value(column, &text))
}
