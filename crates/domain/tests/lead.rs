//! Given / when / then tests of a lead's procedure: registration (REG), triage and transfer
//! (TRF), handling and closure (HDL), penalties (PEN) and escalation (ACC-2). Each test
//! names the rule it checks.

mod common;

use common::*;
use tousu_domain::DomainError;
use tousu_domain::actor::Role;
use tousu_domain::calendar::Period;
use tousu_domain::complaint::{
    Attribution, Channel, Complainant, ComplaintCommand, ComplaintEvent, ComplaintFact, Complexity, FeedbackRecipient,
    Finding, LeadStatus, PenaltyDecision, PenaltyVerification, PlanCause, Registration, ReviewOutcome, Satisfaction,
    SplitRequest, TransferMethod, Urgency,
};
use tousu_domain::deadline::{ClosedHow, DeadlineKind, DueBasis, EscalationLevel, EscalationReason};
use tousu_domain::error::Requirement;
use tousu_domain::ids::BodyCode;
use tousu_domain::limits;
use tousu_domain::obligations::{EscalationFact, ReferralDecision};
use tousu_domain::rule::RuleId;

fn open_kinds(lead: &LeadStream) -> Vec<(DeadlineKind, String)> {
    lead.lead().obligations.open().map(|deadline| (deadline.kind, deadline.due.to_rfc3339())).collect()
}

fn feedback(recipient: FeedbackRecipient) -> ComplaintCommand {
    ComplaintCommand::GiveFeedback { recipient, content: "已督促物业公司完成维修".to_owned() }
}

fn finding(finding: Finding) -> ComplaintCommand {
    ComplaintCommand::RecordFinding { finding, summary: "现场核实电梯停运属实".to_owned(), attribution: None }
}

fn sign() -> ComplaintCommand {
    ComplaintCommand::SignClosure { opinion: "问题已解决，同意办结".to_owned() }
}

// ---------------------------------------------------------------- REG

#[test]
fn reg_1_registration_records_the_ledger_and_starts_the_trf_2_clock() {
    let lead = LeadStream::new();
    let events = lead
        .when(&registrar(), "2026-09-30T10:00:00+08:00", register(Channel::Hotline))
        .expect("registration accepted");
    assert_eq!(events.len(), 1);
    let ComplaintFact::Registered { registration, complainant_key, .. } = &events[0].fact else {
        panic!("expected a registration, got {:?}", events[0].fact);
    };
    assert_eq!(registration.content, "电梯停运三天无人维修");
    assert!(complainant_key.is_some(), "a named complainant gets an identity key");
    let transfer = &events[0].opens[0];
    assert_eq!(transfer.kind, DeadlineKind::Transfer);
    assert_eq!(transfer.rule, RuleId::Trf2);
    assert_eq!(transfer.body, BodyCode::ZJ);
    assert_eq!(transfer.due, at("2026-10-16T00:00:00+08:00"));
}

#[test]
fn reg_1_a_registration_without_a_required_field_names_the_field() {
    type Breaker = fn(&mut tousu_domain::complaint::Registration);
    let cases: [(&str, Breaker); 6] = [
        ("complainant.name", |r| {
            r.complainant = Complainant::Named { name: " ".into(), contact: "13812345678".into(), id_number: None }
        }),
        ("complainant.contact", |r| {
            r.complainant = Complainant::Named { name: "王芳".into(), contact: "".into(), id_number: None }
        }),
        ("content", |r| r.content = String::new()),
        ("company.name", |r| r.company.as_mut().expect("a company").name = String::new()),
        ("place.district", |r| r.place.district = String::new()),
        ("place.street", |r| r.place.street = String::new()),
    ];
    for (field, break_it) in cases {
        let mut registration = registration(Channel::Hotline, "王芳", "13812345678", "2026-09-30T09:00:00+08:00");
        break_it(&mut registration);
        let result = LeadStream::new().when(
            &registrar(),
            "2026-09-30T10:00:00+08:00",
            ComplaintCommand::Register { id: "C-1".parse().unwrap(), registration },
        );
        assert_eq!(result, Err(DomainError::MissingField { rule: RuleId::Reg1, field }), "{field}");
    }
}

#[test]
fn reg_1_a_registration_with_a_field_over_its_bound_names_the_field_and_its_length() {
    type Breaker = fn(&mut tousu_domain::complaint::Registration);
    let cases: [(&str, usize, Breaker); 7] = [
        ("content", limits::CONTENT_MAX_CHARS, |r| r.content = "投".repeat(limits::CONTENT_MAX_CHARS + 1)),
        ("complainant.name", limits::PERSON_NAME_MAX_CHARS, |r| {
            r.complainant = Complainant::Named {
                name: "王".repeat(limits::PERSON_NAME_MAX_CHARS + 1),
                contact: "13812345678".into(),
                id_number: None,
            }
        }),
        ("complainant.id_number", limits::ID_NUMBER_MAX_CHARS, |r| {
            r.complainant = Complainant::Named {
                name: "王芳".into(),
                contact: "13812345678".into(),
                id_number: Some("3".repeat(limits::ID_NUMBER_MAX_CHARS + 1)),
            }
        }),
        ("company.name", limits::COMPANY_NAME_MAX_CHARS, |r| {
            r.company.as_mut().expect("a company").name = "某".repeat(limits::COMPANY_NAME_MAX_CHARS + 1)
        }),
        ("place.community", limits::PLACE_MAX_CHARS, |r| r.place.community = "区".repeat(limits::PLACE_MAX_CHARS + 1)),
        ("place.street", limits::PLACE_MAX_CHARS, |r| r.place.street = "街".repeat(limits::PLACE_MAX_CHARS + 1)),
        ("hotline_ticket", limits::REFERENCE_MAX_CHARS, |r| {
            r.hotline_ticket = Some("1".repeat(limits::REFERENCE_MAX_CHARS + 1))
        }),
    ];
    for (field, max, break_it) in cases {
        let mut registration = registration(Channel::Hotline, "王芳", "13812345678", "2026-09-30T09:00:00+08:00");
        break_it(&mut registration);
        let result = LeadStream::new().when(
            &registrar(),
            "2026-09-30T10:00:00+08:00",
            ComplaintCommand::Register { id: "C-1".parse().unwrap(), registration },
        );
        assert_eq!(
            result,
            Err(DomainError::FieldTooLong { rule: RuleId::Reg1, field, chars: max + 1, max }),
            "{field}"
        );
    }
    // At its bound, counted in characters whatever their bytes, the content is accepted.
    let mut registration = registration(Channel::Hotline, "王芳", "13812345678", "2026-09-30T09:00:00+08:00");
    registration.content = "𠀀".repeat(limits::CONTENT_MAX_CHARS);
    LeadStream::new()
        .when(
            &registrar(),
            "2026-09-30T10:00:00+08:00",
            ComplaintCommand::Register { id: "C-1".parse().unwrap(), registration },
        )
        .expect("content at its bound accepted");
}

#[test]
fn reg_1_a_command_on_a_lead_that_does_not_exist_names_the_rule_of_the_command() {
    let lead = LeadStream::new();
    assert_eq!(
        lead.when(&handler(BodyCode::SJ), "2026-10-08T09:00:00+08:00", ComplaintCommand::Accept),
        Err(DomainError::NotFound { rule: RuleId::Trf2, subject: "lead" })
    );
    assert_eq!(
        lead.when(&handler(BodyCode::SJ), "2026-10-08T09:00:00+08:00", sign()),
        Err(DomainError::NotFound { rule: RuleId::Hdl3, subject: "lead" })
    );
}

#[test]
fn reg_1_interp_19_an_anonymous_report_needs_no_name_and_has_no_identity_key() {
    let mut registration = registration(Channel::Mailbox, "", "", "2026-09-30T09:00:00+08:00");
    registration.complainant = Complainant::Anonymous;
    let events = LeadStream::new()
        .when(
            &registrar(),
            "2026-09-30T10:00:00+08:00",
            ComplaintCommand::Register { id: "C-1".parse().unwrap(), registration },
        )
        .expect("anonymous report accepted");
    assert!(matches!(&events[0].fact, ComplaintFact::Registered { complainant_key: None, .. }));
}

#[test]
fn reg_1_a_complaint_received_after_its_registration_is_refused() {
    let mut lead = LeadStream::new();
    let result = lead.when(
        &registrar(),
        "2026-09-30T09:00:00+08:00",
        ComplaintCommand::Register {
            id: "C-1".parse().unwrap(),
            registration: registration(Channel::Hotline, "王芳", "13812345678", "2026-09-30T09:30:00+08:00"),
        },
    );
    assert!(matches!(result, Err(DomainError::InvalidField { rule: RuleId::Reg1, field: "received_at", .. })));
    lead.given(&registrar(), "2026-09-30T10:00:00+08:00", register(Channel::Hotline));
    assert_eq!(
        lead.when(&registrar(), "2026-09-30T10:00:00+08:00", register(Channel::Hotline)),
        Err(DomainError::AlreadyExists { rule: RuleId::Reg1 })
    );
}

#[test]
fn reg_2_leads_from_every_channel_enter_the_same_ledger() {
    for channel in Channel::ALL {
        let mut lead = LeadStream::new();
        lead.given(&registrar(), "2026-09-30T10:00:00+08:00", register(channel));
        assert_eq!(lead.lead().registration.channel, channel);
        assert_eq!(lead.lead().status, LeadStatus::Registered);
    }
}

#[test]
fn hdl_4_a_12345_lead_needs_its_work_order_number() {
    let mut registration = registration(Channel::Hotline12345, "王芳", "13812345678", "2026-09-30T09:00:00+08:00");
    registration.hotline_ticket = None;
    let result = LeadStream::new().when(
        &hotline_12345(),
        "2026-09-30T10:00:00+08:00",
        ComplaintCommand::Register { id: "C-1".parse().unwrap(), registration },
    );
    assert_eq!(result, Err(DomainError::MissingField { rule: RuleId::Hdl4, field: "hotline_ticket" }));
}

// ---------------------------------------------------------------- TRF

#[test]
fn trf_3_classification_routes_the_category_to_its_body() {
    let cases = [
        ("ZJ-1-3", BodyCode::ZJ),
        ("FG-4", BodyCode::FG),
        ("SJ-3-1", BodyCode::SJ),
        ("XF-6", BodyCode::XF),
        ("GA-2", BodyCode::GA),
        ("ZF-1", BodyCode::ZF),
        ("JB-OTHER", BodyCode::JB),
    ];
    for (category, body) in cases {
        let lead = classified_lead(category, Complexity::General, Channel::Hotline);
        assert_eq!(lead.lead().classification.as_ref().map(|c| c.body), Some(body), "{category}");
    }
}

