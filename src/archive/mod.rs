//! Reading single files out of zip archives in object storage with few round trips and
//! verified bytes.
//!
//! - [`index`]: pure parsing of the end records and central directory into a compact
//!   [`index::ZipIndex`] (fuzzed, checked against an independent reader).
//! - [`cache`]: opening an archive with one tail read, and the byte-weighted cache of
//!   open archives (single-flight, ETag-pinned).
//! - [`budget`]: the memory budget decoders and archive opens share, and the cap on one
//!   decoder's dictionary or window.
//! - [`entry`]: one entry's bytes: local header, decoding, CRC-32 and size verification
//!   with the last chunk held back; small entries decoded in one piece.
//! - [`hot`]: the byte-bounded cache of hot small entries, decoded.
//! - [`part`]: the layout and headers of a new zip holding some of an archive's entries,
//!   their compressed bytes copied unchanged.

pub mod budget;
pub mod cache;
pub mod entry;
pub mod hot;
pub mod index;
pub mod part;
