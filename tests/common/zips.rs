//! Zip archives made by tests: written by the `zip` crate, with where each record landed
//! (read back with the same independent crate, never with the gateway's parser), so that a
//! test knows which bytes of storage each request must read. Also hand-written records for
//! archives no writer makes (zip64 end records over a tiny directory, entries past 4 GiB),
//! content generators, and little-endian field access for damaging archives.
#![allow(dead_code)]

use std::io::{Cursor, Write};
use std::ops::Range;

use zip::write::SimpleFileOptions;
pub use zip::CompressionMethod;

pub const LOCAL_HEADER: u32 = 0x0403_4b50;
pub const CENTRAL_HEADER: u32 = 0x0201_4b50;
pub const END_OF_DIRECTORY: u32 = 0x0605_4b50;
pub const ZIP64_END: u32 = 0x0606_4b50;
pub const ZIP64_LOCATOR: u32 = 0x0706_4b50;

/// An archive and its layout.
pub struct Built {
    pub bytes: Vec<u8>,
    /// In the order written (which is also local header order).
    pub entries: Vec<BuiltEntry>,
    /// The central directory, from its first central header to the end record after it
    /// (the zip64 end record when there is one, else the EOCD).
    pub directory: Range<u64>,
    /// Where the EOCD starts.
    pub eocd: u64,
}

/// Where one entry's records are.
#[derive(Debug, Clone)]
pub struct BuiltEntry {
    pub name: String,
    pub local_header: u64,
    pub data_start: u64,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub central_header: u64,
}

impl BuiltEntry {
    pub fn data(&self) -> Range<u64> {
        self.data_start..self.data_start + self.compressed_size
    }
}

impl Built {
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn entry(&self, name: &str) -> &BuiltEntry {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("the archive has no {name:?}"))
    }

    /// The bytes an entry owns: from its local header to the next entry's local header, or
    /// to the central directory for the last one.
    pub fn span(&self, name: &str) -> Range<u64> {
        let start = self.entry(name).local_header;
        let end = self
            .entries
            .iter()
            .map(|e| e.local_header)
            .filter(|&at| at > start)
            .min()
            .unwrap_or(self.directory.start);
        start..end
    }

    /// Where a tail read of `tail` bytes starts.
    pub fn tail_start(&self, tail: u64) -> u64 {
        self.len().saturating_sub(tail)
    }

    /// Whether the entry's local header (and so all of it) is in the last `tail` bytes.
    pub fn in_tail(&self, name: &str, tail: u64) -> bool {
        self.entry(name).local_header >= self.tail_start(tail)
    }

    /// Whether the whole central directory is in the last `tail` bytes.
    pub fn directory_in_tail(&self, tail: u64) -> bool {
        self.directory.start >= self.tail_start(tail)
    }
}

/// An archive written by the `zip` crate, entries in this order.
pub fn build(entries: &[(&str, &[u8], CompressionMethod)]) -> Built {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes, method) in entries {
        let options = SimpleFileOptions::default().compression_method(*method);
        writer.start_file(*name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    let bytes = writer.finish().unwrap().into_inner();
    let built = layout(bytes);
    assert_eq!(built.entries.len(), entries.len());
    built
}

/// Stored entries only.
pub fn build_stored(entries: &[(&str, &[u8])]) -> Built {
    let entries: Vec<_> = entries
        .iter()
        .map(|(name, bytes)| (*name, *bytes, CompressionMethod::Stored))
        .collect();
    build(&entries)
}

/// The layout of a comment-free archive, read with the `zip` crate.
pub fn layout(bytes: Vec<u8>) -> Built {
    let mut archive = zip::ZipArchive::new(Cursor::new(&bytes)).expect("the zip crate reads it");
    let mut entries = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let file = archive.by_index_raw(i).unwrap();
        entries.push(BuiltEntry {
            name: file.name().to_owned(),
            local_header: file.header_start(),
            data_start: file.data_start(),
            compressed_size: file.compressed_size(),
            uncompressed_size: file.size(),
            central_header: file.central_header_start(),
        });
    }
    let start = archive.central_directory_start();
    drop(archive);
    let eocd = bytes.len() - 22;
    assert_eq!(le32(&bytes, eocd), END_OF_DIRECTORY, "EOCD not at the end");
    let end = if eocd >= 20 && le32(&bytes, eocd - 20) == ZIP64_LOCATOR {
        le64(&bytes, eocd - 20 + 8)
    } else {
        eocd as u64
    };
    entries.sort_by_key(|e| e.local_header);
    Built {
        bytes,
        entries,
        directory: start..end,
        eocd: eocd as u64,
    }
}

/// Deterministic incompressible bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Compressible text of exactly `len` bytes.
pub fn text(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0u64;
    while out.len() < len {
        writeln!(out, "line {i} of text {seed}: the quick brown fox").unwrap();
        i += 1;
    }
    out.truncate(len);
    out
}

pub fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

pub fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

pub fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

