//! The bulk builder against the writer on a long scenario: many leads in several districts
//! against several companies, driven by the domain through every fact the summary counts
//! over twelve weeks, with the events the writer treats specially mixed in. Interpretation 21:
//! some deadlines are logged as provisional, and some due instants are recomputed by hand, of
//! open deadlines, closed ones and ones never opened, on leads registered or not, withdrawing
//! escalation levels or not. Every scenario of `weekly_summary.rs` also compares the two after
//! each feed (`common::feed`).

mod common;

use std::collections::BTreeSet;

use chrono::{DateTime, FixedOffset, TimeDelta};
use common::{LeadStream, Log, actor, assert_bulk_matches, at, feed, lead_id, registration, uscc};
use tousu_domain::Aggregate;
use tousu_domain::actor::{Actor, Role};
use tousu_domain::calendar::{CalendarVersion, Period};
use tousu_domain::complaint::{
    Channel, ComplaintCommand, ComplaintEvent, ComplaintFact, Complexity, FeedbackRecipient, Finding, LeadStatus,
    PenaltyDecision, PenaltyVerification, Registration, ReviewOutcome, Satisfaction, SplitRequest, TransferMethod,
    Urgency,
};
use tousu_domain::deadline::{ClosedHow, Deadline, DeadlineClosure, DeadlineKind, DueBasis, EscalationLevel};
use tousu_domain::ids::{BodyCode, ComplaintId};
use tousu_domain::obligations::{EscalationFact, ReferralDecision};
use tousu_domain::reporting::reporting_week;
use tousu_domain::rule::RuleId;
use tousu_projection::{Payload, SqlConnection};
use tousu_projection_testkit::Dice;
use tousu_read_weekly_summary::WeeklySummaryModel;

const PREFIX: &str = "s_";

const DISTRICTS: [&str; 4] = ["鼓楼区", "台江区", "仓山区", "晋安区"];

/// Categories of several bodies, 住建's own among them.
const CATEGORIES: [&str; 10] = ["SJ-3-1", "SJ-4", "ZJ-1-3", "ZJ-2-1", "FG-4", "XF-6", "ZR-1", "GA-2", "JB-3", "SQ-1"];

/// The scenario under construction: the log, its leads, and what the special events need.
struct Scenario {
    log: Log,
    dice: Dice,
    leads: Vec<LeadStream>,
    /// Linked leads requested at a classification and not opened yet: (id, parent, category).
    splits: Vec<(ComplaintId, usize, String)>,
    /// Leads whose events are also appended under a lead id the log never registers.
    ghosts: Vec<(usize, ComplaintId)>,
}

fn text(now: DateTime<FixedOffset>) -> String {
    now.to_rfc3339()
}

impl Scenario {
    /// Appends a lead's event, usually recorded at its instant, sometimes days late.
    fn push(&mut self, lead: &ComplaintId, event: ComplaintEvent) {
        let recorded =
            if self.dice.chance(3) { event.at + TimeDelta::days(3 + self.dice.below(8) as i64) } else { event.at };
        let hash = self.dice.hash();
        let event_type = event.event_type();
        self.log.push_recorded(
            lead.stream_name(),
            event_type,
            Payload::Complaint { lead: lead.clone(), event: Box::new(event) },
            recorded,
            hash,
        );
    }

    /// Decides `command` on lead `index` at `now` and folds the events into the lead's state.
    fn decide(
        &mut self,
        index: usize,
        actor: &Actor,
        now: DateTime<FixedOffset>,
        command: ComplaintCommand,
    ) -> Option<Vec<ComplaintEvent>> {
        let lead = &mut self.leads[index];
        let events = lead.state.decide(command, &self.log.world.ctx(actor, now)).ok()?;
        for event in &events {
            lead.state = std::mem::take(&mut lead.state).evolve(event);
        }
        Some(events)
    }

