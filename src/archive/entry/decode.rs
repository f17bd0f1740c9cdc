//! Building an entry's decoder within its memory limits: the dictionary or window is read
//! from the entry's own header (LZMA properties, zstd frame header, first xz block header,
//! bzip2 block size) before the decoder exists, refused above `zip.max_decoder_memory`,
//! reserved from the [`MemoryBudget`], and handed to the decoder as its own limit.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_compression::tokio::bufread::{
    BzDecoder, Deflate64Decoder, DeflateDecoder, LzmaDecoder, XzDecoder, ZstdDecoder,
};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncReadExt};

use super::{EntryError, OUT_CHUNK};
use crate::archive::budget::{MemoryBudget, Reservation};
use crate::archive::index::{EntryInfo, Method};

/// Buffers of one entry stream besides the decoder's own state, reserved with every
/// decoder: the output buffer, the chunk held back, the chunk hyper writes, and the
/// storage chunk being read.
pub const STREAM_BUFFERS: u64 = 4 * OUT_CHUNK as u64;

/// Deflate's state beside its 32 KiB window (zlib-rs: about 10 KiB), rounded up.
const DEFLATE_MEMORY: u64 = 64 * 1024;
/// Deflate64: a 64 KiB window and its tables.
const DEFLATE64_MEMORY: u64 = 160 * 1024;
/// liblzma beside the dictionary: probabilities (lc + lp is at most 4 there, about 24
/// KiB), range decoder, and the .xz stream and block decoders; generously rounded up.
const LZMA_STATE: u64 = 512 * 1024;
/// zstd beside its window: the decoding context and two 128 KiB blocks, rounded up.
const ZSTD_STATE: u64 = 512 * 1024;
/// bzip2's fixed state beside the 4 bytes per byte of its block (libbzip2, not "small").
const BZIP2_STATE: u64 = 64 * 1024;
/// Longest zstd frame header: magic, descriptor, window, dictionary id, content size.
const ZSTD_HEADER_MAX: usize = 18;
/// An .xz stream header and the largest block header after it.
const XZ_HEADER_MAX: usize = 12 + 1024;

