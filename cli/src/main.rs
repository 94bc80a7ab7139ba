//! The `cfsync` command line: what users touch.
//!
//! Data goes to stdout (human text, or JSON with `--json`); progress and logs go to
//! stderr. Exit codes ([`EXIT_CODES`]): 0 success, 1 failure (the message says what
//! failed and what to do; `fsck` finding damage is a failure), 2 bad usage (from clap).
// One `unsafe` call only: the allocator setting in `tune_allocator`.
#![deny(unsafe_code)]

mod cmd;
mod demo;
mod progress;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The exit codes, as `--help` and the man page state them.
pub const EXIT_CODES: &str = "Exit codes: 0 success; 1 failure (the message on stderr says what failed and what to do; \
`fsck` finding damage is a failure); 2 bad usage. Data goes to stdout (JSON with --json), \
progress and logs to stderr (RUST_LOG=debug for more).";

/// Pull OSTree commits into a composefs repository, verified and mountable.
#[derive(Debug, Parser)]
#[command(name = "cfsync", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// The composefs repository (created on first use). Default: $CFSYNC_REPO.
    #[arg(long, global = true, env = "CFSYNC_REPO")]
    pub repo: Option<PathBuf>,
    /// fs-verity digest for a new repository (sha256 or sha512; cfsctl's default is sha512).
    #[arg(long, global = true, default_value = "sha512")]
    pub hash: String,
    /// Directories of read-only ostree remote files (default /etc/ostree/remotes.d).
    #[arg(long = "remotes-dir", global = true)]
    pub remotes_dirs: Vec<PathBuf>,
    /// Also read the remotes of this OSTree repository's `config`, read-only (e.g.
    /// /ostree/repo, or flatpak's /var/lib/flatpak/repo). Their GPG keyrings
    /// (`REPO/NAME.trustedkeys.gpg`) are not read: import them with `remote gpg-import`.
    #[arg(long = "ostree-repo", global = true, value_name = "PATH")]
    pub ostree_repo: Option<PathBuf>,
    /// No progress output.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the repository (pull does this on first use too).
    Init,
    /// Manage remotes (ostree's keyfile format, kept in the repository).
    #[command(subcommand)]
    Remote(RemoteCmd),
    /// Pull a ref (or a commit) from a remote name, URL or local repository path.
    Pull(PullArgs),
    /// List the refs in the repository (or delete one).
    Refs(RefsArgs),
    /// Show a ref's history, newest first (stored commits; --depth fetches parents).
    Log(LogArgs),
    /// Show a ref's commit: metadata, signatures, image id.
    Show(ShowArgs),
    /// List a directory of a ref's tree.
    Ls(LsArgs),
    /// Print a file of a ref's tree.
    Cat(CatArgs),
    /// Compare two stored commits: modified, removed and added files.
    Diff(DiffArgs),
    /// Write a ref's tree to a new directory (modes, symlinks, xattrs, owners as root).
    Checkout(CheckoutArgs),
    /// Mount a ref's composefs image (read-only) at a directory.
    Mount(MountArgs),
    /// Check the repository: objects, streams, images.
    Fsck(JsonArg),
    /// Remove objects no ref reaches.
    Gc(GcArgs),
    /// Look inside OSTree files without a repository.
    #[command(subcommand)]
    Inspect(InspectCmd),
    /// Static deltas on disk (offline and USB updates).
    #[command(subcommand)]
    Delta(DeltaCmd),
    /// Pull a bundled, signed demo repository over loopback HTTP, then update through a
    /// static delta, and show what it cost.
    Demo(DemoArgs),
    /// Sign commits and summaries for publishing (GPG and ostree's ed25519), and make
    /// ed25519 keys.
    #[command(subcommand)]
    Sign(cmd::sign::SignCmd),
    /// Write an OSTree repository's summary for publishing (as `ostree summary -u`).
    #[command(subcommand)]
    Summary(cmd::publish::summary::SummaryCmd),
    /// Print a shell completion script (e.g. `cfsync completions bash >
    /// /etc/bash_completion.d/cfsync`).
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one page per command into a directory.
    Man(ManArgs),
}

