//! The status bar (queue counts, reviewer, backend, actions mode, message line) and the
//! footer, which lists the current mode's keys from the same table dispatch uses.
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::fmt;
use super::list::group;
use crate::text;
use crate::tui::app::{App, Level, Mode};
use crate::tui::keymap::seq_label;
use crate::tui::update::enabled;

pub fn draw_status(app: &App, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let w = usize::from(area.width);
    let mut spans: Vec<Span> = Vec::new();
    if app.counts.as_ref().is_some_and(|c| c.actions_paused) {
        spans.push(Span::styled(" PAUSED ", t.badge_alert));
    }
    match &app.counts {
        Some(c) => {
            spans.push(Span::styled(
                format!(" {} pending", group(c.pending)),
                t.status,
            ));
            spans.push(Span::styled(
                format!(" · {} in review", group(c.in_review)),
                t.status,
            ));
            spans.push(Span::styled(
                format!(" · {} escalated", group(c.escalated)),
                t.status,
            ));
            if let Some(o) = c.oldest_open {
                spans.push(Span::styled(
                    format!(" · oldest {}", fmt::age(app.now.saturating_sub(o))),
                    t.status,
                ));
            }
            let st = if c.sla_breaches > 0 {
                t.error
            } else {
                t.status
            };
            spans.push(Span::styled(
                format!(" · {} over SLA", group(c.sla_breaches)),
                st,
            ));
        }
        None => spans.push(Span::styled(" counting…", t.status)),
    }
    if let Some(alert) = app.volume.as_ref().and_then(|v| v.alert.as_deref()) {
        spans.push(Span::styled(
            format!(" · ⚠ {}", fmt::clean(alert, w / 4)),
            t.warn,
        ));
    }
    let mut right = format!(
        " │ {} │ {} │ {} ",
        fmt::clean(&app.reviewer, 20),
        fmt::clean(&app.location, 40),
        app.actions_mode
    );
    if app.read_only {
        right.push_str("│ READ-ONLY ");
    }
    let left_w: usize = spans.iter().map(|s| fmt::cells(&s.content)).sum();
    let right = fmt::clean(&right, w.saturating_sub(left_w));
    let gap = w.saturating_sub(left_w + fmt::cells(&right));
    spans.push(Span::styled(" ".repeat(gap), t.status));
    spans.push(Span::styled(right, t.status));
    let line1 = Line::from(spans);

    let line2 = match app.mode {
        Mode::Filter => Line::from(vec![
            Span::styled(" filter: ", t.key),
            Span::styled(text::sanitize(&app.filter_input.text).into_owned(), t.base),
            Span::styled("█", t.accent),
            match &app.message {
                // Why the filter did not apply, beside it until the next key.
                Some((m, Level::Error)) => Span::styled(format!("   {m}"), t.error),
                _ if app.completions.is_empty() => Span::styled(
                    "   p:high c<0.6 age>2h esc hidden intent:… text · tab completes",
                    t.muted,
                ),
                _ => Span::styled(format!("   {}", app.completions.join(" ")), t.muted),
            },
        ]),
        Mode::Command => Line::from(vec![
            Span::styled(" :", t.key),
            Span::styled(text::sanitize(&app.cmdline.text).into_owned(), t.base),
            Span::styled("█", t.accent),
            Span::styled(
                if app.completions.is_empty() {
                    String::new()
                } else {
                    format!("   {}", fmt::clean(&app.completions.join(" "), w / 2))
                },
                t.muted,
            ),
        ]),
        Mode::Confirm => Line::styled(
            format!(
                " {}",
                crate::tui::update::bulk_question(app)
                    .unwrap_or_else(|| crate::tui::update::confirm_question(app).to_string())
            ),
            t.warn,
        ),
        Mode::Search => Line::from(vec![
            Span::styled(" /", t.key),
            Span::styled(text::sanitize(&app.search_input.text).into_owned(), t.base),
            Span::styled("█", t.accent),
            Span::styled(
                "   enter keeps · esc goes back · n/N next/previous",
                t.muted,
            ),
        ]),
        Mode::Note => Line::from(vec![
            Span::styled(" note (optional): ", t.key),
            Span::styled(text::sanitize(&app.note.text).into_owned(), t.base),
            Span::styled("█", t.accent),
        ]),
        _ => match &app.message {
            Some((m, level)) => {
                let st = match level {
                    Level::Info => t.base,
                    Level::Ok => t.ok,
                    Level::Warn => t.warn,
                    Level::Error => t.error,
                };
                // A message wider than the line says how to read the rest.
                let more = app
                    .keymap
                    .key_for(app.base_mode(), crate::tui::action::Cmd::ShowMessage)
                    .map(|k| format!(" … {k}: all"))
                    .unwrap_or_default();
                if fmt::cells(m) + 1 > w && !more.is_empty() {
                    let room = w.saturating_sub(1 + fmt::cells(&more));
                    Line::from(vec![
                        Span::styled(
                            format!(" {}", fmt::cut(&fmt::clean(m, usize::MAX), room)),
                            st,
                        ),
                        Span::styled(more, t.key),
                    ])
                } else {
                    Line::styled(format!(" {}", fmt::clean(m, w.saturating_sub(1))), st)
                }
            }
            None => Line::raw(""),
        },
    };
    frame.render_widget(Paragraph::new(vec![line1, line2]), area);
}

