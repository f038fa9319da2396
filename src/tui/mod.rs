//! The review console: a keyboard-driven TUI over the [`Queue`].
//!
//! The shape follows STYLE.md: one state ([`app::App`]), a closed action enum
//! ([`action::Action`]), a pure `update` that returns effects, a pure
//! `draw(&App, &mut Frame)`, and one keymap table per mode that feeds dispatch, the footer
//! and the help palette. The event loop ([`event_loop`]) runs effects in tokio tasks and
//! draws only when something changed.
use std::path::PathBuf;
use std::sync::Arc;

use crate::model::Policy;
use crate::queue::Queue;

pub mod action;
pub mod ansi;
pub mod app;
pub mod backend;
mod config;
pub mod effects;
pub mod event_loop;
pub mod filter;
pub mod keymap;
pub mod persist;
pub mod plan;
pub mod terminal;
pub mod theme;
pub mod update;
pub mod view;

pub use config::{UiConfig, ViewConfig};

/// What the console needs besides the queue.
#[derive(Clone, Debug)]
pub struct TuiOptions {
    /// Who is reviewing (recorded on every claim, edit and decision).
    pub reviewer: String,
    /// Show everything, decide nothing.
    pub read_only: bool,
    pub policy: Arc<Policy>,
    pub ui: UiConfig,
    /// "sandbox" or "live", for the status bar.
    pub actions_mode: String,
    /// Where user themes live (`<config dir>/themes`).
    pub themes_dir: Option<PathBuf>,
    /// Where the command history and the list's state are kept between runs.
    pub state_dir: Option<PathBuf>,
}

/// Problems in `[ui]` as (dotted key, message): unknown actions, keys that do not parse,
/// keys bound twice in one mode, a bad colour mode or theme.
pub fn check_ui(ui: &UiConfig) -> Vec<(String, String)> {
    let (_, mut issues) = keymap::Keymap::build(&ui.keymap);
    for (i, v) in ui.views.iter().enumerate() {
        let at = format!("ui.views[{i}]");
        if v.name.trim().is_empty() {
            issues.push((format!("{at}.name"), "a view needs a name".into()));
        }
        if let Err(e) = filter::parse(&v.filter) {
            issues.push((format!("{at}.filter"), e));
        }
        if !v.sort.trim().is_empty() {
            let mut w = v.sort.split_whitespace();
            if let Err(e) = crate::queue::Sort::from_key(w.next().unwrap_or(""), w.next()) {
                issues.push((format!("{at}.sort"), e));
            }
        }
    }
    if let Err(e) = theme::ColorMode::resolve(&ui.color, false, None, None) {
        issues.push(("ui.color".into(), e));
    }
    if !theme::builtin_names().any(|n| n == ui.theme) {
        // A user theme lives in the config dir; only the file's absence is known later.
        if ui.theme.trim().is_empty() || ui.theme.contains(['/', '\\']) {
            issues.push((
                "ui.theme".into(),
                format!(
                    "'{}' is not a theme name; use dark, light, high-contrast, mono or the name of a file in <config dir>/themes",
                    ui.theme
                ),
            ));
        }
    }
    issues
}

/// The program that opens links: only with a local display (`DISPLAY` or
/// `WAYLAND_DISPLAY`), `$BROWSER` if set, else `xdg-open`. Over SSH without a forwarded
/// display there is none, and links are shown for copying.
pub fn browser_from_env(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let set = |k: &str| var(k).is_some_and(|v| !v.trim().is_empty());
    if !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
        return None;
    }
    Some(
        var("BROWSER")
            .map(|b| b.trim().to_string())
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| "xdg-open".into()),
    )
}

/// The console's state as it starts, from the options and the environment.
pub fn initial_app(queue: &dyn Queue, opts: &TuiOptions, width: u16, height: u16) -> app::App {
    let (km, issues) = keymap::Keymap::build(&opts.ui.keymap);
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let colorterm = std::env::var("COLORTERM").ok();
    let term = std::env::var("TERM").ok();
    let mut problems: Vec<String> = issues
        .into_iter()
        .map(|(k, m)| format!("{k}: {m}"))
        .collect();
    let mode = theme::ColorMode::resolve(
        &opts.ui.color,
        no_color,
        colorterm.as_deref(),
        term.as_deref(),
    )
    .unwrap_or_else(|e| {
        problems.push(format!("ui.color: {e}"));
        theme::ColorMode::Ansi16
    });
    let theme = theme::Theme::load(&opts.ui.theme, opts.themes_dir.as_deref(), mode)
        .unwrap_or_else(|e| {
            problems.push(format!("ui.theme: {e}"));
            theme::Theme::load("dark", None, mode).unwrap_or_else(|_| theme::Theme::fallback())
        });
    let mut a = app::App::new(app::AppInit {
        policy: opts.policy.clone(),
        reviewer: opts.reviewer.clone(),
        read_only: opts.read_only,
        location: queue.location(),
        actions_mode: opts.actions_mode.clone(),
        theme,
        keymap: km,
        now: event_loop::now_ms(),
        width,
        height,
    });
    a.themes_dir = opts.themes_dir.clone();
    a.views = opts.ui.views.clone();
    a.state_dir = opts.state_dir.clone();
    if let Some(dir) = &opts.state_dir {
        a.history = persist::load_history(&persist::history_path(dir));
        match persist::load_ui_state(&persist::ui_state_path(dir, &a.reviewer)) {
            Ok(Some(s)) => update::restore(&mut a, s),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("{e}");
                problems.push(e);
            }
        }
    }
    a.browser = browser_from_env(|k| std::env::var(k).ok());
    a.mouse = opts.ui.mouse;
    if let Some(p) = problems.first() {
        a.message = Some((p.clone(), app::Level::Warn));
    } else {
        let help = a
            .keymap
            .key_for(app::Mode::List, action::Cmd::Help)
            .unwrap_or_else(|| "?".into());
        a.message = Some((
            format!("welcome, {} · {help} lists every key", a.reviewer),
            app::Level::Info,
        ));
    }
    a
}

/// Runs the console until the reviewer quits.
pub async fn run(queue: Arc<dyn Queue>, opts: TuiOptions) -> anyhow::Result<()> {
    let mut guard = terminal::TerminalGuard::enter_with(opts.ui.mouse)
        .map_err(|e| anyhow::anyhow!("cannot set up the terminal (is this a terminal?): {e}"))?;
    // One write per frame instead of one per escape sequence (stdout's own buffer is small).
    let mut backend = backend::AnsiBackend::new(std::io::BufWriter::with_capacity(
        64 * 1024,
        std::io::stdout(),
    ));
    // An escape hatch should a terminal disagree with the planner's output.
    backend.planned = std::env::var_os("SIGNOFF_TUI_PLAIN").is_none();
    let mut term = ratatui::Terminal::new(backend)?;
    let size = term.size()?;
    let app = initial_app(queue.as_ref(), &opts, size.width, size.height);
    let result = event_loop::run(queue, app, &mut term, &mut guard).await;
    drop(guard);
    result
}
