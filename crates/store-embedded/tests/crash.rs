//! The crash test that kills for real: a child process (`store-crash-child`) appends
//! from 16 threads and reports each acknowledged append; it is killed with SIGKILL at a
//! random moment, and the log is then opened here and checked: every acknowledged event
//! present at its stream and revision with its id, every append whole (nothing
//! half-written visible), every chain verifying. Then the next child continues the same
//! log.
//!
//! 50 cycles by default; `TOUSU_CRASH_CYCLES=1000` runs the long mode.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tousu_store::{ChainVerifier, Direction, EventId, EventStore, ReadFrom, RecordedEvent, StreamFrom, StreamName};
use tousu_store_embedded::EmbeddedStore;

struct Ack {
    stream: StreamName,
    first_revision: u64,
    ids: Vec<EventId>,
}

fn parse_ack(line: &str) -> Ack {
    let parts: Vec<&str> = line.split(' ').collect();
    assert_eq!(parts.len(), 6, "ack line {line:?}");
    assert_eq!(parts[0], "ack");
    let ids = parts[5].split(',').map(|id| EventId(id.parse().expect("uuid"))).collect::<Vec<_>>();
    let first_revision: u64 = parts[2].parse().unwrap();
    let last_revision: u64 = parts[3].parse().unwrap();
    assert_eq!(last_revision + 1 - first_revision, ids.len() as u64);
    Ack { stream: StreamName::new(parts[1]).unwrap(), first_revision, ids }
}

/// The append number, index and size a child wrote into a payload.
fn append_marks(event: &RecordedEvent) -> (u64, u64, u64, u64) {
    let text = std::str::from_utf8(&event.event.payload).expect("utf-8 payload");
    let field = |name: &str| -> u64 {
        let start = text.find(&format!("\"{name}\":")).expect("field") + name.len() + 3;
        let rest = &text[start..];
        let end = rest.find([',', '}']).unwrap();
        rest[..end].parse().unwrap()
    };
    (field("seed"), field("append"), field("i"), field("n"))
}

/// Follows every stream's appends in log order: an append must show all of its events,
/// consecutively, before the stream's next append begins.
#[derive(Default)]
struct WholeAppends {
    open: HashMap<StreamName, ((u64, u64), u64, u64)>,
}

impl WholeAppends {
    fn check(&mut self, event: &RecordedEvent) {
        let (seed, append, i, n) = append_marks(event);
        match self.open.remove(&event.stream) {
            Some((key, next, size)) => {
                assert_eq!(
                    (key, i, n),
                    ((seed, append), next, size),
                    "event {} of stream {} interrupts an unfinished append",
                    event.revision,
                    event.stream
                );
            }
            None => assert_eq!(i, 0, "event {} of {} starts mid-append", event.revision, event.stream),
        }
        if i + 1 < n {
            self.open.insert(event.stream.clone(), ((seed, append), i + 1, n));
        }
    }

