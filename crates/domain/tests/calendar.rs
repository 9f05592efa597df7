//! The legal-time calendar against the State Council notices for 2024–2026 and the Civil Code
//! period rules (interpretations 4, 5, 6, 9 and 11).
//!
//! Expected dates were worked out by hand from printed month calendars, not by the code under
//! test; each table row says which days it skips.

use std::num::NonZeroU32;
use std::sync::LazyLock;

use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveDate, TimeDelta, Weekday};
use proptest::prelude::*;
use tousu_domain::calendar::{
    Calendar, CalendarEntry, CalendarError, CalendarFile, EntryKind, EntryProblem, Period, YearKind, shanghai,
};

const YEAR_2024: &str = include_str!("../data/calendar/2024.toml");
const YEAR_2025: &str = include_str!("../data/calendar/2025.toml");
const YEAR_2026: &str = include_str!("../data/calendar/2026.toml");

static BUILTIN: LazyLock<Calendar> = LazyLock::new(|| Calendar::builtin().expect("the shipped calendar is valid"));

fn calendar() -> &'static Calendar {
    &BUILTIN
}

fn instant(text: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(text).unwrap_or_else(|error| panic!("{text}: {error}"))
}

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap_or_else(|error| panic!("{text}: {error}"))
}

/// 24:00 Shanghai of `last_day`, as the calendar writes it.
fn end_of(last_day: &str) -> DateTime<FixedOffset> {
    let next = date(last_day).succ_opt().expect("a date after");
    instant(&format!("{next}T00:00:00+08:00"))
}

fn nth(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("n ≥ 1")
}

/// The 2026 year file with one piece of text replaced, for validation tests; fails if the
/// text to replace is not there, so a reformatted data file cannot make a test vacuous.
fn year_2026_with(from: &str, to: &str) -> String {
    assert!(YEAR_2026.contains(from), "2026.toml has no {from:?}");
    YEAR_2026.replacen(from, to, 1)
}

fn load_2026(text: &str) -> Result<Calendar, CalendarError> {
    Calendar::from_year_files(&[text])
}

fn holiday_entry(position: usize, name: &str) -> CalendarEntry {
    CalendarEntry { kind: EntryKind::Holiday, position, name: name.to_owned() }
}

fn working_day_entry(position: usize, name: &str) -> CalendarEntry {
    CalendarEntry { kind: EntryKind::WorkingDay, position, name: name.to_owned() }
}

fn invalid_2026(entry: CalendarEntry, problem: EntryProblem) -> CalendarError {
    CalendarError::InvalidEntry {
        file: CalendarFile::Year { position: 1 },
        year: 2026,
        entry,
        problem: Box::new(problem),
    }
}

/// A province's extra two days off after National Day 2026 (illustrative, not a real notice).
const OVERRIDE_EXTRA_HOLIDAY_2026: &str = r#"
year = 2026
source = "某省人民政府办公厅关于2026年地方节日放假的通知（示例）"

[[holiday]]
name = "地方节日（示例）"
from = "2026-10-08"
to = "2026-10-09"
"#;

/// A province's extra adjusted working Sunday (illustrative, not a real notice).
const OVERRIDE_EXTRA_WORKING_DAY_2026: &str = r#"
year = 2026
source = "某省人民政府办公厅关于2026年调休的通知（示例）"

[[working_day]]
date = "2026-10-11"
name = "地方调休（示例）"
"#;

fn with_override(text: &str) -> Result<Calendar, CalendarError> {
    Calendar::builtin()?.with_override(text)
}

// ---------------------------------------------------------------------------------------------
// Loading and the shipped data

#[test]
fn interp_6_builtin_calendar_covers_2024_to_2026_with_its_notices() {
    let calendar = calendar();
    assert_eq!(calendar.years().collect::<Vec<_>>(), [2024, 2025, 2026]);
    for year in [2024, 2025, 2026] {
        assert_eq!(calendar.sources(year), Some([format!("国务院办公厅关于{year}年部分节假日安排的通知")].as_slice()));
    }
    assert_eq!(calendar.sources(2027), None);
}

#[test]
fn interp_6_year_files_load_in_any_order() {
    let shuffled = Calendar::from_year_files(&[YEAR_2026, YEAR_2024, YEAR_2025]).expect("valid files");
    assert_eq!(shuffled.years().collect::<Vec<_>>(), [2024, 2025, 2026]);
    let first = NaiveDate::from_ymd_opt(2024, 1, 1).expect("a date");
    for day in first.iter_days().take_while(|day| day.year() <= 2026) {
        assert_eq!(shuffled.is_working_day(day), calendar().is_working_day(day), "{day}");
    }
}

#[test]
fn interp_4_shanghai_is_a_fixed_plus_eight_offset() {
    assert_eq!(shanghai().local_minus_utc(), 8 * 60 * 60);
    assert_eq!(shanghai().to_string(), "+08:00");
}

/// Every day of every block of the notices is a rest day, and every listed adjusted weekend
/// day a working day; the days just outside the blocks are as the week makes them.
#[test]
fn interp_6_every_notified_holiday_is_a_rest_day_and_every_adjusted_day_a_working_day() {
    let holiday_blocks = [
        // 2024
        ("2024-01-01", "2024-01-01"),
        ("2024-02-10", "2024-02-17"),
        ("2024-04-04", "2024-04-06"),
        ("2024-05-01", "2024-05-05"),
        ("2024-06-10", "2024-06-10"),
        ("2024-09-15", "2024-09-17"),
        ("2024-10-01", "2024-10-07"),
        // 2025
        ("2025-01-01", "2025-01-01"),
        ("2025-01-28", "2025-02-04"),
        ("2025-04-04", "2025-04-06"),
        ("2025-05-01", "2025-05-05"),
        ("2025-05-31", "2025-06-02"),
        ("2025-10-01", "2025-10-08"),
        // 2026
        ("2026-01-01", "2026-01-03"),
        ("2026-02-15", "2026-02-23"),
        ("2026-04-04", "2026-04-06"),
        ("2026-05-01", "2026-05-05"),
        ("2026-06-19", "2026-06-21"),
        ("2026-09-25", "2026-09-27"),
        ("2026-10-01", "2026-10-07"),
    ];
    for (from, to) in holiday_blocks {
        for day in date(from).iter_days().take_while(|day| *day <= date(to)) {
            assert_eq!(calendar().is_working_day(day), Ok(false), "{day} in {from}..{to}");
        }
    }
    let adjusted_working_days = [
        ("2024-02-04", Weekday::Sun),
        ("2024-02-18", Weekday::Sun),
        ("2024-04-07", Weekday::Sun),
        ("2024-04-28", Weekday::Sun),
        ("2024-05-11", Weekday::Sat),
        ("2024-09-14", Weekday::Sat),
        ("2024-09-29", Weekday::Sun),
        ("2024-10-12", Weekday::Sat),
        ("2025-01-26", Weekday::Sun),
        ("2025-02-08", Weekday::Sat),
        ("2025-04-27", Weekday::Sun),
        ("2025-09-28", Weekday::Sun),
        ("2025-10-11", Weekday::Sat),
        ("2026-01-04", Weekday::Sun),
        ("2026-02-14", Weekday::Sat),
        ("2026-02-28", Weekday::Sat),
        ("2026-05-09", Weekday::Sat),
        ("2026-09-20", Weekday::Sun),
        ("2026-10-10", Weekday::Sat),
    ];
    for (day, weekday) in adjusted_working_days {
        assert_eq!(date(day).weekday(), weekday, "{day}");
        assert_eq!(calendar().is_working_day(date(day)), Ok(true), "{day}");
    }
    // Ordinary days around the blocks.
    for (day, working) in [
        ("2024-02-09", true),  // 除夕 2024: not a statutory holiday that year
        ("2025-01-27", true),  // Monday before 除夕 2025
        ("2025-10-09", true),  // Thursday after National Day 2025
        ("2025-10-12", false), // Sunday after the adjusted Saturday
        ("2026-01-10", false), // an ordinary Saturday
        ("2026-02-24", true),  // Tuesday after Spring Festival 2026
    ] {
        assert_eq!(calendar().is_working_day(date(day)), Ok(working), "{day}");
    }
}

