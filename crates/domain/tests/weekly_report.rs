//! REG-3 and interpretation 26: the weekly summary for the discipline commission is issued
//! once, when due, and never changes; later changes to an issued week are reported once, as
//! corrections in the next issued summary.

mod common;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use common::*;
use serde_json::json;
use tousu_domain::DomainError;
use tousu_domain::rule::RuleId;
use tousu_domain::weekly_report::{
    Correction, WeeklyCommand, WeeklyFact, WeeklyState, figures, issue_instant, week_due,
};

fn monday(text: &str) -> NaiveDate {
    text.parse().expect("a date")
}

fn issue(week: &str, summary: serde_json::Value, earlier: &[(&str, serde_json::Value)]) -> WeeklyCommand {
    WeeklyCommand::Issue {
        week_start: monday(week),
        summary,
        matters: Vec::new(),
        earlier: earlier.iter().map(|(week, summary)| (monday(week), summary.clone())).collect::<BTreeMap<_, _>>(),
    }
}

/// A summary as the read model serialises it, with one lead received, unclassified.
fn received_unclassified() -> serde_json::Value {
    json!({
        "week_start": "2026-03-02",
        "figures": { "received": 1, "open_overdue": 0 },
        "previous": { "received": 7 },
        "change": { "received": -6 },
        "received_by_category": [ { "key": "unclassified", "n": 1 } ],
        "blockages": [ { "body": "SJ", "overdue": 2, "overdue_provisional": 0, "returns": 1 } ],
        "anchor": { "position": 3, "events": 3, "sha256": "ab", "settled": true }
    })
}

/// The same week once its lead was classified the week after.
fn received_classified() -> serde_json::Value {
    let mut summary = received_unclassified();
    summary["received_by_category"] = json!([ { "key": "SJ-3-1", "n": 1 } ]);
    summary
}

#[test]
fn reg_3_interp_26_a_week_is_issued_once_and_only_when_due() {
    let mut stream = WeeklyStream::new();
    let system = reactor();
    // The week of Monday 2 March 2026 ends at Sunday 24:00; it is issued at Monday 09:00.
    assert_eq!(issue_instant(monday("2026-03-02"), 9), at("2026-03-09T09:00:00+08:00"));
    let early = stream.when(&system, "2026-03-09T08:59:59+08:00", issue("2026-03-02", received_unclassified(), &[]));
    assert!(matches!(early, Err(DomainError::WrongState { rule: RuleId::Reg3, .. })), "{early:?}");
    let tuesday = stream.when(&system, "2026-03-09T09:00:00+08:00", issue("2026-03-03", received_unclassified(), &[]));
    assert!(matches!(tuesday, Err(DomainError::InvalidField { field: "week_start", .. })), "{tuesday:?}");
    let events = stream.given(&system, "2026-03-09T09:00:00+08:00", issue("2026-03-02", received_unclassified(), &[]));
    assert_eq!(events[0].event_type(), "weekly_summary.issued");
    let again = stream.when(&system, "2026-03-10T09:00:00+08:00", issue("2026-03-02", received_classified(), &[]));
    assert!(matches!(again, Err(DomainError::WrongState { rule: RuleId::Reg3, .. })), "an issued week never changes");
    let week = &stream.state.weeks[&monday("2026-03-02")];
    assert_eq!(week.summary, received_unclassified());
    assert_eq!(week.issued_at, at("2026-03-09T09:00:00+08:00"));
    assert!(
        WeeklyCommand::Issue {
            week_start: monday("2026-03-02"),
            summary: json!({}),
            matters: Vec::new(),
            earlier: BTreeMap::new()
        }
        .permitted(tousu_domain::actor::Role::System)
    );
}

#[test]
fn reg_3_interp_26_later_changes_to_an_issued_week_are_reported_once_as_corrections() {
    let mut stream = WeeklyStream::new();
    let system = reactor();
    stream.given(&system, "2026-03-09T09:00:00+08:00", issue("2026-03-02", received_unclassified(), &[]));
    // The lead was classified during the next week: the first week now shows it under its
    // category. The next summary reports the change.
    let events = stream.given(
        &system,
        "2026-03-16T09:00:00+08:00",
        issue("2026-03-09", json!({ "figures": { "received": 0 } }), &[("2026-03-02", received_classified())]),
    );
    let WeeklyFact::SummaryIssued { corrections, .. } = &events[0].fact else { panic!("an issue") };
    let expected = vec![
        Correction {
            week_start: monday("2026-03-02"),
            figure: "received_by_category.SJ-3-1".into(),
            reported: 0,
            now: 1,
        },
        Correction {
            week_start: monday("2026-03-02"),
            figure: "received_by_category.unclassified".into(),
            reported: 1,
            now: 0,
        },
    ];
    assert_eq!(corrections, &expected);
    let first = &stream.state.weeks[&monday("2026-03-02")];
    assert_eq!(first.summary, received_unclassified(), "the issued summary itself stays as issued");
    assert_eq!(first.corrected_later.len(), 2);
    assert!(first.corrected_later.iter().all(|(with, _)| *with == monday("2026-03-09")));
    // Reported once: the week after, nothing more has changed.
    let events = stream.given(
        &system,
        "2026-03-23T09:00:00+08:00",
        issue(
            "2026-03-16",
            json!({}),
            &[("2026-03-02", received_classified()), ("2026-03-09", json!({ "figures": { "received": 0 } }))],
        ),
    );
    let WeeklyFact::SummaryIssued { corrections, .. } = &events[0].fact else { panic!("an issue") };
    assert!(corrections.is_empty(), "{corrections:?}");
    assert_eq!(
        stream.state.correction_weeks(monday("2026-03-23")),
        vec![monday("2026-03-16"), monday("2026-03-09"), monday("2026-03-02")]
    );
}

#[test]
fn reg_3_interp_26_the_compared_figures_are_the_weeks_own() {
    let flat = figures(&received_unclassified());
    let names: Vec<&str> = flat.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "blockages.SJ.overdue",
            "blockages.SJ.overdue_provisional",
            "blockages.SJ.returns",
            "figures.open_overdue",
            "figures.received",
            "received_by_category.unclassified",
        ]
    );
}

#[test]
fn reg_3_interp_26_the_week_due_turns_at_monday_nine() {
    assert_eq!(week_due(at("2026-03-09T08:59:59+08:00"), 9), monday("2026-02-23"));
    assert_eq!(week_due(at("2026-03-09T09:00:00+08:00"), 9), monday("2026-03-02"));
    assert_eq!(week_due(at("2026-03-15T23:00:00+08:00"), 9), monday("2026-03-02"));
    assert_eq!(week_due(at("2026-03-09T00:30:00+08:00"), 0), monday("2026-03-02"));
}

type WeeklyStream = Stream<WeeklyState>;
