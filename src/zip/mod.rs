//! Reading single files out of zip archives in object storage with few round trips and
//! verified bytes.
//!
//! - [`index`]: pure parsing of the end records and central directory into a compact
//!   [`index::ZipIndex`] (fuzzed, checked against an independent reader).
//! - [`archive`]: opening an archive with one tail read, and the byte-weighted cache of
//!   open archives (single-flight, ETag-pinned).
//! - [`entry`]: one entry's bytes: local header, decoding, CRC-32 and size verification
//!   with the last chunk held back.

pub mod archive;
pub mod entry;
pub mod index;
