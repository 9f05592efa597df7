//! The bounds of what a request may carry (`docs/operations.md`, "Field sizes";
//! `docs/api.md`, "Errors"): text longer than its field's bound, Timestamps that are no valid
//! instant, instants and dates outside the years 2000 to 2100, amounts above 10^12 fen and bytes
//! that are not the request message are refused naming the field (or the message) and the rule,
//! and write nothing; a refusal repeats only a short prefix of what it refuses; and the largest
//! lead the bounds allow is read back whole under the default 4 MiB message limit.

use std::time::{Duration, Instant, SystemTime};

use prost::Message as _;
use prost::bytes::{Buf as _, BufMut as _};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};
use tousu_api::pb;
use tousu_e2e::flows::{accept, classify, handling_lead, register_lead, status, timeline_types};
use tousu_e2e::refusal::{Refusal, ok, refused};
use tousu_e2e::requests::{registration, request_id, timestamp, unique_uscc};
use tousu_e2e::server::{AUDITOR, CITY_REVIEWER_SJ, HANDLER_SJ, REGISTRAR_ZJ, TestServer};

// The bounds as `docs/operations.md` states them, in characters (Unicode scalar values).
const CONTENT_MAX_CHARS: usize = 20_000;
const TEXT_MAX_CHARS: usize = 4_000;
const PERSON_NAME_MAX_CHARS: usize = 100;
const CONTACT_MAX_CHARS: usize = 200;
const ID_NUMBER_MAX_CHARS: usize = 32;
const COMPANY_NAME_MAX_CHARS: usize = 200;
const PLACE_MAX_CHARS: usize = 100;
const REFERENCE_MAX_CHARS: usize = 64;
const AMOUNT_MAX_FEN: u64 = 1_000_000_000_000;

/// The default limit of a message, request or answer.
const DEFAULT_MESSAGE_LIMIT: usize = 4 * 1024 * 1024;

/// A character that takes four bytes in UTF-8, the most any takes: a field of these is as
/// large in bytes as its bound allows.
const WIDEST: &str = "𠀀";

fn widest(chars: usize) -> String {
    WIDEST.repeat(chars)
}

#[tokio::test(flavor = "multi_thread")]
async fn reg_1_content_over_twenty_thousand_characters_is_refused_naming_the_field_and_nothing_is_written() {
    let server = TestServer::start().await;
    let head = server.log_head().await;
    let over = pb::RegisterRequest { content: "投".repeat(CONTENT_MAX_CHARS + 1), ..registration(&unique_uscc()) };
    refused(server.complaints(REGISTRAR_ZJ).register(over).await)
        .code(Code::InvalidArgument)
        .rule("REG-1")
        .field("content")
        .reason("FIELD_TOO_LONG")
        .mentions("20001 characters, at most 20000");
    // The 3.5 MiB of the attack, under the message limit, is refused the same way.
    let attack = pb::RegisterRequest { content: "投".repeat(3_500 * 1024 / 3), ..registration(&unique_uscc()) };
    refused(server.complaints(REGISTRAR_ZJ).register(attack).await)
        .code(Code::InvalidArgument)
        .rule("REG-1")
        .field("content")
        .reason("FIELD_TOO_LONG");
    // So are the other fields of a step over theirs.
    let id = handling_lead(&server, &unique_uscc(), "SJ-3-1", pb::Complexity::General).await;
    let head_after_lead = server.log_head().await;
    let finding = pb::RecordFindingRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        finding: pb::Finding::Substantiated.into(),
        summary: "实".repeat(TEXT_MAX_CHARS + 1),
        attribution: None,
    };
    refused(server.complaints(HANDLER_SJ).record_finding(finding).await)
        .code(Code::InvalidArgument)
        .rule("HDL-3")
        .field("summary")
        .reason("FIELD_TOO_LONG");
    server.assert_nothing_written_after(head_after_lead, "a finding over its bound").await;
    assert!(head < head_after_lead);
    assert_eq!(timeline_types(&server.complaint(&id).await).last(), Some(&"complaint.accepted"));
}

