//! Scenario scaffolding for the watchlist's tests: a log of projected events built from
//! decisions of the domain (or from events written out by hand), and an in-memory read model
//! fed with it.

#![allow(dead_code)]

use chrono::{DateTime, FixedOffset, Utc};
use tousu_domain::Aggregate;
use tousu_domain::actor::Actor;
use tousu_domain::complaint::{
    Channel, CompanyRef, Complainant, ComplaintCommand, ComplaintEvent, ComplaintState, Place, Registration,
};
use tousu_domain::enterprise::{EnterpriseCommand, EnterpriseEvent, EnterpriseFact, EnterpriseState};
use tousu_domain::identity::ComplainantKey;
use tousu_domain::ids::{ComplaintId, Uscc};
use tousu_projection::{Payload, ProjectedEvent, ReadModel, SqlConnection};
pub use tousu_projection_testkit::{World, actor, at};
use tousu_read_watchlist::Watchlist;

/// A valid company code numbered `n`.
pub fn uscc(n: u32) -> Uscc {
    let first_17 = format!("91350100M{n:08}");
    "0123456789ABCDEFGHJKLMNPQRTUWXY"
        .chars()
        .find_map(|check| format!("{first_17}{check}").parse().ok())
        .expect("some check character fits")
}

pub fn lead_id(text: &str) -> ComplaintId {
    text.parse().expect("valid lead id")
}

/// The key of complainant number `n` (interpretation 2: mobile numbers normalised).
pub fn complainant_key(world: &World, n: u32) -> ComplainantKey {
    ComplainantKey::derive(&world.secret, &format!("居民{n}"), &format!("1380000{n:04}"), None)
}

/// The global log under construction.
pub struct Log {
    pub world: World,
    pub events: Vec<ProjectedEvent>,
}

impl Log {
    pub fn new() -> Log {
        Log { world: World::new(), events: Vec::new() }
    }

    fn push(&mut self, stream: String, event_type: &str, payload: Payload, at: DateTime<FixedOffset>) {
        let position = self.events.len() as u64 + 1;
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&position.to_be_bytes());
        self.events.push(ProjectedEvent {
            position,
            stream,
            revision: 0,
            event_type: event_type.to_owned(),
            recorded_at: at.with_timezone(&Utc),
            hash,
            actor_body: "ZJ".to_owned(),
            payload,
        });
    }

    pub fn complaint(&mut self, lead: &ComplaintId, event: ComplaintEvent) {
        let at = event.at;
        let event_type = event.event_type();
        self.push(
            lead.stream_name(),
            event_type,
            Payload::Complaint { lead: lead.clone(), event: Box::new(event) },
            at,
        );
    }

    pub fn enterprise(&mut self, uscc: &Uscc, event: EnterpriseEvent) {
        let at = event.at;
        let event_type = event.event_type();
        self.push(
            uscc.stream_name(),
            event_type,
            Payload::Enterprise { uscc: uscc.clone(), event: Box::new(event) },
            at,
        );
    }

    /// An event of a stream no read model knows.
    pub fn other(&mut self, now: &str) {
        self.push("notes-1".to_owned(), "notes.written", Payload::Other, at(now));
    }

    /// An enterprise fact written out by hand, with no deadlines.
    pub fn company_fact(&mut self, uscc: &Uscc, now: &str, fact: EnterpriseFact) {
        self.enterprise(uscc, EnterpriseEvent { at: at(now), fact, opens: Vec::new(), closes: Vec::new() });
    }

    /// A lead counted against a company, by hand: `person` `None` is anonymous.
    pub fn counted(&mut self, company: &Uscc, lead: &str, person: Option<u32>, registered_at: &str) {
        let complainant_key = person.map(|n| complainant_key(&self.world, n));
        self.company_fact(
            company,
            registered_at,
            EnterpriseFact::ComplaintRecorded {
                uscc: company.clone(),
                company_name: format!("物业公司{}", &company.as_str()[9..17]),
                lead: lead_id(lead),
                complainant_key,
                registered_at: at(registered_at),
                community: "福苑小区".to_owned(),
                linked_to: None,
            },
        );
    }

    /// A finding counted against a company, by hand.
    pub fn found(&mut self, company: &Uscc, lead: &str, finding: tousu_domain::complaint::Finding, found_at: &str) {
        self.company_fact(
            company,
            found_at,
            EnterpriseFact::FindingRecorded {
                lead: lead_id(lead),
                finding,
                attributable: true,
                found_at: at(found_at),
            },
        );
    }
}

