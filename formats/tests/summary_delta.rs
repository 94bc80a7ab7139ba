//! Summary, summary index and static-delta formats against repositories made by the real
//! `ostree` and `flatpak` CLIs.
//!
//! One fixture (built once per test binary) commits two versions of a tree with files
//! built to reach every delta opcode (a large file changed in one spot for rollsum
//! `w`-from-source ops, a file changed all over for bsdiff, new files for splices, a new
//! large file for a fallback, symlinks, two file modes, an xattr, detached metadata),
//! then generates deltas with every interesting option (`--empty`, `--inline`,
//! `--swap-endianness`, `--disable-bsdiff`, `--max-chunk-size=1`, a signed superblock)
//! and runs `ostree summary -u` and `flatpak build-update-repo`. The tests compare our
//! parse with ostree's own view (`ostree refs`, `summary --view`, `static-delta show`),
//! re-execute every delta part with a small in-memory executor and check that every
//! object produced hashes to its name, and check that every truncation is an error.
//! They need `ostree`, `flatpak` and `setfattr` and fail (not skip) when one is missing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    missing_docs
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::commit::CommitRef;
use cfsync_formats::delta::bspatch;
use cfsync_formats::delta::index::DeltaIndex;
use cfsync_formats::delta::names::{DeltaName, index_path};
use cfsync_formats::delta::ops::{Op, OpCode, WriteSource};
use cfsync_formats::delta::part::{self, PartPayloadRef};
use cfsync_formats::delta::show::DeltaSummary;
use cfsync_formats::delta::signed::{SignedSuperblockRef, open_superblock};
use cfsync_formats::delta::superblock::{ByteOrder, Endianness, PartHeader, SuperblockRef};
use cfsync_formats::file::{FileHeader, FilezReader, S_IFLNK, S_IFMT, file_checksum};
use cfsync_formats::object::{ObjectType, RepoMode, loose_path};
use cfsync_formats::summary::{SummaryRef, SummarySigRef};
use cfsync_formats::summary_index::{self, SummaryIndexRef};

// ---------------------------------------------------------------------------------------
// Running the real tools
// ---------------------------------------------------------------------------------------

fn output(cmd: &mut Command, package: &str) -> std::process::Output {
    match cmd.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "{:?} is not installed ({e}); install the `{package}` apt package: apt-get install -y {package}",
            cmd.get_program()
        ),
        Err(e) => panic!("running {cmd:?}: {e}"),
    }
}

fn run(cmd: &mut Command, package: &str) -> String {
    let out = output(cmd, package);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn ostree_cmd(repo: &Path) -> Command {
    let mut c = Command::new("ostree");
    c.arg(format!("--repo={}", repo.display()));
    // The dummy signer is only for tests and must be enabled explicitly.
    c.env("OSTREE_DUMMY_SIGN_ENABLED", "1");
    c
}

fn ostree(repo: &Path, args: &[&str]) -> String {
    run(ostree_cmd(repo).args(args), "ostree")
}

fn flatpak(args: &[&str]) -> String {
    run(Command::new("flatpak").args(args), "flatpak")
}

fn setfattr(path: &Path, name: &str, value: &str) {
    run(
        Command::new("setfattr")
            .args(["-n", name, "-v", value])
            .arg(path),
        "attr",
    );
}

// ---------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------

/// Deterministic pseudo-random bytes (incompressible).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

fn write(root: &Path, rel: &str, data: &[u8], mode: u32) -> PathBuf {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, data).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    p
}

fn build_tree(root: &Path, version: u8) {
    // Changed in one spot: rollsum ("o", "r", "w" from source and blob, "R", "c").
    let mut roll = noise(400_000, 1);
    // Changed all over: bsdiff ("r", "o", "B", "c", "R").
    let mut patched = noise(200_000, 2);
    if version == 2 {
        for b in &mut roll[200_000..200_016] {
            *b ^= 0x5a;
        }
        for i in (0..patched.len()).step_by(4000) {
            patched[i] ^= 0xff;
        }
    }
    write(root, "usr/bin/roll", &roll, 0o755);
    write(root, "usr/bin/patched", &patched, 0o755);
    write(root, "usr/lib/same.bin", &noise(100_000, 3), 0o644);
    let text = write(
        root,
        "usr/share/doc/readme.txt",
        format!("readme of version {version}\n").as_bytes(),
        0o644,
    );
    setfattr(&text, "user.test", "value");
    write(root, "etc/empty", b"", 0o644);
    fs::create_dir_all(root.join("etc")).unwrap();
    symlink("../usr/bin/roll", root.join("etc/roll-link")).unwrap();
    if version == 2 {
        // New and large: a fallback object with --min-fallback-size=1.
        write(root, "usr/lib/big.bin", &noise(1_500_000, 4), 0o644);
        write(root, "usr/share/new.txt", b"a new file\n", 0o644);
        symlink("new.txt", root.join("usr/share/new-link")).unwrap();
    }
}

