// mimalloc keeps freed tensor buffers for reuse; glibc's malloc returns large blocks to the
// kernel, and re-faulting fresh pages cost ~20 % of a DDM training step on the CPU backends.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(attractor::cli::main());
}
