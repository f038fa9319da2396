//! Everything that can happen to the console: the closed [`Action`] enum (keys already
//! resolved to commands, text input, queue results, time) and the [`Effect`]s that
//! [`update`](super::update::update) asks the event loop to run.
use crossterm::event::KeyEvent;

use crate::model::EditableField;
use crate::queue::{
    ActionPreview, AuditEntry, Claim, Counts, Decision, ItemDetail, ListQuery, Millis, Page,
    QueueError, Receipt,
};

/// A command a key can be bound to. Its [`Cmd::name`] is the name used in `[ui.keymap]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cmd {
    Down,
    Up,
    Top,
    Bottom,
    HalfPageDown,
    HalfPageUp,
    PageDown,
    PageUp,
    SwitchPane,
    Open,
    Approve,
    Edit,
    Reject,
    Escalate,
    Undo,
    Diff,
    Preview,
    Filter,
    Sort,
    Help,
    Palette,
    Timeline,
    Back,
    Quit,
    ForceQuit,
    Redraw,
    /// Enter in a picker, form or input line.
    Submit,
    NextField,
    PrevField,
    /// Cycle a picker (intent, priority) in the edit form.
    PickNext,
    PickPrev,
    /// Save the edit form (validates).
    Save,
    ExternalEditor,
    /// Pick entry 1..=9 of a list (reject reasons, escalation queues).
    Pick(u8),
    /// Send the item's dead actions again.
    Resend,
    /// Pause or resume all outbound actions (asks first).
    KillSwitch,
    /// Record what happened after a decision.
    Outcome,
    /// The review statistics screen.
    Stats,
    /// Switch the list between the open queue and decided items.
    Decided,
    /// Complete the word before the cursor (command line, filter).
    Complete,
    /// `/`: incremental search over the list's rows.
    Search,
    /// The next / previous row matching the last search.
    SearchNext,
    SearchPrev,
    /// The next / previous flagged, escalated or SLA-breached row.
    NextFlagged,
    PrevFlagged,
    /// The first, middle and last row on screen.
    ScreenTop,
    ScreenMiddle,
    ScreenBottom,
    /// Mark or unmark the selected item for bulk reject / escalate.
    Mark,
    /// Mark every item the current filter shows (or clear the marks).
    MarkAll,
    /// Saved view 1..=9 of `[[ui.views]]`.
    View(u8),
    /// Give the list more or less of the screen (the detail gets the rest).
    GrowList,
    ShrinkList,
    /// Show the last message in full.
    ShowMessage,
    /// Copy a field of the item to the clipboard (OSC 52).
    Copy,
    /// Open the request's first link in the browser (or show it, without a display).
    OpenLink,
}

impl Cmd {
    /// Every command, in help order.
    pub const ALL: [Cmd; 72] = [
        Cmd::Down,
        Cmd::Up,
        Cmd::Top,
        Cmd::Bottom,
        Cmd::HalfPageDown,
        Cmd::HalfPageUp,
        Cmd::PageDown,
        Cmd::PageUp,
        Cmd::SwitchPane,
        Cmd::Open,
        Cmd::Approve,
        Cmd::Edit,
        Cmd::Reject,
        Cmd::Escalate,
        Cmd::Undo,
        Cmd::Diff,
        Cmd::Preview,
        Cmd::Filter,
        Cmd::Sort,
        Cmd::Help,
        Cmd::Palette,
        Cmd::Timeline,
        Cmd::Back,
        Cmd::Quit,
        Cmd::ForceQuit,
        Cmd::Redraw,
        Cmd::Submit,
        Cmd::NextField,
        Cmd::PrevField,
        Cmd::PickNext,
        Cmd::PickPrev,
        Cmd::Save,
        Cmd::ExternalEditor,
        Cmd::Pick(1),
        Cmd::Pick(2),
        Cmd::Pick(3),
        Cmd::Pick(4),
        Cmd::Pick(5),
        Cmd::Pick(6),
        Cmd::Pick(7),
        Cmd::Pick(8),
        Cmd::Pick(9),
        Cmd::Resend,
        Cmd::KillSwitch,
        Cmd::Outcome,
        Cmd::Stats,
        Cmd::Decided,
        Cmd::Complete,
        Cmd::Search,
        Cmd::SearchNext,
        Cmd::SearchPrev,
        Cmd::NextFlagged,
        Cmd::PrevFlagged,
        Cmd::ScreenTop,
        Cmd::ScreenMiddle,
        Cmd::ScreenBottom,
        Cmd::Mark,
        Cmd::MarkAll,
        Cmd::View(1),
        Cmd::View(2),
        Cmd::View(3),
        Cmd::View(4),
        Cmd::View(5),
        Cmd::View(6),
        Cmd::View(7),
        Cmd::View(8),
        Cmd::View(9),
        Cmd::GrowList,
        Cmd::ShrinkList,
        Cmd::ShowMessage,
        Cmd::Copy,
        Cmd::OpenLink,
    ];

