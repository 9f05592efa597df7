//! Builds a generation of `overdue-escalation` in memory for a rebuild with the server stopped
//! (`tousu projections rebuild`): the open obligations and recorded misses of each stream, each
//! lead's place and the closure counts per body and kind are folded into maps shaped like the
//! four tables, and every table is written once at the end, in primary-key order.
//!
//! The fold follows [`OverdueWriter`](crate::OverdueWriter) statement by statement and in its
//! order within an event: the lead's registration, the escalation facts, then the closings,
//! then the openings. So the tables come out row for row as the writer leaves them, down to its
//! corners: a miss is recorded even where its deadline has no row, while a mark or an escalation
//! level on a missing row changes nothing; a closing counts only a deadline that has a row, for
//! the body and kind of that row; opening a deadline whose row exists updates its kind, rule,
//! body, community, district, start, due and provisional columns but keeps its subject,
//! company, levels and miss mark; a recomputed due (interpretation 21) changes a row only where
//! there is one, and withdraws a miss whether or not; a lead's deadline takes its place from the lead's row as it stands at that moment
//! (empty where the lead has none), and a company's deadline its district from the company's
//! leads as they stand then.
//!
//! Texts that repeat (companies, communities, districts) are held once each and shared, and
//! bodies, kinds and rules stay the domain's enums until they are written, so that folding an
//! event allocates only for a new lead, a new stream or a new name.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use tousu_domain::complaint::{ComplaintEvent, ComplaintFact, Registration};
use tousu_domain::deadline::{ClosedHow, DeadlineClosure, DeadlineKind, DueBasis, EscalationLevel, EscalationReason};
use tousu_domain::enterprise::{EnterpriseEvent, EnterpriseFact};
use tousu_domain::ids::{BodyCode, ComplaintId, Uscc};
use tousu_domain::obligations::{EscalationFact, ReferralDecision};
use tousu_domain::rule::RuleId;
use tousu_projection::{BulkBuilder, Payload, ProjectedEvent, ProjectionError, Row, SqlTx, Value};

use crate::query::level_bit;
use crate::{millis, provisional_columns};

/// A generation of `overdue-escalation` being built in memory.
#[derive(Debug)]
pub struct OverdueBulk {
    prefix: String,
    /// The rows of `obligations` and `misses`, per stream.
    streams: Streams,
    /// The rows of `leads`, by lead.
    leads: HashMap<Arc<str>, LeadRow>,
    /// Every company named by a lead's registration or a company stream, with the places of
    /// its leads: what a company deadline's district is looked up in.
    companies: HashMap<Arc<str>, Company>,
    /// Every community and district named so far, each held once.
    names: HashSet<Arc<str>>,
    /// The rows of `closures`.
    closures: Closures,
    /// The rows of `referrals`, by stream and sequence number (interpretation 9).
    referrals: BTreeMap<(Box<str>, u32), Referral>,
    /// The empty text, which the writer's `COALESCE(…, '')` stores where a lookup finds nothing.
    empty: Arc<str>,
}

/// Every stream's rows of `obligations` and `misses`, found by the stream's name. The rows
/// live in a vector beside the map: a lookup by `&str` that finds a stream then holds no
/// borrow of the map, so one that finds none can insert (with the rows in the map, a hit would
/// take two lookups), and the map's entries stay small as it grows.
#[derive(Debug, Default)]
struct Streams {
    index: HashMap<Box<str>, usize>,
    rows: Vec<StreamRows>,
}

impl Streams {
    fn get_mut(&mut self, stream: &str) -> Option<&mut StreamRows> {
        self.index.get(stream).map(|&position| &mut self.rows[position])
    }

    /// The stream's rows, made empty if it has none yet.
    fn get_or_insert(&mut self, stream: &str) -> &mut StreamRows {
        let position = match self.index.get(stream) {
            Some(&position) => position,
            None => {
                self.index.insert(Box::from(stream), self.rows.len());
                self.rows.push(StreamRows::default());
                self.rows.len() - 1
            }
        };
        &mut self.rows[position]
    }

    /// Every stream with its rows, in the order of the streams' names.
    fn sorted(&self) -> Vec<(&str, &StreamRows)> {
        let mut streams: Vec<(&str, &StreamRows)> =
            self.index.iter().map(|(stream, &position)| (&**stream, &self.rows[position])).collect();
        streams.sort_unstable_by_key(|(stream, _)| *stream);
        streams
    }
}

