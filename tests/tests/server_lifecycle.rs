//! The server as a process: health without a token, reflection, the calendar it is
//! configured with, a SIGKILL during concurrent registrations, and a graceful SIGTERM.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message as _;
use tokio_stream::StreamExt as _;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tousu_api::pb;
use tousu_e2e::flows::{self, handling_lead};
use tousu_e2e::refusal::{Refusal, ok, refused};
use tousu_e2e::requests::{registration, request_id, unique_uscc};
use tousu_e2e::server::{AUDITOR, HANDLER_SJ, OPERATOR, REGISTRAR_ZJ, ServerOptions, TestServer};

const TOUSU_SERVICES: [&str; 5] = [
    "tousu.v1.ComplaintCommands",
    "tousu.v1.EnterpriseCommands",
    "tousu.v1.Queries",
    "tousu.v1.Audit",
    "tousu.v1.ReadModels",
];

#[tokio::test(flavor = "multi_thread")]
async fn health_answers_serving_without_a_token_for_the_server_and_every_service() {
    let server = TestServer::start().await;
    let mut health = server.health();
    for service in std::iter::once("").chain(TOUSU_SERVICES) {
        let answer = ok(health.check(HealthCheckRequest { service: service.to_owned() }).await, "Health.Check");
        assert_eq!(answer.status(), ServingStatus::Serving, "service {service:?}");
    }
    // A service the server does not have is NOT_FOUND, as the standard says.
    let unknown = refused(health.check(HealthCheckRequest { service: "tousu.v1.Nothing".to_owned() }).await);
    unknown.code(Code::NotFound);
}

#[tokio::test(flavor = "multi_thread")]
async fn reflection_lists_the_tousu_services_and_describes_them() {
    let server = TestServer::start().await;
    let MessageResponse::ListServicesResponse(list) = server.reflect(MessageRequest::ListServices(String::new())).await
    else {
        panic!("ListServices answered with something else");
    };
    let names: BTreeSet<&str> = list.service.iter().map(|service| service.name.as_str()).collect();
    for service in TOUSU_SERVICES.into_iter().chain(["grpc.health.v1.Health"]) {
        assert!(names.contains(service), "{service} in {names:?}");
    }

    // `grpcurl describe` works from the file that defines a service: the commands' file
    // declares Register with its request and answer types.
    let symbol = MessageRequest::FileContainingSymbol("tousu.v1.ComplaintCommands".to_owned());
    let MessageResponse::FileDescriptorResponse(files) = server.reflect(symbol).await else {
        panic!("FileContainingSymbol answered with something else");
    };
    let files: Vec<prost_types::FileDescriptorProto> = files
        .file_descriptor_proto
        .iter()
        .map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).expect("a file descriptor"))
        .collect();
    let commands = files
        .iter()
        .flat_map(|file| &file.service)
        .find(|service| service.name() == "ComplaintCommands")
        .unwrap_or_else(|| panic!("ComplaintCommands in {:?}", files.iter().map(|f| f.name()).collect::<Vec<_>>()));
    let register = commands.method.iter().find(|method| method.name() == "Register").expect("Register");
    assert_eq!(register.input_type(), ".tousu.v1.RegisterRequest");
    assert_eq!(register.output_type(), ".tousu.v1.CommandResult");
    // Every tousu service is described, methods and all (roles.rs checks that its table of
    // who may call what names every one of them).
    for service in TOUSU_SERVICES {
        assert!(!server.reflected_methods(service).await.is_empty(), "{service} is described");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pen_1_interp_21_a_penalty_period_reaching_a_year_without_its_notice_is_filed_with_a_provisional_deadline() {
    // On 20 November 2030 (the server's clock), the 90 days of PEN-1 end in February 2031,
    // a year whose State Council notice no server has: the case is filed all the same, and
    // its deadline says it is provisional.
    let options =
        ServerOptions { clock_start: Some("2030-11-20T09:00:00+08:00".to_owned()), ..ServerOptions::default() };
    let server = TestServer::start_with(options).await;
    let id = handling_lead(&server, &unique_uscc(), "SJ-1", pb::Complexity::General).await;
    let mut handler = server.complaints(HANDLER_SJ);
    // Received when the lead was registered, on the server's clock.
    let registered_at = server.complaint(&id).await.timeline.first().and_then(|entry| entry.at);
    let open =
        pb::OpenPenaltyMatterRequest { request_id: request_id(), complaint_id: id.clone(), received_at: registered_at };
    ok(handler.open_penalty_matter(open).await, "OpenPenaltyMatter");
    let verify = pb::VerifyPenaltyMatterRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        outcome: pb::PenaltyVerification::CaseWarranted.into(),
        summary: "存在违法事实".to_owned(),
    };
    ok(handler.verify_penalty_matter(verify).await, "VerifyPenaltyMatter");
    let file = pb::FilePenaltyCaseRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        case_number: "榕市监立〔2030〕1号".to_owned(),
    };
    let result = ok(server.complaints(HANDLER_SJ).file_penalty_case(file).await, "FilePenaltyCase");
    assert_eq!(result.event_types, ["complaint.penalty_case_filed"]);
    let lead = ok(
        server.queries(HANDLER_SJ).get_complaint(pb::GetComplaintRequest { complaint_id: id.clone() }).await,
        "GetComplaint",
    );
    let penalty = lead
        .open_deadlines
        .iter()
        .find(|deadline| deadline.kind == pb::DeadlineKind::PenaltyComplete as i32)
        .expect("the penalty period is open");
    assert!(penalty.provisional, "{penalty:?}");
    assert_eq!(penalty.calendar_version, "2031.provisional");
    let calculation = ok(
        server
            .queries(OPERATOR)
            .calculate_deadline(pb::CalculateDeadlineRequest {
                kind: pb::DeadlineKind::PenaltyComplete.into(),
                start: Some(prost_types::Timestamp { seconds: 1_921_366_800, nanos: 0 }),
                extension_days: 0,
            })
            .await,
        "CalculateDeadline",
    );
    // 1 921 366 800 s is 2030-11-20T09:00:00+08:00: 90 days on is Tuesday 18 February 2031.
    assert_eq!(calculation.due_rfc3339, "2031-02-19T00:00:00+08:00");
    assert!(calculation.provisional);
    assert_eq!(penalty.due, calculation.due, "the filed case's deadline is the calculation's");
}

