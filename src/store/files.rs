//! The store's files on disk: created readable by their owner only (0600), or by a named
//! group too (0660, given to that group), whatever the umask; and permission problems
//! explained with the file, its owner and its mode instead of SQLite's "attempt to write a
//! readonly database".
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::StoreError;

/// How the store's files are created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileMode {
    /// The group that shares the files (`store.group`), if any.
    pub group: Option<u32>,
}

impl FileMode {
    /// 0600, or 0660 with a group.
    pub fn file_mode(&self) -> u32 {
        if self.group.is_some() { 0o660 } else { 0o600 }
    }

    /// 0700, or 0770 with a group.
    pub fn dir_mode(&self) -> u32 {
        if self.group.is_some() { 0o770 } else { 0o700 }
    }

    /// Sets the exact mode (the umask took bits away at creation) and the group.
    pub fn apply(&self, f: &File, mode: u32) -> std::io::Result<()> {
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        if let Some(gid) = self.group {
            std::os::unix::fs::fchown(f, None, Some(gid))?;
        }
        Ok(())
    }
}

/// Creates `path` (which must not exist) with the store's file mode.
pub fn create_new(path: &Path, mode: &FileMode) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(mode.file_mode())
        .open(path)?;
    mode.apply(&f, mode.file_mode())?;
    Ok(f)
}

/// Creates an empty database file with the store's mode unless it exists, so SQLite opens
/// a file with the right mode (it gives the -wal and -shm files the same).
pub fn precreate_db(path: &Path, mode: &FileMode) -> std::io::Result<()> {
    match create_new(path, mode) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates the database's directory when it is missing, with the store's directory mode.
pub fn create_dir(dir: &Path, mode: &FileMode) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode.dir_mode())
        .create(dir)?;
    let f = File::open(dir)?;
    mode.apply(&f, mode.dir_mode())
}

/// Writes `bytes` to `path` only if it does not exist yet, all at once: a temporary file
/// is written, synced, and linked into place (a reader never sees a partial file). Returns
/// false when the file was already there (another process was first).
pub fn publish_new(path: &Path, bytes: &[u8], mode: &FileMode) -> std::io::Result<bool> {
    let tmp = path.with_file_name(format!(
        ".{}.{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        fastrand::u64(..)
    ));
    let res = (|| {
        let mut f = create_new(&tmp, mode)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    // The new name survives a power cut (the key must, once rows use it).
                    let _ = File::open(dir).and_then(|d| d.sync_all());
                }
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    res
}

/// Whether an error is the operating system or SQLite saying "not allowed".
pub fn is_permission(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(
        e.sqlite_error_code(),
        Some(ReadOnly | CannotOpen | PermissionDenied)
    )
}

/// The database's files, in the order to blame them: the file, its -wal and -shm, then
/// the directory (which matters only for files that do not exist yet).
fn candidates(db: &Path) -> Vec<PathBuf> {
    let mut out = vec![db.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = db.as_os_str().to_os_string();
        name.push(suffix);
        out.push(PathBuf::from(name));
    }
    if let Some(dir) = db.parent() {
        out.push(if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir.to_path_buf()
        });
    }
    out
}

/// `access(2)` for this process's real uid.
fn allowed(path: &Path, how: libc::c_int) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return true;
    };
    // SAFETY: a NUL-terminated path; access only reads it.
    unsafe { libc::access(c.as_ptr(), how) == 0 }
}

/// The first of the database's files (the file, -wal, -shm, its directory) this process
/// may not read, or with `write` not write, as a [`StoreError::Permission`]; `None` when
/// all are open to it.
pub fn explain(db: &Path, write: bool) -> Option<StoreError> {
    candidates(db).into_iter().find_map(|p| {
        let meta = std::fs::metadata(&p).ok()?;
        let search = if meta.is_dir() { libc::X_OK } else { 0 };
        if !allowed(&p, libc::R_OK | search) {
            Some(permission(&p, &meta, false))
        } else if write && !allowed(&p, libc::W_OK | search) {
            Some(permission(&p, &meta, true))
        } else {
            None
        }
    })
}

/// A permission error for `path`, with its owner and mode.
pub fn permission(path: &Path, meta: &std::fs::Metadata, write: bool) -> StoreError {
    StoreError::Permission(Box::new(super::Denied {
        path: path.to_path_buf(),
        access: if write { "write" } else { "read" },
        owner: crate::identity::user_name(meta.uid()).unwrap_or_else(|| meta.uid().to_string()),
        group: crate::identity::group_name(meta.gid()),
        mode: format!("{:04o}", meta.mode() & 0o7777),
        me: crate::identity::os_user().to_string(),
    }))
}

/// An I/O error on one of the store's own files (anchor, key) as a store error: a
/// permission problem names owner and mode, anything else the file and what failed.
pub fn io_error(path: &Path, what: &'static str, e: std::io::Error) -> StoreError {
    if e.kind() == std::io::ErrorKind::PermissionDenied
        && let Ok(meta) = std::fs::metadata(path)
    {
        return permission(path, &meta, what != "read");
    }
    StoreError::Io {
        path: path.to_path_buf(),
        what,
        source: e,
    }
}