/// One stream's rows of `obligations` and `misses`, each kept in sequence-number order.
#[derive(Debug, Default)]
struct StreamRows {
    obligations: Vec<Obligation>,
    misses: Vec<(u32, BodyCode)>,
}

/// A row of `obligations` without its stream.
#[derive(Debug)]
struct Obligation {
    seq: u32,
    subject_kind: SubjectKind,
    kind: DeadlineKind,
    rule: RuleId,
    body: BodyCode,
    /// ACC-2, interpretation 9: the escalation levels recorded, a bit per level.
    levels: i64,
    /// ACC-2: whether the deadline's miss was recorded.
    missed: bool,
    subject: Arc<str>,
    company: Arc<str>,
    community: Arc<str>,
    district: Arc<str>,
    start_at: i64,
    due: i64,
    /// Interpretation 21: the calendar version of a provisional due (the empty text when it is
    /// official), and the first and last provisional year it looked at (0 when official).
    calendar: Arc<str>,
    provisional_first: i64,
    provisional_last: i64,
}

/// A row of `referrals` without its key (interpretation 9).
#[derive(Debug)]
struct Referral {
    subject_kind: SubjectKind,
    subject: Arc<str>,
    company: Arc<str>,
    kind: DeadlineKind,
    body: BodyCode,
    recommended_at: i64,
    reason: EscalationReason,
    working_days_late: u32,
    /// `None` while pending.
    decision: Option<ReferralDecision>,
    decided_at: i64,
    decided_by: String,
    decision_reason: String,
}

/// Whose escalation fact is folded: the writer's `subject_kind` and `subject`, and the company
/// a recommendation names.
struct Whose {
    kind: SubjectKind,
    subject: Arc<str>,
    company: Arc<str>,
}

/// The writer's `subject_kind`: whose deadline it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubjectKind {
    Lead,
    Company,
}

impl SubjectKind {
    fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Lead => "lead",
            SubjectKind::Company => "company",
        }
    }
}

/// What a lead's deadlines take from its row in `leads` (the writer's subqueries): the lead
/// as the subject, and the company, community, district and registration, empty (and none)
/// where the lead has no row.
#[derive(Debug)]
struct LeadPlace {
    subject: Arc<str>,
    company: Arc<str>,
    community: Arc<str>,
    district: Arc<str>,
    registered_at: Option<i64>,
}

/// A row of `leads` without its lead.
#[derive(Debug)]
struct LeadRow {
    company: Arc<str>,
    community: Arc<str>,
    district: Arc<str>,
    registered_at: i64,
}

/// A company and the places of the leads registered against it.
#[derive(Debug)]
struct Company {
    uscc: Arc<str>,
    /// The communities the company's leads name, with the districts they give there: the rows
    /// of `leads` the writer's district lookups read. A community has an entry only while some
    /// lead names it.
    places: BTreeMap<Arc<str>, Community>,
}

/// A community of a company's leads: its name as held once, and how many of the leads there
/// give each district, in district order, each count above zero.
#[derive(Debug)]
struct Community {
    name: Arc<str>,
    districts: Vec<(Arc<str>, u32)>,
}

impl Company {
    /// Interpretation 14: the district a company deadline concerning `community` is listed
    /// under, as the writer's lookup finds it: for a deadline without a community, the district
    /// of the first of the company's leads in (community, district) order; otherwise the first
    /// district of its leads in that community; none when no lead qualifies. Texts are ordered
    /// bytewise here, as SQLite's `BINARY` collation (and PostgreSQL's `C`) order them.
    fn district_of(&self, community: &str) -> Option<&Arc<str>> {
        let places = if community.is_empty() {
            self.places.first_key_value().map(|(_, places)| places)
        } else {
            self.places.get(community)
        };
        places.and_then(|places| places.districts.first()).map(|(district, _)| district)
    }

