//! File objects: headers, the archive `.filez` stream, the sized-header framing and the
//! file-object checksum.
//!
//! Two GVariant headers describe a file object:
//! - the **bare header** `(uuuusa(ayay))`: uid, gid, mode (all **big-endian**), rdev
//!   (must be 0), symlink target (empty for regular files), xattrs;
//! - the **archive header** `(tuuuusa(ayay))`: the same with the uncompressed content
//!   size (**big-endian** `t`, 0 for symlinks) in front.
//!
//! Both are framed the same way ("sized"): `u32` **big-endian** header length, four zero
//! bytes, then the header, so that it starts 8-aligned (`variant_to_lenprefixed_buffer`).
//! - The checksum of a file object is SHA-256 of `sized(bare header with xattrs sorted)`
//!   followed by the content (nothing for symlinks): [`FileHasher`], [`file_checksum`].
//! - An archive `.filez` object is `sized(archive header)` followed by the content as a
//!   raw DEFLATE stream (RFC 1951, no zlib or gzip wrapper; regular files only):
//!   [`FilezReader`].
//! - composefs-ostree commit splitstreams store `sized(archive header)` followed by
//!   small contents inline: [`encode_sized_archive_header`],
//!   [`decode_sized_archive_header`].
//! - `bare-user` repositories keep uid/gid/mode/xattrs in the `user.ostreemeta` xattr,
//!   GVariant `(uuua(ayay))` (big-endian): [`parse_ostreemeta`].
//!
//! Mirrors `ostree_content_stream_parse`, `_ostree_file_header_new`,
//! `_ostree_zlib_file_header_new` and `ostree_validate_structureof_file_mode`
//! (`src/libostree/ostree-core.c`) and `write_content_object`
//! (`ostree-repo-commit.c`). Stricter than ostree: the padding must be zero, xattrs
//! bounded and unique, symlink targets non-empty and bounded, and a `.filez` must end
//! exactly where its deflate stream ends.
//!
//! Layout: `error.rs` ([`Error`]), `header.rs` ([`FileHeader`] and the `bare-user`
//! metadata), `sized.rs` (the sized framing), `hash.rs` (the file-object checksum),
//! `filez.rs` (the `.filez` reader).

mod error;
mod filez;
mod hash;
mod header;
mod sized;

pub use error::Error;
pub use filez::FilezReader;
pub use hash::{FileHasher, file_checksum};
pub use header::{FileHeader, parse_ostreemeta};
pub use sized::{
    decode_sized_archive_header, decode_sized_bare_header, encode_sized_archive_header,
    encode_sized_bare_header,
};

/// GVariant type of the bare file header.
pub const BARE_HEADER_TYPE: &str = "(uuuusa(ayay))";
/// GVariant type of the archive file header.
pub const ARCHIVE_HEADER_TYPE: &str = "(tuuuusa(ayay))";
/// GVariant type of the `user.ostreemeta` xattr of `bare-user` objects.
pub const FILEMETA_TYPE: &str = "(uuua(ayay))";

/// Largest header accepted in a sized framing (10 MiB).
pub const MAX_HEADER_SIZE: usize = 10_485_760;
/// Longest symlink target accepted, in bytes (Linux `PATH_MAX`).
pub const MAX_SYMLINK_TARGET: usize = 4096;

