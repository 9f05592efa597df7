//! The projection runtime against a real embedded store and real SQL read stores: a worker
//! that fails in the middle of a batch ends with exactly what a clean build gives; a rebuild
//! while queries run never shows a half-built read model; the read model can be replayed to
//! a past instant; a worker gathering a steady stream of events into one batch applies it at
//! once when a reader waits; an offline rebuild in memory switches in a complete generation, and
//! one cut short by the log leaves the live generation untouched. SQLite always; PostgreSQL on
//! the local server when it answers.

#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tousu_projection::runtime::{BuildMode, StoreSource, build_all_now, build_now};
use tousu_projection::{
    BulkBuilder, EventSource, ModelWriter, ProjectedEvent, ProjectionError, ReadModel, ReadStoreAddress, SourceError,
    SourceFactory, SqlConnection, SqlError, SqlTx, Supervisor, Value, WorkerState, meta, table_prefix,
};
use tousu_store::{Actor, EventId, EventStore, ExpectedRevision, Position, ProposedEvent, RecordedEvent, StreamName};
use tousu_store_embedded::EmbeddedStore;

/// Counts events per type; can be told to fail once at a position, in the middle of a batch.
struct Counter {
    fail_at: Arc<AtomicU64>,
    failed: Arc<AtomicBool>,
}

impl ReadModel for Counter {
    fn name(&self) -> &'static str {
        "counter"
    }
    fn version(&self) -> u32 {
        1
    }
    fn tables(&self) -> &'static [&'static str] {
        &["counts"]
    }
    fn schema(&self, prefix: &str) -> String {
        format!("CREATE TABLE {prefix}counts (event_type TEXT PRIMARY KEY, n BIGINT NOT NULL)")
    }
    fn bulk(&self, prefix: &str) -> Option<Box<dyn BulkBuilder>> {
        Some(Box::new(CounterBulk { table: format!("{prefix}counts"), counts: BTreeMap::new() }))
    }
    fn writer(&self, prefix: &str) -> Box<dyn ModelWriter> {
        Box::new(CounterWriter {
            upsert: format!(
                "INSERT INTO {prefix}counts (event_type, n) VALUES ($1, 1)
                 ON CONFLICT (event_type) DO UPDATE SET n = {prefix}counts.n + 1"
            ),
            fail_at: self.fail_at.clone(),
            failed: self.failed.clone(),
        })
    }
}

struct CounterWriter {
    upsert: String,
    fail_at: Arc<AtomicU64>,
    failed: Arc<AtomicBool>,
}

impl ModelWriter for CounterWriter {
    fn apply(&mut self, tx: &mut dyn SqlTx, events: &[ProjectedEvent]) -> Result<(), ProjectionError> {
        for event in events {
            tx.execute(&self.upsert, &[Value::text(event.event_type.clone())])?;
            if event.position == self.fail_at.load(Ordering::SeqCst) && !self.failed.swap(true, Ordering::SeqCst) {
                return Err(ProjectionError::Event { position: event.position, reason: "injected failure".into() });
            }
        }
        Ok(())
    }
}

/// The counts in memory, written once.
struct CounterBulk {
    table: String,
    counts: BTreeMap<String, i64>,
}

impl BulkBuilder for CounterBulk {
    fn fold(&mut self, events: &[ProjectedEvent]) -> Result<(), ProjectionError> {
        for event in events {
            *self.counts.entry(event.event_type.clone()).or_default() += 1;
        }
        Ok(())
    }

    fn write(&self, tx: &mut dyn SqlTx) -> Result<(), ProjectionError> {
        let mut rows = self.counts.iter().map(|(event_type, n)| vec![Value::text(event_type.as_str()), Value::int(*n)]);
        tx.insert_rows(&self.table, &["event_type", "n"], &mut rows)?;
        Ok(())
    }
}

/// A source that delivers `batches` batches of at most 1,000 events, then fails.
struct FailingSource {
    inner: Box<dyn EventSource>,
    batches: usize,
}

impl EventSource for FailingSource {
    fn next_batch(&mut self, max: usize) -> Result<Vec<RecordedEvent>, SourceError> {
        if self.batches == 0 {
            return Err(SourceError::Failed("injected: the log became unreadable".into()));
        }
        self.batches -= 1;
        self.inner.next_batch(max.min(1_000))
    }