/// The totals follow from the notices: weekdays, less holidays on weekdays, plus adjusted
/// weekend days (2024: 262 − 19 + 8; 2025: 261 − 18 + 5; 2026: 261 − 19 + 6).
#[test]
fn interp_6_working_days_per_year_match_the_notices() {
    for (year, expected) in [(2024, 251), (2025, 248), (2026, 248)] {
        let first = NaiveDate::from_ymd_opt(year, 1, 1).expect("a date");
        let working = first
            .iter_days()
            .take_while(|day| day.year() == year)
            .filter(|day| calendar().is_working_day(*day) == Ok(true))
            .count();
        assert_eq!(working, expected, "{year}");
    }
}

// ---------------------------------------------------------------------------------------------
// Working-day periods (interpretation 6)

#[test]
fn trf_2_seven_working_days_skip_national_day_2026() {
    // Oct 1–7 off; Oct 8 Thu, 9 Fri, 10 Sat (adjusted), 12, 13, 14, 15.
    let due = calendar().due(instant("2026-09-30T10:00:00+08:00"), Period::WorkingDays(7));
    assert_eq!(due, Ok(instant("2026-10-16T00:00:00+08:00")));
    assert_eq!(due.map(|due| due.to_rfc3339()), Ok("2026-10-16T00:00:00+08:00".to_owned()));
}

/// A lead registered at 10:00 on the last day before each 2025 and 2026 holiday block.
#[test]
fn trf_2_seven_working_days_from_the_eve_of_every_2025_and_2026_holiday_block() {
    let table = [
        // 元旦 2025 (Jan 1): Jan 2, 3, 6, 7, 8, 9, 10.
        ("2024-12-31", "2025-01-10"),
        // 春节 2025 (Jan 28–Feb 4): Feb 5, 6, 7, 8 (adjusted Sat), 10, 11, 12.
        ("2025-01-27", "2025-02-12"),
        // 清明 2025 (Apr 4–6): Apr 7, 8, 9, 10, 11, 14, 15.
        ("2025-04-03", "2025-04-15"),
        // 劳动节 2025 (May 1–5): May 6, 7, 8, 9, 12, 13, 14.
        ("2025-04-30", "2025-05-14"),
        // 端午 2025 (May 31–Jun 2): Jun 3, 4, 5, 6, 9, 10, 11.
        ("2025-05-30", "2025-06-11"),
        // 国庆、中秋 2025 (Oct 1–8): Oct 9, 10, 11 (adjusted Sat), 13, 14, 15, 16.
        ("2025-09-30", "2025-10-16"),
        // 元旦 2026 (Jan 1–3): Jan 4 (adjusted Sun), 5, 6, 7, 8, 9, 12.
        ("2025-12-31", "2026-01-12"),
        // 春节 2026 (Feb 15–23), from the adjusted Saturday Feb 14: Feb 24, 25, 26, 27,
        // 28 (adjusted Sat), Mar 2, 3.
        ("2026-02-14", "2026-03-03"),
        // 清明 2026 (Apr 4–6): Apr 7, 8, 9, 10, 13, 14, 15.
        ("2026-04-03", "2026-04-15"),
        // 劳动节 2026 (May 1–5): May 6, 7, 8, 9 (adjusted Sat), 11, 12, 13.
        ("2026-04-30", "2026-05-13"),
        // 端午 2026 (Jun 19–21): Jun 22, 23, 24, 25, 26, 29, 30.
        ("2026-06-18", "2026-06-30"),
        // 中秋 2026 (Sep 25–27) and then 国庆 (Oct 1–7): Sep 28, 29, 30, Oct 8, 9,
        // 10 (adjusted Sat), 12.
        ("2026-09-24", "2026-10-12"),
        // 国庆 2026 (Oct 1–7): Oct 8, 9, 10 (adjusted Sat), 12, 13, 14, 15.
        ("2026-09-30", "2026-10-15"),
    ];
    for (eve, last_day) in table {
        let start = instant(&format!("{eve}T10:00:00+08:00"));
        assert_eq!(
            calendar().due(start, Period::WorkingDays(7)),
            Ok(end_of(last_day)),
            "transfer of a lead registered {start}"
        );
    }
}

/// One working day from the day before each adjusted weekend day ends on that day: the
/// Saturday or Sunday worked counts.
#[test]
fn interp_6_every_adjusted_weekend_day_counts_as_a_working_day() {
    let adjusted = [
        "2024-02-04",
        "2024-02-18",
        "2024-04-07",
        "2024-04-28",
        "2024-05-11",
        "2024-09-14",
        "2024-09-29",
        "2024-10-12",
        "2025-01-26",
        "2025-02-08",
        "2025-04-27",
        "2025-09-28",
        "2025-10-11",
        "2026-01-04",
        "2026-02-14",
        "2026-02-28",
        "2026-05-09",
        "2026-09-20",
        "2026-10-10",
    ];
    for day in adjusted {
        let eve = date(day).pred_opt().expect("a date before");
        assert_eq!(calendar().nth_working_day_after(eve, nth(1)), Ok(date(day)), "{day}");
        let start = instant(&format!("{eve}T18:30:00+08:00"));
        assert_eq!(calendar().due(start, Period::WorkingDays(1)), Ok(end_of(day)), "{day}");
    }
}

#[test]
fn pen_1_fifteen_working_days_across_national_day_and_spring_festival() {
    let table = [
        // Sep 22, 23, 24, 28, 29, 30, Oct 8, 9, 10 (adjusted), 12, 13, 14, 15, 16, 19.
        ("2026-09-21T09:00:00+08:00", "2026-10-19"),
        // Feb 9–13 (5), 14 (adjusted Sat, 6), Feb 24–27 (10), 28 (adjusted Sat, 11),
        // Mar 2, 3, 4, 5.
        ("2026-02-06T16:00:00+08:00", "2026-03-05"),
        // Sep 23, 24, 25, 26, 28 (adjusted Sun), 29, 30, Oct 9, 10, 11 (adjusted Sat), 13,
        // 14, 15, 16, 17.
        ("2025-09-22T09:00:00+08:00", "2025-10-17"),
        // Jan 21, 22, 23, 24, 26 (adjusted Sun), 27, Feb 5, 6, 7, 8 (adjusted Sat), 10, 11,
        // 12, 13, 14.
        ("2025-01-20T09:00:00+08:00", "2025-02-14"),
    ];
    for (start, last_day) in table {
        assert_eq!(
            calendar().due(instant(start), Period::WorkingDays(15)),
            Ok(end_of(last_day)),
            "penalty verification from {start}"
        );
    }
}

