//! The edit form and text input: pickers, text fields, saving as edits are made,
//! validation on submit, paste and `$EDITOR`.
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::model::{EditableField, FieldValues, check_fields};
use crate::tui::action::{Cmd, Effect};
use crate::tui::app::{App, EditForm, FieldInput, FormField, Level, LineInput, Mode};

pub(super) fn start_edit(app: &mut App) -> Vec<Effect> {
    let Some(id) = app.open else {
        return Vec::new();
    };
    let Some(detail) = app.details.get(&id) else {
        say(app, Level::Warn, "the item is still loading; try again");
        return Vec::new();
    };
    let values: &FieldValues = &detail.fields;
    let pick = |opts: &Vec<String>, v: Option<&str>| FieldInput::Pick {
        options: opts.clone(),
        index: v.and_then(|v| opts.iter().position(|o| o == v)),
        original: v.map(str::to_string),
    };
    let fields = EditableField::ALL
        .into_iter()
        .map(|f| {
            let v = values.get(f);
            let mut ff = FormField {
                field: f,
                input: match f {
                    EditableField::Intent => pick(&app.policy.intents, v),
                    EditableField::Priority => pick(&app.policy.priorities, v),
                    _ => FieldInput::Text(FormField::text_area(v)),
                },
                saved: None,
            };
            // Made-visible hidden characters are not an edit until the reviewer edits.
            ff.saved = ff.value();
            ff
        })
        .collect();
    app.form = Some(EditForm {
        id,
        fields,
        focus: 0,
        errors: Default::default(),
        unsaved_since: None,
    });
    app.mode = Mode::Edit;
    say_while(
        app,
        Level::Info,
        "editing: changes are saved as you go",
        crate::tui::app::MessageWhile::Form,
    );
    Vec::new()
}

/// Saves the fields whose value differs from the last saved one.
pub(super) fn save_form(app: &mut App) -> Vec<Effect> {
    let Some(form) = app.form.as_mut() else {
        return Vec::new();
    };
    form.unsaved_since = None;
    let Some(claim) = app.claim.clone().filter(|c| c.id == form.id) else {
        return Vec::new();
    };
    let mut fx = Vec::new();
    for f in &mut form.fields {
        let v = f.value();
        if v != f.saved {
            f.saved = v.clone();
            fx.push(Effect::SaveEdit(claim.clone(), f.field, v));
        }
    }
    fx
}

pub(super) fn save_focused(app: &mut App) -> Vec<Effect> {
    let Some(form) = app.form.as_mut() else {
        return Vec::new();
    };
    form.unsaved_since = None;
    let Some(claim) = app.claim.clone().filter(|c| c.id == form.id) else {
        return Vec::new();
    };
    let Some(f) = form.fields.get_mut(form.focus) else {
        return Vec::new();
    };
    let v = f.value();
    if v == f.saved {
        return Vec::new();
    }
    f.saved = v.clone();
    vec![Effect::SaveEdit(claim, f.field, v)]
}

pub(super) fn flag_field(field: &str) -> Option<EditableField> {
    field.trim_start_matches("ai.").parse().ok()
}

pub(super) fn edit_command(app: &mut App, c: Cmd) -> Vec<Effect> {
    let Some(n) = app.form.as_ref().map(|f| f.fields.len()) else {
        app.mode = app.base_mode();
        return Vec::new();
    };
    match c {
        Cmd::NextField | Cmd::PrevField => {
            let fx = save_focused(app);
            if let Some(f) = app.form.as_mut() {
                f.focus = if c == Cmd::NextField {
                    (f.focus + 1) % n
                } else {
                    (f.focus + n - 1) % n
                };
            }
            fx
        }
        Cmd::PickNext | Cmd::PickPrev => {
            if let Some(form) = app.form.as_mut()
                && let Some(FormField {
                    input: FieldInput::Pick { options, index, .. },
                    ..
                }) = form.fields.get_mut(form.focus)
            {
                let len = options.len();
                if len > 0 {
                    *index = Some(match (*index, c) {
                        (None, _) => 0,
                        (Some(i), Cmd::PickNext) => (i + 1) % len,
                        (Some(i), _) => (i + len - 1) % len,
                    });
                }
            }
            // Saved once the pick is committed (Tab to the next field, save, close, a
            // decision), not on every arrow press: the audit gets one edit, not five.
            Vec::new()
        }
        Cmd::Save => {
            let Some(form) = app.form.as_mut() else {
                return Vec::new();
            };
            let mut values = FieldValues::default();
            for f in &form.fields {
                values.set(f.field, f.value());
            }
            form.errors.clear();
            for flag in check_fields(&values, &app.policy) {
                if let Some(f) = flag_field(&flag.field) {
                    form.errors.insert(f, flag.message);
                }
            }
            let ok = form.errors.is_empty();
            let fx = save_form(app);
            if ok {
                app.form = None;
                app.mode = Mode::Review;
                say(app, Level::Ok, "edits saved and valid");
                let mut fx = fx;
                if let Some(id) = app.open {
                    fx.push(refetch_detail(app, id));
                }
                fx
            } else {
                say(
                    app,
                    Level::Error,
                    "some fields are not valid; see the marks beside them",
                );
                fx
            }
        }
        Cmd::ExternalEditor => {
            let fx = save_focused(app);
            let Some(form) = app.form.as_ref() else {
                return fx;
            };
            let Some(f) = form.fields.get(form.focus) else {
                return fx;
            };
            let mut fx = fx;
            fx.push(Effect::OpenEditor(f.field, f.value().unwrap_or_default()));
            fx
        }
        Cmd::Back => {
            let mut fx = save_form(app);
            app.form = None;
            app.mode = Mode::Review;
            if let Some(id) = app.open {
                fx.push(refetch_detail(app, id));
            }
            fx
        }
        _ => {
            app.dirty = false;
            Vec::new()
        }
    }
}

