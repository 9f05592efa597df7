//! Interpretation 21: the provisional calendar for years without the State Council's
//! schedule, its table of festival dates checked against an independent lunar calendar, its
//! agreement with the official schedules of the years under the same rules, and official years
//! arriving for provisional ones.
//!
//! Expected dates were worked out by hand from printed month calendars and the published
//! dates of the festivals, not by the code under test.

use chrono::{Datelike, NaiveDate, Weekday};
use tousu_domain::calendar::provisional::{
    FESTIVAL_DATES, FIRST_PROVISIONAL_YEAR, LAST_PROVISIONAL_YEAR, rest_days, statutory_days,
};
use tousu_domain::calendar::{Calendar, CalendarDayKind, CalendarError, OfficialYear, Period, YearKind};
use tyme4rs::tyme::lunar::LunarDay;
use tyme4rs::tyme::solar::SolarTerm;

mod common;

use common::MADE_UP_2027;

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap_or_else(|error| panic!("{text}: {error}"))
}

fn instant(text: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|error| panic!("{text}: {error}"))
}

#[test]
fn interp_21_the_festival_table_matches_the_tyme4rs_lunar_calendar_for_every_year() {
    assert_eq!(FESTIVAL_DATES.len(), usize::try_from(LAST_PROVISIONAL_YEAR - FIRST_PROVISIONAL_YEAR + 1).unwrap());
    for (index, &(year, spring, qingming, dragon_boat, mid_autumn)) in FESTIVAL_DATES.iter().enumerate() {
        assert_eq!(year, FIRST_PROVISIONAL_YEAR + i32::try_from(index).unwrap(), "one row per year, in order");
        let lunar = |month: isize, day: usize| {
            let solar = LunarDay::from_ymd(year as isize, month, day).get_solar_day();
            (year, (solar.get_month() as u32, solar.get_day() as u32))
        };
        assert_eq!((year, spring), lunar(1, 1), "{year}: 正月初一");
        assert_eq!((year, dragon_boat), lunar(5, 5), "{year}: 五月初五");
        assert_eq!((year, mid_autumn), lunar(8, 15), "{year}: 八月十五");
        let term = SolarTerm::from_name(year as isize, "清明").get_solar_day();
        assert_eq!(term.get_year() as i32, year, "{year}: 清明 of the same year");
        assert_eq!(qingming, (term.get_month() as u32, term.get_day() as u32), "{year}: 清明");
    }
}

/// The dates of 2027 as published in printed calendars (春节 6 February, 清明 5 April, 端午
/// 9 June, 中秋 15 September), independently of any library.
#[test]
fn interp_21_the_statutory_days_of_2027_are_those_of_the_published_lunar_and_solar_term_dates() {
    let expected = [
        ("2027-01-01", "元旦"),
        ("2027-02-05", "春节"), // 除夕
        ("2027-02-06", "春节"), // 正月初一
        ("2027-02-07", "春节"),
        ("2027-02-08", "春节"),
        ("2027-04-05", "清明节"),
        ("2027-05-01", "劳动节"),
        ("2027-05-02", "劳动节"),
        ("2027-06-09", "端午节"),
        ("2027-09-15", "中秋节"),
        ("2027-10-01", "国庆节"),
        ("2027-10-02", "国庆节"),
        ("2027-10-03", "国庆节"),
    ];
    let computed = statutory_days(2027).expect("2027 is covered");
    let expected: Vec<(NaiveDate, &str)> = expected.iter().map(|(day, name)| (date(day), *name)).collect();
    assert_eq!(computed, expected);
}

