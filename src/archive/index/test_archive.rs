//! A zip writer for tests, with knobs for odd layouts, and a driver for the read loop.

use super::*;

/// One entry for [`Archive`].
#[derive(Clone)]
pub(super) struct Entry {
    pub name: Vec<u8>,
    pub data: Vec<u8>,
    pub flags: u16,
    pub method: u16,
    /// Extra fields for the central header (besides a forced zip64 field).
    pub extra: Vec<u8>,
    /// Overrides the stated local header offset.
    pub offset: Option<u64>,
    /// Overrides the stated compressed size.
    pub compressed: Option<u64>,
}

impl Entry {
    pub fn new(name: &str, data: &[u8]) -> Self {
        Self {
            name: name.as_bytes().to_vec(),
            data: data.to_vec(),
            flags: 0,
            method: 0,
            extra: Vec::new(),
            offset: None,
            compressed: None,
        }
    }
}

/// A zip writer with knobs for the odd layouts.
#[derive(Clone, Default)]
pub(super) struct Archive {
    pub prefix: Vec<u8>,
    /// Offsets count from the start of the object (prefix included), like `zip -A`.
    pub adjust_for_prefix: bool,
    pub entries: Vec<Entry>,
    pub comment: Vec<u8>,
    /// zip64 extra fields in every central header, and zip64 end records.
    pub zip64: bool,
    /// Bytes between the zip64 end record's fixed part and the locator.
    pub zip64_extensible: Vec<u8>,
    /// Overrides the declared entry count.
    pub count: Option<u64>,
}

fn put16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn put32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn put64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}

impl Archive {
    pub fn with(entries: Vec<Entry>) -> Self {
        Self {
            entries,
            ..Self::default()
        }
    }

    pub fn build(&self) -> Vec<u8> {
        let mut out = self.prefix.clone();
        let base = if self.adjust_for_prefix {
            0
        } else {
            out.len() as u64
        };
        let mut offsets = Vec::new();
        for e in &self.entries {
            offsets.push(e.offset.unwrap_or(out.len() as u64 - base));
            let dd = e.flags & 8 != 0;
            let crc = crc32fast::hash(&e.data);
            put32(&mut out, 0x0403_4b50);
            put16(&mut out, 20);
            put16(&mut out, e.flags);
            put16(&mut out, e.method);
            put32(&mut out, 0);
            put32(&mut out, if dd { 0 } else { crc });
            put32(&mut out, if dd { 0 } else { e.data.len() as u32 });
            put32(&mut out, if dd { 0 } else { e.data.len() as u32 });
            put16(&mut out, e.name.len() as u16);
            put16(&mut out, 0);
            out.extend_from_slice(&e.name);
            out.extend_from_slice(&e.data);
            if dd {
                put32(&mut out, 0x0807_4b50);
                put32(&mut out, crc);
                put32(&mut out, e.data.len() as u32);
                put32(&mut out, e.data.len() as u32);
            }
        }
        let cd_start = out.len() as u64 - base;
        for (e, &offset) in self.entries.iter().zip(&offsets) {
            let compressed = e.compressed.unwrap_or(e.data.len() as u64);
            let mut extra = Vec::new();
            if self.zip64 {
                put16(&mut extra, 1);
                put16(&mut extra, 24);
                put64(&mut extra, e.data.len() as u64);
                put64(&mut extra, compressed);
                put64(&mut extra, offset);
            }
            extra.extend_from_slice(&e.extra);
            let small = |x: u64| if self.zip64 { u32::MAX } else { x as u32 };
            put32(&mut out, 0x0201_4b50);
            put16(&mut out, 0x031e);
            put16(&mut out, 20);
            put16(&mut out, e.flags);
            put16(&mut out, e.method);
            put32(&mut out, 0);
            put32(&mut out, crc32fast::hash(&e.data));
            put32(&mut out, small(compressed));
            put32(&mut out, small(e.data.len() as u64));
            put16(&mut out, e.name.len() as u16);
            put16(&mut out, extra.len() as u16);
            put16(&mut out, 0);
            put16(&mut out, 0);
            put16(&mut out, 0);
            put32(&mut out, 0);
            put32(&mut out, small(offset));
            out.extend_from_slice(&e.name);
            out.extend_from_slice(&extra);
        }
        let cd_size = out.len() as u64 - base - cd_start;
        let count = self.count.unwrap_or(self.entries.len() as u64);
        if self.zip64 {
            let record = out.len() as u64 - base;
            put32(&mut out, 0x0606_4b50);
            put64(&mut out, 44 + self.zip64_extensible.len() as u64);
            put16(&mut out, 0x031e);
            put16(&mut out, 45);
            put32(&mut out, 0);
            put32(&mut out, 0);
            put64(&mut out, count);
            put64(&mut out, count);
            put64(&mut out, cd_size);
            put64(&mut out, cd_start);
            out.extend_from_slice(&self.zip64_extensible);
            put32(&mut out, 0x0706_4b50);
            put32(&mut out, 0);
            put64(&mut out, record);
            put32(&mut out, 1);
        }
        put32(&mut out, 0x0605_4b50);
        put16(&mut out, 0);
        put16(&mut out, 0);
        let count16 = if self.zip64 { u16::MAX } else { count as u16 };
        put16(&mut out, count16);
        put16(&mut out, count16);
        put32(&mut out, if self.zip64 { u32::MAX } else { cd_size as u32 });
        put32(
            &mut out,
            if self.zip64 {
                u32::MAX
            } else {
                cd_start as u32
            },
        );
        put16(&mut out, self.comment.len() as u16);
        out.extend_from_slice(&self.comment);
        out
    }
}

/// Indexes `archive` from a tail of `tail_len` bytes, answering every `NeedRange` from
/// `archive`; returns the index and the number of extra reads.
pub(super) fn index_with_tail(
    archive: &[u8],
    tail_len: usize,
    limits: &IndexLimits,
) -> Result<(ZipIndex, usize), ZipError> {
    let start = archive.len().saturating_sub(tail_len);
    let size = archive.len() as u64;
    let mut outcome = parse_tail(&archive[start..], start as u64, size, limits)?;
    let mut reads = 0;
    loop {
        match outcome {
            TailOutcome::Complete(index) => return Ok((index, reads)),
            TailOutcome::NeedRange { range, pending } => {
                reads += 1;
                assert!(reads <= 3, "asked too often");
                assert!(range.start <= range.end && range.end <= size, "{range:?}");
                let bytes = &archive[range.start as usize..range.end as usize];
                outcome = parse_directory(bytes, pending, limits)?;
            }
        }
    }
}

pub(super) fn index(archive: &[u8]) -> Result<ZipIndex, ZipError> {
    index_with_tail(archive, archive.len(), &IndexLimits::default()).map(|(i, _)| i)
}

pub(super) fn names(index: &ZipIndex) -> Vec<&str> {
    index.names().collect()
}

pub(super) fn two_entries() -> Archive {
    Archive::with(vec![
        Entry::new("a.txt", b"hello"),
        Entry::new("dir/b", b"world!"),
    ])
}

pub(super) fn index_names(zip: &[u8]) -> Vec<String> {
    index(zip).unwrap().names().map(str::to_owned).collect()
}
