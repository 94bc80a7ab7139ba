//! `cfsync inspect summary|delta|object`: look inside OSTree files without a repository.
//!
//! Every target is a path or an `http(s)://` URL (`file://` URLs are read as paths).
//! Bytes come from disk (read with a size cap) or from the engine's `HttpSource`
//! (timeouts, retries, size caps), located by [`loc`]; all parsing is `cfsync-formats`.
//! One module per kind inspected ([`summary`], [`delta`], [`object`]), with GVariant
//! values as JSON in [`gvjson`] and output helpers in [`out`]. The JSON printed with
//! `--json` is documented field by field in `docs/json.md`.

use anyhow::Result;

use crate::InspectCmd;

mod delta;
mod gvjson;
mod loc;
mod object;
mod out;
mod summary;

/// Runs an `inspect` subcommand.
pub(super) async fn run(cmd: &InspectCmd) -> Result<()> {
    match cmd {
        InspectCmd::Summary { target, json } => summary::summary(target, *json).await,
        InspectCmd::Delta { target, json } => delta::delta(target, *json).await,
        InspectCmd::Object { target, json } => object::object(target, *json).await,
    }
}
