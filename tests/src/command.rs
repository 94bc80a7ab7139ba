//! Running commands: captured output, and panics that show the command line, its exit
//! status, stdout and stderr.

use std::process::{Command, Output, Stdio};

/// Formats a command line for error messages.
pub(crate) fn command_line(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion with captured output; panics if it cannot be started.
pub fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null());
    match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run `{}`: {e}", command_line(cmd)),
    }
}

/// Runs `cmd` and returns its output; panics, showing the command, its exit status,
/// stdout and stderr, unless it exits successfully.
pub fn run_checked(cmd: &mut Command) -> Output {
    let out = output(cmd);
    if !out.status.success() {
        panic!(
            "`{}` failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            command_line(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Runs `cmd` like [`run_checked`] and returns its stdout as UTF-8 (lossily).
pub fn run_stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run_checked(cmd).stdout).into_owned()
}

/// The text of a command's stdout and stderr, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