#[test]
fn trf_3_an_unknown_category_is_refused_and_nothing_is_classified() {
    let mut lead = LeadStream::new();
    lead.given(&registrar(), "2026-09-30T10:00:00+08:00", register(Channel::Hotline));
    let result = lead.when(
        &registrar(),
        "2026-09-30T10:30:00+08:00",
        ComplaintCommand::Classify {
            category: "ZJ-9".into(),
            urgency: Urgency::Normal,
            complexity: Complexity::General,
            split: Vec::new(),
        },
    );
    assert!(
        matches!(result, Err(DomainError::InvalidField { rule: RuleId::Trf3, field: "category", .. })),
        "{result:?}"
    );
}

#[test]
fn trf_2_general_lead_is_due_seven_working_days_after_registration() {
    // Registered on Wednesday 30 September 2026: 1–7 October are the National Day holiday
    // and Saturday 10 October is an adjusted working day, so the seventh working day is
    // Thursday 15 October and the lead is due at its 24:00.
    let lead = classified_lead("SJ-3-1", Complexity::General, Channel::Hotline);
    assert_eq!(open_kinds(&lead), vec![(DeadlineKind::Transfer, "2026-10-16T00:00:00+08:00".to_owned())]);
}

#[test]
fn trf_2_only_the_registrar_body_transfers_and_only_to_the_routed_body() {
    let lead = classified_lead("SJ-3-1", Complexity::General, Channel::Hotline);
    let transfer = |to| ComplaintCommand::Transfer { to, method: TransferMethod::Written, note: String::new() };
    assert_eq!(
        lead.when(&handler(BodyCode::SJ), "2026-10-08T09:00:00+08:00", transfer(BodyCode::SJ)),
        Err(DomainError::WrongBody {
            rule: RuleId::Trf2,
            command: "transfer",
            acting: BodyCode::SJ,
            responsible: Some(BodyCode::ZJ),
        })
    );
    assert!(matches!(
        lead.when(&registrar(), "2026-10-08T09:00:00+08:00", transfer(BodyCode::XF)),
        Err(DomainError::Misrouted {
            rule: RuleId::Trf3,
            field: "to",
            expected: BodyCode::SJ,
            given: BodyCode::XF,
            ..
        })
    ));
}

#[test]
fn trf_2_transfer_meets_the_transfer_deadline_and_informs_the_street_office() {
    let mut lead = classified_lead("SJ-3-1", Complexity::General, Channel::Hotline);
    let events = lead.given(
        &registrar(),
        "2026-10-08T09:00:00+08:00",
        ComplaintCommand::Transfer { to: BodyCode::SJ, method: TransferMethod::System, note: String::new() },
    );
    assert!(matches!(
        events[0].fact,
        ComplaintFact::Transferred { to: BodyCode::SJ, street_office_informed: true, .. }
    ));
    assert_eq!(events[0].closes[0].kind, DeadlineKind::Transfer);
    assert_eq!(events[0].closes[0].how, ClosedHow::Met);
    assert_eq!(lead.lead().status, LeadStatus::Transferred);
}

#[test]
fn trf_2_a_handler_cannot_act_on_a_lead_not_transferred_to_its_body() {
    let mut lead = classified_lead("SJ-3-1", Complexity::General, Channel::Hotline);
    lead.given(
        &registrar(),
        "2026-10-08T09:00:00+08:00",
        ComplaintCommand::Transfer { to: BodyCode::SJ, method: TransferMethod::System, note: String::new() },
    );
    assert_eq!(
        lead.when(&handler(BodyCode::XF), "2026-10-08T10:00:00+08:00", ComplaintCommand::Accept),
        Err(DomainError::WrongBody {
            rule: RuleId::Trf2,
            command: "accept",
            acting: BodyCode::XF,
            responsible: Some(BodyCode::SJ),
        })
    );
}

#[test]
fn trf_1_urgent_lead_must_be_notified_within_two_hours_of_registration() {
    let mut lead = LeadStream::new();
    lead.given(&registrar(), "2026-09-30T10:00:00+08:00", register(Channel::Hotline));
    let events = lead.given(
        &registrar(),
        "2026-09-30T10:10:00+08:00",
        ComplaintCommand::Classify {
            category: "ZJ-1-1".into(),
            urgency: Urgency::Urgent,
            complexity: Complexity::General,
            split: Vec::new(),
        },
    );
    assert_eq!(events[0].closes[0].kind, DeadlineKind::Transfer);
    assert_eq!(events[0].closes[0].how, ClosedHow::Superseded);
    assert_eq!(open_kinds(&lead), vec![(DeadlineKind::UrgentNotify, "2026-09-30T12:00:00+08:00".to_owned())]);
    // Within 住建's duty the street office is notified, not a department.
    let notify = |notified_body, district_report: &str| ComplaintCommand::NotifyUrgent {
        notified_body,
        emergency_measures: "疏散住户，设置警戒".into(),
        district_report: district_report.into(),
    };
    assert!(matches!(
        lead.when(&registrar(), "2026-09-30T10:20:00+08:00", notify(BodyCode::ZJ, "已报告区委区政府")),
        Err(DomainError::Misrouted {
            rule: RuleId::Trf1,
            field: "notified_body",
            expected: BodyCode::JB,
            given: BodyCode::ZJ,
            ..
        })
    ));
    assert_eq!(
        lead.when(&registrar(), "2026-09-30T10:20:00+08:00", notify(BodyCode::JB, "")),
        Err(DomainError::MissingField { rule: RuleId::Trf1, field: "district_report" })
    );
    let events = lead.given(&registrar(), "2026-09-30T10:20:00+08:00", notify(BodyCode::JB, "已同步报告区委区政府"));
    assert_eq!(events[0].closes[0].kind, DeadlineKind::UrgentNotify);
    assert_eq!(lead.lead().handling_body, Some(BodyCode::ZJ));
    assert!(open_kinds(&lead).is_empty(), "HDL-1 does not apply to urgent leads");
}

#[test]
fn trf_1_an_urgent_lead_is_notified_not_transferred() {
    let mut lead = LeadStream::new();
    lead.given(&registrar(), "2026-09-30T10:00:00+08:00", register(Channel::Hotline));
    lead.given(
        &registrar(),
        "2026-09-30T10:10:00+08:00",
        ComplaintCommand::Classify {
            category: "XF-6".into(),
            urgency: Urgency::Urgent,
            complexity: Complexity::General,
            split: Vec::new(),
        },
    );
    let result = lead.when(
        &registrar(),
        "2026-09-30T10:20:00+08:00",
        ComplaintCommand::Transfer { to: BodyCode::XF, method: TransferMethod::System, note: String::new() },
    );
    assert!(matches!(result, Err(DomainError::WrongState { rule: RuleId::Trf1, .. })), "{result:?}");
}

#[test]
fn trf_3_interp_15_a_misrouted_transfer_is_returned_and_the_trf_2_clock_does_not_restart() {
    let mut lead = accepted_lead("SJ-3-1", Complexity::General, Channel::Hotline, BodyCode::SJ);
    assert_eq!(
        lead.when(
            &handler(BodyCode::SJ),
            "2026-10-09T09:00:00+08:00",
            ComplaintCommand::ReturnTransfer { reason: " ".into() }
        ),
        Err(DomainError::MissingField { rule: RuleId::Trf3, field: "reason" })
    );
    let events = lead.given(
        &handler(BodyCode::SJ),
        "2026-10-09T09:00:00+08:00",
        ComplaintCommand::ReturnTransfer {
            reason: "系电梯维保合同纠纷，不属特种设备安全事项".into()
        },
    );
    assert_eq!(events[0].closes[0].kind, DeadlineKind::GeneralClose);
    assert_eq!(events[0].closes[0].how, ClosedHow::Superseded);
    assert!(events[0].opens.is_empty(), "nothing runs while 住建 reviews the return (interpretation 27)");
    assert_eq!(lead.lead().status, LeadStatus::Returned);
    assert_eq!(lead.lead().return_count, 1);
    // 住建 accepts the return: misrouted, the TRF-2 deadline comes back with its original due.
    let events = lead.given(&registrar(), "2026-10-12T09:00:00+08:00", review_return(true, "确属维保合同纠纷"));
    let reinstated = events[0].opens[0].clone();
    assert_eq!(reinstated.kind, DeadlineKind::Transfer);
    assert_eq!(reinstated.body, BodyCode::ZJ);
    assert_eq!(reinstated.due, at("2026-10-16T00:00:00+08:00"), "the original due instant");
    assert!(matches!(reinstated.basis, DueBasis::Reinstated { original: 0 }));

    // Reclassified and transferred again after the original due instant: late.
    lead.given(
        &registrar(),
        "2026-10-19T09:00:00+08:00",
        ComplaintCommand::Classify {
            category: "ZJ-1-2".into(),
            urgency: Urgency::Normal,
            complexity: Complexity::General,
            split: Vec::new(),
        },
    );
    let events = lead.given(
        &registrar(),
        "2026-10-19T10:00:00+08:00",
        ComplaintCommand::Transfer { to: BodyCode::ZJ, method: TransferMethod::System, note: String::new() },
    );
    let met = events[0].closes.iter().find(|c| c.kind == DeadlineKind::Transfer).expect("transfer closed");
    assert_eq!(met.how, ClosedHow::Met);
    assert!(events[0].at > reinstated.due, "met late: misrouting shows as lateness");
}

fn review_return(accept: bool, reason: &str) -> ComplaintCommand {
    ComplaintCommand::ReviewReturn { accept, reason: reason.into() }
}

#[test]
fn trf_3_interp_27_a_returned_transfer_waits_for_zhujians_review_before_it_is_rerouted() {
    let mut lead = accepted_lead("SJ-3-1", Complexity::General, Channel::Hotline, BodyCode::SJ);
    let sj = handler(BodyCode::SJ);
    lead.given(&sj, "2026-10-09T09:00:00+08:00", ComplaintCommand::ReturnTransfer { reason: "不属本部门职责".into() });
    let pending = lead.lead().pending_return.clone().expect("awaiting review");
    assert_eq!((pending.by, pending.handling), (BodyCode::SJ, true));
    // Not re-routed before the review.
    let classify = ComplaintCommand::Classify {
        category: "ZJ-1-2".into(),
        urgency: Urgency::Normal,
        complexity: Complexity::General,
        split: Vec::new(),
    };
    let early = lead.when(&registrar(), "2026-10-09T10:00:00+08:00", classify.clone());
    assert!(matches!(early, Err(DomainError::WrongState { rule: RuleId::Trf3, .. })), "{early:?}");
    // Only 住建 reviews, with a reason.
    assert!(review_return(true, "x").permitted(Role::Registrar) && review_return(true, "x").permitted(Role::Official));
    assert!(!review_return(true, "x").permitted(Role::Handler));
    assert!(matches!(
        lead.when(&actor(BodyCode::XZ, Role::Registrar), "2026-10-09T10:00:00+08:00", review_return(true, "x")),
        Err(DomainError::WrongBody { rule: RuleId::Trf3, .. })
    ));
    assert_eq!(
        lead.when(&registrar(), "2026-10-09T10:00:00+08:00", review_return(true, "")),
        Err(DomainError::MissingField { rule: RuleId::Trf3, field: "reason" })
    );
    lead.given(&registrar(), "2026-10-09T10:00:00+08:00", review_return(true, "确属误派"));
    assert!(lead.lead().pending_return.is_none());
    lead.given(&registrar(), "2026-10-09T11:00:00+08:00", classify);
    assert_eq!(lead.lead().status, LeadStatus::Classified);
}

