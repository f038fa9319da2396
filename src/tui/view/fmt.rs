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

/// Cells a string takes on screen as ratatui places it: the sum of its graphemes' widths.
///
/// Not `text::width` of the whole string: unicode-width counts an Arabic lam-alef pair as
/// one cell, while ratatui (and terminals without shaping) give each letter its own.
pub fn cells(s: &str) -> usize {
    use unicode_segmentation::UnicodeSegmentation;
    // Sanitized ASCII is one cell per byte; only other text needs segmenting.
    if s.is_ascii() {
        return s.len();
    }
    s.graphemes(true).map(text::width).sum()
}

/// `s` cut to at most `max` cells as [`cells`] counts them, with `…` when cut.
pub fn cut(s: &str, max: usize) -> String {
    use unicode_segmentation::UnicodeSegmentation;
    if cells(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    if s.is_ascii() {
        let mut out = s[..max - 1].to_string();
        out.push('…');
        return out;
    }
    let mut out = String::new();
    let mut used = 0;
    for g in s.graphemes(true) {
        let w = text::width(g);
        if used + w + 1 > max {
            break;
        }
        out.push_str(g);
        used += w;
    }
    out.push('…');
    out
}

/// Request text made safe and cut to `max` cells.
pub fn clean(s: &str, max: usize) -> String {
    let s = text::sanitize(s);
    cut(&s, max)
}

pub fn clean_opt(s: Option<&str>) -> Cow<'_, str> {
    match s {
        Some(s) => text::sanitize(s),
        None => Cow::Borrowed(""),
    }
}

/// `s` padded with spaces (or cut) to exactly `w` cells.
pub fn pad(s: &str, w: usize) -> String {
    let mut out = cut(s, w);
    let used = cells(&out);
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
        let w = cells(word);
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
            assert!(cells(&l) <= 7, "{l}");
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
        // Lam-alef: two cells on screen, whatever unicode-width says of the pair.
        assert_eq!(cells("لا"), 2);
        assert_eq!(pad("لا", 3), "لا ");
        assert_eq!(cut("abcdef", 4), "abc…");
    }
}