/// Article 6 as interpretation 21 reads it: a statutory day on a Saturday or Sunday is made
/// up on the first Monday to Friday after it that is neither statutory nor already a make-up
/// day, the statutory days taken in date order.
#[test]
fn interp_21_statutory_days_on_a_weekend_are_made_up_on_the_next_free_weekday() {
    let table: [(i32, &[(&str, &str)]); 4] = [
        // 2027: 初一 and 初二 fall on Sat 6 and Sun 7 February; 初三 is Monday 8, so they are
        // made up on Tuesday 9 and Wednesday 10. 劳动节 is Sat 1 and Sun 2 May; 国庆 2–3
        // October is a weekend.
        (
            2027,
            &[
                ("2027-02-09", "春节"),
                ("2027-02-10", "春节"),
                ("2027-05-03", "劳动节"),
                ("2027-05-04", "劳动节"),
                ("2027-10-04", "国庆节"),
                ("2027-10-05", "国庆节"),
            ],
        ),
        // 2028: 元旦 is a Saturday, 端午 Sunday 28 May; 国庆 starts on Sunday 1 October and
        // runs to Tuesday 3 (also 中秋), so its make-up day is Wednesday 4.
        (2028, &[("2028-01-03", "元旦"), ("2028-05-29", "端午节"), ("2028-10-04", "国庆节")]),
        // 2030: 除夕 Sat 2 February, 初一 Sun 3; 初二 and 初三 are Monday and Tuesday, so the
        // make-up days are Wednesday 6 and Thursday 7, in date order.
        (2030, &[("2030-02-06", "春节"), ("2030-02-07", "春节")]),
        // 2031: 初三 is Saturday 25 January and 清明 Saturday 5 April; 中秋 and 国庆 share
        // Wednesday 1 October, and 1–3 October are Wednesday to Friday.
        (2031, &[("2031-01-27", "春节"), ("2031-04-07", "清明节")]),
    ];
    for (year, expected) in table {
        let make_up: Vec<(NaiveDate, &str)> = rest_days(year)
            .expect("covered")
            .into_iter()
            .filter(|day| day.make_up)
            .map(|day| (day.date, day.festival))
            .collect();
        let expected: Vec<(NaiveDate, &str)> = expected.iter().map(|(day, name)| (date(day), *name)).collect();
        assert_eq!(make_up, expected, "{year}");
        for (day, _) in &make_up {
            assert!(!matches!(day.weekday(), Weekday::Sat | Weekday::Sun), "{day} is a weekday");
        }
    }
    // Two festivals on one date are one rest day.
    let days_2031 = statutory_days(2031).expect("covered");
    assert_eq!(days_2031.len(), 12, "13 statutory days less the coincidence: {days_2031:?}");
    assert!(days_2031.contains(&(date("2031-10-01"), "中秋节")), "listed under the first festival");
}

/// For the years already under the 2025 rules, every statutory day the provisional calendar
/// computes is a rest day of the State Council's schedule as shipped.
#[test]
fn interp_21_every_statutory_day_of_2025_and_2026_is_a_rest_day_of_the_official_schedule() {
    let calendar = Calendar::builtin().expect("shipped calendar");
    let table: [(i32, [&str; 13]); 2] = [
        (
            2025,
            [
                "2025-01-01",
                "2025-01-28",
                "2025-01-29",
                "2025-01-30",
                "2025-01-31",
                "2025-04-04",
                "2025-05-01",
                "2025-05-02",
                "2025-05-31",
                "2025-10-06",
                "2025-10-01",
                "2025-10-02",
                "2025-10-03",
            ],
        ),
        (
            2026,
            [
                "2026-01-01",
                "2026-02-16",
                "2026-02-17",
                "2026-02-18",
                "2026-02-19",
                "2026-04-05",
                "2026-05-01",
                "2026-05-02",
                "2026-06-19",
                "2026-09-25",
                "2026-10-01",
                "2026-10-02",
                "2026-10-03",
            ],
        ),
    ];
    for (year, expected) in table {
        assert_eq!(calendar.year_kind(year), Some(YearKind::Official));
        let mut expected: Vec<NaiveDate> = expected.iter().map(|day| date(day)).collect();
        expected.sort();
        let computed: Vec<NaiveDate> = statutory_days(year).expect("covered").into_iter().map(|(day, _)| day).collect();
        assert_eq!(computed, expected, "{year}");
        for day in computed {
            assert_eq!(calendar.is_working_day(day), Ok(false), "{day} is a rest day of the {year} notice");
        }
    }
}

