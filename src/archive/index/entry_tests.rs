//! Hand-built archives: entries, names, lookups.

use super::test_archive::*;
use super::*;

#[test]
fn overlapping_entries() {
    let mut a = two_entries();
    a.entries[1].offset = Some(0);
    assert_eq!(index(&a.build()).unwrap_err(), ZipError::OverlappingEntries);
    let mut a = two_entries();
    a.entries[0].compressed = Some(11);
    assert_eq!(index(&a.build()).unwrap_err(), ZipError::OverlappingEntries);
    // The last entry must end before the directory.
    let mut a = two_entries();
    a.entries[1].compressed = Some(12);
    assert_eq!(index(&a.build()).unwrap_err(), ZipError::OverlappingEntries);
    let mut a = two_entries();
    a.entries[1].offset = Some(10_000);
    assert_eq!(index(&a.build()).unwrap_err(), ZipError::OverlappingEntries);
    let mut a = two_entries();
    a.zip64 = true;
    a.entries[1].compressed = Some(u64::MAX - 20);
    assert_eq!(index(&a.build()).unwrap_err(), ZipError::OverlappingEntries);
}

#[test]
fn duplicate_names_keep_the_last() {
    let zip = Archive::with(vec![
        Entry::new("same", b"first"),
        Entry::new("other", b""),
        Entry::new("same", b"second!"),
    ])
    .build();
    let index = index(&zip).unwrap();
    assert_eq!(names(&index), ["other", "same"]);
    let same = index.get("same").unwrap();
    assert_eq!(same.compressed_size, 7);
    assert_eq!(same.local_header_offset, 30 + 4 + 5 + 30 + 5);
    // The shadowed entry still bounds the one before it.
    assert_eq!(
        index.get("other").unwrap().data_end,
        same.local_header_offset
    );
}

#[test]
fn name_encodings() {
    let mut cp437 = Entry::new("", b"1");
    cp437.name = vec![0x82, 0x74, 0x82];
    let raw_utf8 = Entry::new("ünï/cödé.txt", b"2");
    let mut flagged = Entry::new("flagged/€", b"3");
    flagged.flags = 0x0800;
    let mut bad_flagged = Entry::new("", b"4");
    bad_flagged.name = vec![b'x', 0xff];
    bad_flagged.flags = 0x0800;
    let unicode_path = |raw: &[u8], name: &str, crc: u32| {
        let mut extra = vec![0x75, 0x70];
        extra.extend_from_slice(&(5 + name.len() as u16).to_le_bytes());
        extra.push(1);
        extra.extend_from_slice(&crc.to_le_bytes());
        extra.extend_from_slice(name.as_bytes());
        let mut e = Entry::new("", b"5");
        e.name = raw.to_vec();
        e.extra = extra;
        e
    };
    let good = unicode_path(&[0x8e, b'1'], "Ä-unicode", crc32fast::hash(&[0x8e, b'1']));
    let bad = unicode_path(&[0x8e, b'2'], "ignored", 12345);
    let zip = Archive::with(vec![cp437, raw_utf8, flagged, bad_flagged, good, bad]).build();
    let index = index(&zip).unwrap();
    for name in [
        "été",
        "ünï/cödé.txt",
        "flagged/€",
        "x\u{fffd}",
        "Ä-unicode",
        "Ä2",
    ] {
        assert!(index.get(name).is_some(), "{name} in {:?}", names(&index));
    }
    assert_eq!(index.len(), 6);
}

#[test]
fn directories() {
    let zip = Archive::with(vec![
        Entry::new("empty/", b""),
        Entry::new("dir/sub/file", b"x"),
        Entry::new("dir.txt", b"y"),
        Entry::new("dirx/file", b"z"),
    ])
    .build();
    let i = index(&zip).unwrap();
    for d in ["empty", "empty/", "dir", "dir/", "dir/sub", "dirx", ""] {
        assert!(i.is_directory(d), "{d}");
    }
    for f in [
        "dir.txt",
        "dir/sub/file",
        "di",
        "dir/s",
        "nothing",
        "dirx/file",
    ] {
        assert!(!i.is_directory(f), "{f}");
    }
    assert!(i.get("empty/").is_some() && i.get("empty").is_none());
}

#[test]
fn bad_central_headers() {
    let zip = two_entries().build();
    let cd = index(&zip).unwrap().directory_range().start as usize;
    let second = cd + 46 + 5;
    let mut bad = zip.clone();
    bad[second] = b'X';
    assert_eq!(
        index(&bad).unwrap_err(),
        ZipError::BadCentralHeader { index: 1 }
    );
    // A name length running past the directory.
    let mut bad = zip.clone();
    bad[second + 28] = 200;
    assert_eq!(
        index(&bad).unwrap_err(),
        ZipError::BadCentralHeader { index: 1 }
    );
    // zip64 extra too short for a saturated field.
    let mut a = two_entries();
    a.zip64 = true;
    let mut z = a.build();
    let cd = index(&z).unwrap().directory_range().start as usize;
    z[cd + 46 + 5 + 2] = 8; // zip64 extra length 24 → 8: only the uncompressed size
    assert_eq!(
        index(&z).unwrap_err(),
        ZipError::BadCentralHeader { index: 0 }
    );
}