/// `refs` arguments.
#[derive(Debug, Args)]
pub struct RefsArgs {
    /// Delete this ref (its objects stay until `cfsync gc`).
    #[arg(long, value_name = "REF")]
    pub delete: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `log` arguments.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// A ref or a commit checksum.
    pub r#ref: String,
    /// Show at most this many parents, fetching the commit objects of parents that are
    /// not stored from --from (each checked against its checksum; nothing is kept).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Where to fetch missing parent commits: a remote name, URL or repository path
    /// (default: where the ref was last pulled from).
    #[arg(long, value_name = "SOURCE")]
    pub from: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `diff` arguments.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old side: a ref or a commit checksum.
    pub from: String,
    /// The new side: a ref or a commit checksum.
    pub to: String,
    /// Also print totals (files and bytes modified, removed, added).
    #[arg(long)]
    pub stats: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `checkout` arguments.
#[derive(Debug, Args)]
pub struct CheckoutArgs {
    /// A ref or a commit checksum.
    pub r#ref: String,
    /// The directory to create (or an empty one).
    pub dir: PathBuf,
    /// Write neither owners nor xattrs (as `ostree checkout -U`).
    #[arg(long = "user-mode", short = 'U')]
    pub user_mode: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `completions` arguments.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// `man` arguments.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `cfsync.1` and `cfsync-COMMAND.1` for every command into this directory
    /// instead of printing `cfsync.1`.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// `--json`.
#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Remote subcommands.
#[derive(Debug, Subcommand)]
pub enum RemoteCmd {
    /// Add a remote.
    Add {
        /// Remote name.
        name: String,
        /// URL (http, https, file, or mirrorlist=URL).
        url: String,
        /// Default branches.
        branches: Vec<String>,
        /// Import GPG keys (armored or binary) into the remote's keyring.
        #[arg(long = "gpg-import")]
        gpg_import: Vec<PathBuf>,
        /// Do not require GPG signatures on commits (gpg-verify=false).
        #[arg(long = "no-gpg-verify")]
        no_gpg_verify: bool,
        /// Set an option, as `ostree remote add --set` (e.g. gpg-verify-summary=true).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Succeed without change when the remote exists.
        #[arg(long = "if-not-exists")]
        if_not_exists: bool,
    },
    /// Delete a remote.
    Delete {
        /// Remote name.
        name: String,
    },
    /// List remotes.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Show URLs.
        #[arg(long, short = 'u')]
        show_urls: bool,
    },
    /// Import GPG keys (armored or binary, e.g. a `NAME.trustedkeys.gpg` keyring that
    /// `ostree` or `flatpak` wrote) for a remote, as `ostree remote gpg-import`.
    GpgImport {
        /// Remote name (any remote, also one from --remotes-dir).
        name: String,
        /// Key files.
        #[arg(required = true)]
        keys: Vec<PathBuf>,
    },
    /// Print a remote's URL.
    ShowUrl {
        /// Remote name.
        name: String,
    },
    /// List a remote's refs from its summary.
    Refs {
        /// Remote name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `pull` arguments.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Remote name, URL or local repository path.
    pub source: String,
    /// The ref to pull (and record).
    pub r#ref: String,
    /// Never use static deltas.
    #[arg(long = "no-deltas")]
    pub no_deltas: bool,
    /// Pull this commit and record it under REF.
    #[arg(long)]
    pub commit: Option<String>,
    /// Print what would be downloaded; download no content.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Accept a commit older than the ref's current one.
    #[arg(long = "allow-downgrade")]
    pub allow_downgrade: bool,
    /// At most this many requests in flight per host (default: adaptive, from 8 up to
    /// 64 over HTTP/1.1 and 128 over HTTP/2 while throughput grows; the remote option
    /// `max-in-flight` and CFSYNC_HTTP_MAX_IN_FLIGHT cap it too).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Read refs from this subsummary when the remote publishes `summary.idx` (default:
    /// the remote's `subsummary` option, else the flatpak ref's architecture, else the
    /// only subsummary, else this machine's architecture).
    #[arg(long, value_name = "NAME")]
    pub subsummary: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `show` arguments.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A ref or a commit checksum.
    pub r#ref: String,
    /// Check the commit's GPG signatures now with this remote's keys (exit 1 unless one
    /// is valid).
    #[arg(long)]
    pub remote: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `ls` arguments.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// A ref or a commit checksum.
    pub r#ref: String,
    /// A directory in the tree.
    #[arg(default_value = "/")]
    pub path: String,
    /// Recurse.
    #[arg(long, short = 'R')]
    pub recursive: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cat` arguments.
#[derive(Debug, Args)]
pub struct CatArgs {
    /// A ref or a commit checksum.
    pub r#ref: String,
    /// A file in the tree.
    pub path: String,
}

/// `mount` arguments.
#[derive(Debug, Args)]
pub struct MountArgs {
    /// A ref or a commit checksum.
    pub r#ref: String,
    /// Where to mount.
    pub dir: PathBuf,
}

/// `gc` arguments.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Only report what would be removed.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `inspect` subcommands.
#[derive(Debug, Subcommand)]
pub enum InspectCmd {
    /// A summary file (path or URL).
    Summary {
        /// Path or URL of a `summary` file, or of a repository.
        target: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A static delta (superblock path or URL, or its directory).
    Delta {
        /// Path or URL of a superblock or delta directory.
        target: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// An OSTree object file (path or URL; the type comes from the extension).
    Object {
        /// Path or URL of an object.
        target: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `delta` subcommands.
#[derive(Debug, Subcommand)]
pub enum DeltaCmd {
    /// Apply a self-contained delta directory (`ostree static-delta generate
    /// --filename=DIR`) and record its commit under REF. A delta from a commit needs
    /// that commit in the repository.
    Apply {
        /// The delta directory (holding `superblock` and the parts `0`, `1`, …).
        dir: PathBuf,
        /// The ref to record the delta's commit under.
        r#ref: String,
        /// Verify the commit with this remote's keys and policy (default: no signature
        /// check, as for a plain path).
        #[arg(long)]
        remote: Option<String>,
        /// Accept a commit older than the ref's current one.
        #[arg(long = "allow-downgrade")]
        allow_downgrade: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Generate a static delta in an OSTree repository (as `ostree static-delta
    /// generate`), on every core.
    Generate(cmd::publish::delta::GenerateArgs),
}

/// `demo` arguments.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo repository here instead of a temporary directory.
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Buffers at least this large get their own mapping from glibc's malloc, returned to
/// the system when freed (see [`tune_allocator`]).
const MMAP_THRESHOLD: i32 = 256 * 1024;

/// Keeps peak memory proportional to what is live. By default glibc raises its mmap
/// threshold each time a large block is freed (up to 32 MiB), after which multi-MB
/// buffers (delta read sources, bspatch results, payload tables) are carved from the
/// per-thread heaps and stay resident after they are freed: a large delta update peaked
/// at 110 MB RSS for 68 MB of live heap. A fixed threshold gives each such buffer its own
/// mapping, unmapped on free (the same update: 62 MB).
///
/// And at most [`MALLOC_ARENAS`] heaps: glibc gives each thread that contends for a heap
/// a new one (up to 8 per core), and the object route runs dozens of bodies at once on
/// tokio's blocking threads, so their small buffers ended up spread over many
/// half-empty heaps (a `--no-deltas` pull of the small fixture peaked at 71–84 MB; with
/// two heaps 51–57 MB, at the same wall and CPU time).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_allocator() {
    // SAFETY: mallopt only changes allocator parameters; it is called once, before any
    // other thread exists. A failure (0) leaves glibc's defaults, which are correct too.
    let _ = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
    // SAFETY: as above.
    let _ = unsafe { libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS) };
}

/// glibc malloc heaps (arenas) at most (see [`tune_allocator`]).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_ARENAS: i32 = 2;

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

fn main() -> std::process::ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(cmd::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // A reader that went away (`cfsync ls -R | head`) is not a failure.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// `e` and its causes joined by ": " (as `{e:#}`), leaving out a cause whose text the
/// message before already carries (many errors quote their source in their own message,
/// which `{:#}` would then print twice).
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
