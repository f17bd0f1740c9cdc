//! Small entries decoded in one piece. An entry whose stored and decoded sizes are both at
//! most [`SMALL_ENTRY`], stored or deflated, is read with one bounded read (or taken from
//! the cached tail) and decoded on the calling thread into one buffer of its declared
//! size, then checked for size and CRC-32 before any byte is served. No decoder task, no
//! stream of chunks: for a 1 KiB file that machinery cost more than the file.
//!
//! The buffer is sized from the declared size, which [`fits`] bounds first, so an archive
//! cannot make this allocate more than `SMALL_ENTRY` bytes of output; output past the
//! declared size is an error, not a larger buffer.

use std::ops::Range;

use bytes::Bytes;
use flate2::{Decompress, FlushDecompress, Status};

use super::{data_span, EntryError};
use crate::archive::index::{EntryInfo, Method};

/// Largest stored and decoded size taken this way; larger entries stream.
pub const SMALL_ENTRY: u64 = 64 * 1024;

/// Local header bytes read beyond its fixed 30 with the entry, for its name and extra field.
/// A longer header (they can reach 128 KiB) costs one more read.
const HEADER_SLACK: u64 = 1024;

/// Whether the entry is decoded in one piece.
pub fn fits(info: &EntryInfo) -> bool {
    matches!(info.method, Method::Stored | Method::Deflate)
        && info.compressed_size <= SMALL_ENTRY
        && info.uncompressed_size <= SMALL_ENTRY
}

/// The first read of a small entry: its local header, the usual slack for the header's
/// name and extra field, and its bytes; never past `data_end`.
pub fn first_read(info: &EntryInfo) -> Range<u64> {
    let want = 30 + HEADER_SLACK + info.compressed_size;
    info.local_header_offset..info.data_end.min(info.local_header_offset + want)
}

/// Where the entry's stored bytes are, from `raw` (which starts at the local header): the
/// span in the object, checked against the directory like the streaming path.
pub fn stored_span(raw: &[u8], info: &EntryInfo) -> Result<Range<u64>, EntryError> {
    let header = raw.get(..30).ok_or(EntryError::BadLocalHeader)?;
    data_span(header, info)
}

/// The entry's decoded bytes from its stored bytes `data`, checked for size and CRC-32.
pub fn decode(data: Bytes, info: &EntryInfo, label: &str) -> Result<Bytes, EntryError> {
    let decoded = match info.method {
        Method::Stored => data,
        Method::Deflate => inflate(&data, info.uncompressed_size)?,
        // `fits` lets no other method through.
        _ => return Err(EntryError::Io("not a small entry's method".into())),
    };
    let fail = |reason: String| {
        tracing::error!(entry = %label, %reason, "entry failed verification");
        Err(EntryError::Corrupt(reason))
    };
    if decoded.len() as u64 != info.uncompressed_size {
        return fail(format!(
            "entry ended after {} of {} bytes",
            decoded.len(),
            info.uncompressed_size
        ));
    }
    let crc = crc32fast::hash(&decoded);
    if crc != info.crc32 {
        return fail(format!(
            "CRC-32 {crc:08x} does not match {:08x}",
            info.crc32
        ));
    }
    Ok(decoded)
}

/// Raw deflate into a buffer one byte larger than declared: filling that byte means the
/// entry inflates past its size.
fn inflate(data: &[u8], size: u64) -> Result<Bytes, EntryError> {
    let size = usize::try_from(size).map_err(|_| EntryError::SizesDoNotFit)?;
    let mut out = Vec::with_capacity(size + 1);
    let mut inflater = Decompress::new(false);
    // One call normally finishes; each further one must make progress.
    for _ in 0..4 {
        let (read, written) = (inflater.total_in(), inflater.total_out());
        let at = usize::try_from(read).unwrap_or(usize::MAX).min(data.len());
        let status = inflater
            .decompress_vec(&data[at..], &mut out, FlushDecompress::Finish)
            .map_err(|e| EntryError::Corrupt(format!("deflate stream is damaged: {e}")))?;
        if out.len() > size {
            return Err(EntryError::Corrupt(format!(
                "entry inflates past its declared size of {size} bytes"
            )));
        }
        if status == Status::StreamEnd {
            return Ok(Bytes::from(out));
        }
        if (inflater.total_in(), inflater.total_out()) == (read, written) {
            break;
        }
    }
    Err(EntryError::Corrupt(
        "deflate stream ends before its end marker".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn deflated(data: &[u8]) -> Vec<u8> {
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn info(method: Method, stored: &[u8], plain: &[u8]) -> EntryInfo {
        EntryInfo {
            local_header_offset: 0,
            compressed_size: stored.len() as u64,
            uncompressed_size: plain.len() as u64,
            method,
            flags: 0,
            crc32: crc32fast::hash(plain),
            data_end: 30 + stored.len() as u64,
        }
    }

    #[test]
    fn inflates_and_checks_a_deflated_entry() {
        let plain: Vec<u8> = (0..5000u32).flat_map(|i| (i % 7).to_le_bytes()).collect();
        let stored = deflated(&plain);
        let info = info(Method::Deflate, &stored, &plain);
        let out = decode(Bytes::from(stored), &info, "t").unwrap();
        assert_eq!(&out[..], &plain[..]);
    }

    #[test]
    fn refuses_wrong_crc_short_and_long_output_and_a_cut_stream() {
        let plain = b"hello, small entry".repeat(20);
        let stored = deflated(&plain);
        let mut bad_crc = info(Method::Deflate, &stored, &plain);
        bad_crc.crc32 ^= 1;
        let err = decode(Bytes::from(stored.clone()), &bad_crc, "t").unwrap_err();
        assert!(err.to_string().contains("CRC-32"), "{err}");
        // Declared one byte short: inflating fills the extra byte.
        let mut short = info(Method::Deflate, &stored, &plain);
        short.uncompressed_size -= 1;
        let err = decode(Bytes::from(stored.clone()), &short, "t").unwrap_err();
        assert!(err.to_string().contains("past its declared size"), "{err}");
        let mut long = info(Method::Deflate, &stored, &plain);
        long.uncompressed_size += 1;
        assert!(decode(Bytes::from(stored.clone()), &long, "t").is_err());
        let cut = Bytes::copy_from_slice(&stored[..stored.len() / 2]);
        let err = decode(cut, &info(Method::Deflate, &stored, &plain), "t").unwrap_err();
        assert!(err.to_string().contains("before its end marker"), "{err}");
        let stored_info = info(Method::Stored, &plain, &plain);
        assert!(decode(Bytes::copy_from_slice(&plain), &stored_info, "t").is_ok());
        let mut flipped = plain.clone();
        flipped[3] ^= 0x20;
        assert!(decode(Bytes::from(flipped), &stored_info, "t").is_err());
    }

    #[test]
    fn only_small_stored_or_deflated_entries_fit() {
        let small = info(Method::Deflate, &[0; 10], &[0; 100]);
        assert!(fits(&small));
        let big = EntryInfo {
            uncompressed_size: SMALL_ENTRY + 1,
            ..small
        };
        assert!(!fits(&big));
        let other = EntryInfo {
            method: Method::Bzip2,
            ..small
        };
        assert!(!fits(&other));
        // The first read never passes the entry's end, however large the slack.
        assert_eq!(first_read(&small).end, small.data_end);
    }
}
