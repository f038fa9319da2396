//! `signoff config example | print` and `signoff info`.
use super::EXIT_OK;
use crate::config::{Loaded, render_effective};

#[derive(clap::Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the commented example config (every setting with its default).
    Example,
    /// Print the effective config and where each value came from; secrets masked.
    Print,
}

pub fn run(loaded: &Loaded, command: &ConfigCommand) -> anyhow::Result<i32> {
    match command {
        ConfigCommand::Example => print!("{}", crate::config::EXAMPLE),
        ConfigCommand::Print => print!("{}", render_effective(loaded)),
    }
    Ok(EXIT_OK)
}

pub fn info(loaded: &Loaded) -> anyhow::Result<i32> {
    let p = &loaded.paths;
    let exists = |path: &std::path::Path| {
        if path.exists() {
            ""
        } else {
            " (not created yet)"
        }
    };
    println!("signoff {}", env!("CARGO_PKG_VERSION"));
    println!(
        "config file  {}{}",
        p.config_file.display(),
        if loaded.file_read {
            ""
        } else {
            " (none: built-in defaults)"
        }
    );
    println!(
        "system file  {}{}",
        p.system_config_file.display(),
        if p.system_config_file.exists() {
            ""
        } else {
            " (none)"
        }
    );
    if let Some(r) = &loaded.config.remote {
        println!(
            "queue server {} ({}); the database below is not used",
            crate::text::sanitize(r),
            loaded.source_of("remote")
        );
    }
    println!(
        "config dir   {}{}",
        p.config_dir.display(),
        exists(&p.config_dir)
    );
    println!(
        "themes dir   {}{}",
        p.themes_dir.display(),
        exists(&p.themes_dir)
    );
    println!(
        "data dir     {}{}",
        p.data_dir.display(),
        exists(&p.data_dir)
    );
    println!("database     {}{}", p.db.display(), exists(&p.db));
    let (key, anchor) = (
        crate::store::key_path(&p.db),
        crate::store::anchor_path(&p.db),
    );
    println!("audit key    {}{}", key.display(), exists(&key));
    println!("audit anchor {}{}", anchor.display(), exists(&anchor));
    println!(
        "demo db      {}{}",
        p.data_dir.join("demo.db").display(),
        exists(&p.data_dir.join("demo.db"))
    );
    println!(
        "state dir    {}{}",
        p.state_dir.display(),
        exists(&p.state_dir)
    );
    println!("logs         {}{}", p.log_dir.display(), exists(&p.log_dir));
    println!("schema       v{}", crate::store::SCHEMA_VERSION);
    println!("reviewer     {}", crate::text::sanitize(&loaded.reviewer()));
    println!("unix user    {}", crate::identity::os_user());
    Ok(EXIT_OK)
}
