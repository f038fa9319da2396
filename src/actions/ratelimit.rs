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
        if rate <= 0.0 || !rate.is_finite() {
            return;
        }
        let burst = burst.max(1.0);
        let wait = {
            let Ok(mut map) = self.buckets.lock() else {
                return;
            };
            let now = Instant::now();
            let b = map.entry(key.to_string()).or_insert(Bucket {
                tokens: burst,
                last: now,
            });
            b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * rate).min(burst);
            b.last = now;
            b.tokens -= 1.0;
            if b.tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-b.tokens / rate)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}
