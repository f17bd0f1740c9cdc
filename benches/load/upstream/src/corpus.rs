//! The archives of the run: many-entry archives of small deflated text files (one per job,
//! each different), and one large archive of incompressible stored entries. All bytes are
//! deterministic, so every gateway is checked against exactly what was uploaded.

use std::io::Write as _;

use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

/// The entry every single-file request reads: near the start of the archive, so far
/// outside the tail the gateway reads when it opens the archive (it needs its own read).
pub const ENTRY_INDEX: usize = 10;

/// Size of each stored entry of the large archive.
const BIG_ENTRY_BYTES: usize = 4 * 1024 * 1024;

const WORDS: [&[u8]; 16] = [
    b"artifact",
    b"gateway",
    b"pipeline",
    b"runner",
    b"stage",
    b"compile",
    b"linking",
    b"warning:",
    b"error",
    b"ok",
    b"test",
    b"passed",
    b"cache",
    b"restore",
    b"upload",
    b"job",
];

/// A small PRNG (xorshift64*): deterministic, no dependency for ten lines.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Name of entry `i` of a many-entry archive.
pub fn entry_name(i: usize) -> String {
    format!("build/pkg-{:02}/report-{i:04}.txt", i / 100)
}

/// Content of entry `i` of job `job`'s archive: 2–6 KiB of log-like text, different for
/// every job and entry.
pub fn entry_text(job: u64, i: usize) -> Vec<u8> {
    let mut rng = Rng::new(job.wrapping_mul(1_000_003) + i as u64);
    let len = 2048 + rng.below(4096) as usize;
    let mut out = Vec::with_capacity(len + 64);
    let _ = writeln!(out, "job {job} entry {i}");
    while out.len() < len {
        out.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize]);
        if rng.below(4) == 0 {
            let _ = write!(out, " {}", rng.below(100_000));
        }
        out.push(if rng.below(10) == 0 { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

/// Job `job`'s many-entry archive: `entries` deflated text files, written by the `zip`
/// crate at its default level.
pub fn many_entry_archive(job: u64, entries: usize) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for i in 0..entries {
        writer.start_file(entry_name(i), options).unwrap();
        writer.write_all(&entry_text(job, i)).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// About `mib` MiB of incompressible bytes as a zip of stored 4 MiB entries.
pub fn big_archive(mib: usize) -> Vec<u8> {
    let mut rng = Rng::new(42);
    let mut chunk = vec![0u8; BIG_ENTRY_BYTES];
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::with_capacity(
        mib * 1024 * 1024 + 64 * 1024,
    )));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    for i in 0..(mib * 1024 * 1024).div_ceil(BIG_ENTRY_BYTES) {
        for word in chunk.chunks_exact_mut(8) {
            word.copy_from_slice(&rng.next().to_le_bytes());
        }
        writer
            .start_file(format!("noise/{i:03}.bin"), options)
            .unwrap();
        writer.write_all(&chunk).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// The one entry of the deflated archive.
pub const TEXT_ENTRY: &str = "log/build.txt";

/// About `mib` MiB of log-like text (as `entry_text`, without its length limit), and a zip
/// holding it as one deflated entry (zip crate, default level).
pub fn deflated_archive(mib: usize) -> (Vec<u8>, Vec<u8>) {
    let mut rng = Rng::new(7);
    let len = mib * 1024 * 1024;
    let mut text = Vec::with_capacity(len + 64);
    while text.len() < len {
        text.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize]);
        if rng.below(4) == 0 {
            let _ = write!(text, " {}", rng.below(100_000));
        }
        text.push(if rng.below(10) == 0 { b'\n' } else { b' ' });
    }
    text.truncate(len);
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .large_file(false);
    writer.start_file(TEXT_ENTRY, options).unwrap();
    writer.write_all(&text).unwrap();
    (writer.finish().unwrap().into_inner(), text)
}
