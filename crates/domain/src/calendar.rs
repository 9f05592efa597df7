//! The legal-time calendar: Asia/Shanghai, statutory holidays and adjusted working days per
//! year, and the period arithmetic of the Civil Code (interpretations 4, 5 and 6).
//!
//! # Semantics
//!
//! Every date is a date in Asia/Shanghai, whatever offset an input instant carries, and every
//! instant returned carries the offset `+08:00`.
//!
//! - A **working day** is a Monday to Friday that is not a statutory holiday, or a Saturday or
//!   Sunday that the State Council made an adjusted working day (调休上班). Any other day is a
//!   **rest day**. Whether a date is a working day is answered from the State Council's
//!   schedule where the year's notice is loaded (an **official** year, interpretation 6), and
//!   otherwise from the **provisional** calendar of interpretation 21 (the statutory holidays
//!   of the 《全国年节及纪念日放假办法》 as in force since 2025, with make-up days for those on
//!   a weekend; [`provisional`]), for 2025 to 2100. A date outside both is refused with
//!   [`CalendarError::NoDataForYear`].
//! - A period of **days** (Civil Code art. 201–203, interpretation 5) starts counting on the day
//!   after the start's date; its last day is the start's date plus the days; if that is a rest
//!   day, the last day becomes the first working day after it. The period ends at 24:00 of the
//!   last day, written as 00:00 of the next day.
//! - A period of **months** ends on the same-numbered day of the final month, or on that
//!   month's last day where there is no such day (Jan 31 + 1 month is Feb 28 or 29); then the
//!   same rest-day rule and 24:00.
//! - A period of **working days** ends at 24:00 of the n-th working day strictly after the
//!   start's date. A period of zero working days ends like a period of zero days: at 24:00 of
//!   the start's date if that is a working day, else of the first working day after it.
//! - A period of **hours** ends exactly that many hours after the start; nothing is rolled.
//! - Every period needs data for the start's date and for every date whose working-day status
//!   it looks at. The due instant itself is not looked at: a period whose last day is
//!   2026-12-31 ends at 2027-01-01T00:00:00+08:00 without looking at 2027.
//! - A due instant is **provisional** when a date it looked at lies in a provisional year
//!   ([`Calendar::compute_due`]); it then carries the [`CalendarVersion`] it was computed
//!   with, so that it can be recomputed once the year's notice is loaded.
//! - Lateness (interpretation 9) counts from the **first late day**, the date of the due
//!   instant: for a period ending at 24:00 of its last day that is the day after the last day.
//!
//! # Data files
//!
//! One TOML file per year, from the State Council notice
//! (国务院办公厅关于20xx年部分节假日安排的通知), shipped in `crates/domain/data/calendar/`:
//!
//! ```toml
//! year = 2026
//! source = "国务院办公厅关于2026年部分节假日安排的通知"
//!
//! [[holiday]]            # one block of consecutive days off, weekend days included
//! name = "元旦"
//! from = "2026-01-01"
//! to = "2026-01-03"
//!
//! [[working_day]]        # a Saturday or Sunday worked in exchange (调休上班)
//! date = "2026-01-04"
//! name = "元旦"          # the festival it belongs to
//! ```
//!
//! `year` is 1992 or later (the fixed `+08:00` is exact only from then). Dates are strings
//! written `YYYY-MM-DD` and must lie in the file's `year`; unknown keys are refused. Blocks
//! may not overlap; an adjusted working day must be a Saturday or Sunday and not a holiday.
//! In a year file every name is a statutory festival (元旦, 春节, 清明节, 劳动节, 端午节,
//! 中秋节, 国庆节) or several joined by `、` when one block covers them (2025's
//! 国庆节、中秋节), and each festival has exactly one block.
//!
//! A **local override** has the same format and adds to a year that already has data: a
//! province's extra holiday (any name) or an extra adjusted working day. It may not remove or
//! contradict national data; one override file covers one year.

pub mod provisional;

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;

use chrono::{DateTime, Datelike, Days, FixedOffset, Months, NaiveDate, NaiveTime, TimeDelta, TimeZone, Weekday};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use self::provisional::{FIRST_PROVISIONAL_YEAR, LAST_PROVISIONAL_YEAR};
use crate::limits::Echo;

/// A period as the procedure states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "unit", content = "n", rename_all = "snake_case")]
pub enum Period {
    /// Hours, counted from the instant itself (TRF-1's "immediately", interpretation 7).
    Hours(u32),
    /// Calendar days under Civil Code art. 201–203 (interpretation 5).
    Days(u32),
    /// Working days (interpretation 6).
    WorkingDays(u32),
    /// Calendar months under Civil Code art. 201–203 (interpretation 5).
    Months(u32),
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, unit) = match *self {
            Period::Hours(n) => (n, "hour"),
            Period::Days(n) => (n, "day"),
            Period::WorkingDays(n) => (n, "working day"),
            Period::Months(n) => (n, "month"),
        };
        let plural = if n == 1 { "" } else { "s" };
        write!(f, "{n} {unit}{plural}")
    }
}

/// Deserializes an instant written in RFC 3339, as chrono does, reading the one form tousu
/// writes (`2026-10-01T09:00:00+08:00`: whole seconds, a numeric offset) without chrono's
/// general parser; anything else goes to chrono. Events carry several instants each, and
/// parsing them was a tenth of decoding the log. For the fields the read models decode most
/// (`at`, `due`, `received_at`): `#[serde(deserialize_with = "…")]`.
pub fn deserialize_instant<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<DateTime<FixedOffset>, D::Error> {
    struct Instant;
    impl serde::de::Visitor<'_> for Instant {
        type Value = DateTime<FixedOffset>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an RFC 3339 instant")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            match parse_written_instant(text) {
                Some(instant) => Ok(instant),
                None => text.parse().map_err(E::custom),
            }
        }
    }
    deserializer.deserialize_str(Instant)
}

