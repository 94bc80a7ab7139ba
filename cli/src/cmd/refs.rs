//! `cfsync refs`: lists the repository's refs, or deletes one.

use anyhow::{Result, bail};
use cfsync_engine::store::AnyStore;

use super::log;
use super::repo::{open, state_dir};
use crate::{Cli, RefsArgs};

/// Lists the refs (or, with `--delete`, deletes one).
pub(super) fn refs(cli: &Cli, j: &RefsArgs) -> Result<()> {
    let store = open(cli)?;
    if let Some(name) = &j.delete {
        if !with_store!(&store, |s| s.delete_ref(name))? {
            bail!("no ref {name:?} in the repository (see `cfsync refs`)");
        }
        log::forget_origin(&state_dir(&store)?, name);
        if !cli.quiet && !j.json {
            eprintln!("cfsync: deleted ref {name}; `cfsync gc` removes what only it reached");
        }
        if j.json {
            let v = serde_json::json!({ "deleted": name });
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        return Ok(());
    }
    let refs = with_store!(&store, |s| s.list_refs())?;
    super::remote::print_refs(&refs, j.json, "")
}
