//! `tousu-bench api`: commands per second and latency through the real gRPC server on
//! loopback, with 64 concurrent clients (each on its own HTTP/2 connection).
//!
//! The bench starts the `tousu` binary on a fresh data directory, issues tokens with the CLI,
//! and runs three workloads for a fixed time each:
//!
//! - `transport`: every client calls the standard health check in a loop: the ceiling the
//!   gRPC stack itself sets on these two cores, shared by client and server, and a measure of
//!   the day's machine that involves nothing of tousu's;
//! - `register`: every client registers leads in a loop (each registration also counts the
//!   lead on its company's stream: two appends per command);
//! - `lifecycle`: every client takes leads through the general path: register, classify,
//!   transfer, accept, finding, feedback, sign, city review (eight commands per lead, by
//!   three principals).
//!
//! Leads name one of 500 companies with a skewed distribution (a few companies draw most
//! complaints) and one of 20,000 complainants. After each workload the bench prints the CPU
//! the server (and the worker processes, with `--remote-workers`) and its own clients used,
//! in cores.
//!
//! Where the read models are built: in the server (the default configuration); nowhere, with
//! `--external-read-models` (the command path alone); or, with `--remote-workers`, by one
//! `tousu worker NAME --server` process each, on this machine, into the server's read store.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::Channel;
use tousu_api::pb;
use tousu_api::pb::complaint_commands_client::ComplaintCommandsClient;

use crate::{BenchResult, out};

/// Clients in every workload.
const CLIENTS: usize = 64;
/// Companies complained about.
const COMPANIES: usize = 500;
/// Distinct complainants.
const COMPLAINANTS: u64 = 20_000;

/// Options of the API bench.
pub struct ApiArgs {
    /// Seconds per workload.
    pub seconds: f64,
    /// The `tousu` binary.
    pub tousu: PathBuf,
    /// Where to put the data directory.
    pub dir: PathBuf,
    /// Queries per second of the query workload.
    pub query_rate: u32,
    /// Runs the server with every read model external (`--external-projection`) and no
    /// worker at all: the command path alone, as when the workers run on other machines.
    pub external_read_models: bool,
    /// Runs the server with every read model external and each read model's worker as a
    /// process of its own (`tousu worker NAME --server`) on this machine, writing the
    /// server's read store.
    pub remote_workers: bool,
}

pub fn parse_api_args(mut args: impl Iterator<Item = String>) -> BenchResult<ApiArgs> {
    let exe = std::env::current_exe()?;
    let mut parsed = ApiArgs {
        seconds: 10.0,
        tousu: exe.with_file_name("tousu"),
        dir: std::env::temp_dir().join("tousu-bench-api"),
        query_rate: 5_000,
        external_read_models: false,
        remote_workers: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => parsed.seconds = args.next().ok_or("--seconds needs a value")?.parse()?,
            "--tousu" => parsed.tousu = args.next().ok_or("--tousu needs a path")?.into(),
            "--dir" => parsed.dir = args.next().ok_or("--dir needs a value")?.into(),
            "--query-rate" => parsed.query_rate = args.next().ok_or("--query-rate needs a value")?.parse()?,
            "--external-read-models" => parsed.external_read_models = true,
            "--remote-workers" => parsed.remote_workers = true,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    if parsed.external_read_models && parsed.remote_workers {
        return Err("--external-read-models and --remote-workers exclude each other".into());
    }
    Ok(parsed)
}

/// The read models, by name.
const READ_MODELS: [&str; 5] = ["leads", "overdue-escalation", "watchlist", "weekly-summary", "bulletin"];

/// Where the read models are built in a run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReadModelsAt {
    /// In the server (the default configuration).
    Server,
    /// Nowhere: the command path alone.
    Nowhere,
    /// In a worker process per read model, following the server's log over gRPC.
    Workers,
}

/// Processes a workload's CPU time is read from.
struct Processes {
    server: u32,
    workers: Vec<u32>,
    /// Clock ticks per second of `/proc/PID/stat`.
    ticks_per_second: f64,
}

impl Processes {
    /// User and system CPU seconds of the server, of the workers and of this process (the
    /// clients) so far.
    fn cpu_seconds(&self) -> (f64, f64, f64) {
        let of = |pid: u32| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The fields after the command name, which is in parentheses and may hold spaces.
            let fields: Vec<&str> = stat.rsplit_once(')').map_or(Vec::new(), |(_, rest)| rest.split(' ').collect());
            let ticks = |index: usize| fields.get(index).and_then(|field| field.parse::<u64>().ok()).unwrap_or(0);
            // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ") ".
            (ticks(12) + ticks(13)) as f64 / self.ticks_per_second
        };
        (of(self.server), self.workers.iter().copied().map(of).sum(), of(std::process::id()))
    }
}

