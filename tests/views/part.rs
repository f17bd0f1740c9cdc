//! `GET …/artifacts/-/zip?path=…&glob=…`: a part of an archive as a new zip, its entries'
//! compressed bytes copied. Every answer is read by independent readers (the `zip` crate
//! comparing each entry's raw bytes, CRC and time with the source's; `async_zip`; 7-Zip's
//! `7zz t`; python's `zipfile` and Info-ZIP's `unzip -t` where they know the methods;
//! liblzma for xz entries), and its decoded files are checked against the corpus manifest's SHA-256 of the
//! source files.

use std::collections::BTreeSet;
use std::io::{Cursor, Read};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::common::storage::Kind;
use crate::common::zips::{self, CompressionMethod};
use crate::common::{fixture, header, json, python, Harness, TOKEN};
use crate::support::{backend, harness, key, manifest, Manifest};

on_every_source! {
    a_folder_and_a_glob_of_every_archive_of_the_corpus => corpus;
}

on_both_storages! {
    ranges_resume_byte_exact => ranges;
    storage_reads_are_coalesced => coalesced;
}

#[tokio::test]
async fn the_cap_nothing_matched_and_bad_selections() {
    limits().await
}

#[tokio::test]
async fn zip64_end_records_when_the_count_needs_them() {
    zip64().await
}

#[tokio::test]
async fn access_as_for_the_archive() {
    access().await
}

/// Methods each reader decodes.
const PYTHON_METHODS: [u16; 4] = [0, 8, 12, 14];
const UNZIP_METHODS: [u16; 4] = [0, 8, 9, 12];

/// Which names of the manifest a selection takes.
type Wanted = Box<dyn Fn(&str) -> bool>;

/// What a selection should yield from one archive of the manifest: files by name (with
/// the SHA-256 of their bytes) and directory entries.
struct Expected {
    files: Vec<(String, String)>,
    dirs: Vec<String>,
}

