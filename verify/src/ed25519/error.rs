//! Errors while loading keys ([`KeyError`]) and while verifying ([`Ed25519Error`]).

use std::io;
use std::path::PathBuf;

/// Errors while parsing or loading ed25519 keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not valid base64.
    #[error("invalid base64 in ed25519 {what}{}: {reason}", at_line(*.line))]
    InvalidBase64 {
        /// What was being parsed (`public key`, `secret key`, or a file path).
        what: String,
        /// 1-based line number within a key file.
        line: Option<usize>,
        /// The decoder's complaint.
        reason: String,
    },
    /// The decoded key has the wrong length.
    #[error("invalid ed25519 {what}{}: expected {expected} bytes, got {got}", at_line(*.line))]
    InvalidLength {
        /// What was being parsed.
        what: String,
        /// 1-based line number within a key file.
        line: Option<usize>,
        /// Required length.
        expected: usize,
        /// Decoded length.
        got: usize,
    },
    /// The bytes are not a usable ed25519 public key (not a curve point, or of small order).
    #[error("invalid ed25519 public key {key}{} in {what}: {reason}", at_line(*.line))]
    InvalidKey {
        /// What was being parsed.
        what: String,
        /// 1-based line number within a key file.
        line: Option<usize>,
        /// The key, base64.
        key: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A key file contains an empty line (libostree rejects these too).
    #[error("empty line {line} in ed25519 key file {what}")]
    EmptyLine {
        /// The file.
        what: String,
        /// 1-based line number.
        line: usize,
    },
    /// A key file contains no key at all.
    #[error("no ed25519 keys in {what}")]
    NoKeys {
        /// The file.
        what: String,
    },
    /// The public half of a secret key does not match its seed.
    #[error(
        "ed25519 secret key is inconsistent: its public half {stored} does not match the key derived from its seed ({derived})"
    )]
    SecretKeyMismatch {
        /// Public key stored in the secret key, base64.
        stored: String,
        /// Public key derived from the seed, base64.
        derived: String,
    },
    /// A key file could not be read.
    #[error("cannot read ed25519 key file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A key file is larger than [`MAX_KEY_FILE_SIZE`](super::MAX_KEY_FILE_SIZE).
    #[error("ed25519 key file {} is {size} bytes, more than the {max} byte limit", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The system random number generator failed.
    #[error("cannot generate an ed25519 key: {reason}")]
    Random {
        /// The failure.
        reason: String,
    },
}

fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(" at line {l}")).unwrap_or_default()
}

/// Errors from [`verify`](super::verify()).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Ed25519Error {
    /// The signature array is empty (or absent; the caller maps a missing key to this).
    #[error("ed25519: no signatures found")]
    NoSignatures,
    /// No trusted, non-revoked key is configured, so nothing can verify.
    #[error("ed25519: no trusted keys configured ({revoked} revoked keys ignored)")]
    NoTrustedKeys {
        /// How many trusted keys were dropped because they are revoked.
        revoked: usize,
    },
    /// A signature element is not 64 bytes long.
    #[error("ed25519: invalid signature at index {index}: expected 64 bytes, got {len}")]
    InvalidSignatureLength {
        /// Index in the signature array.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// The only signature(s) that verify were made by revoked keys.
    #[error("ed25519: signature at index {index} was made by revoked key {key}")]
    RevokedKey {
        /// Index in the signature array of the first such signature.
        index: usize,
        /// The revoked key, base64.
        key: String,
    },
    /// No signature verifies with any trusted key.
    #[error("ed25519: none of the {signatures} signatures verifies with the {} trusted keys ({})", .tried_keys.len(), describe_keys(.tried_keys))]
    NoValidSignature {
        /// Number of signatures tried.
        signatures: usize,
        /// The trusted keys tried, base64.
        tried_keys: Vec<String>,
    },
}

fn describe_keys(keys: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut s = keys
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > SHOWN {
        s.push_str(&format!(", and {} more", keys.len() - SHOWN));
    }
    s
}