/// The decoder for the entry's method over its compressed bytes, with its memory reserved
/// from `budget` until the reader is dropped. Refuses a dictionary or window over the cap
/// ([`EntryError::DecoderMemory`]) and a spent budget ([`EntryError::Busy`]) before the
/// decoder allocates.
pub async fn decoder<R>(
    mut input: R,
    info: &EntryInfo,
    budget: &MemoryBudget,
) -> Result<Box<dyn AsyncRead + Send + Unpin>, EntryError>
where
    R: AsyncBufRead + Send + Unpin + 'static,
{
    let cap = budget.decoder_cap;
    let refuse = |method, what, size| EntryError::DecoderMemory {
        method,
        what,
        size,
        cap,
    };
    // (decoder, its memory besides the stream buffers, the limit it was built with)
    let (reader, memory, limit): (Box<dyn AsyncRead + Send + Unpin>, u64, Option<(&str, u64)>) =
        match info.method {
            Method::Stored => (Box::new(input), 0, None),
            Method::Deflate => (Box::new(DeflateDecoder::new(input)), DEFLATE_MEMORY, None),
            Method::Deflate64 => (
                Box::new(Deflate64Decoder::new(input)),
                DEFLATE64_MEMORY,
                None,
            ),
            Method::Bzip2 => {
                // The format bounds bzip2: "BZh1".."BZh9" declares blocks of 100k to 900k,
                // and libbzip2 holds 4 bytes per block byte (3.4 MiB at most). Only one
                // stream is decoded, so the first header is the only one that counts.
                let prefix = read_prefix(&mut input, 4).await?;
                let level = match prefix.as_slice() {
                    [b'B', b'Z', b'h', level @ b'1'..=b'9'] => u64::from(level - b'0'),
                    _ => 9,
                };
                let block = level * 100_000 * 4;
                if block > cap {
                    return Err(refuse("bzip2", "block", block));
                }
                let input = std::io::Cursor::new(prefix).chain(input);
                (Box::new(BzDecoder::new(input)), block + BZIP2_STATE, None)
            }
            Method::Zstd => {
                let prefix = read_prefix(&mut input, ZSTD_HEADER_MAX).await?;
                let window = match zstd_window(&prefix) {
                    Some(window) if window > cap => return Err(refuse("zstd", "window", window)),
                    Some(window) => window,
                    // A skippable frame first, or not zstd (the decoder will say so).
                    None => cap,
                };
                // zstd limits windows by powers of two: reserve the power it is given.
                let log = u64::BITS - window.max(1 << 10).saturating_sub(1).leading_zeros();
                let log = log.clamp(10, 31);
                let params = [async_compression::zstd::DParameter::window_log_max(log)];
                let input = std::io::Cursor::new(prefix).chain(input);
                (
                    Box::new(ZstdDecoder::with_params(input, &params)),
                    (1u64 << log) + ZSTD_STATE,
                    Some(("zstd", 1u64 << log)),
                )
            }
            Method::Xz => {
                let prefix = read_prefix(&mut input, XZ_HEADER_MAX).await?;
                let dictionary = match xz_dictionary(&prefix) {
                    Some(dict) if dict > cap => return Err(refuse("xz", "LZMA2 dictionary", dict)),
                    Some(dict) => dict,
                    None => cap,
                };
                let memlimit = dictionary + LZMA_STATE;
                let input = std::io::Cursor::new(prefix).chain(input);
                (
                    Box::new(XzDecoder::with_mem_limit(input, memlimit)),
                    memlimit,
                    Some(("xz", memlimit)),
                )
            }
            Method::Lzma => {
                // Zip's LZMA: 2 bytes version, 2 bytes properties size (5), the properties
                // (lc/lp/pb, then the dictionary size), then a raw LZMA stream. The decoder
                // wants the `.lzma` header: properties and the uncompressed size (unknown
                // when flag bit 1 says an end marker follows).
                let mut prefix = [0u8; 4];
                input
                    .read_exact(&mut prefix)
                    .await
                    .map_err(|_| EntryError::BadLzmaHeader)?;
                if u16::from_le_bytes([prefix[2], prefix[3]]) != 5 {
                    return Err(EntryError::BadLzmaHeader);
                }
                let mut header = vec![0u8; 13];
                input
                    .read_exact(&mut header[..5])
                    .await
                    .map_err(|_| EntryError::BadLzmaHeader)?;
                let dictionary = u64::from(u32::from_le_bytes([
                    header[1], header[2], header[3], header[4],
                ]));
                if dictionary > cap {
                    return Err(refuse("LZMA", "dictionary", dictionary));
                }
                let size = if info.flags & 0x0002 != 0 {
                    u64::MAX
                } else {
                    info.uncompressed_size
                };
                header[5..].copy_from_slice(&size.to_le_bytes());
                let joined = std::io::Cursor::new(header).chain(input);
                let memlimit = dictionary + LZMA_STATE;
                (
                    Box::new(LzmaDecoder::with_mem_limit(joined, memlimit)),
                    memlimit,
                    Some(("LZMA", memlimit)),
                )
            }
            Method::Other(code) => return Err(EntryError::UnsupportedMethod(code)),
        };
    let reservation = budget.try_reserve(memory + STREAM_BUFFERS)?;
    Ok(Box::new(Bounded {
        inner: reader,
        _reservation: reservation,
        limit: limit.map(|(method, limit)| (method, limit, cap)),
    }))
}

/// Up to `max` bytes from the start of `input` (fewer only at its end).
async fn read_prefix<R: AsyncRead + Unpin>(
    input: &mut R,
    max: usize,
) -> Result<Vec<u8>, EntryError> {
    let mut prefix = vec![0u8; max];
    let mut filled = 0;
    while filled < max {
        match input
            .read(&mut prefix[filled..])
            .await
            .map_err(EntryError::from_io)?
        {
            0 => break,
            n => filled += n,
        }
    }
    prefix.truncate(filled);
    Ok(prefix)
}

/// The window a zstd frame header declares (RFC 8878 3.1.1.1), `None` when `prefix` does
/// not start with one.
pub fn zstd_window(prefix: &[u8]) -> Option<u64> {
    let magic = u32::from_le_bytes(prefix.get(..4)?.try_into().ok()?);
    if magic != 0xFD2F_B528 {
        return None;
    }
    let descriptor = *prefix.get(4)?;
    if descriptor & 0x20 == 0 {
        // Window descriptor: exponent and mantissa.
        let window = *prefix.get(5)?;
        let base = 1u64 << (10 + u32::from(window >> 3));
        return Some(base + base / 8 * u64::from(window & 7));
    }
    // Single segment: the window is the content size.
    let dictionary_len = [0, 1, 2, 4][usize::from(descriptor & 3)];
    let size_len = [1, 2, 4, 8][usize::from(descriptor >> 6)];
    let at = 5 + dictionary_len;
    let bytes = prefix.get(at..at + size_len)?;
    let size = bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    Some(if size_len == 2 { size + 256 } else { size })
}

