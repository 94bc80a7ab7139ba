//! Writing a [`Remote`] into a key file, editing its group in place so that an unchanged
//! remote leaves the file byte for byte the same, and [`Remote::validate`].

use cfsync_formats::keyfile::{
    KeyFile, KeyFileError, escape_list, escape_value, parse_bool, unescape_list, unescape_value,
};
use cfsync_verify::policy::options::parse_gpgkeypath;

use super::SignVerify;
use super::error::RemoteError;
use super::remote::{
    DEFAULT_GPG_VERIFY, DEFAULT_GPG_VERIFY_SUMMARY, KNOWN_KEYS, Remote, path_to_string,
};
use super::validate::{parse_url_spec, validate_collection_id, validate_remote_name};

impl Remote {
    /// A key file holding only this remote (what [`RemoteStore`](super::RemoteStore) writes
    /// to `<name>.conf`).
    pub fn to_keyfile(&self) -> Result<KeyFile, RemoteError> {
        let mut kf = KeyFile::new();
        self.write_to_keyfile(&mut kf)?;
        Ok(kf)
    }

    /// Writes this remote into its group of `kf`, editing in place: keys whose raw value
    /// already reads as the field's value are left untouched (so `1` stays `1`, `a;b`
    /// stays `a;b`), changed keys keep their position, keys absent from the remote are
    /// removed, comments stay. A boolean or sign key that is absent is written only when it
    /// differs from the default, except in a new group, where `gpg-verify` is always
    /// written. Unchanged remotes therefore leave the file byte for byte the same.
    pub fn write_to_keyfile(&self, kf: &mut KeyFile) -> Result<(), RemoteError> {
        validate_remote_name(&self.name)?;
        let group = self.group_name();
        let fresh = !kf.has_group(&group);
        let kerr = |key: &str| {
            let remote = self.name.clone();
            let key = key.to_owned();
            move |_: KeyFileError| RemoteError::InvalidKey { remote, key }
        };
        kf.add_group(&group).map_err(kerr(""))?;

        // Sets `key` to `new` unless the current raw value already reads the same.
        let put = |kf: &mut KeyFile,
                   key: &str,
                   new: Option<String>,
                   same: &dyn Fn(&str) -> bool|
         -> Result<(), RemoteError> {
            match new {
                None => {
                    kf.remove_key(&group, key);
                }
                Some(raw) => match kf.get_raw(&group, key) {
                    Some(cur) if same(cur) => {}
                    _ => kf.set_raw(&group, key, &raw).map_err(kerr(key))?,
                },
            }
            Ok(())
        };

        let opt_string = |v: Option<&str>| v.map(escape_value);
        let same_string = |want: Option<String>| {
            move |cur: &str| unescape_value(cur).ok().as_deref() == want.as_deref()
        };
        put(
            kf,
            "url",
            opt_string(self.url.as_deref()),
            &same_string(self.url.clone()),
        )?;
        put(
            kf,
            "contenturl",
            opt_string(self.contenturl.as_deref()),
            &same_string(self.contenturl.clone()),
        )?;

        let branches = self.branches.clone();
        let new = (!self.branches.is_empty()).then(|| escape_list(&self.branches, ';'));
        put(kf, "branches", new, &move |cur| {
            unescape_list(cur, ';').ok().as_ref() == Some(&branches)
        })?;

        for (key, value, default, always) in [
            ("gpg-verify", self.gpg_verify, DEFAULT_GPG_VERIFY, fresh),
            (
                "gpg-verify-summary",
                self.gpg_verify_summary,
                DEFAULT_GPG_VERIFY_SUMMARY,
                false,
            ),
        ] {
            let present = kf.get_raw(&group, key).is_some();
            let new = (present || always || value != default)
                .then(|| if value { "true" } else { "false" }.to_owned());
            put(kf, key, new, &|cur| parse_bool(cur) == Some(value))?;
        }

        for (key, value) in [
            ("sign-verify", &self.sign_verify),
            ("sign-verify-summary", &self.sign_verify_summary),
        ] {
            let present = kf.get_raw(&group, key).is_some();
            let new = (present || value.is_enabled()).then(|| value.to_raw());
            put(kf, key, new, &|cur| {
                SignVerify::from_raw(cur).ok().as_ref() == Some(value)
            })?;
        }

        put(
            kf,
            "verification-ed25519-key",
            opt_string(self.ed25519_key.as_deref()),
            &same_string(self.ed25519_key.clone()),
        )?;
        let file = match &self.ed25519_file {
            Some(p) => Some(path_to_string(&self.name, "verification-ed25519-file", p)?),
            None => None,
        };
        put(
            kf,
            "verification-ed25519-file",
            opt_string(file.as_deref()),
            &same_string(file.clone()),
        )?;
        put(
            kf,
            "collection-id",
            opt_string(self.collection_id.as_deref()),
            &same_string(self.collection_id.clone()),
        )?;

        let paths = self
            .gpgkeypath
            .iter()
            .map(|p| path_to_string(&self.name, "gpgkeypath", p))
            .collect::<Result<Vec<_>, _>>()?;
        let new = (!paths.is_empty()).then(|| escape_list(&paths, ';'));
        put(kf, "gpgkeypath", new, &|cur| {
            parse_gpgkeypath(cur).ok().as_ref() == Some(&paths)
        })?;

        // Extra keys: drop the ones no longer there, set the rest raw.
        let stale: Vec<String> = kf
            .entries(&group)
            .map(|(k, _)| k)
            .filter(|k| !KNOWN_KEYS.contains(k) && !self.extra.contains_key(*k))
            .map(str::to_owned)
            .collect();
        for k in stale {
            kf.remove_key(&group, &k);
        }
        for (k, raw) in &self.extra {
            if KNOWN_KEYS.contains(&k.as_str()) {
                return Err(self.invalid(k, raw, "typed key stored in extra".to_owned()));
            }
            if kf.get_raw(&group, k) != Some(raw.as_str()) {
                kf.set_raw(&group, k, raw).map_err(|e| match e {
                    KeyFileError::InvalidValue { reason, .. } => self.invalid(k, raw, reason),
                    _ => RemoteError::InvalidKey {
                        remote: self.name.clone(),
                        key: k.clone(),
                    },
                })?;
            }
        }
        Ok(())
    }

    /// Checks what [`RemoteStore::add`](super::RemoteStore::add) requires: a valid name and
    /// a valid `url` (and `contenturl` if set), a valid collection ID, and extra keys that
    /// are valid key names with single-line raw values.
    pub fn validate(&self) -> Result<(), RemoteError> {
        validate_remote_name(&self.name)?;
        self.url_spec()?;
        if let Some(c) = &self.contenturl {
            parse_url_spec(c)?;
        }
        if let Some(id) = &self.collection_id {
            validate_collection_id(id)?;
        }
        // Writing checks the extra keys and values.
        self.to_keyfile().map(|_| ())
    }
}
