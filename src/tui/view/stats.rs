//! The statistics screen (`S`): numbers where numbers read best, bars for reject reasons and
//! agreement by confidence, sparklines for the hourly volume. Drawn into a buffer as tall as
//! the content, then the scrolled window of it is copied to the frame, so charts scroll with
//! the text. Every name from data (reviewers, reasons, intents) passes the sanitizer.
use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, Block, Clear, Paragraph, Sparkline, Widget};

use super::fmt;
use crate::stats::{Stats, duration, ratio};
use crate::tui::app::App;
use crate::tui::theme::Theme;

/// One block of the screen, laid out top to bottom.
enum Part {
    Text(Vec<Line<'static>>),
    Spark {
        data: Vec<u64>,
        height: u16,
        max: u64,
        style: Style,
    },
    Bars(Vec<(String, u64, String)>, Style, Option<u64>),
}

impl Part {
    fn height(&self) -> u16 {
        match self {
            Part::Text(l) => l.len() as u16,
            Part::Spark { height, .. } => *height,
            Part::Bars(b, ..) => b.len() as u16,
        }
    }
}

fn pct(r: f64) -> String {
    format!("{:.0}%", r * 100.0)
}

fn kv(t: &Theme, k: &str, v: String) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("  {} ", fmt::pad(k, 17)), t.muted),
        Span::styled(v, t.base),
    ])
}

fn title(t: &Theme, s: &str) -> Line<'static> {
    Line::styled(s.to_string(), t.title)
}

