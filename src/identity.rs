//! Who this process runs as, from the kernel rather than the environment: the real uid's
//! name (what the audit log records beside the reviewer name), group lookups for shared
//! stores, and file owners for permission messages.
use std::ffi::{CStr, CString};
use std::sync::OnceLock;

/// The name of the user this process really runs as (`getuid()`, then the user database),
/// or `uid:N` when the uid has no name. `$USER` and `$LOGNAME` are not consulted: anyone
/// can set them.
pub fn os_user() -> &'static str {
    static USER: OnceLock<String> = OnceLock::new();
    USER.get_or_init(|| {
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        user_name(uid).unwrap_or_else(|| format!("uid:{uid}"))
    })
}

/// The name of `uid` in the user database, if it has one.
pub fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `pwd` and `buf` outlive the call; getpwuid_r writes only into them and
        // sets `result` to `&pwd` or null.
        let (rc, found, name) = unsafe {
            let mut pwd: libc::passwd = std::mem::zeroed();
            let mut result: *mut libc::passwd = std::ptr::null_mut();
            let rc = libc::getpwuid_r(
                uid,
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            );
            let name = (rc == 0 && !result.is_null() && !pwd.pw_name.is_null())
                .then(|| CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned());
            (rc, !result.is_null(), name)
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        return name.filter(|n| found && !n.is_empty());
    }
}

/// The id of the Unix group `name`, if there is one.
pub fn group_id(name: &str) -> Option<u32> {
    if let Ok(gid) = name.parse::<u32>() {
        return Some(gid);
    }
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: as in `user_name`, with getgrnam_r and a NUL-terminated name.
        let (rc, gid) = unsafe {
            let mut grp: libc::group = std::mem::zeroed();
            let mut result: *mut libc::group = std::ptr::null_mut();
            let rc = libc::getgrnam_r(
                cname.as_ptr(),
                &mut grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            );
            (rc, (!result.is_null()).then_some(grp.gr_gid))
        };
        if rc == libc::ERANGE && buf.len() < 1 << 22 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        return if rc == 0 { gid } else { None };
    }
}

/// The name of group `gid`, or the number.
pub fn group_name(gid: u32) -> String {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: as in `user_name`, with getgrgid_r.
        let (rc, name) = unsafe {
            let mut grp: libc::group = std::mem::zeroed();
            let mut result: *mut libc::group = std::ptr::null_mut();
            let rc = libc::getgrgid_r(
                gid,
                &mut grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            );
            let name = (rc == 0 && !result.is_null() && !grp.gr_name.is_null())
                .then(|| CStr::from_ptr(grp.gr_name).to_string_lossy().into_owned());
            (rc, name)
        };
        if rc == libc::ERANGE && buf.len() < 1 << 22 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        return name.unwrap_or_else(|| gid.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_os_user_comes_from_the_uid_not_the_environment() {
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() };
        let expected = user_name(uid).unwrap_or_else(|| format!("uid:{uid}"));
        assert_eq!(os_user(), expected);
        assert!(!os_user().is_empty());
    }

    #[test]
    fn groups_resolve_both_ways() {
        // SAFETY: getgid cannot fail.
        let gid = unsafe { libc::getgid() };
        let name = group_name(gid);
        assert_eq!(group_id(&name), Some(gid));
        assert_eq!(group_id("no-such-group-signoff-test"), None);
    }
}
