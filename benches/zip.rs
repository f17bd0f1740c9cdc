//! Zip hot paths: building the index of a large archive, and streaming one large deflated
//! entry through the gateway's decode pipeline next to plain flate2 doing the same work.
//!
//! Run: `cargo bench --bench zip`. The archives are built in memory once, before anything
//! is measured.

use std::io::Write;

use artifact_gateway::archive::budget::MemoryBudget;
use artifact_gateway::archive::cache::ArchiveCache;
use artifact_gateway::archive::entry::{self, small, Verified, OUT_CHUNK};
use artifact_gateway::archive::hot::HotEntries;
use artifact_gateway::archive::index::{
    parse_directory, parse_tail, EntryInfo, IndexLimits, TailOutcome, ZipIndex,
};
use artifact_gateway::config::ZipConfig;
use artifact_gateway::metrics::Metrics;
use artifact_gateway::storage::{Location, Storage, StorageError};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use flate2::{Compression, Decompress, FlushDecompress, Status};
use futures_util::{stream, StreamExt};

const ENTRIES: usize = 70_000;
/// Uncompressed size of the large entry (MB = 10^6 bytes).
const BIG_ENTRY_BYTES: usize = 100_000_000;
/// The same when not benchmarking: `cargo test --all-targets` (CI) runs each benchmark once,
/// unoptimised and without `--bench`, where 100 MB would cost more than the check is worth.
const BIG_ENTRY_BYTES_TEST: usize = 4_000_000;
/// Chunks of the raw archive as storage would hand them to the entry reader.
const RAW_CHUNK: usize = 256 * 1024;

/// Builds the index the way an open does: one tail of the gateway's default size, then
/// the directory range it asks for.
fn build_index(archive: &[u8], tail_len: usize, limits: &IndexLimits) -> ZipIndex {
    let size = archive.len() as u64;
    let start = archive.len().saturating_sub(tail_len);
    let mut outcome = parse_tail(&archive[start..], start as u64, size, limits).unwrap();
    for _ in 0..3 {
        match outcome {
            TailOutcome::Complete(index) => return index,
            TailOutcome::NeedRange { range, pending } => {
                let bytes = &archive[range.start as usize..range.end as usize];
                outcome = parse_directory(bytes, pending, limits).unwrap();
            }
        }
    }
    match outcome {
        TailOutcome::Complete(index) => index,
        TailOutcome::NeedRange { .. } => panic!("more than three reads"),
    }
}