pub fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// A local header for a stored entry; with `zip64`, sizes go to a zip64 extra field.
pub fn local_header(name: &str, size: u64, crc: u32, zip64: bool) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&LOCAL_HEADER.to_le_bytes());
    h.extend_from_slice(&(if zip64 { 45u16 } else { 20 }).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // flags
    h.extend_from_slice(&0u16.to_le_bytes()); // stored
    h.extend_from_slice(&0u16.to_le_bytes()); // time
    h.extend_from_slice(&0x21u16.to_le_bytes()); // date: 1980-01-01
    h.extend_from_slice(&crc.to_le_bytes());
    let small = if zip64 { u32::MAX } else { size as u32 };
    h.extend_from_slice(&small.to_le_bytes());
    h.extend_from_slice(&small.to_le_bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&(if zip64 { 20u16 } else { 0 }).to_le_bytes());
    h.extend_from_slice(name.as_bytes());
    if zip64 {
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(&size.to_le_bytes());
        h.extend_from_slice(&size.to_le_bytes());
    }
    h
}

/// A central header for a stored entry, with a zip64 extra field for whatever does not
/// fit in 32 bits.
pub fn central_header(name: &str, size: u64, crc: u32, offset: u64) -> Vec<u8> {
    let big_size = size >= u64::from(u32::MAX);
    let big_offset = offset >= u64::from(u32::MAX);
    let mut zip64 = Vec::new();
    if big_size {
        zip64.extend_from_slice(&size.to_le_bytes());
        zip64.extend_from_slice(&size.to_le_bytes());
    }
    if big_offset {
        zip64.extend_from_slice(&offset.to_le_bytes());
    }
    let mut extra = Vec::new();
    if !zip64.is_empty() {
        extra.extend_from_slice(&1u16.to_le_bytes());
        extra.extend_from_slice(&(zip64.len() as u16).to_le_bytes());
        extra.extend_from_slice(&zip64);
    }
    let mut h = Vec::new();
    h.extend_from_slice(&CENTRAL_HEADER.to_le_bytes());
    h.extend_from_slice(&(0x0300u16 | 45).to_le_bytes()); // made by: unix, 4.5
    h.extend_from_slice(&45u16.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // flags
    h.extend_from_slice(&0u16.to_le_bytes()); // stored
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&0x21u16.to_le_bytes());
    h.extend_from_slice(&crc.to_le_bytes());
    let small = if big_size { u32::MAX } else { size as u32 };
    h.extend_from_slice(&small.to_le_bytes());
    h.extend_from_slice(&small.to_le_bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // comment
    h.extend_from_slice(&0u16.to_le_bytes()); // disk
    h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
    h.extend_from_slice(&0o100644u32.wrapping_shl(16).to_le_bytes());
    let small_offset = if big_offset { u32::MAX } else { offset as u32 };
    h.extend_from_slice(&small_offset.to_le_bytes());
    h.extend_from_slice(name.as_bytes());
    h.extend_from_slice(&extra);
    h
}

/// zip64 end record (declaring `count` entries) + locator + EOCD, for a directory of
/// `size` bytes at `offset`, written at `at`.
pub fn zip64_end(at: u64, offset: u64, size: u64, count: u64) -> Vec<u8> {
    let mut e = Vec::new();
    e.extend_from_slice(&ZIP64_END.to_le_bytes());
    e.extend_from_slice(&44u64.to_le_bytes());
    e.extend_from_slice(&45u16.to_le_bytes());
    e.extend_from_slice(&45u16.to_le_bytes());
    e.extend_from_slice(&0u32.to_le_bytes());
    e.extend_from_slice(&0u32.to_le_bytes());
    e.extend_from_slice(&count.to_le_bytes());
    e.extend_from_slice(&count.to_le_bytes());
    e.extend_from_slice(&size.to_le_bytes());
    e.extend_from_slice(&offset.to_le_bytes());
    // Locator.
    e.extend_from_slice(&ZIP64_LOCATOR.to_le_bytes());
    e.extend_from_slice(&0u32.to_le_bytes());
    e.extend_from_slice(&at.to_le_bytes());
    e.extend_from_slice(&1u32.to_le_bytes());
    // EOCD, saturated.
    e.extend_from_slice(&END_OF_DIRECTORY.to_le_bytes());
    e.extend_from_slice(&0u16.to_le_bytes());
    e.extend_from_slice(&0u16.to_le_bytes());
    e.extend_from_slice(&u16::MAX.to_le_bytes());
    e.extend_from_slice(&u16::MAX.to_le_bytes());
    e.extend_from_slice(&u32::MAX.to_le_bytes());
    e.extend_from_slice(&u32::MAX.to_le_bytes());
    e.extend_from_slice(&0u16.to_le_bytes());
    e
}

/// A tiny zip64 archive with one real stored entry `tiny.txt` (`tiny\n`) whose end record
/// declares `count` entries.
pub fn zip64_tiny(count: u64) -> Vec<u8> {
    let data = b"tiny\n";
    let crc = crc32fast::hash(data);
    let mut bytes = local_header("tiny.txt", data.len() as u64, crc, false);
    bytes.extend_from_slice(data);
    let directory = central_header("tiny.txt", data.len() as u64, crc, 0);
    let offset = bytes.len() as u64;
    bytes.extend_from_slice(&directory);
    let at = bytes.len() as u64;
    bytes.extend(zip64_end(at, offset, directory.len() as u64, count));
    bytes
}
