//! `tousu deadline` against the real binary: the examples of the rule catalogue and the
//! refusals a user will meet.

use tousu_e2e::{run_tousu, stderr_of, stdout_of};

#[test]
fn trf_2_the_documented_example_is_due_at_24_00_on_the_seventh_working_day() {
    let output = run_tousu(&["deadline", "transfer", "2026-09-30T10:00:00+08:00"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output), "2026-10-16T00:00:00+08:00");
}

#[test]
fn deadlines_of_every_kind_print_in_shanghai_time() {
    let cases = [
        ("urgent-notify", "2026-09-30T02:30:00Z", "2026-09-30T12:30:00+08:00"),
        ("general-close", "2026-10-11T09:00:00+08:00", "2026-10-20T00:00:00+08:00"),
        ("major-resolve", "2026-01-31T09:00:00+08:00", "2026-03-01T00:00:00+08:00"),
        ("penalty-verify", "2026-05-08T09:00:00+08:00", "2026-05-29T00:00:00+08:00"),
        ("penalty-complete", "2026-05-12T09:00:00+08:00", "2026-08-11T00:00:00+08:00"),
        ("refund", "2026-03-19T09:00:00+08:00", "2026-06-18T00:00:00+08:00"),
    ];
    for (kind, start, due) in cases {
        let output = run_tousu(&["deadline", kind, start]);
        assert!(output.status.success(), "{kind}: {}", stderr_of(&output));
        assert_eq!(stdout_of(&output), due, "{kind} from {start}");
    }
}

#[test]
fn pen_1_the_extension_makes_the_penalty_period_one_hundred_twenty_days() {
    let output = run_tousu(&["deadline", "penalty-complete", "2026-05-12T09:00:00+08:00", "--extension", "30"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output), "2026-09-10T00:00:00+08:00");
    let output = run_tousu(&["deadline", "penalty-complete", "2026-05-12T09:00:00+08:00", "--extension", "31"]);
    assert!(!output.status.success());
    assert!(stderr_of(&output).contains("PEN-1"), "{}", stderr_of(&output));
}

#[test]
fn the_list_names_every_kind_with_its_rule() {
    let output = run_tousu(&["deadline", "--list"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let text = stdout_of(&output);
    for (kind, rule) in
        [("urgent-notify", "TRF-1"), ("transfer", "TRF-2"), ("progress-report", "HDL-2"), ("refund", "GRD-4")]
    {
        assert!(text.lines().any(|line| line.starts_with(kind) && line.contains(rule)), "{kind} {rule} in\n{text}");
    }
    assert_eq!(text.lines().count(), 13, "a header and twelve kinds");
}

#[test]
fn a_start_in_a_year_without_calendar_data_exits_non_zero_naming_the_year() {
    let output = run_tousu(&["deadline", "transfer", "2027-01-04T10:00:00+08:00"]);
    assert!(!output.status.success());
    assert!(stdout_of(&output).is_empty());
    assert!(stderr_of(&output).contains("2027"), "{}", stderr_of(&output));
    // A period that runs into 2027 is refused the same way.
    let output = run_tousu(&["deadline", "transfer", "2026-12-28T10:00:00+08:00"]);
    assert!(!output.status.success());
    assert!(stderr_of(&output).contains("year 2027"), "{}", stderr_of(&output));
}

#[test]
fn a_deployment_can_add_a_year_file_and_a_local_override() {
    let dir = std::env::temp_dir().join(format!("tousu-calendar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A made-up year with a single holiday block per festival, to show the mechanism only.
    let year = dir.join("2027.toml");
    std::fs::write(
        &year,
        r#"year = 2027
source = "test data, not a State Council notice"
[[holiday]]
name = "元旦"
from = "2027-01-01"
to = "2027-01-03"
[[holiday]]
name = "春节"
from = "2027-02-05"
to = "2027-02-13"
[[holiday]]
name = "清明节"
from = "2027-04-03"
to = "2027-04-05"
[[holiday]]
name = "劳动节"
from = "2027-05-01"
to = "2027-05-05"
[[holiday]]
name = "端午节"
from = "2027-06-09"
to = "2027-06-11"
[[holiday]]
name = "中秋节"
from = "2027-09-15"
to = "2027-09-17"
[[holiday]]
name = "国庆节"
from = "2027-10-01"
to = "2027-10-07"
"#,
    )
    .unwrap();
    let year = year.to_string_lossy().into_owned();
    let output = run_tousu(&["deadline", "transfer", "2026-12-28T10:00:00+08:00", "--calendar-year", &year]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    // Working days after Monday 28 December 2026: 29, 30, 31, then 4, 5, 6, 7 January 2027.
    assert_eq!(stdout_of(&output), "2027-01-08T00:00:00+08:00");

    let local = dir.join("local.toml");
    std::fs::write(
        &local,
        "year = 2026\nsource = \"province notice (test)\"\n[[holiday]]\nname = \"地方节日\"\nfrom = \"2026-10-12\"\nto = \"2026-10-12\"\n",
    )
    .unwrap();
    let local = local.to_string_lossy().into_owned();
    let output = run_tousu(&["deadline", "transfer", "2026-09-30T10:00:00+08:00", "--calendar-override", &local]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output), "2026-10-17T00:00:00+08:00", "one working day later than without the override");

    let output =
        run_tousu(&["deadline", "transfer", "2026-09-30T10:00:00+08:00", "--calendar-override", "/nonexistent.toml"]);
    assert!(!output.status.success());
    assert!(stderr_of(&output).contains("/nonexistent.toml"), "{}", stderr_of(&output));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unknown_kinds_and_malformed_instants_are_refused_clearly() {
    let output = run_tousu(&["deadline", "transfers", "2026-09-30T10:00:00+08:00"]);
    assert!(!output.status.success());
    assert!(stderr_of(&output).contains("unknown deadline kind \"transfers\""), "{}", stderr_of(&output));
    let output = run_tousu(&["deadline", "transfer", "2026-09-30 10:00"]);
    assert!(!output.status.success());
    assert!(stderr_of(&output).contains("RFC 3339"), "{}", stderr_of(&output));
}