    fn assert_all_whole(&self) {
        assert!(self.open.is_empty(), "half-written appends visible: {:?}", self.open.keys().collect::<Vec<_>>());
    }
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// A log is used for this many cycles, then the next cycles start a fresh one, so the
/// long mode does not spend its time re-reading an ever larger log.
const CYCLES_PER_LOG: u64 = 50;

#[derive(Default)]
struct Totals {
    killed_with_acks: u64,
    acked_events: u64,
    logged_events: u64,
    torn_tails: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_sigkill() {
    let cycles: u64 = std::env::var("TOUSU_CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let dir = common::TempDir::new("crash");
    let started = Instant::now();
    let mut rng = 0x5EED_0FC4_A5A5_u64;
    let mut totals = Totals::default();
    let mut done = 0;
    while done < cycles {
        let block = CYCLES_PER_LOG.min(cycles - done);
        let log = dir.path().join(format!("log-{}", done / CYCLES_PER_LOG));
        crash_cycles(&log, done, block, &mut rng, &mut totals).await;
        done += block;
    }
    let _ = writeln!(
        std::io::stderr(),
        "crash test: {cycles} cycles, {} killed mid-work, {} acknowledged events, {} in the logs, {} torn tails cut, {:.1?}",
        totals.killed_with_acks,
        totals.acked_events,
        totals.logged_events,
        totals.torn_tails,
        started.elapsed()
    );
    assert!(totals.killed_with_acks * 10 >= cycles * 7, "most kills should land while appending");
}

/// Runs `cycles` kill-and-check cycles on one log.
async fn crash_cycles(log: &Path, first_cycle: u64, cycles: u64, rng: &mut u64, totals: &mut Totals) {
    let child_path = env!("CARGO_BIN_EXE_store-crash-child");
    let mut acked: Vec<Ack> = Vec::new();
    let mut verifier = ChainVerifier::new();
    let mut whole = WholeAppends::default();
    let mut verified_to = ReadFrom::Start;
    for cycle in first_cycle..first_cycle + cycles {
        let mut child = Command::new(child_path)
            .arg(log)
            .arg(cycle.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning the crash child");
        let stdout = child.stdout.take().unwrap();
        let (line_sender, line_receiver) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            // Only whole lines count: a line cut by the kill was never fully reported.
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if line.ends_with('\n') && line_sender.send(line.trim_end().to_owned()).is_err() {
                    break;
                }
                line.clear();
            }
        });
        // Most kills land while appending; one in five lands anywhere, recovery
        // included, since a kill during opening must be harmless too.
        let mut lines = Vec::new();
        if !xorshift(rng).is_multiple_of(5)
            && let Ok(first) = line_receiver.recv_timeout(Duration::from_secs(30))
        {
            lines.push(first);
        }
        let delay = Duration::from_millis(xorshift(rng) % 100);
        std::thread::sleep(delay);
        let still_running = child.try_wait().unwrap().is_none();
        child.kill().expect("SIGKILL");
        let status = child.wait().unwrap();
        reader.join().unwrap();
        lines.extend(line_receiver.try_iter());
        if !still_running {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            panic!("the child exited by itself ({status}) in cycle {cycle}: {stderr}");
        }
        if !lines.is_empty() {
            totals.killed_with_acks += 1;
        }
        let first_new = acked.len();
        acked.extend(lines.iter().map(|l| parse_ack(l)));

        let store = EmbeddedStore::open(log).expect("the log opens after SIGKILL");
        if store.recovery().torn_tail.is_some() {
            totals.torn_tails += 1;
        }
        for ack in &acked[first_new..] {
            let stored = store
                .read_stream(&ack.stream, Direction::Forwards, StreamFrom::Revision(ack.first_revision), ack.ids.len())
                .await
                .unwrap();
            let stored_ids: Vec<EventId> = stored.iter().map(|e| e.event.id).collect();
            assert_eq!(stored_ids, ack.ids, "acknowledged append of {} lost in cycle {cycle}", ack.stream);
        }
        loop {
            let batch = store.read_all(verified_to, 2048).await.unwrap();
            let Some(last) = batch.last() else { break };
            verified_to = ReadFrom::After(last.position);
            for event in &batch {
                if let Err(broken) = verifier.check(event) {
                    panic!("chain broken in cycle {cycle}: {broken:?}");
                }
                whole.check(event);
            }
        }
        whole.assert_all_whole();
        store.close().await.unwrap();
    }
    // A last full pass: every acknowledged event of every cycle is still where it was.
    let store = EmbeddedStore::open(log).unwrap();
    let report = tousu_store::verify_all(&store).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    let streams: HashSet<StreamName> = acked.iter().map(|a| a.stream.clone()).collect();
    for stream in &streams {
        let stored = store.read_stream(stream, Direction::Forwards, StreamFrom::Start, usize::MAX).await.unwrap();
        for ack in acked.iter().filter(|a| &a.stream == stream) {
            let at = ack.first_revision as usize;
            let ids: Vec<EventId> = stored[at..at + ack.ids.len()].iter().map(|e| e.event.id).collect();
            assert_eq!(ids, ack.ids);
        }
    }
    store.close().await.unwrap();
    totals.acked_events += acked.iter().map(|a| a.ids.len() as u64).sum::<u64>();
    totals.logged_events += report.events_checked;
    let writers: HashSet<&str> = streams.iter().filter_map(|s| s.as_str().split('-').nth(1)).collect();
    assert_eq!(writers.len(), 16, "every writer thread of the child appended");
}
