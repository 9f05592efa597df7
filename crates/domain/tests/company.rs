//! Given / when / then tests of a company's conditions and consequences: key supervision
//! (REG-4), grade review (GRD-1..4), exit (EXT-1), the bulletin (PUB-1) and reporting
//! periods (REG-3).

mod common;

use chrono::{Datelike, NaiveDate};
use common::*;
use tousu_domain::DomainError;
use tousu_domain::actor::Role;
use tousu_domain::bulletin_approval::{BulletinCommand, BulletinEvent, BulletinFact, BulletinState, DraftAnchor};
use tousu_domain::complaint::Finding;
use tousu_domain::deadline::{ClosedHow, DeadlineKind, EscalationLevel};
use tousu_domain::enterprise::{DowngradeReason, EnterpriseCommand, EnterpriseFact, GradeReviewTrigger};
use tousu_domain::error::Requirement;
use tousu_domain::ids::BodyCode;
use tousu_domain::limits;
use tousu_domain::policy::Policy;
use tousu_domain::reporting::{BulletinReason, BulletinVerdict, CompanyMonth, bulletin_verdict, reporting_week};
use tousu_domain::rule::RuleId;

fn system() -> tousu_domain::actor::Actor {
    reactor()
}

/// Records `n` complaints from complainants `first..first+n`, registered on 2026-03-02 at
/// consecutive minutes, and returns the company.
fn with_complaints(company: &mut CompanyStream, first: u32, n: u32, community: &str) {
    for i in first..first + n {
        company.given(
            &system(),
            "2026-03-02T12:00:00+08:00",
            company_command_complaint(
                &format!("C-{i}"),
                Some(&format!("complainant-{i}")),
                &format!("2026-03-02T10:{:02}:00+08:00", i % 60),
                community,
            ),
        );
    }
}

fn substantiate(
    company: &mut CompanyStream,
    first: u32,
    n: u32,
    now: &str,
) -> Vec<tousu_domain::enterprise::EnterpriseEvent> {
    let mut events = Vec::new();
    for i in first..first + n {
        events.extend(company.given(
            &system(),
            now,
            company_command_finding(&format!("C-{i}"), Finding::Substantiated, now),
        ));
    }
    events
}

fn has(events: &[tousu_domain::enterprise::EnterpriseEvent], pred: impl Fn(&EnterpriseFact) -> bool) -> bool {
    events.iter().any(|event| pred(&event.fact))
}

// ---------------------------------------------------------------- REG-4

#[test]
fn reg_4_interp_1_the_eleventh_distinct_complainant_starts_key_supervision() {
    let mut company = CompanyStream::new();
    with_complaints(&mut company, 1, 10, "福苑小区");
    assert!(
        !has(&company.events, |f| matches!(f, EnterpriseFact::KeySupervisionStarted { .. })),
        "ten is not more than ten"
    );
    let events = company.given(
        &system(),
        "2026-03-02T12:00:00+08:00",
        company_command_complaint("C-11", Some("complainant-11"), "2026-03-02T11:00:00+08:00", "福苑小区"),
    );
    let EnterpriseFact::KeySupervisionStarted { evidence } = &events[1].fact else {
        panic!("expected key supervision, got {:?}", events);
    };
    assert_eq!(evidence.distinct, 11);
    assert_eq!(evidence.leads.len(), 11);
}

#[test]
fn reg_4_a_repeat_complainant_is_not_counted_twice() {
    let mut company = CompanyStream::new();
    with_complaints(&mut company, 1, 10, "福苑小区");
    let events = company.given(
        &system(),
        "2026-03-02T12:00:00+08:00",
        company_command_complaint("C-99", Some("complainant-3"), "2026-03-02T11:30:00+08:00", "福苑小区"),
    );
    assert_eq!(events.len(), 1, "no condition: still ten distinct complainants");
    let (holds, evidence) =
        company.state.company.as_ref().unwrap().key_supervision(at("2026-03-02T12:00:00+08:00"), &Policy::default());
    assert!(!holds);
    assert_eq!((evidence.distinct, evidence.leads.len()), (10, 11));
}

#[test]
fn reg_4_interp_2_anonymous_leads_each_count_once_and_are_shown_apart() {
    let mut company = CompanyStream::new();
    with_complaints(&mut company, 1, 9, "福苑小区");
    company.given(
        &system(),
        "2026-03-02T12:00:00+08:00",
        company_command_complaint("A-1", None, "2026-03-02T11:00:00+08:00", "福苑小区"),
    );
    let events = company.given(
        &system(),
        "2026-03-02T12:00:00+08:00",
        company_command_complaint("A-2", None, "2026-03-02T11:01:00+08:00", "福苑小区"),
    );
    let EnterpriseFact::KeySupervisionStarted { evidence } = &events[1].fact else {
        panic!("expected key supervision, got {events:?}");
    };
    assert_eq!(evidence.distinct, 11);
    assert_eq!(evidence.keys.len(), 9);
    assert_eq!(evidence.anonymous_leads, vec!["A-1".parse().unwrap(), "A-2".parse().unwrap()]);
}