/// The LZMA2 dictionary of the first block of an .xz stream (xz file format 3.1), `None`
/// when `prefix` holds no such block header.
pub fn xz_dictionary(prefix: &[u8]) -> Option<u64> {
    if prefix.get(..6)? != [0xFD, b'7', b'z', b'X', b'Z', 0] {
        return None;
    }
    let block = prefix.get(12..)?;
    let size = usize::from(*block.first()?);
    if size == 0 {
        return None; // the index: no blocks
    }
    let header = block.get(..(size + 1) * 4)?;
    let flags = header[1];
    let mut at = 2;
    if flags & 0x40 != 0 {
        varint(header, &mut at)?;
    }
    if flags & 0x80 != 0 {
        varint(header, &mut at)?;
    }
    for _ in 0..=(flags & 3) {
        let id = varint(header, &mut at)?;
        let len = usize::try_from(varint(header, &mut at)?).ok()?;
        let properties = header.get(at..at.checked_add(len)?)?;
        at += len;
        if id == 0x21 {
            let bits = *properties.first()? & 0x3F;
            return match bits {
                0..=39 => Some(u64::from(2 | (bits & 1)) << (bits / 2 + 11)),
                40 => Some(u64::from(u32::MAX)),
                _ => None,
            };
        }
    }
    None
}

/// An .xz variable-length integer at `at`, advancing it.
fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..9 {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// A decoder holding its reservation, whose own memory-limit errors name the limit.
struct Bounded {
    inner: Box<dyn AsyncRead + Send + Unpin>,
    _reservation: Reservation,
    /// Method, the limit the decoder was built with, and the configured cap.
    limit: Option<(&'static str, u64, u64)>,
}

/// How liblzma ("memory limit reached") and zstd ("Frame requires too much memory for
/// decoding") say their limit stopped them; pinned by a test.
fn is_limit_error(error: &io::Error) -> bool {
    let text = error.to_string();
    text == "memory limit reached" || text.contains("too much memory")
}

impl AsyncRead for Bounded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match futures_util::ready!(Pin::new(&mut self.inner).poll_read(cx, buf)) {
            Err(error) if is_limit_error(&error) => {
                let Some((method, limit, cap)) = self.limit else {
                    return Poll::Ready(Err(error));
                };
                Poll::Ready(Err(io::Error::other(EntryError::DecoderLimitReached {
                    method,
                    limit,
                    cap,
                })))
            }
            other => Poll::Ready(other),
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use async_compression::tokio::bufread::XzEncoder;

    async fn read_all(mut reader: impl AsyncRead + Unpin) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await.map(|_| out)
    }

    /// A zstd frame: magic, no flags, window descriptor `window`, one last RLE block.
    fn zstd_frame(window: u8) -> Vec<u8> {
        let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0, window];
        frame.extend_from_slice(&(1u32 | (1 << 1) | (1000 << 3)).to_le_bytes()[..3]);
        frame.push(b'x');
        frame
    }

    #[test]
    fn zstd_windows_are_read_from_the_frame_header() {
        assert_eq!(zstd_window(&zstd_frame(0x88)), Some(1 << 27));
        assert_eq!(zstd_window(&zstd_frame(0x03)), Some(1024 + 3 * 128));
        assert_eq!(zstd_window(&zstd_frame(0x0B)), Some(2048 + 3 * 256));
        // Single segment, 2-byte content size (+256): the window is the content size.
        assert_eq!(
            zstd_window(&[0x28, 0xB5, 0x2F, 0xFD, 0x60, 0x00, 0x01]),
            Some(256 + 256)
        );
        assert_eq!(zstd_window(b"not zstd"), None);
        assert_eq!(zstd_window(&[0x28, 0xB5, 0x2F]), None);
    }

    #[tokio::test]
    async fn xz_dictionaries_are_read_from_the_first_block_header() {
        let data = read_all(XzEncoder::with_quality(
            &b"some text"[..],
            async_compression::Level::Precise(1),
        ))
        .await
        .unwrap();
        assert_eq!(xz_dictionary(&data), Some(1 << 20), "preset 1 uses 1 MiB");
        assert_eq!(xz_dictionary(&data[..14]), None, "a truncated header");
        assert_eq!(xz_dictionary(b"not xz at all, not xz at all"), None);
    }

    /// The backends' own words for "my limit stopped me", which [`is_limit_error`] relies on.
    #[tokio::test]
    async fn backend_limit_errors_are_recognised() {
        let data = read_all(XzEncoder::with_quality(
            &b"some text"[..],
            async_compression::Level::Precise(6),
        ))
        .await
        .unwrap();
        let error = read_all(XzDecoder::with_mem_limit(&data[..], 1 << 20))
            .await
            .expect_err("an 8 MiB dictionary over a 1 MiB limit");
        assert!(is_limit_error(&error), "{error}");

        let params = [async_compression::zstd::DParameter::window_log_max(20)];
        let frame = zstd_frame(0x88);
        let error = read_all(ZstdDecoder::with_params(&frame[..], &params))
            .await
            .expect_err("a 2^27 window over 2^20");
        assert!(is_limit_error(&error), "{error}");
        assert_eq!(
            read_all(ZstdDecoder::new(&frame[..])).await.unwrap(),
            vec![b'x'; 1000]
        );
    }
}
