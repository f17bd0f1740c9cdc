//! Code page 437 (the original IBM PC character set), the encoding zip tools used for
//! names before UTF-8 (APPNOTE appendix D): the default when bit 11 is clear and the name
//! is neither announced as UTF-8 nor valid UTF-8.

/// The upper half, 0x80..=0xFF; the lower half is decoded as ASCII (the control-character
/// glyphs of the original code page are not used in file names).
const HIGH: [char; 128] = [
    '\u{00C7}', '\u{00FC}', '\u{00E9}', '\u{00E2}', '\u{00E4}', '\u{00E0}', '\u{00E5}',
    '\u{00E7}', // 0x80
    '\u{00EA}', '\u{00EB}', '\u{00E8}', '\u{00EF}', '\u{00EE}', '\u{00EC}', '\u{00C4}',
    '\u{00C5}', // 0x88
    '\u{00C9}', '\u{00E6}', '\u{00C6}', '\u{00F4}', '\u{00F6}', '\u{00F2}', '\u{00FB}',
    '\u{00F9}', // 0x90
    '\u{00FF}', '\u{00D6}', '\u{00DC}', '\u{00A2}', '\u{00A3}', '\u{00A5}', '\u{20A7}',
    '\u{0192}', // 0x98
    '\u{00E1}', '\u{00ED}', '\u{00F3}', '\u{00FA}', '\u{00F1}', '\u{00D1}', '\u{00AA}',
    '\u{00BA}', // 0xA0
    '\u{00BF}', '\u{2310}', '\u{00AC}', '\u{00BD}', '\u{00BC}', '\u{00A1}', '\u{00AB}',
    '\u{00BB}', // 0xA8
    '\u{2591}', '\u{2592}', '\u{2593}', '\u{2502}', '\u{2524}', '\u{2561}', '\u{2562}',
    '\u{2556}', // 0xB0
    '\u{2555}', '\u{2563}', '\u{2551}', '\u{2557}', '\u{255D}', '\u{255C}', '\u{255B}',
    '\u{2510}', // 0xB8
    '\u{2514}', '\u{2534}', '\u{252C}', '\u{251C}', '\u{2500}', '\u{253C}', '\u{255E}',
    '\u{255F}', // 0xC0
    '\u{255A}', '\u{2554}', '\u{2569}', '\u{2566}', '\u{2560}', '\u{2550}', '\u{256C}',
    '\u{2567}', // 0xC8
    '\u{2568}', '\u{2564}', '\u{2565}', '\u{2559}', '\u{2558}', '\u{2552}', '\u{2553}',
    '\u{256B}', // 0xD0
    '\u{256A}', '\u{2518}', '\u{250C}', '\u{2588}', '\u{2584}', '\u{258C}', '\u{2590}',
    '\u{2580}', // 0xD8
    '\u{03B1}', '\u{00DF}', '\u{0393}', '\u{03C0}', '\u{03A3}', '\u{03C3}', '\u{00B5}',
    '\u{03C4}', // 0xE0
    '\u{03A6}', '\u{0398}', '\u{03A9}', '\u{03B4}', '\u{221E}', '\u{03C6}', '\u{03B5}',
    '\u{2229}', // 0xE8
    '\u{2261}', '\u{00B1}', '\u{2265}', '\u{2264}', '\u{2320}', '\u{2321}', '\u{00F7}',
    '\u{2248}', // 0xF0
    '\u{00B0}', '\u{2219}', '\u{00B7}', '\u{221A}', '\u{207F}', '\u{00B2}', '\u{25A0}',
    '\u{00A0}', // 0xF8
];

/// Decodes `bytes` as CP437, appending to `out`.
pub(super) fn decode_into(bytes: &[u8], out: &mut String) {
    out.reserve(bytes.len());
    for &b in bytes {
        if b < 0x80 {
            out.push(char::from(b));
        } else {
            out.push(HIGH[usize::from(b - 0x80)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decode_into;

    fn decode(bytes: &[u8]) -> String {
        let mut s = String::new();
        decode_into(bytes, &mut s);
        s
    }

    #[test]
    fn known_characters() {
        assert_eq!(decode(&[0x82, 0x74, 0x82]), "\u{e9}t\u{e9}");
        assert_eq!(decode(b"abc/"), "abc/");
        assert_eq!(
            decode(&[0x80, 0x9e, 0xb0, 0xe1, 0xfe, 0xff]),
            "\u{c7}\u{20a7}\u{2591}\u{df}\u{25a0}\u{a0}"
        );
    }

    #[test]
    fn every_byte_decodes_to_one_char() {
        let all: Vec<u8> = (0..=255).collect();
        let s = decode(&all);
        assert_eq!(s.chars().count(), 256);
        // The high half maps to 128 distinct non-ASCII characters.
        let mut high: Vec<char> = s.chars().skip(128).collect();
        assert!(high.iter().all(|c| !c.is_ascii()));
        high.sort_unstable();
        high.dedup();
        assert_eq!(high.len(), 128);
    }
}
