//! ed25519 signatures in the format of ostree's sign API (`ostree sign`, remote options
//! `sign-verify`, `verification-ed25519-key`, `verification-ed25519-file`).
//!
//! Formats, as implemented by libostree `src/libostree/ostree-sign-ed25519.c` and the
//! base64 blob reader `ostree-blob-reader-base64.c` (see also `docs/ostree-formats.md`
//! §2.3–2.4):
//!
//! - a **public key** is the base64 of the 32 raw key bytes
//!   (`verification-ed25519-key=<base64>`);
//! - a **key file** (`verification-ed25519-file`, `trusted.ed25519`, `revoked.ed25519`,
//!   and every file in the `.d` directories) holds one base64 public key per line; an
//!   empty line is an error;
//! - a **secret key** (`ostree sign --keys-file`, or the key argument) is the base64 of
//!   64 bytes: the 32-byte seed followed by the 32-byte public key (libsodium layout);
//! - a **signature** is a raw 64-byte pure-Ed25519 signature (no pre-hash) over the
//!   exact signed bytes, stored as one element of the `aay` array under
//!   [`METADATA_KEY`] in a `.commitmeta` or `summary.sig`.
//!
//! Verification follows `ostree_sign_ed25519_data_verify`: signatures are tried in
//! order, each against every trusted key that is not revoked, and the first success
//! wins; a signature that is not 64 bytes long is an error when reached. This module
//! uses [`VerifyingKey::verify_strict`] (rejects small-order keys and non-canonical
//! signatures), which is stricter than libsodium's default only on inputs no honest
//! signer produces.
//!
//! Where the keys come from: libostree reads the remote's `verification-ed25519-key`
//! and `verification-ed25519-file` (both unioned; revoked keys are *not* read in that
//! case), and only when neither is set, the system files
//! `/etc/ostree/trusted.ed25519`, `/etc/ostree/trusted.ed25519.d/*`,
//! `$datadir/ostree/trusted.ed25519{,.d/*}` minus the keys in the matching
//! `revoked.ed25519{,.d/*}` files ([`Ed25519Keys::from_system_dirs`]). Unlike libostree,
//! which skips key files it cannot parse, this module fails on them: skipping a broken
//! revocation file would silently re-trust a revoked key.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ed25519_dalek::{Signature, Signer as _};
use zeroize::Zeroizing;

/// The key types of `ed25519-dalek`, for callers that hold keys without depending on it.
pub use ed25519_dalek::{SigningKey, VerifyingKey};

/// The detached-metadata key holding ed25519 signatures (type `aay`).
pub const METADATA_KEY: &str = "ostree.sign.ed25519";
/// Length of a raw public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of a raw secret key in ostree's format (seed ‖ public key).
pub const SECRET_KEY_LEN: usize = 64;
/// Length of a signature.
pub const SIGNATURE_LEN: usize = 64;
/// The base directories libostree searches for `trusted.ed25519` / `revoked.ed25519`
/// (`/etc/ostree` and `$datadir/ostree` with the usual `datadir=/usr/share`).
pub const SYSTEM_KEY_DIRS: [&str; 2] = ["/etc/ostree", "/usr/share/ostree"];
/// Key files larger than this are refused (a key line is 45 bytes).
pub const MAX_KEY_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// Base64 as GLib's `g_base64_decode` accepts it in practice: standard alphabet,
/// padding optional.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

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
    /// A key file is larger than [`MAX_KEY_FILE_SIZE`].
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

/// Errors from [`verify`].
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

/// Formats a public key as ostree writes it (base64 of the 32 bytes).
pub fn format_public_key(key: &VerifyingKey) -> String {
    B64.encode(key.as_bytes())
}

/// Parses a base64 public key (surrounding whitespace ignored).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, KeyError> {
    parse_key_text(text.trim(), "public key", None)
}

/// Builds a public key from 32 raw bytes (as found in a GVariant `ay`).
pub fn parse_public_key_bytes(bytes: &[u8]) -> Result<VerifyingKey, KeyError> {
    key_from_bytes(bytes, "public key", None)
}

fn parse_key_text(text: &str, what: &str, line: Option<usize>) -> Result<VerifyingKey, KeyError> {
    let bytes = B64.decode(text).map_err(|e| KeyError::InvalidBase64 {
        what: what.to_owned(),
        line,
        reason: e.to_string(),
    })?;
    key_from_bytes(&bytes, what, line)
}

