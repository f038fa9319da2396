//! Who is calling, and what they may do.
//!
//! On the Unix socket the kernel says who the peer is (its uid, from `SO_PEERCRED`); the
//! uid's name and groups come from the system's user database and `[server.access]` maps
//! them to a role. Over TCP a bearer token says it: only each token's SHA-256 is stored,
//! and presented tokens are compared in constant time. A webhook caller proves itself with
//! an HMAC-SHA256 over `timestamp.body`. Identity never comes from a request body.
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::config::{AccessConfig, Role};
use crate::queue::Millis;
use crate::store::TokenRecord;

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The name recorded on claims, edits and decisions: the Unix user or the token's name.
    pub name: String,
    pub role: Role,
    pub via: Via,
}

/// How a caller was identified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Unix,
    Token,
    Webhook,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Unix => "unix",
            Via::Token => "token",
            Via::Webhook => "webhook",
        }
    }
}

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Perm {
    /// Reading the queue.
    Read,
    /// Claiming, editing, deciding, undoing, recording outcomes.
    Review,
    /// The kill switch, resends, tokens.
    Admin,
    /// Posting requests to ingest.
    Ingest,
}

impl Perm {
    fn what(self) -> &'static str {
        match self {
            Perm::Read => "reading the queue needs the observer, reviewer or admin role",
            Perm::Review => "reviewing (claims, edits, decisions) needs the reviewer or admin role",
            Perm::Admin => "this needs the admin role",
            Perm::Ingest => "ingest needs the ingest or admin role",
        }
    }
}

impl Role {
    /// Whether this role grants `perm`.
    pub fn allows(self, perm: Perm) -> bool {
        match self {
            Role::Admin => true,
            Role::Reviewer => matches!(perm, Perm::Read | Perm::Review),
            Role::Observer => perm == Perm::Read,
            Role::Ingest => perm == Perm::Ingest,
        }
    }

    /// Strength among the console roles, for choosing between groups.
    fn rank(self) -> u8 {
        match self {
            Role::Admin => 4,
            Role::Reviewer => 3,
            Role::Observer => 2,
            Role::Ingest => 1,
        }
    }
}

impl Identity {
    /// Fails with 403 and the reason when the caller's role does not grant `perm`.
    pub fn require(&self, perm: Perm) -> Result<(), ApiError> {
        if self.role.allows(perm) {
            return Ok(());
        }
        Err(ApiError::forbidden(format!(
            "{} has the {} role: {}",
            self.name,
            self.role.as_str(),
            perm.what()
        )))
    }
}

/// A user as the system knows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixUser {
    pub name: String,
    pub groups: Vec<String>,
}

/// The name of `uid` (getpwuid_r), or `None` when the user database does not know it.
pub fn user_name(uid: u32) -> Option<(String, u32)> {
    let mut buf = vec![0u8; 4096];
    loop {
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call and `buf` outlives the result's use.
        let rc = unsafe {
            libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut out)
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || out.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: pw_name points into `buf`, NUL-terminated by getpwuid_r.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) }
            .to_string_lossy()
            .into_owned();
        return Some((name, pwd.pw_gid));
    }
}

/// The names of the groups `name` belongs to (getgrouplist + getgrgid_r), its primary
/// group `gid` included.
pub fn group_names(name: &str, gid: u32) -> Vec<String> {
    let Ok(cname) = CString::new(name) else {
        return Vec::new();
    };
    let mut n: libc::c_int = 32;
    let mut gids: Vec<libc::gid_t> = vec![0; n as usize];
    loop {
        let mut count = n;
        // SAFETY: `gids` holds `count` entries; getgrouplist writes at most that many and
        // says how many it needs when that is too few.
        let rc = unsafe { libc::getgrouplist(cname.as_ptr(), gid, gids.as_mut_ptr(), &mut count) };
        if rc >= 0 {
            gids.truncate(count.max(0) as usize);
            break;
        }
        if count <= n || n > 65536 {
            gids.truncate(n as usize);
            break;
        }
        n = count;
        gids.resize(n as usize, 0);
    }
    let mut names: Vec<String> = gids.into_iter().filter_map(group_name).collect();
    names.sort();
    names.dedup();
    names
}

