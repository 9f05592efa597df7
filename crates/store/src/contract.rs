//! The contract suite: what every [`EventStore`] backend must do, as async checks generic
//! over a [`Harness`] that makes fresh, empty stores.
//!
//! A backend crate runs the whole suite from its tests with one line,
//! `tousu_store::contract_tests!(MyHarness::new());`, which expands to one
//! `#[tokio::test]` per check (the crate needs tokio with `macros` and `rt-multi-thread`
//! as a dev-dependency). The checks assume nothing a KurrentDB backend could not give:
//! positions only increase (no gap-free assumption), and the log starts empty.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::hash::{HashedFields, ZERO_HASH, event_hash};
use crate::store::{AppendError, EventStore, Subscription, SubscriptionError};
use crate::types::{
    Actor, AppendResult, Direction, EventId, ExpectedRevision, Position, ProposedEvent, ReadFrom, RecordedEvent,
    StreamFrom, StreamName,
};
use crate::verify::{BrokenLinkKind, ChainVerifier, verify_all, verify_stream};

/// Makes fresh, empty stores for the suite.
pub trait Harness: Send + Sync {
    /// The backend under test.
    type Store: EventStore + 'static;

    /// A new store with an empty log, independent of every other store made.
    fn fresh(&self) -> impl Future<Output = Self::Store> + Send;
}

/// How long a check waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(20);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh event id, unique in this process.
pub fn fresh_id() -> EventId {
    // The high half keeps ids of different test processes apart when they share a server.
    let high = u128::from(std::process::id()) << 64;
    EventId::from_u128(high | u128::from(NEXT_ID.fetch_add(1, Ordering::Relaxed)))
}

/// A stream name, panicking on an invalid one (the suite only uses valid names).
pub fn stream(name: &str) -> StreamName {
    StreamName::new(name).expect("the suite uses valid stream names")
}

/// An event with a fresh id and a small JSON payload naming `n`.
pub fn event(n: u64) -> ProposedEvent {
    ProposedEvent {
        id: fresh_id(),
        event_type: "contract-event".into(),
        schema_version: 1,
        occurred_at: DateTime::from_timestamp(1_780_000_000, 250_000_000).expect("valid time"),
        actor: Actor { person: "p-1".into(), body: "body-1".into(), role: "registrar".into() },
        correlation_id: EventId::from_u128(0xC0),
        causation_id: EventId::from_u128(0xCA),
        payload: format!("{{\"n\":{n}}}").into_bytes(),
    }
}

/// `count` events numbered from `first`.
pub fn events(first: u64, count: u64) -> Vec<ProposedEvent> {
    (first..first + count).map(event).collect()
}

async fn read_whole_stream<S: EventStore>(store: &S, name: &StreamName) -> Vec<RecordedEvent> {
    store.read_stream(name, Direction::Forwards, StreamFrom::Start, usize::MAX).await.expect("reading a stream")
}

async fn read_whole_log<S: EventStore>(store: &S) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    let mut from = ReadFrom::Start;
    loop {
        let batch = store.read_all(from, 100).await.expect("reading the log");
        match batch.last() {
            Some(last) => from = ReadFrom::After(last.position),
            None => return all,
        }
        all.extend(batch);
    }
}

async fn next_in_time<T: Subscription>(subscription: &mut T) -> RecordedEvent {
    tokio::time::timeout(PATIENCE, subscription.next())
        .await
        .expect("the subscription delivers within the patience")
        .expect("the subscription delivers an event")
}

fn ids(events: &[RecordedEvent]) -> Vec<EventId> {
    events.iter().map(|e| e.event.id).collect()
}

