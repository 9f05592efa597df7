//! `tousu-bench store`: durable appends per second and latency with 1, 16 and 64
//! concurrent writers, global-log read throughput, open time and peak memory at millions
//! of events — for the embedded store and, on the same workload in the same run, for a
//! PostgreSQL events table and SQLite in WAL mode, with the ratios.
//!
//! Workload: every append is one event with a ~400-byte JSON payload and an exact
//! expected revision; each writer appends to its own ten streams. Every store is
//! durable before it acknowledges: the embedded store group-commits with `fdatasync`,
//! PostgreSQL commits one transaction per append with `synchronous_commit = on`, and
//! SQLite runs `journal_mode = WAL` with `synchronous = FULL`.
//!
//! Usage: `cargo run --release -p tousu-bench -- store [--seconds S] [--open-events N]
//! [--dir PATH] [--skip-postgres] [--skip-sqlite] [--skip-open]`.

mod api;
mod company;
mod rebuild;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tousu_store::{Actor, EventId, EventStore, ExpectedRevision, ProposedEvent, ReadFrom, StreamName};
use tousu_store_embedded::{EmbeddedOptions, EmbeddedStore};

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const WRITER_COUNTS: [usize; 3] = [1, 16, 64];
const STREAMS_PER_WRITER: usize = 10;

fn out(line: impl AsRef<str>) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", line.as_ref());
    let _ = stdout.flush();
}