    /// Counts a lead in `community` and `district`; answers both names as held once. A name
    /// the company's leads already give is found among them without hashing it.
    fn add_place(&mut self, names: &mut HashSet<Arc<str>>, community: &str, district: &str) -> (Arc<str>, Arc<str>) {
        let places = match self.places.get_mut(community) {
            Some(places) => places,
            None => {
                let name = intern(names, community);
                self.places.entry(name.clone()).or_insert(Community { name, districts: Vec::new() })
            }
        };
        let district = match places.districts.binary_search_by(|(known, _)| (**known).cmp(district)) {
            Ok(position) => {
                places.districts[position].1 += 1;
                places.districts[position].0.clone()
            }
            Err(position) => {
                let name = intern(names, district);
                places.districts.insert(position, (name.clone(), 1));
                name
            }
        };
        (places.name.clone(), district)
    }

    fn remove_place(&mut self, community: &str, district: &str) {
        let Some(places) = self.places.get_mut(community) else { return };
        if let Ok(position) = places.districts.binary_search_by(|(known, _)| (**known).cmp(district)) {
            places.districts[position].1 -= 1;
            if places.districts[position].1 == 0 {
                places.districts.remove(position);
            }
        }
        if places.districts.is_empty() {
            self.places.remove(community);
        }
    }
}

/// The rows of `closures`, by body and then kind (each enum's declaration order).
type Closures = [[ClosureCounts; DeadlineKind::ALL.len()]; BodyCode::ALL.len()];

/// A row of `closures` without its key; all zero while the writer has no row.
#[derive(Debug, Default, Clone, Copy)]
struct ClosureCounts {
    met_on_time: i64,
    met_late: i64,
    superseded: i64,
}

impl OverdueBulk {
    /// A builder of the tables under `prefix`.
    pub fn new(prefix: &str) -> OverdueBulk {
        OverdueBulk {
            prefix: prefix.to_owned(),
            streams: Streams::default(),
            leads: HashMap::new(),
            companies: HashMap::new(),
            names: HashSet::new(),
            closures: [[ClosureCounts::default(); DeadlineKind::ALL.len()]; BodyCode::ALL.len()],
            referrals: BTreeMap::new(),
            empty: Arc::from(""),
        }
    }

    /// A lead's event: its registration, its escalation fact, then its closings and openings.
    /// A lead's deadlines take the company, community and district of the lead's row, empty
    /// where it has none. The start is the period's; for a reinstated TRF-1/TRF-2 deadline
    /// (interpretation 15), the lead's registration, or the event's instant where the lead has
    /// no row (the writer's `COALESCE`); for HDL-2's plan date, the event's instant.
    fn fold_lead(&mut self, stream: &str, lead: &ComplaintId, event: &ComplaintEvent) {
        let recorded = match &event.fact {
            ComplaintFact::Registered { registration, .. } => {
                Some(self.record_lead(lead, registration, millis(event.at)))
            }
            ComplaintFact::SplitFrom { registration, registered_at, .. } => {
                Some(self.record_lead(lead, registration, millis(*registered_at)))
            }
            ComplaintFact::Escalation(fact) => {
                let place = self.lead_place(lead);
                let whose = Whose { kind: SubjectKind::Lead, subject: place.subject, company: place.company };
                self.record_escalation(stream, &whose, millis(event.at), fact);
                None
            }
            _ => None,
        };
        if event.opens.is_empty() {
            self.close_only(stream, millis(event.at), &event.closes);
            return;
        }
        let at = millis(event.at);
        // The row this event recorded is the row the lookup would find.
        let place = match recorded {
            Some(place) => place,
            None => self.lead_place(lead),
        };
        let obligations = &mut self.streams.get_or_insert(stream).obligations;
        close(obligations, &mut self.closures, at, &event.closes);
        for deadline in &event.opens {
            let start_at = match &deadline.basis {
                DueBasis::Period { start, .. } => millis(*start),
                DueBasis::Reinstated { .. } => place.registered_at.unwrap_or(at),
                DueBasis::PlanDate { .. } => at,
            };
            let (calendar, provisional_first, provisional_last) =
                provisional_columns(deadline.provisional, deadline.calendar.as_ref());
            let calendar = intern(&mut self.names, &calendar);
            open(
                obligations,
                Obligation {
                    seq: deadline.seq,
                    subject_kind: SubjectKind::Lead,
                    kind: deadline.kind,
                    rule: deadline.rule,
                    body: deadline.body,
                    levels: 0,
                    missed: false,
                    subject: place.subject.clone(),
                    company: place.company.clone(),
                    community: place.community.clone(),
                    district: place.district.clone(),
                    start_at,
                    due: millis(deadline.due),
                    calendar,
                    provisional_first,
                    provisional_last,
                },
            );
        }
    }

