//! The `[actions]` section of the config.

/// Whether actions leave the machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Render and store every action; send nothing.
    #[default]
    Sandbox,
    Live,
}

/// `[actions]`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActionsConfig {
    pub mode: Mode,
    /// Kill switch: nothing is sent while true.
    pub paused: bool,
}
