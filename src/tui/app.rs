//! The console's one state: everything `draw` reads and `update` changes.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use ratatui_textarea::{TextArea, WrapMode};

use super::action::Pane;
use super::keymap::{Key, Keymap};
use super::theme::Theme;
use crate::model::{EditableField, Policy};
use crate::queue::{ActionPreview, AuditEntry, Claim, Counts, ItemDetail, ListQuery, Millis, Page};
use crate::stats::Stats;

/// What the keys do now. Each mode has its own table in the keymap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// The queue list with a preview of the selected item.
    List,
    /// One item open (claimed): the detail fills the screen.
    Review,
    Edit,
    /// Picking a reject reason.
    Reject,
    /// Typing the optional note of a rejection.
    Note,
    Escalate,
    Filter,
    /// Help and command palette.
    Help,
    Diff,
    Preview,
    Timeline,
    /// A yes/no question (the kill switch).
    Confirm,
    /// Picking the outcome of a decided item.
    Outcome,
    /// Typing the reason an outcome needs.
    OutcomeNote,
    /// Review statistics.
    Stats,
    /// The `:` command line.
    Command,
    /// Typing a `/` search (the selection follows the first match as it is typed).
    Search,
    /// The last message in full.
    Message,
    /// What `y` copies to the clipboard.
    Copy,
}

impl Mode {
    pub const ALL: [Mode; 19] = [
        Mode::List,
        Mode::Review,
        Mode::Edit,
        Mode::Reject,
        Mode::Note,
        Mode::Escalate,
        Mode::Filter,
        Mode::Help,
        Mode::Diff,
        Mode::Preview,
        Mode::Timeline,
        Mode::Confirm,
        Mode::Outcome,
        Mode::OutcomeNote,
        Mode::Stats,
        Mode::Command,
        Mode::Search,
        Mode::Message,
        Mode::Copy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mode::List => "list",
            Mode::Review => "review",
            Mode::Edit => "edit",
            Mode::Reject => "reject",
            Mode::Note => "note",
            Mode::Escalate => "escalate",
            Mode::Filter => "filter",
            Mode::Help => "help",
            Mode::Diff => "diff",
            Mode::Preview => "preview",
            Mode::Timeline => "timeline",
            Mode::Confirm => "confirm",
            Mode::Outcome => "outcome",
            Mode::OutcomeNote => "outcome_note",
            Mode::Stats => "stats",
            Mode::Command => "command",
            Mode::Search => "search",
            Mode::Message => "message",
            Mode::Copy => "copy",
        }
    }

    /// Modes where unbound keys are typed into a text field.
    pub fn takes_text(self) -> bool {
        matches!(
            self,
            Mode::Edit
                | Mode::Note
                | Mode::Filter
                | Mode::Help
                | Mode::OutcomeNote
                | Mode::Command
                | Mode::Search
        )
    }
}

/// A one-line text input (filter, note, palette).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LineInput {
    pub text: String,
}

impl LineInput {
    pub fn with(text: &str) -> LineInput {
        LineInput { text: text.into() }
    }
}

/// Severity of the message line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Ok,
    Warn,
    Error,
}

/// One field of the edit form.
#[derive(Clone, Debug)]
pub enum FieldInput {
    Text(Box<TextArea<'static>>),
    /// One of the policy's allowed values; `None` when the current value is not allowed.
    Pick {
        options: Vec<String>,
        index: Option<usize>,
        /// The value as it came when it is not one of the options.
        original: Option<String>,
    },
}

#[derive(Clone, Debug)]
pub struct FormField {
    pub field: EditableField,
    pub input: FieldInput,
    /// The value last sent to the queue (or loaded), to save only what changed.
    pub saved: Option<String>,
}

impl FormField {
    pub fn value(&self) -> Option<String> {
        match &self.input {
            FieldInput::Text(t) => {
                let v = t.lines().join("\n");
                (!v.trim().is_empty()).then_some(v)
            }
            FieldInput::Pick {
                options,
                index,
                original,
            } => index
                .and_then(|i| options.get(i).cloned())
                .or_else(|| original.clone()),
        }
    }