#[test]
fn interp_21_years_without_a_notice_are_provisional_through_2100() {
    let calendar = Calendar::builtin().expect("shipped calendar");
    assert_eq!(calendar.years().collect::<Vec<_>>(), [2024, 2025, 2026]);
    assert_eq!(calendar.last_official_year(), Some(2026));
    for year in [2027, 2030, 2040, 2100] {
        assert_eq!(calendar.year_kind(year), Some(YearKind::Provisional), "{year}");
        assert_eq!(calendar.year_version(year), Some(format!("{year}.provisional").as_str()));
    }
    for year in [2023, 2101] {
        assert_eq!(calendar.year_kind(year), None, "{year}");
    }
    let version = calendar.year_version(2026).expect("official");
    assert!(version.starts_with("2026.official.") && version.len() == "2026.official.".len() + 8, "{version}");
    // `show`: 2027's rest days other than weekends, and no adjusted working day.
    let days = calendar.days_of_year(2027).expect("provisional 2027");
    assert_eq!(days.len(), 13 + 6);
    assert!(days.iter().all(|day| day.kind != CalendarDayKind::AdjustedWorkingDay));
    assert_eq!(days.iter().filter(|day| day.kind == CalendarDayKind::MakeUpRestDay).count(), 6);
    assert!(days.iter().any(|day| day.date == date("2027-02-09") && day.name == "春节"));
}

#[test]
fn interp_21_an_official_year_replaces_the_provisional_one_and_cannot_be_replaced_itself() {
    let provisional = Calendar::builtin().expect("shipped calendar");
    let year = OfficialYear::read(MADE_UP_2027).expect("a valid year file");
    assert_eq!(year.year(), 2027);
    assert!(year.version().starts_with("2027.official."), "{}", year.version());
    let official = provisional.clone().with_official_year(year.clone()).expect("2027 was provisional");
    assert_eq!(official.year_kind(2027), Some(YearKind::Official));
    assert_eq!(official.last_official_year(), Some(2027));
    // Thursday 11 February is a working day provisionally and inside 春节 in the made-up
    // notice, where Saturday 20 February is worked.
    assert_eq!(provisional.is_working_day(date("2027-02-11")), Ok(true));
    assert_eq!(official.is_working_day(date("2027-02-11")), Ok(false));
    assert_eq!(official.is_working_day(date("2027-02-20")), Ok(true));
    // The same schedule again changes nothing, whatever its comments or source say.
    let again = OfficialYear::read(&MADE_UP_2027.replace("made-up test data", "the same days, reworded"))
        .expect("a valid year file");
    assert_eq!(again.version(), year.version());
    assert_eq!(official.clone().with_official_year(again), Ok(official.clone()));
    // Another schedule for an official year is refused.
    let other = OfficialYear::read(&MADE_UP_2027.replace("2027-02-13", "2027-02-12")).expect("a valid year file");
    match official.with_official_year(other.clone()) {
        Err(CalendarError::YearAlreadyOfficial { year: 2027, loaded, offered }) => {
            assert_eq!(loaded, year.version());
            assert_eq!(offered, other.version());
        }
        refused => panic!("expected YearAlreadyOfficial, got {refused:?}"),
    }
}

#[test]
fn interp_21_a_due_instant_computed_before_and_after_the_notice() {
    let provisional = Calendar::builtin().expect("shipped calendar");
    let official = provisional
        .clone()
        .with_official_year(OfficialYear::read(MADE_UP_2027).expect("valid"))
        .expect("2027 was provisional");
    // TRF-2 from Thursday 4 February 2027, 7 working days. Provisionally: Fri 5 is 除夕, 6–10
    // rest (weekend and make-up days), so Thu 11, Fri 12, Mon 15 … Fri 19 → the 7th is 19
    // February. In the made-up notice 5–13 February rest, Sat 20 is worked: 15–19 and 20, 22
    // → the 7th is Monday 22 February.
    let start = instant("2027-02-04T10:00:00+08:00");
    let before = provisional.compute_due(start, Period::WorkingDays(7)).expect("computed");
    assert_eq!(before.due, instant("2027-02-20T00:00:00+08:00"));
    assert!(before.provisional);
    assert_eq!(before.version.as_str(), "2027.provisional");
    let after = official.compute_due(start, Period::WorkingDays(7)).expect("computed");
    assert_eq!(after.due, instant("2027-02-23T00:00:00+08:00"));
    assert!(!after.provisional);
    assert_eq!(after.version.years().collect::<Vec<_>>(), [(2027, YearKind::Official)]);
}