/// `YYYY-MM-DDTHH:MM:SS±HH:MM`, exactly; `None` for any other text, which chrono then reads.
fn parse_written_instant(text: &str) -> Option<DateTime<FixedOffset>> {
    let bytes: &[u8; 25] = text.as_bytes().try_into().ok()?;
    let number = |from: usize, to: usize| -> Option<u32> {
        bytes[from..to]
            .iter()
            .try_fold(0u32, |value, byte| byte.is_ascii_digit().then(|| value * 10 + u32::from(byte - b'0')))
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (22, b':')];
    if separators.iter().any(|(at, byte)| bytes[*at] != *byte) {
        return None;
    }
    let sign = match bytes[19] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(number(0, 4)?).ok()?, number(5, 7)?, number(8, 10)?)?;
    let time = NaiveTime::from_hms_opt(number(11, 13)?, number(14, 16)?, number(17, 19)?)?;
    let (offset_hours, offset_minutes) = (number(20, 22)?, number(23, 25)?);
    if offset_minutes > 59 {
        return None;
    }
    let offset = FixedOffset::east_opt(sign * i32::try_from(offset_hours * 3600 + offset_minutes * 60).ok()?)?;
    offset.from_local_datetime(&date.and_time(time)).single()
}

/// The offset of Asia/Shanghai (interpretation 4).
pub fn shanghai() -> FixedOffset {
    // Asia/Shanghai has been UTC+08:00 all year since China last observed daylight saving
    // time in 1991, and every date this calendar answers for lies in a year with holiday data,
    // which loading refuses before 1992 (the shipped data starts in 2024). A fixed offset is
    // therefore exact, keeps the crate free of a time-zone database, and makes every returned
    // instant print as `+08:00`.
    SHANGHAI
}

/// The first year in which Asia/Shanghai kept UTC+08:00 all year (summer time ran 1986–1991).
const FIRST_YEAR_WITHOUT_SUMMER_TIME: i32 = 1992;

/// UTC+08:00. `east_opt` only refuses offsets of a day or more, so the `None` arm is never
/// taken; being a constant, a mistake here would fail the build, not a run.
const SHANGHAI: FixedOffset = match FixedOffset::east_opt(8 * 60 * 60) {
    Some(offset) => offset,
    None => panic!("UTC+08:00 is a valid offset"),
};

/// The statutory festivals a national year file may name (全国年节及纪念日放假办法).
const FESTIVALS: [&str; 7] = ["元旦", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节"];

/// Separates the festivals of a block that covers several, as in 国庆节、中秋节.
const FESTIVAL_SEPARATOR: char = '、';

/// The year files shipped with tousu, in year order.
const BUILTIN_YEAR_FILES: [&str; 3] = [
    include_str!("../data/calendar/2024.toml"),
    include_str!("../data/calendar/2025.toml"),
    include_str!("../data/calendar/2026.toml"),
];

/// Holiday and working-day data: the official years loaded, and the provisional calendar for
/// every other year from 2025 to 2100 (interpretation 21).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    /// Years with the State Council's schedule (and any local overrides).
    years: BTreeMap<i32, YearData>,
    /// Every year of the provisional calendar that has no official data.
    provisional: BTreeMap<i32, YearData>,
}

/// Where a year's rest days come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum YearKind {
    /// The State Council's annual notice, loaded from a year file (interpretation 6).
    Official,
    /// Computed from the statutory holidays of the 办法 (interpretation 21).
    Provisional,
}

impl YearKind {
    /// The kind's name in versions, the API and the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            YearKind::Official => "official",
            YearKind::Provisional => "provisional",
        }
    }
}

/// The data of one year: national data and any local overrides, merged; or the provisional
/// calendar's days.
#[derive(Debug, Clone, PartialEq, Eq)]
struct YearData {
    /// Official or provisional.
    kind: YearKind,
    /// The notices the data comes from: the State Council's first, then each override's; for
    /// a provisional year, the 办法.
    sources: Vec<String>,
    /// Every holiday of the year, with the entry that made it one.
    holidays: BTreeMap<NaiveDate, Origin>,
    /// Every adjusted working day of the year, with the entry that made it one.
    working_days: BTreeMap<NaiveDate, Origin>,
    /// The year's version, as [`CalendarVersion`] writes it: `2026.official.3fa9c2d1` (the
    /// first 8 hex digits of a SHA-256 over its rest and working days) or `2027.provisional`.
    version: String,
}

/// The name of the provisional calendar's source.
const PROVISIONAL_SOURCE: &str = "全国年节及纪念日放假办法（2025年1月1日起施行）：暂定";

/// The versions of the calendar years one computation looked at, in year order, joined by
/// `+`: `2026.official.3fa9c2d1+2027.provisional`. Stored with every provisional deadline, and
/// with every recomputation, so that a reader of the log knows which data gave a due instant.
///
/// Kept as the text it was written as: the log keeps it forever, and reading it back must not
/// depend on this version's parser, so [`CalendarVersion::years`] skips what it cannot read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CalendarVersion(String);

impl CalendarVersion {
    /// The version as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A version from its text, as stored.
    pub fn from_text(text: impl Into<String>) -> CalendarVersion {
        CalendarVersion(text.into())
    }

    /// Each year the computation looked at, with its kind, in the order written.
    pub fn years(&self) -> impl Iterator<Item = (i32, YearKind)> + '_ {
        self.0.split('+').filter_map(|part| {
            let mut pieces = part.split('.');
            let year = pieces.next()?.parse().ok()?;
            let kind = match pieces.next()? {
                "official" => YearKind::Official,
                "provisional" => YearKind::Provisional,
                _ => return None,
            };
            Some((year, kind))
        })
    }

    /// The provisional years among them.
    pub fn provisional_years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years().filter(|(_, kind)| *kind == YearKind::Provisional).map(|(year, _)| year)
    }
}

