//! The detail: the raw request on one side, the AI triage on the other. Every string from
//! the request passes the sanitizer here.
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::fmt;
use crate::model::EditableField;
use crate::queue::ItemDetail;
use crate::text;
use crate::tui::action::Pane;
use crate::tui::app::App;
use crate::tui::update::fmt_left;

fn block<'a>(app: &App, title: Vec<Span<'a>>, focused: bool) -> Block<'a> {
    let t = &app.theme;
    Block::bordered()
        .border_style(if focused { t.border_focus } else { t.border })
        .title(Line::from(title))
}

fn placeholder(app: &App, frame: &mut Frame, area: Rect, title: &'static str, focused: bool) {
    let t = &app.theme;
    let msg = if app.current_id().is_some() {
        "loading…"
    } else {
        "no item selected"
    };
    let b = block(app, vec![Span::styled(title, t.title)], focused);
    frame.render_widget(
        Paragraph::new(Line::styled(msg, t.muted)).block(b),
        area,
    );
}

fn field<'a>(app: &App, label: &'a str, value: String, style: Style) -> Line<'a> {
    let t = &app.theme;
    Line::from(vec![
        Span::styled(format!("{label:<9}"), t.muted),
        Span::styled(value, style),
    ])
}

/// Multi-line request text, sanitised line by line.
fn body_lines(s: &str, style: Style) -> Vec<Line<'static>> {
    text::sanitize_lines(s)
        .into_iter()
        .map(|l| Line::styled(l.into_owned(), style))
        .collect()
}

pub fn draw_raw(app: &App, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let focused = app.focus == Pane::Raw;
    let Some(d) = app.current_detail() else {
        placeholder(app, frame, area, " Request ", focused);
        return;
    };
    let raw = &d.request.raw;
    let mut title = vec![Span::styled(format!(" Request #{} ", d.summary.id), t.title)];
    if d.summary.hidden_chars {
        title.push(Span::styled(" ⚠ hidden characters ", t.badge));
    }
    let mut lines: Vec<Line> = vec![
        field(app, "channel", fmt::clean_opt(raw.channel.as_deref()).into_owned(), t.base),
        field(app, "from", fmt::clean_opt(raw.from.as_deref()).into_owned(), t.accent),
        field(app, "subject", fmt::clean_opt(raw.subject.as_deref()).into_owned(), t.base),
        field(
            app,
            "received",
            format!(
                "{} ({} ago)",
                fmt::time(d.summary.received_at),
                fmt::age(app.now.saturating_sub(d.summary.received_at))
            ),
            fmt::age_style(
                t,
                app.now.saturating_sub(d.summary.received_at),
                app.policy.sla_minutes_for(d.summary.priority.as_deref()),
            ),
        ),
        field(
            app,
            "id",
            fmt::clean(&format!("{}:{}", d.summary.source, d.summary.external_id), 80),
            t.muted,
        ),
        Line::raw(""),
    ];
    match raw.body.as_deref() {
        Some(b) if !b.is_empty() => lines.extend(body_lines(b, t.base)),
        _ => lines.push(Line::styled("(no body)", t.muted)),
    }
    if !raw.fields.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled("form fields", t.title));
        for (k, v) in &raw.fields {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("  {}: ", fmt::clean(k, 30)), t.muted),
                Span::styled(text::sanitize(&v).into_owned(), t.base),
            ]));
        }
    }
    let p = Paragraph::new(lines)
        .block(block(app, title, focused))
        .wrap(Wrap { trim: false })
        .scroll((app.raw_scroll, 0));
    frame.render_widget(p, area);
}

fn edited(d: &ItemDetail, f: EditableField) -> bool {
    f.ai_value(&d.request.ai) != d.fields.get(f)
}

