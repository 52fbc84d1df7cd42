// mimalloc keeps freed tensor buffers for reuse; glibc's malloc returns large blocks to the
// kernel, and re-faulting fresh pages cost ~20 % of a DDM training step on the CPU backends.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // A file-size limit (`ulimit -f`) must surface as a write error (EFBIG), which the program
    // reports and survives with its last checkpoint intact, not as a SIGXFSZ kill.
    #[cfg(unix)]
    // SAFETY: sets one signal's disposition to "ignore" before any other thread exists.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    std::process::exit(attractor::cli::main());
}
