//! Secrets in config: a value is given inline, or as a reference read at use time —
//! `env:NAME` (an environment variable) or `file:PATH` (a file's contents, trimmed) — so a
//! config file never has to hold a secret. Printing a [`Secret`] never shows its value.
use std::fmt;

/// A secret value or a reference to one.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

/// Marks the start of a masked secret's description in serialised output (see [`masked`]).
pub const MASK_MARK: char = '\u{1}';

thread_local! {
    static MASKING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every [`Secret`] serialising as [`MASK_MARK`] followed by its safe
/// description ([`Secret::describe`]) instead of its value: what `signoff config print`
/// shows. Which values are secret is known by type, not guessed from key names.
pub fn masked<T>(f: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            MASKING.with(|m| m.set(false));
        }
    }
    MASKING.with(|m| m.set(true));
    let _reset = Reset;
    f()
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if MASKING.with(std::cell::Cell::get) {
            s.serialize_str(&format!("{MASK_MARK}{}", self.describe()))
        } else {
            s.serialize_str(&self.0)
        }
    }
}

/// Why a secret could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set (referenced as env:{0})")]
    EnvMissing(String),
    #[error("cannot read secret file {path}: {why}")]
    File { path: String, why: String },
    #[error("the secret is empty")]
    Empty,
}

impl Secret {
    pub fn new(spec: impl Into<String>) -> Secret {
        Secret(spec.into())
    }

    /// The value, read from where the reference points.
    pub fn resolve(&self) -> Result<String, SecretError> {
        let value = if let Some(name) = self.0.strip_prefix("env:") {
            std::env::var(name).map_err(|_| SecretError::EnvMissing(name.to_string()))?
        } else if let Some(path) = self.0.strip_prefix("file:") {
            let path = crate::secret::expand_home(path);
            std::fs::read_to_string(&path)
                .map_err(|e| SecretError::File {
                    path: path.clone(),
                    why: e.to_string(),
                })?
                .trim()
                .to_string()
        } else {
            self.0.clone()
        };
        if value.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(value)
    }

    /// How the secret is given, safe to print: `env:NAME (set)`, `file:PATH (missing)`,
    /// or `******** (inline)`.
    pub fn describe(&self) -> String {
        let state = if self.resolve().is_ok() {
            "set"
        } else {
            "missing"
        };
        if self.0.starts_with("env:") || self.0.starts_with("file:") {
            format!("{} ({state})", self.0)
        } else {
            "******** (inline)".into()
        }
    }

    /// True when the secret is a reference, not a value.
    pub fn is_reference(&self) -> bool {
        self.0.starts_with("env:") || self.0.starts_with("file:")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.describe())
    }
}

/// `~/x` → `$HOME/x`.
pub fn expand_home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_and_never_print_values() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tok");
        std::fs::write(&f, "s3cret\n").unwrap();
        let s = Secret::new(format!("file:{}", f.display()));
        assert_eq!(s.resolve().unwrap(), "s3cret");
        assert!(!format!("{s:?}").contains("s3cret"));
        let inline = Secret::new("xoxb-123");
        assert_eq!(inline.describe(), "******** (inline)");
        let missing = Secret::new("env:SIGNOFF_TEST_SURELY_UNSET_VAR");
        assert_eq!(
            missing.resolve().unwrap_err().to_string(),
            "environment variable SIGNOFF_TEST_SURELY_UNSET_VAR is not set (referenced as env:SIGNOFF_TEST_SURELY_UNSET_VAR)"
        );
        assert!(missing.describe().ends_with("(missing)"));
    }
}
