//! The provisional calendar of interpretation 21: the rest days of a year whose State Council
//! notice is not loaded, computed from the statutory holidays of the 《全国年节及纪念日放假办法》
//! as in force since 2025-01-01.
//!
//! The 办法 fixes 13 days a year: 元旦 (1 January), 春节 (除夕 and 正月初一 to 初三), 清明 (the
//! day of the 清明 solar term), 劳动节 (1 and 2 May), 端午 (五月初五), 中秋 (八月十五) and 国庆
//! (1 to 3 October). Its article 6 makes up a statutory day that falls on a Saturday or Sunday
//! on a working day; which one is the annual notice's choice, so provisionally it is the first
//! Monday to Friday after the statutory day that is neither a statutory day nor already a
//! make-up day, the statutory days taken in date order. Weekends are rest days, and there is
//! no adjusted working day (调休上班): those only the annual notice creates.
//!
//! Two festivals on the same date (中秋 on 1 October, as in 2031) are one rest day: the 办法
//! adds nothing for a coincidence, and interpretation 21 makes up only weekend days.
//!
//! The lunar dates and the solar term come from [`FESTIVAL_DATES`], a table for 2025–2100
//! generated from the `tyme4rs` calendar library and checked against it, row by row, by the
//! domain's tests (a development dependency only: the table is what the service runs on, so a
//! provisional year never changes with a library's version).

use chrono::{Datelike, NaiveDate, Weekday};

/// The first year the provisional calendar covers: the 办法 as amended took effect on
/// 2025-01-01, and earlier years had other statutory days.
pub const FIRST_PROVISIONAL_YEAR: i32 = 2025;

/// The last year the provisional calendar covers: the last row of [`FESTIVAL_DATES`].
pub const LAST_PROVISIONAL_YEAR: i32 = 2100;

/// A month and day.
pub type MonthDay = (u32, u32);

/// One row of [`FESTIVAL_DATES`]: the year, then the month and day of 正月初一, 清明, 五月初五
/// and 八月十五.
pub type FestivalDates = (i32, MonthDay, MonthDay, MonthDay, MonthDay);

