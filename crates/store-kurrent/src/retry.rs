//! How often and how patiently the store retries an operation that failed for a transient
//! reason (the node went away, a leader election, a timeout): a bounded number of
//! attempts with exponential backoff, the same for appends, reads and subscriptions.

use std::time::Duration;

/// A bounded retry schedule with exponential backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How many times an operation is tried in all, at least once.
    pub attempts: u32,
    /// The pause after the first failure; each further failure doubles it.
    pub first_backoff: Duration,
    /// The longest pause between two attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Ten attempts over about 21 seconds (pauses of 0.1 s doubling to 5 s): long enough
    /// to ride out a KurrentDB leader election, which normally takes a few seconds.
    fn default() -> Self {
        Self { attempts: 10, first_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(5) }
    }
}

impl RetryPolicy {
    /// The pause after the failure of attempt `failed` (0-based).
    pub fn backoff(&self, failed: u32) -> Duration {
        let factor = 1u32.checked_shl(failed.min(31)).unwrap_or(u32::MAX);
        self.first_backoff.saturating_mul(factor).min(self.max_backoff)
    }

    /// Whether another attempt may follow the failure of attempt `failed` (0-based).
    pub fn allows_retry_after(&self, failed: u32) -> bool {
        failed.saturating_add(1) < self.attempts.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let policy = RetryPolicy::default();
        let pauses: Vec<u128> = (0..9).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(pauses, vec![100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(5));
        let total: Duration = (0..policy.attempts - 1).map(|n| policy.backoff(n)).sum();
        assert_eq!(total, Duration::from_millis(21_300));
    }

    #[test]
    fn attempts_are_bounded_and_at_least_one() {
        let policy = RetryPolicy { attempts: 3, ..RetryPolicy::default() };
        assert!(policy.allows_retry_after(0) && policy.allows_retry_after(1));
        assert!(!policy.allows_retry_after(2));
        let once = RetryPolicy { attempts: 0, ..RetryPolicy::default() };
        assert!(!once.allows_retry_after(0));
    }
}
