//! Reading a local file range in large chunks, pinned to the version that was opened.
//!
//! `object_store`'s `LocalFileSystem` hands back the open file; its own stream reads 8 KiB
//! per blocking task, far too small for multi-GB archives. This stream reads [`CHUNK`]
//! bytes per blocking task and keeps one read ahead, so the disk read of the next chunk
//! overlaps the socket write of this one. No thread is held while the client is slow: a
//! read is only started when the previous chunk has been taken.
//!
//! A local file can be rewritten in place while it is read (same inode, same size). The
//! file is therefore pinned when it is opened ([`FilePin`]: device, inode, size, mtime and
//! ctime of the open handle), and after every chunk is read the handle is `fstat`ed again:
//! any change fails the stream, so the chunk is never handed out and the response is cut
//! short instead of ending cleanly with bytes of two versions. The kernel stamps the ctime
//! before a write copies its data, so a chunk that saw new bytes also sees a new ctime.
//!
//! Limit: timestamps have the filesystem's granularity (often a clock tick of a few
//! milliseconds). Two writes of the same size within one tick of each other, the second
//! while the file is being read, leave no trace in size, mtime or ctime, and cannot be
//! told apart from outside; nothing short of content hashing catches that.

use std::fs::File;
use std::future::Future;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use tokio::task::JoinHandle;

/// Bytes read per blocking task. Memory per download: at most two chunks (one being
/// written to the client, one read ahead), 512 KiB.
pub const CHUNK: u64 = 256 * 1024;

/// Which version of a file an open handle is: what `fstat` says at open time. Any write,
/// truncation or `utimensat` changes the ctime, which user space cannot set back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilePin {
    dev: u64,
    ino: u64,
    pub size: u64,
    /// Nanoseconds since the epoch (negative before it).
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FilePin {
    /// The pin of an open handle (`fstat`).
    pub fn of(file: &File) -> io::Result<Self> {
        Ok(Self::from_metadata(&file.metadata()?))
    }

    #[cfg(unix)]
    fn from_metadata(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Without inodes and ctime only size and mtime pin the version.
    #[cfg(not(unix))]
    fn from_metadata(meta: &std::fs::Metadata) -> Self {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        Self {
            dev: 0,
            ino: 0,
            size: meta.len(),
            mtime_ns,
            ctime_ns: 0,
        }
    }

    /// The ETag of this version, quoted. Unlike `object_store`'s local ETag (inode, size,
    /// mtime in microseconds), it includes the device and the ctime in nanoseconds, so an
    /// in-place rewrite that restores the mtime still changes it (up to the timestamp
    /// granularity noted in the module docs).
    pub fn etag(&self) -> String {
        format!(
            "\"{:x}-{:x}-{:x}-{:x}-{:x}\"",
            self.dev, self.ino, self.size, self.mtime_ns, self.ctime_ns
        )
    }

    /// What changed between this pin and `now`, if anything.
    fn changed(&self, now: &FilePin) -> Option<&'static str> {
        if (self.dev, self.ino) != (now.dev, now.ino) {
            Some("inode")
        } else if self.size != now.size {
            Some("size")
        } else if self.mtime_ns != now.mtime_ns {
            Some("mtime")
        } else if self.ctime_ns != now.ctime_ns {
            Some("ctime")
        } else {
            None
        }
    }
}

/// The file changed after it was opened; carried inside the stream's `io::Error`.
#[derive(Debug, thiserror::Error)]
#[error("local file changed while it was read ({what} differs from when it was opened)")]
pub struct Changed {
    pub what: &'static str,
}

/// An open local file and the version it was opened at, shared by every read of it: a
/// warm archive is read without an open or a path lookup. Reads are positional (`pread`),
/// so any number of streams share the one descriptor.
#[derive(Debug)]
pub struct OpenFile {
    file: File,
    pub pin: FilePin,
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

impl OpenFile {
    pub fn new(file: File, pin: FilePin, last_modified: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            file,
            pin,
            last_modified,
        }
    }

