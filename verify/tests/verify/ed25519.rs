//! `cfsync_verify::ed25519` against keys and signatures made by an independent
//! implementation, OpenSSL 3 (`openssl genpkey -algorithm ed25519`,
//! `openssl pkeyutl -sign -rawin`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cfsync_verify::ed25519::{
    Ed25519Error, Ed25519Keys, KeyError, format_public_key, format_secret_key, generate_secret_key,
    parse_public_key, parse_secret_key, sign, verify,
};

use crate::util::{output, run};

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the key follows.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

struct OpensslKey {
    pem: PathBuf,
    public: [u8; 32],
    seed: [u8; 32],
}

fn openssl_key(dir: &Path, name: &str) -> OpensslKey {
    let pem = dir.join(format!("{name}.pem"));
    run(Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&pem));
    let spki = run(Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&pem))
    .stdout;
    assert_eq!(spki.len(), 44);
    assert_eq!(spki[..12], SPKI_PREFIX);
    let pkcs8 = run(Command::new("openssl")
        .args(["pkey", "-outform", "DER", "-in"])
        .arg(&pem))
    .stdout;
    assert_eq!(pkcs8.len(), 48);
    OpensslKey {
        pem,
        public: spki[12..].try_into().unwrap(),
        seed: pkcs8[16..].try_into().unwrap(),
    }
}

fn openssl_sign(dir: &Path, key: &OpensslKey, data: &[u8]) -> Vec<u8> {
    let input = dir.join("to-sign");
    fs::write(&input, data).unwrap();
    let sig = run(Command::new("openssl")
        .args(["pkeyutl", "-sign", "-rawin", "-inkey"])
        .arg(&key.pem)
        .arg("-in")
        .arg(&input))
    .stdout;
    assert_eq!(sig.len(), 64);
    sig
}

/// Whether `openssl pkeyutl -verify` accepts `sig` over `data` for the raw public key.
fn openssl_verifies(dir: &Path, public: &[u8; 32], data: &[u8], sig: &[u8]) -> bool {
    let der = dir.join("pub.der");
    let mut spki = SPKI_PREFIX.to_vec();
    spki.extend_from_slice(public);
    fs::write(&der, spki).unwrap();
    let pem = dir.join("pub.pem");
    run(Command::new("openssl")
        .args(["pkey", "-pubin", "-inform", "DER", "-in"])
        .arg(&der)
        .arg("-out")
        .arg(&pem));
    let (input, sigfile) = (dir.join("verify-in"), dir.join("verify-sig"));
    fs::write(&input, data).unwrap();
    fs::write(&sigfile, sig).unwrap();
    let out = output(
        Command::new("openssl")
            .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
            .arg(&pem)
            .arg("-in")
            .arg(&input)
            .arg("-sigfile")
            .arg(&sigfile),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success() && text.contains("Signature Verified Successfully")
}

#[test]
fn openssl_signatures_verify_with_keys_from_a_key_file() {
    let tmp = tempfile::tempdir().unwrap();
    let a = openssl_key(tmp.path(), "a");
    let b = openssl_key(tmp.path(), "b");
    let data = b"commit bytes \x00\x01\x02".repeat(50);
    let sig_b = openssl_sign(tmp.path(), &b, &data);

    // verification-ed25519-file: one base64 key per line.
    let file = tmp.path().join("trusted.ed25519");
    fs::write(
        &file,
        format!("{}\n{}\n", B64.encode(a.public), B64.encode(b.public)),
    )
    .unwrap();
    let keys = Ed25519Keys::from_remote_options(None, Some(&file))
        .unwrap()
        .unwrap();
    assert_eq!(keys.trusted.len(), 2);
    let ok = verify(&data, &[&sig_b], &keys).unwrap();
    assert_eq!(ok.key.to_bytes(), b.public);
    assert_eq!(ok.key_base64(), B64.encode(b.public));
    assert_eq!(ok.signature_index, 0);

    // Flipped data byte, flipped signature byte, wrong key: all fail.
    let mut bad = data.clone();
    bad[7] ^= 1;
    assert!(matches!(
        verify(&bad, &[&sig_b], &keys),
        Err(Ed25519Error::NoValidSignature { signatures: 1, .. })
    ));
    let mut bad_sig = sig_b.clone();
    bad_sig[10] ^= 1;
    assert!(verify(&data, &[&bad_sig], &keys).is_err());
    let only_a = Ed25519Keys::from_remote_options(Some(&B64.encode(a.public)), None)
        .unwrap()
        .unwrap();
    let err = verify(&data, &[&sig_b], &only_a).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "ed25519: none of the 1 signatures verifies with the 1 trusted keys ({})",
            B64.encode(a.public)
        )
    );
    // Several signatures: the one that verifies is reported.
    let sig_a = openssl_sign(tmp.path(), &a, &data);
    let v = verify(&data, &[&sig_b, &sig_a], &only_a).unwrap();
    assert_eq!(v.signature_index, 1);
}