    pub fn text_area(text: Option<&str>) -> Box<TextArea<'static>> {
        // Request text may hold escape sequences: the editor gets it made visible.
        let lines: Vec<String> = crate::text::sanitize_lines(text.unwrap_or(""))
            .into_iter()
            .map(|l| l.into_owned())
            .collect();
        let lines = if lines.is_empty() {
            vec![String::new()]
        } else {
            lines
        };
        let mut t = TextArea::new(lines);
        t.set_wrap_mode(WrapMode::WordOrGlyph);
        Box::new(t)
    }
}

/// The edit form over the AI fields of the open item.
#[derive(Clone, Debug)]
pub struct EditForm {
    pub id: i64,
    pub fields: Vec<FormField>,
    pub focus: usize,
    /// Validation messages shown beside their field.
    pub errors: BTreeMap<EditableField, String>,
    /// When the focused text last changed without being saved (debounced save).
    pub unsaved_since: Option<Millis>,
}

/// The list: a window over the queue.
#[derive(Clone, Debug, Default)]
pub struct ListState {
    pub query: ListQuery,
    /// Rows fetched around the selection (offset `page.offset`).
    pub page: Page,
    /// Bumped with each new query; older pages are dropped when they arrive.
    pub generation: u64,
    /// A page request is out.
    pub loading: bool,
    /// Absolute index of the selected row, and of the first row on screen.
    pub selected: u64,
    pub top: u64,
    /// The item the selection is on. Refreshes move `selected` to wherever this item is
    /// now, so the selection never lands on another item by itself. `None` with `left`
    /// unset: the row at `selected` is taken once it is loaded (after a move past the
    /// fetched rows, or after the reviewer's own decision).
    pub selected_id: Option<i64>,
    /// The selected item left the list (decided by someone else, no longer matching):
    /// nothing is selected until the reviewer moves.
    pub left: Option<i64>,
    /// The page on its way answers a new query (filter, sort, decided items): when the
    /// selected item is not in it, the selection starts again from the top row.
    pub refocus: bool,
    /// The item the page request that is out was asked around.
    pub asked_around: Option<i64>,
    /// The text of the filter as typed (shown in the status bar).
    pub filter_text: String,
    /// Rows [start, end) of the page request that is out.
    pub requested: Option<(u64, u64)>,
    /// A `:N` jump on its way: (target, the item selected before, its row), so an item
    /// the list does not hold leaves the selection where it was.
    pub jump: Option<(i64, Option<i64>, u64)>,
}

/// What a message is about, for the messages that stop being true on their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageWhile {
    /// "#41 is yours while it is open": while this reviewer's claim on the item lasts.
    Claim(i64),
    /// "editing: …": while the edit form is open.
    Form,
}

