//! Overlays over the body: reject-reason and escalation pickers, the help palette, the diff
//! of the AI proposal against the edits, the preview of outbound actions, the timeline.
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::fmt;
use crate::model::EditableField;
use crate::text;
use crate::tui::app::{App, Mode};
use crate::tui::update::{enabled, palette_items};

pub(super) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn paragraph<'a>(app: &App, title: String, lines: Vec<Line<'a>>) -> Paragraph<'a> {
    let t = &app.theme;
    Paragraph::new(lines)
        .block(
            Block::bordered()
                .border_style(t.border_focus)
                .title(Span::styled(title, t.title))
                .title_bottom(Span::styled(" esc back ", t.muted)),
        )
        .wrap(Wrap { trim: false })
}

/// How far a panel of `p` in `area` scrolls: its wrapped height less what it shows.
fn panel_max_scroll(p: &Paragraph, area: Rect) -> u16 {
    let rows = p.line_count(area.width.saturating_sub(2));
    // `line_count` includes the borders, as `area.height` does.
    u16::try_from(rows)
        .unwrap_or(u16::MAX)
        .saturating_sub(area.height)
}

/// Scrolled, but never past the end (content may shrink or the terminal grow after a scroll).
pub(super) fn panel(
    app: &App,
    frame: &mut Frame,
    area: Rect,
    title: String,
    lines: Vec<Line>,
    scroll: u16,
) {
    frame.render_widget(Clear, area);
    let p = paragraph(app, title, lines);
    let scroll = scroll.min(panel_max_scroll(&p, area));
    frame.render_widget(p.scroll((scroll, 0)), area);
}

/// How far the open scrolling overlay (diff, preview, timeline, stats) can scroll in `body`:
/// its content's height less the rows it shows, 0 when it fits.
pub fn max_scroll(app: &App, body: Rect) -> u16 {
    let content = match app.mode {
        Mode::Diff => diff_content(app),
        Mode::Preview => preview_content(app, body),
        Mode::Timeline => timeline_content(app),
        Mode::Stats => return super::stats::max_scroll(app, body),
        _ => return 0,
    };
    let (title, lines) = content;
    panel_max_scroll(&paragraph(app, title, lines), body)
}

pub fn draw(app: &App, frame: &mut Frame, body: Rect) {
    match app.mode {
        Mode::Reject | Mode::Note => picker(app, frame, body, true),
        Mode::Escalate => picker(app, frame, body, false),
        Mode::Help => help(app, frame, body),
        Mode::Diff => diff(app, frame, body),
        Mode::Preview => preview(app, frame, body),
        Mode::Timeline => timeline(app, frame, body),
        Mode::Confirm => super::actions::confirm(app, frame, body),
        Mode::Outcome | Mode::OutcomeNote => super::actions::outcome_picker(app, frame, body),
        Mode::Stats => super::stats::draw(app, frame, body),
        Mode::Message => message(app, frame, body),
        Mode::Copy => copy_picker(app, frame, body),
        _ => {}
    }
}

fn message(app: &App, frame: &mut Frame, body: Rect) {
    let t = &app.theme;
    let Some((m, _)) = &app.message else { return };
    let lines = vec![Line::styled(text::sanitize(m).into_owned(), t.base)];
    let w = body.width.saturating_sub(8).max(20);
    let h = u16::try_from(fmt::cells(m) / usize::from(w.saturating_sub(2).max(1)) + 3)
        .unwrap_or(u16::MAX);
    let area = centered(body, w, h);
    panel(app, frame, area, " Message ".into(), lines, 0);
}