#[test]
fn reg_4_interp_20_a_company_leaves_key_supervision_when_its_complaints_age_out() {
    let mut company = CompanyStream::new();
    with_complaints(&mut company, 1, 11, "福苑小区");
    assert!(company.state.company.as_ref().unwrap().key_supervision_since.is_some());
    // The window is the 12 months before the evaluation: complaints of 2 March 2026 at
    // 10:00–10:11 count until 2 March 2027 at the same wall-clock instant.
    let events = company.when(&system(), "2027-03-02T10:00:00+08:00", EnterpriseCommand::EvaluateConditions).unwrap();
    assert!(events.is_empty(), "the 10:01–10:11 complaints are still inside: {events:?}");
    let events = company.given(&system(), "2027-03-02T10:11:00+08:00", EnterpriseCommand::EvaluateConditions);
    let EnterpriseFact::KeySupervisionEnded { evidence } = &events[0].fact else {
        panic!("expected the end of key supervision, got {events:?}");
    };
    assert_eq!(evidence.distinct, 0);
}

// ---------------------------------------------------------------- GRD-1

#[test]
fn grd_1_eleven_substantiated_distinct_complainants_in_half_a_year_require_a_survey_within_ten_days() {
    let mut company = CompanyStream::new();
    with_complaints(&mut company, 1, 6, "福苑小区");
    with_complaints(&mut company, 7, 6, "榕华小区");
    let events = substantiate(&mut company, 1, 10, "2026-03-10T09:00:00+08:00");
    assert!(!has(&events, |f| matches!(f, EnterpriseFact::GradeReviewRequired { .. })));
    let events = substantiate(&mut company, 11, 1, "2026-03-10T09:00:00+08:00");
    let required = events
        .iter()
        .find(|event| matches!(event.fact, EnterpriseFact::GradeReviewRequired { .. }))
        .expect("grade review required");
    let EnterpriseFact::GradeReviewRequired { triggers, communities } = &required.fact else { unreachable!() };
    assert!(matches!(&triggers[0], GradeReviewTrigger::Complaints { evidence } if evidence.distinct == 11));
    assert_eq!(communities, &vec!["榕华小区".to_owned(), "福苑小区".to_owned()]);
    // One survey per community, due 10 days later: 20 March 2026, a Friday.
    assert_eq!(required.opens.len(), 2);
    for survey in &required.opens {
        assert_eq!(survey.kind, DeadlineKind::Survey);
        assert_eq!(survey.rule, RuleId::Grd1);
        assert_eq!(survey.due, at("2026-03-21T00:00:00+08:00"));
    }
}

/// Interpretation 22: GRD-1 counts only substantiated leads that are the company's
/// responsibility; a substantiated matter of residents' conduct counts for REG-4 alone, and a
/// later finding that holds the company responsible makes it count.
#[test]
fn grd_1_interp_22_only_substantiated_leads_attributable_to_the_company_count() {
    let mut company = CompanyStream::new();
    with_complaints(&mut company, 1, 12, "福苑小区");
    let now = "2026-03-10T09:00:00+08:00";
    substantiate(&mut company, 1, 10, now);
    let events =
        company.given(&system(), now, company_command_finding_attributed("C-11", Finding::Substantiated, false, now));
    assert!(
        has(&events, |f| matches!(f, EnterpriseFact::FindingRecorded { attributable: false, .. })),
        "the finding is recorded with its attributability: {events:?}"
    );
    assert!(!has(&events, |f| matches!(f, EnterpriseFact::GradeReviewRequired { .. })), "10 attributable: no review");
    let state = company.state.company.as_ref().expect("a company");
    let at = at("2026-03-10T10:00:00+08:00");
    assert_eq!(state.substantiated_in_window(at, 6).distinct, 10, "the 11th is not the company's");
    assert_eq!(state.complainants_in_window(at, 12).distinct, 12, "REG-4 counts every lead naming the company");
    // The body finds again: the company is responsible after all.
    let events = company.given(
        &system(),
        "2026-03-11T09:00:00+08:00",
        company_command_finding_attributed("C-11", Finding::Substantiated, true, "2026-03-11T09:00:00+08:00"),
    );
    assert!(has(&events, |f| matches!(f, EnterpriseFact::GradeReviewRequired { .. })), "11 attributable: review");
}

/// Interpretation 22: a finding counted before the interpretation says nothing of
/// attributability and is read as the company's, as it was counted then.
#[test]
fn interp_22_a_finding_counted_before_the_interpretation_reads_as_the_companys() {
    let stored = serde_json::json!({
        "type": "finding_recorded",
        "lead": "C-1",
        "finding": "substantiated",
        "found_at": "2026-03-10T09:00:00+08:00"
    });
    let fact: EnterpriseFact = serde_json::from_value(stored).expect("an old event reads");
    assert!(matches!(fact, EnterpriseFact::FindingRecorded { attributable: true, .. }), "{fact:?}");
    let written = serde_json::to_value(&fact).expect("serialises");
    assert!(written.get("attributable").is_none(), "an attributable finding is written as before: {written}");
}

