//! The central directory, parsed as its bytes arrive: pieces in, [`ZipIndex`] out.
//!
//! Memory: the records and names being built (reserved once, from what the directory's
//! declared size can hold) plus at most one central header split across two pieces
//! ([`MAX_HEADER_LEN`]). The directory's bytes themselves are never held, so opening an
//! archive costs the index plus the sort's scratch space, not the directory twice.

use super::plan::{need, Plan, Stage};
use super::records::Record;
use super::records::{self, Entries, MAX_HEADER_LEN};
use super::table::ZipIndex;
use super::{TailOutcome, ZipError};

/// Smallest central header: the most entries a directory of a given size can hold is its
/// size divided by this.
const MIN_HEADER_LEN: u64 = 46;

/// Parses one planned central directory from pieces of its bytes, in order.
///
/// Obtained from [`super::Pending::into_directory`]; feed it the bytes of the pending range
/// with [`Self::push`], then call [`Self::finish`].
#[derive(Debug)]
pub struct DirectoryParser {
    plan: Plan,
    object_size: u64,
    /// Bytes of the directory pushed so far (bytes past its size are ignored).
    received: u64,
    /// A central header that the last piece ended inside: at most [`MAX_HEADER_LEN`].
    carry: Vec<u8>,
    records: Vec<Record>,
    names: String,
    /// The directory's first bytes (up to 4), for the check of where it starts.
    head: Vec<u8>,
    /// The directory did not begin with a central header and the stated offset is to be
    /// tried instead: the rest of the bytes are ignored.
    retry: bool,
}

impl DirectoryParser {
    pub(super) fn new(plan: Plan, object_size: u64) -> Self {
        // `count * 46 <= size` was checked against the end records, so neither reservation
        // exceeds what the directory's declared bytes can hold: the records' 56 bytes each
        // are at most 56/46 of the size, and the raw names fit in what the fixed headers
        // leave. Names that grow when decoded (CP437, lossy UTF-8) grow the buffer past it.
        let count = usize::try_from(plan.count).unwrap_or(usize::MAX);
        let name_room = plan
            .size
            .saturating_sub(plan.count.saturating_mul(MIN_HEADER_LEN));
        Self {
            records: Vec::with_capacity(count),
            names: String::with_capacity(usize::try_from(name_room).unwrap_or(0)),
            plan,
            object_size,
            received: 0,
            carry: Vec::new(),
            head: Vec::with_capacity(4),
            retry: false,
        }
    }

    /// False once the directory turned out to be elsewhere ([`Self::finish`] then asks
    /// for it): the caller may stop reading.
    pub fn wants_bytes(&self) -> bool {
        !self.retry
    }

    /// All entries parsed, or the directory is elsewhere: later bytes are only counted.
    fn is_done(&self) -> bool {
        self.retry || self.records.len() as u64 == self.plan.count
    }

    /// Parses the entries that `piece`, the directory's next bytes, completes.
    pub fn push(&mut self, piece: &[u8]) -> Result<(), ZipError> {
        let room = usize::try_from(self.plan.size - self.received).unwrap_or(usize::MAX);
        let mut rest = &piece[..piece.len().min(room)];
        self.received += rest.len() as u64;
        let have = self.head.len();
        if have < 4 {
            self.head
                .extend_from_slice(&rest[..rest.len().min(4 - have)]);
            if self.head.len() == 4 && self.plan.fallback.is_some() && !self.starts_with_header() {
                self.retry = true;
            }
        }
        while !rest.is_empty() && !self.is_done() {
            if self.carry.is_empty() {
                let used = self.parse_from(rest)?;
                rest = &rest[used..];
                if !self.is_done() {
                    self.carry.extend_from_slice(rest);
                    debug_assert!(self.carry.len() <= MAX_HEADER_LEN);
                }
                break;
            }
            // Complete the carried header: its fixed part first, which gives its length.
            let want = records::header_len(&self.carry).unwrap_or(MIN_HEADER_LEN as usize);
            let take = (want - self.carry.len()).min(rest.len());
            self.carry.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if records::header_len(&self.carry) == Some(self.carry.len()) {
                let carry = std::mem::take(&mut self.carry);
                self.parse_from(&carry)?;
            }
        }
        Ok(())
    }

