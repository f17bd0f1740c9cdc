//! Where a parse stands between reads: the stage that asked for bytes, and where the
//! central directory is to be read from. Shared by the end-record and directory parsers.

use std::ops::Range;

use super::{Pending, TailOutcome};

/// Where the parse stopped to ask for bytes.
#[derive(Debug, Clone)]
pub(super) enum Stage {
    /// A fresh tail: start over.
    Tail,
    /// The zip64 end record at the locator's stated offset.
    Zip64Record,
    /// The central directory.
    Directory(Plan),
}

/// Where the central directory will be read from.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub start: u64,
    pub size: u64,
    pub count: u64,
    /// Added to every stated offset (bytes prepended to the archive).
    pub shift: u64,
    /// The stated start, when `start` is the shifted guess and the stated offset could not
    /// be checked: tried if the guess does not begin with a central header.
    pub fallback: Option<u64>,
    /// Most bytes of decoded names the index may hold (`zip.max_directory_bytes`): names
    /// that grow when decoded cannot take more memory than a directory of the limit.
    pub max_names: u64,
}

impl Plan {
    /// The directory at its stated offset, after the shifted guess failed.
    pub fn retry_at_stated(self) -> Plan {
        Plan {
            start: self.fallback.unwrap_or(self.start),
            shift: 0,
            fallback: None,
            ..self
        }
    }
}

pub(super) fn need(range: Range<u64>, object_size: u64, stage: Stage) -> TailOutcome {
    TailOutcome::NeedRange {
        pending: Pending {
            object_size,
            range: range.clone(),
            stage,
        },
        range,
    }
}
