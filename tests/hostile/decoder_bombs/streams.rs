//! The compressed data of the entries: content that compresses, real encoders' output, and
//! xz and zstd streams written by hand so that their headers declare any dictionary or
//! window, whatever the data needs.

use async_compression::tokio::bufread::LzmaEncoder;
use async_compression::Level;
use tokio::io::AsyncReadExt;

pub(super) async fn read_all(mut reader: impl tokio::io::AsyncRead + Unpin) -> Vec<u8> {
    let mut out = Vec::new();
    reader.read_to_end(&mut out).await.unwrap();
    out
}

/// Zip's LZMA data from liblzma's `.lzma` output: version, properties size, properties
/// (without the 8-byte size: the end marker closes the stream).
pub(super) async fn zip_lzma(content: &[u8], dictionary: Option<u32>) -> Vec<u8> {
    let alone = read_all(LzmaEncoder::with_quality(content, Level::Precise(1))).await;
    let mut props = alone[..5].to_vec();
    if let Some(dictionary) = dictionary {
        props[1..5].copy_from_slice(&dictionary.to_le_bytes());
    }
    let mut data = vec![9, 20, 5, 0];
    data.extend_from_slice(&props);
    data.extend_from_slice(&alone[13..]);
    data
}

/// An .xz stream written by hand: each block is `(LZMA2 dictionary byte, content)` stored
/// in uncompressed LZMA2 chunks, no integrity check. The dictionary byte is the LZMA2
/// property (40 is 4 GiB - 1, 22 is 8 MiB, 20 is 4 MiB, 16 is 1 MiB).
pub(super) fn xz_by_hand(blocks: &[(u8, &[u8])]) -> Vec<u8> {
    let crc = crc32fast::hash;
    let varint = |mut n: u64, out: &mut Vec<u8>| loop {
        let byte = (n & 0x7F) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    };
    let mut out = vec![0xFD, b'7', b'z', b'X', b'Z', 0, 0, 0];
    out.extend_from_slice(&crc(&[0, 0]).to_le_bytes());
    let mut records = Vec::new();
    for (dictionary, content) in blocks {
        // Block header: size, flags (one filter), LZMA2 with its property, padding, CRC.
        let mut header = vec![0, 0, 0x21, 1, *dictionary];
        while (header.len() + 4) % 4 != 0 {
            header.push(0);
        }
        header[0] = ((header.len() + 4) / 4 - 1) as u8;
        let header_crc = crc(&header);
        header.extend_from_slice(&header_crc.to_le_bytes());
        let start = out.len();
        out.extend_from_slice(&header);
        for (i, chunk) in content.chunks(64 * 1024).enumerate() {
            out.push(if i == 0 { 1 } else { 2 }); // uncompressed; the first resets the dictionary
            out.extend_from_slice(&((chunk.len() - 1) as u16).to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out.push(0);
        let unpadded = out.len() - start;
        while out.len() % 4 != 0 {
            out.push(0);
        }
        records.push((unpadded as u64, content.len() as u64));
    }
    let mut index = vec![0];
    varint(records.len() as u64, &mut index);
    for (unpadded, size) in records {
        varint(unpadded, &mut index);
        varint(size, &mut index);
    }
    while index.len() % 4 != 0 {
        index.push(0);
    }
    let index_crc = crc(&index);
    index.extend_from_slice(&index_crc.to_le_bytes());
    let backward = (index.len() / 4 - 1) as u32;
    out.extend_from_slice(&index);
    let mut footer_fields = backward.to_le_bytes().to_vec();
    footer_fields.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&crc(&footer_fields).to_le_bytes());
    out.extend_from_slice(&footer_fields);
    out.extend_from_slice(b"YZ");
    out
}

/// A zstd frame written by hand with window descriptor `window` (exponent << 3 | mantissa:
/// 0x68 is 8 MiB, 0x88 is 2^27, 0xA0 is 2^30, 0xA8 is 2^31) and `content` as RLE blocks of
/// 128 KiB (or raw blocks when they are not one repeated byte).
pub(super) fn zstd_by_hand(window: u8, content: &[u8]) -> Vec<u8> {
    let mut out = 0xFD2F_B528u32.to_le_bytes().to_vec();
    out.extend_from_slice(&[0, window]); // no checksum, no content size
    let blocks: Vec<&[u8]> = content.chunks(128 * 1024).collect();
    for (i, block) in blocks.iter().enumerate() {
        let last = u32::from(i + 1 == blocks.len());
        let rle = block.iter().all(|&b| b == block[0]);
        let header = last | (u32::from(rle) << 1) | ((block.len() as u32) << 3);
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        if rle {
            out.push(block[0]);
        } else {
            out.extend_from_slice(block);
        }
    }
    out
}

/// Content that compresses but is not trivial: the position's digits.
pub(super) fn text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(format!("{i} ").as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}