    fn head(&mut self) -> Result<u64, SourceError> {
        self.inner.head()
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tousu-projection-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn fill(store: &EmbeddedStore, events: u64) {
    for n in 0..events {
        let stream = StreamName::new(format!("toy-{}", n % 50)).unwrap();
        let event = ProposedEvent {
            id: EventId::from_u128(u128::from(n) + 1),
            event_type: format!("toy.kind{}", n % 7),
            schema_version: 1,
            occurred_at: Utc::now(),
            actor: Actor::default(),
            correlation_id: EventId::from_u128(u128::from(n) + 1),
            causation_id: EventId::from_u128(u128::from(n) + 1),
            payload: b"{}".to_vec(),
        };
        store.append(&stream, ExpectedRevision::Any, vec![event]).await.unwrap();
    }
}

fn total(connection: &mut SqlConnection) -> Result<(Option<i64>, u64), SqlError> {
    connection.read(|tx| {
        let Some(live) = meta::live(tx, "counter")? else { return Ok((None, 0)) };
        // The one-statement read of what queries see agrees with the runtime's own records.
        let generation = meta::read(tx, "counter")?.live.expect("live");
        assert_eq!(live.prefix, table_prefix("counter", generation.number));
        assert_eq!(live.checkpoint, meta::checkpoint(tx, "counter", generation.number)?);
        let rows = tx.query(&format!("SELECT CAST(SUM(n) AS BIGINT) FROM {}counts", live.prefix), &[])?;
        Ok((rows[0][0].as_i64(), live.checkpoint.events))
    })
}

fn wait_live(supervisor: &Supervisor, position: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = &supervisor.status()[0];
        if status.state == WorkerState::Live && status.checkpoint.position >= position {
            return;
        }
        assert!(Instant::now() < deadline, "worker never caught up: {status:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run_suite(address: ReadStoreAddress, label: &str) {
    let dir = temp_dir(label);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.join("events")).unwrap());
    runtime.block_on(fill(&store, 3_000));
    let fail_at = Arc::new(AtomicU64::new(1_500));
    let failed = Arc::new(AtomicBool::new(false));
    let model: Arc<dyn ReadModel> = Arc::new(Counter { fail_at: fail_at.clone(), failed: failed.clone() });
    let source = StoreSource::factory(runtime.handle().clone(), store.clone());

    // A worker that fails in the middle of a batch restarts from its checkpoint: nothing is
    // lost and nothing counted twice.
    let supervisor = Supervisor::start(address.clone(), vec![model.clone()], source.clone());
    wait_live(&supervisor, 3_000);
    assert!(failed.load(Ordering::SeqCst), "the injected failure happened");
    let mut reader = address.connect("counter").unwrap();
    assert_eq!(total(&mut reader).unwrap(), (Some(3_000), 3_000));

    // More events while it runs: it follows.
    runtime.block_on(fill_more(&store, 3_000, 500));
    wait_live(&supervisor, 3_500);
    assert_eq!(total(&mut reader).unwrap(), (Some(3_500), 3_500));

    // A rebuild while queries run: every query sees a complete generation, consistent with
    // its checkpoint, and the generation number moves on.
    let before = reader.read(|tx| meta::read(tx, "counter")).unwrap().live.unwrap();
    supervisor.rebuild("counter").unwrap();
    let mut switched = false;
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        let (sum, events) = total(&mut reader).unwrap();
        assert_eq!(sum, Some(events as i64), "a query saw a read model that does not match its checkpoint");
        let live = reader.read(|tx| meta::read(tx, "counter")).unwrap().live.unwrap();
        if live.number > before.number {
            switched = true;
            break;
        }
    }
    assert!(switched, "the rebuilt generation was promoted");
    wait_live(&supervisor, 3_500);
    assert_eq!(total(&mut reader).unwrap(), (Some(3_500), 3_500));
    // The replaced generation is dropped right after the promotion, in its own transaction.
    let until = Instant::now() + Duration::from_secs(20);
    while old_tables(&mut reader, before.number) {
        assert!(Instant::now() < until, "the replaced generation's tables are dropped");
        std::thread::sleep(Duration::from_millis(50));
    }
    supervisor.stop();

    // An offline rebuild gives the same answer.
    build_now(&address, model.as_ref(), source.clone(), &mut |_, _| {}).unwrap();
    assert_eq!(total(&mut reader).unwrap(), (Some(3_500), 3_500));

    // An offline rebuild in memory too, and it switches a new generation in.
    let before = reader.read(|tx| meta::read(tx, "counter")).unwrap().live.unwrap();
    build_all_now(&address, std::slice::from_ref(&model), source.clone(), BuildMode::InMemory, &mut |_, _| {}).unwrap();
    let built = reader.read(|tx| meta::read(tx, "counter")).unwrap();
    assert!(built.live.unwrap().number > before.number && built.building.is_none(), "{built:?}");
    assert_eq!(total(&mut reader).unwrap(), (Some(3_500), 3_500));

