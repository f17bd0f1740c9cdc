//! A zip writer that lets every field lie: each entry states its sizes and CRC in the
//! local header and in the central directory separately, and may point its directory
//! entry at any offset; zip64 end records can declare any entry count.

use std::io::Write;

/// One entry as written: `data` follows the local header; the local header and the
/// central directory each state their own sizes and CRC.
#[derive(Clone)]
pub(super) struct Spec {
    pub(super) name: String,
    pub(super) method: u16,
    pub(super) data: Vec<u8>,
    /// (crc, compressed, uncompressed) in the local header.
    pub(super) local: (u32, u32, u32),
    /// (crc, compressed, uncompressed) in the central directory.
    pub(super) central: (u32, u32, u32),
    /// Central directory offset of the local header, when it should point elsewhere.
    pub(super) offset: Option<u32>,
}

impl Spec {
    /// An honest stored entry.
    pub(super) fn stored(name: &str, content: &[u8]) -> Self {
        let crc = crc32fast::hash(content);
        let len = content.len() as u32;
        Self {
            name: name.into(),
            method: 0,
            data: content.to_vec(),
            local: (crc, len, len),
            central: (crc, len, len),
            offset: None,
        }
    }

    /// An honest deflated entry.
    pub(super) fn deflated(name: &str, content: &[u8]) -> Self {
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(content).unwrap();
        let data = encoder.finish().unwrap();
        let crc = crc32fast::hash(content);
        let sizes = (crc, data.len() as u32, content.len() as u32);
        Self {
            name: name.into(),
            method: 8,
            data,
            local: sizes,
            central: sizes,
            offset: None,
        }
    }
}

fn u16le(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn u32le(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn u64le(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(super) fn local_header(
    out: &mut Vec<u8>,
    method: u16,
    (crc, csize, usize): (u32, u32, u32),
    name: &[u8],
) {
    u32le(out, 0x0403_4b50);
    shared_fields(out, method, (crc, csize, usize), name);
    out.extend_from_slice(name);
}

/// The fields a local and a central header share, in the same order: from "version
/// needed" to the extra field's length.
fn shared_fields(
    out: &mut Vec<u8>,
    method: u16,
    (crc, csize, usize): (u32, u32, u32),
    name: &[u8],
) {
    u16le(out, 20); // version needed
    u16le(out, 0); // flags
    u16le(out, method);
    u32le(out, 0); // time, date
    u32le(out, crc);
    u32le(out, csize);
    u32le(out, usize);
    u16le(out, name.len() as u16);
    u16le(out, 0); // extra
}

pub(super) fn central_header(
    out: &mut Vec<u8>,
    method: u16,
    (crc, csize, usize): (u32, u32, u32),
    name: &[u8],
    offset: u32,
) {
    u32le(out, 0x0201_4b50);
    u16le(out, 20); // version made by
    shared_fields(out, method, (crc, csize, usize), name);
    u16le(out, 0); // comment
    u16le(out, 0); // disk
    u16le(out, 0); // internal attributes
    u32le(out, 0); // external attributes
    u32le(out, offset);
    out.extend_from_slice(name);
}

/// zip64 end record + locator + EOCD (entry counts saturated) for a directory of `count`
/// entries and `size` bytes at `offset`, itself written at `at`.
pub(super) fn zip64_end(out: &mut Vec<u8>, at: u64, count: u64, size: u64, offset: u64) {
    u32le(out, 0x0606_4b50);
    u64le(out, 44);
    u16le(out, 45);
    u16le(out, 45);
    u32le(out, 0);
    u32le(out, 0);
    u64le(out, count);
    u64le(out, count);
    u64le(out, size);
    u64le(out, offset);
    u32le(out, 0x0706_4b50);
    u32le(out, 0);
    u64le(out, at);
    u32le(out, 1);
    eocd(out, 0xFFFF, u32::MAX, u32::MAX);
}

fn eocd(out: &mut Vec<u8>, count: u16, size: u32, offset: u32) {
    u32le(out, 0x0605_4b50);
    u32le(out, 0); // disk numbers
    u16le(out, count);
    u16le(out, count);
    u32le(out, size);
    u32le(out, offset);
    u16le(out, 0);
}

pub(super) fn build(entries: &[Spec]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for e in entries {
        offsets.push(out.len() as u32);
        local_header(&mut out, e.method, e.local, e.name.as_bytes());
        out.extend_from_slice(&e.data);
    }
    let cd_start = out.len() as u32;
    for (e, &at) in entries.iter().zip(&offsets) {
        let offset = e.offset.unwrap_or(at);
        central_header(&mut out, e.method, e.central, e.name.as_bytes(), offset);
    }
    let cd_size = out.len() as u32 - cd_start;
    eocd(&mut out, entries.len() as u16, cd_size, cd_start);
    out
}