    /// Decides `command` on lead `index` at `now`; on success appends its events, some of
    /// them altered, with the special copies of them, and answers true.
    fn try_decide(
        &mut self,
        index: usize,
        actor: &Actor,
        now: DateTime<FixedOffset>,
        command: ComplaintCommand,
    ) -> bool {
        let Some(events) = self.decide(index, actor, now, command) else { return false };
        let id = self.leads[index].id.clone();
        for event in &events {
            let mut logged = event.clone();
            let answers_a_deadline = matches!(
                event.fact,
                ComplaintFact::Transferred { .. }
                    | ComplaintFact::UrgentNotified { .. }
                    | ComplaintFact::ClosureSigned { .. }
                    | ComplaintFact::ClosureCountersigned { .. }
            );
            if answers_a_deadline && self.dice.chance(10) {
                // The deadline closed as superseded rather than met, which the domain never
                // decides with these facts: it is not late then, however late.
                for closure in &mut logged.closes {
                    closure.how = ClosedHow::Superseded;
                }
            }
            if !logged.opens.is_empty() && self.dice.chance(20) {
                // Interpretation 21: due instants that rest on the provisional calendar.
                for deadline in &mut logged.opens {
                    deadline.provisional = true;
                    deadline.calendar = Some(CalendarVersion::from_text("2026.official.0a1b2c3d+2027.provisional"));
                }
            }
            self.push(&id, logged);
            self.special_copies(index, &id, event);
        }
        true
    }

    /// Decides `command` on lead `index` at `now` and appends its events as decided.
    fn given(&mut self, index: usize, actor: &Actor, now: DateTime<FixedOffset>, command: ComplaintCommand) {
        let events = self.decide(index, actor, now, command).unwrap_or_else(|| panic!("refused at {now}"));
        let id = self.leads[index].id.clone();
        for event in events {
            self.push(&id, event);
        }
    }

    /// The events the writer treats specially, as copies of a real one. Copies open no
    /// deadlines: the domain numbers a stream's deadlines once.
    fn special_copies(&mut self, index: usize, id: &ComplaintId, event: &ComplaintEvent) {
        let mut copy = event.clone();
        copy.opens.clear();
        for (lead, ghost) in self.ghosts.clone() {
            // A lead the log never registered: its deadline-opening events still open
            // deadlines, the events that need its row do nothing.
            if lead == index
                && !matches!(event.fact, ComplaintFact::Registered { .. } | ComplaintFact::SplitFrom { .. })
            {
                self.push(&ghost, event.clone());
            }
        }
        match &event.fact {
            // A closure the tables no longer hold, named twice, and one never opened.
            _ if !event.closes.is_empty() && self.dice.chance(8) => {
                copy.closes.extend(event.closes.clone());
                copy.closes.push(DeadlineClosure { seq: 9_999, kind: DeadlineKind::Transfer, how: ClosedHow::Met });
                self.push(id, copy);
            }
            // Sent back again while open: not a reopening.
            ComplaintFact::ClosureReviewed { outcome: ReviewOutcome::SentBack { .. }, .. } => self.push(id, copy),
            // Classified again the same: no move. Or under the same category with another
            // body, which the domain never decides: the body alone moves.
            ComplaintFact::Classified { category, urgency, complexity, split_into, .. } if self.dice.chance(30) => {
                if self.dice.chance(30) {
                    copy.fact = ComplaintFact::Classified {
                        category: category.clone(),
                        body: BodyCode::NY,
                        urgency: *urgency,
                        complexity: *complexity,
                        split_into: split_into.clone(),
                    };
                }
                self.push(id, copy);
            }
            // Signed by 住建 with a deadline named: the lead is looked up, and still no closure
            // counts until the countersignature.
            ComplaintFact::ClosureSigned { body: BodyCode::ZJ, .. } => {
                copy.closes.push(DeadlineClosure { seq: 9_998, kind: DeadlineKind::GeneralClose, how: ClosedHow::Met });
                self.push(id, copy);
            }
            // Registered again, elsewhere and later, under a renamed company: the row is
            // replaced and counted again.
            ComplaintFact::Registered { registration, id: registered, complainant_key } if self.dice.chance(5) => {
                let mut registration: Registration = registration.clone();
                registration.place.district = (*self.dice.pick(&DISTRICTS)).to_owned();
                if let Some(named) = &mut registration.company {
                    named.name = format!("{}（更名）", named.name);
                }
                copy.fact = ComplaintFact::Registered {
                    id: registered.clone(),
                    registration,
                    complainant_key: complainant_key.clone(),
                };
                copy.at += TimeDelta::days(8);
                self.push(id, copy);
            }
            _ => {}
        }
    }

