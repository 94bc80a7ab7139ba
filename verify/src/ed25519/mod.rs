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
//!
//! Layout: `error.rs` ([`KeyError`], [`Ed25519Error`]), `keys.rs` (key text, key files,
//! secret keys), `keyset.rs` ([`Ed25519Keys`]: which keys are trusted or revoked),
//! `verify.rs` ([`sign`], [`verify`]).

mod error;
mod keys;
mod keyset;
mod verify;

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

pub use error::{Ed25519Error, KeyError};
pub use keys::{
    format_public_key, format_secret_key, generate_secret_key, parse_key_file, parse_public_key,
    parse_public_key_bytes, parse_secret_key, read_key_file,
};
pub use keyset::Ed25519Keys;
pub use verify::{Ed25519Verification, sign, verify};

#[cfg(test)]
mod tests {
    use super::keys::B64;
    use super::*;
    use base64::Engine as _;

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
