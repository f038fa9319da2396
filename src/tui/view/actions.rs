//! What decisions set in motion: one line per outbound action in the detail, the preview of
//! the exact requests approval would store, the kill-switch question and the outcome picker.
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::fmt;
use super::overlay::{centered, panel};
use crate::queue::{ActionStatus, Millis};
use crate::text;
use crate::tui::app::{App, Mode};
use crate::tui::theme::Theme;
use crate::tui::update::confirm_question;

/// "14:05:10" (UTC), for a retry time.
fn clock(ms: Millis) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return ms.to_string();
    };
    let f = time::macros::format_description!("[hour]:[minute]:[second]");
    t.format(&f).unwrap_or_default()
}

/// The colour of an action state: sent is good news, retrying a warning, dead an error.
fn state_style(t: &Theme, status: &str) -> Style {
    match status {
        "sent" => t.ok,
        "retrying" => t.warn,
        "dead" => t.error,
        "cancelled" => t.muted,
        "sandbox" => t.accent,
        _ => t.base,
    }
}

/// One action as a line: `crm  sent · item 98`, `slack  retrying (3) · next 14:05:10 · 429…`.
pub fn action_line(t: &Theme, a: &ActionStatus, width: usize) -> Line<'static> {
    let mut state = a.status.clone();
    if a.status == "retrying" && a.attempts > 0 {
        state.push_str(&format!(" ({})", a.attempts));
    }
    let mut parts: Vec<String> = Vec::new();
    if matches!(a.status.as_str(), "retrying" | "queued")
        && let Some(at) = a.next_attempt_at
    {
        parts.push(format!("next {}", clock(at)));
    }
    if let Some(r) = a.response.as_deref().and_then(crate::actions::result_text) {
        // The state already says sandbox; keep only why.
        let r = match r.strip_prefix("sandbox: ") {
            Some(why) if a.status == "sandbox" => why.to_string(),
            _ => r,
        };
        parts.push(r);
    }
    if a.status != "sent"
        && let Some(e) = &a.last_error
    {
        parts.push(e.clone());
    }
    let head = format!("{:<7}", a.action.as_str());
    let rest = if parts.is_empty() {
        String::new()
    } else {
        format!(" · {}", parts.join(" · "))
    };
    let used = fmt::cells(&head) + fmt::cells(&state);
    Line::from(vec![
        Span::styled(head, t.muted),
        Span::styled(state.clone(), state_style(t, &a.status)),
        Span::styled(
            fmt::clean(&rest, width.saturating_sub(used)),
            if a.status == "dead" { t.error } else { t.base },
        ),
    ])
}

/// The preview body: each action's rendered requests, or why approval would be refused.
pub fn preview_lines(app: &App, width: usize) -> Vec<Line<'static>> {
    let t = &app.theme;
    let id = app.current_id();
    let mut lines = vec![
        Line::styled(
            format!(
                "{} stores exactly these requests ({} mode{}).",
                if app.preview_escalation.is_some() {
                    "Escalating"
                } else {
                    "Approving"
                },
                app.actions_mode,
                if app.actions_mode == "sandbox" {
                    ": rendered and stored, nothing is sent"
                } else {
                    ""
                }
            ),
            t.muted,
        ),
        Line::raw(""),
    ];
    let previews = match &app.preview {
        Some((pid, r)) if Some(*pid) == id => r,
        _ => {
            lines.push(Line::styled("rendering…", t.muted));
            return lines;
        }
    };
    match previews {
        Err(e) => lines.push(Line::styled(
            format!(
                "cannot preview: {}",
                fmt::clean(e, width.saturating_sub(16))
            ),
            t.error,
        )),
        Ok(v) if v.is_empty() => {
            let intent = app
                .current_detail()
                .and_then(|d| d.fields.intent.clone())
                .unwrap_or_default();
            let why = if let Some(q) = &app.preview_escalation {
                format!(
                    "escalating to {} triggers no actions: nothing is sent",
                    fmt::clean(q, 40)
                )
            } else if app.policy.actions_for(&intent).is_empty() {
                format!(
                    "intent '{}' triggers no actions: approving sends nothing",
                    fmt::clean(&intent, 40)
                )
            } else {
                "this queue renders no actions (no actions config): approving sends nothing"
                    .to_string()
            };
            lines.push(Line::styled(why, t.warn));
        }
        Ok(v) => {
            for p in v {
                if let Some(why) = p.skipped {
                    lines.push(Line::styled(
                        format!("{} · not queued", p.action.as_str()),
                        t.title,
                    ));
                    let mut text = why.reason().to_string();
                    if why.fixed_by_a_draft() {
                        let edit = app
                            .keymap
                            .key_for(Mode::Review, crate::tui::action::Cmd::Edit)
                            .unwrap_or_else(|| "edit".into());
                        text.push_str(&format!("; press {edit} to write one"));
                    }
                    for piece in fmt::wrap(&text, width.saturating_sub(2)) {
                        lines.push(Line::styled(format!("  {piece}"), t.warn));
                    }
                    lines.push(Line::raw(""));
                    continue;
                }
                match &p.rendered {
                    Ok(r) => {
                        let body = crate::actions::preview_text(&r.to_string());
                        for l in text::sanitize_lines(&body) {
                            let st = if l.starts_with('[') {
                                t.accent
                            } else if !l.starts_with(' ') && !l.is_empty() {
                                t.title
                            } else {
                                t.base
                            };
                            for piece in fmt::wrap(&l, width) {
                                lines.push(Line::styled(piece, st));
                            }
                        }
                    }
                    Err(e) => {
                        lines.push(Line::styled(
                            format!(
                                "{} · key {}",
                                p.action.as_str(),
                                fmt::clean(&p.idempotency_key, 60)
                            ),
                            t.title,
                        ));
                        lines.push(Line::styled(
                            "approval would be refused:".to_string(),
                            t.error,
                        ));
                        for l in text::sanitize_lines(e) {
                            for piece in fmt::wrap(&l, width.saturating_sub(2)) {
                                lines.push(Line::styled(format!("  {piece}"), t.error));
                            }
                        }
                    }
                }
                lines.push(Line::raw(""));
            }
        }
    }
    lines
}

