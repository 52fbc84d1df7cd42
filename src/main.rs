fn main() {
    std::process::exit(attractor::cli::main());
}