fn parts(t: &Theme, s: &Stats, w: usize) -> Vec<Part> {
    let clean = |x: &str, n: usize| fmt::clean(x, n);
    let mut out = Vec::new();
    let q = &s.queue;
    let mut l = vec![title(t, "Queue")];
    l.push(kv(
        t,
        "depth",
        format!(
            "{} pending · {} in review · {} escalated",
            q.pending, q.in_review, q.escalated
        ),
    ));
    l.push(Line::from(vec![
        Span::styled(format!("  {:<18}", "over SLA"), t.muted),
        Span::styled(
            q.sla_breaches.to_string(),
            if q.sla_breaches > 0 { t.error } else { t.ok },
        ),
        Span::styled("   kill switch ", t.muted),
        if q.actions_paused {
            Span::styled("PAUSED", t.badge_alert)
        } else {
            Span::styled("off", t.ok)
        },
    ]));
    l.push(kv(
        t,
        "open age",
        match &s.open_age {
            Some(p) => format!(
                "p50 {} · p90 {} · p99 {} · max {}",
                duration(p.p50),
                duration(p.p90),
                duration(p.p99),
                duration(p.max)
            ),
            None => "nothing open".into(),
        },
    ));
    let d = &s.decisions;
    l.push(kv(
        t,
        "decisions",
        format!(
            "{} · approve {} · reject {} · escalate {} · {} undone",
            d.total,
            pct(d.rate(d.approved)),
            pct(d.rate(d.rejected)),
            pct(d.rate(d.escalated)),
            d.undone
        ),
    ));
    l.push(Line::raw(""));
    let v = &s.volume;
    l.push(title(
        t,
        "Volume · requests per hour, last 24 h (oldest left)",
    ));
    let now = v.per_hour.last().copied().unwrap_or(0);
    let peak = v.per_hour.iter().copied().max().unwrap_or(0);
    l.push(kv(
        t,
        "per hour",
        format!(
            "this hour {now} · peak {peak} · baseline {:.1} (median of the 7 days before)",
            v.baseline_per_hour
        ),
    ));
    if let Some(a) = &v.alert {
        l.push(Line::styled(
            format!("  ⚠ {}", clean(a, w.saturating_sub(4))),
            t.warn,
        ));
    }
    out.push(Part::Text(l));
    // The baseline is counted into the scale, so a quiet day does not look like a spike.
    let top = peak.max(v.baseline_per_hour.ceil() as u64).max(1);
    out.push(Part::Spark {
        data: v.per_hour.clone(),
        height: 3,
        max: top,
        style: t.accent,
    });
    let n = v.per_hour.len().max(1);
    let spark_w = n * (w.saturating_sub(4) / n).clamp(1, 3);
    out.push(Part::Text(vec![Line::styled(
        format!("  {:<width$}now", "-24h", width = spark_w.saturating_sub(3)),
        t.muted,
    )]));
    out.push(Part::Text(vec![kv(
        t,
        "escalations",
        format!("{} in 24 h", v.escalations_per_hour.iter().sum::<u64>()),
    )]));
    // Escalations on their own scale: a handful an hour would not show on the volume's.
    let esc_top = v
        .escalations_per_hour
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    out.push(Part::Spark {
        data: v.escalations_per_hour.clone(),
        height: 2,
        max: esc_top,
        style: t.warn,
    });
    out.push(Part::Text(vec![Line::raw(""), title(t, "Reject reasons")]));
    if s.reject_reasons.is_empty() {
        out.push(Part::Text(vec![Line::styled("  no rejections", t.muted)]));
    } else {
        out.push(Part::Bars(
            s.reject_reasons
                .iter()
                .map(|(r, n)| {
                    (
                        clean(r, 18),
                        *n,
                        format!("{n} ({}) ", pct(ratio(*n, d.rejected))),
                    )
                })
                .collect(),
            t.error,
            None,
        ));
    }
    out.push(Part::Text(vec![
        Line::raw(""),
        title(
            t,
            "Agreement with the AI by confidence (approved as proposed)",
        ),
    ]));
    if s.agreement.is_empty() {
        out.push(Part::Text(vec![Line::styled(
            "  no decisions yet",
            t.muted,
        )]));
    } else {
        out.push(Part::Bars(
            s.agreement
                .iter()
                .map(|b| {
                    (
                        clean(&b.bucket, 18),
                        (b.rate * 100.0).round() as u64,
                        format!("{} of {} ", pct(b.rate), b.decided),
                    )
                })
                .collect(),
            t.ok,
            Some(100),
        ));
    }
    out.extend(drift_part(t, s, w));
    out.extend(prompt_part(t, s));
    let mut l = vec![Line::raw(""), title(t, "Reviewers")];
    if s.reviewers.is_empty() {
        l.push(Line::styled("  no decisions yet", t.muted));
    }
    for r in &s.reviewers {
        l.push(kv(
            t,
            &clean(&r.reviewer, 18),
            format!(
                "{} decisions · median handle {}",
                r.decisions,
                r.median_handle_ms.map_or("—".into(), duration)
            ),
        ));
    }
    l.push(Line::raw(""));
    l.push(title(t, "Edits per field (decided items changed)"));
    if s.edits.is_empty() {
        l.push(Line::styled("  no edits", t.muted));
    }
    for e in &s.edits {
        l.push(kv(
            t,
            &clean(&e.field, 18),
            format!("{} · {}", e.edited, pct(e.rate)),
        ));
    }
    if !s.escalation_queues.is_empty() {
        l.push(Line::raw(""));
        l.push(title(t, "Escalation queues"));
        for (name, n) in &s.escalation_queues {
            l.push(kv(t, &clean(name, 18), n.to_string()));
        }
    }
    l.push(Line::raw(""));
    l.push(title(t, "Actions per provider"));
    if s.actions.is_empty() {
        l.push(Line::styled("  no actions yet", t.muted));
    }
    for a in &s.actions {
        l.push(Line::from(vec![
            Span::styled(
                format!("  {}", fmt::pad(&clean(&a.action, 18), 18)),
                t.muted,
            ),
            Span::styled(format!("{} total · {} sent ", a.total, a.sent), t.base),
            Span::styled(format!("({})", pct(a.success_rate)), t.ok),
            Span::styled(" · ", t.muted),
            Span::styled(
                format!("{} dead ({})", a.dead, pct(a.dead_rate)),
                if a.dead > 0 { t.error } else { t.base },
            ),
            Span::styled(
                format!(
                    " · {} pending · {} sandbox · {} cancelled",
                    a.pending, a.sandbox, a.cancelled
                ),
                t.base,
            ),
        ]));
    }
    l.push(Line::raw(""));
    l.push(title(t, "Outcomes by intent"));
    if s.outcomes.is_empty() {
        l.push(Line::styled("  no outcomes recorded", t.muted));
    }
    for o in &s.outcomes {
        l.push(kv(
            t,
            &clean(&o.intent, 18),
            format!("{} {}", clean(&o.outcome, 30), o.count),
        ));
    }
    out.push(Part::Text(l));
    out
}