    fn register(&mut self, now: DateTime<FixedOffset>) {
        let n = self.leads.len();
        let id = format!("W{n:04}");
        let company = uscc(1 + self.dice.below(6) as u32);
        let district = *self.dice.pick(&DISTRICTS);
        let mut registration = registration(&company, district, n as u32, &text(now));
        if company == uscc(6) && now >= at("2026-04-06T00:00:00+08:00") {
            // The company renamed: its later leads carry the new name.
            registration.company.as_mut().expect("a company").name = "闽都物业服务有限公司".to_owned();
        }
        // Interpretation 22: now and then a lead in an unmanaged community names no company.
        if n % 17 == 5 {
            registration.company = None;
        }
        registration.channel = *self.dice.pick(&Channel::ALL);
        if registration.channel == Channel::Hotline12345 {
            registration.hotline_ticket = Some(format!("12345-{n:06}"));
        }
        self.leads.push(LeadStream::new(&id));
        let command = ComplaintCommand::Register { id: lead_id(&id), registration };
        assert!(self.try_decide(n, &registrar(), now, command), "registration {id} refused");
        if n % 25 == 3 {
            self.ghosts.push((n, lead_id(&format!("GHOST{n}"))));
        }
    }

    fn open_split(&mut self, now: DateTime<FixedOffset>) -> bool {
        let Some((id, parent, category)) = self.splits.pop() else { return false };
        let Some(lead) = self.leads[parent].state.lead.as_ref() else { return false };
        let command = ComplaintCommand::OpenSplitLead {
            id: id.clone(),
            parent: lead.id.clone(),
            registration: lead.registration.clone(),
            registered_at: lead.registered_at,
            category,
            urgency: Urgency::Normal,
            complexity: Complexity::General,
        };
        self.leads.push(LeadStream { id, state: Default::default() });
        let index = self.leads.len() - 1;
        if self.try_decide(index, &registrar(), now, command) {
            true
        } else {
            self.leads.pop();
            false
        }
    }

