//! The `decode_entry` fuzz target's property (benches/fuzz/fuzz_targets/
//! decode_entry_check.rs) run as a plain property test, for machines without cargo-fuzz:
//! real encoders' output for each method, with bytes flipped, cut short, or declared with
//! another size or CRC, and bytes at random. Each input must end with exactly the declared
//! bytes or with an error, without panicking. `PROPTEST_CASES` sets how many inputs.

#[path = "../benches/fuzz/fuzz_targets/decode_entry_check.rs"]
mod decode_entry_check;

use async_compression::tokio::bufread::{
    BzEncoder, DeflateEncoder, LzmaEncoder, XzEncoder, ZstdEncoder,
};
use async_compression::Level;
use decode_entry_check::{check, Outcome};
use proptest::prelude::*;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Method selectors of the input layout.
const STORED: u8 = 0;
const DEFLATE: u8 = 1;
const BZIP2: u8 = 3;
const LZMA: u8 = 4;
const ZSTD: u8 = 5;
const XZ: u8 = 6;

async fn read_all(mut reader: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut out = Vec::new();
    reader.read_to_end(&mut out).await.unwrap();
    out
}

/// One valid input per method: content, its real encoding, and the true declaration.
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        let content: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("{} ", i % 997).into_bytes())
            .collect();
        let c = &content[..];
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let encoded = runtime.block_on(async {
            let alone = read_all(LzmaEncoder::with_quality(c, Level::Precise(1))).await;
            let mut lzma = vec![9, 20, 5, 0];
            lzma.extend_from_slice(&alone[..5]);
            lzma.extend_from_slice(&alone[13..]);
            vec![
                (STORED, 0, content.clone()),
                (DEFLATE, 0, read_all(DeflateEncoder::new(c)).await),
                (
                    BZIP2,
                    0,
                    read_all(BzEncoder::with_quality(c, Level::Precise(1))).await,
                ),
                (LZMA, 1, lzma),
                (ZSTD, 0, read_all(ZstdEncoder::new(c)).await),
                (
                    XZ,
                    0,
                    read_all(XzEncoder::with_quality(c, Level::Precise(1))).await,
                ),
            ]
        });
        encoded
            .into_iter()
            .map(|(method, eos, data)| {
                // Chunks of 64 * 8 bytes: many boundaries.
                let mut input = vec![method, eos | (7 << 1)];
                input.extend_from_slice(&(content.len() as u32).to_le_bytes());
                input.extend_from_slice(&crc32fast::hash(&content).to_le_bytes());
                input.extend_from_slice(&data);
                input
            })
            .collect()
    })
}

#[test]
fn every_seed_decodes_to_its_declared_bytes() {
    for (i, seed) in seeds().iter().enumerate() {
        assert_eq!(check(seed), Outcome::Decoded, "seed {i}");
    }
}

/// A seed with `flips` applied, cut at `cut` (a fraction of its length, when set), and its
/// declared size or CRC changed when `redeclare` says so.
fn mutated(
    seed: usize,
    flips: &[(usize, u8)],
    cut: Option<f64>,
    redeclare: u8,
    chunking: u8,
) -> Vec<u8> {
    let mut input = seeds()[seed % seeds().len()].clone();
    input[1] = (input[1] & 1) | (chunking & !1);
    for &(at, byte) in flips {
        let at = 10 + at % (input.len() - 10);
        input[at] ^= byte;
    }
    if let Some(cut) = cut {
        input.truncate(10 + ((input.len() - 10) as f64 * cut) as usize);
    }
    match redeclare % 4 {
        1 => input[2] ^= 1,    // size off by one
        2 => input[7] ^= 0x80, // CRC
        3 => input[5] = 0xFF,  // a large size
        _ => {}
    }
    input
}

proptest! {
    #[test]
    fn mutated_entries_decode_to_the_declared_bytes_or_fail(
        seed in 0usize..6,
        flips in proptest::collection::vec((any::<usize>(), 1u8..), 0..4),
        cut in proptest::option::weighted(0.3, 0.0f64..1.0),
        redeclare in any::<u8>(),
        chunking in any::<u8>(),
    ) {
        check(&mutated(seed, &flips, cut, redeclare, chunking));
    }

    #[test]
    fn random_bytes_decode_to_the_declared_bytes_or_fail(
        data in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        check(&data);
    }
}