/// Decision: zero working days end like zero days, at 24:00 of the start's date, or of the
/// first working day after it when that date is a rest day.
#[test]
fn interp_6_zero_working_days_end_at_the_end_of_the_start_day_or_next_working_day() {
    let table = [
        ("2026-10-09T11:00:00+08:00", "2026-10-09"), // a working Friday
        ("2026-10-10T11:00:00+08:00", "2026-10-10"), // the adjusted Saturday
        ("2026-10-03T11:00:00+08:00", "2026-10-08"), // inside National Day
        ("2026-10-11T11:00:00+08:00", "2026-10-12"), // an ordinary Sunday
    ];
    for (start, last_day) in table {
        let start = instant(start);
        assert_eq!(calendar().due(start, Period::WorkingDays(0)), Ok(end_of(last_day)), "{start}");
        assert_eq!(calendar().due(start, Period::WorkingDays(0)), calendar().due(start, Period::Days(0)), "{start}");
    }
}

// ---------------------------------------------------------------------------------------------
// Day and month periods (interpretation 5)

/// Seven days whose nominal last day is the first day of each 2025 and 2026 block: the period
/// ends on the first working day after the block.
#[test]
fn hdl_1_seven_days_ending_in_every_2025_and_2026_holiday_block_roll_past_it() {
    let table = [
        ("2024-12-25", "2025-01-02"), // Jan 1 (Wed) → Thu
        ("2025-01-21", "2025-02-05"), // Jan 28–Feb 4 → Wed Feb 5
        ("2025-03-28", "2025-04-07"), // Apr 4–6 → Mon
        ("2025-04-24", "2025-05-06"), // May 1–5 → Tue
        ("2025-05-24", "2025-06-03"), // May 31–Jun 2 → Tue
        ("2025-09-24", "2025-10-09"), // Oct 1–8 → Thu
        ("2025-12-25", "2026-01-04"), // Jan 1–3 → the adjusted Sunday Jan 4
        ("2026-02-08", "2026-02-24"), // Feb 15–23 → Tue
        ("2026-03-28", "2026-04-07"), // Apr 4–6 → Tue
        ("2026-04-24", "2026-05-06"), // May 1–5 → Wed
        ("2026-06-12", "2026-06-22"), // Jun 19–21 → Mon
        ("2026-09-18", "2026-09-28"), // Sep 25–27 → Mon
        ("2026-09-24", "2026-10-08"), // Oct 1–7 → Thu
    ];
    for (received, last_day) in table {
        let start = instant(&format!("{received}T15:00:00+08:00"));
        assert_eq!(calendar().due(start, Period::Days(7)), Ok(end_of(last_day)), "general matter received {start}");
    }
}

#[test]
fn interp_5_a_last_day_on_a_holiday_rolls_to_the_first_working_day_after_it() {
    // Counting starts Sep 26; the 5th day is Oct 1 (holiday) → Oct 8.
    assert_eq!(calendar().due(instant("2026-09-26T08:00:00+08:00"), Period::Days(5)), Ok(end_of("2026-10-08")));
    // Interpretation 11: 90 days from filing on Jul 3 end on Oct 1 → Oct 8; 120 days (one
    // extension) on Oct 31, a Saturday → Mon Nov 2.
    assert_eq!(calendar().due(instant("2026-07-03T10:00:00+08:00"), Period::Days(90)), Ok(end_of("2026-10-08")));
    assert_eq!(calendar().due(instant("2026-07-03T10:00:00+08:00"), Period::Days(120)), Ok(end_of("2026-11-02")));
}

/// A last day on an adjusted working weekend day stays there.
#[test]
fn interp_5_day_periods_ending_on_an_adjusted_working_day_do_not_roll() {
    let adjusted = [
        "2025-01-26",
        "2025-02-08",
        "2025-04-27",
        "2025-09-28",
        "2025-10-11",
        "2026-01-04",
        "2026-02-14",
        "2026-02-28",
        "2026-05-09",
        "2026-09-20",
        "2026-10-10",
    ];
    for day in adjusted {
        let received = date(day).checked_sub_days(Days::new(5)).expect("a date");
        let start = instant(&format!("{received}T09:00:00+08:00"));
        assert_eq!(calendar().due(start, Period::Days(5)), Ok(end_of(day)), "{day}");
    }
}

#[test]
fn interp_5_months_end_on_the_same_numbered_day_or_the_month_end_then_roll() {
    let table = [
        // Jan 31 + 1 month: no Feb 31, so Feb 28, a Saturday but an adjusted working day.
        ("2026-01-31", 1, "2026-02-28"),
        // Leap year: Feb 29 2024, a Thursday.
        ("2024-01-31", 1, "2024-02-29"),
        ("2025-01-31", 1, "2025-02-28"),
        ("2025-12-31", 2, "2026-02-28"),
        ("2024-12-31", 2, "2025-02-28"),
        // Clamped to Nov 30 2025, a Sunday → Mon Dec 1.
        ("2025-10-31", 1, "2025-12-01"),
        // Clamped to Jun 30 2024, a Sunday → Mon Jul 1.
        ("2024-05-31", 1, "2024-07-01"),
        // Oct 31 2026 is a Saturday → Mon Nov 2.
        ("2026-08-31", 2, "2026-11-02"),
        // May 31 2025 starts 端午 (May 31–Jun 2) → Tue Jun 3.
        ("2025-03-31", 2, "2025-06-03"),
        // Oct 1 2025 starts 国庆、中秋 (Oct 1–8) → Thu Oct 9.
        ("2025-09-01", 1, "2025-10-09"),
        // Feb 19 2026 is inside 春节 (Feb 15–23) → Tue Feb 24.
        ("2026-01-19", 1, "2026-02-24"),
        // May 5 2026 is the last day of 劳动节 → Wed May 6.
        ("2026-04-05", 1, "2026-05-06"),
        ("2026-03-31", 1, "2026-04-30"),
        ("2026-07-31", 2, "2026-09-30"),
        ("2025-12-29", 1, "2026-01-29"),
    ];
    for (received, months, last_day) in table {
        let start = instant(&format!("{received}T12:00:00+08:00"));
        assert_eq!(calendar().due(start, Period::Months(months)), Ok(end_of(last_day)), "{received} + {months} months");
    }
}

#[test]
fn hdl_2_one_month_for_a_major_matter_received_on_january_31() {
    assert_eq!(
        calendar().due(instant("2026-01-31T09:30:00+08:00"), Period::Months(1)),
        Ok(instant("2026-03-01T00:00:00+08:00"))
    );
    assert_eq!(
        calendar().due(instant("2024-01-31T09:30:00+08:00"), Period::Months(1)),
        Ok(instant("2024-03-01T00:00:00+08:00"))
    );
}

// ---------------------------------------------------------------------------------------------
// Hours and time zones (interpretations 4 and 7)

#[test]
fn trf_1_hours_are_added_without_rolling_over_holidays() {
    assert_eq!(
        calendar().due(instant("2026-09-30T23:00:00+08:00"), Period::Hours(2)),
        Ok(instant("2026-10-01T01:00:00+08:00"))
    );
    let due = calendar().due(instant("2026-09-30T15:00:00Z"), Period::Hours(2));
    assert_eq!(due.map(|due| due.to_rfc3339()), Ok("2026-10-01T01:00:00+08:00".to_owned()));
}

