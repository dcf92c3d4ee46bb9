//! L1: the in-process cache (moka), bounded by memory, by entry count and by time.
//!
//! **Two bounds with one weigher.** moka has a single capacity; each entry weighs
//! `max(content bytes + JSON bytes + ENTRY_OVERHEAD_BYTES, byte_budget / max_entries)`, so the
//! cache holds at most `max_entries` entries *and* at most about `byte_budget` bytes, whichever
//! binds first. An entry keeps the encoding beside the record so that a hit is sent without
//! serialising (see [`EncodedRecord`]); that roughly doubles its bytes, and the weigher counts
//! both, plus a fixed allowance ([`ENTRY_OVERHEAD_BYTES`]) for the key, the record's other
//! fields, moka's bookkeeping and allocator slack.
//!
//! **Why memory, not a count, binds by default.** A count says nothing about memory: 10,000 one-megabyte schemas are 10 GB, 10,000 500-byte
//! schemas about 27 MB, which leaves many lookups of a large registry to Redis (at 1M versions
//! under Zipf(1.0), about 40 % of them: `docs/PERFORMANCE.md`). So the byte budget (256 MiB by
//! default) is the bound that matters. The default count (1,000,000) is a backstop: with every
//! entry weighing over 1 KiB it binds only under budgets above about 1 GiB. `max_entries =
//! 10_000` sizes L1 by count alone.
//!
//! **Fill guard.** Epochs live in 4096 striped atomic counters (a stripe per hash of the epoch
//! key). A reader notes its stripe before going to L2 or the database; [`L1::fill`] inserts only
//! if the stripe has not moved, and re-checks after inserting (an invalidation that slipped in
//! between removes the entry again). A collision between two keys on one stripe only costs a
//! skipped fill, never a stale entry.

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::EncodedRecord;
use moka::future::Cache;
use moka::notification::RemovalCause;

use super::keys::{CacheKey, EpochKey};

const STRIPES: usize = 4096;

/// What an entry costs beyond its content and JSON bytes: the key (with its subject), the
/// record's other fields, the `Arc`s, moka's per-entry bookkeeping and the allocator's slack
/// under eviction churn. Calibrated, not derived: a release server (an uncommitted step with a
/// 256-byte allowance) whose 256 MiB L1 filled up with 512-byte schemas (158,417 entries,
/// 1,438 content and JSON bytes each, 370,390 evictions) grew by 2.7 KB per entry over the
/// same server with the cache off
/// (`docs/PERFORMANCE.md`, "L1 memory"). With this allowance, servers with 256 and 512 MiB
/// budgets grew by 1.16 and 1.11 times their budget: the allowance is deliberately a round
/// number, and the remainder is mostly allocator slack that depends on the churn.
pub const ENTRY_OVERHEAD_BYTES: u64 = 1024;

/// A cached record with its JSON encoding (made once, at fill), and when it was stored (to
/// bound staleness while invalidations may be missed: see [`L1::get`]). moka hands out a clone
/// of the value on every hit, so the value is this small struct and a hit costs one reference
/// count on the record, not two (an `Arc<Entry>` would add its own).
#[derive(Debug, Clone)]
pub struct Entry {
    pub encoded: Arc<EncodedRecord>,
    pub stored: Instant,
}

#[derive(Debug, Clone)]
pub struct L1Options {
    pub max_entries: u64,
    pub byte_budget: u64,
    pub ttl: Duration,
    pub tti: Duration,
}

pub struct L1 {
    cache: Cache<CacheKey, Entry>,
    min_weight: u64,
    stripes: Box<[AtomicU64]>,
    hasher: std::collections::hash_map::RandomState,
    evictions: Arc<AtomicU64>,
}

impl std::fmt::Debug for L1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L1")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

