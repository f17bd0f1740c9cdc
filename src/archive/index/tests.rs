//! Hand-built archives: the end records, the directory's location, the read loop.

use super::test_archive::*;
use super::*;

#[test]
fn minimal_stored_entry() {
    let zip = Archive::with(vec![Entry::new("a.txt", b"hello")]).build();
    let index = index(&zip).unwrap();
    assert_eq!(index.len(), 1);
    let e = index.get("a.txt").unwrap();
    let cd_start = 30 + 5 + 5;
    assert_eq!(
        e,
        EntryInfo {
            local_header_offset: 0,
            compressed_size: 5,
            uncompressed_size: 5,
            method: Method::Stored,
            flags: 0,
            crc32: crc32fast::hash(b"hello"),
            data_end: cd_start,
        }
    );
    assert!(!e.is_encrypted() && !e.has_data_descriptor());
    assert_eq!(index.directory_range(), cd_start..cd_start + 46 + 5);
    assert_eq!(index.archive_size(), zip.len() as u64);
    assert_eq!(local_header_len(&zip).unwrap(), 35);
    assert!(index.get("A.txt").is_none() && index.get("").is_none());
    assert!(index.heap_bytes() >= 48 + 5);
}

#[test]
fn data_end_follows_offsets_and_tails_of_every_length_agree() {
    let zip = two_entries().build();
    let full = index(&zip).unwrap();
    assert_eq!(full.get("a.txt").unwrap().data_end, 40);
    assert_eq!(full.get("dir/b").unwrap().data_end, 40 + 30 + 5 + 6);
    for tail in 0..=zip.len() + 1 {
        let (i, reads) = index_with_tail(&zip, tail, &IndexLimits::default()).unwrap();
        assert_eq!(names(&i), names(&full));
        assert_eq!(i.get("dir/b"), full.get("dir/b"));
        assert_eq!(i.directory_range(), full.directory_range());
        assert!(reads <= 1, "tail {tail}: {reads} reads");
    }
}

#[test]
fn archive_comments() {
    for len in [0, 1, 2, 100, 65_535] {
        let mut a = two_entries();
        a.comment = (0..len).map(|i| (i % 251) as u8).collect();
        let zip = a.build();
        let index = index(&zip).unwrap();
        assert_eq!(names(&index), ["a.txt", "dir/b"], "comment {len}");
        let (_, reads) = index_with_tail(&zip, 30, &IndexLimits::default()).unwrap();
        assert!(reads <= 2);
    }
}

#[test]
fn comment_with_fake_eocd() {
    let mut a = two_entries();
    // A fake EOCD claiming 7 entries at offset 1234, whose comment length does not reach
    // the end of the object, then some more bytes.
    let mut fake = vec![0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 7, 0, 7, 0];
    fake.extend_from_slice(&100u32.to_le_bytes());
    fake.extend_from_slice(&1234u32.to_le_bytes());
    fake.extend_from_slice(&3u16.to_le_bytes());
    fake.extend_from_slice(b"0123456789");
    a.comment = fake;
    let index = index(&a.build()).unwrap();
    assert_eq!(index.len(), 2);
    // A bare signature at the very end is no EOCD either.
    a.comment = b"PK\x05\x06".to_vec();
    assert_eq!(index_names(&a.build()), ["a.txt", "dir/b"]);
}

#[test]
fn zip64_with_forced_extra_fields() {
    let mut a = two_entries();
    a.zip64 = true;
    let zip = a.build();
    let plain = index(&two_entries().build()).unwrap();
    let index64 = index(&zip).unwrap();
    assert_eq!(names(&index64), names(&plain));
    let (a64, b64) = (index64.get("a.txt").unwrap(), index64.get("dir/b").unwrap());
    assert_eq!(a64, plain.get("a.txt").unwrap());
    assert_eq!(b64.local_header_offset, 40);
    assert_eq!(b64.data_end, plain.get("dir/b").unwrap().data_end);
    for tail in [0, 22, 60, 100, zip.len()] {
        let (i, reads) = index_with_tail(&zip, tail, &IndexLimits::default()).unwrap();
        assert_eq!(i.get("dir/b"), Some(b64));
        assert!(reads <= 2);
    }
}

