//! `cfsync man` and `cfsync completions`: documentation generated from the clap
//! definition of the command line.

use std::path::Path;

use anyhow::{Context, Result};

use crate::Cli;

/// `cfsync completions SHELL`: the completion script on stdout.
pub(super) fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "cfsync", &mut std::io::stdout());
    Ok(())
}

/// `cfsync man`: `cfsync.1` on stdout, or every page into `dir`.
pub(super) fn man(dir: Option<&Path>) -> Result<()> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let Some(dir) = dir else {
        clap_mangen::Man::new(cmd).render(&mut std::io::stdout().lock())?;
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    let mut pages = vec![("cfsync".to_owned(), cmd.clone())];
    for sub in cmd.get_subcommands() {
        pages.push((format!("cfsync-{}", sub.get_name()), sub.clone()));
    }
    for (name, page) in pages {
        // clap names are `&'static str`; a handful of short names leak once per run.
        let page = page.name(&*Box::leak(name.clone().into_boxed_str()));
        let path = dir.join(format!("{name}.1"));
        let mut out =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        clap_mangen::Man::new(page).render(&mut out)?;
        written.push(path);
    }
    for p in written {
        println!("{}", p.display());
    }
    Ok(())
}