fn copy_picker(app: &App, frame: &mut Frame, body: Rect) {
    let t = &app.theme;
    let w = body.width.saturating_sub(8).clamp(20, 90);
    let mut lines: Vec<Line> = crate::tui::update::copy_items(app)
        .into_iter()
        .enumerate()
        .map(|(i, (label, v))| {
            let sel = i == app.pick;
            let st = if sel { t.selection } else { t.base };
            let first = v.lines().next().unwrap_or("");
            Line::from(vec![
                Span::styled(if sel { "▶ " } else { "  " }, t.accent),
                Span::styled(format!("{} ", i + 1), if sel { st } else { t.key }),
                Span::styled(format!("{label:<24}"), st),
                Span::styled(
                    fmt::clean(first, usize::from(w).saturating_sub(32)),
                    t.muted,
                ),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "1-9 or enter: copy (OSC 52: works over SSH where the terminal allows it)",
        t.muted,
    ));
    let h = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let id = app
        .current_id()
        .map(|i| format!("#{i} "))
        .unwrap_or_default();
    panel(
        app,
        frame,
        centered(body, w, h),
        format!(" Copy from {id}"),
        lines,
        0,
    );
}

fn picker(app: &App, frame: &mut Frame, body: Rect, reject: bool) {
    let t = &app.theme;
    let items: Vec<String> = if reject {
        app.policy
            .reject_reasons
            .iter()
            .map(|r| r.label.clone())
            .collect()
    } else {
        app.policy
            .escalation_queues
            .iter()
            .map(|q| {
                if q.label.is_empty() {
                    q.name.clone()
                } else {
                    q.label.clone()
                }
            })
            .collect()
    };
    let mut lines: Vec<Line> = items
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let sel = i == app.pick;
            let st = if sel { t.selection } else { t.base };
            Line::from(vec![
                Span::styled(if sel { "▶ " } else { "  " }, t.accent),
                Span::styled(format!("{} ", i + 1), if sel { st } else { t.key }),
                Span::styled(label.clone(), st),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        if reject {
            "1-9 reject now · enter: add a note first"
        } else {
            "1-9 or enter: escalate · p: preview what it sends"
        },
        t.muted,
    ));
    let title = if reject {
        " Reject: why? "
    } else {
        " Escalate to "
    };
    let id = app
        .current_id()
        .map(|i| format!("#{i}"))
        .unwrap_or_default();
    let h = lines.len() as u16 + 2;
    let area = centered(body, 50, h);
    panel(app, frame, area, format!("{title}{id} "), lines, 0);
}

fn help(app: &App, frame: &mut Frame, body: Rect) {
    let t = &app.theme;
    let items = palette_items(app);
    let mut lines = vec![
        Line::from(vec![
            Span::styled("› ", t.key),
            Span::styled(text::sanitize(&app.palette.text).into_owned(), t.base),
            Span::styled("█", t.accent),
        ]),
        Line::raw(""),
    ];
    let h = body.height.saturating_sub(2);
    let visible = usize::from(h.saturating_sub(4)).max(1);
    let start = app.palette_sel.saturating_sub(visible.saturating_sub(1));
    for (i, (cmd, keys, label)) in items.iter().enumerate().skip(start).take(visible) {
        let sel = i == app.palette_sel;
        let on = enabled(app, app.return_mode, *cmd);
        let base = if !on {
            t.muted
        } else if sel {
            t.selection
        } else {
            t.base
        };
        lines.push(Line::from(vec![
            Span::styled(if sel { "▶ " } else { "  " }, t.accent),
            Span::styled(fmt::pad(keys, 14), if on && !sel { t.key } else { base }),
            Span::styled(fmt::pad(label, 22), base),
            Span::styled(cmd.name(), if sel { base } else { t.muted }),
        ]));
    }
    // The command line's own commands, below the keys, where there is room.
    let q = app.palette.text.to_lowercase();
    let line_cmds: Vec<_> = crate::tui::update::COMMANDS
        .iter()
        .filter(|(n, u)| q.is_empty() || n.contains(q.as_str()) || u.contains(q.as_str()))
        .collect();
    if items.is_empty() && line_cmds.is_empty() {
        lines.push(Line::styled("  no command matches", t.muted));
    }
    if !line_cmds.is_empty() && lines.len() + 2 < usize::from(h.saturating_sub(2)) {
        lines.push(Line::raw(""));
        lines.push(Line::styled("  : command line (tab completes)", t.title));
        for (name, usage) in line_cmds {
            lines.push(Line::from(vec![
                Span::styled(format!("  :{}", fmt::pad(name, 13)), t.key),
                Span::styled(usage.to_string(), t.muted),
            ]));
        }
    }
    let area = centered(body, 64, h.max(6));
    panel(
        app,
        frame,
        area,
        format!(
            " Help · {} mode · type to filter, enter runs ",
            app.return_mode.name()
        ),
        lines,
        0,
    );
}

fn value_lines(v: Option<&str>, prefix: &'static str, style: Style) -> Vec<Line<'static>> {
    match v {
        None => vec![Line::styled(format!("{prefix}(empty)"), style)],
        Some(v) => text::sanitize_lines(v)
            .into_iter()
            .map(|l| Line::styled(format!("{prefix}{l}"), style))
            .collect(),
    }
}

/// Text long enough that a changed word is hard to spot in two whole copies.
fn is_long(s: &str) -> bool {
    fmt::cells(s) > 60 || s.contains('\n')
}

/// A long field's change as one text with the removed words `[-…-]` and the added ones
/// `{+…+}` in place; `None` when it is too long to compare word by word.
fn word_lines(app: &App, old: &str, new: &str) -> Option<Vec<Line<'static>>> {
    use super::worddiff::{Change, diff};
    let t = &app.theme;
    let mut lines = Vec::new();
    let mut spans: Vec<Span<'static>> = Vec::new();
    for (change, run) in diff(old, new)? {
        let mut parts = run.split('\n').peekable();
        while let Some(part) = parts.next() {
            if !part.is_empty() {
                let shown = text::sanitize(part).into_owned();
                spans.push(match change {
                    Change::Same => Span::styled(shown, t.base),
                    Change::Removed => Span::styled(
                        format!("[-{shown}-]"),
                        t.error.add_modifier(ratatui::style::Modifier::CROSSED_OUT),
                    ),
                    Change::Added => Span::styled(
                        format!("{{+{shown}+}}"),
                        t.ok.add_modifier(ratatui::style::Modifier::BOLD),
                    ),
                });
            }
            // A removed line break joins the lines; a kept or added one breaks here.
            if parts.peek().is_some() && change != Change::Removed {
                lines.push(Line::from(std::mem::take(&mut spans)));
            }
        }
    }
    lines.push(Line::from(spans));
    Some(lines)
}

/// The effective values: the open form's when editing, else the item's.
fn current_value(app: &App, f: EditableField) -> Option<String> {
    if let Some(form) = &app.form
        && let Some(ff) = form.fields.iter().find(|x| x.field == f)
    {
        return ff.value();
    }
    app.current_detail()
        .and_then(|d| d.fields.get(f).map(str::to_string))
}

fn diff(app: &App, frame: &mut Frame, body: Rect) {
    let (title, lines) = diff_content(app);
    panel(app, frame, body, title, lines, app.overlay_scroll);
}

fn diff_content(app: &App) -> (String, Vec<Line<'static>>) {
    let t = &app.theme;
    let Some(d) = app.current_detail() else {
        return (" Diff ".into(), vec![Line::styled("loading…", t.muted)]);
    };
    let mut lines = Vec::new();
    for f in EditableField::ALL {
        let ai = f.read_value(&d.request.ai, &app.policy);
        let now = current_value(app, f);
        if ai == now.as_deref() {
            continue;
        }
        lines.push(Line::styled(f.label(), t.title));
        match (ai, now.as_deref()) {
            (Some(old), Some(new)) if is_long(old) || is_long(new) => {
                if let Some(words) = word_lines(app, old, new) {
                    lines.extend(words);
                } else {
                    lines.extend(value_lines(Some(old), "- ", t.error));
                    lines.extend(value_lines(Some(new), "+ ", t.ok));
                }
            }
            _ => {
                lines.extend(value_lines(ai, "- ", t.error));
                lines.extend(value_lines(now.as_deref(), "+ ", t.ok));
            }
        }
        lines.push(Line::raw(""));
    }
    if lines.is_empty() {
        lines.push(Line::styled(
            "no edits: the AI's proposal stands as it is",
            t.muted,
        ));
    }
    for e in &d.edits {
        lines.push(Line::styled(
            format!(
                "{} · {} · {}",
                fmt::time(e.at),
                fmt::clean(&e.reviewer, 20),
                fmt::clean(&e.field, 30)
            ),
            t.muted,
        ));
    }
    (
        format!(" Diff #{}: AI proposal (-) vs reviewed (+) ", d.summary.id),
        lines,
    )
}

fn preview(app: &App, frame: &mut Frame, body: Rect) {
    let (title, lines) = preview_content(app, body);
    panel(app, frame, body, title, lines, app.overlay_scroll);
}

fn preview_content(app: &App, body: Rect) -> (String, Vec<Line<'static>>) {
    let id = app
        .current_id()
        .map(|i| format!("#{i}"))
        .unwrap_or_default();
    let lines = super::actions::preview_lines(app, usize::from(body.width.saturating_sub(2)));
    let title = match &app.preview_escalation {
        Some(q) => format!(
            " Preview {id}: what leaves on escalating to {} ",
            fmt::clean(q, 30)
        ),
        None => format!(" Preview {id}: what leaves on approve "),
    };
    (title, lines)
}

fn timeline(app: &App, frame: &mut Frame, body: Rect) {
    let (title, lines) = timeline_content(app);
    panel(app, frame, body, title, lines, app.overlay_scroll);
}

fn timeline_content(app: &App) -> (String, Vec<Line<'static>>) {
    let t = &app.theme;
    match &app.timeline {
        None => (
            " Timeline ".to_string(),
            vec![Line::styled("loading…", t.muted)],
        ),
        Some((id, entries)) => {
            let mut lines: Vec<Line> = Vec::new();
            for (day, text) in super::timeline::sentences(entries) {
                if let Some(day) = day {
                    lines.push(Line::styled(day, t.title));
                }
                let (at, rest) = text.split_at(text.find(' ').unwrap_or(0));
                lines.push(Line::from(vec![
                    Span::styled(at.to_string(), t.muted),
                    Span::styled(text::sanitize(rest).into_owned(), t.base),
                ]));
            }
            if lines.is_empty() {
                lines.push(Line::styled("no audit entries", t.muted));
            }
            (format!(" Timeline #{id} · oldest first "), lines)
        }
    }
}