const APP_REF: &str = "app/org.test.App/x86_64/stable";
const RT_REF: &str = "runtime/org.test.Platform/aarch64/stable";

/// One generated delta, in its own repository.
struct Variant {
    label: &'static str,
    repo: PathBuf,
    name: DeltaName,
    inline: bool,
    signed: bool,
    swapped: bool,
}

struct Fixture {
    /// Archive repository with both commits, deltas and a summary.
    main: PathBuf,
    /// Repository with a collection ID, a collection-map and a dummy-signed summary.
    collections: PathBuf,
    /// Repository updated twice with `flatpak build-update-repo`.
    flat: PathBuf,
    c1: Checksum,
    c2: Checksum,
    variants: Vec<Variant>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(build_fixture)
}

fn commit(repo: &Path, branch: &str, tree: &Path, version: &str) -> Checksum {
    ostree(
        repo,
        &[
            "commit",
            "-b",
            branch,
            &format!("--tree=dir={}", tree.display()),
            "-s",
            &format!("version {version}"),
            &format!("--add-metadata-string=version={version}"),
            &format!("--add-detached-metadata-string=test.detached={version}"),
        ],
    )
    .trim()
    .parse()
    .unwrap()
}

fn clone_repo(src: &Path, dst: &Path) {
    ostree(dst, &["init", "--mode=archive"]);
    let src = src.display().to_string();
    ostree(dst, &["pull-local", "--depth=1", &src, APP_REF]);
}

fn build_fixture() -> Fixture {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("summary_delta_fixture");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    let (t1, t2) = (root.join("t1"), root.join("t2"));
    build_tree(&t1, 1);
    build_tree(&t2, 2);

    let main = root.join("main");
    ostree(&main, &["init", "--mode=archive"]);
    let c1 = commit(&main, APP_REF, &t1, "1");
    let c2 = commit(&main, APP_REF, &t2, "2");
    commit(&main, RT_REF, &t1, "rt");

    let from_to = DeltaName::new(Some(c1), c2);
    let scratch = DeltaName::new(None, c2);
    let (s1, s2) = (c1.to_string(), c2.to_string());
    let gen_ = |repo: &Path, extra: &[&str]| {
        let mut args = vec!["static-delta", "generate"];
        args.extend_from_slice(extra);
        ostree(repo, &args);
    };
    gen_(
        &main,
        &["--min-fallback-size=1", "--from", &s1, "--to", &s2],
    );
    gen_(&main, &["--min-fallback-size=1", "--empty", "--to", &s2]);
    ostree(&main, &["summary", "-u"]);

    let mut variants = vec![
        Variant {
            label: "from-to",
            repo: main.clone(),
            name: from_to,
            inline: false,
            signed: false,
            swapped: false,
        },
        Variant {
            label: "scratch",
            repo: main.clone(),
            name: scratch,
            inline: false,
            signed: false,
            swapped: false,
        },
    ];
    // (label, generate flags, name, inline, signed, swapped)
    type Other = (
        &'static str,
        &'static [&'static str],
        DeltaName,
        bool,
        bool,
        bool,
    );
    let others: [Other; 5] = [
        (
            "inline",
            &["--min-fallback-size=1", "--inline"],
            from_to,
            true,
            false,
            false,
        ),
        (
            "swapped",
            &["--min-fallback-size=1", "--swap-endianness"],
            from_to,
            false,
            false,
            true,
        ),
        (
            "no-bsdiff",
            &["--min-fallback-size=1", "--disable-bsdiff"],
            from_to,
            false,
            false,
            false,
        ),
        (
            "signed",
            &["--min-fallback-size=1", "--sign-type=dummy", "--sign=mykey"],
            from_to,
            false,
            true,
            false,
        ),
        // No fallbacks: the 1.5 MB file goes into the parts, several of them.
        (
            "chunked-scratch",
            &["--min-fallback-size=0", "--max-chunk-size=1"],
            scratch,
            false,
            false,
            false,
        ),
    ];
    for (label, extra, name, inline, signed, swapped) in others {
        let repo = root.join(label);
        clone_repo(&main, &repo);
        let mut args: Vec<&str> = extra.to_vec();
        match name.from {
            Some(_) => args.extend_from_slice(&["--from", &s1, "--to", &s2]),
            None => args.extend_from_slice(&["--empty", "--to", &s2]),
        }
        gen_(&repo, &args);
        ostree(&repo, &["summary", "-u"]);
        variants.push(Variant {
            label,
            repo,
            name,
            inline,
            signed,
            swapped,
        });
    }

    // Collection IDs: the main collection in the ref map, another one in the
    // collection map, and a summary signed with the (test-only) dummy signer.
    let collections = root.join("collections");
    ostree(
        &collections,
        &["init", "--mode=archive", "--collection-id=org.test.Main"],
    );
    let cc = commit(&collections, "os/x86_64/main", &t1, "c");
    ostree(
        &collections,
        &[
            "refs",
            "--collections",
            "--create=org.test.Other:os/x86_64/other",
            &cc.to_string(),
        ],
    );
    ostree(
        &collections,
        &["summary", "-u", "--sign-type=dummy", "--sign=mykey"],
    );

    // flatpak: summary index, subsummaries, and (after a second update) a subsummary diff.
    let flat = root.join("flat");
    ostree(&flat, &["init", "--mode=archive"]);
    let m = main.display().to_string();
    ostree(&flat, &["pull-local", &m, APP_REF, RT_REF]);
    flatpak(&[
        "build-update-repo",
        "--no-update-appstream",
        &flat.display().to_string(),
    ]);
    commit(&flat, APP_REF, &t1, "3");
    flatpak(&[
        "build-update-repo",
        "--no-update-appstream",
        &flat.display().to_string(),
    ]);

    Fixture {
        main,
        collections,
        flat,
        c1,
        c2,
        variants,
    }
}

