//! The edit form over the AI fields: pickers for intent and priority, text editors for the
//! rest, validation messages beside their field.
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::fmt;
use crate::text;
use crate::tui::app::{App, FieldInput};

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let Some(form) = &app.form else { return };
    frame.render_widget(Clear, area);
    let block = Block::bordered()
        .border_style(t.border_focus)
        .title(Span::styled(format!(" Edit #{} ", form.id), t.title))
        .title_bottom(Span::styled(
            " saved as you type · confidence is read-only ",
            t.muted,
        ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let n = form.fields.len() as u16;
    // Every field gets a label row and one value row; the focused one gets the rest.
    let spare = inner.height.saturating_sub(n * 2);
    let mut y = inner.y;
    let bottom = inner.y + inner.height;
    for (i, f) in form.fields.iter().enumerate() {
        if y >= bottom {
            break;
        }
        let focused = i == form.focus;
        let mut label = vec![
            Span::styled(if focused { "▶ " } else { "  " }, t.accent),
            Span::styled(f.field.label(), if focused { t.title } else { t.muted }),
        ];
        if f.value() != f.saved
            || f.saved.as_deref()
                != app
                    .details
                    .get(&form.id)
                    .and_then(|d| f.field.read_value(&d.request.ai, &app.policy))
        {
            label.push(Span::styled(" ✎", t.edited));
        }
        if let Some(e) = form.errors.get(&f.field) {
            label.push(Span::styled(format!("  ✗ {}", text::sanitize(e)), t.error));
        }
        frame.render_widget(
            Paragraph::new(Line::from(label)),
            Rect::new(inner.x, y, inner.width, 1),
        );
        y += 1;
        let h = if focused { (1 + spare).min(12) } else { 1 }.min(bottom.saturating_sub(y));
        if h == 0 {
            break;
        }
        let r = Rect::new(inner.x + 2, y, inner.width.saturating_sub(2), h);
        match &f.input {
            FieldInput::Pick {
                options,
                index,
                original,
            } => {
                let v = match index.and_then(|i| options.get(i)) {
                    Some(v) => v.clone(),
                    None => format!(
                        "{} (not allowed: pick one)",
                        fmt::clean(original.as_deref().unwrap_or("—"), 30)
                    ),
                };
                let line = if focused {
                    Line::from(vec![
                        Span::styled("◀ ", t.key),
                        Span::styled(v, t.selection),
                        Span::styled(" ▶", t.key),
                        Span::styled(format!("  ({} allowed)", options.len()), t.muted),
                    ])
                } else {
                    Line::styled(v, t.base)
                };
                frame.render_widget(Paragraph::new(line), Rect::new(r.x, r.y, r.width, 1));
            }
            FieldInput::Text(ta) => {
                if focused {
                    frame.render_widget(ta.as_ref(), r);
                } else {
                    let first = ta.lines().first().map(String::as_str).unwrap_or("");
                    let more = if ta.lines().len() > 1 { " …" } else { "" };
                    let s = format!("{}{more}", text::sanitize(first));
                    frame.render_widget(
                        Paragraph::new(Line::styled(fmt::clean(&s, usize::from(r.width)), t.base)),
                        Rect::new(r.x, r.y, r.width, 1),
                    );
                }
            }
        }
        y += h;
    }
}
