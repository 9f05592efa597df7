//! Scenario scaffolding for the weekly summary's tests: a log of projected events built from
//! decisions of the domain, and an in-memory read model fed with it.

#![allow(dead_code)]

use chrono::{DateTime, FixedOffset, Utc};
use tousu_domain::Aggregate;
use tousu_domain::actor::Actor;
use tousu_domain::complaint::{
    Channel, CompanyRef, Complainant, ComplaintCommand, ComplaintEvent, ComplaintState, Place, Registration,
};
use tousu_domain::ids::{ComplaintId, Uscc};
use tousu_projection::{Payload, ProjectedEvent, ReadModel, SqlConnection};
pub use tousu_projection_testkit::{World, actor, assert_bulk_matches, at};
use tousu_read_weekly_summary::WeeklySummaryModel;

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

/// The global log under construction.
pub struct Log {
    pub world: World,
    pub events: Vec<ProjectedEvent>,
}

impl Log {
    pub fn new() -> Log {
        Log { world: World::new(), events: Vec::new() }
    }

    /// Appends an event recorded at its business instant, with a hash made of its position.
    fn push(&mut self, stream: String, event_type: &str, payload: Payload, at: DateTime<FixedOffset>) {
        let position = self.events.len() as u64 + 1;
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&position.to_be_bytes());
        self.push_recorded(stream, event_type, payload, at, hash);
    }

    /// Appends an event recorded at `recorded_at` with the stored hash `hash`.
    pub fn push_recorded(
        &mut self,
        stream: String,
        event_type: &str,
        payload: Payload,
        recorded_at: DateTime<FixedOffset>,
        hash: [u8; 32],
    ) {
        let position = self.events.len() as u64 + 1;
        let at = recorded_at;
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
    feed(&mut connection, "s_", events, batch);
    connection
}

/// Creates the schema under `prefix`, applies `events` in batches of `batch`, and checks that
/// the bulk builder, folding the same batches, builds the same tables.
pub fn feed(connection: &mut SqlConnection, prefix: &str, events: &[ProjectedEvent], batch: usize) {
    connection.transaction(|tx| tx.batch(&WeeklySummaryModel.schema(prefix))).expect("schema");
    apply(connection, prefix, events, batch);
    assert_bulk_matches(&WeeklySummaryModel, events, batch, connection, prefix);
}

/// Applies `events` in batches of `batch` to a read model whose schema exists.
pub fn apply(connection: &mut SqlConnection, prefix: &str, events: &[ProjectedEvent], batch: usize) {
    let mut writer = WeeklySummaryModel.writer(prefix);
    for chunk in events.chunks(batch.max(1)) {
        connection
            .transaction(|tx| -> Result<(), tousu_projection::ProjectionError> { writer.apply(tx, chunk) })
            .expect("batch applies");
    }
}
