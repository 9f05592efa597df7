//! The property test of durability under faults: random concurrent appends against the
//! in-memory file system, with a write or sync failing (and a write tearing) at a random
//! point, then a simulated crash that keeps a random share of unsynced bytes, then a
//! reopen. The reference model advances only on acknowledged appends.
//!
//! What must hold after the reopen: every acknowledged append is there, at the position
//! and revisions it was acknowledged with; nothing precedes an acknowledged event but
//! acknowledged events; after the last acknowledged event there may be appends whose
//! acknowledgement was lost to the fault (their bytes reached the disk before the
//! failed sync, or the crash kept them), but only whole ones; and every chain verifies.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use tousu_store::contract::{events, stream};
use tousu_store::{AppendError, AppendResult, EventId, EventStore, ExpectedRevision, ReadFrom, StreamName, verify_all};
use tousu_store_embedded::fault::{FaultPlan, MemStorage};
use tousu_store_embedded::{EmbeddedOptions, EmbeddedStore};

#[derive(Debug, Clone, Copy)]
struct Op {
    stream: u8,
    count: u8,
    /// 0: any, 1: the revision the model knows, 2: a retry of an acknowledged append.
    mode: u8,
}

fn op() -> impl Strategy<Value = Op> {
    (0u8..4, 1u8..=3, 0u8..3).prop_map(|(stream, count, mode)| Op { stream, count, mode })
}

fn fault() -> impl Strategy<Value = FaultPlan> {
    prop_oneof![
        1 => Just(FaultPlan::default()),
        3 => (0u64..24, 0usize..900).prop_map(|(n, tear)| FaultPlan {
            fail_write: Some(n),
            tear_bytes: tear,
            fail_sync: None,
        }),
        3 => (0u64..24).prop_map(|n| FaultPlan {
            fail_sync: Some(n),
            ..FaultPlan::default()
        }),
    ]
}

struct Acked {
    stream: StreamName,
    ids: Vec<EventId>,
    result: AppendResult,
}