#[test]
fn trf_3_interp_27_a_rejected_return_gives_the_lead_back_to_the_body_with_its_deadline() {
    let mut lead = accepted_lead("SJ-3-1", Complexity::General, Channel::Hotline, BodyCode::SJ);
    let sj = handler(BodyCode::SJ);
    let general_due = lead.lead().obligations.open_of_kind(DeadlineKind::GeneralClose, None).expect("open").due;
    lead.given(
        &sj,
        "2026-10-09T09:00:00+08:00",
        ComplaintCommand::ReturnTransfer { reason: "推给物业自行处理".into() },
    );
    let events = lead.given(&registrar(), "2026-10-10T09:00:00+08:00", review_return(false, "电梯安全属市场监管职责"));
    let ComplaintFact::ReturnReviewed { body, accepted, handling, .. } = &events[0].fact else {
        panic!("a review, got {:?}", events[0].fact);
    };
    assert_eq!((*body, *accepted, *handling), (BodyCode::SJ, false, true));
    assert_eq!(events[0].event_type(), "complaint.return_reviewed");
    // The body handles it again, against the due instant it had: its return stopped nothing.
    let back = &events[0].opens[0];
    assert_eq!((back.kind, back.body, back.due), (DeadlineKind::GeneralClose, BodyCode::SJ, general_due));
    let state = lead.lead();
    assert_eq!((state.status, state.handling_body), (LeadStatus::Handling, Some(BodyCode::SJ)));
    assert!(state.obligations.open_of_kind(DeadlineKind::Transfer, None).is_none(), "住建 owes no transfer");
    lead.given(&sj, "2026-10-11T09:00:00+08:00", finding(Finding::Substantiated));
    lead.given(&sj, "2026-10-11T10:00:00+08:00", feedback(FeedbackRecipient::Complainant));
    lead.given(&sj, "2026-10-11T11:00:00+08:00", sign());
    assert_eq!(lead.lead().status, LeadStatus::Closed);
}

#[test]
fn trf_3_interp_15_a_complaint_for_several_bodies_is_split_into_linked_leads() {
    let mut lead = LeadStream::new();
    lead.given(&registrar(), "2026-09-30T10:00:00+08:00", register(Channel::Hotline));
    let classify = |split: Vec<(&str, &str)>| ComplaintCommand::Classify {
        category: "ZJ-1-3".into(),
        urgency: Urgency::Normal,
        complexity: Complexity::General,
        split: split
            .into_iter()
            .map(|(lead, category)| SplitRequest { lead: lead.parse().unwrap(), category: category.into() })
            .collect(),
    };
    assert!(matches!(
        lead.when(&registrar(), "2026-09-30T10:30:00+08:00", classify(vec![("C-1-2", "ZJ-2-1")])),
        Err(DomainError::InvalidField { rule: RuleId::Trf3, field: "split.category", .. })
    ));
    let events =
        lead.given(&registrar(), "2026-09-30T10:30:00+08:00", classify(vec![("C-1-2", "SJ-2-1"), ("C-1-3", "XF-6")]));
    let ComplaintFact::Classified { split_into, .. } = &events[0].fact else { panic!("expected classification") };
    assert_eq!(split_into.iter().map(|s| s.body).collect::<Vec<_>>(), vec![BodyCode::SJ, BodyCode::XF]);

    // The linked lead keeps the complaint's TRF-2 clock.
    let parent = lead.lead().clone();
    let mut child = LeadStream::new();
    let events = child.given(
        &registrar(),
        "2026-09-30T10:31:00+08:00",
        ComplaintCommand::OpenSplitLead {
            id: "C-1-2".parse().unwrap(),
            parent: parent.id.clone(),
            registration: parent.registration.clone(),
            registered_at: parent.registered_at,
            category: "SJ-2-1".into(),
            urgency: Urgency::Normal,
            complexity: Complexity::General,
        },
    );
    assert_eq!(events[0].opens[0].due, at("2026-10-16T00:00:00+08:00"));
    assert_eq!(child.lead().status, LeadStatus::Classified);
    assert_eq!(child.lead().parent, Some(parent.id));
}

// ---------------------------------------------------------------- HDL

#[test]
fn hdl_1_a_general_matter_is_due_seven_days_after_the_transfer() {
    // Transferred on Thursday 8 October 2026: day 7 is Thursday 15 October.
    let lead = accepted_lead("SJ-3-1", Complexity::General, Channel::Hotline, BodyCode::SJ);
    assert_eq!(open_kinds(&lead), vec![(DeadlineKind::GeneralClose, "2026-10-16T00:00:00+08:00".to_owned())]);
}

#[test]
fn hdl_1_interp_5_a_period_ending_on_a_rest_day_rolls_to_the_next_working_day() {
    let mut lead = classified_lead("SJ-3-1", Complexity::General, Channel::Hotline);
    // Transferred Friday 9 October: day 7 is Friday 16 October, a working day.
    // Transferred Sunday 11 October: day 7 is Sunday 18 October, rolled to Monday 19.
    let events = lead.given(
        &registrar(),
        "2026-10-11T09:00:00+08:00",
        ComplaintCommand::Transfer { to: BodyCode::SJ, method: TransferMethod::System, note: String::new() },
    );
    assert_eq!(events[0].opens[0].due, at("2026-10-20T00:00:00+08:00"));
}

/// Interpretation 22: a lead may name no company; it is registered all the same and its
/// finding counts against nobody.
#[test]
fn reg_1_interp_22_a_lead_in_an_unmanaged_community_names_no_company() {
    let mut lead = LeadStream::new();
    let mut registration = registration(Channel::Hotline, "王芳", "13812345678", "2026-09-30T09:30:00+08:00");
    registration.company = None;
    let events = lead.given(
        &registrar(),
        "2026-09-30T10:00:00+08:00",
        ComplaintCommand::Register { id: "C-1".parse().expect("valid id"), registration },
    );
    assert!(matches!(
        LeadStream::facts(&events)[..],
        [ComplaintFact::Registered { registration: Registration { company: None, .. }, .. }]
    ));
    assert!(!lead.lead().substantiated_against_company());
}

/// Interpretation 22: the finding records whether the matter is the company's responsibility,
/// by default from the category: GA-2 (高空抛物 and other public-order matters) is not, GA-1
/// (the company's own security service) is.
#[test]
fn hdl_3_interp_22_the_finding_takes_attributability_from_the_category() {
    for (category, attributable) in [("GA-2", false), ("GA-1", true)] {
        let mut lead = accepted_lead(category, Complexity::General, Channel::Hotline, BodyCode::GA);
        let events = lead.given(&handler(BodyCode::GA), "2026-10-09T09:00:00+08:00", finding(Finding::Substantiated));
        let [ComplaintFact::FindingRecorded { attributable: recorded, attribution_reason: None, .. }] =
            LeadStream::facts(&events)[..]
        else {
            panic!("a finding: {events:?}")
        };
        assert_eq!(*recorded, Some(attributable), "{category}");
        assert_eq!(lead.lead().substantiated_against_company(), attributable, "{category}");
    }
}

/// Interpretation 22: the handling body may depart from the category's default for a
/// substantiated finding, with a reason; without one, or on an unsubstantiated finding, the
/// decision is refused and nothing is written.
#[test]
fn hdl_3_interp_22_the_body_overrides_the_default_with_a_reason() {
    let mut lead = accepted_lead("GA-2", Complexity::General, Channel::Hotline, BodyCode::GA);
    let ga = handler(BodyCode::GA);
    let attributed = |finding, reason: &str| ComplaintCommand::RecordFinding {
        finding,
        summary: "核实：高空抛物系物业未落实巡查所致".to_owned(),
        attribution: Some(Attribution { attributable: true, reason: reason.to_owned() }),
    };
    let without_reason = lead.when(&ga, "2026-10-09T09:00:00+08:00", attributed(Finding::Substantiated, " "));
    assert!(
        matches!(without_reason, Err(DomainError::MissingField { rule: RuleId::Hdl3, field: "attribution.reason" })),
        "{without_reason:?}"
    );
    let unsubstantiated = lead.when(&ga, "2026-10-09T09:00:00+08:00", attributed(Finding::Unsubstantiated, "理由"));
    assert!(
        matches!(unsubstantiated, Err(DomainError::InvalidField { rule: RuleId::Hdl3, field: "attribution", .. })),
        "{unsubstantiated:?}"
    );
    let reason = "物业未按合同落实高空抛物监控巡查，负有管理责任";
    let events = lead.given(&ga, "2026-10-09T09:00:00+08:00", attributed(Finding::Substantiated, reason));
    let [ComplaintFact::FindingRecorded { attributable, attribution_reason, .. }] = LeadStream::facts(&events)[..]
    else {
        panic!("a finding: {events:?}")
    };
    assert_eq!((*attributable, attribution_reason.as_deref()), (Some(true), Some(reason)));
    assert!(lead.lead().substantiated_against_company());
}

/// Interpretation 22: a finding recorded before the interpretation carries no attributability
/// and is read as the company's, as it was counted then.
#[test]
fn interp_22_a_finding_recorded_before_the_interpretation_counts_against_the_company() {
    let stored = serde_json::json!({"type": "finding_recorded", "finding": "substantiated", "summary": "属实"});
    let fact: ComplaintFact = serde_json::from_value(stored).expect("an old event reads");
    assert!(matches!(fact, ComplaintFact::FindingRecorded { attributable: None, attribution_reason: None, .. }));
    let mut lead = accepted_lead("GA-2", Complexity::General, Channel::Hotline, BodyCode::GA);
    let mut events =
        lead.when(&handler(BodyCode::GA), "2026-10-09T09:00:00+08:00", finding(Finding::Substantiated)).unwrap();
    events[0].fact = fact;
    lead.apply(&events);
    assert!(lead.lead().substantiated_against_company(), "read as the company's, although GA-2 is not by default");
}