/// The console's state.
#[derive(Clone, Debug)]
pub struct App {
    pub policy: Arc<Policy>,
    pub reviewer: String,
    pub read_only: bool,
    /// Where the queue lives (status bar).
    pub location: String,
    pub actions_mode: String,
    pub theme: Theme,
    pub keymap: Keymap,
    /// Wall clock, set by the event loop; tests set it by hand.
    pub now: Millis,
    /// Terminal size.
    pub width: u16,
    pub height: u16,
    /// The item (id, revision) whose detail the last frame drew: decision keys act on this
    /// and nothing else. The event loop sets it after each frame.
    pub shown: Option<(i64, i64)>,
    pub mode: Mode,
    /// The mode an overlay returns to.
    pub return_mode: Mode,
    pub list: ListState,
    /// Details of rows near the selection, fetched with the page.
    pub details: HashMap<i64, ItemDetail>,
    /// Detail requests that are out.
    pub details_requested: HashSet<i64>,
    /// What to do once a claim comes back (`e` on an unopened item opens the form).
    pub after_claim: Option<super::action::Cmd>,
    /// The open item and the claim on it.
    pub open: Option<i64>,
    pub claim: Option<Claim>,
    /// A claim request is out for this item.
    pub claiming: Option<i64>,
    pub focus: Pane,
    pub raw_scroll: u16,
    pub ai_scroll: u16,
    pub overlay_scroll: u16,
    pub form: Option<EditForm>,
    /// Reject reason / escalation queue highlighted in the picker.
    pub pick: usize,
    pub reject_reason: Option<String>,
    pub note: LineInput,
    pub filter_input: LineInput,
    pub palette: LineInput,
    pub palette_sel: usize,
    pub timeline: Option<(i64, Vec<AuditEntry>)>,
    /// The last decision this reviewer made and until when it can be undone.
    pub last_decision: Option<(i64, Millis, String)>,
    pub counts: Option<Counts>,
    pub token: Option<u64>,
    pub message: Option<(String, Level)>,
    /// The program that opens links when there is a local display (`$BROWSER`, else
    /// `xdg-open`); `None` over SSH without one: links are shown for copying instead.
    pub browser: Option<String>,
    /// `ui.mouse`: clicks select and the wheel scrolls.
    pub mouse: bool,
    /// While what the message says holds; once it does not, the message is cleared.
    pub message_while: Option<MessageWhile>,
    /// First key of a sequence (`g` of `g g`).
    pub pending_key: Option<Key>,
    /// A decision is on its way.
    pub deciding: Option<i64>,
    pub quit: bool,
    /// Something visible changed since the last frame.
    pub dirty: bool,
    /// What approving the previewed item would send, or why the preview failed.
    pub preview: Option<(i64, Result<Vec<ActionPreview>, String>)>,
    /// The escalation queue previewed from the escalate picker (which Esc goes back to).
    pub preview_escalation: Option<String>,
    /// The kill-switch value the confirm question would set.
    pub confirm_pause: Option<bool>,
    /// The item an outcome is being recorded for, and the outcome chosen (reason pending).
    pub outcome_item: Option<i64>,
    pub outcome_value: Option<String>,
    pub stats: Option<Box<Stats>>,
    /// The last volume load (its alert shows in the status bar).
    pub volume: Option<crate::stats::Volume>,
    /// When stats were last asked for (the volume alert reloads at most once a minute).
    pub stats_at: Option<Millis>,
    /// The `:` command line being typed.
    pub cmdline: LineInput,
    /// Commands run from the line, oldest first, and the one recalled (↑/↓) now.
    pub history: Vec<String>,
    pub history_pos: Option<usize>,
    /// What Tab offered for the word being typed (shown beside the line).
    pub completions: Vec<String>,
    /// Where the history and the list state are kept (`None`: nothing is kept).
    pub state_dir: Option<std::path::PathBuf>,
    /// Where user themes live, for `:theme`.
    pub themes_dir: Option<std::path::PathBuf>,
    /// Saved views from `[[ui.views]]` (`:view NAME`, F1–F9).
    pub views: Vec<super::config::ViewConfig>,
    /// The `/` search being typed, the last one run (for `n`/`N`), and where the
    /// selection was when it started (Esc goes back there): (item, row).
    pub search_input: LineInput,
    pub search: String,
    pub search_from: Option<(Option<i64>, u64)>,
    /// A count typed before a movement (`5j`).
    pub count: Option<u32>,
    /// Items marked for a bulk reject or escalation: id → the revision and the line the
    /// list showed when it was marked (each item is decided at that revision).
    pub marked: BTreeMap<i64, Marked>,
    /// The bulk decision the confirm question is about.
    pub bulk: Option<crate::model::DecisionKind>,
    /// The list's share of the screen beside the detail, in percent (`+`/`-`).
    pub list_pct: u16,
    /// The queue (a server) cannot be reached; nothing typed is lost meanwhile.
    pub offline: bool,
}

/// A marked item as the list showed it.
#[derive(Clone, Debug, PartialEq)]
pub struct Marked {
    pub revision: i64,
    /// Sender and subject (or summary), for the confirmation that lists them.
    pub label: String,
}