impl fmt::Display for CalendarVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A due instant with what it rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputedDue {
    /// The due instant.
    pub due: DateTime<FixedOffset>,
    /// Whether a date it looked at lies in a provisional year (interpretation 21).
    pub provisional: bool,
    /// The versions of every year it looked at; empty for a period of hours, which looks at
    /// none.
    pub version: CalendarVersion,
}

/// The years one computation looked at, first to last (a computation walks forward through
/// consecutive dates, so they are a range).
#[derive(Debug, Clone, Copy, Default)]
struct Consulted {
    span: Option<(i32, i32)>,
}

impl Consulted {
    fn note(&mut self, year: i32) {
        self.span = Some(match self.span {
            None => (year, year),
            Some((first, last)) => (first.min(year), last.max(year)),
        });
    }
}

/// One day of a year other than a plain Monday to Friday worked or a plain weekend, for
/// `tousu calendar show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarDay {
    /// The date.
    pub date: NaiveDate,
    /// What kind of day it is.
    pub kind: CalendarDayKind,
    /// The festival (or, for a local override, the name) it belongs to.
    pub name: String,
}

/// What a [`CalendarDay`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarDayKind {
    /// A rest day of a holiday block (放假), weekend days included.
    Holiday,
    /// A provisional make-up rest day (补休) for a statutory day on a weekend.
    MakeUpRestDay,
    /// A Saturday or Sunday worked in exchange (调休上班).
    AdjustedWorkingDay,
}

impl CalendarDayKind {
    /// The kind in Chinese, as the schedule names it.
    pub fn label_zh(self) -> &'static str {
        match self {
            CalendarDayKind::Holiday => "放假",
            CalendarDayKind::MakeUpRestDay => "补休",
            CalendarDayKind::AdjustedWorkingDay => "调休上班",
        }
    }
}

/// What the calendar knows of one year, for status reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearStatus {
    /// The year.
    pub year: i32,
    /// Official or provisional.
    pub kind: YearKind,
    /// The year's version, e.g. `2026.official.3fa9c2d1`.
    pub version: String,
    /// The notices its data comes from.
    pub sources: Vec<String>,
}

/// The warning that the last official year is ending or has ended (interpretation 21): from
/// the policy's number of days before its last day, deadlines will soon be, or already are,
/// computed provisionally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleWarning {
    /// The last year with the State Council's schedule loaded.
    pub last_official_year: i32,
    /// Days from the date asked about to that year's 31 December; negative once it has passed.
    pub days_left: i64,
}

impl fmt::Display for ScheduleWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let next = self.last_official_year + 1;
        if self.days_left >= 0 {
            write!(
                f,
                "the last year with the State Council's holiday schedule is {}, which ends in {} days: deadlines \
                 reaching {next} are provisional until its schedule is loaded (tousu calendar check FILE, then \
                 --calendar-year FILE or the Admin.LoadCalendarYear call)",
                self.last_official_year, self.days_left
            )
        } else {
            write!(
                f,
                "no State Council holiday schedule is loaded after {}: deadlines from {next} on are provisional \
                 until it is (tousu calendar check FILE, then --calendar-year FILE or the Admin.LoadCalendarYear \
                 call)",
                self.last_official_year
            )
        }
    }
}

/// One national year file, read and validated, ready to be added to a calendar with
/// [`Calendar::with_official_year`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficialYear {
    year: i32,
    data: YearData,
}

impl OfficialYear {
    /// Reads and validates the text of a national year file (the format is in the module
    /// documentation); errors name it as year file #1.
    pub fn read(text: &str) -> Result<OfficialYear, CalendarError> {
        let checked = CheckedFile::read(CalendarFile::Year { position: 1 }, text)?;
        checked.check_festivals()?;
        let year = checked.year;
        let mut data = YearData::empty(YearKind::Official);
        checked.merge_into(&mut data)?;
        data.seal(year);
        Ok(OfficialYear { year, data })
    }

    /// The year.
    pub fn year(&self) -> i32 {
        self.year
    }

    /// Its version, e.g. `2027.official.1c4e09aa`.
    pub fn version(&self) -> &str {
        &self.data.version
    }

    /// The notice it comes from.
    pub fn source(&self) -> &str {
        self.data.sources.first().map_or("", String::as_str)
    }
}

/// Where a day of [`YearData`] comes from, so that a conflict can name both entries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    file: CalendarFile,
    entry: CalendarEntry,
}

/// Which calendar file an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CalendarFile {
    /// A year file, by its position (from 1) in the list given to [`Calendar::from_year_files`].
    Year {
        /// The position, counting from 1.
        position: usize,
    },
    /// The local override file given to [`Calendar::with_override`].
    Override,
    /// The provisional calendar of interpretation 21, computed rather than read.
    Provisional,
}

impl fmt::Display for CalendarFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CalendarFile::Year { position } => write!(f, "year file #{position}"),
            CalendarFile::Override => f.write_str("override file"),
            CalendarFile::Provisional => f.write_str("provisional calendar"),
        }
    }
}

/// The two lists of entries a calendar file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A `[[holiday]]` block.
    Holiday,
    /// A `[[working_day]]` entry.
    WorkingDay,
}

/// One entry of a calendar file, as error messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarEntry {
    /// Which list the entry is in.
    pub kind: EntryKind,
    /// Its position (from 1) among the entries of its kind in the file.
    pub position: usize,
    /// Its `name`, as written.
    pub name: String,
}

impl fmt::Display for CalendarEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = match self.kind {
            EntryKind::Holiday => "holiday",
            EntryKind::WorkingDay => "working_day",
        };
        write!(f, "[[{table}]] #{} {}", self.position, Echo(&self.name))
    }
}