fn expected(archive: &crate::support::Archive, wanted: impl Fn(&str) -> bool) -> Expected {
    Expected {
        files: archive
            .entries
            .iter()
            .filter(|e| wanted(&e.name))
            .map(|e| (e.name.clone(), e.sha256.clone()))
            .collect(),
        dirs: archive
            .directories
            .iter()
            .filter(|d| wanted(d))
            .cloned()
            .collect(),
    }
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `part` checked by every reader that can read it; `source` is the archive it came from.
async fn check_part(what: &str, part: &[u8], source: &[u8], want: &Expected) {
    // The zip crate: the structure, and each entry's raw bytes and CRC equal to one of the
    // source's (found by raw bytes, so that names decoded differently do not matter).
    let mut reader =
        zip::ZipArchive::new(Cursor::new(part)).unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut src = zip::ZipArchive::new(Cursor::new(source)).unwrap();
    let mut source_raw = Vec::new();
    for i in 0..src.len() {
        let mut e = src.by_index_raw(i).unwrap();
        let mut raw = Vec::new();
        e.read_to_end(&mut raw).unwrap();
        source_raw.push((e.crc32(), e.compression(), raw, e.last_modified()));
    }
    let mut methods = BTreeSet::new();
    let mut names = BTreeSet::new();
    for i in 0..reader.len() {
        let mut e = reader.by_index_raw(i).unwrap();
        let mut raw = Vec::new();
        e.read_to_end(&mut raw).unwrap();
        assert!(
            source_raw
                .iter()
                .any(|(crc, method, bytes, modified)| *crc == e.crc32()
                    && *method == e.compression()
                    && *bytes == raw
                    && *modified == e.last_modified()),
            "{what}: {} is not a source entry's bytes and time",
            e.name()
        );
        methods.insert(method_code(e.compression()));
        names.insert(e.name().to_owned());
        // Stored and deflated files decode right here.
        if let Some((_, want_sha)) = want.files.iter().find(|(n, _)| n == e.name()) {
            drop(e);
            if let Ok(mut decoded) = reader.by_index(i) {
                let mut bytes = Vec::new();
                if decoded.read_to_end(&mut bytes).is_ok() {
                    assert_eq!(&sha(&bytes), want_sha, "{what}: {}", decoded.name());
                }
            }
        }
    }
    let mut want_names: BTreeSet<String> = want.files.iter().map(|(n, _)| n.clone()).collect();
    want_names.extend(want.dirs.iter().cloned());
    assert_eq!(names, want_names, "{what}: names");

    // async_zip: the same names from its own directory parse, and the files decoded and
    // CRC-checked by it.
    let async_reader = async_zip::base::read::mem::ZipFileReader::new(part.to_vec())
        .await
        .unwrap_or_else(|e| panic!("{what}: async_zip: {e}"));
    let entries = async_reader.file().entries();
    let async_names: BTreeSet<String> = entries
        .iter()
        .map(|e| e.filename().as_str().unwrap().to_owned())
        .collect();
    assert_eq!(async_names, want_names, "{what}: async_zip names");
    for (i, entry) in entries.iter().enumerate() {
        let method = u16::from(entry.compression());
        let name = entry.filename().as_str().unwrap().to_owned();
        let Some((_, want_sha)) = want.files.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        if method == 14 {
            continue; // zip's LZMA framing is not async_zip's
        }
        let mut file = async_reader.reader_with_entry(i).await.unwrap();
        let mut bytes = Vec::new();
        file.read_to_end_checked(&mut bytes)
            .await
            .unwrap_or_else(|e| panic!("{what}: async_zip {name}: {e}"));
        assert_eq!(&sha(&bytes), want_sha, "{what}: async_zip {name}");
    }

    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("part-{}-{n}.zip", std::process::id()));
    std::fs::write(&path, part).unwrap();
    let mut readers = 1;
    if methods.iter().all(|m| PYTHON_METHODS.contains(m)) {
        readers += 1;
        let script = r#"
import hashlib, json, sys, zipfile
want = json.loads(sys.argv[2])
with zipfile.ZipFile(sys.argv[1]) as z:
    assert z.testzip() is None, "a CRC failed"
    names = sorted(z.namelist())
    assert names == sorted(list(want["files"]) + want["dirs"]), (names, want)
    for name, digest in want["files"].items():
        assert hashlib.sha256(z.read(name)).hexdigest() == digest, name
"#;
        let want_json = serde_json::json!({
            "files": want.files.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
            "dirs": want.dirs,
        })
        .to_string();
        let site = python::with_packages(&["zipfile"], &[]);
        let file = path.display().to_string();
        tokio::task::spawn_blocking(move || python::run(&site, script, &[&file, &want_json]))
            .await
            .unwrap();
    }
    if methods.iter().all(|m| UNZIP_METHODS.contains(m)) {
        readers += 1;
        let out = Command::new(python::tool("unzip", "unzip"))
            .arg("-tqq")
            .arg(&path)
            .output()
            .expect("unzip runs");
        assert!(
            out.status.success(),
            "{what}: unzip -t: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // 7-Zip tests every entry, whatever its method.
    readers += 1;
    let out = Command::new(python::tool("7zz", "7zip"))
        .args(["t", "-bso0", "-bsp0"])
        .arg(&path)
        .output()
        .expect("7zz runs");
    assert!(
        out.status.success(),
        "{what}: 7zz t: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if methods.contains(&95) {
        // xz entries are plain .xz streams: decode them with liblzma.
        readers += 1;
        for i in 0..reader.len() {
            let mut e = reader.by_index_raw(i).unwrap();
            if method_code(e.compression()) != 95 {
                continue;
            }
            let mut raw = Vec::new();
            e.read_to_end(&mut raw).unwrap();
            let name = e.name().to_owned();
            let mut decoder = async_compression::tokio::bufread::XzDecoder::new(&raw[..]);
            let mut bytes = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut decoder, &mut bytes)
                .await
                .unwrap();
            let (_, want_sha) = want.files.iter().find(|(n, _)| *n == name).unwrap();
            assert_eq!(&sha(&bytes), want_sha, "{what}: {name}");
        }
    }
    assert!(
        readers >= 2,
        "{what}: only {readers} reader(s) for methods {methods:?}"
    );
    std::fs::remove_file(&path).ok();
}

#[allow(deprecated)]
fn method_code(method: CompressionMethod) -> u16 {
    match method {
        CompressionMethod::Stored => 0,
        CompressionMethod::Deflated => 8,
        CompressionMethod::Unsupported(code) => code,
        other => panic!("{other:?}"),
    }
}

async fn corpus(kind: Kind) {
    let m: &Manifest = manifest();
    let h = Harness::on(kind, backend_for(m.archives.len())).await;
    for (i, archive) in m.archives.iter().enumerate() {
        h.storage
            .put(&key(1, CORPUS_JOBS + i as u64), &fixture(&archive.file));
    }
    let mut checked = 0;
    for (i, archive) in m.archives.iter().enumerate() {
        let source = fixture(&archive.file);
        let job = CORPUS_JOBS + i as u64;
        let selections: [(&str, Wanted); 2] = [
            ("path=dir", Box::new(|n: &str| n.starts_with("dir/"))),
            (
                "glob=**/*.txt&glob=site/*.js",
                Box::new(|n: &str| {
                    (n.ends_with(".txt") && !n.ends_with('/'))
                        || (n.starts_with("site/")
                            && n.ends_with(".js")
                            && n.matches('/').count() == 1)
                }),
            ),
        ];
        for (query, wanted) in selections {
            let want = expected(archive, wanted);
            let what = format!("{} {query}", archive.file);
            let response = h
                .get(
                    &format!("/projects/1/jobs/{job}/artifacts/-/zip?{query}"),
                    Some(TOKEN),
                )
                .await;
            if want.files.is_empty() && want.dirs.is_empty() {
                assert_eq!(response.status(), 404, "{what}");
                continue;
            }
            assert_eq!(response.status(), 200, "{what}");
            assert_eq!(header(&response, "content-type"), Some("application/zip"));
            let length: usize = header(&response, "content-length")
                .unwrap()
                .parse()
                .unwrap();
            let part = response
                .bytes()
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(part.len(), length, "{what}: Content-Length");
            check_part(&what, &part, &source, &want).await;
            checked += 1;
        }
    }
    assert!(
        checked >= 2 * m.archives.len() - 4,
        "only {checked} parts checked"
    );
}

/// The corpus archives are jobs 100, 101, … of project 1.
const CORPUS_JOBS: u64 = 100;

fn backend_for(n: usize) -> sample_backend::BackendBuilder {
    let mut b = backend();
    for id in CORPUS_JOBS..CORPUS_JOBS + n as u64 {
        b = b.job(
            sample_backend::JobSpec::new(
                id,
                1,
                "build",
                "main",
                sample_backend::JobStatus::Success,
            )
            .with_archive(1),
        );
    }
    b
}

/// Stored noise entries, some chosen, with the gaps between them known.
fn layout_archive() -> zips::Built {
    let big = zips::noise(1, 1024 * 1024);
    let small: Vec<Vec<u8>> = (0..8)
        .map(|i| zips::noise(10 + i, 3000 + i as usize))
        .collect();
    let gap = zips::noise(30, 10 * 1024);
    zips::build_stored(&[
        ("a.bin", &big),
        ("sel/1", &small[0]),
        ("sel/2", &small[1]),
        ("sel/3", &small[2]),
        ("gap.bin", &big),
        ("sel2/x", &small[3]),
        ("sel2/small-gap.bin", &gap),
        ("sel2/y", &small[4]),
        ("z.bin", &big),
        ("zz.bin", &big),
    ])
}

async fn coalesced(kind: Kind) {
    let (h, tap) = harness(kind).await;
    let zip = layout_archive();
    h.storage.put(&key(1, 1), &zip.bytes);
    // Warm the index first: the reads below are the part's alone.
    assert_eq!(
        h.get("/projects/1/jobs/1/artifacts/tree", Some(TOKEN))
            .await
            .status(),
        200
    );
    let ranges = || tap.ranges.lock().unwrap().len();
    let before = ranges();
    let response = h
        .get(
            "/projects/1/jobs/1/artifacts/-/zip?path=sel&glob=sel2/?",
            Some(TOKEN),
        )
        .await;
    assert_eq!(response.status(), 200);
    let part = response.bytes().await.unwrap();
    let reads: Vec<_> = tap.ranges.lock().unwrap()[before..].to_vec();
    // sel/1..3 lie together: one read. sel2/x and sel2/y have 10 KiB between them (the
    // unchosen sel2/small-gap.bin), read and dropped: one read. gap.bin's 1 MiB is not.
    let run = |first: &str, last: &str| {
        Some(object_store::GetRange::Bounded(
            zip.entry(first).local_header..zip.span(last).end,
        ))
    };
    assert_eq!(reads, vec![run("sel/1", "sel/3"), run("sel2/x", "sel2/y")]);
    assert_eq!(ranges() - before, 2);
    let mut reader = zip::ZipArchive::new(Cursor::new(&part[..])).unwrap();
    let names: Vec<String> = (0..reader.len())
        .map(|i| reader.by_index(i).unwrap().name().to_owned())
        .collect();
    assert_eq!(names, ["sel/1", "sel/2", "sel/3", "sel2/x", "sel2/y"]);
    for name in &names {
        let mut bytes = Vec::new();
        reader
            .by_name(name)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        assert_eq!(bytes.len() as u64, zip.entry(name).uncompressed_size);
        assert_eq!(
            &bytes[..],
            &zip.bytes[zip.entry(name).data().start as usize..zip.entry(name).data().end as usize]
        );
    }
}

async fn ranges(kind: Kind) {
    let (h, tap) = harness(kind).await;
    let zip = layout_archive();
    h.storage.put(&key(1, 1), &zip.bytes);
    let url = "/projects/1/jobs/1/artifacts/-/zip?glob=*.bin";
    let full = h.get(url, Some(TOKEN)).await;
    assert_eq!(full.status(), 200);
    let etag = header(&full, "etag").unwrap().to_owned();
    assert!(etag.starts_with('"'), "a strong ETag: {etag}");
    assert_eq!(header(&full, "accept-ranges"), Some("bytes"));
    let full = full.bytes().await.unwrap();
    let len = full.len() as u64;
    // The readers agree it is a zip of the four .bin files.
    let mut reader = zip::ZipArchive::new(Cursor::new(&full[..])).unwrap();
    assert_eq!(reader.len(), 4);
    for i in 0..4 {
        let mut bytes = Vec::new();
        let mut e = reader.by_index(i).unwrap();
        e.read_to_end(&mut bytes).unwrap();
        let src = zip.entry(e.name());
        assert_eq!(
            &bytes[..],
            &zip.bytes[src.data().start as usize..src.data().end as usize]
        );
    }
    // Resume points: inside the first local header, inside the first data, in the middle of
    // the third entry's data, inside the central directory, the last byte.
    let second = zip::ZipArchive::new(Cursor::new(&full[..])).unwrap();
    let directory_start = second.central_directory_start();
    for from in [
        10,
        1000,
        2 * 1024 * 1024 + 12_345,
        directory_start + 7,
        len - 1,
    ] {
        let before = tap.gets.load(std::sync::atomic::Ordering::SeqCst);
        let resumed = h
            .client
            .get(h.url(url))
            .header("PRIVATE-TOKEN", TOKEN)
            .header("Range", format!("bytes={from}-"))
            .header("If-Range", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(resumed.status(), 206, "from {from}");
        assert_eq!(
            header(&resumed, "content-range").map(str::to_owned),
            Some(format!("bytes {from}-{}/{len}", len - 1))
        );
        let body = resumed.bytes().await.unwrap();
        assert!(
            body == full[from as usize..],
            "resume from {from}: wrong bytes"
        );
        let reads = tap.gets.load(std::sync::atomic::Ordering::SeqCst) - before;
        // From the directory on nothing is read; inside an entry's data, its local header
        // and the rest of the run.
        if from >= directory_start {
            assert_eq!(reads, 0, "from {from}");
        }
    }
    // A bounded range in the middle.
    let middle = h.get_range(url, "bytes=1048000-1049999").await;
    assert_eq!(middle.status(), 206);
    assert!(middle.bytes().await.unwrap() == full[1_048_000..1_050_000]);
    // HEAD and validators.
    let head = h.head(url, Some(TOKEN)).await;
    assert_eq!(
        header(&head, "content-length").map(str::to_owned),
        Some(len.to_string())
    );
    assert_eq!(header(&head, "etag"), Some(etag.as_str()));
    let again = h
        .client
        .get(h.url(url))
        .header("PRIVATE-TOKEN", TOKEN)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    // Another selection is another ETag; a stale If-Range gets the whole answer.
    let other = h
        .head(
            "/projects/1/jobs/1/artifacts/-/zip?glob=*.bin&path=sel",
            Some(TOKEN),
        )
        .await;
    assert_ne!(header(&other, "etag"), Some(etag.as_str()));
    let stale = h
        .client
        .get(h.url(url))
        .header("PRIVATE-TOKEN", TOKEN)
        .header("Range", "bytes=100-")
        .header("If-Range", "\"old\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.bytes().await.unwrap().len() as u64, len);
}

async fn limits() {
    let h = Harness::start_with(backend(), |c| c.zip.max_part_entries = 3).await;
    h.storage.put(&key(1, 1), &layout_archive().bytes);
    let over = h
        .get("/projects/1/jobs/1/artifacts/-/zip?glob=*.bin", Some(TOKEN))
        .await;
    assert_eq!(over.status(), 413);
    assert_eq!(
        json(over).await,
        serde_json::json!({"message": "413 Request Entity Too Large - the selection matches more than 3 entries (zip.max_part_entries)"})
    );
    let three = h
        .get("/projects/1/jobs/1/artifacts/-/zip?path=sel", Some(TOKEN))
        .await;
    assert_eq!(three.status(), 200);
    for query in ["path=nothing", "glob=*.xml", "path=se"] {
        let none = h
            .get(
                &format!("/projects/1/jobs/1/artifacts/-/zip?{query}"),
                Some(TOKEN),
            )
            .await;
        assert_eq!(none.status(), 404, "{query}");
        assert_eq!(
            json(none).await,
            serde_json::json!({"message": "404 Not Found"})
        );
    }
    for (query, error) in [
        (
            "",
            "path, glob are missing, at least one parameter must be provided",
        ),
        ("path=/etc", "path is invalid: not a relative path"),
        ("glob=../*", "glob is invalid: `.` or `..` segment"),
        ("glob=%C3%28", "glob is invalid: not valid UTF-8"),
    ] {
        let bad = h
            .get(
                &format!("/projects/1/jobs/1/artifacts/-/zip?{query}"),
                Some(TOKEN),
            )
            .await;
        assert_eq!(bad.status(), 400, "{query}");
        assert_eq!(
            json(bad).await,
            serde_json::json!({ "error": error }),
            "{query}"
        );
    }
}

async fn zip64() {
    let h = Harness::start_with(backend(), |_| {}).await;
    // 70,000 files: a part with all of them needs the zip64 end records (count ≥ 65,535).
    let names: Vec<String> = (0..70_000)
        .map(|i| format!("d{}/{i:05}", i / 10_000))
        .collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), n.as_bytes())).collect();
    let zip = zips::build_stored(&entries);
    h.storage.put(&key(1, 1), &zip.bytes);
    let response = h
        .get("/projects/1/jobs/1/artifacts/-/zip?glob=d*/*", Some(TOKEN))
        .await;
    assert_eq!(response.status(), 200);
    let part = response.bytes().await.unwrap();
    // EOCD: count saturated, the zip64 locator right before it.
    let eocd = part.len() - 22;
    assert_eq!(zips::le32(&part, eocd), 0x0605_4b50);
    assert_eq!(zips::le16(&part, eocd + 10), 0xFFFF);
    assert_eq!(zips::le32(&part, eocd - 20), zips::ZIP64_LOCATOR);
    assert_eq!(zips::le64(&part, eocd - 20 - 56 + 32), 70_000);
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("zip64-{}.zip", std::process::id()));
    std::fs::write(&path, &part).unwrap();
    let script = r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    infos = z.infolist()
    assert len(infos) == 70000, len(infos)
    assert z.testzip() is None
    for i in (0, 12345, 69999):
        name = "d%d/%05d" % (i // 10000, i)
        assert z.read(name) == name.encode(), name
"#;
    let site = python::with_packages(&["zipfile"], &[]);
    let file = path.display().to_string();
    tokio::task::spawn_blocking(move || python::run(&site, script, &[&file]))
        .await
        .unwrap();
    let out = Command::new(python::tool("unzip", "unzip"))
        .arg("-tqq")
        .arg(&path)
        .output()
        .expect("unzip runs");
    let seven = Command::new(python::tool("7zz", "7zip"))
        .args(["t", "-bso0", "-bsp0"])
        .arg(&path)
        .output()
        .expect("7zz runs");
    assert!(
        seven.status.success(),
        "7zz t: {}",
        String::from_utf8_lossy(&seven.stderr)
    );
    assert!(
        out.status.success(),
        "unzip -t: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::remove_file(&path).ok();
}

async fn access() {
    let (h, _) = harness(Kind::Local).await;
    h.storage.put(&key(2, 21), &layout_archive().bytes);
    h.storage.put(&key(1, 9), &layout_archive().bytes);
    let url = "/projects/2/jobs/21/artifacts/-/zip?path=sel";
    assert_eq!(h.get(url, Some(TOKEN)).await.status(), 200);
    for token in [Some("outsider-token"), None] {
        let refused = h.get(url, token).await;
        assert_eq!(refused.status(), 404);
        assert_eq!(
            json(refused).await,
            serde_json::json!({"message": "404 Project Not Found"})
        );
    }
    let job_token = sample_backend::SampleBackend::job_token(12);
    let by_ref = h
        .client
        .get(h.url("/projects/1/jobs/artifacts/main/-/zip?job=build&path=sel"))
        .header("JOB-TOKEN", &job_token)
        .send()
        .await
        .unwrap();
    assert_eq!(by_ref.status(), 200);
    let part = by_ref.bytes().await.unwrap();
    assert_eq!(
        zip::ZipArchive::new(Cursor::new(&part[..])).unwrap().len(),
        3
    );
}
