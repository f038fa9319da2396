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
    std::process::exit(signoff::cli::main());
}