#[test]
fn grd_1_interp_20_a_complaint_registered_before_the_six_month_window_does_not_count() {
    let mut company = CompanyStream::new();
    // Registered 2 March 2026 10:00–10:10; evaluated 2 September 2026 10:00: the window
    // starts 2 March 10:00 exclusive, so the complaint of 10:00 is out.
    for i in 0..=10u32 {
        company.given(
            &system(),
            "2026-03-02T12:00:00+08:00",
            company_command_complaint(
                &format!("C-{i}"),
                Some(&format!("complainant-{i}")),
                &format!("2026-03-02T10:{i:02}:00+08:00"),
                "福苑小区",
            ),
        );
    }
    substantiate(&mut company, 0, 11, "2026-04-01T09:00:00+08:00");
    let company_state = company.state.company.as_ref().unwrap();
    let policy = Policy::default();
    let triggers = company_state.grade_review_triggers(at("2026-09-02T10:00:00+08:00"), &policy);
    assert!(triggers.is_empty(), "C-0 has aged out, ten remain: {triggers:?}");
    let triggers = company_state.grade_review_triggers(at("2026-09-02T09:59:59+08:00"), &policy);
    assert_eq!(triggers.len(), 1);
}

#[test]
fn grd_1_interp_12_a_low_credit_rating_or_long_black_listing_triggers_the_review() {
    let mut company = CompanyStream::new();
    with_complaints(&mut company, 1, 1, "福苑小区");
    let events = company.given(
        &registrar(),
        "2026-03-03T09:00:00+08:00",
        EnterpriseCommand::RecordCreditRating { rating: "D".into() },
    );
    assert!(has(&events, |f| matches!(
        f,
        EnterpriseFact::GradeReviewRequired { triggers, .. }
            if matches!(&triggers[0], GradeReviewTrigger::LowCreditRating { rating } if rating == "D")
    )));

    let mut company = CompanyStream::new();
    with_complaints(&mut company, 1, 1, "福苑小区");
    company.given(
        &registrar(),
        "2026-03-03T09:00:00+08:00",
        EnterpriseCommand::RecordBlacklisting { listed_on: "2026-03-01".parse().unwrap() },
    );
    assert!(
        company.when(&system(), "2026-08-31T09:00:00+08:00", EnterpriseCommand::EvaluateConditions).unwrap().is_empty()
    );
    let events = company.given(&system(), "2026-09-01T09:00:00+08:00", EnterpriseCommand::EvaluateConditions);
    assert!(has(&events, |f| matches!(
        f,
        EnterpriseFact::GradeReviewRequired { triggers, .. }
            if matches!(&triggers[0], GradeReviewTrigger::LongBlacklisted { .. })
    )));
}

// ---------------------------------------------------------------- GRD-2..4

/// A company under grade review with a survey due for 福苑小区.
fn under_review() -> CompanyStream {
    let mut company = CompanyStream::new();
    with_complaints(&mut company, 1, 11, "福苑小区");
    substantiate(&mut company, 1, 11, "2026-03-10T09:00:00+08:00");
    company
}

fn survey(respondents: u32, satisfied: u32) -> EnterpriseCommand {
    EnterpriseCommand::RecordSurvey {
        community: "福苑小区".into(),
        respondents,
        satisfied,
        publication: "小区公告栏张贴 2026-03-16".into(),
    }
}

#[test]
fn grd_2_satisfaction_of_59_9_percent_requires_a_downgrade_and_60_percent_does_not() {
    let company = under_review();
    let zj = handler(BodyCode::ZJ);
    let events = company.when(&zj, "2026-03-16T09:00:00+08:00", survey(1000, 599)).unwrap();
    assert!(matches!(events[0].fact, EnterpriseFact::SurveyCompleted { satisfaction_bp: 5990, .. }));
    assert_eq!(events[0].closes[0].kind, DeadlineKind::Survey);
    assert_eq!(events[0].closes[0].how, ClosedHow::Met);
    assert!(matches!(
        events[1].fact,
        EnterpriseFact::DowngradeRequired { reason: DowngradeReason::LowSatisfaction { satisfaction_bp: 5990 }, .. }
    ));
    // Downgrade within 5 days: 21 March 2026 is a Saturday, rolled to Monday 23 March.
    assert_eq!(events[1].opens[0].kind, DeadlineKind::Downgrade);
    assert_eq!(events[1].opens[0].due, at("2026-03-24T00:00:00+08:00"));

    let events = company.when(&zj, "2026-03-16T09:00:00+08:00", survey(1000, 600)).unwrap();
    assert_eq!(events.len(), 1, "60 % is not below 60 %: {events:?}");
}