#[test]
fn hdl_3_closing_before_a_finding_is_refused() {
    let mut lead = accepted_lead("SJ-3-1", Complexity::General, Channel::Hotline, BodyCode::SJ);
    lead.given(&handler(BodyCode::SJ), "2026-10-09T09:00:00+08:00", feedback(FeedbackRecipient::Complainant));
    assert_eq!(
        lead.when(&handler(BodyCode::SJ), "2026-10-09T10:00:00+08:00", sign()),
        Err(DomainError::Unmet { rule: RuleId::Hdl3, command: "sign_closure", requirement: Requirement::Finding })
    );
}

#[test]
fn hdl_1_closing_without_feedback_to_the_complainant_is_refused() {
    let mut lead = accepted_lead("SJ-3-1", Complexity::General, Channel::Hotline, BodyCode::SJ);
    lead.given(&handler(BodyCode::SJ), "2026-10-09T09:00:00+08:00", finding(Finding::Substantiated));
    assert_eq!(
        lead.when(&handler(BodyCode::SJ), "2026-10-09T10:00:00+08:00", sign()),
        Err(DomainError::Unmet {
            rule: RuleId::Hdl1,
            command: "sign_closure",
            requirement: Requirement::FeedbackToComplainant,
        })
    );
}

#[test]
fn hdl_3_a_department_closure_is_reviewed_and_cancelled_by_its_city_counterpart() {
    let mut lead = accepted_lead("SJ-3-1", Complexity::General, Channel::Hotline, BodyCode::SJ);
    lead.given(&handler(BodyCode::SJ), "2026-10-09T09:00:00+08:00", finding(Finding::Substantiated));
    lead.given(&handler(BodyCode::SJ), "2026-10-09T09:30:00+08:00", feedback(FeedbackRecipient::Complainant));
    let events = lead.given(&handler(BodyCode::SJ), "2026-10-09T10:00:00+08:00", sign());
    assert_eq!(events[0].closes[0].kind, DeadlineKind::GeneralClose);
    assert_eq!(events[0].closes[0].how, ClosedHow::Met);
    assert_eq!(lead.lead().status, LeadStatus::Closed);
    let review = ComplaintCommand::ReviewClosure { outcome: ReviewOutcome::Cancelled };
    assert!(matches!(
        lead.when(&city_reviewer(BodyCode::ZJ), "2026-10-10T09:00:00+08:00", review.clone()),
        Err(DomainError::WrongBody { rule: RuleId::Hdl3, .. })
    ));
    lead.given(&city_reviewer(BodyCode::SJ), "2026-10-10T09:00:00+08:00", review);
    assert_eq!(lead.lead().status, LeadStatus::Cancelled);
}

#[test]
fn hdl_3_a_matter_zhujian_handles_directly_is_closed_only_with_the_street_office() {
    let mut lead = accepted_lead("ZJ-1-3", Complexity::General, Channel::Hotline, BodyCode::ZJ);
    lead.given(&handler(BodyCode::ZJ), "2026-10-09T09:00:00+08:00", finding(Finding::Substantiated));
    lead.given(&handler(BodyCode::ZJ), "2026-10-09T09:30:00+08:00", feedback(FeedbackRecipient::Complainant));
    let events = lead.given(&handler(BodyCode::ZJ), "2026-10-09T10:00:00+08:00", sign());
    assert!(events[0].closes.is_empty(), "not closed before the countersignature");
    assert_eq!(lead.lead().status, LeadStatus::Handling);
    let countersign = ComplaintCommand::CountersignClosure { opinion: "同意办结".into() };
    assert!(matches!(
        lead.when(&actor(BodyCode::SJ, Role::StreetOffice), "2026-10-09T11:00:00+08:00", countersign.clone()),
        Err(DomainError::WrongBody { rule: RuleId::Hdl3, .. })
    ));
    let events = lead.given(&street_office(), "2026-10-09T11:00:00+08:00", countersign);
    assert_eq!(events[0].closes[0].kind, DeadlineKind::GeneralClose);
    assert_eq!(lead.lead().status, LeadStatus::Closed);
}

#[test]
fn hdl_3_a_closure_sent_back_is_handled_again_under_a_fresh_period() {
    let mut lead = accepted_lead("SJ-3-1", Complexity::General, Channel::Hotline, BodyCode::SJ);
    lead.given(&handler(BodyCode::SJ), "2026-10-09T09:00:00+08:00", finding(Finding::Substantiated));
    lead.given(&handler(BodyCode::SJ), "2026-10-09T09:30:00+08:00", feedback(FeedbackRecipient::Complainant));
    lead.given(&handler(BodyCode::SJ), "2026-10-09T10:00:00+08:00", sign());
    assert!(matches!(
        lead.when(
            &city_reviewer(BodyCode::SJ),
            "2026-10-12T09:00:00+08:00",
            ComplaintCommand::ReviewClosure { outcome: ReviewOutcome::SentBack { reason: "".into() } }
        ),
        Err(DomainError::MissingField { rule: RuleId::Hdl3, field: "reason" })
    ));
    lead.given(
        &city_reviewer(BodyCode::SJ),
        "2026-10-12T09:00:00+08:00",
        ComplaintCommand::ReviewClosure { outcome: ReviewOutcome::SentBack { reason: "未附维保记录".into() } },
    );
    assert_eq!(lead.lead().status, LeadStatus::Handling);
    assert_eq!(open_kinds(&lead), vec![(DeadlineKind::GeneralClose, "2026-10-20T00:00:00+08:00".to_owned())]);
    // The new round needs its own feedback before it can close again.
    assert!(matches!(
        lead.when(&handler(BodyCode::SJ), "2026-10-13T09:00:00+08:00", sign()),
        Err(DomainError::Unmet { requirement: Requirement::FeedbackToComplainant, .. })
    ));
}

#[test]
fn hdl_2_interp_25_a_major_matter_has_a_month_to_resolve_and_owes_no_plan_at_first() {
    let lead = accepted_lead("SJ-3-1", Complexity::Major, Channel::Hotline, BodyCode::SJ);
    assert_eq!(
        open_kinds(&lead),
        // 8 October + 1 month = 8 November 2026, a Sunday: rolled to Monday 9 November.
        vec![(DeadlineKind::MajorResolve, "2026-11-10T00:00:00+08:00".to_owned())]
    );
}

#[test]
fn hdl_2_interp_25_a_major_matter_resolved_within_its_month_never_owes_a_plan() {
    let mut lead = accepted_lead("SJ-3-1", Complexity::Major, Channel::Hotline, BodyCode::SJ);
    let sj = handler(BodyCode::SJ);
    // Past the seventh day without a plan, the reactor has nothing to escalate.
    assert!(lead.lead().obligations.open_of_kind(DeadlineKind::MajorPlan, None).is_none());
    lead.given(&sj, "2026-10-30T09:00:00+08:00", finding(Finding::Substantiated));
    lead.given(&sj, "2026-10-30T10:00:00+08:00", feedback(FeedbackRecipient::Complainant));
    let events = lead.given(&sj, "2026-10-30T11:00:00+08:00", sign());
    let closed: Vec<_> = events[0].closes.iter().map(|c| (c.kind, c.how)).collect();
    assert_eq!(closed, vec![(DeadlineKind::MajorResolve, ClosedHow::Met)]);
    assert!(open_kinds(&lead).is_empty());
}

#[test]
fn hdl_2_interp_25_a_declared_matter_owes_its_plan_within_the_first_seven_days() {
    let mut lead = accepted_lead("SJ-3-1", Complexity::Major, Channel::Hotline, BodyCode::SJ);
    let sj = handler(BodyCode::SJ);
    assert_eq!(
        lead.when(&sj, "2026-10-09T09:00:00+08:00", ComplaintCommand::DeclarePlanNeeded { reason: " ".into() }),
        Err(DomainError::MissingField { rule: RuleId::Hdl2, field: "reason" })
    );
    let events = lead.given(
        &sj,
        "2026-10-09T09:00:00+08:00",
        ComplaintCommand::DeclarePlanNeeded { reason: "需业主大会表决使用维修资金".into() },
    );
    assert!(matches!(events[0].fact, ComplaintFact::PlanRequired { cause: PlanCause::Declared, .. }));
    // Seven days from the transfer of 8 October: 24:00 on Thursday 15 October.
    let plan = lead.lead().obligations.open_of_kind(DeadlineKind::MajorPlan, None).expect("plan owed").clone();
    assert_eq!(plan.due, at("2026-10-16T00:00:00+08:00"));
    assert_eq!(plan.rule, RuleId::Hdl2);
    assert!(matches!(
        lead.when(&sj, "2026-10-10T09:00:00+08:00", ComplaintCommand::DeclarePlanNeeded { reason: "再次".into() }),
        Err(DomainError::WrongState { rule: RuleId::Hdl2, .. })
    ));
    // Missed on the day it passes, like any deadline.
    let missed = lead.given(&reactor(), "2026-10-16T00:00:01+08:00", escalate(plan.seq, EscalationLevel::Reminder));
    assert!(matches!(missed[0].fact, ComplaintFact::Escalation(EscalationFact::DeadlineMissed { .. })));
    // The plan, when it comes, meets the deadline late.
    let events = lead.given(
        &sj,
        "2026-10-19T09:00:00+08:00",
        ComplaintCommand::SubmitPlan { plan: "分步实施".into(), resolve_by: "2027-01-20".parse().unwrap() },
    );
    assert_eq!(events.len(), 1, "a declared plan is met by the plan itself");
    assert!(events[0].closes.contains(&tousu_domain::deadline::DeadlineClosure {
        seq: plan.seq,
        kind: DeadlineKind::MajorPlan,
        how: ClosedHow::Met
    }));
}