/// What an entry weighs: its bytes and the allowance, at least `min_weight`
/// (`byte_budget / max_entries`), within moka's `u32` weights.
fn entry_weight(encoded: &EncodedRecord, min_weight: u64) -> u32 {
    let w = encoded
        .weight_bytes()
        .saturating_add(ENTRY_OVERHEAD_BYTES)
        .max(min_weight);
    u32::try_from(w).unwrap_or(u32::MAX)
}

impl L1 {
    pub fn new(options: &L1Options) -> Self {
        let min_weight = (options.byte_budget / options.max_entries.max(1)).max(1);
        let evictions = Arc::new(AtomicU64::new(0));
        let counted = evictions.clone();
        let cache = Cache::builder()
            .max_capacity(options.byte_budget.max(1))
            .weigher(move |_k: &CacheKey, v: &Entry| -> u32 {
                entry_weight(&v.encoded, min_weight)
            })
            .time_to_live(options.ttl)
            .time_to_idle(options.tti)
            .eviction_listener(move |_k, _v, cause| {
                if matches!(cause, RemovalCause::Size | RemovalCause::Expired) {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        let stripes = (0..STRIPES)
            .map(|_| AtomicU64::new(0))
            .collect::<Vec<_>>()
            .into_boxed_slice();
        L1 {
            cache,
            min_weight,
            stripes,
            hasher: Default::default(),
            evictions,
        }
    }

    fn stripe(&self, epoch: &EpochKey) -> &AtomicU64 {
        let mut h = self.hasher.build_hasher();
        epoch.hash(&mut h);
        let i = usize::try_from(std::hash::Hasher::finish(&h) % STRIPES as u64).unwrap_or(0);
        &self.stripes[i]
    }

    /// The stripe value to pass to [`L1::fill`] later.
    pub fn epoch(&self, key: &CacheKey) -> u64 {
        self.stripe(&key.epoch()).load(Ordering::Acquire)
    }

    /// A hit, unless the entry is older than `max_age` (used while invalidations from other
    /// servers may be missed).
    pub async fn get(&self, key: &CacheKey, max_age: Option<Duration>) -> Option<Entry> {
        let entry = self.cache.get(key).await?;
        match max_age {
            Some(age) if entry.stored.elapsed() > age => None,
            _ => Some(entry),
        }
    }

    /// Stores `encoded` under `key` unless an invalidation touched the key's epoch since
    /// `epoch` was read.
    pub async fn fill(&self, key: CacheKey, encoded: Arc<EncodedRecord>, epoch: u64) {
        let stripe = self.stripe(&key.epoch());
        if stripe.load(Ordering::Acquire) != epoch {
            return;
        }
        let entry = Entry {
            encoded,
            stored: Instant::now(),
        };
        self.cache.insert(key.clone(), entry).await;
        if stripe.load(Ordering::Acquire) != epoch {
            self.cache.invalidate(&key).await;
        }
    }

    /// Bumps the epochs first, then drops the keys (the order [`L1::fill`] relies on).
    pub async fn invalidate(&self, keys: &[CacheKey], epochs: &[EpochKey]) {
        for e in epochs {
            self.stripe(e).fetch_add(1, Ordering::AcqRel);
        }
        for k in keys {
            self.cache.invalidate(k).await;
        }
    }

    /// Drops everything (only when invalidations may have been lost).
    pub fn clear(&self) {
        for s in self.stripes.iter() {
            s.fetch_add(1, Ordering::AcqRel);
        }
        self.cache.invalidate_all();
    }

    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// How many entries like `encoded` fit: the budget over the entry's weight.
    pub fn capacity_for(&self, encoded: &EncodedRecord) -> u64 {
        let budget = self.cache.policy().max_capacity().unwrap_or(u64::MAX);
        budget / u64::from(entry_weight(encoded, self.min_weight)).max(1)
    }

    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Runs moka's pending maintenance (tests and statistics want exact counts).
    pub async fn sync(&self) {
        self.cache.run_pending_tasks().await;
    }
}
