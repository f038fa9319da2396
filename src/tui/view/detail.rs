//! The detail: the raw request on one side, the AI triage on the other. Every string from
//! the request passes the sanitizer here.
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::fmt;
use crate::model::EditableField;
use crate::queue::ItemDetail;
use crate::text;
use crate::tui::action::Pane;
use crate::tui::app::App;
use crate::tui::update::fmt_left;

fn block<'a>(app: &App, mut title: Vec<Span<'a>>, focused: bool) -> Block<'a> {
    let t = &app.theme;
    if focused && t.mode == crate::tui::theme::ColorMode::None {
        // Without colour the border cannot say which pane has the keys: the title does.
        title.insert(0, Span::styled(super::FOCUS_MARK, t.title));
    }
    Block::bordered()
        .border_style(if focused { t.border_focus } else { t.border })
        .title(Line::from(title))
}

fn placeholder(app: &App, frame: &mut Frame, area: Rect, title: &'static str, focused: bool) {
    let t = &app.theme;
    let msg = match (app.current_id(), app.list.left) {
        (Some(_), _) => "loading…".to_string(),
        (None, Some(id)) => format!("#{id} left the list: move (j/k) to select an item"),
        (None, None) => "no item selected".to_string(),
    };
    let b = block(app, vec![Span::styled(title, t.title)], focused);
    frame.render_widget(Paragraph::new(Line::styled(msg, t.muted)).block(b), area);
}

/// `label value…` with the value wrapped under itself (hanging indent of `indent`).
fn labelled(
    label: String,
    label_style: Style,
    value: &str,
    style: Style,
    indent: usize,
    width: usize,
) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let mut first = true;
    let shown = prefix(value, MAX_FIELD_BYTES);
    let parts = text::sanitize_lines(shown);
    let parts = if parts.is_empty() {
        vec![std::borrow::Cow::Borrowed("")]
    } else {
        parts
    };
    for part in parts {
        for piece in fmt::wrap(&part, width.saturating_sub(indent)) {
            let head = if first {
                fmt::pad(&label, indent)
            } else {
                " ".repeat(indent)
            };
            out.push(Line::from(vec![
                Span::styled(head, label_style),
                Span::styled(piece, style),
            ]));
            first = false;
        }
    }
    if shown.len() < value.len() {
        out.push(Line::styled(
            format!(
                "{}… {} more bytes not shown",
                " ".repeat(indent),
                value.len() - shown.len()
            ),
            label_style,
        ));
    }
    out
}

/// An AI field is wrapped on every frame; past this much text the pane shows where it
/// stops instead (the editor, `e`, holds all of it).
const MAX_FIELD_BYTES: usize = 16 * 1024;

/// At most `max` bytes of `s`, cut at a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn field(app: &App, label: &str, value: String, style: Style, width: usize) -> Vec<Line<'static>> {
    labelled(label.to_string(), app.theme.muted, &value, style, 9, width)
}

/// Multi-line request text, sanitised line by line and wrapped.
/// Stops after `limit` lines: a long body is sanitised and wrapped only as far as the
/// screen shows. `limit` lines of `width` cells hold at most 4 bytes a cell (zero-width
/// marks aside), so only that much of the text is read: a 2 MB body in one line cost
/// 40 ms a frame when all of it was sanitised and wrapped on every keypress.
fn body_lines(s: &str, style: Style, width: usize, limit: usize) -> Vec<Line<'static>> {
    let budget = (limit + 1).saturating_mul(width.max(1)).saturating_mul(4);
    text::sanitize_lines(prefix(s, budget))
        .into_iter()
        .flat_map(|l| fmt::wrap(&l, width))
        .take(limit)
        .map(|l| Line::styled(l, style))
        .collect()
}

