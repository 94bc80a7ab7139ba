//! `source::local` against repositories made by the real `ostree` CLI in the `archive`,
//! `bare`, `bare-user` and `bare-user-only` modes: every file object must come back as a
//! header and content whose OSTree checksum is the object's name.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use cfsync_engine::source::{
    Conditional, FetchError, FileObject, LocalSource, PathKind, Source, SourceOptions,
};
use cfsync_formats::checksum::Checksum;
use cfsync_formats::object::RepoMode;
use futures::StreamExt;

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (install ostree)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn ostree(repo: &Path) -> Command {
    let mut c = Command::new("ostree");
    c.arg(format!("--repo={}", repo.display()));
    c
}

/// A tree with a regular file owned by 1234:5678, an executable, an empty file, a larger
/// file, a file with a user xattr, nested directories and two symlinks.
fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::create_dir_all(root.join("etc/deep/er")).unwrap();
    std::fs::write(root.join("usr/bin/tool"), b"#!/bin/sh\necho tool\n").unwrap();
    std::fs::set_permissions(
        root.join("usr/bin/tool"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(root.join("etc/empty"), b"").unwrap();
    std::fs::write(root.join("etc/deep/er/conf"), b"key=value\n").unwrap();
    let big: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    std::fs::write(root.join("usr/big"), &big).unwrap();
    std::fs::write(root.join("etc/labelled"), b"with xattr\n").unwrap();
    rustix::fs::setxattr(
        root.join("etc/labelled"),
        "user.cfsync",
        b"test value",
        rustix::fs::XattrFlags::empty(),
    )
    .expect("user xattrs on the test filesystem");
    std::os::unix::fs::chown(root.join("etc/deep/er/conf"), Some(1234), Some(5678))
        .expect("chown (tests run as root)");
    std::os::unix::fs::symlink("../usr/bin/tool", root.join("etc/tool-link")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/absolute", root.join("dangling")).unwrap();
}

struct Repo {
    dir: tempfile::TempDir,
    commit: Checksum,
}

impl Repo {
    fn path(&self) -> PathBuf {
        self.dir.path().join("repo")
    }
}

fn make_repo(mode: &str) -> Repo {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree);
    let repo = dir.path().join("repo");
    run(ostree(&repo).arg("init").arg(format!("--mode={mode}")));
    let commit = run(ostree(&repo)
        .args(["commit", "-b", "main", "-s", "test"])
        .arg(format!("--tree=dir={}", tree.display())));
    Repo {
        dir,
        commit: commit.trim().parse().unwrap(),
    }
}

/// `(checksum, path)` of every loose file object in the repository.
fn file_objects(repo: &Path) -> Vec<(Checksum, PathBuf)> {
    let mut out = Vec::new();
    for sub in std::fs::read_dir(repo.join("objects")).unwrap() {
        let sub = sub.unwrap().path();
        let prefix = sub.file_name().unwrap().to_str().unwrap().to_owned();
        for obj in std::fs::read_dir(&sub).unwrap() {
            let obj = obj.unwrap().path();
            let name = obj.file_name().unwrap().to_str().unwrap().to_owned();
            let stem = name
                .strip_suffix(".filez")
                .or_else(|| name.strip_suffix(".file"));
            if let Some(stem) = stem {
                out.push((format!("{prefix}{stem}").parse().unwrap(), obj));
            }
        }
    }
    out.sort();
    out
}

/// Checksum of a file object from its header and content (ostree's content checksum).
fn file_checksum(header: &cfsync_formats::file::FileHeader, mut content: impl Read) -> Checksum {
    let mut hasher = cfsync_formats::file::FileHasher::new(header).expect("valid header");
    std::io::copy(&mut content, &mut hasher).expect("content reads");
    hasher.finish()
}

fn check_mode(mode: &str, expected: RepoMode) {
    let repo = make_repo(mode);
    let local = LocalSource::open(&repo.path(), None).unwrap();
    assert_eq!(local.mode(), expected);
    assert_eq!(local.resolve_ref("main").unwrap(), Some(repo.commit));
    assert_eq!(local.resolve_ref("nope").unwrap(), None);

    // The commit object is served as is.
    let hex = repo.commit.to_hex();
    let path = format!("objects/{}/{}.commit", &hex[..2], &hex[2..]);
    let commit = local
        .get_bytes(&path, PathKind::Content, 1 << 20)
        .unwrap()
        .unwrap();
    assert_eq!(Checksum::of(&commit), repo.commit);

    let objects = file_objects(&repo.path());
    // 5 regular files (empty, tool, conf, big, labelled) and 2 symlinks; in
    // bare-user-only the xattr is dropped but the file's content still differs.
    assert_eq!(objects.len(), 7, "{mode}: {objects:?}");
    let mut symlinks = Vec::new();
    let mut xattrs = 0;
    let mut owners = Vec::new();
    for (checksum, path) in &objects {
        let (header, mut content) = local
            .open_file_object(checksum)
            .unwrap()
            .unwrap_or_else(|| panic!("{mode}: {checksum} missing"));
        let mut bytes = Vec::new();
        content.read_to_end(&mut bytes).unwrap();
        assert_eq!(
            bytes.len() as u64,
            header.size,
            "{mode}: {}",
            path.display()
        );
        assert_eq!(
            file_checksum(&header, &bytes[..]),
            *checksum,
            "{mode}: {} {header:?}",
            path.display()
        );
        if !header.symlink_target.is_empty() {
            assert_eq!(header.mode & 0o170000, 0o120000);
            symlinks.push(header.symlink_target.clone());
        }
        xattrs += header.xattrs.len();
        owners.push((header.uid, header.gid));
    }
    owners.sort();
    owners.dedup();
    let expected_owners = if expected == RepoMode::BareUserOnly {
        vec![(0, 0)]
    } else {
        vec![(0, 0), (1234, 5678)]
    };
    assert_eq!(owners, expected_owners, "{mode}");
    symlinks.sort();
    assert_eq!(
        symlinks,
        ["../usr/bin/tool", "/nonexistent/absolute"],
        "{mode}"
    );
    let expected_xattrs = usize::from(expected != RepoMode::BareUserOnly);
    assert_eq!(xattrs, expected_xattrs, "{mode}");

    // A missing object is None.
    assert!(
        local
            .open_file_object(&Checksum::of(b"not an object"))
            .unwrap()
            .is_none()
    );

    // Files larger than the cap are refused.
    let err = local
        .get_bytes("config", PathKind::Metadata, 5)
        .unwrap_err();
    assert!(
        matches!(err, FetchError::TooLarge { limit: 5, .. }),
        "{err}"
    );
}

#[test]
fn archive_repository() {
    check_mode("archive", RepoMode::Archive);
}

#[test]
fn bare_repository() {
    check_mode("bare", RepoMode::Bare);
}

#[test]
fn bare_user_repository() {
    check_mode("bare-user", RepoMode::BareUser);
}

#[test]
fn bare_user_only_repository() {
    check_mode("bare-user-only", RepoMode::BareUserOnly);
}

#[test]
fn traversal_and_escaping_symlinks_are_refused() {
    let repo = make_repo("archive");
    let outside = repo.dir.path().join("secret");
    std::fs::write(&outside, b"secret").unwrap();
    std::os::unix::fs::symlink(&outside, repo.path().join("escape-file")).unwrap();
    std::os::unix::fs::symlink("..", repo.path().join("escape-dir")).unwrap();
    std::os::unix::fs::symlink(&outside, repo.path().join("refs/heads/evil")).unwrap();
    // A relative alias inside the repository is fine.
    std::os::unix::fs::symlink("main", repo.path().join("refs/heads/alias")).unwrap();

    let local = LocalSource::open(&repo.path(), None).unwrap();
    for bad in [
        "../secret",
        "/etc/passwd",
        "objects/../config",
        "./config",
        "refs//heads/main",
    ] {
        let err = local
            .get_bytes(bad, PathKind::Metadata, 1 << 20)
            .unwrap_err();
        assert!(
            matches!(err, FetchError::InvalidPath { .. }),
            "{bad}: {err}"
        );
    }
    for bad in ["escape-file", "escape-dir/secret"] {
        let err = local
            .get_bytes(bad, PathKind::Metadata, 1 << 20)
            .unwrap_err();
        assert!(
            matches!(&err, FetchError::InvalidPath { reason, .. } if reason.contains("outside")),
            "{bad}: {err}"
        );
    }
    let err = local.resolve_ref("evil").unwrap_err();
    assert!(matches!(err, FetchError::InvalidPath { .. }), "{err}");
    assert!(matches!(
        local.resolve_ref("../../secret"),
        Err(FetchError::InvalidPath { .. })
    ));
    assert_eq!(local.resolve_ref("alias").unwrap(), Some(repo.commit));
    // A ref prefix (a directory) is not a ref.
    std::fs::create_dir_all(repo.path().join("refs/heads/dir/sub")).unwrap();
    assert_eq!(local.resolve_ref("dir").unwrap(), None);
}

#[test]
fn remote_refs_resolve() {
    let src = make_repo("archive");
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("repo");
    run(ostree(&dst).args(["init", "--mode=bare-user"]));
    run(ostree(&dst)
        .args(["pull-local", "--remote=origin"])
        .arg(src.path())
        .arg("main"));
    let local = LocalSource::open(&dst, None).unwrap();
    assert_eq!(local.resolve_ref("origin:main").unwrap(), Some(src.commit));
    assert_eq!(local.resolve_ref("origin/main").unwrap(), Some(src.commit));
    assert_eq!(local.resolve_ref("main").unwrap(), None);
    // The pulled objects are readable from the bare-user copy.
    for (checksum, _) in file_objects(&dst) {
        let (header, content) = local.open_file_object(&checksum).unwrap().unwrap();
        assert_eq!(file_checksum(&header, content), checksum);
    }
}

#[test]
fn not_a_repository() {
    let dir = tempfile::tempdir().unwrap();
    let err = LocalSource::open(dir.path(), None).unwrap_err();
    assert!(
        err.to_string().contains("not an OSTree repository"),
        "{err}"
    );
    let err = LocalSource::open(&dir.path().join("missing"), None).unwrap_err();
    assert!(matches!(err, FetchError::Io { .. }), "{err}");
}

#[tokio::test]
async fn source_wraps_local_repositories() {
    let repo = make_repo("archive");
    let url = format!("file://{}", repo.path().display());
    for source in [
        Source::open(&url, SourceOptions::default()).unwrap(),
        Source::open(repo.path().to_str().unwrap(), SourceOptions::default()).unwrap(),
    ] {
        assert!(matches!(source, Source::Local(_)));
        let summary_missing = source
            .get_bytes("summary", PathKind::Metadata, 1 << 20)
            .await
            .unwrap();
        assert!(summary_missing.is_none());

        // Streams yield the whole file.
        let (checksum, path) = file_objects(&repo.path())
            .into_iter()
            .max_by_key(|(_, p)| p.metadata().unwrap().len())
            .unwrap();
        let rel = path
            .strip_prefix(repo.path())
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let mut stream = source
            .get_stream(&rel, PathKind::Content, 1 << 30)
            .await
            .unwrap()
            .unwrap();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(bytes, std::fs::read(&path).unwrap());
        // A stream over a file larger than the cap is refused up front.
        assert!(matches!(
            source.get_stream(&rel, PathKind::Content, 10).await,
            Err(FetchError::TooLarge { limit: 10, .. })
        ));

        // File objects come back split.
        let Some(FileObject::Split { header, content }) =
            source.open_file_object(&checksum, 1 << 30).await.unwrap()
        else {
            panic!("expected a split object")
        };
        let (header, actual) = tokio::task::spawn_blocking(move || {
            let c = file_checksum(&header, content);
            (header, c)
        })
        .await
        .unwrap();
        assert_eq!(actual, checksum, "{header:?}");

        // Conditional reads: a validator, then NotModified until the file changes.
        let Conditional::Fetched { body, etag, .. } = source
            .get_conditional("config", 1 << 20, None, None)
            .await
            .unwrap()
        else {
            panic!("expected config")
        };
        assert_eq!(body, std::fs::read(repo.path().join("config")).unwrap());
        let etag = etag.unwrap();
        assert_eq!(
            source
                .get_conditional("config", 1 << 20, Some(&etag), None)
                .await
                .unwrap(),
            Conditional::NotModified
        );
        assert_eq!(
            source
                .get_conditional("summary", 1 << 20, Some(&etag), None)
                .await
                .unwrap(),
            Conditional::NotFound
        );
        assert!(source.stats().requests > 0 && source.stats().bytes_received > 0);
    }
    let config = repo.path().join("config");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("# changed\n");
    std::fs::write(&config, text.as_bytes()).unwrap();
    let source = Source::open(repo.path().to_str().unwrap(), SourceOptions::default()).unwrap();
    let Conditional::Fetched { body, .. } = source
        .get_conditional("config", 1 << 20, Some("\"stale\""), None)
        .await
        .unwrap()
    else {
        panic!("expected a new body")
    };
    assert_eq!(body, text.as_bytes());
}
