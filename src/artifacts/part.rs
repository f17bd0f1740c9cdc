//! A part of an archive as a zip: `GET|HEAD /projects/:id/jobs/:job_id/artifacts/-/zip`
//! and `/projects/:id/jobs/artifacts/:ref_name/-/zip?job=NAME`, with repeatable `path`
//! (a directory prefix) and `glob` (on the whole entry name: `*` and `?` within a segment,
//! `**` across segments) parameters; an entry is in the part when it matches any of them.
//!
//! The answer is laid out from the index before the first byte ([`crate::archive::part`]):
//! its length, a strong ETag (the archive's ETag and the selection), ranges and
//! conditional requests work as for the archive. The entries' compressed bytes are copied
//! from storage unchanged, never decoded or recompressed: one bounded read, pinned to the
//! archive's ETag, per run of entries that lie together in the source (gaps up to
//! [`MAX_GAP`] are read and dropped rather than asked for separately), none for entries in
//! the cached tail. Each source local header is checked (signature, and that the data fits
//! before the next entry) before the new header goes out; a failure after the first byte
//! aborts the body, so a client never takes a short answer for a whole one. Memory per
//! answer: the plan (4 bytes an entry) and one directory chunk ([`DIRECTORY_CHUNK`]).

use std::future::Future;
use std::io;
use std::ops::Range;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use http::request::Parts;
use http::{Method, Response};
use percent_encoding::percent_decode_str;
use sha2::{Digest, Sha256};

use super::entry::Failure;
use super::sized::{self, Start};
use super::{Artifacts, ARCHIVE, ARCHIVE_DISPOSITION};
use crate::archive::cache::Archive;
use crate::archive::entry::{EntryError, Window};
use crate::archive::index::format::LOCAL_HEADER_LEN;
use crate::archive::index::{EntryInfo, Listed, ZipError};
use crate::archive::part::{self, Layout, AES_METHOD, ENCRYPTION_FLAGS};
use crate::causes;
use crate::error::{GatewayError, Stop};
use crate::http_util::body::{self, Body};
use crate::request::route::JobRef;
use crate::storage::{Location, Storage, StorageError};
use crate::upstream::jobs::Jobs;

/// Bytes between two chosen entries that are read and dropped rather than costing another
/// storage request.
pub const MAX_GAP: u64 = 256 * 1024;
/// Central directory bytes built at a time.
pub const DIRECTORY_CHUNK: usize = 64 * 1024;

/// What the query asks for.
#[derive(Debug)]
pub struct Selection {
    /// Directory prefixes, each ending in `/`.
    dirs: Vec<String>,
    globs: GlobSet,
    /// The selection in one canonical text, for the ETag.
    canonical: String,
}

impl Selection {
    /// From the raw query: `path` and `glob`, each repeatable (also as `path[]`, `glob[]`).
    /// A value that is not valid UTF-8, not relative, or has a `.`/`..` segment or a NUL
    /// is a 400; so is a query with neither.
    pub fn parse(query: Option<&str>) -> Result<Self, GatewayError> {
        let mut dirs = Vec::new();
        let mut patterns = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = match key {
                "path" | "path[]" | "path%5B%5D" => "path",
                "glob" | "glob[]" | "glob%5B%5D" => "glob",
                _ => continue,
            };
            let value = decode(value).map_err(|why| invalid(name, why))?;
            check_relative(&value).map_err(|why| invalid(name, why))?;
            if name == "path" {
                dirs.push(value);
            } else {
                patterns.push(value);
            }
        }
        if dirs.is_empty() && patterns.is_empty() {
            return Err(GatewayError::InvalidParam(
                "path, glob are missing, at least one parameter must be provided".into(),
            ));
        }
        for dir in &mut dirs {
            if !dir.ends_with('/') {
                dir.push('/');
            }
        }
        let mut set = GlobSetBuilder::new();
        for pattern in &patterns {
            let glob = GlobBuilder::new(&literal_brackets(pattern))
                .literal_separator(true)
                .backslash_escape(false)
                .build()
                .map_err(|e| invalid("glob", &e.kind().to_string()))?;
            set.add(glob);
        }
        let globs = set
            .build()
            .map_err(|e| invalid("glob", &e.kind().to_string()))?;
        dirs.sort();
        dirs.dedup();
        patterns.sort();
        patterns.dedup();
        let canonical = dirs
            .iter()
            .map(|d| format!("path\0{d}\0"))
            .chain(patterns.iter().map(|g| format!("glob\0{g}\0")))
            .collect();
        Ok(Self {
            dirs,
            globs,
            canonical,
        })
    }

    fn matches(&self, name: &str) -> bool {
        self.dirs.iter().any(|d| name.starts_with(d.as_str())) || self.globs.is_match(name)
    }
}

