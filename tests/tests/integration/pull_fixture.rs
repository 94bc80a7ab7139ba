//! Pulls of the real fixture (Debian packages, v1 and v2, signed) served by nginx, checked
//! against the two reference implementations:
//!
//! - `cfsctl ostree pull` (composefs-rs) must make the same composefs image id for the
//!   same commit, read what cfsync wrote (`inspect`, `compute-id`, `mount`, `fsck`), and
//!   cfsync must pull on top of what cfsctl wrote, reusing its objects;
//! - `ostree checkout` must give the same tree as the mounted image: paths, types,
//!   modes, owners, symlink targets, xattrs and file contents.
//!
//! Needs ostree, nginx and cfsctl; the mount comparisons need root (CI runs as root) and
//! are skipped with a loud notice otherwise.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use cfsync_tests::{
    Gpg, Mounted, NO_ARGS, Nginx, Node, Ostree, Repo, TreeBuilder, assert_same_tree, can_mount,
    cfsctl, cfsctl_init, cfsctl_ok, cfsctl_pull, copy_tree, field_line, fixture, num, require,
    scratch_dir, snapshot, tempdir,
};

/// What the cfsctl side produced.
struct CfsctlSide {
    v1_image: String,
    v2_image: String,
}

fn checkout_snapshot(os: &Ostree, commit: &str, dest: &Path) -> BTreeMap<String, Node> {
    os.checkout(commit, dest, NO_ARGS);
    snapshot(dest)
}

fn mount_cfsync(repo: &Repo, rev: &str, dir: &Path) -> Mounted {
    Mounted::by(repo.command(["mount", rev, dir.to_str().unwrap()]), dir)
}

