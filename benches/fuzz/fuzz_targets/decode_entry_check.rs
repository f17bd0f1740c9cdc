//! The property the `decode_entry` target checks, as a plain function so that the main
//! crate's tests can run it too (`tests/decode_entry_fuzz.rs` includes this file).
//!
//! Input layout:
//! - byte 0: the method, `[stored, deflate, deflate64, bzip2, LZMA, zstd, xz][b % 7]`;
//! - byte 1: bit 0 is the LZMA end-marker flag; `(b >> 1) + 1` times 64 bytes is the size
//!   of the storage chunks the entry arrives in;
//! - bytes 2..6: the declared uncompressed size (`u32` LE, modulo 16 MiB + 1, which bounds
//!   the run time of a bomb);
//! - bytes 6..10: the declared CRC-32;
//! - the rest: the entry's compressed bytes, after a local header made here.
//!
//! The entry goes through the gateway's path: local header, decoder (with an 8 MiB cap
//! and a 64 MiB budget), CRC and size verification. The property: the stream either ends
//! with exactly the declared number of bytes and the declared CRC (and, for a stored entry,
//! the input bytes), or fails; before a failure it never delivers more than the declared
//! size. Panics fail the target; memory is bounded by libFuzzer's `-rss_limit_mb` /
//! `-malloc_limit_mb` (the decoders' limits keep it far below).

use std::sync::{Arc, OnceLock};

use artifact_gateway::archive::budget::MemoryBudget;
use artifact_gateway::archive::entry::{self, Verified};
use artifact_gateway::archive::index::{EntryInfo, Method};
use artifact_gateway::metrics::Metrics;
use bytes::Bytes;
use futures_util::StreamExt;

/// Largest declared size: a bomb of zeros decodes at most this much per input.
pub const MAX_DECLARED: u32 = 16 << 20;

const METHODS: [Method; 7] = [
    Method::Stored,
    Method::Deflate,
    Method::Deflate64,
    Method::Bzip2,
    Method::Lzma,
    Method::Zstd,
    Method::Xz,
];

/// The zip method codes of [`METHODS`], for the local header.
const METHOD_CODES: [u16; 7] = [0, 8, 9, 12, 14, 93, 95];

fn budget() -> &'static MemoryBudget {
    static BUDGET: OnceLock<MemoryBudget> = OnceLock::new();
    BUDGET.get_or_init(|| MemoryBudget::new(64 << 20, 8 << 20, Arc::new(Metrics::new())))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

/// What happened to one input (for the tests' statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    TooShort,
    Refused,
    Failed,
    Decoded,
}

/// Run one input; panics when the property does not hold.
pub fn check(data: &[u8]) -> Outcome {
    if data.len() < 10 {
        return Outcome::TooShort;
    }
    let method = METHODS[usize::from(data[0]) % METHODS.len()];
    let flags = u16::from(data[1] & 1) << 1;
    let chunk = (usize::from(data[1] >> 1) + 1) * 64;
    let declared = u32::from_le_bytes(data[2..6].try_into().unwrap()) % (MAX_DECLARED + 1);
    let crc = u32::from_le_bytes(data[6..10].try_into().unwrap());
    let body = &data[10..];
    let name = b"f";
    let mut object = Vec::with_capacity(31 + body.len());
    object.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    object.extend_from_slice(&[20, 0]);
    object.extend_from_slice(&flags.to_le_bytes());
    // Method, CRC and sizes as the directory states them: the entry reader checks that the
    // local header agrees.
    object.extend_from_slice(&METHOD_CODES[usize::from(data[0]) % METHODS.len()].to_le_bytes());
    object.extend_from_slice(&[0; 4]); // time/date
    object.extend_from_slice(&crc.to_le_bytes());
    object.extend_from_slice(&(body.len() as u32).to_le_bytes());
    object.extend_from_slice(&declared.to_le_bytes());
    object.extend_from_slice(&(name.len() as u16).to_le_bytes());
    object.extend_from_slice(&0u16.to_le_bytes());
    object.extend_from_slice(name);
    object.extend_from_slice(body);
    let info = EntryInfo {
        local_header_offset: 0,
        compressed_size: body.len() as u64,
        uncompressed_size: u64::from(declared),
        method,
        flags,
        crc32: crc,
        data_end: object.len() as u64,
    };
    runtime().block_on(async move {
        let object = Bytes::from(object);
        let chunks: Vec<_> = (0..object.len())
            .step_by(chunk)
            .map(|at| Ok(object.slice(at..(at + chunk).min(object.len()))))
            .collect();
        let raw = futures_util::stream::iter(chunks).boxed();
        let Ok(compressed) = entry::compressed(raw, &info).await else {
            return Outcome::Refused;
        };
        let Ok(decoder) = entry::decoder(compressed, &info, budget()).await else {
            return Outcome::Refused;
        };
        let mut verified = Verified::new(entry::chunks(decoder), &info, "fuzz".into());
        let mut hasher = crc32fast::Hasher::new();
        let mut delivered = 0u64;
        let mut matches_input = true;
        while let Some(chunk) = verified.next().await {
            let Ok(chunk) = chunk else {
                assert!(
                    delivered <= info.uncompressed_size,
                    "more than declared before failing"
                );
                return Outcome::Failed;
            };
            if method == Method::Stored {
                let at = delivered as usize;
                matches_input &= body.get(at..at + chunk.len()) == Some(&chunk[..]);
            }
            delivered += chunk.len() as u64;
            assert!(delivered <= info.uncompressed_size, "more than declared");
            hasher.update(&chunk);
        }
        assert_eq!(
            delivered, info.uncompressed_size,
            "ended short without an error"
        );
        assert_eq!(
            hasher.finalize(),
            crc,
            "ended with another CRC without an error"
        );
        assert!(matches_input, "a stored entry's bytes are its input");
        Outcome::Decoded
    })
}