pub fn draw_footer(app: &App, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let w = usize::from(area.width);
    let mut spans: Vec<Span> = Vec::new();
    let mut used = 0usize;
    if let Some(n) = app.count {
        let s = format!(" {n}…");
        used += fmt::cells(&s);
        spans.push(Span::styled(s, t.key));
    }
    if !app.marked.is_empty() {
        let s = format!(" {} marked", app.marked.len());
        used += fmt::cells(&s);
        spans.push(Span::styled(s, t.warn));
    }
    if let Some(k) = app.pending_key {
        let s = format!(" {k}…");
        used += fmt::cells(&s);
        spans.push(Span::styled(s, t.key));
    }
    // `? help` is never cut off: its room is kept, and it goes last.
    let table = app.keymap.table(app.mode);
    let help = table
        .iter()
        .find(|b| b.footer && b.cmd == crate::tui::action::Cmd::Help);
    let help_w = help.and_then(|b| b.keys.first()).map_or(0, |k| {
        fmt::cells(&format!("{} {}", seq_label(k), b_label(help))) + 2
    });
    let room = w.saturating_sub(help_w);
    for b in table
        .iter()
        .filter(|b| b.footer && b.cmd != crate::tui::action::Cmd::Help)
        .filter(|b| !crate::tui::update::hidden(app, b.cmd))
        .chain(help)
    {
        let Some(k) = b.keys.first() else { continue };
        let limit = if b.cmd == crate::tui::action::Cmd::Help {
            w
        } else {
            room
        };
        let key = seq_label(k);
        let label = if matches!(b.cmd, crate::tui::action::Cmd::Pick(_)) {
            format!("1-{} {}", pick_count(app), b.label)
        } else {
            format!("{key} {}", b.label)
        };
        let need = fmt::cells(&label) + 2;
        if used + need > limit {
            if b.cmd == crate::tui::action::Cmd::Help {
                break;
            }
            continue;
        }
        used += need;
        let on = enabled(app, app.mode, b.cmd);
        let (ks, ls) = if on {
            (t.key, t.base)
        } else {
            (t.muted, t.muted)
        };
        let (kpart, lpart) = label.split_once(' ').unwrap_or((label.as_str(), ""));
        spans.push(Span::raw("  "));
        spans.push(Span::styled(kpart.to_string(), ks));
        spans.push(Span::styled(format!(" {lpart}"), ls));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn b_label(b: Option<&crate::tui::keymap::Binding>) -> &'static str {
    b.map_or("", |b| b.label)
}

fn pick_count(app: &App) -> usize {
    match app.mode {
        Mode::Escalate => app.policy.escalation_queues.len(),
        Mode::Copy => crate::tui::update::copy_items(app).len(),
        Mode::Outcome => app.policy.outcomes.len(),
        _ => app.policy.reject_reasons.len(),
    }
    .min(9)
}