    // An offline rebuild in memory cut short by the log: an error, the live generation
    // untouched, and the new one left empty at position 0 for the next build.
    let failing: SourceFactory = {
        let source = source.clone();
        Arc::new(move |after| Ok(Box::new(FailingSource { inner: source(after)?, batches: 2 }) as Box<dyn EventSource>))
    };
    let live = built.live.unwrap();
    let error = build_all_now(&address, std::slice::from_ref(&model), failing, BuildMode::InMemory, &mut |_, _| {})
        .expect_err("the log failed");
    assert!(error.to_string().contains("injected"), "{error}");
    let after = reader.read(|tx| meta::read(tx, "counter")).unwrap();
    assert_eq!(after.live, Some(live), "the live generation is untouched");
    let left = after.building.expect("the interrupted generation is left building");
    assert_eq!(reader.read(|tx| meta::checkpoint(tx, "counter", left.number)).unwrap().position, 0);
    assert_eq!(total(&mut reader).unwrap(), (Some(3_500), 3_500));
    build_all_now(&address, std::slice::from_ref(&model), source.clone(), BuildMode::InMemory, &mut |_, _| {}).unwrap();
    assert!(reader.read(|tx| meta::read(tx, "counter")).unwrap().live.unwrap().number > left.number);
    assert_eq!(total(&mut reader).unwrap(), (Some(3_500), 3_500));

    // Two workers of one read model (a worker started twice, or an old process not quite
    // dead): each batch claims the checkpoint it starts from, so every event is applied once.
    let first = Supervisor::start(address.clone(), vec![model.clone()], source.clone());
    let second = Supervisor::start(address.clone(), vec![model.clone()], source.clone());
    wait_live(&first, 3_500);
    wait_live(&second, 3_500);
    runtime.block_on(fill_more(&store, 3_500, 1_000));
    wait_live(&first, 4_500);
    wait_live(&second, 4_500);
    first.stop();
    second.stop();
    assert_eq!(total(&mut reader).unwrap(), (Some(4_500), 4_500));

    // Replaying to a past instant reproduces the read model as it was.
    let mut source_now = (source)(0).unwrap();
    let cut: DateTime<Utc> = runtime.block_on(async {
        let events = store.read_all(tousu_store::ReadFrom::Start, 10_000).await.unwrap();
        events[1_999].recorded_at
    });
    let replayed = tousu_projection::replay::replay(model.as_ref(), source_now.as_mut(), cut).unwrap();
    let mut connection = replayed.connection;
    let sum = connection.read(|tx| tx.query("SELECT CAST(SUM(n) AS BIGINT) FROM replay_counts", &[])).unwrap();
    let expected = runtime.block_on(async {
        let events = store.read_all(tousu_store::ReadFrom::Start, 10_000).await.unwrap();
        events.iter().filter(|event| event.recorded_at <= cut).count() as i64
    });
    assert_eq!(sum[0][0].as_i64(), Some(expected));
    assert!(expected >= 2_000);