struct Args {
    seconds: f64,
    open_events: u64,
    dir: PathBuf,
    postgres: bool,
    sqlite: bool,
    open: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> BenchResult<Args> {
    let mut parsed = Args {
        seconds: 4.0,
        open_events: 5_000_000,
        dir: std::env::temp_dir().join("tousu-bench"),
        postgres: true,
        sqlite: true,
        open: true,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => parsed.seconds = args.next().ok_or("--seconds needs a value")?.parse()?,
            "--open-events" => parsed.open_events = args.next().ok_or("--open-events needs a value")?.parse()?,
            "--dir" => parsed.dir = args.next().ok_or("--dir needs a value")?.into(),
            "--skip-postgres" => parsed.postgres = false,
            "--skip-sqlite" => parsed.sqlite = false,
            "--skip-open" => parsed.open = false,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok(parsed)
}

/// A JSON payload of about 400 bytes, different for every event.
fn payload(writer: usize, n: u64) -> Vec<u8> {
    let mut json = format!(
        concat!(
            "{{\"complaint_id\":\"C2026{writer:04}{n:08}\",\"category\":\"2-3\",",
            "\"body\":\"street-office-{w7}\",\"address\":\"Xingfu Li building {b}, unit {u}\",",
            "\"description\":\"Elevator out of service for {d} days; the property company ",
            "has not responded to repeated requests from residents of the building.\",",
            "\"reporter\":{{\"name\":\"resident-{n}\",\"phone\":\"138{p:08}\"}},",
            "\"deadline\":\"2026-12-{day:02}T18:00:00+08:00\",\"pad\":\""
        ),
        writer = writer,
        n = n,
        w7 = writer % 7,
        b = n % 40,
        u = n % 6,
        d = n % 30,
        p = n % 100_000_000,
        day = 1 + n % 28,
    );
    while json.len() < 396 {
        json.push('x');
    }
    json.push_str("\"}");
    json.into_bytes()
}

fn event_id(writer: usize, n: u64) -> EventId {
    let mix = (n ^ 0x9E37_79B9_7F4A_7C15).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    EventId::from_u128((u128::from(writer as u64 + 1) << 96) | (u128::from(mix) << 32) | u128::from(n as u32))
}

fn proposed(writer: usize, n: u64, at: DateTime<Utc>) -> ProposedEvent {
    ProposedEvent {
        id: event_id(writer, n),
        event_type: "complaint-received".into(),
        schema_version: 1,
        occurred_at: at,
        actor: Actor {
            person: format!("registrar-{writer}"),
            body: "housing-department".into(),
            role: "registrar".into(),
        },
        correlation_id: event_id(writer, n),
        causation_id: event_id(writer, n),
        payload: payload(writer, n),
    }
}

/// Throughput and latency of one write run.
struct WriteRun {
    events: u64,
    seconds: f64,
    p50_us: u64,
    p99_us: u64,
}

impl WriteRun {
    fn rate(&self) -> f64 {
        self.events as f64 / self.seconds
    }

    fn from_latencies(mut latencies: Vec<u32>, seconds: f64) -> Self {
        latencies.sort_unstable();
        let at = |q: f64| -> u64 {
            latencies.get(((latencies.len() as f64 - 1.0) * q).round() as usize).map_or(0, |v| u64::from(*v))
        };
        Self { events: latencies.len() as u64, seconds, p50_us: at(0.50), p99_us: at(0.99) }
    }
}

fn micros(since: Instant) -> u32 {
    since.elapsed().as_micros().min(u128::from(u32::MAX)) as u32
}

async fn embedded_writes(
    store: &Arc<EmbeddedStore>,
    writers: usize,
    duration: Duration,
    run: usize,
) -> BenchResult<WriteRun> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store = Arc::clone(store);
        tasks.push(tokio::spawn(async move {
            let streams: Vec<StreamName> = (0..STREAMS_PER_WRITER)
                .map(|k| StreamName::new(format!("bench-r{run}-w{writer}-s{k}")).expect("valid"))
                .collect();
            let mut revisions = [None::<u64>; STREAMS_PER_WRITER];
            let mut latencies = Vec::with_capacity(1 << 16);
            let now = Utc::now();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let k = (n as usize) % STREAMS_PER_WRITER;
                let expected = revisions[k].map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact);
                let event = proposed(writer + run * 1000, n, now);
                let began = Instant::now();
                let result = store.append(&streams[k], expected, vec![event]).await?;
                latencies.push(micros(began));
                revisions[k] = Some(result.revision);
                n += 1;
            }
            Ok::<_, tousu_store::AppendError>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(WriteRun::from_latencies(latencies, start.elapsed().as_secs_f64()))
}

async fn postgres_connect() -> BenchResult<tokio_postgres::Client> {
    let mut last_error = None;
    for user in ["postgres", "root"] {
        let config = format!("host=127.0.0.1 port=5432 user={user} dbname=test");
        match tokio_postgres::connect(&config, tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                return Ok(client);
            }
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.map_or_else(|| "no user to try".into(), Into::into))
}

const PG_SCHEMA: &str = "
    DROP TABLE IF EXISTS tousu_bench_events;
    CREATE TABLE tousu_bench_events (
        position    BIGSERIAL PRIMARY KEY,
        stream      TEXT NOT NULL,
        revision    BIGINT NOT NULL,
        id          UUID NOT NULL UNIQUE,
        event_type  TEXT NOT NULL,
        occurred_at TIMESTAMPTZ NOT NULL,
        recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        actor       TEXT NOT NULL,
        payload     JSONB NOT NULL,
        UNIQUE (stream, revision)
    );";

async fn postgres_writes(writers: usize, duration: Duration, run: usize) -> BenchResult<WriteRun> {
    let mut clients = Vec::new();
    for _ in 0..writers {
        clients.push(postgres_connect().await?);
    }
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for (writer, mut client) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let insert = client
                .prepare(
                    "INSERT INTO tousu_bench_events
                     (stream, revision, id, event_type, occurred_at, actor, payload)
                     VALUES ($1, $2, ($3::text)::uuid, $4, ($5::text)::timestamptz, $6, ($7::text)::jsonb)",
                )
                .await?;
            let mut revisions = [0i64; STREAMS_PER_WRITER];
            let mut latencies = Vec::with_capacity(1 << 14);
            let now = Utc::now().to_rfc3339();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let k = (n as usize) % STREAMS_PER_WRITER;
                let stream = format!("bench-r{run}-w{writer}-s{k}");
                let id = event_id(writer + run * 1000, n).to_string();
                let body = String::from_utf8(payload(writer, n)).expect("ascii");
                let began = Instant::now();
                let transaction = client.transaction().await?;
                transaction
                    .execute(&insert, &[&stream, &revisions[k], &id, &"complaint-received", &now, &"registrar", &body])
                    .await?;
                transaction.commit().await?;
                latencies.push(micros(began));
                revisions[k] += 1;
                n += 1;
            }
            Ok::<_, tokio_postgres::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(WriteRun::from_latencies(latencies, start.elapsed().as_secs_f64()))
}

fn sqlite_open(path: &Path) -> BenchResult<rusqlite::Connection> {
    let connection = rusqlite::Connection::open(path)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS events (
            position    INTEGER PRIMARY KEY AUTOINCREMENT,
            stream      TEXT NOT NULL,
            revision    INTEGER NOT NULL,
            id          BLOB NOT NULL UNIQUE,
            event_type  TEXT NOT NULL,
            occurred_at TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            actor       TEXT NOT NULL,
            payload     TEXT NOT NULL,
            UNIQUE (stream, revision)
        );",
    )?;
    Ok(connection)
}