#[test]
fn grd_1_a_command_on_a_company_that_does_not_exist_names_the_rule_of_the_command() {
    let company = CompanyStream::new();
    assert_eq!(
        company.when(
            &registrar(),
            "2026-03-16T09:00:00+08:00",
            EnterpriseCommand::RecordCreditRating { rating: "D".into() }
        ),
        Err(DomainError::NotFound { rule: RuleId::Grd1, subject: "company" })
    );
    assert_eq!(
        company.when(
            &handler(BodyCode::ZJ),
            "2026-03-16T09:00:00+08:00",
            EnterpriseCommand::StartExitProcedure {
                decision: "启动退出程序".into(),
                street_office_official: "李某".into(),
            }
        ),
        Err(DomainError::NotFound { rule: RuleId::Ext1, subject: "company" })
    );
}

#[test]
fn grd_1_a_survey_must_be_published_and_must_add_up() {
    let company = under_review();
    let zj = handler(BodyCode::ZJ);
    let mut unpublished = survey(10, 9);
    if let EnterpriseCommand::RecordSurvey { publication, .. } = &mut unpublished {
        publication.clear();
    }
    assert_eq!(
        company.when(&zj, "2026-03-16T09:00:00+08:00", unpublished),
        Err(DomainError::MissingField { rule: RuleId::Grd1, field: "publication" })
    );
    assert!(matches!(
        company.when(&zj, "2026-03-16T09:00:00+08:00", survey(10, 11)),
        Err(DomainError::InvalidField { field: "satisfied", .. })
    ));
    assert!(matches!(
        company.when(&zj, "2026-03-16T09:00:00+08:00", survey(limits::SURVEY_MAX_RESPONDENTS + 1, 1)),
        Err(DomainError::InvalidField { rule: RuleId::Grd1, field: "respondents", .. })
    ));
    assert!(matches!(
        company.when(&handler(BodyCode::FG), "2026-03-16T09:00:00+08:00", survey(10, 9)),
        Err(DomainError::WrongBody { rule: RuleId::Grd1, .. })
    ));
}

#[test]
fn grd_2_to_grd_4_downgrade_then_fee_standard_refused_then_refund() {
    let mut company = under_review();
    let zj = handler(BodyCode::ZJ);
    company.given(
        &zj,
        "2026-03-16T09:00:00+08:00",
        EnterpriseCommand::RecordRectificationRefused {
            community: "福苑小区".into(),
            detail: "拒不整改电梯维保问题".into(),
        },
    );
    let events = company.given(
        &zj,
        "2026-03-18T09:00:00+08:00",
        EnterpriseCommand::DowngradeGrade { community: "福苑小区".into(), to_grade: 3 },
    );
    let EnterpriseFact::GradeDowngraded { pushed_to, .. } = &events[0].fact else { panic!("{events:?}") };
    assert_eq!(pushed_to, &vec![BodyCode::FG, BodyCode::SJ], "GRD-2: pushed to 发改 and 市场监管");
    let fee = &events[0].opens[0];
    assert_eq!((fee.kind, fee.body, fee.rule), (DeadlineKind::FeeEnforce, BodyCode::FG, RuleId::Grd3));
    // GRD-3: only 发改 enforces the fee standard.
    let refuse = EnterpriseCommand::RefuseFeeStandard {
        community: "福苑小区".into(),
        detail: "企业拒不执行降级后收费标准".into(),
    };
    assert!(matches!(
        company.when(&zj, "2026-03-19T09:00:00+08:00", refuse.clone()),
        Err(DomainError::WrongBody { rule: RuleId::Grd4, .. })
    ));
    let events = company.given(&handler(BodyCode::FG), "2026-03-19T09:00:00+08:00", refuse);
    let refund = &events[0].opens[0];
    assert_eq!((refund.kind, refund.body, refund.rule), (DeadlineKind::Refund, BodyCode::SJ, RuleId::Grd4));
    // GRD-4: 19 March 2026 + 90 days = Wednesday 17 June 2026.
    assert_eq!(refund.due, at("2026-06-18T00:00:00+08:00"));
    let beyond = EnterpriseCommand::OrderRefund {
        community: "福苑小区".into(),
        amount_fen: limits::AMOUNT_MAX_FEN + 1,
        penalty: "罚款五万元".into(),
    };
    assert!(matches!(
        company.when(&handler(BodyCode::SJ), "2026-04-10T09:00:00+08:00", beyond),
        Err(DomainError::InvalidField { rule: RuleId::Grd4, field: "amount_fen", .. })
    ));
    let events = company.given(
        &handler(BodyCode::SJ),
        "2026-04-10T09:00:00+08:00",
        EnterpriseCommand::OrderRefund {
            community: "福苑小区".into(),
            amount_fen: 12_345_600,
            penalty: "罚款五万元".into(),
        },
    );
    assert!(
        matches!(&events[0].fact, EnterpriseFact::RefundOrdered { copied_to, .. } if copied_to == &vec![BodyCode::FG, BodyCode::ZJ])
    );
    assert_eq!(events[0].closes[0].kind, DeadlineKind::Refund);
}

