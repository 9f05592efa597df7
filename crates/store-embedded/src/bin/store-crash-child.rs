//! The crash test's child process: opens the store in the directory given as the first
//! argument and appends from many threads at once, each to its own streams, printing one
//! line per acknowledged append to stdout, flushed right after the acknowledgement:
//!
//! `ack <stream> <first revision> <last revision> <last position> <id>,<id>,...`
//!
//! It runs until it is killed. Payloads name the append and each event's index in it,
//! so the test can tell a whole append from a half-written one.

use std::future::Future;
use std::io::Write;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use chrono::DateTime;
use tousu_store::{Actor, Direction, EventId, EventStore, ExpectedRevision, ProposedEvent, StreamFrom, StreamName};
use tousu_store_embedded::EmbeddedStore;

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on this thread; the store needs no runtime.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

const WRITERS: u64 = 16;
const STREAMS_PER_WRITER: u64 = 3;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: store-crash-child DIR SEED");
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).expect("usage: store-crash-child DIR SEED");
    let store = match EmbeddedStore::open(&dir) {
        Ok(store) => Arc::new(store),
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "open failed: {error}");
            std::process::exit(2);
        }
    };
    let stdout = Arc::new(Mutex::new(std::io::stdout()));
    let mut threads = Vec::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        let stdout = Arc::clone(&stdout);
        threads.push(std::thread::spawn(move || {
            let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (writer + 1).wrapping_mul(0xA24B_AED4_963E_E407);
            let streams: Vec<StreamName> = (0..STREAMS_PER_WRITER)
                .map(|k| StreamName::new(format!("crash-w{writer}-s{k}")).expect("valid name"))
                .collect();
            let mut last: Vec<Option<u64>> = streams
                .iter()
                .map(|s| {
                    block_on(store.read_stream(s, Direction::Backwards, StreamFrom::End, 1))
                        .expect("reading the stream's end")
                        .first()
                        .map(|e| e.revision)
                })
                .collect();
            for append in 0u64.. {
                let k = (xorshift(&mut rng) % STREAMS_PER_WRITER) as usize;
                let n = 1 + xorshift(&mut rng) % 3;
                let events: Vec<ProposedEvent> = (0..n)
                    .map(|i| ProposedEvent {
                        id: EventId::from_u128((u128::from(xorshift(&mut rng)) << 64) | u128::from(xorshift(&mut rng))),
                        event_type: "crash-test".into(),
                        schema_version: 1,
                        occurred_at: DateTime::from_timestamp(1_780_000_000, 0).expect("valid"),
                        actor: Actor { person: format!("writer-{writer}"), body: "crash".into(), role: "test".into() },
                        correlation_id: EventId::from_u128(u128::from(seed)),
                        causation_id: EventId::from_u128(u128::from(append)),
                        payload: format!(
                            "{{\"seed\":{seed},\"append\":{append},\"i\":{i},\"n\":{n},\"pad\":\"{}\"}}",
                            "x".repeat((xorshift(&mut rng) % 200) as usize)
                        )
                        .into_bytes(),
                    })
                    .collect();
                let ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
                let expected = match last[k] {
                    Some(revision) => ExpectedRevision::Exact(revision),
                    None => ExpectedRevision::NoStream,
                };
                match block_on(store.append(&streams[k], expected, events)) {
                    Ok(result) => {
                        last[k] = Some(result.revision);
                        let line = format!(
                            "ack {} {} {} {} {}\n",
                            streams[k],
                            result.revision + 1 - n,
                            result.revision,
                            result.position,
                            ids.join(",")
                        );
                        let mut out = stdout.lock().unwrap_or_else(|e| e.into_inner());
                        if out.write_all(line.as_bytes()).and_then(|()| out.flush()).is_err() {
                            return;
                        }
                    }
                    Err(error) => {
                        let _ = writeln!(std::io::stderr(), "append failed: {error}");
                        std::process::exit(3);
                    }
                }
            }
        }));
    }
    for thread in threads {
        let _ = thread.join();
    }
}