/// SQLite has one writer at a time: the writers share one connection behind a lock, each
/// append one `BEGIN IMMEDIATE … COMMIT` transaction.
async fn sqlite_writes(
    connection: &Arc<Mutex<rusqlite::Connection>>,
    writers: usize,
    duration: Duration,
    run: usize,
) -> BenchResult<WriteRun> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let connection = Arc::clone(connection);
        tasks.push(tokio::task::spawn_blocking(move || {
            let mut revisions = [0i64; STREAMS_PER_WRITER];
            let mut latencies = Vec::with_capacity(1 << 14);
            let now = Utc::now().to_rfc3339();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let k = (n as usize) % STREAMS_PER_WRITER;
                let stream = format!("bench-r{run}-w{writer}-s{k}");
                let id = event_id(writer + run * 1000, n);
                let body = String::from_utf8(payload(writer, n)).expect("ascii");
                let began = Instant::now();
                {
                    let mut connection = connection.lock().unwrap_or_else(|e| e.into_inner());
                    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                    transaction
                        .prepare_cached(
                            "INSERT INTO events (stream, revision, id, event_type, occurred_at,
                             recorded_at, actor, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        )?
                        .execute(rusqlite::params![
                            stream,
                            revisions[k],
                            id.as_bytes().as_slice(),
                            "complaint-received",
                            now,
                            Utc::now().to_rfc3339(),
                            "registrar",
                            body
                        ])?;
                    transaction.commit()?;
                }
                latencies.push(micros(began));
                revisions[k] += 1;
                n += 1;
            }
            Ok::<_, rusqlite::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(WriteRun::from_latencies(latencies, start.elapsed().as_secs_f64()))
}

/// Events per second and payload MB per second of one full read of the global log.
struct ReadRun {
    events: u64,
    seconds: f64,
    bytes: u64,
}

async fn embedded_read(store: &EmbeddedStore) -> BenchResult<ReadRun> {
    let start = Instant::now();
    let mut from = ReadFrom::Start;
    let (mut events, mut bytes) = (0u64, 0u64);
    loop {
        let batch = store.read_all(from, 1024).await?;
        let Some(last) = batch.last() else { break };
        from = ReadFrom::After(last.position);
        events += batch.len() as u64;
        bytes += batch.iter().map(|e| e.event.payload.len() as u64).sum::<u64>();
    }
    Ok(ReadRun { events, seconds: start.elapsed().as_secs_f64(), bytes })
}

async fn postgres_read(client: &tokio_postgres::Client) -> BenchResult<ReadRun> {
    let start = Instant::now();
    let select = client
        .prepare(
            "SELECT position, stream, revision, id::text, event_type, occurred_at::text,
                    recorded_at::text, actor, payload::text
             FROM tousu_bench_events WHERE position > $1 ORDER BY position LIMIT 1024",
        )
        .await?;
    let (mut after, mut events, mut bytes) = (0i64, 0u64, 0u64);
    loop {
        let rows = client.query(&select, &[&after]).await?;
        let Some(last) = rows.last() else { break };
        after = last.get(0);
        events += rows.len() as u64;
        bytes += rows.iter().map(|r| r.get::<_, &str>(8).len() as u64).sum::<u64>();
    }
    Ok(ReadRun { events, seconds: start.elapsed().as_secs_f64(), bytes })
}

fn sqlite_read(connection: &rusqlite::Connection) -> BenchResult<ReadRun> {
    let start = Instant::now();
    let mut select = connection.prepare(
        "SELECT position, stream, revision, id, event_type, occurred_at, recorded_at, actor,
                payload FROM events WHERE position > ?1 ORDER BY position LIMIT 1024",
    )?;
    let (mut after, mut events, mut bytes) = (0i64, 0u64, 0u64);
    loop {
        let mut rows = select.query([after])?;
        let mut count = 0;
        while let Some(row) = rows.next()? {
            after = row.get(0)?;
            let _: String = row.get(1)?;
            let _: Vec<u8> = row.get(3)?;
            let body: String = row.get(8)?;
            bytes += body.len() as u64;
            count += 1;
        }
        if count == 0 {
            break;
        }
        events += count;
    }
    Ok(ReadRun { events, seconds: start.elapsed().as_secs_f64(), bytes })
}

/// The process's peak resident memory, from `VmHWM` in `/proc/self/status`, in MiB.
fn peak_memory_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Fills a fresh log with `events` events (ten per stream, appends of ten) as fast as
/// group commit allows.
async fn fill_log(dir: &Path, events: u64) -> BenchResult<()> {
    let store = Arc::new(EmbeddedStore::open_with(dir, EmbeddedOptions::default())?);
    let writers = 32usize;
    let appends = events / 10;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let now = Utc::now();
            let mut k = writer as u64;
            while k < appends {
                let stream = StreamName::new(format!("complaint-C{k:09}")).expect("valid");
                let batch = (0..10).map(|i| proposed(writer, k * 10 + i, now)).collect();
                store.append(&stream, ExpectedRevision::NoStream, batch).await?;
                k += writers as u64;
            }
            Ok::<_, tousu_store::AppendError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    store.close().await?;
    Ok(())
}

/// `open-only DIR`: opens the log, prints `open <seconds> <events> <peak MiB>`, closes.
fn open_only(dir: &Path) -> BenchResult<()> {
    let start = Instant::now();
    let store = EmbeddedStore::open(dir)?;
    let seconds = start.elapsed().as_secs_f64();
    out(format!("open {seconds:.3} {} {:.1}", store.recovery().events, peak_memory_mib()));
    drop(store);
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

fn ratio(ours: f64, theirs: Option<f64>) -> String {
    theirs.map_or("-".into(), |t| format!("{:.1}x", ours / t))
}

async fn store_bench(args: Args) -> BenchResult<()> {
    let duration = Duration::from_secs_f64(args.seconds);
    let _ = std::fs::remove_dir_all(&args.dir);
    std::fs::create_dir_all(&args.dir)?;
    out(format!("machine: {}", machine()));
    out(format!("date: {}", Utc::now().format("%Y-%m-%d %H:%M UTC")));
    out(format!("data dir: {}", args.dir.display()));
    out(format!("each write run: {:.1} s; one event (~400-byte JSON) per append", args.seconds));

    let embedded = Arc::new(EmbeddedStore::open(args.dir.join("embedded"))?);
    let postgres = if args.postgres {
        match postgres_connect().await {
            Ok(client) => {
                client.batch_execute(PG_SCHEMA).await?;
                Some(client)
            }
            Err(error) => {
                out(format!("postgres: skipped, cannot connect: {error}"));
                None
            }
        }
    } else {
        None
    };
    let sqlite = if args.sqlite { Some(Arc::new(Mutex::new(sqlite_open(&args.dir.join("sqlite.db"))?))) } else { None };

    out("");
    out("writers | store    | events/s  | p50 µs | p99 µs | vs postgres | vs sqlite");
    for (run, writers) in WRITER_COUNTS.into_iter().enumerate() {
        let ours = embedded_writes(&embedded, writers, duration, run).await?;
        let pg = match &postgres {
            Some(_) => Some(postgres_writes(writers, duration, run).await?),
            None => None,
        };
        let lite = match &sqlite {
            Some(connection) => Some(sqlite_writes(connection, writers, duration, run).await?),
            None => None,
        };
        let pg_rate = pg.as_ref().map(WriteRun::rate);
        let lite_rate = lite.as_ref().map(WriteRun::rate);
        out(format!(
            "{writers:>7} | embedded | {:>9.0} | {:>6} | {:>6} | {:>11} | {:>9}",
            ours.rate(),
            ours.p50_us,
            ours.p99_us,
            ratio(ours.rate(), pg_rate),
            ratio(ours.rate(), lite_rate)
        ));
        if let Some(pg) = &pg {
            out(format!(
                "{writers:>7} | postgres | {:>9.0} | {:>6} | {:>6} |             |",
                pg.rate(),
                pg.p50_us,
                pg.p99_us
            ));
        }
        if let Some(lite) = &lite {
            out(format!(
                "{writers:>7} | sqlite   | {:>9.0} | {:>6} | {:>6} |             |",
                lite.rate(),
                lite.p50_us,
                lite.p99_us
            ));
        }
    }

    out("");
    out("global log read | events | events/s | payload MB/s");
    let ours = embedded_read(&embedded).await?;
    let print_read = |name: &str, read: &ReadRun| {
        out(format!(
            "{name:<15} | {:>6} | {:>8.0} | {:>6.1}",
            read.events,
            read.events as f64 / read.seconds,
            read.bytes as f64 / read.seconds / 1e6
        ));
    };
    print_read("embedded", &ours);
    if let Some(client) = &postgres {
        let pg = postgres_read(client).await?;
        print_read("postgres", &pg);
        out(format!(
            "read ratio vs postgres: {:.1}x",
            (ours.events as f64 / ours.seconds) / (pg.events as f64 / pg.seconds)
        ));
    }
    if let Some(connection) = &sqlite {
        let lite = {
            let connection = connection.lock().unwrap_or_else(|e| e.into_inner());
            sqlite_read(&connection)?
        };
        print_read("sqlite", &lite);
        out(format!(
            "read ratio vs sqlite: {:.1}x",
            (ours.events as f64 / ours.seconds) / (lite.events as f64 / lite.seconds)
        ));
    }
    embedded.close().await?;
    if let Some(client) = &postgres {
        client.batch_execute("DROP TABLE IF EXISTS tousu_bench_events").await?;
    }
    out(format!("peak memory of the write and read runs: {:.0} MiB", peak_memory_mib()));

    if args.open {
        out("");
        let dir = args.dir.join("open");
        let start = Instant::now();
        fill_log(&dir, args.open_events).await?;
        let fill = start.elapsed().as_secs_f64();
        out(format!(
            "filled a log of {} events (appends of 10) in {fill:.1} s: {:.0} events/s, {:.0} MB on disk",
            args.open_events,
            args.open_events as f64 / fill,
            dir_bytes(&dir) as f64 / 1e6
        ));
        let exe = std::env::current_exe()?;
        for attempt in ["warm page cache", "warm page cache, again"] {
            let output = std::process::Command::new(&exe).arg("open-only").arg(&dir).output()?;
            let text = String::from_utf8_lossy(&output.stdout);
            let fields: Vec<&str> = text.split_whitespace().collect();
            if fields.len() == 4 {
                out(format!(
                    "open ({attempt}): {} s for {} events, peak memory {} MiB (separate process)",
                    fields[1], fields[2], fields[3]
                ));
            } else {
                out(format!("open failed: {text} {}", String::from_utf8_lossy(&output.stderr)));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&args.dir);
    Ok(())
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

/// The same allocator as the `tousu` binary, so that the rebuild and store benches, which run
/// tousu's code in this process, measure it as tousu runs it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> BenchResult<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("store") => {
            let args = parse_args(args)?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(store_bench(args))
        }
        Some("api") => {
            let args = api::parse_api_args(args)?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(api::api_bench(args))
        }
        Some("rebuild") => rebuild::rebuild_bench(rebuild::parse_rebuild_args(args)?),
        Some("company") => company::company_bench(company::parse_company_args(args)?),
        Some("open-only") => open_only(Path::new(&args.next().ok_or("open-only needs a directory")?)),
        _ => Err("usage: tousu-bench store [--seconds S] [--open-events N] [--dir PATH] \
                  [--skip-postgres] [--skip-sqlite] [--skip-open]\n       \
                  tousu-bench api [--seconds S] [--tousu PATH] [--dir PATH] [--query-rate N] [--external-read-models | --remote-workers]\n       \
                  tousu-bench rebuild [--events N] [--dir PATH] [--reuse] [--incremental] [--together-only | --decode-only]\n       \
                  tousu-bench company [--leads N,N,...]"
            .into()),
    }
}
