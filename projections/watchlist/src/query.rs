//! The watchlist's queries: every company with its counts over the windows ending at an
//! evaluation instant, its open and overdue leads, surveys, grades and refusals, and the flags
//! that put it on the list, ordered by risk.
//!
//! **Risk order.** Flags rank exit eligible (EXT-1) > downgrade due (GRD-2) > grade review due
//! (GRD-1) > key supervision (REG-4). Companies are ordered by the set of their flags read as
//! a number with those weights (8, 4, 2, 1): the highest flag decides, and among equals the
//! next flags do. Ties are broken by substantiated distinct complainants in the GRD-1 window,
//! then distinct complainants in the REG-4 window, then overdue leads (all descending), then
//! the company code.
//!
//! **What is evaluated at the instant.** The windows of REG-4, GRD-1 and EXT-1 (their leads,
//! findings, surveys and refusals) are evaluated at the instant given; a lead's being open, the
//! open company deadlines, grades, the credit rating and the black list are as the log last
//! recorded them (the API replays the log for a true past state), and a lead is overdue when
//! one of its open deadlines is due before the instant.
//!
//! **Provisional due instants** (interpretation 21). A due instant computed from the
//! provisional calendar of a year without the State Council's schedule is shown as such: a
//! company deadline carries `provisional`, and its reason says so; of the overdue leads, those
//! overdue only by provisional due instants are counted apart, since a recomputation may take
//! them off. A recomputed due instant is used as if the deadline had been opened with it.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::Serialize;
use tousu_domain::calendar::shanghai;
use tousu_domain::complaint::Finding;
use tousu_domain::enterprise::{
    Company, CountEvidence, CountedLead, ExitEvidence, Found, GradeReviewTrigger, Survey, satisfaction_bp, window_start,
};
use tousu_domain::identity::ComplainantKey;
use tousu_domain::ids::{ComplaintId, Uscc};
use tousu_domain::policy::Policy;
use tousu_domain::rule::RuleId;
use tousu_projection::{SqlError, SqlTx, Value};

use crate::writer::{NOT_ATTRIBUTABLE, percent};

/// A flag that puts a company on the watchlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// EXT-1: the exit procedure may be started.
    ExitEligible,
    /// GRD-2: a community's grade must be re-set.
    DowngradeDue,
    /// GRD-1: a grade review (service-quality and satisfaction survey) is due.
    GradeReviewDue,
    /// REG-4: the company belongs in the key-supervision ledger.
    KeySupervision,
}

impl Flag {
    /// Every flag, highest risk first.
    pub const ALL: [Flag; 4] = [Flag::ExitEligible, Flag::DowngradeDue, Flag::GradeReviewDue, Flag::KeySupervision];

    /// The flag's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::ExitEligible => "exit_eligible",
            Flag::DowngradeDue => "downgrade_due",
            Flag::GradeReviewDue => "grade_review_due",
            Flag::KeySupervision => "key_supervision",
        }
    }

    /// The rule the flag applies.
    pub fn rule(self) -> RuleId {
        match self {
            Flag::ExitEligible => RuleId::Ext1,
            Flag::DowngradeDue => RuleId::Grd2,
            Flag::GradeReviewDue => RuleId::Grd1,
            Flag::KeySupervision => RuleId::Reg4,
        }
    }

    /// The flag's weight in the risk order: the highest flag outweighs all lower ones together.
    pub fn weight(self) -> u32 {
        match self {
            Flag::ExitEligible => 8,
            Flag::DowngradeDue => 4,
            Flag::GradeReviewDue => 2,
            Flag::KeySupervision => 1,
        }
    }
}

impl std::str::FromStr for Flag {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Flag::ALL.into_iter().find(|flag| flag.as_str() == s).ok_or_else(|| format!("unknown watchlist flag {s:?}"))
    }
}

/// A flag with the rule and the reason it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagReason {
    /// The flag.
    pub flag: Flag,
    /// The rule.
    pub rule: RuleId,
    /// Why it holds, with the numbers and thresholds.
    pub reason: String,
}

/// Distinct complainants in a window ending at the evaluation instant (interpretations 2, 3, 20).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowCount {
    /// The window's length in calendar months (policy).
    pub months: u32,
    /// Leads count when registered after this instant and at or before the evaluation instant.
    pub window_start: DateTime<FixedOffset>,
    /// Distinct complainants: distinct identity keys plus anonymous complaints, each once.
    pub distinct: u32,
}

