//! The one source of "now" for everything signoff computes from time: lease expiry, SLA
//! breaches, ages, undo windows, dispatch schedules. Production reads the system clock;
//! tests (and `SIGNOFF_CLOCK`) pin it, so nothing they assert depends on the date they run.
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// A shared clock. Clones see the same time: moving one moves them all.
#[derive(Clone, Debug, Default)]
pub struct Clock(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// `i64::MIN` while the clock follows the system clock; otherwise the frozen time.
    frozen: AtomicI64,
    /// Added to the base time (tests move a clock forward past a lease or an undo window).
    offset: AtomicI64,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            frozen: AtomicI64::new(i64::MIN),
            offset: AtomicI64::new(0),
        }
    }
}

static PROCESS: std::sync::OnceLock<Clock> = std::sync::OnceLock::new();

/// The environment variable that pins the binary's clock (RFC 3339 or epoch milliseconds):
/// for end-to-end tests of the real binary, never for production.
pub const ENV: &str = "SIGNOFF_CLOCK";

impl Clock {
    /// Follows the system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Stands still at `at` until moved with [`Clock::advance`].
    pub fn fixed(at: Millis) -> Clock {
        let c = Clock::default();
        c.0.frozen.store(at, Ordering::Relaxed);
        c
    }

    /// The system clock, or the time `SIGNOFF_CLOCK` names; an unreadable value is an error
    /// that names the variable.
    pub fn from_env() -> Result<Clock, String> {
        match std::env::var(ENV) {
            Ok(v) if !v.trim().is_empty() => parse(v.trim()).map(Clock::fixed).ok_or_else(|| {
                format!("{ENV}={v:?} is neither an RFC 3339 time nor epoch milliseconds")
            }),
            _ => Ok(Clock::system()),
        }
    }

    /// The clock of this process: the one `init_process` set from the environment, else the
    /// system clock. The binary's commands take their time from it.
    pub fn process() -> Clock {
        PROCESS.get_or_init(Clock::system).clone()
    }

    /// Sets the process's clock from `SIGNOFF_CLOCK` (once, at start).
    pub fn init_process() -> Result<(), String> {
        let c = Clock::from_env()?;
        let _ = PROCESS.set(c);
        Ok(())
    }

    pub fn now(&self) -> Millis {
        let frozen = self.0.frozen.load(Ordering::Relaxed);
        let base = if frozen == i64::MIN {
            system_now()
        } else {
            frozen
        };
        base.saturating_add(self.0.offset.load(Ordering::Relaxed))
    }

    /// Whether the clock stands still (pinned by a test or `SIGNOFF_CLOCK`).
    pub fn is_fixed(&self) -> bool {
        self.0.frozen.load(Ordering::Relaxed) != i64::MIN
    }

    /// Stops the clock at the current time; [`Clock::advance`] still moves it.
    pub fn freeze(&self) {
        let now = self.now();
        self.0.offset.store(0, Ordering::Relaxed);
        self.0.frozen.store(now, Ordering::Relaxed);
    }

    /// Moves the clock by `ms` (negative moves it back).
    pub fn advance(&self, ms: Millis) {
        self.0.offset.fetch_add(ms, Ordering::Relaxed);
    }
}

/// The system clock in epoch milliseconds. Only [`Clock`] should call this.
pub fn system_now() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn parse(v: &str) -> Option<Millis> {
    if let Ok(ms) = v.parse::<i64>() {
        return Some(ms);
    }
    let t = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_moves_only_when_told_and_clones_share_it() {
        let c = Clock::fixed(1_000);
        let d = c.clone();
        assert_eq!(c.now(), 1_000);
        d.advance(500);
        assert_eq!(c.now(), 1_500);
        assert!(c.is_fixed());
        assert!(!Clock::system().is_fixed());
    }

    #[test]
    fn freezing_keeps_the_time_it_was_frozen_at() {
        let c = Clock::fixed(5_000);
        c.advance(1_000);
        c.freeze();
        assert_eq!(c.now(), 6_000);
        c.advance(-6_000);
        assert_eq!(c.now(), 0);
    }

    #[test]
    fn parses_rfc3339_and_epoch_millis() {
        assert_eq!(parse("1700000000000"), Some(1_700_000_000_000));
        assert_eq!(parse("2026-11-21T12:00:00Z"), Some(1_795_262_400_000));
        assert_eq!(parse("yesterday"), None);
    }
}
