//! Health tells the truth (issue 15, item 4): a server whose disk fills refuses the write
//! that failed with UNAVAILABLE, turns health NOT_SERVING, says why in the admin status, and
//! exits with status 74 on its own; started again with room, it has every registration it
//! acknowledged.
//!
//! The disk is a small tmpfs mounted in a user and mount namespace of the server's own
//! (`unshare`), so it really fills; where user namespaces are disabled the test says so and
//! does nothing (`TOUSU_REQUIRE_USER_NAMESPACES=1` makes that a failure).

#![allow(clippy::print_stderr)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tousu_api::pb;
use tousu_e2e::flows;
use tousu_e2e::refusal::{Refusal, ok};
use tousu_e2e::requests::{registration, unique_uscc};
use tousu_e2e::server::{AUDITOR, OPERATOR, REGISTRAR_ZJ, ServerOptions, TestServer};
use tousu_e2e::stdout_of;

/// The exit status of `tousu serve` after the event store refused writes.
const EXIT_STORE_REFUSING_WRITES: i32 = 74;

const TOUSU_SERVICES: [&str; 5] = [
    "tousu.v1.ComplaintCommands",
    "tousu.v1.EnterpriseCommands",
    "tousu.v1.Queries",
    "tousu.v1.Audit",
    "tousu.v1.ReadModels",
];

/// Whether this machine lets an unprivileged user namespace mount a tmpfs.
fn user_namespaces_mount() -> bool {
    std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", "mount -t tmpfs -o size=1m none /mnt"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Registers leads from `tasks` clients until each has a call refused; returns the
/// acknowledged leads and the refusals.
async fn register_until_refused(server: &TestServer, tasks: usize) -> (Vec<String>, Vec<Refusal>) {
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..tasks)
        .map(|_| {
            let mut client = server.complaints(REGISTRAR_ZJ);
            let acknowledged = acknowledged.clone();
            let uscc = unique_uscc();
            tokio::spawn(async move {
                for _ in 0..100_000 {
                    match client.register(registration(&uscc)).await {
                        Ok(answer) => acknowledged.lock().unwrap().push(answer.into_inner().complaint_id),
                        Err(status) => return Refusal::of(&status),
                    }
                }
                panic!("100,000 registrations and the small disk did not fill");
            })
        })
        .collect();
    let mut refusals = Vec::new();
    for client in clients {
        let refusal = tokio::time::timeout(Duration::from_secs(120), client)
            .await
            .expect("the disk fills within two minutes")
            .expect("a registering client");
        refusals.push(refusal);
    }
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
    (acknowledged, refusals)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_turns_health_not_serving_says_why_and_exits_74_and_a_restart_has_every_acknowledged_lead() {
    if !user_namespaces_mount() {
        assert!(
            std::env::var("TOUSU_REQUIRE_USER_NAMESPACES").is_err(),
            "TOUSU_REQUIRE_USER_NAMESPACES is set but `unshare --user --map-root-user --mount` cannot mount a tmpfs"
        );
        eprintln!(
            "skipped: `unshare --user --map-root-user --mount` cannot mount a tmpfs here; set \
             TOUSU_REQUIRE_USER_NAMESPACES=1 to fail instead"
        );
        return;
    }
    let options = ServerOptions { small_disk_mib: Some(4), ..ServerOptions::default() };
    let mut server = TestServer::start_with(options).await;
    let (acknowledged, refusals) = register_until_refused(&server, 8).await;
    assert!(!acknowledged.is_empty(), "leads were registered before the disk filled");
    for refusal in &refusals {
        refusal.code(Code::Unavailable);
    }

    // From the failed write on, health says NOT_SERVING, for the server and every service.
    let mut health = server.health();
    for service in std::iter::once("").chain(TOUSU_SERVICES) {
        let answer = ok(health.check(HealthCheckRequest { service: service.to_owned() }).await, "Health.Check");
        assert_eq!(answer.status(), ServingStatus::NotServing, "service {service:?}\n{}", server.log());
    }
    // The operator is told why, over gRPC and by `tousu projections status` on the machine.
    let status = ok(server.admin(OPERATOR).list_projections(pb::ListProjectionsRequest {}).await, "ListProjections");
    let reason = status.store_refusing_writes_reason;
    assert!(reason.contains("refuses writes until reopened"), "{reason:?}");
    assert!(reason.contains("No space left on device"), "{reason:?}");
    let printed = server.tousu_on_data_dir(&["projections", "status"]);
    assert!(printed.status.success(), "tousu projections status: {printed:?}");
    let printed = stdout_of(&printed);
    assert!(printed.contains("the event store refuses writes") && printed.contains(&reason), "{printed}");

    // Then the process exits on its own, for its supervisor to start it again.
    let exit = server.wait_exit(Duration::from_secs(30)).await;
    let exit = exit.unwrap_or_else(|| panic!("the server did not exit within 30 s\n{}", server.log()));
    assert_eq!(exit.code(), Some(EXIT_STORE_REFUSING_WRITES), "{exit:?}\n{}", server.log());

    // Started again where the disk has room, the store reopens: every acknowledged lead is
    // there, the log verifies, and it takes writes again.
    server.restart_with(ServerOptions::default()).await;
    for id in &acknowledged {
        assert_eq!(flows::status(&server.complaint(id).await), pb::LeadStatus::Registered, "lead {id}");
    }
    let report = ok(server.audit(AUDITOR).verify(pb::VerifyRequest { stream: String::new() }).await, "Verify");
    assert!(report.intact, "the log verifies: {report:?}");
    ok(server.complaints(REGISTRAR_ZJ).register(registration(&unique_uscc())).await, "Register after the restart");
}