/// 17:00 UTC on Sep 29 is already Sep 30 in Shanghai, so counting starts Oct 1 as in the
/// worked example; the result is written with +08:00.
#[test]
fn interp_4_dates_are_taken_in_shanghai_whatever_the_input_offset() {
    let due = calendar().due(instant("2026-09-29T17:00:00Z"), Period::WorkingDays(7));
    assert_eq!(due.map(|due| due.to_rfc3339()), Ok("2026-10-16T00:00:00+08:00".to_owned()));
    let due = calendar().due(instant("2026-09-29T20:00:00-05:00"), Period::Days(7));
    // 2026-09-30T09:00+08:00 + 7 days = Oct 7 (holiday) → Oct 8.
    assert_eq!(due.map(|due| due.to_rfc3339()), Ok("2026-10-09T00:00:00+08:00".to_owned()));
}

// ---------------------------------------------------------------------------------------------
// Refusals outside the data

#[test]
fn interp_21_refuses_only_years_without_official_or_provisional_data() {
    // 2023 had other statutory days than the 办法 as in force since 2025, and no notice is
    // shipped for it; 2101 is past the provisional calendar's table.
    for (start, year) in [("2023-12-29T10:00:00+08:00", 2023), ("2101-03-02T10:00:00+08:00", 2101)] {
        for period in [Period::Hours(2), Period::Days(7), Period::WorkingDays(7), Period::Months(1)] {
            assert_eq!(
                calendar().due(instant(start), period),
                Err(CalendarError::NoDataForYear { year }),
                "{start} + {period}"
            );
        }
    }
    assert_eq!(calendar().is_working_day(date("2023-12-31")), Err(CalendarError::NoDataForYear { year: 2023 }));
    assert_eq!(calendar().is_working_day(date("2101-01-03")), Err(CalendarError::NoDataForYear { year: 2101 }));
    // 2027 has no notice loaded: answered from the provisional calendar.
    assert_eq!(calendar().is_working_day(date("2027-01-04")), Ok(true));
    assert_eq!(calendar().is_working_day(date("2027-01-01")), Ok(false), "元旦");
    assert_eq!(
        calendar().due(instant("2027-01-05T10:00:00+08:00"), Period::Hours(2)),
        Ok(instant("2027-01-05T12:00:00+08:00"))
    );
}

#[test]
fn trf_2_interp_21_a_period_running_into_2027_is_provisional() {
    // 2027-01-01 is a Friday and 元旦; 2 and 3 January are a weekend.
    // The version names the years whose days were looked at: a period whose nominal last
    // day is 1 January looks at 2027 only.
    let both = [(2026, YearKind::Official), (2027, YearKind::Provisional)];
    let only_2027 = [(2027, YearKind::Provisional)];
    type Row<'a> = (&'a str, Period, &'a str, &'a [(i32, YearKind)]);
    let table: [Row<'_>; 5] = [
        ("2026-12-31T10:00:00+08:00", Period::WorkingDays(1), "2027-01-04", &only_2027),
        ("2026-12-28T10:00:00+08:00", Period::WorkingDays(7), "2027-01-07", &both), // Dec 29–31, Jan 4–7
        ("2026-12-31T10:00:00+08:00", Period::Days(1), "2027-01-04", &only_2027),   // Jan 1 rolls to Monday
        ("2026-12-25T10:00:00+08:00", Period::Days(7), "2027-01-04", &only_2027),
        ("2026-12-01T10:00:00+08:00", Period::Months(1), "2027-01-04", &only_2027),
    ];
    for (start, period, last_day, years) in table {
        let computed = calendar().compute_due(instant(start), period).expect("never refused for lack of a notice");
        assert_eq!(computed.due, end_of(last_day), "{start} + {period}");
        assert!(computed.provisional, "{start} + {period}");
        assert_eq!(computed.version.years().collect::<Vec<_>>(), years, "{start} + {period}");
        assert!(computed.version.as_str().ends_with("2027.provisional"), "{}", computed.version);
    }
    // A thousand working days from 2026 run for years: every year after 2026 that they cross
    // is provisional, through the year of the last day.
    let far =
        calendar().compute_due(instant("2026-01-01T10:00:00+08:00"), Period::WorkingDays(1_000)).expect("computed");
    assert!(far.provisional);
    let last_year = last_day_of(far.due).year();
    assert!(last_year >= 2029, "{}", far.due);
    assert_eq!(far.version.provisional_years().collect::<Vec<_>>(), (2027..=last_year).collect::<Vec<_>>());
    // A period inside 2026 rests on official data only.
    let official =
        calendar().compute_due(instant("2026-09-30T10:00:00+08:00"), Period::WorkingDays(7)).expect("computed");
    assert!(!official.provisional);
    assert_eq!(official.version.years().collect::<Vec<_>>(), [(2026, YearKind::Official)]);
}

/// A last day of Dec 31 2026 (a Thursday) needs no 2027 data: 24:00 is written as 00:00 of
/// Jan 1 2027, which nothing looks at.
#[test]
fn interp_5_a_period_ending_on_december_31_needs_no_data_for_the_next_year() {
    assert_eq!(
        calendar().due(instant("2026-12-24T10:00:00+08:00"), Period::Days(7)),
        Ok(instant("2027-01-01T00:00:00+08:00"))
    );
    assert_eq!(
        calendar().due(instant("2026-12-22T10:00:00+08:00"), Period::WorkingDays(7)),
        Ok(instant("2027-01-01T00:00:00+08:00"))
    );
}

#[test]
fn interp_5_interp_21_a_rest_day_roll_from_december_31_runs_into_provisional_2027() {
    // A province makes Dec 31 2026 a holiday: the roll looks at 2027, whose 元旦 (a Friday) is
    // provisionally a rest day too, so the last day is Monday 4 January.
    let calendar = with_override(
        r#"
year = 2026
source = "示例"
[[holiday]]
name = "地方节日（示例）"
from = "2026-12-31"
to = "2026-12-31"
"#,
    )
    .expect("a valid override");
    let computed = calendar.compute_due(instant("2026-12-24T10:00:00+08:00"), Period::Days(7)).expect("computed");
    assert_eq!(computed.due, end_of("2027-01-04"));
    assert!(computed.provisional);
}

#[test]
fn interp_5_periods_beyond_representable_dates_are_refused() {
    let start = instant("2026-06-01T10:00:00+08:00");
    for period in [Period::Days(u32::MAX), Period::Months(u32::MAX), Period::Hours(u32::MAX)] {
        let refused = calendar().due(start, period);
        assert!(
            matches!(refused, Err(CalendarError::OutOfRange { .. } | CalendarError::NoDataForYear { .. })),
            "{period}: {refused:?}"
        );
    }
    // 30,000 days from 1 June 2026 is 21 July 2108, past the provisional calendar's 2100.
    assert_eq!(calendar().due(start, Period::Days(30_000)), Err(CalendarError::NoDataForYear { year: 2108 }));
}

// ---------------------------------------------------------------------------------------------
// Lateness (interpretation 9, ACC-2)

