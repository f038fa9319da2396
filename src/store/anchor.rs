//! The audit log's key and anchor, both kept outside the database.
//!
//! - The key (`audit.key` beside the database: 32 bytes from `/dev/urandom`, mode 0600, or
//!   0660 with `store.group`) keys an HMAC-SHA256 over every row's hash (the row's `mac`
//!   column) and over the anchor record: a row or an anchor made without the key is told
//!   apart from a real one, however well it is chained.
//! - The anchor (`<db>.anchor`) records the chain's head (sequence and hash), the schema
//!   cookie it was written under, and its MAC, in one fixed-size record overwritten in
//!   place. It pins the tail: a head behind the anchor, or another hash at the anchored
//!   entry, is a removed or rewritten tail.
//!
//! Every writer checks the head against the anchor inside its write transaction, before it
//! appends ([`AuditState::check`]), and refuses on a mismatch. After its commit it moves
//! the anchor to its new head ([`AuditState::committed`]) under an exclusive `flock`, and
//! never backwards. A writer stopped between its commit and that update leaves the anchor
//! behind the head; the next writer accepts the rows past the anchor only when each chains
//! from the anchored entry and carries a valid MAC, and its own commit re-anchors.
//!
//! The common case costs one `stat`: a writer keeps the head it verified or anchored, with
//! the schema cookie and the anchor file's identity and times, and reads the file again
//! only when one of them changed. A changed schema cookie (the append-only triggers were
//! dropped, say, or a migration ran) makes the writer verify the whole chain once.
use std::cell::RefCell;
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rusqlite::{Connection, OptionalExtension};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::audit::{AuditHead, GENESIS, hex, hex_into};
use super::files::{self, FileMode};
use super::{Result, StoreError};
use crate::queue::Millis;

/// The key's file name, in the database's directory.
pub const KEY_FILE: &str = "audit.key";
/// The key's length in bytes.
pub const KEY_LEN: usize = 32;
/// Size of the anchor file's one record (JSON padded with spaces, then a newline).
const ANCHOR_RECORD: usize = 256;
/// The anchor format this build writes (1 was unkeyed: seq, hash, at).
const ANCHOR_VERSION: u32 = 2;

/// Where the audit key of a database lives: `audit.key` in its directory.
pub fn key_path(db: &Path) -> PathBuf {
    db.with_file_name(KEY_FILE)
}

/// Where the anchor of a database lives: beside it (`queue.db` → `queue.db.anchor`).
pub fn anchor_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".anchor");
    db.with_file_name(name)
}

/// The HMAC-SHA256 key of an audit log.
#[derive(Clone)]
pub struct AuditKey {
    mac: Hmac<Sha256>,
}

/// Why a key could not be used.
#[derive(Debug)]
pub enum KeyProblem {
    Missing,
    Unreadable(std::io::Error),
    Length(usize),
}

impl KeyProblem {
    pub fn describe(&self, path: &Path) -> String {
        match self {
            KeyProblem::Missing => format!("the audit key {} is missing", path.display()),
            KeyProblem::Unreadable(e) => {
                format!("the audit key {} cannot be read: {e}", path.display())
            }
            KeyProblem::Length(n) => format!(
                "the audit key {} holds {n} bytes, not {KEY_LEN}: it is not the key this log was written with",
                path.display()
            ),
        }
    }
}

impl AuditKey {
    pub fn new(bytes: &[u8]) -> AuditKey {
        AuditKey {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(bytes)
                .expect("HMAC takes a key of any length"),
        }
    }

