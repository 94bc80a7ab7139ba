//! [`CommitStream`]: a commit table loaded from its splitstream, with its object ids
//! bucketed by first byte for lookup.

use cfsync_formats::checksum::Checksum;
use composefs::fsverity::FsVerityHashValue;
use composefs::repository::Repository;

use super::{
    HEADER_LEN, IMAGE_REF_KEY, INFO_LEN, MAX_OBJECTS, NO_EXTERNAL, OSTREE_COMMIT_CONTENT_TYPE,
    commit_stream_name,
};
use crate::store::StoreError;
use crate::store::object::ObjectLookup;

#[derive(Debug, Clone)]
struct Info {
    offset: usize,
    len: usize,
    external: Option<usize>,
}

/// A commit splitstream loaded from the repository.
#[derive(Debug)]
pub struct CommitStream<ObjectID> {
    ids: Vec<Checksum>,
    infos: Vec<Info>,
    buckets: Box<[u32; 256]>,
    data: Vec<u8>,
    externals: Vec<ObjectID>,
    image: Option<ObjectID>,
}

impl<ObjectID: FsVerityHashValue> CommitStream<ObjectID> {
    /// Loads `ostree-commit-<commit>`; `Ok(None)` when the repository has no such stream.
    pub fn load(
        repo: &Repository<ObjectID>,
        commit: &Checksum,
    ) -> Result<Option<Self>, StoreError> {
        let name = commit_stream_name(commit);
        if repo
            .has_stream(&name)
            .map_err(|e| StoreError::composefs("looking up commit stream", e))?
            .is_none()
        {
            return Ok(None);
        }
        let corrupt = |what: &'static str| StoreError::CorruptStream {
            stream: name.clone(),
            what,
        };
        let mut reader = repo
            .open_stream(&name, None, Some(OSTREE_COMMIT_CONTENT_TYPE))
            .map_err(|e| StoreError::composefs("opening commit stream", e))?;
        let image = reader.lookup_named_ref(IMAGE_REF_KEY).cloned();
        let read = |reader: &mut composefs::splitstream::SplitStreamReader<ObjectID>,
                    buf: &mut [u8]|
         -> Result<(), StoreError> {
            match reader.read_inline_exact(buf) {
                Ok(true) => Ok(()),
                Ok(false) => Err(StoreError::CorruptStream {
                    stream: commit_stream_name(commit),
                    what: "external chunk where the object table was expected",
                }),
                Err(e) => Err(StoreError::composefs("reading commit stream", e)),
            }
        };
        let mut header = vec![0u8; HEADER_LEN];
        read(&mut reader, &mut header)?;
        let u32_at = |b: &[u8], at: usize| -> u32 {
            let mut a = [0u8; 4];
            a.copy_from_slice(&b[at..at + 4]);
            u32::from_le_bytes(a)
        };
        let commit_index = u32_at(&header, 0) as usize;
        let mut buckets = Box::new([0u32; 256]);
        for (i, b) in buckets.iter_mut().enumerate() {
            *b = u32_at(&header, 8 + 4 * i);
        }
        if buckets.windows(2).any(|w| w[0] > w[1]) {
            return Err(corrupt("bucket ends are not ascending"));
        }
        let n = buckets[255] as usize;
        if n > MAX_OBJECTS || commit_index >= n {
            return Err(corrupt("object count or commit index out of range"));
        }
        let mut id_bytes = vec![0u8; n * 32];
        read(&mut reader, &mut id_bytes)?;
        let ids: Vec<Checksum> = id_bytes
            .chunks_exact(32)
            .map(|c| {
                let mut a = [0u8; 32];
                a.copy_from_slice(c);
                Checksum(a)
            })
            .collect();
        if ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(corrupt("object ids are not sorted"));
        }
        if ids[commit_index] != *commit {
            return Err(corrupt("commit index does not name the commit"));
        }
        let mut info_bytes = vec![0u8; n * INFO_LEN];
        read(&mut reader, &mut info_bytes)?;
        let mut infos = Vec::with_capacity(n);
        let mut data_len = 0usize;
        for rec in info_bytes.chunks_exact(INFO_LEN) {
            let offset = u32_at(rec, 0) as usize * 8;
            let len = u32_at(rec, 4) as usize;
            let ext = u32_at(rec, 8);
            let end = offset
                .checked_add(len)
                .ok_or_else(|| corrupt("object data range overflows"))?;
            data_len = data_len.max(end.next_multiple_of(8));
            infos.push(Info {
                offset,
                len,
                external: (ext != NO_EXTERNAL).then_some(ext as usize),
            });
        }
        if data_len > 1 << 32 {
            return Err(corrupt("data region larger than 4 GiB"));
        }
        let mut data = vec![0u8; data_len];
        if data_len > 0 {
            read(&mut reader, &mut data)?;
        }
        let mut externals = Vec::new();
        for info in &infos {
            if let Some(idx) = info.external {
                // Collect refs lazily: the table is dense from 0.
                while externals.len() <= idx {
                    let obj = reader
                        .lookup_external_ref(externals.len())
                        .ok_or_else(|| corrupt("object-ref index out of range"))?
                        .clone();
                    externals.push(obj);
                }
            }
        }
        Ok(Some(Self {
            ids,
            infos,
            buckets,
            data,
            externals,
            image,
        }))
    }

    /// The EROFS image linked from this commit, if one was built.
    pub fn image(&self) -> Option<&ObjectID> {
        self.image.as_ref()
    }

    /// Number of objects in the table.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the table is empty (never true for a valid commit stream).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// All object ids, sorted.
    pub fn ids(&self) -> &[Checksum] {
        &self.ids
    }

    fn index_of(&self, id: &Checksum) -> Option<usize> {
        let b = usize::from(id.0[0]);
        let start = if b == 0 {
            0
        } else {
            self.buckets[b - 1] as usize
        };
        let end = self.buckets[b] as usize;
        let slice = self.ids.get(start..end)?;
        slice.binary_search(id).ok().map(|i| i + start)
    }
}

impl<ObjectID: FsVerityHashValue> ObjectLookup<ObjectID> for CommitStream<ObjectID> {
    fn lookup(&self, id: &Checksum) -> Option<(&[u8], Option<&ObjectID>)> {
        let i = self.index_of(id)?;
        let info = self.infos.get(i)?;
        let data = self
            .data
            .get(info.offset..info.offset.checked_add(info.len)?)?;
        let ext = match info.external {
            Some(idx) => Some(self.externals.get(idx)?),
            None => None,
        };
        Some((data, ext))
    }
}