    /// Tries the commands that could apply to lead `index`, in a random order, until one is
    /// decided.
    fn step(&mut self, index: usize, now: DateTime<FixedOffset>) {
        let Some(lead) = self.leads[index].state.lead.as_ref() else { return };
        let body = lead.handling_body.or(lead.classification.as_ref().map(|c| c.body)).unwrap_or(BodyCode::ZJ);
        let open_seqs: Vec<u32> = lead.obligations.open().map(|deadline| deadline.seq).collect();
        let recommended: Vec<u32> = lead
            .obligations
            .recommendations()
            .filter(|(_, recommendation)| recommendation.decision.is_none())
            .map(|(seq, _)| seq)
            .collect();
        let handler = actor(body, Role::Handler);
        let street_office = actor(BodyCode::JB, Role::StreetOffice);
        let note = || "已处理".to_owned();
        let category = (*self.dice.pick(&CATEGORIES)).to_owned();
        let split_category = (*self.dice.pick(&CATEGORIES)).to_owned();
        let split_id = lead_id(&format!("{}-S{}", self.leads[index].id.as_str(), self.dice.below(1000)));
        let urgency = if self.dice.chance(20) { Urgency::Urgent } else { Urgency::Normal };
        let complexity = if self.dice.chance(25) { Complexity::Major } else { Complexity::General };
        let split = if self.dice.chance(15) {
            vec![SplitRequest { lead: split_id.clone(), category: split_category.clone() }]
        } else {
            Vec::new()
        };
        let splitting = !split.is_empty();
        let mut candidates: Vec<(Actor, ComplaintCommand)> = vec![
            (registrar(), ComplaintCommand::Classify { category, urgency, complexity, split }),
            (
                registrar(),
                ComplaintCommand::NotifyUrgent {
                    notified_body: if body == BodyCode::ZJ { BodyCode::JB } else { body },
                    emergency_measures: note(),
                    district_report: note(),
                },
            ),
            (registrar(), ComplaintCommand::Transfer { to: body, method: TransferMethod::System, note: note() }),
            (handler.clone(), ComplaintCommand::Accept),
            // Interpretation 27: 住建 reviews a returned transfer, mostly accepting it.
            (registrar(), ComplaintCommand::ReviewReturn { accept: self.dice.chance(60), reason: note() }),
            (handler.clone(), ComplaintCommand::Regrade { reason: note() }),
            (
                handler.clone(),
                ComplaintCommand::SubmitPlan { plan: note(), resolve_by: now.date_naive() + TimeDelta::days(20) },
            ),
            (handler.clone(), ComplaintCommand::ReportProgress { summary: note() }),
            (
                handler.clone(),
                ComplaintCommand::RecordFinding { finding: Finding::Substantiated, summary: note(), attribution: None },
            ),
            (
                handler.clone(),
                ComplaintCommand::GiveFeedback { recipient: FeedbackRecipient::Complainant, content: note() },
            ),
            (
                handler.clone(),
                ComplaintCommand::GiveFeedback { recipient: FeedbackRecipient::Hotline12345, content: note() },
            ),
            (
                handler.clone(),
                ComplaintCommand::GiveFeedback { recipient: FeedbackRecipient::TransferringBody, content: note() },
            ),
            (
                handler.clone(),
                ComplaintCommand::VerifyPenaltyMatter { outcome: PenaltyVerification::CaseWarranted, summary: note() },
            ),
            (handler.clone(), ComplaintCommand::FilePenaltyCase { case_number: "罚-1".to_owned() }),
            (handler.clone(), ComplaintCommand::ExtendPenaltyPeriod { days: 10, approved_by: "局长".to_owned() }),
            (
                handler.clone(),
                ComplaintCommand::DecidePenalty {
                    decision: PenaltyDecision::Imposed { description: note(), fine_fen: 100_000 },
                },
            ),
            (handler.clone(), ComplaintCommand::SignClosure { opinion: note() }),
            (street_office.clone(), ComplaintCommand::SignClosure { opinion: note() }),
            (street_office, ComplaintCommand::CountersignClosure { opinion: note() }),
            (
                actor(body, Role::CityReviewer),
                ComplaintCommand::ReviewClosure { outcome: ReviewOutcome::SentBack { reason: note() } },
            ),
            (actor(body, Role::CityReviewer), ComplaintCommand::ReviewClosure { outcome: ReviewOutcome::Cancelled }),
            (
                actor(BodyCode::XZ, Role::Registrar),
                ComplaintCommand::RecordSatisfaction {
                    satisfaction: if self.dice.chance(60) {
                        Satisfaction::Dissatisfied
                    } else {
                        Satisfaction::Satisfied
                    },
                    comment: note(),
                },
            ),
        ];
        // Returns, penalty matters and escalations, tried now and then, leave room for the
        // lead to advance.
        if self.dice.chance(10) {
            candidates.push((handler.clone(), ComplaintCommand::OpenPenaltyMatter { received_at: now }));
        }
        if self.dice.chance(10) {
            candidates.push((handler, ComplaintCommand::ReturnTransfer { reason: note() }));
        }
        // Interpretation 9: an official decides the recommendations to refer.
        for seq in recommended {
            let decision = if self.dice.chance(30) { ReferralDecision::Referred } else { ReferralDecision::Dismissed };
            let official = actor(BodyCode::ZJ, Role::Official);
            candidates.push((official, ComplaintCommand::DecideReferral { seq, decision, reason: note() }));
        }
        if self.dice.chance(25) {
            for seq in open_seqs {
                for level in EscalationLevel::ALL {
                    candidates.push((Actor::deadline_reactor(), ComplaintCommand::Escalate { seq, level }));
                }
            }
        }
        // A random order, so that no command always wins.
        for i in (1..candidates.len()).rev() {
            candidates.swap(i, self.dice.below(i + 1));
        }
        for (actor, command) in candidates {
            let classify = matches!(command, ComplaintCommand::Classify { .. });
            if self.try_decide(index, &actor, now, command) {
                if classify && splitting {
                    self.splits.push((split_id, index, split_category));
                }
                return;
            }
        }
    }