/// Accuracy, escalation rate and volume per week against the signed-off validation, and
/// the warnings where a confidence bucket fell below it. Shown once there is something
/// to compare.
fn drift_part(t: &Theme, s: &Stats, w: usize) -> Option<Part> {
    let d = &s.drift;
    if d.baseline.is_none() && d.warnings.is_empty() {
        return None;
    }
    let mut l = vec![
        Line::raw(""),
        title(
            t,
            "Drift · per week against the validated baseline (oldest first)",
        ),
    ];
    l.push(Line::styled(
        format!(
            "  {:<18}{:>7} {:>8} {:>10} {:>10}",
            "week of", "volume", "decided", "agreement", "escalated"
        ),
        t.muted,
    ));
    let rate = |n: u64, r: f64| if n > 0 { pct(r) } else { "—".into() };
    for wk in &d.weeks {
        let low = d
            .baseline
            .as_ref()
            .is_some_and(|b| wk.decided >= b.min_cases && wk.agreement < b.agreement - b.tolerance);
        l.push(Line::from(vec![
            Span::styled(format!("  {:<18}", crate::stats::day(wk.start)), t.muted),
            Span::styled(format!("{:>7} {:>8} ", wk.volume, wk.decided), t.base),
            Span::styled(
                format!("{:>10}", rate(wk.decided, wk.agreement)),
                if low { t.warn } else { t.base },
            ),
            Span::styled(
                format!(" {:>10}", rate(wk.decided, wk.escalation_rate)),
                t.base,
            ),
        ]));
    }
    if let Some(b) = &d.baseline {
        l.push(Line::from(vec![
            Span::styled(format!("  {:<18}", "validated"), t.muted),
            Span::styled(
                format!(
                    "{:>7} {:>8} {:>10} {:>10}",
                    b.cases_per_week.map_or("—".into(), |v| format!("{v:.0}")),
                    "",
                    pct(b.agreement),
                    pct(b.escalation_rate)
                ),
                t.accent,
            ),
        ]));
        l.push(kv(
            t,
            "validation",
            format!(
                "{} · audit entry {} · signed off by {}",
                fmt::clean(&b.input, 40),
                b.validation,
                fmt::clean(&b.signed_by, 20)
            ),
        ));
        for r in &d.recent {
            let validated = b.buckets.iter().find(|v| v.bucket == r.bucket);
            l.push(kv(
                t,
                &format!("last 7 d {}", fmt::clean(&r.bucket, 8)),
                format!(
                    "{} of {} · validated {}",
                    pct(r.rate),
                    r.decided,
                    validated.map_or("—".into(), |v| pct(v.rate))
                ),
            ));
        }
    }
    for warning in &d.warnings {
        l.push(Line::styled(
            format!("  ⚠ {}", fmt::clean(warning, w.saturating_sub(4))),
            t.warn,
        ));
    }
    Some(Part::Text(l))
}

/// Prompt versions side by side: what reviewers did with each one's output. Shown when
/// the items name one.
fn prompt_part(t: &Theme, s: &Stats) -> Option<Part> {
    let groups = &s.by_prompt_version;
    if groups.iter().all(|g| g.value == crate::stats::NO_VALUE) {
        return None;
    }
    let mut l = vec![
        Line::raw(""),
        title(t, "By prompt version (decided items)"),
        Line::styled(
            format!(
                "  {:<18}{:>6} {:>8} {:>10} {:>10}  edited: summary · intent · priority · next step · draft",
                "prompt", "items", "decided", "agreement", "escalated"
            ),
            t.muted,
        ),
    ];
    for g in groups {
        let edit = |f: &str| {
            g.edits
                .iter()
                .find(|e| e.field == f)
                .map_or("—".into(), |e| pct(e.rate))
        };
        l.push(Line::from(vec![
            Span::styled(
                format!("  {}", fmt::pad(&fmt::clean(&g.value, 17), 18)),
                t.muted,
            ),
            Span::styled(
                format!(
                    "{:>6} {:>8} {:>10} {:>10}  {} · {} · {} · {} · {}",
                    g.items,
                    g.decided,
                    pct(g.agreement),
                    pct(g.escalation_rate),
                    edit("summary"),
                    edit("intent"),
                    edit("priority"),
                    edit("recommended_next_step"),
                    edit("draft_reply")
                ),
                t.base,
            ),
        ]));
    }
    Some(Part::Text(l))
}

