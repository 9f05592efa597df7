//! The commission's command-line tools on a real data directory: `tousu audit verify` checks
//! the hash chains and every weekly history anchor (REG-3) against the log and names the week
//! whose anchor was altered; `tousu audit export` writes every event; `tousu projections
//! status` and `rebuild` work on the data directory when no server runs on it.

use std::time::Duration;

use tousu_e2e::flows::register_lead;
use tousu_e2e::requests::unique_uscc;
use tousu_e2e::server::TestServer;
use tousu_e2e::{run_tousu, stderr_of, stdout_of};
use tousu_projection::{ReadStoreAddress, Value, meta};

#[tokio::test(flavor = "multi_thread")]
async fn reg_3_audit_verify_checks_chains_and_weekly_anchors_and_names_an_altered_week() {
    let mut server = TestServer::start().await;
    let uscc = unique_uscc();
    for _ in 0..5 {
        register_lead(&server, &uscc).await;
    }
    let registered = server.all_events().await.len();
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(20)).await.is_some_and(|status| status.success()));
    let data_dir = server.data_dir().to_string_lossy().into_owned();

    // With the server stopped, the read models are rebuilt on the data directory itself, so
    // the weekly summary covers the whole log.
    let output = run_tousu(&["projections", "rebuild", "--all", "--data-dir", &data_dir]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let output = run_tousu(&["projections", "status", "--data-dir", &data_dir]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    for name in ["leads", "overdue-escalation", "watchlist", "weekly-summary", "bulletin"] {
        assert!(stdout_of(&output).lines().any(|line| line.starts_with(name)), "{name} in\n{}", stdout_of(&output));
    }

    let output = run_tousu(&["audit", "verify", "--data-dir", &data_dir]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let report = stdout_of(&output);
    assert!(report.contains("1 of 1 weekly history anchors recorded match the log"), "{report}");
    // The registrations, and the company counts tousu's reactions appended with them.
    let events: usize = report
        .strip_prefix("intact: ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no event count in {report}"));
    assert!(events >= registered && registered >= 5, "{events} events in the log, {registered} seen while serving");

    let output = run_tousu(&["audit", "export", "--data-dir", &data_dir]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output).lines().count(), events, "one JSON line per event");

    // The read models replayed to an instant: nothing before the registrations, all five after.
    let received = |until: &str| -> u64 {
        let output = run_tousu(&["audit", "replay", "--data-dir", &data_dir, "--until", until]);
        assert!(output.status.success(), "{}", stderr_of(&output));
        let document: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("replay prints JSON");
        document["leads"]["bodies"]
            .as_array()
            .expect("the dashboard's lines")
            .iter()
            .map(|line| line["counts"]["received"].as_u64().expect("a count"))
            .sum()
    };
    assert_eq!(received("2026-01-01T00:00:00+08:00"), 0);
    let tomorrow = (chrono::Utc::now() + chrono::TimeDelta::days(1)).to_rfc3339();
    assert_eq!(received(&tomorrow), 5);

    // Alter the anchor the weekly summary recorded: verification refuses, naming the week.
    let address = ReadStoreAddress::Sqlite(server.data_dir().join("read"));
    let mut connection = address.connect("weekly-summary").expect("the read store opens");
    connection
        .transaction(|tx| {
            let prefix = meta::live_prefix(tx, "weekly-summary")?.expect("a live generation");
            tx.execute(&format!("UPDATE {prefix}anchors SET anchor = $1"), &[Value::text("0".repeat(64))]).map(drop)
        })
        .expect("the anchor is altered");
    drop(connection);
    let output = run_tousu(&["audit", "verify", "--data-dir", &data_dir]);
    assert!(!output.status.success(), "an altered anchor must not verify");
    let message = stderr_of(&output);
    assert!(message.contains("history anchor of the week of"), "{message}");
    assert!(message.contains(&"0".repeat(64)), "{message}");
}