fn group_name(gid: u32) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    loop {
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::group = std::ptr::null_mut();
        // SAFETY: as in `user_name`.
        let rc = unsafe {
            libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr().cast(), buf.len(), &mut out)
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || out.is_null() || grp.gr_name.is_null() {
            return None;
        }
        // SAFETY: gr_name points into `buf`, NUL-terminated.
        return Some(
            unsafe { CStr::from_ptr(grp.gr_name) }
                .to_string_lossy()
                .into_owned(),
        );
    }
}

/// The role `[server.access]` gives a user: their own entry, else the strongest of their
/// groups'. With no access configured at all, the server's own user is admin and nobody
/// else gets in.
pub fn role_for(access: &AccessConfig, user: &UnixUser, is_server_user: bool) -> Option<Role> {
    if access.is_empty() {
        return is_server_user.then_some(Role::Admin);
    }
    if let Some(r) = access.users.get(&user.name) {
        return Some(*r);
    }
    user.groups
        .iter()
        .filter_map(|g| access.groups.get(g))
        .copied()
        .max_by_key(|r| r.rank())
}

/// Socket peers by uid, looked up at most once a minute (the user database may be remote).
#[derive(Default)]
pub struct UserCache {
    entries: Mutex<HashMap<u32, (Instant, Option<UnixUser>)>>,
}

const USER_CACHE_TTL: Duration = Duration::from_secs(60);

impl UserCache {
    /// The user behind `uid`, or `None` when the system does not know the uid.
    pub async fn user(&self, uid: u32) -> Option<UnixUser> {
        if let Ok(map) = self.entries.lock()
            && let Some((at, u)) = map.get(&uid)
            && at.elapsed() < USER_CACHE_TTL
        {
            return u.clone();
        }
        let found = tokio::task::spawn_blocking(move || {
            user_name(uid).map(|(name, gid)| UnixUser {
                groups: group_names(&name, gid),
                name,
            })
        })
        .await
        .ok()
        .flatten();
        if let Ok(mut map) = self.entries.lock() {
            map.insert(uid, (Instant::now(), found.clone()));
        }
        found
    }
}

/// A new API token: 32 random bytes from the system's generator, as `signoff_` and 64
/// hex digits, and the SHA-256 (hex) that is stored in its place.
pub fn new_token() -> std::io::Result<(String, String)> {
    let mut bytes = [0u8; 32];
    let mut f = std::fs::File::open("/dev/urandom")?;
    std::io::Read::read_exact(&mut f, &mut bytes)?;
    let token = format!("signoff_{}", hex(&bytes));
    let hash = token_sha256(&token);
    Ok((token, hash))
}

/// The stored form of a token.
pub fn token_sha256(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a token was not accepted (the message names no token).
#[derive(Debug, PartialEq, Eq)]
pub enum TokenRefusal {
    Unknown,
    Revoked(String),
    Expired(String),
    BadRole(String),
}

impl TokenRefusal {
    pub fn message(&self) -> String {
        match self {
            TokenRefusal::Unknown => "the token is not valid for this server".into(),
            TokenRefusal::Revoked(n) => format!("the token '{n}' was revoked"),
            TokenRefusal::Expired(n) => {
                format!("the token '{n}' has expired; ask an admin for a new one")
            }
            TokenRefusal::BadRole(n) => {
                format!("the token '{n}' has a role this server does not know")
            }
        }
    }
}

/// Checks a presented token against the stored ones: every stored hash is compared in
/// constant time, so the time taken says nothing about how close a guess was.
pub fn check_token(
    presented: &str,
    records: &[TokenRecord],
    now: Millis,
) -> Result<Identity, TokenRefusal> {
    let hash = token_sha256(presented);
    let mut found: Option<&TokenRecord> = None;
    for r in records {
        if bool::from(r.sha256.as_bytes().ct_eq(hash.as_bytes())) {
            found = Some(r);
        }
    }
    let r = found.ok_or(TokenRefusal::Unknown)?;
    if r.revoked_at.is_some() {
        return Err(TokenRefusal::Revoked(r.name.clone()));
    }
    if r.expires_at.is_some_and(|e| e <= now) {
        return Err(TokenRefusal::Expired(r.name.clone()));
    }
    let role = Role::parse(&r.role).ok_or_else(|| TokenRefusal::BadRole(r.name.clone()))?;
    Ok(Identity {
        name: r.name.clone(),
        role,
        via: Via::Token,
    })
}

/// The stored tokens, reloaded when the queue's change token moves (a token added or
/// revoked by `signoff token` on this host) or when the server itself changed them.
#[derive(Default)]
pub struct TokenCache {
    inner: Mutex<Option<(u64, std::sync::Arc<Vec<TokenRecord>>)>>,
}

impl TokenCache {
    pub fn get(&self, token: u64) -> Option<std::sync::Arc<Vec<TokenRecord>>> {
        let g = self.inner.lock().ok()?;
        g.as_ref()
            .filter(|(t, _)| *t == token)
            .map(|(_, v)| v.clone())
    }

    pub fn put(&self, token: u64, records: Vec<TokenRecord>) -> std::sync::Arc<Vec<TokenRecord>> {
        let v = std::sync::Arc::new(records);
        if let Ok(mut g) = self.inner.lock() {
            *g = Some((token, v.clone()));
        }
        v
    }

    pub fn clear(&self) {
        if let Ok(mut g) = self.inner.lock() {
            *g = None;
        }
    }
}

/// How far a webhook's timestamp may be from the server's clock.
pub const WEBHOOK_WINDOW_SECS: i64 = 300;

/// Why a webhook signature was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SignatureRefusal {
    NoSecret,
    BadTimestamp,
    Stale { skew: i64 },
    BadFormat,
    Mismatch,
}

