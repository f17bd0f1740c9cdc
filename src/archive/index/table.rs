//! The compact index: records sorted by name, names in one buffer.

use std::cmp::Ordering;
use std::fmt;
use std::ops::Range;

use super::records::{Entries, Record};
use super::{EntryInfo, Method, ZipError};

use super::format::LOCAL_HEADER_LEN;

/// The central directory of one archive, for lookups by name.
pub struct ZipIndex {
    /// All names, in directory order (those of dropped duplicates included).
    names: String,
    /// Sorted by name, one per distinct name.
    records: Vec<Record>,
    directory: Range<u64>,
    archive_size: u64,
}

fn info_of(r: &Record) -> EntryInfo {
    EntryInfo {
        local_header_offset: r.local_header_offset,
        compressed_size: r.compressed_size,
        uncompressed_size: r.uncompressed_size,
        method: Method::from(r.method),
        flags: r.flags,
        crc32: r.crc32,
        data_end: r.data_end,
    }
}

/// One entry as listed: its name, what reading it needs, and what a listing or a new
/// archive of it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed<'a> {
    pub name: &'a str,
    pub info: EntryInfo,
    /// The compression method as stored (`info.method` maps 20 and 93 both to zstd).
    pub method_code: u16,
    /// MS-DOS date (high half) and time (low half), as the writer stored them.
    pub modified: u32,
    /// The Unix mode the writer recorded in the external attributes (Unix and OS X
    /// hosts), else 0.
    pub unix_mode: u16,
}

fn name_of<'a>(names: &'a str, r: &Record) -> &'a str {
    let start = r.name_start as usize;
    names.get(start..start + r.name_len as usize).unwrap_or("")
}

impl ZipIndex {
    /// Computes `data_end`, rejects overlapping entries, keeps the last of duplicate
    /// names and sorts by name.
    ///
    /// Memory beside the records and names it is given: 4 bytes an entry for the order by
    /// offset, then the stable sort's scratch (half the records, 28 bytes an entry), one
    /// after the other. The names are not copied: those of dropped duplicates stay in the
    /// buffer, which the directory's bytes bound anyway.
    pub(super) fn build(
        entries: Entries,
        directory: Range<u64>,
        archive_size: u64,
    ) -> Result<Self, ZipError> {
        let Entries {
            mut names,
            mut records,
        } = entries;

        // `records.len() * 46 <= directory size`, so indexes fit in u32 for any directory
        // under 4 GiB × 46; larger ones were refused by `zip.max_directory_bytes`.
        let mut order: Vec<u32> =
            (0..u32::try_from(records.len()).map_err(|_| ZipError::DirectoryTooLarge)?).collect();
        order.sort_unstable_by_key(|&i| records[i as usize].local_header_offset);
        for (pos, &i) in order.iter().enumerate() {
            let data_end = order.get(pos + 1).map_or(directory.start, |&next| {
                records[next as usize].local_header_offset
            });
            let record = &mut records[i as usize];
            let min_end = record
                .local_header_offset
                .checked_add(LOCAL_HEADER_LEN)
                .and_then(|end| end.checked_add(record.compressed_size));
            // Also catches two entries at one offset (data_end == offset).
            if min_end.is_none_or(|end| end > data_end) {
                return Err(ZipError::OverlappingEntries);
            }
            record.data_end = data_end;
        }
        drop(order);

        // Reversed, a stable sort puts the last of equal names first; dedup keeps it.
        records.reverse();
        records.sort_by(|a, b| name_of(&names, a).cmp(name_of(&names, b)));
        records.dedup_by(|later, kept| name_of(&names, later) == name_of(&names, kept));
        records.shrink_to_fit();
        names.shrink_to_fit();

        Ok(Self {
            names,
            records,
            directory,
            archive_size,
        })
    }

    fn name(&self, r: &Record) -> &str {
        name_of(&self.names, r)
    }

    /// The entry stored under exactly `name` (the last one, if the name repeats).
    pub fn get(&self, name: &str) -> Option<EntryInfo> {
        let i = self
            .records
            .binary_search_by(|r| self.name(r).cmp(name))
            .ok()?;
        Some(info_of(&self.records[i]))
    }

    /// The entries whose names start with `prefix` (all of them for `""`), in byte order
    /// of their names: one contiguous run of the sorted records, found by binary search.
    pub fn starting_with<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = Listed<'a>> {
        self.positions_starting_with(prefix)
            .map(|at| self.listed(&self.records[at]))
    }

    /// Where the entries whose names start with `prefix` are in the name order (positions
    /// for [`ZipIndex::at`]).
    pub fn positions_starting_with(&self, prefix: &str) -> Range<usize> {
        let first = self.records.partition_point(|r| self.name(r) < prefix);
        let run = self.records[first..].partition_point(|r| self.name(r).starts_with(prefix));
        first..first + run
    }

    /// The entry at `position` in the name order (`0..len()`).
    pub fn at(&self, position: usize) -> Option<Listed<'_>> {
        self.records.get(position).map(|r| self.listed(r))
    }

    fn listed<'a>(&'a self, r: &Record) -> Listed<'a> {
        Listed {
            name: self.name(r),
            info: info_of(r),
            method_code: r.method,
            modified: r.modified,
            unix_mode: r.unix_mode,
        }
    }

    /// Whether `name` is a directory: an entry `name/` exists or some entry's name starts
    /// with `name/`. A trailing `/` on `name` is allowed; `""` (the root) is a directory.
    pub fn is_directory(&self, name: &str) -> bool {
        if name.is_empty() {
            return true;
        }
        let base = name.strip_suffix('/').unwrap_or(name).as_bytes();
        let cmp_prefix = |candidate: &str| {
            candidate
                .as_bytes()
                .iter()
                .cmp(base.iter().chain(b"/".iter()))
        };
        let first = self
            .records
            .partition_point(|r| cmp_prefix(self.name(r)) == Ordering::Less);
        self.records.get(first).is_some_and(|r| {
            let candidate = self.name(r).as_bytes();
            candidate.starts_with(base) && candidate.get(base.len()) == Some(&b'/')
        })
    }

    /// Number of distinct names.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Memory held by the index: the capacity of its two buffers plus the struct itself,
    /// for weighing it in a cache. At most the directory's bytes plus 10 bytes an entry
    /// (56-byte records for 46-byte headers) plus what non-UTF-8 names gain when decoded.
    pub fn heap_bytes(&self) -> usize {
        self.names.capacity()
            + self.records.capacity() * std::mem::size_of::<Record>()
            + std::mem::size_of::<Self>()
    }

    /// All names, in byte order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.records.iter().map(|r| self.name(r))
    }

    /// Where the central directory lies in the object.
    pub fn directory_range(&self) -> Range<u64> {
        self.directory.clone()
    }

    /// Size of the whole object.
    pub fn archive_size(&self) -> u64 {
        self.archive_size
    }
}

impl fmt::Debug for ZipIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZipIndex")
            .field("entries", &self.records.len())
            .field("directory", &self.directory)
            .field("archive_size", &self.archive_size)
            .field("heap_bytes", &self.heap_bytes())
            .finish()
    }
}
