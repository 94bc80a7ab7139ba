//! Checking a journaled object again before a pull trusts it: metadata and inline files
//! are re-hashed; a large file's composefs object must exist with the declared size, and
//! after a reboot its content is re-hashed too (a damaged object is unlinked).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::file::{FileHasher, decode_sized_archive_header, file_checksum};
use cfsync_formats::journal::ObjectRecord;
use composefs::fsverity::FsVerityHashValue;
use composefs::repository::Repository;

use crate::store::object::{Entry, is_inline_size};

/// Checks one record; returns the entry to seed the builder with, or why not.
pub(super) fn check_record<ObjectID: FsVerityHashValue>(
    repo: &Repository<ObjectID>,
    objects_dir: &Path,
    raw: &ObjectRecord<'_>,
    rehash: bool,
) -> Result<Entry<ObjectID>, String> {
    let Some(ext_hex) = raw.external else {
        // Metadata (or the commit): its bytes hash to its id.
        if Checksum::of(raw.data) == raw.id {
            return Ok(Entry {
                data: raw.data.to_vec(),
                external: None,
            });
        }
        // A file stored inline: sized header plus content.
        let (header, content) = decode_sized_archive_header(raw.data)
            .map_err(|e| format!("not metadata, nor a file entry: {e}"))?;
        let inline_ok = header.is_symlink() && content.is_empty()
            || header.is_regular() && content.len() as u64 == header.size;
        if !inline_ok {
            return Err("inline file entry with a wrong content length".into());
        }
        let sum = file_checksum(&header, content).map_err(|e| e.to_string())?;
        if sum != raw.id {
            return Err(format!("content hashes to {sum}"));
        }
        return Ok(Entry {
            data: raw.data.to_vec(),
            external: None,
        });
    };
    let hex =
        std::str::from_utf8(ext_hex).map_err(|_| "external object id is not hex".to_owned())?;
    let obj = ObjectID::from_hex(hex).map_err(|e| format!("external object id {hex:?}: {e}"))?;
    let (header, rest) =
        decode_sized_archive_header(raw.data).map_err(|e| format!("file header: {e}"))?;
    if !header.is_regular() || !rest.is_empty() || is_inline_size::<ObjectID>(header.size) {
        return Err("external content recorded for a file that must be inline".into());
    }
    let fd = repo
        .open_object(&obj)
        .map_err(|e| format!("composefs object {hex}: {e:#}"))?;
    let mut file = File::from(fd);
    let size = file
        .metadata()
        .map_err(|e| format!("composefs object {hex}: {e}"))?
        .len();
    if size != header.size {
        unlink_damaged(objects_dir, &obj);
        return Err(format!(
            "composefs object {hex} holds {size} bytes, the header says {}",
            header.size
        ));
    }
    if rehash {
        let mut h = FileHasher::new(&header).map_err(|e| e.to_string())?;
        std::io::copy(&mut (&mut file).take(header.size), &mut h)
            .map_err(|e| format!("composefs object {hex}: reading: {e}"))?;
        let sum = h.finish();
        if sum != raw.id {
            unlink_damaged(objects_dir, &obj);
            return Err(format!("composefs object {hex}: content hashes to {sum}"));
        }
    }
    Ok(Entry {
        data: raw.data.to_vec(),
        external: Some(obj),
    })
}

/// Removes a composefs object whose content is not what its name says (lost writes after
/// a power failure), so that storing the right content again recreates it.
fn unlink_damaged<ObjectID: FsVerityHashValue>(objects_dir: &Path, obj: &ObjectID) {
    let path = objects_dir.join(obj.to_object_pathname());
    tracing::warn!("removing damaged composefs object {}", path.display());
    let _ = std::fs::remove_file(path);
}