#[test]
fn acc_2_interp_9_working_days_late_for_the_worked_transfer_example() {
    let due = instant("2026-10-16T00:00:00+08:00"); // 24:00 of Thu Oct 15
    let table = [
        ("2026-10-15T23:59:59+08:00", 0, 0),
        ("2026-10-16T00:00:00+08:00", 0, 0), // exactly on time
        ("2026-10-16T00:00:01+08:00", 1, 1), // Fri Oct 16: missed
        ("2026-10-17T12:00:00+08:00", 1, 2), // Saturday
        ("2026-10-18T23:00:00+08:00", 1, 3), // Sunday
        ("2026-10-19T08:00:00+08:00", 2, 4),
        ("2026-10-20T00:00:00+08:00", 3, 5),   // report to 区委、区政府
        ("2026-10-29T00:00:00+08:00", 10, 14), // referral to the discipline organ
        ("2026-10-16T01:00:00+09:00", 0, 0),   // the due instant, written in +09:00
        ("2026-10-16T01:00:01+09:00", 1, 1),
        ("2026-10-15T18:00:00Z", 1, 1), // Oct 16 02:00 in Shanghai
    ];
    for (at, working, calendar_days) in table {
        let at = instant(at);
        assert_eq!(calendar().working_days_late(due, at), Ok(working), "{at}");
        assert_eq!(calendar().calendar_days_late(due, at), Ok(calendar_days), "{at}");
    }
}

#[test]
fn acc_2_interp_9_escalation_instants_for_the_worked_transfer_example() {
    let due = instant("2026-10-16T00:00:00+08:00");
    // Oct 16 (1), 19 (2), 20 (3), 21, 22, 23, 26, 27, 28, 29 (10).
    let report = calendar().instant_working_days_late(due, 3);
    let referral = calendar().instant_working_days_late(due, 10);
    assert_eq!(report, Ok(instant("2026-10-20T00:00:00+08:00")));
    assert_eq!(referral, Ok(instant("2026-10-29T00:00:00+08:00")));
    for (n, escalation) in [(3, report), (10, referral)] {
        let escalation = escalation.expect("an instant");
        let just_before = escalation - TimeDelta::nanoseconds(1);
        assert_eq!(calendar().working_days_late(due, escalation), Ok(n));
        assert_eq!(calendar().working_days_late(due, just_before), Ok(n - 1));
    }
}

/// A deadline whose last day is Sep 29 2026 is missed on Sep 30; National Day does not count.
#[test]
fn acc_2_interp_9_lateness_skips_national_day_and_counts_the_adjusted_saturday() {
    let due = end_of("2026-09-29");
    let table = [
        (1, "2026-09-30T00:00:00+08:00"), // the due instant itself
        (2, "2026-10-08T00:00:00+08:00"),
        (3, "2026-10-09T00:00:00+08:00"),
        (4, "2026-10-10T00:00:00+08:00"), // adjusted Saturday
        (5, "2026-10-12T00:00:00+08:00"),
        (10, "2026-10-19T00:00:00+08:00"),
    ];
    for (n, expected) in table {
        assert_eq!(calendar().instant_working_days_late(due, n), Ok(instant(expected)), "{n}");
    }
    assert_eq!(calendar().working_days_late(due, instant("2026-10-07T23:00:00+08:00")), Ok(1));
    assert_eq!(calendar().calendar_days_late(due, instant("2026-10-07T23:00:00+08:00")), Ok(8));
}

/// An hour deadline (TRF-1) due in the middle of a working day: the day it is missed is the
/// first late day, and one working day late starts at the deadline itself, not at midnight.
#[test]
fn trf_1_interp_9_lateness_of_an_hour_deadline_due_mid_day() {
    let due = instant("2026-09-30T12:00:00+08:00");
    assert_eq!(calendar().instant_working_days_late(due, 0), Ok(due));
    assert_eq!(calendar().instant_working_days_late(due, 1), Ok(due));
    assert_eq!(calendar().instant_working_days_late(due, 3), Ok(instant("2026-10-09T00:00:00+08:00")));
    assert_eq!(calendar().working_days_late(due, instant("2026-09-30T12:00:00+08:00")), Ok(0));
    assert_eq!(calendar().working_days_late(due, instant("2026-09-30T12:00:01+08:00")), Ok(1));
    // Due on a Saturday: late, but no working day late until Monday.
    let saturday = instant("2026-10-17T12:00:00+08:00");
    assert_eq!(calendar().working_days_late(saturday, instant("2026-10-18T20:00:00+08:00")), Ok(0));
    assert_eq!(calendar().calendar_days_late(saturday, instant("2026-10-18T20:00:00+08:00")), Ok(2));
    assert_eq!(calendar().instant_working_days_late(saturday, 1), Ok(instant("2026-10-19T00:00:00+08:00")));
}

#[test]
fn acc_2_interp_9_interp_21_lateness_running_into_2027_counts_provisional_working_days() {
    let due = end_of("2026-12-30");
    // Late days: Thu 31 Dec (working), Fri 1 Jan (元旦), the weekend, Mon 4 Jan (working).
    assert_eq!(calendar().working_days_late(due, instant("2027-01-04T10:00:00+08:00")), Ok(2));
    assert_eq!(calendar().instant_working_days_late(due, 3), Ok(instant("2027-01-05T00:00:00+08:00")));
    assert_eq!(calendar().calendar_days_late(due, instant("2027-01-04T10:00:00+08:00")), Ok(5));
}

// ---------------------------------------------------------------------------------------------
// Local overrides

#[test]
fn interp_6_a_provincial_holiday_override_moves_the_transfer_deadline() {
    let calendar = with_override(OVERRIDE_EXTRA_HOLIDAY_2026).expect("a valid override");
    // Oct 8–9 now off too: Oct 10 (adjusted Sat), 12, 13, 14, 15, 16, 19.
    assert_eq!(
        calendar.due(instant("2026-09-30T10:00:00+08:00"), Period::WorkingDays(7)),
        Ok(instant("2026-10-20T00:00:00+08:00"))
    );
    assert_eq!(calendar.is_working_day(date("2026-10-08")), Ok(false));
    assert_eq!(calendar.sources(2026).map(<[String]>::len), Some(2), "the override's source is kept");
}

#[test]
fn interp_6_an_extra_adjusted_working_day_override_counts() {
    let calendar = with_override(OVERRIDE_EXTRA_WORKING_DAY_2026).expect("a valid override");
    // Oct 8, 9, 10 (adjusted Sat), 11 (local adjusted Sun), 12, 13, 14.
    assert_eq!(
        calendar.due(instant("2026-09-30T10:00:00+08:00"), Period::WorkingDays(7)),
        Ok(instant("2026-10-15T00:00:00+08:00"))
    );
}