/// What is wrong with one entry of a calendar file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryProblem {
    /// The name is empty or blank.
    #[error("the name is empty")]
    EmptyName,
    /// A year file names something other than a statutory festival.
    #[error(
        "{} is not a statutory festival (元旦, 春节, 清明节, 劳动节, 端午节, 中秋节, \
         国庆节, or several joined by 、)",
        Echo(name)
    )]
    UnknownFestival {
        /// The offending part of the name.
        name: String,
    },
    /// A year file gives a festival a second block.
    #[error("{festival} already has a block, {other}")]
    FestivalTwice {
        /// The festival.
        festival: String,
        /// The entry that gave it its first block.
        other: CalendarEntry,
    },
    /// A date is not written `YYYY-MM-DD` or does not exist.
    #[error("{field} = {} is not a date written YYYY-MM-DD", Echo(value))]
    BadDate {
        /// The key: `from`, `to` or `date`.
        field: &'static str,
        /// The value as written.
        value: String,
    },
    /// A date lies outside the file's year.
    #[error("{field} = {date} is outside the year of the file")]
    OutsideYear {
        /// The key: `from`, `to` or `date`.
        field: &'static str,
        /// The date.
        date: NaiveDate,
    },
    /// A block ends before it starts.
    #[error("from = {from} is after to = {to}")]
    FromAfterTo {
        /// The first day as written.
        from: NaiveDate,
        /// The last day as written.
        to: NaiveDate,
    },
    /// A date is already a holiday by another entry (overlapping blocks, or a working day that
    /// is also a holiday).
    #[error("{date} is already a holiday by {other} of the {other_file}")]
    AlreadyHoliday {
        /// The date in conflict.
        date: NaiveDate,
        /// The file of the other entry.
        other_file: CalendarFile,
        /// The other entry.
        other: CalendarEntry,
    },
    /// A date is already an adjusted working day by another entry.
    #[error("{date} is already an adjusted working day by {other} of the {other_file}")]
    AlreadyWorkingDay {
        /// The date in conflict.
        date: NaiveDate,
        /// The file of the other entry.
        other_file: CalendarFile,
        /// The other entry.
        other: CalendarEntry,
    },
    /// An adjusted working day falls on a Monday to Friday, which is a working day anyway.
    #[error(
        "{date} is a {}; an adjusted working day must be a Saturday or Sunday",
        date.format("%A")
    )]
    NotWeekend {
        /// The date.
        date: NaiveDate,
        /// Its day of the week.
        weekday: Weekday,
    },
}

/// Why a calendar could not be loaded or a computation could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CalendarError {
    /// The computation touched a date in a year the calendar has no data for: no official
    /// schedule, and outside the provisional calendar's years.
    #[error(
        "no calendar data for year {year}: no State Council schedule is loaded for it, and the provisional \
         calendar covers 2025–2100 only"
    )]
    NoDataForYear {
        /// The year without data.
        year: i32,
    },
    /// The end of a period lies beyond the dates that can be represented.
    #[error("{period} from {start} ends beyond the dates that can be represented")]
    OutOfRange {
        /// The start of the period.
        start: DateTime<FixedOffset>,
        /// The period.
        period: Period,
    },
    /// The calendar was given no year file at all.
    #[error("no calendar year files were given")]
    NoYearFiles,
    /// A file is not TOML of the calendar format (syntax, a missing or unknown key, a wrong type).
    #[error("{file} is not a valid calendar file: {reason}")]
    Malformed {
        /// The file.
        file: CalendarFile,
        /// What the TOML reader found, with the line.
        reason: String,
    },
    /// A file's `year` is before 1992 (when Shanghai's offset was not always +08:00) or after
    /// 9999.
    #[error(
        "{file}: year = {year} is outside 1992–9999 (China kept summer time until 1991, so \
         +08:00 would be wrong)"
    )]
    YearOutOfRange {
        /// The file.
        file: CalendarFile,
        /// The year as written.
        year: i32,
    },
    /// A file's `source` is empty or blank.
    #[error("{file} for {year}: the source is empty; name the notice the data comes from")]
    EmptySource {
        /// The file.
        file: CalendarFile,
        /// Its year.
        year: i32,
    },
    /// One entry of a file is wrong.
    #[error("{file} for {year}, {entry}: {problem}")]
    InvalidEntry {
        /// The file.
        file: CalendarFile,
        /// Its year.
        year: i32,
        /// The entry.
        entry: CalendarEntry,
        /// What is wrong with it (boxed to keep every `Result` of the calendar small).
        problem: Box<EntryProblem>,
    },
    /// A year file has no block for one of the statutory festivals.
    #[error("{file} for {year}: no [[holiday]] block for {festival}")]
    MissingFestival {
        /// The file.
        file: CalendarFile,
        /// Its year.
        year: i32,
        /// The festival without a block.
        festival: &'static str,
    },
    /// Two year files are for the same year.
    #[error("year {year} is given twice, by year file #{first} and year file #{second}")]
    DuplicateYear {
        /// The year.
        year: i32,
        /// The position of the first file for it.
        first: usize,
        /// The position of the second file for it.
        second: usize,
    },
    /// An override is for a year that has no national data to add to.
    #[error("the override file is for {year}, but there is no year file for {year}")]
    OverrideWithoutData {
        /// The override's year.
        year: i32,
    },
    /// A national year file is for a year that already has official data with other days.
    #[error(
        "year {year} already has the State Council's schedule (version {loaded}); a different one (version \
         {offered}) is not loaded over it"
    )]
    YearAlreadyOfficial {
        /// The year.
        year: i32,
        /// The version loaded.
        loaded: String,
        /// The version offered.
        offered: String,
    },
}

impl CalendarError {
    fn invalid_entry(file: CalendarFile, year: i32, entry: &CalendarEntry, problem: EntryProblem) -> CalendarError {
        CalendarError::InvalidEntry { file, year, entry: entry.clone(), problem: Box::new(problem) }
    }
}

