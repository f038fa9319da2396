//! Per-provider rate limits as token buckets (Slack about 1 message/s per channel, monday
//! calls per minute, Gmail drafts per second). A caller reserves a token and waits out the
//! deficit, so requests leave in order and never faster than configured.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Buckets by key (`monday`, `slack:C0123`, `gmail`).
#[derive(Default)]
pub struct Limits {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limits {
    /// Waits until `key` may send: `rate` per second, bursts of `burst`. A rate ≤ 0 is no limit.
    pub async fn acquire(&self, key: &str, rate: f64, burst: f64) {
        let wait = self.reserve(key, rate, burst, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes a token for `key` at `now`; returns how long the caller must wait for it.
    pub fn reserve(&self, key: &str, rate: f64, burst: f64, now: Instant) -> Duration {
        if rate <= 0.0 || !rate.is_finite() {
            return Duration::ZERO;
        }
        let burst = burst.max(1.0);
        let Ok(mut map) = self.buckets.lock() else {
            return Duration::ZERO;
        };
        let b = map.entry(key.to_string()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        b.tokens =
            (b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate).min(burst);
        b.last = b.last.max(now);
        b.tokens -= 1.0;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_second_per_channel_after_a_burst() {
        let l = Limits::default();
        let t0 = Instant::now();
        let waits: Vec<u64> = (0..5)
            .map(|_| l.reserve("slack:C1", 1.0, 3.0, t0).as_millis() as u64)
            .collect();
        assert_eq!(waits, vec![0, 0, 0, 1000, 2000]);
        // Another channel has its own bucket.
        assert_eq!(l.reserve("slack:C2", 1.0, 3.0, t0), Duration::ZERO);
        // Ten seconds later the bucket is full again (but never above the burst).
        let t1 = t0 + Duration::from_secs(10);
        let waits: Vec<u64> = (0..4)
            .map(|_| l.reserve("slack:C1", 1.0, 3.0, t1).as_millis() as u64)
            .collect();
        assert_eq!(waits, vec![0, 0, 0, 1000]);
        assert_eq!(
            l.reserve("gmail", 0.0, 1.0, t0),
            Duration::ZERO,
            "0 = no limit"
        );
    }
}