#[test]
fn cfsync_matches_cfsctl_image_ids_and_ostree_checkouts_and_shares_repositories() {
    let fx = fixture();
    require("ostree");
    cfsctl();
    let nginx = Nginx::serve(&fx.repo);
    let url = nginx.url();
    // Mounted repositories on disk; everything else on tmpfs (see `scratch_dir`).
    let disk = tempdir();
    let tmp = scratch_dir();
    let mounts = can_mount();
    let os = Ostree::open(&fx.repo);
    let t0 = std::time::Instant::now();
    let phase = |what: &str| eprintln!("[{:6.2}s] {what}", t0.elapsed().as_secs_f64());

    std::thread::scope(|s| {
        // cfsctl: v1 by commit id (object route), a copy of that repository for the
        // "cfsync on top of cfsctl" check, then v2 through the ref (its default route).
        let cfsctl_side = s.spawn(|| {
            let c = tmp.path().join("cfsctl");
            cfsctl_init(&c);
            let v1_image = cfsctl_pull(&c, &url, &fx.v1, true);
            phase("cfsctl v1 pulled");
            copy_tree(&c, &tmp.path().join("cfsctl-v1"));
            let v2_image = cfsctl_pull(&c, &url, &fx.refname, false);
            phase("cfsctl v2 pulled");
            CfsctlSide { v1_image, v2_image }
        });
        // ostree: the reference trees.
        let checkouts = s.spawn(|| {
            if !mounts {
                return None;
            }
            Some((
                checkout_snapshot(&os, &fx.v1, &tmp.path().join("co-v1")),
                checkout_snapshot(&os, &fx.v2, &tmp.path().join("co-v2")),
            ))
        });

        // cfsync: v1 over the object route, then v2 on top of it (default route: a static
        // delta when the engine finds one worth it, objects otherwise).
        let r = Repo::new(disk.path().join("cfsync"));
        r.add_remote("fx", &url, &fx.public_key);
        let st1 = r.pull("fx", &fx.refname, &["--commit", &fx.v1, "--no-deltas"]);
        assert_eq!(st1["commit"], fx.v1.as_str(), "{st1}");
        assert!(
            num(&st1, "objects_fetched") > 1000,
            "v1 is a real OS tree: {st1}"
        );
        assert_eq!(num(&st1, "objects_resumed"), 0, "{st1}");
        let r_v1 = r.image(&fx.refname);
        phase("cfsync v1 pulled");
        assert_eq!(st1["image"], r_v1.as_str());
        let st2 = r.pull("fx", &fx.refname, &[]);
        assert_eq!(st2["commit"], fx.v2.as_str(), "{st2}");
        assert_eq!(st2["previous"], fx.v1.as_str(), "{st2}");
        let r_v2 = r.image(&fx.refname);
        phase("cfsync v2 pulled");
        assert_eq!(st2["image"], r_v2.as_str());
        assert_eq!(r.image(&fx.v1), r_v1, "v1 stays stored, by commit id");
        r.fsck();

        phase("cfsync fsck");
        let cf = cfsctl_side.join().expect("cfsctl side");
        phase("joined cfsctl");
        assert_eq!(r_v1, cf.v1_image, "v1: cfsync and cfsctl image ids differ");
        assert_eq!(r_v2, cf.v2_image, "v2: cfsync and cfsctl image ids differ");

        // cfsctl reads what cfsync wrote.
        let inspect = cfsctl_ok(&r.path, ["ostree", "inspect", &fx.refname]);
        assert_eq!(
            field_line(&inspect, "commit").as_deref(),
            Some(fx.v2.as_str()),
            "cfsctl ostree inspect on cfsync's repository:\n{inspect}"
        );
        assert_eq!(
            field_line(&inspect, "parent").as_deref(),
            Some(fx.v1.as_str())
        );
        let inspect_v1 = cfsctl_ok(&r.path, ["ostree", "inspect", &fx.v1]);
        assert_eq!(
            field_line(&inspect_v1, "commit").as_deref(),
            Some(fx.v1.as_str())
        );
        let computed = cfsctl_ok(&r.path, ["ostree", "compute-id", &fx.refname]);
        assert_eq!(
            computed.trim(),
            r_v2,
            "cfsctl ostree compute-id on cfsync's repository"
        );
        let images = cfsctl_ok(&r.path, ["ostree", "images"]);
        assert!(
            images.contains(&fx.refname) && images.contains(&fx.v2),
            "cfsctl ostree images does not list cfsync's ref:\n{images}"
        );
        cfsctl_ok(&r.path, ["fsck"]);

        phase("cfsctl checks");
        // cfsync on top of a repository cfsctl wrote with v1: reuses its objects.
        let d = Repo::new(tmp.path().join("cfsctl-v1"));
        assert_eq!(
            d.image(&fx.v1),
            cf.v1_image,
            "cfsync reads cfsctl's v1 commit stream"
        );
        d.add_remote("fx", &url, &fx.public_key);
        let std2 = d.pull("fx", &fx.refname, &["--no-deltas"]);
        assert_eq!(std2["image"], cf.v2_image.as_str(), "{std2}");
        let reused = num(&std2, "objects_reused");
        let fetched = num(&std2, "objects_fetched");
        assert!(
            reused > 0 && reused > fetched / 4,
            "v1 and v2 share most of their objects, yet only {reused} were reused ({fetched} fetched): {std2}"
        );
        assert!(
            fetched < num(&st1, "objects_fetched"),
            "an update on top of cfsctl's v1 fetched as much as a fresh pull: {std2}"
        );
        d.fsck();

        phase("cfsync on cfsctl");
        let d_inspect = cfsctl_ok(&d.path, ["ostree", "inspect", &fx.refname]);
        assert_eq!(
            field_line(&d_inspect, "commit").as_deref(),
            Some(fx.v2.as_str())
        );

        // Mounted images against ostree checkouts, through cfsync and through cfsctl.
        let Some((co1, co2)) = checkouts.join().expect("checkouts") else {
            return;
        };
        phase("checkouts joined");
        assert!(
            co1.len() > 1000 && co2.len() > 1000,
            "the checkouts are suspiciously small"
        );
        {
            let m = mount_cfsync(&r, &fx.v1, &disk.path().join("m-v1"));
            assert_same_tree(
                "cfsync mount of v1 vs ostree checkout",
                &snapshot(&m.dir),
                &co1,
            );
            phase("compared v1");
        }
        {
            let m = mount_cfsync(&r, &fx.refname, &disk.path().join("m-v2"));
            assert_same_tree(
                "cfsync mount of v2 vs ostree checkout",
                &snapshot(&m.dir),
                &co2,
            );
        }
        {
            let dir = disk.path().join("m-cfsctl");
            let mut cmd = Command::new(cfsctl());
            cmd.arg("--repo")
                .arg(&r.path)
                .args(["ostree", "mount", &fx.refname])
                .arg(&dir);
            let m = Mounted::by(cmd, &dir);
            phase("cfsctl mounted");
            assert_same_tree(
                "cfsctl ostree mount of cfsync's v2 vs ostree checkout",
                &snapshot(&m.dir),
                &co2,
            );
        }
    });
    drop(nginx);
    tmp.close().unwrap();
    disk.close().unwrap();
    phase("cleaned up");
}

