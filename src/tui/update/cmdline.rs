//! The `:` command line: commands by name (its own and every key command of the mode it
//! was opened from), Tab completion, and a history kept between runs.

use super::*;
use crate::queue::Sort;
use crate::tui::action::{Cmd, Effect};
use crate::tui::app::{App, Level, LineInput, Mode};

/// The line's own commands with what they take, for completion and `:help`.
pub const COMMANDS: &[(&str, &str)] = &[
    ("quit", "quit (also :q)"),
    ("id", "id N (or just :N): go to item N"),
    ("sort", "sort priority|age|confidence|sla [asc|desc]"),
    (
        "filter",
        "filter EXPR: p:high intent:… c<0.6 age>2h esc hidden text",
    ),
    ("view", "view NAME: a saved view from [[ui.views]]"),
    (
        "theme",
        "theme NAME: dark, light, high-contrast, mono or a user theme",
    ),
    ("pause", "pause all outbound actions (asks first)"),
    ("resume", "resume outbound actions (asks first)"),
    ("help", "every key and command"),
];

const SORT_KEYS: [&str; 4] = ["priority", "age", "confidence", "sla"];

pub(super) fn open_cmdline(app: &mut App) -> Vec<Effect> {
    if app.mode != Mode::Command {
        app.return_mode = app.mode;
    }
    app.mode = Mode::Command;
    app.cmdline = LineInput::default();
    app.history_pos = None;
    app.completions.clear();
    Vec::new()
}

pub(super) fn cmdline_command(app: &mut App, c: Cmd) -> Vec<Effect> {
    match c {
        Cmd::Submit => {
            let line = std::mem::take(&mut app.cmdline.text);
            app.completions.clear();
            app.mode = app.return_mode;
            run_line(app, &line)
        }
        Cmd::Back => {
            app.mode = app.return_mode;
            app.completions.clear();
            Vec::new()
        }
        Cmd::Up | Cmd::Down => {
            recall(app, c == Cmd::Up);
            Vec::new()
        }
        Cmd::Complete => {
            complete(app);
            Vec::new()
        }
        _ => {
            app.dirty = false;
            Vec::new()
        }
    }
}

/// ↑ older, ↓ newer; past the newest the line is empty again.
fn recall(app: &mut App, older: bool) {
    let n = app.history.len();
    if n == 0 {
        app.dirty = false;
        return;
    }
    app.history_pos = match (app.history_pos, older) {
        (None, true) => Some(n - 1),
        (None, false) => None,
        (Some(p), true) => Some(p.saturating_sub(1)),
        (Some(p), false) if p + 1 < n => Some(p + 1),
        (Some(_), false) => None,
    };
    app.cmdline.text = app
        .history_pos
        .and_then(|p| app.history.get(p).cloned())
        .unwrap_or_default();
    app.completions.clear();
}

/// Names a command may be typed as: the line's own and the key commands of the mode the
/// line was opened from.
fn command_names(app: &App) -> Vec<String> {
    let mut names: Vec<String> = COMMANDS.iter().map(|(n, _)| n.to_string()).collect();
    for b in app.keymap.table(app.return_mode) {
        if !matches!(b.cmd, Cmd::Pick(_) | Cmd::Palette) {
            names.push(b.cmd.name().to_string());
        }
    }
    names.sort();
    names.dedup();
    names
}

/// What the word being typed may become, given the words before it.
fn candidates(app: &App, before: &[&str]) -> Vec<String> {
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    match before {
        [] => command_names(app),
        ["sort"] => owned(&SORT_KEYS),
        ["sort", _] => owned(&["asc", "desc"]),
        ["view"] => app.views.iter().map(|v| v.name.clone()).collect(),
        ["theme"] => {
            let mut t: Vec<String> = crate::tui::theme::builtin_names()
                .map(str::to_string)
                .collect();
            if let Some(dir) = &app.themes_dir
                && let Ok(rd) = std::fs::read_dir(dir)
            {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.extension().is_some_and(|x| x == "toml")
                        && let Some(stem) = p.file_stem().and_then(|s| s.to_str())
                    {
                        t.push(stem.to_string());
                    }
                }
            }
            t.sort();
            t.dedup();
            t
        }
        ["filter", ..] => Vec::new(),
        _ => Vec::new(),
    }
}

