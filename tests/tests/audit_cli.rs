//! The commission's command-line tools on a real data directory: `tousu audit verify` checks
//! the hash chains and every weekly history anchor (REG-3) against the log and names the week
//! whose anchor was altered, changes no byte of the log and reports a torn tail; signed weekly
//! anchors exported with `tousu audit anchors` catch what the chains cannot (a forged event
//! with its chain recomputed, a removed event, a log cut at an append), and a forged anchor
//! fails its signature; `tousu audit export` writes every event; `tousu projections status`
//! and `rebuild` work on the data directory when no server runs on it.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{Datelike, FixedOffset, TimeDelta};
use tousu_api::pb;
use tousu_e2e::flows::register_lead;
use tousu_e2e::refusal::ok;
use tousu_e2e::requests::unique_uscc;
use tousu_e2e::server::{AUDITOR, TestServer};
use tousu_e2e::{run_tousu, stderr_of, stdout_of, tamper};
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

/// Every file of a directory with its bytes.
fn files_of(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("a directory")
        .map(|entry| entry.expect("an entry").path())
        .map(|path| {
            let bytes = std::fs::read(&path).expect("a file");
            (path, bytes)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_verify_changes_no_byte_of_the_log_and_reports_its_torn_tail() {
    let mut server = TestServer::start().await;
    register_lead(&server, &unique_uscc()).await;
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(20)).await.is_some_and(|status| status.success()));
    let data_dir = server.data_dir().to_string_lossy().into_owned();
    let events_dir = server.data_dir().join("events");
    // A crash in the middle of an append: half of a record at the end of the last segment.
    let segment = tamper::segments(&events_dir).pop().expect("a segment");
    let mut bytes = std::fs::read(&segment).expect("the segment");
    let (at, len) = *tamper::record_spans(&bytes).last().expect("a record");
    let half = bytes[at..at + len / 2].to_vec();
    bytes.extend_from_slice(&half);
    std::fs::write(&segment, &bytes).expect("the torn tail is written");
    let before = files_of(&events_dir);

    let output = run_tousu(&["audit", "verify", "--data-dir", &data_dir]);
    assert!(!output.status.success(), "a torn tail is a finding");
    let message = stderr_of(&output);
    assert!(message.contains("torn tail") && message.contains(&format!("{} bytes", len / 2)), "{message}");
    assert_eq!(files_of(&events_dir), before, "verify left every byte of the log as it was");

    // The other tools read the log up to the torn tail, warn of it, and leave it too.
    let output = run_tousu(&["audit", "export", "--data-dir", &data_dir]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("warning: the log ends in a torn tail"), "{}", stderr_of(&output));
    assert_eq!(files_of(&events_dir), before, "export left every byte of the log as it was");
}

/// The public key and its fingerprint, as `tousu audit key` prints them for a data directory.
fn audit_key(args: &[&str]) -> (String, String) {
    let output = run_tousu(&[&["audit", "key"], args].concat());
    assert!(output.status.success(), "{}", stderr_of(&output));
    let text = stdout_of(&output);
    let value = |label: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(label))
            .unwrap_or_else(|| panic!("{label} in\n{text}"))
            .trim()
            .to_owned()
    };
    (value("public key (ed25519, hex):"), value("fingerprint (sha-256 of the public key, hex):"))
}

/// The lines of an anchor file.
fn anchor_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("the anchor file");
    text.lines().map(|line| serde_json::from_str(line).expect("a JSON line")).collect()
}

fn write_anchor_lines(path: &Path, lines: &[serde_json::Value]) {
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    std::fs::write(path, text).expect("the anchor file is written");
}

/// Puts the log saved in `backup` back in place of `events_dir`.
fn restore(backup: &Path, events_dir: &Path) {
    std::fs::remove_dir_all(events_dir).expect("the log is removed");
    std::fs::create_dir_all(events_dir).expect("the log directory");
    for (path, bytes) in files_of(backup) {
        std::fs::write(events_dir.join(path.file_name().expect("a file name")), bytes).expect("a file restored");
    }
}