    /// The name used in the config's keymap.
    pub fn name(self) -> &'static str {
        match self {
            Cmd::Down => "down",
            Cmd::Up => "up",
            Cmd::Top => "top",
            Cmd::Bottom => "bottom",
            Cmd::HalfPageDown => "half_page_down",
            Cmd::HalfPageUp => "half_page_up",
            Cmd::PageDown => "page_down",
            Cmd::PageUp => "page_up",
            Cmd::SwitchPane => "switch_pane",
            Cmd::Open => "open",
            Cmd::Approve => "approve",
            Cmd::Edit => "edit",
            Cmd::Reject => "reject",
            Cmd::Escalate => "escalate",
            Cmd::Undo => "undo",
            Cmd::Diff => "diff",
            Cmd::Preview => "preview",
            Cmd::Filter => "filter",
            Cmd::Sort => "sort",
            Cmd::Help => "help",
            Cmd::Palette => "palette",
            Cmd::Timeline => "timeline",
            Cmd::Back => "back",
            Cmd::Quit => "quit",
            Cmd::ForceQuit => "force_quit",
            Cmd::Redraw => "redraw",
            Cmd::Submit => "submit",
            Cmd::NextField => "next_field",
            Cmd::PrevField => "prev_field",
            Cmd::PickNext => "pick_next",
            Cmd::PickPrev => "pick_prev",
            Cmd::Save => "save",
            Cmd::ExternalEditor => "external_editor",
            Cmd::Resend => "resend",
            Cmd::KillSwitch => "kill_switch",
            Cmd::Outcome => "outcome",
            Cmd::Stats => "stats",
            Cmd::Decided => "decided",
            Cmd::Complete => "complete",
            Cmd::Search => "search",
            Cmd::SearchNext => "search_next",
            Cmd::SearchPrev => "search_prev",
            Cmd::NextFlagged => "next_flagged",
            Cmd::PrevFlagged => "prev_flagged",
            Cmd::ScreenTop => "screen_top",
            Cmd::ScreenMiddle => "screen_middle",
            Cmd::ScreenBottom => "screen_bottom",
            Cmd::Mark => "mark",
            Cmd::MarkAll => "mark_all",
            Cmd::GrowList => "grow_list",
            Cmd::ShrinkList => "shrink_list",
            Cmd::ShowMessage => "show_message",
            Cmd::Copy => "copy",
            Cmd::OpenLink => "open_link",
            Cmd::View(n) => {
                const N: [&str; 10] = [
                    "view_0", "view_1", "view_2", "view_3", "view_4", "view_5", "view_6", "view_7",
                    "view_8", "view_9",
                ];
                N[usize::from(n.min(9))]
            }
            Cmd::Pick(n) => {
                const N: [&str; 10] = [
                    "pick_0", "pick_1", "pick_2", "pick_3", "pick_4", "pick_5", "pick_6", "pick_7",
                    "pick_8", "pick_9",
                ];
                N[usize::from(n.min(9))]
            }
        }
    }

    pub fn from_name(name: &str) -> Option<Cmd> {
        Cmd::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// Which part of the detail a scroll goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pane {
    #[default]
    List,
    Raw,
    Ai,
}