#[tokio::test(flavor = "multi_thread")]
async fn trf_3_a_refusal_repeats_only_a_short_prefix_of_a_one_mebibyte_value() {
    let server = TestServer::start().await;
    let id = register_lead(&server, &unique_uscc()).await;
    let head = server.log_head().await;
    let huge = "Z".repeat(1 << 20);
    let refusals: Vec<(&str, Result<(), Status>)> = vec![
        (
            "category",
            server
                .complaints(REGISTRAR_ZJ)
                .classify(pb::ClassifyRequest {
                    request_id: request_id(),
                    complaint_id: id.clone(),
                    category: huge.clone(),
                    urgency: pb::Urgency::Normal.into(),
                    complexity: pb::Complexity::General.into(),
                    split: Vec::new(),
                })
                .await
                .map(drop),
        ),
        (
            "complaint_id",
            server
                .queries(AUDITOR)
                .get_complaint(pb::GetComplaintRequest { complaint_id: huge.clone() })
                .await
                .map(drop),
        ),
        (
            "resolve_by",
            server
                .complaints(HANDLER_SJ)
                .submit_plan(pb::SubmitPlanRequest {
                    request_id: request_id(),
                    complaint_id: id.clone(),
                    plan: "分三步整改".to_owned(),
                    resolve_by: huge.clone(),
                })
                .await
                .map(drop),
        ),
    ];
    for (field, answer) in refusals {
        let status = answer.expect_err(field);
        let refusal = Refusal::of(&status);
        refusal
            .code(Code::InvalidArgument)
            .field(field)
            .names_a_rule()
            .mentions(&format!("{:?}… (1048576 characters)", "Z".repeat(64)));
        assert!(
            refusal.message.len() < 400,
            "{field}: a message of {} bytes: {}",
            refusal.message.len(),
            refusal.message
        );
    }
    // A text filter longer than its field is refused by its length, without repeating it.
    let list = pb::ListComplaintsRequest { district: huge, ..Default::default() };
    let refusal = refused(server.queries(AUDITOR).list_complaints(list).await);
    refusal.code(Code::InvalidArgument).field("district").reason("FIELD_TOO_LONG").rule("REG-1");
    assert!(refusal.message.len() < 200, "{}", refusal.message);
    server.assert_nothing_written_after(head, "refusals of one-mebibyte values").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hdl_3_the_largest_lead_the_bounds_allow_is_read_back_whole_by_get_complaint() {
    let server = TestServer::start().await;
    let uscc = unique_uscc();
    // Every field of the registration at its bound, in the widest characters.
    let largest = pb::RegisterRequest {
        request_id: request_id(),
        channel: pb::Channel::Hotline12345.into(),
        received_at: Some(timestamp(SystemTime::now() - Duration::from_secs(60))),
        complainant: Some(pb::Complainant {
            anonymous: false,
            name: widest(PERSON_NAME_MAX_CHARS),
            contact: widest(CONTACT_MAX_CHARS),
            id_number: widest(ID_NUMBER_MAX_CHARS),
        }),
        content: widest(CONTENT_MAX_CHARS),
        company: Some(pb::CompanyRef { uscc: uscc.clone(), name: widest(COMPANY_NAME_MAX_CHARS) }),
        place: Some(pb::Place {
            community: widest(PLACE_MAX_CHARS),
            district: widest(PLACE_MAX_CHARS),
            street: widest(PLACE_MAX_CHARS),
        }),
        hotline_ticket: widest(REFERENCE_MAX_CHARS),
    };
    // One character more than the bound of any field is refused; at the bound, accepted.
    let mut one_more = largest.clone();
    one_more.content.push('投');
    refused(server.complaints(REGISTRAR_ZJ).register(one_more).await).field("content").reason("FIELD_TOO_LONG");
    let mut one_more = largest.clone();
    one_more.hotline_ticket.push('1');
    refused(server.complaints(REGISTRAR_ZJ).register(one_more).await).field("hotline_ticket").reason("FIELD_TOO_LONG");
    let id =
        ok(server.complaints(REGISTRAR_ZJ).register(largest.clone()).await, "Register the largest lead").complaint_id;

    // A few steps, each with its text at the bound.
    classify(&server, &id, "SJ-3-1", pb::Urgency::Normal, pb::Complexity::General).await;
    let text = || widest(TEXT_MAX_CHARS);
    let mut registrar = server.complaints(REGISTRAR_ZJ);
    let note = pb::TransferRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        to: pb::Body::Sj.into(),
        method: pb::TransferMethod::Written.into(),
        note: text(),
    };
    ok(registrar.transfer(note).await, "Transfer with the longest note");
    accept(&server, HANDLER_SJ, &id).await;
    let mut handler = server.complaints(HANDLER_SJ);
    let finding = pb::RecordFindingRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        finding: pb::Finding::Substantiated.into(),
        summary: text(),
        attribution: None,
    };
    ok(handler.record_finding(finding).await, "RecordFinding");
    for recipient in [pb::FeedbackRecipient::Complainant, pb::FeedbackRecipient::Hotline12345] {
        let feedback = pb::GiveFeedbackRequest {
            request_id: request_id(),
            complaint_id: id.clone(),
            recipient: recipient.into(),
            content: text(),
        };
        ok(handler.give_feedback(feedback).await, "GiveFeedback");
    }
    let sign = pb::SignClosureRequest { request_id: request_id(), complaint_id: id.clone(), opinion: text() };
    ok(handler.sign_closure(sign).await, "SignClosure");
    let send_back =
        pb::ReviewClosureRequest { request_id: request_id(), complaint_id: id.clone(), cancel: false, reason: text() };
    ok(server.complaints(CITY_REVIEWER_SJ).review_closure(send_back).await, "ReviewClosure sending it back");

    // GetComplaint answers the whole lead, under the default message limit.
    let lead = server.complaint(&id).await;
    assert_eq!(lead.content, largest.content);
    let complainant = lead.complainant.clone().expect("the complainant");
    assert_eq!(
        (complainant.name.as_str(), complainant.contact.as_str()),
        (widest(PERSON_NAME_MAX_CHARS).as_str(), widest(CONTACT_MAX_CHARS).as_str())
    );
    assert_eq!(lead.hotline_ticket, largest.hotline_ticket);
    assert_eq!(status(&lead), pb::LeadStatus::Handling);
    assert_eq!(lead.timeline.len(), 9, "{:?}", timeline_types(&lead));
    let size = lead.encoded_len();
    assert!(size < DEFAULT_MESSAGE_LIMIT / 4, "the largest lead after its steps takes {size} bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn reg_1_a_timestamp_that_is_no_valid_instant_or_lies_outside_2000_to_2100_is_refused_naming_the_field() {
    let server = TestServer::start().await;
    let head = server.log_head().await;
    let now = timestamp(SystemTime::now());
    // 0001-01-01T00:00:00Z, 1970-01-01T00:00:00Z and 2101-01-01T00:00:00Z.
    let year_1 = prost_types::Timestamp { seconds: -62_135_596_800, nanos: 0 };
    let year_1970 = prost_types::Timestamp { seconds: 0, nanos: 0 };
    let year_2101 = prost_types::Timestamp { seconds: 4_133_980_800, nanos: 0 };
    // At a second ending in :59, chrono takes nanos of 1.5 s as a leap second, 02:24:60.500, which
    // other tools cannot read back.
    let leap = prost_types::Timestamp { seconds: now.seconds - now.seconds.rem_euclid(60) - 1, nanos: 1_500_000_000 };
    for (received_at, what) in [
        (leap, "nanos 1500000000"),
        (prost_types::Timestamp { nanos: -1, ..now }, "nanos -1"),
        (year_1, "years 2000 to 2100"),
        (year_1970, "years 2000 to 2100"),
        (year_2101, "years 2000 to 2100"),
        (prost_types::Timestamp { seconds: i64::MAX, nanos: 0 }, "years 2000 to 2100"),
    ] {
        let request = pb::RegisterRequest { received_at: Some(received_at), ..registration(&unique_uscc()) };
        refused(server.complaints(REGISTRAR_ZJ).register(request).await)
            .code(Code::InvalidArgument)
            .rule("REG-1")
            .field("received_at")
            .reason("INVALID_FIELD")
            .mentions(what);
    }
    // Every Timestamp of every request is checked, a query's too.
    let at = prost_types::Timestamp { nanos: 1_500_000_000, ..now };
    refused(server.read_models(AUDITOR).get_dashboard(pb::GetDashboardRequest { at: Some(at), as_of: None }).await)
        .code(Code::InvalidArgument)
        .rule("DSP-1")
        .field("at");
    let start = pb::CalculateDeadlineRequest {
        kind: pb::DeadlineKind::Transfer.into(),
        start: Some(year_1),
        extension_days: 0,
    };
    refused(server.queries(AUDITOR).calculate_deadline(start).await)
        .code(Code::InvalidArgument)
        .rule("ACC-2")
        .field("start");
    server.assert_nothing_written_after(head, "registrations received at no valid instant").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grd_1_a_date_in_year_0_or_1_or_outside_2000_to_2100_is_refused_naming_the_field() {
    let server = TestServer::start().await;
    let uscc = unique_uscc();
    let id = register_lead(&server, &uscc).await;
    // The company exists once tousu has counted its lead.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.queries(AUDITOR).get_enterprise(pb::GetEnterpriseRequest { uscc: uscc.clone() }).await.is_err() {
        assert!(Instant::now() < deadline, "the company is recorded within 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let head = server.log_head().await;
    for listed_on in ["0000-01-01", "0001-01-01", "1999-12-31", "2101-01-01"] {
        let request = pb::RecordBlacklistingRequest {
            request_id: request_id(),
            uscc: uscc.clone(),
            listed_on: listed_on.to_owned(),
        };
        refused(server.enterprises(REGISTRAR_ZJ).record_blacklisting(request).await)
            .code(Code::InvalidArgument)
            .rule("GRD-1")
            .field("listed_on")
            .reason("INVALID_FIELD")
            .mentions("years 2000 to 2100");
    }
    let plan = pb::SubmitPlanRequest {
        request_id: request_id(),
        complaint_id: id,
        plan: "分三步整改".to_owned(),
        resolve_by: "0001-12-31".to_owned(),
    };
    refused(server.complaints(HANDLER_SJ).submit_plan(plan).await)
        .code(Code::InvalidArgument)
        .rule("HDL-2")
        .field("resolve_by");
    let week = pb::GetWeeklySummaryRequest { week_start: "0001-01-01".to_owned(), ..Default::default() };
    refused(server.read_models(AUDITOR).get_weekly_summary(week).await)
        .code(Code::InvalidArgument)
        .rule("REG-3")
        .field("week_start");
    let month = pb::GetBulletinRequest { month: "0001-01".to_owned(), ..Default::default() };
    refused(server.read_models(AUDITOR).get_bulletin(month).await)
        .code(Code::InvalidArgument)
        .rule("PUB-1")
        .field("month");
    server.assert_nothing_written_after(head, "dates outside 2000 to 2100").await;
    let company = ok(server.queries(AUDITOR).get_enterprise(pb::GetEnterpriseRequest { uscc }).await, "GetEnterprise");
    assert_eq!(company.blacklisted_on, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn pen_1_a_fine_above_ten_to_the_twelfth_fen_is_refused_naming_the_field() {
    let server = TestServer::start().await;
    let id = handling_lead(&server, &unique_uscc(), "SJ-3-1", pb::Complexity::General).await;
    let mut handler = server.complaints(HANDLER_SJ);
    let open = pb::OpenPenaltyMatterRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        received_at: Some(timestamp(SystemTime::now())),
    };
    ok(handler.open_penalty_matter(open).await, "OpenPenaltyMatter");
    let verify = pb::VerifyPenaltyMatterRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        outcome: pb::PenaltyVerification::CaseWarranted.into(),
        summary: "违法事实清楚".to_owned(),
    };
    ok(handler.verify_penalty_matter(verify).await, "VerifyPenaltyMatter");
    let file = pb::FilePenaltyCaseRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        case_number: "鼓市监罚〔2026〕1号".to_owned(),
    };
    ok(handler.file_penalty_case(file).await, "FilePenaltyCase");
    let head = server.log_head().await;
    let decide = |fine_fen| pb::DecidePenaltyRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        imposed: true,
        description: "责令改正并处罚款".to_owned(),
        fine_fen,
        reason: String::new(),
    };
    for fine_fen in [u64::MAX, AMOUNT_MAX_FEN + 1] {
        refused(handler.decide_penalty(decide(fine_fen)).await)
            .code(Code::InvalidArgument)
            .rule("PEN-1")
            .field("fine_fen")
            .reason("INVALID_FIELD");
    }
    server.assert_nothing_written_after(head, "fines above the bound").await;
    let decided = ok(handler.decide_penalty(decide(AMOUNT_MAX_FEN)).await, "DecidePenalty at the bound");
    assert_eq!(decided.event_types, ["complaint.penalty_decided"]);
}

