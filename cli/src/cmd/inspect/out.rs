//! Output of `inspect`: stdout writes that end quietly on a closed pipe, JSON and text
//! helpers, and error chains flattened without repeats.

use anyhow::{Context, Result, anyhow};
use serde_json::Value as J;

/// Writes `text` to stdout; a closed pipe (`| head`) ends quietly.
pub(super) fn emit(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}

/// Flattens an error chain into one message, leaving out each cause whose text its
/// parent already contains (the `cfsync-formats` errors print their source in their own
/// message *and* report it as `source()`, so `{:#}` would repeat it).
pub(super) fn dedup_chain(e: anyhow::Error) -> anyhow::Error {
    let mut msg = String::new();
    let mut prev = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !prev.is_empty() && prev.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
        prev = text;
    }
    anyhow!(msg)
}

pub(super) fn print_json(v: &J) -> Result<()> {
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    emit(&s)
}

/// `writeln!` into a `String` (which cannot fail).
macro_rules! w {
    ($o:expr, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($o, $($t)*);
    }};
}
pub(super) use w;

/// Seconds since the epoch as a UTC date.
pub(super) fn date(secs: u64) -> String {
    cfsync_verify::format_unix_utc(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// A JSON value as text: strings bare, `null` as "(none)".
pub(super) fn opt_str(v: &J) -> String {
    match v {
        J::Null => "(none)".to_owned(),
        J::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedups_repeated_causes() {
        let inner = anyhow!("malformed");
        let e = inner.context("summary: malformed").context("parsing x");
        assert_eq!(dedup_chain(e).to_string(), "parsing x: summary: malformed");
        let e = anyhow!("a").context("b").context("c");
        assert_eq!(dedup_chain(e).to_string(), "c: b: a");
    }
}
