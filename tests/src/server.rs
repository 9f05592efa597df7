//! A real `tousu serve` process for one test: its own data directory under the system's
//! temporary directory, tokens for every principal the tests act as (issued with the real
//! `tousu token issue`), a free port read from the server's first line of output, and typed
//! gRPC clients that send a bearer token.
//!
//! Starting a server takes a few milliseconds, so every test starts its own: no test depends
//! on what another wrote, and a test may read the whole log and find only its own events.
//! The process is killed and the directory removed when the [`TestServer`] is dropped. A test
//! that prepared a data directory itself (a simulated city) starts the server on it with
//! [`TestServer::start_in`], and keeps the directory.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prost::Message as _;
use tokio_stream::StreamExt as _;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tousu_api::pb;
use tousu_api::pb::admin_client::AdminClient;
use tousu_api::pb::audit_client::AuditClient;
use tousu_api::pb::complaint_commands_client::ComplaintCommandsClient;
use tousu_api::pb::enterprise_commands_client::EnterpriseCommandsClient;
use tousu_api::pb::queries_client::QueriesClient;
use tousu_api::pb::read_models_client::ReadModelsClient;

use crate::{run_tousu, stderr_of, stdout_of, tousu_bin};

/// Someone the tests act as: a role and, where the role has one, a body. The person's name is
/// derived from both, so a timeline names who did what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The role as `tousu token issue --role` spells it.
    pub role: &'static str,
    /// The body code, if any.
    pub body: Option<&'static str>,
}

impl Principal {
    /// The person recorded as the actor of what this principal does.
    pub fn person(&self) -> String {
        match self.body {
            Some(body) => format!("e2e {} {body}", self.role),
            None => format!("e2e {}", self.role),
        }
    }
}

/// 住建's registrar: registers, classifies, notifies and transfers.
pub const REGISTRAR_ZJ: Principal = Principal { role: "registrar", body: Some("ZJ") };
/// 行政审批's registrar: the 12345 hotline.
pub const REGISTRAR_XZ: Principal = Principal { role: "registrar", body: Some("XZ") };
/// 住建's own handling.
pub const HANDLER_ZJ: Principal = Principal { role: "handler", body: Some("ZJ") };
/// 市场监管's handler.
pub const HANDLER_SJ: Principal = Principal { role: "handler", body: Some("SJ") };
/// 城市管理综合执法's handler.
pub const HANDLER_ZF: Principal = Principal { role: "handler", body: Some("ZF") };
/// 行政审批's handler (the 12345 follow-up).
pub const HANDLER_XZ: Principal = Principal { role: "handler", body: Some("XZ") };
/// 发改's handler (fee standards).
pub const HANDLER_FG: Principal = Principal { role: "handler", body: Some("FG") };
/// A street office: countersigns 住建's closures.
pub const STREET_OFFICE_JB: Principal = Principal { role: "street_office", body: Some("JB") };
/// The city 住建: reviews 住建's closures.
pub const CITY_REVIEWER_ZJ: Principal = Principal { role: "city_reviewer", body: Some("ZJ") };
/// The city 市场监管: reviews 市场监管's closures.
pub const CITY_REVIEWER_SJ: Principal = Principal { role: "city_reviewer", body: Some("SJ") };
/// A 住建 official, who decides recommendations to refer (interpretation 9).
pub const OFFICIAL_ZJ: Principal = Principal { role: "official", body: Some("ZJ") };
/// The discipline commission: reads everything (ACC-1).
pub const AUDITOR: Principal = Principal { role: "auditor", body: None };
/// Runs the service.
pub const OPERATOR: Principal = Principal { role: "operator", body: None };
/// tousu's own workers in another process.
pub const SYSTEM: Principal = Principal { role: "system", body: None };

/// Every principal a [`TestServer`] issues a token for when it starts.
pub const PRINCIPALS: [Principal; 14] = [
    REGISTRAR_ZJ,
    REGISTRAR_XZ,
    HANDLER_ZJ,
    HANDLER_SJ,
    HANDLER_ZF,
    HANDLER_XZ,
    HANDLER_FG,
    STREET_OFFICE_JB,
    CITY_REVIEWER_ZJ,
    CITY_REVIEWER_SJ,
    OFFICIAL_ZJ,
    AUDITOR,
    OPERATOR,
    SYSTEM,
];

/// The made-up 2027 year file the test servers load; see its header.
pub fn test_calendar_2027() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/calendar-2027-test.toml")
}