#[test]
fn hdl_2_interp_25_a_month_ended_without_a_plan_records_the_plan_missed_then() {
    let mut lead = accepted_lead("SJ-3-1", Complexity::Major, Channel::Hotline, BodyCode::SJ);
    let month = lead.lead().obligations.open_of_kind(DeadlineKind::MajorResolve, None).expect("month").clone();
    // The month ends at 24:00 on Monday 9 November; the reactor records its miss just after.
    let events = lead.given(&reactor(), "2026-11-10T00:00:01+08:00", escalate(month.seq, EscalationLevel::Reminder));
    let facts = LeadStream::facts(&events);
    assert!(matches!(
        facts[0],
        ComplaintFact::Escalation(EscalationFact::DeadlineMissed { kind: DeadlineKind::MajorResolve, .. })
    ));
    assert!(matches!(
        facts[1],
        ComplaintFact::Escalation(EscalationFact::Escalated { kind: DeadlineKind::MajorResolve, .. })
    ));
    assert!(matches!(facts[2], ComplaintFact::PlanRequired { cause: PlanCause::MonthEnded, reason: None }));
    let ComplaintFact::Escalation(EscalationFact::DeadlineMissed { kind, due, body, .. }) = facts[3] else {
        panic!("expected the plan's miss, got {:?}", facts[3]);
    };
    assert_eq!((*kind, *body), (DeadlineKind::MajorPlan, BodyCode::SJ));
    // Its legal due stays the seventh day; the miss is recorded when the month ends.
    assert_eq!(*due, at("2026-10-16T00:00:00+08:00"));
    assert_eq!(events[3].at, at("2026-11-10T00:00:01+08:00"));
    let plan = lead.lead().obligations.open_of_kind(DeadlineKind::MajorPlan, None).expect("plan owed").seq;
    assert!(lead.lead().obligations.miss_recorded(plan));
    // A second rung of the month's ladder does not record the plan again.
    let later =
        lead.given(&reactor(), "2026-11-13T00:00:01+08:00", escalate(month.seq, EscalationLevel::DistrictLeadership));
    assert!(later.iter().all(|event| !matches!(event.fact, ComplaintFact::PlanRequired { .. })));
}

#[test]
fn hdl_2_interp_25_an_undeclared_plan_after_the_seventh_day_is_owed_and_met_late() {
    let mut lead = accepted_lead("SJ-3-1", Complexity::Major, Channel::Hotline, BodyCode::SJ);
    let events = lead.given(
        &handler(BodyCode::SJ),
        "2026-10-20T09:00:00+08:00",
        ComplaintCommand::SubmitPlan { plan: "分步实施".into(), resolve_by: "2027-01-20".parse().unwrap() },
    );
    assert_eq!(events.len(), 2);
    assert!(matches!(events[0].fact, ComplaintFact::PlanRequired { cause: PlanCause::SubmittedLate, .. }));
    let owed = &events[0].opens[0];
    assert_eq!((owed.kind, owed.due), (DeadlineKind::MajorPlan, at("2026-10-16T00:00:00+08:00")));
    let closed: Vec<_> = events[1].closes.iter().map(|c| (c.seq, c.kind, c.how)).collect();
    assert_eq!(closed[0], (owed.seq, DeadlineKind::MajorPlan, ClosedHow::Met));
    assert!(events[1].at > owed.due, "met late");
    assert_eq!(
        open_kinds(&lead).into_iter().map(|(kind, _)| kind).collect::<Vec<_>>(),
        vec![DeadlineKind::MajorResolve, DeadlineKind::ProgressReport]
    );
}

#[test]
fn hdl_2_a_plan_sets_its_own_date_and_monthly_progress_reports_follow() {
    let mut lead = accepted_lead("SJ-3-1", Complexity::Major, Channel::Hotline, BodyCode::SJ);
    assert_eq!(
        lead.when(
            &handler(BodyCode::SJ),
            "2026-10-12T09:00:00+08:00",
            ComplaintCommand::ReportProgress { summary: "进展".into() }
        ),
        Err(DomainError::Unmet { rule: RuleId::Hdl2, command: "report_progress", requirement: Requirement::Plan })
    );
    let events = lead.given(
        &handler(BodyCode::SJ),
        "2026-10-12T09:00:00+08:00",
        ComplaintCommand::SubmitPlan {
            plan: "更换曳引机，分三步实施".into(),
            resolve_by: "2027-01-20".parse().unwrap(),
        },
    );
    let closed: Vec<_> = events[0].closes.iter().map(|c| (c.kind, c.how)).collect();
    // Within the first seven days, undeclared: no plan deadline was open (interpretation 25).
    assert_eq!(closed, vec![(DeadlineKind::MajorResolve, ClosedHow::Superseded)]);
    assert_eq!(
        open_kinds(&lead),
        vec![
            (DeadlineKind::MajorResolve, "2027-01-21T00:00:00+08:00".to_owned()),
            // 12 October + 1 month = Thursday 12 November 2026.
            (DeadlineKind::ProgressReport, "2026-11-13T00:00:00+08:00".to_owned()),
        ]
    );
    let events = lead.given(
        &handler(BodyCode::SJ),
        "2026-11-10T09:00:00+08:00",
        ComplaintCommand::ReportProgress { summary: "已完成设备采购".into() },
    );
    let next = &events[0].opens[0];
    assert_eq!(next.kind, DeadlineKind::ProgressReport);
    // The second report is due two months after the plan: 12 December 2026 is a Saturday,
    // so it rolls to Monday 14 December.
    assert_eq!(next.due, at("2026-12-15T00:00:00+08:00"));
    assert_eq!(next.basis, DueBasis::Period { start: at("2026-10-12T09:00:00+08:00"), period: Period::Months(2) });
}

#[test]
fn hdl_2_interp_17_a_general_matter_regraded_as_major_keeps_its_start() {
    let mut lead = accepted_lead("SJ-3-1", Complexity::General, Channel::Hotline, BodyCode::SJ);
    let events = lead.given(
        &handler(BodyCode::SJ),
        "2026-10-12T09:00:00+08:00",
        ComplaintCommand::Regrade { reason: "需更换主机，涉及维修资金".into() },
    );
    assert_eq!(events[0].closes[0].how, ClosedHow::Superseded);
    assert_eq!(open_kinds(&lead), vec![(DeadlineKind::MajorResolve, "2026-11-10T00:00:00+08:00".to_owned())]);
}

#[test]
fn hdl_2_interp_17_regrading_after_the_general_deadline_is_refused() {
    let lead = accepted_lead("SJ-3-1", Complexity::General, Channel::Hotline, BodyCode::SJ);
    let result = lead.when(
        &handler(BodyCode::SJ),
        "2026-10-16T00:00:01+08:00",
        ComplaintCommand::Regrade { reason: "复杂".into() },
    );
    assert!(matches!(result, Err(DomainError::WrongState { rule: RuleId::Hdl2, .. })), "{result:?}");
}

#[test]
fn hdl_4_a_12345_lead_needs_hotline_feedback_and_a_dissatisfied_follow_up_reopens_it() {
    let mut lead = accepted_lead("SJ-3-1", Complexity::General, Channel::Hotline12345, BodyCode::SJ);
    let sj = handler(BodyCode::SJ);
    lead.given(&sj, "2026-10-09T09:00:00+08:00", finding(Finding::Substantiated));
    lead.given(&sj, "2026-10-09T09:30:00+08:00", feedback(FeedbackRecipient::Complainant));
    assert_eq!(
        lead.when(&sj, "2026-10-09T10:00:00+08:00", sign()),
        Err(DomainError::Unmet {
            rule: RuleId::Hdl4,
            command: "sign_closure",
            requirement: Requirement::FeedbackToHotline,
        })
    );
    lead.given(&sj, "2026-10-09T09:40:00+08:00", feedback(FeedbackRecipient::Hotline12345));
    lead.given(&sj, "2026-10-09T10:00:00+08:00", sign());
    let follow_up = |satisfaction| ComplaintCommand::RecordSatisfaction { satisfaction, comment: "回访".into() };
    assert!(matches!(
        lead.when(&registrar(), "2026-10-10T09:00:00+08:00", follow_up(Satisfaction::Dissatisfied)),
        Err(DomainError::WrongBody { rule: RuleId::Hdl4, .. })
    ));
    let events = lead.given(&hotline_12345(), "2026-10-12T09:00:00+08:00", follow_up(Satisfaction::Dissatisfied));
    assert!(matches!(events[1].fact, ComplaintFact::Reopened { count: 1 }));
    assert_eq!(lead.lead().status, LeadStatus::Handling);
    assert_eq!(lead.lead().handling_body, Some(BodyCode::SJ), "same body");
    // Interpretation 18: the period starts again from the reopening (12 October + 7 days).
    assert_eq!(open_kinds(&lead), vec![(DeadlineKind::GeneralClose, "2026-10-20T00:00:00+08:00".to_owned())]);
    // Handled again and followed up again: satisfied this time.
    lead.given(&sj, "2026-10-13T09:00:00+08:00", feedback(FeedbackRecipient::Complainant));
    lead.given(&sj, "2026-10-13T09:10:00+08:00", feedback(FeedbackRecipient::Hotline12345));
    lead.given(&sj, "2026-10-13T10:00:00+08:00", sign());
    lead.given(&hotline_12345(), "2026-10-14T09:00:00+08:00", follow_up(Satisfaction::Satisfied));
    assert_eq!(lead.lead().status, LeadStatus::Closed);
    assert_eq!(lead.lead().reopen_count, 1);
}

#[test]
fn hdl_4_follow_up_is_only_for_12345_leads_after_closure() {
    let lead = accepted_lead("SJ-3-1", Complexity::General, Channel::Hotline12345, BodyCode::SJ);
    assert_eq!(
        lead.when(
            &hotline_12345(),
            "2026-10-09T09:00:00+08:00",
            ComplaintCommand::RecordSatisfaction { satisfaction: Satisfaction::Satisfied, comment: String::new() }
        ),
        Err(DomainError::Unmet {
            rule: RuleId::Hdl4,
            command: "record_satisfaction",
            requirement: Requirement::Closure,
        })
    );
}

// ---------------------------------------------------------------- PEN

/// A 综合执法 lead registered Wednesday 6 May 2026, transferred Friday 8 May and accepted,
/// with a penalty lead received that morning. (Penalty periods run for months: starting in
/// May keeps them inside the years the shipped calendar covers.)
fn penalty_lead() -> LeadStream {
    let mut lead = LeadStream::new();
    lead.given(
        &registrar(),
        "2026-05-06T10:00:00+08:00",
        ComplaintCommand::Register {
            id: "C-1".parse().unwrap(),
            registration: registration(Channel::Hotline, "王芳", "13812345678", "2026-05-06T09:00:00+08:00"),
        },
    );
    lead.given(
        &registrar(),
        "2026-05-06T11:00:00+08:00",
        ComplaintCommand::Classify {
            category: "ZF-1".into(),
            urgency: Urgency::Normal,
            complexity: Complexity::General,
            split: Vec::new(),
        },
    );
    lead.given(
        &registrar(),
        "2026-05-08T09:00:00+08:00",
        ComplaintCommand::Transfer { to: BodyCode::ZF, method: TransferMethod::Written, note: String::new() },
    );
    let zf = handler(BodyCode::ZF);
    lead.given(&zf, "2026-05-08T10:00:00+08:00", ComplaintCommand::Accept);
    lead.given(
        &zf,
        "2026-05-08T14:00:00+08:00",
        ComplaintCommand::OpenPenaltyMatter { received_at: at("2026-05-08T09:00:00+08:00") },
    );
    lead
}

