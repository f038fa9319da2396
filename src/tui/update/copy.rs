//! `y`: copy a field of the current item to the clipboard (OSC 52, so it works over SSH),
//! and `m`: the last message in full when the message line had to cut it.

use super::*;
use crate::model::EditableField;
use crate::tui::action::{Cmd, Effect};
use crate::tui::app::{App, Level, Mode};

/// What `y` offers for the current item: (label, text), only what it has.
pub fn copy_items(app: &App) -> Vec<(&'static str, String)> {
    let Some(d) = app.current_detail() else {
        return Vec::new();
    };
    let mut out: Vec<(&'static str, String)> = vec![
        ("item number", d.summary.id.to_string()),
        (
            "source and external id",
            format!("{}:{}", d.summary.source, d.summary.external_id),
        ),
    ];
    let s = &d.summary;
    for (label, v) in [("sender", &s.sender), ("subject", &s.subject)] {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            out.push((label, v.clone()));
        }
    }
    for (label, f) in [
        ("summary", EditableField::Summary),
        ("next step", EditableField::RecommendedNextStep),
        ("draft reply", EditableField::DraftReply),
    ] {
        if let Some(v) = d.fields.get(f).filter(|v| !v.is_empty()) {
            out.push((label, v.to_string()));
        }
    }
    if let Some(url) = first_link(d) {
        out.push(("first link", url));
    }
    out.truncate(9);
    out
}

/// The first http(s) link of the request as it came (body, then subject), without the
/// punctuation that usually follows a link in prose. Only printable ASCII is kept in a
/// link: anything else ends it, so no control character or bidi mark travels with it.
pub fn first_link(d: &crate::queue::ItemDetail) -> Option<String> {
    let raw = &d.request.raw;
    [raw.body.as_deref(), raw.subject.as_deref()]
        .into_iter()
        .flatten()
        .find_map(link_in)
}

fn link_in(text: &str) -> Option<String> {
    let start = ["https://", "http://"]
        .iter()
        .filter_map(|p| text.find(p))
        .min()?;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| {
            !c.is_ascii_graphic()
                || matches!(
                    c,
                    '<' | '>' | '"' | '\'' | '`' | '{' | '}' | '|' | '\\' | '^'
                )
        })
        .unwrap_or(rest.len());
    let url = rest[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']']);
    (url.len() > "https://".len()).then(|| url.to_string())
}

pub(super) fn open_link(app: &mut App) -> Vec<Effect> {
    let Some(url) = app.current_detail().and_then(first_link) else {
        say(app, Level::Warn, "no link in this request");
        return Vec::new();
    };
    match app.browser.clone() {
        Some(browser) => {
            say(app, Level::Info, format!("opening {url} with {browser}"));
            vec![Effect::OpenLink { browser, url }]
        }
        None => {
            let key = app
                .keymap
                .key_for(Mode::List, Cmd::Copy)
                .unwrap_or_else(|| "y".into());
            say(
                app,
                Level::Info,
                format!("link: {url} · no display here to open it: {key} copies it"),
            );
            Vec::new()
        }
    }
}

pub(super) fn open_copy(app: &mut App) -> Vec<Effect> {
    if copy_items(app).is_empty() {
        say(app, Level::Warn, "no item on screen to copy from");
        return Vec::new();
    }
    open_picker(app, Mode::Copy);
    Vec::new()
}

pub(super) fn copy_command(app: &mut App, c: Cmd) -> Vec<Effect> {
    let items = copy_items(app);
    match pick(app, c, items.len()) {
        Picked::Chosen(i) => {
            app.mode = app.return_mode;
            let (label, text) = items[i].clone();
            let n = text.chars().count();
            say(
                app,
                Level::Ok,
                format!(
                    "copied the {label} ({n} character{}) to the clipboard, if the terminal allows OSC 52",
                    if n == 1 { "" } else { "s" }
                ),
            );
            vec![Effect::CopyToClipboard(text)]
        }
        Picked::Done => Vec::new(),
        Picked::Other if c == Cmd::Back => {
            app.mode = app.return_mode;
            Vec::new()
        }
        Picked::Other => {
            app.dirty = false;
            Vec::new()
        }
    }
}

pub(super) fn show_message(app: &mut App) -> Vec<Effect> {
    if app.message.is_none() {
        say(app, Level::Info, "no message to show");
        return Vec::new();
    }
    app.return_mode = app.mode;
    app.mode = Mode::Message;
    Vec::new()
}

/// The OSC 52 sequence that puts `text` on the clipboard; only base64 reaches the terminal.
pub fn osc52(text: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    format!("\x1b]52;c;{b64}\x07")
}
