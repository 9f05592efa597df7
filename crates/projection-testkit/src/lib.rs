//! Scenario scaffolding for the read models' tests (`leads`, `overdue-escalation`,
//! `bulletin`): a world with the shipped calendar, taxonomy and default policy; leads and
//! companies whose events are decided by the domain; a log that numbers the events as the
//! store would; and a read store (in-memory SQLite, or the local PostgreSQL server) holding
//! one generation of the read model under test. A development dependency only.

use chrono::{DateTime, FixedOffset, Utc};
use tousu_domain::actor::{Actor, Role};
use tousu_domain::calendar::Calendar;
use tousu_domain::complaint::{
    Channel, CompanyRef, Complainant, ComplaintCommand, ComplaintEvent, ComplaintState, Complexity, Place,
    Registration, TransferMethod, Urgency,
};
use tousu_domain::enterprise::{EnterpriseCommand, EnterpriseEvent, EnterpriseState};
use tousu_domain::identity::IdentitySecret;
use tousu_domain::ids::{BodyCode, ComplaintId, Uscc};
use tousu_domain::policy::Policy;
use tousu_domain::taxonomy::Taxonomy;
use tousu_domain::{Aggregate, Context, DomainError};
use tousu_projection::{ModelWriter, Payload, ProjectedEvent, ReadModel, SqlConnection, SqlError, SqlTx, Value};

/// An instant written in RFC 3339.
pub fn at(text: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(text).unwrap_or_else(|error| panic!("bad instant {text}: {error}"))
}

