//! Trusted OpenPGP certificates, loaded the way libostree finds them.
//!
//! libostree (`_ostree_repo_gpg_prepare_verifier` and `find_keyring` in `ostree-repo.c`,
//! `ostree-gpg-verifier.c`) builds the keyring for remote `R` from:
//!
//! 1. the per-remote keyring `<repo>/R.trustedkeys.gpg`; if absent,
//!    `/etc/ostree/remotes.d/R.trustedkeys.gpg` (the remotes.d directory of the sysroot);
//!    if absent, the same lookup in the parent repo;
//! 2. every entry of the remote's `gpgkeypath` (`;` or `,` separated): a directory
//!    contributes every regular file directly inside it, a file is read as is;
//! 3. **only when no per-remote keyring was found**: the global directory
//!    `$OSTREE_GPG_HOME` or else `$datadir/ostree/trusted.gpg.d/` (normally
//!    `/usr/share/ostree/trusted.gpg.d/`), from which every regular file whose name ends
//!    in `.gpg` is read, except `trustdb.gpg` and `secring.gpg`.
//!
//! Key files may be binary OpenPGP keyrings (what `ostree remote gpg-import` writes)
//! or ASCII-armored, and may hold many certificates (several armor blocks too).
//! Certificates seen twice (e.g. a key in one file and its revocation in another) are
//! merged. Secret key material is dropped. GnuPG's keybox format (`pubring.kbx`, also
//! what `gpg --keyring x.gpg --import` creates for a new file) is not an OpenPGP keyring
//! and is refused with a hint to use `gpg --export`.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sequoia_openpgp::cert::CertParser;
use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::{Cert, KeyHandle};

/// `$datadir/ostree/trusted.gpg.d/` with `datadir=/usr/share`.
pub const GLOBAL_KEYRING_DIR: &str = "/usr/share/ostree/trusted.gpg.d";
/// The system remotes directory searched for `<remote>.trustedkeys.gpg`.
pub const REMOTES_D_DIR: &str = "/etc/ostree/remotes.d";
/// Key files larger than this are refused.
pub const MAX_KEYRING_SIZE: u64 = 64 * 1024 * 1024;

/// Errors while loading a keyring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// A key file or directory could not be read.
    #[error("cannot read gpg keyring {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A key file is larger than [`MAX_KEYRING_SIZE`].
    #[error("gpg keyring {} is {size} bytes, more than the {max} byte limit", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The data is not a sequence of OpenPGP certificates.
    #[error("invalid gpg keyring {source_name}: {reason}")]
    Parse {
        /// The file name, or a description of in-memory data.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// The file is a GnuPG keybox, which only GnuPG reads.
    #[error(
        "gpg keyring {source_name} is in GnuPG keybox format; export it with `gpg --export` to get an OpenPGP keyring"
    )]
    Keybox {
        /// The file name.
        source_name: String,
    },
    /// The data holds no certificate.
    #[error("gpg keyring {source_name} contains no keys")]
    Empty {
        /// The file name, or a description of in-memory data.
        source_name: String,
    },
}

/// A set of trusted OpenPGP certificates (public parts only).
#[derive(Clone, Default)]
pub struct Keyring {
    certs: Vec<Cert>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("fingerprints", &self.fingerprints())
            .finish()
    }
}

/// The inputs of [`Keyring::for_remote`].
#[derive(Debug, Clone)]
pub struct RemoteKeyringPaths {
    /// The local repository (`<repo>/<remote>.trustedkeys.gpg` is looked up there).
    pub repo: PathBuf,
    /// The remote's name (or its refspec name, which libostree uses when set).
    pub remote: String,
    /// The remotes.d directory, normally [`REMOTES_D_DIR`]; `None` skips it.
    pub remotes_d: Option<PathBuf>,
    /// The remote's `gpgkeypath` entries.
    pub gpgkeypath: Vec<PathBuf>,
    /// The global keyring directory, normally [`global_keyring_dir_from_env`].
    pub global_dir: Option<PathBuf>,
}

impl RemoteKeyringPaths {
    /// Paths for `remote` in `repo` with the system defaults for the rest.
    pub fn new(repo: impl Into<PathBuf>, remote: impl Into<String>) -> Self {
        Self {
            repo: repo.into(),
            remote: remote.into(),
            remotes_d: Some(PathBuf::from(REMOTES_D_DIR)),
            gpgkeypath: Vec::new(),
            global_dir: Some(global_keyring_dir_from_env()),
        }
    }
}

