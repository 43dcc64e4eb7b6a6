//! The `seer` command: parses the command line and hands the work to the
//! library. A user's mistake ends in a one-line error and exit code 1.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    quiet_broken_pipe();
    // Before anything is freed: a purge scheduled under mimalloc 3's default
    // delay (a second, ten for its arenas) would hold back the later ones.
    set_purge_delay(10);
    configure_threads();
    match cli::run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Ends the process quietly, as `cat` or `grep` do, when the reader of its
/// output goes away (`seer inspect next ... | head -3`): Rust ignores SIGPIPE,
/// which turns the next `println!` into a panic. Sockets are unaffected (the
/// standard library sends with `MSG_NOSIGNAL`).
fn quiet_broken_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default action of one signal, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Threads, set once before any tensor work. Matrix products and seer's
/// kernels run on rayon's pool (one thread per core; `RAYON_NUM_THREADS`
/// overrides it). candle's own element-wise worker pool (one thread per core,
/// `CANDLE_NUM_THREADS`) runs what is left to candle, chiefly the gradient
/// sums of its backward pass; its workers are told to spin only briefly
/// before they sleep (`CANDLE_BARRIER_POOL_SPIN_LIMIT=100`, candle's default
/// 25,000), so that they do not take the cores from the kernels between
/// calls. Measured on 2 cores: the DiT's training step about 6% faster than
/// with candle's pool off, the GPT's step and generation unchanged; with
/// candle's default spinning the GPT's step was about 23% slower. Either
/// variable set by the user wins.
fn configure_threads() {
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "100");
    }
}

/// mimalloc instead of glibc's allocator: tensor ops allocate a fresh buffer
/// each, and glibc returns large ones to the kernel on every free (page faults).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_t` in
/// mimalloc 3's `mimalloc.h`; libmimalloc-sys does not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How soon mimalloc hands freed memory back to the kernel, in
/// milliseconds (-1: never), unless the user's `MIMALLOC_PURGE_DELAY` says.
/// `main` sets 10 for every command: loading an open model frees tens of
/// megabytes of metadata and tokenizer scaffolding that would otherwise
/// stay resident beside the weights (SmolLM2's peak in `seer bench
/// generate`: 165 → 147 MiB). `cli::run` sets -1 for the commands that
/// train: they free and reallocate the same large activation buffers every
/// step, and returned to the kernel each comes back as fresh pages that
/// the kernel must zero (measured on the DiT's training step: 27,000 page
/// faults in 10 steps became 730, and the step 10% faster).
fn set_purge_delay(milliseconds: std::ffi::c_long) {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an allocator option; any value is valid.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, milliseconds) };
    }
}