/// The harness's edge-case tree (setuid/setgid/sticky modes, owners, `user.*` and
/// `trusted.*` xattrs on files, directories and symlinks, hard links, long and unicode
/// names, files either side of the inline limit), v1 and its update v2, committed by
/// ostree and pulled by cfsync over the object route: the mounted trees equal `ostree
/// checkout` (as root, which keeps owners and xattrs), and cfsctl reads cfsync's commit
/// streams as the same trees it makes from its own pull.
///
/// The image ids differ from cfsctl's here, and only because of xattrs: composefs-ostree
/// 0.9.4 keeps the NUL that ends each xattr name in OSTree's `a(ayay)` in the EROFS
/// image, so on its mounted image `listxattr` shows an extra empty name and `getxattr`
/// of the real name fails. cfsync strips the NUL (the kernel's and ostree checkout's
/// view). The test checks that this defect is the reason, so it fails if the ids differ
/// for any other reason, and accepts equal ids once cfsctl is fixed.
#[test]
fn edge_case_trees_match_ostree_checkouts_and_cfsctl_reads_them_alike() {
    require("ostree");
    cfsctl();
    if !can_mount() {
        // Building the tree needs root too (owners, trusted.* xattrs).
        return;
    }
    let disk = tempdir();
    let tmp = scratch_dir();
    let v1 = TreeBuilder::new(tmp.path().join("v1"));
    v1.edge_cases();
    let v2 = TreeBuilder::copy_of(v1.root(), tmp.path().join("v2"));
    v2.edge_cases_update();
    let gpg = Gpg::new();
    let os = Ostree::init(tmp.path().join("repo"), "archive");
    let mut args = gpg.sign_args();
    args.push("--timestamp=2025-01-01T00:00:00Z".into());
    let c1 = os.commit("edge/stable", v1.root(), &args);
    let c2 = os.commit("edge/stable", v2.root(), gpg.sign_args());
    os.summary_update(Some(&gpg));
    let key = gpg.write_public_key(tmp.path().join("key.asc"));
    let nginx = Nginx::serve(os.path());
    let url = nginx.url();

    let c = disk.path().join("cfsctl");
    cfsctl_init(&c);
    let r = Repo::new(disk.path().join("cfsync"));
    r.add_remote("edge", &url, &key);
    for (commit, name) in [(&c1, "v1"), (&c2, "v2")] {
        let cf = cfsctl_pull(&c, &url, commit, true);
        r.pull("edge", "edge/stable", &["--no-deltas", "--commit", commit]);
        let ours = r.image(commit);

        let co = checkout_snapshot(&os, commit, &tmp.path().join(format!("co-{name}")));
        // The checkout really carries what the comparison is about.
        assert_eq!(co["/bin/setuid"].mode, 0o4755, "{name}");
        assert_eq!(co["/sticky"].mode, 0o1777, "{name}");
        assert!(
            co["/xattr-file"].xattrs.contains_key("trusted.cfsync"),
            "{name}"
        );
        assert!(co["/xattr-dir"].xattrs.contains_key("user.dir"), "{name}");
        assert!(
            co["/link-xattr"].xattrs.contains_key("trusted.link"),
            "{name}"
        );
        assert_ne!(co["/owned"].uid, 0, "{name}");
        {
            let m = mount_cfsync(&r, commit, &disk.path().join(format!("m-{name}")));
            assert_same_tree(
                &format!("cfsync mount of edge-case {name} vs ostree checkout"),
                &snapshot(&m.dir),
                &co,
            );
        }

        // cfsctl makes the same tree from cfsync's commit stream as from its own.
        let tag = format!("t-{name}");
        cfsctl_ok(&c, ["ostree", "tag", commit.as_str(), tag.as_str()]);
        let theirs_dump = cfsctl_ok(&c, ["ostree", "dump", &tag]);
        cfsctl_ok(&r.path, ["ostree", "tag", commit.as_str(), tag.as_str()]);
        let ours_dump = cfsctl_ok(&r.path, ["ostree", "dump", &tag]);
        assert_eq!(
            ours_dump, theirs_dump,
            "{name}: cfsctl reads cfsync's commit differently"
        );

        if ours != cf {
            let dir = disk.path().join(format!("m-cfsctl-{name}"));
            let mut cmd = Command::new(cfsctl());
            cmd.arg("--repo")
                .arg(&c)
                .args(["ostree", "mount", &tag])
                .arg(&dir);
            let m = Mounted::by(cmd, &dir);
            let mut names = vec![0u8; 4096];
            let n = rustix::fs::llistxattr(m.dir.join("xattr-dir"), &mut names).unwrap();
            assert!(
                names[..n].windows(2).any(|w| w == [0, 0]) || names[..n].starts_with(&[0]),
                "{name}: cfsync's image {ours} differs from cfsctl's {cf}, and not because of \
                 the known NUL in cfsctl's xattr names (listxattr: {:?})",
                String::from_utf8_lossy(&names[..n])
            );
            eprintln!(
                "{name}: image id differs from cfsctl's only through cfsctl's NUL-terminated \
                 xattr names (composefs-ostree 0.9.4)"
            );
        }
    }
    r.fsck();
    drop(nginx);
    tmp.close().unwrap();
    disk.close().unwrap();
}
