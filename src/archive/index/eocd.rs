//! End records: EOCD, zip64 locator and end record → where the central directory is.

use super::directory::DirectoryParser;
use super::plan::{need, Plan, Stage};
use super::records::{self, le16, le32, le64};
use super::{IndexLimits, Pending, TailOutcome, ZipError, MIN_TAIL_LEN};

use super::format::{
    CENTRAL_HEADER_LEN, EOCD_LEN, EOCD_SIG, LOCATOR_LEN, LOCATOR_SIG, ZIP64_EOCD_LEN,
    ZIP64_EOCD_SIG,
};

/// The central directory as the end records describe it, before it is located.
struct Declared {
    count: u64,
    size: u64,
    offset: u64,
    /// The directory must end here at the latest: the zip64 end record or the EOCD.
    anchor: u64,
    /// The zip64 end record was found at its stated offset, so offsets are not shifted.
    absolute: bool,
}

/// Bytes of the object that are at hand: `bytes` start at object offset `start`.
#[derive(Clone, Copy)]
struct Window<'a> {
    bytes: &'a [u8],
    start: u64,
}

impl<'a> Window<'a> {
    /// `len` bytes at object offset `at`, if they are all in the window.
    fn get(&self, at: u64, len: u64) -> Option<&'a [u8]> {
        let from = usize::try_from(at.checked_sub(self.start)?).ok()?;
        let len = usize::try_from(len).ok()?;
        self.bytes.get(from..from.checked_add(len)?)
    }

    /// Whether a signature is at `at`: `None` when those bytes are not in the window.
    fn sig_at(&self, at: u64, sig: u32) -> Option<bool> {
        self.get(at, 4).map(|b| b == sig.to_le_bytes())
    }
}

/// A fresh tail of [`MIN_TAIL_LEN`] bytes (or the whole object).
fn need_tail(object_size: u64) -> TailOutcome {
    let start = object_size.saturating_sub(MIN_TAIL_LEN);
    need(start..object_size, object_size, Stage::Tail)
}

pub(super) fn parse_tail(
    tail: &[u8],
    tail_start: u64,
    object_size: u64,
    limits: &IndexLimits,
) -> Result<TailOutcome, ZipError> {
    if object_size == 0 {
        return Err(ZipError::EmptyObject);
    }
    if tail_start.checked_add(tail.len() as u64) != Some(object_size) {
        return Err(ZipError::Truncated);
    }
    let window = Window {
        bytes: tail,
        start: tail_start,
    };
    // Whether the tail covers everything a tail of MIN_TAIL_LEN covers: if not, and
    // something is missing, ask for such a tail (which never asks again).
    let full_tail = tail_start <= object_size.saturating_sub(MIN_TAIL_LEN);

    let Some(eocd_pos) = find_eocd(window, object_size) else {
        let search_start = object_size.saturating_sub(EOCD_LEN + u64::from(u16::MAX));
        return if tail_start > search_start {
            Ok(need_tail(object_size))
        } else {
            Err(ZipError::NotAZip)
        };
    };
    let eocd = window.get(eocd_pos, EOCD_LEN).ok_or(ZipError::NotAZip)?;
    let entries_on_disk = le16(eocd, 8);
    let entries = le16(eocd, 10);
    let size = le32(eocd, 12);
    let offset = le32(eocd, 16);

    let locator = match eocd_pos.checked_sub(LOCATOR_LEN) {
        None => None,
        Some(at) => match window.get(at, LOCATOR_LEN) {
            None if full_tail => return Err(ZipError::Truncated),
            None => return Ok(need_tail(object_size)),
            Some(loc) if le32(loc, 0) == LOCATOR_SIG => Some(loc),
            Some(_) => None,
        },
    };

    let Some(locator) = locator else {
        if size == u32::MAX || offset == u32::MAX {
            return Err(ZipError::Zip64Missing);
        }
        if le16(eocd, 4) != 0 || le16(eocd, 6) != 0 || entries_on_disk != entries {
            return Err(ZipError::MultiDisk);
        }
        let declared = Declared {
            count: u64::from(entries),
            size: u64::from(size),
            offset: u64::from(offset),
            anchor: eocd_pos,
            absolute: false,
        };
        return locate_directory(declared, window, object_size, limits);
    };

    // zip64: disk holding the record (u32), record offset (u64), total disks (u32).
    if le32(locator, 4) != 0 || le32(locator, 16) > 1 {
        return Err(ZipError::MultiDisk);
    }
    let stated = le64(locator, 8);
    let locator_pos = eocd_pos - LOCATOR_LEN;
    let stated_fits = stated
        .checked_add(ZIP64_EOCD_LEN)
        .is_some_and(|end| end <= locator_pos);
    // Where the record is when nothing sits between it and the locator: with prepended
    // bytes, that is where it really is while `stated` is off by the prefix.
    let adjacent = locator_pos.checked_sub(ZIP64_EOCD_LEN);
    let adjacent_ok = adjacent.is_some_and(|at| {
        window
            .get(at, ZIP64_EOCD_LEN)
            .is_some_and(|r| le32(r, 0) == ZIP64_EOCD_SIG && le64(r, 4) == ZIP64_EOCD_LEN - 12)
    });
    let stated_sig = window.sig_at(stated, ZIP64_EOCD_SIG);
    let record_pos = match (stated_fits, stated_sig) {
        (true, Some(true)) => stated,
        _ if adjacent_ok => adjacent.unwrap_or(stated),
        (false, _) | (true, Some(false)) => return Err(ZipError::Zip64Missing),
        (true, None) if !full_tail => return Ok(need_tail(object_size)),
        (true, None) => {
            let range = stated..stated + ZIP64_EOCD_LEN;
            return Ok(need(range, object_size, Stage::Zip64Record));
        }
    };
    let record = window
        .get(record_pos, ZIP64_EOCD_LEN)
        .ok_or(ZipError::Zip64Missing)?;
    let declared = zip64_declared(record, record_pos, record_pos == stated)?;
    locate_directory(declared, window, object_size, limits)
}

