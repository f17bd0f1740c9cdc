//! Property tests: random archives from the `zip` crate's writer, checked against
//! `async_zip`'s reader; arbitrary and mutated bytes never panic.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};

use ::zip::write::SimpleFileOptions;
use ::zip::CompressionMethod;
use proptest::prelude::*;

use super::test_archive::{index_with_tail, Archive, Entry};
use super::*;

#[derive(Debug, Clone)]
struct FileSpec {
    data: Vec<u8>,
    deflate: bool,
    large: bool,
    dir: bool,
}

#[derive(Debug, Clone)]
struct ArchiveSpec {
    files: BTreeMap<String, FileSpec>,
    comment: Vec<u8>,
    zip64_comment: Option<Vec<u8>>,
}

fn file_spec() -> impl Strategy<Value = FileSpec> {
    (
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            (any::<u8>(), 0usize..2000).prop_map(|(b, n)| vec![b; n]),
        ],
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(data, deflate, large, dir)| FileSpec {
            data,
            deflate,
            large,
            dir,
        })
}

fn archive_spec() -> impl Strategy<Value = ArchiveSpec> {
    (
        prop::collection::btree_map("[a-zA-Z0-9_. äöü€日本/-]{1,24}", file_spec(), 0..8),
        prop_oneof![Just(Vec::new()), prop::collection::vec(any::<u8>(), 0..300)],
        prop::option::weighted(0.2, prop::collection::vec(any::<u8>(), 0..100)),
    )
        .prop_map(|(files, comment, zip64_comment)| ArchiveSpec {
            files,
            comment,
            zip64_comment,
        })
}

fn write_zip(spec: &ArchiveSpec) -> Vec<u8> {
    let mut w = ::zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, f) in &spec.files {
        let method = if f.deflate {
            CompressionMethod::Deflated
        } else {
            CompressionMethod::Stored
        };
        let options = SimpleFileOptions::default()
            .compression_method(method)
            .large_file(f.large);
        if f.dir {
            w.add_directory(name.as_str(), options).unwrap();
        } else {
            w.start_file(name.as_str(), options).unwrap();
            w.write_all(&f.data).unwrap();
        }
    }
    w.set_raw_comment(spec.comment.clone().into_boxed_slice());
    w.set_raw_zip64_comment(spec.zip64_comment.clone().map(Vec::into_boxed_slice));
    w.finish().unwrap().into_inner()
}

/// (offset, compressed, uncompressed, crc, method) of one entry.
type Facts = (u64, u64, u64, u32, u16);

/// What `async_zip` reads, in directory order.
fn oracle(bytes: &[u8]) -> Vec<(String, Facts)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let reader = async_zip::base::read::mem::ZipFileReader::new(bytes.to_vec())
            .await
            .unwrap();
        reader
            .file()
            .entries()
            .iter()
            .map(|e| {
                let name = e.filename().as_str().unwrap().to_owned();
                let method = u16::from(e.compression());
                let info = (
                    e.header_offset(),
                    e.compressed_size(),
                    e.uncompressed_size(),
                );
                (name, (info.0, info.1, info.2, e.crc32(), method))
            })
            .collect()
    })
}

fn check_against_oracle(zip: &[u8], index: &ZipIndex) {
    let expected = oracle(zip);
    assert_eq!(index.len(), expected.len());
    let mut offsets: Vec<u64> = expected.iter().map(|(_, e)| e.0).collect();
    offsets.sort_unstable();
    for (name, (offset, compressed, uncompressed, crc, method)) in &expected {
        let e = index
            .get(name)
            .unwrap_or_else(|| panic!("{name:?} missing"));
        assert_eq!(e.local_header_offset, *offset, "{name}");
        assert_eq!(e.compressed_size, *compressed, "{name}");
        assert_eq!(e.uncompressed_size, *uncompressed, "{name}");
        assert_eq!(e.crc32, *crc, "{name}");
        assert_eq!(e.method, Method::from(*method), "{name}");
        let next = offsets.iter().copied().find(|&o| o > *offset);
        assert_eq!(e.data_end, next.unwrap_or(index.directory_range().start));
        // The bytes are where the index says.
        let start = *offset as usize;
        let header = local_header_len(&zip[start..]).unwrap() as usize;
        let data = &zip[start + header..start + header + *compressed as usize];
        if e.method == Method::Stored {
            assert_eq!(crc32fast::hash(data), e.crc32);
        }
        assert!((start + header) as u64 + e.compressed_size <= e.data_end);
    }
}