    /// Closings of an event that opens nothing: only a stream with rows has anything to close.
    fn close_only(&mut self, stream: &str, at: i64, closes: &[DeadlineClosure]) {
        if !closes.is_empty()
            && let Some(rows) = self.streams.get_mut(stream)
        {
            close(&mut rows.obligations, &mut self.closures, at, closes);
        }
    }

    /// A company's event: its escalation fact, then its closings and openings. A company's
    /// deadline (GRD-1 to GRD-4, interpretation 14) concerns a community; its district is
    /// looked up in the company's leads as they stand (see [`Company::district_of`]). It starts
    /// at the period's start, or at the event's instant.
    fn fold_company(&mut self, stream: &str, uscc: &Uscc, event: &EnterpriseEvent) {
        if let EnterpriseFact::Escalation(fact) = &event.fact {
            let uscc: Arc<str> = company_entry(&mut self.companies, uscc.as_str()).uscc.clone();
            let whose = Whose { kind: SubjectKind::Company, subject: uscc.clone(), company: uscc };
            self.record_escalation(stream, &whose, millis(event.at), fact);
        }
        if event.opens.is_empty() {
            self.close_only(stream, millis(event.at), &event.closes);
            return;
        }
        let at = millis(event.at);
        let company = company_entry(&mut self.companies, uscc.as_str());
        let obligations = &mut self.streams.get_or_insert(stream).obligations;
        close(obligations, &mut self.closures, at, &event.closes);
        for deadline in &event.opens {
            // The writer binds `community.unwrap_or_default()`: no community and an empty one
            // are the same text, and both take the lookup over all of the company's leads.
            let community = match deadline.community.as_deref() {
                Some(community) if !community.is_empty() => intern(&mut self.names, community),
                _ => self.empty.clone(),
            };
            let district = company.district_of(&community).unwrap_or(&self.empty).clone();
            let start_at = match &deadline.basis {
                DueBasis::Period { start, .. } => millis(*start),
                DueBasis::Reinstated { .. } | DueBasis::PlanDate { .. } => at,
            };
            let (calendar, provisional_first, provisional_last) =
                provisional_columns(deadline.provisional, deadline.calendar.as_ref());
            let calendar = intern(&mut self.names, &calendar);
            open(
                obligations,
                Obligation {
                    seq: deadline.seq,
                    subject_kind: SubjectKind::Company,
                    kind: deadline.kind,
                    rule: deadline.rule,
                    body: deadline.body,
                    levels: 0,
                    missed: false,
                    subject: company.uscc.clone(),
                    company: company.uscc.clone(),
                    community,
                    district,
                    start_at,
                    due: millis(deadline.due),
                    calendar,
                    provisional_first,
                    provisional_last,
                },
            );
        }
    }

    /// REG-1: the writer's upsert of the lead's row, every column replaced; answers the row as
    /// the lead's deadlines read it. The lead's place moves in its company's places with it.
    fn record_lead(&mut self, lead: &ComplaintId, registration: &Registration, registered_at: i64) -> LeadPlace {
        // Interpretation 22: a lead naming no company is stored with an empty code, as the
        // writer stores it.
        let uscc = registration.company.as_ref().map_or("", |company| company.uscc.as_str());
        let company = company_entry(&mut self.companies, uscc);
        let (community, district) =
            company.add_place(&mut self.names, &registration.place.community, &registration.place.district);
        let place = LeadPlace {
            subject: Arc::from(lead.as_str()),
            company: company.uscc.clone(),
            community: community.clone(),
            district: district.clone(),
            registered_at: Some(registered_at),
        };
        let row = LeadRow { company: company.uscc.clone(), community, district, registered_at };
        // A lead is nearly always new here, so its name is made the key at once; where the lead
        // has a row already, the map keeps its first key and answers the row replaced.
        if let Some(earlier) = self.leads.insert(place.subject.clone(), row)
            && let Some(company) = self.companies.get_mut(&earlier.company)
        {
            company.remove_place(&earlier.community, &earlier.district);
        }
        place
    }