#[test]
fn methods_and_flags() {
    let codes = [
        (0, Method::Stored),
        (8, Method::Deflate),
        (9, Method::Deflate64),
        (12, Method::Bzip2),
        (14, Method::Lzma),
        (20, Method::Zstd),
        (93, Method::Zstd),
        (95, Method::Xz),
        (99, Method::Other(99)),
    ];
    for (code, method) in codes {
        assert_eq!(Method::from(code), method);
    }
    let mut e = Entry::new("secret", b"xx");
    e.flags = 1;
    e.method = 99;
    let i = index(&Archive::with(vec![e]).build()).unwrap();
    let s = i.get("secret").unwrap();
    assert!(s.is_encrypted());
    assert_eq!(s.method, Method::Other(99));
}

#[test]
fn local_header_lengths() {
    assert_eq!(local_header_len(&[0; 29]).unwrap_err(), ZipError::Truncated);
    assert_eq!(
        local_header_len(&[0; 30]).unwrap_err(),
        ZipError::BadLocalHeader
    );
    let mut h = vec![0x50, 0x4b, 0x03, 0x04];
    h.resize(30, 0);
    h[26] = 0xff;
    h[27] = 0xff;
    h[28] = 2;
    assert_eq!(local_header_len(&h).unwrap(), 30 + 65_535 + 2);
}

#[test]
fn error_messages_are_sentences() {
    let e = ZipError::BadCentralHeader { index: 3 };
    assert_eq!(e.to_string(), "zip central directory entry #3 is malformed");
    assert!(ZipError::NotAZip
        .to_string()
        .starts_with("not a zip archive"));
}

#[test]
fn many_entries_use_zip64_count() {
    let entries = (0..70_000)
        .map(|i| Entry::new(&format!("f/{i:05}"), b""))
        .collect();
    let mut a = Archive::with(entries);
    a.zip64 = true;
    let zip = a.build();
    let (index, reads) =
        index_with_tail(&zip, MIN_TAIL_LEN as usize, &IndexLimits::default()).unwrap();
    assert_eq!((index.len(), reads), (70_000, 1));
    let last = index.get("f/69999").unwrap();
    assert_eq!(last.data_end, index.directory_range().start);
    assert_eq!(
        index.get("f/69998").unwrap().data_end,
        last.local_header_offset
    );
    assert!(index.is_directory("f"));
    // Compact: 56 bytes a record plus the 7-byte names.
    assert!(
        index.heap_bytes() < 70_000 * (56 + 7) + 1024,
        "{}",
        index.heap_bytes()
    );
}

#[test]
fn listings_carry_modes_times_and_runs_by_prefix() {
    use std::io::Write as _;
    use zip::write::SimpleFileOptions;
    // A Unix writer: the `zip` crate records modes as host 3 ("version made by" high byte).
    let time = zip::DateTime::from_date_and_time(2024, 5, 17, 13, 45, 30).unwrap();
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().last_modified_time(time);
    writer
        .add_directory("bin/", options.unix_permissions(0o750))
        .unwrap();
    for (name, mode) in [
        ("bin/run", 0o755),
        ("bin.txt", 0o600),
        ("bin/sub/x", 0o644),
        ("binary", 0o644),
    ] {
        writer
            .start_file(name, options.unix_permissions(mode))
            .unwrap();
        writer.write_all(name.as_bytes()).unwrap();
    }
    let zip = writer.finish().unwrap().into_inner();
    let index = index(&zip).unwrap();

    let names: Vec<&str> = index.starting_with("bin/").map(|e| e.name).collect();
    assert_eq!(names, ["bin/", "bin/run", "bin/sub/x"]);
    let all: Vec<&str> = index.starting_with("").map(|e| e.name).collect();
    assert_eq!(all, ["bin.txt", "bin/", "bin/run", "bin/sub/x", "binary"]);
    assert_eq!(index.starting_with("nothing/").count(), 0);
    assert_eq!(index.starting_with("binary/").count(), 0);

    let run = index.starting_with("bin/run").next().unwrap();
    assert_eq!(run.info, index.get("bin/run").unwrap());
    // S_IFREG | 0755, and S_IFDIR | 0750 for the directory entry.
    assert_eq!(run.unix_mode, 0o100755);
    let dir = index.starting_with("bin/").next().unwrap();
    assert_eq!(dir.unix_mode & 0o170777, 0o040750);
    // MS-DOS date: years since 1980, month, day; time: hours, minutes, seconds / 2.
    let date = ((2024 - 1980) << 9) | (5 << 5) | 17;
    let clock = (13 << 11) | (45 << 5) | (30 / 2);
    assert_eq!(run.modified, (date << 16) | clock);
}

#[test]
fn writers_without_unix_modes_leave_them_zero() {
    // The hand-built archives leave the external attributes 0: no mode recorded.
    let zip = Archive::with(vec![Entry::new("a.txt", b"hello")]).build();
    let index = index(&zip).unwrap();
    assert_eq!(index.starting_with("a").next().unwrap().unix_mode, 0);
}
