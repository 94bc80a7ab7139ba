//! [`RemoteStore`]: cfsync's own remotes (one file each) read beside the read-only remotes
//! of extra directories and of an OSTree repository's `config`; add, replace, set, delete.

use std::collections::BTreeSet;
use std::io;
use std::path::PathBuf;

use super::error::RemoteError;
use super::files::{
    RemoteOrigin, collect_source, conf_files, load_keyfile, remotes_in, remove_if_exists, sync_dir,
    write_atomic,
};
use super::remote::{Remote, remote_group_name};
use super::validate::validate_remote_name;

/// The remotes cfsync knows: its own, one file per remote at
/// `<state_dir>/remotes.d/<name>.conf` (libostree's `remotes.d` layout and syntax, so such a
/// file also works in `/etc/ostree/remotes.d`), then read-only ones from an OSTree
/// repository's `config` (if given) and from extra directories, in that order of
/// precedence: on a name clash the first source wins. Within one source a name defined
/// twice is an error, as in libostree. In a directory every regular `*.conf` file is read
/// (sorted by file name) and every `[remote "NAME"]` group in it counts; a missing
/// directory is empty.
///
/// Writes go to a temporary file in the same directory (not ending in `.conf`), which is
/// synced and then renamed (or, for [`RemoteStore::add`], hard-linked so an existing file
/// is never replaced) over the target; the directory is synced after.
#[derive(Debug, Clone)]
pub struct RemoteStore {
    state_dir: PathBuf,
    extra_dirs: Vec<PathBuf>,
    ostree_repo: Option<PathBuf>,
}

impl RemoteStore {
    /// A store whose own remotes live in `<state_dir>/remotes.d`, with read-only remotes
    /// from `extra_dirs` (in order of precedence; pass `vec![SYSTEM_REMOTES_DIR.into()]`
    /// for libostree's system directory, [`super::SYSTEM_REMOTES_DIR`]).
    pub fn new(state_dir: impl Into<PathBuf>, extra_dirs: Vec<PathBuf>) -> Self {
        RemoteStore {
            state_dir: state_dir.into(),
            extra_dirs,
            ostree_repo: None,
        }
    }

    /// Also reads the remotes of the OSTree repository at `repo` (its `config` file, which
    /// must exist), after cfsync's own and before the extra directories.
    pub fn with_ostree_repo(mut self, repo: impl Into<PathBuf>) -> Self {
        self.ostree_repo = Some(repo.into());
        self
    }

    /// `<state_dir>/remotes.d`, where cfsync's own remotes are kept.
    pub fn remotes_dir(&self) -> PathBuf {
        self.state_dir.join("remotes.d")
    }

    /// `<state_dir>/remotes.d/<name>.conf`, the file [`RemoteStore::add`] writes.
    pub fn remote_path(&self, name: &str) -> Result<PathBuf, RemoteError> {
        validate_remote_name(name)?;
        Ok(self.remotes_dir().join(format!("{name}.conf")))
    }

    /// `<state_dir>/remotes.d/<name>.trustedkeys.gpg`: the remote's GPG keyring, as
    /// libostree keeps `<repo>/<name>.trustedkeys.gpg`. [`RemoteStore::delete`] removes it.
    pub fn keyring_path(&self, name: &str) -> Result<PathBuf, RemoteError> {
        validate_remote_name(name)?;
        Ok(self.remotes_dir().join(format!("{name}.trustedkeys.gpg")))
    }

    /// `<state_dir>/remotes.d/<name>.ed25519`: a place for the remote's ed25519 public keys
    /// (base64, one per line, the `verification-ed25519-file` format).
    /// [`RemoteStore::delete`] removes it.
    pub fn ed25519_keys_path(&self, name: &str) -> Result<PathBuf, RemoteError> {
        validate_remote_name(name)?;
        Ok(self.remotes_dir().join(format!("{name}.ed25519")))
    }

    fn local_remotes(&self) -> Result<Vec<(Remote, RemoteOrigin)>, RemoteError> {
        collect_source(&conf_files(&self.remotes_dir())?, RemoteOrigin::Local)
    }

    fn sources(&self) -> Result<Vec<Vec<(Remote, RemoteOrigin)>>, RemoteError> {
        let mut sources = vec![self.local_remotes()?];
        if let Some(repo) = &self.ostree_repo {
            let config = repo.join("config");
            let kf = load_keyfile(&config)?.ok_or_else(|| RemoteError::Io {
                op: "read",
                path: config.clone(),
                source: io::Error::from(io::ErrorKind::NotFound),
            })?;
            let remotes = remotes_in(&kf, &config)?;
            let mut source: Vec<(Remote, RemoteOrigin)> = Vec::new();
            for r in remotes {
                // A key file merges repeated groups, so names are unique here.
                source.push((r, RemoteOrigin::OstreeRepoConfig(config.clone())));
            }
            sources.push(source);
        }
        for dir in &self.extra_dirs {
            sources.push(collect_source(&conf_files(dir)?, RemoteOrigin::ConfigDir)?);
        }
        Ok(sources)
    }

