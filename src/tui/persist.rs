//! What the console keeps between runs in the state dir: the `:` command history, and per
//! reviewer the list's sort, filter and selected item. Small files, written whole (a
//! temporary file renamed over the old one), readable by their owner only. A file that
//! does not parse is ignored with a warning: losing a sort order is never worth a crash.
use std::path::{Path, PathBuf};

use crate::queue::Sort;

/// Commands kept in the history file.
pub const HISTORY_MAX: usize = 500;

/// The list as the reviewer left it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct UiState {
    pub sort: Option<Sort>,
    /// The filter as typed.
    pub filter: String,
    /// The item the selection was on.
    pub selected: Option<i64>,
    /// Whether the list showed decided items.
    pub decided: bool,
    /// The list's share of the screen, in percent.
    pub list_pct: Option<u16>,
}

pub fn history_path(state_dir: &Path) -> PathBuf {
    state_dir.join("command_history")
}

/// One file per reviewer (several reviewers may share one OS account on a server).
pub fn ui_state_path(state_dir: &Path, reviewer: &str) -> PathBuf {
    let name: String = reviewer
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    state_dir.join(format!("console-{name}.json"))
}

/// The history, oldest first; nothing when the file is missing or unreadable.
pub fn load_history(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let skip = lines.len().saturating_sub(HISTORY_MAX);
    lines.into_iter().skip(skip).collect()
}

pub fn save_history(path: &Path, history: &[String]) -> std::io::Result<()> {
    let skip = history.len().saturating_sub(HISTORY_MAX);
    let mut text = String::new();
    for h in &history[skip..] {
        // One command a line: a pasted newline would split an entry.
        text.push_str(&h.replace(['\n', '\r'], " "));
        text.push('\n');
    }
    write_private(path, text.as_bytes())
}

/// The saved list state: `Ok(None)` when there is none, `Err` (a warning to show) when the
/// file is there but cannot be used.
pub fn load_ui_state(path: &Path) -> Result<Option<UiState>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "cannot read {}: {e}; starting fresh",
                path.display()
            ));
        }
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        format!(
            "{} is not a saved console state ({e}); ignored, starting fresh",
            path.display()
        )
    })
}

pub fn save_ui_state(path: &Path, state: &UiState) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    write_private(path, &json)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded_and_ui_state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let h: Vec<String> = (0..HISTORY_MAX + 10)
            .map(|i| format!("sort age {i}"))
            .collect();
        let p = history_path(dir.path());
        save_history(&p, &h).unwrap();
        let back = load_history(&p);
        assert_eq!(back.len(), HISTORY_MAX);
        assert_eq!(back.last(), h.last());

        let p = ui_state_path(dir.path(), "ana/../x");
        assert!(p.starts_with(dir.path()));
        assert_eq!(load_ui_state(&p), Ok(None));
        let s = UiState {
            sort: Some(Sort::Oldest),
            filter: "p:high".into(),
            selected: Some(4),
            decided: false,
            list_pct: Some(55),
        };
        save_ui_state(&p, &s).unwrap();
        assert_eq!(load_ui_state(&p), Ok(Some(s)));
        std::fs::write(&p, "{not json").unwrap();
        assert!(load_ui_state(&p).unwrap_err().contains("ignored"));
    }
}
