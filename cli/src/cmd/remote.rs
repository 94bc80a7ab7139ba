//! Remotes: the store of them (cfsync's own plus the read-only ones of `--remotes-dir`
//! and `--ostree-repo`), the source options for fetching from one, and `cfsync remote`.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use cfsync_engine::remotes::{Remote, RemoteStore};
use cfsync_engine::source::{Source, SourceOptions};
use cfsync_engine::store::AnyStore;

use super::repo::{open_or_init, state_dir};
use crate::{Cli, RemoteCmd};

/// `sopts` with what `remote`'s keys set for fetching from it: `contenturl`,
/// `tls-ca-path` (a PEM bundle of extra CA certificates for `https`, as in libostree),
/// `http2`, `http2-prior-knowledge` and `max-in-flight`.
pub(super) fn remote_source_options(
    remote: &Remote,
    mut sopts: SourceOptions,
) -> Result<SourceOptions> {
    sopts.contenturl = remote.contenturl.clone();
    sopts.apply_remote(remote)?;
    if let Some(path) = remote.extra_string("tls-ca-path")?
        && !path.is_empty()
    {
        sopts.tls_ca_path = Some(PathBuf::from(path));
    }
    Ok(sopts)
}

/// cfsync's remotes plus the read-only ones of `--remotes-dir` and `--ostree-repo`.
pub(super) fn remote_store(cli: &Cli, state_dir: PathBuf) -> Result<RemoteStore> {
    let dirs = if cli.remotes_dirs.is_empty() {
        vec![PathBuf::from(cfsync_engine::remotes::SYSTEM_REMOTES_DIR)]
    } else {
        cli.remotes_dirs.clone()
    };
    let store = RemoteStore::new(state_dir, dirs);
    match &cli.ostree_repo {
        Some(repo) if !repo.join("config").is_file() => bail!(
            "--ostree-repo {}: not an OSTree repository (it has no config file)",
            repo.display()
        ),
        Some(repo) => Ok(store.with_ostree_repo(repo)),
        None => Ok(store),
    }
}

/// `cfsync remote ...`.
pub(super) async fn remote(cli: &Cli, cmd: &RemoteCmd) -> Result<()> {
    let (store, _) = open_or_init(cli)?;
    let remotes = remote_store(cli, state_dir(&store)?)?;
    match cmd {
        RemoteCmd::Add {
            name,
            url,
            branches,
            gpg_import,
            no_gpg_verify,
            set,
            if_not_exists,
        } => {
            let mut r = Remote::new(name, url)?;
            r.branches = branches.clone();
            if *no_gpg_verify {
                r.gpg_verify = false;
            }
            for kv in set {
                let (k, v) = cfsync_engine::remotes::parse_set_argument(kv)?;
                r.apply_set(k, v)?;
            }
            let added = remotes.add(&r, *if_not_exists)?;
            if added {
                for key in gpg_import {
                    let n = cfsync_engine::trust::import_gpg_keys(&remotes, name, key)
                        .with_context(|| format!("importing {}", key.display()))?;
                    if !cli.quiet {
                        eprintln!("cfsync: imported {n} GPG key(s) for remote {name}");
                    }
                }
            }
            Ok(())
        }
        RemoteCmd::Delete { name } => {
            if !remotes.delete(name)? {
                bail!("no remote {name:?}");
            }
            Ok(())
        }
        RemoteCmd::List { json, show_urls } => {
            let list = remotes.list()?;
            if *json {
                let v: Vec<_> = list
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "name": r.name, "url": r.url, "contenturl": r.contenturl,
                            "gpg_verify": r.gpg_verify, "gpg_verify_summary": r.gpg_verify_summary,
                            "collection_id": r.collection_id, "branches": r.branches,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for r in list {
                    if *show_urls {
                        println!("{}\t{}", r.name, r.url.as_deref().unwrap_or(""));
                    } else {
                        println!("{}", r.name);
                    }
                }
            }
            Ok(())
        }
        RemoteCmd::GpgImport { name, keys } => {
            if remotes.get(name)?.is_none() {
                bail!("no remote {name:?} (see `cfsync remote list`)");
            }
            for key in keys {
                let n = cfsync_engine::trust::import_gpg_keys(&remotes, name, key)
                    .with_context(|| format!("importing {}", key.display()))?;
                println!(
                    "imported {n} GPG key(s) from {} for remote {name}",
                    key.display()
                );
            }
            Ok(())
        }
        RemoteCmd::ShowUrl { name } => {
            let r = remotes
                .get(name)?
                .ok_or_else(|| anyhow!("no remote {name:?}"))?;
            println!("{}", r.url.as_deref().unwrap_or(""));
            Ok(())
        }
        RemoteCmd::Refs { name, json } => {
            let r = remotes
                .get(name)?
                .ok_or_else(|| anyhow!("no remote {name:?}"))?;
            let url = r
                .url
                .clone()
                .ok_or_else(|| anyhow!("remote {name} has no url"))?;
            let sopts = remote_source_options(&r, SourceOptions::default())?;
            let source = Source::open(&url, sopts).with_context(|| format!("remote {name}"))?;
            let trust = with_store!(&store, |s| cfsync_engine::trust::for_remote(
                &r,
                &remotes,
                s.path()
            ))?;
            let refs = cfsync_engine::summary::remote_refs(&source, &trust).await?;
            print_refs(&refs, *json, &format!("{name}:"))
        }
    }
}

/// Prints refs as `PREFIXNAME<tab>COMMIT` lines, or as a JSON array of
/// `{"ref", "commit"}` objects (the prefix is not part of the JSON name).
pub(super) fn print_refs(
    refs: &[(String, cfsync_formats::checksum::Checksum)],
    json: bool,
    prefix: &str,
) -> Result<()> {
    if json {
        let v: Vec<_> = refs
            .iter()
            .map(|(n, c)| serde_json::json!({"ref": n, "commit": c.to_hex()}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for (n, c) in refs {
            println!("{prefix}{n}\t{c}");
        }
    }
    Ok(())
}