#[test]
fn pen_1_a_penalty_lead_is_verified_within_fifteen_working_days_of_receipt() {
    let lead = penalty_lead();
    // From Friday 8 May 2026: Saturday 9 May is an adjusted working day (1), then 11–15 May
    // (2–6), 18–22 May (7–11), 25–28 May (12–15): due at 24:00 on Thursday 28 May.
    let verify =
        lead.lead().obligations.open_of_kind(DeadlineKind::PenaltyVerify, None).expect("verification deadline open");
    assert_eq!(verify.due, at("2026-05-29T00:00:00+08:00"));
    assert_eq!(verify.rule, RuleId::Pen1);
    assert_eq!(verify.body, BodyCode::ZF);
}

#[test]
fn pen_1_the_penalty_is_due_ninety_days_after_filing_and_one_extension_makes_it_one_hundred_twenty() {
    let mut lead = penalty_lead();
    let zf = handler(BodyCode::ZF);
    assert_eq!(
        lead.when(
            &zf,
            "2026-05-11T09:00:00+08:00",
            ComplaintCommand::FilePenaltyCase { case_number: "榕综执罚〔2026〕101号".into() }
        ),
        Err(DomainError::Unmet {
            rule: RuleId::Pen1,
            command: "file_penalty_case",
            requirement: Requirement::WarrantedPenaltyCase,
        })
    );
    lead.given(
        &zf,
        "2026-05-11T09:00:00+08:00",
        ComplaintCommand::VerifyPenaltyMatter {
            outcome: PenaltyVerification::CaseWarranted,
            summary: "擅自改变物业服务用房用途属实".into(),
        },
    );
    lead.given(
        &zf,
        "2026-05-12T09:00:00+08:00",
        ComplaintCommand::FilePenaltyCase { case_number: "榕综执罚〔2026〕101号".into() },
    );
    // 12 May 2026 + 90 days = Monday 10 August 2026.
    let complete = lead
        .lead()
        .obligations
        .open_of_kind(DeadlineKind::PenaltyComplete, None)
        .expect("completion deadline open")
        .clone();
    assert_eq!(complete.due, at("2026-08-11T00:00:00+08:00"));

    assert_eq!(
        lead.when(
            &zf,
            "2026-07-01T09:00:00+08:00",
            ComplaintCommand::ExtendPenaltyPeriod { days: 31, approved_by: "张局长".into() }
        ),
        Err(DomainError::PenaltyExtensionTooLong { asked: 31, max: 30 })
    );
    assert_eq!(
        lead.when(
            &zf,
            "2026-07-01T09:00:00+08:00",
            ComplaintCommand::ExtendPenaltyPeriod { days: 30, approved_by: "".into() }
        ),
        Err(DomainError::MissingField { rule: RuleId::Pen1, field: "approved_by" })
    );
    let events = lead.given(
        &zf,
        "2026-07-01T09:00:00+08:00",
        ComplaintCommand::ExtendPenaltyPeriod { days: 30, approved_by: "张局长".into() },
    );
    assert_eq!(events[0].closes[0].how, ClosedHow::Superseded);
    assert_eq!(
        events[0].opens[0].basis,
        DueBasis::Period { start: at("2026-05-12T09:00:00+08:00"), period: Period::Days(120) }
    );
    // 12 May 2026 + 120 days = Wednesday 9 September 2026.
    assert_eq!(events[0].opens[0].due, at("2026-09-10T00:00:00+08:00"));
    assert_eq!(
        lead.when(
            &zf,
            "2026-07-02T09:00:00+08:00",
            ComplaintCommand::ExtendPenaltyPeriod { days: 10, approved_by: "张局长".into() }
        ),
        Err(DomainError::PenaltyAlreadyExtended { approved_by: "张局长".into() })
    );
}

#[test]
fn pen_1_an_extension_after_the_period_has_run_out_is_refused() {
    let mut lead = penalty_lead();
    let zf = handler(BodyCode::ZF);
    lead.given(
        &zf,
        "2026-05-11T09:00:00+08:00",
        ComplaintCommand::VerifyPenaltyMatter { outcome: PenaltyVerification::CaseWarranted, summary: "属实".into() },
    );
    lead.given(&zf, "2026-05-12T09:00:00+08:00", ComplaintCommand::FilePenaltyCase { case_number: "101".into() });
    let result = lead.when(
        &zf,
        "2026-08-11T00:00:01+08:00",
        ComplaintCommand::ExtendPenaltyPeriod { days: 30, approved_by: "张局长".into() },
    );
    assert!(matches!(result, Err(DomainError::WrongState { rule: RuleId::Pen1, .. })), "{result:?}");
}

#[test]
fn pen_1_the_outcome_goes_back_to_the_complainant_and_the_transferring_body_before_closure() {
    let mut lead = penalty_lead();
    let zf = handler(BodyCode::ZF);
    lead.given(
        &zf,
        "2026-05-11T09:00:00+08:00",
        ComplaintCommand::VerifyPenaltyMatter { outcome: PenaltyVerification::CaseWarranted, summary: "属实".into() },
    );
    lead.given(&zf, "2026-05-12T09:00:00+08:00", ComplaintCommand::FilePenaltyCase { case_number: "101".into() });
    lead.given(&zf, "2026-05-13T09:00:00+08:00", finding(Finding::Substantiated));
    lead.given(&zf, "2026-05-13T09:30:00+08:00", feedback(FeedbackRecipient::Complainant));
    assert_eq!(
        lead.when(&zf, "2026-05-13T10:00:00+08:00", sign()),
        Err(DomainError::Unmet {
            rule: RuleId::Pen1,
            command: "sign_closure",
            requirement: Requirement::PenaltyDecision,
        })
    );
    let events = lead.given(
        &zf,
        "2026-06-20T09:00:00+08:00",
        ComplaintCommand::DecidePenalty {
            decision: PenaltyDecision::Imposed {
                description: "责令限期改正并罚款".into(), fine_fen: 2_000_000
            },
        },
    );
    assert_eq!(events[0].closes[0].kind, DeadlineKind::PenaltyComplete);
    // Feedback given before the decision does not count as feedback of the outcome.
    assert_eq!(
        lead.when(&zf, "2026-06-20T10:00:00+08:00", sign()),
        Err(DomainError::Unmet {
            rule: RuleId::Pen1,
            command: "sign_closure",
            requirement: Requirement::FeedbackToComplainant,
        })
    );
    lead.given(&zf, "2026-06-20T10:00:00+08:00", feedback(FeedbackRecipient::Complainant));
    assert_eq!(
        lead.when(&zf, "2026-06-20T10:30:00+08:00", sign()),
        Err(DomainError::Unmet {
            rule: RuleId::Pen1,
            command: "sign_closure",
            requirement: Requirement::FeedbackToTransferringBody,
        })
    );
    lead.given(&zf, "2026-06-20T10:30:00+08:00", feedback(FeedbackRecipient::TransferringBody));
    lead.given(&zf, "2026-06-20T11:00:00+08:00", sign());
    assert_eq!(lead.lead().status, LeadStatus::Closed);
}

#[test]
fn pen_1_a_decision_names_its_fields_as_the_request_does_and_bounds_the_fine() {
    let mut lead = penalty_lead();
    let zf = handler(BodyCode::ZF);
    lead.given(
        &zf,
        "2026-05-11T09:00:00+08:00",
        ComplaintCommand::VerifyPenaltyMatter { outcome: PenaltyVerification::CaseWarranted, summary: "属实".into() },
    );
    lead.given(&zf, "2026-05-12T09:00:00+08:00", ComplaintCommand::FilePenaltyCase { case_number: "101".into() });
    let decide = |decision| ComplaintCommand::DecidePenalty { decision };
    let imposed = |description: &str, fine_fen| PenaltyDecision::Imposed { description: description.into(), fine_fen };
    assert!(matches!(
        lead.when(&zf, "2026-06-20T09:00:00+08:00", decide(imposed("罚款", u64::MAX))),
        Err(DomainError::InvalidField { rule: RuleId::Pen1, field: "fine_fen", .. })
    ));
    assert_eq!(
        lead.when(&zf, "2026-06-20T09:00:00+08:00", decide(imposed(" ", 100))),
        Err(DomainError::MissingField { rule: RuleId::Pen1, field: "description" })
    );
    assert_eq!(
        lead.when(&zf, "2026-06-20T09:00:00+08:00", decide(PenaltyDecision::NotImposed { reason: String::new() })),
        Err(DomainError::MissingField { rule: RuleId::Pen1, field: "reason" })
    );
    let events = lead.given(&zf, "2026-06-20T09:00:00+08:00", decide(imposed("罚款", limits::AMOUNT_MAX_FEN)));
    assert_eq!(events[0].closes[0].kind, DeadlineKind::PenaltyComplete);
}

#[test]
fn pen_1_interp_21_a_case_filed_where_the_period_runs_into_2027_gets_a_provisional_deadline() {
    let mut lead = accepted_lead("ZF-1", Complexity::General, Channel::Hotline, BodyCode::ZF);
    let zf = handler(BodyCode::ZF);
    lead.given(
        &zf,
        "2026-10-09T09:00:00+08:00",
        ComplaintCommand::OpenPenaltyMatter { received_at: at("2026-10-08T09:00:00+08:00") },
    );
    lead.given(
        &zf,
        "2026-10-12T09:00:00+08:00",
        ComplaintCommand::VerifyPenaltyMatter { outcome: PenaltyVerification::CaseWarranted, summary: "属实".into() },
    );
    // 13 October 2026 + 90 days is Monday 11 January 2027, whose notice is not shipped: the
    // case is filed, and its deadline is provisional (a working Monday either way).
    let events =
        lead.given(&zf, "2026-10-13T09:00:00+08:00", ComplaintCommand::FilePenaltyCase { case_number: "102".into() });
    let deadline = &events[0].opens[0];
    assert_eq!(deadline.kind, DeadlineKind::PenaltyComplete);
    assert_eq!(deadline.due, at("2027-01-12T00:00:00+08:00"));
    assert!(deadline.provisional);
    assert_eq!(deadline.calendar.as_ref().map(|version| version.as_str()), Some("2027.provisional"));
}

