//! The review console (issue 3). Entry point: [`run`].
use std::path::PathBuf;
use std::sync::Arc;

use crate::model::Policy;
use crate::queue::Queue;

mod config;
pub use config::UiConfig;

/// What the console needs besides the queue.
#[derive(Clone, Debug)]
pub struct TuiOptions {
    /// Who is reviewing (recorded on every claim, edit and decision).
    pub reviewer: String,
    /// Show everything, decide nothing.
    pub read_only: bool,
    pub policy: Arc<Policy>,
    pub ui: UiConfig,
    /// "sandbox" or "live", for the status bar.
    pub actions_mode: String,
    /// Where user themes live (`<config dir>/themes`).
    pub themes_dir: Option<PathBuf>,
}

/// Runs the console until the reviewer quits.
pub async fn run(queue: Arc<dyn Queue>, opts: TuiOptions) -> anyhow::Result<()> {
    let _ = (queue, opts);
    anyhow::bail!("the review console is not built yet")
}

/// Problems in the `[ui]` section, as (dotted key, message).
pub fn check_ui(ui: &UiConfig) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if !["auto", "16", "256", "truecolor", "none"].contains(&ui.color.as_str()) {
        out.push((
            "ui.color".into(),
            format!(
                "'{}' is not a colour mode; allowed: auto, 16, 256, truecolor, none",
                ui.color
            ),
        ));
    }
    out
}
