//! Central directory file headers → index records.

use super::names::{self, UNICODE_PATH_ID};
use super::ZipError;

use super::format::ZIP64_EXTRA_ID;
pub(super) use super::format::{CENTRAL_HEADER_SIG, LOCAL_HEADER_SIG};
const CENTRAL_HEADER_LEN: usize = super::format::CENTRAL_HEADER_LEN as usize;

/// Little-endian reads at a fixed position; callers check lengths first, and a read past
/// the end yields 0 instead of panicking.
pub(super) fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..)
        .and_then(|s| s.get(..2))
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

pub(super) fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..)
        .and_then(|s| s.get(..4))
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

pub(super) fn le64(b: &[u8], at: usize) -> u64 {
    b.get(at..).and_then(|s| s.get(..8)).map_or(0, |s| {
        u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
    })
}

/// One entry, 56 bytes; its name is `names[name_start..name_start + name_len]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Record {
    pub local_header_offset: u64,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub data_end: u64,
    pub crc32: u32,
    pub name_start: u32,
    pub name_len: u32,
    /// MS-DOS date (high half) and time (low half), as stored.
    pub modified: u32,
    pub flags: u16,
    pub method: u16,
    /// The Unix mode from the external attributes, when a Unix writer set one; else 0.
    pub unix_mode: u16,
}

/// Host systems (high byte of "version made by") whose external attributes carry a Unix
/// mode in their upper 16 bits: Unix and OS X (APPNOTE 4.4.2).
const UNIX_HOSTS: [u8; 2] = [3, 19];

/// The Unix mode of a central header, when its writer recorded one.
fn unix_mode(header: &[u8]) -> u16 {
    let [_, host] = le16(header, 4).to_le_bytes();
    if UNIX_HOSTS.contains(&host) {
        (le32(header, 38) >> 16) as u16
    } else {
        0
    }
}

/// The parsed directory, in directory order; names are concatenated in `names`.
pub(super) struct Entries {
    pub names: String,
    pub records: Vec<Record>,
}

/// Length of the central header whose fixed 46 bytes start `bytes` (name, extra and
/// comment included), or `None` when fewer than 46 bytes are given.
pub(super) fn header_len(bytes: &[u8]) -> Option<usize> {
    let header = bytes.get(..CENTRAL_HEADER_LEN)?;
    let name_len = usize::from(le16(header, 28));
    let extra_len = usize::from(le16(header, 30));
    let comment_len = usize::from(le16(header, 32));
    Some(CENTRAL_HEADER_LEN + name_len + extra_len + comment_len)
}

/// Longest central header: 46 fixed bytes and three 16-bit lengths.
pub(super) const MAX_HEADER_LEN: usize = CENTRAL_HEADER_LEN + 3 * u16::MAX as usize;

/// Parses the central header `index` at the start of `bytes`, appending its decoded name
/// to `names` and adding `shift` to its local header offset. `Ok(None)` when `bytes` end
/// before the header does; otherwise the record and the header's length.
pub(super) fn parse_one(
    bytes: &[u8],
    index: u64,
    shift: u64,
    names: &mut String,
) -> Result<Option<(Record, usize)>, ZipError> {
    let bad = ZipError::BadCentralHeader { index };
    if bytes.len() >= 4 && le32(bytes, 0) != CENTRAL_HEADER_SIG {
        return Err(bad);
    }
    let Some(total) = header_len(bytes) else {
        return Ok(None);
    };
    let Some(entry) = bytes.get(..total) else {
        return Ok(None);
    };
    let header = &entry[..CENTRAL_HEADER_LEN];
    let name_len = usize::from(le16(header, 28));
    let extra_len = usize::from(le16(header, 30));
    let raw_name = &entry[CENTRAL_HEADER_LEN..CENTRAL_HEADER_LEN + name_len];
    let extra = &entry[CENTRAL_HEADER_LEN + name_len..CENTRAL_HEADER_LEN + name_len + extra_len];

    let flags = le16(header, 8);
    let mut compressed = u64::from(le32(header, 20));
    let mut uncompressed = u64::from(le32(header, 24));
    let mut offset = u64::from(le32(header, 42));
    if let Some(zip64) = find_extra(extra, ZIP64_EXTRA_ID) {
        // Present only for the saturated fields, in this order.
        let mut values = zip64.chunks_exact(8).map(|c| le64(c, 0));
        for field in [&mut uncompressed, &mut compressed, &mut offset] {
            if *field == u64::from(u32::MAX) {
                *field = values.next().ok_or(bad)?;
            }
        }
    }
    let local_header_offset = offset.checked_add(shift).ok_or(bad)?;

    let name_start = u32::try_from(names.len()).map_err(|_| ZipError::DirectoryTooLarge)?;
    names::decode_name_into(
        raw_name,
        flags & 0x0800 != 0,
        find_extra(extra, UNICODE_PATH_ID),
        names,
    );
    let name_len =
        u32::try_from(names.len()).map_err(|_| ZipError::DirectoryTooLarge)? - name_start;
    let record = Record {
        local_header_offset,
        compressed_size: compressed,
        uncompressed_size: uncompressed,
        data_end: 0,
        crc32: le32(header, 16),
        name_start,
        name_len,
        modified: u32::from(le16(header, 14)) << 16 | u32::from(le16(header, 12)),
        flags,
        method: le16(header, 10),
        unix_mode: unix_mode(header),
    };
    Ok(Some((record, total)))
}

/// The data of the first extra field with `id`. A malformed tail (a length running past
/// the end) ends the search, as lenient readers do.
fn find_extra(mut extra: &[u8], id: u16) -> Option<&[u8]> {
    while extra.len() >= 4 {
        let field_id = le16(extra, 0);
        let len = usize::from(le16(extra, 2));
        let data = extra.get(4..4 + len)?;
        if field_id == id {
            return Some(data);
        }
        extra = &extra[4 + len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{find_extra, le16, le32, le64};

    #[test]
    fn short_reads_are_zero() {
        assert_eq!(le16(&[1], 0), 0);
        assert_eq!(le32(&[1, 2, 3, 4], 1), 0);
        assert_eq!(le64(&[1; 8], 0), 0x0101_0101_0101_0101);
        assert_eq!(le64(&[1; 8], usize::MAX - 2), 0);
    }

    #[test]
    fn extra_fields() {
        let extra = [1, 0, 2, 0, 9, 9, 0x75, 0x70, 1, 0, 7, 0xff, 0xff];
        assert_eq!(find_extra(&extra, 1), Some(&[9, 9][..]));
        assert_eq!(find_extra(&extra, 0x7075), Some(&[7][..]));
        assert_eq!(find_extra(&extra, 0xffff), None);
        assert_eq!(find_extra(&[0xff, 0xff, 0xff, 0xff, 1], 0xffff), None);
    }
}
