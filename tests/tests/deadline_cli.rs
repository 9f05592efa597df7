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
fn trf_2_interp_21_a_period_reaching_a_year_without_its_notice_prints_a_provisional_due() {
    // Wednesday 23 December 2026 + 7 working days: 24, 25, 28–31 December, then (元旦 being a
    // statutory day of the provisional 2027) Monday 4 January.
    let output = run_tousu(&["deadline", "transfer", "2026-12-23T10:00:00+08:00"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let text = stdout_of(&output);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("2027-01-05T00:00:00+08:00 provisional (暂定)"), "{text}");
    let explanation = lines.next().unwrap_or_default();
    assert!(explanation.contains("2027") && explanation.contains("+2027.provisional"), "{text}");
}

#[test]
fn interp_21_a_start_outside_every_year_with_data_exits_non_zero_naming_the_year() {
    // 2101 is past the provisional calendar's table; nothing is guessed there.
    let output = run_tousu(&["deadline", "transfer", "2101-01-04T10:00:00+08:00"]);
    assert!(!output.status.success());
    assert!(stdout_of(&output).is_empty());
    assert!(stderr_of(&output).contains("year 2101"), "{}", stderr_of(&output));
}

#[test]
fn a_deployment_can_add_a_year_file_and_a_local_override() {
    let dir = std::env::temp_dir().join(format!("tousu-calendar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The made-up 2027 of the tests' fixture: official data replaces the provisional year.
    let year = tousu_e2e::server::test_calendar_2027();
    let year = year.to_string_lossy().into_owned();
    let output = run_tousu(&["deadline", "transfer", "2026-12-28T10:00:00+08:00", "--calendar-year", &year]);
    // Official data now: no longer marked provisional.
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