#[test]
fn interp_6_overrides_that_contradict_or_lack_data_are_refused() {
    let national_day = CalendarError::InvalidEntry {
        file: CalendarFile::Override,
        year: 2026,
        entry: holiday_entry(1, "地方节日（示例）"),
        problem: Box::new(EntryProblem::AlreadyHoliday {
            date: date("2026-10-07"),
            other_file: CalendarFile::Year { position: 3 },
            other: holiday_entry(7, "国庆节"),
        }),
    };
    let table: [(String, CalendarError); 6] = [
        (OVERRIDE_EXTRA_HOLIDAY_2026.replace("2026", "2027"), CalendarError::OverrideWithoutData { year: 2027 }),
        (OVERRIDE_EXTRA_HOLIDAY_2026.replace("2026-10-08", "2026-10-07"), national_day),
        (
            // Onto the national adjusted Saturday Oct 10.
            OVERRIDE_EXTRA_HOLIDAY_2026.replace("2026-10-09", "2026-10-10"),
            CalendarError::InvalidEntry {
                file: CalendarFile::Override,
                year: 2026,
                entry: holiday_entry(1, "地方节日（示例）"),
                problem: Box::new(EntryProblem::AlreadyWorkingDay {
                    date: date("2026-10-10"),
                    other_file: CalendarFile::Year { position: 3 },
                    other: working_day_entry(6, "国庆节"),
                }),
            },
        ),
        (
            // A Monday is a working day anyway.
            OVERRIDE_EXTRA_WORKING_DAY_2026.replace("2026-10-11", "2026-10-12"),
            CalendarError::InvalidEntry {
                file: CalendarFile::Override,
                year: 2026,
                entry: working_day_entry(1, "地方调休（示例）"),
                problem: Box::new(EntryProblem::NotWeekend { date: date("2026-10-12"), weekday: Weekday::Mon }),
            },
        ),
        (
            // Sunday Oct 4 is inside National Day.
            OVERRIDE_EXTRA_WORKING_DAY_2026.replace("2026-10-11", "2026-10-04"),
            CalendarError::InvalidEntry {
                file: CalendarFile::Override,
                year: 2026,
                entry: working_day_entry(1, "地方调休（示例）"),
                problem: Box::new(EntryProblem::AlreadyHoliday {
                    date: date("2026-10-04"),
                    other_file: CalendarFile::Year { position: 3 },
                    other: holiday_entry(7, "国庆节"),
                }),
            },
        ),
        (
            // Dates outside the override's year.
            OVERRIDE_EXTRA_WORKING_DAY_2026.replace("2026-10-11", "2025-10-12"),
            CalendarError::InvalidEntry {
                file: CalendarFile::Override,
                year: 2026,
                entry: working_day_entry(1, "地方调休（示例）"),
                problem: Box::new(EntryProblem::OutsideYear { field: "date", date: date("2025-10-12") }),
            },
        ),
    ];
    for (text, expected) in table {
        assert_eq!(with_override(&text), Err(expected), "{text}");
    }
    let malformed = with_override("year = 2026\n[[holiday]]\nname = 1\n");
    assert!(matches!(malformed, Err(CalendarError::Malformed { file: CalendarFile::Override, .. })), "{malformed:?}");
}

#[test]
fn interp_6_override_errors_name_the_file_the_entry_and_the_conflict() {
    let refused = with_override(&OVERRIDE_EXTRA_HOLIDAY_2026.replace("2026-10-08", "2026-10-07"))
        .expect_err("overlaps National Day");
    assert_eq!(
        refused.to_string(),
        "override file for 2026, [[holiday]] #1 \"地方节日（示例）\": 2026-10-07 is already a \
         holiday by [[holiday]] #7 \"国庆节\" of the year file #3"
    );
}

// ---------------------------------------------------------------------------------------------
// Validation of year files

#[test]
fn interp_6_year_file_entry_errors_name_the_year_the_entry_and_the_problem() {
    let table: Vec<(String, CalendarError)> = vec![
        (
            year_2026_with("from = \"2026-04-04\"", "from = \"2026-4-4\""),
            invalid_2026(
                holiday_entry(3, "清明节"),
                EntryProblem::BadDate { field: "from", value: "2026-4-4".to_owned() },
            ),
        ),
        (
            year_2026_with("to = \"2026-02-23\"", "to = \"2026-02-30\""),
            invalid_2026(
                holiday_entry(2, "春节"),
                EntryProblem::BadDate { field: "to", value: "2026-02-30".to_owned() },
            ),
        ),
        (
            year_2026_with("to = \"2026-01-03\"", "to = \"2027-01-03\""),
            invalid_2026(holiday_entry(1, "元旦"), EntryProblem::OutsideYear { field: "to", date: date("2027-01-03") }),
        ),
        (
            year_2026_with("from = \"2026-04-04\"", "from = \"2026-04-07\""),
            invalid_2026(
                holiday_entry(3, "清明节"),
                EntryProblem::FromAfterTo { from: date("2026-04-07"), to: date("2026-04-06") },
            ),
        ),
        (
            // 劳动节 stretched back over 清明节.
            year_2026_with("from = \"2026-05-01\"", "from = \"2026-04-06\""),
            invalid_2026(
                holiday_entry(4, "劳动节"),
                EntryProblem::AlreadyHoliday {
                    date: date("2026-04-06"),
                    other_file: CalendarFile::Year { position: 1 },
                    other: holiday_entry(3, "清明节"),
                },
            ),
        ),
        (
            // Friday May 8 instead of Saturday May 9.
            year_2026_with("date = \"2026-05-09\"", "date = \"2026-05-08\""),
            invalid_2026(
                working_day_entry(4, "劳动节"),
                EntryProblem::NotWeekend { date: date("2026-05-08"), weekday: Weekday::Fri },
            ),
        ),
        (
            // Sunday Feb 15 is the first day of 春节.
            year_2026_with("date = \"2026-02-14\"", "date = \"2026-02-15\""),
            invalid_2026(
                working_day_entry(2, "春节"),
                EntryProblem::AlreadyHoliday {
                    date: date("2026-02-15"),
                    other_file: CalendarFile::Year { position: 1 },
                    other: holiday_entry(2, "春节"),
                },
            ),
        ),
        (
            year_2026_with("date = \"2026-02-28\"", "date = \"2026-02-14\""),
            invalid_2026(
                working_day_entry(3, "春节"),
                EntryProblem::AlreadyWorkingDay {
                    date: date("2026-02-14"),
                    other_file: CalendarFile::Year { position: 1 },
                    other: working_day_entry(2, "春节"),
                },
            ),
        ),
        (
            year_2026_with("name = \"清明节\"", "name = \"清明\""),
            invalid_2026(holiday_entry(3, "清明"), EntryProblem::UnknownFestival { name: "清明".to_owned() }),
        ),
        (
            year_2026_with("name = \"中秋节\"", "name = \"国庆节\""),
            invalid_2026(
                holiday_entry(7, "国庆节"),
                EntryProblem::FestivalTwice { festival: "国庆节".to_owned(), other: holiday_entry(6, "国庆节") },
            ),
        ),
        (
            year_2026_with("date = \"2026-05-09\"\nname = \"劳动节\"", "date = \"2026-05-09\"\nname = \"五一\""),
            invalid_2026(working_day_entry(4, "五一"), EntryProblem::UnknownFestival { name: "五一".to_owned() }),
        ),
        (
            year_2026_with("name = \"元旦\"", "name = \" \""),
            invalid_2026(holiday_entry(1, " "), EntryProblem::EmptyName),
        ),
        (
            year_2026_with("[[holiday]]\nname = \"中秋节\"\nfrom = \"2026-09-25\"\nto = \"2026-09-27\"\n", ""),
            CalendarError::MissingFestival {
                file: CalendarFile::Year { position: 1 }, year: 2026, festival: "中秋节"
            },
        ),
        (
            year_2026_with("source = \"国务院办公厅关于2026年部分节假日安排的通知\"", "source = \"\""),
            CalendarError::EmptySource { file: CalendarFile::Year { position: 1 }, year: 2026 },
        ),
        (
            year_2026_with("year = 2026", "year = 20260"),
            CalendarError::YearOutOfRange { file: CalendarFile::Year { position: 1 }, year: 20260 },
        ),
        (
            // Shanghai kept summer time in 1991: +08:00 would be wrong.
            year_2026_with("year = 2026", "year = 1991"),
            CalendarError::YearOutOfRange { file: CalendarFile::Year { position: 1 }, year: 1991 },
        ),
        (
            // A 2026 file that says it is 2025.
            year_2026_with("year = 2026", "year = 2025"),
            CalendarError::InvalidEntry {
                file: CalendarFile::Year { position: 1 },
                year: 2025,
                entry: holiday_entry(1, "元旦"),
                problem: Box::new(EntryProblem::OutsideYear { field: "from", date: date("2026-01-01") }),
            },
        ),
    ];
    for (text, expected) in table {
        assert_eq!(load_2026(&text), Err(expected));
    }
}

