//! `tousu-bench rebuild`: how fast the read models are rebuilt from a large log.
//!
//! The bench writes a log of real domain events (leads taken through the general path by the
//! application layer in this process, 64 at a time, on a clock it moves: about eight events per
//! lead plus the company counts), then measures on it:
//!
//! - reading and decoding the whole log once (the floor of any rebuild);
//! - each read model rebuilt alone: events per second;
//! - every read model rebuilt together from one read of the log (`build_all_now`, what
//!   `tousu projections rebuild --all` does): events per second of the log.
//!
//! Read models live in SQLite files (WAL, synchronous = NORMAL) in the bench's directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, TimeDelta};
use tousu_app::{App, DomainSetup, ManualClock, Principal, RequestId};
use tousu_domain::actor::Role;
use tousu_domain::calendar::Calendar;
use tousu_domain::complaint::{
    Channel, CompanyRef, Complainant, ComplaintCommand, Complexity, FeedbackRecipient, Finding, Place, Registration,
    ReviewOutcome, TransferMethod, Urgency,
};
use tousu_domain::identity::IdentitySecret;
use tousu_domain::ids::BodyCode;
use tousu_domain::policy::Policy;
use tousu_domain::taxonomy::Taxonomy;
use tousu_projection::runtime::{BuildMode, build_all_now};
use tousu_projection::{ProjectedEvent, ReadStoreAddress, StoreSource};
use tousu_store::{EventStore, ReadFrom};
use tousu_store_embedded::EmbeddedStore;

use crate::{BenchResult, out};

/// Options of the rebuild bench.
pub struct RebuildArgs {
    /// Events in the log (at least).
    pub events: u64,
    /// The bench's directory (the log is kept there between runs with `--reuse`).
    pub dir: PathBuf,
    /// Reuse a log already written there.
    pub reuse: bool,
    /// How the read models are built: in memory where they can be (the default, as
    /// `tousu projections rebuild` does), or every one with its writer (`--incremental`).
    pub mode: BuildMode,
    /// Skip reading alone and each read model alone (`--together-only`).
    pub together_only: bool,
    /// Only read and decode the log, building nothing (`--decode-only`).
    pub decode_only: bool,
}