impl Marked {
    pub fn of(r: &crate::queue::ItemSummary) -> Marked {
        let what = r
            .subject
            .as_deref()
            .or(r.summary.as_deref())
            .unwrap_or("(no subject)");
        Marked {
            revision: r.revision,
            label: format!("{} · {what}", r.sender.as_deref().unwrap_or("(no sender)")),
        }
    }
}

/// What the console is started with.
#[derive(Clone, Debug)]
pub struct AppInit {
    pub policy: Arc<Policy>,
    pub reviewer: String,
    pub read_only: bool,
    pub location: String,
    pub actions_mode: String,
    pub theme: Theme,
    pub keymap: Keymap,
    pub now: Millis,
    pub width: u16,
    pub height: u16,
}

impl App {
    pub fn new(init: AppInit) -> App {
        App {
            policy: init.policy,
            reviewer: init.reviewer,
            read_only: init.read_only,
            location: init.location,
            actions_mode: init.actions_mode,
            theme: init.theme,
            keymap: init.keymap,
            now: init.now,
            width: init.width,
            height: init.height,
            shown: None,
            mode: Mode::List,
            return_mode: Mode::List,
            list: ListState::default(),
            details: HashMap::new(),
            details_requested: HashSet::new(),
            after_claim: None,
            open: None,
            claim: None,
            claiming: None,
            focus: Pane::List,
            raw_scroll: 0,
            ai_scroll: 0,
            overlay_scroll: 0,
            form: None,
            pick: 0,
            reject_reason: None,
            note: LineInput::default(),
            filter_input: LineInput::default(),
            palette: LineInput::default(),
            palette_sel: 0,
            timeline: None,
            last_decision: None,
            counts: None,
            token: None,
            message: None,
            message_while: None,
            browser: None,
            mouse: false,
            pending_key: None,
            deciding: None,
            quit: false,
            dirty: true,
            preview: None,
            preview_escalation: None,
            confirm_pause: None,
            outcome_item: None,
            outcome_value: None,
            stats: None,
            volume: None,
            stats_at: None,
            cmdline: LineInput::default(),
            history: Vec::new(),
            history_pos: None,
            completions: Vec::new(),
            state_dir: None,
            themes_dir: None,
            views: Vec::new(),
            search_input: LineInput::default(),
            search: String::new(),
            search_from: None,
            count: None,
            marked: BTreeMap::new(),
            bulk: None,
            list_pct: super::view::layout::DEFAULT_LIST_PCT,
            offline: false,
        }
    }

    /// The row the selection is on, if it is in the fetched page and holds the selected
    /// item.
    pub fn selected_row(&self) -> Option<&crate::queue::ItemSummary> {
        let l = &self.list;
        l.selected
            .checked_sub(l.page.offset)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| l.page.items.get(i))
            .filter(|r| Some(r.id) == l.selected_id)
    }

    /// The terminal is below the size that shows an item: only quit and help take keys.
    pub fn too_small(&self) -> bool {
        super::view::layout::too_small(self.width, self.height)
    }

    /// The item the detail pane shows: the open one, else the selected row.
    pub fn current_id(&self) -> Option<i64> {
        self.open.or_else(|| self.selected_row().map(|r| r.id))
    }

    pub fn current_detail(&self) -> Option<&ItemDetail> {
        self.current_id().and_then(|id| self.details.get(&id))
    }

    /// When the footer's undo hint goes out (the undo window closes), while it is shown.
    pub fn undo_closes_at(&self) -> Option<Millis> {
        if self.read_only {
            return None;
        }
        self.last_decision
            .as_ref()
            .map(|(_, until, _)| *until)
            .filter(|until| *until > self.now)
    }

    /// The mode beneath overlays: `Review` while an item is open, else `List`.
    pub fn base_mode(&self) -> Mode {
        if self.open.is_some() {
            Mode::Review
        } else {
            Mode::List
        }
    }
}
