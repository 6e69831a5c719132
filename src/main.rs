fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let command = args.get(1).and_then(|a| a.to_str());
    if !matches!(command, Some("agent" | "watch")) {
        // CLI commands behave like Consul's (Go) binary when their output
        // pipe closes (`consul kv get -recurse | head`): they die quietly
        // of SIGPIPE instead of panicking on a failed print. The agent keeps
        // Rust's default (SIGPIPE ignored; write errors handled), and so
        // does `consul watch`: it writes each change to its handler's stdin,
        // and a handler that exits without reading must not end the watch
        // (Go raises SIGPIPE only for writes to stdout and stderr). Its own
        // print, without a handler, ignores a closed pipe.
        // SAFETY: called before any thread exists; SIG_DFL is a valid disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let code = consul::cli::run(args);
    std::process::exit(code);
}
