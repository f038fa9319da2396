//! Small formatting helpers shared by the views: ages, confidence bars, times, and
//! sanitised, width-aware text from requests.
use std::borrow::Cow;

use ratatui::style::Style;

use crate::queue::Millis;
use crate::text;
use crate::tui::theme::Theme;

/// "45s", "12m", "3h", "2d".
pub fn age(ms: Millis) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// Style of an age against its priority's SLA: fine, over half, breached.
pub fn age_style(theme: &Theme, age: Millis, sla_minutes: Option<u64>) -> Style {
    match sla_minutes {
        Some(m) if m > 0 => {
            let sla = (m as i64).saturating_mul(60_000);
            if age >= sla {
                theme.error
            } else if age.saturating_mul(2) >= sla {
                theme.warn
            } else {
                theme.muted
            }
        }
        _ => theme.muted,
    }
}

/// Confidence band style: below the threshold, within 0.1 above, comfortably above.
pub fn conf_style(theme: &Theme, conf: Option<f64>, threshold: f64) -> Style {
    match conf {
        None => theme.conf_low,
        Some(c) if c < threshold => theme.conf_low,
        Some(c) if c < threshold + 0.1 => theme.conf_mid,
        Some(_) => theme.conf_high,
    }
}

/// "0.62 ▰▰▱▱" (bar of `cells`), "  ?  ▱▱▱▱" when unknown.
pub fn conf_text(conf: Option<f64>, cells: usize) -> String {
    match conf {
        Some(c) => {
            let filled = ((c.clamp(0.0, 1.0) * cells as f64).round() as usize).min(cells);
            format!(
                "{c:.2} {}{}",
                "▰".repeat(filled),
                "▱".repeat(cells - filled)
            )
        }
        None => format!("  ?  {}", "▱".repeat(cells)),
    }
}

/// Request text made safe and cut to `max` cells.
pub fn clean(s: &str, max: usize) -> String {
    let s = text::sanitize(s);
    text::truncate(&s, max).into_owned()
}

pub fn clean_opt(s: Option<&str>) -> Cow<'_, str> {
    match s {
        Some(s) => text::sanitize(s),
        None => Cow::Borrowed(""),
    }
}

/// `s` padded with spaces (or cut) to exactly `w` cells.
pub fn pad(s: &str, w: usize) -> String {
    let t = text::truncate(s, w);
    let used = text::width(&t);
    let mut out = t.into_owned();
    out.extend(std::iter::repeat_n(' ', w.saturating_sub(used)));
    out
}

/// "2026-11-21 04:12 UTC".
pub fn time(ms: Millis) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return ms.to_string();
    };
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    t.format(&f).map(|s| format!("{s} UTC")).unwrap_or_default()
}

/// Greedy word wrap of one sanitized line to `width` cells; words wider than a line are
/// cut by grapheme. Never returns an empty vector.
pub fn wrap(s: &str, width: usize) -> Vec<String> {
    use unicode_segmentation::UnicodeSegmentation;
    let width = width.max(1);
    let mut out = Vec::new();
    let mut line = String::new();
    let mut used = 0usize;
    for word in s.split_word_bounds() {
        let w = text::width(word);
        if used + w <= width {
            line.push_str(word);
            used += w;
            continue;
        }
        if word.trim().is_empty() {
            // A space at the break: drop it.
            out.push(std::mem::take(&mut line));
            used = 0;
            continue;
        }
        if used > 0 && w <= width {
            out.push(std::mem::take(&mut line));
            line.push_str(word);
            used = w;
            continue;
        }
        for g in word.graphemes(true) {
            let gw = text::width(g);
            if used + gw > width && used > 0 {
                out.push(std::mem::take(&mut line));
                used = 0;
            }
            line.push_str(g);
            used += gw;
        }
    }
    if !line.is_empty() || out.is_empty() {
        out.push(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_by_width_never_splits_graphemes() {
        assert_eq!(
            wrap("the quick brown fox", 9),
            vec!["the quick", "brown fox"]
        );
        assert_eq!(wrap("", 5), vec![""]);
        for l in wrap("東京都の配送センターで👩‍👩‍👧‍👦が待っています", 7)
        {
            assert!(text::width(&l) <= 7, "{l}");
        }
        assert_eq!(wrap("abcdefgh", 3), vec!["abc", "def", "gh"]);
    }

    #[test]
    fn ages_and_bars() {
        assert_eq!(age(59_000), "59s");
        assert_eq!(age(3_600_000 * 5), "5h");
        assert_eq!(age(-5), "0s");
        assert_eq!(conf_text(Some(0.5), 4), "0.50 ▰▰▱▱");
        assert_eq!(conf_text(None, 2), "  ?  ▱▱");
        assert_eq!(pad("日本", 5), "日本 ");
    }
}
