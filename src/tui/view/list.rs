//! The queue list: one row per item, a window over the fetched page.
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Block;

use super::fmt;
use crate::queue::ItemSummary;
use crate::tui::action::Pane;
use crate::tui::app::App;

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let l = &app.list;
    let focused = app.focus == Pane::List && app.open.is_none();
    let mut title = format!(
        " {} · {} · {} ",
        if l.query.states.is_empty() {
            "Queue"
        } else {
            "Decided"
        },
        group(l.page.total),
        l.query.sort.label()
    );
    if !l.filter_text.is_empty() {
        title.push_str(&format!("· /{} ", fmt::clean(&l.filter_text, 30)));
    }
    if l.loading {
        title.push_str("· loading… ");
    }
    if focused && t.mode == crate::tui::theme::ColorMode::None {
        // Without colour the border cannot say which pane has the keys: the title does.
        title.insert_str(0, super::FOCUS_MARK);
    }
    let block = Block::bordered()
        .border_style(if focused { t.border_focus } else { t.border })
        .title(Span::styled(title, t.title));
    let mut inner = block.inner(area);
    frame.render_widget(block, area);
    let width = usize::from(inner.width);
    if super::layout::has_header(inner.height) {
        let head = vec![header(app, width)];
        fmt::put_lines(frame.buffer_mut(), Rect { height: 1, ..inner }, &head, 0);
        inner.y += 1;
        inner.height -= 1;
    }
    let rows = usize::from(inner.height);
    let mut lines = Vec::with_capacity(rows);
    for i in 0..rows as u64 {
        let abs = l.top + i;
        if abs >= l.page.total {
            if l.page.total == 0 && i == 0 && !l.loading {
                let msg = if l.filter_text.is_empty() {
                    "nothing to review: the queue is empty"
                } else {
                    "no item matches the filter (esc clears it)"
                };
                lines.push(Line::styled(fmt::pad(&format!("  {msg}"), width), t.muted));
            }
            continue;
        }
        let item = abs
            .checked_sub(l.page.offset)
            .and_then(|k| usize::try_from(k).ok())
            .and_then(|k| l.page.items.get(k));
        // After the selected item left the list no row is marked: none is selected.
        let selected = abs == l.selected && l.left.is_none();
        lines.push(match item {
            Some(it) => row(app, it, selected, width),
            None => Line::styled(fmt::pad("  …", width), t.muted),
        });
    }
    fmt::put_lines(frame.buffer_mut(), inner, &lines, 0);
}

/// 1234567 → "1,234,567".
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Column headers, at the columns `row` uses.
fn header(app: &App, width: usize) -> Line<'static> {
    let decided = !app.list.query.states.is_empty();
    let head = if width >= 70 {
        format!("    {:<10}{:<18}", "conf", "intent")
    } else {
        format!("    {:<5}", "conf")
    };
    let right = if decided {
        "decision · age"
    } else {
        "age · flags"
    };
    let mid = width.saturating_sub(fmt::cells(&head) + fmt::cells(right));
    let text = format!("{head}{}{right}", fmt::pad("from · subject", mid));
    Line::styled(fmt::cut(&text, width), app.theme.muted)
}

