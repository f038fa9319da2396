//! Keys: parsing (`"ctrl-d"`, `"G"`, `"g g"`), one table per mode (command, keys, label)
//! that feeds dispatch, the footer and the help palette, and `[ui.keymap]` overrides merged
//! over the defaults with their problems reported by dotted key.
use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Cmd;
use super::app::Mode;

/// One key with its modifiers, normalised: a shifted letter is its upper-case char.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Key {
    pub fn new(code: KeyCode, mods: KeyModifiers) -> Key {
        let mut mods = mods & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match code {
            KeyCode::Char(c) => {
                // Shift is already in the char ('G', '?'); ctrl-shift-letter is rare, fold it.
                mods.remove(KeyModifiers::SHIFT);
                if mods.contains(KeyModifiers::CONTROL) {
                    KeyCode::Char(c.to_ascii_lowercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        Key { code, mods }
    }

    pub fn from_event(ev: &KeyEvent) -> Key {
        Key::new(ev.code, ev.modifiers)
    }

    pub fn char(c: char) -> Key {
        Key::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    /// Parses `a`, `G`, `?`, `ctrl-d`, `alt-x`, `shift-tab`, `enter`, `esc`, `pgdn`, `f5`, `space`.
    pub fn parse(s: &str) -> Result<Key, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty key".into());
        }
        let mut mods = KeyModifiers::NONE;
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            let (m, len) = if lower.starts_with("ctrl-") || lower.starts_with("ctrl+") {
                (KeyModifiers::CONTROL, 5)
            } else if lower.starts_with("c-") && rest.len() > 2 {
                (KeyModifiers::CONTROL, 2)
            } else if lower.starts_with("alt-") || lower.starts_with("alt+") {
                (KeyModifiers::ALT, 4)
            } else if lower.starts_with("shift-") || lower.starts_with("shift+") {
                (KeyModifiers::SHIFT, 6)
            } else {
                break;
            };
            mods |= m;
            rest = &rest[len..];
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => {
                if mods.contains(KeyModifiers::SHIFT) && c.is_ascii_alphabetic() {
                    KeyCode::Char(c.to_ascii_uppercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            _ => match rest.to_ascii_lowercase().as_str() {
                "enter" | "return" | "cr" => KeyCode::Enter,
                "esc" | "escape" => KeyCode::Esc,
                "tab" if mods.contains(KeyModifiers::SHIFT) => KeyCode::BackTab,
                "tab" => KeyCode::Tab,
                "backtab" => KeyCode::BackTab,
                "space" => KeyCode::Char(' '),
                "backspace" | "bs" => KeyCode::Backspace,
                "delete" | "del" => KeyCode::Delete,
                "insert" | "ins" => KeyCode::Insert,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                "pgup" | "pageup" => KeyCode::PageUp,
                "pgdn" | "pgdown" | "pagedown" => KeyCode::PageDown,
                f if f.starts_with('f') && f.len() <= 3 => match f[1..].parse::<u8>() {
                    Ok(n) if (1..=12).contains(&n) => KeyCode::F(n),
                    _ => return Err(format!("'{s}' is not a key")),
                },
                _ => {
                    return Err(format!(
                        "'{s}' is not a key; use a character, a name (enter, esc, tab, space, up, pgdn, f1…) with optional ctrl-/alt-/shift-"
                    ));
                }
            },
        };
        Ok(Key::new(code, mods))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Delete => f.write_str("del"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::PageUp => f.write_str("pgup"),
            KeyCode::PageDown => f.write_str("pgdn"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// A key or a sequence of keys (`g g`).
pub type KeySeq = Vec<Key>;

pub fn parse_seq(s: &str) -> Result<KeySeq, String> {
    let seq: Vec<Key> = s
        .split_whitespace()
        .map(Key::parse)
        .collect::<Result<_, _>>()?;
    match seq.len() {
        0 => Err("empty key".into()),
        1 | 2 => Ok(seq),
        _ => Err(format!("'{s}': a key sequence has at most two keys")),
    }
}

pub fn seq_label(seq: &[Key]) -> String {
    seq.iter().map(Key::to_string).collect::<Vec<_>>().join("")
}

/// One row of a mode's table.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub cmd: Cmd,
    pub keys: Vec<KeySeq>,
    pub label: &'static str,
    /// Shown in the footer (the help lists everything).
    pub footer: bool,
}

/// The modes' tables.
#[derive(Clone, Debug, PartialEq)]
pub struct Keymap {
    tables: BTreeMap<Mode, Vec<Binding>>,
}

/// What a key press means in a mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolved {
    Cmd(Cmd),
    /// The first key of a sequence: wait for the next.
    Prefix,
    None,
}

fn defaults(mode: Mode) -> Vec<(Cmd, &'static [&'static str], &'static str, bool)> {
    use Cmd::*;
    let moves: Vec<(Cmd, &'static [&'static str], &'static str, bool)> = vec![
        (Down, &["j", "down"], "down", false),
        (Up, &["k", "up"], "up", false),
        (Top, &["g g", "home"], "top", false),
        (Bottom, &["G", "end"], "bottom", false),
        (HalfPageDown, &["ctrl-d"], "half page down", false),
        (HalfPageUp, &["ctrl-u"], "half page up", false),
        (PageDown, &["pgdn"], "page down", false),
        (PageUp, &["pgup"], "page up", false),
    ];
    let picks = |label: &'static str| -> Vec<(Cmd, &'static [&'static str], &'static str, bool)> {
        const K: [&[&str]; 9] = [
            &["1"],
            &["2"],
            &["3"],
            &["4"],
            &["5"],
            &["6"],
            &["7"],
            &["8"],
            &["9"],
        ];
        (1..=9u8)
            .map(|n| (Pick(n), K[usize::from(n - 1)], label, n == 1))
            .collect()
    };
    let tail: Vec<(Cmd, &'static [&'static str], &'static str, bool)> = vec![
        (Back, &["esc"], "back", true),
        (ForceQuit, &["ctrl-c"], "quit now", false),
    ];
    let mut t: Vec<(Cmd, &'static [&'static str], &'static str, bool)> = Vec::new();
    match mode {
        Mode::List | Mode::Review => {
            if mode == Mode::List {
                t.push((Open, &["enter"], "open", true));
            }
            t.extend([
                (Approve, &["a"][..], "approve", true),
                (Reject, &["r"], "reject", true),
                (Edit, &["e"], "edit", true),
                (Escalate, &["x"], "escalate", true),
                (Undo, &["u"], "undo", true),
                (Diff, &["d"], "diff", true),
                (Preview, &["p"], "preview", true),
                (Timeline, &["L"], "timeline", false),
                (OpenLink, &["o"], "open the first link", false),
                (Outcome, &["O"], "record outcome", false),
                (Resend, &["R"], "resend dead actions", false),
                (KillSwitch, &["K"], "pause/resume all actions", false),
                (Stats, &["S"], "stats", false),
                (Decided, &["D"], "decided items / queue", false),
                (SwitchPane, &["tab"], "pane", mode == Mode::Review),
                (Search, &["/"], "search", mode == Mode::List),
                (SearchNext, &["n"], "next match", false),
                (SearchPrev, &["N"], "previous match", false),
                (Filter, &["f"], "filter", false),
                (Sort, &["s"], "sort", mode == Mode::List),
                (NextFlagged, &["]"], "next flagged / over SLA", false),
                (PrevFlagged, &["["], "previous flagged / over SLA", false),
                (ScreenTop, &["H"], "top of the screen", false),
                (ScreenMiddle, &["M"], "middle of the screen", false),
                (ScreenBottom, &["B"], "bottom of the screen", false),
                (Mark, &["v"], "mark for bulk reject/escalate", false),
                (MarkAll, &["V"], "mark all the filter shows / clear", false),
                (ShowMessage, &["m"], "the whole message", false),
                (Copy, &["y"], "copy to the clipboard", false),
                (GrowList, &["+"], "taller list", false),
                (ShrinkList, &["-"], "shorter list", false),
                (Help, &["?"], "help", true),
                (Palette, &[":"], "command line", false),
            ]);
            t.extend(moves);
            if mode == Mode::List {
                const F: [&[&str]; 9] = [
                    &["f1"],
                    &["f2"],
                    &["f3"],
                    &["f4"],
                    &["f5"],
                    &["f6"],
                    &["f7"],
                    &["f8"],
                    &["f9"],
                ];
                t.extend((1..=9u8).map(|n| (View(n), F[usize::from(n - 1)], "saved view", false)));
            }
            t.push((
                Back,
                &["esc"],
                if mode == Mode::List {
                    "clear filter"
                } else {
                    "back"
                },
                mode == Mode::Review,
            ));
            t.push((Quit, &["q"], "quit", true));
            t.push((ForceQuit, &["ctrl-c"], "quit now", false));
            t.push((Redraw, &["ctrl-l"], "redraw", false));
            return t;
        }
        Mode::Edit => {
            t.extend([
                (NextField, &["tab"][..], "next field", true),
                (PrevField, &["shift-tab"], "prev field", true),
                (PickNext, &["right"], "next value", true),
                (PickPrev, &["left"], "prev value", false),
                (Save, &["ctrl-s"], "save", true),
                (ExternalEditor, &["ctrl-e"], "$EDITOR", true),
            ]);
        }
        Mode::Reject => {
            t.extend(picks("reject with reason"));
            t.extend([
                (Down, &["j", "down"][..], "down", false),
                (Up, &["k", "up"], "up", false),
                (Submit, &["enter"], "add a note", true),
            ]);
        }
        Mode::Escalate => {
            t.extend(picks("escalate to queue"));
            t.extend([
                (Down, &["j", "down"][..], "down", false),
                (Up, &["k", "up"], "up", false),
                (Submit, &["enter"], "escalate", true),
                (Preview, &["p"], "preview", true),
            ]);
        }
        Mode::Outcome => {
            t.extend(picks("record outcome"));
            t.extend([
                (Down, &["j", "down"][..], "down", false),
                (Up, &["k", "up"], "up", false),
                (Submit, &["enter"], "record", true),
            ]);
        }
        Mode::Confirm => {
            // Its own tail: `n` and esc both say no.
            return vec![
                (Submit, &["y", "enter"], "yes", true),
                (Back, &["n", "esc"], "no", true),
                (ForceQuit, &["ctrl-c"], "quit now", false),
            ];
        }
        Mode::Note | Mode::OutcomeNote => t.push((Submit, &["enter"], "done", true)),
        Mode::Search => t.push((Submit, &["enter"], "keep", true)),
        Mode::Filter => t.extend([
            (Submit, &["enter"][..], "apply", true),
            (Complete, &["tab"], "complete", true),
        ]),
        Mode::Command => t.extend([
            (Submit, &["enter"][..], "run", true),
            (Complete, &["tab"], "complete", true),
            (Up, &["up", "ctrl-p"], "older", true),
            (Down, &["down", "ctrl-n"], "newer", false),
        ]),
        Mode::Help => t.extend([
            (Down, &["down", "ctrl-n"][..], "down", false),
            (Up, &["up", "ctrl-p"], "up", false),
            (Submit, &["enter"], "run", true),
        ]),
        Mode::Message => {}
        Mode::Copy => {
            t.extend(picks("copy"));
            t.extend([
                (Down, &["j", "down"][..], "down", false),
                (Up, &["k", "up"], "up", false),
                (Submit, &["enter"], "copy", true),
            ]);
        }
        Mode::Diff | Mode::Preview | Mode::Timeline | Mode::Stats => {
            t.extend(moves);
            t.push((Quit, &["q"], "quit", false));
        }
    }
    t.extend(tail);
    t
}

impl Keymap {
    /// The built-in keymap with `overrides` (command name → keys) merged over it, and every
    /// problem as (dotted key, message).
    pub fn build(overrides: &BTreeMap<String, Vec<String>>) -> (Keymap, Vec<(String, String)>) {
        let mut issues = Vec::new();
        let mut parsed: BTreeMap<Cmd, Vec<KeySeq>> = BTreeMap::new();
        for (name, keys) in overrides {
            let dotted = format!("ui.keymap.{name}");
            let Some(cmd) = Cmd::from_name(name) else {
                let names: Vec<&str> = Cmd::ALL.iter().map(|c| c.name()).collect();
                issues.push((
                    dotted,
                    format!("unknown action '{name}'; actions: {}", names.join(", ")),
                ));
                continue;
            };
            let mut seqs = Vec::new();
            for k in keys {
                match parse_seq(k) {
                    Ok(seq) => seqs.push(seq),
                    Err(e) => issues.push((dotted.clone(), e)),
                }
            }
            parsed.insert(cmd, seqs);
        }
        let mut tables = BTreeMap::new();
        for mode in Mode::ALL {
            let mut rows: Vec<Binding> = defaults(mode)
                .into_iter()
                .map(|(cmd, keys, label, footer)| Binding {
                    cmd,
                    keys: parsed
                        .get(&cmd)
                        .cloned()
                        .unwrap_or_else(|| keys.iter().filter_map(|k| parse_seq(k).ok()).collect()),
                    label,
                    footer,
                })
                .collect();
            // Conflicts: the same key (or one a prefix of another) for two commands.
            for i in 0..rows.len() {
                for j in (i + 1)..rows.len() {
                    for a in &rows[i].keys {
                        for b in &rows[j].keys {
                            let n = a.len().min(b.len());
                            if a[..n] == b[..n] {
                                let (ci, cj) = (rows[i].cmd, rows[j].cmd);
                                let culprit = if parsed.contains_key(&cj) { cj } else { ci };
                                issues.push((
                                    format!("ui.keymap.{}", culprit.name()),
                                    format!(
                                        "'{}' is bound to both {} and {} in {} mode; the first wins",
                                        seq_label(if a.len() <= b.len() { a } else { b }),
                                        ci.name(),
                                        cj.name(),
                                        mode.name()
                                    ),
                                ));
                            }
                        }
                    }
                }
            }
            // Ctrl-C always quits, whatever the keymap says.
            let cc = vec![Key::new(KeyCode::Char('c'), KeyModifiers::CONTROL)];
            for r in &mut rows {
                if r.cmd != Cmd::ForceQuit {
                    r.keys.retain(|k| k != &cc);
                } else if !r.keys.contains(&cc) {
                    r.keys.push(cc.clone());
                }
            }
            tables.insert(mode, rows);
        }
        issues.sort();
        issues.dedup();
        (Keymap { tables }, issues)
    }

    pub fn table(&self, mode: Mode) -> &[Binding] {
        self.tables.get(&mode).map_or(&[], Vec::as_slice)
    }

    /// Resolves `key` after `pending` (the first key of a sequence, if any). `enabled` tells
    /// whether a command may take the key now; a disabled command leaves it to the text field.
    pub fn resolve(
        &self,
        mode: Mode,
        pending: Option<Key>,
        key: Key,
        enabled: impl Fn(Cmd) -> bool,
    ) -> Resolved {
        let rows = self.table(mode);
        let typed: Vec<Key> = pending.into_iter().chain([key]).collect();
        let mut prefix = false;
        for r in rows {
            if !enabled(r.cmd) {
                continue;
            }
            for seq in &r.keys {
                if *seq == typed {
                    return Resolved::Cmd(r.cmd);
                }
                if seq.len() > typed.len() && seq[..typed.len()] == typed[..] {
                    prefix = true;
                }
            }
        }
        if prefix {
            Resolved::Prefix
        } else {
            Resolved::None
        }
    }

    /// The first key bound to `cmd` in `mode`, for messages ("press u to undo").
    pub fn key_for(&self, mode: Mode, cmd: Cmd) -> Option<String> {
        self.table(mode)
            .iter()
            .find(|b| b.cmd == cmd)
            .and_then(|b| b.keys.first())
            .map(|k| seq_label(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_print() {
        for (s, shown) in [
            ("a", "a"),
            ("G", "G"),
            ("shift-g", "G"),
            ("ctrl-d", "ctrl-d"),
            ("C-u", "ctrl-u"),
            ("enter", "enter"),
            ("shift-tab", "shift-tab"),
            ("pgdn", "pgdn"),
            ("f5", "f5"),
            ("space", "space"),
            ("?", "?"),
        ] {
            assert_eq!(
                Key::parse(s).map(|k| k.to_string()),
                Ok(shown.to_string()),
                "{s}"
            );
        }
        assert!(Key::parse("hyper-x").is_err());
        assert!(Key::parse("f13").is_err());
        assert!(parse_seq("g g g").is_err());
        assert_eq!(seq_label(&parse_seq("g g").unwrap()), "gg");
    }

    #[test]
    fn sequences_wait_for_their_second_key() {
        let (km, issues) = Keymap::build(&BTreeMap::new());
        assert_eq!(issues, vec![]);
        let g = Key::char('g');
        assert_eq!(km.resolve(Mode::List, None, g, |_| true), Resolved::Prefix);
        assert_eq!(
            km.resolve(Mode::List, Some(g), g, |_| true),
            Resolved::Cmd(Cmd::Top)
        );
        assert_eq!(
            km.resolve(Mode::List, None, Key::char('a'), |_| true),
            Resolved::Cmd(Cmd::Approve)
        );
        assert_eq!(
            km.resolve(Mode::List, None, Key::char('a'), |c| c != Cmd::Approve),
            Resolved::None
        );
    }

    #[test]
    fn overrides_replace_keys_and_report_problems() {
        let mut o = BTreeMap::new();
        o.insert("approve".to_string(), vec!["A".to_string()]);
        o.insert("frobnicate".to_string(), vec!["z".to_string()]);
        o.insert("reject".to_string(), vec!["ctrl-".to_string()]);
        o.insert("diff".to_string(), vec!["e".to_string()]);
        let (km, issues) = Keymap::build(&o);
        assert_eq!(
            km.resolve(Mode::List, None, Key::char('A'), |_| true),
            Resolved::Cmd(Cmd::Approve)
        );
        assert_eq!(
            km.resolve(Mode::List, None, Key::char('a'), |_| true),
            Resolved::None
        );
        let keys: Vec<&str> = issues.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"ui.keymap.frobnicate"), "{issues:?}");
        assert!(keys.contains(&"ui.keymap.reject"), "{issues:?}");
        assert!(
            issues
                .iter()
                .any(|(k, m)| k == "ui.keymap.diff" && m.contains("both edit and diff")),
            "{issues:?}"
        );
    }

    #[test]
    fn ctrl_c_always_quits() {
        let mut o = BTreeMap::new();
        o.insert("approve".to_string(), vec!["ctrl-c".to_string()]);
        let (km, _) = Keymap::build(&o);
        let cc = Key::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        for mode in Mode::ALL {
            assert_eq!(
                km.resolve(mode, None, cc, |_| true),
                Resolved::Cmd(Cmd::ForceQuit),
                "{mode:?}"
            );
        }
    }
}