#[test]
fn our_signatures_verify_with_openssl_and_match_it_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let data = b"summary bytes".repeat(33);

    let ours = generate_secret_key().unwrap();
    let sig = sign(&data, &ours);
    let public = ours.verifying_key().to_bytes();
    assert!(openssl_verifies(tmp.path(), &public, &data, &sig));
    let mut tampered = data.clone();
    tampered[0] ^= 1;
    assert!(!openssl_verifies(tmp.path(), &public, &tampered, &sig));

    // The same OpenSSL key in ostree's secret key format (seed ‖ public, base64) signs
    // identically (Ed25519 is deterministic).
    let k = openssl_key(tmp.path(), "k");
    let mut raw = k.seed.to_vec();
    raw.extend_from_slice(&k.public);
    let secret = parse_secret_key(&B64.encode(&raw)).unwrap();
    assert_eq!(secret.verifying_key().to_bytes(), k.public);
    assert_eq!(format_secret_key(&secret), B64.encode(&raw));
    assert_eq!(
        sign(&data, &secret).to_vec(),
        openssl_sign(tmp.path(), &k, &data)
    );
}

#[test]
fn revoked_keys_are_refused_even_when_trusted() {
    let tmp = tempfile::tempdir().unwrap();
    let a = openssl_key(tmp.path(), "a");
    let b = openssl_key(tmp.path(), "b");
    let data = b"data";
    let sig_a = openssl_sign(tmp.path(), &a, data);
    let sig_b = openssl_sign(tmp.path(), &b, data);

    // System layout: trusted.ed25519 + trusted.ed25519.d/*, revoked.ed25519.d/*.
    let base = tmp.path().join("etc-ostree");
    fs::create_dir_all(base.join("trusted.ed25519.d")).unwrap();
    fs::create_dir_all(base.join("revoked.ed25519.d")).unwrap();
    fs::write(
        base.join("trusted.ed25519"),
        format!("{}\n", B64.encode(a.public)),
    )
    .unwrap();
    fs::write(
        base.join("trusted.ed25519.d/vendor"),
        format!("{}\n", B64.encode(b.public)),
    )
    .unwrap();
    fs::write(
        base.join("revoked.ed25519.d/leaked"),
        format!("{}\n", B64.encode(a.public)),
    )
    .unwrap();
    let keys = Ed25519Keys::from_system_dirs(&[&base, &tmp.path().join("absent")]).unwrap();
    assert_eq!(keys.trusted.len(), 2);
    assert_eq!(keys.revoked.len(), 1);
    assert_eq!(keys.usable().count(), 1);

    let err = verify(data, &[&sig_a], &keys).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "ed25519: signature at index 0 was made by revoked key {}",
            B64.encode(a.public)
        )
    );
    assert_eq!(
        verify(data, &[&sig_a, &sig_b], &keys)
            .unwrap()
            .signature_index,
        1
    );

    // Only revoked keys: nothing can verify.
    let mut only_revoked = Ed25519Keys::new();
    only_revoked.add_trusted(parse_public_key(&B64.encode(a.public)).unwrap());
    only_revoked.add_revoked(parse_public_key(&B64.encode(a.public)).unwrap());
    assert!(matches!(
        verify(data, &[&sig_a], &only_revoked),
        Err(Ed25519Error::NoTrustedKeys { revoked: 1 })
    ));
}

#[test]
fn key_parsing_errors_name_the_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let a = openssl_key(tmp.path(), "a");
    let file = tmp.path().join("keys");
    fs::write(&file, format!("{}\n\n", B64.encode(a.public))).unwrap();
    let err = Ed25519Keys::from_remote_options(None, Some(&file)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("empty line 2 in ed25519 key file {}", file.display())
    );
    // A secret key where a public key belongs is the wrong length.
    let mut raw = a.seed.to_vec();
    raw.extend_from_slice(&a.public);
    let err = parse_public_key(&B64.encode(&raw)).unwrap_err();
    assert!(
        matches!(
            err,
            KeyError::InvalidLength {
                expected: 32,
                got: 64,
                ..
            }
        ),
        "{err:?}"
    );
    let err = Ed25519Keys::from_remote_options(None, Some(&tmp.path().join("nope"))).unwrap_err();
    assert!(matches!(err, KeyError::Io { .. }), "{err:?}");
    assert_eq!(
        format_public_key(&parse_public_key(&format!("  {}  ", B64.encode(a.public))).unwrap()),
        B64.encode(a.public)
    );
}
