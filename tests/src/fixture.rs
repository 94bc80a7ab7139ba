//! The repositories tests pull: the mkfixture fixture (real Debian packages, two
//! versions) and the bundled demo repository.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::command::run_checked;
use crate::dirs::workspace_root;

/// Environment variable naming a ready fixture directory (output of `mkfixture.sh`).
pub const FIXTURE_ENV: &str = "CFSYNC_FIXTURE";

/// Where [`fixture`] builds the small fixture when [`FIXTURE_ENV`] is unset.
pub const FIXTURE_CACHE: &str = "/var/tmp/cfsync-fixture-small";

/// A repository made by `shared/bench/mkfixture.sh` (real Debian packages, two versions).
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The fixture directory.
    pub dir: PathBuf,
    /// The archive repository (`dir/repo`).
    pub repo: PathBuf,
    /// The ref, pointing at v2: `os/x86_64/stable`.
    pub refname: String,
    /// The first commit (v2's parent).
    pub v1: String,
    /// The second commit (the ref's target).
    pub v2: String,
    /// The signing key's public half, armored (`dir/fixture.asc`).
    pub public_key: PathBuf,
    /// The unpacked trees: `dir/v1` and `dir/v2`.
    pub trees: [PathBuf; 2],
}

/// Reads `v1 <id>` / `v2 <id>` lines.
fn read_commits(path: &Path) -> Option<(String, String)> {
    let text = fs::read_to_string(path).ok()?;
    let mut v1 = None;
    let mut v2 = None;
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("v1", id)) => v1 = Some(id.trim().to_owned()),
            Some(("v2", id)) => v2 = Some(id.trim().to_owned()),
            _ => {}
        }
    }
    Some((v1?, v2?))
}

/// The small mkfixture fixture: `$CFSYNC_FIXTURE` if set (it must be complete), else
/// [`FIXTURE_CACHE`], built there on first use by `../shared/bench/mkfixture.sh DIR small`
/// (about 3 minutes; downloads Debian packages) under a file lock, so parallel test
/// processes build it once.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = match std::env::var_os(FIXTURE_ENV) {
            Some(d) => PathBuf::from(d),
            None => {
                let dir = PathBuf::from(FIXTURE_CACHE);
                build_fixture(&dir);
                dir
            }
        };
        load_fixture(&dir)
    })
}

fn load_fixture(dir: &Path) -> Fixture {
    let repo = dir.join("repo");
    let Some((v1, v2)) = read_commits(&dir.join("commits")) else {
        panic!(
            "{} is not a complete mkfixture fixture (no `commits` file); build it with \
             `bash shared/bench/mkfixture.sh {} small`",
            dir.display(),
            dir.display()
        );
    };
    assert!(
        repo.join("config").is_file(),
        "{} has no repository",
        dir.display()
    );
    Fixture {
        repo,
        refname: "os/x86_64/stable".to_owned(),
        v1,
        v2,
        public_key: dir.join("fixture.asc"),
        trees: [dir.join("v1"), dir.join("v2")],
        dir: dir.to_path_buf(),
    }
}

fn build_fixture(dir: &Path) {
    let done = |d: &Path| d.join("repo/.done").exists() && d.join("commits").exists();
    if done(dir) {
        return;
    }
    let lock_path = dir.with_extension("lock");
    let lock = match OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
    {
        Ok(f) => f,
        Err(e) => panic!("cannot open {}: {e}", lock_path.display()),
    };
    if let Err(e) = rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive) {
        panic!("cannot lock {}: {e}", lock_path.display());
    }
    if done(dir) {
        return;
    }
    let script = std::env::var_os("CFSYNC_MKFIXTURE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/bench/mkfixture.sh"));
    assert!(
        script.is_file(),
        "cannot build the fixture: {} not found (set {FIXTURE_ENV} to a built fixture or \
         CFSYNC_MKFIXTURE to the script)",
        script.display()
    );
    eprintln!(
        "building the small fixture in {} (takes minutes)",
        dir.display()
    );
    run_checked(Command::new("bash").arg(&script).arg(dir).arg("small"));
    // the lock is released when `lock` is closed
}

/// The bundled demo repository (`demo/` in the workspace; see `demo/README.md`).
#[derive(Debug, Clone)]
pub struct Demo {
    /// The archive repository, `demo/repo`.
    pub repo: PathBuf,
    /// The ref, pointing at v2: `demo/x86_64/stable`.
    pub refname: String,
    /// The first commit (v2's parent).
    pub v1: String,
    /// The second commit.
    pub v2: String,
    /// The signing key's public half, armored (`demo/demo.asc`).
    pub public_key: PathBuf,
}

/// The bundled demo repository. Creates the empty directories git does not keep
/// (`tmp`, `refs/remotes`, …) so that the `ostree` command line can read it.
pub fn demo() -> &'static Demo {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = workspace_root().join("demo");
        let repo = dir.join("repo");
        for sub in [
            "tmp/cache",
            "refs/remotes",
            "refs/mirrors",
            "state",
            "extensions",
        ] {
            let p = repo.join(sub);
            if let Err(e) = fs::create_dir_all(&p) {
                panic!("cannot create {}: {e}", p.display());
            }
        }
        let Some((v1, v2)) = read_commits(&dir.join("commits")) else {
            panic!("{} has no commits file", dir.display());
        };
        Demo {
            repo,
            refname: "demo/x86_64/stable".to_owned(),
            v1,
            v2,
            public_key: dir.join("demo.asc"),
        }
    })
}