/// Sends bytes as they are and reads the answer's bytes as they are: a client that does not
/// speak protobuf, or sends something else.
#[derive(Debug, Clone, Copy, Default)]
struct RawBytes;

impl Codec for RawBytes {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawBytes;
    type Decoder = RawBytes;

    fn encoder(&mut self) -> Self::Encoder {
        RawBytes
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawBytes
    }
}

impl Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buffer: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buffer.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawBytes {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, buffer: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(buffer.copy_to_bytes(buffer.remaining()).to_vec()))
    }
}

/// Calls `method` of `service` with `bytes` as the request message.
async fn call_with_bytes(server: &TestServer, path: &'static str, bytes: Vec<u8>) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(server.authed(REGISTRAR_ZJ));
    grpc.ready().await.map_err(|error| Status::unavailable(error.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    grpc.unary(tonic::Request::new(bytes), path, RawBytes).await.map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread")]
async fn reg_1_bytes_that_do_not_decode_as_the_request_are_invalid_argument_naming_the_rule() {
    let server = TestServer::start().await;
    let head = server.log_head().await;
    for (bytes, what) in [
        (vec![0x0f], "field 1 with wire type 7, which does not exist"),
        (vec![0x0a, 0x05, b'a'], "request_id of 5 bytes of which 1 came"),
        (vec![0x0a, 0x02, 0xff, 0xfe], "request_id that is not UTF-8"),
        (vec![0x1a, 0x80], "received_at whose length is cut"),
    ] {
        let answer = call_with_bytes(&server, "/tousu.v1.ComplaintCommands/Register", bytes).await;
        let refusal = Refusal::of(&answer.expect_err(what));
        refusal
            .code(Code::InvalidArgument)
            .reason("UNDECODABLE_MESSAGE")
            .rule("REG-1")
            .mentions("could not be decoded as tousu.v1.RegisterRequest");
    }
    let answer = call_with_bytes(&server, "/tousu.v1.Queries/GetComplaint", vec![0x0a, 0x03, 0xc3, 0x28, 0x41]).await;
    Refusal::of(&answer.expect_err("a complaint id that is not UTF-8"))
        .code(Code::InvalidArgument)
        .reason("UNDECODABLE_MESSAGE")
        .rule("ACC-1");
    server.assert_nothing_written_after(head, "requests that do not decode").await;
    // The same client's well-formed bytes are a registration.
    let valid = registration(&unique_uscc()).encode_to_vec();
    let answer = call_with_bytes(&server, "/tousu.v1.ComplaintCommands/Register", valid).await.expect("registered");
    let result = pb::CommandResult::decode(answer.as_slice()).expect("a command result");
    assert_eq!(result.event_types, ["complaint.registered"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn trf_3_a_classification_splitting_off_more_leads_than_there_are_bodies_is_refused() {
    let server = TestServer::start().await;
    let id = register_lead(&server, &unique_uscc()).await;
    let head = server.log_head().await;
    let split = (0..12).map(|_| pb::SplitLead { category: "SJ-3-1".to_owned() }).collect();
    let request = pb::ClassifyRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        category: "ZJ-2-1".to_owned(),
        urgency: pb::Urgency::Normal.into(),
        complexity: pb::Complexity::General.into(),
        split,
    };
    refused(server.complaints(REGISTRAR_ZJ).classify(request).await)
        .code(Code::InvalidArgument)
        .rule("TRF-3")
        .field("split")
        .mentions("at most 11");
    server.assert_nothing_written_after(head, "a split into more leads than bodies").await;
    assert_eq!(status(&server.complaint(&id).await), pb::LeadStatus::Registered);
}
