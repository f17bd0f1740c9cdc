//! A part of an archive as a new zip, laid out from the index alone: the chosen entries'
//! compressed bytes copied unchanged behind new local headers, then a new central
//! directory with the index's CRCs and sizes, then the end records. Pure: no I/O.
//!
//! Every byte of the answer is known before the first is sent, so its length (and any
//! range of it) is too:
//! - entries go out in the order of their local headers in the source, so the bytes to
//!   copy are read front to back, and neighbours in one storage read;
//! - a local header is written with the CRC and both sizes (flag bit 3, "data descriptor
//!   follows", is cleared, and no descriptor is written), the name as UTF-8 (bit 11), the
//!   source's compression options (bits 1 and 2: LZMA's end marker, deflate levels) and
//!   its MS-DOS time; no other extra field than zip64's;
//! - zip64 fields appear where a size, an offset or the count needs them: per entry when a
//!   size or its new offset reaches 4 GiB, and the zip64 end records when the count
//!   reaches 65,535 or the directory's size or offset 4 GiB;
//! - the central directory keeps each entry's Unix mode (made by "Unix") or none (made by
//!   MS-DOS), and marks directories with the MS-DOS directory attribute.

use super::index::format::{
    CENTRAL_HEADER_LEN, CENTRAL_HEADER_SIG, EOCD_LEN, EOCD_SIG, LOCAL_HEADER_LEN, LOCAL_HEADER_SIG,
    LOCATOR_LEN, LOCATOR_SIG, ZIP64_EOCD_LEN, ZIP64_EOCD_SIG, ZIP64_EXTRA_ID,
};
use super::index::{Listed, ZipIndex};

/// Flag bits kept from the source: compression options. Bit 11 (UTF-8 names) is set.
const KEPT_FLAGS: u16 = 0x0006;
const UTF8_FLAG: u16 = 0x0800;
/// Traditional encryption (bit 0) and strong encryption (bit 6): such entries need the
/// source's extra fields and headers as they were, which a new archive does not keep.
pub const ENCRYPTION_FLAGS: u16 = 0x0041;
/// WinZip AES, which also needs its extra field.
pub const AES_METHOD: u16 = 99;

const SATURATED_16: u64 = 0xFFFF;
const SATURATED_32: u64 = 0xFFFF_FFFF;
const MSDOS_DIRECTORY: u32 = 0x10;
const HOST_UNIX: u16 = 3 << 8;
/// "Version made by": APPNOTE 6.3.
const MADE_BY_VERSION: u16 = 63;

/// The version a reader needs for `method` (APPNOTE 4.4.3).
fn version_needed(entry: &Listed<'_>, zip64: bool) -> u16 {
    let method = match entry.method_code {
        0 => 10,
        8 => 20,
        9 => 21,
        12 => 46,
        _ => 63,
    };
    let directory = if entry.name.ends_with('/') { 20 } else { 0 };
    let zip64 = if zip64 { 45 } else { 0 };
    method.max(directory).max(zip64)
}

fn sizes_need_zip64(entry: &Listed<'_>) -> bool {
    entry.info.compressed_size >= SATURATED_32 || entry.info.uncompressed_size >= SATURATED_32
}

fn flags(entry: &Listed<'_>) -> u16 {
    entry.info.flags & KEPT_FLAGS | UTF8_FLAG
}

/// Length of the local header written for `entry`.
pub fn local_header_len(entry: &Listed<'_>) -> u64 {
    let extra = if sizes_need_zip64(entry) { 20 } else { 0 };
    LOCAL_HEADER_LEN + entry.name.len() as u64 + extra
}

