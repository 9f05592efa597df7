//! A small cache in front of the watchlist at the default instant. The watchlist evaluates
//! every company's windows when asked (60–200 ms on a large log, docs/read-models.md), too slow
//! to repeat for every dashboard that polls it; an answer evaluated at most [`MAX_AGE`] ago is
//! as good for that use.
//!
//! What it allows: an answer up to 60 s old, both in the log events it includes and in the
//! instant its windows are evaluated at (the answer's `at` and snapshot say which), except that
//! it never hides a caller's own writes: a caller whose acknowledged writes reached a log
//! position the cached list's read model had not applied (`crate::own_writes`) gets a list
//! computed afresh, after the read model has caught up with the log, and that list replaces the
//! cached one for everyone. A dashboard that only polls keeps being answered from the cache
//! while others write. Only requests without `at` and `as_of` use it: an explicit instant is
//! always computed. The key is the filter (district, flag, scope); the value is the whole
//! filtered list, so every page of one list comes from the same computation. Concurrent
//! requests for a key that is being computed wait for that computation instead of starting
//! their own. At most [`MAX_KEYS`] keys are kept (the district is free text, bounded in
//! length), the oldest dropped first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;
use tonic::Status;
use tousu_read_watchlist::Flag;

use crate::pb;

/// The longest an answer is served from the cache after it was asked for.
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// The most filters kept.
const MAX_KEYS: usize = 64;

/// A watchlist filter, without the page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WatchlistKey {
    /// Only companies with a lead in this district.
    pub district: Option<String>,
    /// Only companies with this flag.
    pub flag: Option<Flag>,
    /// Every company, not only the flagged ones.
    pub every: bool,
}

/// A whole filtered watchlist, as the protocol returns it.
#[derive(Debug)]
pub struct CachedWatchlist {
    /// The evaluation instant.
    pub at: prost_types::Timestamp,
    /// Every entry matching the filter, highest risk first.
    pub entries: Vec<pb::WatchlistEntry>,
    /// Which state of the read model it was computed from.
    pub snapshot: pb::ReadModelSnapshot,
}

type Cell = Arc<OnceCell<Arc<CachedWatchlist>>>;

struct Slot {
    created: Instant,
    value: Cell,
}

/// The cache.
#[derive(Default)]
pub struct WatchlistCache {
    slots: Mutex<HashMap<WatchlistKey, Slot>>,
}

impl WatchlistCache {
    /// The list for `key`: from the cache when it was asked for less than [`MAX_AGE`] ago and
    /// its read model had applied the log up to `own_writes` (the position the caller's own
    /// writes reached, if it wrote), else computed by `compute` (or by a concurrent request
    /// already computing it). The flag says whether the answer came from the cache.
    pub async fn get<F, Fut>(
        &self,
        key: WatchlistKey,
        own_writes: Option<u64>,
        compute: F,
    ) -> Result<(Arc<CachedWatchlist>, bool), Status>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<CachedWatchlist, Status>>,
    {
        let mut compute = Some(compute);
        let mut stale = None;
        loop {
            let cell = self.cell(&key, stale.as_ref());
            let (list, computed_here) = Self::fill(&cell, &mut compute).await?;
            let includes_own_writes = own_writes.is_none_or(|position| list.snapshot.position >= position);
            if computed_here || includes_own_writes {
                return Ok((list, !computed_here));
            }
            // The list was computed before the caller's writes reached the read model. A list
            // computed from now on waits for the read model to reach the log's head, which is
            // past them: the caller replaces the stale list and waits for a new one (its own,
            // or one a request after it started), which then serves everyone. Each round ends
            // a computation, and the caller's own ends the rounds.
            stale = Some(cell);
        }
    }

    /// The cell of `key`, made when there is none or it is older than [`MAX_AGE`], or replaced
    /// when it is still `stale`.
    fn cell(&self, key: &WatchlistKey, stale: Option<&Cell>) -> Cell {
        let now = Instant::now();
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        slots.retain(|_, slot| now.duration_since(slot.created) < MAX_AGE);
        if let Some(slot) = slots.get(key)
            && !stale.is_some_and(|stale| Arc::ptr_eq(stale, &slot.value))
        {
            return slot.value.clone();
        }
        if !slots.contains_key(key)
            && slots.len() >= MAX_KEYS
            && let Some(oldest) = slots.iter().min_by_key(|(_, slot)| slot.created).map(|(key, _)| key.clone())
        {
            slots.remove(&oldest);
        }
        let value = Arc::new(OnceCell::new());
        slots.insert(key.clone(), Slot { created: now, value: value.clone() });
        value
    }

