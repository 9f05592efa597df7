//! Request ids against the real server: the same request id with the same request is answered
//! with the first result and writes nothing; the same request id with another request is
//! refused with `REQUEST_ID_REUSED`, naming the id as the client sent it, and writes nothing.
//! Before, a reused id with other content was answered `replayed = true` and the second
//! request was silently dropped.

use tonic::Code;
use tousu_api::pb;
use tousu_e2e::refusal::{ok, refused};
use tousu_e2e::requests::{registration, unique_complainant, unique_uscc};
use tousu_e2e::server::{REGISTRAR_ZJ, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn reg_1_a_request_id_repeated_with_another_complaint_is_refused_and_the_first_stands() {
    let server = TestServer::start().await;
    let uscc = unique_uscc();
    let mut registrar = server.complaints(REGISTRAR_ZJ);
    let first = registration(&uscc);
    let written = ok(registrar.register(first.clone()).await, "Register");
    assert!(!written.replayed);

    // The same request again: the first answer, nothing written.
    let again = ok(registrar.register(first.clone()).await, "Register again");
    assert!(again.replayed);
    assert_eq!(again.complaint_id, written.complaint_id);

    // The same id with another complainant and content: refused, naming the id.
    let mut other = registration(&uscc);
    other.request_id = first.request_id.clone();
    other.complainant = Some(unique_complainant());
    other.content = "另一件投诉：楼道照明损坏".to_owned();
    refused(registrar.register(other).await)
        .code(Code::InvalidArgument)
        .field("request_id")
        .mentions(&first.request_id);
    let lead = server.complaint(&written.complaint_id).await;
    assert_eq!(lead.content, first.content, "the first complaint stands");
    assert_eq!(server.lead_stream_length(&written.complaint_id).await, 1, "nothing more was written");
}

#[tokio::test(flavor = "multi_thread")]
async fn trf_2_a_classification_sent_with_the_registrations_request_id_is_refused() {
    let server = TestServer::start().await;
    let mut registrar = server.complaints(REGISTRAR_ZJ);
    let register = registration(&unique_uscc());
    let id = ok(registrar.register(register.clone()).await, "Register").complaint_id;
    let classify = pb::ClassifyRequest {
        request_id: register.request_id.clone(),
        complaint_id: id.clone(),
        category: "SJ-3-1".to_owned(),
        urgency: pb::Urgency::Normal.into(),
        complexity: pb::Complexity::General.into(),
        split: Vec::new(),
    };
    refused(registrar.classify(classify).await)
        .code(Code::InvalidArgument)
        .field("request_id")
        .mentions(&register.request_id);
    let lead = server.complaint(&id).await;
    assert_eq!(
        lead.summary.as_ref().map(pb::ComplaintSummary::status),
        Some(pb::LeadStatus::Registered),
        "the lead stays unclassified"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn trf_3_a_split_classification_repeated_is_answered_with_the_same_linked_leads() {
    let server = TestServer::start().await;
    let mut registrar = server.complaints(REGISTRAR_ZJ);
    let id = ok(registrar.register(registration(&unique_uscc())).await, "Register").complaint_id;
    let classify = pb::ClassifyRequest {
        request_id: format!("split-{id}"),
        complaint_id: id.clone(),
        category: "SJ-3-1".to_owned(),
        urgency: pb::Urgency::Normal.into(),
        complexity: pb::Complexity::General.into(),
        split: vec![pb::SplitLead { category: "ZF-1".to_owned() }],
    };
    let first = ok(registrar.classify(classify.clone()).await, "Classify");
    assert_eq!(first.created_complaint_ids.len(), 1);
    // The linked leads' ids derive from the lead as it stands, which the first answer
    // changed: the repeat is still recognised as the same request.
    let again = ok(registrar.classify(classify.clone()).await, "Classify again");
    assert!(again.replayed);
    assert_eq!(again.created_complaint_ids, first.created_complaint_ids);
    // The same id with another split is another request.
    let other = pb::ClassifyRequest { split: vec![pb::SplitLead { category: "GA-2".to_owned() }], ..classify };
    refused(registrar.classify(other).await).code(Code::InvalidArgument).field("request_id");
}