async fn run_case(chunks: Vec<Vec<Op>>, plan: FaultPlan, keep: u8) -> Result<(), TestCaseError> {
    let storage = MemStorage::new();
    let options = EmbeddedOptions { segment_size: 4096, storage: Arc::new(storage.clone()) };
    let dir = Path::new("/mem/log");
    let store = Arc::new(EmbeddedStore::open_with(dir, options.clone()).unwrap());
    let (writes, syncs) = storage.counts();
    storage.set_plan(FaultPlan {
        fail_write: plan.fail_write.map(|n| n + writes),
        tear_bytes: plan.tear_bytes,
        fail_sync: plan.fail_sync.map(|n| n + syncs),
    });
    let mut acked: Vec<Acked> = Vec::new();
    let mut maybe: Vec<(StreamName, Vec<EventId>)> = Vec::new();
    let mut known: HashMap<StreamName, u64> = HashMap::new();
    let mut serial = 0u64;
    for chunk in chunks {
        let mut tasks = Vec::new();
        for op in chunk {
            let name = stream(&format!("complaint-{}", op.stream));
            let (expected, batch, retry_of) = if op.mode == 2 && !acked.is_empty() {
                let original = &acked[serial as usize % acked.len()];
                let batch: Vec<_> = original
                    .ids
                    .iter()
                    .map(|id| {
                        let mut e = events(0, 1).remove(0);
                        e.id = *id;
                        e
                    })
                    .collect();
                (ExpectedRevision::Any, batch, Some((original.stream.clone(), original.result)))
            } else {
                let expected = match (op.mode, known.get(&name)) {
                    (1, Some(count)) => ExpectedRevision::Exact(count - 1),
                    (1, None) => ExpectedRevision::NoStream,
                    _ => ExpectedRevision::Any,
                };
                (expected, events(serial * 10, u64::from(op.count)), None)
            };
            serial += 1;
            let name = retry_of.as_ref().map_or(name, |(s, _)| s.clone());
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                let ids: Vec<EventId> = batch.iter().map(|e| e.id).collect();
                let outcome = store.append(&name, expected, batch).await;
                (name, ids, outcome, retry_of)
            }));
        }
        for task in tasks {
            let (name, ids, outcome, retry_of) = task.await.unwrap();
            match (outcome, retry_of) {
                (Ok(result), Some((_, original))) => prop_assert_eq!(result, original),
                (Ok(result), None) => {
                    let count = known.entry(name.clone()).or_insert(0);
                    *count = (*count).max(result.revision + 1);
                    acked.push(Acked { stream: name, ids, result });
                }
                (Err(AppendError::Io { .. }), None) => maybe.push((name, ids)),
                (Err(AppendError::Io { .. } | AppendError::PreviousIo), Some(_)) => {}
                (Err(AppendError::PreviousIo), None) => {}
                (Err(AppendError::WrongExpectedRevision { .. }), None) => {}
                (Err(other), _) => prop_assert!(false, "unexpected error {other}"),
            }
        }
    }
    store.close().await.unwrap();
    drop(store);
    let faulted = storage.faults_injected() > 0;
    storage.set_plan(FaultPlan::default());
    storage.crash(|extra| extra * usize::from(keep) / 255);

    let store = EmbeddedStore::open_with(dir, options).expect("the log opens after a crash");
    let log = store.read_all(ReadFrom::Start, usize::MAX).await.unwrap();
    prop_assert_eq!(store.recovery().events, log.len() as u64);
    let mut last_acked = 0u64;
    for append in &acked {
        let last = append.result.position.0 as usize;
        let n = append.ids.len();
        prop_assert!(last <= log.len(), "acknowledged position {} lost", last);
        for (k, id) in append.ids.iter().enumerate() {
            let event = &log[last - n + k];
            prop_assert_eq!(event.event.id, *id);
            prop_assert_eq!(&event.stream, &append.stream);
            prop_assert_eq!(event.revision, append.result.revision + 1 - n as u64 + k as u64);
        }
        last_acked = last_acked.max(append.result.position.0);
    }
    let acked_events: usize = acked.iter().map(|a| a.ids.len()).sum();
    prop_assert_eq!(acked_events as u64, last_acked, "only acknowledged events before the last acknowledged one");
    // The rest: whole unacknowledged appends, each at most once.
    let mut rest = &log[last_acked as usize..];
    let mut unused = maybe.clone();
    while let Some(first) = rest.first() {
        let found = unused.iter().position(|(s, ids)| *s == first.stream && ids[0] == first.event.id);
        prop_assert!(found.is_some(), "event {} at the tail is no unacknowledged append", first.position);
        let (_, ids) = unused.remove(found.unwrap());
        prop_assert!(rest.len() >= ids.len(), "half an append at the tail");
        let stored: Vec<EventId> = rest[..ids.len()].iter().map(|e| e.event.id).collect();
        prop_assert_eq!(stored, ids.clone(), "an unacknowledged append is not whole");
        rest = &rest[ids.len()..];
    }
    let report = verify_all(&store).await.unwrap();
    prop_assert!(report.is_intact(), "{:?}", report);
    {
        let mut stats = STATS.lock().unwrap();
        stats.cases += 1;
        stats.faulted += u64::from(faulted);
        stats.unacknowledged_kept += (maybe.len() - unused.len()) as u64;
        stats.unacknowledged_lost += unused.len() as u64;
        stats.torn_tails += u64::from(store.recovery().torn_tail.is_some());
    }
    // The reopened store takes appends again.
    store.append(&stream("complaint-after"), ExpectedRevision::Any, events(999_999, 2)).await.unwrap();
    store.close().await.unwrap();
    Ok(())
}

#[test]
fn only_acknowledged_appends_are_promised_after_a_fault_and_a_crash() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(160));
    let strategy = (proptest::collection::vec(proptest::collection::vec(op(), 1..5), 1..25), fault(), any::<u8>());
    runner
        .run(&strategy, |(chunks, plan, keep)| {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(run_case(chunks, plan, keep))
        })
        .unwrap();
    // The property must have been exercised, not passed vacuously.
    let stats = STATS.lock().unwrap();
    assert!(stats.faulted * 3 >= stats.cases, "{stats:?}");
    assert!(stats.unacknowledged_kept > 0, "{stats:?}");
    assert!(stats.unacknowledged_lost > 0, "{stats:?}");
    assert!(stats.torn_tails > 0, "{stats:?}");
}

#[derive(Debug, Default)]
struct Stats {
    cases: u64,
    faulted: u64,
    unacknowledged_kept: u64,
    unacknowledged_lost: u64,
    torn_tails: u64,
}

static STATS: std::sync::Mutex<Stats> = std::sync::Mutex::new(Stats {
    cases: 0,
    faulted: 0,
    unacknowledged_kept: 0,
    unacknowledged_lost: 0,
    torn_tails: 0,
});