/// The dates of the lunar festivals and of the 清明 solar term, one row per year from
/// [`FIRST_PROVISIONAL_YEAR`] to [`LAST_PROVISIONAL_YEAR`], as (month, day) in the Gregorian
/// calendar (Asia/Shanghai): the year, 正月初一 (春节; 除夕 is the day before), the day of
/// 清明, 五月初五 (端午) and 八月十五 (中秋).
#[rustfmt::skip]
pub const FESTIVAL_DATES: [FestivalDates; 76] = [
    (2025, (1, 29), (4, 4), (5, 31), (10, 6)),
    (2026, (2, 17), (4, 5), (6, 19), (9, 25)),
    (2027, (2, 6), (4, 5), (6, 9), (9, 15)),
    (2028, (1, 26), (4, 4), (5, 28), (10, 3)),
    (2029, (2, 13), (4, 4), (6, 16), (9, 22)),
    (2030, (2, 3), (4, 5), (6, 5), (9, 12)),
    (2031, (1, 23), (4, 5), (6, 24), (10, 1)),
    (2032, (2, 11), (4, 4), (6, 12), (9, 19)),
    (2033, (1, 31), (4, 4), (6, 1), (9, 8)),
    (2034, (2, 19), (4, 5), (6, 20), (9, 27)),
    (2035, (2, 8), (4, 5), (6, 10), (9, 16)),
    (2036, (1, 28), (4, 4), (5, 30), (10, 4)),
    (2037, (2, 15), (4, 4), (6, 18), (9, 24)),
    (2038, (2, 4), (4, 5), (6, 7), (9, 13)),
    (2039, (1, 24), (4, 5), (5, 27), (10, 2)),
    (2040, (2, 12), (4, 4), (6, 14), (9, 20)),
    (2041, (2, 1), (4, 4), (6, 3), (9, 10)),
    (2042, (1, 22), (4, 4), (6, 22), (9, 28)),
    (2043, (2, 10), (4, 5), (6, 11), (9, 17)),
    (2044, (1, 30), (4, 4), (5, 31), (10, 5)),
    (2045, (2, 17), (4, 4), (6, 19), (9, 25)),
    (2046, (2, 6), (4, 4), (6, 8), (9, 15)),
    (2047, (1, 26), (4, 5), (5, 29), (10, 4)),
    (2048, (2, 14), (4, 4), (6, 15), (9, 22)),
    (2049, (2, 2), (4, 4), (6, 4), (9, 11)),
    (2050, (1, 23), (4, 4), (6, 23), (9, 30)),
    (2051, (2, 11), (4, 5), (6, 13), (9, 19)),
    (2052, (2, 1), (4, 4), (6, 1), (9, 7)),
    (2053, (2, 19), (4, 4), (6, 20), (9, 26)),
    (2054, (2, 8), (4, 4), (6, 10), (9, 16)),
    (2055, (1, 28), (4, 5), (5, 30), (10, 5)),
    (2056, (2, 15), (4, 4), (6, 17), (9, 24)),
    (2057, (2, 4), (4, 4), (6, 6), (9, 13)),
    (2058, (1, 24), (4, 4), (6, 25), (10, 2)),
    (2059, (2, 12), (4, 5), (6, 14), (9, 21)),
    (2060, (2, 2), (4, 4), (6, 3), (9, 9)),
    (2061, (1, 21), (4, 4), (6, 22), (9, 28)),
    (2062, (2, 9), (4, 4), (6, 11), (9, 17)),
    (2063, (1, 29), (4, 5), (6, 1), (10, 6)),
    (2064, (2, 17), (4, 4), (6, 19), (9, 25)),
    (2065, (2, 5), (4, 4), (6, 8), (9, 15)),
    (2066, (1, 26), (4, 4), (5, 28), (10, 3)),
    (2067, (2, 14), (4, 5), (6, 16), (9, 23)),
    (2068, (2, 3), (4, 4), (6, 4), (9, 11)),
    (2069, (1, 23), (4, 4), (6, 23), (9, 29)),
    (2070, (2, 11), (4, 4), (6, 13), (9, 19)),
    (2071, (1, 31), (4, 5), (6, 2), (9, 8)),
    (2072, (2, 19), (4, 4), (6, 20), (9, 26)),
    (2073, (2, 7), (4, 4), (6, 10), (9, 16)),
    (2074, (1, 27), (4, 4), (5, 30), (10, 5)),
    (2075, (2, 15), (4, 4), (6, 17), (9, 24)),
    (2076, (2, 5), (4, 4), (6, 6), (9, 12)),
    (2077, (1, 24), (4, 4), (6, 24), (10, 1)),
    (2078, (2, 12), (4, 4), (6, 14), (9, 20)),
    (2079, (2, 2), (4, 4), (6, 4), (9, 10)),
    (2080, (1, 22), (4, 4), (6, 22), (9, 28)),
    (2081, (2, 9), (4, 4), (6, 11), (9, 17)),
    (2082, (1, 29), (4, 4), (6, 1), (10, 6)),
    (2083, (2, 17), (4, 4), (6, 19), (9, 26)),
    (2084, (2, 6), (4, 4), (6, 7), (9, 14)),
    (2085, (1, 26), (4, 4), (5, 27), (10, 3)),
    (2086, (2, 14), (4, 4), (6, 15), (9, 22)),
    (2087, (2, 3), (4, 4), (6, 5), (9, 11)),
    (2088, (1, 24), (4, 4), (6, 23), (9, 29)),
    (2089, (2, 10), (4, 4), (6, 13), (9, 18)),
    (2090, (1, 30), (4, 4), (6, 2), (9, 8)),
    (2091, (2, 18), (4, 4), (6, 21), (9, 27)),
    (2092, (2, 7), (4, 4), (6, 9), (9, 16)),
    (2093, (1, 27), (4, 4), (5, 29), (10, 5)),
    (2094, (2, 15), (4, 4), (6, 17), (9, 24)),
    (2095, (2, 5), (4, 4), (6, 6), (9, 13)),
    (2096, (1, 25), (4, 4), (6, 24), (9, 30)),
    (2097, (2, 12), (4, 4), (6, 14), (9, 20)),
    (2098, (2, 1), (4, 4), (6, 4), (9, 9)),
    (2099, (1, 21), (4, 4), (6, 23), (9, 29)),
    (2100, (2, 9), (4, 5), (6, 12), (9, 18)),
];

