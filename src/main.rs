fn main() {
    let code = consul::cli::run(std::env::args_os().collect());
    std::process::exit(code);
}