/// A calendar file as TOML reads it, before any check.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    year: i32,
    source: String,
    #[serde(default)]
    holiday: Vec<RawHoliday>,
    #[serde(default)]
    working_day: Vec<RawWorkingDay>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHoliday {
    name: String,
    from: String,
    to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkingDay {
    date: String,
    name: String,
}

/// A calendar file whose dates are read and lie in its year, and whose names are not blank.
struct CheckedFile {
    file: CalendarFile,
    year: i32,
    source: String,
    /// Each block: its entry, first day and last day (first ≤ last).
    holidays: Vec<(CalendarEntry, NaiveDate, NaiveDate)>,
    working_days: Vec<(CalendarEntry, NaiveDate)>,
}

impl CheckedFile {
    /// Reads a year file or an override: the TOML, the year, the source, and each entry's
    /// name and dates on their own. Conflicts between entries are found by `merge_into`.
    fn read(file: CalendarFile, text: &str) -> Result<CheckedFile, CalendarError> {
        let raw: RawFile = toml::from_str(text)
            .map_err(|error| CalendarError::Malformed { file, reason: describe_toml_error(text, &error) })?;
        let year = raw.year;
        // The lower bound is what makes the fixed offset of `shanghai()` exact.
        if !(FIRST_YEAR_WITHOUT_SUMMER_TIME..=9999).contains(&year) {
            return Err(CalendarError::YearOutOfRange { file, year });
        }
        if raw.source.trim().is_empty() {
            return Err(CalendarError::EmptySource { file, year });
        }
        let invalid = |entry: &CalendarEntry, problem| CalendarError::invalid_entry(file, year, entry, problem);
        let date_in_year = |entry: &CalendarEntry, field, value: &str| {
            let date = parse_date(value)
                .ok_or_else(|| invalid(entry, EntryProblem::BadDate { field, value: value.to_owned() }))?;
            if date.year() == year { Ok(date) } else { Err(invalid(entry, EntryProblem::OutsideYear { field, date })) }
        };

        let mut holidays = Vec::with_capacity(raw.holiday.len());
        for (index, holiday) in raw.holiday.into_iter().enumerate() {
            let entry = CalendarEntry { kind: EntryKind::Holiday, position: index + 1, name: holiday.name };
            if entry.name.trim().is_empty() {
                return Err(invalid(&entry, EntryProblem::EmptyName));
            }
            let from = date_in_year(&entry, "from", &holiday.from)?;
            let to = date_in_year(&entry, "to", &holiday.to)?;
            if from > to {
                return Err(invalid(&entry, EntryProblem::FromAfterTo { from, to }));
            }
            holidays.push((entry, from, to));
        }
        let mut working_days = Vec::with_capacity(raw.working_day.len());
        for (index, working_day) in raw.working_day.into_iter().enumerate() {
            let entry = CalendarEntry { kind: EntryKind::WorkingDay, position: index + 1, name: working_day.name };
            if entry.name.trim().is_empty() {
                return Err(invalid(&entry, EntryProblem::EmptyName));
            }
            let date = date_in_year(&entry, "date", &working_day.date)?;
            working_days.push((entry, date));
        }
        Ok(CheckedFile { file, year, source: raw.source, holidays, working_days })
    }

    /// Checks the names of a national year file: every name is made of statutory festivals,
    /// and every festival has exactly one block.
    fn check_festivals(&self) -> Result<(), CalendarError> {
        let invalid =
            |entry: &CalendarEntry, problem| CalendarError::invalid_entry(self.file, self.year, entry, problem);
        let known_festival = |entry: &CalendarEntry, part: &str| {
            FESTIVALS
                .iter()
                .copied()
                .find(|festival| *festival == part)
                .ok_or_else(|| invalid(entry, EntryProblem::UnknownFestival { name: part.to_owned() }))
        };
        let mut blocks: BTreeMap<&'static str, &CalendarEntry> = BTreeMap::new();
        for (entry, _, _) in &self.holidays {
            for part in entry.name.split(FESTIVAL_SEPARATOR) {
                let festival = known_festival(entry, part)?;
                if let Some(other) = blocks.insert(festival, entry) {
                    return Err(invalid(
                        entry,
                        EntryProblem::FestivalTwice { festival: festival.to_owned(), other: other.clone() },
                    ));
                }
            }
        }
        for (entry, _) in &self.working_days {
            for part in entry.name.split(FESTIVAL_SEPARATOR) {
                known_festival(entry, part)?;
            }
        }
        match FESTIVALS.iter().find(|festival| !blocks.contains_key(*festival)) {
            Some(festival) => Err(CalendarError::MissingFestival { file: self.file, year: self.year, festival }),
            None => Ok(()),
        }
    }

    /// Adds the file's days to the data of its year, refusing anything that contradicts what
    /// is there: overlapping blocks, a working day that is a holiday, a weekday as working day.
    fn merge_into(self, data: &mut YearData) -> Result<(), CalendarError> {
        let CheckedFile { file, year, source, holidays, working_days } = self;
        let invalid = |entry: &CalendarEntry, problem| CalendarError::invalid_entry(file, year, entry, problem);
        for (entry, from, to) in holidays {
            for date in from.iter_days().take_while(|date| *date <= to) {
                data.check_free(date).map_err(|problem| invalid(&entry, problem))?;
                data.holidays.insert(date, Origin { file, entry: entry.clone() });
            }
        }
        for (entry, date) in working_days {
            let weekday = date.weekday();
            if !is_weekend(weekday) {
                return Err(invalid(&entry, EntryProblem::NotWeekend { date, weekday }));
            }
            data.check_free(date).map_err(|problem| invalid(&entry, problem))?;
            data.working_days.insert(date, Origin { file, entry });
        }
        data.sources.push(source);
        Ok(())
    }
}

impl YearData {
    fn empty(kind: YearKind) -> YearData {
        YearData {
            kind,
            sources: Vec::new(),
            holidays: BTreeMap::new(),
            working_days: BTreeMap::new(),
            version: String::new(),
        }
    }

    /// The provisional calendar's year (interpretation 21); `None` outside its years.
    fn provisional(year: i32) -> Option<YearData> {
        let mut data = YearData::empty(YearKind::Provisional);
        for (position, day) in provisional::rest_days(year)?.into_iter().enumerate() {
            let name = if day.make_up { format!("{}（补休）", day.festival) } else { day.festival.to_owned() };
            let entry = CalendarEntry { kind: EntryKind::Holiday, position: position + 1, name };
            data.holidays.insert(day.date, Origin { file: CalendarFile::Provisional, entry });
        }
        data.sources.push(PROVISIONAL_SOURCE.to_owned());
        data.seal(year);
        Some(data)
    }

    /// Sets the year's version from its days, once they are all in.
    fn seal(&mut self, year: i32) {
        self.version = match self.kind {
            YearKind::Provisional => format!("{year}.provisional"),
            YearKind::Official => {
                // The days alone make the version: the same schedule written with other names,
                // comments or a differently worded source is the same data.
                let mut hasher = Sha256::new();
                for date in self.holidays.keys() {
                    hasher.update(format!("rest {date}\n").as_bytes());
                }
                for date in self.working_days.keys() {
                    hasher.update(format!("work {date}\n").as_bytes());
                }
                let digest = hasher.finalize();
                let hex: String = digest.iter().take(4).map(|byte| format!("{byte:02x}")).collect();
                format!("{year}.official.{hex}")
            }
        };
    }

    /// The days of the year other than plain working days and plain weekends, in date order.
    fn days(&self) -> Vec<CalendarDay> {
        let mut days: Vec<CalendarDay> = self
            .holidays
            .iter()
            .map(|(date, origin)| {
                let make_up = origin.file == CalendarFile::Provisional && origin.entry.name.ends_with("（补休）");
                CalendarDay {
                    date: *date,
                    kind: if make_up { CalendarDayKind::MakeUpRestDay } else { CalendarDayKind::Holiday },
                    name: origin.entry.name.trim_end_matches("（补休）").to_owned(),
                }
            })
            .chain(self.working_days.iter().map(|(date, origin)| CalendarDay {
                date: *date,
                kind: CalendarDayKind::AdjustedWorkingDay,
                name: origin.entry.name.clone(),
            }))
            .collect();
        days.sort_by_key(|day| day.date);
        days
    }

    /// Whether no entry has claimed the date yet.
    fn check_free(&self, date: NaiveDate) -> Result<(), EntryProblem> {
        if let Some(origin) = self.holidays.get(&date) {
            return Err(EntryProblem::AlreadyHoliday { date, other_file: origin.file, other: origin.entry.clone() });
        }
        if let Some(origin) = self.working_days.get(&date) {
            return Err(EntryProblem::AlreadyWorkingDay { date, other_file: origin.file, other: origin.entry.clone() });
        }
        Ok(())
    }
}

/// Reads a date written exactly `YYYY-MM-DD`; chrono alone would also take `2026-1-4`.
fn parse_date(value: &str) -> Option<NaiveDate> {
    let well_formed = value.len() == 10
        && value.bytes().enumerate().all(|(index, byte)| match index {
            4 | 7 => byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    if !well_formed {
        return None;
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()
}

/// The TOML reader's message on one line, prefixed with the line it points at.
fn describe_toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', "; ");
    let line = error.span().and_then(|span| text.get(..span.start)).map(|before| before.matches('\n').count() + 1);
    match line {
        Some(line) => format!("line {line}: {message}"),
        None => message,
    }
}

fn is_weekend(weekday: Weekday) -> bool {
    matches!(weekday, Weekday::Sat | Weekday::Sun)
}

/// The day after `date`. Only the last date chrono can represent has none, and no year with
/// data comes near it, so "no data" is the truthful answer there.
fn next_day(date: NaiveDate) -> Result<NaiveDate, CalendarError> {
    date.succ_opt().ok_or(CalendarError::NoDataForYear { year: date.year().saturating_add(1) })
}

/// 00:00 Shanghai of `date`, which is also 24:00 of the day before.
fn start_of_day(date: NaiveDate) -> Result<DateTime<FixedOffset>, CalendarError> {
    // A fixed offset maps every local time to exactly one instant; only a date at the very
    // edge of chrono's range could fail to convert, and no year with data is there.
    shanghai()
        .from_local_datetime(&date.and_time(NaiveTime::MIN))
        .single()
        .ok_or(CalendarError::NoDataForYear { year: date.year() })
}

impl Calendar {
    /// The calendar shipped with tousu (2024, 2025, 2026), loaded and validated, with the
    /// provisional calendar for every later year.
    pub fn builtin() -> Result<Calendar, CalendarError> {
        Calendar::from_year_files(&BUILTIN_YEAR_FILES)
    }

    /// The shipped calendar plus a deployment's own national year files, such as the next
    /// year's once the State Council publishes it; a year already shipped is refused as a
    /// duplicate (use an override file to add to it).
    pub fn builtin_with_years(extra_year_files: &[&str]) -> Result<Calendar, CalendarError> {
        let mut texts: Vec<&str> = BUILTIN_YEAR_FILES.to_vec();
        texts.extend_from_slice(extra_year_files);
        Calendar::from_year_files(&texts)
    }

    /// A calendar from the texts of national year files (the format is in the module
    /// documentation), one per year, each validated; errors name the file by its position in
    /// `texts`, counting from 1. Every year of the provisional calendar without a file is
    /// provisional.
    pub fn from_year_files(texts: &[&str]) -> Result<Calendar, CalendarError> {
        if texts.is_empty() {
            return Err(CalendarError::NoYearFiles);
        }
        let mut years = BTreeMap::new();
        let mut positions = BTreeMap::new();
        for (index, text) in texts.iter().enumerate() {
            let position = index + 1;
            let checked = CheckedFile::read(CalendarFile::Year { position }, text)?;
            checked.check_festivals()?;
            let year = checked.year;
            if let Some(first) = positions.insert(year, position) {
                return Err(CalendarError::DuplicateYear { year, first, second: position });
            }
            let mut data = YearData::empty(YearKind::Official);
            checked.merge_into(&mut data)?;
            data.seal(year);
            years.insert(year, data);
        }
        let provisional = (FIRST_PROVISIONAL_YEAR..=LAST_PROVISIONAL_YEAR)
            .filter(|year| !years.contains_key(year))
            .filter_map(|year| YearData::provisional(year).map(|data| (year, data)))
            .collect();
        Ok(Calendar { years, provisional })
    }

    /// The calendar with a local override added: a province's extra holidays or extra adjusted
    /// working days for one year that already has official data (same format as a year file,
    /// any names). Nothing national can be removed or contradicted.
    pub fn with_override(mut self, text: &str) -> Result<Calendar, CalendarError> {
        let checked = CheckedFile::read(CalendarFile::Override, text)?;
        let year = checked.year;
        let data = self.years.get_mut(&year).ok_or(CalendarError::OverrideWithoutData { year })?;
        // A refusal drops the half-merged calendar with `self`, so nobody sees it.
        checked.merge_into(data)?;
        data.seal(year);
        Ok(self)
    }

    /// The calendar with one more official year (interpretation 21: the State Council's notice
    /// arrives for a year that was provisional). The same schedule again changes nothing; a
    /// different schedule for a year already official is refused.
    pub fn with_official_year(mut self, year: OfficialYear) -> Result<Calendar, CalendarError> {
        if let Some(loaded) = self.years.get(&year.year) {
            if loaded.version == year.data.version {
                return Ok(self);
            }
            return Err(CalendarError::YearAlreadyOfficial {
                year: year.year,
                loaded: loaded.version.clone(),
                offered: year.data.version,
            });
        }
        self.provisional.remove(&year.year);
        self.years.insert(year.year, year.data);
        Ok(self)
    }

    /// The years with official data, in order.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.keys().copied()
    }

    /// The last year with official data.
    pub fn last_official_year(&self) -> Option<i32> {
        self.years.keys().next_back().copied()
    }

    /// Whether a year has official data, provisional data, or none.
    pub fn year_kind(&self, year: i32) -> Option<YearKind> {
        self.data_of_year(year).map(|data| data.kind)
    }

    /// The version of a year's data, e.g. `2026.official.3fa9c2d1` or `2027.provisional`.
    pub fn year_version(&self, year: i32) -> Option<&str> {
        self.data_of_year(year).map(|data| data.version.as_str())
    }

    /// What the calendar knows of a year, official or provisional.
    pub fn year_status(&self, year: i32) -> Option<YearStatus> {
        self.data_of_year(year).map(|data| YearStatus {
            year,
            kind: data.kind,
            version: data.version.clone(),
            sources: data.sources.clone(),
        })
    }

    /// The holidays, make-up rest days and adjusted working days of a year, in date order.
    pub fn days_of_year(&self, year: i32) -> Option<Vec<CalendarDay>> {
        self.data_of_year(year).map(YearData::days)
    }

    /// The notices a year's data comes from: the State Council notice, then each override's
    /// source in the order the overrides were added; `None` for a year without official data.
    pub fn sources(&self, year: i32) -> Option<&[String]> {
        self.years.get(&year).map(|data| data.sources.as_slice())
    }

    /// The warning of interpretation 21 on `today`: `Some` from `warn_days` days before the
    /// last official year's 31 December, and ever after until a later year is loaded.
    pub fn schedule_warning(&self, today: NaiveDate, warn_days: u32) -> Option<ScheduleWarning> {
        let last = self.last_official_year()?;
        let last_day = NaiveDate::from_ymd_opt(last, 12, 31)?;
        let days_left = (last_day - today).num_days();
        (days_left <= i64::from(warn_days)).then_some(ScheduleWarning { last_official_year: last, days_left })
    }

    /// Whether the date is a working day.
    pub fn is_working_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        self.working_day(date, &mut Consulted::default())
    }

    /// Whether the date is a working day, noting its year as looked at.
    fn working_day(&self, date: NaiveDate, consulted: &mut Consulted) -> Result<bool, CalendarError> {
        let data = self.year_data(date)?;
        consulted.note(date.year());
        if data.working_days.contains_key(&date) {
            return Ok(true);
        }
        if data.holidays.contains_key(&date) {
            return Ok(false);
        }
        Ok(!is_weekend(date.weekday()))
    }

    fn data_of_year(&self, year: i32) -> Option<&YearData> {
        self.years.get(&year).or_else(|| self.provisional.get(&year))
    }

    /// The data of the date's year, official or provisional, or the refusal that names the
    /// year.
    fn year_data(&self, date: NaiveDate) -> Result<&YearData, CalendarError> {
        self.data_of_year(date.year()).ok_or(CalendarError::NoDataForYear { year: date.year() })
    }

    /// The n-th working day strictly after `date` (interpretation 6). `date` itself is not
    /// looked at and needs no data; every day after it up to the answer does.
    pub fn nth_working_day_after(&self, date: NaiveDate, n: NonZeroU32) -> Result<NaiveDate, CalendarError> {
        self.nth_working_day_from(next_day(date)?, n, &mut Consulted::default())
    }

    /// The n-th working day on or after `first`.
    fn nth_working_day_from(
        &self,
        first: NaiveDate,
        n: NonZeroU32,
        consulted: &mut Consulted,
    ) -> Result<NaiveDate, CalendarError> {
        let mut remaining = n.get();
        let mut date = first;
        // Each turn either counts a working day or moves one day on; once past the last year
        // with data `working_day` refuses, so the loop ends.
        loop {
            if self.working_day(date, consulted)? {
                remaining -= 1;
                if remaining == 0 {
                    return Ok(date);
                }
            }
            date = next_day(date)?;
        }
    }

    /// The due instant of a period starting at `start`: 24:00 (Shanghai) of its last day for
    /// day, working-day and month periods; `start` plus the hours for hour periods.
    pub fn due(&self, start: DateTime<FixedOffset>, period: Period) -> Result<DateTime<FixedOffset>, CalendarError> {
        self.compute_due(start, period).map(|computed| computed.due)
    }

    /// [`Calendar::due`], with whether the due instant is provisional (interpretation 21) and
    /// the calendar version it rests on.
    pub fn compute_due(&self, start: DateTime<FixedOffset>, period: Period) -> Result<ComputedDue, CalendarError> {
        let start = start.with_timezone(&shanghai());
        let start_date = start.date_naive();
        // The start must lie in the calendar even where the period does not look at it (hours),
        // so that a date outside every year with data is refused at once.
        self.year_data(start_date)?;
        let out_of_range = CalendarError::OutOfRange { start, period };
        let first = NonZeroU32::MIN;
        let mut consulted = Consulted::default();
        let last_day = match period {
            Period::Hours(hours) => {
                let due = TimeDelta::try_hours(i64::from(hours))
                    .and_then(|hours| start.checked_add_signed(hours))
                    .ok_or(out_of_range)?;
                return Ok(ComputedDue { due, provisional: false, version: CalendarVersion::default() });
            }
            // Interpretation 5: counting starts the day after, so the last day is start + n;
            // a rest day as last day gives way to the first working day after it.
            Period::Days(days) => {
                let nominal = start_date.checked_add_days(Days::new(u64::from(days))).ok_or(out_of_range)?;
                self.nth_working_day_from(nominal, first, &mut consulted)?
            }
            // Interpretation 5: the same-numbered day of the final month, clamped to the
            // month's last day (chrono's `checked_add_months` clamps), then the rest-day rule.
            Period::Months(months) => {
                let nominal = start_date.checked_add_months(Months::new(months)).ok_or(out_of_range)?;
                self.nth_working_day_from(nominal, first, &mut consulted)?
            }
            // Interpretation 6. Zero working days behaves as zero days: the start's date if it
            // is a working day, else the first working day after it.
            Period::WorkingDays(n) => match NonZeroU32::new(n) {
                Some(n) => self.nth_working_day_from(next_day(start_date)?, n, &mut consulted)?,
                None => self.nth_working_day_from(start_date, first, &mut consulted)?,
            },
        };
        let due = start_of_day(next_day(last_day)?)?;
        let years: Vec<&YearData> = match consulted.span {
            Some((first, last)) => (first..=last).filter_map(|year| self.data_of_year(year)).collect(),
            None => Vec::new(),
        };
        let provisional = years.iter().any(|data| data.kind == YearKind::Provisional);
        let versions: Vec<&str> = years.iter().map(|data| data.version.as_str()).collect();
        Ok(ComputedDue { due, provisional, version: CalendarVersion(versions.join("+")) })
    }

    /// How many working days late `at` is for a deadline due at `due`: the number of
    /// working days from the day after the last day through the date of `at`, both
    /// included; zero when `at` is not after `due`.
    ///
    /// The day after the last day is the date of `due` (the first late day); for an hour
    /// period due in the middle of a day, that day. Every day counted needs data.
    pub fn working_days_late(
        &self,
        due: DateTime<FixedOffset>,
        at: DateTime<FixedOffset>,
    ) -> Result<u32, CalendarError> {
        if at <= due {
            return Ok(0);
        }
        let first_late_day = due.with_timezone(&shanghai()).date_naive();
        let at_date = at.with_timezone(&shanghai()).date_naive();
        let mut late = 0;
        for date in first_late_day.iter_days().take_while(|date| *date <= at_date) {
            if self.is_working_day(date)? {
                late += 1;
            }
        }
        Ok(late)
    }

    /// How many calendar days late `at` is for a deadline due at `due`, counted the same way
    /// as [`Calendar::working_days_late`].
    ///
    /// Calendar days do not depend on holidays, so this needs no data and never fails today.
    pub fn calendar_days_late(
        &self,
        due: DateTime<FixedOffset>,
        at: DateTime<FixedOffset>,
    ) -> Result<u32, CalendarError> {
        if at <= due {
            return Ok(0);
        }
        let first_late_day = due.with_timezone(&shanghai()).date_naive();
        let at_date = at.with_timezone(&shanghai()).date_naive();
        let days = (at_date - first_late_day).num_days() + 1;
        // `at` is after `due`, so `days` ≥ 1; chrono's whole range spans fewer than 2^32 days,
        // so the saturation is never reached.
        Ok(u32::try_from(days).unwrap_or(u32::MAX))
    }

    /// The instant at which a deadline due at `due` becomes `n` working days late
    /// (00:00 Shanghai of the n-th working day after its last day), for n ≥ 1.
    ///
    /// Precisely: at every instant after the one returned the deadline is at least `n`
    /// working days late, and at every instant before it fewer. That instant is 00:00 of the
    /// n-th working day on or after the first late day (the date of `due`), except when this
    /// is not after `due` (n = 1 with a working first late day): then it is `due` itself,
    /// at which the deadline is still just met. For n = 0 it is `due`.
    pub fn instant_working_days_late(
        &self,
        due: DateTime<FixedOffset>,
        n: u32,
    ) -> Result<DateTime<FixedOffset>, CalendarError> {
        let due = due.with_timezone(&shanghai());
        let Some(n) = NonZeroU32::new(n) else {
            return Ok(due);
        };
        let nth_late_day = self.nth_working_day_from(due.date_naive(), n, &mut Consulted::default())?;
        Ok(start_of_day(nth_late_day)?.max(due))
    }
}
