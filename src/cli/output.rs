//! Printing for headless commands: JSON that keeps every character of the original text
//! but cannot drive a terminal, and sanitized, width-aware tables.
use std::io::{self, Write};

use serde::Serialize;

use crate::text::{sanitize, truncate, width};

/// A JSON formatter that writes C1 controls, bidi controls and line/paragraph separators as
/// `\uXXXX` escapes. The decoded strings are identical to the originals; the bytes on the
/// terminal carry nothing a terminal or a reader's eye would act on. (serde_json already
/// escapes C0 controls.)
struct SafeFormatter;

impl serde_json::ser::Formatter for SafeFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if needs_escape(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                write!(writer, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

fn needs_escape(c: char) -> bool {
    matches!(c,
        '\u{7f}'..='\u{9f}'
        | '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// Serializes to JSON (pretty when `pretty`) with [`SafeFormatter`]'s escapes.
pub fn json_string<T: Serialize>(value: &T, pretty: bool) -> serde_json::Result<String> {
    let mut out = Vec::new();
    if pretty {
        let mut ser = serde_json::Serializer::with_formatter(&mut out, PrettySafe::default());
        value.serialize(&mut ser)?;
    } else {
        let mut ser = serde_json::Serializer::with_formatter(&mut out, SafeFormatter);
        value.serialize(&mut ser)?;
    }
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// Pretty printing with the same escapes.
#[derive(Default)]
struct PrettySafe<'a> {
    inner: serde_json::ser::PrettyFormatter<'a>,
}

macro_rules! delegate {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $name<W: ?Sized + Write>(&mut self, w: &mut W $(, $arg: $ty)*) -> io::Result<()> {
            self.inner.$name(w $(, $arg)*)
        })*
    };
}

impl serde_json::ser::Formatter for PrettySafe<'_> {
    delegate! {
        begin_array();
        end_array();
        begin_array_value(first: bool);
        end_array_value();
        begin_object();
        end_object();
        begin_object_key(first: bool);
        end_object_key();
        begin_object_value();
        end_object_value();
    }
    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, f: &str) -> io::Result<()> {
        SafeFormatter.write_string_fragment(w, f)
    }
}

/// Prints one JSON document on stdout.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let text = json_string(value, true)?;
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    Ok(())
}

/// A column-aligned table; every cell passes the sanitizer and is cut to its width.
pub struct Table {
    headers: Vec<&'static str>,
    /// Max width per column (0 = no limit).
    limits: Vec<usize>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: &[(&'static str, usize)]) -> Table {
        Table {
            headers: columns.iter().map(|c| c.0).collect(),
            limits: columns.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        let cells = cells
            .into_iter()
            .zip(&self.limits)
            .map(|(c, limit)| {
                let clean = sanitize(&c).into_owned();
                if *limit > 0 {
                    truncate(&clean, *limit).into_owned()
                } else {
                    clean
                }
            })
            .collect();
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                widths[i] = widths[i].max(width(c));
            }
        }
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String| {
            let last = cells.len().saturating_sub(1);
            for (i, c) in cells.iter().enumerate() {
                out.push_str(c);
                if i < last {
                    out.push_str(&" ".repeat(widths[i].saturating_sub(width(c)) + 2));
                }
            }
            out.push('\n');
        };
        let headers: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        line(&headers, &mut out);
        for r in &self.rows {
            line(r, &mut out);
        }
        out
    }
}

/// "3m", "2h", "4d" since `then`.
pub fn age(now: i64, then: i64) -> String {
    let s = ((now - then) / 1000).max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// RFC 3339 in UTC, to the second.
pub fn timestamp(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// `--since`: an RFC 3339 time, or an age like `30m`, `24h`, `7d` (that long ago).
pub fn parse_since(s: &str, now: i64) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    // A date: from its midnight, UTC.
    if let Ok(d) = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")) {
        return Ok(d.midnight().assume_utc().unix_timestamp() * 1000);
    }
    if s.len() == 10 && s.as_bytes().get(4) == Some(&b'-') && s.as_bytes().get(7) == Some(&b'-') {
        return Err(format!(
            "--since {s:?} is not a date; expected an RFC 3339 time or an age like 30m, 24h, 7d, or a date (2026-12-01)"
        ));
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| {
        format!("--since {s:?}: expected an RFC 3339 time or an age like 30m, 24h, 7d, or a date (2026-12-01)")
    })?;
    let ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => {
            return Err(format!(
                "--since {s:?}: unknown unit {unit:?}; use s, m, h, d or w"
            ));
        }
    };
    Ok(now - n.saturating_mul(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_what_a_terminal_would_act_on_and_decodes_to_the_same_text() {
        let s = "a\u{1b}[31m b\u{9b}2J c\u{202e}fdp.exe d\u{2028}e 日本 👩‍👩‍👧";
        let out = json_string(&serde_json::json!({ "t": s }), false).unwrap();
        assert!(!out.chars().any(needs_escape), "{out}");
        assert!(!out.contains('\u{1b}'));
        assert!(out.contains("\\u001b") && out.contains("\\u009b") && out.contains("\\u202e"));
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back["t"], s);
        let pretty = json_string(&serde_json::json!({ "t": s }), true).unwrap();
        assert!(pretty.contains("\\u202e") && pretty.contains('\n'));
        let back: serde_json::Value = serde_json::from_str(&pretty).unwrap();
        assert_eq!(back["t"], s);
    }

    #[test]
    fn tables_sanitize_and_cut_cells() {
        let mut t = Table::new(&[("ID", 0), ("FROM", 10)]);
        t.row(vec![
            "1".into(),
            "evil\u{1b}]0;title\u{7} very long sender".into(),
        ]);
        let r = t.render();
        assert!(!r.contains('\u{1b}') && !r.contains('\u{7}'), "{r}");
        assert!(r.lines().nth(1).unwrap().ends_with('…'), "{r}");
    }
}
