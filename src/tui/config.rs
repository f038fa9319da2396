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
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            theme: "dark".into(),
            color: "auto".into(),
            keymap: BTreeMap::new(),
        }
    }
}
