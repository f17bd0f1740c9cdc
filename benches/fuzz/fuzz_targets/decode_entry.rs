#![no_main]
//! The entry decoder path: local header, decoder, CRC and size check over fuzzed bytes
//! and a fuzzed declaration; see `decode_entry_check.rs` for the input layout and the
//! property.
use libfuzzer_sys::fuzz_target;

mod decode_entry_check;

fuzz_target!(|data: &[u8]| {
    decode_entry_check::check(data);
});
