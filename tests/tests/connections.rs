//! The server's connections under attack (issue 15, item 2): thousands of silent connections
//! or bare HTTP/2 prefaces leave room for a new client, connections beyond the limit are
//! closed, a connection that does not complete its handshake or stays without a call is
//! closed after its deadline, and a server out of file descriptors stays reachable without
//! spinning on its accept loop.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio_stream::StreamExt as _;
use tonic::service::interceptor::InterceptedService;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tousu_api::pb;
use tousu_api::pb::audit_client::AuditClient;
use tousu_e2e::refusal::ok;
use tousu_e2e::requests::{registration, unique_uscc};
use tousu_e2e::server::{AUDITOR, Bearer, REGISTRAR_ZJ, ServerOptions, TestServer};

/// The client connection preface of HTTP/2 (RFC 9113, 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: after the preface, what completes a client's handshake.
const EMPTY_SETTINGS: [u8; 9] = [0, 0, 0, 0x4, 0, 0, 0, 0, 0];

/// Raises this test process's soft limit of open files (to its hard limit at most) so that it
/// can hold the connections of the tests running beside each other.
fn enough_file_descriptors() {
    static RAISED: OnceLock<()> = OnceLock::new();
    RAISED.get_or_init(|| {
        let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
        let line = limits.lines().find(|line| line.starts_with("Max open files")).expect("the open files limit");
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (soft, hard) = (fields[3], fields[4]);
        let wanted: u64 = 16_384;
        if soft.parse::<u64>().is_ok_and(|soft| soft >= wanted) {
            return;
        }
        let target = hard.parse::<u64>().map_or(wanted, |hard| hard.min(wanted));
        let status = std::process::Command::new("prlimit")
            .args(["--pid", &std::process::id().to_string(), &format!("--nofile={target}:{hard}")])
            .status()
            .expect("prlimit runs");
        assert!(status.success(), "prlimit raised the test's limit of open files");
    });
}

/// Opens `count` connections to the server, each sending `bytes` (nothing, a preface, a whole
/// handshake) and then nothing more.
async fn open_connections(server: &TestServer, count: usize, bytes: &[u8]) -> Vec<TcpStream> {
    enough_file_descriptors();
    let mut connections = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = TcpStream::connect(server.address()).await.expect("connect to the server");
        if !bytes.is_empty() {
            stream.write_all(bytes).await.expect("send the first bytes");
        }
        connections.push(stream);
    }
    connections
}