pub use crate::mode::{PERMISSION_BITS, S_IFLNK, S_IFMT, S_IFREG};

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::io::{self, Read};

    fn reg(size: u64) -> FileHeader {
        FileHeader {
            size,
            mode: S_IFREG | 0o644,
            ..Default::default()
        }
    }

    fn filez(h: &FileHeader, content: &[u8]) -> Vec<u8> {
        let mut out = encode_sized_archive_header(h).unwrap();
        if h.is_regular() {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
            io::Write::write_all(&mut e, content).unwrap();
            out.extend(e.finish().unwrap());
        }
        out
    }

    fn read_all(b: &[u8]) -> io::Result<Vec<u8>> {
        let mut r = FilezReader::new(b).map_err(|e| io::Error::other(e.to_string()))?;
        let mut v = Vec::new();
        r.read_to_end(&mut v)?;
        Ok(v)
    }

    #[test]
    fn fixture_vectors() {
        // docs/ostree-formats.md §10.4: empty root-owned 0644 regular file.
        assert_eq!(
            file_checksum(&reg(0), b"").unwrap().to_hex(),
            "cc700d46f407c6c5ab2d5dde474366a928b7398277e61162e7f8ec06f469f07e"
        );
        // /usr/etc/debian_version, .filez bytes from the fixture.
        let fz = hex::decode(concat!(
            "0000001a00000000",
            "0000000000000006",
            "0000000000000000",
            "000081a400000000",
            "00193334d23334e50200"
        ))
        .unwrap();
        let mut r = FilezReader::new(&fz[..]).unwrap();
        assert_eq!(r.header().size, 6);
        let mut c = Vec::new();
        r.read_to_end(&mut c).unwrap();
        assert_eq!(c, b"12.15\n");
        assert_eq!(
            file_checksum(r.header(), &c).unwrap().to_hex(),
            "be10e26383f7609493f53b8bfa0cad632db7d60eecde737acc7b13898b79474a"
        );
        // Symlink /usr/etc/rmt -> /usr/sbin/rmt.
        let link = FileHeader {
            mode: S_IFLNK | 0o777,
            symlink_target: "/usr/sbin/rmt".into(),
            ..Default::default()
        };
        let fz = filez(&link, b"");
        assert_eq!(fz.len(), 8 + 39);
        assert_eq!(
            file_checksum(&link, b"").unwrap().to_hex(),
            "d4543cfc57bda2a6b9b6b0c11ad4fb19a32c8f6acd79083f5222696d82915d70"
        );
        assert_eq!(read_all(&fz).unwrap(), b"");
    }

    #[test]
    fn stream_size_rules() {
        let content = b"hello world, hello world, hello world";
        let good = filez(&reg(content.len() as u64), content);
        assert_eq!(read_all(&good).unwrap(), content);
        // declared shorter than the stream
        let long = filez(&reg(5), content);
        assert!(read_all(&long).is_err());
        // declared longer than the stream
        let short = filez(&reg(100), content);
        assert_eq!(
            read_all(&short).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        // trailing data
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(read_all(&trailing).is_err());
        // every truncation fails
        for n in 0..good.len() {
            assert!(read_all(&good[..n]).is_err(), "prefix {n}");
        }
        // nonzero padding, zero length
        let mut pad = good.clone();
        pad[5] = 1;
        assert!(FilezReader::new(&pad[..]).is_err());
        assert!(FilezReader::new(&[0u8; 8][..]).is_err());
    }

    #[test]
    fn header_validation() {
        let mut h = reg(1);
        h.mode = 0o020644; // char device
        assert!(h.to_archive_bytes().is_err());
        let mut h = reg(1);
        h.rdev = 1;
        assert!(h.to_archive_bytes().is_err());
        let mut h = reg(0);
        h.symlink_target = "x".into();
        assert!(h.to_archive_bytes().is_err());
        let h = FileHeader {
            mode: S_IFLNK | 0o777,
            ..Default::default()
        };
        assert!(h.to_archive_bytes().is_err());
        let h = FileHeader {
            mode: S_IFLNK | 0o777,
            size: 3,
            symlink_target: "x".into(),
            ..Default::default()
        };
        assert!(h.to_archive_bytes().is_err());
        let h = FileHeader {
            mode: S_IFREG | 0o4755,
            xattrs: vec![
                (b"user.b\0".to_vec(), b"2".to_vec()),
                (b"user.a\0".to_vec(), b"1".to_vec()),
            ],
            ..reg(0)
        };
        let sized = encode_sized_archive_header(&h).unwrap();
        let (back, rest) = decode_sized_archive_header(&sized).unwrap();
        assert_eq!(back, h);
        assert!(rest.is_empty());
        // bare header sorts xattrs, so the checksum does not depend on their order
        let mut h2 = h.clone();
        h2.xattrs.reverse();
        assert_eq!(
            file_checksum(&h, b"").unwrap(),
            file_checksum(&h2, b"").unwrap()
        );
        let (bare, _) = decode_sized_bare_header(&encode_sized_bare_header(&h).unwrap()).unwrap();
        assert_eq!(bare.xattrs, h2.xattrs);
    }
}