/// Anonymous leads in the REG-4 window, shown apart (interpretation 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnonymousCount {
    /// Anonymous complaints, each counted once as a complainant (a split complaint once).
    pub complaints: u32,
    /// Anonymous leads, linked leads of a split complaint each counted.
    pub leads: u32,
}

/// The most recent completed survey (GRD-1, interpretation 13).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SurveyResult {
    /// The community surveyed.
    pub community: String,
    /// When the survey was recorded.
    pub at: DateTime<FixedOffset>,
    /// People asked.
    pub respondents: u32,
    /// People satisfied.
    pub satisfied: u32,
    /// Satisfaction in basis points, rounded down.
    pub satisfaction_bp: u32,
}

/// A community's current service grade (interpretation 14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommunityGrade {
    /// The community.
    pub community: String,
    /// The grade, 1 the highest.
    pub grade: u8,
    /// When it was set.
    pub at: DateTime<FixedOffset>,
}

/// A refusal or failure to rectify (GRD-2, EXT-1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The community.
    pub community: String,
    /// When it was recorded.
    pub at: DateTime<FixedOffset>,
    /// What was refused or not done.
    pub detail: String,
}

/// An open company deadline (GRD-1 survey, GRD-2 downgrade, GRD-3, GRD-4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompanyDeadline {
    /// The kind, e.g. `downgrade`.
    pub kind: String,
    /// The rule that set it.
    pub rule: String,
    /// The community it concerns.
    pub community: Option<String>,
    /// The due instant.
    pub due: DateTime<FixedOffset>,
    /// Why it was set, where the event says (a downgrade's reason).
    pub reason: Option<String>,
    /// Interpretation 21: whether the due instant was computed from the provisional calendar
    /// (a year without the State Council's schedule); it is recomputed once the schedule is
    /// loaded.
    pub provisional: bool,
}

/// The company conditions as the log records them (interpretation 16), beside the flags the
/// watchlist evaluates at its instant: they differ only until the deadline reactor records the
/// passing of time.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RecordedConditions {
    /// REG-4 key supervision recorded since.
    pub key_supervision_since: Option<DateTime<FixedOffset>>,
    /// GRD-1 grade review recorded as required since.
    pub grade_review_since: Option<DateTime<FixedOffset>>,
    /// EXT-1 condition recorded as met since.
    pub exit_condition_since: Option<DateTime<FixedOffset>>,
    /// EXT-1 exit procedure started at (a human decision).
    pub exit_started_at: Option<DateTime<FixedOffset>>,
}

/// One company on the watchlist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchlistEntry {
    /// 统一社会信用代码.
    pub uscc: String,
    /// The company's name as the latest lead gives it.
    pub name: String,
    /// Districts where it has leads on record.
    pub districts: Vec<String>,
    /// REG-4: distinct complainants in the key-supervision window.
    pub complainants: WindowCount,
    /// Of those, anonymous complaints and leads, shown apart.
    pub anonymous: AnonymousCount,
    /// Leads registered in the key-supervision window.
    pub leads_in_window: u32,
    /// GRD-1: distinct complainants with a substantiated complaint in the half-year window.
    pub substantiated_half_year: WindowCount,
    /// EXT-1: distinct complainants with a substantiated complaint in the one-year window.
    pub substantiated_year: WindowCount,
    /// Leads not yet closed.
    pub open_leads: u32,
    /// Open leads with an open deadline due before the evaluation instant.
    pub overdue_leads: u32,
    /// Interpretation 21: of `overdue_leads`, those whose open deadlines due before the
    /// evaluation instant are all provisional (computed from the provisional calendar of a
    /// year without the State Council's schedule): overdue only by due instants a
    /// recomputation may move.
    pub overdue_leads_provisional: u32,
    /// The most recent survey at or before the instant.
    pub latest_survey: Option<SurveyResult>,
    /// Current grade per community.
    pub grades: Vec<CommunityGrade>,
    /// Refusals to rectify at or before the instant, most recent first.
    pub refusals: Vec<Refusal>,
    /// The latest credit rating.
    pub credit_rating: Option<String>,
    /// On the black list since.
    pub blacklisted_on: Option<NaiveDate>,
    /// Open company deadlines (surveys, downgrades, fee enforcement, refunds).
    pub open_deadlines: Vec<CompanyDeadline>,
    /// The conditions as the log records them.
    pub recorded: RecordedConditions,
    /// The flags, highest risk first.
    pub flags: Vec<FlagReason>,
}