#[test]
fn pen_1_interp_24_a_penalty_case_supersedes_the_handling_deadline() {
    // A general 综合执法 matter transferred Friday 8 May 2026 is due (HDL-1) at 24:00 on
    // Friday 15 May; filing the penalty case on 12 May closes that deadline as superseded and
    // PEN-1's 90 days govern, so doing the lawful thing never makes the body late.
    let mut lead = penalty_lead();
    let zf = handler(BodyCode::ZF);
    assert!(lead.lead().obligations.open_of_kind(DeadlineKind::GeneralClose, None).is_some());
    lead.given(
        &zf,
        "2026-05-11T09:00:00+08:00",
        ComplaintCommand::VerifyPenaltyMatter { outcome: PenaltyVerification::CaseWarranted, summary: "属实".into() },
    );
    let events =
        lead.given(&zf, "2026-05-12T09:00:00+08:00", ComplaintCommand::FilePenaltyCase { case_number: "101".into() });
    let closed: Vec<_> = events[0].closes.iter().map(|closure| (closure.kind, closure.how)).collect();
    assert_eq!(closed, vec![(DeadlineKind::GeneralClose, ClosedHow::Superseded)]);
    let open: Vec<_> = open_kinds(&lead).into_iter().map(|(kind, _)| kind).collect();
    assert_eq!(open, vec![DeadlineKind::PenaltyComplete], "only PEN-1's period is open");
    // Past the old handling due, the reactor has nothing of HDL-1's left to escalate.
    let general_seq = 1;
    assert!(matches!(
        lead.when(&reactor(), "2026-05-20T09:00:00+08:00", escalate(general_seq, EscalationLevel::Reminder)),
        Err(DomainError::DeadlineNotOpen { seq: 1 })
    ));
    // HDL-2's plan is not owed under a penalty case.
    let plan = lead.when(
        &zf,
        "2026-05-13T09:00:00+08:00",
        ComplaintCommand::SubmitPlan {
            plan: "分步整改".into(),
            resolve_by: at("2026-07-01T00:00:00+08:00").date_naive(),
        },
    );
    assert!(matches!(plan, Err(DomainError::WrongState { rule: RuleId::Hdl2, .. })), "{plan:?}");
    // PEN-1's outcome feedback meets the duty of feedback to the complainant: one feedback
    // after the decision lets the closure be signed.
    lead.given(&zf, "2026-05-13T09:00:00+08:00", finding(Finding::Substantiated));
    lead.given(
        &zf,
        "2026-06-20T09:00:00+08:00",
        ComplaintCommand::DecidePenalty {
            decision: PenaltyDecision::Imposed { description: "罚款".into(), fine_fen: 100 },
        },
    );
    lead.given(&zf, "2026-06-20T10:00:00+08:00", feedback(FeedbackRecipient::Complainant));
    lead.given(&zf, "2026-06-20T10:30:00+08:00", feedback(FeedbackRecipient::TransferringBody));
    let signed = lead.given(&zf, "2026-06-20T11:00:00+08:00", sign());
    assert!(signed[0].closes.is_empty(), "no handling deadline was left to meet: {:?}", signed[0].closes);
    assert_eq!(lead.lead().status, LeadStatus::Closed);
}

// ---------------------------------------------------------------- ACC-2

fn escalate(seq: u32, level: EscalationLevel) -> ComplaintCommand {
    ComplaintCommand::Escalate { seq, level }
}

#[test]
fn acc_2_a_deadline_not_yet_passed_cannot_be_escalated() {
    let lead = classified_lead("SJ-3-1", Complexity::General, Channel::Hotline);
    let result = lead.when(&reactor(), "2026-10-16T00:00:00+08:00", escalate(0, EscalationLevel::Reminder));
    assert!(matches!(result, Err(DomainError::NotEscalable { seq: 0, .. })), "{result:?}");
}

#[test]
fn acc_2_interp_9_a_missed_deadline_climbs_the_ladder_by_working_days_late() {
    let mut lead = classified_lead("SJ-3-1", Complexity::General, Channel::Hotline);
    // Due at 24:00 on Thursday 15 October 2026.
    let events = lead.given(&reactor(), "2026-10-16T00:00:01+08:00", escalate(0, EscalationLevel::Reminder));
    assert!(matches!(
        events[0].fact,
        ComplaintFact::Escalation(EscalationFact::DeadlineMissed {
            seq: 0,
            kind: DeadlineKind::Transfer,
            body: BodyCode::ZJ,
            ..
        })
    ));
    assert!(matches!(
        events[1].fact,
        ComplaintFact::Escalation(EscalationFact::Escalated {
            level: EscalationLevel::Reminder,
            reason: EscalationReason::Lateness,
            ..
        })
    ));
    assert_eq!(
        lead.when(&reactor(), "2026-10-16T12:00:00+08:00", escalate(0, EscalationLevel::Reminder)),
        Err(DomainError::AlreadyEscalated { seq: 0, level: EscalationLevel::Reminder })
    );
    // Late days: Fri 16 (1), Mon 19 (2), Tue 20 (3).
    assert!(
        lead.when(&reactor(), "2026-10-19T23:59:59+08:00", escalate(0, EscalationLevel::DistrictLeadership)).is_err()
    );
    let events = lead.given(&reactor(), "2026-10-20T00:00:00+08:00", escalate(0, EscalationLevel::DistrictLeadership));
    assert_eq!(events.len(), 1, "the miss is recorded once");
    // Ten working days late: Thursday 29 October.
    assert!(lead.when(&reactor(), "2026-10-28T23:59:59+08:00", escalate(0, EscalationLevel::DisciplineOrgan)).is_err());
    lead.given(&reactor(), "2026-10-29T00:00:00+08:00", escalate(0, EscalationLevel::DisciplineOrgan));
    let levels: Vec<_> = lead.lead().obligations.levels(0).collect();
    assert_eq!(
        levels,
        vec![EscalationLevel::Reminder, EscalationLevel::DistrictLeadership, EscalationLevel::DisciplineOrgan]
    );
}

#[test]
fn acc_2_interp_9_a_second_miss_by_the_same_body_on_the_same_lead_is_referred_at_once() {
    let mut lead = accepted_lead("SJ-3-1", Complexity::Major, Channel::Hotline, BodyCode::SJ);
    // The body declares a plan needed (interpretation 25); the plan deadline (seq 2) is missed
    // first, then resolution (seq 1) much later.
    lead.given(
        &handler(BodyCode::SJ),
        "2026-10-09T09:00:00+08:00",
        ComplaintCommand::DeclarePlanNeeded { reason: "涉及维修资金".into() },
    );
    lead.given(&reactor(), "2026-10-16T08:00:00+08:00", escalate(2, EscalationLevel::Reminder));
    let events = lead.given(&reactor(), "2026-11-10T08:00:00+08:00", escalate(1, EscalationLevel::DisciplineOrgan));
    assert!(matches!(
        events.last().map(|e| &e.fact),
        Some(ComplaintFact::Escalation(EscalationFact::Escalated {
            level: EscalationLevel::DisciplineOrgan,
            reason: EscalationReason::RepeatMiss,
            working_days_late: 1,
            ..
        }))
    ));
}

fn official() -> tousu_domain::actor::Actor {
    tousu_domain::actor::Actor {
        person: "李明（住建局副局长）".into(), body: BodyCode::ZJ, role: Role::Official
    }
}

fn refer(seq: u32, decision: ReferralDecision, reason: &str) -> ComplaintCommand {
    ComplaintCommand::DecideReferral { seq, decision, reason: reason.into() }
}

/// The lead of `acc_2_interp_9_a_missed_deadline_climbs_the_ladder_by_working_days_late`,
/// its TRF-2 deadline ten working days late and recommended for referral.
fn recommended_lead() -> LeadStream {
    let mut lead = classified_lead("SJ-3-1", Complexity::General, Channel::Hotline);
    lead.given(&reactor(), "2026-10-29T00:00:00+08:00", escalate(0, EscalationLevel::DisciplineOrgan));
    lead
}

#[test]
fn acc_2_interp_9_the_third_rung_is_a_recommendation_until_an_official_decides() {
    let mut lead = recommended_lead();
    let recommendation = lead.lead().obligations.recommendation(0).expect("recommended").clone();
    assert_eq!(
        (recommendation.kind, recommendation.body, recommendation.decision),
        (DeadlineKind::Transfer, BodyCode::ZJ, None)
    );
    // The timer never refers: only the official's command records a referral.
    assert_eq!(
        lead.when(&official(), "2026-10-30T09:00:00+08:00", refer(0, ReferralDecision::Referred, "")),
        Err(DomainError::MissingField { rule: RuleId::Acc2, field: "reason" })
    );
    let events = lead.given(
        &official(),
        "2026-10-30T09:00:00+08:00",
        refer(0, ReferralDecision::Referred, "逾期十个工作日未转办，且无正当理由"),
    );
    let ComplaintFact::Escalation(EscalationFact::ReferralDecided { seq, kind, body, decision, reason, official: by }) =
        &events[0].fact
    else {
        panic!("expected a referral decision, got {:?}", events[0].fact);
    };
    assert_eq!((*seq, *kind, *body, *decision), (0, DeadlineKind::Transfer, BodyCode::ZJ, ReferralDecision::Referred));
    assert_eq!(reason, "逾期十个工作日未转办，且无正当理由");
    assert_eq!(by, "李明（住建局副局长）");
    assert_eq!(events[0].event_type(), "complaint.referral_decided");
    assert_eq!(
        lead.when(&official(), "2026-10-30T10:00:00+08:00", refer(0, ReferralDecision::Dismissed, "改判")),
        Err(DomainError::ReferralAlreadyDecided { seq: 0, decision: ReferralDecision::Referred })
    );
}

#[test]
fn acc_2_interp_9_a_recommendation_is_dismissed_with_a_reason_even_after_its_deadline_closed() {
    let mut lead = recommended_lead();
    // The transfer is made late: the deadline closes, the recommendation stays to be decided.
    lead.given(
        &registrar(),
        "2026-10-29T09:00:00+08:00",
        ComplaintCommand::Transfer { to: BodyCode::SJ, method: TransferMethod::System, note: String::new() },
    );
    assert!(lead.lead().obligations.get(0).is_none());
    let events = lead.given(
        &official(),
        "2026-10-30T09:00:00+08:00",
        refer(0, ReferralDecision::Dismissed, "系统故障导致延误，已书面说明"),
    );
    assert!(matches!(
        events[0].fact,
        ComplaintFact::Escalation(EscalationFact::ReferralDecided { decision: ReferralDecision::Dismissed, .. })
    ));
    assert_eq!(lead.lead().obligations.recommendation(0).and_then(|r| r.decision), Some(ReferralDecision::Dismissed));
}

