//! The `[ui]` section of the config.
use std::collections::BTreeMap;

/// `[ui]`: theme, colour mode, keymap overrides.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiConfig {
    /// A built-in theme (dark, light, high-contrast, mono) or one in `<config dir>/themes`.
    pub theme: String,
    /// auto | 16 | 256 | truecolor | none
    pub color: String,
    /// Action name → keys, merged over the built-in keymap (`approve = ["a"]`).
    pub keymap: BTreeMap<String, Vec<String>>,
    /// Named views: a filter and a sort, one key each (F1–F9 in order) or `:view NAME`.
    pub views: Vec<ViewConfig>,
    /// Clicks select list rows and the wheel scrolls (off: the terminal keeps the mouse
    /// for selecting text).
    pub mouse: bool,
}

/// `[[ui.views]]`: `name = "urgent billing"`, `filter = "p:urgent intent:billing_question"`,
/// `sort = "age desc"`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ViewConfig {
    pub name: String,
    pub filter: String,
    /// `KEY [asc|desc]` as `:sort` takes it; empty keeps the queue order.
    pub sort: String,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            theme: "dark".into(),
            color: "auto".into(),
            keymap: BTreeMap::new(),
            views: Vec::new(),
            mouse: false,
        }
    }
}