impl SignatureRefusal {
    pub fn message(&self) -> String {
        match self {
            SignatureRefusal::NoSecret => {
                "this server has no server.webhook_secret: signed requests cannot be checked; use an ingest token".into()
            }
            SignatureRefusal::BadTimestamp => {
                "X-Signoff-Timestamp must be the Unix time in seconds".into()
            }
            SignatureRefusal::Stale { skew } => format!(
                "X-Signoff-Timestamp is {skew} s from the server's clock (at most {WEBHOOK_WINDOW_SECS} s): sign each request when it is sent"
            ),
            SignatureRefusal::BadFormat => {
                "X-Signoff-Signature must be sha256=<64 hex digits>".into()
            }
            SignatureRefusal::Mismatch => {
                "the signature does not match: HMAC-SHA256 with the shared secret over `<timestamp>.<body>`".into()
            }
        }
    }
}

/// Checks `X-Signoff-Signature: sha256=<hex>` over `timestamp.body` with `secret`, and
/// that the timestamp is within [`WEBHOOK_WINDOW_SECS`] of `now_secs`.
pub fn check_signature(
    secret: Option<&str>,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now_secs: i64,
) -> Result<(), SignatureRefusal> {
    let secret = secret.ok_or(SignatureRefusal::NoSecret)?;
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureRefusal::BadTimestamp)?;
    // Saturating: a timestamp near i64::MIN must neither overflow nor wrap into the window.
    let skew = now_secs.saturating_sub(ts).saturating_abs();
    if skew > WEBHOOK_WINDOW_SECS {
        return Err(SignatureRefusal::Stale { skew });
    }
    let hex_sig = signature
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureRefusal::BadFormat)?;
    let given = unhex(hex_sig).ok_or(SignatureRefusal::BadFormat)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| SignatureRefusal::NoSecret)?;
    mac.update(timestamp.trim().as_bytes());
    mac.update(b".");
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&given)
        .map_err(|_| SignatureRefusal::Mismatch)
}

