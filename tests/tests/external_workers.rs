//! Read-model workers as processes of their own (`tousu worker NAME --server ...`) beside a real
//! `tousu serve --external-projection ...` on the embedded store, over a simulated city's log,
//! with the read models in a SQLite directory and in the local PostgreSQL: real processes, real
//! sockets, real files, real SIGKILL.
//!
//! What the runtime promises, and these tests hold it to: a worker commits each batch's changes
//! together with its checkpoint in one transaction, so a crash loses no event and applies none
//! twice (exactly-once). A worker killed with SIGKILL in the middle of a batch (its transaction
//! seen open: the SQLite write lock held, or uncommitted changes to its tables in PostgreSQL)
//! and started again ends with a read model identical, table by table and row by row, to a
//! clean rebuild from zero in another read store: once during its first build, after a
//! committed batch (issue 5; issue 6 with three worker processes and PostgreSQL), once while it
//! follows leads registered through the API. The API answers read-model queries with what the
//! tables hold, and a second server behind the same read store, on a log of its own, answers
//! exactly the same (issue 6).
//!
//! Every scenario starts from a copy of one simulated city (`tousu simulate`), written once per
//! test process: a log longer than a build batch, so that a first build commits a batch before
//! it reaches the head.

#![allow(clippy::print_stderr)]

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use tousu_api::pb;
use tousu_e2e::refusal::ok;
use tousu_e2e::requests::registration;
use tousu_e2e::server::{AUDITOR, REGISTRAR_ZJ, SYSTEM, ServerOptions, TestServer};
use tousu_e2e::{run_tousu, stderr_of, stdout_of, tousu_bin};
use tousu_projection::runtime::BUILD_BATCH;
use tousu_projection::{ReadModel, ReadStoreAddress, Row, SqlConnection, SqlError, SqlTx, Value, meta, table_prefix};

/// The local PostgreSQL the tests use when it answers.
const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1/test";

/// The read models whose workers run as processes of their own.
const WORKERS: [&str; 3] = ["watchlist", "weekly-summary", "overdue-escalation"];

/// The worker killed in the middle of its first build.
const KILLED_BUILDING: &str = "watchlist";

/// The worker killed in the middle of a batch while following the log. Its history anchors
/// chain the hash of every event, so an event applied twice or skipped shows.
const KILLED_FOLLOWING: &str = "weekly-summary";

/// Leads registered through the API while the workers follow the log: registrations go on
/// until the worker has been killed in a batch and restarted, and this many more.
const FOLLOWED_LEADS: usize = 400;

/// At most this many leads are registered while waiting for the kill.
const MAX_FOLLOWED_LEADS: usize = 20_000;

/// The simulated city: about 10,700 events in which every read model has facts, so that a
/// worker's first build takes at least two batches (of up to 8,192 events); about 5 s to
/// simulate in the debug build.
const CITY: [&str; 6] = ["--days", "20", "--companies", "30", "--leads-per-day", "80"];

/// The first simulated day (the simulation's default start), a Monday.
const FIRST_WEEK: &str = "2026-03-02";

/// A directory of its own under the system's temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!("tousu-e2e-workers-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create the scratch directory");
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The simulated city's data directory and the scenarios holding it. A scenario copies it; the
/// last one to let go removes it, so scenarios running at the same time simulate only once.
static CITY_DIR: Mutex<Option<(PathBuf, usize)>> = Mutex::new(None);

/// A scenario's hold on the simulated city.
struct City(PathBuf);

impl City {
    fn hold() -> City {
        let mut slot = CITY_DIR.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((dir, holders)) = slot.as_mut() {
            *holders += 1;
            return City(dir.clone());
        }
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("tousu-e2e-workers-city-{}-{nanos}", std::process::id()));
        let data = dir.to_string_lossy().into_owned();
        // Brings the binary up to date first, so the time printed is the simulation's.
        tousu_bin();
        let started = Instant::now();
        let mut args = vec!["simulate", "--data-dir", &data];
        args.extend(CITY);
        let output = run_tousu(&args);
        assert!(output.status.success(), "tousu simulate failed: {}\n{}", stderr_of(&output), stdout_of(&output));
        eprintln!("simulated the city in {:.1} s", started.elapsed().as_secs_f64());
        *slot = Some((dir.clone(), 1));
        City(dir)
    }

    /// Copies the city's data directory (its log, identity secret, tokens and reactions'
    /// checkpoint; not the simulation's own read models) to `to`.
    fn copy_to(&self, to: &Path) {
        copy_dir(&self.0, to, &["read"]);
    }
}

impl Drop for City {
    fn drop(&mut self) {
        let mut slot = CITY_DIR.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((dir, holders)) = slot.as_mut() {
            *holders -= 1;
            if *holders == 0 {
                let _ = std::fs::remove_dir_all(&*dir);
                *slot = None;
            }
        }
    }
}