/// Pre-wrapped lines in a block, scrolled but never past the end.
fn scrolled(frame: &mut Frame, area: Rect, lines: &[Line<'_>], block: Block<'_>, scroll: u16) {
    let max = (lines.len() as u16).saturating_sub(area.height.saturating_sub(2).max(1));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    fmt::put_lines(
        frame.buffer_mut(),
        inner,
        lines,
        usize::from(scroll.min(max)),
    );
}

/// Below this height the request pane folds its labelled header lines into three, so the
/// body shows beside the AI fields at 80×24 without a pane switch.
const COMPACT_BELOW: u16 = 14;

pub fn draw_raw(app: &App, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let focused = app.focus == Pane::Raw;
    let Some(d) = app.current_detail() else {
        placeholder(app, frame, area, " Request ", focused);
        return;
    };
    let raw = &d.request.raw;
    let w = usize::from(area.width.saturating_sub(2));
    let mut title = vec![Span::styled(
        format!(" Request #{} ", d.summary.id),
        t.title,
    )];
    if d.summary.hidden_chars {
        title.push(Span::styled(" ⚠ hidden characters ", t.badge));
    }
    if d.summary.sample {
        title.push(Span::styled(" sample ", t.badge));
    }
    let mut lines: Vec<Line> = Vec::new();
    let age = app.now.saturating_sub(d.summary.received_at);
    let age_style = fmt::age_style(
        t,
        age,
        app.policy.sla_minutes_for(d.summary.priority.as_deref()),
    );
    if area.height < COMPACT_BELOW {
        // A short pane (80×24 stacked): sender and subject, then channel, age and id on one
        // line, so the body starts on the fourth line instead of below six labelled ones.
        lines.extend(field(
            app,
            "from",
            raw.from.clone().unwrap_or_default(),
            t.accent,
            w,
        ));
        lines.extend(field(
            app,
            "subject",
            raw.subject.clone().unwrap_or_default(),
            t.base,
            w,
        ));
        let meta = format!(
            "{} · {} ({} ago)",
            fmt::clean_opt(raw.channel.as_deref().or(Some("?"))),
            fmt::time(d.summary.received_at),
            fmt::age(age)
        );
        let id = format!(
            " · {}:{}",
            fmt::clean(&d.summary.source, w),
            fmt::clean(&d.summary.external_id, w)
        );
        let room = w.saturating_sub(fmt::cells(&meta));
        lines.push(Line::from(vec![
            Span::styled(fmt::clean(&meta, w), age_style),
            Span::styled(fmt::clean(&id, room), t.muted),
        ]));
    } else {
        for part in [
            field(
                app,
                "channel",
                raw.channel.clone().unwrap_or_default(),
                t.base,
                w,
            ),
            field(
                app,
                "from",
                raw.from.clone().unwrap_or_default(),
                t.accent,
                w,
            ),
            field(
                app,
                "subject",
                raw.subject.clone().unwrap_or_default(),
                t.base,
                w,
            ),
            field(
                app,
                "received",
                format!(
                    "{} ({} ago)",
                    fmt::time(d.summary.received_at),
                    fmt::age(age)
                ),
                age_style,
                w,
            ),
            field(
                app,
                "id",
                format!("{}:{}", d.summary.source, d.summary.external_id),
                t.muted,
                w,
            ),
        ] {
            lines.extend(part);
        }
        lines.push(Line::raw(""));
    }
    match raw.body.as_deref() {
        Some(b) if !b.is_empty() => {
            // One line more than fits tells `scrolled` there is more below.
            let limit = (usize::from(app.raw_scroll) + usize::from(area.height) + 1)
                .saturating_sub(lines.len());
            lines.extend(body_lines(b, t.base, w, limit));
        }
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
            lines.extend(labelled(
                format!("  {}: ", fmt::clean(k, 30)),
                t.muted,
                &v,
                t.base,
                (fmt::cells(&fmt::clean(k, 30)) + 4).min(w / 2),
                w,
            ));
        }
    }
    scrolled(
        frame,
        area,
        &lines,
        block(app, title, focused),
        app.raw_scroll,
    );
}