fn invalid(name: &str, why: &str) -> GatewayError {
    GatewayError::InvalidParam(format!("{name} is invalid: {why}"))
}

/// A query value as Rack decodes it (`+` is a space), refusing what is not UTF-8.
fn decode(raw: &str) -> Result<String, &'static str> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| "not valid UTF-8")
}

fn check_relative(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("empty");
    }
    if value.starts_with('/') {
        return Err("not a relative path");
    }
    if value.contains('\0') {
        return Err("NUL byte");
    }
    if value.split('/').any(|s| s == "." || s == "..") {
        return Err("`.` or `..` segment");
    }
    Ok(())
}

/// Only `*`, `**` and `?` are special: brackets and braces match themselves.
fn literal_brackets(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        match c {
            '[' | ']' | '{' | '}' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

impl Artifacts {
    /// `GET|HEAD /projects/:id/jobs/:job_id/artifacts/-/zip` and
    /// `/projects/:id/jobs/artifacts/:ref_name/-/zip?job=NAME`
    pub async fn part(
        &self,
        jobs: &Jobs<'_>,
        parts: &Parts,
        job: JobRef<'_>,
    ) -> Result<Response<Body>, Stop> {
        let selection = &Selection::parse(parts.uri.query())?;
        self.on_archive(
            |again| self.caller_archive(jobs, job, again),
            |archive, location| async move {
                self.part_response(parts, archive, location, selection)
                    .await
            },
        )
        .await
    }

    async fn part_response(
        &self,
        parts: &Parts,
        archive: Arc<Archive>,
        location: Location,
        selection: &Selection,
    ) -> Result<Response<Body>, Failure> {
        let layout = Arc::new(self.plan(&archive, selection)?);
        let etag = part_etag(archive.etag.as_deref(), selection);
        let size = layout.len;
        let selected = match sized::start(&parts.headers, &etag, size)? {
            Start::NotModified(response) => return Ok(response),
            Start::Send(selected) => selected,
        };
        let wanted = selected.clone().unwrap_or(0..size);
        let mut response = Response::new(body::empty());
        if parts.method != Method::HEAD && !wanted.is_empty() {
            let stream = PartStream::starting_at(
                Arc::clone(&self.storage),
                archive,
                location,
                layout,
                wanted,
            )
            .await?;
            // A changed object, an expired URL or a bad first entry is still a proper answer.
            let body = sized::after_first_chunk(stream)
                .await
                .map_err(|error| first_failure(&error))?;
            response = Response::new(body);
        }
        let selected = selected.as_ref();
        sized::describe(
            &mut response,
            ARCHIVE.content_type,
            ARCHIVE_DISPOSITION,
            &etag,
            size,
            selected,
        );
        Ok(response)
    }

    /// The entries the selection names, within `zip.max_part_entries`.
    fn plan(&self, archive: &Archive, selection: &Selection) -> Result<Layout, GatewayError> {
        let index = &archive.index;
        let cap = self.max_part_entries;
        let mut positions: Vec<u32> = Vec::new();
        let mut consider = |at: usize| -> Result<(), GatewayError> {
            let Some(entry) = index.at(at) else {
                return Ok(());
            };
            if !selection.matches(entry.name) {
                return Ok(());
            }
            if entry.info.flags & ENCRYPTION_FLAGS != 0 || entry.method_code == AES_METHOD {
                return Err(GatewayError::UnsupportedEntry(format!(
                    "{} is encrypted; encrypted entries cannot be put in a new archive",
                    entry.name
                )));
            }
            if positions.len() as u64 >= cap {
                return Err(GatewayError::TooLarge(format!(
                    "the selection matches more than {cap} entries (zip.max_part_entries)"
                )));
            }
            // `at < index.len()`, which fits u32: the records of a directory under 4 GiB × 46.
            positions.push(at as u32);
            Ok(())
        };
        if selection.globs.is_empty() {
            // Directory prefixes only: just their runs of the sorted names.
            let mut runs: Vec<Range<usize>> = selection
                .dirs
                .iter()
                .map(|d| index.positions_starting_with(d))
                .collect();
            runs.sort_by_key(|r| r.start);
            let mut next = 0;
            for run in runs {
                for at in run.start.max(next)..run.end {
                    consider(at)?;
                }
                next = next.max(run.end);
            }
        } else {
            for at in 0..index.len() {
                consider(at)?;
            }
        }
        if positions.is_empty() {
            return Err(GatewayError::NotFound("404 Not Found"));
        }
        Ok(Layout::new(index, positions))
    }
}

/// A failure while producing the first chunk, as the answer it should be.
fn first_failure(error: &io::Error) -> Failure {
    match causes::find::<StorageError>(error) {
        Some(StorageError::PreconditionFailed) => Failure::Changed,
        Some(StorageError::Expired) => Failure::Expired,
        _ => Failure::Error(GatewayError::before_first_byte(error)),
    }
}

/// Changes when the archive changes or the selection does.
fn part_etag(archive_etag: Option<&str>, selection: &Selection) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"artifact-gateway part v1\0");
    hasher.update(archive_etag.unwrap_or("").as_bytes());
    hasher.update(b"\0");
    hasher.update(selection.canonical.as_bytes());
    let digest = hasher.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

fn bad(why: String) -> io::Error {
    io::Error::other(GatewayError::BadArchive(why))
}

/// One storage read over a run of entries, consumed front to back.
struct RunReader {
    body: BoxStream<'static, Result<Bytes, StorageError>>,
    /// Object offset of the next byte.
    pos: u64,
    end: u64,
    buf: Bytes,
}

impl RunReader {
    async fn fill(&mut self) -> io::Result<()> {
        while self.buf.is_empty() {
            match self.body.next().await {
                Some(Ok(bytes)) => self.buf = bytes,
                Some(Err(error)) => return Err(io::Error::other(error)),
                None => return Err(bad(ZipError::Truncated.to_string())),
            }
        }
        Ok(())
    }

    async fn skip_to(&mut self, target: u64) -> io::Result<()> {
        while self.pos < target {
            self.fill().await?;
            let n = (target - self.pos).min(self.buf.len() as u64);
            self.buf.advance(n as usize);
            self.pos += n;
        }
        Ok(())
    }

    async fn take(&mut self, len: usize) -> io::Result<Bytes> {
        let mut out = BytesMut::with_capacity(len);
        while out.len() < len {
            self.fill().await?;
            let n = (len - out.len()).min(self.buf.len());
            out.extend_from_slice(&self.buf.split_to(n));
            self.pos += n as u64;
        }
        Ok(out.freeze())
    }

    async fn next_upto(&mut self, max: u64) -> io::Result<Bytes> {
        self.fill().await?;
        let n = max.min(self.buf.len() as u64) as usize;
        self.pos += n as u64;
        Ok(self.buf.split_to(n))
    }
}

enum State {
    /// The next member's local header (source read, new one written).
    Header(usize),
    /// `left` compressed bytes of member `k` still to copy.
    Data {
        k: usize,
        left: u64,
    },
    /// Central headers from member `k` on; `offset` is member `k`'s local header offset
    /// in the answer.
    Directory {
        k: usize,
        offset: u64,
    },
    End,
    Done,
}

/// The answer's bytes from a start offset on.
struct PartStream {
    storage: Arc<Storage>,
    archive: Arc<Archive>,
    path: Location,
    layout: Arc<Layout>,
    reader: Option<RunReader>,
    state: State,
}

impl PartStream {
    /// The bytes `wanted` of the answer (not empty, within its length).
    async fn starting_at(
        storage: Arc<Storage>,
        archive: Arc<Archive>,
        path: Location,
        layout: Arc<Layout>,
        wanted: Range<u64>,
    ) -> Result<BoxStream<'static, io::Result<Bytes>>, Failure> {
        let mut stream = PartStream {
            storage,
            archive,
            path,
            layout,
            reader: None,
            state: State::Done,
        };
        let from = stream
            .seek(wanted.start)
            .await
            .map_err(|e| first_failure(&e))?;
        let window = (wanted.start - from)..(wanted.end - from);
        let stream = futures_util::stream::try_unfold(stream, |mut s| async move {
            Ok(s.next_chunk().await?.map(|chunk| (chunk, s)))
        });
        Ok(Window::new(stream.boxed(), window).boxed())
    }

    fn member(&self, k: usize) -> Listed<'_> {
        let at = self.layout.members[k] as usize;
        self.archive.index.at(at).expect("a position of this index")
    }

    /// Sets the state to produce the answer from `offset` on, or from a little before it;
    /// returns where the output will start. Inside a member's data, the copy starts right
    /// there (after a read of that member's local header).
    async fn seek(&mut self, offset: u64) -> io::Result<u64> {
        let layout = Arc::clone(&self.layout);
        if offset >= layout.directory_offset {
            self.state = State::Directory { k: 0, offset: 0 };
            return Ok(layout.directory_offset);
        }
        let mut at = 0u64;
        for k in 0..layout.members.len() {
            let entry = self.member(k);
            let (header, compressed) = (part::local_header_len(&entry), entry.info.compressed_size);
            let next = at + header + compressed;
            if offset < next {
                if offset < at + header {
                    self.state = State::Header(k);
                    return Ok(at);
                }
                let skip = offset - at - header;
                let data = self.source_data(k).await?;
                self.reader = Some(self.open_run(k, data.start + skip).await?);
                self.state = State::Data {
                    k,
                    left: compressed - skip,
                };
                return Ok(offset);
            }
            at = next;
        }
        // Unreachable: the members end where the directory starts.
        self.state = State::Directory { k: 0, offset: 0 };
        Ok(layout.directory_offset)
    }

    /// Where member `k`'s compressed bytes are in the source, from its local header.
    fn source_data(&self, k: usize) -> impl Future<Output = io::Result<Range<u64>>> + Send {
        let entry = self.member(k);
        let (info, name) = (entry.info, entry.name.to_owned());
        let start = info.local_header_offset;
        let reader = self.reader_of(start..start + LOCAL_HEADER_LEN);
        async move {
            let bytes = reader.await?.take(LOCAL_HEADER_LEN as usize).await?;
            data_span(&bytes, &info, &name)
        }
    }

    /// One read from `from` to the end of the run of members that starts with `k`.
    fn open_run(&self, k: usize, from: u64) -> impl Future<Output = io::Result<RunReader>> + Send {
        let mut end = self.member(k).info.data_end;
        for j in k + 1..self.layout.members.len() {
            let next = self.member(j).info;
            if next.local_header_offset.saturating_sub(end) > MAX_GAP {
                break;
            }
            end = next.data_end;
        }
        self.reader_of(from..end)
    }

    /// A read of `range`. Only owned handles cross the await: the stream is not `Sync`,
    /// so a `&self` held there would make the body's future not `Send`.
    fn reader_of(
        &self,
        range: Range<u64>,
    ) -> impl Future<Output = io::Result<RunReader>> + Send + 'static {
        let (storage, archive, path) = (
            Arc::clone(&self.storage),
            Arc::clone(&self.archive),
            self.path.clone(),
        );
        async move {
            let body = archive
                .read(&storage, &path, range.clone())
                .await
                .map_err(io::Error::other)?
                .ok_or_else(|| bad(ZipError::Truncated.to_string()))?;
            Ok(RunReader {
                body,
                pos: range.start,
                end: range.end,
                buf: Bytes::new(),
            })
        }
    }

    async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            match self.state {
                State::Header(k) if k == self.layout.members.len() => {
                    self.state = State::Directory { k: 0, offset: 0 };
                }
                State::Header(k) => {
                    let offset = self.member(k).info.local_header_offset;
                    let covered = self
                        .reader
                        .as_ref()
                        .is_some_and(|r| r.pos <= offset && offset < r.end);
                    if !covered {
                        self.reader = Some(self.open_run(k, offset).await?);
                    }
                    let entry = self.member(k);
                    let (info, new_header) = (entry.info, part::local_header(&entry));
                    let reader = self.reader.as_mut().expect("opened above");
                    reader.skip_to(offset).await?;
                    let header = reader.take(LOCAL_HEADER_LEN as usize).await?;
                    let data = data_span(&header, &info, self.member(k).name)?;
                    let reader = self.reader.as_mut().expect("opened above");
                    reader.skip_to(data.start).await?;
                    self.state = State::Data {
                        k,
                        left: info.compressed_size,
                    };
                    return Ok(Some(Bytes::from(new_header)));
                }
                State::Data { k, left: 0 } => self.state = State::Header(k + 1),
                State::Data { k, left } => {
                    let reader = self.reader.as_mut().expect("a member's data has a read");
                    let chunk = reader.next_upto(left).await?;
                    self.state = State::Data {
                        k,
                        left: left - chunk.len() as u64,
                    };
                    return Ok(Some(chunk));
                }
                State::Directory { k, offset } => {
                    self.reader = None;
                    if k == self.layout.members.len() {
                        self.state = State::End;
                        continue;
                    }
                    let mut out = Vec::with_capacity(DIRECTORY_CHUNK + 1024);
                    let (mut k, mut offset) = (k, offset);
                    while k < self.layout.members.len() && out.len() < DIRECTORY_CHUNK {
                        let entry = self.member(k);
                        part::central_header(&entry, offset, &mut out);
                        offset += part::local_header_len(&entry) + entry.info.compressed_size;
                        k += 1;
                    }
                    self.state = State::Directory { k, offset };
                    return Ok(Some(Bytes::from(out)));
                }
                State::End => {
                    self.state = State::Done;
                    return Ok(Some(Bytes::from(self.layout.end_records())));
                }
                State::Done => return Ok(None),
            }
        }
    }
}