/// Appends assign 0-based revisions per stream and increasing positions, and return the
/// last of each.
pub async fn append_assigns_revisions_and_positions<H: Harness>(harness: &H) {
    let store = harness.fresh().await;
    let a = stream("complaint-A1");
    let b = stream("enterprise-91350100M000100Y43");
    let first = store.append(&a, ExpectedRevision::NoStream, events(0, 3)).await.unwrap();
    assert_eq!(first.revision, 2);
    let second = store.append(&b, ExpectedRevision::Any, events(3, 1)).await.unwrap();
    assert_eq!(second.revision, 0);
    assert!(second.position > first.position);
    let third = store.append(&a, ExpectedRevision::Exact(2), events(4, 2)).await.unwrap();
    assert_eq!(third.revision, 4);
    assert!(third.position > second.position);
    let stored = read_whole_stream(&store, &a).await;
    assert_eq!(stored.iter().map(|e| e.revision).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    assert_eq!(stored[2].position, first.position);
    assert_eq!(stored[4].position, third.position);
    assert!(stored.windows(2).all(|w| w[0].position < w[1].position));
    assert!(stored.iter().all(|e| e.stream == a));
}

/// Every kind of expectation is enforced, and a conflict carries the current revision.
pub async fn expected_revision_is_enforced<H: Harness>(harness: &H) {
    let store = harness.fresh().await;
    let s = stream("complaint-E1");
    let conflict = store.append(&s, ExpectedRevision::StreamExists, events(0, 1)).await.unwrap_err();
    assert!(matches!(
        conflict,
        AppendError::WrongExpectedRevision { ref stream, expected: ExpectedRevision::StreamExists, current: None } if *stream == s
    ));
    let conflict = store.append(&s, ExpectedRevision::Exact(0), events(0, 1)).await.unwrap_err();
    assert!(matches!(conflict, AppendError::WrongExpectedRevision { current: None, .. }));
    store.append(&s, ExpectedRevision::NoStream, events(0, 2)).await.unwrap();
    let conflict = store.append(&s, ExpectedRevision::NoStream, events(2, 1)).await.unwrap_err();
    assert!(matches!(
        conflict,
        AppendError::WrongExpectedRevision { expected: ExpectedRevision::NoStream, current: Some(1), .. }
    ));
    assert!(conflict.to_string().contains("expected no stream but found revision 1"), "{conflict}");
    let conflict = store.append(&s, ExpectedRevision::Exact(0), events(2, 1)).await.unwrap_err();
    assert!(matches!(
        conflict,
        AppendError::WrongExpectedRevision { expected: ExpectedRevision::Exact(0), current: Some(1), .. }
    ));
    let ok = store.append(&s, ExpectedRevision::StreamExists, events(2, 1)).await.unwrap();
    assert_eq!(ok.revision, 2);
    let ok = store.append(&s, ExpectedRevision::Any, events(3, 1)).await.unwrap();
    assert_eq!(ok.revision, 3);
    let ok = store.append(&s, ExpectedRevision::Exact(3), events(4, 1)).await.unwrap();
    assert_eq!(ok.revision, 4);
    // Refused appends stored nothing.
    assert_eq!(read_whole_stream(&store, &s).await.len(), 5);
    assert_eq!(read_whole_log(&store).await.len(), 5);
}

/// An append with no events, or with one id twice, is refused and stores nothing.
pub async fn malformed_appends_are_refused<H: Harness>(harness: &H) {
    let store = harness.fresh().await;
    let s = stream("complaint-M1");
    let empty = store.append(&s, ExpectedRevision::Any, Vec::new()).await.unwrap_err();
    assert!(matches!(empty, AppendError::EmptyAppend { ref stream } if *stream == s));
    let mut twice = events(0, 2);
    twice[1].id = twice[0].id;
    let id = twice[0].id;
    let duplicate = store.append(&s, ExpectedRevision::Any, twice).await.unwrap_err();
    assert!(matches!(
        duplicate,
        AppendError::DuplicateEventIdInAppend { id: found, .. } if found == id
    ));
    assert!(read_whole_log(&store).await.is_empty());
    assert_eq!(store.head().await.unwrap(), None);
}

/// Repeating an append (same ids, same order, same place) returns the first result and
/// writes nothing, under every kind of expectation that admits the original place.
pub async fn idempotent_retry_returns_original_result<H: Harness>(harness: &H) {
    let store = harness.fresh().await;
    let s = stream("complaint-I1");
    let batch = events(0, 3);
    let original = store.append(&s, ExpectedRevision::NoStream, batch.clone()).await.unwrap();
    let next = events(3, 2);
    let second = store.append(&s, ExpectedRevision::Exact(2), next.clone()).await.unwrap();
    let head = store.head().await.unwrap();
    for expected in [ExpectedRevision::NoStream, ExpectedRevision::Any] {
        let retry = store.append(&s, expected, batch.clone()).await.unwrap();
        assert_eq!(retry, original, "retry under {expected}");
    }
    for expected in [ExpectedRevision::Exact(2), ExpectedRevision::Any, ExpectedRevision::StreamExists] {
        let retry = store.append(&s, expected, next.clone()).await.unwrap();
        assert_eq!(retry, second, "retry under {expected}");
    }
    // A retry whose payload differs is still the same append: the ids decide.
    let mut changed = next.clone();
    changed[0].payload = b"{\"other\":true}".to_vec();
    assert_eq!(store.append(&s, ExpectedRevision::Any, changed).await.unwrap(), second);
    assert_eq!(store.head().await.unwrap(), head);
    let stored = read_whole_stream(&store, &s).await;
    assert_eq!(stored.len(), 5);
    assert_eq!(stored[3].event.payload, next[0].payload);
    // A retry of one event that is part of a larger stored append is at its place too.
    let single = store.append(&s, ExpectedRevision::Exact(0), vec![batch[1].clone()]).await.unwrap();
    assert_eq!(single.revision, 1);
    assert_eq!(single.position, stored[1].position);
}

/// Ids already stored anywhere other than the place this append would give them are an
/// error naming where they are.
pub async fn ids_stored_elsewhere_are_refused<H: Harness>(harness: &H) {
    let store = harness.fresh().await;
    let s = stream("complaint-D1");
    let other = stream("complaint-D2");
    let batch = events(0, 2);
    store.append(&s, ExpectedRevision::NoStream, batch.clone()).await.unwrap();
    // Same ids in another stream.
    let error = store.append(&other, ExpectedRevision::Any, batch.clone()).await.unwrap_err();
    assert!(matches!(
        error,
        AppendError::DuplicateEventIdElsewhere { id, ref stream, revision: 0 } if id == batch[0].id && *stream == s
    ));
    // Same ids, same stream, but at a place the expectation does not admit.
    let error = store.append(&s, ExpectedRevision::Exact(1), batch.clone()).await.unwrap_err();
    assert!(matches!(error, AppendError::DuplicateEventIdElsewhere { .. }));
    // Same ids in another order.
    let reversed = vec![batch[1].clone(), batch[0].clone()];
    let error = store.append(&s, ExpectedRevision::Any, reversed).await.unwrap_err();
    assert!(matches!(error, AppendError::DuplicateEventIdElsewhere { .. }));
    // A stored id mixed with a new one.
    let mixed = vec![batch[0].clone(), batch[1].clone(), event(9)];
    let error = store.append(&s, ExpectedRevision::NoStream, mixed).await.unwrap_err();
    assert!(matches!(error, AppendError::DuplicateEventIdElsewhere { .. }));
    let mixed = vec![event(10), batch[0].clone()];
    let error = store.append(&s, ExpectedRevision::Any, mixed).await.unwrap_err();
    assert!(matches!(
        error,
        AppendError::DuplicateEventIdElsewhere { id, revision: 0, .. } if id == batch[0].id
    ));
    assert_eq!(read_whole_log(&store).await.len(), 2);
    assert!(read_whole_stream(&store, &other).await.is_empty());
}

/// One stream reads forwards and backwards from any revision with a limit; a missing
/// stream reads as empty.
pub async fn read_stream_forwards_and_backwards<H: Harness>(harness: &H) {
    let store = harness.fresh().await;
    let s = stream("complaint-R1");
    let noise = stream("complaint-R2");
    for n in 0..10 {
        store.append(&s, ExpectedRevision::Any, events(n, 1)).await.unwrap();
        store.append(&noise, ExpectedRevision::Any, events(100 + n, 1)).await.unwrap();
    }
    let revisions = |events: Vec<RecordedEvent>| events.iter().map(|e| e.revision).collect::<Vec<_>>();
    let read = |direction, from, limit| store.read_stream(&s, direction, from, limit);
    use Direction::{Backwards, Forwards};
    assert_eq!(revisions(read(Forwards, StreamFrom::Start, 3).await.unwrap()), vec![0, 1, 2]);
    assert_eq!(revisions(read(Forwards, StreamFrom::Revision(7), 10).await.unwrap()), vec![7, 8, 9]);
    assert!(read(Forwards, StreamFrom::Revision(10), 10).await.unwrap().is_empty());
    assert!(read(Forwards, StreamFrom::End, 10).await.unwrap().is_empty());
    assert_eq!(revisions(read(Backwards, StreamFrom::End, 4).await.unwrap()), vec![9, 8, 7, 6]);
    assert_eq!(revisions(read(Backwards, StreamFrom::Revision(2), 10).await.unwrap()), vec![2, 1, 0]);
    assert_eq!(revisions(read(Backwards, StreamFrom::Revision(50), 2).await.unwrap()), vec![9, 8]);
    assert_eq!(revisions(read(Backwards, StreamFrom::Start, 5).await.unwrap()), vec![0]);
    assert!(read(Forwards, StreamFrom::Start, 0).await.unwrap().is_empty());
    let forwards = read(Forwards, StreamFrom::Start, 100).await.unwrap();
    let mut backwards = read(Backwards, StreamFrom::End, 100).await.unwrap();
    backwards.reverse();
    assert_eq!(forwards, backwards);
    assert!(forwards.iter().all(|e| e.stream == s));
    let missing = stream("complaint-none");
    assert!(store.read_stream(&missing, Backwards, StreamFrom::End, 10).await.unwrap().is_empty());
}

/// The global log reads in batches from the start or after a position, in increasing
/// position order, each event once.
pub async fn read_all_in_batches<H: Harness>(harness: &H) {
    let store = harness.fresh().await;
    assert!(store.read_all(ReadFrom::Start, 10).await.unwrap().is_empty());
    let mut appended = Vec::new();
    for n in 0..25 {
        let s = stream(&format!("complaint-L{}", n % 4));
        let batch = events(n * 2, 1 + n % 3);
        appended.extend(batch.iter().map(|e| e.id));
        store.append(&s, ExpectedRevision::Any, batch).await.unwrap();
    }
    let first = store.read_all(ReadFrom::Start, 7).await.unwrap();
    assert_eq!(first.len(), 7);
    let rest = store.read_all(ReadFrom::After(first[6].position), 1000).await.unwrap();
    let mut all = first.clone();
    all.extend(rest);
    assert_eq!(ids(&all), appended);
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    let batched = read_whole_log(&store).await;
    assert_eq!(batched, all);
    let last = all.last().unwrap().position;
    assert_eq!(store.head().await.unwrap(), Some(last));
    assert!(store.read_all(ReadFrom::After(last), 10).await.unwrap().is_empty());
    let middle = all[10].position;
    let after_middle = store.read_all(ReadFrom::After(middle), 3).await.unwrap();
    assert_eq!(ids(&after_middle), appended[11..14].to_vec());
    assert!(store.read_all(ReadFrom::Start, 0).await.unwrap().is_empty());
}

/// Every field of the envelope survives, recorded-at is server time, and each event
/// links to the one before it in its stream.
pub async fn envelope_round_trips_and_chains_link<H: Harness>(harness: &H) {
    let store = harness.fresh().await;
    let s = stream("complaint-C2026.000001");
    let mut original = events(0, 3);
    original[0].event_type = "complaint-received".into();
    original[0].schema_version = 65535;
    original[0].occurred_at = DateTime::from_timestamp(1_900_000_000, 999_999_999).expect("valid time");
    original[0].actor = Actor { person: "王五".into(), body: "街道办-7".into(), role: "street-office".into() };
    original[0].payload = "{\"地址\":\"幸福里 3 栋\"}".as_bytes().to_vec();
    original[1].payload = Vec::new();
    original[2].payload = vec![0u8; 10_000];
    original[2].causation_id = original[1].id;
    let before: DateTime<Utc> = Utc::now() - chrono::Duration::seconds(5);
    store.append(&s, ExpectedRevision::NoStream, original.clone()).await.unwrap();
    let after: DateTime<Utc> = Utc::now() + chrono::Duration::seconds(5);
    let stored = read_whole_stream(&store, &s).await;
    assert_eq!(stored.iter().map(|e| e.event.clone()).collect::<Vec<_>>(), original);
    let mut prev = ZERO_HASH;
    for event in &stored {
        assert!(event.recorded_at > before && event.recorded_at < after);
        assert_eq!(event.prev_hash, prev);
        let computed = event_hash(&HashedFields {
            stream: &event.stream,
            revision: event.revision,
            recorded_at: event.recorded_at,
            prev_hash: &event.prev_hash,
            event: &event.event,
        })
        .unwrap();
        assert_eq!(event.hash, computed);
        prev = event.hash;
    }
    // The chain continues across appends.
    store.append(&s, ExpectedRevision::Exact(2), events(3, 1)).await.unwrap();
    let continued = store.read_stream(&s, Direction::Backwards, StreamFrom::End, 1).await.unwrap();
    assert_eq!(continued[0].prev_hash, prev);
    let from_log = read_whole_log(&store).await;
    assert_eq!(&from_log[..3], &stored[..]);
}

/// Writers racing with `Exact` expectations: exactly one wins each revision, the losers
/// are told the current revision, and no event is lost or doubled.
pub async fn concurrent_exact_appenders_conflict_cleanly<H: Harness>(harness: &H) {
    let store = Arc::new(harness.fresh().await);
    let s = stream("complaint-race");
    let writers = 8;
    let wins_per_writer = 12;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store = Arc::clone(&store);
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            let mut conflicts = 0u64;
            while won.len() < wins_per_writer {
                let last = store.read_stream(&s, Direction::Backwards, StreamFrom::End, 1).await.unwrap();
                let expected = match last.first() {
                    Some(e) => ExpectedRevision::Exact(e.revision),
                    None => ExpectedRevision::NoStream,
                };
                let batch = events(writer * 1000 + won.len() as u64, 1);
                let id = batch[0].id;
                match store.append(&s, expected, batch).await {
                    Ok(result) => won.push((id, result)),
                    Err(AppendError::WrongExpectedRevision { current, .. }) => {
                        conflicts += 1;
                        // The stream has moved past what we read.
                        let seen = last.first().map(|e| e.revision);
                        assert!(current.is_some() && current > seen, "{current:?} vs {seen:?}");
                    }
                    Err(other) => panic!("unexpected append error: {other}"),
                }
            }
            (won, conflicts)
        }));
    }
    let mut results: Vec<(EventId, AppendResult)> = Vec::new();
    for task in tasks {
        let (won, _conflicts) = task.await.unwrap();
        results.extend(won);
    }
    let stored = read_whole_stream(&*store, &s).await;
    assert_eq!(stored.len() as u64, writers * wins_per_writer as u64);
    let mut by_revision: BTreeMap<u64, EventId> = BTreeMap::new();
    for (id, result) in &results {
        assert!(by_revision.insert(result.revision, *id).is_none());
    }
    for event in &stored {
        assert_eq!(by_revision.get(&event.revision), Some(&event.event.id));
    }
    assert!(verify_stream(&*store, &s).await.unwrap().is_intact());
}