    /// Reads the key file.
    pub fn load(path: &Path) -> Result<AuditKey, KeyProblem> {
        let mut f = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyProblem::Missing);
            }
            Err(e) => return Err(KeyProblem::Unreadable(e)),
        };
        let mut bytes = Vec::with_capacity(KEY_LEN);
        f.by_ref()
            .take(4096)
            .read_to_end(&mut bytes)
            .map_err(KeyProblem::Unreadable)?;
        if bytes.len() != KEY_LEN {
            return Err(KeyProblem::Length(bytes.len()));
        }
        Ok(AuditKey::new(&bytes))
    }

    /// The MAC of a row: HMAC over a label and the row's hash (which covers its content
    /// and, through the previous hash, every row before it).
    pub fn row_mac(&self, hash: &str) -> String {
        let mut out = [0u8; 64];
        self.row_mac_into(hash.as_bytes(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    pub(crate) fn row_mac_into(&self, hash: &[u8], out: &mut [u8; 64]) {
        let mut m = self.mac.clone();
        m.update(b"signoff-audit-row\n");
        m.update(hash);
        hex_into(&m.finalize().into_bytes().into(), out);
    }

    /// Whether `mac` (hex, as stored) is the MAC of a row with `hash`.
    pub(crate) fn row_mac_ok(&self, hash: &[u8], mac: &[u8]) -> bool {
        let mut expected = [0u8; 64];
        self.row_mac_into(hash, &mut expected);
        expected.ct_eq(mac).into()
    }

    fn anchor_mac(&self, seq: i64, hash: &str, schema: i64, at: Millis) -> String {
        let mut m = self.mac.clone();
        m.update(format!("signoff-audit-anchor\n{seq}\n{hash}\n{schema}\n{at}").as_bytes());
        hex(&m.finalize().into_bytes())
    }

    pub(crate) fn anchor_ok(&self, a: &Anchor) -> bool {
        let expected = self.anchor_mac(a.seq, &a.hash, a.schema, a.at);
        expected.as_bytes().ct_eq(a.mac.as_bytes()).into()
    }
}

/// Creates the key file with 32 bytes from the operating system's generator, unless another
/// process just did; returns the key in the file either way.
pub(crate) fn create_key(path: &Path, mode: &FileMode) -> Result<AuditKey> {
    let mut bytes = [0u8; KEY_LEN];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| files::io_error(Path::new("/dev/urandom"), "read", e))?;
    files::publish_new(path, &bytes, mode).map_err(|e| files::io_error(path, "create", e))?;
    tracing::info!(key = %path.display(), "created the audit key");
    AuditKey::load(path).map_err(|p| refused(p.describe(path)))
}

/// The chain head recorded outside the database.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Anchor {
    /// 2 for a keyed anchor; 1 (or absent) for the unkeyed records of earlier versions.
    #[serde(default = "legacy_version")]
    pub v: u32,
    pub seq: i64,
    pub hash: String,
    /// The database's schema cookie when this was written.
    #[serde(default)]
    pub schema: i64,
    pub at: Millis,
    /// HMAC over seq, hash, schema and at, with the audit key.
    #[serde(default)]
    pub mac: String,
}

fn legacy_version() -> u32 {
    1
}

/// What an anchor file holds.
#[derive(Debug)]
pub(crate) enum AnchorFile {
    Missing,
    Garbled(String),
    Found(Anchor),
}

fn parse_anchor(bytes: &[u8]) -> AnchorFile {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.trim_end_matches(['\n', ' ', '\0']),
        Err(_) => return AnchorFile::Garbled("it is not text".into()),
    };
    if text.is_empty() {
        return AnchorFile::Garbled("it is empty".into());
    }
    match serde_json::from_str::<Anchor>(text) {
        Ok(a) => AnchorFile::Found(a),
        Err(e) => AnchorFile::Garbled(format!("it is not an anchor record ({e})")),
    }
}

/// Reads the anchor of the database at `db` (tests and tools; writers read it under a lock).
pub fn read_anchor(db: &Path) -> Option<Anchor> {
    match read_anchor_file(&anchor_path(db)) {
        Ok(AnchorFile::Found(a)) => Some(a),
        _ => None,
    }
}

pub(crate) fn read_anchor_file(path: &Path) -> std::io::Result<AnchorFile> {
    match File::open(path) {
        Ok(f) => {
            lock(&f, libc::LOCK_SH)?;
            let bytes = read_record(&f);
            unlock(&f);
            Ok(parse_anchor(&bytes?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AnchorFile::Missing),
        Err(e) => Err(e),
    }
}

fn read_record(f: &File) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 2 * ANCHOR_RECORD];
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(n);
    Ok(buf)
}

fn record(key: &AuditKey, head: &AuditHead, schema: i64, at: Millis) -> Vec<u8> {
    let anchor = Anchor {
        v: ANCHOR_VERSION,
        seq: head.seq,
        hash: head.hash.clone(),
        schema,
        at,
        mac: key.anchor_mac(head.seq, &head.hash, schema, at),
    };
    let mut bytes = serde_json::to_vec(&anchor).unwrap_or_default();
    bytes.resize(ANCHOR_RECORD - 1, b' ');
    bytes.push(b'\n');
    bytes
}

