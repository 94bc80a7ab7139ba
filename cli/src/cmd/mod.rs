//! The implementation of each subcommand: [`run`] dispatches a parsed command line to
//! the module of its command group. Shared by several of them: [`repo`] (opening the
//! repository), [`resolve`] (naming commits) and [`remote`] (remotes and fetching from
//! them).

use anyhow::Result;
use cfsync_engine::store::AnyStore;

use crate::{Cli, Command};

/// Runs `f` with the concrete store type.
macro_rules! with_store {
    ($store:expr, |$s:ident| $body:expr) => {
        match $store {
            AnyStore::Sha256($s) => $body,
            AnyStore::Sha512($s) => $body,
        }
    };
}

mod checkout;
mod diff;
mod fsck;
mod gc;
mod inspect;
mod log;
mod man;
mod mount;
pub(crate) mod publish;
mod pull;
mod refs;
mod remote;
mod repo;
mod resolve;
mod show;
pub(crate) mod sign;
mod tree;

/// Dispatches a parsed command line.
pub(crate) async fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Init => repo::init(&cli),
        Command::Remote(r) => remote::remote(&cli, r).await,
        Command::Pull(a) => pull::run(&cli, a).await,
        Command::Refs(j) => refs::refs(&cli, j),
        Command::Log(a) => {
            let store = repo::open(&cli)?;
            with_store!(&store, |s| log::log(
                &cli,
                s,
                &a.r#ref,
                a.depth,
                a.from.as_deref(),
                a.json
            )
            .await)
        }
        Command::Diff(a) => {
            let store = repo::open(&cli)?;
            with_store!(&store, |s| diff::diff(s, &a.from, &a.to, a.stats, a.json))
        }
        Command::Checkout(a) => {
            let store = repo::open(&cli)?;
            with_store!(&store, |s| checkout::checkout(
                s,
                &a.r#ref,
                &a.dir,
                a.user_mode,
                a.json
            ))
        }
        Command::Completions(a) => man::completions(a.shell),
        Command::Man(a) => man::man(a.dir.as_deref()),
        Command::Show(a) => {
            let store = repo::open(&cli)?;
            with_store!(&store, |s| show::show(
                &cli,
                s,
                &a.r#ref,
                a.remote.as_deref(),
                a.json
            ))
        }
        Command::Ls(a) => {
            let store = repo::open(&cli)?;
            with_store!(&store, |s| tree::ls(
                s,
                &a.r#ref,
                &a.path,
                a.recursive,
                a.json
            ))
        }
        Command::Cat(a) => {
            let store = repo::open(&cli)?;
            with_store!(&store, |s| tree::cat(s, &a.r#ref, &a.path))
        }
        Command::Mount(a) => {
            let store = repo::open(&cli)?;
            with_store!(&store, |s| mount::mount(s, &a.r#ref, &a.dir))
        }
        Command::Fsck(j) => {
            let store = repo::open(&cli)?;
            with_store!(&store, |s| fsck::fsck(s, j.json).await)
        }
        Command::Gc(a) => {
            let store = repo::open(&cli)?;
            with_store!(&store, |s| gc::gc(s, a.dry_run, a.json))
        }
        Command::Inspect(i) => inspect::run(i).await,
        Command::Delta(crate::DeltaCmd::Generate(a)) => publish::delta::run(a, cli.quiet),
        Command::Delta(d) => pull::delta(&cli, d).await,
        Command::Demo(a) => crate::demo::run(a, cli.quiet).await,
        Command::Sign(s) => sign::run(s, cli.quiet),
        Command::Summary(s) => publish::summary::run(s, cli.quiet),
    }
}