/// Which calendar data a server runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarData {
    /// The shipped years plus the made-up 2027 test file given with `--calendar-year`, as a
    /// deployment runs once the 2027 notice is configured.
    WithTestYear2027,
    /// The shipped years only, as a deployment runs before the 2027 notice: periods reaching
    /// 2027 are provisional (interpretation 21).
    ShippedOnly,
}

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The calendar data.
    pub calendar: CalendarData,
    /// `--max-message-bytes`, if not the server's default.
    pub max_message_bytes: Option<usize>,
    /// `--read-store`: a directory of SQLite files or a `postgres://` URL, if not the data
    /// directory's own `read/`.
    pub read_store: Option<String>,
    /// `--external-projection` for each: read models whose workers run as `tousu worker`
    /// processes, so the server only queries them.
    pub external_projections: Vec<String>,
    /// `--deadline-interval-seconds`, if not the server's default (60).
    pub deadline_interval_seconds: Option<u64>,
    /// `--clock-start`: the business clock starts at this instant (RFC 3339) and runs at real
    /// speed, so that a test runs on a date of its choosing.
    pub clock_start: Option<String>,
    /// `--policy`: a policy file overriding the catalogue's defaults.
    pub policy: Option<PathBuf>,
    /// `--max-connections`, if not the server's default (1,000).
    pub max_connections: Option<usize>,
    /// `--handshake-timeout-seconds`, if not the server's default (10).
    pub handshake_timeout_seconds: Option<u64>,
    /// `--idle-timeout-seconds`, if not the server's default (300).
    pub idle_timeout_seconds: Option<u64>,
    /// The server's limit of open file descriptors (soft and hard), set with `prlimit`.
    pub file_descriptor_limit: Option<u64>,
    /// Serves the data directory from a disk of this many MiB that really fills: a tmpfs
    /// mounted in a user and mount namespace of the server's own (`unshare`, which needs no
    /// root where user namespaces are enabled). The data directory is copied onto it before
    /// the server starts, and what the server left on it is copied back once it exits on its
    /// own (not when it is killed), so that a restart without this option finds it.
    pub small_disk_mib: Option<u64>,
}

impl ServerOptions {
    /// The defaults, with the business clock starting at `start` (RFC 3339).
    pub fn at_clock(start: &str) -> ServerOptions {
        ServerOptions { clock_start: Some(start.to_owned()), ..ServerOptions::default() }
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            calendar: CalendarData::ShippedOnly,
            max_message_bytes: None,
            read_store: None,
            external_projections: Vec::new(),
            deadline_interval_seconds: None,
            clock_start: None,
            policy: None,
            max_connections: None,
            handshake_timeout_seconds: None,
            idle_timeout_seconds: None,
            file_descriptor_limit: None,
            small_disk_mib: None,
        }
    }
}

/// An issued token and its public id (for revocation).
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The id `tousu token list` shows.
    pub id: String,
    /// The bearer token.
    pub token: String,
}

/// Sends `authorization: Bearer <token>`, or nothing.
#[derive(Debug, Clone)]
pub struct Bearer(Option<AsciiMetadataValue>);

impl Bearer {
    /// A bearer token.
    pub fn token(token: &str) -> Bearer {
        Bearer(Some(MetadataValue::try_from(format!("Bearer {token}")).expect("a token is ASCII")))
    }

    /// An `authorization` value exactly as given, e.g. a malformed one.
    pub fn raw(value: &str) -> Bearer {
        Bearer(Some(MetadataValue::try_from(value).expect("an ASCII value")))
    }