fn common_prefix(words: &[String]) -> String {
    let Some(first) = words.first() else {
        return String::new();
    };
    let mut end = first.len();
    for w in &words[1..] {
        end = first
            .char_indices()
            .zip(w.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((i, a), _)| i + a.len_utf8())
            .min(end);
    }
    first[..end].to_string()
}

/// Tab: the word before the cursor completed as far as it is unambiguous; the choices left
/// are shown beside the line.
fn complete(app: &mut App) {
    let text = app.cmdline.text.clone();
    let (head, word) = match text.rfind(' ') {
        Some(i) => (&text[..=i], &text[i + 1..]),
        None => ("", text.as_str()),
    };
    let before: Vec<&str> = head.split_whitespace().collect();
    if before.first() == Some(&"filter") {
        let (done, options) = crate::tui::filter::complete(word, &app.policy);
        app.cmdline.text = format!("{head}{done}");
        app.completions = options;
        return;
    }
    let all = candidates(app, &before);
    let matching: Vec<String> = all.into_iter().filter(|c| c.starts_with(word)).collect();
    match matching.len() {
        0 => {
            app.completions.clear();
            say(app, Level::Warn, format!("nothing completes '{word}'"));
        }
        1 => {
            app.cmdline.text = format!("{head}{} ", matching[0]);
            app.completions.clear();
        }
        _ => {
            let common = common_prefix(&matching);
            app.cmdline.text = format!("{head}{common}");
            app.completions = matching;
        }
    }
}

/// Runs one line (with or without its leading `:`), and keeps it in the history.
pub(super) fn run_line(app: &mut App, line: &str) -> Vec<Effect> {
    let line = line.trim().trim_start_matches(':').trim();
    if line.is_empty() {
        app.dirty = true;
        return Vec::new();
    }
    let mut fx = remember(app, line);
    let (word, rest) = match line.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (line, ""),
    };
    let number = |s: &str| s.trim_start_matches('#').parse::<i64>().ok();
    fx.extend(match word {
        "q" | "quit" | "q!" | "qa" | "wq" | "x" => quit(app),
        w if number(w).is_some() && rest.is_empty() => jump(app, number(w).unwrap_or(0)),
        "id" => match number(rest) {
            Some(id) => jump(app, id),
            None => usage(app, "id N: the item's number, e.g. :id 42"),
        },
        "sort" => {
            let mut words = rest.split_whitespace();
            match words.next() {
                None => usage(app, "sort priority|age|confidence|sla [asc|desc]"),
                Some(key) => match Sort::from_key(key, words.next()) {
                    Ok(sort) => set_sort(app, sort),
                    Err(e) => {
                        say(app, Level::Error, e);
                        Vec::new()
                    }
                },
            }
        }
        "filter" | "f" => {
            app.filter_input = LineInput::with(rest);
            apply_filter(app)
        }
        "view" => apply_view(app, rest),
        "theme" => set_theme(app, rest),
        "pause" | "resume" => pause(app, word == "pause"),
        "help" | "h" => command(app, Cmd::Help),
        _ => key_command(app, word),
    });
    fx
}

fn usage(app: &mut App, text: &str) -> Vec<Effect> {
    say(app, Level::Warn, format!("usage: :{text}"));
    Vec::new()
}

/// Adds a line to the history (not twice in a row) and saves it.
fn remember(app: &mut App, line: &str) -> Vec<Effect> {
    if app.history.last().map(String::as_str) != Some(line) {
        app.history.push(line.to_string());
    }
    let max = crate::tui::persist::HISTORY_MAX;
    if app.history.len() > max {
        let cut = app.history.len() - max;
        app.history.drain(..cut);
    }
    app.history_pos = None;
    match &app.state_dir {
        Some(dir) => vec![Effect::SaveHistory(
            crate::tui::persist::history_path(dir),
            app.history.clone(),
        )],
        None => Vec::new(),
    }
}