/// Whether a reviewer changed the field: its value differs from the AI's as the policy
/// reads it (a priority sent as "Normal" and read as "medium" is not an edit).
fn edited(d: &ItemDetail, f: EditableField, policy: &crate::model::Policy) -> bool {
    f.read_value(&d.request.ai, policy) != d.fields.get(f)
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
        (_, Some(who), Some(until)) if until > now && *who != app.reviewer => {
            title.push(Span::styled(
                format!(
                    " held by {} · {} ",
                    fmt::clean(who, 16),
                    fmt_left(until - now)
                ),
                t.warn,
            ))
        }
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
    let w = usize::from(area.width.saturating_sub(2));
    let mut lines: Vec<Line> = Vec::new();
    let label = |f: EditableField| -> (String, Style) {
        if edited(d, f, &app.policy) {
            (format!("{}✎", f.label()), t.edited)
        } else {
            (f.label().to_string(), t.muted)
        }
    };
    let push_field = |lines: &mut Vec<Line>, f: EditableField, style: Style| {
        let (l, ls) = label(f);
        match d.fields.get(f) {
            Some(v) => lines.extend(labelled(l, ls, v, style, 12, w)),
            None => lines.extend(labelled(l, ls, "—", t.muted, 12, w)),
        }
    };
    push_field(&mut lines, EditableField::Summary, t.base);
    let prio = d.fields.get(EditableField::Priority);
    let rank = prio
        .and_then(|p| app.policy.read_priority(p))
        .and_then(|p| app.policy.priorities.iter().position(|x| x == p));
    push_field(&mut lines, EditableField::Intent, t.accent);
    match (prio, d.request.ai.priority.as_deref()) {
        // Read as another value than sent (an alias, another case): both are shown.
        (Some(read), Some(sent))
            if read != sent && !edited(d, EditableField::Priority, &app.policy) =>
        {
            let (l, ls) = label(EditableField::Priority);
            lines.extend(labelled(
                l,
                ls,
                &format!("{read} (sent {sent:?})"),
                t.priority(rank.unwrap_or(0)),
                12,
                w,
            ));
        }
        _ => push_field(
            &mut lines,
            EditableField::Priority,
            t.priority(rank.unwrap_or(0)),
        ),
    }
    let conf = d.confidence.value();
    lines.push(Line::from(vec![
        Span::styled(format!("{:<12}", "Confidence"), t.muted),
        Span::styled(
            match &d.confidence {
                crate::model::Confidence::Invalid(s) => format!("{} (invalid)", fmt::clean(s, 20)),
                _ => fmt::conf_text(conf, 10),
            },
            fmt::conf_style(t, conf, app.policy.confidence_threshold),
        ),
        Span::styled(
            format!("  threshold {:.2}", app.policy.confidence_threshold),
            t.muted,
        ),
    ]));
    lines.extend(labelled(
        "AI flags".into(),
        t.muted,
        &d.request.ai.flags_text(),
        t.base,
        12,
        w,
    ));
    push_field(&mut lines, EditableField::EscalationReason, t.warn);
    for flag in &d.flags {
        lines.extend(labelled(
            String::new(),
            t.muted,
            &format!("⚠ {}", flag.message),
            t.error,
            12,
            w,
        ));
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
        lines.extend(labelled(
            "Missing".into(),
            t.muted,
            &m.join("; "),
            t.warn,
            12,
            w,
        ));
    }
    push_field(&mut lines, EditableField::DraftReply, t.base);
    lines.push(Line::from(vec![
        Span::styled(format!("{:<12}", "Model"), t.muted),
        Span::styled(
            format!(
                "{} · prompt {}",
                fmt::clean_opt(d.request.ai.model.as_deref().or(Some("unknown model"))),
                fmt::clean_opt(d.request.ai.prompt_version.as_deref().or(Some("unknown")))
            ),
            t.muted,
        ),
    ]));
    if !d.actions.is_empty() {
        // First thing on a decided item: where its actions are, live.
        let mut head = vec![Line::styled("Actions", t.title)];
        head.extend(
            d.actions
                .iter()
                .map(|a| super::actions::action_line(t, a, w)),
        );
        if d.actions.iter().any(|a| a.status == "dead") {
            // Where to send it again: the key here, the command for a script or a shell.
            let key = app
                .keymap
                .key_for(crate::tui::app::Mode::List, crate::tui::action::Cmd::Resend)
                .unwrap_or_else(|| "R".into());
            let ids: Vec<String> = d
                .actions
                .iter()
                .filter(|a| a.status == "dead")
                .map(|a| a.id.to_string())
                .collect();
            head.push(Line::styled(
                fmt::clean(
                    &format!(
                        "dead: {key} sends again · or `signoff resend {}`",
                        ids.join(" ")
                    ),
                    w,
                ),
                t.muted,
            ));
        }
        head.push(Line::raw(""));
        lines.splice(0..0, head);
    }
    scrolled(
        frame,
        area,
        &lines,
        block(app, title, focused),
        app.ai_scroll,
    );
}