    /// The lead's row as its deadlines read it.
    fn lead_place(&self, lead: &ComplaintId) -> LeadPlace {
        match self.leads.get_key_value(lead.as_str()) {
            Some((subject, row)) => LeadPlace {
                subject: subject.clone(),
                company: row.company.clone(),
                community: row.community.clone(),
                district: row.district.clone(),
                registered_at: Some(row.registered_at),
            },
            None => LeadPlace {
                subject: Arc::from(lead.as_str()),
                company: self.empty.clone(),
                community: self.empty.clone(),
                district: self.empty.clone(),
                registered_at: None,
            },
        }
    }

    /// ACC-2, interpretation 9: a recorded miss, a rung of the escalation ladder reached (the
    /// third a recommendation to refer, kept in `referrals` whether or not the deadline has a
    /// row, first one kept), a recomputed due, or an official's decision on a recommendation.
    fn record_escalation(&mut self, stream: &str, whose: &Whose, at: i64, fact: &EscalationFact) {
        match fact {
            EscalationFact::DeadlineMissed { seq, body, .. } => {
                // The writer inserts the miss whether or not the deadline still has a row, and
                // keeps the first miss recorded for it (`ON CONFLICT DO NOTHING`).
                let rows = self.streams.get_or_insert(stream);
                if let Err(position) = rows.misses.binary_search_by_key(seq, |(seq, _)| *seq) {
                    rows.misses.insert(position, (*seq, *body));
                }
                if let Ok(position) = rows.obligations.binary_search_by_key(seq, |obligation| obligation.seq) {
                    rows.obligations[position].missed = true;
                }
            }
            EscalationFact::Escalated { seq, level, kind, body, reason, working_days_late } => {
                if *level == EscalationLevel::DisciplineOrgan {
                    self.referrals.entry((Box::from(stream), *seq)).or_insert_with(|| Referral {
                        subject_kind: whose.kind,
                        subject: whose.subject.clone(),
                        company: whose.company.clone(),
                        kind: *kind,
                        body: *body,
                        recommended_at: at,
                        reason: *reason,
                        working_days_late: *working_days_late,
                        decision: None,
                        decided_at: 0,
                        decided_by: String::new(),
                        decision_reason: String::new(),
                    });
                }
                let Some(rows) = self.streams.get_mut(stream) else { return };
                let obligations = &mut rows.obligations;
                if let Ok(position) = obligations.binary_search_by_key(seq, |obligation| obligation.seq) {
                    obligations[position].levels |= level_bit(*level);
                }
            }
            // Interpretation 21: the writer's update of the row, if it has one, and its delete of
            // the miss, whether or not.
            EscalationFact::DeadlineRecomputed {
                seq,
                due,
                provisional,
                calendar,
                withdrawn_levels,
                miss_withdrawn,
                ..
            } => {
                let (calendar, first, last) = provisional_columns(*provisional, Some(calendar));
                let calendar = intern(&mut self.names, &calendar);
                if withdrawn_levels.contains(&EscalationLevel::DisciplineOrgan) {
                    let key = (Box::from(stream), *seq);
                    if self.referrals.get(&key).is_some_and(|referral| referral.decision.is_none()) {
                        self.referrals.remove(&key);
                    }
                }
                let Some(rows) = self.streams.get_mut(stream) else { return };
                if *miss_withdrawn && let Ok(position) = rows.misses.binary_search_by_key(seq, |(seq, _)| *seq) {
                    rows.misses.remove(position);
                }
                if let Ok(position) = rows.obligations.binary_search_by_key(seq, |obligation| obligation.seq) {
                    let obligation = &mut rows.obligations[position];
                    obligation.due = millis(*due);
                    obligation.calendar = calendar;
                    obligation.provisional_first = first;
                    obligation.provisional_last = last;
                    for level in withdrawn_levels {
                        obligation.levels &= !level_bit(*level);
                    }
                    obligation.missed &= !*miss_withdrawn;
                }
            }
            EscalationFact::ReferralDecided { seq, decision, reason, official, .. } => {
                if let Some(referral) = self.referrals.get_mut(&(Box::from(stream), *seq)) {
                    referral.decision = Some(*decision);
                    referral.decided_at = at;
                    referral.decided_by.clone_from(official);
                    referral.decision_reason.clone_from(reason);
                }
            }
        }
    }
}