impl WatchlistEntry {
    /// The weight of the entry's flags in the risk order (see the module documentation).
    pub fn risk(&self) -> u32 {
        self.flags.iter().map(|flag| flag.flag.weight()).sum()
    }

    /// Whether the entry carries a flag.
    pub fn has(&self, flag: Flag) -> bool {
        self.flags.iter().any(|reason| reason.flag == flag)
    }
}

/// Which companies the list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// Companies with at least one flag at the instant: the watchlist proper.
    #[default]
    Flagged,
    /// Every company on record, flagged or not.
    Every,
}

/// Filters and paging of [`query`].
#[derive(Debug, Clone, Default)]
pub struct WatchlistFilter {
    /// Only companies with leads in this district.
    pub district: Option<String>,
    /// Only companies with this flag.
    pub flag: Option<Flag>,
    /// Flagged companies only, or every company.
    pub scope: Scope,
    /// Entries to skip, in risk order.
    pub offset: usize,
    /// At most this many entries (all when `None`).
    pub limit: Option<usize>,
}

/// A page of the watchlist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchlistPage {
    /// The evaluation instant.
    pub at: DateTime<FixedOffset>,
    /// Entries matching the filter, before paging.
    pub total: usize,
    /// The page, highest risk first.
    pub entries: Vec<WatchlistEntry>,
}

/// The evidence the domain counts for one company (interpretation 16's evidence, computed at
/// the instant by [`tousu_domain::enterprise::Company`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompanyEvidence {
    /// REG-4: the complainants in the key-supervision window.
    pub key_supervision: CountEvidence,
    /// GRD-1: the substantiated complainants in the half-year window.
    pub grade_review: CountEvidence,
    /// EXT-1: the substantiated complainants in the year, refusals and low satisfaction.
    pub exit: ExitEvidence,
    /// GRD-1's triggers that hold at the instant.
    pub grade_review_triggers: Vec<GradeReviewTrigger>,
    /// Interpretation 22: the leads of the EXT-1 window found substantiated by the instant
    /// but not the company's responsibility, which count for neither GRD-1 nor EXT-1.
    pub not_attributable: Vec<ComplaintId>,
}

/// One company with the evidence behind its counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompanyDetail {
    /// The company's entry, as the list shows it.
    pub entry: WatchlistEntry,
    /// What was counted.
    pub evidence: CompanyEvidence,
}

/// The windows of the three company rules, ending at one instant.
struct Windows {
    at: DateTime<FixedOffset>,
    key_supervision: (u32, DateTime<FixedOffset>),
    grade_review: (u32, DateTime<FixedOffset>),
    exit: (u32, DateTime<FixedOffset>),
}

impl Windows {
    fn ending(at: DateTime<FixedOffset>, policy: &Policy) -> Windows {
        // Interpretation 20: the same wall-clock instant in Shanghai N months before.
        let at = at.with_timezone(&shanghai());
        let rules = &policy.companies;
        let window = |months: u32| (months, window_start(at, months));
        Windows {
            at,
            key_supervision: window(rules.key_supervision_window_months),
            grade_review: window(rules.grade_review_window_months),
            exit: window(rules.exit_window_months),
        }
    }

    fn earliest_start(&self) -> DateTime<FixedOffset> {
        self.key_supervision.1.min(self.grade_review.1).min(self.exit.1)
    }

    fn count(window: (u32, DateTime<FixedOffset>), distinct: u32) -> WindowCount {
        WindowCount { months: window.0, window_start: window.1, distinct }
    }
}

/// The counts of one company over the windows.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    complainants: u32,
    anonymous_complaints: u32,
    anonymous_leads: u32,
    leads_in_window: u32,
    substantiated_half_year: u32,
    substantiated_year: u32,
}

/// A company's open leads, overdue leads, and of those the ones overdue only by provisional
/// due instants (interpretation 21).
#[derive(Debug, Clone, Copy, Default)]
struct OpenLeads {
    open: u32,
    overdue: u32,
    overdue_provisional: u32,
}

/// Everything about one company but its leads.
struct Facts {
    company: Company,
    districts: Vec<String>,
    grades: Vec<CommunityGrade>,
    refusals: Vec<Refusal>,
    deadlines: Vec<CompanyDeadline>,
    recorded: RecordedConditions,
}

fn instant(ms: i64) -> DateTime<FixedOffset> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().with_timezone(&shanghai())
}

