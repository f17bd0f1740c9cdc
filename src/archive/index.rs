//! The zip central directory: tail bytes → [`ZipIndex`]. Pure: bytes in, structures out,
//! no I/O, no panics, allocations bounded by the bytes given and by [`IndexLimits`].
//!
//! # The read plan
//! 1. Read the object's tail with one suffix-range read. A tail of at least
//!    [`MIN_TAIL_LEN`] bytes (or the whole object, if smaller) guarantees that the end of
//!    central directory record (EOCD), the zip64 locator and a zip64 end record written
//!    right before the locator are all inside it; a larger tail (say 256 KiB) often holds
//!    the whole central directory too.
//! 2. [`parse_tail`] returns [`TailOutcome::Complete`], or [`TailOutcome::NeedRange`] with
//!    the exact byte range it still needs (normally the central directory) and a
//!    [`Pending`]; read that range and pass it to [`parse_directory`] (or, for the
//!    directory itself, stream it into [`Pending::into_directory`]), which normally
//!    completes. With a tail of at least [`MIN_TAIL_LEN`] bytes that is the only extra
//!    read, except in two rare layouts that each cost one more:
//!    - the zip64 end record is not right before its locator (a zip64 "extensible data
//!      sector", which common writers do not emit; the `zip` crate does for its "zip64
//!      comment"), and so may not be in the tail: the 56-byte record is requested first;
//!    - bytes were prepended to the archive and neither the directory's stated offset nor
//!      the directory was in the bytes at hand: the directory just before the end records
//!      is requested first; if it does not start with a central header, the stated range
//!      is requested.
//!
//!    A tail shorter than [`MIN_TAIL_LEN`] that misses the EOCD or the zip64 locator costs
//!    one read more: the first request is then a fresh tail of `MIN_TAIL_LEN` bytes.
//!    Callers loop `while let NeedRange`; the parse never asks more than three times.
//!
//! # Decisions
//! - **EOCD**: searched backwards over the last `22 + 65,535` bytes; the first candidate
//!   (the one nearest the end) whose comment length reaches exactly the end of the object
//!   wins, so a comment holding a fake EOCD whose length does not fit is skipped (one
//!   whose length does fit wins, as in Info-ZIP and Go). Trailing bytes after the comment
//!   are not tolerated ([`ZipError::NotAZip`]).
//! - **zip64**: used whenever the locator sits right before the EOCD (its values then win
//!   over the EOCD's). Without a locator, a saturated directory offset or size is
//!   [`ZipError::Zip64Missing`], while an entry count of exactly 0xFFFF is taken literally
//!   (Python's `zipfile` writes 65,535 entries without zip64). The record is looked for at
//!   the locator's offset, then right before the locator (prepended bytes).
//! - **Prepended bytes** (self-extracting archives): when the directory, as stated, ends
//!   before the zip64 end record / EOCD, everything is shifted by the gap (Info-ZIP
//!   `unzip`'s rule) unless a central header is at the stated offset or the zip64 end
//!   record was found at its stated offset (then the gap is junk after the directory).
//!   When the stated offset is not in the bytes at hand, the shifted directory is tried
//!   first. All offsets reported ([`EntryInfo::local_header_offset`],
//!   [`EntryInfo::data_end`], [`ZipIndex::directory_range`]) are positions in the
//!   object, shift included.
//! - **Entries**: exactly the declared count is read; bytes after it inside the directory
//!   (e.g. a digital signature record) are ignored. A zip64 extra field supplies the
//!   saturated sizes/offset; a saturated field without one is taken literally. Per-entry
//!   disk numbers are ignored (the end records already rule out spanned archives).
//! - **Names**: flag bit 11 means UTF-8 (invalid UTF-8 is decoded lossily, so such an
//!   entry is findable only by its U+FFFD form); otherwise a valid Info-ZIP Unicode Path
//!   field (version 1, CRC-32 of the raw name matches), else raw UTF-8, else CP437. Names
//!   are kept as stored: no `\` or `./` normalisation.
//! - **Duplicate names**: the last one in the directory wins (extractors overwrite); the
//!   shadowed entries still count for `data_end` and the overlap check.
//! - **Overlap**: entries are sorted by local header offset; `data_end` is the next larger
//!   offset (or the directory start). Two entries at one offset, or an entry whose
//!   `offset + 30 + compressed_size` passes its `data_end`, is
//!   [`ZipError::OverlappingEntries`] (zip bombs of overlapping entries; the exact bound
//!   with the local name/extra lengths is the entry reader's).
//! - **Lookup**: records sorted by name in one `Vec`, names concatenated in one `String`
//!   in directory order (not copied again after sorting); lookup is a binary search.
//!   [`ZipIndex::heap_bytes`] (capacities, not lengths) is the cache weight.
//! - **Memory**: nothing is allocated from a declared count before the end records show
//!   that the directory's size can hold it (46 bytes an entry), and a directory over
//!   [`IndexLimits::max_directory_bytes`] is refused from its declared size, before it is
//!   read. A directory read separately is parsed as it streams ([`DirectoryParser`]), so
//!   an open holds the index (the directory's bytes + 10 an entry, + what non-UTF-8 names
//!   gain when decoded, capped at `max_directory_bytes` of names) and the sort's scratch
//!   (28 bytes an entry), never the directory's bytes beside it.