/// `$OSTREE_GPG_HOME` if set, else [`GLOBAL_KEYRING_DIR`] (as libostree's
/// `_ostree_gpg_verifier_add_global_keyring_dir`).
pub fn global_keyring_dir_from_env() -> PathBuf {
    std::env::var_os("OSTREE_GPG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(GLOBAL_KEYRING_DIR))
}

impl Keyring {
    /// An empty keyring (trusts nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses certificates from bytes (binary or armored, any number).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyringError> {
        let mut k = Self::new();
        k.add_bytes(bytes, "<memory>")?;
        Ok(k)
    }

    /// Reads one key file.
    pub fn from_file(path: &Path) -> Result<Self, KeyringError> {
        let mut k = Self::new();
        k.add_file(path)?;
        Ok(k)
    }

    /// Reads an ostree keyring directory such as `trusted.gpg.d` ([`Keyring::add_dir`]).
    pub fn from_dir(path: &Path) -> Result<Self, KeyringError> {
        let mut k = Self::new();
        k.add_dir(path)?;
        Ok(k)
    }

    /// Builds the keyring libostree would use for a remote (see the module docs for the
    /// order). Missing per-remote keyrings and a missing global directory are fine;
    /// a `gpgkeypath` entry that does not exist is an error, as in libostree.
    pub fn for_remote(paths: &RemoteKeyringPaths) -> Result<Self, KeyringError> {
        let mut k = Self::new();
        let name = format!("{}.trustedkeys.gpg", paths.remote);
        let mut candidates = vec![paths.repo.join(&name)];
        if let Some(d) = &paths.remotes_d {
            candidates.push(d.join(&name));
        }
        let mut found_remote_keyring = false;
        for candidate in candidates {
            match read_capped(&candidate) {
                Ok(bytes) => {
                    k.add_bytes(&bytes, &candidate.display().to_string())?;
                    found_remote_keyring = true;
                    break;
                }
                Err(KeyringError::Io { source, .. })
                    if source.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        for entry in &paths.gpgkeypath {
            k.add_key_path(entry)?;
        }
        if !found_remote_keyring
            && let Some(global) = &paths.global_dir
            && global.is_dir()
        {
            k.add_dir(global)?;
        }
        Ok(k)
    }

    /// Adds the certificates in `bytes`; `source_name` names them in errors. Returns how
    /// many certificates the data held. Fails on anything that is not a certificate
    /// sequence, or on no certificate at all.
    pub fn add_bytes(&mut self, bytes: &[u8], source_name: &str) -> Result<usize, KeyringError> {
        if bytes.get(8..12) == Some(b"KBXf".as_slice()) {
            return Err(KeyringError::Keybox {
                source_name: source_name.to_owned(),
            });
        }
        let parsed = parse_cert_bytes(bytes).map_err(|reason| KeyringError::Parse {
            source_name: source_name.to_owned(),
            reason,
        })?;
        if parsed.is_empty() {
            return Err(KeyringError::Empty {
                source_name: source_name.to_owned(),
            });
        }
        let n = parsed.len();
        for cert in parsed {
            self.insert(cert, source_name)?;
        }
        Ok(n)
    }

    /// Adds the certificates of one key file.
    pub fn add_file(&mut self, path: &Path) -> Result<usize, KeyringError> {
        let bytes = read_capped(path)?;
        self.add_bytes(&bytes, &path.display().to_string())
    }

    /// Adds an ostree keyring directory (`trusted.gpg.d` semantics,
    /// `_ostree_gpg_verifier_add_keyring_dir_at`): every regular file directly inside
    /// whose name ends in `.gpg`, except `trustdb.gpg` and `secring.gpg`, in name order.
    pub fn add_dir(&mut self, path: &Path) -> Result<usize, KeyringError> {
        let mut n = 0usize;
        for file in regular_files(path)? {
            let name = file.file_name().and_then(|s| s.to_str()).unwrap_or("");
            if !name.ends_with(".gpg") || name == "trustdb.gpg" || name == "secring.gpg" {
                continue;
            }
            n = n.saturating_add(self.add_file(&file)?);
        }
        Ok(n)
    }

    /// Adds one `gpgkeypath` entry (`_ostree_gpg_verifier_add_keyfile_path`): a directory
    /// contributes every regular file directly inside it (any name), a file is read.
    pub fn add_key_path(&mut self, path: &Path) -> Result<usize, KeyringError> {
        let meta = fs::metadata(path).map_err(|source| KeyringError::Io {
            path: path.to_owned(),
            source,
        })?;
        if meta.is_dir() {
            let mut n = 0usize;
            for file in regular_files(path)? {
                n = n.saturating_add(self.add_file(&file)?);
            }
            Ok(n)
        } else {
            self.add_file(path)
        }
    }

    fn insert(&mut self, cert: Cert, source_name: &str) -> Result<(), KeyringError> {
        let cert = cert.strip_secret_key_material();
        let fp = cert.fingerprint();
        if let Some(pos) = self.certs.iter().position(|c| c.fingerprint() == fp) {
            let existing = self.certs.swap_remove(pos);
            let merged = existing
                .merge_public(cert)
                .map_err(|e| KeyringError::Parse {
                    source_name: source_name.to_owned(),
                    reason: format!("cannot merge certificate {fp}: {e}"),
                })?;
            self.certs.push(merged);
        } else {
            self.certs.push(cert);
        }
        Ok(())
    }

    /// Number of certificates.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Whether the keyring trusts nothing.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// Primary-key fingerprints (uppercase hex), in insertion order (merges move a
    /// certificate to the end).
    pub fn fingerprints(&self) -> Vec<String> {
        self.certs
            .iter()
            .map(|c| c.fingerprint().to_hex())
            .collect()
    }

    /// Whether the keyring holds a certificate with this primary or subkey fingerprint
    /// or key ID (hex, case and spaces ignored).
    pub fn contains(&self, fingerprint_or_keyid: &str) -> bool {
        let cleaned: String = fingerprint_or_keyid
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let Ok(handle) = cleaned.parse::<KeyHandle>() else {
            return false;
        };
        self.certs
            .iter()
            .any(|c| c.keys().key_handle(handle.clone()).next().is_some())
    }

    /// The keyring as a binary OpenPGP keyring (the format `ostree remote gpg-import`
    /// writes to `<repo>/<remote>.trustedkeys.gpg`): every certificate's public parts,
    /// concatenated, readable back with [`Keyring::from_bytes`].
    pub fn to_binary(&self) -> Result<Vec<u8>, KeyringError> {
        use sequoia_openpgp::serialize::Serialize;
        let mut out = Vec::new();
        for cert in &self.certs {
            cert.serialize(&mut out).map_err(|e| KeyringError::Parse {
                source_name: cert.fingerprint().to_hex(),
                reason: format!("cannot serialize certificate: {e}"),
            })?;
        }
        Ok(out)
    }

    /// The certificates.
    pub(crate) fn certs(&self) -> &[Cert] {
        &self.certs
    }
}

fn read_capped(path: &Path) -> Result<Vec<u8>, KeyringError> {
    let io_err = |source| KeyringError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = fs::metadata(path).map_err(io_err)?;
    if meta.len() > MAX_KEYRING_SIZE {
        return Err(KeyringError::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
            max: MAX_KEYRING_SIZE,
        });
    }
    fs::read(path).map_err(io_err)
}

/// Regular files (following symlinks) directly inside `dir`, sorted by name.
fn regular_files(dir: &Path) -> Result<Vec<PathBuf>, KeyringError> {
    let io_err = |source| KeyringError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        if path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Parses every certificate in `bytes`: a binary keyring, or the armor blocks of an
/// armored file (sequoia's parser stops after the first block, so they are split here;
/// text outside the blocks is ignored, as GnuPG does).
pub(crate) fn parse_cert_bytes(bytes: &[u8]) -> Result<Vec<Cert>, String> {
    let mut out = Vec::new();
    let blocks = armor_blocks(bytes);
    if blocks.is_empty() {
        parse_certs(bytes, &mut out)?;
    } else {
        for block in blocks {
            parse_certs(block, &mut out)?;
        }
    }
    Ok(out)
}

fn parse_certs(bytes: &[u8], out: &mut Vec<Cert>) -> Result<(), String> {
    let parser = CertParser::from_bytes(bytes).map_err(|e| e.to_string())?;
    for cert in parser {
        out.push(cert.map_err(|e| e.to_string())?);
    }
    Ok(())
}

/// The `-----BEGIN PGP ...-----` … `-----END PGP ...-----` blocks of an armored file,
/// each as a byte slice; empty when the data is not armored (binary keyring).
fn armor_blocks(bytes: &[u8]) -> Vec<&[u8]> {
    const BEGIN: &[u8] = b"-----BEGIN PGP ";
    const END: &[u8] = b"-----END PGP ";
    let first_non_blank = bytes.iter().position(|b| !b.is_ascii_whitespace());
    if first_non_blank
        .and_then(|i| bytes.get(i..))
        .is_none_or(|rest| !rest.starts_with(BEGIN))
    {
        return Vec::new();
    }
    let mut blocks = Vec::new();
    let mut rest = bytes;
    while let Some(start) = find(rest, BEGIN) {
        let Some(from_begin) = rest.get(start..) else {
            break;
        };
        // Find the END marker, then the end of its line.
        let block_end = match find(from_begin, END) {
            Some(e) => {
                let after = from_begin.get(e..).unwrap_or_default();
                let line_end = after
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(after.len(), |p| p.saturating_add(1));
                e.saturating_add(line_end)
            }
            None => from_begin.len(),
        };
        let (block, tail) = from_begin.split_at(block_end.min(from_begin.len()));
        blocks.push(block);
        rest = tail;
    }
    blocks
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
