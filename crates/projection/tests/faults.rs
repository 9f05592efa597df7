//! Read models that cannot be trusted any more, against a real embedded store and real read
//! stores: a SQLite file truncated or overwritten under its worker, and a store a query found
//! damaged (SQLite and PostgreSQL), fail alone — queries are told why, the other read model
//! goes on — and are rebuilt from the log in a new file or new tables; a read model ahead of a
//! restored, older log, or built from a log since written past differently, is dropped and
//! rebuilt from the log it now has, and no query reads it in between.

#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tousu_projection::{
    Fault, ModelWriter, ProjectedEvent, ProjectionError, ReadModel, ReadStoreAddress, Readiness, SqlConnection, SqlTx,
    StoreSource, Supervisor, Value, WorkerState, meta,
};
use tousu_store::{Actor, EventId, EventStore, ExpectedRevision, ProposedEvent, StreamName};
use tousu_store_embedded::EmbeddedStore;

/// Counts the events of the log.
struct Tally(&'static str);

impl ReadModel for Tally {
    fn name(&self) -> &'static str {
        self.0
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
    fn writer(&self, prefix: &str) -> Box<dyn ModelWriter> {
        Box::new(TallyWriter {
            upsert: format!(
                "INSERT INTO {prefix}counts (event_type, n) VALUES ($1, 1)
                 ON CONFLICT (event_type) DO UPDATE SET n = {prefix}counts.n + 1"
            ),
        })
    }
}

struct TallyWriter {
    upsert: String,
}

impl ModelWriter for TallyWriter {
    fn apply(&mut self, tx: &mut dyn SqlTx, events: &[ProjectedEvent]) -> Result<(), ProjectionError> {
        for event in events {
            tx.execute(&self.upsert, &[Value::text(event.event_type.clone())])?;
        }
        Ok(())
    }
}

const ALPHA: &str = "faults-alpha";
const BETA: &str = "faults-beta";

fn models() -> Vec<Arc<dyn ReadModel>> {
    vec![Arc::new(Tally(ALPHA)), Arc::new(Tally(BETA))]
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tousu-faults-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime")
}

/// Appends events `from..from + count`; `kind` tells two logs' events apart.
async fn fill(store: &EmbeddedStore, from: u64, count: u64, kind: &str) {
    for n in from..from + count {
        let stream = StreamName::new(format!("toy-{}", n % 50)).expect("a stream name");
        let id = EventId::from_u128(u128::from(n) + 1);
        let event = ProposedEvent {
            id,
            event_type: format!("toy.{kind}{}", n % 7),
            schema_version: 1,
            occurred_at: Utc::now(),
            actor: Actor::default(),
            correlation_id: id,
            causation_id: id,
            payload: b"{}".to_vec(),
        };
        store.append(&stream, ExpectedRevision::Any, vec![event]).await.expect("appended");
    }
}

/// The events the live generation counted, with its generation; `None` with none live.
fn counted(address: &ReadStoreAddress, name: &str) -> Option<(i64, u64)> {
    let mut connection = address.connect(name).expect("a connection");
    connection
        .read(|tx| {
            let Some(live) = meta::live(tx, name)? else { return Ok(None) };
            let generation = meta::read(tx, name)?.live.expect("live").number;
            let rows = tx.query(&format!("SELECT CAST(SUM(n) AS BIGINT) FROM {}counts", live.prefix), &[])?;
            Ok::<_, tousu_projection::SqlError>(Some((rows[0][0].as_i64().unwrap_or(0), generation)))
        })
        .expect("the count")
}

fn status(supervisor: &Supervisor, name: &str) -> tousu_projection::ProjectionStatus {
    supervisor.status().into_iter().find(|status| status.name == name).expect("a status")
}

fn wait_live(supervisor: &Supervisor, name: &str, position: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = status(supervisor, name);
        if status.state == WorkerState::Live
            && status.checkpoint.position >= position
            && matches!(supervisor.readiness(name), Readiness::Ready { .. })
        {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never caught up: {status:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a test does to a read model's SQLite file under its worker.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Truncated to half its length.
    Truncate,
    /// Its first 100 bytes overwritten with garbage.
    Header,
}

fn damage(file: &Path, damage: Damage) {
    let mut opened = std::fs::OpenOptions::new().write(true).open(file).expect("the read model's file");
    match damage {
        Damage::Truncate => {
            let length = opened.metadata().expect("its length").len();
            opened.set_len(length / 2).expect("truncated");
        }
        Damage::Header => std::io::Write::write_all(&mut opened, &[0x5A; 100]).expect("garbage written"),
    }
}

/// Damages `alpha`'s file while both read models follow the log; checks that `alpha` alone
/// goes out of service, saying why, and comes back rebuilt from the log in a new file.
fn damaged_file_suite(kind: Damage, label: &str) {
    let dir = temp_dir(label);
    let runtime = runtime();
    let store = Arc::new(EmbeddedStore::open(dir.join("events")).expect("a store"));
    runtime.block_on(fill(&store, 0, 3_000, "a"));
    let address = ReadStoreAddress::Sqlite(dir.join("read"));
    let source = StoreSource::factory(runtime.handle().clone(), store.clone());
    let supervisor = Supervisor::start(address.clone(), models(), source);
    wait_live(&supervisor, ALPHA, 3_000);
    wait_live(&supervisor, BETA, 3_000);
    let (_, before) = counted(&address, ALPHA).expect("alpha is live");
    let beta_generation = status(&supervisor, BETA).live.expect("beta is live").number;

    damage(&address.sqlite_file(ALPHA).expect("a SQLite file"), kind);
    // The worker notices within a poll of the log; queries are told why from then on.
    let deadline = Instant::now() + Duration::from_secs(20);
    let fault = loop {
        if let Readiness::Faulted(fault) = supervisor.readiness(ALPHA) {
            break fault;
        }
        assert!(Instant::now() < deadline, "the damage was not noticed: {:?}", status(&supervisor, ALPHA));
        std::thread::sleep(Duration::from_millis(5));
    };
    let Fault::Damaged(reason) = &fault else { panic!("not damage: {fault:?}") };
    let expected = match kind {
        Damage::Truncate => "was truncated from",
        Damage::Header => "no longer begins with SQLite's header",
    };
    assert!(reason.contains(expected), "{reason}");
    // The status says what happened: failed, the damage and the file moved aside, until the
    // rebuild starts (after a pause) and the state becomes `building`.
    let error = loop {
        let out = status(&supervisor, ALPHA);
        assert_eq!(out.state, WorkerState::Failed, "{out:?}");
        let error = out.last_error.expect("the damage is the last error");
        assert!(error.starts_with("read store damaged: "), "{error}");
        if error.contains("moved aside as") {
            break error;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    assert!(error.ends_with("; rebuilding from the log"), "{error}");
    // The other read model goes on, and follows new events meanwhile.
    runtime.block_on(fill(&store, 3_000, 500, "a"));
    assert!(matches!(supervisor.readiness(BETA), Readiness::Ready { .. }));
    wait_live(&supervisor, BETA, 3_500);

    wait_live(&supervisor, ALPHA, 3_500);
    let (events, generation) = counted(&address, ALPHA).expect("alpha rebuilt");
    assert_eq!(events, 3_500, "rebuilt from the whole log");
    assert!(generation > before, "a new generation ({generation}) after {before}");
    assert_eq!(status(&supervisor, ALPHA).fault, None);
    assert_eq!(counted(&address, BETA), Some((3_500, beta_generation)), "beta untouched");
    let aside: Vec<String> = std::fs::read_dir(dir.join("read"))
        .expect("the read store")
        .map(|entry| entry.expect("an entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("faults-alpha.damaged-"))
        .collect();
    assert!(aside.iter().any(|name| name.ends_with(".sqlite")), "the damaged file is kept aside: {aside:?}");

    supervisor.stop();
    runtime.block_on(store.close()).expect("closed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sqlite_read_model_truncated_under_its_worker_fails_alone_and_is_rebuilt_in_a_new_file() {
    damaged_file_suite(Damage::Truncate, "truncated");
}

#[test]
fn a_sqlite_read_model_whose_header_is_overwritten_fails_alone_and_is_rebuilt_in_a_new_file() {
    damaged_file_suite(Damage::Header, "header");
}

/// A query reports `alpha`'s store damaged: `alpha` alone goes out of service and is rebuilt
/// in a new generation, its damaged one set aside (SQLite) or dropped (PostgreSQL).
fn reported_damage_suite(address: ReadStoreAddress, label: &str) {
    let dir = temp_dir(label);
    let runtime = runtime();
    let store = Arc::new(EmbeddedStore::open(dir.join("events")).expect("a store"));
    runtime.block_on(fill(&store, 0, 2_000, "a"));
    let source = StoreSource::factory(runtime.handle().clone(), store.clone());
    let supervisor = Supervisor::start(address.clone(), models(), source);
    wait_live(&supervisor, ALPHA, 2_000);
    wait_live(&supervisor, BETA, 2_000);
    let (_, before) = counted(&address, ALPHA).expect("alpha is live");
    let beta_generation = status(&supervisor, BETA).live.expect("beta is live").number;
    let Readiness::Ready { epoch } = supervisor.readiness(ALPHA) else { panic!("alpha is ready") };

    supervisor.report_damage(ALPHA, epoch, "postgresql: could not read block 7 (injected)".to_owned());
    assert!(matches!(supervisor.readiness(ALPHA), Readiness::Faulted(Fault::Damaged(_))), "refused at once");
    assert!(matches!(supervisor.readiness(BETA), Readiness::Ready { .. }));
    wait_live(&supervisor, ALPHA, 2_000);
    let (events, generation) = counted(&address, ALPHA).expect("alpha rebuilt");
    assert_eq!(events, 2_000);
    assert!(generation > before, "a new generation ({generation}) after {before}");
    assert_eq!(supervisor.readiness(ALPHA), Readiness::Ready { epoch: epoch + 1 });
    if let ReadStoreAddress::Postgres(_) = address {
        assert!(!table_exists(&address, &format!("faults_alpha_g{before}_counts")), "the damaged tables are dropped");
    }
    // Damage found on a connection of the store set aside changes nothing any more.
    supervisor.report_damage(ALPHA, epoch, "found late, in the old store".to_owned());
    assert_eq!(supervisor.readiness(ALPHA), Readiness::Ready { epoch: epoch + 1 });
    assert_eq!(counted(&address, BETA), Some((2_000, beta_generation)), "beta untouched");

    supervisor.stop();
    runtime.block_on(store.close()).expect("closed");
    let _ = std::fs::remove_dir_all(&dir);
}

fn table_exists(address: &ReadStoreAddress, table: &str) -> bool {
    let mut connection = address.connect(ALPHA).expect("a connection");
    connection
        .read(|tx| tx.query("SELECT tablename::TEXT FROM pg_tables WHERE tablename = $1", &[Value::text(table)]))
        .map(|rows| !rows.is_empty())
        .expect("the catalogue")
}

#[test]
fn a_sqlite_read_model_a_query_found_damaged_fails_alone_and_is_rebuilt() {
    let dir = temp_dir("reported-sqlite-read");
    reported_damage_suite(ReadStoreAddress::Sqlite(dir.clone()), "reported-sqlite");
    let _ = std::fs::remove_dir_all(&dir);
}

const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1/test";

#[test]
fn a_postgresql_read_model_a_query_found_damaged_fails_alone_and_is_rebuilt_in_new_tables() {
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
    // This test's read models are shared in the test database: start from a clean slate.
    connection
        .transaction(|tx| -> Result<(), tousu_projection::SqlError> {
            tx.batch(meta::META_SCHEMA)?;
            let tables = tx.query("SELECT tablename::TEXT FROM pg_tables WHERE tablename LIKE 'faults\\_%'", &[])?;
            for table in tables {
                tx.batch(&format!("DROP TABLE IF EXISTS {}", table[0].as_str().unwrap_or_default()))?;
            }
            tx.execute("DELETE FROM tousu_projection WHERE name LIKE 'faults-%'", &[])?;
            tx.execute("DELETE FROM tousu_checkpoint WHERE name LIKE 'faults-%'", &[])?;
            Ok(())
        })
        .expect("a clean slate");
    reported_damage_suite(ReadStoreAddress::Postgres(POSTGRES_URL.to_owned()), "reported-postgres");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a copy");
    for entry in std::fs::read_dir(from).expect("a directory") {
        let entry = entry.expect("an entry");
        if entry.file_type().expect("a type").is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("a file copied");
        }
    }
}

/// Builds both read models from a log of `written` events, of which the first `kept` were
/// backed up; restores the backup, lets `append` add events of another history to it, and
/// starts the workers on it beside the read models built from the newer log. Both read
/// models must be found not of this log, dropped and rebuilt from it; no query may read them
/// in between. Returns the fault seen.
fn restored_log_suite(label: &str, kept: u64, written: u64, appended: u64) -> Fault {
    let dir = temp_dir(label);
    let runtime = runtime();
    let address = ReadStoreAddress::Sqlite(dir.join("read"));
    let store = runtime.block_on(async {
        let store = EmbeddedStore::open(dir.join("events")).expect("a store");
        fill(&store, 0, kept, "a").await;
        store.close().await.expect("closed");
        drop(store);
        copy_dir(&dir.join("events"), &dir.join("backup"));
        let store = EmbeddedStore::open(dir.join("events")).expect("the store again");
        fill(&store, kept, written - kept, "a").await;
        Arc::new(store)
    });
    let supervisor =
        Supervisor::start(address.clone(), models(), StoreSource::factory(runtime.handle().clone(), store.clone()));
    wait_live(&supervisor, ALPHA, written);
    wait_live(&supervisor, BETA, written);
    supervisor.stop();
    drop(supervisor);
    runtime.block_on(store.close()).expect("closed");
    drop(store);
    let (_, before) = counted(&address, ALPHA).expect("alpha is live");

    // The backup restored, and written past differently.
    std::fs::remove_dir_all(dir.join("events")).expect("the newer log removed");
    std::fs::rename(dir.join("backup"), dir.join("events")).expect("the backup restored");
    let store = runtime.block_on(async {
        let store = EmbeddedStore::open(dir.join("events")).expect("the restored store");
        fill(&store, kept, appended, "b").await;
        Arc::new(store)
    });
    let head = kept + appended;
    let supervisor =
        Supervisor::start(address.clone(), models(), StoreSource::factory(runtime.handle().clone(), store.clone()));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = None;
    loop {
        match supervisor.readiness(ALPHA) {
            Readiness::Faulted(fault) => seen = Some(fault),
            Readiness::Checking => {}
            Readiness::Ready { .. } => {
                // What a query reads once admitted is of this log, never of the newer one.
                if let Some((events, _)) = counted(&address, ALPHA) {
                    assert_eq!(
                        events,
                        i64::try_from(head).expect("small"),
                        "a query read figures the log does not have"
                    );
                    if status(&supervisor, ALPHA).state == WorkerState::Live {
                        break;
                    }
                }
            }
        }
        assert!(Instant::now() < deadline, "alpha was not rebuilt: {:?}", status(&supervisor, ALPHA));
        std::thread::sleep(Duration::from_millis(2));
    }
    wait_live(&supervisor, BETA, head);
    assert_eq!(counted(&address, BETA).map(|(events, _)| events), Some(i64::try_from(head).expect("small")));
    let (_, generation) = counted(&address, ALPHA).expect("alpha rebuilt");
    assert!(generation > before, "a new generation ({generation}) after {before}");
    supervisor.stop();
    runtime.block_on(store.close()).expect("closed");
    let _ = std::fs::remove_dir_all(&dir);
    seen.expect("queries were told why the read model was out of service")
}

#[test]
fn read_models_ahead_of_a_restored_older_log_are_dropped_and_rebuilt_from_it() {
    let fault = restored_log_suite("ahead", 1_000, 3_000, 0);
    let Fault::AheadOfLog(reason) = fault else { panic!("not ahead of the log: {fault:?}") };
    assert!(reason.contains("up to position 3000, past the log's head at 1000"), "{reason}");
}

#[test]
fn read_models_of_a_log_since_written_past_differently_are_dropped_and_rebuilt_from_it() {
    // The restored log is written past the read models' checkpoint again, by other events:
    // its head is no longer behind them, but the event at their checkpoint is not theirs.
    let fault = restored_log_suite("diverged", 1_000, 1_500, 700);
    let Fault::AheadOfLog(reason) = fault else { panic!("not of this log: {fault:?}") };
    assert!(reason.contains("last applied the event at position 1500"), "{reason}");
    assert!(reason.contains("which the log does not hold (its head is at 1700)"), "{reason}");
}