    /// What changed since the file was opened (`fstat` of the handle), if anything. A
    /// rename over the path or an unlink changes the old inode's ctime too (its link count
    /// drops), so a kept handle of a replaced file is caught here as well.
    pub fn changed(&self) -> io::Result<Option<&'static str>> {
        let meta = self.file.metadata()?;
        if unlinked(&meta) {
            return Ok(Some("link count"));
        }
        Ok(self.pin.changed(&FilePin::from_metadata(&meta)))
    }

    /// Size and validators of the version opened.
    pub fn meta(&self) -> super::Meta {
        super::Meta {
            size: self.pin.size,
            etag: Some(self.pin.etag()),
            last_modified: Some(self.last_modified),
        }
    }

    /// `range` (at most [`SMALL_READ`] bytes) in one buffer. From the page cache it is read
    /// on the calling thread (`RWF_NOWAIT`): no blocking-pool hop. What the page cache does
    /// not hold is read on a blocking thread. Fails if the file changed, checked after the
    /// read.
    pub async fn read_small(self: &Arc<Self>, range: Range<u64>) -> io::Result<Bytes> {
        debug_assert!(range.end - range.start <= SMALL_READ);
        if let Some(bytes) = read_cached(&self.file, range.clone())? {
            return self.checked(Ok(bytes));
        }
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.read_checked(range))
            .await
            .map_err(io::Error::other)?
    }

    /// `range`, blocking, then the version check: a write that began before the read ended
    /// has stamped the file. A read that failed (a truncated file) is explained by the
    /// change too.
    fn read_checked(&self, range: Range<u64>) -> io::Result<Bytes> {
        let mut buffer = vec![0; (range.end - range.start) as usize];
        let read = fill_at(&self.file, &mut buffer, range.start);
        self.checked(read.map(|()| Bytes::from(buffer)))
    }

    /// As [`Self::read_checked`], into a buffer of `buffers` (at most [`CHUNK`] bytes).
    fn read_checked_into(&self, range: Range<u64>, buffers: &Buffers) -> io::Result<Bytes> {
        let len = (range.end - range.start) as usize;
        let mut buffer = buffers.take();
        let read = fill_at(&self.file, &mut buffer[..len], range.start);
        self.checked(read.map(|()| Bytes::from_owner(buffers.lend(buffer, len))))
    }

    fn checked(&self, read: io::Result<Bytes>) -> io::Result<Bytes> {
        match self.changed() {
            Ok(Some(what)) => Err(io::Error::other(Changed { what })),
            Ok(None) => read,
            Err(error) => read.and(Err(error)),
        }
    }
}

/// Whether no path names the file any more (removed, or replaced by a rename).
#[cfg(unix)]
fn unlinked(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.nlink() == 0
}

#[cfg(not(unix))]
fn unlinked(_meta: &std::fs::Metadata) -> bool {
    false
}

/// Local files kept open, by key: at most `storage.open_files` descriptors, least recently
/// used closed first, and any unused for [`OPEN_FILE_IDLE`] closed. A kept file is only
/// used while it is still the version it was opened at (`OpenFile::changed`); a stream
/// already reading one keeps its own reference when it is dropped from here.
pub struct OpenFiles {
    files: Option<moka::sync::Cache<object_store::path::Path, Arc<OpenFile>>>,
}

/// How long a kept file may go unread before it is closed.
pub const OPEN_FILE_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

impl OpenFiles {
    pub fn new(capacity: u64) -> Self {
        let files = (capacity > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(OPEN_FILE_IDLE)
                .build()
        });
        Self { files }
    }

    pub fn get(&self, path: &object_store::path::Path) -> Option<Arc<OpenFile>> {
        self.files.as_ref()?.get(path)
    }

    /// The kept file at `path` if it is still the version opened; a changed one is closed.
    pub fn current(&self, path: &object_store::path::Path) -> Option<Arc<OpenFile>> {
        let file = self.get(path)?;
        match file.changed() {
            Ok(None) => Some(file),
            _ => {
                self.forget(path);
                None
            }
        }
    }

    pub fn keep(&self, path: &object_store::path::Path, file: &Arc<OpenFile>) {
        if let Some(files) = &self.files {
            files.insert(path.clone(), Arc::clone(file));
            // Evict now, not at moka's next maintenance: the bound is on descriptors.
            files.run_pending_tasks();
        }
    }

    pub fn forget(&self, path: &object_store::path::Path) {
        if let Some(files) = &self.files {
            files.invalidate(path);
        }
    }

    /// Files kept open now (after pending evictions).
    pub fn count(&self) -> u64 {
        self.files.as_ref().map_or(0, |files| {
            files.run_pending_tasks();
            files.entry_count()
        })
    }
}

/// Chunk buffers a stream reuses: how many it keeps for reuse (one chunk being written to
/// the client, one read ahead). More are only allocated while the client side holds more.
const KEPT_BUFFERS: usize = 2;