    /// Interpretation 21: a due instant of lead `index` recomputed at `now`, as the deadline
    /// reactor records it once a year's schedule is loaded: mostly of an open deadline, to a
    /// due instant up to ten days before or after the old one, on official data or still
    /// provisional, withdrawing some escalation levels and the miss or not; sometimes of a
    /// deadline closed or never opened. Only the log holds it (the lead's state does not
    /// follow), and a lead also logged under a ghost id has it there too.
    fn recompute(&mut self, index: usize, now: DateTime<FixedOffset>) {
        let Some(lead) = self.leads[index].state.lead.as_ref() else { return };
        let open: Vec<(u32, DeadlineKind, BodyCode, DateTime<FixedOffset>)> = lead
            .obligations
            .open()
            .map(|deadline| (deadline.seq, deadline.kind, deadline.body, deadline.due))
            .collect();
        let (seq, kind, body, previous_due) = if !open.is_empty() && self.dice.chance(80) {
            *self.dice.pick(&open)
        } else {
            (self.dice.below(10) as u32, DeadlineKind::Transfer, BodyCode::ZJ, now)
        };
        let provisional = self.dice.chance(30);
        let fact = EscalationFact::DeadlineRecomputed {
            seq,
            kind,
            body,
            previous_due,
            due: previous_due + TimeDelta::hours(12 * (self.dice.below(41) as i64 - 20)),
            provisional,
            calendar: CalendarVersion::from_text(if provisional {
                "2027.official.1c2d3e4f+2028.provisional"
            } else {
                "2027.official.1c2d3e4f"
            }),
            withdrawn_levels: EscalationLevel::ALL.into_iter().filter(|_| self.dice.chance(30)).collect(),
            miss_withdrawn: self.dice.chance(50),
        };
        let event =
            ComplaintEvent { at: now, fact: ComplaintFact::Escalation(fact), opens: Vec::new(), closes: Vec::new() };
        let id = self.leads[index].id.clone();
        self.push(&id, event.clone());
        for (lead, ghost) in self.ghosts.clone() {
            if lead == index {
                self.push(&ghost, event.clone());
            }
        }
    }

    /// An event no lead owns, recorded now, or with a recording clock stepped back.
    fn other(&mut self, now: DateTime<FixedOffset>) {
        let recorded = if self.dice.chance(20) { now - TimeDelta::days(9) } else { now };
        let hash = self.dice.hash();
        let n = self.log.events.len();
        self.log.push_recorded(format!("audit-{n}"), "audit.note", Payload::Other, recorded, hash);
    }
}

impl Scenario {
    /// Interpretation 26: summaries issued on Mondays, one with corrections to earlier weeks,
    /// and a week issued a second time by hand (the first issue stands).
    fn issued_weeks(&mut self) {
        use tousu_domain::weekly_report::{Correction, WeeklyEvent, WeeklyFact};
        let issue = |week: &str, summary: serde_json::Value, corrections: Vec<Correction>| WeeklyEvent {
            at: at(&format!(
                "{}T09:00:00+08:00",
                (week.parse::<chrono::NaiveDate>().expect("a date") + TimeDelta::days(7))
            )),
            fact: WeeklyFact::SummaryIssued {
                week_start: week.parse().expect("a date"),
                summary,
                matters: Vec::new(),
                corrections,
            },
        };
        let correction = |week: &str, figure: &str, reported: i64, now: i64| Correction {
            week_start: week.parse().expect("a date"),
            figure: figure.to_owned(),
            reported,
            now,
        };
        let events = [
            issue("2026-05-04", serde_json::json!({ "figures": { "received": 4 } }), Vec::new()),
            issue(
                "2026-05-11",
                serde_json::json!({ "figures": { "received": 2 }, "received_by_category": [{ "key": "SJ-3-1", "n": 2 }] }),
                vec![
                    correction("2026-05-04", "figures.received", 4, 5),
                    correction("2026-05-04", "received_by_category.unclassified", 1, 0),
                ],
            ),
            issue("2026-05-04", serde_json::json!({ "figures": { "received": 99 } }), Vec::new()),
        ];
        for event in events {
            let hash = self.dice.hash();
            let recorded = event.at;
            self.log.push_recorded(
                tousu_domain::weekly_report::STREAM.to_owned(),
                "weekly_summary.issued",
                Payload::Weekly { event: Box::new(event) },
                recorded,
                hash,
            );
        }
    }