#[test]
fn interp_6_year_file_error_messages_read_as_sentences() {
    let refused = load_2026(&year_2026_with("date = \"2026-05-09\"", "date = \"2026-05-08\"")).expect_err("a Friday");
    assert_eq!(
        refused.to_string(),
        "year file #1 for 2026, [[working_day]] #4 \"劳动节\": 2026-05-08 is a Friday; an adjusted \
         working day must be a Saturday or Sunday"
    );
    let refused =
        load_2026(&year_2026_with("to = \"2026-01-03\"", "to = \"2027-01-03\"")).expect_err("outside the year");
    assert_eq!(
        refused.to_string(),
        "year file #1 for 2026, [[holiday]] #1 \"元旦\": to = 2027-01-03 is outside the year of \
         the file"
    );
}

#[test]
fn interp_6_malformed_year_files_are_refused_with_the_line() {
    let table = [
        // Not TOML.
        (year_2026_with("year = 2026", "year = "), "line 6"),
        // A typo in a key.
        (year_2026_with("to = \"2026-01-03\"", "till = \"2026-01-03\""), "till"),
        // A TOML date where a string is expected.
        (year_2026_with("from = \"2026-01-01\"", "from = 2026-01-01"), "line 11"),
        // No year.
        (year_2026_with("year = 2026\n", ""), "missing field `year`"),
    ];
    for (text, expected_in_reason) in table {
        match load_2026(&text) {
            Err(CalendarError::Malformed { file: CalendarFile::Year { position: 1 }, reason }) => {
                assert!(reason.contains(expected_in_reason), "{reason:?} should mention {expected_in_reason:?}")
            }
            other => panic!("expected a malformed-file error, got {other:?}"),
        }
    }
}

#[test]
fn interp_6_duplicate_or_missing_year_files_are_refused() {
    assert_eq!(
        Calendar::from_year_files(&[YEAR_2026, YEAR_2025, YEAR_2026]),
        Err(CalendarError::DuplicateYear { year: 2026, first: 1, second: 3 })
    );
    assert_eq!(Calendar::from_year_files(&[]), Err(CalendarError::NoYearFiles));
    // A gap is allowed, and filled by the provisional calendar (interpretation 21): Tue 31
    // Dec, then 元旦 (a Wednesday), then 2–3 and 6–9 January 2025.
    let gap = Calendar::from_year_files(&[YEAR_2024, YEAR_2026]).expect("valid files");
    let computed = gap.compute_due(instant("2024-12-30T10:00:00+08:00"), Period::WorkingDays(7)).expect("computed");
    assert_eq!(computed.due, end_of("2025-01-09"));
    assert_eq!(
        computed.version.years().collect::<Vec<_>>(),
        [(2024, YearKind::Official), (2025, YearKind::Provisional)]
    );
}

// ---------------------------------------------------------------------------------------------
// Properties

/// Any date of 2024–2026.
fn any_covered_date() -> impl Strategy<Value = NaiveDate> {
    (0u64..1096).prop_map(|offset| {
        NaiveDate::from_ymd_opt(2024, 1, 1)
            .and_then(|first| first.checked_add_days(Days::new(offset)))
            .expect("a date of 2024–2026")
    })
}

/// Any instant of 2024–2026 in Shanghai, written with any whole-hour offset.
fn any_covered_instant() -> impl Strategy<Value = DateTime<FixedOffset>> {
    (any_covered_date(), 0u32..86_400, -12i32..=14).prop_map(|(day, second, offset_hours)| {
        let local = day.and_hms_opt(second / 3600, second / 60 % 60, second % 60);
        let offset = FixedOffset::east_opt(offset_hours * 3600).expect("a valid offset");
        local
            .and_then(|local| local.and_local_timezone(shanghai()).single())
            .map(|instant| instant.with_timezone(&offset))
            .expect("a valid instant")
    })
}

/// The result, or `None` when the computation needed a year after 2026, the only refusal
/// these properties can meet.
fn unless_after_2026<T: std::fmt::Debug>(result: Result<T, CalendarError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(CalendarError::NoDataForYear { year }) if year > 2026 => None,
        Err(error) => panic!("unexpected refusal: {error}"),
    }
}

/// The last day of a period that ends at 00:00 Shanghai of the next day.
fn last_day_of(due: DateTime<FixedOffset>) -> NaiveDate {
    assert_eq!(due.offset(), &shanghai(), "{due}");
    assert_eq!(due.time(), chrono::NaiveTime::MIN, "{due}");
    due.date_naive().pred_opt().expect("a date before")
}