/// Concurrent appends to distinct streams all succeed and all show in the log.
pub async fn concurrent_appends_to_distinct_streams<H: Harness>(harness: &H) {
    let store = Arc::new(harness.fresh().await);
    let mut tasks = Vec::new();
    for writer in 0..16u64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let s = stream(&format!("complaint-W{writer}"));
            for n in 0..20u64 {
                let result =
                    store.append(&s, ExpectedRevision::Any, events(writer * 100 + n, 1 + n % 2)).await.unwrap();
                assert_eq!(result.revision, (0..=n).map(|k| 1 + k % 2).sum::<u64>() - 1);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let all = read_whole_log(&*store).await;
    assert_eq!(all.len(), 16 * 30);
    assert_eq!(all.iter().map(|e| e.event.id).collect::<HashSet<_>>().len(), all.len());
    let report = verify_all(&*store).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.streams_checked, 16);
}

/// A subscription from the start delivers what is stored, then follows new appends.
pub async fn subscription_catches_up_then_follows_live<H: Harness>(harness: &H) {
    let store = harness.fresh().await;
    let s = stream("complaint-S1");
    store.append(&s, ExpectedRevision::Any, events(0, 5)).await.unwrap();
    let mut subscription = store.subscribe_all(ReadFrom::Start).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(next_in_time(&mut subscription).await);
    }
    // Caught up: nothing arrives until something is appended.
    let early = tokio::time::timeout(Duration::from_millis(100), subscription.next()).await;
    assert!(early.is_err(), "a caught-up subscription waits");
    let live = events(5, 2);
    store.append(&s, ExpectedRevision::Exact(4), live.clone()).await.unwrap();
    seen.push(next_in_time(&mut subscription).await);
    seen.push(next_in_time(&mut subscription).await);
    assert_eq!(seen, read_whole_log(&store).await);
    // After a position: only what follows it.
    let mut after = store.subscribe_all(ReadFrom::After(seen[4].position)).await.unwrap();
    let batch = tokio::time::timeout(PATIENCE, after.next_batch(10)).await.unwrap().unwrap();
    assert_eq!(ids(&batch), live.iter().map(|e| e.id).collect::<Vec<_>>());
    // From the head: nothing until the next append.
    let mut from_head = store.subscribe_all(ReadFrom::After(seen[6].position)).await.unwrap();
    let next = events(7, 1);
    store.append(&s, ExpectedRevision::Any, next.clone()).await.unwrap();
    assert_eq!(next_in_time(&mut from_head).await.event.id, next[0].id);
}

