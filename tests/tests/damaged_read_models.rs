//! Read models that cannot be trusted any more, against the real server (issue 15): the
//! watchlist's SQLite file truncated, or its header overwritten with garbage, while clients
//! query it and a registrar keeps registering — the process lives on, registrations succeed,
//! the watchlist answers `UNAVAILABLE` naming itself and the damage (never `INTERNAL`), the
//! admin status says what happened, and the watchlist answers again, rebuilt from the log in a
//! new file; and an older `events/` restored beside newer read models — every read model is
//! found ahead of the log, rebuilt from it, and no query answers with figures the log does not
//! have.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::{Code, Status};
use tousu_api::pb;
use tousu_e2e::flows::register_lead;
use tousu_e2e::refusal::Refusal;
use tousu_e2e::requests::unique_uscc;
use tousu_e2e::server::{AUDITOR, OPERATOR, TestServer};

/// The watchlist as [`watchlist`] reads it, or the status it answered with.
type Watchlist = Result<BTreeMap<String, u32>, Status>;

/// Every company on the watchlist, each with its distinct complainants (every lead of these
/// tests has a complainant of its own), evaluated now: an explicit instant is always computed,
/// never served from the server's minute-long cache.
async fn watchlist(server: &TestServer) -> Watchlist {
    let request = pb::GetWatchlistRequest {
        scope: pb::WatchlistScope::Every.into(),
        page_size: 500,
        at: Some(prost_types::Timestamp { seconds: chrono::Utc::now().timestamp(), nanos: 0 }),
        ..Default::default()
    };
    let page = server.read_models(AUDITOR).get_watchlist(request).await?.into_inner();
    Ok(page
        .entries
        .into_iter()
        .map(|entry| (entry.uscc, entry.complainants.map_or(0, |window| window.distinct)))
        .collect())
}

/// Asks `probe` until it answers, for at most 30 s.
async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(answer) = probe().await {
            return answer;
        }
        assert!(Instant::now() < deadline, "{what} within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Registers `leads` leads for each of `companies` new companies; answers what the watchlist
/// must then show.
async fn register_companies(server: &TestServer, companies: usize, leads: u32) -> BTreeMap<String, u32> {
    let mut registered = BTreeMap::new();
    for _ in 0..companies {
        let uscc = unique_uscc();
        for _ in 0..leads {
            register_lead(server, &uscc).await;
        }
        registered.insert(uscc, leads);
    }
    registered
}

async fn projections(server: &TestServer) -> Vec<pb::ProjectionStatus> {
    let response = server.admin(OPERATOR).list_projections(pb::ListProjectionsRequest {}).await;
    response.expect("ListProjections as operator").into_inner().projections
}

fn projection<'a>(projections: &'a [pb::ProjectionStatus], name: &str) -> &'a pb::ProjectionStatus {
    projections.iter().find(|projection| projection.name == name).expect("a read model of that name")
}

/// Asserts that a read model's refusal is `UNAVAILABLE`, names it, and has one of `reasons`.
fn unavailable_naming(status: &Status, name: &str, reasons: &[&str]) -> Refusal {
    let refusal = Refusal::of(status);
    assert_eq!(refusal.code, Code::Unavailable, "{refusal:#?}");
    assert!(refusal.message.contains(&format!("read model {name} ")), "{refusal:#?}");
    let reason = refusal.reason.clone().unwrap_or_default();
    assert!(reasons.contains(&reason.as_str()), "reason {reason:?} of {refusal:#?}");
    let details = tonic_types::StatusExt::get_error_details(status);
    let metadata = details.error_info().map(|info| info.metadata.clone()).unwrap_or_default();
    assert_eq!(metadata.get("read_model").map(String::as_str), Some(name), "{refusal:#?}");
    refusal
}

/// How a test damages the watchlist's file.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Truncated to half its length.
    Truncate,
    /// Its first 4 KiB (the header and the rest of the first page) overwritten with garbage.
    Header,
}

fn damage(file: &Path, damage: Damage) {
    let mut opened = std::fs::OpenOptions::new().write(true).open(file).expect("the watchlist's file");
    match damage {
        Damage::Truncate => {
            let length = opened.metadata().expect("its length").len();
            opened.set_len(length / 2).expect("truncated");
        }
        Damage::Header => std::io::Write::write_all(&mut opened, &[0xA5; 4096]).expect("garbage written"),
    }
}

