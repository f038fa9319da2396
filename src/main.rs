fn main() {
    std::process::exit(signoff::cli::main());
}