/// Feeds `tail` (ending at `object_size`) to `parse_tail`; every requested range is
/// answered with `filler` repeated, when it is small enough. Only checks for panics and
/// sane ranges.
fn drive_synthetic(tail: &[u8], object_size: u64, filler: &[u8]) {
    let limits = IndexLimits::default();
    let tail_start = object_size.saturating_sub(tail.len() as u64);
    let mut outcome = parse_tail(tail, tail_start, object_size, &limits);
    for _ in 0..4 {
        let Ok(TailOutcome::NeedRange { range, pending }) = outcome else {
            return;
        };
        assert!(range.start <= range.end && range.end <= object_size);
        let len = range.end - range.start;
        if len > 1 << 20 || filler.is_empty() {
            return;
        }
        let bytes: Vec<u8> = filler.iter().copied().cycle().take(len as usize).collect();
        outcome = parse_directory(&bytes, pending, &limits);
    }
    panic!("more than three extra reads");
}

fn tail_lens() -> impl Strategy<Value = usize> {
    prop_oneof![Just(usize::MAX), Just(MIN_TAIL_LEN as usize), 0usize..400,]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn zip_crate_archives_match_async_zip(spec in archive_spec(), tail in tail_lens()) {
        let zip = write_zip(&spec);
        let (index, reads) = index_with_tail(&zip, tail, &IndexLimits::default()).unwrap();
        check_against_oracle(&zip, &index);
        prop_assert!(reads <= 2);
        if tail >= zip.len() {
            prop_assert_eq!(reads, 0);
        }
        for (name, f) in &spec.files {
            if f.dir {
                let dir = name.strip_suffix('/').unwrap_or(name);
                prop_assert!(index.is_directory(dir));
            }
        }
    }

    #[test]
    fn arbitrary_tails_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        extra in prop_oneof![Just(0u64), 0u64..100_000, Just(u64::MAX / 2)],
        filler in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let object_size = extra.saturating_add(bytes.len() as u64);
        drive_synthetic(&bytes, object_size, &filler);
        let _ = index_with_tail(&bytes, bytes.len(), &IndexLimits::default());
    }

    #[test]
    fn mutated_archives_never_panic(
        spec in archive_spec(),
        zip64 in any::<bool>(),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        tail in tail_lens(),
    ) {
        let mut zip = if zip64 {
            // The hand-built writer: forced zip64 records and extra fields.
            let entries = spec.files.iter().map(|(n, f)| Entry::new(n, &f.data)).collect();
            let mut a = Archive::with(entries);
            a.zip64 = true;
            a.build()
        } else {
            write_zip(&spec)
        };
        let len = zip.len();
        for (at, byte) in mutations {
            // Mostly near the end, where the records are.
            let i = at.index(len);
            let i = if byte % 2 == 0 { len - 1 - (i % len.min(200)) } else { i };
            zip[i] = byte;
        }
        let _ = index_with_tail(&zip, tail, &IndexLimits::default());
    }
}

#[test]
fn zip_crate_zip64_archive() {
    let mut spec = ArchiveSpec {
        files: BTreeMap::new(),
        comment: b"archive comment".to_vec(),
        zip64_comment: Some(vec![0x55; 10]),
    };
    for i in 0..5 {
        let f = FileSpec {
            data: vec![i; 100],
            deflate: i % 2 == 0,
            large: true,
            dir: false,
        };
        spec.files.insert(format!("big/{i}"), f);
    }
    let zip = write_zip(&spec);
    for tail in [zip.len(), 120, 30] {
        let (index, _) = index_with_tail(&zip, tail, &IndexLimits::default()).unwrap();
        check_against_oracle(&zip, &index);
    }
}