/// Deletes each closed deadline's row and counts the closure for the row's body and kind: met
/// on time (at or before the due instant), met late, or superseded. A closing of a deadline
/// without a row counts nothing, as the writer's `DELETE … RETURNING` returns none; nor does
/// the closing's own kind count, only the row's.
fn close(obligations: &mut Vec<Obligation>, closures: &mut Closures, at: i64, closes: &[DeadlineClosure]) {
    for closure in closes {
        let Ok(position) = obligations.binary_search_by_key(&closure.seq, |obligation| obligation.seq) else {
            continue;
        };
        let closed = obligations.remove(position);
        let counts = &mut closures[closed.body as usize][closed.kind as usize];
        match closure.how {
            ClosedHow::Met if at <= closed.due => counts.met_on_time += 1,
            ClosedHow::Met => counts.met_late += 1,
            ClosedHow::Superseded => counts.superseded += 1,
        }
    }
}

/// The writer's `INSERT … ON CONFLICT (stream, seq) DO UPDATE`: a new row, or, where the
/// stream already has a row for the sequence number, that row with the new kind, rule, body,
/// community, district, start, due and provisional columns, and its own subject, company,
/// levels and miss mark.
fn open(obligations: &mut Vec<Obligation>, opened: Obligation) {
    match obligations.binary_search_by_key(&opened.seq, |obligation| obligation.seq) {
        Ok(position) => {
            let existing = &mut obligations[position];
            existing.kind = opened.kind;
            existing.rule = opened.rule;
            existing.body = opened.body;
            existing.community = opened.community;
            existing.district = opened.district;
            existing.start_at = opened.start_at;
            existing.due = opened.due;
            existing.calendar = opened.calendar;
            existing.provisional_first = opened.provisional_first;
            existing.provisional_last = opened.provisional_last;
        }
        Err(position) => obligations.insert(position, opened),
    }
}

/// The company `uscc`, made without places if none of its leads or events came yet.
fn company_entry<'a>(companies: &'a mut HashMap<Arc<str>, Company>, uscc: &str) -> &'a mut Company {
    if !companies.contains_key(uscc) {
        let uscc: Arc<str> = Arc::from(uscc);
        companies.insert(uscc.clone(), Company { uscc, places: BTreeMap::new() });
    }
    companies.get_mut(uscc).expect("the company was just inserted")
}

/// The one shared copy of `name`.
fn intern(names: &mut HashSet<Arc<str>>, name: &str) -> Arc<str> {
    if let Some(interned) = names.get(name) {
        return interned.clone();
    }
    let interned: Arc<str> = Arc::from(name);
    names.insert(interned.clone());
    interned
}

impl BulkBuilder for OverdueBulk {
    fn fold(&mut self, events: &[ProjectedEvent]) -> Result<(), ProjectionError> {
        for event in events {
            match &event.payload {
                Payload::Complaint { lead, event: complaint } => self.fold_lead(&event.stream, lead, complaint),
                Payload::Enterprise { uscc, event: company } => self.fold_company(&event.stream, uscc, company),
                Payload::Weekly { .. } | Payload::Other => {}
            }
        }
        Ok(())
    }