/// The local header written for `entry`.
pub fn local_header(entry: &Listed<'_>) -> Vec<u8> {
    let zip64 = sizes_need_zip64(entry);
    let mut out = Vec::with_capacity(local_header_len(entry) as usize);
    put32(&mut out, LOCAL_HEADER_SIG);
    put16(&mut out, version_needed(entry, zip64));
    put16(&mut out, flags(entry));
    put16(&mut out, entry.method_code);
    put32(&mut out, entry.modified); // time (low half), then date
    put32(&mut out, entry.info.crc32);
    let (compressed, uncompressed) = if zip64 {
        (SATURATED_32, SATURATED_32)
    } else {
        (entry.info.compressed_size, entry.info.uncompressed_size)
    };
    put32(&mut out, compressed as u32);
    put32(&mut out, uncompressed as u32);
    put16(&mut out, entry.name.len() as u16);
    put16(&mut out, if zip64 { 20 } else { 0 });
    out.extend_from_slice(entry.name.as_bytes());
    if zip64 {
        put16(&mut out, ZIP64_EXTRA_ID);
        put16(&mut out, 16);
        put64(&mut out, entry.info.uncompressed_size);
        put64(&mut out, entry.info.compressed_size);
    }
    out
}

fn central_extra_len(entry: &Listed<'_>, offset: u64) -> u64 {
    let fields = if sizes_need_zip64(entry) { 2 } else { 0 } + u64::from(offset >= SATURATED_32);
    if fields == 0 {
        0
    } else {
        4 + 8 * fields
    }
}

/// Length of the central header written for `entry` with its local header at `offset`.
pub fn central_header_len(entry: &Listed<'_>, offset: u64) -> u64 {
    CENTRAL_HEADER_LEN + entry.name.len() as u64 + central_extra_len(entry, offset)
}

/// The central header written for `entry`, whose local header is at `offset` in the
/// answer, appended to `out`.
pub fn central_header(entry: &Listed<'_>, offset: u64, out: &mut Vec<u8>) {
    let sizes = sizes_need_zip64(entry);
    let big_offset = offset >= SATURATED_32;
    let extra = central_extra_len(entry, offset);
    let made_by = if entry.unix_mode != 0 {
        HOST_UNIX | MADE_BY_VERSION
    } else {
        MADE_BY_VERSION
    };
    put32(out, CENTRAL_HEADER_SIG);
    put16(out, made_by);
    put16(out, version_needed(entry, sizes || big_offset));
    put16(out, flags(entry));
    put16(out, entry.method_code);
    put32(out, entry.modified);
    put32(out, entry.info.crc32);
    let (compressed, uncompressed) = if sizes {
        (SATURATED_32, SATURATED_32)
    } else {
        (entry.info.compressed_size, entry.info.uncompressed_size)
    };
    put32(out, compressed as u32);
    put32(out, uncompressed as u32);
    put16(out, entry.name.len() as u16);
    put16(out, extra as u16);
    put16(out, 0); // comment
    put16(out, 0); // disk
    put16(out, 0); // internal attributes
    let directory = if entry.name.ends_with('/') {
        MSDOS_DIRECTORY
    } else {
        0
    };
    put32(out, u32::from(entry.unix_mode) << 16 | directory);
    put32(out, offset.min(SATURATED_32) as u32);
    out.extend_from_slice(entry.name.as_bytes());
    if extra > 0 {
        put16(out, ZIP64_EXTRA_ID);
        put16(out, (extra - 4) as u16);
        if sizes {
            put64(out, entry.info.uncompressed_size);
            put64(out, entry.info.compressed_size);
        }
        if big_offset {
            put64(out, offset);
        }
    }
}

/// Where everything of the answer is.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Index positions of the entries, in the order of their local headers in the source.
    pub members: Vec<u32>,
    pub directory_offset: u64,
    pub directory_len: u64,
    /// Whether the zip64 end record and locator precede the end record.
    pub zip64_end: bool,
    pub len: u64,
}