mod cp437;
mod directory;
mod eocd;
mod names;
mod plan;
mod records;
mod table;

#[cfg(test)]
mod entry_tests;
#[cfg(test)]
mod oracle_tests;
#[cfg(test)]
mod test_archive;
#[cfg(test)]
mod tests;

use std::ops::Range;

pub use directory::DirectoryParser;

/// Record signatures and fixed lengths (APPNOTE 4.3), for the parser here and the writer
/// of parts ([`crate::archive::part`]).
pub mod format {
    pub const LOCAL_HEADER_SIG: u32 = 0x0403_4b50;
    pub const LOCAL_HEADER_LEN: u64 = 30;
    pub const CENTRAL_HEADER_SIG: u32 = 0x0201_4b50;
    /// The fixed part of a central header, before its name, extra field and comment.
    pub const CENTRAL_HEADER_LEN: u64 = 46;
    pub const EOCD_SIG: u32 = 0x0605_4b50;
    pub const EOCD_LEN: u64 = 22;
    pub const LOCATOR_SIG: u32 = 0x0706_4b50;
    pub const LOCATOR_LEN: u64 = 20;
    pub const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
    pub const ZIP64_EOCD_LEN: u64 = 56;
    pub const ZIP64_EXTRA_ID: u16 = 0x0001;
}
pub use table::{Listed, ZipIndex};

/// Tail length that guarantees the end records are found in one read: EOCD (22) + the
/// longest comment (65,535) + zip64 locator (20) + zip64 end record (56).
pub const MIN_TAIL_LEN: u64 = 22 + 65_535 + 20 + 56;

/// Bounds checked before anything is allocated from counts and sizes in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexLimits {
    /// Most entries an archive may declare.
    pub max_entries: u64,
    /// Largest central directory, in bytes, that will be read and parsed.
    pub max_directory_bytes: u64,
}

impl Default for IndexLimits {
    fn default() -> Self {
        Self {
            max_entries: 1_000_000,
            max_directory_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Why an archive cannot be indexed. The messages end up in JSON error bodies and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ZipError {
    #[error("not a zip archive: no end of central directory record found")]
    NotAZip,
    #[error("zip archive is truncated: its records claim more bytes than are present")]
    Truncated,
    #[error("zip central directory lies outside the archive")]
    DirectoryOutOfBounds,
    #[error("zip archive has more entries than allowed")]
    TooManyEntries,
    #[error("zip central directory is larger than allowed")]
    DirectoryTooLarge,
    #[error("zip central directory entry #{index} is malformed")]
    BadCentralHeader { index: u64 },
    #[error("zip local file header is malformed")]
    BadLocalHeader,
    #[error("zip archive has overlapping entries")]
    OverlappingEntries,
    #[error("zip64 end of central directory record is missing or malformed")]
    Zip64Missing,
    #[error("multi-disk (spanned or split) zip archives are not supported")]
    MultiDisk,
    #[error("the archive is empty (0 bytes)")]
    EmptyObject,
}

/// Compression method of an entry (APPNOTE 4.4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Stored,
    Deflate,
    Deflate64,
    Bzip2,
    Lzma,
    /// 93, and the deprecated 20.
    Zstd,
    Xz,
    Other(u16),
}

impl From<u16> for Method {
    fn from(code: u16) -> Self {
        match code {
            0 => Method::Stored,
            8 => Method::Deflate,
            9 => Method::Deflate64,
            12 => Method::Bzip2,
            14 => Method::Lzma,
            20 | 93 => Method::Zstd,
            95 => Method::Xz,
            other => Method::Other(other),
        }
    }
}

/// One entry of the index. Offsets are positions in the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryInfo {
    pub local_header_offset: u64,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub method: Method,
    pub flags: u16,
    pub crc32: u32,
    /// Where this entry's bytes must end: next local header or the central directory.
    pub data_end: u64,
}

impl EntryInfo {
    /// General purpose flag bit 0.
    pub fn is_encrypted(&self) -> bool {
        self.flags & 0x0001 != 0
    }

