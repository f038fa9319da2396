//! Text from outside: the one gate between untrusted request text and a terminal.
//!
//! Email bodies, subjects and names in a request are written by strangers and may be hostile.
//! Everything from a request passes [`sanitize`] (or [`sanitize_lines`] / [`sanitize_bytes`])
//! before it is drawn, printed or logged. The output never holds anything a terminal would act
//! on, and nothing is silently dropped: every neutralised character stays visible so the
//! reviewer sees what the sender sent.
//!
//! | input                                              | shown as                          |
//! |----------------------------------------------------|-----------------------------------|
//! | line break: `\n`, `\r\n`, lone `\r`, U+2028, U+2029 | `⏎` ([`sanitize`]) or a new line  |
//! | tab                                                | four spaces                       |
//! | ESC sequence (CSI, OSC, DCS, SOS, PM, APC, 2-char)  | `␛` + its body: `\x1b[31m` → `␛[31m` |
//! | 8-bit sequence (U+009B CSI, U+009D OSC, …)         | as its 7-bit form: `␛[31m`        |
//! | other C0 control, DEL                              | Control Pictures: `␀`, `␇`, `␡`   |
//! | other C1 control                                   | `⟨U+0085⟩`                        |
//! | bidi control, zero-width space, BOM, word joiner, invisible operators, interlinear annotation, tag characters | `⟨U+202E⟩` |
//!
//! Escape sequences are neutralised whole, so a reviewer reads `␛]8;;https://…␛\` rather than a
//! clickable link, and a cursor move cannot overwrite the line above. Control characters inside
//! a sequence's body get their visible form too. A sequence without its terminator runs to the
//! end of its line: a line break always ends a sequence, so [`sanitize`] and [`sanitize_lines`]
//! agree (`sanitize(s)` is the lines of `sanitize_lines(s)` joined by `⏎`) and an unterminated
//! OSC cannot fold the rest of an email into one line.
//!
//! Beyond the list in the brief, tag characters (U+E0000..=U+E007F, used for "ASCII smuggling" of
//! hidden instructions past a human reader) and the invisible format characters
//! U+2061..=U+2064 and U+206A..=U+206F are marked too. Tags stay intact only inside a
//! subdivision flag such as 🏴󠁧󠁢󠁳󠁣󠁴󠁿 (🏴 followed by 3 to 7 tag letters or digits and CANCEL TAG).
//! Everything else (CJK, emoji with ZWJ, combining marks, Arabic and Hebrew) passes unchanged.
//!
//! [`has_hidden`] drives the item's "hidden characters" badge. [`width`] and [`truncate`] measure
//! and cut by display cells and grapheme clusters, never by bytes.
//!
//! It is one pass over the bytes with a lookup table; clean text comes back borrowed, so a
//! 2 MB body costs a scan and no allocation.

use std::borrow::Cow;
use std::fmt::Write as _;

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// Shown in place of a line break when text is kept on one line.
pub const NEWLINE_MARK: &str = "⏎";
/// Appended by [`truncate`] when it cuts; one cell wide.
pub const ELLIPSIS: &str = "…";
/// Shown in place of ESC (and at the start of an 8-bit sequence).
const ESC_MARK: char = '\u{241B}';
/// A tab is shown as this many spaces.
const TAB_SPACES: &str = "    ";
/// A string terminator, 7-bit or 8-bit, as shown.
const ST_MARK: &str = "\u{241B}\\";

/// Bytes that may start a character needing a closer look: ASCII controls and DEL, and the UTF-8
/// lead bytes of every block holding a character we neutralise (C2: C1 controls; D8: U+061C;
/// E2: U+2000..U+2FFF; EF: U+FEFF, U+FFF9..; F3: tags). Continuation bytes (0x80..=0xBF) are never
/// in the table, so a hit is always on a character boundary.
static LOOK: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[0x7F] = true;
    t[0xC2] = true;
    t[0xD8] = true;
    t[0xE2] = true;
    t[0xEF] = true;
    t[0xF3] = true;
    t
};

/// What the sanitizer does with one character.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Plain,
    Tab,
    Lf,
    Cr,
    /// U+2028 LINE SEPARATOR, U+2029 PARAGRAPH SEPARATOR.
    LineSep,
    Esc,
    /// C0 controls other than the above, and DEL.
    Control,
    /// U+0080..=U+009F.
    C1,
    /// Bidi controls, zero-width and other invisible format characters.
    Invisible,
    /// U+E0000..=U+E007F: invisible unless part of a subdivision flag.
    Tag,
}