    drop(connection);
    drop(reader);
    runtime.block_on(store.close()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

async fn fill_more(store: &EmbeddedStore, from: u64, count: u64) {
    for n in from..from + count {
        let stream = StreamName::new(format!("toy-{}", n % 50)).unwrap();
        let event = ProposedEvent {
            id: EventId::from_u128(u128::from(n) + 1),
            event_type: format!("toy.kind{}", n % 7),
            schema_version: 1,
            occurred_at: Utc::now(),
            actor: Actor::default(),
            correlation_id: EventId::from_u128(u128::from(n) + 1),
            causation_id: EventId::from_u128(u128::from(n) + 1),
            payload: b"{}".to_vec(),
        };
        store.append(&stream, ExpectedRevision::Any, vec![event]).await.unwrap();
    }
}

fn old_tables(connection: &mut SqlConnection, generation: u64) -> bool {
    let table = format!("counter_g{generation}_counts");
    match connection {
        SqlConnection::Sqlite(_) => connection
            .read(|tx| {
                tx.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = $1", &[Value::text(table)])
            })
            .map(|rows| !rows.is_empty())
            .unwrap(),
        SqlConnection::Postgres(_) => connection
            .read(|tx| tx.query("SELECT tablename::TEXT FROM pg_tables WHERE tablename = $1", &[Value::text(table)]))
            .map(|rows| !rows.is_empty())
            .unwrap(),
    }
}

#[test]
fn a_sqlite_read_model_survives_a_failing_worker_a_rebuild_and_a_replay() {
    let dir = temp_dir("sqlite-read");
    run_suite(ReadStoreAddress::Sqlite(dir.clone()), "sqlite");
    let _ = std::fs::remove_dir_all(&dir);
}

const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1/test";

#[test]
fn a_postgresql_read_model_survives_a_failing_worker_a_rebuild_and_a_replay() {
    let mut connection = match SqlConnection::postgres(POSTGRES_URL) {
        Ok(connection) => connection,
        Err(error) => {
            assert!(
                std::env::var("TOUSU_REQUIRE_POSTGRES").is_err(),
                "TOUSU_REQUIRE_POSTGRES is set but PostgreSQL does not answer at {POSTGRES_URL}: {error}"
            );
            eprintln!(
                "skipped: PostgreSQL does not answer at {POSTGRES_URL} ({error}); set TOUSU_REQUIRE_POSTGRES=1 to fail instead"
            );
            return;
        }
    };
    // The toy model's tables are shared in the test database: start from a clean slate.
    connection
        .transaction(|tx| {
            tx.batch("DROP TABLE IF EXISTS counter_g1_counts; DROP TABLE IF EXISTS counter_g2_counts; DROP TABLE IF EXISTS counter_g3_counts")?;
            tx.batch(meta::META_SCHEMA)?;
            tx.execute("DELETE FROM tousu_projection WHERE name = 'counter'", &[])?;
            tx.execute("DELETE FROM tousu_checkpoint WHERE name = 'counter'", &[]).map(|_| ())
        })
        .unwrap();
    run_suite(ReadStoreAddress::Postgres(POSTGRES_URL.to_owned()), "postgres");
}

/// A log that never goes quiet: every call hands out one more event, so a worker following it
/// would gather events into one batch for as long as it lingers.
struct Trickle {
    position: u64,
}

impl Trickle {
    fn one(&mut self) -> Vec<RecordedEvent> {
        self.position += 1;
        let id = EventId::from_u128(u128::from(self.position));
        vec![RecordedEvent {
            stream: StreamName::new("trickle-1").unwrap(),
            revision: self.position - 1,
            position: Position(self.position),
            recorded_at: Utc::now(),
            prev_hash: [0; 32],
            hash: [0; 32],
            event: ProposedEvent {
                id,
                event_type: "toy.trickle".to_owned(),
                schema_version: 1,
                occurred_at: Utc::now(),
                actor: Actor::default(),
                correlation_id: id,
                causation_id: id,
                payload: b"{}".to_vec(),
            },
        }]
    }
}

impl EventSource for Trickle {
    fn next_batch(&mut self, _max: usize) -> Result<Vec<RecordedEvent>, SourceError> {
        Ok(self.one())
    }
    fn head(&mut self) -> Result<u64, SourceError> {
        Ok(self.position)
    }
    fn more(&mut self, _max: usize) -> Result<Vec<RecordedEvent>, SourceError> {
        Ok(self.one())
    }
}

#[test]
fn a_worker_gathering_a_steady_stream_applies_its_batch_at_once_when_a_reader_waits() {
    let dir = temp_dir("hurry");
    let address = ReadStoreAddress::Sqlite(dir.clone());
    let model: Arc<dyn ReadModel> =
        Arc::new(Counter { fail_at: Arc::new(AtomicU64::new(u64::MAX)), failed: Arc::new(AtomicBool::new(false)) });
    let source: SourceFactory = Arc::new(|after| Ok(Box::new(Trickle { position: after }) as Box<dyn EventSource>));
    // The log starts empty, so the first generation is promoted at once; from then on one
    // event arrives every 5 ms (each gathering step), and the batch would fill (8,192 events)
    // only after some 40 s, within the minute's linger.
    let supervisor = Supervisor::start_lingering(address.clone(), vec![model], source, Duration::from_secs(60));
    let started = Instant::now();
    while supervisor.status()[0].live.is_none() {
        assert!(started.elapsed() < Duration::from_secs(30), "the first generation was not promoted");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(supervisor.status()[0].checkpoint.position, 0, "no reader waits: the worker goes on gathering");

    let asked = Instant::now();
    supervisor.hurry("counter");
    while supervisor.status()[0].checkpoint.position == 0 {
        assert!(asked.elapsed() < Duration::from_secs(10), "a waiting reader did not cut the gathering short");
        std::thread::sleep(Duration::from_millis(5));
    }
    let applied = supervisor.status()[0].checkpoint.clone();
    // Everything gathered so far was applied, in one transaction with its checkpoint.
    assert!(applied.position >= 50, "a batch of the events gathered for half a second, not {}", applied.position);
    assert_eq!(applied.events, applied.position);
    let mut reader = address.connect("counter").unwrap();
    assert_eq!(total(&mut reader).unwrap(), (Some(applied.position as i64), applied.position));

    supervisor.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