fn copy_dir(from: &Path, to: &Path, except: &[&str]) {
    std::fs::create_dir_all(to).expect("create the copy's directory");
    for entry in std::fs::read_dir(from).expect("read the directory") {
        let entry = entry.expect("a directory entry");
        let name = entry.file_name();
        if except.iter().any(|skipped| name == *skipped) {
            continue;
        }
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &to.join(&name), &[]);
        } else {
            std::fs::copy(entry.path(), to.join(&name)).expect("copy a file");
        }
    }
}

/// A `tousu worker` process, its standard output and error in a log file. Killed when
/// dropped; the end of its log is printed if the test failed.
struct Worker {
    name: &'static str,
    label: String,
    log: PathBuf,
    child: Option<Child>,
}

impl Worker {
    fn start(dir: &Path, label: &str, name: &'static str, server: SocketAddr, token: &str, store: &str) -> Worker {
        let log = dir.join(format!("worker-{label}-{name}.log"));
        let file = File::create(&log).expect("create the worker's log");
        let mut command = Command::new(tousu_bin());
        command.args(["worker", name, "--server", &server.to_string(), "--token", token, "--read-store", store]);
        // The environment of the test run must not configure the worker under test.
        for (variable, _) in std::env::vars_os() {
            if variable.to_string_lossy().starts_with("TOUSU_") {
                command.env_remove(variable);
            }
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("a second handle on the log"))
            .stderr(file)
            .spawn()
            .expect("spawn tousu worker");
        Worker { name, label: label.to_owned(), log, child: Some(child) }
    }

    /// SIGKILL: the process gets no chance to finish its batch or close anything.
    fn kill(&mut self) {
        let mut child = self.child.take().expect("the worker was running");
        let exited = child.try_wait().expect("poll the worker");
        assert!(exited.is_none(), "worker {} exited before it was killed ({exited:?})\n{}", self.name, self.log());
        child.kill().expect("SIGKILL the worker");
        child.wait().expect("reap the worker");
    }