/// The chunk buffers of one read stream. A chunk handed out lends its buffer; when the
/// bytes are dropped (written to the client) the buffer comes back here, so a download
/// allocates its buffers once, not once per chunk. Allocating a fresh 256 KiB per chunk on
/// a blocking thread and freeing it on a runtime thread is what let the allocator's
/// per-thread arenas grow after a busy period. Filled once when allocated, a buffer is
/// never zeroed again.
#[derive(Clone, Default)]
struct Buffers(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

impl Buffers {
    fn take(&self) -> Vec<u8> {
        let kept = self.0.lock().ok().and_then(|mut kept| kept.pop());
        kept.unwrap_or_else(|| vec![0; CHUNK as usize])
    }

    fn lend(&self, buffer: Vec<u8>, len: usize) -> Lent {
        Lent {
            buffer,
            len,
            home: self.clone(),
        }
    }
}

/// A buffer handed out as `Bytes` (its first `len` bytes), returned to its stream's
/// [`Buffers`] when dropped.
struct Lent {
    buffer: Vec<u8>,
    len: usize,
    home: Buffers,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buffer[..self.len]
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.buffer);
        if let Ok(mut kept) = self.home.0.lock() {
            if kept.len() < KEPT_BUFFERS {
                kept.push(buffer);
            }
        }
    }
}

/// Fill `buffer` from `offset` of `file`; a file that ends first is an error.
fn fill_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.read_exact_at(buffer, offset)
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt;
        let mut filled = 0;
        while filled < buffer.len() {
            match file.seek_read(&mut buffer[filled..], offset + filled as u64)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => filled += n,
            }
        }
        Ok(())
    }
}

/// Largest read answered in one buffer by [`OpenFile::read_small`], and the most it reads on
/// a runtime thread: an entry of up to this size is one read and no chunking.
pub const SMALL_READ: u64 = 64 * 1024;

/// `range` if the page cache holds all of it, read without blocking (`preadv2` with
/// `RWF_NOWAIT`); `None` when any of it would need the disk.
#[cfg(target_os = "linux")]
fn read_cached(file: &File, range: Range<u64>) -> io::Result<Option<Bytes>> {
    use rustix::io::{preadv2, Errno, ReadWriteFlags};
    let len = (range.end - range.start) as usize;
    let mut buffer = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        let slice = &mut [io::IoSliceMut::new(&mut buffer[filled..])];
        match preadv2(
            file,
            slice,
            range.start + filled as u64,
            ReadWriteFlags::NOWAIT,
        ) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(read) => filled += read,
            // EAGAIN: not in the page cache; EOPNOTSUPP: a filesystem without it.
            Err(Errno::AGAIN | Errno::OPNOTSUPP | Errno::INVAL) => return Ok(None),
            Err(Errno::INTR) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(Some(Bytes::from(buffer)))
}

#[cfg(not(target_os = "linux"))]
fn read_cached(_file: &File, _range: Range<u64>) -> io::Result<Option<Bytes>> {
    Ok(None)
}

type PendingRead = JoinHandle<io::Result<Bytes>>;

pub struct FileChunks {
    file: Arc<OpenFile>,
    buffers: Buffers,
    next: u64,
    end: u64,
    pending: Option<PendingRead>,
}

impl FileChunks {
    /// Read `range` of `file`, failing as soon as the file no longer matches its pin.
    pub fn new(file: Arc<OpenFile>, range: Range<u64>) -> Self {
        Self {
            file,
            buffers: Buffers::default(),
            next: range.start,
            end: range.end,
            pending: None,
        }
    }

    /// Start reading the next chunk, if any remains and no read is in flight.
    fn start_read(&mut self) {
        if self.next >= self.end || self.pending.is_some() {
            return;
        }
        let offset = self.next;
        let len = (self.end - offset).min(CHUNK);
        self.next += len;
        let file = Arc::clone(&self.file);
        let buffers = self.buffers.clone();
        self.pending = Some(tokio::task::spawn_blocking(move || {
            file.read_checked_into(offset..offset + len, &buffers)
        }));
    }
}