    /// Leads acting exactly at their due instants and at a week's end, where `<` and `<=`
    /// differ: E1 transferred at its TRF-2 due instant and signed at its HDL-1 due instant
    /// (both on time); E2 transferred a millisecond after its due instant (late); E3
    /// transferred at the Monday 00:00 after its due instant (overdue at that week's end).
    fn boundaries(&mut self) {
        let e1 = self.registered_and_classified("E1");
        let due = self.transfer_due(e1);
        self.transfer(e1, due);
        let lead = self.leads[e1].state.lead.as_ref().expect("registered");
        let handling_due = lead
            .obligations
            .open()
            .find(|deadline| deadline.kind == DeadlineKind::GeneralClose)
            .expect("an HDL-1 deadline")
            .due;
        let handler = actor(BodyCode::SJ, Role::Handler);
        let feedback = ComplaintCommand::GiveFeedback {
            recipient: FeedbackRecipient::Complainant,
            content: "已整改".to_owned(),
        };
        let finding = ComplaintCommand::RecordFinding {
            finding: Finding::Substantiated,
            summary: "属实".to_owned(),
            attribution: None,
        };
        for command in [ComplaintCommand::Accept, finding, feedback] {
            self.given(e1, &handler, due + TimeDelta::hours(1), command);
        }
        self.given(e1, &handler, handling_due, ComplaintCommand::SignClosure { opinion: "同意办结".to_owned() });

        let e2 = self.registered_and_classified("E2");
        let due = self.transfer_due(e2);
        self.transfer(e2, due + TimeDelta::milliseconds(1));

        let e3 = self.registered_and_classified("E3");
        let week_end = reporting_week(self.transfer_due(e3)) + TimeDelta::days(7);
        self.transfer(e3, at(&format!("{week_end}T00:00:00+08:00")));
    }

    /// Interpretation 21 on a lead the log never registers (`GHOSTP`): a provisional deadline
    /// opened by an event that needs no lead row, then its due instant recomputed to official
    /// data with a level and the miss withdrawn. The deadline takes the new due instant; the
    /// withdrawal, which needs the lead's district, counts nowhere.
    fn provisional_corners(&mut self) {
        let ghost = lead_id("GHOSTP");
        let opened = at("2026-05-04T10:00:00+08:00");
        let deadline = Deadline {
            seq: 3,
            kind: DeadlineKind::GeneralClose,
            rule: RuleId::Hdl1,
            body: BodyCode::SJ,
            community: None,
            basis: DueBasis::Period { start: opened, period: Period::WorkingDays(7) },
            due: at("2026-05-13T00:00:00+08:00"),
            provisional: true,
            calendar: Some(CalendarVersion::from_text("2026.official.0a1b2c3d+2027.provisional")),
        };
        let accepted = ComplaintFact::Accepted { body: BodyCode::SJ };
        self.push(&ghost, ComplaintEvent { at: opened, fact: accepted, opens: vec![deadline], closes: Vec::new() });
        let recomputed = EscalationFact::DeadlineRecomputed {
            seq: 3,
            kind: DeadlineKind::GeneralClose,
            body: BodyCode::SJ,
            previous_due: at("2026-05-13T00:00:00+08:00"),
            due: at("2026-05-15T00:00:00+08:00"),
            provisional: false,
            calendar: CalendarVersion::from_text("2027.official.1c2d3e4f"),
            withdrawn_levels: vec![EscalationLevel::Reminder],
            miss_withdrawn: true,
        };
        let event = ComplaintEvent {
            at: opened + TimeDelta::days(1),
            fact: ComplaintFact::Escalation(recomputed),
            opens: Vec::new(),
            closes: Vec::new(),
        };
        self.push(&ghost, event);
    }