#[test]
fn grd_4_only_market_regulation_orders_the_refund_and_only_after_the_hand_over() {
    let mut company = under_review();
    let zj = handler(BodyCode::ZJ);
    let order =
        EnterpriseCommand::OrderRefund { community: "福苑小区".into(), amount_fen: 100, penalty: "罚款".into() };
    assert_eq!(
        company.when(&handler(BodyCode::SJ), "2026-03-16T09:00:00+08:00", order.clone()),
        Err(DomainError::Unmet {
            rule: RuleId::Grd4,
            command: "order_refund",
            requirement: Requirement::CompanyCondition,
        }),
        "no refund is due before 发改 hands the case over"
    );
    company.given(&zj, "2026-03-16T09:00:00+08:00", survey(100, 10));
    company.given(
        &zj,
        "2026-03-17T09:00:00+08:00",
        EnterpriseCommand::DowngradeGrade { community: "福苑小区".into(), to_grade: 4 },
    );
    company.given(
        &handler(BodyCode::FG),
        "2026-03-18T09:00:00+08:00",
        EnterpriseCommand::RefuseFeeStandard { community: "福苑小区".into(), detail: "拒不执行".into() },
    );
    assert!(matches!(
        company.when(&handler(BodyCode::FG), "2026-03-20T09:00:00+08:00", order.clone()),
        Err(DomainError::WrongBody { rule: RuleId::Grd4, acting: BodyCode::FG, .. })
    ));
    let events = company.given(&handler(BodyCode::SJ), "2026-03-20T09:00:00+08:00", order);
    assert_eq!(events[0].closes[0].kind, DeadlineKind::Refund);
    assert_eq!(events[0].closes[0].how, ClosedHow::Met);
}

#[test]
fn grd_3_the_fee_standard_enforced_copies_zhujian_and_closes_the_period() {
    let mut company = under_review();
    company.given(&handler(BodyCode::ZJ), "2026-03-16T09:00:00+08:00", survey(100, 40));
    company.given(
        &handler(BodyCode::ZJ),
        "2026-03-18T09:00:00+08:00",
        EnterpriseCommand::DowngradeGrade { community: "福苑小区".into(), to_grade: 2 },
    );
    let events = company.given(
        &handler(BodyCode::FG),
        "2026-03-20T09:00:00+08:00",
        EnterpriseCommand::EnforceFeeStandard {
            community: "福苑小区".into(), detail: "督促执行二级收费标准".into()
        },
    );
    assert!(
        matches!(&events[0].fact, EnterpriseFact::FeeStandardEnforced { copied_to, .. } if copied_to == &vec![BodyCode::ZJ])
    );
    assert_eq!(events[0].closes[0].kind, DeadlineKind::FeeEnforce);
    assert!(company.state.company.as_ref().unwrap().obligations.open().all(|d| d.kind != DeadlineKind::FeeEnforce));
    // A downgrade must lower the grade.
    let mut again = under_review();
    again.given(&handler(BodyCode::ZJ), "2026-03-16T09:00:00+08:00", survey(100, 40));
    assert!(matches!(
        again.when(
            &handler(BodyCode::ZJ),
            "2026-03-18T09:00:00+08:00",
            EnterpriseCommand::DowngradeGrade { community: "福苑小区".into(), to_grade: 0 }
        ),
        Err(DomainError::InvalidField { rule: RuleId::Grd2, field: "to_grade", .. })
    ));
}

// ---------------------------------------------------------------- EXT-1

fn twenty_one_substantiated() -> CompanyStream {
    let mut company = CompanyStream::new();
    with_complaints(&mut company, 1, 21, "福苑小区");
    substantiate(&mut company, 1, 21, "2026-03-10T09:00:00+08:00");
    company
}

#[test]
fn ext_1_the_twenty_first_complainant_with_a_refusal_makes_exit_possible() {
    let mut company = twenty_one_substantiated();
    assert!(company.state.company.as_ref().unwrap().exit_condition_since.is_none(), "no refusal yet");
    let events = company.given(
        &handler(BodyCode::ZJ),
        "2026-03-16T09:00:00+08:00",
        EnterpriseCommand::RecordRectificationRefused {
            community: "福苑小区".into(), detail: "拒不整改".into()
        },
    );
    let met = events
        .iter()
        .find_map(|event| match &event.fact {
            EnterpriseFact::ExitConditionMet { evidence } => Some(evidence),
            _ => None,
        })
        .expect("exit condition met");
    assert_eq!(met.count.distinct, 21);
    assert_eq!(met.refusals, vec!["福苑小区".to_owned()]);
    company.given(
        &handler(BodyCode::ZJ),
        "2026-03-20T09:00:00+08:00",
        EnterpriseCommand::StartExitProcedure {
            decision: "启动退出机制".into(),
            street_office_official: "东街街道 李主任".into(),
        },
    );
    assert!(company.state.company.as_ref().unwrap().exit_started_at.is_some());
}