/// Typing into a one-line input.
pub(super) fn edit_line(input: &mut LineInput, ev: &KeyEvent) -> bool {
    let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
    match ev.code {
        KeyCode::Char('u') if ctrl => input.text.clear(),
        KeyCode::Char('w') if ctrl => {
            let t = input.text.trim_end();
            let cut = t.rfind(char::is_whitespace).map_or(0, |i| i + 1);
            input.text.truncate(cut);
        }
        KeyCode::Char(c) if !ctrl => input.text.push(c),
        KeyCode::Backspace => {
            input.text.pop();
        }
        _ => return false,
    }
    true
}

pub(super) fn text_key(app: &mut App, ev: KeyEvent) -> Vec<Effect> {
    match app.mode {
        Mode::Filter => {
            app.dirty = edit_line(&mut app.filter_input, &ev);
            app.completions.clear();
            if matches!(app.message, Some((_, Level::Error))) {
                app.message = None;
            }
        }
        Mode::Note | Mode::OutcomeNote => {
            app.dirty = edit_line(&mut app.note, &ev);
        }
        Mode::Help => {
            app.dirty = edit_line(&mut app.palette, &ev);
            app.palette_sel = 0;
        }
        Mode::Search => {
            app.dirty = edit_line(&mut app.search_input, &ev);
            return search_typed(app);
        }
        Mode::Command => {
            app.dirty = edit_line(&mut app.cmdline, &ev);
            app.history_pos = None;
            app.completions.clear();
        }
        Mode::Edit => {
            let now = app.now;
            if let Some(form) = app.form.as_mut()
                && let Some(FormField {
                    input: FieldInput::Text(t),
                    ..
                }) = form.fields.get_mut(form.focus)
            {
                if t.input(ev) {
                    form.unsaved_since = Some(now);
                }
            } else {
                app.dirty = false;
            }
        }
        _ => app.dirty = false,
    }
    Vec::new()
}

pub(super) fn paste(app: &mut App, text: &str) -> Vec<Effect> {
    // Pasted text goes only to a focused text field, never to shortcuts.
    match app.mode {
        Mode::Filter
        | Mode::Note
        | Mode::OutcomeNote
        | Mode::Help
        | Mode::Command
        | Mode::Search => {
            // Pasted text is outside text too: hidden characters become visible marks.
            let line: String = crate::text::sanitize_lines(text).join(" ");
            let input = match app.mode {
                Mode::Filter => &mut app.filter_input,
                Mode::Note | Mode::OutcomeNote => &mut app.note,
                Mode::Command => &mut app.cmdline,
                Mode::Search => &mut app.search_input,
                _ => &mut app.palette,
            };
            input.text.push_str(&line);
            if app.mode == Mode::Search {
                return search_typed(app);
            }
        }
        Mode::Edit => {
            let now = app.now;
            if let Some(form) = app.form.as_mut()
                && let Some(FormField {
                    input: FieldInput::Text(t),
                    ..
                }) = form.fields.get_mut(form.focus)
            {
                t.insert_str(crate::text::sanitize_lines(text).join("\n"));
                form.unsaved_since = Some(now);
            }
        }
        _ => {
            app.dirty = false;
            say(app, Level::Info, "paste ignored: no text field is focused");
        }
    }
    Vec::new()
}