#[test]
fn zip64_record_with_extensible_data_sector() {
    let mut a = two_entries();
    a.zip64 = true;
    a.zip64_extensible = vec![0xab; 70_000];
    let zip = a.build();
    let full = index(&zip).unwrap();
    assert_eq!(full.get("dir/b").unwrap().local_header_offset, 40);
    // A full-size tail without the record: the record first, then the directory.
    let limits = IndexLimits::default();
    let (i, reads) = index_with_tail(&zip, MIN_TAIL_LEN as usize, &limits).unwrap();
    assert_eq!((i.len(), reads), (2, 2));
    // A short tail: a full one first.
    let (i, reads) = index_with_tail(&zip, 50, &limits).unwrap();
    assert_eq!((i.len(), reads), (2, 3));
}

#[test]
fn zip64_problems() {
    // Saturated offset without locator.
    let mut zip = two_entries().build();
    let eocd = zip.len() - 22;
    zip[eocd + 16..eocd + 20].copy_from_slice(&[0xff; 4]);
    assert_eq!(index(&zip).unwrap_err(), ZipError::Zip64Missing);
    // Locator pointing nowhere useful.
    let mut a = two_entries();
    a.zip64 = true;
    let good = a.build();
    let loc = good.len() - 22 - 20;
    for bad_offset in [0u64, 3, u64::MAX - 10, loc as u64] {
        let mut zip = good.clone();
        zip[loc + 8..loc + 16].copy_from_slice(&bad_offset.to_le_bytes());
        // The record right before the locator is still found (prefix rule) unless broken.
        assert!(index(&zip).is_ok());
        let rec = loc - 56;
        zip[rec] = b'X';
        assert_eq!(
            index(&zip).unwrap_err(),
            ZipError::Zip64Missing,
            "{bad_offset}"
        );
    }
    // Exactly 65,535 entries declared without zip64 are taken literally (and here fail
    // because the directory cannot hold them).
    let mut a = two_entries();
    a.count = Some(0xffff);
    assert_eq!(index(&a.build()).unwrap_err(), ZipError::Truncated);
}

#[test]
fn data_descriptor_flag() {
    let mut e = Entry::new("dd.bin", b"described");
    e.flags = 8;
    let zip = Archive::with(vec![e, Entry::new("next", b"")]).build();
    let index = index(&zip).unwrap();
    let dd = index.get("dd.bin").unwrap();
    assert!(dd.has_data_descriptor());
    assert_eq!(dd.compressed_size, 9);
    assert_eq!(dd.data_end, 30 + 6 + 9 + 16);
    assert_eq!(index.get("next").unwrap().local_header_offset, dd.data_end);
}

#[test]
fn prepended_bytes_shift_offsets() {
    let plain = index(&two_entries().build()).unwrap();
    for prefix_len in [1usize, 100, 70_000] {
        let mut a = two_entries();
        a.prefix = vec![0x4d; prefix_len];
        for zip64 in [false, true] {
            a.zip64 = zip64;
            let zip = a.build();
            for tail in [zip.len(), 200, 40] {
                let (i, _) = index_with_tail(&zip, tail, &IndexLimits::default()).unwrap();
                let b = i.get("dir/b").unwrap();
                let expect = plain.get("dir/b").unwrap().local_header_offset + prefix_len as u64;
                assert_eq!(b.local_header_offset, expect);
                assert_eq!(b.data_end, i.directory_range().start);
                let at = b.local_header_offset as usize;
                assert_eq!(local_header_len(&zip[at..]).unwrap(), 35);
            }
        }
        // Offsets already adjusted (`zip -A`): no shift.
        a.zip64 = false;
        a.adjust_for_prefix = true;
        let i = index(&a.build()).unwrap();
        assert_eq!(
            i.get("a.txt").unwrap().local_header_offset,
            prefix_len as u64
        );
    }
}