/// One rest day of a provisional year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProvisionalRestDay {
    /// The date.
    pub date: NaiveDate,
    /// The festival, as the 办法 names it: 元旦, 春节, 清明节, 劳动节, 端午节, 中秋节 or 国庆节
    /// (the first in that order when two fall on the same date).
    pub festival: &'static str,
    /// Whether it is the make-up rest day (补休) of a statutory day on a weekend, rather than
    /// the statutory day itself.
    pub make_up: bool,
}

/// The statutory days of a year under the 办法 as in force since 2025, in date order, each
/// with its festival; `None` outside [`FIRST_PROVISIONAL_YEAR`]..=[`LAST_PROVISIONAL_YEAR`].
pub fn statutory_days(year: i32) -> Option<Vec<(NaiveDate, &'static str)>> {
    let index = usize::try_from(year.checked_sub(FIRST_PROVISIONAL_YEAR)?).ok()?;
    let &(row_year, spring, qingming, dragon_boat, mid_autumn) = FESTIVAL_DATES.get(index)?;
    debug_assert_eq!(row_year, year, "FESTIVAL_DATES is one row per year, in order");
    let day = |(month, day): (u32, u32)| NaiveDate::from_ymd_opt(year, month, day);
    let spring_festival = day(spring)?;
    let mut days = vec![
        (day((1, 1))?, "元旦"),
        (spring_festival.pred_opt()?, "春节"),
        (spring_festival, "春节"),
        (spring_festival.succ_opt()?, "春节"),
        (spring_festival.succ_opt()?.succ_opt()?, "春节"),
        (day(qingming)?, "清明节"),
        (day((5, 1))?, "劳动节"),
        (day((5, 2))?, "劳动节"),
        (day(dragon_boat)?, "端午节"),
        (day(mid_autumn)?, "中秋节"),
        (day((10, 1))?, "国庆节"),
        (day((10, 2))?, "国庆节"),
        (day((10, 3))?, "国庆节"),
    ];
    // A stable sort keeps the festival listed first above when two share a date; the second
    // is then dropped, so the day counts once.
    days.sort_by_key(|(date, _)| *date);
    days.dedup_by_key(|(date, _)| *date);
    Some(days)
}

/// Every rest day of a provisional year other than plain weekends: the statutory days and the
/// make-up days of article 6 (interpretation 21), in date order; `None` outside the covered
/// years.
pub fn rest_days(year: i32) -> Option<Vec<ProvisionalRestDay>> {
    let statutory = statutory_days(year)?;
    let is_statutory = |date: NaiveDate| statutory.iter().any(|(day, _)| *day == date);
    let mut days: Vec<ProvisionalRestDay> =
        statutory.iter().map(|&(date, festival)| ProvisionalRestDay { date, festival, make_up: false }).collect();
    for &(date, festival) in &statutory {
        if !is_weekend(date.weekday()) {
            continue;
        }
        let mut candidate = date.succ_opt()?;
        while is_weekend(candidate.weekday())
            || is_statutory(candidate)
            || days.iter().any(|day| day.make_up && day.date == candidate)
        {
            candidate = candidate.succ_opt()?;
        }
        days.push(ProvisionalRestDay { date: candidate, festival, make_up: true });
    }
    days.sort_by_key(|day| day.date);
    Some(days)
}

fn is_weekend(weekday: Weekday) -> bool {
    matches!(weekday, Weekday::Sat | Weekday::Sun)
}