/// A company stream driven by the domain's decisions, its events appended to a log.
pub struct CompanyStream {
    pub uscc: Uscc,
    pub state: EnterpriseState,
}

impl CompanyStream {
    pub fn new(uscc: Uscc) -> CompanyStream {
        CompanyStream { uscc, state: EnterpriseState::default() }
    }

    pub fn decide(
        &mut self,
        log: &mut Log,
        actor: &Actor,
        now: &str,
        command: EnterpriseCommand,
    ) -> Vec<EnterpriseEvent> {
        let events = self
            .state
            .decide(command, &log.world.ctx(actor, at(now)))
            .unwrap_or_else(|error| panic!("company command refused at {now}: {error}"));
        for event in &events {
            self.state = std::mem::take(&mut self.state).evolve(event);
            log.enterprise(&self.uscc, event.clone());
        }
        events
    }
}

/// A lead stream driven by the domain's decisions.
pub struct LeadStream {
    pub id: ComplaintId,
    pub state: ComplaintState,
}

impl LeadStream {
    pub fn new(id: &str) -> LeadStream {
        LeadStream { id: lead_id(id), state: ComplaintState::default() }
    }

    pub fn decide(
        &mut self,
        log: &mut Log,
        actor: &Actor,
        now: &str,
        command: ComplaintCommand,
    ) -> Vec<ComplaintEvent> {
        let events = self
            .state
            .decide(command, &log.world.ctx(actor, at(now)))
            .unwrap_or_else(|error| panic!("lead command refused at {now}: {error}"));
        for event in &events {
            self.state = std::mem::take(&mut self.state).evolve(event);
            log.complaint(&self.id, event.clone());
        }
        events
    }
}

/// A registration against `company` in `district` by complainant `person`.
pub fn registration(company: &Uscc, district: &str, person: u32, received_at: &str) -> Registration {
    Registration {
        channel: Channel::Hotline,
        received_at: at(received_at),
        complainant: Complainant::Named {
            name: format!("居民{person}"),
            contact: format!("1380000{person:04}"),
            id_number: None,
        },
        content: "电梯停运三天无人维修".to_owned(),
        company: Some(CompanyRef { uscc: company.clone(), name: format!("物业公司{}", &company.as_str()[9..17]) }),
        place: Place {
            community: "福苑小区".to_owned(), district: district.to_owned(), street: "东街街道".to_owned()
        },
        hotline_ticket: None,
    }
}

/// A fresh in-memory read model fed with `events` in batches of `batch`.
pub fn read_model(events: &[ProjectedEvent], batch: usize) -> SqlConnection {
    let mut connection = SqlConnection::sqlite_in_memory().expect("in-memory sqlite");
    feed(&mut connection, "w_", events, batch);
    connection
}

/// Creates the schema under `prefix` and applies `events` in batches of `batch`.
pub fn feed(connection: &mut SqlConnection, prefix: &str, events: &[ProjectedEvent], batch: usize) {
    connection.transaction(|tx| tx.batch(&Watchlist.schema(prefix))).expect("schema");
    apply(connection, prefix, events, 0, batch);
}

/// Applies `events[from..]` in batches of `batch` to a read model that holds `events[..from]`,
/// then checks that the bulk builder, folding all of `events` in batches of the same size,
/// builds the same tables.
pub fn apply(connection: &mut SqlConnection, prefix: &str, events: &[ProjectedEvent], from: usize, batch: usize) {
    let mut writer = Watchlist.writer(prefix);
    for chunk in events[from..].chunks(batch.max(1)) {
        connection
            .transaction(|tx| -> Result<(), tousu_projection::ProjectionError> { writer.apply(tx, chunk) })
            .expect("batch applies");
    }
    tousu_projection_testkit::assert_bulk_matches(&Watchlist, events, batch, connection, prefix);
}