pub fn actor(body: BodyCode, role: Role) -> Actor {
    Actor { person: format!("{body}-{role:?}"), body, role }
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
pub const OTHER_COMPANY: &str = "91350100M000200Y4T";

/// Where a lead is, and against which company.
#[derive(Debug, Clone)]
pub struct Where {
    pub company: &'static str,
    pub company_name: &'static str,
    pub community: &'static str,
    pub district: &'static str,
    pub street: &'static str,
}

pub const GULOU: Where = Where {
    company: COMPANY,
    company_name: "榕城物业服务有限公司",
    community: "福苑小区",
    district: "鼓楼区",
    street: "东街街道",
};

pub const TAIJIANG: Where = Where {
    company: OTHER_COMPANY,
    company_name: "闽江物业管理有限公司",
    community: "江滨花园",
    district: "台江区",
    street: "宁化街道",
};

pub fn registration(channel: Channel, complainant: Complainant, place: &Where, received_at: &str) -> Registration {
    Registration {
        channel,
        received_at: at(received_at),
        complainant,
        content: "电梯停运三天无人维修".to_owned(),
        company: Some(CompanyRef {
            uscc: place.company.parse().expect("valid code"),
            name: place.company_name.to_owned(),
        }),
        place: Place {
            community: place.community.to_owned(),
            district: place.district.to_owned(),
            street: place.street.to_owned(),
        },
        hotline_ticket: (channel == Channel::Hotline12345).then(|| "12345-20260930-0001".to_owned()),
    }
}

pub fn named(name: &str, contact: &str) -> Complainant {
    Complainant::Named { name: name.to_owned(), contact: contact.to_owned(), id_number: None }
}

/// The calendar, policy, taxonomy and secret every decision consults.
/// MADE-UP TEST DATA, not the State Council's 2027 notice: the tests' stand-in for the
/// official 2027 schedule arriving (interpretation 21); see the file's header.
pub const MADE_UP_2027: &str = include_str!("../../../tests/fixtures/calendar-2027-test.toml");

pub struct World {
    pub calendar: Calendar,
    pub policy: Policy,
    pub taxonomy: Taxonomy,
    pub secret: IdentitySecret,
}

impl Default for World {
    fn default() -> World {
        World::new()
    }
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

    /// The State Council's 2027 schedule arrives (interpretation 21): here the made-up one of
    /// [`MADE_UP_2027`], which rests 5–13 February where the provisional calendar rests 5–10.
    pub fn load_made_up_2027(&mut self) {
        let year = tousu_domain::calendar::OfficialYear::read(MADE_UP_2027).expect("a valid year file");
        self.calendar = self.calendar.clone().with_official_year(year).expect("2027 was provisional");
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

/// The global log: events of every stream in the order they were appended, numbered.
#[derive(Default)]
pub struct Log {
    pub events: Vec<ProjectedEvent>,
    revisions: std::collections::HashMap<String, u64>,
}

impl Log {
    pub fn push(&mut self, stream: String, event_type: &str, payload: Payload) {
        let revision = self.revisions.entry(stream.clone()).or_insert(0);
        let position = self.events.len() as u64 + 1;
        self.events.push(ProjectedEvent {
            position,
            stream,
            revision: *revision,
            event_type: event_type.to_owned(),
            recorded_at: Utc::now(),
            hash: [0; 32],
            actor_body: String::new(),
            payload,
        });
        *revision += 1;
    }

    pub fn push_lead(&mut self, lead: &ComplaintId, events: &[ComplaintEvent]) {
        for event in events {
            self.push(
                lead.stream_name(),
                event.event_type(),
                Payload::Complaint { lead: lead.clone(), event: Box::new(event.clone()) },
            );
        }
    }

    pub fn push_company(&mut self, uscc: &Uscc, events: &[EnterpriseEvent]) {
        for event in events {
            self.push(
                uscc.stream_name(),
                event.event_type(),
                Payload::Enterprise { uscc: uscc.clone(), event: Box::new(event.clone()) },
            );
        }
    }

    /// The events from `from` on (positions are 1-based; `from` is an index).
    pub fn since(&self, from: usize) -> &[ProjectedEvent] {
        &self.events[from..]
    }
}

/// One lead's stream, built by deciding commands in order.
pub struct Lead {
    pub id: ComplaintId,
    pub state: ComplaintState,
    pub events: Vec<ComplaintEvent>,
}

impl Lead {
    pub fn new(id: &str) -> Lead {
        Lead { id: id.parse().expect("valid id"), state: ComplaintState::default(), events: Vec::new() }
    }

    pub fn when(
        &self,
        world: &World,
        actor: &Actor,
        now: &str,
        command: ComplaintCommand,
    ) -> Result<Vec<ComplaintEvent>, DomainError> {
        self.state.decide(command, &world.ctx(actor, at(now)))
    }

    /// Decides a command, folds its events and appends them to the log.
    pub fn given(
        &mut self,
        world: &World,
        log: &mut Log,
        actor: &Actor,
        now: &str,
        command: ComplaintCommand,
    ) -> Vec<ComplaintEvent> {
        let events = self
            .when(world, actor, now, command)
            .unwrap_or_else(|error| panic!("lead {} refused a step at {now}: {error}", self.id));
        self.apply(log, &events);
        events
    }

    pub fn apply(&mut self, log: &mut Log, events: &[ComplaintEvent]) {
        for event in events {
            self.state = std::mem::take(&mut self.state).evolve(event);
            self.events.push(event.clone());
        }
        log.push_lead(&self.id, events);
    }

    pub fn lead(&self) -> &tousu_domain::complaint::Lead {
        self.state.lead.as_ref().expect("lead registered")
    }

    pub fn register(world: &World, log: &mut Log, id: &str, now: &str, registration: Registration) -> Lead {
        let mut lead = Lead::new(id);
        let command = ComplaintCommand::Register { id: lead.id.clone(), registration };
        lead.given(world, log, &registrar(), now, command);
        lead
    }

    pub fn classify(&mut self, world: &World, log: &mut Log, now: &str, category: &str, complexity: Complexity) {
        let command = ComplaintCommand::Classify {
            category: category.to_owned(),
            urgency: Urgency::Normal,
            complexity,
            split: Vec::new(),
        };
        self.given(world, log, &registrar(), now, command);
    }

    pub fn transfer(&mut self, world: &World, log: &mut Log, now: &str, to: BodyCode) {
        let command =
            ComplaintCommand::Transfer { to, method: TransferMethod::System, note: "请按时办理".to_owned() };
        self.given(world, log, &registrar(), now, command);
    }
}

/// A company's stream, built by deciding commands in order.
pub struct Company {
    pub uscc: Uscc,
    pub state: EnterpriseState,
}

impl Company {
    pub fn new(uscc: &str) -> Company {
        Company { uscc: uscc.parse().expect("valid code"), state: EnterpriseState::default() }
    }

    pub fn given(
        &mut self,
        world: &World,
        log: &mut Log,
        actor: &Actor,
        now: &str,
        command: EnterpriseCommand,
    ) -> Vec<EnterpriseEvent> {
        let events = self
            .state
            .decide(command, &world.ctx(actor, at(now)))
            .unwrap_or_else(|error| panic!("company {} refused a step at {now}: {error}", self.uscc));
        self.apply(log, &events);
        events
    }

    pub fn apply(&mut self, log: &mut Log, events: &[EnterpriseEvent]) {
        for event in events {
            self.state = std::mem::take(&mut self.state).evolve(event);
        }
        log.push_company(&self.uscc, events);
    }
}

/// Every row of each of a model's tables under `prefix`, as text, sorted: what two builds of
/// one generation are compared by. NULL reads the same from both engines.
pub fn dump(
    connection: &mut SqlConnection,
    tables: &[&str],
    prefix: &str,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let show = |value: &Value| match value {
        Value::Int(Some(value)) => value.to_string(),
        Value::Real(Some(value)) => format!("{value:?}"),
        Value::Text(Some(value)) => format!("{value:?}"),
        Value::Int(None) | Value::Real(None) | Value::Text(None) => "NULL".to_owned(),
    };
    connection
        .read(|tx| -> Result<_, SqlError> {
            let mut dumped = std::collections::BTreeMap::new();
            for table in tables {
                let mut rows: Vec<String> = tx
                    .query(&format!("SELECT * FROM {prefix}{table}"), &[])?
                    .iter()
                    .map(|row| row.iter().map(show).collect::<Vec<_>>().join(" | "))
                    .collect();
                rows.sort();
                dumped.insert((*table).to_owned(), rows);
            }
            Ok(dumped)
        })
        .unwrap_or_else(|error| panic!("the tables under {prefix} could not be read: {error}"))
}

/// Where the model has a bulk builder: folds `events` into it, `batch` events at a time,
/// writes its tables into a fresh in-memory SQLite database, and asserts that they hold
/// exactly the rows of the tables under `prefix` on `connection`, which the model's writer
/// built from the same events.
pub fn assert_bulk_matches(
    model: &dyn ReadModel,
    events: &[ProjectedEvent],
    batch: usize,
    connection: &mut SqlConnection,
    prefix: &str,
) {
    let Some(mut builder) = model.bulk(prefix) else { return };
    for chunk in events.chunks(batch.max(1)) {
        builder.fold(chunk).unwrap_or_else(|error| panic!("the bulk builder refused the events: {error}"));
    }
    let mut memory = SqlConnection::sqlite_in_memory().expect("in-memory SQLite opens");
    memory
        .transaction(|tx| -> Result<(), tousu_projection::ProjectionError> {
            tx.batch(&model.schema(prefix))?;
            builder.write(tx)
        })
        .unwrap_or_else(|error| panic!("the bulk builder's tables could not be written: {error}"));
    let built = dump(&mut memory, model.tables(), prefix);
    let applied = dump(connection, model.tables(), prefix);
    for table in model.tables() {
        assert_eq!(
            built[*table],
            applied[*table],
            "{}: table {table} built in memory (left) differs from the writer's (right) after {} events",
            model.name(),
            events.len()
        );
    }
}

/// One generation of a read model in a read store, fed from a log. After each catch-up it
/// checks that the model's bulk builder, if it has one, builds the same tables.
pub struct Store {
    pub connection: SqlConnection,
    pub prefix: String,
    pub writer: Box<dyn ModelWriter>,
    model: std::sync::Arc<dyn ReadModel>,
    tables: Vec<String>,
    applied: usize,
}

impl Store {
    /// A fresh in-memory SQLite database with the model's tables.
    pub fn sqlite<M: ReadModel + Clone>(model: &M) -> Store {
        let connection = SqlConnection::sqlite_in_memory().expect("in-memory SQLite opens");
        Store::with(model, connection, "test_".to_owned())
    }

    fn with<M: ReadModel + Clone>(model: &M, mut connection: SqlConnection, prefix: String) -> Store {
        connection.transaction(|tx| tx.batch(&model.schema(&prefix))).expect("schema is created");
        let tables = model.tables().iter().map(|table| format!("{prefix}{table}")).collect();
        let writer = model.writer(&prefix);
        Store { writer, model: std::sync::Arc::new(model.clone()), connection, prefix, tables, applied: 0 }
    }

    /// The local PostgreSQL server (`postgres://postgres@127.0.0.1/test`), with the model's
    /// tables under a prefix unique to this run; `None`, with the reason printed, when it does
    /// not answer, unless `TOUSU_REQUIRE_POSTGRES=1` makes that a failure.
    #[expect(clippy::print_stderr, reason = "a skipped run says why on the test's output")]
    pub fn postgres<M: ReadModel + Clone>(model: &M, test: &str) -> Option<Store> {
        let url = std::env::var("TOUSU_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1/test".into());
        match SqlConnection::postgres(&url) {
            Ok(connection) => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|elapsed| elapsed.subsec_nanos())
                    .unwrap_or(0);
                // Short: PostgreSQL truncates names beyond 63 bytes, and index names carry it.
                let prefix = format!("t{}_{nanos}_", std::process::id());
                Some(Store::with(model, connection, prefix))
            }
            Err(error) => {
                if std::env::var("TOUSU_REQUIRE_POSTGRES").is_ok_and(|value| value == "1") {
                    panic!("PostgreSQL at {url} is required (TOUSU_REQUIRE_POSTGRES=1) but does not answer: {error}");
                }
                eprintln!(
                    "skipping the PostgreSQL run of {test}: {url} does not answer ({error}); set TOUSU_REQUIRE_POSTGRES=1 to fail instead"
                );
                None
            }
        }
    }

    /// Applies the log's events not applied yet, in one transaction; then checks that the
    /// model's bulk builder, if it has one, builds the same tables from the whole log, folded
    /// three events at a time.
    pub fn catch_up(&mut self, log: &Log) {
        let events = log.since(self.applied);
        let writer = &mut self.writer;
        self.connection
            .transaction(|tx| writer.apply(tx, events))
            .unwrap_or_else(|error| panic!("the writer refused the events: {error}"));
        self.applied = log.events.len();
        assert_bulk_matches(self.model.as_ref(), &log.events, 3, &mut self.connection, &self.prefix);
    }

    /// Runs a query on a consistent snapshot.
    pub fn read<T>(&mut self, work: impl FnOnce(&mut dyn SqlTx) -> Result<T, SqlError>) -> T {
        self.connection.read(work).unwrap_or_else(|error| panic!("the query failed: {error}"))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if matches!(self.connection, SqlConnection::Postgres(_)) {
            let tables = self.tables.clone();
            let _ = self.connection.transaction(|tx| -> Result<(), SqlError> {
                for table in &tables {
                    tx.batch(&format!("DROP TABLE IF EXISTS {table}"))?;
                }
                Ok(())
            });
        }
    }
}

/// A small deterministic generator (SplitMix64) for the long generated logs of the bulk
/// builders' tests: a seed gives the same log on every run, so a failure can be replayed.
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice(seed)
    }

    pub fn number(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.number() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.number() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// 32 bytes, as an event's hash.
    pub fn hash(&mut self) -> [u8; 32] {
        let mut hash = [0u8; 32];
        for chunk in hash.chunks_mut(8) {
            chunk.copy_from_slice(&self.number().to_be_bytes());
        }
        hash
    }
}