    /// A lead registered on Monday 4 May 2026 and classified as a general 市场监管 matter.
    fn registered_and_classified(&mut self, name: &str) -> usize {
        let registered = at("2026-05-04T10:00:00+08:00");
        let index = self.leads.len();
        let registration = registration(&uscc(7), "鼓楼区", 9_000 + index as u32, &text(registered));
        self.leads.push(LeadStream::new(name));
        self.given(index, &registrar(), registered, ComplaintCommand::Register { id: lead_id(name), registration });
        let classify = ComplaintCommand::Classify {
            category: "SJ-3-1".to_owned(),
            urgency: Urgency::Normal,
            complexity: Complexity::General,
            split: Vec::new(),
        };
        self.given(index, &registrar(), registered + TimeDelta::hours(1), classify);
        index
    }

    fn transfer_due(&self, index: usize) -> DateTime<FixedOffset> {
        let lead = self.leads[index].state.lead.as_ref().expect("registered");
        lead.original_transfer_deadline.as_ref().expect("a TRF-2 deadline").due
    }

    fn transfer(&mut self, index: usize, now: DateTime<FixedOffset>) {
        let note = "请办理".to_owned();
        self.given(
            index,
            &registrar(),
            now,
            ComplaintCommand::Transfer { to: BodyCode::SJ, method: TransferMethod::System, note },
        );
    }
}

fn registrar() -> Actor {
    actor(BodyCode::ZJ, Role::Registrar)
}

/// About 2,000 events over twelve weeks from Monday 2 March 2026.
fn long_scenario() -> Log {
    let mut scenario = Scenario {
        log: Log::new(),
        dice: Dice::new(20_260_302),
        leads: Vec::new(),
        splits: Vec::new(),
        ghosts: Vec::new(),
    };
    let mut now = at("2026-03-02T08:00:00+08:00");
    let end = at("2026-05-25T00:00:00+08:00");
    while now < end {
        now += TimeDelta::minutes(10 + scenario.dice.below(80) as i64);
        let roll = scenario.dice.below(100);
        if roll < 7 && now < end - TimeDelta::days(14) {
            scenario.register(now);
        } else if roll < 10 {
            if !scenario.open_split(now) {
                scenario.other(now);
            }
        } else if roll < 15 {
            scenario.other(now);
        } else {
            let active: Vec<usize> = (0..scenario.leads.len())
                .filter(|index| {
                    let lead = scenario.leads[*index].state.lead.as_ref();
                    lead.is_some_and(|lead| lead.status != LeadStatus::Cancelled)
                })
                .collect();
            if !active.is_empty() {
                let index = *scenario.dice.pick(&active);
                if scenario.dice.chance(6) {
                    scenario.recompute(index, now);
                } else {
                    scenario.step(index, now);
                }
            }
        }
    }
    scenario.boundaries();
    scenario.provisional_corners();
    scenario.issued_weeks();
    scenario.log
}

