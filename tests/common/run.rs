//! Running the `seer` binary from tests.

use std::process::Command;

/// What a run of the binary left.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn seer(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_seer"))
        .args(args)
        .output()
        .unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `seer` with `input` on its standard input.
pub fn seer_with_input(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_seer"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `seer` and asserts a clean one-line failure whose message holds every `needles`.
pub fn fails(args: &[&str], needles: &[&str]) {
    let out = seer(args);
    assert_eq!(
        out.code, 1,
        "seer {args:?} should fail: {}{}",
        out.stdout, out.stderr
    );
    let message = out.stderr.trim_end();
    assert!(
        !message.contains("panicked"),
        "seer {args:?} panicked: {message}"
    );
    assert_eq!(
        message.lines().count(),
        1,
        "seer {args:?}: not one line: {message}"
    );
    assert!(message.starts_with("error: "), "{message}");
    for needle in needles {
        assert!(
            message.contains(needle),
            "seer {args:?}: '{needle}' not in: {message}"
        );
    }
}
