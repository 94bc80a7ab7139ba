//! Measures what GPG verification costs a pull: loading a keyring and verifying detached
//! signatures, as `engine/src/trust.rs` does for the summary and the commit.
//!
//! ```text
//! cargo run --release -p cfsync-verify --example gpg_verify_time -- \
//!     KEYRING ROUNDS DATA_FILE SIG_FILE [DATA_FILE SIG_FILE ...]
//! ```
//!
//! Each SIG_FILE holds one binary detached signature (an element of `ostree.gpgsigs`).
//! Prints the median time of: loading the keyring, and verifying each pair.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant, SystemTime};

use cfsync_verify::gpg::{Keyring, verify_detached};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    assert!(
        args.len() >= 4 && args.len().is_multiple_of(2),
        "usage: KEYRING ROUNDS DATA SIG [DATA SIG ...]"
    );
    let rounds: usize = args[1].parse().expect("ROUNDS");
    let mut load = Vec::new();
    let mut keyring = Keyring::new();
    for _ in 0..rounds {
        let t = Instant::now();
        keyring = Keyring::from_file(args[0].as_ref()).expect("keyring");
        load.push(t.elapsed());
    }
    println!("keyring load: {:?}", median(load));
    for pair in args[2..].chunks(2) {
        let data = std::fs::read(&pair[0]).expect("data");
        let sig = std::fs::read(&pair[1]).expect("sig");
        let mut times = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            verify_detached(&data, &[&sig], &keyring, SystemTime::now()).expect("valid");
            times.push(t.elapsed());
        }
        println!(
            "verify {} ({} bytes): {:?}",
            pair[0],
            data.len(),
            median(times)
        );
    }
}
