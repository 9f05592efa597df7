//! The audit service as the discipline commission and remote workers use it (ACC-1): the whole
//! log in order without a gap, a live follow, hash chains that verify, and streams read in
//! both directions.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio_stream::StreamExt as _;
use tonic::Code;
use tousu_api::pb;
use tousu_e2e::flows::{classify, handling_lead, record_finding, register, register_lead, transfer};
use tousu_e2e::refusal::{ok, refused};
use tousu_e2e::requests::{registration, unique_uscc};
use tousu_e2e::server::{AUDITOR, HANDLER_SJ, OPERATOR, SYSTEM, TestServer};

/// A few commands of several kinds on several streams; returns their answers.
async fn some_history(server: &TestServer) -> Vec<pb::CommandResult> {
    let uscc = unique_uscc();
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(register(server, registration(&uscc)).await);
    }
    let id = &answers[0].complaint_id.clone();
    answers.push(classify(server, id, "SJ-3-1", pb::Urgency::Normal, pb::Complexity::General).await);
    answers.push(transfer(server, id, pb::Body::Sj).await);
    let handled = handling_lead(server, &unique_uscc(), "SJ-3-1", pb::Complexity::General).await;
    answers.push(record_finding(server, HANDLER_SJ, &handled, pb::Finding::Substantiated).await);
    answers
}

#[tokio::test(flavor = "multi_thread")]
async fn acc_1_the_whole_log_streams_in_position_order_without_a_gap_and_chains_per_stream() {
    let server = TestServer::start().await;
    let answers = some_history(&server).await;
    // tousu counts the leads on their companies' streams from the log, a moment after the
    // commands (its reactor gathers them for about 10 ms): wait for those counts.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let events = loop {
        let events = server.all_events().await;
        if events.iter().any(|event| event.stream.starts_with("enterprise-")) || std::time::Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };

    // The embedded log numbers its events 1, 2, 3, … with no gap.
    let positions: Vec<u64> = events.iter().map(|event| event.position).collect();
    assert_eq!(positions, (1..=events.len() as u64).collect::<Vec<_>>());
    // Every command's last event is where its answer says.
    for answer in &answers {
        let event = &events[answer.position as usize - 1];
        assert_eq!(event.stream, answer.stream, "{answer:?}");
        assert_eq!(event.revision, answer.revision, "{answer:?}");
        assert_eq!(Some(&event.event_type), answer.event_types.last(), "{answer:?}");
    }
    // Each stream's events chain: revisions 0, 1, 2, …, each naming the previous one's hash.
    let mut streams: BTreeMap<&str, Vec<&pb::RecordedEvent>> = BTreeMap::new();
    for event in &events {
        streams.entry(event.stream.as_str()).or_default().push(event);
    }
    for (stream, chain) in &streams {
        for (index, event) in chain.iter().enumerate() {
            assert_eq!(event.revision, index as u64, "{stream}");
            assert_eq!(event.hash.len(), 32, "{stream} SHA-256");
            let previous = if index == 0 { vec![0; 32] } else { chain[index - 1].hash.clone() };
            assert_eq!(event.prev_hash, previous, "{stream} revision {index}");
            assert!(event.schema_version >= 1);
            assert!(event.actor.is_some() && event.occurred_at.is_some() && event.recorded_at.is_some());
            assert!(event.payload.starts_with(b"{"), "a JSON payload");
        }
    }
    let unique: BTreeSet<&str> = events.iter().map(|event| event.id.as_str()).collect();
    assert_eq!(unique.len(), events.len(), "event ids are unique");
    assert!(streams.keys().any(|stream| stream.starts_with("enterprise-")), "company streams are in the log too");

    // From a position: exactly the events after it.
    let middle = events.len() as u64 / 2;
    // (tousu's company counts may have added events since, at the end.)
    let ids = |events: &[pb::RecordedEvent]| events.iter().map(|event| event.id.clone()).collect::<Vec<_>>();
    let tail = server.events_after(Some(middle)).await;
    assert!(tail.len() >= events.len() - middle as usize);
    assert_eq!(ids(&tail[..events.len() - middle as usize]), ids(&events[middle as usize..]));
    assert_eq!(tail[0].position, middle + 1);
    // tousu's own workers read it as well; others may not.
    let system = server.audit(SYSTEM).stream_all(pb::StreamAllRequest { after_position: None, follow: false }).await;
    ok(system, "StreamAll as system");
    let operator =
        server.audit(OPERATOR).stream_all(pb::StreamAllRequest { after_position: None, follow: false }).await;
    refused(operator).code(Code::PermissionDenied);
}

/// The next event of a following stream, within 10 s.
async fn next_event(stream: &mut tonic::Streaming<pb::RecordedEvent>) -> pb::RecordedEvent {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an event within 10 s")
        .expect("the stream stays open")
        .expect("an event, not an error")
}