/// Subscribers started at different moments while many writers append see every event
/// after their start exactly once, in position order.
pub async fn subscriptions_with_concurrent_writers_have_no_gap_or_duplicate<H: Harness>(harness: &H) {
    let store = Arc::new(harness.fresh().await);
    let writers = 8u64;
    let per_writer = 40u64;
    store.append(&stream("complaint-pre"), ExpectedRevision::Any, events(0, 3)).await.unwrap();
    let from_start = store.subscribe_all(ReadFrom::Start).await.unwrap();
    let mut writer_tasks = Vec::new();
    for writer in 0..writers {
        let store = Arc::clone(&store);
        writer_tasks.push(tokio::spawn(async move {
            let s = stream(&format!("complaint-live{writer}"));
            for n in 0..per_writer {
                store.append(&s, ExpectedRevision::Any, events(writer * 1000 + n, 1)).await.unwrap();
                if n % 10 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    // A second subscriber starts mid-stream, after whatever the head is now.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mid_head = store.head().await.unwrap();
    let mid_from = match mid_head {
        Some(position) => ReadFrom::After(position),
        None => ReadFrom::Start,
    };
    let from_middle = store.subscribe_all(mid_from).await.unwrap();
    let total = 3 + writers * per_writer;
    let collect = |mut subscription: <H::Store as EventStore>::Subscription, until: u64| async move {
        let mut got = Vec::new();
        while (got.len() as u64) < until {
            let batch = tokio::time::timeout(PATIENCE, subscription.next_batch(7))
                .await
                .expect("subscription keeps up")
                .expect("subscription delivers");
            assert!(!batch.is_empty() && batch.len() <= 7);
            got.extend(batch);
        }
        got
    };
    let start_task = tokio::spawn(collect(from_start, total));
    for task in writer_tasks {
        task.await.unwrap();
    }
    let log = read_whole_log(&*store).await;
    assert_eq!(log.len() as u64, total);
    let expected_mid: Vec<RecordedEvent> =
        log.iter().filter(|e| mid_head.is_none_or(|head| e.position > head)).cloned().collect();
    let mid_got = collect(from_middle, expected_mid.len() as u64).await;
    let start_got = start_task.await.unwrap();
    assert_eq!(ids(&start_got), ids(&log));
    assert_eq!(ids(&mid_got), ids(&expected_mid));
}

/// A subscriber that does not pull while thousands of events are appended still gets
/// all of them, in order, when it resumes.
pub async fn slow_subscriber_gets_everything<H: Harness>(harness: &H) {
    let store = harness.fresh().await;
    let mut subscription = store.subscribe_all(ReadFrom::Start).await.unwrap();
    let s = stream("complaint-slow");
    let mut appended = Vec::new();
    for n in 0..200 {
        let batch = events(n * 10, 10);
        appended.extend(batch.iter().map(|e| e.id));
        store.append(&s, ExpectedRevision::Any, batch).await.unwrap();
    }
    let mut got = Vec::new();
    while got.len() < appended.len() {
        let batch = tokio::time::timeout(PATIENCE, subscription.next_batch(333)).await.unwrap().unwrap();
        got.extend(batch);
    }
    assert_eq!(ids(&got), appended);
}

/// Verification passes on what a store recorded and names the first altered event of a
/// tampered copy, with its stream, revision and position.
pub async fn verification_finds_tampering<H: Harness>(harness: &H) {
    let store = harness.fresh().await;
    let a = stream("complaint-V1");
    let b = stream("complaint-V2");
    for n in 0..6 {
        store.append(&a, ExpectedRevision::Any, events(n, 2)).await.unwrap();
        store.append(&b, ExpectedRevision::Any, events(100 + n, 1)).await.unwrap();
    }
    let report = verify_all(&store).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.events_checked, report.streams_checked), (18, 2));
    let report = verify_stream(&store, &a).await.unwrap();
    assert!(report.is_intact());
    assert_eq!(report.events_checked, 12);
    let empty = verify_stream(&store, &stream("complaint-none")).await.unwrap();
    assert_eq!(empty.events_checked, 0);
    let mut log = read_whole_log(&store).await;
    let victim = log.iter().position(|e| e.stream == a && e.revision == 7).unwrap();
    log[victim].event.payload = b"{\"n\":\"forged\"}".to_vec();
    let mut verifier = ChainVerifier::new();
    let broken = log.iter().find_map(|e| verifier.check(e).err()).expect("the forgery is found");
    assert_eq!(broken.stream, a);
    assert_eq!(broken.revision, 7);
    assert_eq!(broken.position, log[victim].position);
    assert!(matches!(broken.kind, BrokenLinkKind::HashMismatch { .. }));
}

/// The head is the last position, or `None` on an empty log.
pub async fn head_tracks_the_last_position<H: Harness>(harness: &H) {
    let store = harness.fresh().await;
    assert_eq!(store.head().await.unwrap(), None);
    let s = stream("complaint-H1");
    let mut last = Position(0);
    for n in 0..5 {
        let result = store.append(&s, ExpectedRevision::Any, events(n * 3, 3)).await.unwrap();
        assert!(result.position > last);
        last = result.position;
        assert_eq!(store.head().await.unwrap(), Some(last));
    }
}

/// Closing refuses new appends and ends subscriptions after they delivered the log.
pub async fn close_refuses_appends_and_ends_subscriptions<H: Harness>(harness: &H) {
    let store = harness.fresh().await;
    let s = stream("complaint-X1");
    store.append(&s, ExpectedRevision::Any, events(0, 2)).await.unwrap();
    let mut subscription = store.subscribe_all(ReadFrom::Start).await.unwrap();
    let waiting = store.subscribe_all(ReadFrom::Start).await.unwrap();
    store.close().await.unwrap();
    let refused = store.append(&s, ExpectedRevision::Any, events(2, 1)).await.unwrap_err();
    assert!(matches!(refused, AppendError::Closed), "{refused}");
    next_in_time(&mut subscription).await;
    next_in_time(&mut subscription).await;
    let end = tokio::time::timeout(PATIENCE, subscription.next()).await.unwrap();
    assert!(matches!(end, Err(SubscriptionError::Closed)), "{end:?}");
    drop(waiting);
    // Closing twice is harmless.
    store.close().await.unwrap();
}

/// Expands to one `#[tokio::test]` per contract check, each with a fresh store from
/// the given harness expression.
#[macro_export]
macro_rules! contract_tests {
    ($harness:expr) => {
        $crate::contract_tests!(@each $harness;
            append_assigns_revisions_and_positions,
            expected_revision_is_enforced,
            malformed_appends_are_refused,
            idempotent_retry_returns_original_result,
            ids_stored_elsewhere_are_refused,
            read_stream_forwards_and_backwards,
            read_all_in_batches,
            envelope_round_trips_and_chains_link,
            concurrent_exact_appenders_conflict_cleanly,
            concurrent_appends_to_distinct_streams,
            subscription_catches_up_then_follows_live,
            subscriptions_with_concurrent_writers_have_no_gap_or_duplicate,
            slow_subscriber_gets_everything,
            verification_finds_tampering,
            head_tracks_the_last_position,
            close_refuses_appends_and_ends_subscriptions
        );
    };
    (@each $harness:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let harness = $harness;
                $crate::contract::$check(&harness).await;
            }
        )*
    };
}