/// 70,000 small stored entries with names like `dir42/sub0/file-42.txt`, written by the
/// `zip` crate (zip64 end records, since the count passes 65,535).
fn many_entries_archive() -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    for i in 0..ENTRIES {
        let name = format!("dir{}/sub{}/file-{i}.txt", i % 100, i % 7);
        writer.start_file(name, options).unwrap();
        writeln!(writer, "entry {i}: a small text file in a large archive").unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn index_parse(c: &mut Criterion) {
    let archive = many_entries_archive();
    let limits = IndexLimits::default();
    let tail_len = ZipConfig::default().tail_bytes as usize;
    let index = build_index(&archive, tail_len, &limits);
    assert_eq!(index.len(), ENTRIES);
    let directory = index.directory_range();
    eprintln!(
        "index/parse_{ENTRIES}_entries: archive {} bytes, central directory {} bytes, tail {} bytes, index heap {} bytes",
        archive.len(),
        directory.end - directory.start,
        tail_len,
        index.heap_bytes()
    );
    drop(index);

    let mut group = c.benchmark_group("index");
    group.throughput(Throughput::Elements(ENTRIES as u64));
    group.bench_function(format!("parse_{ENTRIES}_entries"), |b| {
        b.iter(|| build_index(std::hint::black_box(&archive), tail_len, &limits))
    });
    group.finish();
}

/// Deterministic text: log-like lines of pseudo-random words from a vocabulary of about a
/// thousand, with numbers. Compresses like build output (about 3:1 at level 6).
fn mixed_text(len: usize) -> Vec<u8> {
    const SYLLABLES: [&str; 32] = [
        "ba", "ke", "lo", "mi", "nu", "ra", "se", "ti", "vo", "za", "pre", "con", "ex", "ter",
        "al", "on", "ing", "er", "ment", "ly", "sta", "gra", "plo", "qui", "dis", "tion", "ab",
        "ur", "ve", "dor", "chi", "sum",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let words: Vec<String> = (0..1024)
        .map(|_| {
            let n = 1 + (next() % 3) as usize;
            (0..n).map(|_| SYLLABLES[(next() % 32) as usize]).collect()
        })
        .collect();
    let levels = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"];
    let mut out = Vec::with_capacity(len + 256);
    let mut line = 0u64;
    while out.len() < len {
        line += 1;
        let r = next();
        write!(
            out,
            "{:08} {:5} worker-{} ",
            line,
            levels[(r % 6) as usize],
            (r >> 8) % 16
        )
        .unwrap();
        for _ in 0..4 + (r >> 16) % 10 {
            let w = next();
            out.extend_from_slice(words[(w % 1024) as usize].as_bytes());
            out.push(if w >> 60 == 0 { b'/' } else { b' ' });
        }
        writeln!(out, "{} ms", (r >> 32) % 10_000).unwrap();
    }
    out.truncate(len);
    out
}

/// A zip holding one deflated entry, written by hand: local header, data, central
/// directory, end record.
fn single_entry_zip(name: &str, deflated: &[u8], crc: u32, size: u32) -> Vec<u8> {
    let compressed = u32::try_from(deflated.len()).unwrap();
    let name_len = u16::try_from(name.len()).unwrap();
    let mut zip = Vec::with_capacity(deflated.len() + 256);
    zip.extend_from_slice(&0x0403_4b50_u32.to_le_bytes());
    zip.extend_from_slice(&20u16.to_le_bytes()); // version needed
    zip.extend_from_slice(&0u16.to_le_bytes()); // flags
    zip.extend_from_slice(&8u16.to_le_bytes()); // deflate
    zip.extend_from_slice(&[0; 4]); // time, date
    zip.extend_from_slice(&crc.to_le_bytes());
    zip.extend_from_slice(&compressed.to_le_bytes());
    zip.extend_from_slice(&size.to_le_bytes());
    zip.extend_from_slice(&name_len.to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes()); // extra length
    zip.extend_from_slice(name.as_bytes());
    zip.extend_from_slice(deflated);
    let directory_start = u32::try_from(zip.len()).unwrap();
    zip.extend_from_slice(&0x0201_4b50_u32.to_le_bytes());
    zip.extend_from_slice(&20u16.to_le_bytes()); // version made by
    zip.extend_from_slice(&20u16.to_le_bytes()); // version needed
    zip.extend_from_slice(&0u16.to_le_bytes()); // flags
    zip.extend_from_slice(&8u16.to_le_bytes()); // deflate
    zip.extend_from_slice(&[0; 4]); // time, date
    zip.extend_from_slice(&crc.to_le_bytes());
    zip.extend_from_slice(&compressed.to_le_bytes());
    zip.extend_from_slice(&size.to_le_bytes());
    zip.extend_from_slice(&name_len.to_le_bytes());
    zip.extend_from_slice(&[0; 4]); // extra, comment lengths
    zip.extend_from_slice(&[0; 8]); // disk, internal, external attributes
    zip.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    zip.extend_from_slice(name.as_bytes());
    let directory_len = u32::try_from(zip.len()).unwrap() - directory_start;
    zip.extend_from_slice(&0x0605_4b50_u32.to_le_bytes());
    zip.extend_from_slice(&[0; 4]); // disk numbers
    zip.extend_from_slice(&1u16.to_le_bytes());
    zip.extend_from_slice(&1u16.to_le_bytes());
    zip.extend_from_slice(&directory_len.to_le_bytes());
    zip.extend_from_slice(&directory_start.to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes()); // comment length
    zip
}

/// The gateway's path for a whole entry, from the raw bytes at its local header to
/// verified output chunks. Returns the bytes produced.
async fn gateway_inflate(archive: Bytes, info: &EntryInfo) -> u64 {
    let (start, end) = (info.local_header_offset as usize, info.data_end as usize);
    let raw = stream::iter(
        (start..end)
            .step_by(RAW_CHUNK)
            .map(move |at| Ok::<_, StorageError>(archive.slice(at..(at + RAW_CHUNK).min(end)))),
    )
    .boxed();
    let compressed = entry::compressed(raw, info).await.unwrap();
    let budget = MemoryBudget::new(1 << 30, 64 << 20, Default::default());
    let decoder = entry::decoder(compressed, info, &budget).await.unwrap();
    let mut verified = Verified::new(entry::chunks(decoder), info, "bench".into());
    let mut total = 0u64;
    while let Some(chunk) = verified.next().await {
        total += chunk.unwrap().len() as u64;
    }
    total
}

/// The same work with flate2 alone: inflate into one reused buffer, CRC-32 the output.
fn flate2_inflate(deflated: &[u8], out: &mut [u8]) -> (u64, u32) {
    let mut inflater = Decompress::new(false);
    let mut hasher = crc32fast::Hasher::new();
    let mut input = deflated;
    loop {
        let (in_before, out_before) = (inflater.total_in(), inflater.total_out());
        let status = inflater
            .decompress(input, out, FlushDecompress::None)
            .unwrap();
        let consumed = (inflater.total_in() - in_before) as usize;
        let produced = (inflater.total_out() - out_before) as usize;
        input = &input[consumed..];
        hasher.update(&out[..produced]);
        match status {
            Status::StreamEnd => break,
            _ if consumed == 0 && produced == 0 => panic!("inflate made no progress"),
            _ => {}
        }
    }
    (inflater.total_out(), hasher.finalize())
}

fn entry_inflate(c: &mut Criterion) {
    let size = if std::env::args().any(|arg| arg == "--bench") {
        BIG_ENTRY_BYTES
    } else {
        BIG_ENTRY_BYTES_TEST
    };
    let text = mixed_text(size);
    let crc = crc32fast::hash(&text);
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::with_capacity(size / 2), Compression::new(6));
    encoder.write_all(&text).unwrap();
    let deflated = encoder.finish().unwrap();
    drop(text);
    let archive = Bytes::from(single_entry_zip(
        "build/output.log",
        &deflated,
        crc,
        size as u32,
    ));
    let index = build_index(&archive, archive.len(), &IndexLimits::default());
    let info = index.get("build/output.log").unwrap();
    eprintln!(
        "entry/deflate_100MB: {} bytes deflated to {} (ratio {:.2}) at level 6",
        size,
        deflated.len(),
        size as f64 / deflated.len() as f64
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // Both paths produce the whole entry, and the right one, before anything is timed.
    assert_eq!(
        runtime.block_on(gateway_inflate(archive.clone(), &info)),
        size as u64
    );
    let mut out = vec![0u8; OUT_CHUNK];
    assert_eq!(flate2_inflate(&deflated, &mut out), (size as u64, crc));

    let mut group = c.benchmark_group("entry");
    group
        .throughput(Throughput::Bytes(size as u64))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat);
    group.bench_function("deflate_100MB_gateway", |b| {
        b.to_async(&runtime)
            .iter(|| gateway_inflate(archive.clone(), &info))
    });
    group.bench_function("deflate_100MB_flate2", |b| {
        b.iter(|| flate2_inflate(std::hint::black_box(&deflated), &mut out))
    });
    group.finish();
}

/// The warm small-file path, piece by piece, on the 1,000-byte entry of `entry_rps.sh`
/// (deflated, in a 70,000-entry archive): the index lookup; decoding it in one piece next
/// to the streaming pipeline larger entries take; and a hot-entry hit, the whole answer's
/// storage side once the entry is hot.
fn small_entry(c: &mut Criterion) {
    let body: Vec<u8> = (0..14)
        .flat_map(|i| {
            format!("line {i:03} of the one-kilobyte entry in a seventy-thousand-entry archive\n")
                .into_bytes()
        })
        .chain(std::iter::repeat(b'.'))
        .take(1000)
        .collect();
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    for i in 0..ENTRIES {
        writer
            .start_file(format!("dir{}/file-{i}.txt", i % 100), options)
            .unwrap();
        if i == 42 {
            writer.write_all(&body).unwrap();
        } else {
            writeln!(writer, "entry {i}: a small text file").unwrap();
        }
    }
    let archive = Bytes::from(writer.finish().unwrap().into_inner());
    let index = build_index(&archive, 128 * 1024, &IndexLimits::default());
    let name = "dir42/file-42.txt";
    let info = index.get(name).unwrap();
    assert!(small::fits(&info));
    let raw = archive
        .slice(small::first_read(&info).start as usize..small::first_read(&info).end as usize);
    let decode = |raw: &Bytes| {
        let span = small::stored_span(raw, &info).unwrap();
        let at = |o: u64| (o - info.local_header_offset) as usize;
        small::decode(raw.slice(at(span.start)..at(span.end)), &info, "bench").unwrap()
    };
    assert_eq!(&decode(&raw)[..], &body[..]);

    // A hot entry needs an open archive: open it from a local store, as the gateway does.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("artifact-gateway-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.zip"), &archive).unwrap();
    let store = object_store::local::LocalFileSystem::new_with_prefix(&dir).unwrap();
    let config = artifact_gateway::config::StorageConfig {
        url: format!("file://{}", dir.display()),
        ..Default::default()
    };
    let storage = Storage::new(std::sync::Arc::new(store), &config);
    let metrics = std::sync::Arc::new(Metrics::default());
    let cache = ArchiveCache::new(
        1 << 30,
        std::time::Duration::from_secs(600),
        128 * 1024,
        IndexLimits::default(),
        metrics.clone(),
    );
    let location = Location::Key(object_store::path::Path::from("a.zip"));
    let (open, _) = runtime.block_on(cache.open(&storage, &location)).unwrap();
    let hot = HotEntries::new(8 << 20, &metrics);
    hot.insert(&open, &info, &decode(&raw));
    std::fs::remove_dir_all(&dir).unwrap();

    let mut group = c.benchmark_group("small_entry");
    group.bench_function("index_lookup_70000", |b| {
        b.iter(|| index.get(std::hint::black_box(name)).unwrap())
    });
    group.bench_function("decode_1KB_in_one_piece", |b| {
        b.iter(|| decode(std::hint::black_box(&raw)))
    });
    group.bench_function("decode_1KB_streaming_pipeline", |b| {
        b.to_async(&runtime)
            .iter(|| gateway_inflate(archive.clone(), &info))
    });
    group.bench_function("hot_entry_hit", |b| {
        b.iter(|| hot.get(std::hint::black_box(&open), &info).unwrap())
    });
    group.finish();
}

criterion_group!(benches, index_parse, entry_inflate, small_entry);
criterion_main!(benches);