impl Layout {
    /// The layout of an answer holding the entries at `positions` of `index`.
    pub fn new(index: &ZipIndex, mut positions: Vec<u32>) -> Layout {
        let entry = |at: &u32| index.at(*at as usize).expect("a position of this index");
        positions.sort_unstable_by_key(|at| entry(at).info.local_header_offset);
        let mut offset = 0u64;
        let mut directory_len = 0u64;
        for at in &positions {
            let e = entry(at);
            directory_len += central_header_len(&e, offset);
            offset += local_header_len(&e) + e.info.compressed_size;
        }
        let zip64_end = positions.len() as u64 >= SATURATED_16
            || directory_len >= SATURATED_32
            || offset >= SATURATED_32;
        let end = EOCD_LEN
            + if zip64_end {
                ZIP64_EOCD_LEN + LOCATOR_LEN
            } else {
                0
            };
        Layout {
            members: positions,
            directory_offset: offset,
            directory_len,
            zip64_end,
            len: offset + directory_len + end,
        }
    }

    /// The end records: the zip64 end record and locator when needed, then the EOCD.
    pub fn end_records(&self) -> Vec<u8> {
        let count = self.members.len() as u64;
        let mut out = Vec::new();
        if self.zip64_end {
            let at = self.directory_offset + self.directory_len;
            put32(&mut out, ZIP64_EOCD_SIG);
            put64(&mut out, ZIP64_EOCD_LEN - 12);
            put16(&mut out, MADE_BY_VERSION);
            put16(&mut out, 45);
            put32(&mut out, 0);
            put32(&mut out, 0);
            put64(&mut out, count);
            put64(&mut out, count);
            put64(&mut out, self.directory_len);
            put64(&mut out, self.directory_offset);
            put32(&mut out, LOCATOR_SIG);
            put32(&mut out, 0);
            put64(&mut out, at);
            put32(&mut out, 1);
        }
        put32(&mut out, EOCD_SIG);
        put16(&mut out, 0);
        put16(&mut out, 0);
        put16(&mut out, count.min(SATURATED_16) as u16);
        put16(&mut out, count.min(SATURATED_16) as u16);
        put32(&mut out, self.directory_len.min(SATURATED_32) as u32);
        put32(&mut out, self.directory_offset.min(SATURATED_32) as u32);
        put16(&mut out, 0);
        out
    }
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::index::{EntryInfo, Method};

    fn listed(name: &str, compressed: u64, uncompressed: u64) -> Listed<'_> {
        Listed {
            name,
            info: EntryInfo {
                local_header_offset: 0,
                compressed_size: compressed,
                uncompressed_size: uncompressed,
                method: Method::Deflate,
                flags: 0x0008 | 0x0002,
                crc32: 0xDEAD_BEEF,
                data_end: 0,
            },
            method_code: 8,
            modified: 0x5821_6D6F,
            unix_mode: 0o100_644,
        }
    }

    #[test]
    fn header_lengths_match_what_is_written() {
        for (compressed, uncompressed) in [(10, 20), (SATURATED_32, 1), (1, 5 << 32)] {
            let e = listed("dir/a.txt", compressed, uncompressed);
            assert_eq!(local_header(&e).len() as u64, local_header_len(&e));
            for offset in [0, SATURATED_32 - 1, SATURATED_32, 9 << 32] {
                let mut out = Vec::new();
                central_header(&e, offset, &mut out);
                assert_eq!(out.len() as u64, central_header_len(&e, offset));
            }
        }
    }

    #[test]
    fn local_header_fields() {
        let e = listed("a", 10, 20);
        let h = local_header(&e);
        let le16 = |at: usize| u16::from_le_bytes([h[at], h[at + 1]]);
        let le32 = |at: usize| u32::from_le_bytes(h[at..at + 4].try_into().unwrap());
        assert_eq!(le32(0), LOCAL_HEADER_SIG);
        assert_eq!(le16(4), 20);
        // Descriptor bit cleared, compression option kept, UTF-8 set.
        assert_eq!(le16(6), 0x0802);
        assert_eq!(le16(8), 8);
        // Time first (low half of `modified`), then date.
        assert_eq!((le16(10), le16(12)), (0x6D6F, 0x5821));
        assert_eq!((le32(14), le32(18), le32(22)), (0xDEAD_BEEF, 10, 20));
        assert_eq!((le16(26), le16(28)), (1, 0));
        assert_eq!(&h[30..], b"a");
    }
}