/// Registers leads from `tasks` concurrent clients until a client's call fails, recording
/// every registration the server acknowledged as (request, complaint id).
struct Registrations {
    acknowledged: Arc<Mutex<Vec<(pb::RegisterRequest, String)>>>,
    failures: Arc<Mutex<Vec<Refusal>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Registrations {
    fn start(server: &TestServer, tasks: usize) -> Registrations {
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..tasks)
            .map(|_| {
                let mut client = server.complaints(REGISTRAR_ZJ);
                let acknowledged = acknowledged.clone();
                let failures = failures.clone();
                let uscc = unique_uscc();
                tokio::spawn(async move {
                    loop {
                        let request = registration(&uscc);
                        match client.register(request.clone()).await {
                            Ok(answer) => {
                                acknowledged.lock().unwrap().push((request, answer.into_inner().complaint_id))
                            }
                            Err(status) => {
                                failures.lock().unwrap().push(Refusal::of(&status));
                                return;
                            }
                        }
                    }
                })
            })
            .collect();
        Registrations { acknowledged, failures, tasks }
    }

    async fn wait_for(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.acknowledged.lock().unwrap().len() < count {
            assert!(Instant::now() < deadline, "fewer than {count} registrations in 30 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits for every client to stop; returns the acknowledged registrations and failures.
    async fn finish(self) -> (Vec<(pb::RegisterRequest, String)>, Vec<Refusal>) {
        for task in self.tasks {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("every client stops once the server is gone")
                .expect("a client task");
        }
        let acknowledged = std::mem::take(&mut *self.acknowledged.lock().unwrap());
        let failures = std::mem::take(&mut *self.failures.lock().unwrap());
        (acknowledged, failures)
    }
}

/// Whether a call failed in the transport (the connection refused, reset or closed), as
/// opposed to a status tousu produced, which always carries tousu's `ErrorInfo`. tonic reports
/// a connection closed under a call as `Unavailable`, `Cancelled`, `Unknown` or, for an HTTP/2
/// error, `Internal`.
fn is_transport_failure(failure: &Refusal) -> bool {
    failure.domain.is_none()
        && matches!(failure.code, Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Internal)
}

/// The leads whose registration the log holds.
async fn registered_leads(server: &TestServer) -> BTreeSet<String> {
    server
        .all_events()
        .await
        .into_iter()
        .filter(|event| event.event_type == "complaint.registered")
        .map(|event| event.stream.strip_prefix("complaint-").expect("a lead stream").to_owned())
        .collect()
}

async fn assert_log_intact(server: &TestServer) {
    // tousu may still be counting leads on their companies after a restart, so the log can
    // grow while it is verified: the report covers at least what was there before.
    let before = server.all_events().await.len() as u64;
    let report = ok(server.audit(AUDITOR).verify(pb::VerifyRequest { stream: String::new() }).await, "Verify");
    assert!(report.intact, "the log verifies: {report:?}");
    assert!(report.first_broken.is_none(), "{report:?}");
    assert!(report.events_checked >= before, "{report:?} against {before} events");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_concurrent_registrations_loses_no_acknowledged_lead() {
    let mut server = TestServer::start().await;
    let registrations = Registrations::start(&server, 16);
    registrations.wait_for(150).await;
    server.kill();
    let (acknowledged, failures) = registrations.finish().await;
    assert_eq!(failures.len(), 16, "every client ends with a failed call");
    for failure in &failures {
        assert!(is_transport_failure(failure), "a call cut off by the kill fails in the transport: {failure:#?}");
    }

    server.restart().await;
    let in_log = registered_leads(&server).await;
    let acknowledged_ids: BTreeSet<String> = acknowledged.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(acknowledged_ids.len(), acknowledged.len(), "every acknowledged lead is a new lead");
    let lost: Vec<&String> = acknowledged_ids.difference(&in_log).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged leads lost: {lost:?}", lost.len(), acknowledged.len());
    for id in &acknowledged_ids {
        let lead = server.complaint(id).await;
        assert_eq!(flows::status(&lead), pb::LeadStatus::Registered, "lead {id}");
    }
    assert_log_intact(&server).await;

    // The same request again after the restart is recognised: the first answer, nothing new.
    let (request, id) = acknowledged.last().expect("some acknowledged registrations").clone();
    let head = server.log_head().await;
    let again = ok(server.complaints(REGISTRAR_ZJ).register(request).await, "Register again");
    assert!(again.replayed, "{again:?}");
    assert_eq!(again.complaint_id, id);
    server.assert_nothing_written_after(head, "a repeated registration after the restart").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_serving_finishes_in_flight_calls_and_exits_zero() {
    let mut server = TestServer::start().await;
    // A reader following the log must not hold the shutdown up.
    let mut follower = ok(
        server.audit(AUDITOR).stream_all(pb::StreamAllRequest { after_position: None, follow: true }).await,
        "StreamAll follow",
    );
    let following = tokio::spawn(async move {
        let mut received = 0usize;
        while let Some(item) = follower.next().await {
            match item {
                Ok(_) => received += 1,
                Err(status) => return (received, Some(Refusal::of(&status))),
            }
        }
        (received, None)
    });
    let registrations = Registrations::start(&server, 8);
    registrations.wait_for(40).await;
    server.terminate();

    // Health turns NOT_SERVING, or the server stops answering at all.
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Ok(ServingStatus::Serving) = server.health_status().await {
        assert!(Instant::now() < deadline, "still SERVING 10 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let exit = server.wait_exit(Duration::from_secs(20)).await;
    let exit = exit.unwrap_or_else(|| panic!("the server did not exit within 20 s of SIGTERM\n{}", server.log()));
    assert!(exit.success(), "exit status {exit:?}\n{}", server.log());
    let (acknowledged, failures) = registrations.finish().await;
    for failure in &failures {
        assert!(is_transport_failure(failure), "a call after the shutdown began is not taken up: {failure:#?}");
    }
    let (received, end) = tokio::time::timeout(Duration::from_secs(10), following)
        .await
        .expect("the follower's stream ends with the server")
        .expect("the follower task");
    assert!(received > 0, "the follower received the events written before the shutdown");
    if let Some(end) = end {
        assert!(matches!(end.code, Code::Unavailable | Code::Unknown | Code::Cancelled), "{end:#?}");
    }

    server.restart().await;
    let in_log = registered_leads(&server).await;
    let acknowledged_ids: BTreeSet<String> = acknowledged.iter().map(|(_, id)| id.clone()).collect();
    // Every call the server took up before the shutdown was answered: the log holds exactly
    // the acknowledged leads, none lost and none written without its answer.
    assert_eq!(in_log, acknowledged_ids, "leads in the log against acknowledged leads");
    assert_log_intact(&server).await;
    let any = acknowledged_ids.iter().next().expect("some registrations");
    assert_eq!(flows::status(&server.complaint(any).await), pb::LeadStatus::Registered);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lead_with_its_timeline_is_answered_in_milliseconds_not_after_a_delayed_ack() {
    // A response written in pieces (headers and data, then trailers) on a socket without
    // TCP_NODELAY waits for the client's delayed ACK: about 40 ms on every call. The bound
    // here is generous for a debug build on a busy machine, and far below that stall.
    let server = TestServer::start().await;
    let id = handling_lead(&server, &unique_uscc(), "SJ-3-1", pb::Complexity::General).await;
    let mut queries = server.queries(AUDITOR);
    let mut durations = Vec::new();
    for _ in 0..21 {
        let started = Instant::now();
        ok(queries.get_complaint(pb::GetComplaintRequest { complaint_id: id.clone() }).await, "GetComplaint");
        durations.push(started.elapsed());
    }
    durations.sort();
    let median = durations[durations.len() / 2];
    assert!(median < Duration::from_millis(25), "median GetComplaint {median:?}; all {durations:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reg_4_a_missing_identity_key_beside_a_log_with_events_stops_the_start_with_instructions() {
    // The identity key keys complainants' identities (interpretation 2): a new one beside the
    // old leads would count the same people twice towards REG-4, GRD-1 and EXT-1.
    let mut server = TestServer::start().await;
    flows::register_lead(&server, &unique_uscc()).await;
    server.kill();
    let key = server.data_dir().join("identity.key");
    std::fs::remove_file(&key).expect("remove identity.key");
    let data_dir = server.data_dir().to_string_lossy().into_owned();
    let output = tousu_e2e::run_tousu(&["serve", "--data-dir", &data_dir, "--listen", "127.0.0.1:0"]);
    assert!(!output.status.success(), "the server must not start");
    let error = tousu_e2e::stderr_of(&output);
    assert!(error.contains("identity.key") && error.contains("restore it from"), "{error}");
    assert!(error.contains("--new-identity-secret"), "{error}");
    assert!(!key.exists(), "no new key was created");
}
