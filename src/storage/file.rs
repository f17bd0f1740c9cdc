//! Reading a local file range in large chunks.
//!
//! `object_store`'s `LocalFileSystem` hands back the open file; its own stream reads 8 KiB
//! per blocking task, far too small for multi-GB archives. This stream reads [`CHUNK`]
//! bytes per blocking task and keeps one read ahead, so the disk read of the next chunk
//! overlaps the socket write of this one. No thread is held while the client is slow: a
//! read is only started when the previous chunk has been taken.

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

pub struct FileChunks {
    /// The file, while no read is in flight.
    file: Option<File>,
    next: u64,
    end: u64,
    pending: Option<PendingRead>,
}

impl FileChunks {
    pub fn new(file: File, range: Range<u64>) -> Self {
        Self {
            file: Some(file),
            next: range.start,
            end: range.end,
            pending: None,
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
        self.pending = Some(tokio::task::spawn_blocking(move || {
            let result = read_exact_at(&mut file, offset, len);
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
            let chunks: Vec<Bytes> = FileChunks::new(file, range.clone())
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
        let result: io::Result<Vec<Bytes>> = FileChunks::new(file, 0..2000).try_collect().await;
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        std::fs::remove_file(path).unwrap();
    }
}
