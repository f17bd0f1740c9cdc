//! Entry names: raw header bytes (+ the Info-ZIP Unicode Path extra field) → UTF-8.

use super::cp437;

/// Info-ZIP Unicode Path extra field: `version: u8 (1), name_crc32: u32, utf8_name`.
pub(super) const UNICODE_PATH_ID: u16 = 0x7075;

/// Decodes an entry name and appends it to `out`.
///
/// - Flag bit 11 (language encoding) set: the name is UTF-8. If it is not valid UTF-8
///   it is decoded lossily (invalid sequences become U+FFFD), so the entry is listed and
///   findable only under that lossy form.
/// - Otherwise the Unicode Path extra field (`unicode_path`: its data, after the header)
///   wins when its version is 1, its CRC-32 matches the raw name bytes and its name is
///   valid UTF-8.
/// - Otherwise raw bytes that are valid UTF-8 are taken as such (Info-ZIP on Unix and
///   many other tools write UTF-8 without setting the flag; pure ASCII is the same in
///   every encoding).
/// - Otherwise CP437, the historical default.
pub(super) fn decode_name_into(
    raw: &[u8],
    utf8_flag: bool,
    unicode_path: Option<&[u8]>,
    out: &mut String,
) {
    if utf8_flag {
        out.push_str(&String::from_utf8_lossy(raw));
        return;
    }
    if let Some(name) = unicode_path.and_then(|data| unicode_path_name(raw, data)) {
        out.push_str(name);
        return;
    }
    match std::str::from_utf8(raw) {
        Ok(s) => out.push_str(s),
        Err(_) => cp437::decode_into(raw, out),
    }
}

/// The UTF-8 name of a Unicode Path extra field, if it is usable for `raw`.
fn unicode_path_name<'a>(raw: &[u8], data: &'a [u8]) -> Option<&'a str> {
    let (&version, rest) = data.split_first()?;
    if version != 1 || rest.len() < 4 {
        return None;
    }
    let (crc, name) = rest.split_at(4);
    let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc != crc32fast::hash(raw) {
        return None;
    }
    std::str::from_utf8(name).ok()
}

#[cfg(test)]
mod tests {
    use super::decode_name_into;

    fn decode(raw: &[u8], flag: bool, extra: Option<&[u8]>) -> String {
        let mut s = String::new();
        decode_name_into(raw, flag, extra, &mut s);
        s
    }

    fn unicode_path(raw: &[u8], name: &str, version: u8) -> Vec<u8> {
        let mut v = vec![version];
        v.extend_from_slice(&crc32fast::hash(raw).to_le_bytes());
        v.extend_from_slice(name.as_bytes());
        v
    }

    #[test]
    fn flag_means_utf8_and_invalid_is_lossy() {
        assert_eq!(decode("dir/ä.txt".as_bytes(), true, None), "dir/ä.txt");
        assert_eq!(decode(&[b'a', 0xff, b'b'], true, None), "a\u{fffd}b");
    }

    #[test]
    fn unflagged_utf8_and_cp437() {
        assert_eq!(decode("ü/€".as_bytes(), false, None), "ü/€");
        assert_eq!(decode(&[0x82, 0x74, 0x82], false, None), "été");
        assert_eq!(decode(&[0x81, b'/', 0x9a], false, None), "ü/Ü");
    }

    #[test]
    fn unicode_path_extra_needs_matching_crc_and_version() {
        let raw = [0x82, b'.', b't', b'x', b't'];
        let good = unicode_path(&raw, "ça.txt", 1);
        assert_eq!(decode(&raw, false, Some(&good)), "ça.txt");
        let mut bad_crc = good.clone();
        bad_crc[1] ^= 1;
        assert_eq!(decode(&raw, false, Some(&bad_crc)), "é.txt");
        let bad_version = unicode_path(&raw, "ça.txt", 2);
        assert_eq!(decode(&raw, false, Some(&bad_version)), "é.txt");
        assert_eq!(decode(&raw, false, Some(&[1, 2])), "é.txt");
        // Ignored when the flag already says UTF-8.
        assert_eq!(decode(b"x", true, Some(&unicode_path(b"x", "y", 1))), "x");
    }
}