fn key_from_bytes(bytes: &[u8], what: &str, line: Option<usize>) -> Result<VerifyingKey, KeyError> {
    let raw: [u8; PUBLIC_KEY_LEN] = bytes.try_into().map_err(|_| KeyError::InvalidLength {
        what: what.to_owned(),
        line,
        expected: PUBLIC_KEY_LEN,
        got: bytes.len(),
    })?;
    let invalid = |reason: &str| KeyError::InvalidKey {
        what: what.to_owned(),
        line,
        key: B64.encode(raw),
        reason: reason.to_owned(),
    };
    let key = VerifyingKey::from_bytes(&raw).map_err(|_| invalid("not a point on the curve"))?;
    if key.is_weak() {
        return Err(invalid("key of small order"));
    }
    Ok(key)
}

/// Parses the contents of a key file: one base64 public key per line. `what` names the
/// file in errors. A final newline is fine; an empty line elsewhere is an error, as in
/// libostree. `\r\n` line ends and surrounding blanks are tolerated.
pub fn parse_key_file(contents: &[u8], what: &str) -> Result<Vec<VerifyingKey>, KeyError> {
    let text = String::from_utf8_lossy(contents);
    let body = text.strip_suffix('\n').unwrap_or(&text);
    if body.is_empty() {
        return Err(KeyError::NoKeys {
            what: what.to_owned(),
        });
    }
    let mut keys = Vec::new();
    for (i, line) in body.split('\n').enumerate() {
        let lineno = i.saturating_add(1);
        let line = line.trim();
        if line.is_empty() {
            return Err(KeyError::EmptyLine {
                what: what.to_owned(),
                line: lineno,
            });
        }
        let key = parse_key_text(line, what, Some(lineno))?;
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// Reads and parses a key file ([`parse_key_file`]).
pub fn read_key_file(path: &Path) -> Result<Vec<VerifyingKey>, KeyError> {
    let contents = read_capped(path)?;
    parse_key_file(&contents, &path.display().to_string())
}

fn read_capped(path: &Path) -> Result<Vec<u8>, KeyError> {
    let io_err = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = fs::metadata(path).map_err(io_err)?;
    if meta.len() > MAX_KEY_FILE_SIZE {
        return Err(KeyError::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
            max: MAX_KEY_FILE_SIZE,
        });
    }
    fs::read(path).map_err(io_err)
}

/// Parses a secret key in ostree's format: base64 of seed ‖ public key (64 bytes).
/// The public half must match the seed.
pub fn parse_secret_key(text: &str) -> Result<SigningKey, KeyError> {
    let what = "secret key";
    let bytes = Zeroizing::new(
        B64.decode(text.trim())
            .map_err(|e| KeyError::InvalidBase64 {
                what: what.to_owned(),
                line: None,
                reason: e.to_string(),
            })?,
    );
    let (seed, public) = match (bytes.get(..32), bytes.get(32..)) {
        (Some(seed), Some(public)) if bytes.len() == SECRET_KEY_LEN => (seed, public),
        _ => {
            return Err(KeyError::InvalidLength {
                what: what.to_owned(),
                line: None,
                expected: SECRET_KEY_LEN,
                got: bytes.len(),
            });
        }
    };
    let seed: Zeroizing<[u8; 32]> =
        Zeroizing::new(seed.try_into().map_err(|_| KeyError::InvalidLength {
            what: what.to_owned(),
            line: None,
            expected: SECRET_KEY_LEN,
            got: bytes.len(),
        })?);
    let key = SigningKey::from_bytes(&seed);
    let derived = key.verifying_key();
    if derived.as_bytes().as_slice() != public {
        return Err(KeyError::SecretKeyMismatch {
            stored: B64.encode(public),
            derived: format_public_key(&derived),
        });
    }
    Ok(key)
}

/// Formats a secret key as ostree reads it (`ostree sign --keys-file`): base64 of
/// seed ‖ public key. The string is secret.
pub fn format_secret_key(key: &SigningKey) -> String {
    let mut raw = Zeroizing::new([0u8; SECRET_KEY_LEN]);
    let (seed, public) = raw.split_at_mut(32);
    seed.copy_from_slice(key.as_bytes());
    public.copy_from_slice(key.verifying_key().as_bytes());
    B64.encode(raw.as_slice())
}

/// Generates a new secret key from the operating system's random number generator.
pub fn generate_secret_key() -> Result<SigningKey, KeyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    sequoia_openpgp::crypto::random(&mut seed[..]).map_err(|e| KeyError::Random {
        reason: e.to_string(),
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Signs `data` (pure Ed25519), returning the 64-byte signature ostree stores.
pub fn sign(data: &[u8], key: &SigningKey) -> [u8; SIGNATURE_LEN] {
    key.sign(data).to_bytes()
}

/// The ed25519 keys a verification may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ed25519Keys {
    /// Trusted public keys.
    pub trusted: Vec<VerifyingKey>,
    /// Revoked public keys: never accepted, even when also listed as trusted.
    pub revoked: Vec<VerifyingKey>,
}

impl Ed25519Keys {
    /// No keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// The keys configured for a remote, as libostree's `_signapi_load_public_keys`
    /// reads them: the inline `verification-ed25519-key` and the keys in the
    /// `verification-ed25519-file`, unioned. Returns `Ok(None)` when neither is set, in
    /// which case libostree falls back to [`Ed25519Keys::from_system_dirs`].
    pub fn from_remote_options(
        inline_key: Option<&str>,
        key_file: Option<&Path>,
    ) -> Result<Option<Self>, KeyError> {
        if inline_key.is_none() && key_file.is_none() {
            return Ok(None);
        }
        let mut keys = Self::new();
        if let Some(path) = key_file {
            keys.add_trusted_file(path)?;
        }
        if let Some(text) = inline_key {
            keys.add_trusted(parse_public_key(text)?);
        }
        Ok(Some(keys))
    }

    /// The system-wide keys, as libostree loads them when a remote configures none: in
    /// each base directory (normally [`SYSTEM_KEY_DIRS`]), `trusted.ed25519` and every
    /// entry of `trusted.ed25519.d/`, and likewise `revoked.ed25519{,.d/*}` for revoked
    /// keys. Missing files and directories are skipped; unreadable or malformed files
    /// are errors.
    pub fn from_system_dirs(base_dirs: &[&Path]) -> Result<Self, KeyError> {
        let mut keys = Self::new();
        for base in base_dirs {
            for path in key_files_in(base, "trusted.ed25519")? {
                keys.add_trusted_file(&path)?;
            }
            for path in key_files_in(base, "revoked.ed25519")? {
                keys.add_revoked_file(&path)?;
            }
        }
        Ok(keys)
    }

    /// Adds a trusted key (duplicates are ignored).
    pub fn add_trusted(&mut self, key: VerifyingKey) {
        if !self.trusted.contains(&key) {
            self.trusted.push(key);
        }
    }

    /// Adds a revoked key (duplicates are ignored).
    pub fn add_revoked(&mut self, key: VerifyingKey) {
        if !self.revoked.contains(&key) {
            self.revoked.push(key);
        }
    }

    /// Adds every key of a key file as trusted.
    pub fn add_trusted_file(&mut self, path: &Path) -> Result<(), KeyError> {
        for key in read_key_file(path)? {
            self.add_trusted(key);
        }
        Ok(())
    }

    /// Adds every key of a key file as revoked.
    pub fn add_revoked_file(&mut self, path: &Path) -> Result<(), KeyError> {
        for key in read_key_file(path)? {
            self.add_revoked(key);
        }
        Ok(())
    }

    /// Whether `key` is revoked.
    pub fn is_revoked(&self, key: &VerifyingKey) -> bool {
        self.revoked.contains(key)
    }

    /// Trusted keys that are not revoked.
    pub fn usable(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.trusted.iter().filter(|k| !self.is_revoked(k))
    }
}

/// `<base>/<name>` if it is a regular file, then every regular file in `<base>/<name>.d/`
/// (sorted, for deterministic errors).
fn key_files_in(base: &Path, name: &str) -> Result<Vec<PathBuf>, KeyError> {
    let mut out = Vec::new();
    let file = base.join(name);
    if file.is_file() {
        out.push(file);
    }
    let dir = base.join(format!("{name}.d"));
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(out);
        }
        Err(source) => return Err(KeyError::Io { path: dir, source }),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| KeyError::Io {
            path: dir.clone(),
            source,
        })?;
        let path = entry.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    out.extend(files);
    Ok(out)
}