fn kind(c: char) -> Kind {
    match c {
        '\t' => Kind::Tab,
        '\n' => Kind::Lf,
        '\r' => Kind::Cr,
        '\u{1b}' => Kind::Esc,
        '\0'..='\u{1f}' | '\u{7f}' => Kind::Control,
        '\u{80}'..='\u{9f}' => Kind::C1,
        '\u{2028}' | '\u{2029}' => Kind::LineSep,
        '\u{061c}'
        | '\u{200b}'
        | '\u{200e}'
        | '\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}'
        | '\u{feff}'
        | '\u{fff9}'..='\u{fffb}' => Kind::Invisible,
        '\u{e0000}'..='\u{e007f}' => Kind::Tag,
        _ => Kind::Plain,
    }
}

/// The character starting at byte `i`, if `i` is a character boundary inside `s`.
fn char_at(s: &str, i: usize) -> Option<char> {
    s.get(i..).and_then(|t| t.chars().next())
}

/// Byte length of the tag run at `i` when it completes a subdivision flag: it follows 🏴 and is
/// 3..=7 tag digits or lowercase letters then CANCEL TAG. Anything longer or stranger is a
/// hiding place, not a flag.
fn flag_tags_len(s: &str, i: usize) -> Option<usize> {
    if !s.get(..i)?.ends_with('\u{1F3F4}') {
        return None;
    }
    let mut letters = 0;
    for (off, c) in s.get(i..)?.char_indices() {
        match c {
            '\u{e0030}'..='\u{e0039}' | '\u{e0061}'..='\u{e007a}' if letters < 7 => letters += 1,
            '\u{e007f}' if letters >= 3 => return Some(off + c.len_utf8()),
            _ => return None,
        }
    }
    None
}

/// The 7-bit introducer equivalent to an 8-bit one (U+009B is `ESC [`, …).
fn c1_introducer(c: char) -> Option<u8> {
    match c {
        '\u{9b}' => Some(b'['),
        '\u{9d}' => Some(b']'),
        '\u{90}' => Some(b'P'),
        '\u{98}' => Some(b'X'),
        '\u{9e}' => Some(b'^'),
        '\u{9f}' => Some(b'_'),
        _ => None,
    }
}

fn push_codepoint(out: &mut String, c: char) {
    // Writing into a String cannot fail.
    let _ = write!(out, "⟨U+{:04X}⟩", u32::from(c));
}

/// Push `c` in its visible form: itself when harmless, a Control Picture for C0 and DEL,
/// `⟨U+XXXX⟩` otherwise. Used for lone characters and inside sequence bodies.
fn push_visible(out: &mut String, c: char) {
    match c {
        '\0'..='\u{1f}' => out.push(char::from_u32(0x2400 + u32::from(c)).unwrap_or('\u{fffd}')),
        '\u{7f}' => out.push('\u{2421}'),
        _ if kind(c) == Kind::Plain => out.push(c),
        _ => push_codepoint(out, c),
    }
}

/// One line, safe for a terminal: no C0 control (incl. \n, \r, \t), no DEL, no C1 (U+0080..=U+009F), no ESC,
/// no bidi control (U+061C, U+200E, U+200F, U+202A..=U+202E, U+2066..=U+2069), no U+2028/U+2029, no BOM/zero-width
/// space (U+FEFF, U+200B, U+2060) and no interlinear annotation chars (U+FFF9..=U+FFFB).
/// Newlines (\n, \r\n, lone \r, U+2028, U+2029) become a visible "⏎"; tabs become 4 spaces. Borrowed when nothing changes.
///
/// Also marked: U+2061..=U+2064, U+206A..=U+206F and tag characters outside a subdivision flag
/// (see the module docs).
///
/// ```
/// use signoff::text::{has_hidden, sanitize};
/// let subject = "Invoice \u{1b}[31mOVERDUE\u{1b}[0m \u{202e}fdp.exe";
/// assert_eq!(sanitize(subject), "Invoice ␛[31mOVERDUE␛[0m ⟨U+202E⟩fdp.exe");
/// assert!(has_hidden(subject));
/// assert!(matches!(sanitize("日本語 👩‍👩‍👧"), std::borrow::Cow::Borrowed(_)));
/// ```
pub fn sanitize(s: &str) -> Cow<'_, str> {
    let bytes = s.as_bytes();
    let mut out: Option<String> = None;
    // Start of the run of clean input not yet copied to `out`.
    let mut clean = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if !LOOK[usize::from(b)] {
            i += 1;
            continue;
        }
        let Some(c) = char_at(s, i) else {
            // Unreachable: table hits are always on a boundary (see LOOK).
            i += 1;
            continue;
        };
        let k = kind(c);
        match k {
            Kind::Plain => {
                i += c.len_utf8();
                continue;
            }
            Kind::Tag => {
                if let Some(n) = flag_tags_len(s, i) {
                    i += n;
                    continue;
                }
            }
            _ => {}
        }
        let o = out.get_or_insert_with(|| String::with_capacity(s.len() + 32));
        o.push_str(&s[clean..i]);
        i = render(s, i, c, k, o);
        clean = i;
    }
    match out {
        None => Cow::Borrowed(s),
        Some(mut o) => {
            o.push_str(&s[clean..]);
            Cow::Owned(o)
        }
    }
}

