//! signoff: review AI-prepared requests in a terminal before anything leaves the building.
pub mod actions;
pub mod cli;
pub mod config;
pub mod demo;
pub mod ingest;
pub mod logging;
pub mod model;
pub mod queue;
pub mod secret;
pub mod stats;
pub mod store;
pub mod text;
pub mod tui;