/// A successful ed25519 verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ed25519Verification {
    /// The trusted key that verified.
    pub key: VerifyingKey,
    /// Index of the verifying signature in the signature array.
    pub signature_index: usize,
}

impl Ed25519Verification {
    /// The verifying key, base64 (for messages).
    pub fn key_base64(&self) -> String {
        format_public_key(&self.key)
    }
}

/// Verifies `data` against ostree ed25519 signatures (the elements of
/// `ostree.sign.ed25519`). Succeeds when at least one signature verifies with a trusted,
/// non-revoked key; see the module docs for the exact order and error rules.
pub fn verify(
    data: &[u8],
    signatures: &[&[u8]],
    keys: &Ed25519Keys,
) -> Result<Ed25519Verification, Ed25519Error> {
    if signatures.is_empty() {
        return Err(Ed25519Error::NoSignatures);
    }
    let usable: Vec<&VerifyingKey> = keys.usable().collect();
    if usable.is_empty() {
        return Err(Ed25519Error::NoTrustedKeys {
            revoked: keys.trusted.len(),
        });
    }
    let mut revoked_hit: Option<(usize, &VerifyingKey)> = None;
    for (index, raw) in signatures.iter().enumerate() {
        let bytes: &[u8; SIGNATURE_LEN] =
            (*raw)
                .try_into()
                .map_err(|_| Ed25519Error::InvalidSignatureLength {
                    index,
                    len: raw.len(),
                })?;
        let sig = Signature::from_bytes(bytes);
        if let Some(key) = usable.iter().find(|k| k.verify_strict(data, &sig).is_ok()) {
            return Ok(Ed25519Verification {
                key: **key,
                signature_index: index,
            });
        }
        if revoked_hit.is_none() {
            revoked_hit = keys
                .revoked
                .iter()
                .find(|k| k.verify_strict(data, &sig).is_ok())
                .map(|k| (index, k));
        }
    }
    if let Some((index, key)) = revoked_hit {
        return Err(Ed25519Error::RevokedKey {
            index,
            key: format_public_key(key),
        });
    }
    Err(Ed25519Error::NoValidSignature {
        signatures: signatures.len(),
        tried_keys: usable.iter().map(|k| format_public_key(k)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_key_roundtrip_and_sign() {
        let sk = generate_secret_key().unwrap();
        let text = format_secret_key(&sk);
        let back = parse_secret_key(&text).unwrap();
        assert_eq!(back.to_bytes(), sk.to_bytes());
        let sig = sign(b"data", &back);
        let keys = Ed25519Keys {
            trusted: vec![sk.verifying_key()],
            revoked: vec![],
        };
        assert_eq!(verify(b"data", &[&sig], &keys).unwrap().signature_index, 0);
        assert!(matches!(
            verify(b"datA", &[&sig], &keys),
            Err(Ed25519Error::NoValidSignature { signatures: 1, .. })
        ));
    }

    #[test]
    fn secret_key_with_wrong_public_half_is_rejected() {
        let a = generate_secret_key().unwrap();
        let b = generate_secret_key().unwrap();
        let mut raw = Vec::from(a.to_bytes());
        raw.extend_from_slice(b.verifying_key().as_bytes());
        let err = parse_secret_key(&B64.encode(raw)).unwrap_err();
        assert!(matches!(err, KeyError::SecretKeyMismatch { .. }), "{err}");
        let err = parse_secret_key(&B64.encode([1u8; 32])).unwrap_err();
        assert!(
            err.to_string().contains("expected 64 bytes, got 32"),
            "{err}"
        );
    }

    #[test]
    fn key_file_rules() {
        let k1 = format_public_key(&generate_secret_key().unwrap().verifying_key());
        let k2 = format_public_key(&generate_secret_key().unwrap().verifying_key());
        let ok = format!("{k1}\n{k2}\r\n");
        assert_eq!(parse_key_file(ok.as_bytes(), "f").unwrap().len(), 2);
        let empty_line = format!("{k1}\n\n{k2}\n");
        let err = parse_key_file(empty_line.as_bytes(), "f").unwrap_err();
        assert!(matches!(err, KeyError::EmptyLine { line: 2, .. }), "{err}");
        assert!(matches!(
            parse_key_file(b"", "f"),
            Err(KeyError::NoKeys { .. })
        ));
        let err = parse_key_file(format!("{k1}\nAAAA\n").as_bytes(), "f").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid ed25519 f at line 2: expected 32 bytes, got 3"
        );
        let err = parse_key_file(b"!!notbase64\n", "f").unwrap_err();
        assert!(
            matches!(err, KeyError::InvalidBase64 { line: Some(1), .. }),
            "{err}"
        );
    }

    #[test]
    fn small_order_key_is_rejected() {
        // The identity point (0, 1) encodes as 0x01 followed by zeros.
        let mut raw = [0u8; 32];
        raw[0] = 1;
        let err = parse_public_key_bytes(&raw).unwrap_err();
        assert!(err.to_string().contains("small order"), "{err}");
    }

    #[test]
    fn signature_length_and_order_follow_libostree() {
        let sk = generate_secret_key().unwrap();
        let keys = Ed25519Keys {
            trusted: vec![sk.verifying_key()],
            revoked: vec![],
        };
        let good = sign(b"x", &sk);
        // A valid signature before a malformed one wins...
        assert!(verify(b"x", &[&good, &[0u8; 10]], &keys).is_ok());
        // ...a malformed one reached first is an error.
        let err = verify(b"x", &[&[0u8; 10], &good], &keys).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ed25519: invalid signature at index 0: expected 64 bytes, got 10"
        );
        assert!(matches!(
            verify(b"x", &[], &keys),
            Err(Ed25519Error::NoSignatures)
        ));
        assert!(matches!(
            verify(b"x", &[&good], &Ed25519Keys::new()),
            Err(Ed25519Error::NoTrustedKeys { revoked: 0 })
        ));
    }
}
