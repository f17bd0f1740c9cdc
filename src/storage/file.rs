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
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use tokio::task::JoinHandle;

/// Bytes read per blocking task. Memory per download: at most two chunks (one being
/// written to the client, one read ahead), 512 KiB.
pub const CHUNK: u64 = 256 * 1024;

type PendingRead = JoinHandle<(File, io::Result<Bytes>)>;

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

pub struct FileChunks {
    /// The file, while no read is in flight.
    file: Option<File>,
    next: u64,
    end: u64,
    pending: Option<PendingRead>,
    pin: FilePin,
}

impl FileChunks {
    /// Read `range` of `file`, failing as soon as the file no longer matches `pin`.
    pub fn new(file: File, range: Range<u64>, pin: FilePin) -> Self {
        Self {
            file: Some(file),
            next: range.start,
            end: range.end,
            pending: None,
            pin,
        }
    }

    /// Start reading the next chunk, if any remains and no read is in flight.
    fn start_read(&mut self) {
        if self.next >= self.end {
            return;
        }
        let Some(mut file) = self.file.take() else {
            return;
        };
        let offset = self.next;
        let len = (self.end - offset).min(CHUNK);
        self.next += len;
        let pin = self.pin;
        self.pending = Some(tokio::task::spawn_blocking(move || {
            let read = read_exact_at(&mut file, offset, len);
            // After the read: a write that began before it ended has stamped the file. A
            // read that failed (a truncated file) is explained by the change too.
            let result = match FilePin::of(&file).map(|now| pin.changed(&now)) {
                Ok(Some(what)) => Err(io::Error::other(Changed { what })),
                Ok(None) => read,
                Err(error) => read.and(Err(error)),
            };
            (file, result)
        }));
    }
}

fn read_exact_at(file: &mut File, offset: u64, len: u64) -> io::Result<Bytes> {
    let len = usize::try_from(len).map_err(|_| io::Error::other("chunk larger than memory"))?;
    file.seek(SeekFrom::Start(offset))?;
    // `read_to_end` fills spare capacity without zeroing it first (zeroing a fresh buffer
    // per chunk showed up as page-fault time in profiles).
    let mut buffer = Vec::with_capacity(len);
    file.take(len as u64).read_to_end(&mut buffer)?;
    if buffer.len() < len {
        // A file that shrank under us is an error, not a short body.
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Bytes::from(buffer))
}

impl Stream for FileChunks {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.pending.is_none() {
            self.start_read();
        }
        let Some(pending) = self.pending.as_mut() else {
            return Poll::Ready(None);
        };
        let joined = ready!(Pin::new(pending).poll(cx));
        self.pending = None;
        match joined {
            Ok((file, Ok(chunk))) => {
                self.file = Some(file);
                self.start_read();
                Poll::Ready(Some(Ok(chunk)))
            }
            Ok((_, Err(error))) => {
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
            let chunks: Vec<Bytes> = FileChunks::new(file, range.clone(), pin)
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

    #[tokio::test]
    async fn a_file_shorter_than_the_range_is_an_error_not_a_short_body() {
        let (path, file) = temp_file(&[7u8; 1000]);
        let pin = FilePin::of(&file).unwrap();
        let result: io::Result<Vec<Bytes>> =
            FileChunks::new(file, 0..2000, pin).try_collect().await;
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
        let mut chunks = FileChunks::new(file, 0..data.len() as u64, pin);
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