#[test]
fn gap_before_end_records_with_directory_at_stated_offset() {
    // The directory is where it says, junk follows it: the stated offset wins, also when
    // it is outside the tail (the shifted guess fails, the stated range is asked for).
    let mut a = two_entries();
    a.entries[1].data = vec![7; 500];
    let zip = a.build();
    let cd_start = index(&zip).unwrap().directory_range().start as usize;
    let mut junk = zip[..zip.len() - 22].to_vec();
    junk.extend_from_slice(&[0u8; 64]);
    junk.extend_from_slice(&zip[zip.len() - 22..]);
    let expect = index(&zip).unwrap().get("dir/b");
    for tail in [junk.len(), 100, 22] {
        let (i, _) = index_with_tail(&junk, tail, &IndexLimits::default()).unwrap();
        assert_eq!(i.get("dir/b"), expect);
        assert_eq!(i.directory_range().start as usize, cd_start);
    }
}

#[test]
fn empty_archives() {
    let eocd = Archive::default().build();
    assert_eq!(eocd.len(), 22);
    let i = index(&eocd).unwrap();
    assert!(i.is_empty() && i.names().count() == i.len() && i.names().next().is_none());
    assert_eq!(i.directory_range(), 0..0);
    // Garbage before an empty EOCD: still an empty archive.
    let mut garbage = b"#!/bin/sh\nexit 0\n".to_vec();
    garbage.extend_from_slice(&eocd);
    assert!(index(&garbage).unwrap().is_empty());
    // Garbage after it: not a zip.
    let mut trailing = eocd.clone();
    trailing.extend_from_slice(b"xyz");
    assert_eq!(index(&trailing).unwrap_err(), ZipError::NotAZip);
    let z = Archive {
        zip64: true,
        ..Archive::default()
    };
    assert!(index(&z.build()).unwrap().is_empty());
}

#[test]
fn not_zips_and_bad_calls() {
    let limits = IndexLimits::default();
    assert_eq!(
        parse_tail(&[], 0, 0, &limits).unwrap_err(),
        ZipError::EmptyObject
    );
    assert_eq!(index(b"hello").unwrap_err(), ZipError::NotAZip);
    assert_eq!(index(&[0u8; 100_000]).unwrap_err(), ZipError::NotAZip);
    // Tail not ending at the object's end.
    assert_eq!(
        parse_tail(b"abc", 0, 10, &limits).unwrap_err(),
        ZipError::Truncated
    );
    assert_eq!(
        parse_tail(b"abc", u64::MAX, 10, &limits).unwrap_err(),
        ZipError::Truncated
    );
    // A short tail of a large non-zip asks for a full tail, then gives up.
    let big = vec![1u8; 200_000];
    let r = index_with_tail(&big, 10, &limits);
    assert_eq!(r.unwrap_err(), ZipError::NotAZip);
    // Too few bytes for the requested range.
    let zip = two_entries().build();
    let TailOutcome::NeedRange { range, pending } = parse_tail(
        &zip[zip.len() - 22..],
        zip.len() as u64 - 22,
        zip.len() as u64,
        &limits,
    )
    .unwrap() else {
        panic!("expected NeedRange")
    };
    let short = &zip[range.start as usize..range.end as usize - 1];
    assert_eq!(
        parse_directory(short, pending, &limits).unwrap_err(),
        ZipError::Truncated
    );
}

#[test]
fn truncated_at_every_byte_never_panics() {
    let mut a = two_entries();
    a.comment = b"comment".to_vec();
    for zip64 in [false, true] {
        a.zip64 = zip64;
        let zip = a.build();
        for cut in 0..zip.len() {
            let _ = index(&zip[..cut]);
            let _ = index(&zip[cut..]);
            for tail in [0, 1, 21, 22, 50] {
                let _ = index_with_tail(&zip[..cut], tail, &IndexLimits::default());
            }
        }
    }
}