fn opt_instant(value: &Value) -> Option<DateTime<FixedOffset>> {
    value.as_i64().map(instant)
}

fn small(value: &Value) -> u32 {
    u32::try_from(value.as_i64().unwrap_or(0)).unwrap_or(u32::MAX)
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// The SQL of the counts; `one` restricts it to the company `$6`. A complainant is counted
/// once per window by `COUNT(DISTINCT identity)`. The join from the companies makes the scan
/// one index range per company, over the widest window only, however long the history.
fn counts_sql(p: &str, one: bool) -> String {
    let company = if one { "WHERE c.uscc = $6" } else { "" };
    // $1 the instant, $2 the REG-4 window's start, $3 GRD-1's, $4 EXT-1's, $5 the earliest.
    format!(
        "SELECT c.uscc,
             COUNT(DISTINCT CASE WHEN l.registered_at > $2 THEN l.identity END),
             COUNT(DISTINCT CASE WHEN l.registered_at > $2 AND l.anonymous = 1 THEN l.identity END),
             COUNT(CASE WHEN l.registered_at > $2 AND l.anonymous = 1 THEN 1 END),
             COUNT(CASE WHEN l.registered_at > $2 THEN 1 END),
             COUNT(DISTINCT CASE WHEN l.registered_at > $3 AND l.finding = 'substantiated' AND l.found_at <= $1
                 THEN l.identity END),
             COUNT(DISTINCT CASE WHEN l.registered_at > $4 AND l.finding = 'substantiated' AND l.found_at <= $1
                 THEN l.identity END)
         FROM {p}companies c
         JOIN {p}leads l ON l.uscc = c.uscc AND l.counted = 1 AND l.registered_at > $5 AND l.registered_at <= $1
         {company}
         GROUP BY c.uscc"
    )
}

fn load_counts(
    tx: &mut dyn SqlTx,
    p: &str,
    windows: &Windows,
    uscc: Option<&str>,
) -> Result<HashMap<String, Counts>, SqlError> {
    let mut params = vec![
        Value::int(windows.at.timestamp_millis()),
        Value::int(windows.key_supervision.1.timestamp_millis()),
        Value::int(windows.grade_review.1.timestamp_millis()),
        Value::int(windows.exit.1.timestamp_millis()),
        Value::int(windows.earliest_start().timestamp_millis()),
    ];
    if let Some(uscc) = uscc {
        params.push(Value::text(uscc));
    }
    let rows = tx.query(&counts_sql(p, uscc.is_some()), &params)?;
    Ok(rows
        .iter()
        .map(|row| {
            let counts = Counts {
                complainants: small(&row[1]),
                anonymous_complaints: small(&row[2]),
                anonymous_leads: small(&row[3]),
                leads_in_window: small(&row[4]),
                substantiated_half_year: small(&row[5]),
                substantiated_year: small(&row[6]),
            };
            (text(&row[0]), counts)
        })
        .collect())
}

/// Open and overdue leads per company.
fn load_open(
    tx: &mut dyn SqlTx,
    p: &str,
    at: DateTime<FixedOffset>,
    uscc: Option<&str>,
) -> Result<HashMap<String, OpenLeads>, SqlError> {
    let mut open: HashMap<String, OpenLeads> = HashMap::new();
    // PostgreSQL wants exactly the parameters a statement uses, so each has its own list.
    let (open_sql, open_params) = match uscc {
        Some(uscc) => (
            format!("SELECT uscc, COUNT(*) FROM {p}leads WHERE open = 1 AND uscc = $1 GROUP BY uscc"),
            vec![Value::text(uscc)],
        ),
        None => (format!("SELECT uscc, COUNT(*) FROM {p}leads WHERE open = 1 GROUP BY uscc"), Vec::new()),
    };
    for row in tx.query(&open_sql, &open_params)? {
        open.entry(text(&row[0])).or_default().open = small(&row[1]);
    }
    let (company, mut overdue_params) = match uscc {
        Some(uscc) => ("AND l.uscc = $2", vec![Value::text(uscc)]),
        None => ("", Vec::new()),
    };
    overdue_params.insert(0, Value::int(at.timestamp_millis()));
    // Interpretation 21: a lead with an overdue deadline whose due instant is official is
    // overdue whatever a recomputation does; the others are overdue only provisionally.
    let overdue_sql = format!(
        "SELECT l.uscc, COUNT(DISTINCT l.lead), COUNT(DISTINCT CASE WHEN d.provisional = 0 THEN l.lead END)
         FROM {p}lead_deadlines d JOIN {p}leads l ON l.lead = d.lead
         WHERE d.due < $1 AND l.open = 1 {company} GROUP BY l.uscc"
    );
    for row in tx.query(&overdue_sql, &overdue_params)? {
        let counts = open.entry(text(&row[0])).or_default();
        counts.overdue = small(&row[1]);
        counts.overdue_provisional = counts.overdue.saturating_sub(small(&row[2]));
    }
    Ok(open)
}

/// Everything but the leads, for every company or one, with surveys and refusals up to `at`.
fn load_facts(
    tx: &mut dyn SqlTx,
    p: &str,
    at: DateTime<FixedOffset>,
    uscc: Option<&str>,
) -> Result<BTreeMap<String, Facts>, SqlError> {
    let at_ms = at.timestamp_millis();
    let (company, one) = match uscc {
        Some(uscc) => ("WHERE uscc = $1", vec![Value::text(uscc)]),
        None => ("", Vec::new()),
    };
    let mut facts = BTreeMap::new();
    let rows = tx.query(
        &format!(
            "SELECT uscc, name, credit_rating, blacklisted_on, key_supervision_since, grade_review_since,
                 exit_condition_since, exit_started_at
             FROM {p}companies {company}"
        ),
        &one,
    )?;
    for row in rows {
        let Ok(code) = text(&row[0]).parse::<Uscc>() else { continue };
        let company = Company {
            credit_rating: row[2].as_str().map(str::to_owned),
            blacklisted_on: row[3].as_str().and_then(|day| day.parse().ok()),
            ..Company::new(code, text(&row[1]))
        };
        let recorded = RecordedConditions {
            key_supervision_since: opt_instant(&row[4]),
            grade_review_since: opt_instant(&row[5]),
            exit_condition_since: opt_instant(&row[6]),
            exit_started_at: opt_instant(&row[7]),
        };
        facts.insert(
            text(&row[0]),
            Facts {
                company,
                districts: Vec::new(),
                grades: Vec::new(),
                refusals: Vec::new(),
                deadlines: Vec::new(),
                recorded,
            },
        );
    }
    let (company_and, with_at) = match uscc {
        Some(uscc) => ("AND uscc = $2", vec![Value::int(at_ms), Value::text(uscc)]),
        None => ("", vec![Value::int(at_ms)]),
    };
    // Surveys in the order the log recorded them, as the domain keeps them (interpretation 13).
    let sql = format!(
        "SELECT uscc, community, at, respondents, satisfied FROM {p}surveys WHERE at <= $1 {company_and}
         ORDER BY position"
    );
    for row in tx.query(&sql, &with_at)? {
        if let Some(facts) = facts.get_mut(&text(&row[0])) {
            facts.company.surveys.push(Survey {
                community: text(&row[1]),
                at: instant(row[2].as_i64().unwrap_or(0)),
                respondents: small(&row[3]),
                satisfied: small(&row[4]),
            });
        }
    }
    let sql =
        format!("SELECT uscc, community, at, detail FROM {p}refusals WHERE at <= $1 {company_and} ORDER BY position");
    for row in tx.query(&sql, &with_at)? {
        if let Some(facts) = facts.get_mut(&text(&row[0])) {
            let at = instant(row[2].as_i64().unwrap_or(0));
            facts.company.refusals.push((text(&row[1]), at));
            facts.refusals.push(Refusal { community: text(&row[1]), at, detail: text(&row[3]) });
        }
    }
    let sql = format!("SELECT uscc, community, grade, at FROM {p}grades {company}");
    for row in tx.query(&sql, &one)? {
        if let Some(facts) = facts.get_mut(&text(&row[0])) {
            let grade = u8::try_from(row[2].as_i64().unwrap_or(0)).unwrap_or(u8::MAX);
            facts.company.grades.insert(text(&row[1]), grade);
            facts.grades.push(CommunityGrade {
                community: text(&row[1]),
                grade,
                at: instant(row[3].as_i64().unwrap_or(0)),
            });
        }
    }
    let sql = format!(
        "SELECT uscc, kind, rule, community, due, reason, provisional FROM {p}company_deadlines {company}
         ORDER BY uscc, due, seq"
    );
    for row in tx.query(&sql, &one)? {
        if let Some(facts) = facts.get_mut(&text(&row[0])) {
            facts.deadlines.push(CompanyDeadline {
                kind: text(&row[1]),
                rule: text(&row[2]),
                community: row[3].as_str().map(str::to_owned),
                due: instant(row[4].as_i64().unwrap_or(0)),
                reason: row[5].as_str().map(str::to_owned),
                provisional: row[6].as_i64() == Some(1),
            });
        }
    }
    let sql = format!("SELECT uscc, district FROM {p}company_districts {company}");
    for row in tx.query(&sql, &one)? {
        if let Some(facts) = facts.get_mut(&text(&row[0])) {
            facts.districts.push(text(&row[1]));
        }
    }
    // Sorted here, not in SQL, so that every server's collation gives the same order.
    for facts in facts.values_mut() {
        facts.districts.sort();
        facts.grades.sort_by(|a, b| a.community.cmp(&b.community));
    }
    Ok(facts)
}

fn shown(at: DateTime<FixedOffset>) -> String {
    at.format("%Y-%m-%d %H:%M:%S%:z").to_string()
}

/// Interpretation 21: what a reason says after a provisional due instant.
fn provisional_note(deadline: &CompanyDeadline) -> &'static str {
    if deadline.provisional { " (provisional)" } else { "" }
}