#[test]
fn ext_1_twenty_complainants_with_a_refusal_or_twenty_one_without_are_not_enough() {
    let mut company = CompanyStream::new();
    with_complaints(&mut company, 1, 20, "福苑小区");
    substantiate(&mut company, 1, 20, "2026-03-10T09:00:00+08:00");
    company.given(
        &handler(BodyCode::ZJ),
        "2026-03-16T09:00:00+08:00",
        EnterpriseCommand::RecordRectificationRefused {
            community: "福苑小区".into(), detail: "拒不整改".into()
        },
    );
    assert!(company.state.company.as_ref().unwrap().exit_condition_since.is_none());
    assert_eq!(
        company.when(
            &handler(BodyCode::ZJ),
            "2026-03-20T09:00:00+08:00",
            EnterpriseCommand::StartExitProcedure {
                decision: "启动退出机制".into(),
                street_office_official: "李主任".into(),
            }
        ),
        Err(DomainError::Unmet {
            rule: RuleId::Ext1,
            command: "start_exit_procedure",
            requirement: Requirement::CompanyCondition,
        })
    );

    let mut company = twenty_one_substantiated();
    // A survey of 55 % is low enough for a downgrade (GRD-2) but not for exit (EXT-1).
    company.given(&handler(BodyCode::ZJ), "2026-03-16T09:00:00+08:00", survey(100, 55));
    assert!(company.state.company.as_ref().unwrap().exit_condition_since.is_none());
    // Interpretation 13: below 50 % in the survey makes exit possible.
    let mut company = twenty_one_substantiated();
    let events = company.given(&handler(BodyCode::ZJ), "2026-03-16T10:00:00+08:00", survey(100, 49));
    assert!(has(&events, |f| matches!(
        f,
        EnterpriseFact::ExitConditionMet { evidence } if evidence.low_satisfaction_bp == Some(4900) && evidence.refusals.is_empty()
    )));
}

// ---------------------------------------------------------------- ACC-2 on company periods

#[test]
fn acc_2_a_missed_survey_is_escalated_against_zhujian() {
    let mut company = under_review();
    let survey_seq = company
        .state
        .company
        .as_ref()
        .unwrap()
        .obligations
        .open_of_kind(DeadlineKind::Survey, Some("福苑小区"))
        .expect("survey due")
        .seq;
    let events = company.given(
        &system(),
        "2026-03-21T08:00:00+08:00",
        EnterpriseCommand::Escalate { seq: survey_seq, level: EscalationLevel::Reminder },
    );
    assert_eq!(events[0].event_type(), "enterprise.deadline_missed");
    assert_eq!(events[1].event_type(), "enterprise.escalated");
}

// ---------------------------------------------------------------- permissions

#[test]
fn acc_1_auditors_issue_no_company_command_and_condition_facts_come_only_from_tousu() {
    let commands = [
        EnterpriseCommand::EvaluateConditions,
        survey(10, 5),
        EnterpriseCommand::StartExitProcedure { decision: String::new(), street_office_official: String::new() },
    ];
    for command in &commands {
        assert!(!command.permitted(Role::Auditor), "{}", command.name());
    }
    assert!(!EnterpriseCommand::EvaluateConditions.permitted(Role::Handler));
    assert!(EnterpriseCommand::EvaluateConditions.permitted(Role::System));
}

// ---------------------------------------------------------------- REG-3, PUB-1

/// Interpretation 23: a month's bulletin is a draft until a named 住建 official approves it,
/// once the month is over; the approved bulletin is frozen with its history anchor, and a
/// second approval of the month is refused.
#[test]
fn pub_1_interp_23_a_named_official_approves_a_months_bulletin_once_and_it_is_frozen() {
    let mut bulletins = Stream::<BulletinState>::new();
    let official = actor(BodyCode::ZJ, Role::Official);
    let march = NaiveDate::from_ymd_opt(2026, 3, 1).expect("a date");
    let anchor = DraftAnchor { position: 42, events: 43, sha256: "ab".repeat(32) };
    let approve = |bulletin: serde_json::Value| BulletinCommand::Approve {
        month: march,
        bulletin,
        anchor: Some(anchor.clone()),
        note: "局务会审定".to_owned(),
    };
    let draft = serde_json::json!([{"company": "91350100M000100Y43", "verdict": {"verdict": "criticise"}}]);
    assert!(!approve(draft.clone()).permitted(Role::Registrar), "a registrar does not approve");
    assert!(approve(draft.clone()).permitted(Role::Official));

    let early = bulletins.when(&official, "2026-03-31T23:59:59+08:00", approve(draft.clone()));
    assert!(
        matches!(early, Err(DomainError::WrongState { rule: RuleId::Pub1, state: "not over yet", .. })),
        "{early:?}"
    );
    let other_body =
        bulletins.when(&actor(BodyCode::SJ, Role::Official), "2026-04-01T09:00:00+08:00", approve(draft.clone()));
    assert!(matches!(other_body, Err(DomainError::WrongBody { rule: RuleId::Pub1, .. })), "{other_body:?}");
    let mid_month = BulletinCommand::Approve {
        month: march.with_day(15).expect("a date"),
        bulletin: draft.clone(),
        anchor: None,
        note: String::new(),
    };
    let refused = bulletins.when(&official, "2026-04-01T09:00:00+08:00", mid_month);
    assert!(matches!(refused, Err(DomainError::InvalidField { field: "month", .. })), "{refused:?}");

    let events = bulletins.given(&official, "2026-04-01T09:00:00+08:00", approve(draft.clone()));
    let [BulletinEvent { fact: BulletinFact::Approved { approved_by, anchor: recorded, .. }, .. }] = &events[..] else {
        panic!("one approval: {events:?}")
    };
    assert_eq!(approved_by, &official.person, "the event names the official");
    assert_eq!(recorded.as_ref(), Some(&anchor));
    assert_eq!(events[0].event_type(), "bulletin.approved");

    let changed = serde_json::json!([{"company": "91350100M000100Y43", "verdict": {"verdict": "neither"}}]);
    let again = bulletins.when(&official, "2026-04-02T09:00:00+08:00", approve(changed));
    assert!(
        matches!(again, Err(DomainError::WrongState { rule: RuleId::Pub1, state: "approved already", .. })),
        "{again:?}"
    );
    let approved = &bulletins.state.months[&march];
    assert_eq!((&approved.bulletin, approved.approved_at), (&draft, at("2026-04-01T09:00:00+08:00")));
}