/// The CPU the server (and the workers, and the clients) use during a workload.
struct CpuWindow {
    processes: Processes,
    before: (f64, f64, f64),
}

impl CpuWindow {
    fn start(server: &Server) -> CpuWindow {
        let processes = server.processes(ticks_per_second());
        let before = processes.cpu_seconds();
        CpuWindow { processes, before }
    }

    /// The cores used on average over the `elapsed` seconds since the start, as a line.
    fn line(&self, elapsed: f64) -> String {
        let after = self.processes.cpu_seconds();
        let workers = if self.processes.workers.is_empty() {
            String::new()
        } else {
            format!(", read-model workers {:.2} cores", (after.1 - self.before.1) / elapsed)
        };
        format!(
            "  cpu: server {:.2} cores{workers}, clients {:.2} cores",
            (after.0 - self.before.0) / elapsed,
            (after.2 - self.before.2) / elapsed
        )
    }
}

/// Clock ticks per second, as `getconf CLK_TCK` says (100 where it cannot be asked).
fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A valid unified social credit code for company `n`: 17 characters, then the check
/// character found by asking the domain's own validation.
fn uscc(n: usize) -> String {
    let stem = format!("91350100MA{n:07}");
    const ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    ALPHABET
        .chars()
        .map(|check| format!("{stem}{check}"))
        .find(|code| code.parse::<tousu_domain::ids::Uscc>().is_ok())
        .expect("one of the 31 check characters is right")
}

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A company index skewed towards the first ones: u³ puts half the leads on the first
    /// eighth of the companies.
    fn company(&mut self) -> usize {
        ((self.unit().powi(3)) * COMPANIES as f64) as usize % COMPANIES
    }
}

