//! The clock of the application layer. The domain never reads time; this is where the
//! business instant of a command comes from: the system clock in service, the system clock
//! shifted to another start (a rehearsal of a future date), or a clock a simulation moves
//! forward.

use std::sync::Mutex;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use tousu_domain::calendar::shanghai;

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    /// The current instant, in Shanghai time.
    fn now(&self) -> DateTime<FixedOffset>;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<FixedOffset> {
        Utc::now().with_timezone(&shanghai())
    }
}

/// The system clock shifted to start at another instant and run at real speed from there: a
/// rehearsal of how the service behaves on a future date (a new year without its holiday
/// schedule, say), on a data directory of its own.
#[derive(Debug, Clone, Copy)]
pub struct ShiftedClock {
    shift: TimeDelta,
}

impl ShiftedClock {
    /// A clock that shows `start` now.
    pub fn starting_at(start: DateTime<FixedOffset>) -> ShiftedClock {
        ShiftedClock { shift: start.to_utc() - Utc::now() }
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<FixedOffset> {
        (Utc::now() + self.shift).with_timezone(&shanghai())
    }
}

/// A clock that stands still until moved: for simulations of months of activity.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<FixedOffset>>);

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: DateTime<FixedOffset>) -> ManualClock {
        ManualClock(Mutex::new(start))
    }

    /// Moves the clock to `instant` (never backwards).
    pub fn set(&self, instant: DateTime<FixedOffset>) {
        let mut now = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if instant > *now {
            *now = instant;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<FixedOffset> {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
