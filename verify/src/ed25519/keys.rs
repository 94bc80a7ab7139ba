//! Keys as text: base64 public keys, key files (one key per line, size-capped) and
//! secret keys in ostree's seed ‖ public-key layout.

use std::fs;
use std::path::Path;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

use super::error::KeyError;
use super::{MAX_KEY_FILE_SIZE, PUBLIC_KEY_LEN, SECRET_KEY_LEN, SigningKey, VerifyingKey};

/// Base64 as GLib's `g_base64_decode` accepts it in practice: standard alphabet,
/// padding optional.
pub(super) const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

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
