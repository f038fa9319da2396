//! When to try again: capped exponential backoff with full jitter, never before the
//! server's own hint (`Retry-After`, as delta-seconds or an HTTP-date).
use std::time::{Duration, SystemTime};

/// The longest a server's hint may hold a row back: a day. A hint beyond it (a typo, a
/// hostile or broken server) is taken as a day, never as a number that overflows.
pub const MAX_HINT: Duration = Duration::from_secs(86_400);

/// Seconds from a server, as a wait: finite, not negative, at most [`MAX_HINT`].
pub fn hint_secs(secs: f64) -> Option<Duration> {
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(secs).map_or(MAX_HINT, |d| d.min(MAX_HINT)))
}

/// A random wait in `[0, min(cap, base · 2^(attempt-1))]` ("full jitter"), at least `floor`
/// (itself at most [`MAX_HINT`]).
pub fn delay(attempt: u32, base_ms: u64, cap_ms: u64, floor: Option<Duration>) -> Duration {
    let ceiling = ceiling_ms(attempt, base_ms, cap_ms);
    let jitter = Duration::from_millis(fastrand::u64(0..=ceiling));
    match floor {
        Some(f) => jitter.max(f.min(MAX_HINT)),
        None => jitter,
    }
}

/// The longest wait before retry `attempt` (1-based): `base · 2^(attempt-1)`, at most `cap`.
pub fn ceiling_ms(attempt: u32, base_ms: u64, cap_ms: u64) -> u64 {
    base_ms
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(40))
        .min(cap_ms)
}

/// A wait in `[ceiling/2, ceiling]` of retry `attempt` ("equal jitter"): for looking an
/// effect up again, where the looks must keep spreading out over time instead of coming
/// back at once as full jitter may.
pub fn lookup_delay(attempt: u32, base_ms: u64, cap_ms: u64) -> Duration {
    let ceiling = ceiling_ms(attempt, base_ms, cap_ms);
    Duration::from_millis(fastrand::u64(ceiling / 2..=ceiling))
}

/// How long after an uncertain first attempt its row is still being looked up at least:
/// the waits before attempts 2 ..= `max_attempts`, each at least half its ceiling
/// ([`lookup_delay`]). A lookup window longer than this may outlast the row's attempts.
pub fn lookup_reach_ms(max_attempts: u32, base_ms: u64, cap_ms: u64) -> u64 {
    let waits = u64::from(max_attempts.saturating_sub(1));
    // Past the 41st wait the ceiling no longer grows (see `ceiling_ms`).
    let growing = waits.min(41);
    let sum = (1..=growing as u32)
        .map(|n| ceiling_ms(n, base_ms, cap_ms) / 2)
        .fold(0u64, u64::saturating_add);
    let flat = (waits - growing).saturating_mul(ceiling_ms(42, base_ms, cap_ms) / 2);
    sum.saturating_add(flat)
}

/// `Retry-After: 7` or `Retry-After: Wed, 21 Oct 2026 07:28:00 GMT`.
pub fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_HINT));
    }
    if let Ok(secs) = v.parse::<f64>() {
        return hint_secs(secs);
    }
    let at = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(at.unix_timestamp().max(0) as u64);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The wait a message names as "in N seconds" (or "in N second", "in 2.5 seconds"), wherever
