//! The calendar in force, shared by every decision and query of a node and replaced whole when
//! a year's official schedule is loaded (interpretation 21).
//!
//! A decision takes the calendar in force when it starts and keeps it to its end, so that one
//! decision never sees two calendars; a load swaps in a new calendar for the decisions that
//! start after it. Nothing recorded depends on which calendar was in force: every deadline
//! stores its due instant and, when provisional, the calendar version it rests on.

use std::sync::{Arc, RwLock};

use tousu_domain::calendar::{Calendar, CalendarError, OfficialYear};

/// The calendar in force.
#[derive(Debug)]
pub struct CalendarCell {
    current: RwLock<Arc<Calendar>>,
}

impl CalendarCell {
    /// A cell holding `calendar`.
    pub fn new(calendar: Calendar) -> CalendarCell {
        CalendarCell { current: RwLock::new(Arc::new(calendar)) }
    }

    /// The calendar in force now.
    pub fn current(&self) -> Arc<Calendar> {
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Puts an official year in force; the same schedule again changes nothing, a different
    /// one for a year that already has one is refused and changes nothing. Answers whether the
    /// calendar changed.
    pub fn add_official_year(&self, year: OfficialYear) -> Result<bool, CalendarError> {
        let mut current = self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.year_version(year.year()) == Some(year.version()) {
            return Ok(false);
        }
        let updated = Calendar::clone(&current).with_official_year(year)?;
        *current = Arc::new(updated);
        Ok(true)
    }
}