/// Changes one byte of the first event's payload (in the company's code), and recomputes its
/// stream's chain as a forger would.
fn forge_first_payload(events_dir: &Path, uscc: &str) {
    tamper::rewrite_log(events_dir, |records| {
        let payload = &mut records[0].event.event.payload;
        let at = payload.windows(uscc.len()).position(|window| window == uscc.as_bytes()).expect("the company's code")
            + uscc.len()
            - 1;
        payload[at] = if payload[at] == b'0' { b'1' } else { b'0' };
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn reg_3_signed_weekly_anchors_exported_before_catch_a_forged_event_a_removed_one_a_cut_log_and_a_forged_anchor()
{
    let mut server = TestServer::start().await;
    let uscc = unique_uscc();
    for _ in 0..3 {
        register_lead(&server, &uscc).await;
    }
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(20)).await.is_some_and(|status| status.success()));
    let data_dir = server.data_dir().to_string_lossy().into_owned();
    let events_dir = server.data_dir().join("events");
    let mode = std::fs::metadata(server.data_dir().join("signing.key")).expect("the signing key").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the signing key is readable by its owner only");

    // Three weeks of history, as a server running for three weeks would have written it: the
    // first append recorded two weeks ago, the second one week ago, the rest now.
    let records = tamper::rewrite_log(&events_dir, |records| {
        let mut append = 0;
        for record in records.iter_mut() {
            record.event.recorded_at -= TimeDelta::weeks((2 - append).max(0));
            append += i64::from(record.ends_append);
        }
    });
    let append_ends: Vec<u64> =
        records.iter().filter(|record| record.ends_append).map(|record| record.event.position.0).collect();
    assert!(append_ends.len() >= 3, "{append_ends:?}");
    let shanghai = FixedOffset::east_opt(8 * 3600).expect("+08:00");
    let recorded_day = records[0].event.recorded_at.with_timezone(&shanghai).date_naive();
    let first_week = recorded_day - TimeDelta::days(i64::from(recorded_day.weekday().num_days_from_monday()));
    std::fs::remove_dir_all(server.data_dir().join("read")).expect("the read models are rebuilt from the new log");

    // The server serves the settled week's anchor signed with its key.
    let (public_key, fingerprint) = audit_key(&["--data-dir", &data_dir]);
    server.restart().await;
    server.wait_read_models_live().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let served = loop {
        let request = pb::GetWeeklySummaryRequest { week_start: first_week.to_string(), ..Default::default() };
        let summary = ok(server.read_models(AUDITOR).get_weekly_summary(request).await, "GetWeeklySummary");
        if let Some(anchor) = summary.anchor.filter(|anchor| anchor.position == append_ends[0]) {
            break anchor;
        }
        assert!(std::time::Instant::now() < deadline, "the first week's anchor is not served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(served.settled);
    assert_eq!((served.signature.len(), served.key_fingerprint.as_str()), (64, fingerprint.as_str()));
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(20)).await.is_some_and(|status| status.success()));
    // A forger rebuilds the read models from the forged log: here there are none at all.
    std::fs::remove_dir_all(server.data_dir().join("read")).expect("the read models are removed");

    // The commission exports the signed anchors and keeps them outside the data directory.
    let outside = server.data_dir().with_file_name("commission");
    let backup = outside.join("events");
    std::fs::create_dir_all(&backup).expect("the commission's directory");
    for (path, bytes) in files_of(&events_dir) {
        std::fs::write(backup.join(path.file_name().expect("a file name")), bytes).expect("a file saved");
    }
    let anchors = outside.join("anchors.jsonl");
    let output = run_tousu(&["audit", "anchors", "--data-dir", &data_dir, "--output", &anchors.to_string_lossy()]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let lines = anchor_lines(&anchors);
    assert!(lines.len() >= 2, "the two weeks before this one are settled: {lines:?}");
    assert_eq!(lines[0]["week"], first_week.to_string());
    assert_eq!(lines[1]["week"], (first_week + TimeDelta::weeks(1)).to_string());
    assert_eq!(
        (lines[0]["position"].as_u64(), lines[0]["events"].as_u64()),
        (Some(append_ends[0]), Some(append_ends[0]))
    );
    assert_eq!(lines[1]["position"].as_u64(), Some(append_ends[1]));
    // The same statement as the one served, so the same signature: Ed25519 is deterministic.
    assert_eq!(lines[0]["signature"], tousu_store::hash::hex(&served.signature));
    assert_eq!(lines[0]["anchor"], served.sha256);
    assert!(lines.iter().all(|line| line["key_fingerprint"] == fingerprint.as_str()));

    let anchors_text = anchors.to_string_lossy().into_owned();
    let verify = |anchor_file: &str, key: &str| {
        run_tousu(&["audit", "verify", "--data-dir", &data_dir, "--anchors", anchor_file, "--public-key", key])
    };
    let output = verify(&anchors_text, &public_key);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let report = stdout_of(&output);
    assert!(report.contains(&format!("{n} of {n} signed anchors", n = lines.len())), "{report}");
    assert!(report.contains(&format!("signatures checked against the key {fingerprint}")), "{report}");

    // A forged event, its chain recomputed: the chains verify, the anchors do not.
    forge_first_payload(&events_dir, &uscc);
    let output = run_tousu(&["audit", "verify", "--data-dir", &data_dir]);
    assert!(output.status.success(), "the chains alone cannot tell: {}", stderr_of(&output));
    let output = verify(&anchors_text, &public_key);
    assert!(!output.status.success(), "a forged event must not verify against the anchors");
    let message = stderr_of(&output);
    for line in ["line 1 ", "line 2 "] {
        assert!(message.contains(line) && message.contains("no longer reproduces"), "{line}: {message}");
    }
    restore(&backup, &events_dir);

    // A removed event, the rest renumbered.
    tamper::rewrite_log(&events_dir, |records| drop(records.remove(0)));
    let output = verify(&anchors_text, &public_key);
    assert!(!output.status.success(), "a removed event must not verify against the anchors");
    assert!(stderr_of(&output).contains("line 1 (the week of"), "{}", stderr_of(&output));
    restore(&backup, &events_dir);

    // The log cut at the end of the first week's append: a clean, shorter log.
    tamper::cut_after(&events_dir, append_ends[0]);
    let output = run_tousu(&["audit", "verify", "--data-dir", &data_dir]);
    assert!(output.status.success(), "the chains alone cannot tell: {}", stderr_of(&output));
    let output = verify(&anchors_text, &public_key);
    assert!(!output.status.success(), "a cut log must not verify against the anchors");
    let message = stderr_of(&output);
    assert!(message.contains(&format!("past the log's end at position {}", append_ends[0])), "{message}");
    assert!(message.contains("line 2 ") && !message.contains("line 1 "), "{message}");
    restore(&backup, &events_dir);

    // Anchors forged to match a forged log: signed with another key, or carrying the signatures
    // of the real ones, they fail the signature; the log reproduces them.
    forge_first_payload(&events_dir, &uscc);
    let forger_key = outside.join("forger.key");
    std::fs::write(&forger_key, [9u8; 32]).expect("the forger's key");
    let forged = outside.join("forged.jsonl");
    let output = run_tousu(&[
        "audit",
        "anchors",
        "--data-dir",
        &data_dir,
        "--signing-key-file",
        &forger_key.to_string_lossy(),
        "--output",
        &forged.to_string_lossy(),
    ]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let output = verify(&forged.to_string_lossy(), &public_key);
    assert!(!output.status.success(), "anchors signed by another key must not verify");
    let message = stderr_of(&output);
    assert!(message.contains("signed by another key") && !message.contains("no longer reproduces"), "{message}");
    let mut copied = anchor_lines(&forged);
    for (line, real) in copied.iter_mut().zip(&lines) {
        line["signature"] = real["signature"].clone();
        line["key_fingerprint"] = real["key_fingerprint"].clone();
    }
    write_anchor_lines(&forged, &copied);
    let output = verify(&forged.to_string_lossy(), &public_key);
    assert!(!output.status.success(), "a forged anchor must fail its signature");
    let message = stderr_of(&output);
    assert!(message.contains("signature does not verify") && !message.contains("no longer reproduces"), "{message}");
    restore(&backup, &events_dir);

    // The real anchors checked with the forger's key fail too; with the right key they pass.
    let (forger_public, _) = audit_key(&["--signing-key-file", &forger_key.to_string_lossy()]);
    assert!(!verify(&anchors_text, &forger_public).status.success());
    assert!(verify(&anchors_text, &public_key).status.success());
    std::fs::remove_dir_all(&outside).expect("the commission's directory is removed");
}
