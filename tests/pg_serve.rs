//! `signoff serve --db postgres://…` through the real binary: it starts on the built-in
//! policy, refuses a threshold or auto-approval no signed-off validation stands on (as it
//! does on SQLite), and its tokens are made straight in the database.
mod common;
#[path = "support/pg.rs"]
mod pg;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

fn write_config(dir: &std::path::Path, text: &str) {
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(dir.join("config").join("config.toml"), text).unwrap();
}

#[test]
fn serve_on_postgres_starts_and_refuses_an_unvalidated_auto_approval() {
    let Some(db) = pg::database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "[policy]\nauto_approve = true\n");
    let (code, _, err) = common::run(
        common::signoff(dir.path())
            .args([
                "--db",
                &db.url,
                "serve",
                "--no-socket",
                "--bind",
                "127.0.0.1:0",
            ])
            .stdin(Stdio::null()),
    );
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("no passing signed-off validation"),
        "the refusal names what is missing: {err}"
    );

    write_config(dir.path(), "");
    let (code, out, err) = common::run(
        common::signoff(dir.path())
            .args(["--db", &db.url, "token", "add", "ci", "--role", "reviewer"]),
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.trim().is_empty());
    let mut child = common::signoff(dir.path())
        .args([
            "--db",
            &db.url,
            "serve",
            "--no-socket",
            "--bind",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .and_then(Result::ok)
        .unwrap_or_default();
    // SAFETY: kill with a pid this test spawned.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
    assert!(first.contains("listening on http://127.0.0.1:"), "{first}");
    assert!(
        first.contains("postgres://postgres@127.0.0.1:"),
        "the database is named without a password: {first}"
    );
}