impl Stream for FileChunks {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.start_read();
        let Some(pending) = self.pending.as_mut() else {
            return Poll::Ready(None);
        };
        let joined = ready!(Pin::new(pending).poll(cx));
        self.pending = None;
        match joined {
            Ok(Ok(chunk)) => {
                self.start_read();
                Poll::Ready(Some(Ok(chunk)))
            }
            Ok(Err(error)) => {
                self.next = self.end;
                Poll::Ready(Some(Err(error)))
            }
            Err(join_error) => {
                self.next = self.end;
                Poll::Ready(Some(Err(io::Error::other(join_error))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::TryStreamExt;

    fn open(file: File, pin: FilePin) -> Arc<OpenFile> {
        Arc::new(OpenFile::new(file, pin, chrono::Utc::now()))
    }

    fn temp_file(bytes: &[u8]) -> (std::path::PathBuf, File) {
        let path = std::env::temp_dir().join(format!(
            "artifact-gateway-chunks-{}-{}",
            std::process::id(),
            bytes.len()
        ));
        std::fs::write(&path, bytes).unwrap();
        let file = File::open(&path).unwrap();
        (path, file)
    }

    #[tokio::test]
    async fn reads_any_range_exactly_in_bounded_chunks() {
        let data: Vec<u8> = (0..(CHUNK as usize * 3 + 123))
            .map(|i| (i % 251) as u8)
            .collect();
        let (path, _) = temp_file(&data);
        for range in [
            0..data.len() as u64,
            5..CHUNK + 7,
            0..0,
            CHUNK..CHUNK * 2,
            10..11,
        ] {
            let file = File::open(&path).unwrap();
            let pin = FilePin::of(&file).unwrap();
            let chunks: Vec<Bytes> = FileChunks::new(open(file, pin), range.clone())
                .try_collect()
                .await
                .unwrap();
            assert!(chunks
                .iter()
                .all(|c| c.len() as u64 <= CHUNK && !c.is_empty()));
            let joined: Vec<u8> = chunks.concat();
            assert_eq!(joined, &data[range.start as usize..range.end as usize]);
        }
        std::fs::remove_file(path).unwrap();
    }

    /// Chunks consumed one by one reuse the stream's buffers: each chunk still holds
    /// exactly its own bytes (a short last chunk shows nothing of an earlier one), and a
    /// stream keeps no more than its two buffers however long it runs.
    #[tokio::test]
    async fn recycled_buffers_hold_exactly_each_chunk() {
        use futures_util::StreamExt;
        let data: Vec<u8> = (0..(CHUNK as usize * 6 + 999))
            .map(|i| (i % 253) as u8)
            .collect();
        let (path, file) = temp_file(&data);
        let pin = FilePin::of(&file).unwrap();
        let mut chunks = FileChunks::new(open(file, pin), 3..data.len() as u64);
        let buffers = chunks.buffers.clone();
        let mut at = 3;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.unwrap();
            assert_eq!(&chunk[..], &data[at..at + chunk.len()], "chunk at {at}");
            at += chunk.len();
            drop(chunk);
            assert!(buffers.0.lock().unwrap().len() <= KEPT_BUFFERS);
        }
        assert_eq!(at, data.len());
        // Every buffer came back once its bytes were dropped (the read-ahead's too).
        assert!(!buffers.0.lock().unwrap().is_empty());
        std::fs::remove_file(path).unwrap();
    }

    #[tokio::test]
    async fn a_file_shorter_than_the_range_is_an_error_not_a_short_body() {
        let (path, file) = temp_file(&[7u8; 1000]);
        let pin = FilePin::of(&file).unwrap();
        let result: io::Result<Vec<Bytes>> = FileChunks::new(open(file, pin), 0..2000)
            .try_collect()
            .await;
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        std::fs::remove_file(path).unwrap();
    }

    #[tokio::test]
    async fn a_file_rewritten_in_place_after_the_first_chunk_fails_the_stream() {
        use futures_util::StreamExt;
        use std::io::Write;
        let data = vec![1u8; CHUNK as usize * 4];
        let (path, file) = temp_file(&data);
        let pin = FilePin::of(&file).unwrap();
        let mut chunks = FileChunks::new(open(file, pin), 0..data.len() as u64);
        let first = chunks.next().await.unwrap().unwrap();
        assert_eq!(first.len() as u64, CHUNK);
        // Same size, same inode, mtime put back: only the ctime tells.
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        // Past one timestamp tick since the file was created (see the module's limit).
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        writer.write_all(&vec![2u8; data.len()]).unwrap();
        writer.set_modified(mtime).unwrap();
        let rest: Vec<io::Result<Bytes>> = chunks.collect().await;
        // The read ahead may have finished before the write; the change shows after it.
        let failed = rest
            .iter()
            .position(Result::is_err)
            .expect("the stream fails");
        assert!(rest[..failed]
            .iter()
            .all(|c| c.as_ref().unwrap().iter().all(|&b| b == 1)));
        let error = rest[failed].as_ref().unwrap_err();
        assert!(error.to_string().contains("changed"), "{error}");
        assert_ne!(
            pin.etag(),
            FilePin::of(&File::open(&path).unwrap()).unwrap().etag()
        );
        std::fs::remove_file(path).unwrap();
    }
}