    /// The list in `cell`, computed by `compute` (taken) when the cell is empty; the flag says
    /// whether it was computed here.
    async fn fill<F, Fut>(cell: &Cell, compute: &mut Option<F>) -> Result<(Arc<CachedWatchlist>, bool), Status>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<CachedWatchlist, Status>>,
    {
        // A failed computation leaves the cell empty: the next request for the key tries again.
        let mut computed_here = false;
        let list = cell
            .get_or_try_init(|| {
                computed_here = true;
                let compute = compute.take().expect("a request computes at most one list");
                async { compute().await.map(Arc::new) }
            })
            .await?;
        Ok((list.clone(), computed_here))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(n: usize) -> CachedWatchlist {
        list_at(n, 0)
    }

    /// A list of `n` entries computed from the read model at log position `position`.
    fn list_at(n: usize, position: u64) -> CachedWatchlist {
        CachedWatchlist {
            at: prost_types::Timestamp::default(),
            entries: vec![pb::WatchlistEntry::default(); n],
            snapshot: pb::ReadModelSnapshot { position, ..Default::default() },
        }
    }

    fn key(district: &str) -> WatchlistKey {
        WatchlistKey { district: Some(district.to_owned()), flag: None, every: false }
    }

    #[tokio::test]
    async fn a_second_request_within_the_age_is_served_from_the_cache() {
        let cache = WatchlistCache::default();
        let (first, cached) = cache.get_any(key("鼓楼区"), || async { Ok(list(1)) }).await.expect("computed");
        assert!(!cached);
        assert_eq!(first.entries.len(), 1);
        let (second, cached) = cache.get_any(key("鼓楼区"), || async { Ok(list(2)) }).await.expect("cached");
        assert!(cached);
        assert_eq!(second.entries.len(), 1, "the first computation's answer");
        let (other, cached) = cache.get_any(key("台江区"), || async { Ok(list(3)) }).await.expect("computed");
        assert!(!cached, "another filter is another key");
        assert_eq!(other.entries.len(), 3);
    }

    impl WatchlistCache {
        /// The list for `key` for a caller that wrote nothing.
        async fn get_any<F, Fut>(&self, key: WatchlistKey, compute: F) -> Result<(Arc<CachedWatchlist>, bool), Status>
        where
            F: FnOnce() -> Fut,
            Fut: Future<Output = Result<CachedWatchlist, Status>>,
        {
            self.get(key, None, compute).await
        }
    }

    #[tokio::test]
    async fn a_caller_whose_own_writes_the_cached_list_predates_gets_a_fresh_list_and_so_does_everyone_after() {
        let cache = WatchlistCache::default();
        let (first, cached) = cache.get(key("鼓楼区"), None, || async { Ok(list_at(1, 10)) }).await.expect("computed");
        assert!(!cached);
        assert_eq!(first.snapshot.position, 10);
        // A caller whose writes reached position 10 or less is served the cached list.
        let (same, cached) = cache.get(key("鼓楼区"), Some(10), || async { Ok(list_at(2, 12)) }).await.expect("cached");
        assert!(cached);
        assert_eq!(same.entries.len(), 1);
        // A caller whose write reached position 11 gets a list computed now.
        let (fresh, cached) = cache.get(key("鼓楼区"), Some(11), || async { Ok(list_at(3, 12)) }).await.expect("fresh");
        assert!(!cached);
        assert_eq!((fresh.entries.len(), fresh.snapshot.position), (3, 12));
        // The fresh list replaced the stale one for everyone.
        let (after, cached) = cache.get_any(key("鼓楼区"), || async { Ok(list_at(4, 13)) }).await.expect("cached");
        assert!(cached);
        assert_eq!(after.entries.len(), 3);
    }

    #[tokio::test]
    async fn a_failed_computation_is_not_cached() {
        let cache = WatchlistCache::default();
        let failed = cache.get_any(key("鼓楼区"), || async { Err(Status::unavailable("not built")) }).await;
        assert!(failed.is_err());
        let (answer, cached) = cache.get_any(key("鼓楼区"), || async { Ok(list(4)) }).await.expect("computed");
        assert!(!cached);
        assert_eq!(answer.entries.len(), 4);
    }

    #[tokio::test]
    async fn at_most_max_keys_filters_are_kept() {
        let cache = WatchlistCache::default();
        for n in 0..MAX_KEYS + 5 {
            cache.get_any(key(&format!("区{n}")), || async { Ok(list(0)) }).await.expect("computed");
        }
        assert_eq!(cache.slots.lock().expect("unpoisoned").len(), MAX_KEYS);
    }
}