fn read(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// Every prefix must be rejected without panicking. Inputs up to 8 KiB are cut at every
/// length; longer ones at every length within 1 KiB of either end and at 256 evenly
/// spaced lengths in between (each cut re-parses or re-decompresses the whole prefix).
fn assert_prefixes_fail(what: &str, data: &[u8], parses: impl Fn(&[u8]) -> bool) {
    let n = data.len();
    let cuts: BTreeSet<usize> = if n <= 8192 {
        (0..n).collect()
    } else {
        (0..1024)
            .chain(n - 1024..n)
            .chain((0..256).map(|i| i * n / 256))
            .collect()
    };
    for cut in cuts {
        assert!(
            !parses(&data[..cut]),
            "{what}: prefix of {cut}/{n} bytes parsed"
        );
    }
    assert!(parses(data), "{what}: the whole input must parse");
}

// ---------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------

fn commit_bytes(repo: &Path, c: &Checksum) -> Vec<u8> {
    read(&repo.join(loose_path(c, ObjectType::Commit, RepoMode::Archive)))
}

#[test]
fn summary_matches_ostree_refs_and_round_trips() {
    let f = fixture();
    let bytes = read(&f.main.join("summary"));
    let s = SummaryRef::from_bytes(&bytes).unwrap();

    // Refs: exactly `ostree refs`, pointing where `ostree rev-parse` says.
    let ours: BTreeMap<&str, Checksum> = s.refs().iter().map(|r| (r.name, r.checksum)).collect();
    let listed = ostree(&f.main, &["refs"]);
    let theirs: BTreeMap<&str, Checksum> = listed
        .lines()
        .map(|r| {
            (
                r,
                ostree(&f.main, &["rev-parse", r]).trim().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(ours.len(), 2);
    let names: Vec<&str> = s.refs().iter().map(|r| r.name).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "ostree writes the ref map sorted");

    for r in s.refs() {
        let cb = commit_bytes(&f.main, &r.checksum);
        assert_eq!(r.commit_size, cb.len() as u64, "{}", r.name);
        let c = CommitRef::from_bytes(&cb).unwrap();
        assert_eq!(r.timestamp().unwrap(), Some(c.timestamp()), "{}", r.name);
        assert_eq!(r.version().unwrap(), c.version().unwrap(), "{}", r.name);
        assert_eq!(s.lookup_ref(r.name).unwrap().checksum, r.checksum);
    }
    assert_eq!(s.lookup_ref(APP_REF).unwrap().checksum, f.c2);
    assert_eq!(s.lookup_ref(APP_REF).unwrap().version().unwrap(), Some("2"));
    assert!(s.lookup_ref("app/org.test.App/x86_64/beta").is_none());

    // `ostree summary --view` agrees on sizes and checksums of every ref.
    let view = ostree(&f.main, &["summary", "--view"]);
    for r in s.refs() {
        let needle = format!(
            "* {}\n    Latest Commit ({} bytes):\n      {}\n",
            r.name, r.commit_size, r.checksum
        );
        assert!(view.contains(&needle), "missing {needle:?} in\n{view}");
    }

    // Repository metadata.
    assert_eq!(s.mode().unwrap(), Some("archive-z2"));
    assert_eq!(s.tombstone_commits().unwrap(), Some(false));
    assert_eq!(s.indexed_deltas().unwrap(), Some(true));
    assert_eq!(s.expires().unwrap(), None);
    assert_eq!(s.collection_id().unwrap(), None);
    assert!(s.collection_map().unwrap().is_empty());
    let lm = s.last_modified().unwrap().unwrap();
    let mtime = fs::metadata(f.main.join("summary"))
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        lm.abs_diff(mtime) < 120,
        "last-modified {lm} vs file mtime {mtime}"
    );

    // Static deltas: the names `ostree static-delta list` prints, each mapped to the
    // SHA-256 of its superblock file.
    let deltas = s.static_deltas().unwrap().unwrap();
    let listed: BTreeSet<String> = ostree(&f.main, &["static-delta", "list"])
        .lines()
        .map(str::to_owned)
        .collect();
    let ours: BTreeSet<String> = deltas
        .entries()
        .iter()
        .map(|e| e.name.to_string())
        .collect();
    assert_eq!(ours, listed);
    for e in deltas.entries() {
        let sb = read(&f.main.join(e.name.superblock_path()));
        assert_eq!(e.superblock_digest, Checksum::of(&sb), "{}", e.name);
    }

    // Written back byte for byte.
    assert_eq!(s.to_owned().unwrap().to_bytes().unwrap(), bytes);
    assert!(!f.main.join("summary.sig").exists());
}

#[test]
fn summary_with_collections_and_signature() {
    let f = fixture();
    let bytes = read(&f.collections.join("summary"));
    let s = SummaryRef::from_bytes(&bytes).unwrap();
    assert_eq!(s.collection_id().unwrap(), Some("org.test.Main"));
    // The main collection's refs (and ostree-metadata) are in the ref map.
    let names: Vec<&str> = s.refs().iter().map(|r| r.name).collect();
    assert_eq!(names, ["os/x86_64/main", "ostree-metadata"]);
    let main = s.lookup_ref("os/x86_64/main").unwrap();
    let map = s.collection_map().unwrap();
    assert_eq!(map.len(), 1);
    assert_eq!(map[0].collection_id, "org.test.Other");
    let other = s
        .lookup_collection_ref("org.test.Other", "os/x86_64/other")
        .unwrap()
        .unwrap();
    assert_eq!(other.checksum, main.checksum);
    assert_eq!(
        s.lookup_collection_ref("org.test.Main", "os/x86_64/main")
            .unwrap()
            .unwrap()
            .checksum,
        main.checksum
    );
    assert!(
        s.lookup_collection_ref("org.test.None", "os/x86_64/main")
            .unwrap()
            .is_none()
    );
    // `ostree refs --collections` agrees.
    let listed = ostree(&f.collections, &["refs", "--collections"]);
    for (coll, r) in [
        ("org.test.Main", "os/x86_64/main"),
        ("org.test.Other", "os/x86_64/other"),
    ] {
        assert!(listed.contains(&format!("({coll}, {r})")), "{listed}");
    }
    assert_eq!(s.to_owned().unwrap().to_bytes().unwrap(), bytes);

    // summary.sig: the dummy signer stores the key bytes as the "signature".
    let sig_bytes = read(&f.collections.join("summary.sig"));
    let sig = SummarySigRef::from_bytes(&sig_bytes).unwrap();
    assert_eq!(
        sig.engine_signatures("dummy").unwrap(),
        Some(vec![&b"mykey"[..]])
    );
    assert_eq!(sig.gpgsigs().unwrap(), None);
    assert_eq!(sig.ed25519().unwrap(), None);
    assert_prefixes_fail("summary.sig", &sig_bytes, |b| {
        SummarySigRef::from_bytes(b).is_ok()
    });
}

#[test]
fn summary_truncations_fail() {
    let f = fixture();
    for repo in [&f.main, &f.collections, &f.flat] {
        let bytes = read(&repo.join("summary"));
        assert_prefixes_fail("summary", &bytes, |b| SummaryRef::from_bytes(b).is_ok());
    }
}

// ---------------------------------------------------------------------------------------
// Summary index (flatpak)
// ---------------------------------------------------------------------------------------

#[test]
fn flatpak_summary_index_and_subsummaries() {
    let f = fixture();
    let idx_bytes = read(&f.flat.join("summary.idx"));
    let idx = SummaryIndexRef::from_bytes(&idx_bytes).unwrap();
    let names: Vec<&str> = idx.subsummaries().iter().map(|s| s.name).collect();
    assert_eq!(names, ["aarch64", "x86_64"]);
    assert_eq!(idx.mode().unwrap(), Some("archive-z2"));
    assert_eq!(idx.indexed_deltas().unwrap(), Some(true));
    assert!(idx.last_modified().unwrap().is_some());
    assert_prefixes_fail("summary.idx", &idx_bytes, |b| {
        SummaryIndexRef::from_bytes(b).is_ok()
    });

    let x86 = idx.lookup("x86_64").unwrap();
    assert_eq!(x86.arch(), "x86_64");
    assert_eq!(x86.subset(), None);
    // The app was updated once: one history entry, and a diff from it.
    assert_eq!(x86.history.len(), 1);
    let app_tip: Checksum = ostree(&f.flat, &["rev-parse", APP_REF])
        .trim()
        .parse()
        .unwrap();
    let rt_tip: Checksum = ostree(&f.flat, &["rev-parse", RT_REF])
        .trim()
        .parse()
        .unwrap();

    let mut subs = BTreeMap::new();
    for sub in idx.subsummaries() {
        let gz = read(&f.flat.join(sub.path()));
        let raw = summary_index::decompress_subsummary(&gz, 1 << 20).unwrap();
        assert_eq!(Checksum::of(&raw), sub.checksum, "{}", sub.name);
        assert!(summary_index::decompress_subsummary(&gz, raw.len() as u64 - 1).is_err());
        assert_prefixes_fail("subsummary gz", &gz, |b| {
            summary_index::decompress_subsummary(b, 1 << 20).is_ok()
        });
        subs.insert(sub.name, raw);
    }
    let x86_sum = SummaryRef::from_bytes(&subs["x86_64"]).unwrap();
    let refs: Vec<(&str, Checksum)> = x86_sum
        .refs()
        .iter()
        .map(|r| (r.name, r.checksum))
        .collect();
    assert_eq!(refs, [(APP_REF, app_tip)]);
    // Subsummaries carry xa.summary-version = 1 (little-endian u), no deltas.
    let v = x86_sum
        .metadata()
        .get("xa.summary-version")
        .unwrap()
        .unwrap();
    assert_eq!(v.as_u32_le().unwrap(), 1);
    assert!(x86_sum.static_deltas().unwrap().is_none());
    let arm_sum = SummaryRef::from_bytes(&subs["aarch64"]).unwrap();
    let refs: Vec<(&str, Checksum)> = arm_sum
        .refs()
        .iter()
        .map(|r| (r.name, r.checksum))
        .collect();
    assert_eq!(refs, [(RT_REF, rt_tip)]);

    // The diff from the previous x86_64 subsummary reproduces the current one.
    let old_digest = x86.history[0];
    let old_gz = read(&f.flat.join(summary_index::subsummary_path(&old_digest)));
    let old = summary_index::decompress_subsummary(&old_gz, 1 << 20).unwrap();
    assert_eq!(Checksum::of(&old), old_digest);
    let diff_gz = read(&f.flat.join(summary_index::subsummary_diff_path(
        &old_digest,
        &x86.checksum,
    )));
    let new = summary_index::apply_subsummary_diff(&old, &diff_gz, 1 << 20, 1 << 20).unwrap();
    assert_eq!(Checksum::of(&new), x86.checksum);
    assert_eq!(new, subs["x86_64"]);
    assert!(
        summary_index::apply_subsummary_diff(&old, &diff_gz, 1 << 20, new.len() as u64 - 1)
            .is_err()
    );
    let diff = summary_index::decompress_subsummary(&diff_gz, 1 << 20).unwrap();
    assert_prefixes_fail("subsummary diff", &diff, |d| {
        // A prefix that keeps all ops but drops data bytes may still apply; it must then
        // not reproduce the new subsummary.
        summary_index::apply_diff(&old, d, 1 << 20).is_ok_and(|out| out == new)
    });

    // The compatibility summary lists both refs.
    let full_bytes = read(&f.flat.join("summary"));
    let full = SummaryRef::from_bytes(&full_bytes).unwrap();
    assert_eq!(full.lookup_ref(APP_REF).unwrap().checksum, app_tip);
    assert_eq!(full.lookup_ref(RT_REF).unwrap().checksum, rt_tip);
}

// ---------------------------------------------------------------------------------------
// Static deltas
// ---------------------------------------------------------------------------------------

/// The bytes of part `i` of a variant: the inline value or the part file.
fn part_bytes(v: &Variant, sb: &SuperblockRef<'_>, i: usize) -> Vec<u8> {
    match sb.inline_part(i).unwrap() {
        Some(b) => {
            assert!(v.inline, "{}: part {i} is inline", v.label);
            b.to_vec()
        }
        None => {
            assert!(!v.inline, "{}: part {i} is not inline", v.label);
            read(&v.repo.join(v.name.part_path(i)))
        }
    }
}

/// Strips ostree's human-readable size suffixes (" (1.3 kB)").
#[test]
fn delta_show_matches_ostree() {
    let f = fixture();
    let mut seen_ops = [0u64; 7];
    for v in &f.variants {
        let file_bytes = read(&v.repo.join(v.name.superblock_path()));
        let file = open_superblock(&file_bytes).unwrap();
        assert_eq!(file.signed.is_some(), v.signed, "{}", v.label);
        let sb = &file.superblock;
        assert_eq!(sb.name(), v.name, "{}", v.label);
        let mut ours = DeltaSummary::from_file(&file);
        for p in sb.parts() {
            let bytes = part_bytes(v, sb, p.index);
            ours.add_part(sb, p.index, &bytes, p.payload_cap()).unwrap();
        }
        for (i, n) in ours.total_ops().0.iter().enumerate() {
            seen_ops[i] += n;
        }

        let out = output(
            ostree_cmd(&v.repo).args(["static-delta", "show", &v.name.to_string()]),
            "ostree",
        );
        // The human sizes ("(1.5 MB)", GLib's g_format_size) are part of the format now.
        let theirs = String::from_utf8(out.stdout).unwrap();
        let ours = ours.to_string();
        if v.inline {
            // ostree 2022.7 looks for part files even for inline deltas and fails after
            // the first PartMeta line; everything it printed must match.
            assert!(!out.status.success());
            assert!(theirs.contains("PartMeta0"), "{theirs}");
            assert!(
                ours.starts_with(&theirs),
                "{}:\nours:\n{ours}\ntheirs:\n{theirs}",
                v.label
            );
        } else {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(ours, theirs, "{}", v.label);
        }
    }
    // Between them the variants use every opcode.
    for op in OpCode::ALL {
        assert!(seen_ops[op.index()] > 0, "no {op:?} op in any delta");
    }
}

#[test]
fn delta_superblock_fields() {
    let f = fixture();
    let mut saw_many_parts = false;
    for v in &f.variants {
        let file_bytes = read(&v.repo.join(v.name.superblock_path()));
        let file = open_superblock(&file_bytes).unwrap();
        let sb = &file.superblock;
        let label = v.label;

        let expect_order = if v.swapped {
            ByteOrder::Big
        } else {
            ByteOrder::Little
        };
        let expect = if v.swapped {
            Endianness::Big
        } else {
            Endianness::Little
        };
        assert_eq!(sb.endianness(), expect, "{label}");
        assert_eq!(sb.endianness().byte_order(), expect_order, "{label}");
        assert_eq!(sb.from(), v.name.from, "{label}");
        assert_eq!(sb.to(), f.c2, "{label}");
        assert!(sb.recursive_deltas().is_empty());

        // The embedded commit is the to-commit, byte for byte.
        assert_eq!(Checksum::of(sb.commit_bytes()), f.c2, "{label}");
        assert_eq!(sb.commit_bytes(), &commit_bytes(&f.main, &f.c2)[..]);
        assert_eq!(sb.commit().unwrap().parent(), Some(f.c1));
        // Its detached metadata rides along.
        let cm = sb.commitmeta().unwrap().expect("commitmeta in superblock");
        let on_disk = read(&f.main.join(loose_path(
            &f.c2,
            ObjectType::CommitMeta,
            RepoMode::Archive,
        )));
        assert_eq!(cm.data(), &on_disk[..], "{label}");
        assert_eq!(cm.get_str("test.detached").unwrap(), Some("2"));

        // Part files: the header's size and checksum describe the file exactly.
        for p in sb.parts() {
            let bytes = part_bytes(v, sb, p.index);
            assert_eq!(p.size, bytes.len() as u64, "{label} part {}", p.index);
            assert_eq!(p.checksum, Checksum::of(&bytes), "{label} part {}", p.index);
            assert_eq!(p.version, 0);
            assert!(!p.objects.is_empty());
            assert_eq!(&bytes[..7], b"x\xfd7zXZ\0", "xz part");
        }
        saw_many_parts |= sb.parts().len() > 2;
        if label == "chunked-scratch" {
            assert!(
                sb.parts().len() > 2,
                "--max-chunk-size=1 makes several parts"
            );
        }

        // Fallbacks: with --min-fallback-size=1 the new 1.5 MB file is one; its sizes are
        // those of the loose .filez object.
        // --min-fallback-size=0 disables them.
        let expect_fallbacks = usize::from(label != "chunked-scratch");
        assert_eq!(sb.fallbacks().len(), expect_fallbacks, "{label}");
        for fb in sb.fallbacks() {
            let p = f.main.join(loose_path(
                &fb.checksum,
                ObjectType::File,
                RepoMode::Archive,
            ));
            let filez = read(&p);
            assert_eq!(fb.compressed_size, filez.len() as u64, "{label}");
            let r = FilezReader::new(&filez[..]).unwrap();
            assert_eq!(fb.uncompressed_size, r.header().size, "{label}");
            assert_eq!(fb.uncompressed_size, 1_500_000);
        }

        // Signed wrapper: the inner bytes are a valid superblock, the dummy signature is
        // the key bytes.
        if let Some(s) = &file.signed {
            assert_eq!(&file_bytes[..8], b"OSTSGNDT");
            assert_eq!(s.engines(), ["dummy"]);
            assert_eq!(
                s.engine_signatures("dummy").unwrap(),
                Some(vec![&b"mykey"[..]])
            );
            assert_eq!(sb.data(), s.superblock_bytes());
        } else {
            assert!(SignedSuperblockRef::from_bytes(&file_bytes).is_err());
        }
    }
    assert!(saw_many_parts);
}

#[test]
fn delta_indexes_and_summary_list_every_delta() {
    let f = fixture();
    for v in &f.variants {
        let sb_file = read(&v.repo.join(v.name.superblock_path()));
        let digest = Checksum::of(&sb_file);
        let summary_bytes = read(&v.repo.join("summary"));
        let s = SummaryRef::from_bytes(&summary_bytes).unwrap();
        let deltas = s.static_deltas().unwrap().unwrap();
        assert_eq!(deltas.get(&v.name), Some(digest), "{}", v.label);

        let idx_bytes = read(&v.repo.join(index_path(&v.name.to)));
        let idx = DeltaIndex::from_bytes(&idx_bytes).unwrap();
        assert_eq!(idx.deltas().get(&v.name), Some(digest), "{}", v.label);
        assert!(idx.deltas().ending_at(&v.name.to).count() >= 1);
        assert_eq!(idx.deltas().ending_at(&f.c1).count(), 0);
        // The index lists exactly the deltas to `to` that the summary lists.
        let from_summary: BTreeSet<String> = deltas
            .ending_at(&v.name.to)
            .map(|e| e.name.to_string())
            .collect();
        let from_index: BTreeSet<String> = idx
            .deltas()
            .entries()
            .iter()
            .map(|e| e.name.to_string())
            .collect();
        assert_eq!(from_summary, from_index, "{}", v.label);
        assert_prefixes_fail("delta index", &idx_bytes, |b| {
            DeltaIndex::from_bytes(b).is_ok()
        });
        // The delta directory parses back to the name.
        assert_eq!(DeltaName::from_dir(&v.name.dir()).unwrap(), v.name);
        assert!(v.repo.join(v.name.dir()).is_dir());
    }
}

/// Content of a file object, from the archive repository.
fn file_content(repo: &Path, c: &Checksum) -> Vec<u8> {
    let p = repo.join(loose_path(c, ObjectType::File, RepoMode::Archive));
    let mut r = FilezReader::new(fs::File::open(&p).unwrap()).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

fn header_for(
    payload: &PartPayloadRef<'_>,
    mode: usize,
    xattrs: usize,
    target: &[u8],
) -> FileHeader {
    let m = payload.mode(mode).unwrap();
    FileHeader {
        size: 0,
        uid: m.uid,
        gid: m.gid,
        mode: m.mode,
        rdev: 0,
        symlink_target: String::from_utf8(target.to_vec()).unwrap(),
        xattrs: payload
            .xattrs(xattrs)
            .unwrap()
            .entries()
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect(),
    }
}

/// Executes a part's ops in memory; returns how many objects were produced. Panics unless
/// every object hashes to its listed name.
fn execute_part(
    repo: &Path,
    header: &PartHeader<'_>,
    payload: &PartPayloadRef<'_>,
) -> (usize, bool) {
    struct Open {
        checksum: Checksum,
        mode: usize,
        xattrs: usize,
        size: u64,
        content: Vec<u8>,
    }
    let mut produced = 0;
    let mut saw_xattr = false;
    let mut open: Option<Open> = None;
    let mut source: Option<Vec<u8>> = None;
    for op in payload.ops(header.objects) {
        match op.unwrap() {
            Op::SpliceMetadata { object, data } => {
                assert!(object.object_type.is_meta());
                assert_eq!(Checksum::of(data), object.checksum);
                let ty = object.object_type.variant_type().unwrap();
                cfsync_formats::gvariant::Value::from_bytes(data, ty).unwrap();
                produced += 1;
                source = None;
            }
            Op::SpliceFile {
                object,
                mode,
                xattrs,
                data,
            } => {
                let m = payload.mode(mode).unwrap();
                let is_link = m.mode & S_IFMT == S_IFLNK;
                let h = header_for(payload, mode, xattrs, if is_link { data } else { b"" });
                saw_xattr |= !h.xattrs.is_empty();
                let content = if is_link { &b""[..] } else { data };
                assert_eq!(file_checksum(&h, content).unwrap(), object.checksum);
                produced += 1;
                source = None;
            }
            Op::Open {
                object,
                mode,
                xattrs,
                size,
            } => {
                assert!(open.is_none());
                open = Some(Open {
                    checksum: object.checksum,
                    mode,
                    xattrs,
                    size,
                    content: Vec::new(),
                });
            }
            Op::Write { size, source: src } => {
                let o = open.as_mut().unwrap();
                match src {
                    WriteSource::Blob(b) => o.content.extend_from_slice(b),
                    WriteSource::ReadSource { offset } => {
                        let s = source.as_ref().unwrap();
                        o.content
                            .extend_from_slice(&s[offset as usize..(offset + size) as usize]);
                    }
                }
            }
            Op::SetReadSource { checksum } => source = Some(file_content(repo, &checksum)),
            Op::UnsetReadSource => source = None,
            Op::Bspatch { patch, size } => {
                let o = open.as_mut().unwrap();
                assert_eq!(size, o.size);
                bspatch::apply(source.as_ref().unwrap(), patch, &mut o.content, size).unwrap();
            }
            Op::Close { object } => {
                let o = open.take().unwrap();
                assert_eq!(o.checksum, object.checksum);
                assert_eq!(o.content.len() as u64, o.size);
                let h = header_for(payload, o.mode, o.xattrs, b"");
                saw_xattr |= !h.xattrs.is_empty();
                assert_eq!(file_checksum(&h, &o.content).unwrap(), object.checksum);
                // The same object, read from the repository, has this content.
                assert_eq!(file_content(repo, &object.checksum), o.content);
                produced += 1;
                source = None;
            }
            other => panic!("unexpected op {other:?}"),
        }
    }
    assert!(open.is_none());
    (produced, saw_xattr)
}

#[test]
fn delta_parts_reapply_to_their_named_objects() {
    let f = fixture();
    for v in &f.variants {
        let file_bytes = read(&v.repo.join(v.name.superblock_path()));
        let file = open_superblock(&file_bytes).unwrap();
        let sb = &file.superblock;
        let mut produced = BTreeSet::new();
        let mut saw_xattr = false;
        for p in sb.parts() {
            let bytes = part_bytes(v, sb, p.index);
            let payload = part::decompress(&bytes, p.payload_cap()).unwrap();
            // The streaming reader yields the same payload.
            let mut streamed = Vec::new();
            part::PartPayloadReader::new(&bytes[..], p.payload_cap())
                .read_to_end(&mut streamed)
                .unwrap();
            assert_eq!(streamed, payload.as_ref());
            let pl = PartPayloadRef::from_bytes(&payload).unwrap();
            let (n, x) = execute_part(&f.main, p, &pl);
            assert_eq!(n, p.objects.len(), "{} part {}", v.label, p.index);
            saw_xattr |= x;
            produced.extend(p.objects.iter().map(|o| o.checksum));
        }
        // Parts and fallbacks never overlap, and the scratch deltas carry the whole tree
        // (every dirtree/dirmeta/file of the to-commit except the commit itself).
        for fb in sb.fallbacks() {
            assert!(!produced.contains(&fb.checksum));
        }
        if v.name.from.is_none() {
            let commit = sb.commit().unwrap();
            assert!(produced.contains(&commit.root_contents()), "{}", v.label);
            assert!(produced.contains(&commit.root_metadata()), "{}", v.label);
            assert!(saw_xattr, "{}: the user.test xattr must appear", v.label);
        }
    }
}

#[test]
fn delta_truncations_fail() {
    let f = fixture();
    for v in &f.variants {
        let file_bytes = read(&v.repo.join(v.name.superblock_path()));
        if v.signed {
            assert_prefixes_fail("signed superblock", &file_bytes, |b| {
                SignedSuperblockRef::from_bytes(b).is_ok()
            });
        }
        if !v.inline {
            assert_prefixes_fail("superblock file", &file_bytes, |b| {
                open_superblock(b).is_ok()
            });
        }
        let file = open_superblock(&file_bytes).unwrap();
        assert_prefixes_fail("superblock", file.superblock.data(), |b| {
            SuperblockRef::from_bytes(b).is_ok()
        });
    }
    // Parts: the smallest xz part file, and its payload.
    let v = &f.variants[0];
    let file_bytes = read(&v.repo.join(v.name.superblock_path()));
    let sb = SuperblockRef::from_bytes(&file_bytes).unwrap();
    let p = sb.parts().iter().min_by_key(|p| p.size).unwrap();
    let bytes = part_bytes(v, &sb, p.index);
    let cap = p.payload_cap();
    assert_prefixes_fail("part file", &bytes, |b| part::decompress(b, cap).is_ok());
    assert_prefixes_fail("part file (streaming)", &bytes, |b| {
        let mut out = Vec::new();
        part::PartPayloadReader::new(b, cap)
            .read_to_end(&mut out)
            .is_ok()
    });
    let payload = part::decompress(&bytes, cap).unwrap();
    // A GVariant prefix can itself be a valid (smaller) payload, e.g. three zero bytes
    // are an empty one; what must never pass is a truncated payload whose operations
    // produce the part's listed objects.
    assert_prefixes_fail("part payload", &payload, |b| {
        PartPayloadRef::from_bytes(b).is_ok_and(|pl| pl.op_counts(p.objects).is_ok())
    });
    // A cap below the payload size is an error, not a truncated payload.
    assert!(part::decompress(&bytes, payload.len() as u64 - 1).is_err());
}