    /// Whether the directory's first 4 bytes are a central header's signature.
    fn starts_with_header(&self) -> bool {
        self.head[..] == records::CENTRAL_HEADER_SIG.to_le_bytes()
    }

    /// Parses whole entries from the start of `bytes`; returns how many bytes they took.
    fn parse_from(&mut self, bytes: &[u8]) -> Result<usize, ZipError> {
        let mut used = 0;
        while !self.is_done() {
            let index = self.records.len() as u64;
            let Some((record, len)) =
                records::parse_one(&bytes[used..], index, self.plan.shift, &mut self.names)?
            else {
                break;
            };
            if self.names.len() as u64 > self.plan.max_names {
                return Err(ZipError::DirectoryTooLarge);
            }
            self.records.push(record);
            used += len;
        }
        Ok(used)
    }

    /// The index, once every byte of the directory was pushed; or the directory's range
    /// at its stated offset, when it did not begin with a central header where guessed.
    pub fn finish(self) -> Result<TailOutcome, ZipError> {
        // A directory shorter than 4 bytes does not begin with a central header either.
        let elsewhere = self.retry || (self.plan.fallback.is_some() && !self.starts_with_header());
        let plan = self.plan;
        if elsewhere {
            let retry = plan.retry_at_stated();
            let range = retry.start..retry.start + retry.size;
            return Ok(need(range, self.object_size, Stage::Directory(retry)));
        }
        if self.received < plan.size {
            return Err(ZipError::Truncated);
        }
        if (self.records.len() as u64) < plan.count {
            return Err(ZipError::BadCentralHeader {
                index: self.records.len() as u64,
            });
        }
        let entries = Entries {
            names: self.names,
            records: self.records,
        };
        let range = plan.start..plan.start + plan.size;
        ZipIndex::build(entries, range, self.object_size).map(TailOutcome::Complete)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_archive::*;
    use super::super::*;

    /// Indexes `archive` from a tail of `tail_len` bytes, feeding a requested directory
    /// to a [`DirectoryParser`] in pieces of `piece` bytes.
    fn index_in_pieces(archive: &[u8], tail_len: usize, piece: usize) -> ZipIndex {
        let limits = IndexLimits::default();
        let start = archive.len().saturating_sub(tail_len);
        let size = archive.len() as u64;
        let mut outcome = parse_tail(&archive[start..], start as u64, size, &limits).unwrap();
        let mut streamed = false;
        for _ in 0..4 {
            let (range, pending) = match outcome {
                TailOutcome::Complete(index) => {
                    assert!(streamed, "the directory was in the tail");
                    return index;
                }
                TailOutcome::NeedRange { range, pending } => (range, pending),
            };
            let bytes = &archive[range.start as usize..range.end as usize];
            outcome = match pending.into_directory() {
                Ok(mut parser) => {
                    streamed = true;
                    for chunk in bytes.chunks(piece.max(1)) {
                        if !parser.wants_bytes() {
                            break;
                        }
                        parser.push(chunk).unwrap();
                    }
                    parser.finish().unwrap()
                }
                Err(pending) => parse_directory(bytes, pending, &limits).unwrap(),
            };
        }
        panic!("asked too often")
    }

    fn layouts() -> Vec<Vec<u8>> {
        let mut entries = vec![
            Entry::new("a.txt", b"hello"),
            Entry::new("dir/b", b"world!"),
            Entry::new("dir/c", b""),
            Entry::new("a.txt", b"again"),
        ];
        entries[1].extra = vec![0x55, 0x54, 5, 0, 1, 2, 3, 4, 5];
        entries[2].name = vec![0x82, b'x'];
        // Two 40 KB extra fields: the directory is larger than `MIN_TAIL_LEN`, so it is
        // a read of its own after a tail of that length.
        for e in [0, 3] {
            entries[e].extra = [0x99, 0x99, 0x3c, 0x9c].to_vec();
            entries[e].extra.resize(40_000, 7);
        }
        let plain = Archive::with(entries);
        let mut zip64 = plain.clone();
        zip64.zip64 = true;
        let mut prefixed = plain.clone();
        prefixed.prefix = vec![b'#'; 300];
        let mut adjusted = prefixed.clone();
        adjusted.adjust_for_prefix = true;
        [plain, zip64, prefixed, adjusted]
            .iter()
            .map(Archive::build)
            .collect()
    }

    #[test]
    fn pieces_of_every_size_give_the_same_index() {
        for zip in layouts() {
            let whole = index(&zip).unwrap();
            let expected: Vec<_> = whole.names().map(|n| (n, whole.get(n))).collect();
            for piece in (1..=50).chain([200, 4096, 1 << 20]) {
                let streamed = index_in_pieces(&zip, MIN_TAIL_LEN as usize, piece);
                let got: Vec<_> = streamed.names().map(|n| (n, streamed.get(n))).collect();
                assert_eq!(got, expected, "pieces of {piece}");
                assert_eq!(streamed.directory_range(), whole.directory_range());
            }
        }
    }

    #[test]
    fn a_header_cut_short_is_named_and_missing_bytes_are_truncated() {
        let zip = layouts().swap_remove(0);
        let size = zip.len() as u64;
        let tail_start = size - MIN_TAIL_LEN;
        let tail = &zip[tail_start as usize..];
        let limits = IndexLimits::default();
        let pending = || match parse_tail(tail, tail_start, size, &limits).unwrap() {
            TailOutcome::NeedRange { range, pending } => (range, pending),
            TailOutcome::Complete(_) => panic!("the directory is not in the tail"),
        };
        let (range, p) = pending();
        let directory = &zip[range.start as usize..range.end as usize];
        let mut parser = p.into_directory().unwrap();
        parser.push(&directory[..directory.len() - 1]).unwrap();
        assert_eq!(parser.finish().unwrap_err(), ZipError::Truncated);
        // A damaged second header fails as soon as its signature arrives.
        let (_, p) = pending();
        let mut parser = p.into_directory().unwrap();
        let mut damaged = directory.to_vec();
        damaged[46 + 5 + 40_000] ^= 0xff;
        assert_eq!(
            parser.push(&damaged).unwrap_err(),
            ZipError::BadCentralHeader { index: 1 }
        );
    }

    #[test]
    fn the_index_is_no_larger_than_its_directory() {
        let entries = (0..5_000)
            .map(|i| Entry::new(&format!("some/dir/file-{i:05}.txt"), b""))
            .collect();
        let zip = Archive::with(entries).build();
        let index = index(&zip).unwrap();
        let directory = index.directory_range();
        let per_entry = 10; // 56-byte records for 46-byte headers
        assert!(
            index.heap_bytes() as u64 <= directory.end - directory.start + 5_000 * per_entry + 128,
            "{} bytes for a directory of {}",
            index.heap_bytes(),
            directory.end - directory.start
        );
    }

    #[test]
    fn names_that_grow_when_decoded_stay_within_max_directory_bytes() {
        // CP437 bytes ≥ 0x80 decode to 2 or 3 UTF-8 bytes: 600 raw name bytes that decode
        // to more than a limit of 1,000 are refused while they are parsed.
        let entries = (0..3u8)
            .map(|i| {
                let mut e = Entry::new("", b"");
                e.name = vec![0xB0 + i; 200];
                e
            })
            .collect();
        let zip = Archive::with(entries).build();
        let limits = IndexLimits {
            max_entries: 10,
            max_directory_bytes: 1_000,
        };
        let (index, _) = index_with_tail(&zip, zip.len(), &IndexLimits::default()).unwrap();
        assert_eq!(index.names().map(str::len).sum::<usize>(), 3 * 200 * 3);
        assert_eq!(
            index_with_tail(&zip, zip.len(), &limits).unwrap_err(),
            ZipError::DirectoryTooLarge
        );
    }
}