/// Whether the server has closed the connection: what it sent (its SETTINGS) is read and
/// dropped, and the end of the stream (or a reset) found.
fn is_closed(stream: &TcpStream) -> bool {
    let mut buffer = [0u8; 1024];
    loop {
        match stream.try_read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// How long after `since` the server closed the connection, reading what it sends until the
/// end; `None` if it is still open after `limit`.
async fn closed_after(stream: &mut TcpStream, since: Instant, limit: Duration) -> Option<Duration> {
    let mut buffer = [0u8; 1024];
    let read_to_end = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return since.elapsed(),
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(limit, read_to_end).await.ok()
}

/// How long a new client takes to connect and be answered (health, no token).
async fn new_client_answered(server: &TestServer) -> Duration {
    let started = Instant::now();
    let channel = server.connect_new_client().await.expect("a new client connects");
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .expect("a new client is answered");
    assert_eq!(answer.into_inner().status(), ServingStatus::Serving);
    started.elapsed()
}

/// Waits until at most `max` of the connections are open; returns how many are.
async fn wait_open_at_most(connections: &[TcpStream], max: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let open = connections.iter().filter(|stream| !is_closed(stream)).count();
        if open <= max || Instant::now() > deadline {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The CPU time the process has used so far (user and system), from /proc/PID/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the server's /proc/PID/stat");
    // The fields after the command name in parentheses: state is field 3, utime 14, stime 15.
    let (_, after_name) = stat.rsplit_once(')').expect("a command name in parentheses");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    let output = std::process::Command::new("getconf").arg("CLK_TCK").output().expect("getconf runs");
    let per_second: u64 = String::from_utf8_lossy(&output.stdout).trim().parse().expect("CLK_TCK");
    Duration::from_millis(ticks * 1000 / per_second)
}

/// The CPU the server uses over `window`, as a share of one core.
async fn cpu_share(server: &TestServer, window: Duration) -> f64 {
    let before = cpu_time(server.pid());
    tokio::time::sleep(window).await;
    let used = cpu_time(server.pid()) - before;
    used.as_secs_f64() / window.as_secs_f64()
}

fn lines_containing(log: &str, text: &str) -> usize {
    log.lines().filter(|line| line.contains(text)).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_client_is_answered_within_a_second_while_2000_silent_connections_are_open() {
    let server = TestServer::start().await;
    let silent = open_connections(&server, 2000, b"").await;
    let took = new_client_answered(&server).await;
    assert!(took < Duration::from_secs(1), "a new client answered after {took:?}\n{}", server.log());
    // 1,000 connections at most: the test's own client, the new one, and the newest 998 of
    // the silent ones; the oldest were closed for newer ones.
    let open = wait_open_at_most(&silent, 998).await;
    assert!(open <= 998, "{open} silent connections open");
    assert!(is_closed(&silent[0]), "the oldest silent connection is closed");
    assert!(!is_closed(&silent[1999]), "the newest silent connection is open until its handshake deadline");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_client_is_answered_within_a_second_while_2000_connections_that_sent_only_the_preface_are_open() {
    let server = TestServer::start().await;
    let prefaces = open_connections(&server, 2000, PREFACE).await;
    let took = new_client_answered(&server).await;
    assert!(took < Duration::from_secs(1), "a new client answered after {took:?}\n{}", server.log());
    let open = wait_open_at_most(&prefaces, 998).await;
    assert!(open <= 998, "{open} connections with only a preface open");
    assert!(is_closed(&prefaces[0]), "the oldest is closed");
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_limit_are_closed_at_once_and_a_freed_place_is_taken_again() {
    let options = ServerOptions { max_connections: Some(4), ..ServerOptions::default() };
    let server = TestServer::start_with(options).await;
    // The test's own client holds one connection; three clients complete their handshake.
    let mut handshaked = open_connections(&server, 3, &[PREFACE, &EMPTY_SETTINGS].concat()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Every place is taken by a connection past its handshake: the next is closed at once.
    let started = Instant::now();
    let mut beyond = TcpStream::connect(server.address()).await.expect("the kernel accepts the connection");
    let closed = closed_after(&mut beyond, started, Duration::from_secs(2)).await;
    let closed = closed.unwrap_or_else(|| panic!("the connection beyond the limit is still open\n{}", server.log()));
    assert!(closed < Duration::from_millis(500), "closed after {closed:?}");
    assert!(handshaked.iter().all(|stream| !is_closed(stream)), "the open connections stay open");
    assert_eq!(lines_containing(&server.log(), "connection limit reached"), 1, "logged once\n{}", server.log());

    // A client that leaves frees its place for a new one.
    drop(handshaked.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let attempt = async {
            let channel = server.connect_new_client().await.ok()?;
            HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await.ok()
        };
        if attempt.await.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "no new client answered after a place was freed\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_that_does_not_complete_its_handshake_is_closed_after_the_handshake_timeout() {
    let options = ServerOptions {
        handshake_timeout_seconds: Some(1),
        idle_timeout_seconds: Some(60),
        ..ServerOptions::default()
    };
    let server = TestServer::start_with(options).await;
    let started = Instant::now();
    let mut silent = open_connections(&server, 1, b"").await.remove(0);
    let mut preface = open_connections(&server, 1, PREFACE).await.remove(0);
    let mut handshaked = open_connections(&server, 1, &[PREFACE, &EMPTY_SETTINGS].concat()).await.remove(0);
    for (what, stream) in [("silent", &mut silent), ("preface only", &mut preface)] {
        let closed = closed_after(stream, started, Duration::from_secs(5)).await;
        let closed = closed.unwrap_or_else(|| panic!("{what}: still open after 5 s\n{}", server.log()));
        assert!(
            (Duration::from_millis(900)..Duration::from_millis(2500)).contains(&closed),
            "{what}: closed after {closed:?}, the handshake timeout being 1 s"
        );
    }
    // A connection past its handshake is not closed by its deadline.
    assert!(closed_after(&mut handshaked, started, Duration::from_secs(2)).await.is_none(), "handshaked closed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_without_a_call_is_closed_after_the_idle_timeout_and_one_following_the_log_is_not() {
    let options = ServerOptions {
        handshake_timeout_seconds: Some(10),
        idle_timeout_seconds: Some(2),
        ..ServerOptions::default()
    };
    let server = TestServer::start_with(options).await;
    let started = Instant::now();
    let mut idle = open_connections(&server, 1, &[PREFACE, &EMPTY_SETTINGS].concat()).await.remove(0);
    // A reader following the log, on a client of its own, has a call open all along.
    let channel = server.connect_new_client().await.expect("the follower connects");
    let mut follower = AuditClient::new(InterceptedService::new(channel, Bearer::token(server.token(AUDITOR))));
    let after_position = server.log_head().await;
    let mut following =
        ok(follower.stream_all(pb::StreamAllRequest { after_position, follow: true }).await, "StreamAll follow");

    let closed = closed_after(&mut idle, started, Duration::from_secs(6)).await;
    let closed = closed.unwrap_or_else(|| panic!("the idle connection is still open after 6 s\n{}", server.log()));
    assert!(
        (Duration::from_millis(1900)..Duration::from_millis(4000)).contains(&closed),
        "closed after {closed:?}, the idle timeout being 2 s"
    );

    // Past the idle timeout, the follower still receives what is written, and the test's
    // own client, whose connection the server closed as idle, connects again for its call.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let registered =
        ok(server.complaints(REGISTRAR_ZJ).register(registration(&unique_uscc())).await, "Register after idling");
    let event = tokio::time::timeout(Duration::from_secs(10), following.next())
        .await
        .expect("the follower receives the new lead's event")
        .expect("the follow stream goes on")
        .expect("an event");
    assert_eq!(event.stream, format!("complaint-{}", registered.complaint_id));
}

#[tokio::test(flavor = "multi_thread")]
async fn with_1024_file_descriptors_1100_silent_connections_leave_the_server_reachable_and_idle() {
    let options = ServerOptions { file_descriptor_limit: Some(1024), ..ServerOptions::default() };
    let server = TestServer::start_with(options).await;
    let _silent = open_connections(&server, 1100, b"").await;
    let took = new_client_answered(&server).await;
    assert!(took < Duration::from_secs(1), "a new client answered after {took:?}\n{}", server.log());
    let log = server.log();
    assert_eq!(lines_containing(&log, "accepting connections failed"), 1, "out of descriptors, logged once\n{log}");
    let share = cpu_share(&server, Duration::from_secs(3)).await;
    assert!(share < 0.1, "the server used {:.0} % of a core with the connections open", share * 100.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_file_descriptors_with_no_connection_to_close_the_accept_loop_pauses_instead_of_spinning() {
    // More connections allowed than file descriptors: 1,100 clients complete their handshake,
    // none can be closed for a newer one, and those the process has no descriptor for wait in
    // the listen queue while accepting pauses.
    let options =
        ServerOptions { file_descriptor_limit: Some(1024), max_connections: Some(2000), ..ServerOptions::default() };
    let server = TestServer::start_with(options).await;
    let _handshaked = open_connections(&server, 1100, &[PREFACE, &EMPTY_SETTINGS].concat()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let share = cpu_share(&server, Duration::from_secs(3)).await;
    assert!(share < 0.1, "the server used {:.0} % of a core out of file descriptors", share * 100.0);
    let log = server.log();
    assert_eq!(lines_containing(&log, "accepting connections failed"), 1, "out of descriptors, logged once\n{log}");
    // The connections it has go on being served.
    assert_eq!(server.health_status().await.expect("health on the open connection"), ServingStatus::Serving);
}
