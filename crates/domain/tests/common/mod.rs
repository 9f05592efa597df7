//! Given / when / then scaffolding for the procedure's tests: a world with the shipped
//! calendar, taxonomy and default policy, and streams built by deciding commands in order.

#![allow(dead_code)]

use chrono::{DateTime, FixedOffset};
use tousu_domain::actor::{Actor, Role};
use tousu_domain::calendar::Calendar;
use tousu_domain::complaint::{
    Channel, CompanyRef, Complainant, ComplaintCommand, ComplaintEvent, ComplaintFact, ComplaintState, Lead, Place,
    Registration,
};
use tousu_domain::enterprise::{EnterpriseCommand, EnterpriseEvent, EnterpriseState};
use tousu_domain::identity::IdentitySecret;
use tousu_domain::ids::BodyCode;
use tousu_domain::policy::Policy;
use tousu_domain::taxonomy::Taxonomy;
use tousu_domain::{Aggregate, Context, DomainError};

/// An instant written in RFC 3339.
pub fn at(text: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(text).unwrap_or_else(|error| panic!("bad instant {text}: {error}"))
}

pub fn actor(body: BodyCode, role: Role) -> Actor {
    Actor { person: format!("{}-{}", body, role), body, role }
}

pub fn registrar() -> Actor {
    actor(BodyCode::ZJ, Role::Registrar)
}

pub fn handler(body: BodyCode) -> Actor {
    actor(body, Role::Handler)
}

pub fn street_office() -> Actor {
    actor(BodyCode::JB, Role::StreetOffice)
}

pub fn city_reviewer(body: BodyCode) -> Actor {
    actor(body, Role::CityReviewer)
}

pub fn hotline_12345() -> Actor {
    actor(BodyCode::XZ, Role::Registrar)
}

pub fn reactor() -> Actor {
    Actor::deadline_reactor()
}

pub const COMPANY: &str = "91350100M000100Y43";

pub fn registration(channel: Channel, name: &str, contact: &str, received_at: &str) -> Registration {
    Registration {
        channel,
        received_at: at(received_at),
        complainant: Complainant::Named { name: name.to_owned(), contact: contact.to_owned(), id_number: None },
        content: "电梯停运三天无人维修".to_owned(),
        company: Some(CompanyRef {
            uscc: COMPANY.parse().expect("valid code"),
            name: "榕城物业服务有限公司".to_owned(),
        }),
        place: Place {
            community: "福苑小区".to_owned(), district: "鼓楼区".to_owned(), street: "东街街道".to_owned()
        },
        hotline_ticket: (channel == Channel::Hotline12345).then(|| "12345-20260930-0001".to_owned()),
    }
}

/// The calendar, policy, taxonomy and secret every decision consults.
pub struct World {
    pub calendar: Calendar,
    pub policy: Policy,
    pub taxonomy: Taxonomy,
    pub secret: IdentitySecret,
}

impl World {
    pub fn new() -> World {
        World {
            calendar: Calendar::builtin().expect("shipped calendar loads"),
            policy: Policy::default(),
            taxonomy: Taxonomy::builtin().expect("shipped taxonomy loads"),
            secret: IdentitySecret::new(b"test deployment secret".to_vec()),
        }
    }

    pub fn ctx<'a>(&'a self, actor: &'a Actor, now: DateTime<FixedOffset>) -> Context<'a> {
        Context {
            now,
            actor,
            calendar: &self.calendar,
            policy: &self.policy,
            taxonomy: &self.taxonomy,
            identity_secret: &self.secret,
        }
    }
}

/// One stream of an aggregate, built up by deciding commands in order.
pub struct Stream<A: Aggregate> {
    pub world: World,
    pub state: A,
    pub events: Vec<A::Event>,
}

impl<A: Aggregate> Stream<A> {
    pub fn new() -> Self {
        Stream { world: World::new(), state: A::default(), events: Vec::new() }
    }

    /// When: decides a command without applying it.
    pub fn when(&self, actor: &Actor, now: &str, command: A::Command) -> Result<Vec<A::Event>, DomainError> {
        self.state.decide(command, &self.world.ctx(actor, at(now)))
    }

    /// Given: decides a command and applies its events; the command must be accepted.
    pub fn given(&mut self, actor: &Actor, now: &str, command: A::Command) -> Vec<A::Event> {
        let events =
            self.when(actor, now, command).unwrap_or_else(|error| panic!("given step refused at {now}: {error}"));
        self.apply(&events);
        events
    }

    pub fn apply(&mut self, events: &[A::Event]) {
        for event in events {
            self.state = std::mem::take(&mut self.state).evolve(event);
            self.events.push(event.clone());
        }
    }
}