fn lock(f: &File, how: libc::c_int) -> std::io::Result<()> {
    loop {
        // SAFETY: a valid descriptor; flock only takes an advisory lock on it.
        if unsafe { libc::flock(f.as_raw_fd(), how) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn unlock(f: &File) {
    // SAFETY: as in `lock`.
    unsafe {
        libc::flock(f.as_raw_fd(), libc::LOCK_UN);
    }
}

/// Writes the first anchor of a log (or the anchor a migration leaves), creating the file
/// if needed; an existing record is overwritten only by a newer head.
pub(crate) fn write_anchor(
    path: &Path,
    mode: &FileMode,
    key: &AuditKey,
    head: &AuditHead,
    schema: i64,
    at: Millis,
) -> Result<()> {
    let bytes = record(key, head, schema, at);
    if files::publish_new(path, &bytes, mode).map_err(|e| files::io_error(path, "create", e))? {
        return Ok(());
    }
    let f = open_rw(path).map_err(|e| files::io_error(path, "open", e))?;
    overwrite(&f, key, head, &bytes, true, None)
        .map(|_| ())
        .map_err(|e| files::io_error(path, "write", e))
}

fn open_rw(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
}

/// Under an exclusive lock, replaces the record when it is older than `head` (or, with
/// `any`, whenever it is not newer). `known` is a record already verified as older than
/// `head` (the one this writer checked or wrote last): finding exactly those bytes saves
/// parsing and checking them again. Returns whether it wrote.
fn overwrite(
    f: &File,
    key: &AuditKey,
    head: &AuditHead,
    bytes: &[u8],
    any: bool,
    known: Option<&[u8]>,
) -> std::io::Result<bool> {
    lock(f, libc::LOCK_EX)?;
    let res = (|| {
        let found = read_record(f)?;
        if known.is_some_and(|k| !k.is_empty() && k == found.as_slice()) {
            f.write_all_at(bytes, 0)?;
            return Ok(true);
        }
        let current = parse_anchor(&found);
        let write = match &current {
            AnchorFile::Found(a) if a.v >= ANCHOR_VERSION && key.anchor_ok(a) => a.seq < head.seq,
            // A record that is not ours is kept as evidence, except where the caller
            // replaces it on purpose (a migration keying the log).
            _ => any,
        };
        if write {
            f.write_all_at(bytes, 0)?;
        }
        Ok(write)
    })();
    unlock(f);
    res
}

/// What identifies the anchor file's current contents without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stat {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stat {
    fn of(m: &std::fs::Metadata) -> Stat {
        Stat {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// A head this store checked against the anchor (or anchored itself), and what the
/// database and the anchor file looked like then.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Verified {
    head: AuditHead,
    schema: i64,
    anchor: Stat,
}

/// A writer's view of the key and the anchor, kept across transactions.
pub(crate) struct AuditState {
    anchor_path: PathBuf,
    key_path: PathBuf,
    files: FileMode,
    key: RefCell<Option<AuditKey>>,
    file: RefCell<Option<File>>,
    verified: RefCell<Option<Verified>>,
    /// The anchor record as this writer last verified or wrote it.
    record: RefCell<Vec<u8>>,
}

/// A refusal to write: the log does not match its anchor.
pub(crate) fn refused(why: String) -> StoreError {
    StoreError::AuditRefused(why)
}

impl AuditState {
    pub fn new(db: &Path, files: FileMode) -> AuditState {
        AuditState {
            anchor_path: anchor_path(db),
            key_path: key_path(db),
            files,
            key: RefCell::new(None),
            file: RefCell::new(None),
            verified: RefCell::new(None),
            record: RefCell::new(Vec::new()),
        }
    }

    /// Checks the head a write transaction found (`head.seq` 0: an empty log) against the
    /// anchor, and returns the key to MAC new rows with. Refuses on any mismatch.
    pub fn check(&self, conn: &Connection, head: &AuditHead, schema: i64) -> Result<AuditKey> {
        let now = std::fs::metadata(&self.anchor_path)
            .ok()
            .map(|m| Stat::of(&m));
        if let (Some(v), Some(key)) = (&*self.verified.borrow(), &*self.key.borrow())
            && v.head == *head
            && v.schema == schema
            && Some(v.anchor) == now
        {
            return Ok(key.clone());
        }
        self.check_slowly(conn, head, schema)
    }

    fn check_slowly(&self, conn: &Connection, head: &AuditHead, schema: i64) -> Result<AuditKey> {
        *self.verified.borrow_mut() = None;
        *self.file.borrow_mut() = None;
        let empty = head.seq == 0;
        let key = match AuditKey::load(&self.key_path) {
            Ok(k) => k,
            Err(KeyProblem::Missing) if empty => create_key(&self.key_path, &self.files)?,
            Err(KeyProblem::Unreadable(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(files::io_error(&self.key_path, "read", e));
            }
            Err(p) => {
                return Err(refused(format!(
                    "{}, and the log has {} entries written with it",
                    p.describe(&self.key_path),
                    head.seq
                )));
            }
        };
        *self.key.borrow_mut() = Some(key.clone());
        let path = &self.anchor_path;
        let file = match open_rw(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && empty => {
                // A new log: the anchor comes before the first row, so a writer stopped
                // right after its first commit leaves an anchor the next one can follow.
                write_anchor(
                    path,
                    &self.files,
                    &key,
                    head,
                    schema,
                    crate::clock::Clock::process().now(),
                )?;
                open_rw(path).map_err(|e| files::io_error(path, "open", e))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(refused(format!(
                    "the anchor file {} is missing, and the log has {} entries that nothing outside the database pins",
                    path.display(),
                    head.seq
                )));
            }
            Err(e) => return Err(files::io_error(path, "open", e)),
        };
        lock(&file, libc::LOCK_SH).map_err(|e| files::io_error(path, "lock", e))?;
        let bytes = read_record(&file);
        unlock(&file);
        let bytes = bytes.map_err(|e| files::io_error(path, "read", e))?;
        let anchor = match parse_anchor(&bytes) {
            AnchorFile::Found(a) if a.v >= ANCHOR_VERSION => a,
            AnchorFile::Found(_) => {
                return Err(refused(format!(
                    "the anchor file {} is not keyed: it was written before the audit key existed",
                    path.display()
                )));
            }
            AnchorFile::Garbled(why) => {
                return Err(refused(format!(
                    "the anchor file {} cannot be read as an anchor: {why}",
                    path.display()
                )));
            }
            AnchorFile::Missing => {
                return Err(refused(format!(
                    "the anchor file {} cannot be read as an anchor: it is empty",
                    path.display()
                )));
            }
        };
        check_against(conn, &key, &anchor, path, head, schema)?;
        *self.record.borrow_mut() = bytes;
        let stat = file.metadata().map(|m| Stat::of(&m)).ok();
        *self.file.borrow_mut() = Some(file);
        if let Some(anchor) = stat {
            *self.verified.borrow_mut() = Some(Verified {
                head: head.clone(),
                schema,
                anchor,
            });
        }
        Ok(key)
    }

    /// After a commit that appended up to `head`: moves the anchor there (unless another
    /// writer already anchored a newer head). A failure is logged; the committed rows
    /// carry their MACs, so the next writer can still follow them.
    pub fn committed(&self, head: &AuditHead, schema: i64, at: Millis) {
        let (file, key) = (self.file.borrow(), self.key.borrow());
        let (Some(f), Some(key)) = (file.as_ref(), key.as_ref()) else {
            *self.verified.borrow_mut() = None;
            return;
        };
        let bytes = record(key, head, schema, at);
        let known = std::mem::take(&mut *self.record.borrow_mut());
        let verified = match overwrite(f, key, head, &bytes, false, Some(&known)) {
            Ok(true) => {
                let verified = f.metadata().ok().map(|m| Verified {
                    head: head.clone(),
                    schema,
                    anchor: Stat::of(&m),
                });
                *self.record.borrow_mut() = bytes;
                verified
            }
            Ok(false) => None,
            Err(e) => {
                tracing::warn!(anchor = %self.anchor_path.display(), error = %e, "could not update the audit anchor");
                None
            }
        };
        *self.verified.borrow_mut() = verified;
    }
}

/// Checks the chain in `conn` (head `head`) against a keyed anchor.
pub(crate) fn check_against(
    conn: &Connection,
    key: &AuditKey,
    anchor: &Anchor,
    path: &Path,
    head: &AuditHead,
    schema: i64,
) -> Result<()> {
    if !key.anchor_ok(anchor) {
        return Err(refused(format!(
            "the anchor file {} was not written with the audit key",
            path.display()
        )));
    }
    let mut walked = false;
    if anchor.schema != schema {
        // The schema changed since the anchor was written: whatever else changed with it
        // is found by walking the whole chain once.
        let r = super::verify::walk(conn, 0, GENESIS, Some(key), |_| {})?;
        if let Some((seq, why)) = r.broken {
            return Err(refused(format!("entry {seq}: {why}")));
        }
        walked = true;
    }
    if anchor.seq > head.seq {
        return Err(refused(format!(
            "the log ends at entry {} but the anchor records entry {}: entries were removed, or lost in a power cut under store.durability = \"normal\"",
            head.seq, anchor.seq
        )));
    }
    if anchor.seq > 0 {
        let hash: Option<String> = conn
            .prepare_cached("SELECT hash FROM audit WHERE seq = ?1")?
            .query_row([anchor.seq], |r| r.get(0))
            .optional()?;
        if hash.as_deref() != Some(anchor.hash.as_str()) {
            return Err(refused(format!(
                "entry {}: its hash differs from the anchor's: the log was rewritten at or before this entry",
                anchor.seq
            )));
        }
    }
    if anchor.seq < head.seq && !walked {
        let r = super::verify::walk(conn, anchor.seq, &anchor.hash, Some(key), |_| {})?;
        if let Some((seq, why)) = r.broken {
            return Err(refused(format!("entry {seq}: {why}")));
        }
    }
    Ok(())
}