/// Renders the parts into one tall buffer `w` wide.
fn render_parts(t: &Theme, parts: &[Part], w: u16) -> Buffer {
    let h: u16 = parts.iter().map(Part::height).fold(0, u16::saturating_add);
    let mut buf = Buffer::empty(Rect::new(0, 0, w, h.max(1)));
    let mut y = 0u16;
    for p in parts {
        let ph = p.height();
        let area = Rect::new(0, y, w, ph);
        match p {
            Part::Text(lines) => Paragraph::new(lines.clone()).render(area, &mut buf),
            Part::Spark {
                data,
                height: _,
                max,
                style,
            } => {
                // Up to three columns an hour: a wider picture reads faster than 24 cells.
                let n = data.len().max(1);
                let k = (usize::from(w.saturating_sub(4)) / n).clamp(1, 3);
                let wide: Vec<u64> = data
                    .iter()
                    .flat_map(|x| std::iter::repeat_n(*x, k))
                    .collect();
                let area = Rect::new(2, y, (wide.len() as u16).min(w.saturating_sub(2)), ph);
                Sparkline::default()
                    .data(&wide)
                    .max(*max)
                    .style(*style)
                    .render(area, &mut buf);
            }
            Part::Bars(bars, style, max) => {
                // Labels in the same column as the numbers' labels above and below.
                let label_w = 18;
                let bars: Vec<Bar> = bars
                    .iter()
                    .map(|(label, v, text)| {
                        Bar::with_label(format!("  {}", fmt::pad(label, label_w)), *v)
                            .text_value(text.clone())
                            .style(*style)
                            .value_style(t.base.add_modifier(ratatui::style::Modifier::BOLD))
                    })
                    .collect();
                let mut chart = BarChart::horizontal(bars)
                    .bar_gap(0)
                    .label_style(t.muted)
                    .bar_style(*style);
                if let Some(m) = max {
                    chart = chart.max(*m);
                }
                chart.render(Rect::new(0, y, w.min(90), ph), &mut buf);
            }
        }
        y = y.saturating_add(ph);
    }
    buf
}

/// How far the stats screen scrolls in `body`: its height less the rows it shows.
pub fn max_scroll(app: &App, body: Rect) -> u16 {
    let Some(s) = &app.stats else {
        return 0;
    };
    let inner = Block::bordered().inner(body);
    let parts = parts(&app.theme, s, usize::from(inner.width));
    let total: u16 = parts.iter().map(Part::height).fold(0, u16::saturating_add);
    total.max(1).saturating_sub(inner.height)
}

pub fn draw(app: &App, frame: &mut Frame, body: Rect) {
    let t = &app.theme;
    frame.render_widget(Clear, body);
    let block = Block::bordered()
        .border_style(t.border_focus)
        .title(Span::styled(" Stats · all time ", t.title))
        .title_bottom(Span::styled(" j/k scroll · esc back ", t.muted));
    let inner = block.inner(body);
    frame.render_widget(block, body);
    let Some(s) = &app.stats else {
        frame.render_widget(Paragraph::new(Line::styled("loading…", t.muted)), inner);
        return;
    };
    let parts = parts(t, s, usize::from(inner.width));
    let buf = render_parts(t, &parts, inner.width);
    let total = buf.area.height;
    let scroll = app.overlay_scroll.min(total.saturating_sub(inner.height));
    let out = frame.buffer_mut();
    for dy in 0..inner.height {
        let sy = scroll.saturating_add(dy);
        if sy >= total {
            break;
        }
        for dx in 0..inner.width {
            out[(inner.x + dx, inner.y + dy)] = buf[(dx, sy)].clone();
        }
    }
}