    /// General purpose flag bit 3: CRC and sizes follow the data (the central directory's
    /// values are still the ones to check against).
    pub fn has_data_descriptor(&self) -> bool {
        self.flags & 0x0008 != 0
    }
}

/// Result of parsing the tail (or a requested range).
#[derive(Debug)]
pub enum TailOutcome {
    Complete(ZipIndex),
    /// More bytes are needed: read exactly this range of the object, then call
    /// [`parse_directory`] with the bytes and this `Pending`.
    NeedRange {
        range: Range<u64>,
        pending: Pending,
    },
}

/// What is known so far; opaque. Goes back to [`parse_directory`] with the bytes of the
/// range it came with.
#[derive(Debug, Clone)]
pub struct Pending {
    object_size: u64,
    range: Range<u64>,
    stage: plan::Stage,
}

impl Pending {
    /// The range these bytes must come from.
    pub fn range(&self) -> Range<u64> {
        self.range.clone()
    }

    /// When the pending range is the central directory itself, a parser that takes its
    /// bytes piece by piece as they stream in, so they are never held all at once (the
    /// same result as [`parse_directory`] with all of them). Otherwise `self` back: those
    /// ranges are small (an end record or a fresh tail).
    pub fn into_directory(self) -> Result<DirectoryParser, Pending> {
        match self.stage {
            plan::Stage::Directory(plan) => Ok(DirectoryParser::new(plan, self.object_size)),
            _ => Err(self),
        }
    }
}

/// Parses the tail of an archive. `tail` is the object's bytes from `tail_start` to its
/// end (`tail_start + tail.len()` must equal `object_size`, else [`ZipError::Truncated`]).
pub fn parse_tail(
    tail: &[u8],
    tail_start: u64,
    object_size: u64,
    limits: &IndexLimits,
) -> Result<TailOutcome, ZipError> {
    eocd::parse_tail(tail, tail_start, object_size, limits)
}

/// Continues after [`TailOutcome::NeedRange`]. `bytes` are the object's bytes for the
/// requested range (they may be assembled from a new read and the tail already held).
/// Fewer bytes than requested is [`ZipError::Truncated`]; bytes past the range are
/// ignored. May return `NeedRange` again in the rare cases listed in the module docs.
pub fn parse_directory(
    bytes: &[u8],
    pending: Pending,
    limits: &IndexLimits,
) -> Result<TailOutcome, ZipError> {
    let want = pending.range.end - pending.range.start;
    let bytes = usize::try_from(want)
        .ok()
        .and_then(|n| bytes.get(..n))
        .ok_or(ZipError::Truncated)?;
    eocd::resume(bytes, pending, limits)
}

/// Length of the local file header at the start of `bytes` (30 + name length + extra
/// length), after checking its signature. Fewer than 30 bytes is
/// [`ZipError::Truncated`], a wrong signature [`ZipError::BadLocalHeader`].
pub fn local_header_len(bytes: &[u8]) -> Result<u64, ZipError> {
    let header = bytes.get(..30).ok_or(ZipError::Truncated)?;
    if header[..4] != records::LOCAL_HEADER_SIG.to_le_bytes() {
        return Err(ZipError::BadLocalHeader);
    }
    let name_len = u16::from_le_bytes([header[26], header[27]]);
    let extra_len = u16::from_le_bytes([header[28], header[29]]);
    Ok(30 + u64::from(name_len) + u64::from(extra_len))
}