proptest! {
    #[test]
    fn interp_6_the_nth_working_day_after_a_date_is_a_working_day_n_working_days_on(
        start in any_covered_date(),
        n in 1u32..40,
    ) {
        let nth_day = unless_after_2026(calendar().nth_working_day_after(start, nth(n)));
        let Some(nth_day) = nth_day else {
            return Ok(());
        };
        prop_assert!(nth_day > start);
        prop_assert_eq!(calendar().is_working_day(nth_day), Ok(true));
        let working_between = start
            .iter_days()
            .skip(1)
            .take_while(|day| *day <= nth_day)
            .filter(|day| calendar().is_working_day(*day) == Ok(true))
            .count();
        prop_assert_eq!(working_between, usize::try_from(n).expect("small"));
    }

    #[test]
    fn interp_6_the_nth_working_day_is_monotonic_in_n_and_in_the_start(
        start in any_covered_date(),
        later_by in 0u64..30,
        n in 1u32..30,
        more in 1u32..10,
    ) {
        let later_start = start.checked_add_days(Days::new(later_by)).expect("a date");
        let a = unless_after_2026(calendar().nth_working_day_after(start, nth(n)));
        let b = unless_after_2026(calendar().nth_working_day_after(start, nth(n + more)));
        let c = unless_after_2026(calendar().nth_working_day_after(later_start, nth(n)));
        if let (Some(a), Some(b)) = (a, b) {
            prop_assert!(a < b, "{a} !< {b}");
        }
        if let (Some(a), Some(c)) = (a, c) {
            prop_assert!(a <= c, "{a} !<= {c}");
        }
    }

    #[test]
    fn interp_5_day_periods_end_on_the_first_working_day_from_the_nominal_last_day(
        start in any_covered_instant(),
        days in 0u32..120,
    ) {
        let Some(due) = unless_after_2026(calendar().due(start, Period::Days(days))) else {
            return Ok(());
        };
        let last_day = last_day_of(due);
        let nominal = start
            .with_timezone(&shanghai())
            .date_naive()
            .checked_add_days(Days::new(u64::from(days)))
            .expect("a date");
        prop_assert_eq!(calendar().is_working_day(last_day), Ok(true));
        prop_assert!(last_day >= nominal);
        for skipped in nominal.iter_days().take_while(|day| *day < last_day) {
            prop_assert_eq!(calendar().is_working_day(skipped), Ok(false), "{}", skipped);
        }
    }

    #[test]
    fn interp_5_month_periods_never_end_on_a_rest_day(
        start in any_covered_instant(),
        months in 0u32..24,
    ) {
        let Some(due) = unless_after_2026(calendar().due(start, Period::Months(months))) else {
            return Ok(());
        };
        let last_day = last_day_of(due);
        prop_assert_eq!(calendar().is_working_day(last_day), Ok(true));
        // The same-numbered day of the final month, or that month's last day.
        let start_date = start.with_timezone(&shanghai()).date_naive();
        let final_month = start_date
            .with_day(1)
            .and_then(|first| first.checked_add_months(chrono::Months::new(months)))
            .expect("a date");
        let nominal = (1..=start_date.day())
            .rev()
            .find_map(|day| final_month.with_day(day))
            .expect("every month has a first day");
        prop_assert!(last_day >= nominal);
        for skipped in nominal.iter_days().take_while(|day| *day < last_day) {
            prop_assert_eq!(calendar().is_working_day(skipped), Ok(false), "{}", skipped);
        }
    }

    #[test]
    fn interp_6_working_day_periods_end_on_a_working_day_and_zero_equals_zero_days(
        start in any_covered_instant(),
        n in 0u32..40,
    ) {
        let Some(due) = unless_after_2026(calendar().due(start, Period::WorkingDays(n))) else {
            return Ok(());
        };
        prop_assert_eq!(calendar().is_working_day(last_day_of(due)), Ok(true));
        if n == 0 {
            prop_assert_eq!(Ok(due), calendar().due(start, Period::Days(0)));
        }
    }

    #[test]
    fn interp_9_working_days_late_is_monotonic_in_the_instant(
        due in any_covered_instant(),
        first_after in 0i64..(40 * 86_400),
        further in 0i64..(40 * 86_400),
    ) {
        let earlier = due + TimeDelta::seconds(first_after - 86_400);
        let later = earlier + TimeDelta::seconds(further);
        let (Some(a), Some(b)) = (
            unless_after_2026(calendar().working_days_late(due, earlier)),
            unless_after_2026(calendar().working_days_late(due, later)),
        ) else {
            return Ok(());
        };
        prop_assert!(a <= b, "{a} > {b}");
        let days_a = calendar().calendar_days_late(due, earlier).expect("no data needed");
        let days_b = calendar().calendar_days_late(due, later).expect("no data needed");
        prop_assert!(a <= days_a && b <= days_b && days_a <= days_b);
    }

    #[test]
    fn interp_9_escalation_instants_are_where_lateness_reaches_n(
        due in any_covered_instant(),
        n in 1u32..15,
    ) {
        let escalation = unless_after_2026(calendar().instant_working_days_late(due, n));
        let Some(escalation) = escalation else {
            return Ok(());
        };
        prop_assert_eq!(escalation.offset(), &shanghai());
        prop_assert!(escalation >= due);
        let just_before = escalation - TimeDelta::nanoseconds(1);
        prop_assert_eq!(calendar().working_days_late(due, just_before), Ok(n - 1));
        let just_after = escalation + TimeDelta::nanoseconds(1);
        prop_assert_eq!(calendar().working_days_late(due, just_after), Ok(n));
        if escalation > due {
            prop_assert_eq!(calendar().working_days_late(due, escalation), Ok(n));
        }
    }

    #[test]
    fn interp_4_every_due_instant_is_written_with_plus_eight(
        start in any_covered_instant(),
        n in 0u32..10,
    ) {
        let periods = [
            Period::Hours(n),
            Period::Days(n),
            Period::WorkingDays(n),
            Period::Months(n),
        ];
        for period in periods {
            if let Some(due) = unless_after_2026(calendar().due(start, period)) {
                prop_assert_eq!(due.offset(), &shanghai());
                prop_assert!(due > start || n == 0 && period == Period::Hours(0), "{}", due);
            }
        }
    }
}

/// An instant as a JSON string, read through `deserialize_instant`.
fn read_instant(text: &str) -> Result<DateTime<FixedOffset>, String> {
    #[derive(serde::Deserialize)]
    struct Holder(#[serde(deserialize_with = "tousu_domain::calendar::deserialize_instant")] DateTime<FixedOffset>);
    serde_json::from_str::<Holder>(&serde_json::to_string(text).expect("a string"))
        .map(|h| h.0)
        .map_err(|e| e.to_string())
}

#[test]
fn instants_are_read_in_every_form_chrono_reads_and_refused_where_it_refuses() {
    for text in [
        "2026-10-01T09:00:00+08:00",
        "2026-10-01T01:00:00Z",
        "2026-10-01T09:00:00.250+08:00",
        "2026-10-01 09:00:00+08:00",
        "2026-10-01T09:00:00-05:30",
        "2024-02-29T23:59:59+08:00",
    ] {
        let chrono: DateTime<FixedOffset> = text.parse().expect("chrono reads it");
        let read = read_instant(text).unwrap_or_else(|error| panic!("{text}: {error}"));
        assert_eq!((read, read.offset()), (chrono, chrono.offset()), "{text}");
    }
    for text in ["2025-02-29T09:00:00+08:00", "2026-10-01T24:00:00+08:00", "2026-13-01T09:00:00+08:00", "tomorrow"] {
        assert!(text.parse::<DateTime<FixedOffset>>().is_err(), "chrono refuses {text}");
        assert!(read_instant(text).is_err(), "{text} is refused");
    }
}

proptest! {
    /// The fast reading of the written form gives exactly what chrono gives, offset included,
    /// for fields in and just out of their ranges, and refuses what chrono refuses.
    #[test]
    fn instants_in_the_written_form_read_as_chrono_reads_them(
        date in (0u32..10_000, 0u32..=13, 0u32..=32),
        time in (0u32..=25, 0u32..=61, 0u32..=61),
        offset in (prop_oneof![Just('+'), Just('-')], 0u32..=25, 0u32..=61),
    ) {
        let ((year, month, day), (hour, minute, second), (sign, offset_hours, offset_minutes)) = (date, time, offset);
        let text = format!(
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{sign}{offset_hours:02}:{offset_minutes:02}"
        );
        let chrono = text.parse::<DateTime<FixedOffset>>();
        match (read_instant(&text), chrono) {
            (Ok(read), Ok(chrono)) => prop_assert_eq!(
                (read, read.offset().local_minus_utc()),
                (chrono, chrono.offset().local_minus_utc())
            ),
            (Err(_), Err(_)) => {}
            (read, chrono) => prop_assert!(false, "{}: read {:?}, chrono {:?}", text, read, chrono),
        }
    }

    /// Instants written by the domain (chrono's own form) read back unchanged.
    #[test]
    fn written_instants_read_back(seconds in 1_600_000_000i64..2_000_000_000, offset_minutes in -720i32..=840) {
        let offset = FixedOffset::east_opt(offset_minutes * 60).expect("an offset");
        let instant = DateTime::from_timestamp(seconds, 0).expect("an instant").with_timezone(&offset);
        let written = serde_json::to_value(instant).expect("written");
        let read = read_instant(written.as_str().expect("a string")).expect("read back");
        prop_assert_eq!((read, read.offset().local_minus_utc()), (instant, offset.local_minus_utc()));
    }
}
