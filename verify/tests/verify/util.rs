//! Helpers for running the reference tools.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `cmd`, panicking with its stderr if it cannot start or fails.
pub(crate) fn run(cmd: &mut Command) -> Output {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `cmd` and returns its output whatever the exit status.
pub(crate) fn output(cmd: &mut Command) -> Output {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!(
            "cannot run `{program}`: {e}; these tests need the real tool \
             (Debian: apt-get install gnupg ostree openssl coreutils)"
        )
    })
}

/// Runs `cmd` and returns its stdout as text.
pub(crate) fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).expect("tool output is UTF-8")
}

/// `gpg` with a private home directory, batch mode, and no tty.
pub(crate) fn gpg(home: &Path) -> Command {
    let mut c = Command::new("gpg");
    c.env("GNUPGHOME", home).args([
        "--batch",
        "--yes",
        "--no-tty",
        "--pinentry-mode",
        "loopback",
    ]);
    c
}

/// Parses GLib's text form of an `aay` as printed by
/// `ostree show --print-detached-metadata-key`, e.g. `[[byte 0x88, 0x75], [byte 0x01]]`.
pub(crate) fn parse_aay_text(text: &str) -> Vec<Vec<u8>> {
    let text = text.trim().trim_start_matches("@aay").trim();
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or_else(|| panic!("not an array: {text:.80}"));
    let mut out = Vec::new();
    for element in inner.split(']') {
        let element = element.trim().trim_start_matches(',').trim();
        if element.is_empty() {
            continue;
        }
        let body = element
            .strip_prefix('[')
            .unwrap_or_else(|| panic!("unexpected element {element:.80}"));
        let body = body.trim().strip_prefix("byte").unwrap_or(body);
        let bytes = body
            .split(',')
            .map(|tok| {
                let tok = tok.trim();
                let hex = tok
                    .strip_prefix("0x")
                    .unwrap_or_else(|| panic!("unexpected byte token {tok:?}"));
                u8::from_str_radix(hex, 16).expect("hex byte")
            })
            .collect();
        out.push(bytes);
    }
    out
}

#[test]
fn parse_aay_text_handles_glib_output() {
    assert_eq!(
        parse_aay_text("[[byte 0x88, 0x75], [byte 0x01]]\n"),
        vec![vec![0x88, 0x75], vec![0x01]]
    );
    assert_eq!(parse_aay_text("@aay []"), Vec::<Vec<u8>>::new());
}
