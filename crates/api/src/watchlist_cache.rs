//! A small cache in front of the watchlist at the default instant. The watchlist evaluates
//! every company's windows when asked (60–200 ms on a large log, docs/read-models.md), too slow
//! to repeat for every dashboard that polls it; an answer evaluated at most [`MAX_AGE`] ago is
//! as good for that use.
//!
//! What it allows: an answer up to 60 s old, both in the log events it includes and in the
//! instant its windows are evaluated at (the answer's `at` and snapshot say which). Only
//! requests without `at` and `as_of` use it: an explicit instant is always computed. The key is
//! the filter (district, flag, scope); the value is the whole filtered list, so every page of
//! one list comes from the same computation. Concurrent requests for a key that is being
//! computed wait for that computation instead of starting their own. At most [`MAX_KEYS`] keys
//! are kept (the district is free text), the oldest dropped first.

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

struct Slot {
    created: Instant,
    value: Arc<OnceCell<Arc<CachedWatchlist>>>,
}

/// The cache.
#[derive(Default)]
pub struct WatchlistCache {
    slots: Mutex<HashMap<WatchlistKey, Slot>>,
}

impl WatchlistCache {
    /// The list for `key`: from the cache when it was asked for less than [`MAX_AGE`] ago,
    /// else computed by `compute` (or by a concurrent request already computing it). The flag
    /// says whether the answer came from the cache.
    pub async fn get<F, Fut>(&self, key: WatchlistKey, compute: F) -> Result<(Arc<CachedWatchlist>, bool), Status>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<CachedWatchlist, Status>>,
    {
        let now = Instant::now();
        let value = {
            let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            slots.retain(|_, slot| now.duration_since(slot.created) < MAX_AGE);
            match slots.get(&key) {
                Some(slot) => slot.value.clone(),
                None => {
                    if slots.len() >= MAX_KEYS
                        && let Some(oldest) =
                            slots.iter().min_by_key(|(_, slot)| slot.created).map(|(key, _)| key.clone())
                    {
                        slots.remove(&oldest);
                    }
                    let value = Arc::new(OnceCell::new());
                    slots.insert(key, Slot { created: now, value: value.clone() });
                    value
                }
            }
        };
        // A failed computation leaves the cell empty: the next request for the key tries again.
        let mut computed_here = false;
        let list = value
            .get_or_try_init(|| {
                computed_here = true;
                async { compute().await.map(Arc::new) }
            })
            .await?;
        Ok((list.clone(), !computed_here))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(n: usize) -> CachedWatchlist {
        CachedWatchlist {
            at: prost_types::Timestamp::default(),
            entries: vec![pb::WatchlistEntry::default(); n],
            snapshot: pb::ReadModelSnapshot::default(),
        }
    }

    fn key(district: &str) -> WatchlistKey {
        WatchlistKey { district: Some(district.to_owned()), flag: None, every: false }
    }

    #[tokio::test]
    async fn a_second_request_within_the_age_is_served_from_the_cache() {
        let cache = WatchlistCache::default();
        let (first, cached) = cache.get(key("鼓楼区"), || async { Ok(list(1)) }).await.expect("computed");
        assert!(!cached);
        assert_eq!(first.entries.len(), 1);
        let (second, cached) = cache.get(key("鼓楼区"), || async { Ok(list(2)) }).await.expect("cached");
        assert!(cached);
        assert_eq!(second.entries.len(), 1, "the first computation's answer");
        let (other, cached) = cache.get(key("台江区"), || async { Ok(list(3)) }).await.expect("computed");
        assert!(!cached, "another filter is another key");
        assert_eq!(other.entries.len(), 3);
    }

    #[tokio::test]
    async fn a_failed_computation_is_not_cached() {
        let cache = WatchlistCache::default();
        let failed = cache.get(key("鼓楼区"), || async { Err(Status::unavailable("not built")) }).await;
        assert!(failed.is_err());
        let (answer, cached) = cache.get(key("鼓楼区"), || async { Ok(list(4)) }).await.expect("computed");
        assert!(!cached);
        assert_eq!(answer.entries.len(), 4);
    }

    #[tokio::test]
    async fn at_most_max_keys_filters_are_kept() {
        let cache = WatchlistCache::default();
        for n in 0..MAX_KEYS + 5 {
            cache.get(key(&format!("区{n}")), || async { Ok(list(0)) }).await.expect("computed");
        }
        assert_eq!(cache.slots.lock().expect("unpoisoned").len(), MAX_KEYS);
    }
}