    /// SIGTERM, and the exit of the graceful stop, within 20 s.
    fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the worker was running");
        let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
        assert!(sent.success(), "kill -TERM {}", child.id());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("poll the worker") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("worker {} did not stop within 20 s of SIGTERM\n{}", self.name, self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            eprintln!(
                "--- last lines of worker {} ({}) ---\n{}",
                self.name,
                self.label,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

/// A read store of one scenario.
#[derive(Debug, Clone)]
enum ReadStore {
    /// A directory of SQLite files, one per read model, which every process opens.
    Sqlite(PathBuf),
    /// A schema of its own in the local PostgreSQL.
    Postgres { schema: String },
}

impl ReadStore {
    /// The store as `--read-store` names it. PostgreSQL's is the test database with the schema
    /// first on the search path (libpq's `options` parameter, which the `postgres` crate passes
    /// to the server when it connects).
    fn argument(&self) -> String {
        match self {
            ReadStore::Sqlite(dir) => dir.to_string_lossy().into_owned(),
            ReadStore::Postgres { schema } => format!("{POSTGRES_URL}?options=-c%20search_path%3D{schema}"),
        }
    }

    fn connect(&self, name: &str) -> SqlConnection {
        let address = ReadStoreAddress::parse(&self.argument()).expect("a read store address");
        address.connect(name).unwrap_or_else(|error| panic!("connect to {self:?} for {name}: {error}"))
    }

    /// Runs `query` on the live generation of read model `name`.
    fn live<T>(&self, name: &str, query: impl FnOnce(&mut dyn SqlTx, &str) -> Result<T, SqlError>) -> T {
        self.connect(name)
            .read(|tx| {
                let prefix = meta::live_prefix(tx, name)?.unwrap_or_else(|| panic!("{name} has no live generation"));
                query(tx, &prefix)
            })
            .unwrap_or_else(|error| panic!("query {name} in {self:?}: {error}"))
    }

    /// A connection that tells whether a writer is inside a transaction (see
    /// [`Self::writing`]).
    fn probe(&self, name: &str) -> SqlConnection {
        let mut probe = self.connect(name);
        if let ReadStore::Sqlite(_) = self {
            // Fail at once instead of waiting for the writer's lock.
            probe.read(|tx| tx.batch("PRAGMA busy_timeout = 0")).expect("set the busy timeout");
        }
        probe
    }

    /// Whether a worker has a transaction open on the tables of the generation `prefix` of read
    /// model `name`: on SQLite it holds the database's write lock (a batch's transaction begins
    /// IMMEDIATE), so one of ours cannot begin; on PostgreSQL it has uncommitted changes to one
    /// of those tables (a granted ROW EXCLUSIVE lock on it).
    fn writing(&self, probe: &mut SqlConnection, prefix: &str) -> bool {
        match self {
            ReadStore::Sqlite(_) => match probe.transaction(|_| Ok::<(), SqlError>(())) {
                Ok(()) => false,
                Err(error) if error.to_string().contains("locked") => true,
                Err(error) => panic!("probe the SQLite write lock: {error}"),
            },
            ReadStore::Postgres { schema } => {
                let sql = format!(
                    "SELECT COUNT(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = '{schema}' AND c.relname LIKE '{prefix}%'
                     AND l.mode = 'RowExclusiveLock' AND l.granted"
                );
                let rows = probe.read(|tx| tx.query(&sql, &[])).expect("probe the locks");
                count(&rows) > 0
            }
        }
    }
}

/// What a read store records of one read model: its generations and their checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Recorded {
    live: Option<u64>,
    live_position: u64,
    building: Option<u64>,
    building_position: u64,
}

fn recorded(connection: &mut SqlConnection, name: &str) -> Recorded {
    connection
        .read(|tx| -> Result<Recorded, SqlError> {
            let current = meta::read(tx, name)?;
            let position = |tx: &mut dyn SqlTx, generation: Option<meta::Generation>| match generation {
                Some(generation) => meta::checkpoint(tx, name, generation.number).map(|checkpoint| checkpoint.position),
                None => Ok(0),
            };
            Ok(Recorded {
                live: current.live.map(|live| live.number),
                live_position: position(tx, current.live)?,
                building: current.building.map(|building| building.number),
                building_position: position(tx, current.building)?,
            })
        })
        .unwrap_or_else(|error| panic!("read the runtime's record of {name}: {error}"))
}

/// Kills the worker with SIGKILL in the middle of a batch: at the first moment `moment` names
/// one of its read model's generations, given what the read store records, while the worker has
/// a transaction open on that generation's tables. `too_late` says why that moment can no longer
/// come, failing the test. Returns what the read store holds after the kill, once the killed
/// transaction is gone.
fn kill_in_a_batch(
    store: &ReadStore,
    worker: &mut Worker,
    moment: impl Fn(&Recorded) -> Option<u64>,
    too_late: impl Fn(&Recorded) -> Option<String>,
) -> Recorded {
    let mut connection = store.connect(worker.name);
    let mut probe = store.probe(worker.name);
    let deadline = Instant::now() + Duration::from_secs(60);
    let generation = loop {
        let seen = recorded(&mut connection, worker.name);
        if let Some(reason) = too_late(&seen) {
            panic!("{} could not be killed in the middle of a batch: {reason} ({seen:?})", worker.name);
        }
        if let Some(generation) = moment(&seen)
            && store.writing(&mut probe, &table_prefix(worker.name, generation))
        {
            worker.kill();
            break generation;
        }
        assert!(Instant::now() < deadline, "{} was not caught in a batch within 60 s: {seen:?}", worker.name);
        std::thread::sleep(Duration::from_millis(1));
    };
    // PostgreSQL rolls the transaction back once it sees the connection closed.
    let prefix = table_prefix(worker.name, generation);
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.writing(&mut probe, &prefix) {
        assert!(Instant::now() < deadline, "the killed worker's transaction outlived it by 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    recorded(&mut connection, worker.name)
}

/// Waits until every read model of `names` has a live generation at `head` and no build
/// running.
fn wait_converged(store: &ReadStore, names: &[&str], head: u64) {
    for name in names {
        let mut connection = store.connect(name);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let now = recorded(&mut connection, name);
            if now.live.is_some() && now.building.is_none() && now.live_position == head {
                break;
            }
            assert!(now.live_position <= head, "{name} is past the head {head}: {now:?}");
            assert!(Instant::now() < deadline, "{name} in {store:?} did not reach the head {head} in 120 s: {now:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A read model's live generation as values: its checkpoint, and every table's rows, sorted.
#[derive(Debug, PartialEq)]
struct Contents {
    generation: u64,
    position: u64,
    events: u64,
    recorded_at: Option<DateTime<Utc>>,
    tables: Vec<(String, Vec<Row>)>,
}

fn contents(store: &ReadStore, model: &dyn ReadModel) -> Contents {
    let name = model.name();
    store
        .connect(name)
        .read(|tx| -> Result<Contents, SqlError> {
            let live = meta::read(tx, name)?.live.unwrap_or_else(|| panic!("{name} has no live generation"));
            let prefix = meta::live_prefix(tx, name)?.expect("a live prefix");
            let checkpoint = meta::checkpoint(tx, name, live.number)?;
            let mut tables = Vec::new();
            for table in model.tables() {
                let mut rows = tx.query(&format!("SELECT * FROM {prefix}{table}"), &[])?;
                // Any total order will do: both sides are sorted the same way.
                rows.sort_by_cached_key(|row| format!("{row:?}"));
                tables.push(((*table).to_owned(), rows));
            }
            Ok(Contents {
                generation: live.number,
                position: checkpoint.position,
                events: checkpoint.events,
                recorded_at: checkpoint.recorded_at,
                tables,
            })
        })
        .unwrap_or_else(|error| panic!("read {name} in {store:?}: {error}"))
}

/// Asserts that the read model after the kill holds exactly what the clean rebuild holds.
fn assert_same_as_clean_rebuild(name: &str, restarted: &Contents, clean: &Contents) {
    assert_eq!(
        (restarted.position, restarted.events, restarted.recorded_at),
        (clean.position, clean.events, clean.recorded_at),
        "{name}: the checkpoint (position, events applied, recorded at) differs from a clean rebuild's"
    );
    let mut rows = 0;
    for ((table, got), (_, want)) in restarted.tables.iter().zip(&clean.tables) {
        rows += want.len();
        if got != want {
            let first = got.iter().zip(want).position(|(got, want)| got != want).unwrap_or(got.len().min(want.len()));
            panic!(
                "{name}: table {table} differs from a clean rebuild: {} rows against {}; first difference at sorted \
                 row {first}: {:?} against {:?}",
                got.len(),
                want.len(),
                got.get(first),
                want.get(first)
            );
        }
    }
    assert!(rows > 0, "{name} is empty: comparing it proves nothing");
}

/// Asserts that every worker's read model in `live` is at the head, has applied every event
/// once, and holds what the clean rebuild in `clean` holds.
fn assert_same_as_clean_rebuilds(live: &ReadStore, clean: &ReadStore, head: u64) {
    for model in tousu_api::read::read_models().iter().filter(|model| WORKERS.contains(&model.name())) {
        let restarted = contents(live, model.as_ref());
        let rebuilt = contents(clean, model.as_ref());
        assert_eq!((restarted.position, restarted.events), (head, head), "{}: every event once", model.name());
        assert_same_as_clean_rebuild(model.name(), &restarted, &rebuilt);
    }
}

/// The log's head, once the server's reactions to the log have settled.
async fn settled_head(server: &TestServer) -> u64 {
    let mut head = head_of(server).await;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let again = head_of(server).await;
        if again == head {
            return head;
        }
        head = again;
    }
}

async fn head_of(server: &TestServer) -> u64 {
    ok(server.audit(AUDITOR).get_head(pb::GetHeadRequest {}).await, "GetHead").position
}

fn timestamp(instant: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: instant.timestamp(), nanos: 0 }
}

/// What the tables of the live read store say the API should answer at an instant.
#[derive(Debug)]
struct Tables {
    /// Every company the watchlist knows, sorted.
    companies: Vec<String>,
    /// Open obligations due before the instant.
    overdue: u64,
    /// The weeks of the weekly summary, newest first.
    weeks: Vec<String>,
    /// The latest history anchor: its week, the position it covers, the anchor.
    latest_anchor: (String, u64, String),
    /// Every lead.
    leads: u64,
}

fn count(rows: &[Row]) -> u64 {
    rows.first().and_then(|row| row[0].as_i64()).map_or(0, |n| n as u64)
}

fn text(value: &Value) -> String {
    value.as_str().expect("a text").to_owned()
}

fn read_tables(store: &ReadStore, at: DateTime<Utc>) -> Tables {
    let mut companies = store.live("watchlist", |tx, p| tx.query(&format!("SELECT uscc FROM {p}companies"), &[]));
    companies.sort_by_cached_key(|row| text(&row[0]));
    let overdue = store.live("overdue-escalation", |tx, p| {
        tx.query(&format!("SELECT COUNT(*) FROM {p}obligations WHERE due < $1"), &[Value::int(at.timestamp_millis())])
    });
    let mut weeks: Vec<String> = store
        .live("weekly-summary", |tx, p| {
            tx.query(&format!("SELECT week FROM {p}counters UNION SELECT week FROM {p}anchors"), &[])
        })
        .iter()
        .map(|row| text(&row[0]))
        .collect();
    weeks.sort_unstable_by(|a, b| b.cmp(a));
    let anchor = store.live("weekly-summary", |tx, p| {
        tx.query(&format!("SELECT week, position, anchor FROM {p}anchors ORDER BY week DESC LIMIT 1"), &[])
    });
    let anchor = anchor.first().expect("an anchor");
    let leads = store.live("leads", |tx, p| tx.query(&format!("SELECT COUNT(*) FROM {p}leads"), &[]));
    Tables {
        companies: companies.iter().map(|row| text(&row[0])).collect(),
        overdue: count(&overdue),
        weeks,
        latest_anchor: (text(&anchor[0]), anchor[1].as_i64().expect("a position") as u64, text(&anchor[2])),
        leads: count(&leads),
    }
}

/// A server's answers to the read-model queries, every one at the same evaluation instant.
#[derive(Debug)]
struct Answers {
    watchlist: pb::GetWatchlistResponse,
    every_company: pb::GetWatchlistResponse,
    company: pb::WatchlistCompany,
    weeks: pb::ListWeeksResponse,
    first_week: pb::WeeklySummary,
    anchored_week: pb::WeeklySummary,
    overdue: pb::ListOverdueResponse,
    dashboard: pb::Dashboard,
    bulletin: pb::Bulletin,
    complaints: Vec<pb::ComplaintSummary>,
    complaints_total: u64,
}

/// Asks a server every read-model query as the auditor. The queries run at the same time.
async fn answers(server: &TestServer, at: DateTime<Utc>, anchored_week: &str, company: &str) -> Answers {
    let at = Some(timestamp(at));
    let read_models = || server.read_models(AUDITOR);
    let (watchlist, every_company, company, weeks, first_week, anchored_week, overdue, dashboard, bulletin) = tokio::join!(
        async {
            read_models().get_watchlist(pb::GetWatchlistRequest { page_size: 500, at, ..Default::default() }).await
        },
        async {
            let scope = pb::WatchlistScope::Every.into();
            read_models()
                .get_watchlist(pb::GetWatchlistRequest { scope, page_size: 500, at, ..Default::default() })
                .await
        },
        async {
            let uscc = company.to_owned();
            read_models().get_watchlist_company(pb::GetWatchlistCompanyRequest { uscc, at, as_of: None }).await
        },
        async { read_models().list_weeks(pb::ListWeeksRequest::default()).await },
        async {
            let week_start = FIRST_WEEK.to_owned();
            read_models().get_weekly_summary(pb::GetWeeklySummaryRequest { week_start, at, ..Default::default() }).await
        },
        async {
            let week_start = anchored_week.to_owned();
            read_models().get_weekly_summary(pb::GetWeeklySummaryRequest { week_start, at, ..Default::default() }).await
        },
        async { read_models().list_overdue(pb::ListOverdueRequest { page_size: 500, at, ..Default::default() }).await },
        async { read_models().get_dashboard(pb::GetDashboardRequest { at, as_of: None }).await },
        async {
            let month = FIRST_WEEK[..7].to_owned();
            read_models().get_bulletin(pb::GetBulletinRequest { month, page_size: 500, ..Default::default() }).await
        },
    );
    // ListComplaints reads the `leads` read model too. It takes no instant and marks a lead
    // overdue at the server's now; every deadline of a city simulated months ago is long past,
    // so the two servers' calls judge alike.
    let mut complaints = Vec::new();
    let mut page_token = String::new();
    let complaints_total = loop {
        let request = pb::ListComplaintsRequest { page_size: 500, page_token, ..Default::default() };
        let page = ok(server.queries(AUDITOR).list_complaints(request).await, "ListComplaints");
        complaints.extend(page.complaints);
        if page.next_page_token.is_empty() {
            break page.total;
        }
        page_token = page.next_page_token;
    };
    Answers {
        watchlist: ok(watchlist, "GetWatchlist"),
        every_company: ok(every_company, "GetWatchlist of every company"),
        company: ok(company, "GetWatchlistCompany"),
        weeks: ok(weeks, "ListWeeks"),
        first_week: ok(first_week, "GetWeeklySummary of the first week"),
        anchored_week: ok(anchored_week, "GetWeeklySummary of the latest anchored week"),
        overdue: ok(overdue, "ListOverdue"),
        dashboard: ok(dashboard, "GetDashboard"),
        bulletin: ok(bulletin, "GetBulletin"),
        complaints,
        complaints_total,
    }
}

/// Asserts that two servers answered the same, naming the first query that differs.
fn assert_same_answers(first: &Answers, second: &Answers) {
    fn same<T: PartialEq + std::fmt::Debug>(what: &str, first: &T, second: &T) {
        if first != second {
            let (first, second) = (format!("{first:?}"), format!("{second:?}"));
            let shown = |text: &str| text.chars().take(3000).collect::<String>();
            panic!("{what} differs between the two servers:\n{}\nagainst\n{}", shown(&first), shown(&second));
        }
    }
    same("GetWatchlist", &first.watchlist, &second.watchlist);
    same("GetWatchlist of every company", &first.every_company, &second.every_company);
    same("GetWatchlistCompany", &first.company, &second.company);
    same("ListWeeks", &first.weeks, &second.weeks);
    same("GetWeeklySummary of the first week", &first.first_week, &second.first_week);
    same("GetWeeklySummary of the latest anchored week", &first.anchored_week, &second.anchored_week);
    same("ListOverdue", &first.overdue, &second.overdue);
    same("GetDashboard", &first.dashboard, &second.dashboard);
    same("GetBulletin", &first.bulletin, &second.bulletin);
    same("ListComplaints (total)", &first.complaints_total, &second.complaints_total);
    same("ListComplaints", &first.complaints, &second.complaints);
}

/// Asserts that the first server's answers are what the tables say, and not empty.
fn assert_answers_match_tables(answers: &Answers, tables: &Tables, head: u64) {
    let snapshot = |what: &str, snapshot: &Option<pb::ReadModelSnapshot>| {
        let snapshot = snapshot.clone().unwrap_or_else(|| panic!("{what} has a snapshot"));
        assert_eq!(snapshot.position, head, "{what} reads the read model at the head: {snapshot:?}");
        assert!(!snapshot.replayed && !snapshot.cached, "{what}: {snapshot:?}");
    };
    snapshot("GetWatchlist", &answers.watchlist.snapshot);
    assert!(!answers.watchlist.entries.is_empty(), "the simulated city has companies at risk");
    let every: Vec<&str> = answers.every_company.entries.iter().map(|entry| entry.uscc.as_str()).collect();
    let mut every_sorted = every.clone();
    every_sorted.sort_unstable();
    assert_eq!(every_sorted, tables.companies, "GetWatchlist of every company lists the watchlist's companies");
    assert_eq!(answers.every_company.total, tables.companies.len() as u64);
    let company = answers.company.entry.as_ref().map(|entry| entry.uscc.as_str());
    assert_eq!(company, tables.companies.first().map(String::as_str), "GetWatchlistCompany of the first company");
    snapshot("ListWeeks", &answers.weeks.snapshot);
    assert_eq!(answers.weeks.week_starts, tables.weeks, "ListWeeks lists the weeks of the tables");
    let figures = answers.first_week.figures.expect("figures of the first week");
    assert!(figures.received > 0, "leads were received in the first simulated week: {figures:?}");
    let anchor = answers.anchored_week.anchor.clone().expect("the latest week's anchor");
    let (week, position, sha256) = &tables.latest_anchor;
    assert_eq!(&answers.anchored_week.week_start, week);
    assert_eq!((anchor.position, &anchor.sha256), (*position, sha256), "the history anchor is the table's");
    assert_eq!(anchor.position, head, "the latest anchor covers the whole log");
    snapshot("ListOverdue", &answers.overdue.snapshot);
    assert_eq!(answers.overdue.total, tables.overdue, "ListOverdue counts the obligations due before the instant");
    assert!(answers.overdue.total > 0, "the simulated city has overdue obligations");
    snapshot("GetDashboard", &answers.dashboard.snapshot);
    let received: u64 = answers.dashboard.bodies.iter().map(|line| line.received).sum();
    assert!(received >= tables.leads, "住建 alone received every lead: {received} against {} leads", tables.leads);
    assert!(answers.bulletin.total > 0, "the simulated March has a bulletin");
    assert_eq!(answers.complaints_total, tables.leads, "ListComplaints lists every lead of the leads read model");
    assert_eq!(answers.complaints.len() as u64, tables.leads);
}

/// Issue 5 and 6 on three read stores: `live`, which the server queries and whose worker is
/// killed; `clean`, where the same read models are built from zero without a kill; and
/// `offline`, where `tousu projections rebuild --all` builds every read model in memory once
/// the server has stopped.
fn killed_workers_converge_to_a_clean_rebuild_and_two_servers_answer_alike(
    label: &str,
    live: &ReadStore,
    clean: &ReadStore,
    offline: &ReadStore,
) {
    let started = Instant::now();
    let city = City::hold();
    let scratch = Scratch::new(label);
    let data_dir = scratch.0.join("city");
    city.copy_to(&data_dir);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    // An hour between the deadline reactor's passes: its first pass runs at the start, before
    // any read model is built, and finds nothing; so the log grows only by what the test writes
    // and every read model can be compared at its head. The server builds `leads` and
    // `bulletin` itself.
    let options = ServerOptions {
        read_store: Some(live.argument()),
        external_projections: WORKERS.iter().map(|name| (*name).to_owned()).collect(),
        deadline_interval_seconds: Some(3600),
        ..ServerOptions::default()
    };
    let server = runtime.block_on(TestServer::start_in(&data_dir, options));
    let head = runtime.block_on(settled_head(&server));
    assert!(head > BUILD_BATCH as u64, "the log ({head} events) holds more than one build batch");
    let (address, system) = (server.address(), server.token(SYSTEM).to_owned());
    let mut workers: Vec<Worker> = WORKERS
        .iter()
        .map(|name| Worker::start(&scratch.0, "live", name, address, &system, &live.argument()))
        .collect();
    let mut rebuilds: Vec<Worker> = WORKERS
        .iter()
        .map(|name| Worker::start(&scratch.0, "clean", name, address, &system, &clean.argument()))
        .collect();

    // Exactly-once across a crash (issue 5): SIGKILL in the middle of a batch of the first
    // build, after a committed batch, then the same command again.
    let victim = workers.iter_mut().find(|worker| worker.name == KILLED_BUILDING).expect("the worker");
    let killed = kill_in_a_batch(
        live,
        victim,
        |seen| seen.building.filter(|_| seen.live.is_none() && seen.building_position > 0),
        |seen| seen.live.map(|_| format!("it finished its first build of {head} events first: simulate a larger city")),
    );
    assert!(
        killed.live.is_none() && killed.building.is_some() && (1..head).contains(&killed.building_position),
        "the kill landed in the middle of the first build: {killed:?}, head {head}"
    );
    eprintln!(
        "{label}: killed {KILLED_BUILDING} with SIGKILL in a batch of its first build, at checkpoint {} of {head}",
        killed.building_position
    );
    workers.push(Worker::start(&scratch.0, "restarted", KILLED_BUILDING, address, &system, &live.argument()));
    wait_converged(live, &WORKERS, head);
    wait_converged(live, &["leads", "bulletin"], head);
    wait_converged(clean, &WORKERS, head);
    // The restarted worker resumed the interrupted generation from its checkpoint.
    let after = recorded(&mut live.connect(KILLED_BUILDING), KILLED_BUILDING);
    assert_eq!(after.live, killed.building, "the interrupted build was resumed and promoted: {after:?}");
    assert_same_as_clean_rebuilds(live, clean, head);
    eprintln!("{label}: every worker's read model is identical to a clean rebuild ({:.1} s)", elapsed(started));

    // The same while following the log: leads registered through the API about a company of
    // the city (tousu's reactions count them on the company's stream), and a worker killed in
    // the middle of a batch of them, after it has applied some.
    let company = runtime.block_on(async {
        let request = pb::GetWatchlistRequest { scope: pb::WatchlistScope::Every.into(), ..Default::default() };
        ok(server.read_models(AUDITOR).get_watchlist(request).await, "GetWatchlist").entries[0].uscc.clone()
    });
    let registrars: Vec<_> = (0..4).map(|_| server.complaints(REGISTRAR_ZJ)).collect();
    // Registering until told to stop: a worker lets events gather for a while before it writes
    // them, so how long it takes to catch it writing depends on the machine.
    let stop_after = Arc::new(AtomicUsize::new(MAX_FOLLOWED_LEADS));
    let registered = Arc::new(AtomicUsize::new(0));
    let (stop, count) = (stop_after.clone(), registered.clone());
    let registering = runtime.spawn(async move {
        let mut tasks = tokio::task::JoinSet::new();
        for mut registrar in registrars {
            let (company, stop, count) = (company.clone(), stop.clone(), count.clone());
            tasks.spawn(async move {
                while count.fetch_add(1, Ordering::SeqCst) < stop.load(Ordering::SeqCst) {
                    ok(registrar.register(registration(&company)).await, "Register");
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("a registering task");
        }
    });
    let victim = workers.iter_mut().find(|worker| worker.name == KILLED_FOLLOWING).expect("the worker");
    let killed = kill_in_a_batch(
        live,
        victim,
        |seen| seen.live.filter(|_| seen.building.is_none() && seen.live_position > head),
        |_| {
            registering
                .is_finished()
                .then(|| format!("{MAX_FOLLOWED_LEADS} leads were registered and it was never caught writing"))
        },
    );
    let head_at_kill = runtime.block_on(head_of(&server));
    assert!(killed.live_position < head_at_kill, "the worker was behind the log: {killed:?}, head {head_at_kill}");
    eprintln!(
        "{label}: killed {KILLED_FOLLOWING} with SIGKILL in a batch while following the log, at checkpoint {} of {} \
         and growing",
        killed.live_position, head_at_kill
    );
    workers.push(Worker::start(&scratch.0, "restarted", KILLED_FOLLOWING, address, &system, &live.argument()));
    // The restarted worker follows registrations still coming.
    stop_after.store(registered.load(Ordering::SeqCst) + FOLLOWED_LEADS, Ordering::SeqCst);
    runtime.block_on(registering).expect("the registrations");
    let head = runtime.block_on(settled_head(&server));
    wait_converged(live, &WORKERS, head);
    wait_converged(live, &["leads", "bulletin"], head);
    wait_converged(clean, &WORKERS, head);
    for rebuild in &mut rebuilds {
        let status = rebuild.stop();
        assert!(status.success(), "worker {} stops cleanly on SIGTERM: {status:?}\n{}", rebuild.name, rebuild.log());
    }
    assert_same_as_clean_rebuilds(live, clean, head);
    eprintln!("{label}: and again after a kill while following ({:.1} s)", elapsed(started));

    // The API answers from the tables the workers wrote.
    let at = Utc::now().trunc_subsecs(0);
    let tables = read_tables(live, at);
    let company = tables.companies.first().expect("a company").clone();
    let query_started = Instant::now();
    let first = runtime.block_on(answers(&server, at, &tables.latest_anchor.0, &company));
    let first_took = query_started.elapsed();
    assert_answers_match_tables(&first, &tables, head);

    // A second server on a log of its own (empty), every read model external: it builds
    // nothing and answers from the same read store. GetComplaint and GetEnterprise are left
    // out: they read the server's own event log, not the read store.
    let second = runtime.block_on(TestServer::start_with(ServerOptions {
        read_store: Some(live.argument()),
        external_projections: tousu_api::read::read_models().iter().map(|model| model.name().to_owned()).collect(),
        deadline_interval_seconds: Some(3600),
        ..ServerOptions::default()
    }));
    let query_started = Instant::now();
    let second_answers = runtime.block_on(answers(&second, at, &tables.latest_anchor.0, &company));
    let second_took = query_started.elapsed();
    assert_same_answers(&first, &second_answers);
    eprintln!(
        "{label}: two servers behind one read store answer alike (queries took {:.1} s on the first, {:.1} s on the \
         second)",
        first_took.as_secs_f64(),
        second_took.as_secs_f64()
    );
    // Its deadline reactor reads the shared overdue and watchlist read models, whose leads and
    // companies its own log does not hold: it wrote nothing.
    assert_eq!(runtime.block_on(head_of(&second)), 0, "the second server's log stays empty");
    assert_eq!(runtime.block_on(head_of(&server)), head, "the log did not grow after the registrations");

    for worker in workers.iter_mut().filter(|worker| worker.child.is_some()) {
        let status = worker.stop();
        assert!(status.success(), "worker {} stops cleanly on SIGTERM: {status:?}\n{}", worker.name, worker.log());
    }
    drop(second);
    drop(server);

    // A rebuild with the server stopped builds each read model in memory and writes its tables
    // once: the same rows as the writers applying the log batch by batch.
    let rebuilt = run_tousu(&[
        "projections",
        "rebuild",
        "--all",
        "--data-dir",
        &data_dir.to_string_lossy(),
        "--read-store",
        &offline.argument(),
    ]);
    assert!(rebuilt.status.success(), "the offline rebuild succeeds: {}", stderr_of(&rebuilt));
    for model in tousu_api::read::read_models() {
        let (built, applied) = (contents(offline, model.as_ref()), contents(live, model.as_ref()));
        assert_eq!((built.position, built.events), (head, head), "{}: every event once", model.name());
        assert_same_as_clean_rebuild(model.name(), &built, &applied);
    }
    eprintln!("{label}: an offline rebuild in memory holds what the writers hold ({:.1} s)", elapsed(started));
    eprintln!("{label}: done in {:.1} s", elapsed(started));
}

fn elapsed(started: Instant) -> f64 {
    started.elapsed().as_secs_f64()
}

/// Issue 5 (exactly-once across a crash) with the read models in a SQLite directory that the
/// server and the workers open at the same time.
#[test]
fn sqlite_workers_killed_in_a_batch_converge_to_a_clean_rebuild_and_two_servers_answer_alike() {
    let stores = Scratch::new("sqlite-stores");
    let live = ReadStore::Sqlite(stores.0.join("live"));
    let clean = ReadStore::Sqlite(stores.0.join("clean"));
    let offline = ReadStore::Sqlite(stores.0.join("offline"));
    killed_workers_converge_to_a_clean_rebuild_and_two_servers_answer_alike("sqlite", &live, &clean, &offline);
}

/// A schema of its own in the local PostgreSQL, dropped with everything in it when dropped
/// (also when the test fails).
struct PgSchema(String);

impl PgSchema {
    fn create(admin: &mut SqlConnection, label: &str) -> PgSchema {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let name = format!("tousu_e2e_{label}_{}_{}", std::process::id(), nanos % 1_000_000_000);
        admin.transaction(|tx| tx.batch(&format!("CREATE SCHEMA {name}"))).expect("CREATE SCHEMA");
        PgSchema(name)
    }

    fn read_store(&self) -> ReadStore {
        ReadStore::Postgres { schema: self.0.clone() }
    }

    /// The tables in this schema.
    fn tables(&self, admin: &mut SqlConnection) -> Vec<String> {
        let sql =
            format!("SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = '{}'", self.0);
        let rows = admin.read(|tx| tx.query(&sql, &[])).expect("the schema's tables");
        rows.iter().map(|row| text(&row[0])).collect()
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        match SqlConnection::postgres(POSTGRES_URL) {
            Ok(mut admin) => {
                let dropped = admin.transaction(|tx| tx.batch(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0)));
                if let Err(error) = dropped {
                    eprintln!("could not drop schema {}: {error}", self.0);
                }
            }
            Err(error) => eprintln!("could not drop schema {}: {error}", self.0),
        }
    }
}

/// Issue 6 on this machine: the server on the embedded store, three worker processes, the read
/// models in the local PostgreSQL (a schema per read store, dropped at the end); a worker killed
/// with SIGKILL converges to a clean rebuild (exactly-once across a crash, issue 5); the API
/// serves the read models from PostgreSQL, and two servers behind it answer alike.
#[test]
fn postgresql_workers_killed_in_a_batch_converge_to_a_clean_rebuild_and_two_servers_answer_alike() {
    let mut admin = match SqlConnection::postgres(POSTGRES_URL) {
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
    let live_schema = PgSchema::create(&mut admin, "live");
    let clean_schema = PgSchema::create(&mut admin, "clean");
    let offline_schema = PgSchema::create(&mut admin, "offline");
    let (live, clean) = (live_schema.read_store(), clean_schema.read_store());
    let offline = offline_schema.read_store();
    killed_workers_converge_to_a_clean_rebuild_and_two_servers_answer_alike("postgresql", &live, &clean, &offline);

    // The read models are in the schemas the URLs name, each in its own.
    let watchlist = live.live("watchlist", |_, prefix| Ok(format!("{prefix}companies")));
    for schema in [&live_schema, &clean_schema] {
        let tables = schema.tables(&mut admin);
        for table in ["tousu_projection", "tousu_checkpoint", watchlist.as_str()] {
            assert!(tables.iter().any(|name| name == table), "{table} is in schema {}: {tables:?}", schema.0);
        }
    }
    let leads = live.live("leads", |_, prefix| Ok(format!("{prefix}leads")));
    assert!(live_schema.tables(&mut admin).contains(&leads), "the server's own read models are in the live schema");
    assert!(!clean_schema.tables(&mut admin).contains(&leads), "the clean schema holds only the rebuilt models");
}