fn distinct(connection: &mut SqlConnection, sql: &str) -> BTreeSet<String> {
    connection
        .read(|tx| tx.query(sql, &[]))
        .expect("query")
        .iter()
        .map(|row| row[0].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn reg_3_the_bulk_builder_builds_the_writers_tables_from_a_long_log_in_any_batches() {
    let log = long_scenario();
    let events = &log.events;
    // The scenario reaches every fact the writer handles, and the special cases.
    let types: BTreeSet<&str> = events.iter().map(|event| event.event_type.as_str()).collect();
    for expected in [
        "complaint.registered",
        "complaint.split_from",
        "complaint.classified",
        "complaint.urgent_notified",
        "complaint.transferred",
        "complaint.transfer_returned",
        "complaint.closure_signed",
        "complaint.closure_countersigned",
        "complaint.closure_reviewed",
        "complaint.reopened",
        "complaint.escalated",
        "complaint.penalty_matter_opened",
        "complaint.deadline_recomputed",
        "audit.note",
        "weekly_summary.issued",
    ] {
        assert!(types.contains(expected), "the scenario has no {expected}: {types:?}");
    }
    assert!(events.len() > 1_500, "a long log: {} events", events.len());
    assert!(events.iter().any(|event| event.stream.starts_with("complaint-GHOST")), "a lead never registered");
    assert!(
        events.iter().any(|event| {
            event.stream.starts_with("complaint-GHOST") && event.event_type == "complaint.deadline_recomputed"
        }),
        "a due instant recomputed on a lead never registered"
    );

    let mut connection = SqlConnection::sqlite_in_memory().expect("in-memory sqlite");
    feed(&mut connection, PREFIX, events, 10);
    let metrics = distinct(&mut connection, &format!("SELECT DISTINCT metric FROM {PREFIX}counters"));
    assert_eq!(metrics.len(), 23, "every metric is counted: {metrics:?}");
    let weeks = distinct(&mut connection, &format!("SELECT DISTINCT week FROM {PREFIX}anchors"));
    assert!(weeks.len() >= 12, "anchored weeks: {weeks:?}");
    let companies = distinct(&mut connection, &format!("SELECT name FROM {PREFIX}companies"));
    assert!(companies.contains("闽都物业服务有限公司"), "a company renamed: {companies:?}");
    let registered_twice = events
        .iter()
        .filter(|event| event.event_type == "complaint.registered")
        .map(|event| event.stream.as_str())
        .collect::<Vec<_>>();
    assert!(registered_twice.len() > registered_twice.iter().collect::<BTreeSet<_>>().len(), "a lead registered again");
    let overdue_weeks = connection
        .read(|tx| tx.query(&format!("SELECT MAX(n) FROM {PREFIX}counters WHERE metric = 'overdue'"), &[]))
        .expect("query");
    assert!(overdue_weeks[0][0].as_i64().unwrap_or(0) > 1, "obligations overdue at several week ends");
    // Interpretation 21: open deadlines on provisional due instants, as opened or recomputed.
    let provisional = connection
        .read(|tx| tx.query(&format!("SELECT COUNT(*) FROM {PREFIX}deadlines WHERE provisional = 1"), &[]))
        .expect("query");
    assert!(provisional[0][0].as_i64().unwrap_or(0) > 0, "open provisional deadlines");
    let recomputed_without_a_lead = connection
        .read(|tx| {
            let sql = format!(
                "SELECT COUNT(*) FROM {PREFIX}deadlines WHERE lead = 'GHOSTP' AND seq = 3 AND provisional = 0 AND due = $1"
            );
            tx.query(&sql, &[tousu_projection::Value::int(at("2026-05-15T00:00:00+08:00").timestamp_millis())])
        })
        .expect("query");
    assert_eq!(recomputed_without_a_lead[0][0].as_i64(), Some(1), "a deadline recomputed on a lead without a row");

    // Interpretation 26: the first issue of a week stands; the corrections are kept.
    let issued = connection
        .read(|tx| tousu_read_weekly_summary::issued_week(tx, PREFIX, "2026-05-04".parse().expect("a date")))
        .expect("query")
        .expect("issued");
    assert_eq!(issued.summary, serde_json::json!({ "figures": { "received": 4 } }));
    assert_eq!(issued.corrected_later.len(), 2);
    assert!(issued.corrected_later.iter().all(|(with, _)| with.to_string() == "2026-05-11"));

    for batch in [1, 7, events.len()] {
        assert_bulk_matches(&WeeklySummaryModel, events, batch, &mut connection, PREFIX);
    }
    // The writer applying the whole log in one batch: deadlines opened, recomputed (interpretation
    // 21) and closed within one batch.
    let mut whole = SqlConnection::sqlite_in_memory().expect("in-memory sqlite");
    feed(&mut whole, PREFIX, events, events.len());
    // And at a cut inside the log, where leads are half handled.
    let cut = &events[..events.len() * 2 / 3];
    let mut partial = SqlConnection::sqlite_in_memory().expect("in-memory sqlite");
    feed(&mut partial, PREFIX, cut, 1);
    assert_bulk_matches(&WeeklySummaryModel, cut, 13, &mut partial, PREFIX);
}
