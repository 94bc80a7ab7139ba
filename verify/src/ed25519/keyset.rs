//! The set of keys a verification may use: trusted and revoked, from a remote's options
//! or the system directories.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::VerifyingKey;
use super::error::KeyError;
use super::keys::{parse_public_key, read_key_file};

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
    /// each base directory (normally [`SYSTEM_KEY_DIRS`](super::SYSTEM_KEY_DIRS)),
    /// `trusted.ed25519` and every entry of `trusted.ed25519.d/`, and likewise
    /// `revoked.ed25519{,.d/*}` for revoked keys. Missing files and directories are
    /// skipped; unreadable or malformed files are errors.
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
