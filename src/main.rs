//! The `seer` command: parses the command line and hands the work to the
//! library. A user's mistake ends in a one-line error and exit code 1.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// mimalloc instead of glibc's allocator: tensor ops allocate a fresh buffer
/// each, and glibc returns large ones to the kernel on every free (page faults).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
