fn main() {
    // Small pages for this process. The allocator (mimalloc, see lib.rs) reserves memory in
    // large aligned regions, and with transparent huge pages set to "always" (as on the
    // machines this was measured on) each region it touches costs 2 MB of RSS: the console
    // with a 1M-item queue went from 23 to 45 MB. Ingest throughput was the same either way.
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE only sets a flag on this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    // Files this process creates are its user's alone unless made otherwise on purpose:
    // the store sets its files' modes itself (0600, or 0660 with store.group), and the log
    // files, which tracing-appender creates with the default mode, inherit this.
    // SAFETY: umask only sets this process's file creation mask.
    unsafe {
        libc::umask(0o077);
    }
    std::process::exit(signoff::cli::main());
}