async fn damaged_under_queries(kind: Damage) {
    let mut server = TestServer::start().await;
    server.wait_read_models_live().await;
    let mut expected = register_companies(&server, 3, 2).await;
    eventually("the watchlist shows the companies registered", async || {
        watchlist(&server).await.ok().filter(|shown| *shown == expected)
    })
    .await;
    // A clean restart: the workers empty their write-ahead logs when they stop, so the read
    // models' pages are in their files, as on a server that has run for a while, and a query
    // reads the damaged file itself.
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(30)).await.is_some_and(|status| status.success()));
    server.restart().await;
    server.wait_read_models_live().await;
    let before = projections(&server).await;
    let file = server.data_dir().join("read/watchlist.sqlite");
    assert!(std::fs::metadata(&file).expect("the watchlist's file").len() > 4096, "its pages are in the file");

    // Clients query the watchlist in a loop, and a registrar keeps registering leads.
    let server = Arc::new(server);
    let stop = Arc::new(AtomicBool::new(false));
    let answers: Arc<Mutex<Vec<Watchlist>>> = Arc::default();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (server, stop, answers) = (server.clone(), stop.clone(), answers.clone());
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let answer = watchlist(&server).await;
                answers.lock().expect("the answers").push(answer);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    let registrar = {
        let (server, stop) = (server.clone(), stop.clone());
        tokio::spawn(async move {
            let mut registered = BTreeMap::new();
            while !stop.load(Ordering::Relaxed) {
                registered.extend(register_companies(&server, 1, 1).await);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            registered
        })
    };
    let statuses = {
        let (server, stop) = (server.clone(), stop.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let watchlist = projection(&projections(&server).await, "watchlist").clone();
                seen.push((watchlist.state, watchlist.last_error));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seen
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    damage(&file, kind);
    // Out of service, then back, rebuilt.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut refused = false;
    loop {
        match answers.lock().expect("the answers").last().map(Result::is_ok) {
            Some(false) => refused = true,
            Some(true) if refused => break,
            _ => {}
        }
        assert!(Instant::now() < deadline, "the watchlist was not out of service and back (refused: {refused})");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("a client");
    }
    let registered = registrar.await.expect("the registrar");
    let seen = statuses.await.expect("the status poller");

    let mut server = Arc::into_inner(server).expect("the only reference left");
    assert!(server.wait_exit(Duration::ZERO).await.is_none(), "the server process is alive\n{}", server.log());
    assert!(registered.len() >= 3, "registrations went on meanwhile: {registered:?}");

    // Every answer was the watchlist or UNAVAILABLE naming it; the damage was named.
    let answers = std::mem::take(&mut *answers.lock().expect("the answers"));
    let mut reasons = Vec::new();
    for status in answers.iter().filter_map(|answer| answer.as_ref().err()) {
        let refusal = unavailable_naming(status, "watchlist", &["READ_MODEL_DAMAGED", "UNAVAILABLE"]);
        reasons.push(refusal.reason.clone().unwrap_or_default());
        if refusal.reason.as_deref() == Some("READ_MODEL_DAMAGED") {
            assert!(refusal.message.contains("read store damaged"), "{refusal:#?}");
        }
    }
    assert!(reasons.iter().any(|reason| reason == "READ_MODEL_DAMAGED"), "the damage was named: {reasons:?}");
    // The admin status said what happened.
    let failed = seen.iter().find(|(state, error)| state == "failed" && error.starts_with("read store damaged: "));
    assert!(failed.is_some(), "the status showed the damage: {seen:?}");
    let (_, error) = failed.expect("found above");
    let cause = match kind {
        Damage::Truncate => ["was truncated", "malformed", "short read"].iter().any(|cause| error.contains(cause)),
        Damage::Header => ["header", "not a database", "malformed"].iter().any(|cause| error.contains(cause)),
    };
    assert!(cause, "{error}");
    let aside = std::fs::read_dir(server.data_dir().join("read"))
        .expect("the read store")
        .filter_map(|entry| entry.ok().map(|entry| entry.file_name().to_string_lossy().into_owned()))
        .any(|name| name.starts_with("watchlist.damaged-") && name.ends_with(".sqlite"));
    assert!(aside, "the damaged file is kept aside");

    // Rebuilt from the log: the companies registered before the damage and after it.
    expected.extend(registered);
    eventually("the rebuilt watchlist shows every company registered", async || {
        watchlist(&server).await.ok().filter(|shown| *shown == expected)
    })
    .await;
    let after = projections(&server).await;
    let (old, new) = (projection(&before, "watchlist"), projection(&after, "watchlist"));
    assert!(new.live_generation > old.live_generation, "a new generation: {old:?} then {new:?}");
    assert_eq!(new.state, "live");
    // The others failed nothing.
    for name in ["leads", "overdue-escalation", "weekly-summary", "bulletin"] {
        let (old, new) = (projection(&before, name), projection(&after, name));
        assert_eq!((new.live_generation, new.last_error.as_str()), (old.live_generation, ""), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watchlist_file_truncated_under_queries_fails_alone_and_is_rebuilt_while_the_server_lives() {
    damaged_under_queries(Damage::Truncate).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watchlist_file_whose_header_is_overwritten_fails_alone_and_is_rebuilt_while_the_server_lives() {
    damaged_under_queries(Damage::Header).await;
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a copy");
    for entry in std::fs::read_dir(from).expect("a directory") {
        let entry = entry.expect("an entry");
        if entry.file_type().expect("a type").is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("a file copied");
        }
    }
}

/// The ids of every lead the leads read model lists.
async fn listed_leads(server: &TestServer) -> Result<Vec<String>, Status> {
    let request = pb::ListComplaintsRequest { page_size: 500, ..Default::default() };
    let page = server.queries(AUDITOR).list_complaints(request).await?.into_inner();
    let mut ids: Vec<String> = page.complaints.into_iter().map(|lead| lead.complaint_id).collect();
    ids.sort();
    Ok(ids)
}

/// The ids of every lead the log holds.
async fn leads_in_log(server: &TestServer) -> Vec<String> {
    let mut ids: Vec<String> = server
        .all_events()
        .await
        .into_iter()
        .filter(|event| event.event_type == "complaint.registered")
        .filter_map(|event| event.stream.strip_prefix("complaint-").map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn read_models_ahead_of_a_restored_older_log_are_rebuilt_from_it_and_never_answer_from_the_future() {
    let mut server = TestServer::start().await;
    server.wait_read_models_live().await;
    let older = register_companies(&server, 2, 2).await;
    eventually("the watchlist shows the first companies", async || {
        watchlist(&server).await.ok().filter(|shown| *shown == older)
    })
    .await;
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(30)).await.is_some_and(|status| status.success()));
    let events = server.data_dir().join("events");
    let backup = server.data_dir().with_file_name("events-backup");
    copy_dir(&events, &backup);

    // More is written after the backup, and the read models follow it.
    server.restart().await;
    server.wait_read_models_live().await;
    let mut newer = older.clone();
    newer.extend(register_companies(&server, 2, 2).await);
    eventually("the watchlist shows every company", async || {
        watchlist(&server).await.ok().filter(|shown| *shown == newer)
    })
    .await;
    let head = server.log_head().await.expect("a log");
    eventually("every read model applies the whole log", async || {
        let all = projections(&server).await;
        all.iter().all(|projection| projection.checkpoint >= head).then_some(())
    })
    .await;
    let ahead = projections(&server).await;
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(30)).await.is_some_and(|status| status.success()));

    // The older log restored beside the newer read models.
    std::fs::remove_dir_all(&events).expect("the newer log removed");
    std::fs::rename(&backup, &events).expect("the older log restored");
    server.restart().await;
    let leads = leads_in_log(&server).await;
    assert_eq!(leads.len(), 4, "the restored log holds the first leads only");
    // From the first query on, every answer is the older log's, or UNAVAILABLE naming the read
    // model; never the newer figures.
    let reasons = ["READ_MODEL_AHEAD_OF_LOG", "UNAVAILABLE"];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut refused = Vec::new();
    loop {
        let (shown, listed) = (watchlist(&server).await, listed_leads(&server).await);
        match &shown {
            Ok(shown) => assert_eq!(*shown, older, "the watchlist answered with figures the log does not have"),
            Err(status) => refused.push(unavailable_naming(status, "watchlist", &reasons)),
        }
        match &listed {
            Ok(listed) => assert_eq!(*listed, leads, "the lead list answered with leads the log does not have"),
            Err(status) => refused.push(unavailable_naming(status, "leads", &reasons)),
        }
        if shown.is_ok() && listed.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the read models were not rebuilt: {refused:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for refusal in refused.iter().filter(|refusal| refusal.reason.as_deref() == Some("READ_MODEL_AHEAD_OF_LOG")) {
        assert!(refusal.message.contains("ahead of the log"), "{refusal:#?}");
    }

    // Each read model was found ahead, named with both positions, and rebuilt from the log.
    server.wait_read_models_live().await;
    let restored_head = server.log_head().await.expect("a log");
    let log = server.log();
    for before in &ahead {
        let line = log
            .lines()
            .find(|line| line.contains(&format!("read_model=\"{}\"", before.name)) && line.contains("ahead of the log"))
            .unwrap_or_else(|| panic!("no line on {} ahead of the log in\n{log}", before.name));
        assert!(
            line.contains(&format!("up to position {}, past the log's head at {restored_head}", before.checkpoint)),
            "{line}"
        );
    }
    let rebuilt = eventually("every read model is live again, without error", async || {
        let all = projections(&server).await;
        all.iter().all(|projection| projection.state == "live" && projection.last_error.is_empty()).then_some(all)
    })
    .await;
    for projection in &rebuilt {
        assert!(projection.checkpoint <= projection.head, "{projection:?}");
        let old = ahead.iter().find(|old| old.name == projection.name).expect("the same read models");
        assert!(projection.live_generation > old.live_generation, "a new generation: {old:?} then {projection:?}");
    }
    eventually("the watchlist is the older log's", async || {
        watchlist(&server).await.ok().filter(|shown| *shown == older)
    })
    .await;
}