/// The entry of one company from its facts and counts; every rule is the domain's, with the
/// thresholds of the policy.
fn entry(
    uscc: String,
    facts: Facts,
    counts: Counts,
    open_leads: OpenLeads,
    windows: &Windows,
    policy: &Policy,
) -> WatchlistEntry {
    let rules = &policy.companies;
    let at = windows.at;
    let company = &facts.company;
    let mut flags = Vec::new();

    // EXT-1: more than 20 substantiated distinct complainants in the year, and a refusal to
    // rectify there or the latest survey there below 50 %. The domain finds the refusals and
    // the survey; the count is the list's.
    let (_, exit) = company.exit_condition(at, policy);
    if counts.substantiated_year > rules.exit_more_than
        && (!exit.refusals.is_empty() || exit.low_satisfaction_bp.is_some())
    {
        let mut reason = format!(
            "{} distinct complainants with substantiated complaints in the {} months after {} (more than {})",
            counts.substantiated_year,
            windows.exit.0,
            shown(windows.exit.1),
            rules.exit_more_than
        );
        if !exit.refusals.is_empty() {
            reason.push_str(&format!("; refusal to rectify in {}", exit.refusals.join(", ")));
        }
        if let Some(bp) = exit.low_satisfaction_bp {
            reason.push_str(&format!(
                "; latest survey satisfaction {} below {}",
                percent(bp),
                percent(rules.exit_satisfaction_below_bp)
            ));
        }
        if let Some(started) = facts.recorded.exit_started_at {
            reason.push_str(&format!("; exit procedure started {}", shown(started)));
        }
        flags.push(FlagReason { flag: Flag::ExitEligible, rule: RuleId::Ext1, reason });
    }

    // GRD-2: downgrades the log requires and that are not yet done.
    let downgrades: Vec<String> = facts
        .deadlines
        .iter()
        .filter(|deadline| deadline.kind == "downgrade")
        .map(|deadline| {
            let overdue = if deadline.due < at { ", overdue" } else { "" };
            format!(
                "downgrade of {} due by {}{}{overdue} ({})",
                deadline.community.as_deref().unwrap_or("every community"),
                shown(deadline.due),
                provisional_note(deadline),
                deadline.reason.as_deref().unwrap_or("required")
            )
        })
        .collect();
    if !downgrades.is_empty() {
        flags.push(FlagReason { flag: Flag::DowngradeDue, rule: RuleId::Grd2, reason: downgrades.join("; ") });
    }

    // GRD-1: the complaint trigger from the count; the credit and black-list triggers from the
    // domain; and any survey still owed.
    let mut review = Vec::new();
    if counts.substantiated_half_year > rules.grade_review_more_than {
        review.push(format!(
            "{} distinct complainants with substantiated complaints in the {} months after {} (more than {})",
            counts.substantiated_half_year,
            windows.grade_review.0,
            shown(windows.grade_review.1),
            rules.grade_review_more_than
        ));
    }
    for trigger in company.grade_review_triggers(at, policy) {
        match trigger {
            GradeReviewTrigger::Complaints { .. } => {}
            GradeReviewTrigger::LowCreditRating { rating } => review.push(format!("low credit rating {rating}")),
            GradeReviewTrigger::LongBlacklisted { listed_on } => review
                .push(format!("on the black list since {listed_on} ({} months or more)", rules.long_blacklist_months)),
        }
    }
    for deadline in facts.deadlines.iter().filter(|deadline| deadline.kind == "survey") {
        let overdue = if deadline.due < at { ", overdue" } else { "" };
        review.push(format!(
            "survey of {} due by {}{}{overdue}",
            deadline.community.as_deref().unwrap_or("every community"),
            shown(deadline.due),
            provisional_note(deadline)
        ));
    }
    if !review.is_empty() {
        flags.push(FlagReason { flag: Flag::GradeReviewDue, rule: RuleId::Grd1, reason: review.join("; ") });
    }

    // REG-4: more than 10 distinct complainants in the window, each counted once.
    if counts.complainants > rules.key_supervision_more_than {
        flags.push(FlagReason {
            flag: Flag::KeySupervision,
            rule: RuleId::Reg4,
            reason: format!(
                "{} distinct complainants in the {} months after {} (more than {}), {} of them anonymous complaints",
                counts.complainants,
                windows.key_supervision.0,
                shown(windows.key_supervision.1),
                rules.key_supervision_more_than,
                counts.anonymous_complaints
            ),
        });
    }

    let latest_survey = company.surveys.last().map(|survey| SurveyResult {
        community: survey.community.clone(),
        at: survey.at,
        respondents: survey.respondents,
        satisfied: survey.satisfied,
        satisfaction_bp: satisfaction_bp(survey.respondents, survey.satisfied),
    });
    let mut refusals = facts.refusals;
    refusals.reverse();
    WatchlistEntry {
        uscc,
        name: company.name.clone(),
        districts: facts.districts,
        complainants: Windows::count(windows.key_supervision, counts.complainants),
        anonymous: AnonymousCount { complaints: counts.anonymous_complaints, leads: counts.anonymous_leads },
        leads_in_window: counts.leads_in_window,
        substantiated_half_year: Windows::count(windows.grade_review, counts.substantiated_half_year),
        substantiated_year: Windows::count(windows.exit, counts.substantiated_year),
        open_leads: open_leads.open,
        overdue_leads: open_leads.overdue,
        overdue_leads_provisional: open_leads.overdue_provisional,
        latest_survey,
        grades: facts.grades,
        refusals,
        credit_rating: company.credit_rating.clone(),
        blacklisted_on: company.blacklisted_on,
        open_deadlines: facts.deadlines,
        recorded: facts.recorded,
        flags,
    }
}

