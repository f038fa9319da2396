//! `signoff dispatch [--once]` and `signoff doctor`.
use std::sync::Arc;

use super::{EXIT_FAILED, EXIT_OK, runtime, store_options};
use crate::actions::{self, DoctorStatus};
use crate::config::Loaded;

/// Names this dispatcher in leases and the audit log: `dispatch:user@host:pid`.
pub(crate) fn worker_name(loaded: &Loaded) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!(
        "dispatch:{}@{host}:{}",
        loaded.reviewer(),
        std::process::id()
    )
}

pub fn dispatch(loaded: &Loaded, once: bool) -> anyhow::Result<i32> {
    let rt = runtime()?;
    let policy = Arc::new(loaded.config.policy.clone());
    let worker = worker_name(loaded);
    let summary = rt.block_on(actions::dispatch_with(
        &loaded.paths.db,
        policy,
        // A long-running writer: checkpoints on their own thread.
        &crate::store::StoreOptions {
            background_checkpoint: !once,
            ..store_options(loaded)
        },
        &loaded.config.actions,
        once,
        &worker,
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    ))?;
    println!("{summary}");
    Ok(if summary.dead > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

pub fn doctor(loaded: &Loaded) -> anyhow::Result<i32> {
    let rt = runtime()?;
    let checks = rt.block_on(actions::doctor(&loaded.config.actions));
    let mut failed = false;
    for c in &checks {
        println!("{}", crate::text::sanitize(&c.to_string()));
        failed |= c.status == DoctorStatus::Fail;
    }
    Ok(if failed { EXIT_FAILED } else { EXIT_OK })
}