    /// No `authorization` metadata at all.
    pub fn none() -> Bearer {
        Bearer(None)
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel that sends a bearer token with every call.
pub type Authed = InterceptedService<Channel, Bearer>;

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A running (or stopped, between [`TestServer::kill`] and [`TestServer::restart`]) server.
#[derive(Debug)]
pub struct TestServer {
    root: PathBuf,
    data_dir: PathBuf,
    options: ServerOptions,
    tokens: HashMap<Principal, IssuedToken>,
    child: Option<Child>,
    address: SocketAddr,
    channel: Channel,
    starts: u32,
}

impl TestServer {
    /// A server with the default options, serving.
    pub async fn start() -> TestServer {
        TestServer::start_with(ServerOptions::default()).await
    }

    /// A server with these options, serving.
    pub async fn start_with(options: ServerOptions) -> TestServer {
        let root = new_root();
        let data_dir = root.join("data");
        std::fs::create_dir_all(&data_dir).expect("create the test data directory");
        TestServer::start_on(root, data_dir, options).await
    }

    /// A server on an existing data directory (a log written before, e.g. by `tousu
    /// simulate`), with these options, serving. Tokens for every test principal are added to
    /// the directory's tokens before it starts. The server's own logs are kept apart, and the
    /// data directory is left in place when the server is dropped.
    pub async fn start_in(data_dir: &Path, options: ServerOptions) -> TestServer {
        let root = new_root();
        std::fs::create_dir_all(&root).expect("create the test directory");
        TestServer::start_on(root, data_dir.to_path_buf(), options).await
    }

    async fn start_on(root: PathBuf, data_dir: PathBuf, options: ServerOptions) -> TestServer {
        let mut tokens = HashMap::new();
        for principal in PRINCIPALS {
            tokens.insert(principal, issue_token(&data_dir, principal));
        }
        let (child, address) = spawn(&root, &data_dir, &options, 1).await;
        let channel = connect(address);
        let server = TestServer { root, data_dir, options, tokens, child: Some(child), address, channel, starts: 1 };
        server.wait_serving().await;
        server
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The address the server listens on now.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The process id of the running server (under `prlimit`, the same; on a small disk, that
    /// of the `unshare` that runs it).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    /// The token issued to a principal at start.
    pub fn token(&self, principal: Principal) -> &str {
        &self.tokens[&principal].token
    }

    /// Issues another token with the real CLI while the server runs.
    pub fn issue_token(&self, principal: Principal) -> IssuedToken {
        issue_token(&self.data_dir, principal)
    }

    /// Revokes a token with the real CLI while the server runs.
    pub fn revoke_token(&self, id: &str) {
        let output = run_tousu(&["token", "revoke", "--data-dir", &self.data_dir.to_string_lossy(), id]);
        assert!(output.status.success(), "tousu token revoke: {}", stderr_of(&output));
    }

    /// A new connection to the server (calls on it share one HTTP/2 connection).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A client of its own, connected now (the HTTP/2 handshake done), as a new client would
    /// connect; [`Self::channel`]'s connection is made once and shared.
    pub async fn connect_new_client(&self) -> Result<Channel, tonic::transport::Error> {
        Endpoint::from_shared(format!("http://{}", self.address))
            .expect("a valid URI")
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .connect()
            .await
    }

    /// Runs `tousu` with these arguments and `--data-dir` where the server is, as an operator
    /// on its machine would: inside the server's mount namespace (`nsenter`) when its data
    /// directory is on a small disk of its own ([`ServerOptions::small_disk_mib`]).
    pub fn tousu_on_data_dir(&self, args: &[&str]) -> std::process::Output {
        let mut command = match self.options.small_disk_mib {
            None => {
                let mut command = Command::new(tousu_bin());
                command.args(args).arg("--data-dir").arg(&self.data_dir);
                command
            }
            Some(_) => {
                let unshare = self.pid();
                let children = std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
                    .expect("the children of the server's unshare");
                let shell = children.split_whitespace().next().expect("unshare's child, the shell").to_owned();
                let mut command = Command::new("nsenter");
                command.args(["--target", &shell, "--user", "--mount", "--"]).arg(tousu_bin()).args(args);
                command.arg("--data-dir").arg(small_disk_mount(&self.root));
                command
            }
        };
        command.output().expect("tousu runs")
    }

    /// A channel sending this principal's token.
    pub fn authed(&self, principal: Principal) -> Authed {
        InterceptedService::new(self.channel(), Bearer::token(self.token(principal)))
    }

    /// A channel sending this `authorization` (or none).
    pub fn authed_with(&self, bearer: Bearer) -> Authed {
        InterceptedService::new(self.channel(), bearer)
    }

    /// Lead commands as a principal.
    pub fn complaints(&self, principal: Principal) -> ComplaintCommandsClient<Authed> {
        ComplaintCommandsClient::new(self.authed(principal))
    }

    /// Company commands as a principal.
    pub fn enterprises(&self, principal: Principal) -> EnterpriseCommandsClient<Authed> {
        EnterpriseCommandsClient::new(self.authed(principal))
    }

    /// Queries as a principal.
    pub fn queries(&self, principal: Principal) -> QueriesClient<Authed> {
        QueriesClient::new(self.authed(principal))
    }

    /// The audit service as a principal.
    pub fn audit(&self, principal: Principal) -> AuditClient<Authed> {
        AuditClient::new(self.authed(principal))
    }

    /// The read models as a principal.
    pub fn read_models(&self, principal: Principal) -> ReadModelsClient<Authed> {
        ReadModelsClient::new(self.authed(principal))
    }

    /// The admin service (projections) as a principal.
    pub fn admin(&self, principal: Principal) -> AdminClient<Authed> {
        AdminClient::new(self.authed(principal))
    }

    /// Waits until every read model has a live generation: a server just started answers
    /// read-model queries with `UNAVAILABLE` until its workers have built them once.
    pub async fn wait_read_models_live(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = self.admin(OPERATOR).list_projections(pb::ListProjectionsRequest {}).await;
            let live = status.is_ok_and(|status| {
                let projections = status.into_inner().projections;
                !projections.is_empty() && projections.iter().all(|projection| projection.live_generation > 0)
            });
            if live {
                return;
            }
            assert!(Instant::now() < deadline, "read models not live after 20 s\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The standard health service (no token).
    pub fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel())
    }

    /// The server's overall health, or the error of asking.
    pub async fn health_status(&self) -> Result<ServingStatus, Status> {
        let response = self.health().check(HealthCheckRequest { service: String::new() }).await?;
        Ok(response.into_inner().status())
    }

    /// Asks the reflection service (v1, no token) one question.
    pub async fn reflect(&self, request: MessageRequest) -> MessageResponse {
        let mut client = ServerReflectionClient::new(self.channel());
        let outbound =
            tokio_stream::iter([ServerReflectionRequest { host: String::new(), message_request: Some(request) }]);
        let mut inbound = client.server_reflection_info(outbound).await.expect("ServerReflectionInfo").into_inner();
        let response = inbound.next().await.expect("one reflection response").expect("a reflection response");
        response.message_response.expect("a message response")
    }

    /// The methods of a service, as reflection describes the file that defines it.
    pub async fn reflected_methods(&self, service: &str) -> Vec<String> {
        let MessageResponse::FileDescriptorResponse(files) =
            self.reflect(MessageRequest::FileContainingSymbol(service.to_owned())).await
        else {
            panic!("FileContainingSymbol {service} answered with something else");
        };
        let (package, name) = service.rsplit_once('.').expect("a qualified service name");
        files
            .file_descriptor_proto
            .iter()
            .map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).expect("a file descriptor"))
            .filter(|file| file.package() == package)
            .flat_map(|file| file.service)
            .filter(|described| described.name() == name)
            .flat_map(|described| described.method.into_iter().map(|method| method.name().to_owned()))
            .collect()
    }

    async fn wait_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.health_status().await {
                Ok(ServingStatus::Serving) => return,
                other if Instant::now() > deadline => {
                    panic!("server at {} not SERVING after 20 s: {other:?}\n{}", self.address, self.log())
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Every event of the log in order, read by the auditor (StreamAll without follow).
    pub async fn all_events(&self) -> Vec<pb::RecordedEvent> {
        self.events_after(None).await
    }

    /// The events after a position (all of them for `None`), read by the auditor.
    pub async fn events_after(&self, after_position: Option<u64>) -> Vec<pb::RecordedEvent> {
        let mut stream = self
            .audit(AUDITOR)
            .stream_all(pb::StreamAllRequest { after_position, follow: false })
            .await
            .expect("StreamAll as auditor")
            .into_inner();
        let mut events = Vec::new();
        while let Some(event) = stream.next().await {
            events.push(event.expect("an event of StreamAll"));
        }
        events
    }

    /// The position of the last event of the log, `None` while it is empty.
    pub async fn log_head(&self) -> Option<u64> {
        self.all_events().await.last().map(|event| event.position)
    }

    /// Asserts that nothing was written after `head` (from [`Self::log_head`]) but tousu's
    /// own reactions to what was there before. tousu counts leads on their companies (and
    /// opens linked leads) from the log, a moment after the command that caused it, so the
    /// log may still grow after a test's last command; every such event names an event before
    /// it as its cause, while a command's own events name its request's correlation instead.
    pub async fn assert_nothing_written_after(&self, head: Option<u64>, what: &str) {
        let events = self.all_events().await;
        let mut causes: HashSet<String> = HashSet::new();
        let mut written = Vec::new();
        for event in events {
            if head.is_some_and(|head| event.position <= head) || causes.contains(&event.causation_id) {
                causes.insert(event.id.clone());
            } else {
                written.push(format!("{} {} {}", event.position, event.stream, event.event_type));
            }
        }
        assert!(written.is_empty(), "{what}: the log grew by {written:?}");
    }

    /// Every event of one stream, oldest first, read by the auditor.
    pub async fn stream_events(&self, stream: &str) -> Vec<pb::RecordedEvent> {
        let mut events: Vec<pb::RecordedEvent> = Vec::new();
        loop {
            let from_revision = events.last().map(|event| event.revision + 1);
            let batch = self
                .audit(AUDITOR)
                .read_stream(pb::ReadStreamRequest {
                    stream: stream.to_owned(),
                    backwards: false,
                    from_revision,
                    limit: 1000,
                })
                .await
                .expect("ReadStream as auditor")
                .into_inner()
                .events;
            let done = batch.len() < 1000;
            events.extend(batch);
            if done {
                return events;
            }
        }
    }

    /// How many events a lead's stream holds.
    pub async fn lead_stream_length(&self, complaint_id: &str) -> usize {
        self.stream_events(&format!("complaint-{complaint_id}")).await.len()
    }

    /// A lead as the auditor sees it.
    pub async fn complaint(&self, complaint_id: &str) -> pb::Complaint {
        self.queries(AUDITOR)
            .get_complaint(pb::GetComplaintRequest { complaint_id: complaint_id.to_owned() })
            .await
            .unwrap_or_else(|status| panic!("GetComplaint {complaint_id}: {status:?}"))
            .into_inner()
    }

    /// Kills the server with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("the server is running");
        child.kill().expect("SIGKILL the server");
        child.wait().expect("reap the server");
    }

    /// Sends SIGTERM, asking for a graceful shutdown; [`Self::wait_exit`] collects the exit.
    pub fn terminate(&self) {
        let status =
            Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().expect("the kill command runs");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the server to exit on its own, at most `timeout`; `None` if it did not.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut().expect("the server was started");
            if let Some(status) = child.try_wait().expect("poll the server process") {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the server again on the same data directory (tokens included), after it
    /// stopped, with the same options.
    pub async fn restart(&mut self) {
        self.restart_with(self.options.clone()).await;
    }

    /// Starts the server again on the same data directory with other options.
    pub async fn restart_with(&mut self, options: ServerOptions) {
        assert!(self.child.is_none(), "restart a stopped server only");
        self.starts += 1;
        let (child, address) = spawn(&self.root, &self.data_dir, &options, self.starts).await;
        self.child = Some(child);
        self.address = address;
        self.channel = connect(address);
        self.options = options;
        self.wait_serving().await;
    }

    /// The server's log (standard error) of its latest start.
    pub fn log(&self) -> String {
        std::fs::read_to_string(log_path(&self.root, self.starts)).unwrap_or_default()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "--- last lines of the tousu server log ({}) ---\n{}",
                self.root.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A new directory name of this test process under the system's temporary directory.
fn new_root() -> PathBuf {
    std::env::temp_dir().join(format!(
        "tousu-e2e-{}-{}-{}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
    ))
}

fn log_path(root: &Path, start: u32) -> PathBuf {
    root.join(format!("server-{start}.log"))
}

/// Where a server started with [`ServerOptions::small_disk_mib`] mounts its small disk (an
/// empty directory outside its mount namespace).
fn small_disk_mount(root: &Path) -> PathBuf {
    root.join("small-disk")
}

/// Run by `sh` in the server's own namespaces, with the mount point, the data directory, the
/// disk's size in MiB and the server's command line: mounts the small disk, copies the data
/// directory onto it, runs the server, and copies back what the server left on the disk
/// (without its admin socket) before exiting with the server's status; 125 if the disk cannot
/// be prepared or copied back.
const SMALL_DISK_SCRIPT: &str = r#"disk=$1 data=$2 size=$3
shift 3
mount -t tmpfs -o "size=${size}m" tousu-small-disk "$disk" || exit 125
cp -a "$data/." "$disk/" || exit 125
"$@"
status=$?
rm -f "$disk/admin.sock"
rm -rf "$data" && mkdir "$data" && cp -a "$disk/." "$data/" || exit 125
exit "$status""#;

/// The command that starts the server, before its arguments: the `tousu` binary, under
/// `prlimit` for a limit of file descriptors, and on a small disk of its own in namespaces
/// of its own (`unshare`).
fn server_command(root: &Path, data_dir: &Path, options: &ServerOptions) -> Command {
    let mut program: Vec<std::ffi::OsString> = Vec::new();
    if let Some(limit) = options.file_descriptor_limit {
        program.extend(["prlimit".into(), format!("--nofile={limit}:{limit}").into()]);
    }
    program.push(tousu_bin().into());
    match options.small_disk_mib {
        None => {
            let mut command = Command::new(&program[0]);
            command.args(&program[1..]);
            command
        }
        Some(mib) => {
            let mount = small_disk_mount(root);
            std::fs::create_dir_all(&mount).expect("create the small disk's mount point");
            let mut command = Command::new("unshare");
            // The pid namespace ends the server with the shell when the test kills `unshare`.
            command.args(["--user", "--map-root-user", "--mount", "--pid", "--fork", "--kill-child"]);
            command.args(["sh", "-c", SMALL_DISK_SCRIPT, "sh"]);
            command.arg(mount).arg(data_dir).arg(mib.to_string()).args(program);
            command
        }
    }
}

fn issue_token(data_dir: &Path, principal: Principal) -> IssuedToken {
    let data_dir = data_dir.to_string_lossy();
    let person = principal.person();
    let mut args = vec!["token", "issue", "--data-dir", &data_dir, "--role", principal.role, "--person", &person];
    if let Some(body) = principal.body {
        args.extend(["--body", body]);
    }
    let output = run_tousu(&args);
    assert!(output.status.success(), "tousu token issue {args:?}: {}", stderr_of(&output));
    let stdout = stdout_of(&output);
    let token = stdout.lines().last().expect("the token on the last line").trim().to_owned();
    // The id is on standard error: "issued token <id> for <person> (...)".
    let stderr = stderr_of(&output);
    let id = stderr
        .split_whitespace()
        .skip_while(|word| *word != "token")
        .nth(1)
        .unwrap_or_else(|| panic!("no token id in {stderr:?}"))
        .to_owned();
    IssuedToken { id, token }
}

async fn spawn(root: &Path, data_dir: &Path, options: &ServerOptions, start: u32) -> (Child, SocketAddr) {
    let log = std::fs::File::create(log_path(root, start)).expect("create the server log");
    let mut command = server_command(root, data_dir, options);
    let served_data_dir = match options.small_disk_mib {
        Some(_) => small_disk_mount(root),
        None => data_dir.to_owned(),
    };
    command.arg("serve").arg("--data-dir").arg(served_data_dir).args(["--listen", "127.0.0.1:0"]);
    if options.calendar == CalendarData::WithTestYear2027 {
        command.arg("--calendar-year").arg(test_calendar_2027());
    }
    if let Some(bytes) = options.max_message_bytes {
        command.args(["--max-message-bytes", &bytes.to_string()]);
    }
    if let Some(read_store) = &options.read_store {
        command.args(["--read-store", read_store]);
    }
    for name in &options.external_projections {
        command.args(["--external-projection", name]);
    }
    if let Some(seconds) = options.deadline_interval_seconds {
        command.args(["--deadline-interval-seconds", &seconds.to_string()]);
    }
    if let Some(start) = &options.clock_start {
        command.args(["--clock-start", start]);
    }
    if let Some(policy) = &options.policy {
        command.arg("--policy").arg(policy);
    }
    if let Some(max) = options.max_connections {
        command.args(["--max-connections", &max.to_string()]);
    }
    if let Some(seconds) = options.handshake_timeout_seconds {
        command.args(["--handshake-timeout-seconds", &seconds.to_string()]);
    }
    if let Some(seconds) = options.idle_timeout_seconds {
        command.args(["--idle-timeout-seconds", &seconds.to_string()]);
    }
    // The environment of the test run must not configure the server under test.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TOUSU_") {
            command.env_remove(name);
        }
    }
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log).spawn().expect("spawn tousu serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let (sender, receiver) = tokio::sync::oneshot::channel();
    // Reads the listening line, then keeps draining standard output so the server never
    // blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sender = Some(sender);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(address) = line.strip_prefix("tousu listening on ")
                && let Some(sender) = sender.take()
            {
                let _ = sender.send(address.trim().parse::<SocketAddr>().map_err(|e| format!("{line:?}: {e}")));
            }
        }
        if let Some(sender) = sender {
            let _ = sender.send(Err("the server closed its standard output before listening".to_owned()));
        }
    });
    match tokio::time::timeout(Duration::from_secs(30), receiver).await {
        Ok(Ok(Ok(address))) => (child, address),
        outcome => {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(log_path(root, start)).unwrap_or_default();
            panic!("tousu serve did not report its address: {outcome:?}\n{log}")
        }
    }
}

fn connect(address: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{address}"))
        .expect("a valid URI")
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .connect_lazy()
}