#[test]
fn reg_3_interp_10_the_week_turns_at_monday_midnight_shanghai() {
    assert_eq!(reporting_week(at("2026-10-18T23:59:59+08:00")), "2026-10-12".parse().unwrap());
    assert_eq!(reporting_week(at("2026-10-19T00:00:00+08:00")), "2026-10-19".parse().unwrap());
    // 16:00 UTC on Sunday is already Monday in Shanghai.
    assert_eq!(reporting_week(at("2026-10-18T16:00:00+00:00")), "2026-10-19".parse().unwrap());
}

#[test]
fn pub_1_praise_and_criticism_follow_the_written_criteria() {
    let criteria = Policy::default().bulletin;
    let good = CompanyMonth { closed: 5, closed_on_time: 5, complainants: 2, ..CompanyMonth::default() };
    assert_eq!(
        bulletin_verdict(&good, &criteria),
        BulletinVerdict::Praise(vec![BulletinReason::HandledPromptly, BulletinReason::FewComplaints])
    );
    let late = CompanyMonth { closed_on_time: 4, ..good.clone() };
    assert_eq!(bulletin_verdict(&late, &criteria), BulletinVerdict::Neither, "80 % on time is not prompt");
    let refused = CompanyMonth { refusals: 1, longest_overdue_days: 45, ..good };
    assert_eq!(
        bulletin_verdict(&refused, &criteria),
        BulletinVerdict::Criticise(vec![BulletinReason::RefusedRectification, BulletinReason::DraggedOn])
    );
    // Interpretation 23: refusing the lower fee standard is the company's own missed obligation.
    let fee =
        CompanyMonth { fee_refusals: 1, ..CompanyMonth { closed: 5, closed_on_time: 5, ..CompanyMonth::default() } };
    assert_eq!(bulletin_verdict(&fee, &criteria), BulletinVerdict::Criticise(vec![BulletinReason::RefusedFeeStandard]));
    // A month approved before the count existed reads without it.
    let stored = serde_json::json!({"closed": 1, "closed_on_time": 1, "complainants": 1, "refusals": 0,
        "dissatisfied": 0, "longest_overdue_days": 0});
    let read: CompanyMonth = serde_json::from_value(stored).expect("an approved month reads");
    assert_eq!(read.fee_refusals, 0);
}

// ---------------------------------------------------------------- counting, as tousu's reactions issue it

#[test]
fn reg_4_counting_again_what_is_already_counted_records_nothing() {
    let mut company = CompanyStream::new();
    with_complaints(&mut company, 1, 11, "福苑小区");
    let again = company_command_complaint("C-3", Some("complainant-3"), "2026-03-02T10:03:00+08:00", "福苑小区");
    assert_eq!(company.when(&system(), "2026-03-02T12:00:00+08:00", again), Ok(Vec::new()));
    substantiate(&mut company, 1, 1, "2026-03-03T09:00:00+08:00");
    let same_finding = company_command_finding("C-1", Finding::Substantiated, "2026-03-03T09:00:00+08:00");
    assert_eq!(company.when(&system(), "2026-03-04T12:00:00+08:00", same_finding), Ok(Vec::new()));
}