/// Searches backwards for the EOCD whose comment ends exactly at the object's end.
fn find_eocd(window: Window<'_>, object_size: u64) -> Option<u64> {
    let last = object_size.checked_sub(EOCD_LEN)?;
    let first = last.saturating_sub(u64::from(u16::MAX)).max(window.start);
    (first..=last).rev().find(|&at| {
        window
            .get(at, EOCD_LEN)
            .is_some_and(|rec| le32(rec, 0) == EOCD_SIG && u64::from(le16(rec, 20)) == last - at)
    })
}

/// Reads a zip64 end of central directory record found at `pos`.
fn zip64_declared(record: &[u8], pos: u64, absolute: bool) -> Result<Declared, ZipError> {
    if record.len() < ZIP64_EOCD_LEN as usize || le32(record, 0) != ZIP64_EOCD_SIG {
        return Err(ZipError::Zip64Missing);
    }
    // disk (u32 @16), disk with the directory (u32 @20), entries on this disk (u64 @24).
    let count = le64(record, 32);
    if le32(record, 16) != 0 || le32(record, 20) != 0 || le64(record, 24) != count {
        return Err(ZipError::MultiDisk);
    }
    Ok(Declared {
        count,
        size: le64(record, 40),
        offset: le64(record, 48),
        anchor: pos,
        absolute,
    })
}

/// Checks the declared directory against the limits and the end records, settles the
/// prefix shift, then parses it from `window` or asks for it.
///
/// A gap between the stated end of the directory and the end records means bytes were
/// prepended (shift by the gap), unless a central header is at the stated offset or the
/// zip64 end record was at its stated offset (then the gap is junk after the directory).
fn locate_directory(
    declared: Declared,
    window: Window<'_>,
    object_size: u64,
    limits: &IndexLimits,
) -> Result<TailOutcome, ZipError> {
    let Declared {
        count,
        size,
        offset,
        anchor,
        absolute,
    } = declared;
    if count > limits.max_entries {
        return Err(ZipError::TooManyEntries);
    }
    if size > limits.max_directory_bytes {
        return Err(ZipError::DirectoryTooLarge);
    }
    // Every entry takes at least 46 bytes: a count the size cannot hold fails here,
    // before anything is allocated for it.
    if count
        .checked_mul(CENTRAL_HEADER_LEN)
        .is_none_or(|min| min > size)
    {
        return Err(ZipError::Truncated);
    }
    let end = offset
        .checked_add(size)
        .ok_or(ZipError::DirectoryOutOfBounds)?;
    if end > anchor {
        return Err(ZipError::DirectoryOutOfBounds);
    }
    let gap = anchor - end;
    let stated = Plan {
        start: offset,
        size,
        count,
        shift: 0,
        fallback: None,
        max_names: limits.max_directory_bytes,
    };
    let shifted = Plan {
        start: anchor - size,
        shift: gap,
        ..stated.clone()
    };
    let plan = if gap == 0 || absolute {
        stated
    } else if size == 0 {
        shifted
    } else {
        match window.sig_at(offset, records::CENTRAL_HEADER_SIG) {
            Some(true) => stated,
            Some(false) => shifted,
            None => Plan {
                fallback: Some(offset),
                ..shifted
            },
        }
    };
    directory(plan, window, object_size)
}

/// Parses the planned directory if `window` holds it, else asks for it.
fn directory(plan: Plan, window: Window<'_>, object_size: u64) -> Result<TailOutcome, ZipError> {
    let Some(bytes) = window.get(plan.start, plan.size) else {
        let range = plan.start..plan.start + plan.size;
        return Ok(need(range, object_size, Stage::Directory(plan)));
    };
    let mut parser = DirectoryParser::new(plan, object_size);
    parser.push(bytes)?;
    match parser.finish()? {
        // The shifted guess failed: the stated range may be at hand too.
        TailOutcome::NeedRange {
            pending:
                Pending {
                    stage: Stage::Directory(retry),
                    ..
                },
            ..
        } if window.get(retry.start, retry.size).is_some() => directory(retry, window, object_size),
        outcome => Ok(outcome),
    }
}

/// Continues a parse with the bytes of `pending.range` (already cut to its length).
pub(super) fn resume(
    bytes: &[u8],
    pending: Pending,
    limits: &IndexLimits,
) -> Result<TailOutcome, ZipError> {
    let Pending {
        object_size,
        range,
        stage,
    } = pending;
    let window = Window {
        bytes,
        start: range.start,
    };
    match stage {
        Stage::Tail => parse_tail(bytes, range.start, object_size, limits),
        Stage::Zip64Record => {
            let declared = zip64_declared(bytes, range.start, true)?;
            locate_directory(declared, window, object_size, limits)
        }
        Stage::Directory(plan) => {
            let mut parser = DirectoryParser::new(plan, object_size);
            parser.push(bytes)?;
            parser.finish()
        }
    }
}
