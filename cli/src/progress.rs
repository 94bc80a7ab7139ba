//! Drawing the engine's progress events: an indicatif bar on a terminal, plain lines
//! otherwise, nothing with `--quiet` or `--json`.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

use cfsync_engine::progress::{Event, Reporter};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

/// How progress is shown.
#[derive(Debug)]
pub(crate) enum Progress {
    /// Nothing.
    Quiet,
    /// A bar on stderr.
    Bar(ProgressBar),
    /// A line on stderr per phase and every few seconds.
    Lines(Mutex<Instant>),
}

impl Progress {
    /// Chooses bars on a terminal, lines otherwise, nothing when `quiet`.
    pub(crate) fn new(quiet: bool) -> Self {
        if quiet {
            return Self::Quiet;
        }
        if std::io::stderr().is_terminal() {
            // Length 1 until the first counters: an empty bar, not a full one.
            let bar = ProgressBar::new(1);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {prefix:8} [{bar:30}] {msg} {elapsed_precise}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            Self::Bar(bar)
        } else {
            Self::Lines(Mutex::new(Instant::now()))
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        if let Self::Bar(b) = self {
            b.finish_and_clear();
        }
    }
}

impl Reporter for Progress {
    fn report(&self, event: Event) {
        match (self, event) {
            (Self::Quiet, _) => {}
            (Self::Bar(b), Event::Phase(p)) => b.set_prefix(p),
            (Self::Bar(b), Event::Message(m)) => b.println(m),
            (Self::Bar(b), Event::Counters(c)) => {
                let (done, total) = match c.bytes_expected {
                    Some(t) => (c.bytes_fetched, t),
                    None => (c.objects_done, c.objects_expected.max(1)),
                };
                b.set_length(total.max(done));
                b.set_position(done);
                let parts = if c.parts_expected > 0 {
                    format!(", parts {}/{}", c.parts_done, c.parts_expected)
                } else {
                    String::new()
                };
                let eta = match c.bytes_expected {
                    Some(t) if c.bytes_fetched > 0 && t > c.bytes_fetched => {
                        let secs = b.elapsed().as_secs_f64();
                        let left = secs * (t - c.bytes_fetched) as f64 / c.bytes_fetched as f64;
                        format!(", eta {left:.0}s")
                    }
                    _ => String::new(),
                };
                let rate = HumanBytes(
                    (c.bytes_fetched as f64 / b.elapsed().as_secs_f64().max(0.001)) as u64,
                );
                b.set_message(format!(
                    "{} fetched ({rate}/s), objects {}/{}{parts}{eta}",
                    HumanBytes(c.bytes_fetched),
                    c.objects_done,
                    c.objects_expected
                ));
            }
            (Self::Lines(_), Event::Phase(p)) => eprintln!("cfsync: {p}"),
            (Self::Lines(_), Event::Message(m)) => eprintln!("cfsync: {m}"),
            (Self::Lines(last), Event::Counters(c)) => {
                let Ok(mut last) = last.lock() else { return };
                if last.elapsed().as_secs() >= 2 {
                    *last = Instant::now();
                    eprintln!(
                        "cfsync: {} fetched, objects {}/{}, parts {}/{}",
                        HumanBytes(c.bytes_fetched),
                        c.objects_done,
                        c.objects_expected,
                        c.parts_done,
                        c.parts_expected
                    );
                }
            }
            (_, _) => {}
        }
    }
}