#[test]
fn reg_4_a_batch_of_leads_is_counted_with_one_condition_record() {
    let mut batch = Vec::new();
    for i in 1..=12u32 {
        let EnterpriseCommand::CountLeads { mut complaints, .. } = company_command_complaint(
            &format!("C-{i}"),
            Some(&format!("complainant-{i}")),
            "2026-03-02T10:00:00+08:00",
            "福苑小区",
        ) else {
            unreachable!()
        };
        batch.append(&mut complaints);
    }
    let command = EnterpriseCommand::CountLeads {
        uscc: COMPANY.parse().unwrap(),
        company_name: "榕城物业服务有限公司".into(),
        complaints: batch,
        findings: Vec::new(),
    };
    let events = CompanyStream::new().when(&system(), "2026-03-02T12:00:00+08:00", command).unwrap();
    assert_eq!(events.len(), 13);
    let EnterpriseFact::KeySupervisionStarted { evidence } = &events[12].fact else { panic!("{:?}", events[12]) };
    assert_eq!(evidence.distinct, 12);
}

#[test]
fn interp_15_an_anonymous_complaint_split_into_linked_leads_counts_once() {
    let mut company = CompanyStream::new();
    company.given(
        &system(),
        "2026-03-02T12:00:00+08:00",
        company_command_complaint("A-1", None, "2026-03-02T10:00:00+08:00", "福苑小区"),
    );
    let EnterpriseCommand::CountLeads { uscc, company_name, mut complaints, findings } =
        company_command_complaint("A-1-2", None, "2026-03-02T10:00:00+08:00", "福苑小区")
    else {
        unreachable!()
    };
    complaints[0].linked_to = Some("A-1".parse().unwrap());
    company.given(
        &system(),
        "2026-03-02T12:00:00+08:00",
        EnterpriseCommand::CountLeads { uscc, company_name, complaints, findings },
    );
    let evidence = company.state.company.as_ref().unwrap().complainants_in_window(at("2026-03-02T12:00:00+08:00"), 12);
    assert_eq!(evidence.distinct, 1);
    assert_eq!(evidence.anonymous_leads.len(), 2, "both leads are listed apart");
}

#[test]
fn grd_1_a_finding_on_a_lead_never_counted_is_refused() {
    let mut company = CompanyStream::new();
    with_complaints(&mut company, 1, 1, "福苑小区");
    let result = company.when(
        &system(),
        "2026-03-03T09:00:00+08:00",
        company_command_finding("C-404", Finding::Substantiated, "2026-03-03T09:00:00+08:00"),
    );
    assert!(matches!(result, Err(DomainError::InvalidField { field: "findings.lead", .. })), "{result:?}");
}

#[test]
fn interp_16_a_count_arriving_late_is_recorded_no_earlier_than_the_company_s_latest_fact() {
    // Exit becomes possible with a 49 % survey at 17:00 (EXT-1); a lead count decided with an
    // instant of 16:50 (the reactions run a moment behind the leads) must not judge the
    // company as if the survey were not there yet.
    let mut company = twenty_one_substantiated();
    company.given(&handler(BodyCode::ZJ), "2026-03-16T17:00:00+08:00", survey(100, 49));
    assert!(company.state.company.as_ref().unwrap().exit_condition_since.is_some());
    let events = company
        .when(
            &system(),
            "2026-03-16T16:50:00+08:00",
            company_command_complaint("C-900", Some("complainant-900"), "2026-03-16T16:40:00+08:00", "福苑小区"),
        )
        .unwrap();
    assert!(!has(&events, |f| matches!(f, EnterpriseFact::ExitConditionEnded)), "{events:?}");
    assert!(events.iter().all(|event| event.at == at("2026-03-16T17:00:00+08:00")), "{events:?}");
}

// ---------------------------------------------------------------- Interpretation 21

#[test]
fn grd_1_interp_21_a_provisional_survey_deadline_is_recomputed_once_the_notice_is_loaded() {
    let mut company = CompanyStream::new();
    with_complaints(&mut company, 1, 1, "福苑小区");
    // A low rating on Wednesday 27 January 2027 requires the survey within 10 days: Saturday
    // 6 February, rolled provisionally past 春节 (5–8) and its make-up days (9–10) to Thursday
    // 11; with the made-up notice (rest 5–14 February) to Monday 15.
    let events = company.given(
        &registrar(),
        "2027-01-27T09:00:00+08:00",
        EnterpriseCommand::RecordCreditRating { rating: "D".into() },
    );
    let survey = events
        .iter()
        .flat_map(|event| &event.opens)
        .find(|deadline| deadline.kind == DeadlineKind::Survey)
        .expect("the survey is due")
        .clone();
    assert_eq!(survey.due, at("2027-02-12T00:00:00+08:00"));
    assert!(survey.provisional);
    company.world.load_made_up_2027();
    let events =
        company.given(&system(), "2027-02-01T09:00:00+08:00", EnterpriseCommand::RecomputeDeadline { seq: survey.seq });
    assert_eq!(events[0].event_type(), "enterprise.deadline_recomputed");
    let recomputed = company.state.company.as_ref().unwrap().obligations.get(survey.seq).expect("open");
    assert_eq!((recomputed.due, recomputed.provisional), (at("2027-02-16T00:00:00+08:00"), false));
}