pub fn draw_ai(app: &App, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let focused = app.focus == Pane::Ai;
    let Some(d) = app.current_detail() else {
        placeholder(app, frame, area, " AI triage ", focused);
        return;
    };
    let mut title = vec![Span::styled(" AI triage ", t.title)];
    let now = app.now;
    match (&app.claim, &d.summary.claimed_by, d.summary.lease_expires) {
        (Some(c), _, _) if c.id == d.summary.id => title.push(Span::styled(
            format!(" yours · {} ", fmt_left(c.lease_expires - now)),
            t.ok,
        )),
        (_, Some(who), Some(until)) if until > now && *who != app.reviewer => title.push(
            Span::styled(
                format!(" held by {} · {} ", fmt::clean(who, 16), fmt_left(until - now)),
                t.warn,
            ),
        ),
        _ => {}
    }
    if let Some(dec) = &d.decision
        && !dec.undone
    {
        title.push(Span::styled(
            format!(" {} by {} ", d.summary.state, fmt::clean(&dec.reviewer, 16)),
            t.accent,
        ));
    }
    let mut lines: Vec<Line> = Vec::new();
    let label = |f: EditableField| -> (String, Style) {
        if edited(d, f) {
            (format!("{}✎", f.label()), t.edited)
        } else {
            (f.label().to_string(), t.muted)
        }
    };
    let push_field = |lines: &mut Vec<Line>, f: EditableField, style: Style| {
        let (l, ls) = label(f);
        let v = d.fields.get(f).unwrap_or("—");
        let mut first = true;
        for part in text::sanitize_lines(v) {
            let head = if first { format!("{l:<12}") } else { " ".repeat(12) };
            let hs = if first { ls } else { t.muted };
            first = false;
            lines.push(Line::from(vec![
                Span::styled(head, hs),
                Span::styled(part.into_owned(), style),
            ]));
        }
        if first {
            lines.push(Line::from(vec![
                Span::styled(format!("{l:<12}"), ls),
                Span::styled("—", t.muted),
            ]));
        }
    };
    push_field(&mut lines, EditableField::Summary, t.base);
    let prio = d.fields.get(EditableField::Priority);
    let rank = prio.and_then(|p| app.policy.priorities.iter().position(|x| x == p));
    push_field(&mut lines, EditableField::Intent, t.accent);
    push_field(&mut lines, EditableField::Priority, t.priority(rank.unwrap_or(0)));
    let conf = d.confidence.value();
    lines.push(Line::from(vec![
        Span::styled(format!("{:<12}", "Confidence"), t.muted),
        Span::styled(
            match &d.confidence {
                crate::model::Confidence::Invalid(s) => format!("{} (not a number)", fmt::clean(s, 20)),
                _ => fmt::conf_text(conf, 10),
            },
            fmt::conf_style(t, conf, app.policy.confidence_threshold),
        ),
        Span::styled(
            format!("  threshold {:.2}", app.policy.confidence_threshold),
            t.muted,
        ),
    ]));
    push_field(&mut lines, EditableField::EscalationReason, t.warn);
    for flag in &d.flags {
        lines.push(Line::from(vec![
            Span::styled(" ".repeat(12), t.muted),
            Span::styled(format!("⚠ {}", text::sanitize(&flag.message)), t.error),
        ]));
    }
    push_field(&mut lines, EditableField::RecommendedNextStep, t.base);
    if !d.request.ai.missing_info.is_empty() {
        let m: Vec<String> = d
            .request
            .ai
            .missing_info
            .iter()
            .map(|s| text::sanitize(s).into_owned())
            .collect();
        lines.push(Line::from(vec![
            Span::styled(format!("{:<12}", "Missing"), t.muted),
            Span::styled(m.join("; "), t.warn),
        ]));
    }
    push_field(&mut lines, EditableField::DraftReply, t.base);
    lines.push(Line::from(vec![
        Span::styled(format!("{:<12}", "Model"), t.muted),
        Span::styled(
            format!(
                "{} · prompt {}",
                fmt::clean_opt(d.request.ai.model.as_deref()),
                fmt::clean_opt(d.request.ai.prompt_version.as_deref())
            ),
            t.muted,
        ),
    ]));
    if !d.actions.is_empty() {
        let a: Vec<String> = d
            .actions
            .iter()
            .map(|a| format!("{} {}", a.action.as_str(), a.status))
            .collect();
        lines.push(Line::from(vec![
            Span::styled(format!("{:<12}", "Actions"), t.muted),
            Span::styled(a.join(" · "), t.accent),
        ]));
    }
    let p = Paragraph::new(lines)
        .block(block(app, title, focused))
        .wrap(Wrap { trim: false })
        .scroll((app.ai_scroll, 0));
    frame.render_widget(p, area);
}