/// The risk order of the module documentation.
fn by_risk(a: &WatchlistEntry, b: &WatchlistEntry) -> std::cmp::Ordering {
    b.risk()
        .cmp(&a.risk())
        .then(b.substantiated_half_year.distinct.cmp(&a.substantiated_half_year.distinct))
        .then(b.complainants.distinct.cmp(&a.complainants.distinct))
        .then(b.overdue_leads.cmp(&a.overdue_leads))
        .then_with(|| a.uscc.cmp(&b.uscc))
}

/// The watchlist at instant `at` (the API passes now by default): the companies the filter
/// selects, ordered by risk, paged. `prefix` is the live generation's table prefix.
pub fn query(
    tx: &mut dyn SqlTx,
    prefix: &str,
    at: DateTime<FixedOffset>,
    filter: &WatchlistFilter,
    policy: &Policy,
) -> Result<WatchlistPage, SqlError> {
    let windows = Windows::ending(at, policy);
    let mut counts = load_counts(tx, prefix, &windows, None)?;
    let mut open = load_open(tx, prefix, windows.at, None)?;
    let facts = load_facts(tx, prefix, windows.at, None)?;
    let mut entries: Vec<WatchlistEntry> = facts
        .into_iter()
        .filter(|(_, facts)| {
            filter.district.as_ref().is_none_or(|district| facts.districts.iter().any(|d| d == district))
        })
        .map(|(uscc, facts)| {
            let company_counts = counts.remove(&uscc).unwrap_or_default();
            let company_open = open.remove(&uscc).unwrap_or_default();
            entry(uscc, facts, company_counts, company_open, &windows, policy)
        })
        .filter(|entry| filter.scope == Scope::Every || !entry.flags.is_empty())
        .filter(|entry| filter.flag.is_none_or(|flag| entry.has(flag)))
        .collect();
    entries.sort_by(by_risk);
    let total = entries.len();
    let entries = entries.into_iter().skip(filter.offset).take(filter.limit.unwrap_or(usize::MAX)).collect();
    Ok(WatchlistPage { at: windows.at, total, entries })
}

