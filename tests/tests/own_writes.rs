//! Read your own writes (`docs/api.md`, "The watchlist's cache"): `GetWatchlist` without `at`
//! is answered from a cache, but never with a list that predates the caller's own
//! acknowledged writes; the list computed for the writer then serves everyone.

use std::time::{Duration, Instant};

use tousu_api::pb;
use tousu_e2e::flows::register_lead;
use tousu_e2e::refusal::ok;
use tousu_e2e::requests::{request_id, unique_uscc};
use tousu_e2e::server::{AUDITOR, Principal, REGISTRAR_ZJ, TestServer};

async fn watchlist(server: &TestServer, principal: Principal) -> pb::GetWatchlistResponse {
    let every = pb::GetWatchlistRequest { scope: pb::WatchlistScope::Every.into(), ..Default::default() };
    ok(server.read_models(principal).get_watchlist(every).await, "GetWatchlist")
}

fn entry<'a>(list: &'a pb::GetWatchlistResponse, uscc: &str) -> Option<&'a pb::WatchlistEntry> {
    list.entries.iter().find(|entry| entry.uscc == uscc)
}

fn grade_review_due(entry: &pb::WatchlistEntry) -> bool {
    entry.flags.iter().any(|flag| flag.flag() == pb::WatchlistFlag::GradeReviewDue)
}

#[tokio::test(flavor = "multi_thread")]
async fn reg_4_get_watchlist_right_after_a_write_that_changes_a_companys_entry_shows_it() {
    let server = TestServer::start().await;
    server.wait_read_models_live().await;
    let uscc = unique_uscc();
    register_lead(&server, &uscc).await;
    // The company exists, and is on the list, once tousu has counted its lead.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.queries(AUDITOR).get_enterprise(pb::GetEnterpriseRequest { uscc: uscc.clone() }).await.is_err() {
        assert!(Instant::now() < deadline, "the company is recorded within 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = loop {
        let list = watchlist(&server, REGISTRAR_ZJ).await;
        if entry(&list, &uscc).is_some() {
            break list;
        }
        assert!(Instant::now() < deadline, "the company is on the watchlist within 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let listed = entry(&before, &uscc).expect("listed");
    assert!(listed.credit_rating.is_empty() && !grade_review_due(listed), "{listed:#?}");
    // Polled again, the list comes from the cache.
    let polled = watchlist(&server, REGISTRAR_ZJ).await;
    assert!(polled.snapshot.as_ref().expect("a snapshot").cached, "the cache answers a second poll");

    // GRD-1, interpretation 12: a low credit rating calls for the grade review at once.
    let rating = pb::RecordCreditRatingRequest { request_id: request_id(), uscc: uscc.clone(), rating: "D".to_owned() };
    let written = ok(server.enterprises(REGISTRAR_ZJ).record_credit_rating(rating).await, "RecordCreditRating");
    assert!(written.event_types.iter().any(|event| event == "enterprise.grade_review_required"), "{written:?}");

    // The writer's next read shows its write, not the cached list.
    let after = watchlist(&server, REGISTRAR_ZJ).await;
    let snapshot = after.snapshot.clone().expect("a snapshot");
    assert!(!snapshot.cached && snapshot.position >= written.position, "{snapshot:?}, written {written:?}");
    let rated = entry(&after, &uscc).expect("still listed");
    assert_eq!(rated.credit_rating, "D");
    assert!(grade_review_due(rated), "{rated:#?}");
    // That list replaced the stale one: another reader is served it from the cache.
    let other = watchlist(&server, AUDITOR).await;
    assert!(other.snapshot.as_ref().expect("a snapshot").cached);
    assert!(grade_review_due(entry(&other, &uscc).expect("listed")));
}