/// A queue result, sent back by a task the event loop ran for an [`Effect`].
#[derive(Clone, Debug, PartialEq)]
pub enum Loaded {
    Token(Result<u64, QueueError>),
    /// `generation` tells a stale page (an older query) from the current one.
    Page {
        generation: u64,
        result: Result<Page, QueueError>,
    },
    Counts(Result<Counts, QueueError>),
    Details(Vec<(i64, Result<ItemDetail, QueueError>)>),
    Claimed(i64, Result<Claim, QueueError>),
    /// A heartbeat's result, for the claim (`id`, `fence`) it renewed: a late result of an
    /// earlier claim must not touch the one held now.
    Heartbeat {
        id: i64,
        fence: i64,
        result: Result<Claim, QueueError>,
    },
    Released(i64),
    Edited(EditableField, Result<(), QueueError>),
    Decided {
        id: i64,
        verb: &'static str,
        result: Result<Receipt, QueueError>,
    },
    Undone(i64, Result<Claim, QueueError>),
    Timeline(i64, Result<Vec<AuditEntry>, QueueError>),
    PreviewRecorded(i64, Result<(), QueueError>),
    /// `$EDITOR` came back with this text (or failed).
    Editor(EditableField, Result<String, String>),
    /// What approving the item would send (`Queue::preview`).
    Preview(i64, Result<Vec<ActionPreview>, QueueError>),
    /// Dead actions of an item queued again: how many were, and why the others were not.
    Resent {
        id: i64,
        queued: usize,
        failed: Vec<String>,
    },
    /// The kill switch was set to this value (or not).
    Paused(bool, Result<(), QueueError>),
    OutcomeRecorded {
        id: i64,
        value: String,
        result: Result<(), QueueError>,
    },
    Stats(Box<Result<crate::stats::Stats, QueueError>>),
    Volume(Box<Result<crate::stats::Volume, QueueError>>),
    /// The rows to mark for `V`.
    MarkAll(Result<Page, QueueError>),
    /// A bulk decision: the items decided and why the others were not.
    DecidedMany {
        verb: &'static str,
        done: Vec<i64>,
        failed: Vec<(i64, String)>,
    },
    /// A state file was written (or why not).
    Persisted(Result<(), String>),
}

/// Everything that can happen.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// A key press: resolved through the current mode's table, else text for a focused field.
    Key(KeyEvent),
    /// A command, as a key resolves to or the palette runs.
    Cmd(Cmd),
    /// Bracketed paste (goes only to a focused text field).
    Paste(String),
    Resize(u16, u16),
    /// A click or the wheel (only with `ui.mouse`).
    Mouse(crossterm::event::MouseEvent),
    /// Time passed (lease countdown, debounce); carries the wall clock.
    Tick(Millis),
    /// Low-frequency check whether the queue changed.
    Poll,
    Loaded(Loaded),
}

/// Work `update` asks for; the event loop runs it off the UI path.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    LoadPage {
        query: ListQuery,
        generation: u64,
    },
    LoadCounts,
    LoadDetails(Vec<i64>),
    PollToken,
    Claim(i64),
    Release(Claim),
    SaveEdit(Claim, EditableField, Option<String>),
    /// Decide with a held claim, or claim first (one-key approve from the list). `id` is
    /// the item whose detail is on screen, `decision.revision` the revision it showed; a
    /// claim on any other item is refused.
    Decide {
        id: i64,
        claim: Option<Claim>,
        decision: Decision,
    },
    Undo(i64),
    LoadTimeline(i64),
    /// Record in the audit that the preview (with this digest) was shown.
    RecordPreview(i64, String),
    /// Render what deciding the item this way would send (approve, or escalate to a queue).
    LoadPreview(i64, crate::model::DecisionKind),
    /// Queue these dead actions (outbox ids) of an item again.
    Resend(i64, Vec<i64>),
    /// Turn the actions kill switch on or off.
    SetPaused(bool),
    RecordOutcome {
        id: i64,
        value: String,
        reason: Option<String>,
    },
    LoadStats,
    /// Only the volume and its alert (the status bar's periodic reload).
    LoadVolume,
    /// Every item (up to the limit) a query shows, to mark them all.
    MarkAll(ListQuery),
    /// Claim and decide each (item, revision shown) on its own; one failure does not stop
    /// the others.
    DecideMany {
        items: Vec<(i64, i64)>,
        kind: crate::model::DecisionKind,
    },
    /// Put this text on the terminal's clipboard (OSC 52).
    CopyToClipboard(String),
    /// Start `browser` on the link, detached (the console does not wait for it).
    OpenLink {
        browser: String,
        url: String,
    },
    /// Write the `:` command history (path, entries oldest first).
    SaveHistory(std::path::PathBuf, Vec<String>),
    /// Write the list's state for the next start.
    SaveUiState(std::path::PathBuf, crate::tui::persist::UiState),
    /// Open `$EDITOR` on this text for this field.
    OpenEditor(EditableField, String),
    /// Clear and repaint the whole screen.
    ClearScreen,
    Quit,
}