/// Render the non-plain character `c` of kind `k` at byte `i` (and the sequence it starts);
/// return the byte position after what was consumed.
fn render(s: &str, i: usize, c: char, k: Kind, o: &mut String) -> usize {
    let next = i + c.len_utf8();
    match k {
        Kind::Tab => {
            o.push_str(TAB_SPACES);
            next
        }
        Kind::Lf | Kind::LineSep => {
            o.push_str(NEWLINE_MARK);
            next
        }
        Kind::Cr => {
            o.push_str(NEWLINE_MARK);
            if s.as_bytes().get(next) == Some(&b'\n') {
                next + 1
            } else {
                next
            }
        }
        Kind::Esc => {
            o.push(ESC_MARK);
            escape(s, next, o)
        }
        Kind::C1 => match c1_introducer(c) {
            Some(intro) => {
                o.push(ESC_MARK);
                o.push(char::from(intro));
                if intro == b'[' {
                    csi(s, next, o)
                } else {
                    string_body(s, next, o)
                }
            }
            None => {
                push_codepoint(o, c);
                next
            }
        },
        Kind::Control | Kind::Invisible | Kind::Tag | Kind::Plain => {
            push_visible(o, c);
            next
        }
    }
}

/// After an ESC (already shown as `␛`) at `j - 1`: consume and show the rest of the sequence.
fn escape(s: &str, j: usize, o: &mut String) -> usize {
    let bytes = s.as_bytes();
    match bytes.get(j).copied() {
        Some(b'[') => {
            o.push('[');
            csi(s, j + 1, o)
        }
        Some(intro @ (b']' | b'P' | b'X' | b'^' | b'_')) => {
            o.push(char::from(intro));
            string_body(s, j + 1, o)
        }
        // nF sequences such as `ESC ( 0` (switch to line drawing): intermediates, then a final.
        Some(0x20..=0x2F) => {
            let mut k = j;
            while matches!(bytes.get(k), Some(0x20..=0x2F)) {
                k += 1;
            }
            if matches!(bytes.get(k), Some(0x30..=0x7E)) {
                k += 1;
            }
            o.push_str(&s[j..k]);
            k
        }
        // Two-character sequences: `ESC c` (reset), `ESC 7`, `ESC \`, …
        Some(fin @ 0x30..=0x7E) => {
            o.push(char::from(fin));
            j + 1
        }
        // A lone ESC; whatever follows is handled on its own.
        _ => j,
    }
}

/// CSI body from `k`: parameter and intermediate bytes (0x20..=0x3F), then one final byte
/// (0x40..=0x7E). Anything else ends the sequence unterminated and is handled on its own.
fn csi(s: &str, k: usize, o: &mut String) -> usize {
    let bytes = s.as_bytes();
    let mut end = k;
    while matches!(bytes.get(end), Some(0x20..=0x3F)) {
        end += 1;
    }
    if matches!(bytes.get(end), Some(0x40..=0x7E)) {
        end += 1;
    }
    o.push_str(&s[k..end]);
    end
}

/// Body of an OSC, DCS, SOS, PM or APC from `k`, ended by BEL, ST (`ESC \` or U+009C), a line
/// break (not consumed) or the end of the text. An ESC that does not start ST aborts the string,
/// as it does in a terminal, and starts a sequence of its own.
fn string_body(s: &str, mut k: usize, o: &mut String) -> usize {
    while let Some(c) = char_at(s, k) {
        match c {
            '\n' | '\r' | '\u{2028}' | '\u{2029}' => return k,
            '\u{7}' => {
                o.push('\u{2407}');
                return k + 1;
            }
            '\u{9c}' => {
                o.push_str(ST_MARK);
                return k + c.len_utf8();
            }
            '\u{1b}' => {
                if s.as_bytes().get(k + 1) == Some(&b'\\') {
                    o.push_str(ST_MARK);
                    return k + 2;
                }
                return k;
            }
            _ => {
                push_visible(o, c);
                k += c.len_utf8();
            }
        }
    }
    k
}