#[test]
fn interp_21_operators_are_warned_from_ninety_days_before_the_last_official_day() {
    let calendar = Calendar::builtin().expect("shipped calendar");
    // 2 October 2026 is 90 days before 31 December.
    assert_eq!(calendar.schedule_warning(date("2026-10-01"), 90), None);
    let warning = calendar.schedule_warning(date("2026-10-02"), 90).expect("warned");
    assert_eq!((warning.last_official_year, warning.days_left), (2026, 90));
    let text = warning.to_string();
    assert!(text.contains("2026") && text.contains("90 days") && text.contains("2027"), "{text}");
    let after = calendar.schedule_warning(date("2027-01-05"), 90).expect("still warned");
    assert_eq!(after.days_left, -5);
    assert!(after.to_string().contains("from 2027 on are provisional"), "{after}");
    let with_2027 =
        calendar.with_official_year(OfficialYear::read(MADE_UP_2027).expect("valid")).expect("2027 was provisional");
    assert_eq!(with_2027.schedule_warning(date("2027-01-05"), 90), None);
}

#[test]
fn interp_21_loading_a_years_notice_is_recorded_once_and_a_different_one_is_refused() {
    use tousu_domain::DomainError;
    use tousu_domain::actor::Role;
    use tousu_domain::holiday_schedule::{ScheduleCommand, ScheduleFact, ScheduleState};

    let load = |text: &str| ScheduleCommand::LoadOfficialYear { text: text.to_owned() };
    let operator = common::actor(tousu_domain::ids::BodyCode::ZJ, Role::Operator);
    let mut schedules = common::Stream::<ScheduleState>::new();
    let events = schedules.given(&operator, "2026-12-10T09:00:00+08:00", load(MADE_UP_2027));
    let [event] = events.as_slice() else { panic!("one event: {events:?}") };
    assert_eq!(event.event_type(), "calendar.official_year_loaded");
    let ScheduleFact::OfficialYearLoaded { year: 2027, version, text, .. } = &event.fact else {
        panic!("unexpected {:?}", event.fact)
    };
    assert!(version.starts_with("2027.official."), "{version}");
    assert_eq!(text, MADE_UP_2027, "the whole file is kept");
    // The same schedule again records nothing; a different one is refused.
    assert_eq!(schedules.when(&operator, "2026-12-11T09:00:00+08:00", load(MADE_UP_2027)), Ok(Vec::new()));
    let other = MADE_UP_2027.replace("2027-02-13", "2027-02-12");
    assert!(matches!(
        schedules.when(&operator, "2026-12-11T09:00:00+08:00", load(&other)),
        Err(DomainError::Schedule { source: CalendarError::YearAlreadyOfficial { year: 2027, .. } })
    ));
    // A shipped year is official already: its own file records nothing, another is refused.
    let shipped_2026 = include_str!("../data/calendar/2026.toml");
    assert_eq!(schedules.when(&operator, "2026-12-11T09:00:00+08:00", load(shipped_2026)), Ok(Vec::new()));
    assert!(matches!(
        schedules.when(&operator, "2026-12-11T09:00:00+08:00", load(&shipped_2026.replace("2026-10-07", "2026-10-08"))),
        Err(DomainError::Schedule { source: CalendarError::YearAlreadyOfficial { year: 2026, .. } })
    ));
    // A file that is not a year file says why, and names the field.
    let refused = schedules.when(&operator, "2026-12-11T09:00:00+08:00", load("year = 2028")).unwrap_err();
    assert!(matches!(refused, DomainError::Schedule { source: CalendarError::Malformed { .. } }), "{refused:?}");
    assert_eq!(refused.field(), Some("text"));
    // Operators load schedules; nobody else does.
    for role in Role::ALL {
        assert_eq!(load(MADE_UP_2027).permitted(role), role == Role::Operator, "{role:?}");
    }
}