pub fn parse_rebuild_args(mut args: impl Iterator<Item = String>) -> BenchResult<RebuildArgs> {
    let mut parsed = RebuildArgs {
        events: 5_000_000,
        dir: std::env::temp_dir().join("tousu-bench-rebuild"),
        reuse: false,
        mode: BuildMode::InMemory,
        together_only: false,
        decode_only: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--events" => parsed.events = args.next().ok_or("--events needs a value")?.parse()?,
            "--dir" => parsed.dir = args.next().ok_or("--dir needs a value")?.into(),
            "--reuse" => parsed.reuse = true,
            "--incremental" => parsed.mode = BuildMode::Incremental,
            "--together-only" => parsed.together_only = true,
            "--decode-only" => parsed.decode_only = true,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok(parsed)
}

const CATEGORIES: [(&str, BodyCode); 6] = [
    ("SJ-3-1", BodyCode::SJ),
    ("XF-6", BodyCode::XF),
    ("GA-2", BodyCode::GA),
    ("ZR-2", BodyCode::ZR),
    ("FG-2", BodyCode::FG),
    ("SJ-2-1", BodyCode::SJ),
];

fn uscc(n: usize) -> String {
    let stem = format!("91350100MA{n:07}");
    "0123456789ABCDEFGHJKLMNPQRTUWXY"
        .chars()
        .map(|check| format!("{stem}{check}"))
        .find(|code| code.parse::<tousu_domain::ids::Uscc>().is_ok())
        .expect("one check character fits")
}

fn principal(body: BodyCode, role: Role) -> Principal {
    Principal { person: format!("bench-{body}-{role}"), body: Some(body), role }
}

/// Takes one lead through the general path: eight commands.
async fn lifecycle(
    app: &App<EmbeddedStore>,
    clock: &ManualClock,
    step: &AtomicU64,
    start: DateTime<FixedOffset>,
    n: u64,
) -> BenchResult<()> {
    let tick = || {
        let k = step.fetch_add(1, Ordering::Relaxed);
        // Two seconds of business time per command: 5M commands span about 116 days.
        clock.set(start + TimeDelta::seconds(i64::try_from(k * 2).unwrap_or(i64::MAX)));
    };
    let request = |what: &str| RequestId::new(&format!("{what}-{n}")).expect("valid request id");
    let (category, body) = CATEGORIES[(n % CATEGORIES.len() as u64) as usize];
    let company = ((n * 7919) % 500) as usize;
    let complainant = (n * 104_729) % 50_000;
    let registrar = principal(BodyCode::ZJ, Role::Registrar);
    let handler = principal(body, Role::Handler);
    let reviewer = principal(body, Role::CityReviewer);
    tick();
    let registration = Registration {
        channel: Channel::Hotline,
        received_at: app.now() - TimeDelta::minutes(30),
        complainant: Complainant::Named {
            name: format!("业主{complainant}"),
            contact: format!("138{complainant:08}"),
            id_number: None,
        },
        content: "电梯停运三天，多次报修物业公司无人处理，请督促维修。".to_owned(),
        company: Some(CompanyRef { uscc: uscc(company).parse()?, name: format!("物业服务公司{company}") }),
        place: Place {
            community: format!("小区{}", company * 3 + (complainant % 3) as usize),
            district: format!("区{}", company % 6),
            street: format!("街道{}", company % 40),
        },
        hotline_ticket: None,
    };
    let reply = app.register(&registrar, &request("register"), registration).await?;
    let lead = reply.complaint_id.ok_or("registration returns the lead")?;
    tick();
    app.classify(
        &registrar,
        &request("classify"),
        &lead,
        category.to_owned(),
        Urgency::Normal,
        Complexity::General,
        Vec::new(),
    )
    .await?;
    let steps: Vec<(Principal, &str, ComplaintCommand)> = vec![
        (
            registrar.clone(),
            "transfer",
            ComplaintCommand::Transfer { to: body, method: TransferMethod::System, note: String::new() },
        ),
        (handler.clone(), "accept", ComplaintCommand::Accept),
        (
            handler.clone(),
            "finding",
            ComplaintCommand::RecordFinding {
                finding: if n.is_multiple_of(2) { Finding::Substantiated } else { Finding::Unsubstantiated },
                summary: "现场核实".to_owned(),
                attribution: None,
            },
        ),
        (
            handler.clone(),
            "feedback",
            ComplaintCommand::GiveFeedback {
                recipient: FeedbackRecipient::Complainant, content: "已处理".to_owned()
            },
        ),
        (handler.clone(), "sign", ComplaintCommand::SignClosure { opinion: "同意办结".to_owned() }),
        (reviewer, "review", ComplaintCommand::ReviewClosure { outcome: ReviewOutcome::Cancelled }),
    ];
    for (who, what, command) in steps {
        tick();
        app.complaint_command(&who, &request(what), &lead, command).await?;
    }
    Ok(())
}

/// Writes the log through the application layer, with its reactions (the company counts)
/// following it; their checkpoint is kept beside the log, which a fresh run removes with it.
async fn write_log(store: Arc<EmbeddedStore>, events: u64, dir: &std::path::Path) -> BenchResult<()> {
    let start: DateTime<FixedOffset> = DateTime::parse_from_rfc3339("2026-03-02T09:00:00+08:00")?;
    let clock = Arc::new(ManualClock::new(start));
    let domain = DomainSetup::new(
        Calendar::builtin()?,
        Policy::default(),
        Taxonomy::builtin()?,
        IdentitySecret::new(b"bench secret".to_vec()),
    );
    let app = App::new(store.clone(), domain, clock.clone());
    let reactions =
        tokio::spawn(tousu_app::reactions::Reactor::new(app.clone(), dir.join("reactions.checkpoint")).run());
    let step = Arc::new(AtomicU64::new(0));
    let next_lead = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (app, clock, step, next_lead, store) =
            (app.clone(), clock.clone(), step.clone(), next_lead.clone(), store.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let head = store.head().await?.map_or(0, |position| position.0);
                if head >= events {
                    return Ok::<(), Box<dyn std::error::Error + Send + Sync>>(());
                }
                let n = next_lead.fetch_add(1, Ordering::Relaxed);
                lifecycle(&app, &clock, &step, start, n).await?;
            }
        }));
    }
    let mut last_report = Instant::now();
    for task in tasks {
        while !task.is_finished() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if last_report.elapsed() > Duration::from_secs(10) {
                let head = store.head().await?.map_or(0, |position| position.0);
                out(format!(
                    "  writing the log: {head} events, {:.0} events/s",
                    head as f64 / started.elapsed().as_secs_f64()
                ));
                last_report = Instant::now();
            }
        }
        task.await??;
    }
    // Let the reactions count the last leads on their companies.
    tokio::time::sleep(Duration::from_secs(2)).await;
    reactions.abort();
    let head = store.head().await?.map_or(0, |position| position.0);
    out(format!(
        "log written: {head} events ({} leads) in {:.1} s",
        next_lead.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

pub fn rebuild_bench(args: RebuildArgs) -> BenchResult<()> {
    // The runtime's log lines say how long each read model spent folding and writing.
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let log_dir = args.dir.join("events");
    if !args.reuse {
        let _ = std::fs::remove_dir_all(&args.dir);
    }
    std::fs::create_dir_all(&args.dir)?;
    let store = Arc::new(EmbeddedStore::open(&log_dir)?);
    let head = runtime.block_on(store.head())?.map_or(0, |position| position.0);
    if head < args.events {
        out(format!("writing a log of {} events of leads taken through the general path…", args.events));
        runtime.block_on(write_log(store.clone(), args.events, &args.dir))?;
    } else {
        out(format!("reusing the log in {}: {head} events", log_dir.display()));
    }
    let head = runtime.block_on(store.head())?.map_or(0, |position| position.0);
    let sources = StoreSource::factory(runtime.handle().clone(), store.clone());

    let read_dir = args.dir.join("read");
    let _ = std::fs::remove_dir_all(&read_dir);
    let address = ReadStoreAddress::Sqlite(read_dir.clone());
    let models = tousu_api::read::read_models();
    if args.decode_only {
        read_and_decode_alone(&runtime, &store)?;
        runtime.block_on(store.close())?;
        return Ok(());
    }
    if !args.together_only {
        read_and_decode_alone(&runtime, &store)?;
        each_model_alone(&runtime, &store, &address, &models, &sources, args.mode)?;
    }
    let started = Instant::now();
    build_all_now(&address, &models, sources.clone(), args.mode, &mut |_, _| {})?;
    let seconds = started.elapsed().as_secs_f64();
    out(format!(
        "all {} read models:  {head} events in {seconds:6.1} s = {:>9.0} events/s of the log (one read, decoded once)",
        models.len(),
        head as f64 / seconds
    ));
    runtime.block_on(store.close())?;
    Ok(())
}

/// The floor of any rebuild: reading and decoding every event once, in one thread.
fn read_and_decode_alone(runtime: &tokio::runtime::Runtime, store: &Arc<EmbeddedStore>) -> BenchResult<()> {
    let started = Instant::now();
    let mut from = ReadFrom::Start;
    let mut decoded = 0u64;
    loop {
        let batch = runtime.block_on(store.read_all(from, 8192))?;
        let Some(last) = batch.last() else { break };
        from = ReadFrom::After(last.position);
        decoded += batch.iter().map(ProjectedEvent::decode).filter(|event| event.position > 0).count() as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    out(format!(
        "read and decode:     {decoded} events in {seconds:6.1} s = {:>9.0} events/s",
        decoded as f64 / seconds
    ));
    Ok(())
}

/// Each read model rebuilt alone.
fn each_model_alone(
    runtime: &tokio::runtime::Runtime,
    store: &Arc<EmbeddedStore>,
    address: &ReadStoreAddress,
    models: &[Arc<dyn tousu_projection::ReadModel>],
    sources: &tousu_projection::SourceFactory,
    mode: BuildMode,
) -> BenchResult<()> {
    let head = runtime.block_on(store.head())?.map_or(0, |position| position.0);
    for model in models {
        let started = Instant::now();
        build_all_now(address, std::slice::from_ref(model), sources.clone(), mode, &mut |_, _| {})?;
        let seconds = started.elapsed().as_secs_f64();
        out(format!(
            "{:<19}  {head} events in {seconds:6.1} s = {:>9.0} events/s (alone)",
            model.name(),
            head as f64 / seconds
        ));
    }
    Ok(())
}