#[tokio::test(flavor = "multi_thread")]
async fn acc_1_a_following_reader_catches_up_then_receives_new_events_live() {
    let server = TestServer::start().await;
    let before = register_lead(&server, &unique_uscc()).await;
    let mut from_start = ok(
        server.audit(AUDITOR).stream_all(pb::StreamAllRequest { after_position: None, follow: true }).await,
        "StreamAll follow",
    );
    // Catch-up: the existing registration comes first.
    let first = next_event(&mut from_start).await;
    assert_eq!((first.position, first.stream.as_str()), (1, format!("complaint-{before}").as_str()));

    // A reader that starts at the head sees only what comes after it.
    let head = server.log_head().await.expect("a non-empty log");
    let mut from_head = ok(
        server.audit(SYSTEM).stream_all(pb::StreamAllRequest { after_position: Some(head), follow: true }).await,
        "StreamAll follow from the head",
    );
    let after = register_lead(&server, &unique_uscc()).await;
    let live = next_event(&mut from_head).await;
    assert!(live.position > head);
    let registered = if live.stream == format!("complaint-{after}") {
        live
    } else {
        // The company count of the first lead may land between the head and the new lead.
        assert!(live.stream.starts_with("enterprise-"), "{live:?}");
        next_event(&mut from_head).await
    };
    assert_eq!(registered.stream, format!("complaint-{after}"));
    assert_eq!(registered.event_type, "complaint.registered");

    // The reader from the start receives everything in order, with no gap, up to the live
    // event.
    let mut position = first.position;
    loop {
        let event = next_event(&mut from_start).await;
        assert_eq!(event.position, position + 1, "no gap, no duplicate");
        position = event.position;
        if event.position == registered.position {
            assert_eq!(event, registered);
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn acc_1_verify_finds_the_whole_log_and_each_stream_intact() {
    let server = TestServer::start().await;
    let answers = some_history(&server).await;
    let events = server.all_events().await;
    let streams: BTreeSet<&str> = events.iter().map(|event| event.stream.as_str()).collect();
    for principal in [AUDITOR, OPERATOR, SYSTEM] {
        let report = ok(server.audit(principal).verify(pb::VerifyRequest { stream: String::new() }).await, "Verify");
        assert!(report.intact, "{report:?}");
        assert!(report.first_broken.is_none());
        // Company counts may still be arriving: the report covers at least what was read.
        assert!(report.events_checked >= events.len() as u64, "{report:?}");
        assert!(report.streams_checked >= streams.len() as u64, "{report:?}");
        assert!(report.last_position >= events.last().expect("events").position, "{report:?}");
    }
    // The head a reader measures its lag against is the last position of the log.
    // (Company counts may still be arriving, so the head only grows between the reads.)
    let head = ok(server.audit(SYSTEM).get_head(pb::GetHeadRequest {}).await, "GetHead").position;
    assert!(head >= events.last().expect("events").position);
    assert!(server.log_head().await.is_some_and(|last| last >= head));
    let lead_stream = &answers[0].stream;
    let report = ok(server.audit(AUDITOR).verify(pb::VerifyRequest { stream: lead_stream.clone() }).await, "Verify");
    assert!(report.intact, "{report:?}");
    assert_eq!(
        (report.events_checked, report.streams_checked),
        (server.stream_events(lead_stream).await.len() as u64, 1)
    );
    let refusal =
        refused(server.audit(AUDITOR).verify(pb::VerifyRequest { stream: "no such stream!".to_owned() }).await);
    refusal.code(Code::InvalidArgument).field("stream");
    refused(server.audit(HANDLER_SJ).verify(pb::VerifyRequest { stream: String::new() }).await)
        .code(Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread")]
async fn acc_1_a_stream_reads_backwards_newest_first_and_forwards_from_any_revision() {
    let server = TestServer::start().await;
    let id = handling_lead(&server, &unique_uscc(), "SJ-3-1", pb::Complexity::General).await;
    record_finding(&server, HANDLER_SJ, &id, pb::Finding::Substantiated).await;
    let stream = format!("complaint-{id}");
    let read = |backwards: bool, from_revision: Option<u64>, limit: u32| pb::ReadStreamRequest {
        stream: stream.clone(),
        backwards,
        from_revision,
        limit,
    };
    let revisions = |events: &[pb::RecordedEvent]| events.iter().map(|event| event.revision).collect::<Vec<_>>();
    let mut audit = server.audit(AUDITOR);
    let forwards = ok(audit.read_stream(read(false, None, 0)).await, "ReadStream").events;
    assert_eq!(revisions(&forwards), [0, 1, 2, 3, 4]);
    let backwards = ok(audit.read_stream(read(true, None, 0)).await, "ReadStream backwards").events;
    assert_eq!(revisions(&backwards), [4, 3, 2, 1, 0]);
    assert_eq!(backwards.iter().rev().cloned().collect::<Vec<_>>(), forwards, "the same events");
    assert_eq!(backwards[0].event_type, "complaint.finding_recorded", "the newest first");
    let page = ok(audit.read_stream(read(true, Some(3), 2)).await, "ReadStream backwards from 3").events;
    assert_eq!(revisions(&page), [3, 2]);
    let page = ok(audit.read_stream(read(false, Some(3), 10)).await, "ReadStream forwards from 3").events;
    assert_eq!(revisions(&page), [3, 4]);
    let newest = ok(audit.read_stream(read(true, None, 1)).await, "the newest event").events;
    assert_eq!(revisions(&newest), [4]);
    refused(audit.read_stream(read(true, None, 1001)).await).code(Code::InvalidArgument).field("limit");
    // A stream with no events reads as empty.
    let nothing = pb::ReadStreamRequest {
        stream: "complaint-C0000000000000000".to_owned(),
        backwards: true,
        from_revision: None,
        limit: 10,
    };
    assert!(ok(audit.read_stream(nothing).await, "ReadStream of nothing").events.is_empty());
}