pub type LeadStream = Stream<ComplaintState>;
pub type CompanyStream = Stream<EnterpriseState>;

impl Stream<ComplaintState> {
    pub fn lead(&self) -> &Lead {
        self.state.lead.as_ref().expect("lead registered")
    }

    pub fn facts(events: &[ComplaintEvent]) -> Vec<&ComplaintFact> {
        events.iter().map(|event| &event.fact).collect()
    }
}

pub fn register(channel: Channel) -> ComplaintCommand {
    ComplaintCommand::Register {
        id: "C-1".parse().expect("valid id"),
        registration: registration(channel, "王芳", "13812345678", "2026-09-30T09:30:00+08:00"),
    }
}

/// A general, non-urgent lead of category `category`, registered at 2026-09-30 10:00 and
/// classified at 10:30.
pub fn classified_lead(
    category: &str,
    complexity: tousu_domain::complaint::Complexity,
    channel: Channel,
) -> LeadStream {
    let mut lead = LeadStream::new();
    lead.given(&registrar(), "2026-09-30T10:00:00+08:00", register(channel));
    lead.given(
        &registrar(),
        "2026-09-30T10:30:00+08:00",
        ComplaintCommand::Classify {
            category: category.to_owned(),
            urgency: tousu_domain::complaint::Urgency::Normal,
            complexity,
            split: Vec::new(),
        },
    );
    lead
}

/// The lead of [`classified_lead`], transferred on 2026-10-08 and accepted the same day.
pub fn accepted_lead(
    category: &str,
    complexity: tousu_domain::complaint::Complexity,
    channel: Channel,
    body: BodyCode,
) -> LeadStream {
    let mut lead = classified_lead(category, complexity, channel);
    lead.given(
        &registrar(),
        "2026-10-08T09:00:00+08:00",
        ComplaintCommand::Transfer {
            to: body,
            method: tousu_domain::complaint::TransferMethod::System,
            note: "请按时办理".to_owned(),
        },
    );
    lead.given(&handler(body), "2026-10-08T11:00:00+08:00", ComplaintCommand::Accept);
    lead
}

pub fn company_command_complaint(
    lead: &str,
    key: Option<&str>,
    registered_at: &str,
    community: &str,
) -> EnterpriseCommand {
    EnterpriseCommand::CountLeads {
        uscc: COMPANY.parse().expect("valid code"),
        company_name: "榕城物业服务有限公司".to_owned(),
        complaints: vec![tousu_domain::enterprise::LeadRecord {
            lead: lead.parse().expect("valid id"),
            complainant_key: key
                .map(|key| tousu_domain::identity::ComplainantKey::derive(&World::new().secret, key, key, None)),
            registered_at: at(registered_at),
            community: community.to_owned(),
            linked_to: None,
        }],
        findings: Vec::new(),
    }
}

/// Counts a finding on a lead already counted against the company, the company's
/// responsibility.
pub fn company_command_finding(
    lead: &str,
    finding: tousu_domain::complaint::Finding,
    found_at: &str,
) -> EnterpriseCommand {
    company_command_finding_attributed(lead, finding, true, found_at)
}

/// Counts a finding on a lead already counted against the company, saying whether it is the
/// company's responsibility (interpretation 22).
pub fn company_command_finding_attributed(
    lead: &str,
    finding: tousu_domain::complaint::Finding,
    attributable: bool,
    found_at: &str,
) -> EnterpriseCommand {
    EnterpriseCommand::CountLeads {
        uscc: COMPANY.parse().expect("valid code"),
        company_name: "榕城物业服务有限公司".to_owned(),
        complaints: Vec::new(),
        findings: vec![tousu_domain::enterprise::FindingRecord {
            lead: lead.parse().expect("valid id"),
            finding,
            attributable,
            found_at: at(found_at),
        }],
    }
}

pub fn enterprise_facts(events: &[EnterpriseEvent]) -> Vec<&tousu_domain::enterprise::EnterpriseFact> {
    events.iter().map(|event| &event.fact).collect()
}

/// MADE-UP TEST DATA, not the State Council's 2027 notice (see the file's header): 春节 runs
/// 5–13 February and Saturday 20 February is worked, where the provisional calendar
/// (interpretation 21) rests 5–10 February only.
pub const MADE_UP_2027: &str = include_str!("../../../../tests/fixtures/calendar-2027-test.toml");

impl World {
    /// The State Council's 2027 schedule arrives (here, the made-up one): interpretation 21.
    pub fn load_made_up_2027(&mut self) {
        let year = tousu_domain::calendar::OfficialYear::read(MADE_UP_2027).expect("a valid year file");
        self.calendar = self.calendar.clone().with_official_year(year).expect("2027 was provisional");
    }
}