/// it occurs: "Complexity budget exhausted, … reset in 3 seconds" → 3 s (monday's legacy
/// shape); "Rate limited in channel X, retry in 30 seconds" → 30 s. The first such phrase
/// counts; "in" must be a word of its own ("within 5 seconds" is not a hint). At most
/// [`MAX_HINT`].
pub fn seconds_in_message(msg: &str) -> Option<Duration> {
    let lower = msg.to_ascii_lowercase();
    lower.match_indices("in ").find_map(|(i, _)| {
        let word_start = lower[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        if !word_start {
            return None;
        }
        let rest = lower[i + 3..].trim_start();
        let int = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if int == 0 {
            return None;
        }
        let frac = rest[int..].strip_prefix('.').map_or(0, |f| {
            let n = f.len() - f.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if n == 0 { 0 } else { n + 1 }
        });
        let number = &rest[..int + frac];
        if !rest[number.len()..].trim_start().starts_with("second") {
            return None;
        }
        number.parse::<f64>().ok().and_then(hint_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_stays_under_the_cap_and_over_the_hint() {
        for attempt in 1..50 {
            let d = delay(attempt, 100, 5_000, None);
            assert!(d <= Duration::from_millis(5_000));
            let d = delay(attempt, 100, 5_000, Some(Duration::from_secs(7)));
            assert!(d >= Duration::from_secs(7));
        }
        assert!(delay(1, 100, 5_000, None) <= Duration::from_millis(100));
    }

    #[test]
    fn lookups_spread_out_and_their_reach_is_the_sum_of_half_ceilings() {
        for attempt in 1..12 {
            let d = lookup_delay(attempt, 2_000, 600_000).as_millis() as u64;
            let c = ceiling_ms(attempt, 2_000, 600_000);
            assert!((c / 2..=c).contains(&d), "{attempt}: {d} of {c}");
        }
        // Defaults: halves of 2, 4, 8, 16, 32, 64, 128 s before attempts 2..=8.
        assert_eq!(lookup_reach_ms(8, 2_000, 600_000), 127_000);
        assert_eq!(lookup_reach_ms(3, 60_000, 120_000), 90_000);
        assert_eq!(
            lookup_reach_ms(1, 2_000, 600_000),
            0,
            "no attempt after the first"
        );
        assert_eq!(lookup_reach_ms(0, 2_000, 600_000), 0);
        assert_eq!(lookup_reach_ms(50, 1, 5), 1 + 2 + 2 * 46);
        assert_eq!(
            lookup_reach_ms(u32::MAX, u64::MAX, u64::MAX),
            u64::MAX,
            "saturates"
        );
    }

    #[test]
    fn seconds_are_found_wherever_in_n_seconds_occurs() {
        let s = |n: u64| Some(Duration::from_secs(n));
        let table: &[(&str, Option<Duration>)] = &[
            (
                "Complexity budget exhausted, query cost 30001 budget remaining 1, reset in 3 seconds",
                s(3),
            ),
            // An earlier "in " that is not followed by a number of seconds.
            ("Rate limited in channel X, retry in 30 seconds", s(30)),
            ("in channel C1 in 2 minutes, then in 4 seconds", s(4)),
            ("Retry in 1 second", s(1)),
            ("in 7 seconds", s(7)),
            ("RESET IN 12 SECONDS", s(12)),
            ("retry in 5seconds", s(5)),
            ("retry in  9 seconds", s(9)),
            ("retry in 2.5 seconds", Some(Duration::from_millis(2_500))),
            // The first "in N seconds" counts.
            ("reset in 3 seconds or in 5 seconds", s(3)),
            // Not "in" as a word, not seconds, no number.
            ("within 5 seconds", None),
            ("Rate limited in channel X", None),
            ("try again in 10 minutes", None),
            ("try again in a few seconds", None),
            ("in ", None),
            ("", None),
            ("réessayez in 6 seconds", s(6)),
            // Absurd numbers are a day at most.
            ("reset in 99999999999999999999999 seconds", Some(MAX_HINT)),
        ];
        for (msg, want) in table {
            assert_eq!(seconds_in_message(msg), *want, "{msg:?}");
        }
    }

    #[test]
    fn retry_after_in_both_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let date = time::OffsetDateTime::from_unix_timestamp(1_800_000_030)
            .unwrap()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap();
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("soon", now), None);
        // The IMF-fixdate servers send (RFC 9110), and an obsolete but valid zone.
        let before = SystemTime::UNIX_EPOCH + Duration::from_secs(1_792_567_680 - 30);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", before),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after(
                "Wed, 21 Oct 2026 07:28:00 GMT",
                before + Duration::from_secs(60)
            ),
            Some(Duration::ZERO),
            "a date in the past: now"
        );
        // Absurd hints are a day at most, never a panic or an overflow.
        assert_eq!(parse_retry_after("1e300", now), Some(MAX_HINT));
        assert_eq!(
            parse_retry_after("99999999999999999999", now),
            Some(MAX_HINT)
        );
        assert_eq!(
            parse_retry_after("18446744073709551615", now),
            Some(MAX_HINT)
        );
        assert_eq!(parse_retry_after("-3", now), None);
        assert!(delay(1, 100, 5_000, Some(Duration::MAX)) <= MAX_HINT);
        assert_eq!(
            seconds_in_message(
                "Complexity budget exhausted, query cost 30001 budget remaining 1, reset in 3 seconds"
            ),
            Some(Duration::from_secs(3))
        );
    }
}