/// The next line break at or after `from`: (start, end) in bytes.
fn next_break(bytes: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\n' => return Some((i, i + 1)),
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => return Some((i, i + 2)),
            b'\r' => return Some((i, i + 1)),
            // U+2028 and U+2029 are E2 80 A8 and E2 80 A9.
            0xE2 if bytes.get(i + 1) == Some(&0x80)
                && matches!(bytes.get(i + 2), Some(0xA8 | 0xA9)) =>
            {
                return Some((i, i + 3));
            }
            _ => i += 1,
        }
    }
    None
}

/// Multi-line text split into sanitized lines (on \n, \r\n, lone \r, U+2028, U+2029); each line obeys the same guarantee as `sanitize`.
///
/// Like [`str::lines`], a final line break does not start an extra empty line and `""` gives no
/// lines. Escape sequences never span lines (see the module docs).
pub fn sanitize_lines(s: &str) -> Vec<Cow<'_, str>> {
    let bytes = s.as_bytes();
    let mut lines = Vec::new();
    let mut start = 0;
    while let Some((brk, after)) = next_break(bytes, start) {
        lines.push(sanitize(&s[start..brk]));
        start = after;
    }
    if start < s.len() {
        lines.push(sanitize(&s[start..]));
    }
    lines
}

/// Bytes that may not be UTF-8: invalid sequences become U+FFFD plus a visible marker so a reviewer knows; then sanitized as `sanitize`.
///
/// Each invalid sequence becomes `�⟨0xFF⟩` (one hex byte per invalid byte, `�⟨0xE2 0x82⟩` for a
/// cut-off character). A raw 8-bit control byte such as 0x9B is invalid UTF-8 and shown this way.
pub fn sanitize_bytes(b: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(b) {
        return sanitize(s).into_owned();
    }
    let mut text = String::with_capacity(b.len() + 32);
    for chunk in b.utf8_chunks() {
        text.push_str(chunk.valid());
        let bad = chunk.invalid();
        if !bad.is_empty() {
            text.push_str("\u{fffd}⟨");
            for (n, byte) in bad.iter().enumerate() {
                if n > 0 {
                    text.push(' ');
                }
                let _ = write!(text, "0x{byte:02X}");
            }
            text.push('⟩');
        }
    }
    sanitize(&text).into_owned()
}

/// True when the text holds anything the sanitizer neutralises other than ordinary layout (\n, \r\n, \t):
/// used for the "hidden characters" badge on an item.
///
/// A lone `\r` (which lets a line overwrite itself), U+2028 and U+2029 count as hidden.
/// Exactly: `has_hidden(s)` is false iff `sanitize(s)` equals `s` with `\r\n` and `\n` replaced by
/// `⏎` and tabs by four spaces.
pub fn has_hidden(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if !LOOK[usize::from(b)] {
            i += 1;
            continue;
        }
        let Some(c) = char_at(s, i) else {
            i += 1;
            continue;
        };
        match kind(c) {
            Kind::Plain | Kind::Tab | Kind::Lf => i += c.len_utf8(),
            Kind::Cr if bytes.get(i + 1) == Some(&b'\n') => i += 2,
            Kind::Tag => match flag_tags_len(s, i) {
                Some(n) => i += n,
                None => return true,
            },
            _ => return true,
        }
    }
    false
}