    fn write(&self, tx: &mut dyn SqlTx) -> Result<(), ProjectionError> {
        let p = &self.prefix;
        // Every table in primary-key order, which SQLite's index is built fastest in; texts
        // compare bytewise in Rust as in SQLite's `BINARY` collation.
        let streams = self.streams.sorted();

        let mut obligations = streams.iter().flat_map(|(stream, rows)| {
            rows.obligations.iter().map(move |obligation| -> Row {
                vec![
                    Value::text(*stream),
                    Value::int(i64::from(obligation.seq)),
                    Value::text(obligation.subject_kind.as_str()),
                    Value::text(&*obligation.subject),
                    Value::text(&*obligation.company),
                    Value::text(obligation.kind.as_str()),
                    Value::text(obligation.rule.as_str()),
                    Value::text(obligation.body.as_str()),
                    Value::text(&*obligation.community),
                    Value::text(&*obligation.district),
                    Value::int(obligation.start_at),
                    Value::int(obligation.due),
                    Value::int(obligation.levels),
                    Value::int(i64::from(obligation.missed)),
                    Value::text(&*obligation.calendar),
                    Value::int(obligation.provisional_first),
                    Value::int(obligation.provisional_last),
                ]
            })
        });
        tx.insert_rows(
            &format!("{p}obligations"),
            &[
                "stream",
                "seq",
                "subject_kind",
                "subject",
                "company",
                "kind",
                "rule",
                "body",
                "community",
                "district",
                "start_at",
                "due",
                "levels",
                "missed",
                "calendar",
                "provisional_first",
                "provisional_last",
            ],
            &mut obligations,
        )?;

        let mut misses = streams.iter().flat_map(|(stream, rows)| {
            rows.misses.iter().map(move |(seq, body)| -> Row {
                vec![Value::text(*stream), Value::int(i64::from(*seq)), Value::text(body.as_str())]
            })
        });
        tx.insert_rows(&format!("{p}misses"), &["stream", "seq", "body"], &mut misses)?;

        let mut leads: Vec<(&Arc<str>, &LeadRow)> = self.leads.iter().collect();
        leads.sort_unstable_by_key(|(lead, _)| *lead);
        tx.insert_rows(
            &format!("{p}leads"),
            &["lead", "company", "community", "district", "registered_at"],
            &mut leads.iter().map(|(lead, row)| -> Row {
                vec![
                    Value::text(&***lead),
                    Value::text(&*row.company),
                    Value::text(&*row.community),
                    Value::text(&*row.district),
                    Value::int(row.registered_at),
                ]
            }),
        )?;

        // A body and kind has a row once a closure was counted for it, and every closure
        // counts one in one of the three columns.
        let mut closures: Vec<(BodyCode, DeadlineKind, ClosureCounts)> = BodyCode::ALL
            .into_iter()
            .flat_map(|body| DeadlineKind::ALL.into_iter().map(move |kind| (body, kind)))
            .map(|(body, kind)| (body, kind, self.closures[body as usize][kind as usize]))
            .filter(|(_, _, counts)| counts.met_on_time + counts.met_late + counts.superseded > 0)
            .collect();
        closures.sort_unstable_by_key(|(body, kind, _)| (body.as_str(), kind.as_str()));
        tx.insert_rows(
            &format!("{p}closures"),
            &["body", "kind", "met_on_time", "met_late", "superseded"],
            &mut closures.iter().map(|(body, kind, counts)| -> Row {
                vec![
                    Value::text(body.as_str()),
                    Value::text(kind.as_str()),
                    Value::int(counts.met_on_time),
                    Value::int(counts.met_late),
                    Value::int(counts.superseded),
                ]
            }),
        )?;

        tx.insert_rows(
            &format!("{p}referrals"),
            &[
                "stream",
                "seq",
                "subject_kind",
                "subject",
                "company",
                "kind",
                "body",
                "recommended_at",
                "reason",
                "working_days_late",
                "status",
                "decided_at",
                "decided_by",
                "decision_reason",
            ],
            &mut self.referrals.iter().map(|((stream, seq), referral)| -> Row {
                vec![
                    Value::text(&**stream),
                    Value::int(i64::from(*seq)),
                    Value::text(referral.subject_kind.as_str()),
                    Value::text(&*referral.subject),
                    Value::text(&*referral.company),
                    Value::text(referral.kind.as_str()),
                    Value::text(referral.body.as_str()),
                    Value::int(referral.recommended_at),
                    Value::text(referral.reason.as_str()),
                    Value::int(i64::from(referral.working_days_late)),
                    Value::text(referral.decision.map_or("pending", ReferralDecision::as_str)),
                    Value::int(referral.decided_at),
                    Value::text(referral.decided_by.as_str()),
                    Value::text(referral.decision_reason.as_str()),
                ]
            }),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closures grid is indexed by each enum's discriminant and sized by its `ALL`: every
    /// value must sit at its own place in `ALL`.
    #[test]
    fn acc_2_every_body_and_kind_has_its_own_cell_of_the_closures_grid() {
        for (index, body) in BodyCode::ALL.into_iter().enumerate() {
            assert_eq!(body as usize, index, "{body:?}");
        }
        for (index, kind) in DeadlineKind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, index, "{kind:?}");
        }
    }
}