#[derive(Clone)]
struct Bearer(MetadataValue<tonic::metadata::Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Client = ComplaintCommandsClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>>;

struct Server {
    child: Child,
    address: String,
    /// Read-model workers of their own, in `--remote-workers` runs.
    workers: Vec<Child>,
}

impl Server {
    fn processes(&self, ticks_per_second: f64) -> Processes {
        Processes { server: self.child.id(), workers: self.workers.iter().map(Child::id).collect(), ticks_per_second }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for child in self.workers.iter_mut().chain([&mut self.child]) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn issue(tousu: &Path, data: &Path, role: &str, body: &str, person: &str) -> BenchResult<String> {
    let output = Command::new(tousu)
        .args(["token", "issue", "--data-dir"])
        .arg(data)
        .args(["--role", role, "--body", body, "--person", person])
        .output()?;
    if !output.status.success() {
        return Err(format!("token issue failed: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    let stdout = String::from_utf8(output.stdout)?;
    Ok(stdout.lines().last().ok_or("no token printed")?.trim().to_owned())
}

async fn start(tousu: &Path, data: &Path, read_models: ReadModelsAt) -> BenchResult<Server> {
    let mut command = Command::new(tousu);
    command.args(["serve", "--listen", "127.0.0.1:0", "--log", "warn", "--data-dir"]).arg(data);
    if read_models != ReadModelsAt::Server {
        command.args(["--external-projection", &READ_MODELS.join(",")]);
    }
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(tokio::process::ChildStdout::from_std(stdout)?).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await??.ok_or("server exited")?;
    let address = line.strip_prefix("tousu listening on ").ok_or_else(|| format!("unexpected line {line:?}"))?;
    Ok(Server { child, address: address.to_owned(), workers: Vec::new() })
}

/// Starts a worker process per read model, following `server`'s log with `token` and writing
/// the server's own read store (`DATA/read`), so that the server answers queries from it.
/// Each worker's output goes to `worker-NAME.log` beside the data directory.
fn start_workers(server: &mut Server, tousu: &Path, data: &Path, token: &str) -> BenchResult<()> {
    for name in READ_MODELS {
        let child = Command::new(tousu)
            .args(["worker", name, "--server", &server.address, "--token", token, "--read-store"])
            .arg(data.join("read"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(data.with_file_name(format!("worker-{name}.log")))?)
            .spawn()?;
        server.workers.push(child);
    }
    Ok(())
}

async fn client(address: &str, token: &str) -> BenchResult<Client> {
    let channel = Channel::from_shared(format!("http://{address}"))?.connect().await?;
    let bearer = Bearer(format!("Bearer {token}").parse()?);
    Ok(ComplaintCommandsClient::with_interceptor(channel, bearer))
}

fn registration(rng: &mut Rng, request_id: String) -> pb::RegisterRequest {
    let company = rng.company();
    let complainant = rng.next() % COMPLAINANTS;
    pb::RegisterRequest {
        request_id,
        channel: pb::Channel::Hotline.into(),
        received_at: Some(prost_types::Timestamp { seconds: chrono::Utc::now().timestamp() - 600, nanos: 0 }),
        complainant: Some(pb::Complainant {
            anonymous: false,
            name: format!("业主{complainant}"),
            contact: format!("138{complainant:08}"),
            id_number: String::new(),
        }),
        content: "3号楼电梯停运三天，多次报修物业公司无人处理，老人上下楼困难，请尽快督促维修。".to_owned(),
        company: Some(pb::CompanyRef { uscc: uscc(company), name: format!("物业服务公司{company}") }),
        place: Some(pb::Place {
            community: format!("小区{}", company * 3 + (complainant as usize % 3)),
            district: format!("区{}", company % 6),
            street: format!("街道{}", company % 40),
        }),
        hotline_ticket: String::new(),
    }
}

struct Clients {
    registrar: Client,
    handler: Client,
    reviewer: Client,
}

/// Latencies of one workload's commands, in microseconds.
#[derive(Default)]
struct Sample {
    latencies: Vec<u32>,
    errors: u64,
}

async fn timed<T>(sample: &mut Sample, call: impl std::future::Future<Output = Result<T, tonic::Status>>) -> Option<T> {
    let started = Instant::now();
    let result = call.await;
    sample.latencies.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
    match result {
        Ok(value) => Some(value),
        Err(status) => {
            if sample.errors == 0 {
                out(format!("  first error: {status}"));
            }
            sample.errors += 1;
            None
        }
    }
}

async fn run_client(mut clients: Clients, id: usize, lifecycle: bool, until: Instant) -> Sample {
    let mut sample = Sample::default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((id as u64 + 1) * 0x1234_5678_9ABC));
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let key = |step: &str| format!("{}-{id}-{n}-{step}", if lifecycle { "l" } else { "r" });
        let register = registration(&mut rng, key("register"));
        let Some(result) = timed(&mut sample, clients.registrar.register(register)).await else { continue };
        if !lifecycle {
            continue;
        }
        let lead = result.into_inner().complaint_id;
        let sj = pb::Body::Sj as i32;
        let steps_ok = async {
            timed(
                &mut sample,
                clients.registrar.classify(pb::ClassifyRequest {
                    request_id: key("classify"),
                    complaint_id: lead.clone(),
                    category: "SJ-3-1".to_owned(),
                    urgency: pb::Urgency::Normal.into(),
                    complexity: pb::Complexity::General.into(),
                    split: Vec::new(),
                }),
            )
            .await?;
            timed(
                &mut sample,
                clients.registrar.transfer(pb::TransferRequest {
                    request_id: key("transfer"),
                    complaint_id: lead.clone(),
                    to: sj,
                    method: pb::TransferMethod::System.into(),
                    note: String::new(),
                }),
            )
            .await?;
            timed(
                &mut sample,
                clients.handler.accept(pb::AcceptRequest { request_id: key("accept"), complaint_id: lead.clone() }),
            )
            .await?;
            timed(
                &mut sample,
                clients.handler.record_finding(pb::RecordFindingRequest {
                    request_id: key("finding"),
                    complaint_id: lead.clone(),
                    finding: pb::Finding::Substantiated.into(),
                    summary: "现场核实属实".to_owned(),
                    attribution: None,
                }),
            )
            .await?;
            timed(
                &mut sample,
                clients.handler.give_feedback(pb::GiveFeedbackRequest {
                    request_id: key("feedback"),
                    complaint_id: lead.clone(),
                    recipient: pb::FeedbackRecipient::Complainant.into(),
                    content: "已督促维修完毕".to_owned(),
                }),
            )
            .await?;
            timed(
                &mut sample,
                clients.handler.sign_closure(pb::SignClosureRequest {
                    request_id: key("sign"),
                    complaint_id: lead.clone(),
                    opinion: "同意办结".to_owned(),
                }),
            )
            .await?;
            timed(
                &mut sample,
                clients.reviewer.review_closure(pb::ReviewClosureRequest {
                    request_id: key("review"),
                    complaint_id: lead.clone(),
                    cancel: true,
                    reason: String::new(),
                }),
            )
            .await
        };
        let _ = steps_ok.await;
    }
    sample
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn workload(server: &Server, tokens: &[String; 3], lifecycle: bool, seconds: f64) -> BenchResult<()> {
    let mut sets = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        sets.push(Clients {
            registrar: client(&server.address, &tokens[0]).await?,
            handler: client(&server.address, &tokens[1]).await?,
            reviewer: client(&server.address, &tokens[2]).await?,
        });
    }
    let cpu = CpuWindow::start(server);
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let handles: Vec<_> = sets
        .into_iter()
        .enumerate()
        .map(|(id, clients)| tokio::spawn(run_client(clients, id, lifecycle, until)))
        .collect();
    report(if lifecycle { "lifecycle" } else { "register" }, "commands", gather(handles).await?, started, &cpu);
    Ok(())
}

/// The clients' samples, put together.
async fn gather(handles: Vec<tokio::task::JoinHandle<Sample>>) -> BenchResult<Sample> {
    let mut all = Sample::default();
    for handle in handles {
        let sample = handle.await?;
        all.latencies.extend(sample.latencies);
        all.errors += sample.errors;
    }
    Ok(all)
}

/// Prints a workload's rate and latencies, and the CPU the server and the clients used
/// meanwhile.
fn report(workload: &str, calls: &str, mut all: Sample, started: Instant, cpu: &CpuWindow) {
    let elapsed = started.elapsed().as_secs_f64();
    all.latencies.sort_unstable();
    let count = all.latencies.len();
    out(format!(
        "{workload:<10} {CLIENTS:>3} clients  {:>9.0} {calls}/s  p50 {:>6} µs  p99 {:>6} µs  max {:>7} µs  ({count} {calls}, {} errors, {elapsed:.1} s)",
        count as f64 / elapsed,
        percentile(&all.latencies, 50.0),
        percentile(&all.latencies, 99.0),
        all.latencies.last().copied().unwrap_or(0),
        all.errors,
    ));
    out(cpu.line(elapsed));
}

/// The transport's own ceiling on this machine: every client calls the standard health check
/// (`grpc.health.v1.Health/Check`, no token, no store, no domain) in a loop over its own
/// HTTP/2 connection. No command can go faster than this empty call through the same stack,
/// and since it does nothing of tousu's it also tells one day's machine from another's.
async fn transport(server: &Server, seconds: f64) -> BenchResult<()> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        clients.push(HealthClient::new(Channel::from_shared(format!("http://{}", server.address))?.connect().await?));
    }
    let cpu = CpuWindow::start(server);
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let handles: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                let mut sample = Sample::default();
                while Instant::now() < until {
                    timed(&mut sample, client.check(HealthCheckRequest { service: String::new() })).await;
                }
                sample
            })
        })
        .collect();
    report("transport", "calls", gather(handles).await?, started, &cpu);
    Ok(())
}