#[test]
fn acc_2_interp_9_only_a_zhujian_official_decides_and_only_a_recommendation() {
    let lead = recommended_lead();
    let command = refer(0, ReferralDecision::Referred, "理由");
    assert!(command.permitted(Role::Official));
    for role in [Role::Registrar, Role::Handler, Role::Auditor, Role::Operator, Role::System] {
        assert!(!command.permitted(role), "{role} may not decide a referral");
    }
    let elsewhere = tousu_domain::actor::Actor { person: "王".into(), body: BodyCode::SJ, role: Role::Official };
    assert!(matches!(
        lead.when(&elsewhere, "2026-10-30T09:00:00+08:00", refer(0, ReferralDecision::Referred, "理由")),
        Err(DomainError::WrongBody { rule: RuleId::Acc2, .. })
    ));
    let fresh = classified_lead("SJ-3-1", Complexity::General, Channel::Hotline);
    assert_eq!(
        fresh.when(&official(), "2026-10-30T09:00:00+08:00", refer(0, ReferralDecision::Referred, "理由")),
        Err(DomainError::NoReferralRecommendation { seq: 0 })
    );
}

// ---------------------------------------------------------------- Interpretation 21

fn recompute(seq: u32) -> ComplaintCommand {
    ComplaintCommand::RecomputeDeadline { seq }
}

/// A lead registered on Wednesday 3 February 2027, before the 2027 notice is loaded: its
/// TRF-2 deadline counts 4 February, then (provisional 春节 rest 5–10 February) 11, 12 and
/// 15–18 February, so it is due at 24:00 on Thursday 18 February, provisionally. With the
/// made-up notice (rest 5–14 February, Saturday 20 worked) it counts 4, 15–19 and 20
/// February: due at 24:00 on Saturday 20 February.
fn lead_registered_in_february_2027() -> LeadStream {
    let mut lead = LeadStream::new();
    let mut command = register(Channel::Hotline);
    if let ComplaintCommand::Register { registration, .. } = &mut command {
        registration.received_at = at("2027-02-03T09:00:00+08:00");
    }
    let events = lead.given(&registrar(), "2027-02-03T10:00:00+08:00", command);
    let transfer = &events[0].opens[0];
    assert_eq!(transfer.due, at("2027-02-19T00:00:00+08:00"));
    assert!(transfer.provisional, "no 2027 notice is loaded");
    lead
}

#[test]
fn trf_2_interp_21_a_provisional_deadline_is_recomputed_once_the_notice_is_loaded() {
    let mut lead = lead_registered_in_february_2027();
    // Without the notice there is nothing to recompute.
    match lead.when(&reactor(), "2027-02-10T09:00:00+08:00", recompute(0)) {
        Err(DomainError::RecomputationUnchanged { seq: 0, rule: RuleId::Trf2, calendar }) => {
            assert_eq!(calendar.as_str(), "2027.provisional")
        }
        other => panic!("expected RecomputationUnchanged, got {other:?}"),
    }
    lead.world.load_made_up_2027();
    let events = lead.given(&reactor(), "2027-02-10T09:00:00+08:00", recompute(0));
    let [event] = events.as_slice() else { panic!("one event: {events:?}") };
    let ComplaintFact::Escalation(EscalationFact::DeadlineRecomputed {
        seq: 0,
        kind: DeadlineKind::Transfer,
        body: BodyCode::ZJ,
        previous_due,
        due,
        provisional: false,
        calendar,
        withdrawn_levels,
        miss_withdrawn: false,
    }) = &event.fact
    else {
        panic!("expected the recomputation, got {:?}", event.fact);
    };
    assert_eq!(*previous_due, at("2027-02-19T00:00:00+08:00"));
    assert_eq!(*due, at("2027-02-21T00:00:00+08:00"));
    assert!(calendar.as_str().starts_with("2027.official."), "{calendar}");
    assert!(withdrawn_levels.is_empty());
    assert_eq!(event.event_type(), "complaint.deadline_recomputed");
    // The open deadline and the kept TRF-2 deadline follow.
    let open = lead.lead().obligations.get(0).expect("still open");
    assert_eq!((open.due, open.provisional, open.calendar.clone()), (at("2027-02-21T00:00:00+08:00"), false, None));
    assert_eq!(lead.lead().original_transfer_deadline.as_ref().map(|d| d.due), Some(at("2027-02-21T00:00:00+08:00")));
    // Official now: nothing more to recompute.
    assert_eq!(
        lead.when(&reactor(), "2027-02-10T09:30:00+08:00", recompute(0)),
        Err(DomainError::NotProvisional { seq: 0, rule: RuleId::Trf2 })
    );
    // Only tousu's own workers and operators recompute.
    assert!(recompute(0).permitted(Role::System) && recompute(0).permitted(Role::Operator));
    assert!(!recompute(0).permitted(Role::Registrar));
}

#[test]
fn acc_2_interp_21_escalation_recorded_against_the_provisional_due_is_withdrawn_when_it_no_longer_holds() {
    let mut lead = lead_registered_in_february_2027();
    // Missed against the provisional due: the reminder is recorded on Friday 19 February.
    lead.given(&reactor(), "2027-02-19T08:00:00+08:00", escalate(0, EscalationLevel::Reminder));
    assert!(lead.lead().obligations.miss_recorded(0));
    lead.world.load_made_up_2027();
    // Recomputed that afternoon, the deadline runs to 24:00 on 20 February: not missed yet.
    let events = lead.given(&reactor(), "2027-02-19T15:00:00+08:00", recompute(0));
    assert!(matches!(
        &events[0].fact,
        ComplaintFact::Escalation(EscalationFact::DeadlineRecomputed { withdrawn_levels, miss_withdrawn: true, .. })
            if withdrawn_levels == &[EscalationLevel::Reminder]
    ));
    assert!(!lead.lead().obligations.miss_recorded(0));
    assert_eq!(lead.lead().obligations.levels(0).count(), 0);
    // The ladder follows the new due.
    assert!(matches!(
        lead.when(&reactor(), "2027-02-20T23:00:00+08:00", escalate(0, EscalationLevel::Reminder)),
        Err(DomainError::NotEscalable { seq: 0, .. })
    ));
    let events = lead.given(&reactor(), "2027-02-21T00:00:01+08:00", escalate(0, EscalationLevel::Reminder));
    assert!(matches!(events[0].fact, ComplaintFact::Escalation(EscalationFact::DeadlineMissed { seq: 0, .. })));
}

#[test]
fn trf_3_interp_15_interp_21_a_reinstated_transfer_deadline_recomputes_the_original_period() {
    let mut lead = lead_registered_in_february_2027();
    lead.given(
        &registrar(),
        "2027-02-03T10:30:00+08:00",
        ComplaintCommand::Classify {
            category: "SJ-3-1".into(),
            urgency: Urgency::Normal,
            complexity: Complexity::General,
            split: Vec::new(),
        },
    );
    lead.given(
        &registrar(),
        "2027-02-04T09:00:00+08:00",
        ComplaintCommand::Transfer { to: BodyCode::SJ, method: TransferMethod::System, note: "请办理".into() },
    );
    lead.given(
        &handler(BodyCode::SJ),
        "2027-02-04T10:00:00+08:00",
        ComplaintCommand::ReturnTransfer { reason: "不属本单位职责".into() },
    );
    // Interpretation 27: 住建 accepts the return, which reinstates its TRF-2 deadline.
    let events = lead.given(&registrar(), "2027-02-04T11:00:00+08:00", review_return(true, "确属误派"));
    let reinstated = events[0].opens[0].clone();
    assert_eq!(reinstated.basis, DueBasis::Reinstated { original: 0 });
    assert!(reinstated.provisional);
    lead.world.load_made_up_2027();
    lead.given(&reactor(), "2027-02-10T09:00:00+08:00", recompute(reinstated.seq));
    assert_eq!(lead.lead().obligations.get(reinstated.seq).map(|d| d.due), Some(at("2027-02-21T00:00:00+08:00")));
    assert_eq!(lead.lead().original_transfer_deadline.as_ref().map(|d| d.due), Some(at("2027-02-21T00:00:00+08:00")));
}

// ---------------------------------------------------------------- DSP-1, ACC-1 and storage

#[test]
fn dsp_1_a_lead_is_open_and_overdue_for_the_body_that_holds_it() {
    let lead = accepted_lead("SJ-3-1", Complexity::General, Channel::Hotline, BodyCode::SJ);
    let state = lead.lead();
    assert_eq!(state.accountable_body(), BodyCode::SJ);
    assert!(state.status.is_open());
    assert!(!state.is_overdue_at(at("2026-10-15T23:00:00+08:00")));
    assert!(state.is_overdue_at(at("2026-10-16T00:00:01+08:00")));
}

#[test]
fn acc_1_auditors_read_everything_and_issue_no_command() {
    let commands = [
        register(Channel::Hotline),
        ComplaintCommand::Accept,
        sign(),
        ComplaintCommand::ReviewClosure { outcome: ReviewOutcome::Cancelled },
        escalate(0, EscalationLevel::Reminder),
    ];
    for command in &commands {
        assert!(!command.permitted(Role::Auditor), "{}", command.name());
    }
    assert!(register(Channel::Hotline).permitted(Role::Registrar));
    assert!(!sign().permitted(Role::Registrar));
    assert!(Role::Auditor.sees_contact_details());
}

#[test]
fn every_event_of_a_full_lifecycle_reads_back_equal_from_json() {
    let mut lead = penalty_lead();
    let zf = handler(BodyCode::ZF);
    // The general-close deadline (seq 1) of 8 May runs out at 24:00 on 15 May.
    lead.given(&reactor(), "2026-05-18T00:00:00+08:00", escalate(1, EscalationLevel::Reminder));
    lead.given(
        &zf,
        "2026-05-18T09:00:00+08:00",
        ComplaintCommand::VerifyPenaltyMatter { outcome: PenaltyVerification::NoCase, summary: "不属实".into() },
    );
    lead.given(&zf, "2026-05-18T09:30:00+08:00", finding(Finding::Unsubstantiated));
    lead.given(&zf, "2026-05-18T10:00:00+08:00", feedback(FeedbackRecipient::Complainant));
    lead.given(&zf, "2026-05-18T11:00:00+08:00", sign());
    lead.given(
        &city_reviewer(BodyCode::ZF),
        "2026-05-19T09:00:00+08:00",
        ComplaintCommand::ReviewClosure { outcome: ReviewOutcome::Cancelled },
    );
    assert!(lead.events.len() >= 10);
    let mut replayed = tousu_domain::complaint::ComplaintState::default();
    for event in &lead.events {
        let json = serde_json::to_string(event).expect("serialises");
        let back: ComplaintEvent = serde_json::from_str(&json).unwrap_or_else(|error| panic!("{json}: {error}"));
        assert_eq!(&back, event, "{json}");
        replayed = tousu_domain::complaint::evolve(replayed, &back);
    }
    assert_eq!(replayed, lead.state, "replaying the stored events rebuilds the same state");
    assert_eq!(lead.lead().status, LeadStatus::Cancelled);
}
