//! File-type and permission bits of an OSTree mode (the `st_mode` of a file, dirmeta or
//! delta object header), defined once for every crate.

/// File type bits of a mode.
pub const S_IFMT: u32 = 0o170_000;
/// Directory type.
pub const S_IFDIR: u32 = 0o040_000;
/// Regular file type.
pub const S_IFREG: u32 = 0o100_000;
/// Symbolic link type.
pub const S_IFLNK: u32 = 0o120_000;
/// Permission bits OSTree allows (rwx for u/g/o, setuid, setgid, sticky).
pub const PERMISSION_BITS: u32 = 0o7777;