fn peak_memory_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

pub async fn api_bench(args: ApiArgs) -> BenchResult<()> {
    if !args.tousu.exists() {
        return Err(
            format!("{} not found: build it first (cargo build --release -p tousu)", args.tousu.display()).into()
        );
    }
    let _ = std::fs::remove_dir_all(&args.dir);
    std::fs::create_dir_all(&args.dir)?;
    let data = args.dir.join("data");
    let tokens = [
        issue(&args.tousu, &data, "registrar", "ZJ", "bench-registrar")?,
        issue(&args.tousu, &data, "handler", "SJ", "bench-handler")?,
        issue(&args.tousu, &data, "city_reviewer", "SJ", "bench-reviewer")?,
    ];
    let auditor = issue(&args.tousu, &data, "auditor", "ZJ", "bench-auditor")?;
    let operator = issue(&args.tousu, &data, "operator", "ZJ", "bench-operator")?;
    let read_models = match (args.external_read_models, args.remote_workers) {
        (true, _) => ReadModelsAt::Nowhere,
        (false, true) => ReadModelsAt::Workers,
        (false, false) => ReadModelsAt::Server,
    };
    let mut server = start(&args.tousu, &data, read_models).await?;
    if read_models == ReadModelsAt::Workers {
        start_workers(&mut server, &args.tousu, &data, &auditor)?;
    }
    out(format!(
        "tousu-bench api: {} against {} ({} s per workload; read models {})",
        args.tousu.display(),
        server.address,
        args.seconds,
        match read_models {
            ReadModelsAt::Server => "built in the server",
            ReadModelsAt::Nowhere => "external, not built",
            ReadModelsAt::Workers => "built by a worker process each",
        }
    ));
    transport(&server, args.seconds).await?;
    workload(&server, &tokens, false, args.seconds).await?;
    workload(&server, &tokens, true, args.seconds).await?;
    caught_up(&server, &operator, read_models != ReadModelsAt::Nowhere).await?;
    if read_models != ReadModelsAt::Nowhere {
        queries(&server, &auditor, args.query_rate, args.seconds).await?;
    }
    if let Some(kib) = peak_memory_kib(server.child.id()) {
        out(format!("server peak memory: {:.1} MiB", kib as f64 / 1024.0));
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&args.dir);
    Ok(())
}

