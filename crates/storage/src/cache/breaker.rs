//! A circuit breaker for the L2 tier: after `threshold` consecutive failures it *opens* and the
//! cache stops calling Redis for `cooldown`; then one call at a time may probe it (*half-open*),
//! and a success closes it again. While open, requests are served from L1 and the database
//! without waiting on a dead Redis.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    failures: AtomicU32,
    /// Milliseconds since `origin` until which the breaker is open; 0 when closed.
    open_until_ms: AtomicU64,
    origin: Instant,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            origin: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether a call may go to Redis now. When the cool-down has passed, exactly one caller
    /// wins the probe (it pushes the deadline forward); the rest keep skipping.
    pub fn allow(&self) -> bool {
        let until = self.open_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        let now = self.now_ms();
        if now < until {
            return false;
        }
        let next = now + u64::try_from(self.cooldown.as_millis()).unwrap_or(u64::MAX);
        self.open_until_ms
            .compare_exchange(until, next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    pub fn success(&self) {
        self.failures.store(0, Ordering::Release);
        self.open_until_ms.store(0, Ordering::Release);
    }

    pub fn failure(&self) {
        let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if failures >= self.threshold {
            let until =
                self.now_ms() + u64::try_from(self.cooldown.as_millis()).unwrap_or(u64::MAX);
            self.open_until_ms.store(until.max(1), Ordering::Release);
        }
    }

    pub fn is_open(&self) -> bool {
        self.open_until_ms.load(Ordering::Acquire) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_probes_after_cooldown() {
        let b = Breaker::new(3, Duration::from_millis(30));
        assert!(b.allow());
        b.failure();
        b.failure();
        assert!(
            b.allow() && !b.is_open(),
            "below the threshold it stays closed"
        );
        b.failure();
        assert!(b.is_open());
        assert!(!b.allow(), "open: calls are skipped");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "one probe after the cool-down");
        assert!(!b.allow(), "only one");
        b.success();
        assert!(!b.is_open() && b.allow(), "a successful probe closes it");
    }
}