/// One company at instant `at`, with the evidence the domain's own counting finds: its leads
/// in the windows are loaded into [`Company`] and counted there. `None` if the company has no
/// record.
pub fn company(
    tx: &mut dyn SqlTx,
    prefix: &str,
    uscc: &str,
    at: DateTime<FixedOffset>,
    policy: &Policy,
) -> Result<Option<CompanyDetail>, SqlError> {
    let windows = Windows::ending(at, policy);
    let Some((uscc, mut facts)) = load_facts(tx, prefix, windows.at, Some(uscc))?.into_iter().next() else {
        return Ok(None);
    };
    let rows = tx.query(
        &format!(
            "SELECT lead, complainant_key, registered_at, community, linked_to, finding, found_at
             FROM {prefix}leads
             WHERE counted = 1 AND uscc = $1 AND registered_at > $2 AND registered_at <= $3"
        ),
        &[
            Value::text(uscc.as_str()),
            Value::int(windows.earliest_start().timestamp_millis()),
            Value::int(windows.at.timestamp_millis()),
        ],
    )?;
    for row in rows {
        let Ok(lead) = text(&row[0]).parse::<ComplaintId>() else { continue };
        let complainant_key = row[1]
            .as_str()
            .and_then(|key| serde_json::from_value::<ComplainantKey>(serde_json::Value::String(key.to_owned())).ok());
        let found = |finding, attributable, at| Some(Found { finding, attributable, at: instant(at) });
        let finding = match (row[5].as_str(), row[6].as_i64()) {
            (Some("substantiated"), Some(at)) => found(Finding::Substantiated, true, at),
            (Some(NOT_ATTRIBUTABLE), Some(at)) => found(Finding::Substantiated, false, at),
            (Some("unsubstantiated"), Some(at)) => found(Finding::Unsubstantiated, false, at),
            _ => None,
        };
        facts.company.leads.insert(
            lead,
            CountedLead {
                complainant_key,
                registered_at: instant(row[2].as_i64().unwrap_or(0)),
                community: text(&row[3]),
                linked_to: row[4].as_str().and_then(|id| id.parse().ok()),
                finding,
            },
        );
    }
    let company = &facts.company;
    let key_supervision = company.complainants_in_window(windows.at, windows.key_supervision.0);
    let grade_review = company.substantiated_in_window(windows.at, windows.grade_review.0);
    let (_, exit) = company.exit_condition(windows.at, policy);
    let grade_review_triggers = company.grade_review_triggers(windows.at, policy);
    let mut not_attributable: Vec<ComplaintId> = company
        .leads
        .iter()
        .filter(|(_, lead)| lead.registered_at > windows.exit.1 && lead.registered_at <= windows.at)
        .filter(|(_, lead)| {
            lead.finding.is_some_and(|found| {
                found.finding == Finding::Substantiated && !found.attributable && found.at <= windows.at
            })
        })
        .map(|(id, _)| id.clone())
        .collect();
    not_attributable.sort();
    let anonymous_complaints = key_supervision.distinct.saturating_sub(len(&key_supervision.keys));
    let counts = Counts {
        complainants: key_supervision.distinct,
        anonymous_complaints,
        anonymous_leads: len(&key_supervision.anonymous_leads),
        leads_in_window: len(&key_supervision.leads),
        substantiated_half_year: grade_review.distinct,
        substantiated_year: exit.count.distinct,
    };
    let open = load_open(tx, prefix, windows.at, Some(uscc.as_str()))?.remove(&uscc).unwrap_or_default();
    let entry = entry(uscc, facts, counts, open, &windows, policy);
    Ok(Some(CompanyDetail {
        entry,
        evidence: CompanyEvidence { key_supervision, grade_review, exit, grade_review_triggers, not_attributable },
    }))
}

fn len<T>(items: &[T]) -> u32 {
    u32::try_from(items.len()).unwrap_or(u32::MAX)
}

/// Every company on record, by code: the companies the deadline reactor re-evaluates as
/// time passes (interpretation 16).
pub fn companies(tx: &mut dyn SqlTx, prefix: &str) -> Result<Vec<String>, SqlError> {
    let rows = tx.query(&format!("SELECT uscc FROM {prefix}companies ORDER BY uscc"), &[])?;
    Ok(rows.iter().filter_map(|row| row[0].as_str().map(str::to_owned)).collect())
}
