//! `cfsync show REF [--remote NAME]`: a stored commit's metadata, signatures and image.
//!
//! The signatures are those of the commit's detached metadata as pulled. They were
//! checked at pull time when the remote asked for it; `--remote NAME` checks the GPG
//! signatures again now, with that remote's keyring (keys imported for it, its
//! `gpgkeypath`, the system keyrings), and reports each one.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use cfsync_engine::composefs::fsverity::FsVerityHashValue;
use cfsync_engine::store::{ObjectLookup, Store};
use cfsync_formats::commit::CommitRef;
use cfsync_formats::metadata::{GPGSIGS, MetadataRef, SIGN_ED25519};
use cfsync_verify::gpg::{Keyring, RemoteKeyringPaths, SignatureStatus};

use crate::Cli;

/// The GPG keyring `remote` verifies with (the paths `trust::for_remote` uses).
fn keyring_of<O: FsVerityHashValue>(cli: &Cli, store: &Store<O>, remote: &str) -> Result<Keyring> {
    let remotes = super::remote::remote_store(cli, store.state_dir()?)?;
    let r = remotes
        .get(remote)?
        .ok_or_else(|| anyhow!("no remote {remote:?} (see `cfsync remote list`)"))?;
    let own = remotes.keyring_path(&r.name)?;
    let paths = RemoteKeyringPaths {
        repo: own
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default(),
        remote: r.name.clone(),
        remotes_d: Some(cfsync_engine::remotes::SYSTEM_REMOTES_DIR.into()),
        gpgkeypath: r.gpgkeypath.clone(),
        global_dir: Some(cfsync_verify::gpg::global_keyring_dir_from_env()),
    };
    Keyring::for_remote(&paths).with_context(|| format!("loading the GPG keys of remote {remote}"))
}

fn unix(t: Option<SystemTime>) -> Option<u64> {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
}

/// `cfsync show REF`.
pub(crate) fn show<O: FsVerityHashValue>(
    cli: &Cli,
    store: &Store<O>,
    name: &str,
    remote: Option<&str>,
    json: bool,
) -> Result<()> {
    let (commit, stream) = super::resolve::load_named(store, name)?;
    let (bytes, _) = stream
        .lookup(&commit)
        .ok_or_else(|| anyhow!("commit {commit}: commit object missing from its stream"))?;
    let c = CommitRef::from_bytes(bytes).with_context(|| format!("commit {commit}"))?;
    let image = stream.image().map(|i| i.to_hex());
    let ts = c.timestamp();
    let date = cfsync_verify::format_unix_utc(i64::try_from(ts).unwrap_or(i64::MAX));
    let meta_bytes = cfsync_engine::summary::load_commitmeta(store, &commit)?;
    let detached = meta_bytes
        .as_deref()
        .map(MetadataRef::from_bytes)
        .transpose()
        .with_context(|| format!("detached metadata of commit {commit}"))?;
    let gpgsigs = detached
        .as_ref()
        .map(|m| m.get_bytes_array(GPGSIGS))
        .transpose()?
        .flatten()
        .unwrap_or_default();
    let ed25519 = detached
        .as_ref()
        .map(|m| m.get_bytes_array(SIGN_ED25519))
        .transpose()?
        .flatten()
        .map_or(0, |v| v.len());
    let keyring = match remote {
        Some(r) => keyring_of(cli, store, r)?,
        None => Keyring::new(),
    };
    let report = if gpgsigs.is_empty() {
        Vec::new()
    } else {
        cfsync_verify::gpg::inspect_detached(bytes, &gpgsigs, &keyring, SystemTime::now())
            .signatures
    };
    let sigs: Vec<serde_json::Value> = report
        .iter()
        .map(|s| {
            let checked = remote.is_some();
            let status = match (&s.status, checked) {
                // Without a keyring every key is unknown: say so plainly.
                (SignatureStatus::UnknownKey, false) => {
                    "not checked (pass --remote NAME to verify)".to_owned()
                }
                (st, _) => st.to_string(),
            };
            serde_json::json!({
                "type": "gpg",
                "key": s.fingerprint,
                "primary_key": s.primary_fingerprint,
                "created": unix(s.created),
                "status": status,
                "valid": checked.then_some(s.is_valid()),
            })
        })
        .collect();
    let metadata_keys: Vec<&str> = c
        .metadata()
        .iter()
        .filter_map(|kv| kv.ok().map(|(k, _)| k))
        .collect();
    if json {
        let v = serde_json::json!({
            "ref": store.resolve_ref(name)?.map(|_| name),
            "commit": commit.to_hex(),
            "image": image,
            "parent": c.parent().map(|p| p.to_hex()),
            "subject": c.subject(),
            "body": c.body(),
            "timestamp": ts,
            "date": date,
            "version": c.version().ok().flatten(),
            "root_tree": c.root_contents().to_hex(),
            "root_meta": c.root_metadata().to_hex(),
            "objects": stream.len(),
            "metadata_keys": metadata_keys,
            "ref_binding": c.ref_binding().ok().flatten(),
            "collection_binding": c.collection_binding().ok().flatten(),
            "endoflife": c.endoflife().ok().flatten(),
            "gpg_signatures": gpgsigs.len(),
            "ed25519_signatures": ed25519,
            "signatures": sigs,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("commit {commit}");
        if let Some(p) = c.parent() {
            println!("parent {p}");
        }
        println!("image {}", image.as_deref().unwrap_or("(none)"));
        println!("date {date}");
        if let Some(v) = c.version().ok().flatten() {
            println!("version {v}");
        }
        if let Some(e) = c.endoflife().ok().flatten() {
            println!("end of life {e}");
        }
        println!("objects {}", stream.len());
        println!("metadata {}", metadata_keys.join(" "));
        println!("gpg signatures {}", gpgsigs.len());
        for s in &sigs {
            println!(
                "  gpg key {} made {}: {}",
                s["key"].as_str().unwrap_or("(no issuer)"),
                s["created"]
                    .as_u64()
                    .map(|t| cfsync_verify::format_unix_utc(t as i64))
                    .unwrap_or_else(|| "(unknown)".into()),
                s["status"].as_str().unwrap_or("")
            );
        }
        if ed25519 > 0 {
            println!("ed25519 signatures {ed25519}");
        }
        println!();
        println!("    {}", c.subject());
        if !c.body().is_empty() {
            println!();
            for l in c.body().lines() {
                println!("    {l}");
            }
        }
    }
    if remote.is_some() && !report.is_empty() && !report.iter().any(|s| s.is_valid()) {
        bail!(
            "no valid GPG signature on commit {commit} with the keys of remote {}",
            remote.unwrap_or("")
        );
    }
    Ok(())
}