/// The member's compressed bytes in the source, from its 30-byte local header: the
/// header must be one, and the data must end by the next entry (`data_end`).
fn data_span(header: &[u8], info: &EntryInfo, name: &str) -> io::Result<Range<u64>> {
    crate::archive::entry::data_span(header, info)
        .map_err(|e: EntryError| io::Error::other(GatewayError::BadArchive(format!("{name}: {e}"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn selections_parse_as_documented() {
        let s = Selection::parse(Some(
            "path=reports&glob=**/*.xml&path=reports/&glob=a%2Bb+c",
        ))
        .unwrap();
        assert_eq!(s.dirs, ["reports/"]);
        assert!(s.matches("reports/x.bin"));
        assert!(s.matches("deep/er/t.xml") && s.matches("t.xml"));
        assert!(!s.matches("reportsx/a") && !s.matches("t.xml.gz"));
        assert!(s.matches("a+b c"));
        let star = Selection::parse(Some("glob=dir/*.txt")).unwrap();
        assert!(star.matches("dir/a.txt"));
        assert!(!star.matches("dir/sub/a.txt"), "`*` does not cross `/`");
        let q = Selection::parse(Some("glob=f?le[1].txt")).unwrap();
        assert!(q.matches("file[1].txt"), "brackets match themselves");
        assert!(!q.matches("file1.txt"));
        assert!(!q.matches("f/le[1].txt"));
        let bad = |query: &str| Selection::parse(Some(query)).unwrap_err();
        for (query, name) in [
            ("path=/abs", "path"),
            ("path=a/../b", "path"),
            ("glob=%FF", "glob"),
            ("path=", "path"),
            ("glob=a%00", "glob"),
        ] {
            let error = bad(query);
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{query}");
            let text = error.body()["error"].as_str().unwrap().to_owned();
            assert!(text.starts_with(&format!("{name} is invalid: ")), "{text}");
        }
        assert_eq!(
            bad("job=x").body(),
            serde_json::json!({"error": "path, glob are missing, at least one parameter must be provided"})
        );
        // The same selection in another order and spelling has the same ETag.
        let a = Selection::parse(Some("glob=*.xml&path=r")).unwrap();
        let b = Selection::parse(Some("path=r/&glob=*.xml&glob=*.xml")).unwrap();
        assert_eq!(part_etag(Some("\"e\""), &a), part_etag(Some("\"e\""), &b));
        assert_ne!(part_etag(Some("\"e\""), &a), part_etag(Some("\"f\""), &a));
    }
}