    /// Every remote with where it comes from, sorted by name; on a name clash the
    /// first source (cfsync's own, then the OSTree repository, then the extra directories
    /// in order) wins.
    pub fn list_with_origin(&self) -> Result<Vec<(Remote, RemoteOrigin)>, RemoteError> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for source in self.sources()? {
            for (r, o) in source {
                if seen.insert(r.name.clone()) {
                    out.push((r, o));
                }
            }
        }
        out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok(out)
    }

    /// Every remote, sorted by name (see [`RemoteStore::list_with_origin`]).
    pub fn list(&self) -> Result<Vec<Remote>, RemoteError> {
        Ok(self
            .list_with_origin()?
            .into_iter()
            .map(|(r, _)| r)
            .collect())
    }

    /// The remote called `name` and where it comes from.
    pub fn locate(&self, name: &str) -> Result<Option<(Remote, RemoteOrigin)>, RemoteError> {
        for source in self.sources()? {
            if let Some(found) = source.into_iter().find(|(r, _)| r.name == name) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The remote called `name`.
    pub fn get(&self, name: &str) -> Result<Option<Remote>, RemoteError> {
        Ok(self.locate(name)?.map(|(r, _)| r))
    }

    /// Adds a cfsync remote as `<state_dir>/remotes.d/<name>.conf` after
    /// [`Remote::validate`]. If a remote of that name exists in any source, returns
    /// `Ok(false)` when `if_not_exists` is set (nothing is written, as
    /// `ostree remote add --if-not-exists` does) and [`RemoteError::AlreadyExists`]
    /// otherwise. Returns `Ok(true)` when the file was written.
    pub fn add(&self, remote: &Remote, if_not_exists: bool) -> Result<bool, RemoteError> {
        remote.validate()?;
        if let Some((_, origin)) = self.locate(&remote.name)? {
            if if_not_exists {
                return Ok(false);
            }
            return Err(RemoteError::AlreadyExists {
                name: remote.name.clone(),
                path: origin.path().to_owned(),
            });
        }
        let path = self.remote_path(&remote.name)?;
        let data = remote.to_keyfile()?.to_data();
        match write_atomic(&path, data.as_bytes(), false) {
            Err(RemoteError::Io { source, .. })
                if source.kind() == io::ErrorKind::AlreadyExists =>
            {
                if if_not_exists {
                    Ok(false)
                } else {
                    Err(RemoteError::AlreadyExists {
                        name: remote.name.clone(),
                        path,
                    })
                }
            }
            Err(e) => Err(e),
            Ok(()) => Ok(true),
        }
    }

    /// Writes `remote` as a cfsync remote whether or not it exists (`ostree remote add
    /// --force`): an existing cfsync definition is edited in place (comments and unknown
    /// groups of its file stay), otherwise `<name>.conf` is written. A read-only remote of
    /// the same name is shadowed, not changed.
    pub fn replace(&self, remote: &Remote) -> Result<(), RemoteError> {
        remote.validate()?;
        let path = match self
            .local_remotes()?
            .into_iter()
            .find(|(r, _)| r.name == remote.name)
        {
            Some((_, origin)) => origin.path().to_owned(),
            None => self.remote_path(&remote.name)?,
        };
        let mut kf = load_keyfile(&path)?.unwrap_or_default();
        remote.write_to_keyfile(&mut kf)?;
        write_atomic(&path, kf.to_data().as_bytes(), true)
    }

    /// Applies `--set KEY=VALUE` to a cfsync remote (see [`Remote::apply_set`]) and writes
    /// its file, editing the group in place. Fails with [`RemoteError::ReadOnly`] for a
    /// remote that exists only in a read-only source and [`RemoteError::NotFound`] if there
    /// is none. Returns the updated remote.
    pub fn set(&self, name: &str, key: &str, value: &str) -> Result<Remote, RemoteError> {
        validate_remote_name(name)?;
        let Some((_, origin)) = self.locate(name)? else {
            return Err(RemoteError::NotFound {
                name: name.to_owned(),
            });
        };
        if !origin.is_writable() {
            return Err(RemoteError::ReadOnly {
                name: name.to_owned(),
                path: origin.path().to_owned(),
            });
        }
        let path = origin.path().to_owned();
        let mut kf = load_keyfile(&path)?.ok_or_else(|| RemoteError::NotFound {
            name: name.to_owned(),
        })?;
        let mut remote = Remote::from_keyfile_group(&kf, &remote_group_name(name))
            .map_err(|e| RemoteError::InvalidConfig {
                path: path.clone(),
                source: Box::new(e),
            })?
            .ok_or_else(|| RemoteError::NotFound {
                name: name.to_owned(),
            })?;
        remote.apply_set(key, value)?;
        remote.validate()?;
        remote.write_to_keyfile(&mut kf)?;
        write_atomic(&path, kf.to_data().as_bytes(), true)?;
        Ok(remote)
    }

    /// Deletes a cfsync remote: its group (and its file once no group is left), its
    /// keyring ([`RemoteStore::keyring_path`]) and its ed25519 key file, as libostree's
    /// remote delete also removes the keyring. Returns `Ok(false)` if no remote of that
    /// name exists anywhere and [`RemoteError::ReadOnly`] if it exists only in a read-only
    /// source. A read-only remote that the deleted one shadowed becomes visible again.
    pub fn delete(&self, name: &str) -> Result<bool, RemoteError> {
        validate_remote_name(name)?;
        let local = self
            .local_remotes()?
            .into_iter()
            .find(|(r, _)| r.name == name);
        let Some((_, origin)) = local else {
            return match self.locate(name)? {
                Some((_, origin)) => Err(RemoteError::ReadOnly {
                    name: name.to_owned(),
                    path: origin.path().to_owned(),
                }),
                None => Ok(false),
            };
        };
        let path = origin.path().to_owned();
        if let Some(mut kf) = load_keyfile(&path)? {
            kf.remove_group(&remote_group_name(name));
            if kf.groups().next().is_none() {
                remove_if_exists(&path)?;
                if let Some(dir) = path.parent() {
                    sync_dir(dir)?;
                }
            } else {
                write_atomic(&path, kf.to_data().as_bytes(), true)?;
            }
        }
        remove_if_exists(&self.keyring_path(name)?)?;
        remove_if_exists(&self.ed25519_keys_path(name)?)?;
        Ok(true)
    }
}
