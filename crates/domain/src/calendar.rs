//! The legal-time calendar: Asia/Shanghai, statutory holidays and adjusted working days per
//! year, and the period arithmetic of the Civil Code (interpretations 4, 5 and 6).
//!
//! STUB: the signatures below are the agreed interface; the bodies are being written.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::{Deserialize, Serialize};

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

/// The offset of Asia/Shanghai (interpretation 4).
pub fn shanghai() -> FixedOffset {
    unimplemented!()
}

/// Holiday and working-day data for the years it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    years: BTreeMap<i32, ()>,
}

/// Why a calendar could not be loaded or a computation could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CalendarError {
    /// The computation touched a date in a year the calendar has no data for.
    #[error("no calendar data for year {year}: holidays are never guessed from weekends")]
    NoDataForYear {
        /// The year without data.
        year: i32,
    },
}

impl Calendar {
    /// The calendar shipped with tousu (2024, 2025, 2026), loaded and validated.
    pub fn builtin() -> Result<Calendar, CalendarError> {
        unimplemented!()
    }

    /// Whether the date is a working day.
    pub fn is_working_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        let _ = date;
        unimplemented!()
    }

    /// The due instant of a period starting at `start`: 24:00 (Shanghai) of its last day for
    /// day, working-day and month periods; `start` plus the hours for hour periods.
    pub fn due(&self, start: DateTime<FixedOffset>, period: Period) -> Result<DateTime<FixedOffset>, CalendarError> {
        let _ = (start, period);
        unimplemented!()
    }

    /// How many working days late `at` is for a deadline due at `due`: the number of
    /// working days from the day after the last day through the date of `at`, both
    /// included; zero when `at` is not after `due`.
    pub fn working_days_late(&self, due: DateTime<FixedOffset>, at: DateTime<FixedOffset>) -> Result<u32, CalendarError> {
        let _ = (due, at);
        unimplemented!()
    }

    /// How many calendar days late `at` is for a deadline due at `due`, counted the same way
    /// as [`Calendar::working_days_late`].
    pub fn calendar_days_late(&self, due: DateTime<FixedOffset>, at: DateTime<FixedOffset>) -> Result<u32, CalendarError> {
        let _ = (due, at);
        unimplemented!()
    }

    /// The instant at which a deadline due at `due` becomes `n` working days late
    /// (00:00 Shanghai of the n-th working day after its last day), for n ≥ 1.
    pub fn instant_working_days_late(&self, due: DateTime<FixedOffset>, n: u32) -> Result<DateTime<FixedOffset>, CalendarError> {
        let _ = (due, n);
        unimplemented!()
    }
}