/// Waits until tousu's reactions (the company counts, which follow the log) have stopped
/// writing and every read model has applied the whole log, and says how long that took: the
/// query workload then measures queries, not catching up.
async fn caught_up(server: &Server, token: &str, read_models: bool) -> BenchResult<()> {
    use tousu_api::pb::admin_client::AdminClient;
    let channel = Channel::from_shared(format!("http://{}", server.address))?.connect().await?;
    let mut admin = AdminClient::with_interceptor(channel, Bearer(format!("Bearer {token}").parse()?));
    let started = Instant::now();
    let mut behind = 0;
    let (mut head, mut quiet_since, mut written) = (None, Instant::now(), 0);
    loop {
        let statuses = admin.list_projections(pb::ListProjectionsRequest {}).await?.into_inner().projections;
        let lag: u64 = statuses.iter().map(|status| status.lag_events).max().unwrap_or(0);
        behind = behind.max(lag);
        let now_head = statuses.iter().map(|status| status.head).max().unwrap_or(0);
        if head != Some(now_head) {
            written += now_head.saturating_sub(head.unwrap_or(now_head));
            head = Some(now_head);
            quiet_since = Instant::now();
        }
        let live = !read_models
            || (!statuses.is_empty()
                && lag == 0
                && statuses.iter().all(|status| matches!(status.state.as_str(), "live" | "external")));
        if live && quiet_since.elapsed() >= Duration::from_secs(1) {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!("read models still {lag} events behind after 10 minutes").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let behind = if read_models { format!(", read models at most {behind} events behind") } else { String::new() };
    out(format!(
        "quiet {:.1} s after the writes: reactions wrote {written} more events{behind}",
        (quiet_since - started).as_secs_f64()
    ));
    Ok(())
}

/// Query clients of the query workload.
const QUERY_CLIENTS: usize = 32;

/// The query workload: queries at a fixed total rate (open loop: each client sends on its own
/// schedule, and a query due while the client still waits for its previous answer counts from
/// the instant it was due, so a server falling behind shows in the numbers; a query due while
/// the client was idle counts from its sending, since the timer wakes the client up to a
/// millisecond late, and that lateness is reported apart), spread over the read models and the lead queries an office
/// uses all day: the dashboard, a page of the overdue list, this week's summary, a page of
/// the lead list, one lead.
async fn queries(server: &Server, token: &str, rate: u32, seconds: f64) -> BenchResult<()> {
    use tousu_api::pb::queries_client::QueriesClient;
    use tousu_api::pb::read_models_client::ReadModelsClient;
    let mut leads = Vec::new();
    {
        let channel = Channel::from_shared(format!("http://{}", server.address))?.connect().await?;
        let mut queries = QueriesClient::with_interceptor(channel, Bearer(format!("Bearer {token}").parse()?));
        let page = queries.list_complaints(pb::ListComplaintsRequest { page_size: 500, ..Default::default() }).await?;
        leads.extend(page.into_inner().complaints.into_iter().map(|lead| lead.complaint_id));
    }
    if leads.is_empty() {
        return Err("no leads to query".into());
    }
    let week = chrono::Utc::now().with_timezone(&tousu_domain::calendar::shanghai()).date_naive().to_string();
    let interval = Duration::from_secs_f64(QUERY_CLIENTS as f64 / f64::from(rate));
    let cpu = CpuWindow::start(server);
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let mut handles = Vec::new();
    for client in 0..QUERY_CLIENTS {
        let channel = Channel::from_shared(format!("http://{}", server.address))?.connect().await?;
        let bearer = Bearer(format!("Bearer {token}").parse()?);
        let mut read_models = ReadModelsClient::with_interceptor(channel.clone(), bearer.clone());
        let mut queries = QueriesClient::with_interceptor(channel, bearer);
        let (leads, week) = (leads.clone(), week.clone());
        handles.push(tokio::spawn(async move {
            let mut sample = Sample::default();
            let first = tokio::time::Instant::now() + interval.mul_f64(client as f64 / QUERY_CLIENTS as f64);
            let mut ticker = tokio::time::interval_at(first, interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut n = client;
            let mut service: [Vec<u32>; 5] = Default::default();
            let mut timer_late = Vec::new();
            let mut free_since = tokio::time::Instant::now();
            while Instant::now() < until {
                let due = ticker.tick().await;
                n += QUERY_CLIENTS;
                let sent = Instant::now();
                // Open loop: a query due while this client still waited for its previous answer
                // counts from when it was due (the server's backlog). A query due while the
                // client was idle counts from when it was sent: the runtime's timer wakes the
                // client up to a millisecond late, and that is the bench's, not the server's.
                let start = if free_since > due {
                    due.into_std()
                } else {
                    timer_late.push(u32::try_from(due.elapsed().as_micros()).unwrap_or(u32::MAX));
                    sent
                };
                let result = match n % 5 {
                    0 => read_models.get_dashboard(pb::GetDashboardRequest::default()).await.map(drop),
                    1 => read_models
                        .list_overdue(pb::ListOverdueRequest { page_size: 20, ..Default::default() })
                        .await
                        .map(drop),
                    2 => read_models
                        .get_weekly_summary(pb::GetWeeklySummaryRequest {
                            week_start: week.clone(),
                            ..Default::default()
                        })
                        .await
                        .map(drop),
                    3 => queries
                        .list_complaints(pb::ListComplaintsRequest { page_size: 20, ..Default::default() })
                        .await
                        .map(drop),
                    _ => queries
                        .get_complaint(pb::GetComplaintRequest { complaint_id: leads[n % leads.len()].clone() })
                        .await
                        .map(drop),
                };
                sample.latencies.push(u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX));
                service[n % 5].push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                free_since = tokio::time::Instant::now();
                if let Err(status) = result {
                    if sample.errors == 0 {
                        out(format!("  first query error: {status}"));
                    }
                    sample.errors += 1;
                }
            }
            (sample, service, timer_late)
        }));
    }
    let mut all = Sample::default();
    let mut service: [Vec<u32>; 5] = Default::default();
    let mut timer_late = Vec::new();
    for handle in handles {
        let (sample, kinds, late) = handle.await?;
        timer_late.extend(late);
        all.latencies.extend(sample.latencies);
        all.errors += sample.errors;
        for (all_of_kind, of_kind) in service.iter_mut().zip(kinds) {
            all_of_kind.extend(of_kind);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.latencies.sort_unstable();
    out(format!(
        "{:<10} {:>3} clients  {:>9.0} queries/s   p50 {:>6} µs  p99 {:>6} µs  max {:>7} µs  ({} queries, {} errors, target {rate}/s)",
        "queries",
        QUERY_CLIENTS,
        all.latencies.len() as f64 / elapsed,
        percentile(&all.latencies, 50.0),
        percentile(&all.latencies, 99.0),
        all.latencies.last().copied().unwrap_or(0),
        all.latencies.len(),
        all.errors,
    ));
    out(cpu.line(elapsed));
    timer_late.sort_unstable();
    out(format!(
        "  {} queries sent by an idle client after their due instant (the timer's lateness, not counted): p50 {} µs, p99 {} µs",
        timer_late.len(),
        percentile(&timer_late, 50.0),
        percentile(&timer_late, 99.0),
    ));
    // Each kind's service time, from sending the query to its answer (without the wait for
    // its turn that the open-loop latency above includes).
    let names = ["dashboard", "overdue page", "week summary", "lead list page", "one lead"];
    for (name, mut latencies) in names.into_iter().zip(service) {
        latencies.sort_unstable();
        out(format!(
            "  {name:<15} {:>7} queries  service p50 {:>6} µs  p99 {:>7} µs",
            latencies.len(),
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
        ));
    }
    Ok(())
}