#[test]
fn huge_declared_counts_and_sizes() {
    let zip = two_entries().build();
    let eocd = zip.len() - 22;
    let limits = IndexLimits::default();
    let mut count = zip.clone();
    count[eocd + 8..eocd + 12].copy_from_slice(&[0xfe, 0xff, 0xfe, 0xff]);
    assert_eq!(index(&count).unwrap_err(), ZipError::Truncated);
    let mut a = two_entries();
    a.zip64 = true;
    a.count = Some(4_000_000_000);
    let zip64 = a.build();
    assert_eq!(index(&zip64).unwrap_err(), ZipError::TooManyEntries);
    let unlimited = IndexLimits {
        max_entries: u64::MAX,
        max_directory_bytes: u64::MAX,
    };
    let r = index_with_tail(&zip64, zip64.len(), &unlimited);
    assert_eq!(r.unwrap_err(), ZipError::Truncated);
    a.count = Some(u64::MAX);
    let r = index_with_tail(&a.build(), 1000, &unlimited);
    assert_eq!(r.unwrap_err(), ZipError::Truncated);
    // Directory size over the limit: refused before it is asked for.
    let small = IndexLimits {
        max_entries: 10,
        max_directory_bytes: 50,
    };
    let r = parse_tail(&zip, 0, zip.len() as u64, &small);
    assert_eq!(r.unwrap_err(), ZipError::DirectoryTooLarge);
    let one = IndexLimits {
        max_entries: 1,
        ..limits
    };
    let r = parse_tail(&zip, 0, zip.len() as u64, &one);
    assert_eq!(r.unwrap_err(), ZipError::TooManyEntries);
    // Declared directory bigger than the object.
    let mut size = zip.clone();
    size[eocd + 12..eocd + 16].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    assert_eq!(index(&size).unwrap_err(), ZipError::DirectoryTooLarge);
    let r = index_with_tail(&size, zip.len(), &unlimited);
    assert_eq!(r.unwrap_err(), ZipError::DirectoryOutOfBounds);
}

#[test]
fn directory_offset_beyond_object() {
    let zip = two_entries().build();
    let eocd = zip.len() - 22;
    let mut bad = zip.clone();
    bad[eocd + 16..eocd + 20].copy_from_slice(&1_000_000u32.to_le_bytes());
    assert_eq!(index(&bad).unwrap_err(), ZipError::DirectoryOutOfBounds);
    let mut a = two_entries();
    a.zip64 = true;
    let mut z = a.build();
    let rec = z.len() - 22 - 20 - 56;
    z[rec + 48..rec + 56].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
    assert_eq!(index(&z).unwrap_err(), ZipError::DirectoryOutOfBounds);
}

#[test]
fn multi_disk_is_refused() {
    let zip = two_entries().build();
    let eocd = zip.len() - 22;
    for field in [4, 6, 8] {
        let mut bad = zip.clone();
        bad[eocd + field] = 1;
        assert_eq!(
            index(&bad).unwrap_err(),
            ZipError::MultiDisk,
            "field {field}"
        );
    }
    let mut a = two_entries();
    a.zip64 = true;
    let z = a.build();
    let loc = z.len() - 22 - 20;
    let mut bad = z.clone();
    bad[loc + 16] = 2;
    assert_eq!(index(&bad).unwrap_err(), ZipError::MultiDisk);
    let mut bad = z.clone();
    bad[loc - 56 + 16] = 1;
    assert_eq!(index(&bad).unwrap_err(), ZipError::MultiDisk);
}

#[test]
fn gap_before_zip64_record_at_stated_offset_is_junk() {
    let mut a = two_entries();
    a.zip64 = true;
    a.entries[1].data = vec![7; 500];
    let zip = a.build();
    let record = zip.len() - 22 - 20 - 56;
    let mut junk = zip[..record].to_vec();
    junk.extend_from_slice(&[0x4d; 64]);
    junk.extend_from_slice(&zip[record..]);
    let loc = junk.len() - 22 - 20;
    junk[loc + 8..loc + 16].copy_from_slice(&(record as u64 + 64).to_le_bytes());
    let expect = index(&zip).unwrap();
    for tail in [junk.len(), 150, 30] {
        let (i, reads) = index_with_tail(&junk, tail, &IndexLimits::default()).unwrap();
        assert_eq!(i.get("dir/b"), expect.get("dir/b"));
        assert_eq!(i.directory_range(), expect.directory_range());
        assert!(reads <= 1);
    }
}
