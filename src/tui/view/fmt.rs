//! Small formatting helpers shared by the views: ages, confidence bars, times, and
//! sanitised, width-aware text from requests.
use std::borrow::Cow;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;

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
    // Most other text is characters that are a grapheme on their own whatever surrounds
    // them (letters, punctuation, symbols, CJK): their widths add up without segmenting.
    let mut n = 0;
    for c in s.chars() {
        if !alone(c) {
            return s.graphemes(true).map(text::width).sum();
        }
        n += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
    }
    n
}

/// Never joins a neighbour into one grapheme (UAX #29 class Other, and not a control):
/// no combining or spacing marks, joiners, variation selectors, prepended marks, Hangul
/// jamo, regional indicators or emoji modifiers.
fn alone(c: char) -> bool {
    matches!(c as u32,
        0x20..=0x7E
        | 0xA0..=0xAC
        | 0xAE..=0x2FF
        | 0x370..=0x482
        | 0x48A..=0x58F
        | 0x5D0..=0x5EA
        | 0x5F0..=0x5F4
        | 0x621..=0x64A
        | 0x2010..=0x2027
        | 0x2030..=0x205E
        | 0x2070..=0x20C0
        | 0x2100..=0x27BF
        | 0x2E80..=0x3029
        | 0x3030..=0x303E
        | 0x3041..=0x3096
        | 0x309B..=0x30FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xAC00..=0xD7A3
        | 0xFF01..=0xFF9D
        | 0xFFE0..=0xFFE6)
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
    if s.chars().all(alone) {
        // Each character is a grapheme (see `cells`).
        for c in s.chars() {
            let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
            if used + w + 1 > max {
                break;
            }
            out.push(c);
            used += w;
        }
    } else {
        for g in s.graphemes(true) {
            let w = text::width(g);
            if used + w + 1 > max {
                break;
            }
            out.push_str(g);
            used += w;
        }
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

/// Writes lines into `area` from line `skip` on, as `Paragraph` (without wrapping) does,
/// but ASCII spans go in byte by byte instead of through grapheme segmentation: the list
/// and the detail are most of a frame's text.
pub fn put_lines(buf: &mut Buffer, area: Rect, lines: &[Line<'_>], skip: usize) {
    let right = area.right();
    for (line, y) in lines.iter().skip(skip).zip(area.top()..area.bottom()) {
        let mut x = area.x;
        for span in &line.spans {
            if x >= right {
                break;
            }
            let style = line.style.patch(span.style);
            let s = span.content.as_ref();
            if s.is_ascii() {
                for b in s.bytes().filter(|b| !b.is_ascii_control()) {
                    if x >= right {
                        break;
                    }
                    buf[(x, y)].set_char(char::from(b)).set_style(style);
                    x += 1;
                }
            } else {
                x = buf.set_stringn(x, y, s, usize::from(right - x), style).0;
            }
        }
    }
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
    // Word segmentation is most of a detail pane's cost; ASCII text (most requests) has
    // a short rule set (see `ascii_words`).
    let words: Box<dyn Iterator<Item = &str>> = if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Box::new(AsciiWords { s })
    } else {
        Box::new(s.split_word_bounds())
    };
    for word in words {
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

/// UAX #29 word boundaries (what `split_word_bounds` gives) for printable ASCII (no control
/// characters, so no CR LF pairs): letters, digits and `_` join; `.` `'` join letters to letters, and with `,`
/// `;` digits to digits; `:` joins letters; runs of spaces stay together; everything else
/// stands alone.
struct AsciiWords<'a> {
    s: &'a str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wb {
    Letter,
    Digit,
    /// `_`
    Extend,
    /// `:`
    MidLetter,
    /// `.` and `'`
    MidNumLet,
    /// `,` and `;`
    MidNum,
    Space,
    Other,
}

fn wb(b: u8) -> Wb {
    match b {
        b'a'..=b'z' | b'A'..=b'Z' => Wb::Letter,
        b'0'..=b'9' => Wb::Digit,
        b'_' => Wb::Extend,
        b':' => Wb::MidLetter,
        b'.' | b'\'' => Wb::MidNumLet,
        b',' | b';' => Wb::MidNum,
        b' ' => Wb::Space,
        _ => Wb::Other,
    }
}

impl<'a> Iterator for AsciiWords<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let b = self.s.as_bytes();
        if b.is_empty() {
            return None;
        }
        let at = |i: usize| b.get(i).copied().map(wb);
        let mut i = 1;
        while i < b.len() {
            let (prev, cur) = (wb(b[i - 1]), wb(b[i]));
            let joins = match (prev, cur) {
                (Wb::Space, Wb::Space) => true,
                (Wb::Letter | Wb::Digit | Wb::Extend, Wb::Letter | Wb::Digit | Wb::Extend) => true,
                // Letter (MidLetter | MidNumLet) Letter, and digit (MidNum | MidNumLet)
                // digit: the middle one joins when the same kind follows it.
                (Wb::Letter, Wb::MidLetter | Wb::MidNumLet) => at(i + 1) == Some(Wb::Letter),
                (Wb::Digit, Wb::MidNum | Wb::MidNumLet) => at(i + 1) == Some(Wb::Digit),
                (Wb::MidLetter | Wb::MidNumLet, Wb::Letter) => {
                    i >= 2 && at(i - 2) == Some(Wb::Letter)
                }
                (Wb::MidNum | Wb::MidNumLet, Wb::Digit) => i >= 2 && at(i - 2) == Some(Wb::Digit),
                _ => false,
            };
            if !joins {
                break;
            }
            i += 1;
        }
        let (word, rest) = self.s.split_at(i);
        self.s = rest;
        Some(word)
    }
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

    /// The shortcut in `cells` gives what segmenting gives.
    #[test]
    fn characters_that_stand_alone_do() {
        use unicode_segmentation::UnicodeSegmentation;
        let all: Vec<char> = (0..0x40000u32)
            .filter_map(char::from_u32)
            .filter(|c| alone(*c))
            .collect();
        for &c in &all {
            let s = c.to_string();
            assert_eq!(
                unicode_width::UnicodeWidthChar::width(c).unwrap_or(0),
                text::width(&s),
                "{c:?}"
            );
            for t in [format!("a{c}"), format!("{c}a"), format!("{c}{c}")] {
                assert_eq!(t.graphemes(true).count(), 2, "{t:?}");
            }
        }
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..50_000 {
            let t: String = (0..3).map(|_| all[rng.usize(..all.len())]).collect();
            let slow: usize = t.graphemes(true).map(text::width).sum();
            assert_eq!(cells(&t), slow, "{t:?}");
            let mut cut_slow = String::new();
            let mut used = 0;
            for g in t.graphemes(true) {
                if used + text::width(g) + 1 > 3 {
                    break;
                }
                cut_slow.push_str(g);
                used += text::width(g);
            }
            if slow > 3 {
                cut_slow.push('…');
                assert_eq!(cut(&t, 3), cut_slow, "{t:?}");
            }
            assert_eq!(t.graphemes(true).count(), 3, "{t:?}");
        }
    }

    /// The ASCII shortcut splits words exactly where unicode-segmentation does.
    #[test]
    fn ascii_words_are_uax29_words() {
        use unicode_segmentation::UnicodeSegmentation;
        let alphabet = b"aZ9_:.',; -\"/@#()!?x0";
        let mut rng = fastrand::Rng::with_seed(11);
        for n in 0..200_000 {
            let len = 1 + n % 9;
            let s: String = (0..len)
                .map(|_| char::from(alphabet[rng.usize(..alphabet.len())]))
                .collect();
            let want: Vec<&str> = s.split_word_bounds().collect();
            let got: Vec<&str> = AsciiWords { s: &s }.collect();
            assert_eq!(got, want, "{s:?}");
        }
        for s in [
            "Re: Dispatch board n/a since 3.14, e.g. don't (v1.2.3) priya.raman@harborline.example",
            "track.fleetwise.example/api/t/{id}, where {id} is a 12,500.00 USD; 10:30",
            "",
        ] {
            let want: Vec<&str> = s.split_word_bounds().collect();
            assert_eq!(AsciiWords { s }.collect::<Vec<_>>(), want, "{s:?}");
        }
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