/// Display width in terminal cells (unicode-width), of already-sanitized text.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// Truncate to at most `max` cells by grapheme cluster (unicode-segmentation), appending "…" when cut; never splits a grapheme, never slices bytes mid-char; max == 0 gives "".
///
/// Borrowed when the text already fits. Expects sanitized text, like [`width`].
pub fn truncate(s: &str, max: usize) -> Cow<'_, str> {
    if max == 0 {
        return Cow::Borrowed("");
    }
    if width(s) <= max {
        return Cow::Borrowed(s);
    }
    let budget = max - width(ELLIPSIS).min(max);
    let mut used = 0usize;
    let mut end = 0;
    for (at, g) in s.grapheme_indices(true) {
        let w = width(g);
        if used.saturating_add(w) > budget {
            break;
        }
        used += w;
        end = at + g.len();
    }
    // unicode-width measures some neighbouring clusters together, so the sum of cluster widths
    // is not always the width of the whole; check the result and drop clusters until it fits.
    let mut head = &s[..end];
    loop {
        let mut out = String::with_capacity(head.len() + ELLIPSIS.len());
        out.push_str(head);
        out.push_str(ELLIPSIS);
        if width(&out) <= max {
            return Cow::Owned(out);
        }
        match head.graphemes(true).next_back() {
            Some(g) => head = &head[..head.len() - g.len()],
            None => return Cow::Owned(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Characters the output must never hold: the guarantee of `sanitize`, written out
    /// independently of the implementation.
    fn forbidden(c: char) -> bool {
        c.is_control()
            || matches!(
                c,
                '\u{1b}'
                    | '\u{7f}'
                    | '\u{80}'..='\u{9f}'
                    | '\u{061c}'
                    | '\u{200e}'
                    | '\u{200f}'
                    | '\u{202a}'..='\u{202e}'
                    | '\u{2066}'..='\u{2069}'
                    | '\u{2028}'
                    | '\u{2029}'
                    | '\u{feff}'
                    | '\u{200b}'
                    | '\u{2060}'
                    | '\u{fff9}'..='\u{fffb}'
            )
    }

    fn assert_clean(out: &str, input: &str) {
        if let Some(c) = out.chars().find(|&c| forbidden(c)) {
            panic!("{c:?} survived: {input:?} -> {out:?}");
        }
    }

    /// `s` with only ordinary layout normalised the way `sanitize` does it.
    fn layout_only(s: &str) -> String {
        s.replace("\r\n", NEWLINE_MARK)
            .replace('\n', NEWLINE_MARK)
            .replace('\t', TAB_SPACES)
    }

    const FAMILY: &str = "👩\u{200d}👩\u{200d}👧";
    const SCOTLAND: &str = "🏴\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f}";

    #[test]
    fn neutralises_table() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "csi colour",
                "\x1b[31mred\x1b[0m plain",
                "␛[31mred␛[0m plain",
            ),
            (
                "csi bold+rgb",
                "\x1b[1;38;2;255;0;0mX",
                "␛[1;38;2;255;0;0mX",
            ),
            ("csi cursor up", "ok\x1b[2Aup", "ok␛[2Aup"),
            ("csi cursor to", "a\x1b[10;5Hb\x1b[2Kc", "a␛[10;5Hb␛[2Kc"),
            ("csi private", "\x1b[?1049h", "␛[?1049h"),
            ("osc title bel", "\x1b]0;pwned\x07after", "␛]0;pwned␇after"),
            (
                "osc title st",
                "\x1b]2;pwned\x1b\\after",
                "␛]2;pwned␛\\after",
            ),
            (
                "osc 8 hyperlink",
                "\x1b]8;;https://evil.example/x?a=1\x1b\\click\x1b]8;;\x1b\\",
                "␛]8;;https://evil.example/x?a=1␛\\click␛]8;;␛\\",
            ),
            (
                "osc 52 clipboard",
                "\x1b]52;c;cm0gLXJm\x07",
                "␛]52;c;cm0gLXJm␇",
            ),
            ("dcs", "\x1bPq#0;2;0;0;0\x1b\\end", "␛Pq#0;2;0;0;0␛\\end"),
            ("dcs inner control", "\x1bP1$r\0x\tq\x1b\\", "␛P1$r␀x␉q␛\\"),
            ("apc", "\x1b_Gf=100;AAAA\x1b\\", "␛_Gf=100;AAAA␛\\"),
            ("sos pm", "\x1bXs\x1b\\\x1b^p\x07", "␛Xs␛\\␛^p␇"),
            ("8-bit csi", "\u{9b}31mred\u{9b}0m", "␛[31mred␛[0m"),
            ("8-bit osc, 8-bit st", "\u{9d}0;t\u{9c}x", "␛]0;t␛\\x"),
            ("8-bit dcs, bel", "\u{90}q\u{7}x", "␛Pq␇x"),
            ("8-bit apc", "\u{9f}a\u{9c}", "␛_a␛\\"),
            ("lone 8-bit st", "a\u{9c}b", "a⟨U+009C⟩b"),
            (
                "trojan source",
                "if lvl != \"user\u{202e} \u{2066}// admin\u{2069} \u{2066}\" {",
                "if lvl != \"user⟨U+202E⟩ ⟨U+2066⟩// admin⟨U+2069⟩ ⟨U+2066⟩\" {",
            ),
            (
                "other bidi",
                "\u{61c}\u{200e}\u{200f}\u{202a}\u{202b}\u{202c}\u{202d}\u{2067}\u{2068}",
                "⟨U+061C⟩⟨U+200E⟩⟨U+200F⟩⟨U+202A⟩⟨U+202B⟩⟨U+202C⟩⟨U+202D⟩⟨U+2067⟩⟨U+2068⟩",
            ),
            ("tabs", "a\tb\t\tc", "a    b        c"),
            ("crlf", "one\r\ntwo\r\n", "one⏎two⏎"),
            ("lf", "one\ntwo", "one⏎two"),
            ("lone cr", "safe\rEVIL", "safe⏎EVIL"),
            ("lf cr", "a\n\rb", "a⏎⏎b"),
            ("line/para separator", "a\u{2028}b\u{2029}c", "a⏎b⏎c"),
            ("nul", "a\0b", "a␀b"),
            ("bel bs", "a\x07\x08b", "a␇␈b"),
            ("del", "a\x7fb", "a␡b"),
            ("c1 nel", "a\u{85}b", "a⟨U+0085⟩b"),
            ("unterminated csi", "text\x1b[31", "text␛[31"),
            ("unterminated csi bare", "text\x1b[", "text␛["),
            ("unterminated osc", "x\x1b]0;title", "x␛]0;title"),
            ("unterminated 8-bit csi", "x\u{9b}", "x␛["),
            ("lone esc at end", "text\x1b", "text␛"),
            ("esc esc", "\x1b\x1b[1m", "␛␛[1m"),
            ("esc then non-ascii", "\x1bé", "␛é"),
            ("esc then tab", "\x1b\tx", "␛    x"),
            ("two-char reset", "\x1bcx", "␛cx"),
            ("two-char save", "\x1b7x\x1b8", "␛7x␛8"),
            ("nF charset", "\x1b(0lqk\x1b(B", "␛(0lqk␛(B"),
            ("osc cut by newline", "\x1b]0;ti\ntle\x07", "␛]0;ti⏎tle␇"),
            ("osc aborted by esc", "\x1b]0;t\x1b[1mx", "␛]0;t␛[1mx"),
            ("csi cut by control", "\x1b[3\x001m", "␛[3␀1m"),
            (
                "zero width",
                "\u{feff}a\u{200b}b\u{2060}c",
                "⟨U+FEFF⟩a⟨U+200B⟩b⟨U+2060⟩c",
            ),
            (
                "annotation",
                "\u{fff9}a\u{fffa}b\u{fffb}",
                "⟨U+FFF9⟩a⟨U+FFFA⟩b⟨U+FFFB⟩",
            ),
            ("invisible operator", "a\u{2062}b", "a⟨U+2062⟩b"),
            (
                "tag smuggling",
                "hi\u{e0041}\u{e0042}",
                "hi⟨U+E0041⟩⟨U+E0042⟩",
            ),
            (
                "flag with overlong tags",
                "🏴\u{e0061}\u{e0062}\u{e0063}\u{e0064}\u{e0065}\u{e0066}\u{e0067}\u{e0068}\u{e007f}",
                "🏴⟨U+E0061⟩⟨U+E0062⟩⟨U+E0063⟩⟨U+E0064⟩⟨U+E0065⟩⟨U+E0066⟩⟨U+E0067⟩⟨U+E0068⟩⟨U+E007F⟩",
            ),
        ];
        for (name, input, want) in cases {
            let got = sanitize(input);
            assert_eq!(got, *want, "{name}: {input:?}");
            assert!(matches!(got, Cow::Owned(_)), "{name}");
            assert_clean(&got, input);
            assert!(has_hidden(input) || layout_only(input) == *want, "{name}");
        }
    }

    #[test]
    fn keeps_clean_text_borrowed() {
        let cases = [
            "",
            "plain ascii, punctuation: ;[]\\^_ 123",
            "漢字とカタカナ 한국어",
            FAMILY,
            "👍🏽 ❤\u{fe0f} 🇩🇪",
            SCOTLAND,
            "e\u{301}a\u{308}o\u{302}\u{323}",
            "שָׁלוֹם עולם",
            "مرحبا بالعالم",
            "می\u{200c}خواهم",
            "Straße ’quotes’ “double” — dash … €",
            "a ⟨U+202E⟩ literal",
        ];
        for input in cases {
            let got = sanitize(input);
            assert!(matches!(got, Cow::Borrowed(_)), "{input:?} -> {got:?}");
            assert_eq!(got, input);
            assert!(!has_hidden(input), "{input:?}");
            assert_eq!(sanitize_lines(input).concat(), input);
        }
    }

    #[test]
    fn splits_lines() {
        let got = sanitize_lines("a\r\nb\rc\nd\u{2028}e\u{2029}f");
        assert_eq!(got, ["a", "b", "c", "d", "e", "f"]);
        assert!(got.iter().all(|l| matches!(l, Cow::Borrowed(_))));
        assert_eq!(sanitize_lines("a\n"), ["a"]);
        assert_eq!(sanitize_lines("a\n\n"), ["a", ""]);
        assert_eq!(sanitize_lines("\n"), [""]);
        assert!(sanitize_lines("").is_empty());
        assert_eq!(sanitize_lines("x\ty\n\x1b[1mz"), ["x    y", "␛[1mz"]);
        // A sequence never crosses a line break.
        assert_eq!(sanitize_lines("\x1b]0;ti\ntle\x07"), ["␛]0;ti", "tle␇"]);
        assert_eq!(
            sanitize_lines("漢字\r\n👩\u{200d}👩\u{200d}👧\nשלום"),
            ["漢字", FAMILY, "שלום"]
        );
    }

    #[test]
    fn marks_invalid_bytes() {
        assert_eq!(sanitize_bytes(b"ok\xffno"), "ok\u{fffd}⟨0xFF⟩no");
        assert_eq!(sanitize_bytes(b"cut \xe2\x82"), "cut \u{fffd}⟨0xE2 0x82⟩");
        assert_eq!(sanitize_bytes(b"caf\xe9"), "caf\u{fffd}⟨0xE9⟩");
        assert_eq!(sanitize_bytes(b"\x9b31m"), "\u{fffd}⟨0x9B⟩31m");
        assert_eq!(sanitize_bytes(b"\x1b[1m\xff"), "␛[1m\u{fffd}⟨0xFF⟩");
        assert_eq!(sanitize_bytes("漢字\t".as_bytes()), "漢字    ");
        assert_eq!(sanitize_bytes(b""), "");
    }

    #[test]
    fn hidden_badge() {
        assert!(!has_hidden("a\tb\r\nc\n"));
        assert!(!has_hidden(FAMILY));
        assert!(!has_hidden(SCOTLAND));
        assert!(has_hidden("a\rb"));
        assert!(has_hidden("a\r"));
        assert!(has_hidden("\x1b[1m"));
        assert!(has_hidden("\u{9b}1m"));
        assert!(has_hidden("\u{202e}"));
        assert!(has_hidden("\u{2028}"));
        assert!(has_hidden("\u{200b}"));
        assert!(has_hidden("\0"));
        assert!(has_hidden("hi\u{e0041}"));
        assert!(has_hidden(&format!("{SCOTLAND}\u{e0041}")));
        assert!(has_hidden(
            "\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f}"
        ));
    }

    #[test]
    fn widths() {
        assert_eq!(width(""), 0);
        assert_eq!(width("abc"), 3);
        assert_eq!(width("漢字"), 4);
        assert_eq!(width(FAMILY), 2);
        assert_eq!(width("e\u{301}"), 1);
        assert_eq!(width("שלום"), 4);
        assert_eq!(width(ELLIPSIS), 1);
        assert_eq!(width(NEWLINE_MARK), 1);
    }

    #[test]
    fn truncates_by_grapheme() {
        let cases: &[(&str, usize, &str)] = &[
            ("hello world", 5, "hell…"),
            ("hello", 5, "hello"),
            ("hello", 9, "hello"),
            ("hello", 0, ""),
            ("hello", 1, "…"),
            ("漢字漢字", 5, "漢字…"),
            ("漢字漢字", 4, "漢…"),
            ("漢字", 1, "…"),
            ("漢字", 2, "…"),
            ("a漢字", 3, "a…"),
            (
                "👩\u{200d}👩\u{200d}👧👩\u{200d}👩\u{200d}👧",
                3,
                "👩\u{200d}👩\u{200d}👧…",
            ),
            ("👩\u{200d}👩\u{200d}👧x", 2, "…"),
            ("e\u{301}e\u{301}e\u{301}", 2, "e\u{301}…"),
            ("e\u{301}e\u{301}e\u{301}", 3, "e\u{301}e\u{301}e\u{301}"),
            ("שלום עולם", 5, "שלום…"),
        ];
        for (input, max, want) in cases {
            let got = truncate(input, *max);
            assert_eq!(got, *want, "{input:?} at {max}");
            assert!(width(&got) <= *max, "{input:?} at {max}");
        }
        assert!(matches!(truncate("hello", 5), Cow::Borrowed(_)));
    }

    /// Characters weighted toward what breaks sanitizers, with arbitrary ones mixed in.
    fn hostile_char() -> impl Strategy<Value = char> {
        let tricky = vec![
            '\u{1b}',
            '\u{1b}',
            '\u{1b}',
            '\u{9b}',
            '\u{9b}',
            '\u{7}',
            '\u{7}',
            '\u{202e}',
            '[',
            '[',
            ']',
            ']',
            '\\',
            '\\',
            ';',
            ';',
            '0',
            '1',
            '2',
            '8',
            '9',
            'm',
            'P',
            'X',
            '^',
            '_',
            '(',
            ' ',
            '\n',
            '\r',
            '\t',
            '\u{9c}',
            '\u{9d}',
            '\u{90}',
            '\u{85}',
            '\u{7f}',
            '\0',
            '\u{2028}',
            '\u{2066}',
            '\u{200b}',
            '\u{200d}',
            '\u{feff}',
            '\u{fff9}',
            '\u{1F3F4}',
            '\u{e0067}',
            '\u{e0062}',
            '\u{e0073}',
            '\u{e007f}',
            '\u{e0041}',
            '漢',
            '\u{301}',
            'é',
            'ש',
        ];
        prop_oneof![
            4 => proptest::sample::select(tricky),
            1 => any::<char>(),
        ]
    }

    fn hostile_string() -> impl Strategy<Value = String> {
        proptest::collection::vec(hostile_char(), 0..64).prop_map(String::from_iter)
    }

    /// Any chars at all. `any::<String>()` alone draws from `\PC*`, which holds no controls.
    fn any_chars() -> impl Strategy<Value = String> {
        proptest::collection::vec(any::<char>(), 0..64).prop_map(String::from_iter)
    }

    fn any_string() -> impl Strategy<Value = String> {
        prop_oneof![any::<String>(), any_chars(), hostile_string()]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn output_is_clean(s in any_string()) {
            let out = sanitize(&s);
            assert_clean(&out, &s);
            for line in sanitize_lines(&s) {
                assert_clean(&line, &s);
            }
        }

        #[test]
        fn output_is_a_fixed_point(s in any_string()) {
            let out = sanitize(&s);
            prop_assert!(!has_hidden(&out), "{:?} -> {:?}", s, out);
            prop_assert!(matches!(sanitize(&out), Cow::Borrowed(_)), "{:?} -> {:?}", s, out);
        }

        #[test]
        fn lines_agree_with_sanitize(s in any_string()) {
            let mut joined = sanitize_lines(&s).join(NEWLINE_MARK);
            // Like str::lines, a final line break does not start another line.
            if s.ends_with(['\n', '\r', '\u{2028}', '\u{2029}']) {
                joined.push_str(NEWLINE_MARK);
            }
            prop_assert_eq!(sanitize(&s), joined);
        }

        #[test]
        fn hidden_iff_more_than_layout_changed(s in any_string()) {
            let changed = sanitize(&s) != layout_only(&s);
            prop_assert_eq!(has_hidden(&s), changed, "{:?}", s);
        }

        #[test]
        fn truncate_fits(s in any_string(), max in 0usize..40) {
            let clean = sanitize(&s);
            let cut = truncate(&clean, max);
            prop_assert!(width(&cut) <= max, "{:?} at {} -> {:?}", clean, max, cut);
            if max == 0 {
                prop_assert_eq!(&*cut, "");
            } else if cut != clean {
                let head = cut.strip_suffix(ELLIPSIS);
                prop_assert!(head.is_some_and(|h| clean.starts_with(h)), "{:?} -> {:?}", clean, cut);
                // The cut falls on a grapheme boundary.
                let head_len = head.map_or(0, str::len);
                prop_assert!(
                    head_len == 0 || clean.grapheme_indices(true).any(|(at, _)| at == head_len),
                    "{:?} -> {:?}", clean, cut
                );
            }
        }

        #[test]
        fn bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..128)) {
            let out = sanitize_bytes(&b);
            assert_clean(&out, &String::from_utf8_lossy(&b));
        }

        #[test]
        fn hostile_bytes_never_panic(
            b in proptest::collection::vec(
                prop_oneof![
                    3 => proptest::sample::select(vec![0x1b, 0x9b, 0x9c, 0x07, b'[', b']', b'\\', b';', b'1', 0xe2, 0x80, 0xae, 0xc2, 0xff]),
                    1 => any::<u8>(),
                ],
                0..128,
            )
        ) {
            let out = sanitize_bytes(&b);
            assert_clean(&out, &String::from_utf8_lossy(&b));
        }
    }
}
