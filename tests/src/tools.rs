//! The external tools the tests drive: finding them on `PATH`, and failing with the
//! command that installs one that is missing ([`require`]), never skipping.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The Debian package (or other install step) that provides `tool`.
fn install_hint(tool: &str) -> String {
    let package = match tool {
        "gpg" | "gpgconf" | "gpg-agent" => "gnupg",
        "setfattr" | "getfattr" => "attr",
        "xz" => "xz-utils",
        "mkfs.erofs" | "dump.erofs" | "fsck.erofs" => "erofs-utils",
        "dpkg-deb" => "dpkg",
        "cfsctl" => {
            return "install with `cargo install composefs-ctl --version 0.9.4 \
                    --no-default-features --features ostree,http,pre-6.15 --locked` \
                    or point CFSCTL at the binary"
                .to_owned();
        }
        other => other,
    };
    format!("install with `apt-get install -y {package}`")
}

/// Finds `tool` on `PATH`.
fn which(tool: &str) -> Option<PathBuf> {
    if tool.contains('/') {
        let p = PathBuf::from(tool);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| is_executable(p))
}

/// Whether `p` is a regular file with an execute bit.
pub(crate) fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Returns the path of `tool` on `PATH`, or panics with the command that installs it.
///
/// Tests call this for every external tool they need, so that a machine without the
/// tool fails the test with a clear message instead of skipping it.
pub fn require(tool: &str) -> PathBuf {
    match which(tool) {
        Some(p) => p,
        None => panic!(
            "required tool `{tool}` is not on PATH: {}",
            install_hint(tool)
        ),
    }
}