fn row(app: &App, it: &ItemSummary, selected: bool, width: usize) -> Line<'static> {
    let t = &app.theme;
    let p = &app.policy;
    let sel = |s: Style| if selected { s.patch(t.selection) } else { s };
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut used = 0usize;
    fn push_at(spans: &mut Vec<Span<'static>>, used: &mut usize, s: String, st: Style) {
        *used += fmt::cells(&s);
        spans.push(Span::styled(s, st));
    }
    macro_rules! push {
        ($spans:expr, $s:expr, $st:expr $(,)?) => {
            push_at($spans, &mut used, $s, $st)
        };
    }
    let marked = app.marked.contains_key(&it.id);
    push!(
        &mut spans,
        match (selected, marked) {
            (true, true) => "▶✓".into(),
            (true, false) => "▶ ".into(),
            (false, true) => " ✓".into(),
            (false, false) => "  ".into(),
        },
        sel(if marked { t.warn } else { t.accent }),
    );
    // Priority mark: the initial of the priority it is read as, coloured by rank; '?' when
    // not an allowed value.
    let read = it.priority.as_deref().and_then(|x| p.read_priority(x));
    let rank = read.and_then(|x| p.priorities.iter().position(|y| y == x));
    let mark = match (rank, read) {
        (Some(_), Some(pr)) => pr
            .chars()
            .next()
            .map(|c| c.to_ascii_uppercase().to_string())
            .unwrap_or_default(),
        _ => "?".into(),
    };
    push!(
        &mut spans,
        format!("{mark} "),
        sel(t.priority(rank.unwrap_or(0))),
    );
    let wide = width >= 70;
    if wide {
        push!(
            &mut spans,
            format!("{} ", fmt::conf_text(it.confidence, 4)),
            sel(fmt::conf_style(t, it.confidence, p.confidence_threshold)),
        );
        let intent = fmt::clean(it.intent.as_deref().unwrap_or("—"), 17);
        push!(&mut spans, fmt::pad(&intent, 18), sel(t.accent));
    } else {
        let c = it
            .confidence
            .map_or(" ?  ".to_string(), |c| format!("{c:.2}"));
        push!(
            &mut spans,
            format!("{c} "),
            sel(fmt::conf_style(t, it.confidence, p.confidence_threshold)),
        );
    }
    // Right side: age and badges, measured first so the text takes what is left.
    let age_ms = app.now.saturating_sub(it.received_at);
    let age = format!("{:>4}", fmt::age(age_ms));
    let mut badges: Vec<(String, Style)> = Vec::new();
    if let (Some(who), Some(until)) = (&it.claimed_by, it.lease_expires)
        && until > app.now
    {
        if *who == app.reviewer {
            badges.push(("@you".into(), t.ok));
        } else {
            badges.push((
                format!("@{} {}", fmt::clean(who, 10), fmt::age(until - app.now)),
                t.warn,
            ));
        }
    }
    if let Some(d) = &it.decided {
        let verb = match d.kind.as_str() {
            "approve" => "approved",
            "reject" => "rejected",
            "escalate" => "escalated",
            other => other,
        };
        let what = match &d.detail {
            Some(x) => format!("{verb} ({})", fmt::clean(x, 16)),
            None => verb.to_string(),
        };
        badges.push((
            format!(
                "{what} · {} · {} ago",
                fmt::clean(&d.reviewer, 12),
                fmt::age(app.now.saturating_sub(d.at))
            ),
            if d.kind == "approve" { t.ok } else { t.warn },
        ));
    }
    if it.ai_escalation {
        badges.push(("esc".into(), t.badge_alert));
    }
    if it.flag_count > 0 || it.confidence_invalid.is_some() {
        badges.push((format!("inv{}", it.flag_count), t.error));
    }
    if it.hidden_chars {
        badges.push(("hid".into(), t.badge));
    }
    if it.edited {
        badges.push(("✎".into(), t.edited));
    }
    if it.sample {
        badges.push(("sample".into(), t.badge));
    }
    let badge_w: usize = badges.iter().map(|(b, _)| fmt::cells(b) + 1).sum();
    let right_w = fmt::cells(&age) + 1 + badge_w;
    let avail = width.saturating_sub(used + right_w + 1);
    let who = fmt::clean_opt(it.sender.as_deref());
    let subj = fmt::clean_opt(it.subject.as_deref().or(it.summary.as_deref()));
    let label = match (who.is_empty(), subj.is_empty()) {
        (false, false) => format!("{who} · {subj}"),
        (false, true) => who.into_owned(),
        (true, false) => subj.into_owned(),
        (true, true) => format!("{}:{}", it.source, it.external_id),
    };
    // The selection covers the row's head (mark, priority, confidence, intent), not the
    // rest: a j repaints only the heads of two rows, not two whole rows (~200 bytes of a
    // 2 KB frame at 120 columns).
    let label = fmt::clean(&label, avail);
    push!(&mut spans, fmt::pad(&label, avail + 1), t.base);
    let sla = p.sla_minutes_for(it.priority.as_deref());
    push!(&mut spans, age, fmt::age_style(t, age_ms, sla));
    for (b, st) in badges {
        push!(&mut spans, " ".into(), t.base);
        push!(&mut spans, b, st);
    }
    if used < width {
        spans.push(Span::styled(" ".repeat(width - used), t.base));
    }
    Line::from(spans)
}