/// The kill-switch question.
pub fn confirm(app: &App, frame: &mut Frame, body: Rect) {
    let t = &app.theme;
    if let Some(q) = crate::tui::update::bulk_question(app) {
        let mut lines = vec![Line::styled(q, t.warn), Line::raw("")];
        for (id, m) in &app.marked {
            lines.push(Line::from(vec![
                Span::styled(format!("#{id:<6} "), t.key),
                Span::styled(crate::tui::view::fmt::clean(&m.label, 200), t.base),
            ]));
        }
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            "Each is claimed and decided at the revision the list showed; one that changed or is held by someone else is left out and named.",
            t.muted,
        ));
        let h = u16::try_from(app.marked.len() + 9).unwrap_or(u16::MAX);
        let area = centered(body, body.width.saturating_sub(8).max(40), h);
        panel(
            app,
            frame,
            area,
            " Bulk decision ".into(),
            lines,
            app.overlay_scroll,
        );
        return;
    }
    let pausing = app.confirm_pause == Some(true);
    let lines = vec![
        Line::styled(
            confirm_question(app),
            if pausing { t.error } else { t.warn },
        ),
        Line::raw(""),
        Line::styled(
            if pausing {
                "Nothing is sent to the CRM, Slack or Gmail until resumed; decisions still queue."
            } else {
                "Queued actions start leaving with the next dispatch."
            },
            t.muted,
        ),
    ];
    let area = centered(body, 60, 7);
    panel(app, frame, area, " Kill switch ".into(), lines, 0);
}

/// The outcome picker, and the reason line under it once an outcome needing one is chosen.
pub fn outcome_picker(app: &App, frame: &mut Frame, body: Rect) {
    let t = &app.theme;
    let mut lines: Vec<Line> = app
        .policy
        .outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let sel = i == app.pick;
            let st = if sel { t.selection } else { t.base };
            let mut spans = vec![
                Span::styled(if sel { "▶ " } else { "  " }, t.accent),
                Span::styled(format!("{} ", i + 1), if sel { st } else { t.key }),
                Span::styled(fmt::clean(&o.label, 36), st),
            ];
            if o.needs_reason {
                spans.push(Span::styled(" (reason)", t.muted));
            }
            Line::from(spans)
        })
        .collect();
    lines.push(Line::raw(""));
    if app.mode == Mode::OutcomeNote {
        lines.push(Line::from(vec![
            Span::styled("why: ", t.key),
            Span::styled(text::sanitize(&app.note.text).into_owned(), t.base),
            Span::styled("█", t.accent),
        ]));
    } else {
        lines.push(Line::styled("1-9 or enter: record", t.muted));
    }
    let id = app
        .outcome_item
        .map(|i| format!("#{i} "))
        .unwrap_or_default();
    let h = lines.len() as u16 + 2;
    let area = centered(body, 50, h);
    panel(app, frame, area, format!(" Outcome of {id}"), lines, 0);
}