/// The signature header value for `body` at `timestamp` (for senders and tests).
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    // Hex digits only: `from_str_radix` alone would also take a sign (`+f` as `0f`).
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// `90d`, `12h`, `30m`, `45s` (or a bare number of seconds) as milliseconds.
pub fn parse_age(s: &str) -> Option<Millis> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: i64 = num.parse().ok()?;
    let mult = match unit.trim() {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return None,
    };
    n.checked_mul(mult).filter(|ms| *ms > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, token: &str) -> TokenRecord {
        TokenRecord {
            name: name.into(),
            role: "reviewer".into(),
            sha256: token_sha256(token),
            created_at: 0,
            created_by: "admin".into(),
            expires_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn tokens_are_checked_by_hash_and_state() {
        let (tok, hash) = new_token().unwrap();
        assert!(tok.starts_with("signoff_") && tok.len() == 8 + 64);
        assert_eq!(hash, token_sha256(&tok));
        let mut rs = vec![record("dana", &tok), record("sam", "other")];
        let id = check_token(&tok, &rs, 10).unwrap();
        assert_eq!((id.name.as_str(), id.role), ("dana", Role::Reviewer));
        assert_eq!(check_token("nope", &rs, 10), Err(TokenRefusal::Unknown));
        rs[0].expires_at = Some(10);
        assert_eq!(
            check_token(&tok, &rs, 10),
            Err(TokenRefusal::Expired("dana".into()))
        );
        rs[0].revoked_at = Some(5);
        assert_eq!(
            check_token(&tok, &rs, 1),
            Err(TokenRefusal::Revoked("dana".into()))
        );
    }

    #[test]
    fn signatures_are_checked_with_a_window() {
        let body = br#"{"source":"x"}"#;
        let sig = sign("s3cret", "1000", body);
        assert_eq!(
            check_signature(Some("s3cret"), "1000", &sig, body, 1100),
            Ok(())
        );
        assert_eq!(
            check_signature(Some("s3cret"), "1000", &sig, b"{}", 1100),
            Err(SignatureRefusal::Mismatch)
        );
        assert_eq!(
            check_signature(Some("other"), "1000", &sig, body, 1100),
            Err(SignatureRefusal::Mismatch)
        );
        assert_eq!(
            check_signature(Some("s3cret"), "1000", &sig, body, 1400),
            Err(SignatureRefusal::Stale { skew: 400 })
        );
        assert_eq!(
            check_signature(Some("s3cret"), "1000", "md5=abc", body, 1000),
            Err(SignatureRefusal::BadFormat)
        );
        assert_eq!(
            check_signature(None, "1000", &sig, body, 1000),
            Err(SignatureRefusal::NoSecret)
        );
    }

    #[test]
    fn signatures_refuse_extreme_timestamps_and_signed_hex() {
        let body = b"{}";
        let now = 1_800_000_000;
        // Timestamps whose distance from now overflows i64: stale, never a panic, and never
        // wrapped into the window.
        for ts in [i64::MIN, i64::MIN + now, i64::MAX] {
            let t = ts.to_string();
            let sig = sign("s3cret", &t, body);
            assert!(matches!(
                check_signature(Some("s3cret"), &t, &sig, body, now),
                Err(SignatureRefusal::Stale { .. })
            ));
        }
        // `+f` is no hex byte, though `u8::from_str_radix` reads it as 0x0f.
        assert_eq!(unhex(&format!("+f{}", "0".repeat(62))), None);
        assert!(unhex(&format!("0f{}", "0".repeat(62))).is_some());
        let t = now.to_string();
        let sig = sign("s3cret", &t, body);
        let hexed = sig.strip_prefix("sha256=").unwrap();
        if let Some(i) = (0..64).step_by(2).find(|&i| &hexed[i..i + 1] == "0") {
            let plus = format!("sha256={}+{}", &hexed[..i], &hexed[i + 1..]);
            assert_eq!(
                check_signature(Some("s3cret"), &t, &plus, body, now),
                Err(SignatureRefusal::BadFormat)
            );
        }
        assert_eq!(
            check_signature(
                Some("s3cret"),
                &t,
                &sig.to_ascii_uppercase().replace("SHA256=", "sha256="),
                body,
                now
            ),
            Ok(())
        );
    }

    #[test]
    fn roles_come_from_users_then_groups() {
        let mut access = AccessConfig::default();
        let dana = UnixUser {
            name: "dana".into(),
            groups: vec!["ops".into(), "audit".into()],
        };
        assert_eq!(role_for(&access, &dana, true), Some(Role::Admin));
        assert_eq!(role_for(&access, &dana, false), None);
        access.groups.insert("audit".into(), Role::Observer);
        access.groups.insert("ops".into(), Role::Reviewer);
        assert_eq!(role_for(&access, &dana, true), Some(Role::Reviewer));
        access.users.insert("dana".into(), Role::Observer);
        assert_eq!(role_for(&access, &dana, false), Some(Role::Observer));
        let other = UnixUser {
            name: "eve".into(),
            groups: vec![],
        };
        assert_eq!(role_for(&access, &other, true), None);
    }

    #[test]
    fn ages_parse() {
        assert_eq!(parse_age("90d"), Some(90 * 86_400_000));
        assert_eq!(parse_age("45"), Some(45_000));
        assert_eq!(parse_age("2x"), None);
        assert_eq!(parse_age("0s"), None);
    }

    #[test]
    fn this_process_user_is_known() {
        let uid = unsafe { libc::geteuid() };
        let (name, gid) = user_name(uid).expect("the test's own uid has a name");
        assert!(!name.is_empty());
        assert!(!group_names(&name, gid).is_empty());
    }
}