/// A key command by its keymap name (`:approve`, `:decided`): the exact name first; else
/// the one command whose name or label holds the word; else the line says it does not know it.
fn key_command(app: &mut App, word: &str) -> Vec<Effect> {
    let mode = app.mode;
    let table: Vec<(Cmd, &'static str)> = app
        .keymap
        .table(mode)
        .iter()
        .filter(|b| !matches!(b.cmd, Cmd::Pick(_) | Cmd::Palette))
        .map(|b| (b.cmd, b.label))
        .collect();
    let exact = table
        .iter()
        .find(|(c, _)| c.name() == word)
        .map(|(c, _)| *c);
    let cmd = exact.or_else(|| {
        let w = word.to_lowercase();
        let mut fuzzy: Vec<Cmd> = table
            .iter()
            .filter(|(c, l)| c.name().contains(w.as_str()) || l.contains(w.as_str()))
            .map(|(c, _)| *c)
            .collect();
        fuzzy.dedup();
        (fuzzy.len() == 1).then(|| fuzzy[0])
    });
    match cmd {
        Some(c) if !enabled(app, mode, c) => {
            let why = why_disabled(app, c);
            say(app, Level::Warn, why);
            Vec::new()
        }
        Some(c) => command(app, c),
        None => {
            say(
                app,
                Level::Error,
                format!(
                    "unknown command ':{}' · tab completes, :help lists commands",
                    crate::text::sanitize(word)
                ),
            );
            Vec::new()
        }
    }
}

/// `:N`: the selection goes to item N, wherever the current sort puts it; an item this list
/// does not hold leaves the selection where it was.
pub(super) fn jump(app: &mut App, id: i64) -> Vec<Effect> {
    let mut fx = if app.open.is_some() {
        close(app)
    } else {
        Vec::new()
    };
    app.list.jump = Some((id, app.list.selected_id, app.list.selected));
    app.list.selected_id = Some(id);
    app.list.left = None;
    app.list.refocus = false;
    app.focus = crate::tui::action::Pane::List;
    say(app, Level::Info, format!("going to #{id}…"));
    fx.extend(reload(app));
    fx
}

pub(super) fn set_sort(app: &mut App, sort: Sort) -> Vec<Effect> {
    app.list.query.sort = sort;
    let (key, dir) = sort.key_dir();
    let label = sort.label();
    let mut fx = requery(app, Level::Info, format!("sorted by {key} {dir} ({label})"));
    fx.extend(save_ui_state(app));
    fx
}

fn set_theme(app: &mut App, name: &str) -> Vec<Effect> {
    if name.is_empty() {
        return usage(app, "theme dark|light|high-contrast|mono|NAME");
    }
    match crate::tui::theme::Theme::load(name, app.themes_dir.as_deref(), app.theme.mode) {
        Ok(t) => {
            app.theme = t;
            say(
                app,
                Level::Ok,
                format!("theme {name} (for this session; set ui.theme in the config to keep it)"),
            );
        }
        Err(e) => say(app, Level::Error, format!("theme '{name}': {e}")),
    }
    Vec::new()
}

fn pause(app: &mut App, pause: bool) -> Vec<Effect> {
    if !enabled(app, app.mode, Cmd::KillSwitch) {
        let why = why_disabled(app, Cmd::KillSwitch);
        say(app, Level::Warn, why);
        return Vec::new();
    }
    let paused = app.counts.as_ref().is_some_and(|c| c.actions_paused);
    if paused == pause {
        say(
            app,
            Level::Info,
            if pause {
                "outbound actions are already paused"
            } else {
                "outbound actions are not paused"
            },
        );
        return Vec::new();
    }
    app.confirm_pause = Some(pause);
    app.return_mode = app.mode;
    app.mode = Mode::Confirm;
    Vec::new()
}
