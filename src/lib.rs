//! signoff: review AI-prepared requests in a terminal before anything leaves the building.
pub mod actions;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod identity;
pub mod ingest;
pub mod logging;
pub mod model;
pub mod pg;
pub mod queue;
pub mod secret;
pub mod server;
pub mod shadow;
pub mod stats;
pub mod store;
pub mod text;
pub mod tui;
pub mod validate;

/// mimalloc instead of the system allocator: ingest frees each stored batch's items (2 KB
/// payloads, 1 KB AI objects: above glibc's per-thread cache, so every free took the
/// arena's lock and consolidation path) on another thread than the one that writes, and
/// that was a third of the parser thread's time (store bench, perf).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
